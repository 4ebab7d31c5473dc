package org.flexidepth.bindgen;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Generates the FFM bindings from C headers with libclang, reading jextract's own argfile.
 * Usage: {@code BindingsGenerator @bindings/jextract.args [--check]} from the repository root;
 * with {@code --check} nothing is written and a difference from the committed sources is an error.
 */
public final class BindingsGenerator {
    static final Path DEFAULT_LIBCLANG = Path.of("/usr/lib/llvm-14/lib/libclang.so.1");

    private BindingsGenerator() {
    }

    /** Generates all sources in memory: file name to contents. */
    public static Map<String, String> generate(Path argfile, Path baseDir) throws IOException {
        JextractOptions o = JextractOptions.parse(argfile, baseDir);
        if (!Files.exists(o.header())) {
            throw new IOException("header " + o.header() + " not found: build the native tree first (see README)");
        }
        try (Clang clang = new Clang(Path.of(System.getProperty("bindgen.libclang", DEFAULT_LIBCLANG.toString())))) {
            List<String> args = new ArrayList<>(List.of("-x", "c", "-std=c11"));
            args.addAll(o.clangArgs());
            HeaderModel model = HeaderModel.read(clang, clang.parse(o.header(), args)).select(o);
            return new JavaEmitter(o.targetPackage(), o.headerClassName()).emit(model);
        }
    }

    /** Where the generated sources of a package go under the options' output folder. */
    public static Path outputDir(Path argfile, Path baseDir) throws IOException {
        JextractOptions o = JextractOptions.parse(argfile, baseDir);
        return o.output().resolve(o.targetPackage().replace('.', '/'));
    }

    /** The struct names and field names that the bindings cover, for layout checks. */
    public static Map<String, List<String>> structFields(Path argfile, Path baseDir) throws IOException {
        JextractOptions o = JextractOptions.parse(argfile, baseDir);
        try (Clang clang = new Clang(Path.of(System.getProperty("bindgen.libclang", DEFAULT_LIBCLANG.toString())))) {
            List<String> args = new ArrayList<>(List.of("-x", "c", "-std=c11"));
            args.addAll(o.clangArgs());
            HeaderModel model = HeaderModel.read(clang, clang.parse(o.header(), args)).select(o);
            Map<String, List<String>> out = new java.util.LinkedHashMap<>();
            model.structs.values().forEach(s -> out.put(s.name(), s.fields().stream().map(HeaderModel.Field::name).toList()));
            return out;
        }
    }

    public static void main(String[] argv) throws IOException {
        if (argv.length < 1 || !argv[0].startsWith("@")) {
            System.err.println("usage: BindingsGenerator @bindings/jextract.args [--check]");
            System.exit(2);
        }
        Path argfile = Path.of(argv[0].substring(1));
        Path base = Path.of("").toAbsolutePath();
        boolean check = argv.length > 1 && argv[1].equals("--check");
        Map<String, String> files = generate(argfile, base);
        Path dir = outputDir(argfile, base);
        int changed = 0;
        for (var e : files.entrySet()) {
            Path p = dir.resolve(e.getKey());
            boolean same = Files.exists(p) && Files.readString(p).equals(e.getValue());
            if (!same) {
                changed++;
                if (check) {
                    System.err.println("differs: " + p);
                } else {
                    Files.createDirectories(dir);
                    Files.writeString(p, e.getValue());
                }
            }
        }
        try (var existing = Files.exists(dir) ? Files.list(dir) : java.util.stream.Stream.<Path>empty()) {
            for (Path p : existing.toList()) {
                if (p.toString().endsWith(".java") && !files.containsKey(p.getFileName().toString())) {
                    changed++;
                    if (check) {
                        System.err.println("stale: " + p);
                    } else {
                        Files.delete(p);
                    }
                }
            }
        }
        System.out.println((check ? "checked " : "generated ") + files.size() + " files in " + dir + ", " + changed + (check ? " differ" : " written"));
        if (check && changed > 0) {
            System.exit(1);
        }
    }
}

package org.flexidepth.bindgen;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The subset of jextract's command line that the generator honours, read from the same
 * {@code @argfile} that people with jextract use, so both tools produce the same API.
 * Relative paths are resolved against {@code baseDir} (the repository root).
 */
record JextractOptions(Path header, Path output, String targetPackage, String headerClassName,
                       List<String> clangArgs, Set<String> functions, Set<String> structs,
                       Set<String> typedefs, Set<String> constants) {

    static JextractOptions parse(Path argfile, Path baseDir) throws IOException {
        List<String> words = new ArrayList<>();
        for (String line : Files.readAllLines(argfile)) {
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("#")) {
                continue;
            }
            words.addAll(List.of(l.split("\\s+")));
        }
        Path header = null, output = null;
        String pkg = null, headerClass = null;
        List<String> clang = new ArrayList<>();
        Set<String> functions = new LinkedHashSet<>(), structs = new LinkedHashSet<>(),
                typedefs = new LinkedHashSet<>(), constants = new LinkedHashSet<>();
        for (int i = 0; i < words.size(); i++) {
            String w = words.get(i);
            switch (w) {
                case "--output" -> output = baseDir.resolve(words.get(++i));
                case "-t", "--target-package" -> pkg = words.get(++i);
                case "--header-class-name" -> headerClass = words.get(++i);
                case "-I", "--include-dir" -> clang.add("-I" + baseDir.resolve(words.get(++i)));
                case "-D", "--define-macro" -> clang.add("-D" + words.get(++i));
                case "--include-function" -> functions.add(words.get(++i));
                case "--include-struct", "--include-union" -> structs.add(words.get(++i));
                case "--include-typedef" -> typedefs.add(words.get(++i));
                case "--include-constant" -> constants.add(words.get(++i));
                case "-l", "--library" -> i++; // the Java API loads the libraries itself
                case "--use-system-load-library" -> { }
                default -> {
                    if (w.startsWith("-")) {
                        throw new IllegalArgumentException("unsupported jextract option in " + argfile + ": " + w);
                    }
                    header = baseDir.resolve(w);
                }
            }
        }
        if (header == null || output == null || pkg == null || headerClass == null) {
            throw new IllegalArgumentException(argfile + " must give a header, --output, --target-package and --header-class-name");
        }
        return new JextractOptions(header, output, pkg, headerClass, List.copyOf(clang), functions, structs, typedefs, constants);
    }
}

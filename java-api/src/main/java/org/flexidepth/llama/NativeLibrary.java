package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

/**
 * Loads the fork's shared libraries once per JVM, before any binding is used: from the directory
 * named by the system property {@value #PATH_PROPERTY}, or else from this jar (the folder of the
 * running platform), extracted once into a cache folder keyed by the libraries' content.
 * The CPU backend comes as one library per instruction-set level; ggml's registry loads the best
 * one this CPU runs ({@link Llama#cpuBackend()} names it), so the jar never executes an
 * instruction the CPU lacks.
 */
final class NativeLibrary {
    static final String PATH_PROPERTY = "flexillama.library.path";
    static final String CACHE_PROPERTY = "flexillama.cache.dir";
    /** The platforms a jar can carry natives for, as {@code os-arch} folder names. */
    static final List<String> PLATFORMS = List.of("linux-x86_64", "linux-aarch64");
    // The libraries the others link against, in dependency order: each one's DT_NEEDED entries are
    // already loaded when it is. The backends (libggml-cpu-*.so, libggml-cuda.so) are modules that
    // ggml loads itself from the same folder.
    private static final List<String> LINKED = List.of("libggml-base.so", "libggml.so", "libllama.so", "libllama-common.so",
            "libllama-fork-common.so");
    // a library built for one machine (-DFLEXI_NATIVE_CPU=ON) links its CPU and RPC backends into libggml.so
    private static final String CPU_LINKED = "libggml-cpu.so";
    private static final String RPC_LINKED = "libggml-rpc.so";
    // plug-in training and block influence, loaded only when asked for (loadTraining)
    private static final String TRAINING = "libllama-flexidepth-training.so";
    // the jar's list of its libraries: a jar cannot list a resource folder
    private static final String LIST = "natives.list";

    private static volatile boolean loaded;
    private static volatile boolean trainingLoaded;
    private static volatile String cpuBackend;
    private static volatile Path directory;

    private NativeLibrary() {
    }

    static void load() {
        if (loaded) {
            return;
        }
        synchronized (NativeLibrary.class) {
            if (loaded) {
                return;
            }
            List<String> looked = new ArrayList<>();
            Path dir = locate(looked);
            for (String name : LINKED) {
                Path lib = dir.resolve(name);
                if (name.equals("libggml.so") && Files.isRegularFile(dir.resolve(CPU_LINKED))) {
                    load(dir.resolve(CPU_LINKED));
                    if (Files.isRegularFile(dir.resolve(RPC_LINKED))) {
                        load(dir.resolve(RPC_LINKED));
                    }
                }
                load(lib);
            }
            NativeLog.install();
            llama_h.llama_backend_init();
            cpuBackend = loadBackends(dir);
            directory = dir;
            loaded = true;
        }
    }

    /** Loads the training library beside the others (once), for the bindings of llama-flexidepth-train.h. */
    static void loadTraining() {
        load();
        if (trainingLoaded) {
            return;
        }
        synchronized (NativeLibrary.class) {
            if (!trainingLoaded) {
                load(directory.resolve(TRAINING));
                trainingLoaded = true;
            }
        }
    }

    private static void load(Path lib) {
        try {
            System.load(lib.toAbsolutePath().toString());
        } catch (UnsatisfiedLinkError e) {
            throw new NativeLibraryException("cannot load " + lib + ": " + e.getMessage(), e);
        }
    }

    /** The file name of the CPU backend library in use. */
    static String cpuBackend() {
        load();
        return cpuBackend;
    }

    private static String loadBackends(Path dir) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(256);
            int status = llama_h.llama_fork_backend_load(arena.allocateFrom(dir.toAbsolutePath().toString()), name, 256);
            if (status != llama_h.LLAMA_FORK_BACKEND_OK()) {
                List<String> shipped;
                try (var files = Files.list(dir)) {
                    shipped = files.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("libggml-cpu")).sorted().toList();
                } catch (IOException e) {
                    shipped = List.of();
                }
                throw new NativeLibraryException(shipped.isEmpty()
                        ? "no CPU backend library (libggml-cpu*.so) in " + dir
                        : "none of the CPU backend libraries in " + dir + " runs on this CPU (" + System.getProperty("os.arch")
                                + "): " + String.join(", ", shipped) + " each need instructions it lacks");
            }
            String chosen = name.getString(0);
            // the model load's INFO line names the variant; where it came from is detail
            LoggerFactory.getLogger(NativeLibrary.class).debug("CPU backend {} from {}", chosen, dir);
            return chosen;
        }
    }

    /** The folder name of the running platform, e.g. {@code linux-x86_64}. */
    static String platform() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        String o = os.startsWith("linux") ? "linux" : os.startsWith("mac") ? "macos" : os.startsWith("windows") ? "windows" : os;
        String a = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "aarch64", "arm64" -> "aarch64";
            default -> arch;
        };
        return o + "-" + a;
    }

    private static Path locate(List<String> looked) {
        String configured = System.getProperty(PATH_PROPERTY);
        if (configured != null) {
            Path dir = Path.of(configured);
            looked.add(dir + " (system property " + PATH_PROPERTY + ")");
            if (hasAll(dir)) {
                return dir;
            }
            throw notFound(looked);
        }
        String platform = platform();
        String resources = "/org/flexidepth/llama/natives/" + platform + "/";
        looked.add("jar resources " + resources);
        if (NativeLibrary.class.getResource(resources + LIST) == null) {
            if (!PLATFORMS.contains(platform)) {
                throw new NativeLibraryException("no native libraries for " + platform + " (os.name " + System.getProperty("os.name")
                        + ", os.arch " + System.getProperty("os.arch") + "): this library supports " + String.join(", ", PLATFORMS));
            }
            throw notFound(looked);
        }
        try {
            return extract(resources, looked);
        } catch (IOException e) {
            throw new NativeLibraryException("cannot extract the native libraries from the jar: " + e.getMessage(), e);
        }
    }

    private static boolean hasAll(Path dir) {
        return LINKED.stream().allMatch(n -> Files.isRegularFile(dir.resolve(n)));
    }

    private static NativeLibraryException notFound(List<String> looked) {
        return new NativeLibraryException("the native libraries (" + String.join(", ", LINKED) + ") were not found; looked in:\n  "
                + String.join("\n  ", looked) + "\nBuild them with `cmake -S . -B build/native && cmake --build build/native` and set -D"
                + PATH_PROPERTY + "=build/native/bin, or use a jar built after the native build.");
    }

    /** Copies the libraries out of the jar unless a previous run already did, and returns their folder. */
    private static Path extract(String resources, List<String> looked) throws IOException {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        List<String> present;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resources + LIST)) {
            present = new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).lines().filter(l -> !l.isBlank()).toList();
        }
        for (String name : present) {
            try (InputStream in = NativeLibrary.class.getResourceAsStream(resources + name)) {
                if (in == null) {
                    throw new NativeLibraryException("the jar's " + LIST + " names " + name + ", which it does not hold");
                }
                sha.update(name.getBytes());
                sha.update(in.readAllBytes());
            }
        }
        String key = HexFormat.of().formatHex(sha.digest()).substring(0, 16);
        Path base = Path.of(System.getProperty(CACHE_PROPERTY, Path.of(System.getProperty("user.home"), ".cache", "flexillama").toString()));
        Path dir = base.resolve(key);
        looked.add(dir + " (extraction cache)");
        if (hasAll(dir)) {
            return dir;
        }
        Files.createDirectories(base);
        Path tmp = Files.createTempDirectory(base, key + ".tmp");
        for (String name : present) {
            try (InputStream in = NativeLibrary.class.getResourceAsStream(resources + name)) {
                Files.copy(in, tmp.resolve(name), StandardCopyOption.REPLACE_EXISTING);
            }
        }
        try {
            Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException raced) {
            // Another JVM extracted the same libraries first; theirs are identical.
            try (var files = Files.list(tmp)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(tmp);
            if (!hasAll(dir)) {
                throw raced;
            }
        }
        return dir;
    }
}

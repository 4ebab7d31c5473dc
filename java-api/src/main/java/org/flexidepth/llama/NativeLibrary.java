package org.flexidepth.llama;

import org.flexidepth.llama.bindings.llama_h;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Loads the fork's shared libraries once per JVM, before any binding is used: from the directory
 * named by the system property {@value #PATH_PROPERTY}, or else from this jar, extracted once into
 * a cache folder keyed by the libraries' content.
 */
final class NativeLibrary {
    static final String PATH_PROPERTY = "flexillama.library.path";
    static final String CACHE_PROPERTY = "flexillama.cache.dir";
    private static final String RESOURCE_DIR = "/org/flexidepth/llama/natives/linux-x86_64/";
    // Dependency order: each library's DT_NEEDED entries are already loaded when it is.
    private static final List<String> LIBRARIES = List.of(
            "libggml-base.so", "libggml-cpu.so", "libggml-cuda.so", "libggml-metal.so", "libggml.so", "libllama.so");
    private static final List<String> REQUIRED = List.of("libggml-base.so", "libggml-cpu.so", "libggml.so", "libllama.so");

    private static volatile boolean loaded;

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
            for (String name : LIBRARIES) {
                Path lib = dir.resolve(name);
                if (Files.exists(lib)) {
                    try {
                        System.load(lib.toAbsolutePath().toString());
                    } catch (UnsatisfiedLinkError e) {
                        throw new NativeLibraryException("cannot load " + lib + ": " + e.getMessage(), e);
                    }
                }
            }
            NativeLog.install();
            llama_h.llama_backend_init();
            loaded = true;
        }
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
        looked.add("jar resources " + RESOURCE_DIR);
        if (NativeLibrary.class.getResource(RESOURCE_DIR + "libllama.so") == null) {
            throw notFound(looked);
        }
        try {
            return extract(looked);
        } catch (IOException e) {
            throw new NativeLibraryException("cannot extract the native libraries from the jar: " + e.getMessage(), e);
        }
    }

    private static boolean hasAll(Path dir) {
        return REQUIRED.stream().allMatch(n -> Files.isRegularFile(dir.resolve(n)));
    }

    private static NativeLibraryException notFound(List<String> looked) {
        return new NativeLibraryException("the native libraries (" + String.join(", ", REQUIRED) + ") were not found; looked in:\n  "
                + String.join("\n  ", looked) + "\nBuild them with `cmake -S . -B build/native && cmake --build build/native` and set -D"
                + PATH_PROPERTY + "=build/native/bin, or use a jar built after the native build.");
    }

    /** Copies the libraries out of the jar unless a previous run already did, and returns their folder. */
    private static Path extract(List<String> looked) throws IOException {
        MessageDigest sha;
        try {
            sha = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        List<String> present = new ArrayList<>();
        for (String name : LIBRARIES) {
            try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE_DIR + name)) {
                if (in != null) {
                    present.add(name);
                    sha.update(name.getBytes());
                    sha.update(in.readAllBytes());
                }
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
            try (InputStream in = NativeLibrary.class.getResourceAsStream(RESOURCE_DIR + name)) {
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

package org.flexidepth.llama;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The native build that Maven's surefire configuration points the tests at. */
final class TestPaths {
    private TestPaths() {
    }

    static Path buildDir() {
        Path p = Path.of(System.getProperty("flexillama.build.dir", "../build/native"));
        assertTrue(Files.isDirectory(p), "native build not found at " + p + ": run the CMake build first (see README)");
        return p;
    }

    /** Upstream's vocab-only GGUF files and their test vectors. */
    static Path upstreamModels() {
        return buildDir().resolve("_deps/llama.cpp-fork/models");
    }
}

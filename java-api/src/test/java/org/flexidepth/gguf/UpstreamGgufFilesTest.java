package org.flexidepth.gguf;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The vocabulary-only GGUF files that upstream llama.cpp ships, written by its Python gguf writer. */
class UpstreamGgufFilesTest {
    @TempDir
    Path dir;

    private static List<Path> vocabFiles() throws IOException {
        Path models = Path.of(System.getProperty("flexillama.build.dir", "../build/native"))
                .resolve("_deps/llama.cpp-pristine/models");
        // CI builds the native tree first: there a missing folder is a failure, not a skip
        if ("true".equals(System.getenv("CI"))) {
            org.junit.jupiter.api.Assertions.assertTrue(Files.isDirectory(models), models + " is absent under CI=true");
        }
        assumeTrue(Files.isDirectory(models), models + " is absent: run the CMake build first (see README)");
        try (Stream<Path> s = Files.list(models)) {
            return s.filter(p -> p.getFileName().toString().matches("ggml-vocab-.*\\.gguf")).sorted().toList();
        }
    }

    @Test
    void readsUpstreamVocabularies() throws IOException {
        Path spm = vocabFiles().stream().filter(p -> p.endsWith("ggml-vocab-llama-spm.gguf")).findFirst().orElseThrow();
        GgufFile f = GgufReader.readHeader(spm);
        assertEquals("llama", f.require("tokenizer.ggml.model").asString());
        List<String> tokens = f.require("tokenizer.ggml.tokens").asStringList();
        assertEquals(32000, tokens.size());
        int[] types = f.require("tokenizer.ggml.token_type").asIntArray();
        assertEquals("<0x0A>", tokens.get(13));
        assertEquals(6, types[13], "byte token");
        assertEquals(3, types[1], "<s> is a control token");
        assertEquals(32000, f.require("tokenizer.ggml.scores").asFloatArray().length);
    }

    /**
     * Rewriting an upstream file reproduces it byte for byte, up to the final padding: the Python
     * writer does not pad a file without tensors, ggml's C writer (which this one follows) does.
     */
    @Test
    void rewritesUpstreamFilesByteForByte() throws IOException {
        List<Path> files = vocabFiles();
        assertFalse(files.isEmpty());
        for (Path p : files) {
            GgufFile f = GgufReader.readHeader(p);
            if (f.version() != GgufWriter.VERSION) {
                continue;
            }
            GgufWriter w = new GgufWriter();
            f.metadata().forEach(w::put);
            Path out = dir.resolve(p.getFileName());
            w.write(out);
            byte[] original = Files.readAllBytes(p);
            byte[] rewritten = Files.readAllBytes(out);
            assertEquals(GgufReader.padded(original.length, f.alignment()), rewritten.length, p.getFileName().toString());
            assertEquals(-1, Arrays.mismatch(original, Arrays.copyOf(rewritten, original.length)), p.getFileName().toString());
        }
    }
}

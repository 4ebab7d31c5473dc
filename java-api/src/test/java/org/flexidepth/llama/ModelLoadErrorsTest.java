package org.flexidepth.llama;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad model files give a ModelLoadException naming the problem, and the JVM lives on. */
class ModelLoadErrorsTest {
    @TempDir
    Path dir;

    private static final ModelOptions VOCAB = ModelOptions.builder().vocabOnly(true).build();

    @Test
    void missingFile() {
        Path missing = dir.resolve("nope.gguf");
        var e = assertThrows(ModelLoadException.class, () -> LlamaModel.load(missing));
        assertTrue(e.getMessage().contains("not found") && e.getMessage().contains("nope.gguf"), e.getMessage());
    }

    @Test
    void directoryInsteadOfFile() {
        var e = assertThrows(ModelLoadException.class, () -> LlamaModel.load(dir));
        assertTrue(e.getMessage().contains("is a directory"), e.getMessage());
    }

    @Test
    void symbolicLinkLoopOrDanglingLink() throws IOException {
        Path a = dir.resolve("loop-a.gguf"), b = dir.resolve("loop-b.gguf");
        Files.createSymbolicLink(a, b);
        Files.createSymbolicLink(b, a);
        var loop = assertThrows(ModelLoadException.class, () -> LlamaModel.load(a));
        assertTrue(loop.getMessage().contains("symbolic link that cannot be resolved"), loop.getMessage());
        Path dangling = Files.createSymbolicLink(dir.resolve("dangling.gguf"), dir.resolve("nothing-here.gguf"));
        var gone = assertThrows(ModelLoadException.class, () -> LlamaModel.load(dangling));
        assertTrue(gone.getMessage().contains("symbolic link"), gone.getMessage());
    }

    @Test
    void notAGgufFile() throws IOException {
        Path text = Files.writeString(dir.resolve("model.gguf"), "this is not a model");
        var e = assertThrows(ModelLoadException.class, () -> LlamaModel.load(text));
        assertTrue(e.getMessage().contains("not a GGUF"), e.getMessage());
    }

    @Test
    void truncatedFile() throws IOException {
        byte[] whole = Files.readAllBytes(TestPaths.upstreamModels().resolve("ggml-vocab-llama-spm.gguf"));
        for (int keep : new int[] {8, 100, whole.length / 2, whole.length - 1}) {
            Path cut = Files.write(dir.resolve("cut" + keep + ".gguf"), Arrays.copyOf(whole, keep));
            var e = assertThrows(ModelLoadException.class, () -> LlamaModel.load(cut, VOCAB), "kept " + keep + " bytes");
            assertTrue(e.getMessage().contains("cannot load model"), e.getMessage());
        }
    }

    @Test
    void corruptHeaderCounts() throws IOException {
        byte[] whole = Files.readAllBytes(TestPaths.upstreamModels().resolve("ggml-vocab-llama-spm.gguf"));
        // Bytes 8..23 are the tensor and key-value counts: claim absurd numbers.
        Arrays.fill(whole, 8, 24, (byte) 0x7F);
        Path bad = Files.write(dir.resolve("counts.gguf"), whole);
        assertThrows(ModelLoadException.class, () -> LlamaModel.load(bad, VOCAB));
    }

    @Test
    void aGoodFileStillLoadsAfterFailures() {
        assertThrows(ModelLoadException.class, () -> LlamaModel.load(dir.resolve("missing.gguf")));
        try (LlamaModel m = LlamaModel.load(TestPaths.upstreamModels().resolve("ggml-vocab-llama-spm.gguf"), VOCAB)) {
            assertTrue(m.info().vocabularySize() > 0);
        }
    }
}

package org.flexidepth.tools;

import org.flexidepth.tools.convert.HfToGguf;
import org.flexidepth.tools.convert.OutputType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The real models the examples and tests use by default, converted from {@code ../shared} to GGUF
 * on first use with the fork's own tools and cached under {@code build/models}.
 */
public final class DefaultModel {
    private DefaultModel() {
    }

    /** Karpathy's stories260K (llama2.c format), converted with llama-convert-llama2c-to-ggml. */
    public static Path stories260K() throws IOException {
        return llama2c("stories260K.gguf", "models/stories260K.bin", "models/tok512.bin");
    }

    /** The 12-layer FlexiDepth demo base model (llama2.c format). */
    public static Path flexiDemo12L() throws IOException {
        return llama2c("flexi-demo-12L.gguf", "models/flexi-demo-12L/model.bin", "models/flexi-demo-12L/tokenizer.bin");
    }

    /** TinyStories-656K (Hugging Face safetensors), converted with the Java converter to F32. */
    public static Path tinyStories656K() throws IOException {
        Path out = ProjectPaths.modelCache().resolve("tinystories656k-f32.gguf");
        if (!Files.isRegularFile(out)) {
            Path shared = ProjectPaths.shared().orElseThrow(() -> new IOException(
                    "../shared is not present, so TinyStories-656K cannot be converted"));
            Files.createDirectories(out.getParent());
            HfToGguf.convert(shared.resolve("models/tinystories656k"), out, OutputType.F32,
                    new java.io.PrintStream(java.io.OutputStream.nullOutputStream()));
        }
        return out;
    }

    private static Path llama2c(String name, String weights, String vocab) throws IOException {
        Path out = ProjectPaths.modelCache().resolve(name);
        if (Files.isRegularFile(out)) {
            return out;
        }
        Path shared = ProjectPaths.shared().orElseThrow(() -> new IOException(
                "../shared is not present, so the default model " + name + " cannot be made; pass --model FILE.gguf"));
        Path tool = ProjectPaths.nativeBuild().resolve("bin/llama-convert-llama2c-to-ggml");
        if (!Files.isExecutable(tool)) {
            throw new IOException(tool + " not found: build the native tree first (see README)");
        }
        Files.createDirectories(out.getParent());
        Path tmp = Files.createTempFile(out.getParent(), name, ".tmp");
        Path log = out.getParent().resolve(name + ".convert.log");
        Process p = new ProcessBuilder(List.of(tool.toString(),
                "--copy-vocab-from-model", shared.resolve(vocab).toString(),
                "--llama2c-model", shared.resolve(weights).toString(),
                "--llama2c-output-model", tmp.toString()))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            if (p.waitFor() != 0) {
                throw new IOException("converting " + weights + " failed; see " + log);
            }
        } catch (InterruptedException e) {
            p.destroy();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while converting " + weights, e);
        }
        Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return out;
    }
}

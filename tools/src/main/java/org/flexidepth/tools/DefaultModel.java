package org.flexidepth.tools;

import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufValue;
import org.flexidepth.gguf.GgufWriter;
import org.flexidepth.tools.convert.HfToGguf;
import org.flexidepth.tools.convert.OutputType;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The real models the examples and tests use by default, converted from {@code ../shared} to GGUF
 * on first use with the fork's own tools and cached under {@code build/models}.
 * <p>
 * Upstream's llama2.c converter writes a context length of 128 whatever the checkpoint was trained
 * with, and special-token ids of -1 (as 4294967295) for tokens the vocabulary lacks; every load
 * then warns that the context exceeds the training context and that the tokens are bad. The
 * conversion here writes the checkpoint's own context length (its header's {@code seq_len}) and
 * leaves out the ids that name no token.
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

    /**
     * flexi-demo-12L fine-tuned for direct multi-token decoding elsewhere (llama2.c format), with
     * the split its config.json gives as the runtime's keys (native/include/llama-dmtd.h):
     * dmtd.thinking_layers and dmtd.cycle (the tau it was trained at).
     */
    public static Path dmtdDemo12L() throws IOException {
        Path converted = llama2c("dmtd-demo-12L-base.gguf", "models/dmtd-demo-12L/model.bin", "models/dmtd-demo-12L/tokenizer.bin");
        Path out = ProjectPaths.modelCache().resolve("dmtd-demo-12L.gguf");
        if (Files.isRegularFile(out) && Files.getLastModifiedTime(out).compareTo(Files.getLastModifiedTime(converted)) >= 0) {
            return out;
        }
        Path config = ProjectPaths.shared().orElseThrow(() -> new IOException("../shared is not present"))
                .resolve("models/dmtd-demo-12L/config.json");
        java.util.Map<?, ?> dmtd = (java.util.Map<?, ?>) ((java.util.Map<?, ?>) JsonFiles.parse(Files.readString(config))).get("dmtd");
        if (dmtd == null) {
            throw new IOException(config + " has no \"dmtd\" section");
        }
        Path tmp = Files.createTempFile(out.getParent(), "dmtd-demo-12L", ".tmp");
        try (GgufReader r = GgufReader.open(converted)) {
            GgufWriter.copyOf(r)
                    .putUInt32("dmtd.thinking_layers", ((Number) dmtd.get("thinking_layers")).longValue())
                    .putUInt32("dmtd.cycle", ((Number) dmtd.get("trained_tau")).longValue())
                    .write(tmp);
        }
        Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return out;
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
        Path shared = ProjectPaths.shared().orElse(null);
        if (shared == null) {
            if (Files.isRegularFile(out)) {
                return out;
            }
            throw new IOException("../shared is not present, so the default model " + name + " cannot be made; pass --model FILE.gguf");
        }
        int trainedContext = llama2cContextLength(shared.resolve(weights));
        if (Files.isRegularFile(out) && isTrueTo(out, trainedContext)) {
            return out; // an earlier conversion with the checkpoint's context length
        }
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
        Path fixed = Files.createTempFile(out.getParent(), name, ".tmp");
        try {
            writeTrueMetadata(tmp, fixed, trainedContext);
        } finally {
            Files.delete(tmp);
        }
        Files.move(fixed, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        return out;
    }

    /** The {@code seq_len} of a llama2.c checkpoint: the seventh int32 of its header. */
    static int llama2cContextLength(Path checkpoint) throws IOException {
        try (InputStream in = Files.newInputStream(checkpoint)) {
            byte[] header = in.readNBytes(28);
            if (header.length < 28) {
                throw new IOException(checkpoint + " is too short for a llama2.c header");
            }
            return ByteBuffer.wrap(header).order(ByteOrder.LITTLE_ENDIAN).getInt(24);
        }
    }

    private static boolean isTrueTo(Path gguf, int contextLength) throws IOException {
        GgufFile f = GgufReader.readHeader(gguf);
        String arch = f.architecture().orElse("llama");
        return f.get(arch + ".context_length").map(v -> v.asLong() == contextLength).orElse(false);
    }

    /** Copies {@code in} with the checkpoint's context length and without ids that name no token. */
    static void writeTrueMetadata(Path in, Path out, int contextLength) throws IOException {
        try (GgufReader r = GgufReader.open(in)) {
            GgufFile f = r.file();
            String arch = f.architecture().orElseThrow(() -> new IOException(in + " has no general.architecture"));
            long vocab = f.get("tokenizer.ggml.tokens").map(v -> (long) v.asList().size())
                    .orElseThrow(() -> new IOException(in + " has no vocabulary"));
            GgufWriter w = GgufWriter.copyOf(r).put(arch + ".context_length", GgufValue.uint32(contextLength));
            f.metadata().forEach((key, value) -> {
                if (key.startsWith("tokenizer.ggml.") && key.endsWith("_token_id") && value.type().isInteger() && (value.asLong() < 0 || value.asLong() >= vocab)) {
                    w.remove(key);
                }
            });
            w.write(out);
        }
    }
}

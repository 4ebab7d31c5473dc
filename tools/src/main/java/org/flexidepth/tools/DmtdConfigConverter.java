package org.flexidepth.tools;

import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.gguf.GgufWriter;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Set;

/**
 * Adds the split of a released DMTD checkpoint (e.g. {@code xuan-luo/DMTD-Qwen3-4B}) to the GGUF
 * that upstream's {@code convert_hf_to_gguf.py} made of its weights: the checkpoint's
 * {@code config.json} keys {@code num_thinking_layers}, {@code num_decoding_layers},
 * {@code mtp_horizon} (and {@code num_encoding_layers}, which must be 0) become the runtime's
 * {@code dmtd.thinking_layers} and {@code dmtd.cycle} (native/include/llama-dmtd.h). The weights
 * are copied as they are.
 *
 * <pre>
 * DmtdConfigConverter &lt;model.gguf&gt; &lt;out.gguf&gt; --config &lt;config.json&gt;
 * </pre>
 */
public final class DmtdConfigConverter {
    static final String USAGE = """
            usage: DmtdConfigConverter <model.gguf> <out.gguf> --config <config.json>
              <model.gguf>  the checkpoint converted by upstream's convert_hf_to_gguf.py (qwen3 or llama)
              --config      the checkpoint's config.json, with num_thinking_layers, num_decoding_layers, mtp_horizon
            """;

    private DmtdConfigConverter() {
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintStream(System.err, true, StandardCharsets.UTF_8)));
    }

    /** The program, minus the exit: 0 on success, 1 for a failed conversion, 2 for a usage error. */
    static int run(String[] args, PrintStream err) {
        ConverterArguments a;
        try {
            a = ConverterArguments.parse(args, Set.of("--config"));
            if (!a.options().containsKey("--config")) {
                throw new IllegalArgumentException("--config is required");
            }
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                err.println("error: " + e.getMessage());
            }
            err.print(USAGE);
            return 2;
        }
        try {
            convert(a.in(), Path.of(a.options().get("--config")), a.out());
            err.println("wrote " + a.out());
            return 0;
        } catch (NoSuchFileException e) {
            err.println("error: no such file: " + e.getMessage());
        } catch (IOException | RuntimeException e) {
            err.println("error: " + (e.getMessage() == null ? e.toString() : e.getMessage()).replaceAll("\\R+", " "));
        }
        return 1;
    }

    /** Writes {@code out}: {@code model} with the split of {@code config}, checked against its layers. */
    public static void convert(Path model, Path config, Path out) throws IOException {
        Map<String, Object> c = JsonFiles.readObject(config);
        int thinking = count(c, "num_thinking_layers", config), decoding = count(c, "num_decoding_layers", config);
        int horizon = count(c, "mtp_horizon", config);
        int encoding = c.containsKey("num_encoding_layers") ? count(c, "num_encoding_layers", config) : 0;
        if (encoding != 0) {
            throw new IOException(config + ": num_encoding_layers is " + encoding + "; the runtime supports 0 (no encoding layers)");
        }
        if (horizon < 1 || thinking < 1 || decoding < 1) {
            throw new IOException(config + ": mtp_horizon, num_thinking_layers and num_decoding_layers must be >= 1");
        }
        Path tmp = Files.createTempFile(out.toAbsolutePath().getParent(), out.getFileName().toString(), ".tmp");
        try (GgufReader r = GgufReader.open(model)) {
            GgufFile f = r.file();
            String arch = f.architecture().orElseThrow(() -> new IOException(model + " has no general.architecture"));
            if (!arch.equals("qwen3") && !arch.equals("llama")) {
                throw new IOException(model + " is a '" + arch + "' model; DMTD runs qwen3 and llama");
            }
            int layers = f.require(arch + ".block_count").asInt();
            if (thinking + decoding != layers) {
                throw new IOException(config + " splits " + (thinking + decoding) + " layers (" + thinking + " thinking, " + decoding
                        + " decoding); " + model.getFileName() + " has " + layers + ": not the checkpoint this config belongs to");
            }
            GgufWriter.copyOf(r).putUInt32("dmtd.thinking_layers", thinking).putUInt32("dmtd.cycle", horizon).write(tmp);
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    private static int count(Map<String, Object> c, String key, Path config) throws IOException {
        if (!(c.get(key) instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
            throw new IOException(config + " has no integer " + key + " (is it a DMTD checkpoint's config?)");
        }
        return n.intValue();
    }
}

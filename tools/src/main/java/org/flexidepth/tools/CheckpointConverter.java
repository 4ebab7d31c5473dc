package org.flexidepth.tools;

import org.flexidepth.tools.ConverterArguments;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.tools.JsonFiles;
import org.flexidepth.gguf.SafetensorsReader;
import org.flexidepth.gguf.SafetensorsTensor;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Converts a released FlexiDepth checkpoint (Hugging Face layout: {@code config.json} and
 * safetensors, single-file or sharded with {@code model.safetensors.index.json}) to a plug-in GGUF
 * ({@link PluginFormat}). Only the router and adapter tensors are read; the base model's weights
 * in the checkpoint are left untouched, since the plug-in applies to any GGUF of that base model.
 *
 * <pre>
 * CheckpointConverter &lt;checkpoint-dir&gt; &lt;out.gguf&gt; [--adapter-type f32|f16|q8_0] [--threshold 0.5]
 * </pre>
 */
public final class CheckpointConverter {
    static final String USAGE = """
            usage: CheckpointConverter <checkpoint-dir> <out.gguf> [--adapter-type f32|f16|q8_0] [--threshold T]
              <checkpoint-dir>  a FlexiDepth checkpoint: config.json and model.safetensors (or shards
                                with model.safetensors.index.json), F32, F16 or BF16
              --adapter-type    how the adapter matrices are stored (default f16); routers stay f32
              --threshold       the plug-in's default tau (default 0.5, as in the release)
            """;

    /**
     * The checkpoint's per-layer tensors and the plug-in role each plays. The adapter's
     * {@code down_proj} is its input projection and {@code up_proj} its output projection, the
     * reverse of a normal MLP's naming (SPEC.md section 3), hence the crossed names below.
     */
    private enum Part {
        ROUTER_DOWN("router.router_enc"),
        ROUTER_NORM("router.router_norm"),
        ROUTER_UP("router.router_dec"),
        ROUTER_HEAD("router.router_head"),
        ADAPTER_GATE("router_proj.gate_proj"),
        ADAPTER_UP("router_proj.down_proj"),
        ADAPTER_DOWN("router_proj.up_proj");

        final String module;

        Part(String module) {
            this.module = module;
        }

        String tensorName(int layer) {
            return "model.layers." + layer + "." + module + ".weight";
        }

        /** PyTorch order ([out, in]), which the data keeps: it is ggml's [in, out]. */
        long[] expectedShape(long d, long dr, long da) {
            return switch (this) {
                case ROUTER_DOWN -> new long[] {dr, d};
                case ROUTER_NORM -> new long[] {dr};
                case ROUTER_UP -> new long[] {d, dr};
                case ROUTER_HEAD -> new long[] {1, d};
                case ADAPTER_GATE, ADAPTER_UP -> new long[] {da, d};
                case ADAPTER_DOWN -> new long[] {d, da};
            };
        }
    }

    /** Anything under a layer's router or adapter module, so that unknown extras are refused, not dropped. */
    private static final Pattern PLUGIN_TENSOR = Pattern.compile("model\\.layers\\.(\\d+)\\.((?:router|router_proj)\\..+)");

    /** What the plug-in's metadata needs from {@code config.json}. */
    private record Config(String architecture, int blockCount, int hiddenSize) {
    }

    private record Options(Path in, Path out, GgmlType adapterType, float threshold) {
    }

    private CheckpointConverter() {
    }

    public static void main(String[] args) {
        System.exit(run(args, new PrintStream(System.err, true, StandardCharsets.UTF_8)));
    }

    /** The program, minus the exit: 0 on success, 1 for a failed conversion, 2 for a usage error. */
    static int run(String[] args, PrintStream err) {
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            if (!e.getMessage().isEmpty()) {
                err.println("error: " + e.getMessage());
            }
            err.print(USAGE);
            return 2;
        }
        try {
            convert(o.in(), o.out(), o.adapterType(), o.threshold(), err);
            return 0;
        } catch (NoSuchFileException e) {
            err.println("error: no such file: " + e.getMessage());
        } catch (IOException | RuntimeException e) {
            String m = e.getMessage() == null ? e.toString() : e.getMessage();
            err.println("error: " + m.replaceAll("\\R+", " "));
        }
        return 1;
    }

    private static Options parse(String[] args) {
        ConverterArguments a = ConverterArguments.parse(args, Set.of("--adapter-type", "--threshold"));
        GgmlType adapterType = adapterType(a.options().getOrDefault("--adapter-type", "f16"));
        float threshold = 0.5f;
        if (a.options().containsKey("--threshold")) {
            String v = a.options().get("--threshold");
            try {
                threshold = Float.parseFloat(v);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--threshold " + v + " is not a number");
            }
            if (!Float.isFinite(threshold)) {
                throw new IllegalArgumentException("--threshold must be finite");
            }
        }
        return new Options(a.in(), a.out(), adapterType, threshold);
    }

    private static GgmlType adapterType(String s) {
        return switch (s.toLowerCase(Locale.ROOT)) {
            case "f32" -> GgmlType.F32;
            case "f16" -> GgmlType.F16;
            case "q8_0" -> GgmlType.Q8_0;
            default -> throw new IllegalArgumentException("unknown --adapter-type " + s + " (f32, f16 or q8_0)");
        };
    }

    /**
     * Converts the checkpoint in {@code checkpointDir} to the plug-in {@code out}, reporting what it
     * found to {@code log}. Everything is checked before anything is written, and the file appears
     * only once complete ({@link org.flexidepth.gguf.GgufWriter#write} writes beside it and renames).
     *
     * @param adapterType F32, F16 or Q8_0 (Q8_0 needs the hidden and adapter sizes to be multiples of 32)
     * @throws IOException for an unreadable checkpoint or one that is not a FlexiDepth checkpoint
     */
    public static void convert(Path checkpointDir, Path out, GgmlType adapterType, float threshold, PrintStream log)
            throws IOException {
        if (adapterType != GgmlType.F32 && adapterType != GgmlType.F16 && adapterType != GgmlType.Q8_0) {
            throw new IllegalArgumentException("adapter type must be F32, F16 or Q8_0, not " + adapterType);
        }
        if (!Float.isFinite(threshold)) {
            throw new IllegalArgumentException("threshold must be finite, not " + threshold);
        }
        if (!Files.isDirectory(checkpointDir)) {
            throw new IOException(checkpointDir + " is not a directory");
        }
        Config config = readConfig(checkpointDir.resolve("config.json"));
        try (SafetensorsReader st = SafetensorsReader.open(checkpointDir)) {
            SortedMap<Integer, Map<Part, SafetensorsTensor>> byLayer = pluginTensors(st, config);
            long d = config.hiddenSize();
            Map<Part, SafetensorsTensor> first = byLayer.get(byLayer.firstKey());
            int dr = sizeFrom(first.get(Part.ROUTER_DOWN), d, "router");
            int da = sizeFrom(first.get(Part.ADAPTER_GATE), d, "adapter");
            checkShapes(byLayer, d, dr, da, byLayer.firstKey());
            if (adapterType == GgmlType.Q8_0 && (d % 32 != 0 || da % 32 != 0)) {
                // Q8_0 blocks of 32 run along rows of d (gate, up) and of d_a (down)
                throw new IOException("--adapter-type q8_0 needs hidden_size (" + d + ") and the adapter size (" + da
                        + ") to be multiples of 32; use f16");
            }

            List<Integer> routed = List.copyOf(byLayer.keySet());
            List<PluginFormat.Layer> layers = new ArrayList<>();
            for (Map<Part, SafetensorsTensor> t : byLayer.values()) {
                layers.add(new PluginFormat.Layer(
                        t.get(Part.ROUTER_DOWN).asTensorData(), t.get(Part.ROUTER_NORM).asTensorData(),
                        t.get(Part.ROUTER_UP).asTensorData(), t.get(Part.ROUTER_HEAD).asTensorData(), null,
                        t.get(Part.ADAPTER_GATE).asTensorData(), t.get(Part.ADAPTER_UP).asTensorData(),
                        t.get(Part.ADAPTER_DOWN).asTensorData()));
            }
            log.printf("%s: %s base, %d layers, hidden size %d; routed layers %s (%d), router size %d, adapter size %d%n",
                    checkpointDir, config.architecture(), config.blockCount(), d, ranges(routed), routed.size(), dr, da);
            log.printf("writing %s (routers f32, adapters %s, threshold %s)%n", out, adapterType.ggmlName(), threshold);
            PluginFormat.write(out, new PluginFormat.Header(config.architecture(), config.blockCount(), config.hiddenSize(),
                    routed, dr, da, threshold), layers, adapterType);
            log.printf("done: %.1f MiB%n", Files.size(out) / (1024.0 * 1024.0));
        }
    }

    private static Config readConfig(Path configJson) throws IOException {
        Map<String, Object> c = JsonFiles.readObject(configJson);
        if (!(c.get("model_type") instanceof String modelType)) {
            throw new IOException(configJson + ": model_type is missing");
        }
        // the plug-in names the base architecture the way llama.cpp names it, which is what the loader compares
        String arch = switch (modelType) {
            case "ddllama", "llama", "mistral" -> "llama";
            case "qwen2" -> "qwen2";
            case "qwen3" -> "qwen3";
            default -> throw new IOException(configJson + ": model_type " + modelType
                    + " is not supported (ddllama, llama, mistral, qwen2 or qwen3)");
        };
        return new Config(arch, positive(c, "num_hidden_layers", configJson), positive(c, "hidden_size", configJson));
    }

    private static int positive(Map<String, Object> c, String key, Path configJson) throws IOException {
        if (!(c.get(key) instanceof Long v) || v <= 0 || v > Integer.MAX_VALUE) {
            throw new IOException(configJson + ": " + key + " is missing or not a positive integer");
        }
        return v.intValue();
    }

    /** The router and adapter tensors by layer, each layer complete; no data is read. */
    private static SortedMap<Integer, Map<Part, SafetensorsTensor>> pluginTensors(SafetensorsReader st, Config config)
            throws IOException {
        SortedMap<Integer, Map<Part, SafetensorsTensor>> byLayer = new TreeMap<>();
        for (Map.Entry<String, SafetensorsTensor> e : st.tensors().entrySet()) {
            Matcher m = PLUGIN_TENSOR.matcher(e.getKey());
            if (!m.matches()) {
                continue;
            }
            Part part = null;
            for (Part p : Part.values()) {
                if (m.group(2).equals(p.module + ".weight")) {
                    part = p;
                }
            }
            if (part == null) {
                // e.g. a bias: the plug-in has no place for it, and dropping it would change the routes
                throw new IOException("unexpected tensor " + e.getKey() + ": FlexiDepth routers and adapters have only "
                        + Arrays.stream(Part.values()).map(p -> p.module + ".weight").toList());
            }
            int layer;
            try {
                layer = Integer.parseInt(m.group(1));
            } catch (NumberFormatException ex) {
                throw new IOException("tensor " + e.getKey() + " has an impossible layer number");
            }
            if (layer >= config.blockCount()) {
                throw new IOException(e.getKey() + " is beyond num_hidden_layers = " + config.blockCount());
            }
            byLayer.computeIfAbsent(layer, k -> new EnumMap<>(Part.class)).put(part, e.getValue());
        }
        if (byLayer.isEmpty()) {
            throw new IOException("no FlexiDepth router tensors (model.layers.N.router.router_enc.weight and the like) in "
                    + st.files() + ": not a FlexiDepth checkpoint");
        }
        for (Map.Entry<Integer, Map<Part, SafetensorsTensor>> e : byLayer.entrySet()) {
            List<String> missing = new ArrayList<>();
            for (Part p : Part.values()) {
                if (!e.getValue().containsKey(p)) {
                    missing.add(p.tensorName(e.getKey()));
                }
            }
            if (!missing.isEmpty()) {
                throw new IOException("routed layer " + e.getKey() + " lacks " + String.join(", ", missing));
            }
        }
        return byLayer;
    }

    /** d_r or d_a: the output size of a [size, d] matrix. */
    private static int sizeFrom(SafetensorsTensor t, long d, String what) throws IOException {
        long[] s = t.shape();
        if (s.length != 2 || s[1] != d || s[0] <= 0 || s[0] > Integer.MAX_VALUE) {
            throw new IOException(t.name() + " has shape " + Arrays.toString(s) + ", expected [" + what + " size, " + d
                    + "] (hidden_size " + d + ")");
        }
        return (int) s[0];
    }

    private static void checkShapes(Map<Integer, Map<Part, SafetensorsTensor>> byLayer, long d, int dr, int da,
                                    int sizesFrom) throws IOException {
        for (Map<Part, SafetensorsTensor> layer : byLayer.values()) {
            for (Map.Entry<Part, SafetensorsTensor> e : layer.entrySet()) {
                SafetensorsTensor t = e.getValue();
                long[] expected = e.getKey().expectedShape(d, dr, da);
                if (!Arrays.equals(t.shape(), expected)) {
                    throw new IOException(t.name() + " has shape " + Arrays.toString(t.shape()) + ", expected "
                            + Arrays.toString(expected) + " (hidden_size " + d + ", router size " + dr + " and adapter size "
                            + da + " as in layer " + sizesFrom + ")");
                }
                if (!t.dtype().isReadableAsFloat()) {
                    throw new IOException(t.name() + " is " + t.dtype() + "; only F32, F16, BF16 and F64 are supported");
                }
            }
        }
    }

    /** "16-31" rather than sixteen numbers. */
    private static String ranges(List<Integer> sorted) {
        List<String> parts = new ArrayList<>();
        for (int i = 0; i < sorted.size(); ) {
            int j = i;
            while (j + 1 < sorted.size() && sorted.get(j + 1) == sorted.get(j) + 1) {
                j++;
            }
            parts.add(i == j ? String.valueOf(sorted.get(i)) : sorted.get(i) + "-" + sorted.get(j));
            i = j + 1;
        }
        return String.join(",", parts);
    }
}

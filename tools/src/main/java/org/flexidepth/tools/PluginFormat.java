package org.flexidepth.tools;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufWriter;
import org.flexidepth.gguf.TensorData;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * The FlexiDepth plug-in file format (native/README.md): metadata keys and tensor names, and a
 * writer for it. Routers are always written F32 (routing decisions flip under quantization);
 * the adapter may be F32, F16, Q8_0 or Q4_0 (the runtime stores float adapters in the base
 * model's quantized type when it loads them, so files rarely need the last two).
 */
public final class PluginFormat {
    public static final String ROUTER_DOWN = "fd_router_down", ROUTER_NORM = "fd_router_norm", ROUTER_UP = "fd_router_up",
            ROUTER_HEAD = "fd_router_head", ADAPTER_GATE = "fd_adapter_gate", ADAPTER_UP = "fd_adapter_up",
            ADAPTER_DOWN = "fd_adapter_down";

    private PluginFormat() {
    }

    /** The metadata key of the skip family, and its values (native/README.md); absent means {@code layer}. */
    public static final String SKIP_KEY = "flexidepth.skip";
    public static final List<String> SKIP_FAMILIES = List.of("layer", "layer_no_kv", "attention", "ffn");

    /** Whether a skip family replaces the FFN of skipped tokens with an adapter ({@code attention} has none). */
    public static boolean hasAdapter(String skip) {
        return !skip.equals("attention");
    }

    /** Shape of a plug-in: which base model, which layers, and what a skipped token leaves out. */
    public record Header(String architecture, int blockCount, int embeddingLength, List<Integer> routedLayers,
                         int routerSize, int adapterSize, float threshold, String skip) {
        public Header {
            routedLayers = List.copyOf(routedLayers);
            if (!SKIP_FAMILIES.contains(skip)) {
                throw new IllegalArgumentException("skip family must be one of " + SKIP_FAMILIES + ", not " + skip);
            }
            if (hasAdapter(skip) != (adapterSize > 0)) {
                throw new IllegalArgumentException("a '" + skip + "' plug-in has " + (hasAdapter(skip) ? "an adapter" : "no adapter (size 0)"));
            }
        }

        /** A FlexiDepth plug-in (skip family {@code layer}). */
        public Header(String architecture, int blockCount, int embeddingLength, List<Integer> routedLayers,
                      int routerSize, int adapterSize, float threshold) {
            this(architecture, blockCount, embeddingLength, routedLayers, routerSize, adapterSize, threshold, "layer");
        }
    }

    /**
     * One routed layer's tensors, PyTorch orientation ([out, in] row-major), which is ggml's
     * [in, out]. {@code headBias} is null for checkpoints (which have none).
     */
    public record Layer(TensorData routerDown, TensorData routerNorm, TensorData routerUp, TensorData routerHead,
                        Float headBias, TensorData adapterGate, TensorData adapterUp, TensorData adapterDown) {
    }

    public static String tensorName(int layer, String kind) {
        return "blk." + layer + "." + kind + ".weight";
    }

    /** Writes a plug-in; {@code layers.get(i)} belongs to {@code header.routedLayers().get(i)}. */
    public static void write(Path out, Header h, List<Layer> layers, GgmlType adapterType) throws IOException {
        if (layers.size() != h.routedLayers().size()) {
            throw new IllegalArgumentException(layers.size() + " layers for " + h.routedLayers().size() + " routed layers");
        }
        if (adapterType != GgmlType.F32 && adapterType != GgmlType.F16 && adapterType != GgmlType.Q8_0 && adapterType != GgmlType.Q4_0) {
            throw new IllegalArgumentException("adapter type must be F32, F16, Q8_0 or Q4_0, not " + adapterType);
        }
        long d = h.embeddingLength(), dr = h.routerSize(), da = h.adapterSize();
        GgufWriter w = new GgufWriter()
                .putString("general.type", "adapter")
                .putString("adapter.type", "flexidepth")
                .putString("general.architecture", h.architecture())
                .putUInt32("flexidepth.block_count", h.blockCount())
                .putUInt32("flexidepth.embedding_length", h.embeddingLength())
                .putInt32Array("flexidepth.routed_layers", h.routedLayers().stream().mapToInt(Integer::intValue).toArray())
                .putUInt32("flexidepth.router_size", h.routerSize())
                .putUInt32("flexidepth.adapter_size", h.adapterSize())
                .putFloat32("flexidepth.threshold", h.threshold());
        if (!h.skip().equals("layer")) {
            w.putString(SKIP_KEY, h.skip());
        }
        for (int i = 0; i < layers.size(); i++) {
            int il = h.routedLayers().get(i);
            Layer l = layers.get(i);
            w.addTensor(tensorName(il, ROUTER_DOWN), GgmlType.F32, new long[] {d, dr}, l.routerDown());
            w.addTensor(tensorName(il, ROUTER_NORM), GgmlType.F32, new long[] {dr}, l.routerNorm());
            w.addTensor(tensorName(il, ROUTER_UP), GgmlType.F32, new long[] {dr, d}, l.routerUp());
            w.addTensor(tensorName(il, ROUTER_HEAD), GgmlType.F32, new long[] {d, 1}, l.routerHead());
            if (l.headBias() != null) {
                w.addTensor("blk." + il + "." + ROUTER_HEAD + ".bias", GgmlType.F32, new long[] {1}, TensorData.of(new float[] {l.headBias()}));
            }
            if (hasAdapter(h.skip())) {
                w.addTensor(tensorName(il, ADAPTER_GATE), adapterType, new long[] {d, da}, l.adapterGate());
                w.addTensor(tensorName(il, ADAPTER_UP), adapterType, new long[] {d, da}, l.adapterUp());
                w.addTensor(tensorName(il, ADAPTER_DOWN), adapterType, new long[] {da, d}, l.adapterDown());
            }
        }
        w.write(out);
    }
}

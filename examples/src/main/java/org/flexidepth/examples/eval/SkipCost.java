package org.flexidepth.examples.eval;

import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;
import org.flexidepth.llama.SkipFamily;

import java.io.IOException;
import java.nio.file.Path;

/**
 * What a skipped routed layer still costs, as a share of the layer's weights (the cost of a
 * decoded token on a CPU): skip families leave out different parts of a layer, so layers per
 * token alone do not compare them. Layer equivalents per token = used + (layers - used) * share.
 *
 * @param attentionQo Wq and Wo, per layer
 * @param attentionKv Wk and Wv, per layer (every family computes them for every token)
 * @param ffn         the SwiGLU FFN's three matrices, per layer
 */
record SkipCost(long attentionQo, long attentionKv, long ffn) {
    static SkipCost of(Path model) throws IOException {
        try (GgufReader r = GgufReader.open(model)) {
            GgufFile f = r.file();
            String a = f.require("general.architecture").asString() + ".";
            long d = f.require(a + "embedding_length").asInt(), ff = f.require(a + "feed_forward_length").asInt();
            long heads = f.require(a + "attention.head_count").asInt(), kvHeads = f.require(a + "attention.head_count_kv").asInt();
            return new SkipCost(2 * d * d, 2 * d * (d / heads * kvHeads), 3 * d * ff);
        }
    }

    long layer() {
        return attentionQo + attentionKv + ffn;
    }

    /** The share of a layer's weights a token that skips it reads in this family, with an adapter of this width. */
    double skippedShare(SkipFamily family, int adapterSize, int embd) {
        long adapter = family.hasAdapter() ? 3L * embd * adapterSize : 0;
        long read = switch (family) {
            case LAYER, LAYER_NO_KV -> attentionKv + adapter;
            case ATTENTION -> attentionKv + ffn;
            case FFN -> attentionQo + attentionKv + adapter;
        };
        return read / (double) layer();
    }

    double layerEquivalents(double layersUsed, int layers, SkipFamily family, int adapterSize, int embd) {
        return layersUsed + (layers - layersUsed) * skippedShare(family, adapterSize, embd);
    }
}

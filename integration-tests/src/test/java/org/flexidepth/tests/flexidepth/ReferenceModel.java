package org.flexidepth.tests.flexidepth;

import org.flexidepth.tools.PluginFormat;

import org.flexidepth.gguf.GgufFile;
import org.flexidepth.gguf.GgufReader;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An independent forward pass of a Llama model with a FlexiDepth plug-in, written from SPEC.md
 * section 2 with plain loops in double precision: no ggml, no llama.cpp. It keeps one KV cache per
 * sequence; every position writes K and V in every layer, skipped or not (unless the plug-in's skip
 * family is {@code layer_no_kv} or the ablation {@code dropSkippedKv} is asked for, which leave
 * skipped tokens out of later attention).
 *
 * <p>Skip families (native/README.md): {@code layer} skips attention and FFN, the adapter replacing
 * the FFN; {@code layer_no_kv} the same with skipped tokens' K/V unseen; {@code attention} skips
 * attention only, {@code h = x + run g Attn}, and always runs the FFN; {@code ffn} always runs
 * attention and skips the FFN as {@code layer} does.
 */
final class ReferenceModel {
    final int layers, d, heads, kvHeads, headDim, ff, vocab;
    final float eps, ropeBase;
    final boolean neoxRope;                  // qwen2/qwen3 rotate (i, i + headDim/2), llama adjacent pairs
    final float[][] bq, bk, bv, qNorm, kNorm; // qwen2 biases, qwen3 per-head norms (null where absent)
    final float[] tokEmbd, outNorm, output;
    final float[][] attnNorm, wq, wk, wv, wo, ffnNorm, wGate, wUp, wDown;
    // plug-in, indexed by model layer (null = unrouted)
    final float[][] rDown, rNorm, rUp, rHead, aGate, aUp, aDown;
    final float[] rBias;
    final int routerSize, adapterSize;
    final String skip; // the plug-in's skip family

    /** A decision the caller imposes where the reference's own gate is too close to tau to trust. */
    interface DecisionOverride {
        Boolean decide(int seq, int pos, int layer, double gate);
    }

    ReferenceModel(Path model, Path plugin) throws IOException {
        try (GgufReader r = GgufReader.open(model)) {
            GgufFile f = r.file();
            String a = f.require("general.architecture").asString() + ".";
            neoxRope = !a.equals("llama.");
            layers = f.require(a + "block_count").asInt();
            d = f.require(a + "embedding_length").asInt();
            heads = f.require(a + "attention.head_count").asInt();
            kvHeads = f.require(a + "attention.head_count_kv").asInt();
            ff = f.require(a + "feed_forward_length").asInt();
            eps = (float) f.require(a + "attention.layer_norm_rms_epsilon").asDouble();
            // llama.cpp's default where the file has none (upstream's llama2.c converter writes none)
            ropeBase = (float) (double) f.get(a + "rope.freq_base").map(v -> v.asDouble()).orElse(10000.0);
            bq = new float[layers][]; bk = new float[layers][]; bv = new float[layers][];
            qNorm = new float[layers][]; kNorm = new float[layers][];
            headDim = d / heads;
            tokEmbd = r.readFloats("token_embd.weight");
            vocab = tokEmbd.length / d;
            outNorm = r.readFloats("output_norm.weight");
            output = r.readFloats("output.weight");
            attnNorm = new float[layers][]; wq = new float[layers][]; wk = new float[layers][]; wv = new float[layers][];
            wo = new float[layers][]; ffnNorm = new float[layers][]; wGate = new float[layers][]; wUp = new float[layers][];
            wDown = new float[layers][];
            for (int l = 0; l < layers; l++) {
                String p = "blk." + l + ".";
                attnNorm[l] = r.readFloats(p + "attn_norm.weight");
                wq[l] = r.readFloats(p + "attn_q.weight");
                wk[l] = r.readFloats(p + "attn_k.weight");
                wv[l] = r.readFloats(p + "attn_v.weight");
                wo[l] = r.readFloats(p + "attn_output.weight");
                ffnNorm[l] = r.readFloats(p + "ffn_norm.weight");
                wGate[l] = r.readFloats(p + "ffn_gate.weight");
                wUp[l] = r.readFloats(p + "ffn_up.weight");
                wDown[l] = r.readFloats(p + "ffn_down.weight");
                bq[l] = optional(r, p + "attn_q.bias");
                bk[l] = optional(r, p + "attn_k.bias");
                bv[l] = optional(r, p + "attn_v.bias");
                qNorm[l] = optional(r, p + "attn_q_norm.weight");
                kNorm[l] = optional(r, p + "attn_k_norm.weight");
            }
        }
        rDown = new float[layers][]; rNorm = new float[layers][]; rUp = new float[layers][]; rHead = new float[layers][];
        aGate = new float[layers][]; aUp = new float[layers][]; aDown = new float[layers][];
        rBias = new float[layers];
        if (plugin == null) {
            routerSize = adapterSize = 0;
            skip = "layer";
            return;
        }
        try (GgufReader r = GgufReader.open(plugin)) {
            GgufFile f = r.file();
            skip = f.get("flexidepth.skip").map(v -> v.asString()).orElse("layer");
            routerSize = f.require("flexidepth.router_size").asInt();
            adapterSize = f.require("flexidepth.adapter_size").asInt();
            for (int l : f.require("flexidepth.routed_layers").asIntArray()) {
                rDown[l] = r.readFloats(PluginFormat.tensorName(l, PluginFormat.ROUTER_DOWN));
                rNorm[l] = r.readFloats(PluginFormat.tensorName(l, PluginFormat.ROUTER_NORM));
                rUp[l] = r.readFloats(PluginFormat.tensorName(l, PluginFormat.ROUTER_UP));
                rHead[l] = r.readFloats(PluginFormat.tensorName(l, PluginFormat.ROUTER_HEAD));
                String bias = "blk." + l + "." + PluginFormat.ROUTER_HEAD + ".bias";
                rBias[l] = f.tensor(bias).isPresent() ? r.readFloats(bias)[0] : 0f;
                if (!skip.equals("attention")) {
                    aGate[l] = r.readFloats(PluginFormat.tensorName(l, PluginFormat.ADAPTER_GATE));
                    aUp[l] = r.readFloats(PluginFormat.tensorName(l, PluginFormat.ADAPTER_UP));
                    aDown[l] = r.readFloats(PluginFormat.tensorName(l, PluginFormat.ADAPTER_DOWN));
                }
            }
        }
    }

    /**
     * Adds a LoRA adapter to the weights, as its definition says: W + scale * (alpha / rank) * B A,
     * merged here in double precision (the fork adds scale * B (A x) to W x instead).
     */
    ReferenceModel withLora(Path lora, float scale) throws IOException {
        try (GgufReader r = GgufReader.open(lora)) {
            float alpha = (float) r.file().require("adapter.lora.alpha").asDouble();
            for (int l = 0; l < layers; l++) {
                String p = "blk." + l + ".";
                merge(r, p + "attn_q.weight", wq[l], alpha, scale);
                merge(r, p + "attn_k.weight", wk[l], alpha, scale);
                merge(r, p + "attn_v.weight", wv[l], alpha, scale);
                merge(r, p + "attn_output.weight", wo[l], alpha, scale);
                merge(r, p + "ffn_gate.weight", wGate[l], alpha, scale);
                merge(r, p + "ffn_up.weight", wUp[l], alpha, scale);
                merge(r, p + "ffn_down.weight", wDown[l], alpha, scale);
            }
        }
        return this;
    }

    private static void merge(GgufReader r, String weight, float[] w, float alpha, float scale) throws IOException {
        if (r.file().tensor(weight + ".lora_a").isEmpty()) {
            return;
        }
        float[] a = r.readFloats(weight + ".lora_a"), b = r.readFloats(weight + ".lora_b");
        int in = (int) r.file().tensor(weight + ".lora_a").orElseThrow().shape()[0];
        int rank = a.length / in, out = b.length / rank;
        if ((long) in * out != w.length) {
            throw new IllegalArgumentException(weight + ": LoRA shape does not match the weight");
        }
        double s = alpha != 0 ? scale * alpha / rank : scale;
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                double delta = 0;
                for (int k = 0; k < rank; k++) {
                    delta += (double) b[o * rank + k] * a[k * in + i];
                }
                w[o * in + i] = (float) (w[o * in + i] + s * delta);
            }
        }
    }

    private static float[] optional(GgufReader r, String name) throws IOException {
        return r.file().tensor(name).isPresent() ? r.readFloats(name) : null;
    }

    /** Q, K or V of one position: projection, optional bias, optional per-head RMSNorm, RoPE. */
    private double[] project(float[] w, float[] bias, float[] headNorm, double[] z, int nHeads, int pos, boolean rotate) {
        double[] y = matVec(w, z, d, nHeads * headDim);
        if (bias != null) {
            for (int i = 0; i < y.length; i++) {
                y[i] += bias[i];
            }
        }
        if (headNorm != null) {
            for (int h = 0; h < nHeads; h++) {
                double[] head = java.util.Arrays.copyOfRange(y, h * headDim, (h + 1) * headDim);
                System.arraycopy(rmsNorm(head, headNorm), 0, y, h * headDim, headDim);
            }
        }
        return rotate ? rope(y, nHeads, pos) : y;
    }

    /** Output of one position. gates/ran are per routed layer, ascending. */
    record Step(double[] logits, List<Double> gates, List<Boolean> ran) {
    }

    /** One sequence's KV cache and options. */
    final class Sequence {
        final int id;
        final float tau;
        final boolean dropSkippedKv;
        final DecisionOverride override;
        final List<double[]>[] keys, values;
        final List<Boolean>[] visible;
        final List<Integer> positions = new ArrayList<>(); // of the cache entries, as llama.cpp's seq_rm/seq_add see them
        int pos;

        @SuppressWarnings("unchecked")
        Sequence(int id, float tau, boolean dropSkippedKv, DecisionOverride override) {
            this.id = id;
            this.tau = tau;
            this.dropSkippedKv = dropSkippedKv || skip.equals("layer_no_kv");
            this.override = override;
            keys = new List[layers];
            values = new List[layers];
            visible = new List[layers];
            for (int l = 0; l < layers; l++) {
                keys[l] = new ArrayList<>();
                values[l] = new ArrayList<>();
                visible[l] = new ArrayList<>();
            }
        }

        /** Feeds one token at the next position and returns its logits and routing. */
        Step step(int token) {
            double[] x = embedding(token);
            List<Double> gates = new ArrayList<>();
            List<Boolean> ran = new ArrayList<>();
            for (int l = 0; l < layers; l++) {
                x = layer(l, x, gates, ran);
            }
            pos++;
            return new Step(logits(x), gates, ran);
        }

        /**
         * A DMTD cycle head (dmtd/SPEC.md section 4) at the next position: the thinking layers
         * [0, thinking) first run for {@code pending}, the tokens of the positions just before it
         * that only the decoding layers have seen (their thinking K/V are written now, once), then
         * for the head, whose decoding layers get its thinking output plus its embedding.
         */
        Step dmtdHead(List<Integer> pending, int token, int thinking) {
            dmtdRefill(pending, thinking);
            double[] e = embedding(token), x = e;
            for (int l = 0; l < thinking; l++) {
                x = layer(l, x, new ArrayList<>(), new ArrayList<>());
            }
            for (int i = 0; i < d; i++) {
                x[i] += e[i];
            }
            for (int l = thinking; l < layers; l++) {
                x = layer(l, x, new ArrayList<>(), new ArrayList<>());
            }
            pos++;
            return new Step(logits(x), List.of(), List.of());
        }

        /**
         * The thinking layers [0, thinking) for {@code pending}, the tokens of the positions just
         * before the next one that only the decoding layers have seen: their thinking K/V are
         * written now, once. A cycle head does this first, and so does a prompt that follows them.
         */
        void dmtdRefill(List<Integer> pending, int thinking) {
            int next = pos;
            for (int j = 0; j < pending.size(); j++) {
                pos = next - pending.size() + j;
                double[] x = embedding(pending.get(j));
                for (int l = 0; l < thinking; l++) {
                    x = layer(l, x, new ArrayList<>(), new ArrayList<>());
                }
            }
            pos = next;
        }

        /**
         * DMTD's training objective at the next position (dmtd/SPEC.md section 3, cyclical masking):
         * the thinking layers, then the decoding layers fed the thinking output plus the embedding
         * at a cycle head (position a multiple of {@code cycle}) and the embedding alone elsewhere.
         */
        Step dmtdMasked(int token, int thinking, int cycle) {
            double[] e = embedding(token), x = e;
            for (int l = 0; l < thinking; l++) {
                x = layer(l, x, new ArrayList<>(), new ArrayList<>());
            }
            double[] d = pos % cycle == 0 ? x : new double[this.dim()];
            for (int i = 0; i < d.length; i++) {
                d[i] += e[i];
            }
            for (int l = thinking; l < layers; l++) {
                d = layer(l, d, new ArrayList<>(), new ArrayList<>());
            }
            pos++;
            return new Step(logits(d), List.of(), List.of());
        }

        private int dim() {
            return d;
        }

        /** A DMTD decoding-only step: the embedding through the decoding layers [thinking, layers). */
        Step dmtdDecodingOnly(int token, int thinking) {
            double[] x = embedding(token);
            for (int l = thinking; l < layers; l++) {
                x = layer(l, x, new ArrayList<>(), new ArrayList<>());
            }
            pos++;
            return new Step(logits(x), List.of(), List.of());
        }

        private double[] embedding(int token) {
            double[] x = new double[d];
            for (int i = 0; i < d; i++) {
                x[i] = tokEmbd[token * d + i];
            }
            return x;
        }

        private double[] logits(double[] x) {
            return matVec(output, rmsNorm(x, outNorm), d, vocab);
        }

        /** Layer l for the token at position {@code pos}, writing its K and V there; routing goes to gates and ran. */
        private double[] layer(int l, double[] x, List<Double> gates, List<Boolean> ran) {
            double[] z = rmsNorm(x, attnNorm[l]);
            boolean run = true;
            double g = 1;
            if (rDown[l] != null) {
                double[] r = rmsNorm(matVec(rDown[l], z, d, routerSize), rNorm[l]);
                for (int i = 0; i < r.length; i++) {
                    r[i] = Math.tanh(r[i]);
                }
                double logit = dot(rHead[l], matVec(rUp[l], r, routerSize, d), 0, d) + rBias[l];
                g = 1 / (1 + Math.exp(-logit));
                Boolean imposed = override == null ? null : override.decide(id, pos, l, g);
                run = imposed != null ? imposed : g > tau;
                gates.add(g);
                ran.add(run);
            }
            // K and V for every position, run or not
            double[] k = project(wk[l], bk[l], kNorm[l], z, kvHeads, pos, true);
            double[] v = project(wv[l], bv[l], null, z, kvHeads, pos, false);
            keys[l].add(k);
            values[l].add(v);
            visible[l].add(run || !dropSkippedKv);
            if (l == 0) {
                positions.add(pos);
            }
            boolean routed = rDown[l] != null;
            boolean runAttention = run || (routed && skip.equals("ffn"));
            boolean runFfn = run || (routed && skip.equals("attention"));
            double[] h = x.clone();
            if (runAttention) {
                double[] q = project(wq[l], bq[l], qNorm[l], z, heads, pos, true);
                double[] attn = attention(l, q);
                double[] o = matVec(wo[l], attn, d, d);
                double scale = routed && skip.equals("attention") ? g : 1; // MindSkip: x + g Attn
                for (int i = 0; i < d; i++) {
                    h[i] += scale * o[i];
                }
            }
            double[] u = rmsNorm(h, ffnNorm[l]);
            double[] y = h.clone();
            if (routed && skip.equals("attention")) {
                double[] f = swiglu(u, wGate[l], wUp[l], wDown[l], ff);
                for (int i = 0; i < d; i++) {
                    y[i] += f[i];
                }
            } else if (runFfn) {
                double[] f = swiglu(u, wGate[l], wUp[l], wDown[l], ff);
                for (int i = 0; i < d; i++) {
                    y[i] += g * f[i];
                }
            } else {
                double[] a = swiglu(u, aGate[l], aUp[l], aDown[l], adapterSize);
                for (int i = 0; i < d; i++) {
                    y[i] += (1 - g) * a[i];
                }
            }
            return y;
        }

        /** Forgets the cache entries at positions [p0, p1) (p1 < 0: to the end), as llama_memory_seq_rm. */
        void remove(int p0, int p1) {
            for (int i = positions.size() - 1; i >= 0; i--) {
                int p = positions.get(i);
                if (p >= p0 && (p1 < 0 || p < p1)) {
                    positions.remove(i);
                    for (int l = 0; l < layers; l++) {
                        keys[l].remove(i);
                        values[l].remove(i);
                        visible[l].remove(i);
                    }
                }
            }
            if (p1 < 0 || p1 >= pos) {
                pos = p0;
            }
        }

        /**
         * Moves the entries at positions >= p0 by delta, as llama_memory_seq_add: their keys are
         * rotated by delta more (RoPE composes), values and everything computed from them stay.
         */
        void shift(int p0, int delta) {
            for (int i = 0; i < positions.size(); i++) {
                if (positions.get(i) >= p0) {
                    positions.set(i, positions.get(i) + delta);
                    for (int l = 0; l < layers; l++) {
                        keys[l].set(i, rope(keys[l].get(i), kvHeads, delta));
                    }
                }
            }
            pos += delta;
        }

        private double[] attention(int l, double[] q) {
            double[] out = new double[d];
            int group = heads / kvHeads;
            int n = keys[l].size();
            for (int h = 0; h < heads; h++) {
                int kh = h / group;
                double[] scores = new double[n];
                double max = Double.NEGATIVE_INFINITY;
                for (int t = 0; t < n; t++) {
                    if (!visible[l].get(t) && t != n - 1) {
                        scores[t] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double s = 0;
                    for (int i = 0; i < headDim; i++) {
                        s += q[h * headDim + i] * keys[l].get(t)[kh * headDim + i];
                    }
                    scores[t] = s / Math.sqrt(headDim);
                    max = Math.max(max, scores[t]);
                }
                double sum = 0;
                for (int t = 0; t < n; t++) {
                    scores[t] = Math.exp(scores[t] - max);
                    sum += scores[t];
                }
                for (int t = 0; t < n; t++) {
                    double w = scores[t] / sum;
                    for (int i = 0; i < headDim; i++) {
                        out[h * headDim + i] += w * values[l].get(t)[kh * headDim + i];
                    }
                }
            }
            return out;
        }
    }

    Sequence sequence(int id, float tau, boolean dropSkippedKv, DecisionOverride override) {
        return new Sequence(id, tau, dropSkippedKv, override);
    }

    double[] rmsNorm(double[] x, float[] w) {
        double ss = 0;
        for (double v : x) {
            ss += v * v;
        }
        double scale = 1 / Math.sqrt(ss / x.length + eps);
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * scale * w[i];
        }
        return out;
    }

    /** ggml weight [in, out] (PyTorch [out, in] row-major) times x. */
    static double[] matVec(float[] w, double[] x, int in, int out) {
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            y[o] = dot(w, x, o * in, in);
        }
        return y;
    }

    static double dot(float[] w, double[] x, int off, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += w[off + i] * x[i];
        }
        return s;
    }

    static double[] swiglu(double[] u, float[] gate, float[] up, float[] down, int hidden) {
        int dim = u.length;
        double[] a = matVec(gate, u, dim, hidden), b = matVec(up, u, dim, hidden);
        for (int i = 0; i < hidden; i++) {
            a[i] = a[i] / (1 + Math.exp(-a[i])) * b[i];
        }
        return matVec(down, a, hidden, dim);
    }

    /**
     * RoPE: pair j (of headDim/2) rotated by pos * base^(-2j/headDim); the pair is (2j, 2j+1) for
     * llama and (j, j + headDim/2) for the NeoX layout of qwen2/qwen3.
     */
    double[] rope(double[] x, int nHeads, int pos) {
        double[] out = x.clone();
        int half = headDim / 2;
        for (int h = 0; h < nHeads; h++) {
            for (int j = 0; j < half; j++) {
                double theta = pos * Math.pow(ropeBase, -2.0 * j / headDim);
                double c = Math.cos(theta), s = Math.sin(theta);
                int i0 = h * headDim + (neoxRope ? j : 2 * j), i1 = i0 + (neoxRope ? half : 1);
                double a = x[i0], b = x[i1];
                out[i0] = a * c - b * s;
                out[i1] = a * s + b * c;
            }
        }
        return out;
    }
}

package org.flexidepth.tools;

import org.flexidepth.gguf.GgmlType;
import org.flexidepth.gguf.GgufWriter;
import org.flexidepth.gguf.TensorData;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Random-weight Llama models and FlexiDepth plug-ins of any shape, deterministic in their seed:
 * fixtures for tests and benchmarks. Every tensor draws from its own generator (seed and name),
 * so weights do not depend on the order of writing and large tensors stream in chunks.
 *
 * <pre>
 * RandomFixtures model  OUT.gguf  [--layers 4 --embd 64 --heads 4 --kv-heads 2 --ff 128 --vocab 320 --ctx 512 --seed 1 --type f32 --arch llama]
 * RandomFixtures plugin OUT.gguf  [same shape options] [--routed 2,3 --router 16 --adapter 32 --tau 0.5 --bias B --skip FAMILY]
 * </pre>
 */
public final class RandomFixtures {
    /** The shape of a Llama model. */
    public record Shape(int layers, int embd, int heads, int kvHeads, int ff, int vocab, int ctx) {
        public Shape {
            if (embd % heads != 0 || heads % kvHeads != 0 || (embd / heads) % 2 != 0) {
                throw new IllegalArgumentException("embd must split into heads of even size, heads into kv heads");
            }
            if (vocab < 259 + 4) {
                throw new IllegalArgumentException("vocab must hold 3 specials, 256 byte tokens and some words");
            }
        }

        public int headDim() {
            return embd / heads;
        }

        public int kvDim() {
            return kvHeads * headDim();
        }
    }

    public static final float RMS_EPS = 1e-5f;
    public static final float ROPE_BASE = 10000f;

    private RandomFixtures() {
    }

    private static long seedOf(long seed, String name) {
        return seed * 0x9E3779B97F4A7C15L ^ name.hashCode() * 0xC2B2AE3D27D4EB4FL;
    }

    /** Gaussian values with the given mean and standard deviation, streamed in chunks. */
    static TensorData gaussian(long seed, String name, long count, double mean, double std) {
        return sink -> {
            SplittableRandom r = new SplittableRandom(seedOf(seed, name));
            float[] chunk = new float[(int) Math.min(count, 1 << 16)];
            for (long done = 0; done < count; ) {
                int n = (int) Math.min(chunk.length, count - done);
                for (int i = 0; i < n; i++) {
                    chunk[i] = (float) (mean + std * gaussian(r));
                }
                sink.accept(chunk, 0, n);
                done += n;
            }
        };
    }

    private static double gaussian(SplittableRandom r) {
        // Box-Muller: SplittableRandom has no nextGaussian before JDK 17's RandomGenerator default, and
        // we want the same numbers on every JDK.
        double u1 = r.nextDouble(), u2 = r.nextDouble();
        return Math.sqrt(-2 * Math.log(1 - u1)) * Math.cos(2 * Math.PI * u2);
    }

    /** The architectures FlexiDepth supports, as random fixtures. */
    public static final List<String> ARCHITECTURES = List.of("llama", "qwen2", "qwen3");

    /** Writes a random Llama model with a small SentencePiece vocabulary (specials, bytes, words). */
    public static void writeModel(Path out, Shape s, long seed, GgmlType type) throws IOException {
        writeModel(out, "llama", s, seed, type);
    }

    /**
     * Writes a random model of architecture {@code arch}: "llama", "qwen2" (adds Q/K/V biases,
     * NeoX RoPE) or "qwen3" (adds per-head Q/K RMSNorm, NeoX RoPE).
     */
    public static void writeModel(Path out, String arch, Shape s, long seed, GgmlType type) throws IOException {
        writeModel(out, arch, s, seed, type, List.of());
    }

    /**
     * Writes a random reranker: a qwen3 model with upstream's classification head
     * ({@code cls.output.weight}, one row per label, softmax over them) and rank pooling, whose
     * vocabulary appends EOS to a text, as the query and document separator of llama-server's
     * rerank prompts.
     */
    public static void writeReranker(Path out, Shape s, long seed, List<String> labels) throws IOException {
        if (labels.size() < 2) {
            throw new IllegalArgumentException("a qwen3 rank head takes a softmax over at least two labels");
        }
        writeModel(out, "qwen3", s, seed, GgmlType.F32, labels);
    }

    private static void writeModel(Path out, String arch, Shape s, long seed, GgmlType type, List<String> rankLabels) throws IOException {
        if (!ARCHITECTURES.contains(arch)) {
            throw new IllegalArgumentException("architecture must be one of " + ARCHITECTURES);
        }
        List<String> tokens = new ArrayList<>(List.of("<unk>", "<s>", "</s>"));
        List<Integer> types = new ArrayList<>(List.of(2, 3, 3));
        for (int b = 0; b < 256; b++) {
            tokens.add(String.format("<0x%02X>", b));
            types.add(6);
        }
        for (int i = tokens.size(); i < s.vocab(); i++) {
            tokens.add("\u2581w" + i);
            types.add(1);
        }
        float[] scores = new float[s.vocab()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = -i;
        }
        String a = arch + ".";
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", arch)
                .putString("general.name", "random-" + arch + "-" + s.layers() + "L-" + s.embd() + "d-seed" + seed)
                .putUInt32("general.file_type", type == GgmlType.F32 ? 0 : type == GgmlType.F16 ? 1 : 7)
                .putUInt32(a + "context_length", s.ctx())
                .putUInt32(a + "embedding_length", s.embd())
                .putUInt32(a + "block_count", s.layers())
                .putUInt32(a + "feed_forward_length", s.ff())
                .putUInt32(a + "attention.head_count", s.heads())
                .putUInt32(a + "attention.head_count_kv", s.kvHeads())
                .putUInt32(a + "rope.dimension_count", s.headDim())
                .putFloat32(a + "rope.freq_base", ROPE_BASE)
                .putFloat32(a + "attention.layer_norm_rms_epsilon", RMS_EPS)
                .putUInt32(a + "vocab_size", s.vocab())
                .putString("tokenizer.ggml.model", "llama")
                .putStringArray("tokenizer.ggml.tokens", tokens)
                .putFloat32Array("tokenizer.ggml.scores", scores)
                .putInt32Array("tokenizer.ggml.token_type", types.stream().mapToInt(Integer::intValue).toArray())
                .putUInt32("tokenizer.ggml.bos_token_id", 1)
                .putUInt32("tokenizer.ggml.eos_token_id", 2)
                .putUInt32("tokenizer.ggml.unknown_token_id", 0)
                .putBool("tokenizer.ggml.add_bos_token", true);
        long d = s.embd();
        if (!rankLabels.isEmpty()) {
            w.putStringArray(a + "classifier.output_labels", rankLabels)
                    .putUInt32(a + "pooling_type", 4) // LLAMA_POOLING_TYPE_RANK
                    .putBool("tokenizer.ggml.add_eos_token", true);
            w.addTensor("cls.output.weight", GgmlType.F32, new long[] {d, rankLabels.size()},
                    gaussian(seed, "cls_out", d * rankLabels.size(), 0, 1 / Math.sqrt(d)));
        }
        w.addTensor("token_embd.weight", type, new long[] {d, s.vocab()}, gaussian(seed, "token_embd", d * s.vocab(), 0, 1));
        w.addTensor("output_norm.weight", GgmlType.F32, new long[] {d}, gaussian(seed, "output_norm", d, 1, 0.1));
        w.addTensor("output.weight", type, new long[] {d, s.vocab()}, gaussian(seed, "output", d * s.vocab(), 0, 1 / Math.sqrt(d)));
        for (int l = 0; l < s.layers(); l++) {
            String p = "blk." + l + ".";
            w.addTensor(p + "attn_norm.weight", GgmlType.F32, new long[] {d}, gaussian(seed, p + "attn_norm", d, 1, 0.1));
            w.addTensor(p + "attn_q.weight", type, new long[] {d, d}, gaussian(seed, p + "q", d * d, 0, 1 / Math.sqrt(d)));
            w.addTensor(p + "attn_k.weight", type, new long[] {d, s.kvDim()}, gaussian(seed, p + "k", d * s.kvDim(), 0, 1 / Math.sqrt(d)));
            w.addTensor(p + "attn_v.weight", type, new long[] {d, s.kvDim()}, gaussian(seed, p + "v", d * s.kvDim(), 0, 1 / Math.sqrt(d)));
            w.addTensor(p + "attn_output.weight", type, new long[] {d, d}, gaussian(seed, p + "o", d * d, 0, 1 / Math.sqrt(d)));
            if (arch.equals("qwen2")) {
                w.addTensor(p + "attn_q.bias", GgmlType.F32, new long[] {d}, gaussian(seed, p + "qb", d, 0, 0.1));
                w.addTensor(p + "attn_k.bias", GgmlType.F32, new long[] {s.kvDim()}, gaussian(seed, p + "kb", s.kvDim(), 0, 0.1));
                w.addTensor(p + "attn_v.bias", GgmlType.F32, new long[] {s.kvDim()}, gaussian(seed, p + "vb", s.kvDim(), 0, 0.1));
            }
            if (arch.equals("qwen3")) {
                w.addTensor(p + "attn_q_norm.weight", GgmlType.F32, new long[] {s.headDim()}, gaussian(seed, p + "qn", s.headDim(), 1, 0.1));
                w.addTensor(p + "attn_k_norm.weight", GgmlType.F32, new long[] {s.headDim()}, gaussian(seed, p + "kn", s.headDim(), 1, 0.1));
            }
            w.addTensor(p + "ffn_norm.weight", GgmlType.F32, new long[] {d}, gaussian(seed, p + "ffn_norm", d, 1, 0.1));
            w.addTensor(p + "ffn_gate.weight", type, new long[] {d, s.ff()}, gaussian(seed, p + "gate", d * s.ff(), 0, 1 / Math.sqrt(d)));
            w.addTensor(p + "ffn_up.weight", type, new long[] {d, s.ff()}, gaussian(seed, p + "up", d * s.ff(), 0, 1 / Math.sqrt(d)));
            w.addTensor(p + "ffn_down.weight", type, new long[] {s.ff(), d}, gaussian(seed, p + "down", s.ff() * d, 0, 1 / Math.sqrt(s.ff())));
        }
        w.write(out);
    }

    /**
     * Writes a random plug-in for a model of shape {@code s}. Random routers put g on both sides
     * of 0.5 for different tokens, so decisions are mixed; {@code headBias} (null for none) shifts
     * every logit: +1e4 makes every token run with g = 1, -1e4 makes every token skip with g = 0.
     */
    public static void writePlugin(Path out, Shape s, long seed, List<Integer> routed, int routerSize, int adapterSize,
                                   float tau, Float headBias, GgmlType adapterType) throws IOException {
        writePlugin(out, "llama", s, seed, routed, routerSize, adapterSize, tau, headBias, adapterType);
    }

    /** Like {@link #writePlugin(Path, Shape, long, List, int, int, float, Float, GgmlType)} for a base of architecture {@code arch}. */
    public static void writePlugin(Path out, String arch, Shape s, long seed, List<Integer> routed, int routerSize, int adapterSize,
                                   float tau, Float headBias, GgmlType adapterType) throws IOException {
        writePlugin(out, arch, "layer", s, seed, routed, routerSize, adapterSize, tau, headBias, adapterType);
    }

    /**
     * Like {@link #writePlugin(Path, String, Shape, long, List, int, int, float, Float, GgmlType)} for
     * a skip family (PluginFormat.SKIP_FAMILIES); a family without an adapter ignores adapterSize.
     * The routers are the same as the {@code layer} plug-in's of the same seed.
     */
    public static void writePlugin(Path out, String arch, String skip, Shape s, long seed, List<Integer> routed, int routerSize,
                                   int adapterSize, float tau, Float headBias, GgmlType adapterType) throws IOException {
        adapterSize = PluginFormat.hasAdapter(skip) ? adapterSize : 0;
        long d = s.embd(), dr = routerSize, da = adapterSize;
        List<PluginFormat.Layer> layers = new ArrayList<>();
        for (int il : routed) {
            String p = "fd." + il + ".";
            layers.add(new PluginFormat.Layer(
                    gaussian(seed, p + "down", d * dr, 0, 1 / Math.sqrt(d)),
                    gaussian(seed, p + "norm", dr, 1, 0.1),
                    gaussian(seed, p + "up", dr * d, 0, 1 / Math.sqrt(dr)),
                    // sized so that logits spread over a few units around 0
                    gaussian(seed, p + "head", d, 0, 4 / Math.sqrt(d)),
                    headBias,
                    gaussian(seed, p + "agate", d * da, 0, 1 / Math.sqrt(d)),
                    gaussian(seed, p + "aup", d * da, 0, 1 / Math.sqrt(d)),
                    gaussian(seed, p + "adown", da * d, 0, 1 / Math.sqrt(da))));
        }
        PluginFormat.write(out, new PluginFormat.Header(arch, s.layers(), s.embd(), routed, routerSize, adapterSize, tau, skip),
                layers, adapterType);
    }

    /** The tensors a random LoRA adapter adapts in every layer (all the products FlexiDepth masks, plus K and V). */
    public static final List<String> LORA_TARGETS = List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down");

    /**
     * Writes a random LoRA adapter in llama.cpp's format (general.type adapter, adapter.type lora,
     * adapter.lora.alpha; per target {@code blk.L.T.weight.lora_a} [in, rank] and {@code .lora_b}
     * [rank, out]) for a llama model of shape {@code s}.
     */
    public static void writeLora(Path out, Shape s, long seed, int rank, float alpha) throws IOException {
        GgufWriter w = new GgufWriter()
                .putString("general.architecture", "llama")
                .putString("general.type", "adapter")
                .putString("adapter.type", "lora")
                .putFloat32("adapter.lora.alpha", alpha);
        long d = s.embd();
        for (int l = 0; l < s.layers(); l++) {
            for (String t : LORA_TARGETS) {
                long in = t.equals("ffn_down") ? s.ff() : d;
                long outDim = switch (t) {
                    case "attn_k", "attn_v" -> s.kvDim();
                    case "ffn_gate", "ffn_up" -> s.ff();
                    default -> d;
                };
                String name = "blk." + l + "." + t + ".weight";
                w.addTensor(name + ".lora_a", GgmlType.F32, new long[] {in, rank}, gaussian(seed, name + ".a", in * rank, 0, 1 / Math.sqrt(in)));
                w.addTensor(name + ".lora_b", GgmlType.F32, new long[] {rank, outDim}, gaussian(seed, name + ".b", rank * outDim, 0, 0.5 / Math.sqrt(rank)));
            }
        }
        w.write(out);
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 2 || !(args[0].equals("model") || args[0].equals("plugin"))) {
            System.err.println("usage: RandomFixtures model|plugin OUT.gguf [--layers N --embd D --heads H --kv-heads K --ff F "
                    + "--vocab V --ctx C --seed S --type f32|f16|q8_0 --arch llama|qwen2|qwen3] [--routed 2,3 --router R --adapter A --tau T --bias B "
                    + "--skip layer|layer_no_kv|attention|ffn]");
            System.exit(2);
        }
        java.util.Map<String, String> o = new java.util.HashMap<>();
        for (int i = 2; i + 1 < args.length; i += 2) {
            o.put(args[i], args[i + 1]);
        }
        Shape s = new Shape(i(o, "--layers", 4), i(o, "--embd", 64), i(o, "--heads", 4), i(o, "--kv-heads", 2),
                i(o, "--ff", 128), i(o, "--vocab", 320), i(o, "--ctx", 512));
        long seed = Long.parseLong(o.getOrDefault("--seed", "1"));
        GgmlType type = GgmlType.valueOf(o.getOrDefault("--type", "f32").toUpperCase());
        Path out = Path.of(args[1]);
        String arch = o.getOrDefault("--arch", "llama");
        if (args[0].equals("model")) {
            writeModel(out, arch, s, seed, type);
        } else {
            List<Integer> routed = o.containsKey("--routed")
                    ? java.util.Arrays.stream(o.get("--routed").split(",")).map(Integer::parseInt).toList()
                    : java.util.stream.IntStream.range(s.layers() / 2, s.layers()).boxed().toList();
            writePlugin(out, arch, o.getOrDefault("--skip", "layer"), s, seed, routed, i(o, "--router", Math.max(1, s.embd() / 16)), i(o, "--adapter", Math.max(1, s.ff() / 16)),
                    Float.parseFloat(o.getOrDefault("--tau", "0.5")),
                    o.containsKey("--bias") ? Float.valueOf(o.get("--bias")) : null, type);
        }
        System.out.println("wrote " + out);
    }

    private static int i(java.util.Map<String, String> o, String key, int dflt) {
        return o.containsKey(key) ? Integer.parseInt(o.get(key)) : dflt;
    }
}

package org.flexidepth.tools.convert;

import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Hugging Face Llama tensor names to llama.cpp's GGUF names, and which need the RoPE row permutation. */
final class LlamaTensorNames {
    private LlamaTensorNames() {
    }

    /** Which head count the RoPE permutation groups the rows by, if any. */
    enum RopePermute { NONE, QUERY_HEADS, KV_HEADS }

    /**
     * @param gguf    the GGUF name
     * @param block   the layer, or -1 for tensors outside the layers
     * @param order   position within its layer (or overall), for a stable, conventional file order
     * @param permute whether and how to undo HF's RoPE row order
     */
    record Target(String gguf, int block, int order, RopePermute permute) {
    }

    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)\\.(weight|bias)");

    /** Per-layer HF suffixes in file order, with their GGUF names. */
    private static final List<String[]> LAYER_TENSORS = List.of(
            new String[] {"input_layernorm", "attn_norm"},
            new String[] {"self_attn.q_proj", "attn_q"},
            new String[] {"self_attn.k_proj", "attn_k"},
            new String[] {"self_attn.v_proj", "attn_v"},
            new String[] {"self_attn.o_proj", "attn_output"},
            new String[] {"post_attention_layernorm", "ffn_norm"},
            new String[] {"mlp.gate_proj", "ffn_gate"},
            new String[] {"mlp.up_proj", "ffn_up"},
            new String[] {"mlp.down_proj", "ffn_down"});

    /** The GGUF name of the weights every layer must have, for checking a checkpoint is complete. */
    static List<String> requiredLayerWeights(int block) {
        return LAYER_TENSORS.stream().map(t -> "blk." + block + "." + t[1] + ".weight").toList();
    }

    /**
     * The target of an HF tensor; empty for tensors llama.cpp does without (precomputed RoPE
     * frequencies of old checkpoints).
     *
     * @throws IllegalArgumentException for names this converter does not know
     */
    static Optional<Target> map(String hf) {
        switch (hf) {
            case "model.embed_tokens.weight":
                return Optional.of(new Target("token_embd.weight", -1, 0, RopePermute.NONE));
            case "model.norm.weight":
                return Optional.of(new Target("output_norm.weight", Integer.MAX_VALUE, 0, RopePermute.NONE));
            case "lm_head.weight":
                return Optional.of(new Target("output.weight", Integer.MAX_VALUE, 1, RopePermute.NONE));
            default:
                break;
        }
        if (hf.endsWith(".rotary_emb.inv_freq")) {
            return Optional.empty();
        }
        Matcher m = LAYER.matcher(hf);
        if (m.matches()) {
            int block = Integer.parseInt(m.group(1));
            for (int i = 0; i < LAYER_TENSORS.size(); i++) {
                String[] t = LAYER_TENSORS.get(i);
                if (t[0].equals(m.group(2))) {
                    RopePermute p = t[1].equals("attn_q") ? RopePermute.QUERY_HEADS
                            : t[1].equals("attn_k") ? RopePermute.KV_HEADS : RopePermute.NONE;
                    String kind = m.group(3);
                    return Optional.of(new Target("blk." + block + "." + t[1] + "." + kind, block,
                            2 * i + (kind.equals("bias") ? 1 : 0), p));
                }
            }
        }
        throw new IllegalArgumentException("unknown Llama tensor " + hf);
    }
}

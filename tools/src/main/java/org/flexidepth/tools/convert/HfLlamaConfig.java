package org.flexidepth.tools.convert;

import org.flexidepth.tools.JsonFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The hyperparameters of a Hugging Face Llama checkpoint ({@code config.json}) that the GGUF
 * metadata needs.
 *
 * @param headDim     per-head size: {@code head_dim} if given, else {@code hidden_size / num_attention_heads}
 * @param ropeScaling the linear RoPE scaling factor, if the checkpoint uses one
 */
record HfLlamaConfig(String architecture, int hiddenSize, int intermediateSize, int numLayers,
                     int numHeads, int numKvHeads, int headDim, boolean headDimExplicit, int vocabSize,
                     int contextLength, double rmsNormEps, double ropeTheta, Optional<Double> ropeScaling,
                     boolean tieWordEmbeddings, Optional<Integer> bosTokenId, Optional<Integer> eosTokenId) {

    /** The architectures whose tensors and RoPE layout are Llama's. */
    static final List<String> SUPPORTED = List.of("LlamaForCausalLM", "LLaMAForCausalLM");

    static HfLlamaConfig read(Path configJson) throws IOException {
        Map<String, Object> c = JsonFiles.readObject(configJson);
        String arch = c.get("architectures") instanceof List<?> l && !l.isEmpty() ? String.valueOf(l.getFirst()) : "?";
        if (!SUPPORTED.contains(arch)) {
            throw new IOException(configJson + ": architecture " + arch + " is not supported, only " + SUPPORTED);
        }
        int hidden = integer(c, "hidden_size");
        int heads = integer(c, "num_attention_heads");
        int kvHeads = c.containsKey("num_key_value_heads") && c.get("num_key_value_heads") != null
                ? integer(c, "num_key_value_heads") : heads;
        boolean explicitHeadDim = c.get("head_dim") != null;
        int headDim = explicitHeadDim ? integer(c, "head_dim") : hidden / heads;

        // transformers 5 moved rope_theta and the scaling into rope_parameters
        Map<?, ?> rope = c.get("rope_parameters") instanceof Map<?, ?> rp ? rp
                : c.get("rope_scaling") instanceof Map<?, ?> rs ? rs : Map.of();
        double theta = number(c.containsKey("rope_theta") ? c : rope, "rope_theta", 10000.0);
        Optional<Double> scaling = Optional.empty();
        Object type = rope.get("rope_type") != null ? rope.get("rope_type") : rope.get("type");
        if (type != null && !"default".equals(type)) {
            if (!"linear".equals(type)) {
                throw new IOException(configJson + ": RoPE scaling type " + type + " is not supported (only linear)");
            }
            scaling = Optional.of(number(rope, "factor", 1.0));
        }

        return new HfLlamaConfig(arch, hidden, integer(c, "intermediate_size"), integer(c, "num_hidden_layers"),
                heads, kvHeads, headDim, explicitHeadDim, integer(c, "vocab_size"),
                c.get("max_position_embeddings") != null ? integer(c, "max_position_embeddings") : 2048,
                number(c, "rms_norm_eps", 1e-6), theta, scaling,
                Boolean.TRUE.equals(c.get("tie_word_embeddings")),
                optionalInteger(c, "bos_token_id"), optionalInteger(c, "eos_token_id"));
    }

    private static int integer(Map<?, ?> c, String key) throws IOException {
        if (!(c.get(key) instanceof Long v)) {
            throw new IOException("config.json: " + key + " is missing or not an integer");
        }
        return Math.toIntExact(v);
    }

    private static Optional<Integer> optionalInteger(Map<?, ?> c, String key) {
        return c.get(key) instanceof Long v ? Optional.of(Math.toIntExact(v)) : Optional.empty();
    }

    private static double number(Map<?, ?> c, String key, double dflt) {
        return c.get(key) instanceof Number n ? n.doubleValue() : dflt;
    }
}

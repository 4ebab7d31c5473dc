#pragma once

// FlexiDepth inside llama.cpp's graphs: the per-context binding of a plug-in, the graph input
// that carries tau and collects gates, and the three hooks that a model's layer loop calls
// (after the pre-attention norm, on the attention output, on the FFN output).
// Used by the patched src/models/{llama,qwen2,qwen3}.cpp, src/llama-graph.cpp and src/llama-context.cpp.

#include "flexidepth-plugin.h"
#include "kv-visibility.h"

#include "llama-graph.h"

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

struct llama_context;

// The plug-in a context computes with (llama_context::flexidepth), how, and the routing of its
// last decode. Graph params carry it, as they carry the context's LoRA adapters.
struct llama_flexidepth_binding {
    llama_context * ctx = nullptr;
    llama_adapter_flexidepth * fd = nullptr;
    float tau = 0.5f;
    bool collect = true;
    llama_flexidepth_mode mode = LLAMA_FLEXIDEPTH_MODE_AUTO;
    int32_t masked_max_tokens = 16;
    // per routed layer: -1 lets the router decide, 1 forces run, 0 forces skip
    std::vector<int8_t> forced;
    // what the graphs compute: a fresh id whenever that changes (plug-in, mode), so that a graph
    // built for one is never reused for another
    uint64_t graph_id = 0;

    llama_flexidepth_binding(llama_context * ctx, llama_adapter_flexidepth * fd);
    // takes the context off the plug-in's users, if this is still its binding there
    ~llama_flexidepth_binding();

    // a LAYER_NO_KV plug-in's cell visibility, shared with the next binding of the same plug-in
    // on this context (a new threshold or mode must not make skipped tokens visible again)
    std::shared_ptr<llama_kv_visibility> visibility;

    // per-sequence thresholds (llama_set_flexidepth_threshold_seq): a server's requests share
    // one context, and each may ask for its own tau; the others use tau
    std::unordered_map<llama_seq_id, float> seq_tau;

    float tau_of(llama_seq_id seq) const {
        auto it = seq_tau.find(seq);
        return it == seq_tau.end() ? tau : it->second;
    }

    // the threshold routed layer r compares g with for a token whose sequence's tau is t:
    // that, or one that g in [0, 1] always (-1) or never (2) exceeds, which is how forcing works
    // without changing the graph
    float threshold_of(size_t r, float t) const {
        return forced[r] < 0 ? t : (forced[r] > 0 ? -1.0f : 2.0f);
    }

    // training (llama-flexidepth-train): graphs are built densely and, with alpha > 0, add
    // alpha * L_skip as an extra loss term; the gates of the last graph built
    bool training = false;
    float alpha = 0.0f;
    std::vector<ggml_tensor *> train_gates;

    // routing of the last decode, layer-major in the order ubatches computed the tokens:
    // gates[r * capacity + u]; slot[t] is the u of batch token t (ubatches may reorder tokens,
    // as split_equal does for several sequences)
    int32_t capacity = 0;
    int32_t n_recorded = 0;
    std::vector<float> gates;
    std::vector<int32_t> slot;
    std::vector<llama_pos> pos;      // by batch index
    std::vector<llama_seq_id> seq;   // by batch index, the token's first sequence
    std::vector<float> tau_at;       // by batch index, the threshold its sequence had
    // (first sequence, position) of each batch token -> its batch index, for the reordered case
    std::unordered_map<uint64_t, int32_t> batch_index;
    int32_t n_batch = 0;
    bool in_batch_order = true;      // the last batch's ubatches so far kept batch order
};

// Graph nodes one routed layer adds, for the graph size budget.
uint32_t flexidepth_graph_nodes(const llama_flexidepth_binding * binding);

// Called by llama_context::decode: before a batch's first ubatch, after each ubatch's compute.
void flexidepth_begin_batch(llama_flexidepth_binding * binding, const llama_batch & batch);
void flexidepth_collect(llama_flexidepth_binding * binding, ggml_backend_sched_t sched,
                        const llm_graph_result * res, const llama_ubatch & ubatch, int64_t token_offset);

// Sets fd on ctx for training (dense graphs with alpha * L_skip as a loss term), as
// llama_set_adapter_flexidepth sets it for inference, and returns the binding; throws
// flexidepth_error if compute buffers cannot be reserved.
llama_flexidepth_binding * flexidepth_set_training(llama_context * ctx, llama_adapter_flexidepth * fd, float tau, float alpha);

class llm_graph_input_flexidepth : public llm_graph_input_i {
public:
    explicit llm_graph_input_flexidepth(llama_flexidepth_binding * binding) : binding(binding) {}

    void set_input(const llama_ubatch * ubatch) override;

    // tau is data, not topology: a graph built for this binding serves every threshold
    bool can_reuse(const llm_graph_params & params) override {
        return params.flexidepth == binding;
    }

    llama_flexidepth_binding * binding;
    ggml_tensor * taus = nullptr;         // F32 [n_tokens, n_routed]: each token's threshold at each routed layer
    std::vector<float> taus_host;          // staging for set_input
    // per routed layer, graph outputs whose first n_tokens values are the gates: F32 [1, n_tokens],
    // or a fused layer's decision [n_tokens, 3] (flexidepth-fused-ops.h)
    std::vector<ggml_tensor *> gates;
    std::unordered_map<int, ggml_tensor *> runs; // model layer -> F32 [1, n_tokens] decisions (1 = run), every mode

    // masked mode: base weights whose products skip the skipped tokens, with the ids to use
    struct masked_rows {
        int il = -1;                      // the model layer
        bool exact_zeros = false;         // skipped tokens' attention output is discarded by a masked Wo
        ggml_tensor * run = nullptr;      // F32 [1, n_tokens]: 1 = run, 0 = skip
        ggml_tensor * ids_all = nullptr;  // I32 [1, n_tokens]: 0 = run, -1 = skip
        ggml_tensor * ids_out = nullptr;  // the same for the output rows of the last layer
        ggml_tensor * kq_bias = nullptr;  // F32 [1, n_tokens] of a fused route: 0 = run, -inf = skip
    };
    std::vector<std::pair<const ggml_tensor *, masked_rows *>> masked_weights;
    std::vector<std::unique_ptr<masked_rows>> rows;
};

// For llm_graph_context::build_lora_mm: w * cur with the skipped tokens of w's routed layer left
// out (exact zeros), or nullptr when w is not masked in this graph.
ggml_tensor * flexidepth_masked_mul_mat(const llm_graph_context & g, ggml_tensor * w, ggml_tensor * cur);

// For llm_graph_context::build_lora_mm: the LoRA delta B (A cur) of a masked w with the skipped
// tokens left out as well (exact zeros), so that a skipped token computes what SPEC section 2 says
// with or without LoRA adapters; nullptr when w is not masked in this graph.
ggml_tensor * flexidepth_masked_lora_mm(const llm_graph_context & g, ggml_tensor * w, ggml_tensor * a, ggml_tensor * b, ggml_tensor * cur);

// For llm_graph_context::build_attn: the KQ mask of layer il
//  - with a LAYER_NO_KV plug-in, with the cells of tokens that skipped the layer masked for every
//    query (kv-visibility.h), after recording this ubatch's decisions at k_idxs;
//  - with flash attention, with the rows of skipped tokens fully masked, so that the kernel reads
//    no K or V for them (their output is zero and discarded), where the layer is masked;
// and otherwise unchanged. k_view: the layer's K as the attention reads it.
ggml_tensor * flexidepth_attention_mask(const llm_graph_context & g, int il, ggml_tensor * kq_mask, ggml_tensor * k_idxs, ggml_tensor * k_view);

// Builds the routed parts of layers. Without an attached plug-in, or for an unrouted layer, every
// hook returns its input unchanged and adds no node: the graph is then exactly upstream's.
class llm_flexidepth_graph {
public:
    llm_flexidepth_graph(const llm_graph_context & g, const llama_model & model, const llm_graph_params & params);

    // z: the layer's pre-attention RMSNorm output for every row. Computes g and run = g > tau.
    void route(int il, ggml_tensor * z);

    // Attention output times run (skipped rows add nothing), times g as well for ATTENTION
    // plug-ins; unchanged for FFN ones. out_ids: the rows kept at the last layer.
    ggml_tensor * mask_attention(int il, ggml_tensor * attn_out, ggml_tensor * out_ids);

    // run * g * FFN(u) + (1 - run) * (1 - g) * Adapter(u); u: the post-attention RMSNorm output.
    // Unchanged for ATTENTION plug-ins, whose FFN always runs. The fused mix adds the layer's
    // residual too (one node fewer), which add_residual then knows.
    ggml_tensor * mix_ffn(int il, ggml_tensor * ffn_out, ggml_tensor * u, ggml_tensor * residual);

    // ffn_out + residual, where mix_ffn has not added it already
    ggml_tensor * add_residual(ggml_tensor * ffn_out, ggml_tensor * residual);

private:
    // alpha * mean over tokens of (sum of g over routed layers)^2 (SPEC 4), flagged as a loss
    void add_skip_loss();
    // after a routed layer's last hook
    void finish_layer();

    const llm_graph_context & g;
    const llama_model & model;
    const llama_adapter_flexidepth * fd = nullptr;
    bool masked = false;
    bool large_dense = false; // AUTO with a ubatch above masked_max_tokens
    llm_graph_input_flexidepth::masked_rows * rows = nullptr; // of the layer being built
    llm_graph_input_flexidepth * inp = nullptr;
    ggml_tensor * gate = nullptr; // of the layer being built
    ggml_tensor * run  = nullptr;
    // the layer routes and mixes in the fork's fused CPU ops (MASKED and AUTO; DENSE, the
    // oracle, keeps ggml's); then its route made the adapter's ids too
    bool fused = false;
    ggml_tensor * ids_skip = nullptr;
    bool residual_added = false; // by the last mix_ffn
};

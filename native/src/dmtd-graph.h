#pragma once

// DMTD inside llama.cpp's graphs (../shared/dmtd/SPEC.md section 4): the per-context state of
// the cycles (llama_context::dmtd) and the two hooks a model's layer loop calls: whether a layer
// is skipped (the thinking layers, at a decoding-only step), and the decoding layers' input
// d = h * hs + e * es per row (prompt rows: h; cycle heads: h + e; the other rows: e), of the
// rows the decoding layers compute (a head's refill rows keep their decoding K/V: dmtd_refill_kv
// stores them from their old cells); and the attention mask build_attn takes (dmtd_attention_mask:
// those rows' and, without refill, the thinking layers' that hides decoding-only tokens).
// Used by the patched src/models/{llama,qwen3}.cpp, src/llama-graph.cpp and src/llama-context.cpp.

#include "kv-visibility.h"
#include "llama-dmtd.h"
#include "llama-graph.h"

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

struct llama_context;
class llama_kv_cache_context;

// How the decoding layers' input of a row is formed.
enum class dmtd_row : uint8_t {
    prompt, // the residual stream, as in the base model
    head,   // the residual stream plus the row's embedding
    embd,   // the embedding only: a decoding-only token, or one the head refills
    refill, // one the head refills whose decoding layers' K/V are copied from its old cell
};

struct llama_dmtd_binding {
    llama_dmtd_params params {};
    uint64_t id = 0; // fresh per binding: graphs built for another are never reused

    // the step llama_dmtd_decode is running: none (a plain llama_decode: prompt rows, full
    // depth), a full step with per-row roles, or a decoding-only step
    enum class step { none, full, decoding_only } current = step::none;
    std::unordered_map<uint64_t, dmtd_row> roles; // (seq, pos) -> role, during a full step
    // the cells the refill rows (dmtd_row::refill) held before the head step removed them, by
    // (seq, pos), with their stream's offset: their decoding layers' K/V, written at their own
    // steps, are still there, so the decoding layers compute only the other rows (dmtd_refill_kv)
    std::unordered_map<uint64_t, int32_t> refill_cells;

    struct seq_state {
        bool next_is_head = true;                          // PROMPT_END: a prompt just ended
        std::vector<std::pair<llama_pos, llama_token>> pending; // decoded since the last head
    };
    std::unordered_map<llama_seq_id, seq_state> seqs;

    // of the last llama_dmtd_decode batch, by batch index
    std::vector<int32_t> out_index;
    std::vector<uint8_t> full;

    // without refill: the cells whose thinking-layer K/V were never written (decoding-only
    // tokens), hidden from the thinking layers' attention; allocated by the first graph
    std::unique_ptr<llama_kv_visibility> visibility;

    // graph nodes beyond the base model's: DMTD's few (and a dozen per decoding layer that copies
    // refill rows' K/V), and a training run's backward pass
    uint32_t n_layer = 0;
    uint32_t train_nodes = 0;

    // the graph topology: none, full and decoding-only steps build different graphs
    uint64_t graph_id() const { return id * 4 + (uint64_t) current + 1; }

    static uint64_t key(llama_seq_id seq, llama_pos pos) {
        return ((uint64_t) (uint32_t) seq << 32) | (uint32_t) pos;
    }
};

// Graph nodes DMTD adds, for the graph size budget (llama_context::graph_max_nodes).
inline uint32_t dmtd_graph_nodes(const llama_dmtd_binding * binding) {
    return binding == nullptr ? 0u : 16u + 16u * binding->n_layer + binding->train_nodes;
}

// Called by llama_context::decode before a batch's first ubatch: a batch decoded outside
// llama_dmtd_decode is a prompt for each of its sequences.
void dmtd_begin_batch(llama_dmtd_binding * binding, const llama_batch & batch);

class llm_graph_input_dmtd : public llm_graph_input_i {
public:
    explicit llm_graph_input_dmtd(llama_dmtd_binding * binding) : binding(binding) {}

    void set_input(const llama_ubatch * ubatch) override;

    bool can_reuse(const llm_graph_params & params) override {
        return params.dmtd == binding && params.dmtd_id == binding->graph_id()
               && copied_rows(binding, params.ubatch) == n_copied;
    }

    // The ubatch's refill rows whose decoding layers the graph leaves out: 0 unless there are
    // some and some other row (a ubatch of refill rows only computes them all, as before).
    static int64_t copied_rows(const llama_dmtd_binding * binding, const llama_ubatch & ubatch);

    llama_dmtd_binding * binding;
    ggml_tensor * h_scale = nullptr; // F32 [1, n_tokens], at a full step
    ggml_tensor * e_scale = nullptr; // F32 [1, n_tokens], at a full step
    ggml_tensor * run = nullptr;     // F32 [1, n_tokens] without refill: 1 where the thinking layers run
    ggml_tensor * thinking_mask = nullptr; // the thinking layers' KQ mask, built at the first
    bool visibility_written = false;       // whether the graph writes the ubatch's cells' visibility
    // with copied refill rows: the rows the decoding layers compute (I32 [n_tokens - n_copied]),
    // each row's place among [computed rows, copied rows] (I32 [n_tokens]), and the copied rows'
    // old cells (I32 [n_copied])
    int64_t n_copied = 0;
    ggml_tensor * keep = nullptr;
    ggml_tensor * order = nullptr;
    ggml_tensor * old_cells = nullptr;
    ggml_tensor * keep_mask = nullptr; // the KQ mask's rows of the computed rows, built at the first
    // without flash attention (V transposed): each copied row's V elements' places in the V storage
    ggml_tensor * old_v_elems = nullptr;
    int64_t n_embd_v = 0, kv_size = 0;
    std::vector<float> host;
};

// The KQ mask layer il attends with (build_attn): without refill, a thinking layer's hides the
// cells of decoding-only tokens, and every graph records which of its cells those are.
ggml_tensor * dmtd_attention_mask(const llm_graph_context & g, int il, ggml_tensor * kq_mask, ggml_tensor * k_idxs,
                                  const llama_kv_cache_context * mctx);

// Before build_attn stores layer il's K/V: in a decoding layer that leaves the copied refill rows
// out, K and V of all the ubatch's rows in its order, the copied rows' read from their old cells.
void dmtd_refill_kv(const llm_graph_context & g, int il, ggml_tensor *& k_cur, ggml_tensor *& v_cur,
                    const llama_kv_cache_context * mctx);

// The hooks. Without DMTD on the context, or at a plain llama_decode, they change nothing and add
// no node: the graph is then exactly upstream's.
class llm_dmtd_graph {
public:
    llm_dmtd_graph(const llm_graph_context & g, const llm_graph_params & params);

    // whether layer il is left out of this graph (the thinking layers of a decoding-only step)
    bool skips(int il) const {
        return decoding_only && il < n_thinking;
    }

    // the input of layer il: at the first decoding layer of a full step, h * hs + e * es, of the
    // rows the decoding layers compute; positions and output ids then index those rows
    ggml_tensor * layer_input(int il, ggml_tensor * h, ggml_tensor * embd, ggml_tensor *& positions, ggml_tensor *& out_ids);

private:
    const llm_graph_context & g;
    llm_graph_input_dmtd * inp = nullptr;
    bool decoding_only = false;
    int n_thinking = 0;
};

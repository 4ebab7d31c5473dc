#pragma once

// Which K/V cells later tokens may attend in some layers, beyond the KQ mask: the routed layers of
// a LAYER_NO_KV plug-in (a skipped token's K/V are written but hidden) and the thinking layers of
// DMTD without refill (a decoding-only token's thinking K/V are never written). The cache's layout
// does not depend on either, so the K/V are written at every cell as usual, and one F32 bias per
// (key, stream, cell), 0 where the cell is visible and a large negative number where it is not, is
// written with the K/V through the same cell indices and added to the KQ mask. A cell keeps its
// bias until a token is written there again, as its K and V do. Not part of llama_state_*.

#include "ggml-cpp.h"

#include <map>

struct llama_kv_visibility {
    // the bias of a hidden cell: exp(score + HIDDEN) is exactly 0 next to any visible cell, and
    // finite where a row sees no visible cell at all (a skipped token's own row, whose output is
    // discarded); F16 holds it
    static constexpr float HIDDEN = -30000.0f;

    // The KQ mask with the biases of key's cells added, after writing the bias of the ubatch's
    // tokens (run: F32 [1, n_tokens], 1 = visible) at k_idxs. k_view: a layer's K as the
    // attention reads it (llama_kv_cache::get_k), which locates the cells and their device.
    ggml_tensor * mask(ggml_context * ctx, int key, ggml_tensor * run, ggml_tensor * k_idxs, ggml_tensor * k_view, ggml_tensor * kq_mask);

    // Only the write of mask(): the node to expand into a graph that reads none of key's cells.
    ggml_tensor * write(ggml_context * ctx, int key, ggml_tensor * run, ggml_tensor * k_idxs, const ggml_tensor * k_cache);

    // key's biases, F32 [kv_size * n_stream] on k_cache's device (k_cache: a layer's K storage,
    // [n_embd_k_gqa, kv_size, n_stream]), allocated at the first use, cells visible
    ggml_tensor * cells(int key, const ggml_tensor * k_cache);

private:
    struct store {
        ggml_context_ptr ctx;
        ggml_backend_buffer_ptr buf;
        ggml_tensor * bias = nullptr;
    };
    std::map<int, store> stores; // by key (the plug-in's model layer; DMTD: 0)
};

#pragma once

// Which K/V cells later tokens may attend in the routed layers of a LAYER_NO_KV plug-in. A
// skipped token's K and V are still written (the cache's layout does not depend on decisions),
// but no other token may attend to them: one F32 bias per (routed layer, stream, cell), 0 where
// the cell's token ran the layer and a large negative number where it skipped, written with the
// K/V and added to the KQ mask. A cell keeps its bias until a token is written there again, as
// its K and V do. Not part of llama_state_*: a restored state's cells count as visible.

#include "ggml-cpp.h"

#include <map>

struct flexidepth_kv_visibility {
    // The KQ mask of layer il with the biases of its cells added, after writing the bias of the
    // ubatch's tokens (run: F32 [1, n_tokens], 1 = ran) at k_idxs. k_view: the layer's K as
    // the attention reads it (llama_kv_cache::get_k), which locates the cells and their device.
    ggml_tensor * mask(ggml_context * ctx, int il, ggml_tensor * run, ggml_tensor * k_idxs, ggml_tensor * k_view, ggml_tensor * kq_mask);

private:
    struct layer_store {
        ggml_context_ptr ctx;
        ggml_backend_buffer_ptr buf;
        ggml_tensor * bias = nullptr; // F32 [kv_size * n_stream]
    };
    std::map<int, layer_store> layers; // by model layer, allocated at the first graph that needs it
    ggml_tensor * store(int il, const ggml_tensor * k_cache);
};

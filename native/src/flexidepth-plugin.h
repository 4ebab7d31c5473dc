#pragma once

// A loaded FlexiDepth plug-in: per routed layer, a router and an adapter, in backend buffers on
// the same device as the base layer they plug into.

#include "llama-flexidepth.h"
#include "ggml-cpp.h"

#include <cstdint>
#include <string>
#include <vector>

// Tensors of one routed layer. Shapes in ggml order (ne0 = input features).
struct llama_flexidepth_layer {
    int32_t il;                  // model layer index
    ggml_tensor * router_down;   // [d, d_r]  W_down
    ggml_tensor * router_norm;   // [d_r]     RMSNorm weight
    ggml_tensor * router_up;     // [d_r, d]  W_up
    ggml_tensor * router_head;   // [d, 1]    W_head
    ggml_tensor * router_bias;   // [1]       optional logit bias (nullptr in converted checkpoints)
    ggml_tensor * adapter_gate;  // [d, d_a]  silu branch
    ggml_tensor * adapter_up;    // [d, d_a]  input projection
    ggml_tensor * adapter_down;  // [d_a, d]  output projection
    // whether every base weight of the layer can run MASKED mode's token-skipping product where it
    // is stored, for single-token ubatches and for larger ones (the backend's MUL_MAT_ID_SKIP
    // feature, patch 0004); a layer that cannot stays DENSE
    bool maskable = true;
    bool maskable_batched = true;
};

struct llama_flexidepth {
    const llama_model * model = nullptr;
    std::string arch;
    int32_t n_embd = 0, n_layer = 0, router_size = 0, adapter_size = 0;
    float threshold = 0.5f;

    std::vector<llama_flexidepth_layer> layers; // routed layers, ascending il
    std::vector<int32_t> slot;                  // model layer -> index in layers, or -1

    std::vector<ggml_context_ptr>        ctxs;
    std::vector<ggml_backend_buffer_ptr> bufs;

    const llama_flexidepth_layer * layer(int il) const {
        return il >= 0 && il < (int) slot.size() && slot[il] >= 0 ? &layers[slot[il]] : nullptr;
    }
};

// GGUF keys and tensor names of the plug-in format (documented in native/README.md).
namespace flexidepth_format {
    constexpr const char * KEY_GENERAL_TYPE  = "general.type";
    constexpr const char * KEY_ADAPTER_TYPE  = "adapter.type";
    constexpr const char * KEY_ARCH          = "general.architecture";
    constexpr const char * KEY_BLOCK_COUNT   = "flexidepth.block_count";
    constexpr const char * KEY_EMBD          = "flexidepth.embedding_length";
    constexpr const char * KEY_ROUTED_LAYERS = "flexidepth.routed_layers";
    constexpr const char * KEY_ROUTER_SIZE   = "flexidepth.router_size";
    constexpr const char * KEY_ADAPTER_SIZE  = "flexidepth.adapter_size";
    constexpr const char * KEY_THRESHOLD     = "flexidepth.threshold";
}

// Records a failure for llama_flexidepth_last_error() and returns its status.
int32_t flexidepth_fail(int32_t status, const std::string & message);

// A failure deep inside loading or training; the C API functions catch it and return its status
// through flexidepth_fail, so no exception crosses the C boundary.
struct flexidepth_error {
    int32_t status;
    std::string message;
};

[[noreturn]] void flexidepth_throw(int32_t status, std::string message);

#pragma once

// A loaded FlexiDepth plug-in: per routed layer, a router and an adapter, in backend buffers on
// the same device as the base layer they plug into.

#include "llama-flexidepth.h"
#include "llama-model.h"
#include "ggml-cpp.h"

#include <array>
#include <tuple>
#include <utility>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

struct llama_context;
struct llama_flexidepth_binding;

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
    // and whether those products cost a batch what its running rows cost (a compacting GEMM:
    // the CPU's repacked layouts, patch 0012, or its plain buffer, patch 0019), so that AUTO masks
    // prefill too
    bool masked_batches_compact = true;
    // whether the adapter's own products do: then large ubatches compute it for the skipped rows
    // only, as single tokens do
    bool adapter_batches_compact = false;
    // W_head W_up folded at load time ([d_r, 1], F32): with no nonlinearity between them it is the
    // same function for half the router's work (SPEC section 2); training keeps the two
    ggml_tensor * router_fused = nullptr;
    // adapter_gate and adapter_up as one [d, 2 d_a] tensor, the two placed in it at load (gate's
    // rows first, as ggml_swiglu takes them), or nullptr where they cannot share a buffer
    ggml_tensor * adapter_gate_up = nullptr;
    // whether inference routes and mixes this layer in the fork's fused CPU ops
    // (flexidepth-fused-ops.h): its router sits in the CPU's plain buffer
    bool routes_fused = false;

    // the tensors in the order of flexidepth_format::TENSORS (the bias may be nullptr)
    std::array<ggml_tensor *, 8> tensors() const {
        return {router_down, router_norm, router_up, router_head, router_bias, adapter_gate, adapter_up, adapter_down};
    }
};

struct llama_adapter_flexidepth {
    const llama_model * model = nullptr;
    std::string arch;
    int32_t n_embd = 0, n_layer = 0, router_size = 0, adapter_size = 0; // adapter_size 0: no adapter
    float threshold = 0.5f;
    llama_flexidepth_skip skip = LLAMA_FLEXIDEPTH_SKIP_LAYER;

    std::vector<llama_flexidepth_layer> layers; // routed layers, ascending il
    std::vector<int32_t> slot;                  // model layer -> index in layers, or -1

    std::vector<ggml_context_ptr>        ctxs;
    std::vector<ggml_backend_buffer_ptr> bufs;

    // the contexts computing with this plug-in and their bindings, which freeing the plug-in
    // sends back to the base model (flexidepth-context.cpp)
    std::mutex users_mutex;
    std::map<llama_context *, llama_flexidepth_binding *> users;

    const llama_flexidepth_layer * layer(int il) const {
        return il >= 0 && il < (int) slot.size() && slot[il] >= 0 ? &layers[slot[il]] : nullptr;
    }

    // every tensor of every routed layer, in file order
    std::vector<ggml_tensor *> tensors() const {
        std::vector<ggml_tensor *> out;
        for (const auto & L : layers) {
            for (ggml_tensor * t : L.tensors()) {
                if (t != nullptr) {
                    out.push_back(t);
                }
            }
        }
        return out;
    }
};

// GGUF keys and tensor names of the plug-in format (documented in native/README.md): the one
// definition the loader and the trainer's writer share.
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
    constexpr const char * KEY_SKIP          = "flexidepth.skip";

    // the values of KEY_SKIP, indexed by llama_flexidepth_skip
    constexpr const char * SKIP_NAMES[] = {"layer", "layer_no_kv", "attention", "ffn"};

    // The tensors of routed layer il, blk.<il>.<name>.<suffix>, with their shapes (ggml order) in
    // the hidden size d, the router size dr and the adapter size da; ne1 none: a vector (1-D, F32).
    enum class dim { d, dr, da, one, none };
    struct tensor_kind {
        const char * name;
        const char * suffix;
        dim ne0, ne1;
        bool router;   // F32 or F16 only: routing decisions flip under low-bit quantization (SPEC 3)
        bool optional; // converted checkpoints have no router bias
        bool adapter;  // present exactly where the skip family has an adapter
    };
    constexpr tensor_kind TENSORS[] = {
        {"fd_router_down",  "weight", dim::d,   dim::dr,  true,  false, false},
        {"fd_router_norm",  "weight", dim::dr,  dim::none, true, false, false},
        {"fd_router_up",    "weight", dim::dr,  dim::d,   true,  false, false},
        {"fd_router_head",  "weight", dim::d,   dim::one, true,  false, false},
        {"fd_router_head",  "bias",   dim::one, dim::none, true, true,  false},
        {"fd_adapter_gate", "weight", dim::d,   dim::da,  false, false, true},
        {"fd_adapter_up",   "weight", dim::d,   dim::da,  false, false, true},
        {"fd_adapter_down", "weight", dim::da,  dim::d,   false, false, true},
    };
    static_assert(std::size(TENSORS) == std::tuple_size_v<decltype(std::declval<llama_flexidepth_layer>().tensors())>,
                  "llama_flexidepth_layer::tensors() lists every kind, in this order");

    inline int64_t size_of(dim x, int64_t d, int64_t dr, int64_t da) {
        return x == dim::d ? d : x == dim::dr ? dr : x == dim::da ? da : 1;
    }

    inline std::string tensor_name(int il, const tensor_kind & k) {
        return "blk." + std::to_string(il) + "." + k.name + "." + k.suffix;
    }
}

// Whether t sits in the CPU's plain buffer, allocated or mapped from the model file.
bool flexidepth_in_plain_cpu_buffer(const ggml_tensor * t);

// The routed layers of a plug-in for a model of n_layer layers must be ascending, distinct and in
// range; throws flexidepth_error with `status` otherwise.
void flexidepth_check_routed(const std::vector<int32_t> & routed, int32_t n_layer, int32_t status);

// What a skip family leaves out for a skipped token, and whether an adapter replaces the FFN.
inline bool flexidepth_skips_attention(llama_flexidepth_skip s) { return s != LLAMA_FLEXIDEPTH_SKIP_FFN; }
inline bool flexidepth_skips_ffn(llama_flexidepth_skip s)       { return s != LLAMA_FLEXIDEPTH_SKIP_ATTENTION; }
inline bool flexidepth_has_adapter(llama_flexidepth_skip s)     { return flexidepth_skips_ffn(s); }

// The base weights of a layer whose products MASKED mode restricts to the tokens that run it
// (nullptr where the family always computes that product).
inline std::array<ggml_tensor *, 5> flexidepth_masked_weights(const llama_layer & layer, llama_flexidepth_skip s) {
    const bool a = flexidepth_skips_attention(s), f = flexidepth_skips_ffn(s);
    return {a ? layer.wq : nullptr, a ? layer.wo : nullptr,
            f ? layer.ffn_gate : nullptr, f ? layer.ffn_up : nullptr, f ? layer.ffn_down : nullptr};
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

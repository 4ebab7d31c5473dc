// Plug-in files as training writes them: the initial plug-in, checkpoints and the output, in
// the format the runtime's loader reads (flexidepth_format in flexidepth-plugin.h).

#include "train.h"

#include "gguf.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>

namespace flexidepth_train {
namespace {

constexpr const char * KEY_TRAIN_STEP   = "flexidepth.train.step";
constexpr const char * KEY_TRAIN_TOKENS = "flexidepth.train.tokens";
constexpr const char * KEY_TRAIN_SEED   = "flexidepth.train.seed";
constexpr const char * KEY_TRAIN_CTX    = "flexidepth.train.context_length";
constexpr const char * KEY_TRAIN_ALPHA  = "flexidepth.train.alpha";

struct plugin_header {
    std::string arch;
    int32_t n_embd = 0, n_layer = 0, router_size = 0, adapter_size = 0;
    float threshold = 0.5f;
    llama_flexidepth_skip skip = LLAMA_FLEXIDEPTH_SKIP_LAYER;
    std::vector<int32_t> routed;
};

// Writes tensors (host data) as a plug-in, atomically: a reader never sees half a file.
void write_plugin(const std::string & path, const plugin_header & h, const std::vector<ggml_tensor *> & tensors,
                  const position & pos) {
    using namespace flexidepth_format;
    gguf_context_ptr g { gguf_init_empty() };
    gguf_set_val_str(g.get(), KEY_GENERAL_TYPE, "adapter");
    gguf_set_val_str(g.get(), KEY_ADAPTER_TYPE, "flexidepth");
    gguf_set_val_str(g.get(), KEY_ARCH, h.arch.c_str());
    gguf_set_val_str(g.get(), "general.name", "FlexiDepth plug-in (trained by llama_flexidepth_train)");
    gguf_set_val_u32(g.get(), KEY_BLOCK_COUNT, (uint32_t) h.n_layer);
    gguf_set_val_u32(g.get(), KEY_EMBD, (uint32_t) h.n_embd);
    gguf_set_val_u32(g.get(), KEY_ROUTER_SIZE, (uint32_t) h.router_size);
    gguf_set_val_u32(g.get(), KEY_ADAPTER_SIZE, (uint32_t) h.adapter_size);
    gguf_set_val_f32(g.get(), KEY_THRESHOLD, h.threshold);
    gguf_set_val_str(g.get(), KEY_SKIP, SKIP_NAMES[h.skip]);
    gguf_set_arr_data(g.get(), KEY_ROUTED_LAYERS, GGUF_TYPE_INT32, h.routed.data(), h.routed.size());
    gguf_set_val_u64(g.get(), KEY_TRAIN_STEP, pos.step);
    gguf_set_val_u64(g.get(), KEY_TRAIN_TOKENS, pos.tokens);
    gguf_set_val_u32(g.get(), KEY_TRAIN_SEED, pos.seed);
    gguf_set_val_u32(g.get(), KEY_TRAIN_CTX, pos.n_ctx);
    gguf_set_val_f32(g.get(), KEY_TRAIN_ALPHA, pos.alpha);
    for (ggml_tensor * t : tensors) {
        gguf_add_tensor(g.get(), t);
    }
    const std::string tmp = path + ".tmp";
    if (!gguf_write_to_file(g.get(), tmp.c_str(), false)) {
        std::remove(tmp.c_str());
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, "cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, "cannot rename " + tmp + " to " + path);
    }
}

// The value every element of a new tensor starts with, or NaN for uniform in +-1/sqrt(fan_in).
float initial_value(const flexidepth_format::tensor_kind & k, float router_bias) {
    const std::string name = k.name;
    if (std::string(k.suffix) == "bias") {
        return router_bias;
    }
    if (name == "fd_router_norm") {
        return 1.0f;
    }
    if (name == "fd_router_head" || name == "fd_adapter_down") {
        return 0.0f;
    }
    return NAN;
}

} // namespace

void save_plugin(const std::string & path, const llama_adapter_flexidepth & fd, const position & pos) {
    const std::vector<ggml_tensor *> src = fd.tensors();
    size_t bytes = 0;
    for (ggml_tensor * t : src) {
        bytes += ggml_nbytes(t) + ggml_tensor_overhead();
    }
    ggml_init_params ip = { bytes + 1024, nullptr, false };
    ggml_context_ptr host { ggml_init(ip) };
    std::vector<ggml_tensor *> copies;
    for (ggml_tensor * t : src) {
        ggml_tensor * c = ggml_dup_tensor(host.get(), t);
        ggml_set_name(c, t->name);
        ggml_backend_tensor_get(t, c->data, 0, ggml_nbytes(t));
        copies.push_back(c);
    }
    plugin_header h;
    h.arch = fd.arch;
    h.n_embd = fd.n_embd;
    h.n_layer = fd.n_layer;
    h.router_size = fd.router_size;
    h.adapter_size = fd.adapter_size;
    h.threshold = fd.threshold;
    h.skip = fd.skip;
    for (const auto & L : fd.layers) {
        h.routed.push_back(L.il);
    }
    write_plugin(path, h, copies, pos);
}

// A new plug-in that starts close to the base model: every router's logit is init_router_bias
// for every token (W_head = 0), so all layers run with g = sigmoid(bias) ~ 1, and the adapter's
// output projection is zero (like LoRA's B), so a skip starts as the identity. The other matrices
// are uniform in +-1/sqrt(fan_in), giving the router and adapter gradients to grow from.
void write_initial_plugin(const std::string & path, const llama_model & model, const llama_flexidepth_train_params & p) {
    using namespace flexidepth_format;
    plugin_header h;
    char arch[64] = {0};
    llama_model_meta_val_str(&model, "general.architecture", arch, sizeof(arch));
    h.arch = arch;
    h.n_embd = llama_model_n_embd(&model);
    h.n_layer = llama_model_n_layer(&model);
    const int32_t n_ff = (int32_t) model.hparams.n_ff(0);
    h.router_size  = p.router_size  > 0 ? p.router_size  : std::max(1, h.n_embd / 16);
    h.skip = p.skip;
    h.adapter_size = !flexidepth_has_adapter(h.skip) ? 0 : p.adapter_size > 0 ? p.adapter_size : std::max(1, n_ff / 16);
    h.threshold = p.threshold;
    if (p.routed_layers != nullptr && p.n_routed_layers > 0) {
        h.routed.assign(p.routed_layers, p.routed_layers + p.n_routed_layers);
    } else {
        for (int32_t il = h.n_layer / 2; il < h.n_layer; ++il) {
            h.routed.push_back(il);
        }
    }
    flexidepth_check_routed(h.routed, h.n_layer, LLAMA_FLEXIDEPTH_ERR_INVALID_ARG);
    const int64_t d = h.n_embd, dr = h.router_size, da = h.adapter_size;
    size_t per_layer = 0;
    for (const tensor_kind & k : TENSORS) {
        per_layer += (size_t) (size_of(k.ne0, d, dr, da) * size_of(k.ne1, d, dr, da)) * sizeof(float) + ggml_tensor_overhead();
    }
    ggml_init_params ip = { h.routed.size() * per_layer + 1024, nullptr, false };
    ggml_context_ptr host { ggml_init(ip) };
    std::mt19937 rng(p.seed);
    std::vector<ggml_tensor *> tensors;
    for (int32_t il : h.routed) {
        for (const tensor_kind & k : TENSORS) {
            if (k.adapter && !flexidepth_has_adapter(h.skip)) {
                continue;
            }
            const int64_t ne0 = size_of(k.ne0, d, dr, da);
            ggml_tensor * t = k.ne1 == dim::none ? ggml_new_tensor_1d(host.get(), GGML_TYPE_F32, ne0)
                                                 : ggml_new_tensor_2d(host.get(), GGML_TYPE_F32, ne0, size_of(k.ne1, d, dr, da));
            ggml_set_name(t, tensor_name(il, k).c_str());
            const float value = initial_value(k, p.init_router_bias);
            std::uniform_real_distribution<float> u(-1.0f / std::sqrt((float) ne0), 1.0f / std::sqrt((float) ne0));
            float * x = (float *) t->data;
            for (int64_t i = 0; i < ggml_nelements(t); ++i) {
                x[i] = std::isnan(value) ? u(rng) : value;
            }
            tensors.push_back(t);
        }
    }
    position pos;
    pos.seed = p.seed;
    pos.n_ctx = (uint32_t) p.n_ctx;
    pos.alpha = p.alpha;
    write_plugin(path, h, tensors, pos);
}

position read_position(const std::string & path) {
    ggml_context * meta = nullptr;
    gguf_init_params ip = { true, &meta };
    gguf_context_ptr g { gguf_init_from_file(path.c_str(), ip) };
    ggml_context_ptr meta_ptr { meta };
    if (!g) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, path + " is not a readable GGUF checkpoint");
    }
    position pos;
    const int64_t ks = gguf_find_key(g.get(), KEY_TRAIN_STEP);
    const int64_t kt = gguf_find_key(g.get(), KEY_TRAIN_TOKENS);
    const int64_t ke = gguf_find_key(g.get(), KEY_TRAIN_SEED);
    const int64_t kc = gguf_find_key(g.get(), KEY_TRAIN_CTX);
    if (ks < 0 || kt < 0 || ke < 0 || kc < 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, path + " is a plug-in but not a training checkpoint (no " + KEY_TRAIN_STEP + ")");
    }
    // gguf_get_val_* abort on another type: check first
    if (gguf_get_kv_type(g.get(), ks) != GGUF_TYPE_UINT64 || gguf_get_kv_type(g.get(), kt) != GGUF_TYPE_UINT64 ||
        gguf_get_kv_type(g.get(), ke) != GGUF_TYPE_UINT32 || gguf_get_kv_type(g.get(), kc) != GGUF_TYPE_UINT32) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, path + " has flexidepth.train.* keys of unexpected types");
    }
    pos.step = gguf_get_val_u64(g.get(), ks);
    pos.tokens = gguf_get_val_u64(g.get(), kt);
    pos.seed = gguf_get_val_u32(g.get(), ke);
    pos.n_ctx = gguf_get_val_u32(g.get(), kc);
    return pos;
}

} // namespace flexidepth_train

#include "flexidepth-plugin.h"

#include "flexidepth-fused-ops.h"

#include "llama-impl.h"
#include "llama-model.h"

#include "ggml-backend.h"
#include "gguf.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace {

thread_local std::string last_error;

const std::set<std::string> SUPPORTED_ARCHS = {"llama", "qwen2", "qwen3"};

std::string shape_str(const int64_t * ne) {
    return "[" + std::to_string(ne[0]) + ", " + std::to_string(ne[1]) + "]";
}

struct file_closer {
    void operator()(FILE * f) const { fclose(f); }
};

std::string get_str(const gguf_context * g, const char * key) {
    const int64_t k = gguf_find_key(g, key);
    if (k < 0 || gguf_get_kv_type(g, k) != GGUF_TYPE_STRING) {
        return "";
    }
    return gguf_get_val_str(g, k);
}

int64_t get_uint(const gguf_context * g, const char * key) {
    const int64_t k = gguf_find_key(g, key);
    if (k < 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string("missing key ") + key);
    }
    switch (gguf_get_kv_type(g, k)) {
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(g, k);
        case GGUF_TYPE_INT32:  return gguf_get_val_i32(g, k);
        case GGUF_TYPE_UINT64: return (int64_t) gguf_get_val_u64(g, k);
        case GGUF_TYPE_INT64:  return gguf_get_val_i64(g, k);
        default: flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string("key ") + key + " is not an integer");
    }
}

// One plug-in tensor of layer il, checked for presence, shape and type against what the base
// model needs; nullptr for an optional one that is absent.
ggml_tensor * expect_tensor(ggml_context * meta, int il, const flexidepth_format::tensor_kind & k, int64_t d, int64_t dr, int64_t da,
                            llama_flexidepth_skip skip) {
    using namespace flexidepth_format;
    const std::string full = tensor_name(il, k);
    ggml_tensor * t = ggml_get_tensor(meta, full.c_str());
    if (k.adapter && !flexidepth_has_adapter(skip)) {
        if (t != nullptr) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, std::string("a '") + SKIP_NAMES[skip] + "' plug-in has no adapter, but holds " + full);
        }
        return nullptr;
    }
    if (t == nullptr) {
        if (k.optional) {
            return nullptr;
        }
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, "missing tensor " + full);
    }
    const int64_t want[2] = {size_of(k.ne0, d, dr, da), size_of(k.ne1, d, dr, da)};
    if (t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != 1 || t->ne[3] != 1) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, "tensor " + full + " has shape " + shape_str(t->ne) + ", expected " + shape_str(want));
    }
    // vectors scale and shift F32 activations: F32 only
    if (k.ne1 == dim::none && t->type != GGML_TYPE_F32) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, "tensor " + full + " must be F32");
    }
    if (k.router && t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, "router tensor " + full + " is " + ggml_type_name(t->type) + "; routers must be F32 or F16");
    }
    return t;
}

// Which batch sizes the device holding w skips tokens for in the one-expert ggml_mul_mat_id:
// its backend declares it (feature MUL_MAT_ID_SKIP, patch 0004: "1" every size, "vec" single
// tokens only); a backend without the feature would read out of bounds on an id of -1.
enum class skip_support { none, single_token, all };

// the value of a feature the device's backend declares, nullptr where it declares none such
const char * backend_feature(ggml_backend_dev_t dev, const char * name) {
    ggml_backend_reg_t reg = dev ? ggml_backend_dev_backend_reg(dev) : nullptr;
    auto get_features = reg ? (ggml_backend_get_features_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features") : nullptr;
    for (const ggml_backend_feature * f = get_features ? get_features(reg) : nullptr; f && f->name; ++f) {
        if (strcmp(f->name, name) == 0) {
            return f->value;
        }
    }
    return nullptr;
}

skip_support declared_skip_support(ggml_backend_dev_t dev) {
    const char * v = backend_feature(dev, "MUL_MAT_ID_SKIP");
    return v == nullptr ? skip_support::none : strcmp(v, "1") == 0 ? skip_support::all : skip_support::single_token;
}

// Whether the buffer holding w runs that product at all. Not every weight layout has it: the
// CPU's AMX buffers, for one, hold repacked weights only their own MUL_MAT kernel reads, and the
// scheduler aborts on an op the weight's buffer cannot run.
skip_support runs_masked_mul_mat(const ggml_tensor * w) {
    if (w->buffer == nullptr) {
        return skip_support::all;
    }
    ggml_backend_dev_t dev = ggml_backend_buft_get_device(ggml_backend_buffer_get_type(w->buffer));
    if (dev == nullptr) {
        // upstream's plain CPU buffer type names no device (a FIXME there): it is the CPU's
        dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    }
    if (dev == nullptr) {
        return skip_support::none;
    }
    const skip_support declared = declared_skip_support(dev);
    if (declared == skip_support::none) {
        return declared;
    }
    ggml_init_params params = { 3 * ggml_tensor_overhead(), nullptr, true };
    ggml_context_ptr ctx(ggml_init(params));
    const int64_t T = 2;
    ggml_tensor * x   = ggml_new_tensor_3d(ctx.get(), GGML_TYPE_F32, w->ne[0], 1, T);
    ggml_tensor * ids = ggml_new_tensor_2d(ctx.get(), GGML_TYPE_I32, 1, T);
    ggml_tensor * op  = ggml_mul_mat_id(ctx.get(), const_cast<ggml_tensor *>(w), x, ids);
    return ggml_backend_dev_supports_op(dev, op) ? declared : skip_support::none;
}

bool in_buffer_named(const ggml_tensor * w, const char * name) {
    return w->buffer != nullptr && strcmp(ggml_backend_buft_name(ggml_backend_buffer_get_type(w->buffer)), name) == 0;
}

// Whether w's buffer computes a one-expert masked product over a batch as a GEMM of the running
// rows only: the CPU's repacked layouts do (patch 0012), and its plain buffer for the types its
// backend lists as MUL_MAT_ID_GEMM (patch 0019); elsewhere a batch runs a product per row.
bool compacts_batches(const ggml_tensor * w) {
    if (in_buffer_named(w, "CPU_REPACK")) {
        return true;
    }
    const char * types = flexidepth_in_plain_cpu_buffer(w) ? backend_feature(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU), "MUL_MAT_ID_GEMM") : nullptr;
    if (types == nullptr) {
        return false;
    }
    const std::string list = std::string(",") + types + ",";
    return list.find(std::string(",") + ggml_type_name(w->type) + ",") != std::string::npos;
}

// The CPU's repacked buffer type where it computes MUL_MAT of a weight typed and shaped as ne (the
// way upstream's weight placement asks), for a quantized adapter whose base weight is repacked
// too: there it runs in the same kernels as the base weights and compacts masked batches (patch
// 0012). nullptr where the base weight is elsewhere (a model loaded without repacking, another
// device) or the layout has no such product. Repacked tensors cannot be read back; training,
// which reads its adapters back, keeps them F32.
ggml_backend_buffer_type_t repacked_buft_for(const ggml_tensor * base, ggml_backend_dev_t dev, ggml_type type, const int64_t * ne) {
    if (base == nullptr || !in_buffer_named(base, "CPU_REPACK") || dev == nullptr || ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_CPU) {
        return nullptr;
    }
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev),
                                                                                          "ggml_backend_dev_get_extra_bufts");
    for (ggml_backend_buffer_type_t * b = get_extra ? get_extra(dev) : nullptr; b != nullptr && *b != nullptr; ++b) {
        if (strcmp(ggml_backend_buft_name(*b), "CPU_REPACK") != 0) {
            continue;
        }
        ggml_init_params params = { 3 * ggml_tensor_overhead(), nullptr, true };
        ggml_context_ptr ctx(ggml_init(params));
        ggml_tensor * w  = ggml_new_tensor_2d(ctx.get(), type, ne[0], ne[1]);
        ggml_tensor * op = ggml_mul_mat(ctx.get(), w, ggml_new_tensor_2d(ctx.get(), GGML_TYPE_F32, ne[0], 2));
        ggml_backend_buffer_ptr buf(ggml_backend_buft_alloc_buffer(*b, 0));
        w->buffer = buf.get();
        return buf && ggml_backend_dev_supports_op(dev, op) ? *b : nullptr;
    }
    return nullptr;
}

// A router tensor (F32 or F16) as F32 on the host.
std::vector<float> host_f32(const ggml_tensor * t) {
    std::vector<float> out(ggml_nelements(t));
    if (t->type == GGML_TYPE_F32) {
        ggml_backend_tensor_get(t, out.data(), 0, ggml_nbytes(t));
    } else {
        std::vector<ggml_fp16_t> h(out.size());
        ggml_backend_tensor_get(t, h.data(), 0, ggml_nbytes(t));
        ggml_fp16_to_fp32_row(h.data(), out.data(), (int64_t) out.size());
    }
    return out;
}

// router_fused[j] = sum over i of W_head[i] W_up[i][j], in double.
void fuse_router(llama_flexidepth_layer & L) {
    const int64_t dr = L.router_up->ne[0], d = L.router_up->ne[1];
    const std::vector<float> up = host_f32(L.router_up), head = host_f32(L.router_head);
    std::vector<float> fused(dr);
    for (int64_t j = 0; j < dr; ++j) {
        double acc = 0.0;
        for (int64_t i = 0; i < d; ++i) {
            acc += (double) head[i] * up[i * dr + j];
        }
        fused[j] = (float) acc;
    }
    ggml_backend_tensor_set(L.router_fused, fused.data(), 0, ggml_nbytes(L.router_fused));
}

// The type an adapter projection is kept in where the file holds a float type and the base weight
// it stands in for is quantized: that weight's type at 6 bits or more (Q8_0, Q6_K), Q8_0 below.
// Measured on flexi-demo-12L's trained plug-in (README): Q8_0 adapters keep every routing
// decision of the float ones, Q4_0 adapters flip some and move the argmax of 4 % of tokens.
ggml_type adapter_storage_type(const ggml_tensor * stored, const ggml_tensor * base) {
    const bool from_float = stored->type == GGML_TYPE_F32 || stored->type == GGML_TYPE_F16 || stored->type == GGML_TYPE_BF16;
    if (base == nullptr || !from_float || !ggml_is_quantized(base->type)) {
        return stored->type;
    }
    const ggml_type want = base->type == GGML_TYPE_Q6_K ? GGML_TYPE_Q6_K : GGML_TYPE_Q8_0;
    return stored->ne[0] % ggml_blck_size(want) == 0 ? want : stored->type;
}

// Converts n_rows rows of a tensor stored as `from` (a float type) into `to`.
std::vector<uint8_t> convert_rows(const std::vector<uint8_t> & data, ggml_type from, ggml_type to, int64_t n_per_row, int64_t n_rows) {
    std::vector<float> f32((size_t) (n_per_row * n_rows));
    if (from == GGML_TYPE_F32) {
        memcpy(f32.data(), data.data(), f32.size() * sizeof(float));
    } else {
        ggml_get_type_traits(from)->to_float(data.data(), f32.data(), (int64_t) f32.size());
    }
    std::vector<uint8_t> out(ggml_row_size(to, n_per_row) * n_rows);
    ggml_quantize_chunk(to, f32.data(), out.data(), 0, n_rows, n_per_row, nullptr);
    return out;
}

void load(llama_adapter_flexidepth & fd, const llama_model & model, const char * path, const llama_flexidepth_load_params & lp) {
    std::unique_ptr<FILE, file_closer> file(fopen(path, "rb"));
    if (!file) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, std::string("cannot open ") + path + ": " + strerror(errno));
    }
    char magic[4] = {0};
    if (fread(magic, 1, 4, file.get()) != 4 || memcmp(magic, "GGUF", 4) != 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string(path) + " is not a GGUF file");
    }

    ggml_context * meta_raw = nullptr;
    gguf_init_params params = { /*.no_alloc =*/ true, /*.ctx =*/ &meta_raw };
    gguf_context_ptr gguf { gguf_init_from_file(path, params) };
    if (!gguf) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string(path) + " is truncated or corrupt (GGUF header)");
    }
    ggml_context_ptr meta { meta_raw };
    const gguf_context * g = gguf.get();

    using namespace flexidepth_format;
    if (get_str(g, KEY_GENERAL_TYPE) != "adapter" || get_str(g, KEY_ADAPTER_TYPE) != "flexidepth") {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string(path) + " is not a FlexiDepth plug-in (general.type = '"
             + get_str(g, KEY_GENERAL_TYPE) + "', adapter.type = '" + get_str(g, KEY_ADAPTER_TYPE) + "')");
    }

    fd.arch = get_str(g, KEY_ARCH);
    if (SUPPORTED_ARCHS.count(fd.arch) == 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ARCHITECTURE, "FlexiDepth supports llama, qwen2 and qwen3; the plug-in is for '" + fd.arch + "'");
    }
    char model_arch[64] = {0};
    llama_model_meta_val_str(&model, "general.architecture", model_arch, sizeof(model_arch));
    if (fd.arch != model_arch) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_WRONG_BASE, "the plug-in is for a '" + fd.arch + "' model, the base model is '" + model_arch + "'");
    }
    if (model.hparams.n_expert > 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ARCHITECTURE, "FlexiDepth needs a dense FFN; this model is a mixture of experts");
    }
    fd.n_embd  = (int32_t) get_uint(g, KEY_EMBD);
    fd.n_layer = (int32_t) get_uint(g, KEY_BLOCK_COUNT);
    if (fd.n_embd != llama_model_n_embd(&model) || fd.n_layer != llama_model_n_layer(&model)) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_WRONG_BASE, "the plug-in is for a model with hidden size " + std::to_string(fd.n_embd) + " and "
             + std::to_string(fd.n_layer) + " layers; the base model has " + std::to_string(llama_model_n_embd(&model))
             + " and " + std::to_string(llama_model_n_layer(&model)));
    }
    {
        const int64_t k = gguf_find_key(g, KEY_SKIP);
        if (k >= 0) {
            const std::string name = get_str(g, KEY_SKIP);
            const int32_t i = llama_flexidepth_skip_from_name(name.c_str());
            if (i < 0) {
                flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string(KEY_SKIP) + " is '" + name
                                 + "'; expected layer, layer_no_kv, attention or ffn");
            }
            fd.skip = (llama_flexidepth_skip) i;
        }
    }
    fd.router_size  = (int32_t) get_uint(g, KEY_ROUTER_SIZE);
    fd.adapter_size = (int32_t) get_uint(g, KEY_ADAPTER_SIZE);
    if (fd.router_size <= 0 || (flexidepth_has_adapter(fd.skip) ? fd.adapter_size <= 0 : fd.adapter_size != 0)) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, flexidepth_has_adapter(fd.skip) ? "router and adapter sizes must be positive"
                         : "the router size must be positive, and the adapter size 0 (this skip family has no adapter)");
    }
    {
        const int64_t k = gguf_find_key(g, KEY_THRESHOLD);
        if (k >= 0) {
            if (gguf_get_kv_type(g, k) != GGUF_TYPE_FLOAT32) {
                flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string(KEY_THRESHOLD) + " must be a float32");
            }
            fd.threshold = gguf_get_val_f32(g, k);
        }
        if (!(fd.threshold >= 0.0f && fd.threshold <= 1.0f)) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, "threshold must be in [0, 1]");
        }
    }

    const int64_t kl = gguf_find_key(g, KEY_ROUTED_LAYERS);
    if (kl < 0 || gguf_get_kv_type(g, kl) != GGUF_TYPE_ARRAY ||
        (gguf_get_arr_type(g, kl) != GGUF_TYPE_INT32 && gguf_get_arr_type(g, kl) != GGUF_TYPE_UINT32)) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string(KEY_ROUTED_LAYERS) + " must be an array of int32");
    }
    const size_t n_routed = gguf_get_arr_n(g, kl);
    const int32_t * routed = (const int32_t *) gguf_get_arr_data(g, kl);
    fd.slot.assign(fd.n_layer, -1);
    flexidepth_check_routed(std::vector<int32_t>(routed, routed + n_routed), fd.n_layer, LLAMA_FLEXIDEPTH_ERR_FORMAT);

    const int64_t d = fd.n_embd, dr = fd.router_size, da = fd.adapter_size;
    std::vector<llama_flexidepth_layer> metas;
    for (size_t i = 0; i < n_routed; ++i) {
        const int il = routed[i];
        ggml_tensor * t[std::size(TENSORS)];
        for (size_t k = 0; k < std::size(TENSORS); ++k) {
            t[k] = expect_tensor(meta.get(), il, TENSORS[k], d, dr, da, fd.skip);
        }
        metas.push_back({il, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]});
    }

    // Each layer's plug-in tensors live on the device of that base layer.
    std::map<ggml_backend_buffer_type_t, ggml_context *> ctx_for;
    auto ctx_of = [&](ggml_backend_buffer_type_t buft) {
        auto it = ctx_for.find(buft);
        if (it != ctx_for.end()) {
            return it->second;
        }
        ggml_init_params ip = { /*.mem_size =*/ 9 * ggml_tensor_overhead() * (n_routed + 1), /*.mem_buffer =*/ nullptr, /*.no_alloc =*/ true };
        ggml_context * c = ggml_init(ip);
        if (!c) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, "cannot create a ggml context");
        }
        fd.ctxs.emplace_back(c);
        ctx_for[buft] = c;
        return c;
    };
    std::vector<std::pair<ggml_tensor *, ggml_tensor *>> copies; // (meta, allocated)
    auto dup = [&](ggml_context * c, ggml_tensor * m, ggml_type type) {
        ggml_tensor * t = ggml_new_tensor(c, type, ggml_n_dims(m), m->ne);
        ggml_set_name(t, m->name);
        copies.emplace_back(m, t);
        return t;
    };
    // the adapters' gate and up placed in their layer's adapter_gate_up after allocation
    ggml_context * placed = nullptr;
    for (const auto & m : metas) {
        ggml_context * c = ctx_of(ggml_backend_dev_buffer_type(model.dev_layer(m.il)));
        fd.slot[m.il] = (int32_t) fd.layers.size();
        std::array<ggml_tensor *, std::size(TENSORS)> t = m.tensors();
        const llama_layer & base = model.layers[m.il];
        // what each adapter projection stands in for, in TENSORS order
        const ggml_tensor * counterpart[std::size(TENSORS)] = {nullptr, nullptr, nullptr, nullptr, nullptr, base.ffn_gate, base.ffn_up, base.ffn_down};
        ggml_type                  type[std::size(TENSORS)]     = {};
        ggml_backend_buffer_type_t repacked[std::size(TENSORS)] = {};
        for (size_t k = 0; k < t.size(); ++k) {
            if (t[k] != nullptr) {
                const bool convert = lp.adapters_in_base_type && TENSORS[k].adapter;
                type[k] = convert ? adapter_storage_type(t[k], counterpart[k]) : t[k]->type;
                repacked[k] = TENSORS[k].adapter && ggml_is_quantized(type[k])
                                  ? repacked_buft_for(counterpart[k], model.dev_layer(m.il), type[k], t[k]->ne) : nullptr;
            }
        }
        // Gate and up side by side in one [d, 2 d_a] tensor, so that inference multiplies u by
        // both in one product (one graph node fewer per routed layer); the two stay tensors of
        // their own, which training updates. Not in a repacked layout, which is per tensor.
        constexpr size_t GATE = 5, UP = 6;
        static_assert(std::string_view(TENSORS[GATE].name) == "fd_adapter_gate" && std::string_view(TENSORS[UP].name) == "fd_adapter_up");
        ggml_tensor * gate_up = nullptr;
        if (t[GATE] != nullptr && t[UP] != nullptr && type[GATE] == type[UP] && !repacked[GATE] && !repacked[UP]) {
            if (placed == nullptr) {
                ggml_init_params ip = { 2 * ggml_tensor_overhead() * n_routed, nullptr, true };
                fd.ctxs.emplace_back(placed = ggml_init(ip));
                if (!placed) {
                    flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, "cannot create a ggml context");
                }
            }
            gate_up = ggml_new_tensor_2d(c, type[GATE], d, 2 * da);
            ggml_format_name(gate_up, "blk.%d.fd_adapter_gate_up", m.il);
        }
        for (size_t k = 0; k < t.size(); ++k) {
            if (t[k] != nullptr) {
                t[k] = dup(gate_up && (k == GATE || k == UP) ? placed : repacked[k] ? ctx_of(repacked[k]) : c, t[k], type[k]);
            }
        }
        fd.layers.push_back({m.il, t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]});
        fd.layers.back().adapter_gate_up = gate_up;
        fd.layers.back().router_fused = ggml_new_tensor_2d(c, GGML_TYPE_F32, dr, 1);
        ggml_format_name(fd.layers.back().router_fused, "blk.%d.fd_router_fused", m.il);
        for (const ggml_tensor * w : flexidepth_masked_weights(model.layers[m.il], fd.skip)) {
            const skip_support s = w == nullptr ? skip_support::all : runs_masked_mul_mat(w);
            fd.layers.back().maskable &= s != skip_support::none;
            fd.layers.back().maskable_batched &= s == skip_support::all;
            fd.layers.back().masked_batches_compact &= w == nullptr || compacts_batches(w);
        }
    }
    for (auto & [buft, c] : ctx_for) {
        ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors_from_buft(c, buft);
        if (!buf) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, std::string("cannot allocate the plug-in's tensors in ") + ggml_backend_buft_name(buft));
        }
        ggml_backend_buffer_set_usage(buf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
        fd.bufs.emplace_back(buf);
    }
    for (auto & L : fd.layers) {
        if (L.adapter_gate_up != nullptr) {
            char * at = (char *) L.adapter_gate_up->data;
            if (ggml_backend_tensor_alloc(L.adapter_gate_up->buffer, L.adapter_gate, at) != GGML_STATUS_SUCCESS ||
                ggml_backend_tensor_alloc(L.adapter_gate_up->buffer, L.adapter_up, at + ggml_nbytes(L.adapter_gate)) != GGML_STATUS_SUCCESS) {
                flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, "cannot place the adapter of layer " + std::to_string(L.il));
            }
        }
        L.routes_fused = flexidepth_fused_route_supported(L);
        L.adapter_batches_compact = L.adapter_up != nullptr;
        for (const ggml_tensor * w : { L.adapter_gate, L.adapter_up, L.adapter_down }) {
            L.adapter_batches_compact &= w != nullptr && compacts_batches(w) && runs_masked_mul_mat(w) == skip_support::all;
        }
    }

    // Read the data; a truncated file fails here rather than computing with garbage.
    const size_t data_offset = gguf_get_data_offset(g);
    std::vector<uint8_t> staging;
    for (auto & [m, t] : copies) {
        const int64_t idx = gguf_find_tensor(g, m->name);
        const size_t nbytes = ggml_nbytes(m);
        staging.resize(nbytes);
        if (fseek(file.get(), (long) (data_offset + gguf_get_tensor_offset(g, idx)), SEEK_SET) != 0 ||
            fread(staging.data(), 1, nbytes, file.get()) != nbytes) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string(path) + " is truncated: tensor " + m->name + " is incomplete");
        }
        // A NaN or Inf weight makes every gate NaN, every layer skipped and the session's cache
        // NaN; refuse it here, where the tensor can still be named. Quantized blocks are checked
        // through their scales.
        if (!ggml_validate_row_data(m->type, staging.data(), nbytes)) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, std::string("tensor ") + m->name + " holds NaN or infinite values");
        }
        if (t->type != m->type) {
            const std::vector<uint8_t> converted = convert_rows(staging, m->type, t->type, m->ne[0], ggml_nrows(m));
            ggml_backend_tensor_set(t, converted.data(), 0, converted.size());
        } else {
            ggml_backend_tensor_set(t, staging.data(), 0, nbytes);
        }
    }
    for (auto & L : fd.layers) {
        fuse_router(L);
    }
}

} // namespace

bool flexidepth_in_plain_cpu_buffer(const ggml_tensor * t) {
    return in_buffer_named(t, "CPU") || in_buffer_named(t, "CPU_Mapped");
}

void flexidepth_check_routed(const std::vector<int32_t> & routed, int32_t n_layer, int32_t status) {
    if (routed.empty()) {
        flexidepth_throw(status, "the plug-in routes no layer");
    }
    for (size_t i = 0; i < routed.size(); ++i) {
        if (routed[i] < 0 || routed[i] >= n_layer || (i > 0 && routed[i] <= routed[i - 1])) {
            flexidepth_throw(status, "routed layers must be ascending, distinct and in [0, " + std::to_string(n_layer) + ")");
        }
    }
}

void flexidepth_throw(int32_t status, std::string message) {
    throw flexidepth_error{status, std::move(message)};
}

int32_t flexidepth_fail(int32_t status, const std::string & message) {
    last_error = message;
    LLAMA_LOG_ERROR("flexidepth: %s\n", message.c_str());
    return status;
}

const char * llama_flexidepth_last_error(void) {
    return last_error.c_str();
}

const char * llama_flexidepth_skip_name(enum llama_flexidepth_skip skip) {
    return skip >= 0 && (size_t) skip < std::size(flexidepth_format::SKIP_NAMES) ? flexidepth_format::SKIP_NAMES[skip] : "";
}

int32_t llama_flexidepth_skip_from_name(const char * name) {
    for (size_t i = 0; name != nullptr && i < std::size(flexidepth_format::SKIP_NAMES); ++i) {
        if (strcmp(name, flexidepth_format::SKIP_NAMES[i]) == 0) {
            return (int32_t) i;
        }
    }
    return -1;
}

struct llama_flexidepth_load_params llama_flexidepth_load_default_params(void) {
    llama_flexidepth_load_params p;
    p.adapters_in_base_type = true;
    return p;
}

struct llama_adapter_flexidepth * llama_adapter_flexidepth_init(const struct llama_model * model, const char * path, int32_t * status) {
    return llama_adapter_flexidepth_load(model, path, nullptr, status);
}

struct llama_adapter_flexidepth * llama_adapter_flexidepth_load(const struct llama_model * model, const char * path,
                                                                const struct llama_flexidepth_load_params * params, int32_t * status) {
    int32_t rc = LLAMA_FLEXIDEPTH_OK;
    last_error.clear();
    if (model == nullptr || path == nullptr) {
        rc = flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "model and path must not be NULL");
    } else {
        auto fd = std::make_unique<llama_adapter_flexidepth>();
        try {
            load(*fd, *model, path, params ? *params : llama_flexidepth_load_default_params());
            fd->model = model;
            const ggml_type at = llama_adapter_flexidepth_adapter_type(fd.get(), fd->layers.front().il);
            LLAMA_LOG_INFO("flexidepth: loaded %s: %zu routed layers, skip %s, router %d, adapter %d (%s), tau %.3f\n",
                           path, fd->layers.size(), flexidepth_format::SKIP_NAMES[fd->skip], fd->router_size, fd->adapter_size,
                           at == GGML_TYPE_COUNT ? "none" : ggml_type_name(at), fd->threshold);
            if (status) {
                *status = LLAMA_FLEXIDEPTH_OK;
            }
            return fd.release();
        } catch (const flexidepth_error & e) {
            rc = flexidepth_fail(e.status, e.message);
        } catch (const std::exception & e) {
            rc = flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_FORMAT, std::string("cannot load plug-in: ") + e.what());
        }
    }
    if (status) {
        *status = rc;
    }
    return nullptr;
}

int32_t llama_adapter_flexidepth_n_routed(const struct llama_adapter_flexidepth * fd) {
    return fd ? (int32_t) fd->layers.size() : 0;
}

int32_t llama_adapter_flexidepth_routed_layer(const struct llama_adapter_flexidepth * fd, int32_t i) {
    return fd && i >= 0 && i < (int32_t) fd->layers.size() ? fd->layers[i].il : -1;
}

int32_t llama_adapter_flexidepth_router_size(const struct llama_adapter_flexidepth * fd) {
    return fd ? fd->router_size : 0;
}

int32_t llama_adapter_flexidepth_adapter_size(const struct llama_adapter_flexidepth * fd) {
    return fd ? fd->adapter_size : 0;
}

float llama_adapter_flexidepth_threshold(const struct llama_adapter_flexidepth * fd) {
    return fd ? fd->threshold : 0.5f;
}

const char * llama_adapter_flexidepth_arch(const struct llama_adapter_flexidepth * fd) {
    return fd ? fd->arch.c_str() : "";
}

enum llama_flexidepth_skip llama_adapter_flexidepth_skip(const struct llama_adapter_flexidepth * fd) {
    return fd ? fd->skip : LLAMA_FLEXIDEPTH_SKIP_LAYER;
}

enum ggml_type llama_adapter_flexidepth_adapter_type(const struct llama_adapter_flexidepth * fd, int32_t il) {
    const llama_flexidepth_layer * L = fd ? fd->layer(il) : nullptr;
    return L && L->adapter_up ? L->adapter_up->type : GGML_TYPE_COUNT;
}

size_t llama_adapter_flexidepth_adapter_nbytes(const struct llama_adapter_flexidepth * fd, int32_t il) {
    const llama_flexidepth_layer * L = fd ? fd->layer(il) : nullptr;
    return L && L->adapter_up ? ggml_nbytes(L->adapter_gate) + ggml_nbytes(L->adapter_up) + ggml_nbytes(L->adapter_down) : 0;
}

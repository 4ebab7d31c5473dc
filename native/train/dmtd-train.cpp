// Fine-tuning a model for DMTD (llama-dmtd-train.h): the cyclical-masking objective is the graph
// of a DMTD full step over a whole window (dmtd-graph.h), with every row a cycle head
// (decoding-layer input h + e) or not (e only) by its position, so training and inference compute
// the same function. llama_opt_epoch runs one optimizer step per window; every layer tensor is
// a parameter. Checkpoints and the output are whole model files: the base file's metadata and
// tensors, the trained layers' data, the split and where the run stands.

#include "llama-dmtd-train.h"

#include "train.h"
#include "dmtd-graph.h"

#include "llama-context.h"
#include "gguf.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>

using namespace flexidepth_train;

namespace {

constexpr const char * KEY_STEP   = "dmtd.train.step";
constexpr const char * KEY_TOKENS = "dmtd.train.tokens";
constexpr const char * KEY_SEED   = "dmtd.train.seed";
constexpr const char * KEY_CTX    = "dmtd.train.context_length";

bool is_layer_tensor(const ggml_tensor * t, void *) {
    return strncmp(t->name, "blk.", 4) == 0;
}

std::vector<std::pair<std::string, ggml_tensor *>> layer_tensors(const llama_model & model) {
    std::vector<std::pair<std::string, ggml_tensor *>> out;
    for (const auto & [name, t] : model.tensors_by_name) {
        if (is_layer_tensor(t, nullptr)) {
            out.emplace_back(name, t);
        }
    }
    return out;
}

void check_model(const llama_model & model, int32_t n_thinking, int32_t cycle) {
    char arch[64] = {0};
    llama_model_meta_val_str(&model, "general.architecture", arch, sizeof(arch));
    if (strcmp(arch, "llama") != 0 && strcmp(arch, "qwen3") != 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ARCHITECTURE, std::string("DMTD trains llama and qwen3 models; this one is '") + arch + "'");
    }
    const int32_t n_layer = llama_model_n_layer(&model);
    if (n_thinking < 1 || n_thinking >= n_layer) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "thinking layers must be 1 to " + std::to_string(n_layer - 1) + ", was " + std::to_string(n_thinking));
    }
    if (cycle < 2) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the cycle must be >= 2, was " + std::to_string(cycle));
    }
    check_base_buffers(model);
    for (const auto & [name, t] : layer_tensors(model)) {
        if (t->type != GGML_TYPE_F32) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, "DMTD training updates every layer: it needs an F32 model; " + name + " is " + ggml_type_name(t->type));
        }
        if (t->buffer && strcmp(ggml_backend_buft_name(ggml_backend_buffer_get_type(t->buffer)), "CPU_Mapped") == 0) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the model's weights are mapped from its file, read-only; load it without mmap"
                             " (load_mode NONE; Java: ModelOptions.mmap(false))");
        }
    }
}

// The file at `from`, loaded with its tensors' data (owned by the returned contexts).
struct loaded_file {
    gguf_context_ptr gguf;
    ggml_context_ptr data;
};

loaded_file load_file(const std::string & from) {
    ggml_context * data = nullptr;
    gguf_init_params ip = { false, &data };
    loaded_file f { gguf_context_ptr(gguf_init_from_file(from.c_str(), ip)), ggml_context_ptr(data) };
    if (!f.gguf) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, from + " is not a readable GGUF model");
    }
    return f;
}

// base_path's metadata and tensors, with the model's layer tensors and the run's keys, written atomically.
void save_model(const std::string & base_path, const llama_model & model, const std::string & path, int32_t n_thinking, int32_t cycle,
                const position & pos) {
    loaded_file base = load_file(base_path);
    for (const auto & [name, t] : layer_tensors(model)) {
        ggml_tensor * dst = ggml_get_tensor(base.data.get(), name.c_str());
        if (dst == nullptr || ggml_nbytes(dst) != ggml_nbytes(t)) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_WRONG_BASE, base_path + " is not the file the model was loaded from (tensor " + name + ")");
        }
        ggml_backend_tensor_get(t, dst->data, 0, ggml_nbytes(t));
    }
    gguf_context_ptr out { gguf_init_empty() };
    gguf_set_kv(out.get(), base.gguf.get());
    gguf_set_val_u32(out.get(), "dmtd.thinking_layers", (uint32_t) n_thinking);
    gguf_set_val_u32(out.get(), "dmtd.cycle", (uint32_t) cycle);
    gguf_set_val_str(out.get(), "dmtd.phase", "absolute");
    gguf_set_val_u64(out.get(), KEY_STEP, pos.step);
    gguf_set_val_u64(out.get(), KEY_TOKENS, pos.tokens);
    gguf_set_val_u32(out.get(), KEY_SEED, pos.seed);
    gguf_set_val_u32(out.get(), KEY_CTX, pos.n_ctx);
    for (int64_t i = 0; i < gguf_get_n_tensors(base.gguf.get()); ++i) {
        gguf_add_tensor(out.get(), ggml_get_tensor(base.data.get(), gguf_get_tensor_name(base.gguf.get(), i)));
    }
    const std::string tmp = path + ".tmp";
    if (!gguf_write_to_file(out.get(), tmp.c_str(), false)) {
        std::remove(tmp.c_str());
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, "cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, "cannot rename " + tmp + " to " + path);
    }
}

// Where the checkpoint stands, and its layers into the model.
position resume_from(const std::string & checkpoint, llama_model & model) {
    loaded_file f = load_file(checkpoint);
    const gguf_context * g = f.gguf.get();
    const int64_t ks = gguf_find_key(g, KEY_STEP), kt = gguf_find_key(g, KEY_TOKENS), ke = gguf_find_key(g, KEY_SEED), kc = gguf_find_key(g, KEY_CTX);
    if (ks < 0 || kt < 0 || ke < 0 || kc < 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, checkpoint + " is not a DMTD training checkpoint (no " + KEY_STEP + ")");
    }
    position pos;
    pos.step = gguf_get_val_u64(g, ks);
    pos.tokens = gguf_get_val_u64(g, kt);
    pos.seed = gguf_get_val_u32(g, ke);
    pos.n_ctx = gguf_get_val_u32(g, kc);
    for (const auto & [name, t] : layer_tensors(model)) {
        const ggml_tensor * src = ggml_get_tensor(f.data.get(), name.c_str());
        if (src == nullptr || ggml_nbytes(src) != ggml_nbytes(t)) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_WRONG_BASE, checkpoint + " was trained from another model (tensor " + name + ")");
        }
        ggml_backend_tensor_set(t, src->data, 0, ggml_nbytes(t));
    }
    return pos;
}

struct dmtd_resources {
    llama_context * ctx = nullptr;
    llama_model * model = nullptr;
    uint32_t n_ctx_train = 0;

    ~dmtd_resources() {
        set_current(nullptr);
        if (ctx) llama_free(ctx);
        if (model) model->hparams.n_ctx_train = n_ctx_train; // llama_opt_init overwrote it
    }
};

int32_t train(llama_model * model, const std::string & base_path, const llama_flexidepth_train_data & data, const std::string & output,
              int32_t n_thinking, int32_t cycle, const llama_flexidepth_train_params & p) {
    check_schedule(p);
    check_model(*model, n_thinking, cycle);
    const int64_t n_ctx = p.n_ctx;
    const int64_t n_seq = count_windows(*model, data.tokens, n_ctx);
    const std::string checkpoint = p.checkpoint_path ? p.checkpoint_path : output + ".checkpoint";
    position pos;
    pos.seed = p.seed;
    pos.n_ctx = (uint32_t) p.n_ctx;
    if (p.resume && std::ifstream(checkpoint, std::ios::binary).good()) {
        pos = resume_from(checkpoint, *model);
        if (pos.seed != p.seed || pos.n_ctx != (uint32_t) p.n_ctx) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the checkpoint " + checkpoint + " was made with seed " + std::to_string(pos.seed)
                 + " and context " + std::to_string(pos.n_ctx) + "; resume with the same values");
        }
        LLAMA_LOG_INFO("dmtd-train: resuming %s at step %llu\n", checkpoint.c_str(), (unsigned long long) pos.step);
    }

    dmtd_resources res;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t) n_ctx;
    cp.n_seq_max = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED; // flash attention has no backward pass
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    const int32_t n_threads = p.n_threads > 0 ? p.n_threads : (int32_t) std::max(1u, std::thread::hardware_concurrency());
    cp.n_threads = cp.n_threads_batch = n_threads;
    res.ctx = llama_init_from_model(model, cp);
    if (res.ctx == nullptr) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, "cannot create a training context of " + std::to_string(n_ctx) + " tokens");
    }
    // every training graph is a full step over the window, heads by absolute position; ggml-opt
    // builds the backward pass in a graph of the forward's size, about four times the forward
    auto binding = std::make_unique<llama_dmtd_binding>();
    binding->params = {n_thinking, cycle, LLAMA_DMTD_PHASE_ABSOLUTE, true};
    binding->id = 1;
    binding->train_nodes = 3u * std::max<uint32_t>(1024u, 8u * (uint32_t) model->n_tensors());
    binding->current = llama_dmtd_binding::step::full;
    res.ctx->set_dmtd(std::move(binding));
    llama_dmtd_binding & b = *res.ctx->dmtd;
    for (llama_pos pos_i = 0; pos_i < (llama_pos) n_ctx; ++pos_i) {
        b.roles[llama_dmtd_binding::key(0, pos_i)] = pos_i % cycle == 0 ? dmtd_row::head : dmtd_row::embd;
    }

    trainer t;
    t.params = &p;
    t.n_layer = llama_model_n_layer(model);
    t.n_steps = p.token_budget > 0 ? (p.token_budget + n_ctx - 1) / n_ctx : (int64_t) p.n_epochs * n_seq;
    res.model = model;
    res.n_ctx_train = model->hparams.n_ctx_train;
    llama_opt_params op = {};
    op.n_ctx_train = (uint32_t) n_ctx;
    op.param_filter = is_layer_tensor;
    op.param_filter_ud = nullptr;
    op.get_opt_pars = optimizer_params;
    op.get_opt_pars_ud = &t;
    op.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
    llama_opt_init(res.ctx, model, op);
    LLAMA_LOG_INFO("dmtd-train: %lld steps of %lld tokens (%lld sequences in the data), %d thinking + %d decoding layers, cycle %d, lr %g\n",
                   (long long) t.n_steps, (long long) n_ctx, (long long) n_seq, n_thinking, t.n_layer - n_thinking, cycle, p.learning_rate);

    const float layers_per_token = (float) (t.n_layer + (cycle - 1) * (t.n_layer - n_thinking)) / (float) cycle;
    set_current(&t);
    const int32_t rc = run_steps(res.ctx, data.tokens, t, pos, p, checkpoint, [&](double loss, llama_flexidepth_train_progress & pr) {
        pr.loss_lm = (float) loss;
        pr.mean_layers = layers_per_token;
    }, [&] { save_model(base_path, *model, checkpoint, n_thinking, cycle, pos); });
    b.current = llama_dmtd_binding::step::none;
    b.roles.clear();
    if (rc != LLAMA_FLEXIDEPTH_OK) {
        return rc;
    }
    save_model(base_path, *model, output, n_thinking, cycle, pos);
    if (p.checkpoint_path == nullptr) {
        std::remove(checkpoint.c_str());
    }
    return LLAMA_FLEXIDEPTH_OK;
}

} // namespace

int32_t llama_dmtd_train(struct llama_model * model, const char * base_path, const struct llama_flexidepth_train_data * data,
                         const char * output_path, int32_t n_thinking, int32_t cycle, const struct llama_flexidepth_train_params * params) {
    if (model == nullptr || base_path == nullptr || data == nullptr || output_path == nullptr || params == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "model, base path, data, output path and params must not be NULL");
    }
    try {
        return train(model, base_path, *data, output_path, n_thinking, cycle, *params);
    } catch (const flexidepth_error & e) {
        return flexidepth_fail(e.status, e.message);
    } catch (const std::exception & e) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_ALLOC, std::string("training failed: ") + e.what());
    }
}

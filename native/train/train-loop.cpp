// Training FlexiDepth plug-ins (llama-flexidepth-train.h) on ggml's optimizer.
//
// A new plug-in is first written as a checkpoint file and loaded with llama_adapter_flexidepth_init, so
// that training, resuming and the runtime share one loader and one set of checks. The plug-in is
// set on a private context in training mode: the graph is built densely and adds
// alpha * L_skip as an extra loss term (flexidepth-graph.cpp, patch 0007 in ggml-opt), and
// llama_opt_epoch runs one optimizer step per sequence.

#include "train.h"

#include "ggml-backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace flexidepth_train;

namespace {

struct train_resources {
    llama_adapter_flexidepth * fd = nullptr;
    llama_context * ctx = nullptr;
    llama_model * model = nullptr;
    uint32_t n_ctx_train = 0;

    ~train_resources() {
        set_current(nullptr);
        if (ctx) llama_free(ctx);   // detaches the plug-in
        if (fd) llama_adapter_flexidepth_free(fd);
        if (model) model->hparams.n_ctx_train = n_ctx_train; // llama_opt_init overwrote it
    }
};

void check_params(const llama_flexidepth_train_params & p) {
    auto bad = [](const std::string & m) { flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, m); };
    check_schedule(p);
    if (!(p.alpha >= 0.0f) || !std::isfinite(p.alpha)) bad("alpha must be >= 0");
    if (!(p.threshold >= 0.0f && p.threshold <= 1.0f)) bad("the threshold must be in [0, 1]");
    if (!std::isfinite(p.init_router_bias)) bad("the initial router bias must be finite");
    if (p.router_size < 0 || p.adapter_size < 0) bad("router and adapter sizes must be >= 0 (0: default)");
    if (p.skip < LLAMA_FLEXIDEPTH_SKIP_LAYER || p.skip > LLAMA_FLEXIDEPTH_SKIP_FFN) bad("unknown skip family " + std::to_string((int) p.skip));
    if (p.n_routed_layers < 0 || (p.n_routed_layers > 0 && p.routed_layers == nullptr)) bad("invalid routed layer list");
}

int32_t train(llama_model * model, const llama_flexidepth_train_data & data, const std::string & output,
              const llama_flexidepth_train_params & p) {
    check_params(p);
    check_base_buffers(*model);
    // everything that can be refused is checked before any file is written
    const int64_t n_ctx = p.n_ctx;
    const int64_t n_seq = count_windows(*model, data.tokens, n_ctx);

    if (p.n_ctx > (int32_t) llama_model_n_ctx_train(model) && llama_model_n_ctx_train(model) > 0) {
        LLAMA_LOG_WARN("flexidepth-train: context %d is longer than the model was trained with (%u)\n", p.n_ctx, llama_model_n_ctx_train(model));
    }
    const std::string checkpoint = p.checkpoint_path ? p.checkpoint_path : output + ".checkpoint";

    position pos;
    if (p.resume && std::ifstream(checkpoint, std::ios::binary).good()) {
        pos = read_position(checkpoint);
        if (pos.seed != p.seed || pos.n_ctx != (uint32_t) p.n_ctx) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the checkpoint " + checkpoint + " was made with seed " + std::to_string(pos.seed)
                 + " and context " + std::to_string(pos.n_ctx) + "; resume with the same values");
        }
        LLAMA_LOG_INFO("flexidepth-train: resuming %s at step %llu\n", checkpoint.c_str(), (unsigned long long) pos.step);
    } else {
        write_initial_plugin(checkpoint, *model, p);
        pos.seed = p.seed;
        pos.n_ctx = (uint32_t) p.n_ctx;
    }
    pos.alpha = p.alpha;

    train_resources res;
    int32_t status = 0;
    llama_flexidepth_load_params lp = llama_flexidepth_load_default_params();
    lp.adapters_in_base_type = false; // the optimizer updates F32 adapters in place
    res.fd = llama_adapter_flexidepth_load(model, checkpoint.c_str(), &lp, &status);
    if (res.fd == nullptr) {
        flexidepth_throw(status, llama_flexidepth_last_error());
    }
    for (ggml_tensor * t : res.fd->tensors()) {
        if (t->type != GGML_TYPE_F32) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, std::string("training needs F32 plug-in tensors; ") + t->name + " is " + ggml_type_name(t->type));
        }
    }
    res.fd->threshold = p.threshold;

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t) n_ctx;
    cp.n_seq_max = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED; // flash attention has no backward pass
    cp.type_k = cp.type_v = GGML_TYPE_F32;               // nor has OUT_PROD with an F16 cache
    const int32_t n_threads = p.n_threads > 0 ? p.n_threads : (int32_t) std::max(1u, std::thread::hardware_concurrency());
    cp.n_threads = cp.n_threads_batch = n_threads;
    res.ctx = llama_init_from_model(model, cp);
    if (res.ctx == nullptr) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, "cannot create a training context of " + std::to_string(n_ctx) + " tokens");
    }
    trainer t;
    t.params = &p;
    t.binding = flexidepth_set_training(res.ctx, res.fd, p.threshold, p.alpha);
    t.n_layer = llama_model_n_layer(model);
    t.n_steps = p.token_budget > 0 ? (p.token_budget + n_ctx - 1) / n_ctx : (int64_t) p.n_epochs * n_seq;

    res.model = model;
    res.n_ctx_train = model->hparams.n_ctx_train;
    llama_opt_params op = {};
    op.n_ctx_train = (uint32_t) n_ctx;
    op.param_filter = is_plugin_tensor;
    op.param_filter_ud = res.fd;
    op.get_opt_pars = optimizer_params;
    op.get_opt_pars_ud = &t;
    op.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
    llama_opt_init(res.ctx, model, op);
    // llama_opt_init offers the filter the base model's tensors (all refused); the plug-in's own
    // tensors live outside the model, so the same filter is applied to them here
    for (ggml_tensor * tensor : res.fd->tensors()) {
        if (is_plugin_tensor(tensor, res.fd)) {
            ggml_set_param(tensor);
        }
    }

    LLAMA_LOG_INFO("flexidepth-train: %lld steps of %lld tokens (%lld sequences in the data), %zu routed layers, alpha %g, lr %g\n",
                   (long long) t.n_steps, (long long) n_ctx, (long long) n_seq, res.fd->layers.size(), p.alpha, p.learning_rate);

    set_current(&t);
    const int32_t rc = run_steps(res.ctx, data.tokens, t, pos, p, checkpoint, [&](double loss, llama_flexidepth_train_progress & pr) {
        pr.loss_skip = t.loss_skip;
        pr.loss_lm = (float) (loss - p.alpha * t.loss_skip);
        pr.mean_layers = t.mean_layers;
    }, [&] { save_plugin(checkpoint, *res.fd, pos); });
    if (rc != LLAMA_FLEXIDEPTH_OK) {
        return rc;
    }
    save_plugin(output, *res.fd, pos);
    if (p.checkpoint_path == nullptr) {
        // the output resumes as well as the default checkpoint did; a named one is the caller's
        std::remove(checkpoint.c_str());
    }
    return LLAMA_FLEXIDEPTH_OK;
}

} // namespace

struct llama_flexidepth_train_params llama_flexidepth_train_default_params(void) {
    llama_flexidepth_train_params p = {};
    p.routed_layers = nullptr;
    p.n_routed_layers = 0;
    p.router_size = 0;
    p.adapter_size = 0;
    p.skip = LLAMA_FLEXIDEPTH_SKIP_LAYER;
    p.threshold = 0.5f;
    p.init_router_bias = 3.0f;
    p.alpha = 3e-3f;
    p.learning_rate = 1e-4f;
    p.min_lr_ratio = 0.1f;
    p.weight_decay = 0.0f;
    p.warmup_steps = 10;
    p.n_ctx = 256;
    p.n_epochs = 1;
    p.token_budget = 0;
    p.seed = 42;
    p.n_threads = 0;
    p.checkpoint_path = nullptr;
    p.checkpoint_every = 50;
    p.resume = false;
    p.callback = nullptr;
    p.callback_user_data = nullptr;
    return p;
}

int32_t llama_flexidepth_train(struct llama_model * model, const struct llama_flexidepth_train_data * data,
                               const char * output_path, const struct llama_flexidepth_train_params * params) {
    if (model == nullptr || data == nullptr || output_path == nullptr || params == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "model, data, output path and params must not be NULL");
    }
    try {
        return train(model, *data, output_path, *params);
    } catch (const flexidepth_error & e) {
        return flexidepth_fail(e.status, e.message);
    } catch (const std::exception & e) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_ALLOC, std::string("training failed: ") + e.what());
    }
}

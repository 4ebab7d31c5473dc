// The part of a training run that plug-ins and DMTD models share: checks of the optimizer and data
// options, of the base model's buffers and tokens, and the loop of optimizer steps over windows of
// the data.

#include "train.h"

#include "ggml-backend.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

namespace flexidepth_train {

void check_base_buffers(const llama_model & model) {
    std::set<ggml_backend_buffer_type_t> extra;
    if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
        auto get_extra = (ggml_backend_dev_get_extra_bufts_t)
            ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts");
        for (ggml_backend_buffer_type_t * b = get_extra ? get_extra(cpu) : nullptr; b && *b; ++b) {
            extra.insert(*b);
        }
    }
    for (const auto & [name, t] : model.tensors_by_name) {
        if (t->buffer && extra.count(ggml_backend_buffer_get_type(t->buffer))) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the base model's weights are repacked for the CPU ("
                 + std::string(ggml_backend_buft_name(ggml_backend_buffer_get_type(t->buffer))) + ", e.g. " + name
                 + "), which has no backward pass; load the model with use_extra_bufts = false (Java: ModelOptions.repackWeights(false))");
        }
    }
}

void check_schedule(const llama_flexidepth_train_params & p) {
    auto bad = [](const std::string & m) { flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, m); };
    if (!(p.learning_rate > 0.0f) || !std::isfinite(p.learning_rate)) bad("the learning rate must be > 0");
    if (!(p.min_lr_ratio >= 0.0f && p.min_lr_ratio <= 1.0f)) bad("min_lr_ratio must be in [0, 1]");
    if (!(p.weight_decay >= 0.0f && p.weight_decay < 1.0f)) bad("weight decay must be in [0, 1)");
    if (p.warmup_steps < 0) bad("warm-up steps must be >= 0");
    // llama.cpp pads every context to a multiple of 256, and llama_opt trains on whole contexts
    if (p.n_ctx < 256 || p.n_ctx % 256 != 0) bad("the context length must be a positive multiple of 256, was " + std::to_string(p.n_ctx));
    if (p.token_budget < 0) bad("the token budget must be >= 0");
    if (p.token_budget == 0 && p.n_epochs <= 0) bad("give a token budget or at least one epoch");
    if (p.checkpoint_every < 0) bad("checkpoint_every must be >= 0 (0: only when cancelled)");
}

int64_t count_windows(const llama_model & model, const std::vector<llama_token> & tokens, int64_t n_ctx) {
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(&model));
    for (llama_token tok : tokens) {
        if (tok < 0 || tok >= n_vocab) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "token " + std::to_string(tok) + " is outside the model's vocabulary of " + std::to_string(n_vocab));
        }
    }
    const int64_t n_seq = ((int64_t) tokens.size() - 1) / n_ctx;
    if (n_seq < 1) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "the training data has " + std::to_string(tokens.size())
             + " tokens; at least context + 1 = " + std::to_string(n_ctx + 1) + " are needed");
    }
    return n_seq;
}

int32_t run_steps(llama_context * ctx, const std::vector<llama_token> & tokens, trainer & t, position & pos,
                  const llama_flexidepth_train_params & p, const std::string & checkpoint,
                  const std::function<void(double, llama_flexidepth_train_progress &)> & describe,
                  const std::function<void()> & save) {
    const int64_t n_ctx = p.n_ctx;
    struct opt_data {
        ggml_opt_dataset_t dataset = nullptr;
        ggml_opt_result_t result = nullptr;
        ~opt_data() {
            if (result) ggml_opt_result_free(result);
            if (dataset) ggml_opt_dataset_free(dataset);
        }
    } d;
    d.dataset = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, n_ctx, n_ctx, 1, 1);
    d.result = ggml_opt_result_init();
    int32_t * inputs = (int32_t *) ggml_opt_dataset_data(d.dataset)->data;
    int32_t * labels = (int32_t *) ggml_opt_dataset_labels(d.dataset)->data;
    const int64_t n_seq = ((int64_t) tokens.size() - 1) / n_ctx;
    std::vector<int64_t> order(n_seq);
    int64_t order_epoch = -1;
    const auto t_start = std::chrono::steady_clock::now();
    const int64_t first_step = (int64_t) pos.step;
    for (t.step = first_step; t.step < t.n_steps; ++t.step) {
        const int64_t step = t.step;
        // the order of an epoch depends only on the seed and the epoch, so a resumed run
        // continues with exactly the sequences it would have seen
        const int64_t epoch = step / n_seq;
        if (epoch != order_epoch) {
            std::iota(order.begin(), order.end(), 0);
            std::mt19937_64 rng((uint64_t) p.seed * 1000003ull + (uint64_t) epoch);
            std::shuffle(order.begin(), order.end(), rng);
            order_epoch = epoch;
        }
        const llama_token * seq = tokens.data() + order[step % n_seq] * n_ctx;
        std::copy(seq, seq + n_ctx, inputs);
        std::copy(seq + 1, seq + 1 + n_ctx, labels);
        ggml_opt_result_reset(d.result);
        llama_opt_epoch(ctx, d.dataset, d.result, nullptr, 1, after_step, nullptr);
        double loss = 0.0;
        ggml_opt_result_loss(d.result, &loss, nullptr);
        if (!std::isfinite(loss)) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "the loss diverged at step " + std::to_string(step) + "; lower the learning rate");
        }
        pos.step = (uint64_t) step + 1;
        pos.tokens += (uint64_t) n_ctx;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        const double tps = (double) (step + 1 - first_step) * n_ctx / std::max(seconds, 1e-9);
        llama_flexidepth_train_progress pr = {};
        pr.step = step + 1;
        pr.n_steps = t.n_steps;
        pr.n_tokens_done = (int64_t) pos.tokens;
        describe(loss, pr);
        pr.learning_rate = learning_rate(t);
        pr.tokens_per_second = tps;
        pr.eta_seconds = (double) (t.n_steps - step - 1) * n_ctx / std::max(tps, 1e-9);
        const bool cancelled = p.callback != nullptr && !p.callback(&pr, p.callback_user_data);
        if (cancelled || (p.checkpoint_every > 0 && pos.step % (uint64_t) p.checkpoint_every == 0 && (int64_t) pos.step < t.n_steps)) {
            save();
        }
        if (cancelled) {
            return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_CANCELLED, "training cancelled at step " + std::to_string(pos.step)
                                   + "; the checkpoint " + checkpoint + " resumes it");
        }
    }
    return LLAMA_FLEXIDEPTH_OK;
}

} // namespace flexidepth_train

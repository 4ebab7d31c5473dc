#include "llama-fork.h"

#include "llama-impl.h"

#include <cmath>
#include <exception>
#include <limits>
#include <vector>

const char * llama_fork_upstream_commit(void) {
    return FLEXI_LLAMA_COMMIT;
}

bool llama_fork_logits_finite(struct llama_context * ctx, int32_t idx) {
    if (ctx == nullptr) {
        return false;
    }
    const float * logits = llama_get_logits_ith(ctx, idx);
    if (logits == nullptr) {
        return false;
    }
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    for (int32_t i = 0; i < n_vocab; ++i) {
        if (!std::isfinite(logits[i])) {
            return false;
        }
    }
    return true;
}

int32_t llama_fork_sampler_sample(struct llama_sampler * smpl, struct llama_context * ctx, int32_t idx, llama_token * token) {
    if (smpl == nullptr || ctx == nullptr || token == nullptr) {
        return LLAMA_FORK_SAMPLE_FAILED;
    }
    const float * logits = llama_get_logits_ith(ctx, idx);
    if (logits == nullptr) {
        return LLAMA_FORK_SAMPLE_NO_LOGITS;
    }
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    // one candidate array per thread, reused: a generation samples from the thread that decodes
    thread_local std::vector<llama_token_data> cur;
    cur.resize(n_vocab);
    for (llama_token id = 0; id < n_vocab; ++id) {
        if (!std::isfinite(logits[id])) {
            return LLAMA_FORK_SAMPLE_NOT_FINITE;
        }
        cur[id] = llama_token_data{id, logits[id], 0.0f};
    }
    llama_token_data_array cur_p = { cur.data(), cur.size(), -1, false };
    try {
        llama_sampler_apply(smpl, &cur_p);
        if (cur_p.selected < 0 || cur_p.selected >= (int64_t) cur_p.size || !std::isfinite(cur_p.data[cur_p.selected].logit)) {
            return LLAMA_FORK_SAMPLE_NO_CANDIDATE;
        }
        *token = cur_p.data[cur_p.selected].id;
        llama_sampler_accept(smpl, *token);
    } catch (const std::exception & e) {
        LLAMA_LOG_ERROR("%s: %s\n", __func__, e.what());
        return LLAMA_FORK_SAMPLE_FAILED;
    }
    return LLAMA_FORK_SAMPLE_OK;
}

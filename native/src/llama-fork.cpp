#include "llama-fork.h"

#include <cmath>
#include <limits>

const char * llama_fork_upstream_commit(void) {
    return FLEXI_LLAMA_COMMIT;
}

float llama_fork_token_logprob(struct llama_context * ctx, int32_t idx, llama_token token) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    if (ctx == nullptr) {
        return nan;
    }
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    if (token < 0 || token >= n_vocab) {
        return nan;
    }
    // Release builds of llama.cpp return NULL for an index without logits (debug builds abort).
    const float * logits = llama_get_logits_ith(ctx, idx);
    if (logits == nullptr) {
        return nan;
    }
    float max = -INFINITY;
    for (int32_t i = 0; i < n_vocab; ++i) {
        max = std::fmax(max, logits[i]);
    }
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; ++i) {
        sum += std::exp((double) logits[i] - max);
    }
    return (float) ((double) logits[token] - max - std::log(sum));
}

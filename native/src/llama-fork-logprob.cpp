// llama_fork_token_logprob and llama_fork_token_top_logprobs, in a file of their own because the
// file is compiled to let its sum reassociate (CMakeLists.txt): a log-softmax over a 128k
// vocabulary once per generated token costs about 3 % of a 1B model's decode step with a call to
// std::exp per element, and a small fraction of that vectorized.
#include "llama-fork.h"

#include <cmath>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <limits>

// exp(x) for x <= 0 in float, within 2.5e-7 relative of std::exp (0 below about -87, where exp
// is a denormal), written so that a loop over it vectorizes at the baseline ISA (SSE2): 2^k times
// a degree-6 polynomial of the remainder, 2^k from its bits.
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x;
    const float k = (float) (int32_t) (x * 1.44269504f - 0.5f); // x <= 0: truncation rounds to nearest
    const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const int32_t bits = ((int32_t) k + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

// log of the sum of exp(logits) over the vocabulary, NaN when the logits are not finite
static double log_sum_exp(const float * logits, int32_t n_vocab) {
    float max = -INFINITY;
    for (int32_t i = 0; i < n_vocab; ++i) {
        max = logits[i] > max ? logits[i] : max;
    }
    if (!std::isfinite(max)) {
        return std::numeric_limits<double>::quiet_NaN();
    }
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; ++i) {
        sum += exp_nonpositive(logits[i] - max);
    }
    return max + std::log(sum);
}

int32_t llama_fork_token_top_logprobs(struct llama_context * ctx, int32_t idx, int32_t n, llama_token * ids, float * logprobs) {
    if (ctx == nullptr || n < 0 || (n > 0 && (ids == nullptr || logprobs == nullptr))) {
        return -1;
    }
    const float * logits = llama_get_logits_ith(ctx, idx);
    if (logits == nullptr) {
        return -1;
    }
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(llama_get_model(ctx)));
    const int32_t k = std::min(n, n_vocab);
    // the k largest by a running insertion into a sorted list: k is small (a user's top-N)
    int32_t count = 0;
    for (llama_token t = 0; t < n_vocab; ++t) {
        const float l = logits[t];
        if (count == k && !(l > logits[ids[k - 1]])) {
            continue;
        }
        int32_t at = count < k ? count++ : k - 1;
        while (at > 0 && l > logits[ids[at - 1]]) {
            ids[at] = ids[at - 1];
            --at;
        }
        ids[at] = t;
    }
    const double lse = log_sum_exp(logits, n_vocab);
    for (int32_t i = 0; i < count; ++i) {
        logprobs[i] = (float) ((double) logits[ids[i]] - lse);
    }
    return count;
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
    return (float) ((double) logits[token] - log_sum_exp(logits, n_vocab));
}


#include "llama-fork.h"

#include "ggml-backend.h"
#include "llama-model.h"

#include <cmath>

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

bool llama_fork_abort_on_flag(void * flag) {
    // a volatile read of an aligned int32 sees the caller's store (a relaxed load is all this needs,
    // and the C++17 this builds with has no atomic_ref)
    return flag != nullptr && *static_cast<const volatile int32_t *>(flag) != 0;
}

const char * llama_fork_model_layer_device(const struct llama_model * model, int32_t il) {
    if (model == nullptr || il < -1 || il >= (int32_t) model->hparams.n_layer()) {
        return nullptr;
    }
    try {
        ggml_backend_dev_t dev = il < 0 ? model->dev_output() : model->dev_layer(il);
        return dev ? ggml_backend_dev_name(dev) : nullptr;
    } catch (const std::exception &) {
        return nullptr; // a vocabulary-only model places no layer
    }
}

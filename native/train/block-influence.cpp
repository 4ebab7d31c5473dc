// ShortGPT's block influence (llama_flexidepth_block_influence): how much each layer changes the
// hidden state it receives, read from the layer inputs and outputs of an ordinary forward pass
// through the scheduler's evaluation callback.

#include "llama-flexidepth-train.h"

#include "flexidepth-plugin.h"

#include "ggml-backend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace flexidepth_block_influence {
namespace {

struct capture {
    int32_t n_layer = 0;
    // hidden states of the current window: states[0] = embeddings, states[l + 1] = output of layer l
    std::vector<std::vector<float>> states;
    std::vector<bool> seen;
    int64_t n_embd = 0;
};

// The index in capture::states of a tensor the graph named, or -1.
int state_index(const char * name, int32_t n_layer) {
    if (strcmp(name, "embd") == 0) {
        return 0;
    }
    int il = -1;
    char tail = 0;
    if (sscanf(name, "l_out-%d%c", &il, &tail) == 1 && il >= 0 && il < n_layer) {
        return il + 1;
    }
    return -1;
}

bool on_tensor(ggml_tensor * t, bool ask, void * ud) {
    auto * c = (capture *) ud;
    const int idx = state_index(t->name, c->n_layer);
    if (ask) {
        return idx >= 0;
    }
    if (idx >= 0 && t->type == GGML_TYPE_F32 && t->ne[0] == c->n_embd && ggml_is_contiguous(t)) {
        c->states[idx].resize(ggml_nelements(t));
        ggml_backend_tensor_get(t, c->states[idx].data(), 0, ggml_nbytes(t));
        c->seen[idx] = true;
    }
    return true;
}

} // namespace
} // namespace flexidepth_block_influence

int32_t llama_flexidepth_block_influence(struct llama_model * model, const llama_token * tokens, int64_t n_tokens,
                                         int32_t n_ctx, int32_t n_threads, float * out, int32_t n_layer) {
    using namespace flexidepth_block_influence;
    if (model == nullptr || tokens == nullptr || out == nullptr || n_ctx < 2 || n_tokens < n_ctx) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "block influence needs a model, at least n_ctx >= 2 tokens and an output buffer");
    }
    if (n_layer != llama_model_n_layer(model)) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the output buffer must hold one value per layer ("
                               + std::to_string(llama_model_n_layer(model)) + ")");
    }
    capture c;
    c.n_layer = n_layer;
    c.n_embd = llama_model_n_embd(model);
    c.states.resize(n_layer + 1);

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = (uint32_t) n_ctx;
    cp.n_threads = cp.n_threads_batch = n_threads > 0 ? n_threads : (int32_t) std::max(1u, std::thread::hardware_concurrency());
    cp.cb_eval = on_tensor;
    cp.cb_eval_user_data = &c;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (ctx == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_ALLOC, "cannot create a context for block influence");
    }
    std::vector<double> cos_sum(n_layer, 0.0);
    int64_t n_rows = 0;
    llama_batch batch = llama_batch_init(n_ctx, 0, 1);
    int32_t rc = LLAMA_FLEXIDEPTH_OK;
    for (int64_t at = 0; at + n_ctx <= n_tokens && rc == LLAMA_FLEXIDEPTH_OK; at += n_ctx) {
        llama_memory_clear(llama_get_memory(ctx), true);
        batch.n_tokens = n_ctx;
        for (int32_t i = 0; i < n_ctx; ++i) {
            batch.token[i] = tokens[at + i];
            batch.pos[i] = i;
            batch.n_seq_id[i] = 1;
            batch.seq_id[i][0] = 0;
            batch.logits[i] = true; // every row reaches the last layer's output
        }
        c.seen.assign(n_layer + 1, false);
        if (llama_decode(ctx, batch) != 0) {
            rc = flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "decoding the calibration tokens failed");
            break;
        }
        if (std::find(c.seen.begin(), c.seen.end(), false) != c.seen.end()) {
            rc = flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_ARCHITECTURE, "this model's graph does not name its layer outputs (embd, l_out-N)");
            break;
        }
        for (int32_t l = 0; l < n_layer; ++l) {
            const float * x = c.states[l].data();
            const float * y = c.states[l + 1].data();
            for (int32_t t = 0; t < n_ctx; ++t) {
                double xy = 0, xx = 0, yy = 0;
                for (int64_t k = 0; k < c.n_embd; ++k) {
                    const double a = x[t * c.n_embd + k], b = y[t * c.n_embd + k];
                    xy += a * b;
                    xx += a * a;
                    yy += b * b;
                }
                cos_sum[l] += xy / std::max(std::sqrt(xx * yy), 1e-30);
            }
        }
        n_rows += n_ctx;
    }
    llama_batch_free(batch);
    llama_free(ctx);
    if (rc == LLAMA_FLEXIDEPTH_OK) {
        for (int32_t l = 0; l < n_layer; ++l) {
            out[l] = (float) (1.0 - cos_sum[l] / (double) n_rows);
        }
    }
    return rc;
}

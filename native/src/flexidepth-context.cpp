// Setting plug-ins on contexts and reading back their routing decisions. A context owns its
// binding (llama_context::flexidepth), as it owns its LoRA adapters; graph params carry it.

#include "flexidepth-graph.h"

#include "llama-context.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <stdexcept>

namespace {

// Graph topology ids: a fresh one whenever what a context's graphs compute changes (another
// plug-in, mode), so that a graph built for one is never reused for another.
std::atomic<uint64_t> next_graph_id{1};

// Test hook (native/tests/flexidepth-faults.cpp): the next compute-buffer reservation of a
// plug-in change fails as an allocation failure would, so the recovery path can be tested.
std::atomic<int> fail_next_reserve{0};

int32_t check_params(const llama_adapter_flexidepth & fd, const llama_flexidepth_params & p) {
    if (!std::isfinite(p.threshold) || p.threshold < 0.0f || p.threshold > 1.0f) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "threshold must be in [0, 1], was " + std::to_string(p.threshold));
    }
    if (p.mode != LLAMA_FLEXIDEPTH_MODE_DENSE && p.mode != LLAMA_FLEXIDEPTH_MODE_MASKED && p.mode != LLAMA_FLEXIDEPTH_MODE_AUTO) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "unknown mode " + std::to_string((int) p.mode));
    }
    if (p.masked_max_tokens < 0) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "masked_max_tokens must be >= 0");
    }
    if (p.forced != nullptr) {
        if (p.n_forced != (int32_t) fd.layers.size()) {
            return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "expected " + std::to_string(fd.layers.size()) + " forced decisions");
        }
        for (int32_t r = 0; r < p.n_forced; ++r) {
            if (p.forced[r] < -1 || p.forced[r] > 1) {
                return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "a forced decision is -1, 0 or 1");
            }
        }
    }
    return LLAMA_FLEXIDEPTH_OK;
}

// What can change without another graph: the threshold, forcing, recording.
void apply_data(llama_flexidepth_binding & b, const llama_flexidepth_params & p) {
    b.tau = p.threshold;
    b.forced.assign(b.fd->layers.size(), -1);
    if (p.forced != nullptr) {
        b.forced.assign(p.forced, p.forced + p.n_forced);
    }
    b.collect = p.collect && !b.training;
    if (!b.collect) {
        b.n_recorded = 0;
    }
}

// ctx computes with `next` from now on (nullptr: the base model), once compute buffers for its
// graphs are reserved; on failure it keeps what it had and the failure is thrown.
void replace(llama_context * ctx, std::unique_ptr<llama_flexidepth_binding> next) {
    if (next) {
        next->graph_id = next_graph_id++;
    }
    ctx->set_flexidepth(std::move(next));
}

} // namespace

llama_flexidepth_binding::llama_flexidepth_binding(llama_context * ctx, llama_adapter_flexidepth * fd) : ctx(ctx), fd(fd) {
}

llama_flexidepth_binding::~llama_flexidepth_binding() {
    std::lock_guard<std::mutex> lock(fd->users_mutex);
    auto it = fd->users.find(ctx);
    if (it != fd->users.end() && it->second == this) {
        fd->users.erase(it);
    }
}

void llama_context::set_flexidepth(std::unique_ptr<llama_flexidepth_binding> binding, bool force) {
    synchronize();
    std::swap(flexidepth, binding); // binding: the previous one, freed on return
    // the graph changes shape: re-reserve compute buffers now, as training builds its graphs
    // without passing through decode's lazy reserve
    sched_need_reserve = true;
    try {
        if (fail_next_reserve.exchange(0) != 0) {
            throw std::runtime_error("injected reservation failure");
        }
        sched_reserve();
    } catch (const std::exception & e) {
        // sched_reserve throws on allocation failure; no exception may leave the C API, and the
        // context must keep computing what it computed before
        sched_need_reserve = true; // the next decode reserves again, and reports a failure itself
        if (!force) {
            std::swap(flexidepth, binding);
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, std::string("cannot reserve compute buffers: ") + e.what());
        }
    }
    if (flexidepth) {
        std::lock_guard<std::mutex> lock(flexidepth->fd->users_mutex);
        flexidepth->fd->users[this] = flexidepth.get();
    }
}

extern "C" LLAMA_API void llama_flexidepth_test_fail_next_reserve(void) {
    fail_next_reserve = 1;
}

struct llama_flexidepth_params llama_flexidepth_default_params(void) {
    llama_flexidepth_params p = {};
    p.threshold = 0.5f;
    p.mode = LLAMA_FLEXIDEPTH_MODE_AUTO;
    // measured with llama-flexidepth-bench: above a few tokens per ubatch the dense kernels win
    p.masked_max_tokens = 16;
    p.collect = true;
    p.forced = nullptr;
    p.n_forced = 0;
    return p;
}

int32_t llama_set_adapter_flexidepth(struct llama_context * ctx, struct llama_adapter_flexidepth * adapter,
                                     const struct llama_flexidepth_params * params) {
    if (ctx == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "context must not be NULL");
    }
    try {
        if (adapter == nullptr) {
            if (ctx->flexidepth) {
                replace(ctx, nullptr);
            }
            return LLAMA_FLEXIDEPTH_OK;
        }
        if (ctx->dmtd) {
            return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the context decodes with DMTD; DMTD and plug-ins do not combine yet");
        }
        if (adapter->model != &ctx->get_model()) {
            return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_WRONG_BASE, "the plug-in was loaded for another model than the context's");
        }
        const llama_flexidepth_params p = params ? *params : llama_flexidepth_default_params();
        if (int32_t rc = check_params(*adapter, p); rc != LLAMA_FLEXIDEPTH_OK) {
            return rc;
        }
        llama_flexidepth_binding * cur = ctx->flexidepth.get();
        if (cur != nullptr && cur->fd == adapter && !cur->training && cur->mode == p.mode && cur->masked_max_tokens == p.masked_max_tokens) {
            apply_data(*cur, p);
            return LLAMA_FLEXIDEPTH_OK;
        }
        auto next = std::make_unique<llama_flexidepth_binding>(ctx, adapter);
        next->mode = p.mode;
        next->masked_max_tokens = p.masked_max_tokens;
        if (cur != nullptr && !cur->training) {
            next->seq_tau = cur->seq_tau; // a sequence's threshold belongs to the sequence, not the plug-in
            if (cur->fd == adapter) {
                next->visibility = cur->visibility; // the cache's cells keep who skipped them
            }
        }
        apply_data(*next, p);
        replace(ctx, std::move(next));
        return LLAMA_FLEXIDEPTH_OK;
    } catch (const flexidepth_error & e) {
        return flexidepth_fail(e.status, e.message); // what was set before still is
    }
}

llama_flexidepth_binding * flexidepth_set_training(llama_context * ctx, llama_adapter_flexidepth * fd, float tau, float alpha) {
    auto next = std::make_unique<llama_flexidepth_binding>(ctx, fd);
    next->training = true;
    next->alpha = alpha;
    llama_flexidepth_params p = llama_flexidepth_default_params();
    p.threshold = tau;
    apply_data(*next, p);
    replace(ctx, std::move(next));
    return ctx->flexidepth.get();
}

void llama_adapter_flexidepth_free(struct llama_adapter_flexidepth * fd) {
    if (fd == nullptr) {
        return;
    }
    // Contexts still computing with the plug-in go back to the base model rather than keep
    // dangling tensors; forced, so that a failed reservation cannot keep the plug-in referenced.
    std::vector<llama_context *> users;
    {
        std::lock_guard<std::mutex> lock(fd->users_mutex);
        for (const auto & [ctx, binding] : fd->users) {
            users.push_back(ctx);
        }
    }
    for (llama_context * ctx : users) {
        ctx->set_flexidepth(nullptr, /*force =*/ true);
    }
    delete fd;
}

int32_t llama_set_flexidepth_threshold_seq(struct llama_context * ctx, llama_seq_id seq_id, float threshold) {
    if (ctx == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "context must not be NULL");
    }
    llama_flexidepth_binding * b = ctx->flexidepth.get();
    if (b == nullptr || b->training) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the context computes with no FlexiDepth plug-in");
    }
    if (!std::isfinite(threshold) || threshold > 1.0f) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "threshold must be in [0, 1] (or negative to clear), was " + std::to_string(threshold));
    }
    if (seq_id < 0) {
        if (threshold >= 0.0f) {
            return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "seq_id -1 only clears every sequence's threshold");
        }
        b->seq_tau.clear();
    } else if (threshold < 0.0f) {
        b->seq_tau.erase(seq_id);
    } else {
        b->seq_tau[seq_id] = threshold;
    }
    return LLAMA_FLEXIDEPTH_OK;
}

const struct llama_adapter_flexidepth * llama_get_adapter_flexidepth(const struct llama_context * ctx) {
    const llama_flexidepth_binding * b = ctx ? ctx->flexidepth.get() : nullptr;
    return b && !b->training ? b->fd : nullptr;
}

int32_t llama_get_flexidepth_routing(struct llama_context * ctx, float * gates, uint8_t * run,
                                     llama_pos * pos, llama_seq_id * seq_id, int32_t capacity) {
    if (ctx == nullptr || capacity < 0) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "invalid context or capacity");
    }
    const llama_flexidepth_binding * b = ctx->flexidepth.get();
    if (b == nullptr || !b->collect) {
        return 0;
    }
    const int32_t n = b->n_recorded;
    if (gates == nullptr && run == nullptr && pos == nullptr && seq_id == nullptr) {
        return n;
    }
    if (capacity < n) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "buffers hold " + std::to_string(capacity)
                               + " tokens; the last decode recorded " + std::to_string(n));
    }
    // the gates were copied asynchronously by the last decode
    ctx->synchronize();
    const size_t n_routed = b->fd->layers.size();
    for (int32_t t = 0; t < n; ++t) {
        const int32_t u = b->slot[t]; // where the ubatches computed batch token t
        for (size_t r = 0; r < n_routed; ++r) {
            const float g = b->gates[r * b->capacity + u];
            if (gates) {
                gates[t * n_routed + r] = g;
            }
            if (run) {
                run[t * n_routed + r] = b->forced[r] < 0 ? (g > b->tau_at[t] ? 1 : 0) : (uint8_t) b->forced[r];
            }
        }
        if (pos) {
            pos[t] = b->pos[t];
        }
        if (seq_id) {
            seq_id[t] = b->seq[t];
        }
    }
    return n;
}

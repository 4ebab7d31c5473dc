// The C API that binds plug-ins to contexts and reads back their routing decisions.

#include "flexidepth-graph.h"

#include "llama-context.h"

#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace {

std::mutex registry_mutex;
// The binding of every context with an attached plug-in. Owned here so that upstream's
// llama_context needs only a pointer.
std::unordered_map<llama_context *, std::unique_ptr<llama_flexidepth_binding>> registry;

// Graph topology ids: a fresh one whenever what the graph computes changes (attach, mode), so
// that a graph built for one plug-in or mode is never reused for another.
std::atomic<uint64_t> next_graph_id{1};

bool valid_tau(float tau) {
    return std::isfinite(tau) && tau >= 0.0f && tau <= 1.0f;
}

llama_flexidepth_binding * binding_of(const llama_context * ctx) {
    auto it = registry.find(const_cast<llama_context *>(ctx));
    return it == registry.end() ? nullptr : it->second.get();
}

} // namespace

// Test hook (native/tests/flexidepth-faults.cpp): the next compute-buffer reservation of a
// plug-in change fails as an allocation failure would, so the recovery path can be tested.
static std::atomic<int> fail_next_reserve{0};

void llama_context::set_flexidepth(llama_flexidepth_binding * binding, uint64_t plugin_id, bool force) {
    synchronize();
    llama_flexidepth_binding * prev_binding = cparams.flexidepth;
    const uint64_t prev_id = cparams.flexidepth_id;
    cparams.flexidepth    = binding;
    cparams.flexidepth_id = plugin_id;
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
        if (!force) {
            cparams.flexidepth    = prev_binding;
            cparams.flexidepth_id = prev_id;
        }
        sched_need_reserve = true; // the next decode reserves again, and reports a failure itself
        if (!force) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, std::string("cannot reserve compute buffers: ") + e.what());
        }
    }
}

extern "C" LLAMA_API void llama_flexidepth_test_fail_next_reserve(void) {
    fail_next_reserve = 1;
}

llama_flexidepth_binding * flexidepth_binding(const llama_context * ctx) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    return binding_of(ctx);
}

void flexidepth_context_destroyed(const llama_context * ctx) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    registry.erase(const_cast<llama_context *>(ctx));
}

int32_t llama_flexidepth_attach(struct llama_context * ctx, struct llama_flexidepth * fd, float tau) {
    return flexidepth_attach(ctx, fd, tau, false, 0.0f);
}

int32_t flexidepth_attach(llama_context * ctx, llama_flexidepth * fd, float tau, bool training, float alpha) {
    if (ctx == nullptr || fd == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "context and plug-in must not be NULL");
    }
    if (!valid_tau(tau)) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "threshold must be in [0, 1], was " + std::to_string(tau));
    }
    if (fd->model != &ctx->get_model()) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_WRONG_BASE, "the plug-in was loaded for another model than the context's");
    }
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto binding = std::make_unique<llama_flexidepth_binding>();
    binding->fd = fd;
    binding->tau = tau;
    binding->forced.assign(fd->layers.size(), -1);
    binding->training = training;
    binding->alpha = alpha;
    binding->collect = !training;
    try {
        ctx->set_flexidepth(binding.get(), next_graph_id++);
    } catch (const flexidepth_error & e) {
        return flexidepth_fail(e.status, e.message); // the previous binding is still attached
    }
    registry[ctx] = std::move(binding); // frees a previous binding, whose graphs can no longer be reused
    return LLAMA_FLEXIDEPTH_OK;
}

int32_t llama_flexidepth_detach(struct llama_context * ctx) {
    if (ctx == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "context must not be NULL");
    }
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (registry.count(ctx)) {
        try {
            ctx->set_flexidepth(nullptr, 0);
        } catch (const flexidepth_error & e) {
            return flexidepth_fail(e.status, e.message); // still attached
        }
        registry.erase(ctx);
    }
    return LLAMA_FLEXIDEPTH_OK;
}

void llama_flexidepth_free(struct llama_flexidepth * fd) {
    if (fd == nullptr) {
        return;
    }
    {
        // Freeing an attached plug-in detaches it rather than leaving contexts with dangling
        // tensors; forced, so that a failed reservation cannot keep the plug-in referenced.
        std::lock_guard<std::mutex> lock(registry_mutex);
        for (auto it = registry.begin(); it != registry.end();) {
            if (it->second->fd == fd) {
                it->first->set_flexidepth(nullptr, 0, /*force =*/ true);
                it = registry.erase(it);
            } else {
                ++it;
            }
        }
    }
    delete fd;
}

int32_t llama_flexidepth_set_threshold(struct llama_context * ctx, float tau) {
    if (!valid_tau(tau)) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "threshold must be in [0, 1], was " + std::to_string(tau));
    }
    std::lock_guard<std::mutex> lock(registry_mutex);
    llama_flexidepth_binding * b = binding_of(ctx);
    if (b == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "no plug-in is attached to this context");
    }
    b->tau = tau;
    return LLAMA_FLEXIDEPTH_OK;
}

int32_t llama_flexidepth_set_mode(struct llama_context * ctx, enum llama_flexidepth_mode mode) {
    if (mode != LLAMA_FLEXIDEPTH_MODE_DENSE && mode != LLAMA_FLEXIDEPTH_MODE_MASKED && mode != LLAMA_FLEXIDEPTH_MODE_AUTO) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "unknown mode " + std::to_string((int) mode));
    }
    std::lock_guard<std::mutex> lock(registry_mutex);
    llama_flexidepth_binding * b = binding_of(ctx);
    if (b == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "no plug-in is attached to this context");
    }
    if (b->mode != mode) {
        const llama_flexidepth_mode prev = b->mode;
        b->mode = mode;
        try {
            ctx->set_flexidepth(b, next_graph_id++);
        } catch (const flexidepth_error & e) {
            b->mode = prev;
            return flexidepth_fail(e.status, e.message);
        }
    }
    return LLAMA_FLEXIDEPTH_OK;
}

int32_t llama_flexidepth_force(struct llama_context * ctx, const int8_t * decisions, int32_t n_decisions) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    llama_flexidepth_binding * b = binding_of(ctx);
    if (b == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "no plug-in is attached to this context");
    }
    const size_t n = b->fd->layers.size();
    if (decisions != nullptr && n_decisions != (int32_t) n) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "expected " + std::to_string(n) + " forced decisions");
    }
    for (size_t r = 0; r < n; ++r) {
        const int8_t d = decisions ? decisions[r] : -1;
        if (d < -1 || d > 1) {
            return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "a forced decision is -1, 0 or 1");
        }
    }
    for (size_t r = 0; r < n; ++r) {
        const int8_t d = decisions ? decisions[r] : -1;
        b->forced[r] = d;
    }
    return LLAMA_FLEXIDEPTH_OK;
}

int32_t llama_flexidepth_set_collect(struct llama_context * ctx, bool collect) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    llama_flexidepth_binding * b = binding_of(ctx);
    if (b == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "no plug-in is attached to this context");
    }
    b->collect = collect;
    if (!collect) {
        b->n_recorded = 0;
    }
    return LLAMA_FLEXIDEPTH_OK;
}

int32_t llama_flexidepth_n_recorded(const struct llama_context * ctx) {
    std::lock_guard<std::mutex> lock(registry_mutex);
    const llama_flexidepth_binding * b = binding_of(ctx);
    return b && b->collect ? b->n_recorded : 0;
}

int32_t llama_flexidepth_get_routing(const struct llama_context * ctx, float * gates, uint8_t * run,
                                     llama_pos * pos, llama_seq_id * seq_id, int32_t capacity) {
    if (ctx == nullptr || capacity < 0) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "invalid context or capacity");
    }
    // the gates were copied asynchronously by the last decode
    const_cast<llama_context *>(ctx)->synchronize();
    std::lock_guard<std::mutex> lock(registry_mutex);
    const llama_flexidepth_binding * b = binding_of(ctx);
    if (b == nullptr || !b->collect) {
        return 0;
    }
    const int32_t n = b->n_recorded;
    if (capacity < n) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "buffers hold " + std::to_string(capacity)
                               + " tokens; the last decode recorded " + std::to_string(n));
    }
    const size_t n_routed = b->fd->layers.size();
    for (int32_t t = 0; t < n; ++t) {
        const int32_t u = b->slot[t]; // where the ubatches computed batch token t
        for (size_t r = 0; r < n_routed; ++r) {
            const float g = b->gates[r * b->capacity + u];
            if (gates) {
                gates[t * n_routed + r] = g;
            }
            if (run) {
                run[t * n_routed + r] = b->forced[r] < 0 ? (g > b->tau_recorded ? 1 : 0) : (uint8_t) b->forced[r];
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

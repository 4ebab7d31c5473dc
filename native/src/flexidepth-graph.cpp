#include "flexidepth-graph.h"

#include "llama-batch.h"

#include "ggml-backend.h"

#include <memory>

uint32_t flexidepth_graph_nodes(const llama_flexidepth_binding * binding) {
    // router 9, masks 4, adapter ~8, mixing 8, with margin
    return binding && binding->fd ? 40u * (uint32_t) binding->fd->layers.size() : 0u;
}

void llm_graph_input_flexidepth::set_input(const llama_ubatch * ubatch) {
    GGML_UNUSED(ubatch);
    ggml_backend_tensor_set(tau, &binding->tau, 0, sizeof(float));
}

llm_flexidepth_graph::llm_flexidepth_graph(const llm_graph_context & g) : g(g) {
    llama_flexidepth_binding * b = g.cparams.flexidepth;
    if (b == nullptr || b->fd == nullptr) {
        return;
    }
    fd = b->fd;
    auto input = std::make_unique<llm_graph_input_flexidepth>(b);
    input->tau = ggml_new_tensor_1d(g.ctx0, GGML_TYPE_F32, 1);
    ggml_set_input(input->tau);
    ggml_set_name(input->tau, "fd_tau");
    inp = static_cast<llm_graph_input_flexidepth *>(g.res->add_input(std::move(input)));
}

void llm_flexidepth_graph::route(int il, ggml_tensor * z) {
    gate = run = nullptr;
    const llama_flexidepth_layer * L = fd ? fd->layer(il) : nullptr;
    if (L == nullptr) {
        return;
    }
    ggml_context * ctx0 = g.ctx0;
    ggml_tensor * r = ggml_mul_mat(ctx0, L->router_down, z);                 // [d_r, n]
    r = ggml_rms_norm(ctx0, r, g.hparams.f_norm_rms_eps);
    r = ggml_mul(ctx0, r, L->router_norm);
    r = ggml_tanh(ctx0, r);
    r = ggml_mul_mat(ctx0, L->router_up, r);                                 // [d, n]
    r = ggml_mul_mat(ctx0, L->router_head, r);                               // [1, n]
    if (L->router_bias != nullptr) {
        r = ggml_add(ctx0, r, L->router_bias);
    }
    gate = ggml_sigmoid(ctx0, r);
    g.cb(gate, "fd_gate", il);
    ggml_set_output(gate); // read back after compute: must not share memory with later nodes
    inp->gates.push_back(gate);
    run = ggml_step(ctx0, ggml_sub(ctx0, gate, inp->tau));                   // g > tau
    g.cb(run, "fd_run", il);
}

ggml_tensor * llm_flexidepth_graph::mask_attention(int il, ggml_tensor * attn_out, ggml_tensor * out_ids) {
    if (gate == nullptr) {
        return attn_out;
    }
    if (out_ids != nullptr) {
        gate = ggml_get_rows(g.ctx0, gate, out_ids);
        run  = ggml_get_rows(g.ctx0, run,  out_ids);
    }
    ggml_tensor * masked = ggml_mul(g.ctx0, attn_out, run);
    g.cb(masked, "fd_attn_out", il);
    return masked;
}

ggml_tensor * llm_flexidepth_graph::mix_ffn(int il, ggml_tensor * ffn_out, ggml_tensor * u) {
    if (gate == nullptr) {
        return ffn_out;
    }
    const llama_flexidepth_layer * L = fd->layer(il);
    ggml_context * ctx0 = g.ctx0;
    ggml_tensor * adapter = g.build_ffn(u,
            L->adapter_up,   nullptr, nullptr,
            L->adapter_gate, nullptr, nullptr,
            L->adapter_down, nullptr, nullptr,
            nullptr, LLM_FFN_SILU, LLM_FFN_PAR, il);
    g.cb(adapter, "fd_adapter_out", il);
    ggml_tensor * w_ffn     = ggml_mul(ctx0, run, gate);                                   // run * g
    ggml_tensor * w_adapter = ggml_mul(ctx0, ggml_scale_bias(ctx0, run, -1.0f, 1.0f),
                                             ggml_scale_bias(ctx0, gate, -1.0f, 1.0f));    // (1-run)(1-g)
    ggml_tensor * mixed = ggml_add(ctx0, ggml_mul(ctx0, ffn_out, w_ffn), ggml_mul(ctx0, adapter, w_adapter));
    g.cb(mixed, "fd_ffn_out", il);
    gate = run = nullptr;
    return mixed;
}

void flexidepth_begin_batch(llama_flexidepth_binding * b, int32_t n_tokens) {
    if (b == nullptr || b->fd == nullptr) {
        return;
    }
    b->n_recorded = 0;
    b->tau_recorded = b->tau;
    if (!b->collect) {
        return;
    }
    if (n_tokens > b->capacity) {
        // grows only: steady-state decoding allocates nothing
        b->capacity = n_tokens;
        b->gates.resize((size_t) b->capacity * b->fd->layers.size());
        b->pos.resize(b->capacity);
        b->seq.resize(b->capacity);
    }
}

void flexidepth_collect(llama_flexidepth_binding * b, ggml_backend_sched_t sched,
                        const llm_graph_result * res, const llama_ubatch & ubatch, int64_t token_offset) {
    if (b == nullptr || b->fd == nullptr || !b->collect) {
        return;
    }
    const llm_graph_input_flexidepth * inp = nullptr;
    for (const auto & i : res->inputs) {
        if ((inp = dynamic_cast<const llm_graph_input_flexidepth *>(i.get())) != nullptr) {
            break;
        }
    }
    if (inp == nullptr || inp->binding != b) {
        return;
    }
    const int64_t n = ubatch.n_tokens;
    GGML_ASSERT(token_offset + n <= b->capacity);
    for (size_t r = 0; r < inp->gates.size(); ++r) {
        ggml_tensor * t = inp->gates[r];
        GGML_ASSERT(ggml_nelements(t) == n);
        ggml_backend_t backend = ggml_backend_sched_get_tensor_backend(sched, t);
        ggml_backend_tensor_get_async(backend, t, b->gates.data() + r * b->capacity + token_offset, 0, n * sizeof(float));
    }
    for (int64_t i = 0; i < n; ++i) {
        b->pos[token_offset + i] = ubatch.pos[i];
        b->seq[token_offset + i] = ubatch.seq_id[i][0];
    }
    b->n_recorded = (int32_t) (token_offset + n);
}

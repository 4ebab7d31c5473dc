#include "dmtd-graph.h"

#include "llama-batch.h"
#include "llama-kv-cache.h"

#include "ggml-backend.h"

#include <memory>

void dmtd_begin_batch(llama_dmtd_binding * b, const llama_batch & batch) {
    if (b == nullptr || b->current != llama_dmtd_binding::step::none) {
        return;
    }
    for (int32_t i = 0; i < batch.n_tokens; ++i) {
        for (int32_t s = 0; s < batch.n_seq_id[i]; ++s) {
            auto & st = b->seqs[batch.seq_id[i][s]];
            st.pending.clear();
            st.next_is_head = true;
        }
    }
}

void llm_graph_input_dmtd::set_input(const llama_ubatch * ubatch) {
    const int64_t n = ubatch->n_tokens;
    host.resize(3 * n);
    using step = llama_dmtd_binding::step;
    for (int64_t i = 0; i < n; ++i) {
        const auto it = binding->roles.find(llama_dmtd_binding::key(ubatch->seq_id[i][0], ubatch->pos[i]));
        const dmtd_row role = it == binding->roles.end() ? dmtd_row::prompt : it->second;
        host[i]     = role == dmtd_row::embd ? 0.0f : 1.0f; // h
        host[n + i] = role == dmtd_row::prompt ? 0.0f : 1.0f; // e
        // without refill a decoding-only token's thinking K/V stay unwritten: at its own step,
        // and in a full step of other sequences' heads, whose thinking layers compute its row
        const bool thinks = binding->current == step::none || (binding->current == step::full && (role != dmtd_row::embd || binding->scoring));
        host[2 * n + i] = thinks ? 1.0f : 0.0f;
    }
    if (h_scale != nullptr) {
        GGML_ASSERT(h_scale->ne[1] == n);
        ggml_backend_tensor_set(h_scale, host.data(), 0, n * sizeof(float));
        ggml_backend_tensor_set(e_scale, host.data() + n, 0, n * sizeof(float));
    }
    if (run != nullptr) {
        GGML_ASSERT(run->ne[1] == n);
        ggml_backend_tensor_set(run, host.data() + 2 * n, 0, n * sizeof(float));
    }
}

llm_dmtd_graph::llm_dmtd_graph(const llm_graph_context & g, const llm_graph_params & params) : g(g) {
    llama_dmtd_binding * b = params.dmtd;
    const bool hides = b != nullptr && !b->params.refill;
    if (b == nullptr || (b->current == llama_dmtd_binding::step::none && !hides)) {
        return;
    }
    n_thinking = b->params.n_thinking;
    decoding_only = b->current == llama_dmtd_binding::step::decoding_only;
    auto input = std::make_unique<llm_graph_input_dmtd>(b);
    auto add = [&](const char * name) {
        ggml_tensor * t = ggml_new_tensor_2d(g.ctx0, GGML_TYPE_F32, 1, g.n_tokens);
        ggml_set_input(t);
        ggml_set_name(t, name);
        return t;
    };
    if (b->current == llama_dmtd_binding::step::full) {
        input->h_scale = add("dmtd_h_scale");
        input->e_scale = add("dmtd_e_scale");
    }
    if (hides) {
        input->run = add("dmtd_thinking_run");
    }
    inp = static_cast<llm_graph_input_dmtd *>(g.res->add_input(std::move(input)));
}

ggml_tensor * llm_dmtd_graph::layer_input(int il, ggml_tensor * h, ggml_tensor * embd) {
    if (inp == nullptr || inp->h_scale == nullptr || il != n_thinking) {
        return h;
    }
    ggml_context * ctx0 = g.ctx0;
    ggml_tensor * d = ggml_add(ctx0, ggml_mul(ctx0, h, inp->h_scale), ggml_mul(ctx0, embd, inp->e_scale));
    g.cb(d, "dmtd_decoding_input", il);
    return d;
}

ggml_tensor * dmtd_attention_mask(const llm_graph_context & g, int il, ggml_tensor * kq_mask, ggml_tensor * k_idxs,
                                  const llama_kv_cache_context * mctx) {
    llm_graph_input_dmtd * inp = nullptr;
    for (const auto & i : g.res->inputs) {
        if ((inp = dynamic_cast<llm_graph_input_dmtd *>(i.get())) != nullptr) {
            break;
        }
    }
    if (inp == nullptr || inp->run == nullptr || kq_mask == nullptr || k_idxs == nullptr || mctx == nullptr) {
        return kq_mask;
    }
    llama_dmtd_binding * b = inp->binding;
    if (!b->visibility) {
        b->visibility = std::make_unique<llama_kv_visibility>();
    }
    ggml_context * ctx0 = g.ctx0;
    // one store for all thinking layers, on layer 0's device: their cells are written together
    if (il < b->params.n_thinking) {
        if (inp->thinking_mask == nullptr) {
            inp->thinking_mask = b->visibility->mask(ctx0, 0, inp->run, k_idxs, mctx->get_k(ctx0, 0), kq_mask);
            inp->visibility_written = true;
            g.cb(inp->thinking_mask, "dmtd_thinking_kq_mask", il);
        }
        return inp->thinking_mask;
    }
    if (!inp->visibility_written) {
        // a decoding-only step: no thinking layer reads the cells, but the next head must know them
        ggml_build_forward_expand(g.gf, b->visibility->write(ctx0, 0, inp->run, k_idxs, mctx->get_k(ctx0, 0)->view_src));
        inp->visibility_written = true;
    }
    return kq_mask;
}

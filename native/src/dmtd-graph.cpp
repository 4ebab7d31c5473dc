#include "dmtd-graph.h"

#include "llama-batch.h"

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
    const int64_t n = h_scale->ne[1];
    GGML_ASSERT(n == (int64_t) ubatch->n_tokens);
    host.resize(2 * n);
    for (int64_t i = 0; i < n; ++i) {
        const auto it = binding->roles.find(llama_dmtd_binding::key(ubatch->seq_id[i][0], ubatch->pos[i]));
        const dmtd_row role = it == binding->roles.end() ? dmtd_row::prompt : it->second;
        host[i]     = role == dmtd_row::embd ? 0.0f : 1.0f; // h
        host[n + i] = role == dmtd_row::prompt ? 0.0f : 1.0f; // e
    }
    ggml_backend_tensor_set(h_scale, host.data(), 0, n * sizeof(float));
    ggml_backend_tensor_set(e_scale, host.data() + n, 0, n * sizeof(float));
}

llm_dmtd_graph::llm_dmtd_graph(const llm_graph_context & g, const llm_graph_params & params) : g(g) {
    llama_dmtd_binding * b = params.dmtd;
    if (b == nullptr || b->current == llama_dmtd_binding::step::none) {
        return;
    }
    n_thinking = b->params.n_thinking;
    decoding_only = b->current == llama_dmtd_binding::step::decoding_only;
    if (decoding_only) {
        return; // the decoding layers' input is the embedding: the thinking layers are not in the graph
    }
    auto input = std::make_unique<llm_graph_input_dmtd>(b);
    input->h_scale = ggml_new_tensor_2d(g.ctx0, GGML_TYPE_F32, 1, g.n_tokens);
    input->e_scale = ggml_new_tensor_2d(g.ctx0, GGML_TYPE_F32, 1, g.n_tokens);
    ggml_set_input(input->h_scale);
    ggml_set_input(input->e_scale);
    ggml_set_name(input->h_scale, "dmtd_h_scale");
    ggml_set_name(input->e_scale, "dmtd_e_scale");
    inp = static_cast<llm_graph_input_dmtd *>(g.res->add_input(std::move(input)));
}

ggml_tensor * llm_dmtd_graph::layer_input(int il, ggml_tensor * h, ggml_tensor * embd) {
    if (inp == nullptr || il != n_thinking) {
        return h;
    }
    ggml_context * ctx0 = g.ctx0;
    ggml_tensor * d = ggml_add(ctx0, ggml_mul(ctx0, h, inp->h_scale), ggml_mul(ctx0, embd, inp->e_scale));
    g.cb(d, "dmtd_decoding_input", il);
    return d;
}

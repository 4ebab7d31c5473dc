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

static dmtd_row dmtd_role_of(const llama_dmtd_binding * binding, const llama_ubatch & ubatch, int64_t i) {
    const auto it = binding->roles.find(llama_dmtd_binding::key(ubatch.seq_id[i][0], ubatch.pos[i]));
    return it == binding->roles.end() ? dmtd_row::prompt : it->second;
}

int64_t llm_graph_input_dmtd::copied_rows(const llama_dmtd_binding * binding, const llama_ubatch & ubatch) {
    if (binding == nullptr || binding->refill_cells.empty()) {
        return 0;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < ubatch.n_tokens; ++i) {
        n += dmtd_role_of(binding, ubatch, i) == dmtd_row::refill;
    }
    return n < ubatch.n_tokens ? n : 0;
}

void llm_graph_input_dmtd::set_input(const llama_ubatch * ubatch) {
    const int64_t n = ubatch->n_tokens;
    host.resize(3 * n);
    using step = llama_dmtd_binding::step;
    for (int64_t i = 0; i < n; ++i) {
        const dmtd_row role = dmtd_role_of(binding, *ubatch, i);
        const bool embedded = role == dmtd_row::embd || role == dmtd_row::refill;
        host[i]     = embedded ? 0.0f : 1.0f;                // h
        host[n + i] = role == dmtd_row::prompt ? 0.0f : 1.0f; // e
        // without refill a decoding-only token's thinking K/V stay unwritten: at its own step,
        // and in a full step of other sequences' heads, whose thinking layers compute its row
        // (llama_dmtd_score's non-head rows too: its teacher-forced schedule is inference's)
        const bool thinks = binding->current == step::none || (binding->current == step::full && !embedded);
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
    if (keep != nullptr) {
        GGML_ASSERT(order->ne[0] == n && old_cells->ne[0] == n_copied);
        std::vector<int32_t> rows(2 * n + n_copied);
        int32_t * kept = rows.data(), * place = rows.data() + n, * cells = rows.data() + 2 * n;
        int32_t n_kept = 0, n_old = 0;
        for (int64_t i = 0; i < n; ++i) {
            if (dmtd_role_of(binding, *ubatch, i) == dmtd_row::refill) {
                cells[n_old] = binding->refill_cells.at(llama_dmtd_binding::key(ubatch->seq_id[i][0], ubatch->pos[i]));
                place[i] = (int32_t) (n - n_copied) + n_old++;
            } else {
                kept[n_kept] = (int32_t) i;
                place[i] = n_kept++;
            }
        }
        GGML_ASSERT(n_old == n_copied);
        ggml_backend_tensor_set(keep, kept, 0, n_kept * sizeof(int32_t));
        ggml_backend_tensor_set(order, place, 0, n * sizeof(int32_t));
        ggml_backend_tensor_set(old_cells, cells, 0, n_copied * sizeof(int32_t));
        if (old_v_elems != nullptr) {
            std::vector<int32_t> elems(n_embd_v * n_copied);
            for (int64_t r = 0; r < n_copied; ++r) {
                for (int64_t j = 0; j < n_embd_v; ++j) {
                    elems[r * n_embd_v + j] = (int32_t) (j * kv_size + cells[r]);
                }
            }
            ggml_backend_tensor_set(old_v_elems, elems.data(), 0, elems.size() * sizeof(int32_t));
        }
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
        input->n_copied = llm_graph_input_dmtd::copied_rows(b, params.ubatch);
        if (input->n_copied > 0) {
            auto rows = [&](int64_t n, const char * name) {
                ggml_tensor * t = ggml_new_tensor_2d(g.ctx0, GGML_TYPE_I32, n, 1);
                ggml_set_input(t);
                ggml_set_name(t, name);
                return t;
            };
            input->keep = rows(g.n_tokens - input->n_copied, "dmtd_keep");
            input->order = rows(g.n_tokens, "dmtd_order");
            input->old_cells = rows(input->n_copied, "dmtd_old_cells");
        }
    }
    if (hides) {
        input->run = add("dmtd_thinking_run");
    }
    inp = static_cast<llm_graph_input_dmtd *>(g.res->add_input(std::move(input)));
}

ggml_tensor * llm_dmtd_graph::layer_input(int il, ggml_tensor * h, ggml_tensor * embd, ggml_tensor *& positions, ggml_tensor *& out_ids) {
    if (inp == nullptr || inp->h_scale == nullptr || il != n_thinking) {
        return h;
    }
    ggml_context * ctx0 = g.ctx0;
    ggml_tensor * d = ggml_add(ctx0, ggml_mul(ctx0, h, inp->h_scale), ggml_mul(ctx0, embd, inp->e_scale));
    if (inp->keep != nullptr) {
        const int64_t n_keep = inp->keep->ne[0];
        GGML_ASSERT(positions->ne[0] == g.n_tokens); // one position per token (no M-RoPE)
        d = ggml_get_rows(ctx0, d, inp->keep);
        positions = ggml_reshape_1d(ctx0, ggml_get_rows(ctx0, ggml_reshape_2d(ctx0, positions, 1, g.n_tokens), inp->keep), n_keep);
        if (out_ids != nullptr) {
            // the outputs are never copied rows: their ids become places among the computed rows
            out_ids = ggml_reshape_1d(ctx0, ggml_get_rows(ctx0, ggml_reshape_2d(ctx0, inp->order, 1, g.n_tokens), out_ids), out_ids->ne[0]);
        }
    }
    g.cb(d, "dmtd_decoding_input", il);
    return d;
}

static llm_graph_input_dmtd * dmtd_input_of(const llm_graph_context & g) {
    for (const auto & i : g.res->inputs) {
        if (auto * inp = dynamic_cast<llm_graph_input_dmtd *>(i.get())) {
            return inp;
        }
    }
    return nullptr;
}

void dmtd_refill_kv(const llm_graph_context & g, int il, ggml_tensor *& k_cur, ggml_tensor *& v_cur,
                    const llama_kv_cache_context * mctx) {
    llm_graph_input_dmtd * inp = dmtd_input_of(g);
    if (inp == nullptr || inp->keep == nullptr || il < (int) inp->binding->params.n_thinking) {
        return;
    }
    ggml_context * ctx0 = g.ctx0;
    // [computed rows, the copied rows read from their old cells], put in the ubatch's order
    auto all_rows = [&](ggml_tensor * cur, ggml_tensor * old) {
        GGML_ASSERT(cur->type == GGML_TYPE_F32 && old->ne[0] == cur->ne[0] * cur->ne[1]);
        ggml_tensor * computed = ggml_reshape_2d(ctx0, ggml_cont(ctx0, cur), old->ne[0], cur->ne[2]);
        ggml_tensor * rows = ggml_get_rows(ctx0, ggml_concat(ctx0, computed, old, 1), inp->order);
        return ggml_reshape_3d(ctx0, rows, cur->ne[0], cur->ne[1], g.n_tokens);
    };
    // a layer's K (and V with flash attention) storage: [n_embd_gqa, kv_size, n_stream], a row per cell
    auto old_rows = [&](const ggml_tensor * storage) {
        ggml_tensor * cells = ggml_reshape_2d(ctx0, const_cast<ggml_tensor *>(storage), storage->ne[0], storage->ne[1] * storage->ne[2]);
        return ggml_get_rows(ctx0, cells, inp->old_cells);
    };
    const ggml_tensor * k_storage = mctx->get_k(ctx0, il)->view_src;
    const ggml_tensor * v_view = mctx->get_v(ctx0, il);
    const ggml_tensor * v_storage = v_view->view_src;
    GGML_ASSERT(k_storage != nullptr && v_storage != nullptr);
    k_cur = all_rows(k_cur, old_rows(k_storage));
    if (v_view->nb[1] <= v_view->nb[2]) { // llama_kv_cache::get_v: V by rows (flash attention)
        v_cur = all_rows(v_cur, old_rows(v_storage));
        return;
    }
    // without flash attention V is stored transposed, element j of cell c at j * kv_size + c
    // (llama_kv_cache::set_input_v_idxs): the old cells' elements, gathered one by one
    if (inp->old_v_elems == nullptr) {
        inp->n_embd_v = v_storage->ne[0];
        inp->kv_size = v_storage->ne[1];
        inp->old_v_elems = ggml_new_tensor_1d(ctx0, GGML_TYPE_I32, inp->n_embd_v * inp->n_copied);
        ggml_set_input(inp->old_v_elems);
        ggml_set_name(inp->old_v_elems, "dmtd_old_v_elements");
    }
    ggml_tensor * elems = ggml_reshape_2d(ctx0, const_cast<ggml_tensor *>(v_storage), 1, ggml_nelements(v_storage));
    ggml_tensor * old = ggml_reshape_2d(ctx0, ggml_get_rows(ctx0, elems, inp->old_v_elems), inp->n_embd_v, inp->n_copied);
    v_cur = all_rows(v_cur, old);
}

ggml_tensor * dmtd_attention_mask(const llm_graph_context & g, int il, ggml_tensor * kq_mask, ggml_tensor * k_idxs,
                                  const llama_kv_cache_context * mctx) {
    llm_graph_input_dmtd * inp = dmtd_input_of(g);
    if (inp != nullptr && inp->keep != nullptr && kq_mask != nullptr && il >= (int) inp->binding->params.n_thinking) {
        // the computed rows' queries; one stream (dmtd_full_step copies only then)
        if (inp->keep_mask == nullptr) {
            GGML_ASSERT(kq_mask->ne[2] == 1 && kq_mask->ne[3] == 1 && kq_mask->ne[1] == g.n_tokens);
            ggml_tensor * rows = ggml_get_rows(g.ctx0, kq_mask, inp->keep);
            inp->keep_mask = kq_mask->type == GGML_TYPE_F32 ? rows : ggml_cast(g.ctx0, rows, kq_mask->type);
            g.cb(inp->keep_mask, "dmtd_keep_kq_mask", il);
        }
        return inp->keep_mask;
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

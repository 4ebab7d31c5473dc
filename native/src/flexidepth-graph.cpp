#include "flexidepth-graph.h"

#include "flexidepth-fused-ops.h"

#include "llama-batch.h"
#include "llama-model.h"

#include "ggml-backend.h"

#include <algorithm>
#include <memory>

uint32_t flexidepth_graph_nodes(const llama_flexidepth_binding * binding) {
    if (binding == nullptr || binding->fd == nullptr) {
        return 0u;
    }
    // router 9, forcing 4, masks and ids 8, adapter ~14, mixing 8, with margin
    const uint32_t routed = 64u * (uint32_t) binding->fd->layers.size();
    if (!binding->training) {
        return routed;
    }
    // ggml-opt builds the backward pass and the optimizer steps in a graph of the same size:
    // about three times the forward nodes (the upstream budget is for inference only)
    const uint32_t forward = std::max<uint32_t>(1024u, 8u * (uint32_t) binding->fd->model->n_tensors()) + routed;
    return 4u * forward;
}

void llm_graph_input_flexidepth::set_input(const llama_ubatch * ubatch) {
    const int64_t n_tokens = taus->ne[0];
    GGML_ASSERT(n_tokens == (int64_t) ubatch->n_tokens);
    for (int64_t i = 0; i < n_tokens; ++i) {
        const float tau = binding->tau_of(ubatch->seq_id[i][0]); // one lookup per token, not per layer
        for (int64_t r = 0; r < taus->ne[1]; ++r) {
            taus_host[r * n_tokens + i] = binding->threshold_of(r, tau);
        }
    }
    ggml_backend_tensor_set(taus, taus_host.data(), 0, ggml_nbytes(taus));
}

llm_flexidepth_graph::llm_flexidepth_graph(const llm_graph_context & g, const llama_model & model, const llm_graph_params & params)
        : g(g), model(model) {
    llama_flexidepth_binding * b = params.flexidepth;
    if (b == nullptr || b->fd == nullptr) {
        return;
    }
    fd = b->fd;
    if (b->training) {
        b->train_gates.clear();
    }
    masked = !b->training && b->mode != LLAMA_FLEXIDEPTH_MODE_DENSE;
    // AUTO: larger ubatches are masked only in layers whose products compact them
    large_dense = b->mode == LLAMA_FLEXIDEPTH_MODE_AUTO && g.n_tokens > b->masked_max_tokens;
    const int64_t n_routed = (int64_t) fd->layers.size();
    auto input = std::make_unique<llm_graph_input_flexidepth>(b);
    input->taus = ggml_new_tensor_2d(g.ctx0, GGML_TYPE_F32, g.n_tokens, n_routed);
    input->taus_host.resize(g.n_tokens * n_routed);
    ggml_set_input(input->taus);
    ggml_set_name(input->taus, "fd_taus");
    inp = static_cast<llm_graph_input_flexidepth *>(g.res->add_input(std::move(input)));
}

// x [K, T] through W [K, N] for the tokens whose id is 0 only; the others come out as exact zeros
// and W is not read for them (one-expert ggml_mul_mat_id with skip ids).
static ggml_tensor * mul_mat_rows(ggml_context * ctx, ggml_tensor * w, ggml_tensor * x, ggml_tensor * ids) {
    const int64_t T = x->ne[1];
    if (!ggml_is_contiguous(x)) {
        x = ggml_cont(ctx, x);
    }
    ggml_tensor * y = ggml_mul_mat_id(ctx, w, ggml_reshape_3d(ctx, x, x->ne[0], 1, T), ids); // [N, 1, T]
    return ggml_reshape_2d(ctx, y, w->ne[1], T);
}

// {0, -1} ids from a {1, 0} mask: the tokens where mask is 1 are computed.
static ggml_tensor * ids_where(ggml_context * ctx, ggml_tensor * mask) {
    return ggml_cast(ctx, ggml_scale_bias(ctx, mask, 1.0f, -1.0f), GGML_TYPE_I32);
}

// The skip ids for a product of w with cur when w's layer is masked in this graph, else nullptr.
static ggml_tensor * masked_ids(const llm_graph_context & g, const ggml_tensor * w, const ggml_tensor * cur) {
    // only the weights registered by route() in masked mode are masked
    if (cur->ne[2] != 1 || cur->ne[3] != 1) {
        return nullptr;
    }
    for (const auto & i : g.res->inputs) {
        const auto * inp = dynamic_cast<const llm_graph_input_flexidepth *>(i.get());
        if (inp == nullptr) {
            continue;
        }
        for (const auto & [weight, rows] : inp->masked_weights) {
            if (weight != w) {
                continue;
            }
            // the last layer has all rows before the output selection and fewer after it
            return rows->ids_all && rows->ids_all->ne[1] == cur->ne[1] ? rows->ids_all
                 : rows->ids_out && rows->ids_out->ne[1] == cur->ne[1] ? rows->ids_out : nullptr;
        }
        return nullptr;
    }
    return nullptr;
}

ggml_tensor * flexidepth_masked_mul_mat(const llm_graph_context & g, ggml_tensor * w, ggml_tensor * cur) {
    ggml_tensor * ids = masked_ids(g, w, cur);
    return ids ? mul_mat_rows(g.ctx0, w, cur, ids) : nullptr;
}

ggml_tensor * flexidepth_masked_lora_mm(const llm_graph_context & g, ggml_tensor * w, ggml_tensor * a, ggml_tensor * b, ggml_tensor * cur) {
    ggml_tensor * ids = masked_ids(g, w, cur);
    return ids ? mul_mat_rows(g.ctx0, b, mul_mat_rows(g.ctx0, a, cur, ids), ids) : nullptr;
}

ggml_tensor * flexidepth_attention_mask(const llm_graph_context & g, int il, ggml_tensor * kq_mask, ggml_tensor * k_idxs, ggml_tensor * k_view) {
    if (kq_mask == nullptr) {
        return kq_mask;
    }
    for (const auto & i : g.res->inputs) {
        const auto * inp = dynamic_cast<const llm_graph_input_flexidepth *>(i.get());
        if (inp == nullptr) {
            continue;
        }
        llama_flexidepth_binding * b = inp->binding;
        const auto run = inp->runs.find(il);
        if (run != inp->runs.end() && b->fd->skip == LLAMA_FLEXIDEPTH_SKIP_LAYER_NO_KV && k_idxs != nullptr && k_view != nullptr) {
            if (!b->visibility) {
                b->visibility = std::make_shared<llama_kv_visibility>();
            }
            kq_mask = b->visibility->mask(g.ctx0, il, run->second, k_idxs, k_view, kq_mask);
            g.cb(kq_mask, "fd_kq_mask_visible", il);
        }
        if (!g.cparams.flash_attn) {
            return kq_mask; // without flash attention every row reads K anyway (KQ product)
        }
        for (const auto & rows : inp->rows) {
            if (rows->il != il || rows->run->ne[1] > kq_mask->ne[1]) {
                continue;
            }
            if (!rows->exact_zeros) {
                return kq_mask; // the attention output of skipped rows must stay finite: keep reading
            }
            ggml_context * ctx0 = g.ctx0;
            ggml_tensor * masked;
            if (rows->kq_bias != nullptr && rows->kq_bias->ne[1] == kq_mask->ne[1]) {
                masked = ggml_add(ctx0, kq_mask, rows->kq_bias); // the CPU adds F32 to F16
            } else {
                // log(1) = 0 keeps a run row, log(0) = -inf masks a skipped row; padding rows stay 0
                ggml_tensor * bias = ggml_log(ctx0, rows->run);
                bias = ggml_pad(ctx0, bias, 0, (int) (kq_mask->ne[1] - rows->run->ne[1]), 0, 0);
                masked = ggml_add(ctx0, kq_mask, ggml_cast(ctx0, bias, kq_mask->type));
            }
            // the CUDA backend scans a mask with this flag (patch 0004) at decode too
            masked->flags |= GGML_TENSOR_FLAG_MASK_SKIPS_ROWS;
            ggml_format_name(masked, "fd_kq_mask-%d", il);
            g.cb(masked, "fd_kq_mask", il);
            return masked;
        }
        return kq_mask;
    }
    return kq_mask;
}

void llm_flexidepth_graph::route(int il, ggml_tensor * z) {
    gate = run = ids_skip = nullptr;
    const llama_flexidepth_layer * L = fd ? fd->layer(il) : nullptr;
    if (L == nullptr) {
        return;
    }
    ggml_context * ctx0 = g.ctx0;
    const size_t r_idx = inp->gates.size();
    ggml_tensor * tau = ggml_view_2d(ctx0, inp->taus, 1, z->ne[1], sizeof(float), r_idx * inp->taus->nb[1]); // [1, n]
    fused = masked && L->routes_fused;
    flexidepth_fused_route f;
    if (fused) {
        f = flexidepth_fuse_route(ctx0, *L, z, tau, &model.hparams.f_norm_rms_eps);
        gate = f.gate;
        run = f.run;
        ids_skip = f.ids_skip;
        ggml_set_output(f.decision); // its gates are read back after compute
        inp->gates.push_back(f.decision);
    } else {
        ggml_tensor * r = ggml_mul_mat(ctx0, L->router_down, z);             // [d_r, n]
        r = ggml_rms_norm(ctx0, r, g.hparams.f_norm_rms_eps);
        r = ggml_mul(ctx0, r, L->router_norm);
        r = ggml_tanh(ctx0, r);
        if (inp->binding->training) {
            r = ggml_mul_mat(ctx0, L->router_up, r);                         // [d, n]
            r = ggml_mul_mat(ctx0, L->router_head, r);                       // [1, n]
        } else {
            r = ggml_mul_mat(ctx0, L->router_fused, r);                      // [1, n]: W_head W_up
        }
        if (L->router_bias != nullptr) {
            r = ggml_add(ctx0, r, L->router_bias);
        }
        gate = ggml_sigmoid(ctx0, r);
        ggml_set_output(gate); // read back after compute: must not share memory with later nodes
        inp->gates.push_back(gate);
        run = ggml_step(ctx0, ggml_sub(ctx0, gate, tau)); // g > tau
    }
    g.cb(gate, "fd_gate", il);
    g.cb(run, "fd_run", il);
    inp->runs[il] = run;
    rows = nullptr;
    // a layer is masked where its weights' backend skips tokens at this batch size (Metal's
    // matrix-matrix mul_mat_id, for one, does not zero skipped rows: single tokens only)
    if (masked && L->maskable && (g.n_tokens == 1 || L->maskable_batched) && (!large_dense || L->masked_batches_compact)) {
        inp->rows.push_back(std::make_unique<llm_graph_input_flexidepth::masked_rows>());
        rows = inp->rows.back().get();
        rows->il = il;
        rows->run = run;
        rows->exact_zeros = flexidepth_skips_attention(fd->skip) && model.layers[il].wo != nullptr && model.layers[il].wo_b == nullptr;
        rows->ids_all = fused ? f.ids_run : ids_where(ctx0, run);
        rows->kq_bias = f.kq_bias;
        for (ggml_tensor * w : flexidepth_masked_weights(model.layers[il], fd->skip)) {
            if (w != nullptr) {
                inp->masked_weights.emplace_back(w, rows);
            }
        }
    }
}

ggml_tensor * llm_flexidepth_graph::mask_attention(int il, ggml_tensor * attn_out, ggml_tensor * out_ids) {
    if (gate == nullptr) {
        return attn_out;
    }
    if (out_ids != nullptr) {
        gate = ggml_get_rows(g.ctx0, gate, out_ids);
        run  = ggml_get_rows(g.ctx0, run,  out_ids);
        ids_skip = nullptr; // the fused route's are for every row
        if (rows != nullptr) {
            rows->ids_out = ids_where(g.ctx0, run);
        }
    }
    if (!flexidepth_skips_attention(fd->skip)) {
        return attn_out;
    }
    // MindSkip scales a run token's attention by g, which is how its router learns
    ggml_tensor * scale = fd->skip == LLAMA_FLEXIDEPTH_SKIP_ATTENTION ? gate : nullptr;
    if (rows != nullptr && rows->exact_zeros) {
        // masked Wo already wrote exact zeros for skipped tokens
        return scale ? ggml_mul(g.ctx0, attn_out, scale) : attn_out;
    }
    ggml_tensor * masked = ggml_mul(g.ctx0, attn_out, scale ? ggml_mul(g.ctx0, run, scale) : run);
    g.cb(masked, "fd_attn_out", il);
    return masked;
}

ggml_tensor * llm_flexidepth_graph::mix_ffn(int il, ggml_tensor * ffn_out, ggml_tensor * u, ggml_tensor * residual) {
    residual_added = false;
    if (gate == nullptr) {
        return ffn_out;
    }
    if (!flexidepth_skips_ffn(fd->skip)) {
        finish_layer();
        return ffn_out;
    }
    const llama_flexidepth_layer * L = fd->layer(il);
    ggml_context * ctx0 = g.ctx0;
    // Adapter(u) = down(silu(gate u) * up u); masked, it runs only for the skipped tokens
    // (ids 0 where run = 0, -1 where run = 1). In a large ubatch it runs densely unless its weights
    // sit where a masked batch is one GEMM of its rows (compacts_batches in flexidepth-plugin.cpp);
    // elsewhere a masked batch would cost a product per row.
    const bool adapter_masked = rows != nullptr && (!large_dense || L->adapter_batches_compact);
    ggml_tensor * ids = !adapter_masked ? nullptr : ids_skip ? ids_skip : ggml_cast(ctx0, ggml_scale(ctx0, run, -1.0f), GGML_TYPE_I32);
    auto mm = [&](ggml_tensor * w, ggml_tensor * x) {
        return ids ? mul_mat_rows(ctx0, w, x, ids) : ggml_mul_mat(ctx0, w, x);
    };
    // training's graph multiplies by gate and up apart: they are its parameters
    ggml_tensor * act = L->adapter_gate_up && !inp->binding->training
                            ? ggml_swiglu(ctx0, mm(L->adapter_gate_up, u))
                            : ggml_swiglu_split(ctx0, mm(L->adapter_gate, u), mm(L->adapter_up, u));
    ggml_tensor * adapter = mm(L->adapter_down, act);
    g.cb(adapter, "fd_adapter_out", il);
    const llama_layer & layer = model.layers[il];
    const bool exact_zeros = adapter_masked && !layer.ffn_up_b && !layer.ffn_gate_b && !layer.ffn_down_b;
    ggml_tensor * mixed;
    if (fused) {
        mixed = flexidepth_fuse_mix(ctx0, ffn_out, adapter, gate, run, residual);
        residual_added = true;
    } else if (exact_zeros) {
        // masked: the FFN is exactly 0 for skipped tokens and the adapter for the others
        mixed = ggml_add(ctx0, ggml_mul(ctx0, ffn_out, gate), ggml_mul(ctx0, adapter, ggml_scale_bias(ctx0, gate, -1.0f, 1.0f)));
    } else {
        ggml_tensor * w_ffn     = ggml_mul(ctx0, run, gate);                                   // run * g
        ggml_tensor * w_adapter = ggml_mul(ctx0, ggml_scale_bias(ctx0, run, -1.0f, 1.0f),
                                                 ggml_scale_bias(ctx0, gate, -1.0f, 1.0f));    // (1-run)(1-g)
        mixed = ggml_add(ctx0, ggml_mul(ctx0, ffn_out, w_ffn), ggml_mul(ctx0, adapter, w_adapter));
    }
    g.cb(mixed, "fd_ffn_out", il);
    finish_layer();
    return mixed;
}

ggml_tensor * llm_flexidepth_graph::add_residual(ggml_tensor * ffn_out, ggml_tensor * residual) {
    if (residual_added) {
        residual_added = false;
        return ffn_out;
    }
    return ggml_add(g.ctx0, ffn_out, residual);
}

void llm_flexidepth_graph::finish_layer() {
    gate = run = ids_skip = nullptr;
    fused = false;
    rows = nullptr;
    if (inp->binding->training && inp->gates.size() == fd->layers.size()) {
        add_skip_loss();
    }
}

void llm_flexidepth_graph::add_skip_loss() {
    llama_flexidepth_binding * b = inp->binding;
    b->train_gates = inp->gates;
    if (b->alpha <= 0.0f) {
        return;
    }
    ggml_context * ctx0 = g.ctx0;
    ggml_tensor * sum_g = inp->gates[0];                                      // [1, n]
    for (size_t r = 1; r < inp->gates.size(); ++r) {
        sum_g = ggml_add(ctx0, sum_g, inp->gates[r]);
    }
    const float n_tokens = (float) sum_g->ne[1];
    ggml_tensor * loss = ggml_scale(ctx0, ggml_sum(ctx0, ggml_sqr(ctx0, sum_g)), b->alpha / n_tokens);
    ggml_set_name(loss, "fd_skip_loss");
    ggml_set_output(loss);
    ggml_set_loss(loss); // ggml-opt adds it to the LM loss (patch 0007)
    ggml_build_forward_expand(g.gf, loss);
}

static uint64_t seq_pos_key(llama_seq_id seq, llama_pos pos) {
    return ((uint64_t) (uint32_t) seq << 32) | (uint32_t) pos;
}

void flexidepth_begin_batch(llama_flexidepth_binding * b, const llama_batch & batch) {
    if (b == nullptr || b->fd == nullptr) {
        return;
    }
    b->n_recorded = 0;
    if (!b->collect) {
        return;
    }
    const int32_t n_tokens = batch.n_tokens;
    if (n_tokens > b->capacity) {
        // grows only: steady-state decoding allocates nothing
        b->capacity = n_tokens;
        b->gates.resize((size_t) b->capacity * b->fd->layers.size());
        b->slot.resize(b->capacity);
        b->pos.resize(b->capacity);
        b->seq.resize(b->capacity);
        b->tau_at.resize(b->capacity);
    }
    for (int32_t t = 0; t < n_tokens; ++t) {
        b->pos[t] = batch.pos[t];
        b->seq[t] = batch.seq_id[t][0];
        b->tau_at[t] = b->tau_of(b->seq[t]);
    }
    b->n_batch = n_tokens;
    b->batch_index.clear();
    b->in_batch_order = true;
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
        GGML_ASSERT(t->ne[0] == n || ggml_nelements(t) == n);
        ggml_backend_t backend = ggml_backend_sched_get_tensor_backend(sched, t);
        ggml_backend_tensor_get_async(backend, t, b->gates.data() + r * b->capacity + token_offset, 0, n * sizeof(float));
    }
    // Which batch token each computed row is. Usually the ubatches cut the batch in order; when
    // they do not (split_equal over several sequences), (sequence, position) names the token:
    // the batch allocator refuses a batch where a sequence repeats a position.
    for (int64_t i = 0; i < n; ++i) {
        const int64_t u = token_offset + i;
        if (b->in_batch_order && (ubatch.pos[i] != b->pos[u] || ubatch.seq_id[i][0] != b->seq[u])) {
            b->in_batch_order = false;
            for (int32_t k = 0; k < b->n_batch; ++k) {
                b->batch_index.emplace(seq_pos_key(b->seq[k], b->pos[k]), k);
            }
        }
        int32_t t = (int32_t) u;
        if (!b->in_batch_order) {
            auto it = b->batch_index.find(seq_pos_key(ubatch.seq_id[i][0], ubatch.pos[i]));
            GGML_ASSERT(it != b->batch_index.end());
            t = it->second;
        }
        b->slot[t] = (int32_t) u;
    }
    b->n_recorded = (int32_t) (token_offset + n);
}

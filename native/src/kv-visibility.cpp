#include "kv-visibility.h"

#include "ggml-backend.h"

#include <stdexcept>

ggml_tensor * llama_kv_visibility::cells(int key, const ggml_tensor * k_cache) {
    const int64_t n_cells = k_cache->ne[1] * k_cache->ne[2]; // kv_size * n_stream
    store & s = stores[key];
    if (s.bias != nullptr && s.bias->ne[0] == n_cells) {
        return s.bias;
    }
    ggml_init_params ip = { ggml_tensor_overhead(), nullptr, true };
    s.ctx.reset(ggml_init(ip));
    s.bias = ggml_new_tensor_1d(s.ctx.get(), GGML_TYPE_F32, n_cells);
    ggml_format_name(s.bias, "kv_visible-%d", key);
    ggml_backend_buffer_type_t buft = ggml_backend_buffer_get_type(k_cache->buffer);
    s.buf.reset(ggml_backend_alloc_ctx_tensors_from_buft(s.ctx.get(), buft));
    if (!s.buf) {
        s.bias = nullptr;
        throw std::runtime_error("cannot allocate the visibility of the K/V cells");
    }
    ggml_backend_buffer_clear(s.buf.get(), 0); // cells written before are visible
    return s.bias;
}

ggml_tensor * llama_kv_visibility::write(ggml_context * ctx, int key, ggml_tensor * run, ggml_tensor * k_idxs, const ggml_tensor * k_cache) {
    ggml_tensor * bias = cells(key, k_cache);
    ggml_tensor * rows = ggml_reshape_2d(ctx, bias, 1, bias->ne[0]);
    return ggml_set_rows(ctx, rows, ggml_scale_bias(ctx, run, -HIDDEN, HIDDEN), k_idxs);
}

ggml_tensor * llama_kv_visibility::mask(ggml_context * ctx, int key, ggml_tensor * run, ggml_tensor * k_idxs, ggml_tensor * k_view,
                                        ggml_tensor * kq_mask) {
    const ggml_tensor * k_cache = k_view->view_src; // [n_embd_k_gqa, kv_size, n_stream]
    ggml_tensor * written = write(ctx, key, run, k_idxs, k_cache);
    // the cells and streams the attention reads, as get_k views them
    const int64_t kv_size = k_cache->ne[1];
    const int64_t n_kv = kq_mask->ne[0], n_stream = kq_mask->ne[3];
    const size_t s0 = k_view->view_offs / k_cache->nb[2];
    const size_t row = kv_size * sizeof(float);
    ggml_tensor * read = ggml_view_4d(ctx, written, n_kv, 1, 1, n_stream, row, row, row, s0 * row);
    if (kq_mask->type != GGML_TYPE_F32) {
        read = ggml_cast(ctx, read, kq_mask->type);
    }
    ggml_tensor * out = ggml_add(ctx, kq_mask, read); // broadcast over the query rows
    ggml_format_name(out, "kq_mask_visible-%d", key);
    return out;
}

#include "flexidepth-visibility.h"

#include "ggml-backend.h"

#include <stdexcept>

// exp(score + SKIPPED) is exactly 0 next to any visible cell, and finite where a row sees no
// visible cell at all (a skipped token's own row, whose output is discarded); F16 holds it
static constexpr float SKIPPED = -30000.0f;

ggml_tensor * flexidepth_kv_visibility::store(int il, const ggml_tensor * k_cache) {
    const int64_t n_cells = k_cache->ne[1] * k_cache->ne[2]; // kv_size * n_stream
    layer_store & s = layers[il];
    if (s.bias != nullptr && s.bias->ne[0] == n_cells) {
        return s.bias;
    }
    ggml_init_params ip = { ggml_tensor_overhead(), nullptr, true };
    s.ctx.reset(ggml_init(ip));
    s.bias = ggml_new_tensor_1d(s.ctx.get(), GGML_TYPE_F32, n_cells);
    ggml_format_name(s.bias, "fd_kv_visible-%d", il);
    ggml_backend_buffer_type_t buft = ggml_backend_buffer_get_type(k_cache->buffer);
    s.buf.reset(ggml_backend_alloc_ctx_tensors_from_buft(s.ctx.get(), buft));
    if (!s.buf) {
        s.bias = nullptr;
        throw std::runtime_error("cannot allocate the K/V visibility of a no-K/V plug-in");
    }
    ggml_backend_buffer_clear(s.buf.get(), 0); // cells written before the plug-in came are visible
    return s.bias;
}

ggml_tensor * flexidepth_kv_visibility::mask(ggml_context * ctx, int il, ggml_tensor * run, ggml_tensor * k_idxs, ggml_tensor * k_view,
                                              ggml_tensor * kq_mask) {
    const ggml_tensor * k_cache = k_view->view_src; // [n_embd_k_gqa, kv_size, n_stream]
    ggml_tensor * bias = store(il, k_cache);
    const int64_t kv_size = k_cache->ne[1];
    ggml_tensor * rows = ggml_reshape_2d(ctx, bias, 1, bias->ne[0]);
    ggml_tensor * written = ggml_set_rows(ctx, rows, ggml_scale_bias(ctx, run, -SKIPPED, SKIPPED), k_idxs);
    // the cells and streams the attention reads, as get_k views them
    const int64_t n_kv = kq_mask->ne[0], n_stream = kq_mask->ne[3];
    const size_t s0 = k_view->view_offs / k_cache->nb[2];
    const size_t row = kv_size * sizeof(float);
    ggml_tensor * read = ggml_view_4d(ctx, written, n_kv, 1, 1, n_stream, row, row, row, s0 * row);
    if (kq_mask->type != GGML_TYPE_F32) {
        read = ggml_cast(ctx, read, kq_mask->type);
    }
    ggml_tensor * out = ggml_add(ctx, kq_mask, read); // broadcast over the query rows
    ggml_format_name(out, "fd_kq_mask_visible-%d", il);
    return out;
}

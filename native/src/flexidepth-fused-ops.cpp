#include "flexidepth-fused-ops.h"

#include "flexidepth-plugin.h"

#include <algorithm>
#include <cmath>

namespace {

// rows [begin, end) of n for thread ith of nth
void thread_range(int64_t n, int ith, int nth, int64_t & begin, int64_t & end) {
    const int64_t per = (n + nth - 1) / nth;
    begin = std::min<int64_t>(n, per * ith);
    end   = std::min<int64_t>(n, begin + per);
}

const float * column(const ggml_tensor * t, int64_t i) {
    return (const float *) ((const char *) t->data + i * t->nb[1]);
}

// A router this small (d_r up to SMALL_ROUTER_MAX, d x d_r x rows multiply-adds up to
// SMALL_ROUTER_MACS) has its down product computed in the route op too: on flexi-demo-12L
// (192 x 12, one row) that takes less than the barrier of a graph node of its own.
constexpr int64_t SMALL_ROUTER_MACS = 1 << 15;
constexpr int64_t SMALL_ROUTER_MAX  = 64;

// r = W_down z for column i of z [d, n], W_down [d, d_r] F32.
void router_down_product(const ggml_tensor * w, const ggml_tensor * z, int64_t i, float * r) {
    const int64_t d = w->ne[0];
    const float * x = column(z, i);
    for (int64_t j = 0; j < w->ne[1]; ++j) {
        const float * wj = column(w, j);
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        int64_t k = 0;
        for (; k + 4 <= d; k += 4) {
            for (int l = 0; l < 4; ++l) {
                acc[l] += wj[k + l] * x[k + l];
            }
        }
        for (; k < d; ++k) {
            acc[0] += wj[k] * x[k];
        }
        r[j] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

// The same arithmetic as ggml-cpu's MUL_MAT, RMS_NORM, MUL, TANH, MUL_MAT, ADD, SIGMOID, SUB and
// STEP, so that a fused layer decides as the oracle's ggml ops do up to the summation order.
// src[0] is r_down = W_down z, or W_down itself with z in src[5] (a small router).
void route_rows(ggml_tensor * dst, int ith, int nth, void * userdata) {
    const ggml_tensor * z = dst->src[5];
    const ggml_tensor * r_down = dst->src[0];
    const float * norm  = (const float *) dst->src[1]->data;
    const float * fused = (const float *) dst->src[2]->data;
    const ggml_tensor * tau = dst->src[3];
    const float bias = dst->src[4] ? *(const float *) dst->src[4]->data : 0.0f;
    const float eps  = *(const float *) userdata;
    const int64_t d_r = z ? r_down->ne[1] : r_down->ne[0];
    const int64_t n   = dst->ne[0];
    float small[SMALL_ROUTER_MAX];
    float *   gate     = (float *) dst->data;
    float *   run      = gate + n;
    float *   kq_bias  = gate + 2 * n;
    int32_t * ids_run  = (int32_t *) (gate + 3 * n);
    int32_t * ids_skip = ids_run + n;
    int64_t begin, end;
    thread_range(n, ith, nth, begin, end);
    for (int64_t i = begin; i < end; ++i) {
        const float * r = small;
        if (z) {
            router_down_product(r_down, z, i, small);
        } else {
            r = column(r_down, i);
        }
        double sum = 0.0;
        for (int64_t k = 0; k < d_r; ++k) {
            sum += (double) r[k] * r[k];
        }
        const float scale = 1.0f / sqrtf((float) (sum / d_r) + eps);
        float logit = 0.0f;
        for (int64_t k = 0; k < d_r; ++k) {
            logit += tanhf(r[k] * scale * norm[k]) * fused[k];
        }
        const float g = 1.0f / (1.0f + expf(-(logit + bias)));
        const bool runs = g - column(tau, i)[0] > 0.0f;
        gate[i]    = g;
        run[i]     = runs ? 1.0f : 0.0f;
        kq_bias[i] = runs ? 0.0f : -INFINITY;
        ids_run[i]  = runs ? 0 : -1;
        ids_skip[i] = runs ? -1 : 0;
    }
}

// A view of t's rows [row, row + 1) read as I32: ggml has no bitcast, and the ids share the
// decision's buffer so that one node (one barrier of the threads) computes both.
ggml_tensor * ids_view(ggml_context * ctx, ggml_tensor * t, int64_t row) {
    static_assert(sizeof(float) == sizeof(int32_t), "ids and floats share rows");
    ggml_tensor * v = ggml_view_2d(ctx, t, 1, t->ne[0], sizeof(int32_t), row * t->nb[1]);
    v->type = GGML_TYPE_I32;
    return v;
}

void mix_rows(ggml_tensor * dst, int ith, int nth, void *) {
    const ggml_tensor * ffn     = dst->src[0];
    const ggml_tensor * adapter = dst->src[1];
    const ggml_tensor * gate    = dst->src[2];
    const ggml_tensor * run     = dst->src[3];
    const ggml_tensor * res     = dst->src[4];
    const int64_t d = dst->ne[0];
    const int64_t n = dst->ne[1];
    // elements, not rows: a single decode row is split over the threads too
    int64_t begin, end;
    thread_range(d * n, ith, nth, begin, end);
    while (begin < end) {
        const int64_t i  = begin / d;
        const int64_t k0 = begin % d;
        const int64_t k1 = std::min(d, k0 + (end - begin));
        const bool  runs = column(run, i)[0] > 0.0f;
        const float g    = column(gate, i)[0];
        const float w    = runs ? g : 1.0f - g;
        const float * src = column(runs ? ffn : adapter, i);
        const float * r   = column(res, i);
        float * out = (float *) ((char *) dst->data + i * dst->nb[1]);
        for (int64_t k = k0; k < k1; ++k) {
            out[k] = src[k] * w + r[k];
        }
        begin += k1 - k0;
    }
}

bool is_f32_vector(const ggml_tensor * t) {
    return t != nullptr && t->type == GGML_TYPE_F32 && ggml_is_contiguous(t);
}

} // namespace

bool flexidepth_fused_route_supported(const llama_flexidepth_layer & L) {
    return flexidepth_in_plain_cpu_buffer(L.router_down) && flexidepth_in_plain_cpu_buffer(L.router_fused) &&
           is_f32_vector(L.router_norm) && is_f32_vector(L.router_fused) && (L.router_bias == nullptr || is_f32_vector(L.router_bias));
}

flexidepth_fused_route flexidepth_fuse_route(ggml_context * ctx, const llama_flexidepth_layer & L, ggml_tensor * z,
                                             ggml_tensor * tau, const float * eps) {
    const ggml_tensor * w = L.router_down;
    const int64_t       n = z->ne[1];
    GGML_ASSERT(ggml_is_contiguous(tau) && tau->ne[1] == n);
    const bool small = w->type == GGML_TYPE_F32 && ggml_is_contiguous(w) && z->type == GGML_TYPE_F32 && z->nb[0] == sizeof(float) &&
                       z->ne[2] == 1 && z->ne[3] == 1 && w->ne[1] <= SMALL_ROUTER_MAX && n * w->ne[0] * w->ne[1] <= SMALL_ROUTER_MACS;
    ggml_tensor * r_down = small ? L.router_down : ggml_mul_mat(ctx, L.router_down, z); // [d_r, n]
    GGML_ASSERT(r_down->type == GGML_TYPE_F32 && r_down->nb[0] == sizeof(float));
    // a small router's bias slot holds null where it has none: the op reads a null source as no bias
    ggml_tensor * args[] = { r_down, L.router_norm, L.router_fused, tau, L.router_bias, small ? z : nullptr };
    flexidepth_fused_route f;
    f.decision = ggml_custom_4d(ctx, GGML_TYPE_F32, n, 5, 1, 1, args, small ? 6 : L.router_bias ? 5 : 4, route_rows,
                                GGML_N_TASKS_MAX, const_cast<float *>(eps));
    const size_t row = n * sizeof(float);
    f.gate     = ggml_view_2d(ctx, f.decision, 1, n, sizeof(float), 0);
    f.run      = ggml_view_2d(ctx, f.decision, 1, n, sizeof(float), row);
    f.kq_bias  = ggml_view_2d(ctx, f.decision, 1, n, sizeof(float), 2 * row);
    f.ids_run  = ids_view(ctx, f.decision, 3);
    f.ids_skip = ids_view(ctx, f.decision, 4);
    return f;
}

ggml_tensor * flexidepth_fuse_mix(ggml_context * ctx, ggml_tensor * ffn_out, ggml_tensor * adapter, ggml_tensor * gate, ggml_tensor * run,
                                  ggml_tensor * residual) {
    GGML_ASSERT(ggml_are_same_shape(ffn_out, adapter) && ggml_are_same_shape(ffn_out, residual));
    GGML_ASSERT(ffn_out->nb[0] == sizeof(float) && adapter->nb[0] == sizeof(float) && residual->nb[0] == sizeof(float));
    GGML_ASSERT(ffn_out->type == GGML_TYPE_F32 && adapter->type == GGML_TYPE_F32 && residual->type == GGML_TYPE_F32);
    GGML_ASSERT(gate->ne[1] == ffn_out->ne[1] && run->ne[1] == ffn_out->ne[1]);
    ggml_tensor * args[] = { ffn_out, adapter, gate, run, residual };
    return ggml_custom_4d(ctx, GGML_TYPE_F32, ffn_out->ne[0], ffn_out->ne[1], 1, 1, args, 5, mix_rows, GGML_N_TASKS_MAX, nullptr);
}

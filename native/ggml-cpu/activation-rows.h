#pragma once

// The activations of a repacked product as repack.cpp quantizes them to Q8_0, for the fork's
// kernels beside this file: the first rows in 4-row groups (block_q8_0x4, the rows interleaved
// by 8 bytes), the last rows (at most 3) plain block_q8_0. Internal to native/ggml-cpu.

#include "repack.h"

#include <cstring>
#include <vector>

#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>

namespace flexi_repack {

// where row r's block b lies: its 8-byte chunks (elements 8k..8k+7) chunk_stride bytes apart
struct rows_grouped {
    const block_q8_0x4 * g;
    static constexpr int chunk_stride = 32;
    const int8_t * qs(int r, int b) const { return g[b].qs + 8 * r; }
    ggml_half d(int r, int b) const { return g[b].d[r]; }
};

struct rows_plain {
    const char * p;
    size_t row_size;
    static constexpr int chunk_stride = 8;
    const block_q8_0 & blk(int r, int b) const { return ((const block_q8_0 *) (p + r * row_size))[b]; }
    const int8_t * qs(int r, int b) const { return blk(r, b).qs; }
    ggml_half d(int r, int b) const { return blk(r, b).d; }
};

// where the product's rows go: row r to row map[r] of s (row r without a map), bs floats apart;
// with a map the masked product writes its running rows straight to their tokens' rows
struct out_rows {
    float *         s;
    size_t          bs;
    const int64_t * map;
    float * row(int r) const { return s + (size_t) (map ? map[r] : r) * bs; }
    // rows r0.. from column x on
    out_rows at(int r0, int x) const { return map ? out_rows{ s + x, bs, map + r0 } : out_rows{ s + (size_t) r0 * bs + x, bs, nullptr }; }
};

// The weights 16 blocks on (block_q4_0x8 and block_q8_0x4 span three cache lines), asked for
// while this block computes: a few rows' products are about as fast as memory, and without it
// their loads and their arithmetic took turns (a DMTD head's 4 rows through the Q4_0 thinking
// layers went from 1.67x to 1.5x one row's time, and 4 cached rows ran 10 % faster too).
template <typename Block>
inline void prefetch_ahead(const Block * blk) {
    const char * ahead = (const char *) (blk + 16);
    _mm_prefetch(ahead, _MM_HINT_T0);
    _mm_prefetch(ahead + 64, _MM_HINT_T0);
    _mm_prefetch(ahead + 128, _MM_HINT_T0);
}

inline int64_t load8(const int8_t * p) {
    int64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

// a's scales as floats, and bias_scale * the sum of each block's activations, per row and block:
// the kernels take the weights as unsigned bytes and restore their offset from this sum
template <typename L>
void prepare_rows(int rows, int nb, const L & a, int32_t bias_scale, float * da, int32_t * bias) {
    for (int r = 0; r < rows; ++r) {
        for (int b = 0; b < nb; ++b) {
            const int8_t * q   = a.qs(r, b);
            __m256i        sum = _mm256_setzero_si256();
            for (int k = 0; k < 4; ++k) {
                sum = _mm256_add_epi32(sum, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *) (q + k * L::chunk_stride))));
            }
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
            bias[r * nb + b] = bias_scale * _mm_cvtsi128_si32(h);
            da[r * nb + b]   = _cvtsh_ss(a.d(r, b));
        }
    }
}

// out = every row of the activations times nc columns, by kernel(rows, a, da, bias, out, nc) for
// each group of rows, with the columns outermost in slices whose weights stay in cache while every
// row group reads them; weight_slice(x) is where column x's weights start
template <typename Kernel, typename Weights>
void rows_times_columns(int nb, const void * vy, size_t row_size, int n_grouped, int n_plain, int32_t bias_scale,
                        const out_rows & o, int nc, int slice, Weights weight_slice, Kernel kernel) {
    const int                                nr = n_grouped + n_plain;
    const rows_plain                         plain{ (const char *) vy + (size_t) n_grouped * row_size, row_size };
    static thread_local std::vector<float>   da;
    static thread_local std::vector<int32_t> bias;
    da.resize((size_t) nr * nb);
    bias.resize((size_t) nr * nb);
    for (int g = 0; g < n_grouped / 4; ++g) {
        prepare_rows(4, nb, rows_grouped{ (const block_q8_0x4 *) vy + (size_t) g * nb }, bias_scale, da.data() + 4 * g * nb,
                     bias.data() + 4 * g * nb);
    }
    prepare_rows(n_plain, nb, plain, bias_scale, da.data() + n_grouped * nb, bias.data() + n_grouped * nb);
    for (int x = 0; x < nc; x += slice) {
        const int ncs = nc - x < slice ? nc - x : slice;
        for (int g = 0; g < n_grouped / 4; ++g) {
            kernel(4, weight_slice(x), rows_grouped{ (const block_q8_0x4 *) vy + (size_t) g * nb }, da.data() + 4 * g * nb,
                   bias.data() + 4 * g * nb, o.at(4 * g, x), ncs);
        }
        if (n_plain > 0) {
            kernel(n_plain, weight_slice(x), plain, da.data() + n_grouped * nb, bias.data() + n_grouped * nb,
                   o.at(n_grouped, x), ncs);
        }
    }
}

// A kernel K's R rows times a slice of nc columns: passes of K::groups groups of K::cols columns,
// then single groups. K names its weight block type (block) and K::columns<R, G> computes R rows
// times G groups.
template <typename K, int R, typename L>
void rows_x_slice(int nb, const typename K::block * w, const L & a, const float * da, const int32_t * bias,
                  const out_rows & o, int nc) {
    int x = 0;
    for (; x + K::cols * K::groups <= nc; x += K::cols * K::groups) {
        K::template columns<R, K::groups>(nb, w + (x / K::cols) * nb, a, da, bias, o.at(0, x));
    }
    for (; x < nc; x += K::cols) {
        K::template columns<R, 1>(nb, w + (x / K::cols) * nb, a, da, bias, o.at(0, x));
    }
}

// The product of the gemm-*.h functions by kernel K (their arguments, returning false on ones
// outside them), K::bias_scale per lane times each block's activation sum restoring the
// weights' offset.
template <typename K>
bool gemm(int n, float * s, size_t bs, const int64_t * rows, const void * vx, const void * vy, size_t row_size, int n_grouped,
          int n_plain, int nc) {
    if (n % QK8_0 != 0 || nc % K::cols != 0 || n_grouped % 4 != 0 || n_plain < 0 || n_plain > 3) {
        return false;
    }
    const int nb = n / QK8_0;
    const auto * w = (const typename K::block *) vx;
    rows_times_columns(nb, vy, row_size, n_grouped, n_plain, K::bias_scale, out_rows{ s, bs, rows }, nc, K::slice,
                       [&](int x) { return w + (x / K::cols) * nb; },
                       [&](int n_rows, const typename K::block * ws, const auto & a, const float * da, const int32_t * bias,
                           const out_rows & out, int ncs) {
                           switch (n_rows) {
                               case 1: rows_x_slice<K, 1>(nb, ws, a, da, bias, out, ncs); break;
                               case 2: rows_x_slice<K, 2>(nb, ws, a, da, bias, out, ncs); break;
                               case 3: rows_x_slice<K, 3>(nb, ws, a, da, bias, out, ncs); break;
                               default: rows_x_slice<K, 4>(nb, ws, a, da, bias, out, ncs); break;
                           }
                       });
    return true;
}

} // namespace flexi_repack

#endif

#include "gemm-q8_0-4x8.h"

#include "activation-rows.h"

#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VNNI__)

namespace {

using namespace flexi_repack;

// R rows times G groups of 4 columns (G consecutive block_q8_0x4 columns, nb blocks each). A
// block's first 64 bytes hold, per column, elements 0-7 (lanes 0-7) and 8-15 (lanes 8-15) in
// 8-byte chunks; its last 64 bytes elements 16-31 alike. So column c sums its products in lanes
// 2c, 2c+1, 8+2c and 9+2c, against 8 activation bytes broadcast per half. The weights are taken
// as unsigned (w ^ 0x80 = w + 128), one dpbusd per 64 products, and -128 * the block's activation
// sum, a quarter of it in each of the column's lanes, takes the 128 back.
template <int R, int G, typename L>
void rows_x_columns(int nb, const block_q8_0x4 * w, const L & a, const float * da, const int32_t * bias,
                    const out_rows & o) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    const __m512i quad = _mm512_set_epi32(3, 3, 2, 2, 1, 1, 0, 0, 3, 3, 2, 2, 1, 1, 0, 0);
    __m512        acc[G][R];
    for (int g = 0; g < G; ++g) {
        for (int r = 0; r < R; ++r) {
            acc[g][r] = _mm512_setzero_ps();
        }
    }
    for (int b = 0; b < nb; ++b) {
        __m512i w01[G], w23[G]; // elements 0-15 and 16-31 of each column
        __m512  ws[G];
        for (int g = 0; g < G; ++g) {
            const block_q8_0x4 & blk = w[g * nb + b];
            prefetch_ahead(&blk);
            w01[g] = _mm512_xor_si512(_mm512_loadu_si512(blk.qs), flip);
            w23[g] = _mm512_xor_si512(_mm512_loadu_si512(blk.qs + 64), flip);
            ws[g]  = _mm512_permutexvar_ps(quad, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *) blk.d))));
        }
        for (int r = 0; r < R; ++r) {
            const int8_t * q   = a.qs(r, b);
            const __m512i  a01 = _mm512_mask_set1_epi64(_mm512_set1_epi64(load8(q)), 0xF0, load8(q + L::chunk_stride));
            const __m512i  a23 = _mm512_mask_set1_epi64(_mm512_set1_epi64(load8(q + 2 * L::chunk_stride)), 0xF0,
                                                        load8(q + 3 * L::chunk_stride));
            const __m512   d   = _mm512_set1_ps(da[r * nb + b]);
            const __m512i  i0  = _mm512_set1_epi32(bias[r * nb + b]);
            for (int g = 0; g < G; ++g) {
                __m512i i = _mm512_dpbusd_epi32(i0, w01[g], a01);
                i         = _mm512_dpbusd_epi32(i, w23[g], a23);
                acc[g][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(ws[g], d), acc[g][r]);
            }
        }
    }
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    for (int g = 0; g < G; ++g) {
        for (int r = 0; r < R; ++r) {
            const __m512 t = _mm512_add_ps(acc[g][r], _mm512_permute_ps(acc[g][r], 0xB1)); // pairs, in the even lanes
            const __m256 u = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps(t, 1));
            _mm_storeu_ps(o.row(r) + g * 4, _mm256_castps256_ps128(_mm256_permutevar8x32_ps(u, even)));
        }
    }
}

// the kernel as activation-rows.h's gemm takes it
struct kernel {
    using block = block_q8_0x4;
    static constexpr int     cols       = 4;
    static constexpr int     groups     = 4;
    static constexpr int32_t bias_scale = -32;
    static constexpr int     slice      = 32; // columns whose weights stay in cache while every row group reads them

    template <int R, int G, typename L>
    static void columns(int nb, const block * w, const L & a, const float * da, const int32_t * bias, const out_rows & o) {
        rows_x_columns<R, G>(nb, w, a, da, bias, o);
    }
};

} // namespace

bool flexi_gemm_q8_0_4x8_q8_0(int n, float * s, size_t bs, const int64_t * rows, const void * vx, const void * vy,
                              size_t row_size, int n_grouped, int n_plain, int nc) {
    return gemm<kernel>(n, s, bs, rows, vx, vy, row_size, n_grouped, n_plain, nc);
}

bool flexi_gemm_q8_0_4x8_q8_0_available(void) {
    return true;
}

#else

bool flexi_gemm_q8_0_4x8_q8_0(int, float *, size_t, const int64_t *, const void *, const void *, size_t, int, int, int) {
    return false;
}

bool flexi_gemm_q8_0_4x8_q8_0_available(void) {
    return false;
}

#endif

#include "gemm-q4_0-8x8.h"

#include "activation-rows.h"

#if defined(__AVX2__) && defined(__F16C__) && defined(__FMA__)

namespace {

using namespace flexi_repack;

// Each column's 32 products of a block are summed in a pair of 32-bit lanes (2c, 2c+1): the
// repacked block holds, per column, 8-byte chunks whose low nibbles are elements 0-7 (or 8-15)
// and high nibbles elements 16-23 (24-31), so lane 2c takes elements 0-3 of each chunk and lane
// 2c+1 elements 4-7 against the same 8 activation bytes broadcast. The nibbles (stored ^ 8) are
// taken as unsigned 0..15, so each lane's dot is one u8 x s8 instruction, and Q4_0's offset of 8
// comes back as -8 * the block's activation sum, -4 * that in each lane of the pair.

#if defined(__AVX512F__) && defined(__AVX512BW__)

inline __m512i dot_u8s8(__m512i acc, __m512i u, __m512i s) {
#if defined(__AVX512VNNI__)
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    // u <= 15: a pair of products never saturates the 16-bit sum
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1)));
#endif
}

// R rows times G groups of 8 columns (G consecutive block_q4_0x8 columns, nb blocks each), a
// group's 16 lanes in one register
template <int R, int G, typename L>
void rows_x_columns(int nb, const block_q4_0x8 * w, const L & a, const float * da, const int32_t * bias,
                    const out_rows & o) {
    const __m512i low  = _mm512_set1_epi8(0x0F);
    const __m512i flip = _mm512_set1_epi8((char) 0x88);
    const __m512i pair = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    __m512 acc[G][R];
    for (int g = 0; g < G; ++g) {
        for (int r = 0; r < R; ++r) {
            acc[g][r] = _mm512_setzero_ps();
        }
    }
    for (int b = 0; b < nb; ++b) {
        __m512i w0[G], w1[G], w2[G], w3[G]; // elements 0-7, 8-15, 16-23, 24-31 of each column
        __m512  ws[G];
        for (int g = 0; g < G; ++g) {
            const block_q4_0x8 & blk = w[g * nb + b];
            prefetch_ahead(&blk);
            const __m512i x0 = _mm512_xor_si512(_mm512_loadu_si512(blk.qs), flip);
            const __m512i x1 = _mm512_xor_si512(_mm512_loadu_si512(blk.qs + 64), flip);
            w0[g] = _mm512_and_si512(x0, low);
            w1[g] = _mm512_and_si512(x1, low);
            w2[g] = _mm512_and_si512(_mm512_srli_epi16(x0, 4), low);
            w3[g] = _mm512_and_si512(_mm512_srli_epi16(x1, 4), low);
            ws[g] = _mm512_permutexvar_ps(pair, _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) blk.d))));
        }
        for (int r = 0; r < R; ++r) {
            const int8_t * q  = a.qs(r, b);
            const __m512i  a0 = _mm512_set1_epi64(load8(q));
            const __m512i  a1 = _mm512_set1_epi64(load8(q + L::chunk_stride));
            const __m512i  a2 = _mm512_set1_epi64(load8(q + 2 * L::chunk_stride));
            const __m512i  a3 = _mm512_set1_epi64(load8(q + 3 * L::chunk_stride));
            const __m512   d  = _mm512_set1_ps(da[r * nb + b]);
            const __m512i  i0 = _mm512_set1_epi32(bias[r * nb + b]);
            for (int g = 0; g < G; ++g) {
                // a few rows: two chains of two, since the dot's latency, not its throughput,
                // bounds them; from 3 rows on, enough chains run side by side for one of four
                const __m512i i = R >= 3 ? dot_u8s8(dot_u8s8(dot_u8s8(dot_u8s8(i0, w0[g], a0), w1[g], a1), w2[g], a2), w3[g], a3)
                                         : _mm512_add_epi32(dot_u8s8(dot_u8s8(i0, w0[g], a0), w2[g], a2),
                                                            dot_u8s8(dot_u8s8(_mm512_setzero_si512(), w1[g], a1), w3[g], a3));
                acc[g][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(ws[g], d), acc[g][r]);
            }
        }
    }
    const __m512i even = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd  = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int g = 0; g < G; ++g) {
        for (int r = 0; r < R; ++r) {
            const __m256 v = _mm256_add_ps(_mm512_castps512_ps256(_mm512_permutexvar_ps(even, acc[g][r])),
                                           _mm512_castps512_ps256(_mm512_permutexvar_ps(odd, acc[g][r])));
            _mm256_storeu_ps(o.row(r) + g * 8, v);
        }
    }
}

constexpr int group_pass = 2; // groups of 8 columns per pass

#else

inline __m256i dot_u8s8(__m256i acc, __m256i u, __m256i s) {
#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
    return _mm256_dpbusd_epi32(acc, u, s);
#elif defined(__AVXVNNI__)
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    // u <= 15: a pair of products never saturates the 16-bit sum
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// R rows times one group of 8 columns, its 16 lanes in two registers: columns 0-3 (bytes 0-31
// and 64-95 of the repacked block) and 4-7 (bytes 32-63 and 96-127)
template <int R, int G, typename L>
void rows_x_columns(int nb, const block_q4_0x8 * w, const L & a, const float * da, const int32_t * bias,
                    const out_rows & o) {
    static_assert(G == 1, "one group of 8 columns per pass");
    const __m256i low   = _mm256_set1_epi8(0x0F);
    const __m256i flip  = _mm256_set1_epi8((char) 0x88);
    const __m256i pair0 = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
    const __m256i pair1 = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
    __m256 acc[2][R];
    for (int h = 0; h < 2; ++h) {
        for (int r = 0; r < R; ++r) {
            acc[h][r] = _mm256_setzero_ps();
        }
    }
    for (int b = 0; b < nb; ++b) {
        const block_q4_0x8 & blk = w[b];
        prefetch_ahead(&blk);
        const __m256 d8 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) blk.d));
        for (int h = 0; h < 2; ++h) {
            const __m256i x0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (blk.qs + 32 * h)), flip);
            const __m256i x1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (blk.qs + 64 + 32 * h)), flip);
            const __m256i w0 = _mm256_and_si256(x0, low);
            const __m256i w1 = _mm256_and_si256(x1, low);
            const __m256i w2 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), low);
            const __m256i w3 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), low);
            const __m256  ws = _mm256_permutevar8x32_ps(d8, h == 0 ? pair0 : pair1);
            for (int r = 0; r < R; ++r) {
                const int8_t * q = a.qs(r, b);
                __m256i i = dot_u8s8(_mm256_set1_epi32(bias[r * nb + b]), w0, _mm256_set1_epi64x(load8(q)));
                i = dot_u8s8(i, w1, _mm256_set1_epi64x(load8(q + L::chunk_stride)));
                i = dot_u8s8(i, w2, _mm256_set1_epi64x(load8(q + 2 * L::chunk_stride)));
                i = dot_u8s8(i, w3, _mm256_set1_epi64x(load8(q + 3 * L::chunk_stride)));
                acc[h][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_mul_ps(ws, _mm256_set1_ps(da[r * nb + b])), acc[h][r]);
            }
        }
    }
    // hadd gives columns 0, 1, 4, 5 | 2, 3, 6, 7
    const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(o.row(r), _mm256_permutevar8x32_ps(_mm256_hadd_ps(acc[0][r], acc[1][r]), order));
    }
}

constexpr int group_pass = 1;

#endif

// the kernel as activation-rows.h's gemm takes it
struct kernel {
    using block = block_q4_0x8;
    static constexpr int     cols       = 8;
    static constexpr int     groups     = group_pass;
    static constexpr int32_t bias_scale = -4;
    static constexpr int     slice      = 64; // columns whose weights stay in cache while every row group reads them

    template <int R, int G, typename L>
    static void columns(int nb, const block * w, const L & a, const float * da, const int32_t * bias, const out_rows & o) {
        rows_x_columns<R, G>(nb, w, a, da, bias, o);
    }
};

} // namespace

bool flexi_gemm_q4_0_8x8_q8_0(int n, float * s, size_t bs, const int64_t * rows, const void * vx, const void * vy,
                              size_t row_size, int n_grouped, int n_plain, int nc) {
    return gemm<kernel>(n, s, bs, rows, vx, vy, row_size, n_grouped, n_plain, nc);
}

bool flexi_gemm_q4_0_8x8_q8_0_available(void) {
    return true;
}

#else

bool flexi_gemm_q4_0_8x8_q8_0(int, float *, size_t, const int64_t *, const void *, const void *, size_t, int, int, int) {
    return false;
}

bool flexi_gemm_q4_0_8x8_q8_0_available(void) {
    return false;
}

#endif

#include "mul-mat-id-gemm.h"

#include "ggml-cpu-impl.h"
#include "ggml-cpu.h"

#if defined(GGML_USE_LLAMAFILE)
#include "llamafile/sgemm.h"
#endif

#include <cstring>

// the gathered rows, then their results
size_t flexi_mul_mat_id_gemm_work_size(const ggml_tensor * dst) {
    const ggml_tensor * src0 = dst->src[0];
    const ggml_tensor * src1 = dst->src[1];
    const ggml_tensor * ids  = dst->src[2];
    const ggml_type     vdt  = ggml_get_type_traits_cpu(src0->type)->vec_dot_type;
    const int64_t       rows = ids->ne[0] * ids->ne[1];
    return GGML_PAD(rows * ggml_row_size(vdt, src1->ne[0]), 64) + rows * dst->ne[0] * sizeof(float) + 64;
}

// as llamafile_sgemm's cases take them on each instruction set (sgemm.cpp)
const char * flexi_mul_mat_id_gemm_types(void) {
#if !defined(GGML_USE_LLAMAFILE)
    return "";
#elif defined(__AVX512F__) || defined(__AVX2__)
    return "f32,f16,bf16,q8_0,q4_0,q5_0,iq4_nl";
#elif defined(__AVX__) && defined(__F16C__)
    return "f32,f16,q8_0,q4_0,q5_0,iq4_nl";
#elif defined(__AVX__)
    return "f32,q8_0,q4_0,q5_0,iq4_nl";
#elif defined(__ARM_NEON) && defined(__ARM_FEATURE_DOTPROD)
    return "f32,q8_0,q4_0";
#elif defined(__ARM_NEON)
    return "f32";
#else
    return "";
#endif
}

bool flexi_mul_mat_id_none_run(const ggml_compute_params * params, ggml_tensor * dst) {
    const ggml_tensor * ids = dst->src[2];
    for (int64_t t = 0; t < ids->ne[1]; ++t) {
        for (int64_t s = 0; s < ids->ne[0]; ++s) {
            if (*(const int32_t *) ((const char *) ids->data + s * ids->nb[0] + t * ids->nb[1]) >= 0) {
                return false;
            }
        }
    }
    const int64_t n_rows = dst->ne[1] * dst->ne[2];
    for (int64_t r = params->ith; r < n_rows; r += params->nth) {
        memset((char *) dst->data + (r % dst->ne[1]) * dst->nb[1] + (r / dst->ne[1]) * dst->nb[2], 0, dst->ne[0] * sizeof(float));
    }
    return true;
}

bool flexi_mul_mat_id_gemm(const ggml_compute_params * params, ggml_tensor * dst, const char * src0_cur, const int32_t * rows,
                           int64_t n_rows, const void * src1_rows, size_t row_size, bool src1_packed, void * scratch) {
#if defined(GGML_USE_LLAMAFILE)
    const ggml_tensor * src0 = dst->src[0];
    const ggml_tensor * src1 = dst->src[1];
    const ggml_type     vdt  = ggml_get_type_traits_cpu(src0->type)->vec_dot_type;
    const int           ith  = params->ith;
    const int           nth  = params->nth;
    const int64_t       ne01 = src0->ne[1];
    // llamafile leaves single rows to the vec_dot path
    if (n_rows < 2 || params->use_ref) {
        return false;
    }
    // every token of one expert slot, in order (prefill where the whole batch runs the layer):
    // the product reads src1 and writes dst where they are, nothing to gather or scatter
    bool identity = n_rows == dst->ne[2] && src1->ne[1] == 1;
    for (int64_t r = 0; identity && r < n_rows; ++r) {
        identity = rows[2 * r] == 0 && rows[2 * r + 1] == r;
    }
    const size_t  vdt_size = ggml_type_size(vdt);
    const size_t  b_stride = src1_packed ? row_size : src1->nb[2];
    if (identity && b_stride % vdt_size == 0 && dst->nb[2] % sizeof(float) == 0) {
        if (!llamafile_sgemm(params, ne01, n_rows, src0->ne[0] / ggml_blck_size(src0->type), src0_cur,
                             src0->nb[1] / ggml_type_size(src0->type), src1_rows, b_stride / vdt_size, dst->data,
                             dst->nb[2] / sizeof(float), src0->type, vdt, GGML_TYPE_F32)) {
            return false;
        }
        ggml_barrier(params->threadpool);
        return true;
    }
    char *  b = (char *) scratch;
    float * c = (float *) (b + GGML_PAD(n_rows * row_size, 64));
    for (int64_t r = ith; r < n_rows; r += nth) {
        const int64_t i11 = rows[2 * r] % src1->ne[1];
        const int64_t i12 = rows[2 * r + 1];
        const char *  src = (const char *) src1_rows + (src1_packed ? (i11 + i12 * src1->ne[1]) * row_size : i11 * src1->nb[1] + i12 * src1->nb[2]);
        memcpy(b + r * row_size, src, row_size);
    }
    ggml_barrier(params->threadpool);
    // llamafile_sgemm decides on the types and shapes before any work, the same in every thread
    if (!llamafile_sgemm(params, ne01, n_rows, src0->ne[0] / ggml_blck_size(src0->type), src0_cur,
                         src0->nb[1] / ggml_type_size(src0->type), b, row_size / ggml_type_size(vdt), c, ne01, src0->type, vdt,
                         GGML_TYPE_F32)) {
        return false;
    }
    ggml_barrier(params->threadpool);
    for (int64_t r = ith; r < n_rows; r += nth) {
        memcpy((char *) dst->data + rows[2 * r] * dst->nb[1] + rows[2 * r + 1] * dst->nb[2], c + r * ne01, ne01 * sizeof(float));
    }
    // the scratch is free again for whatever the caller computes next
    ggml_barrier(params->threadpool);
    return true;
#else
    (void) params; (void) dst; (void) src0_cur; (void) rows; (void) n_rows; (void) src1_rows; (void) row_size; (void) src1_packed;
    (void) scratch;
    return false;
#endif
}

#pragma once

// A one-expert MUL_MAT_ID on a plain CPU buffer (FlexiDepth's masked products of F32, F16 and
// plain quantized weights) as one llamafile GEMM over the running rows, gathered and scattered
// back (read and written in place when every token runs), where upstream computes a vec_dot per
// row and column: a masked batch then costs what its running rows cost in MUL_MAT. Patch 0019
// hooks it into ggml-cpu.c's MUL_MAT_ID.

#include "ggml.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ggml_compute_params;

// Work-buffer bytes flexi_mul_mat_id_gemm needs for dst beyond MUL_MAT_ID's own.
size_t flexi_mul_mat_id_gemm_work_size(const struct ggml_tensor * dst);

// src0's types whose products it computes in this CPU variant, comma separated ("" for none):
// the CPU backend declares them as its MUL_MAT_ID_GEMM feature, and FlexiDepth masks large
// ubatches in layers whose weights have them.
const char * flexi_mul_mat_id_gemm_types(void);

// True, with dst all zeros, where a one-expert MUL_MAT_ID's ids skip every (slot, token), every
// thread calling: each reads the ids and zeros its share of dst, so none waits for another.
bool flexi_mul_mat_id_none_run(const struct ggml_compute_params * params, struct ggml_tensor * dst);

// dst's rows (slot, token) = rows[2 r], rows[2 r + 1] for r < n_rows, every thread calling:
// src0_cur (the expert's weights) times those rows of src1, found at src1_rows (row_size bytes of
// src1's vec_dot type each, packed when src1_packed, else at src1's strides). False, with dst
// untouched, where the GEMM does not take these types or shapes; the caller computes them itself.
bool flexi_mul_mat_id_gemm(const struct ggml_compute_params * params, struct ggml_tensor * dst, const char * src0_cur,
                           const int32_t * rows, int64_t n_rows, const void * src1_rows, size_t row_size, bool src1_packed,
                           void * scratch);

#ifdef __cplusplus
}
#endif

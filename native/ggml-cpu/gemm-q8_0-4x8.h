#pragma once

// The products of Q8_0 weights by Q8_0 activations on x86 with AVX512-VNNI, in the repacked 4x8
// layout (block_q8_0x4: 4 columns interleaved by 8 bytes) that upstream uses on ARM only. Patch
// 0012 repacks 2-D Q8_0 weights so where this kernel exists and hands it MUL_MAT and the
// one-expert MUL_MAT_ID at every row count. Upstream's x86 path (one vec_dot per row and column,
// signed by signed) made 4 rows cost 2.1x one row (1.3x here) and prefilled the 1B shape at 90
// tokens/s (195 here); the weights are taken as unsigned bytes (w + 128, restored from each
// block's activation sum) and each weight block is read once for four rows.

#include <cstddef>
#include <cstdint>

// s[rows[r] * bs + c] (s[r * bs + c] where rows is NULL) = row r of the activations . column c of
// the weights, for nc columns (a multiple of 4) of vx (block_q8_0x4, n / 32 blocks per group of 4
// columns) and the rows of vy as in
// flexi_gemm_q4_0_8x8_q8_0 (gemm-q4_0-8x8.h). Returns false, writing nothing, where the arguments
// are outside that or this CPU variant has no such kernel.
bool flexi_gemm_q8_0_4x8_q8_0(int n, float * s, size_t bs, const int64_t * rows, const void * vx, const void * vy,
                              size_t row_size, int n_grouped, int n_plain, int nc);

// whether this CPU variant has it
bool flexi_gemm_q8_0_4x8_q8_0_available(void);

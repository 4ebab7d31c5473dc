#pragma once

// The products of Q4_0 weights in the CPU backend's repacked 8x8 layout (CPU_REPACK) on x86,
// from two rows up, in place of upstream's GEMM for that layout (patch 0012 hooks it into
// repack.cpp's MUL_MAT and one-expert MUL_MAT_ID; a single token stays with upstream's GEMV,
// which decodes it 5-8 % faster here). Upstream sign-extends the nibbles and
// multiplies signed by signed, which takes three extra instructions per integer dot; here the
// nibbles stay unsigned against the signed activations (one dot instruction per 32 or 64
// products, the offset of 8 restored from each block's activation sum), and each weight block
// is read once for four rows. On the 2-core development machine (AVX512-VNNI) this made 4 rows
// through DMTD's thinking layers cost 1.6x one row instead of 2.4x and prefill 1.9x faster.

#include <cstddef>
#include <cstdint>

// s[rows[r] * bs + c] (s[r * bs + c] where rows is NULL) = row r of the activations . column c of
// the weights, for nc columns (a multiple of 8) of vx (block_q4_0x8, n / 32 blocks per group of 8
// columns) and n_grouped + n_plain rows of vy, as repack.cpp quantizes them: first n_grouped
// rows (a multiple of 4) in block_q8_0x4 groups, then n_plain (at most 3) rows of block_q8_0,
// row_size bytes each.
// Returns false, writing nothing, where the arguments are outside that or this CPU variant has
// no such kernel.
bool flexi_gemm_q4_0_8x8_q8_0(int n, float * s, size_t bs, const int64_t * rows, const void * vx, const void * vy,
                              size_t row_size, int n_grouped, int n_plain, int nc);

// whether this CPU variant has it
bool flexi_gemm_q4_0_8x8_q8_0_available(void);

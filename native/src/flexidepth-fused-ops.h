#pragma once

// A routed layer's routing and mixing as two CPU ops (ggml custom ops) where ggml's own take
// about twenty: the CPU backend ends every graph node with a barrier of its threads, and at decode
// on a small model (d = 192) a routed layer's twenty-odd extra nodes cost about what its FFN does.
// For inference on the CPU backend only: custom ops run on no other backend and have no backward
// pass, so DENSE (the oracle), training and other devices build the same functions from ggml ops.

#include "ggml.h"

struct llama_flexidepth_layer;

// One routed layer's decision for every row of a ubatch: views [1, n] of the rows of one [n, 5]
// tensor, three F32 (gate, run, kq_bias) and two I32 (ids_run, ids_skip).
struct flexidepth_fused_route {
    ggml_tensor * decision = nullptr; // [n, 5]: the graph output the gates are read from
    ggml_tensor * gate     = nullptr; // g = sigmoid(router logit)
    ggml_tensor * run      = nullptr; // 1 where g > tau, else 0
    ggml_tensor * kq_bias  = nullptr; // 0 where the row runs, -inf where it skips
    ggml_tensor * ids_run  = nullptr; // one-expert ids computing the running rows: 0 run, -1 skip
    ggml_tensor * ids_skip = nullptr; // and the skipped ones: 0 skip, -1 run
};

// Whether L's router can be fused: its weights in the CPU's plain buffer, the vectors F32.
bool flexidepth_fused_route_supported(const llama_flexidepth_layer & L);

// From the router's input z [d, n]: g = sigmoid(W_fused tanh(RMSNorm(W_down z) * norm) + bias)
// and the decision g > tau, tau [1, n] the rows' thresholds. eps must outlive the graph.
flexidepth_fused_route flexidepth_fuse_route(ggml_context * ctx, const llama_flexidepth_layer & L, ggml_tensor * z,
                                             ggml_tensor * tau, const float * eps);

// residual + (run ? g * ffn_out : (1 - g) * adapter), row by row ([d, n]; gate and run [1, n]):
// the half not taken is never read, so a row's masked-out product may hold anything.
ggml_tensor * flexidepth_fuse_mix(ggml_context * ctx, ggml_tensor * ffn_out, ggml_tensor * adapter, ggml_tensor * gate, ggml_tensor * run,
                                  ggml_tensor * residual);

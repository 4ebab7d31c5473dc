#pragma once

// FlexiDepth plug-ins: adaptive per-token layer skipping on top of any base model
// (../shared/flexidepth/SPEC.md). A plug-in is a GGUF file of its own (general.type = adapter,
// adapter.type = flexidepth) holding a router and an adapter for each routed layer. It is loaded
// onto a loaded base model, like a LoRA adapter, and attached to contexts with a threshold tau.

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

    struct llama_flexidepth;

    // Return codes of the functions below (0 = success).
    enum llama_flexidepth_status {
        LLAMA_FLEXIDEPTH_OK                = 0,
        LLAMA_FLEXIDEPTH_ERR_IO            = -1, // the file is missing or unreadable
        LLAMA_FLEXIDEPTH_ERR_FORMAT        = -2, // not GGUF, truncated, or not a FlexiDepth plug-in
        LLAMA_FLEXIDEPTH_ERR_ARCHITECTURE  = -3, // the base architecture is not supported
        LLAMA_FLEXIDEPTH_ERR_WRONG_BASE    = -4, // built for another base model (arch, hidden size, layers)
        LLAMA_FLEXIDEPTH_ERR_TENSOR        = -5, // a tensor is missing, misshapen or of a forbidden type
        LLAMA_FLEXIDEPTH_ERR_INVALID_ARG   = -6, // a NULL handle, a bad threshold, a too small buffer
        LLAMA_FLEXIDEPTH_ERR_ALLOC         = -7, // backend memory could not be allocated
        LLAMA_FLEXIDEPTH_ERR_DATA          = -8, // training data is missing, malformed or too short
        LLAMA_FLEXIDEPTH_ERR_CANCELLED     = -9, // training was cancelled by its progress callback
    };

    // How routed layers are computed. MASKED: skipped tokens read none of Wq, Wo and the FFN
    // weights (ggml_mul_mat_id with skip ids), the adapter runs only for skipped tokens.
    // DENSE: every branch for every token, selected afterwards; the correctness oracle.
    // AUTO (default): MASKED for batches of up to LLAMA_FLEXIDEPTH_MASKED_MAX_TOKENS tokens (decode,
    // where reading weights is the cost), DENSE above (prefill, where the dense kernels are faster).
    enum llama_flexidepth_mode {
        LLAMA_FLEXIDEPTH_MODE_DENSE  = 0,
        LLAMA_FLEXIDEPTH_MODE_MASKED = 1,
        LLAMA_FLEXIDEPTH_MODE_AUTO   = 2,
    };

#define LLAMA_FLEXIDEPTH_MASKED_MAX_TOKENS 16

    // Loads a plug-in for `model`. On failure returns NULL and, if `status` is not NULL, stores the
    // reason there; llama_flexidepth_last_error() then describes it. Nothing is left allocated.
    LLAMA_API struct llama_flexidepth * llama_flexidepth_load(
            const struct llama_model * model,
                          const char * path,
                             int32_t * status);

    // The message of the last failure on the calling thread ("" if none).
    LLAMA_API const char * llama_flexidepth_last_error(void);

    // Frees a plug-in. It must not be attached to any context any more.
    LLAMA_API void llama_flexidepth_free(struct llama_flexidepth * fd);

    LLAMA_API int32_t      llama_flexidepth_n_routed       (const struct llama_flexidepth * fd);
    // The model layer index of the i-th routed layer, ascending; -1 if i is out of range.
    LLAMA_API int32_t      llama_flexidepth_routed_layer   (const struct llama_flexidepth * fd, int32_t i);
    LLAMA_API int32_t      llama_flexidepth_router_size    (const struct llama_flexidepth * fd);
    LLAMA_API int32_t      llama_flexidepth_adapter_size   (const struct llama_flexidepth * fd);
    LLAMA_API float        llama_flexidepth_default_threshold(const struct llama_flexidepth * fd);
    LLAMA_API const char * llama_flexidepth_architecture   (const struct llama_flexidepth * fd);

    // Attaches a plug-in to a context with threshold tau in [0, 1]: later decodes route every token
    // of every routed layer. Replaces a plug-in attached before. The plug-in must belong to the
    // context's model. On failure the context keeps what was attached before.
    LLAMA_API int32_t llama_flexidepth_attach(struct llama_context * ctx, struct llama_flexidepth * fd, float tau);

    // Detaches the plug-in: the context computes the base model again. On failure (compute
    // buffers for the base graph cannot be reserved) the plug-in stays attached.
    LLAMA_API int32_t llama_flexidepth_detach(struct llama_context * ctx);

    // Changes tau; takes effect at the next decode without rebuilding the graph.
    LLAMA_API int32_t llama_flexidepth_set_threshold(struct llama_context * ctx, float tau);

    // Chooses how routed layers are computed (rebuilds the graph at the next decode). On failure
    // the mode is unchanged.
    LLAMA_API int32_t llama_flexidepth_set_mode(struct llama_context * ctx, enum llama_flexidepth_mode mode);

    // Overrides the routers, for measuring speed independently of router weights: decisions[r] is
    // 1 (run) or 0 (skip) for routed layer r for every token, or -1 to let its router decide.
    // NULL restores the routers. Takes effect at the next decode, without rebuilding the graph.
    LLAMA_API int32_t llama_flexidepth_force(struct llama_context * ctx, const int8_t * decisions, int32_t n_decisions);

    // Switches recording of routing decisions on (default) or off.
    LLAMA_API int32_t llama_flexidepth_set_collect(struct llama_context * ctx, bool collect);

    // Tokens of the last llama_decode whose routing was recorded (0 if none or not attached).
    LLAMA_API int32_t llama_flexidepth_n_recorded(const struct llama_context * ctx);

    // Copies the routing of the last llama_decode into caller-owned buffers, token-major:
    // gates[t * n_routed + r] is g of token t at routed layer r, and run[...] is 1 if the token ran
    // the full layer (g > tau), else 0. Tokens are in batch order; pos/seq_id (optional) receive each
    // token's position and sequence. Any output may be NULL. `capacity` is the number of tokens the
    // buffers hold. Returns the number of tokens copied, or a negative status.
    LLAMA_API int32_t llama_flexidepth_get_routing(
            const struct llama_context * ctx,
                                 float * gates,
                               uint8_t * run,
                             llama_pos * pos,
                          llama_seq_id * seq_id,
                               int32_t   capacity);

#ifdef __cplusplus
}
#endif

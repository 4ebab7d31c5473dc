#pragma once

// FlexiDepth plug-ins: adaptive per-token layer skipping on top of any base model
// (../shared/flexidepth/SPEC.md). A plug-in is a GGUF file of its own (general.type = adapter,
// adapter.type = flexidepth) holding a router and an adapter for each routed layer. It is loaded
// onto a loaded base model and set on contexts with a threshold tau, as upstream's LoRA adapters
// are (llama_adapter_lora_init, llama_set_adapters_lora).

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

    struct llama_adapter_flexidepth;

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

    // What a token that skips a routed layer leaves out (plug-in key flexidepth.skip; absent:
    // LAYER). native/README.md gives each family's formula.
    enum llama_flexidepth_skip {
        LLAMA_FLEXIDEPTH_SKIP_LAYER       = 0, // FlexiDepth: attention and FFN; its K/V are written and
                                               // attended by later tokens; the adapter replaces the FFN
        LLAMA_FLEXIDEPTH_SKIP_LAYER_NO_KV = 1, // the same, but no later token attends to its K/V in that
                                               // layer ("Learning to Skip"; the paper's K/V ablation)
        LLAMA_FLEXIDEPTH_SKIP_ATTENTION   = 2, // attention only (MindSkip): the FFN always runs, no adapter
        LLAMA_FLEXIDEPTH_SKIP_FFN         = 3, // FFN only: attention always runs; the adapter replaces the FFN
    };

    // How routed layers are computed. MASKED: skipped tokens read none of Wq, Wo and the FFN
    // weights (ggml_mul_mat_id with skip ids), the adapter runs only for skipped tokens.
    // DENSE: every branch for every token, selected afterwards; the correctness oracle.
    // AUTO (default): MASKED for ubatches of up to masked_max_tokens tokens (decode, where reading
    // weights is the cost), DENSE above (prefill, where the dense kernels are faster).
    enum llama_flexidepth_mode {
        LLAMA_FLEXIDEPTH_MODE_DENSE  = 0,
        LLAMA_FLEXIDEPTH_MODE_MASKED = 1,
        LLAMA_FLEXIDEPTH_MODE_AUTO   = 2,
    };

    // How a context computes with its plug-in: llama_set_adapter_flexidepth copies these.
    struct llama_flexidepth_params {
        float threshold;                   // tau in [0, 1]: a token runs a routed layer where g > tau
        enum llama_flexidepth_mode mode;   // default AUTO
        int32_t masked_max_tokens;         // AUTO computes ubatches of up to this many tokens MASKED (default 16)
        bool collect;                      // record each decode's routing for llama_get_flexidepth_routing (default true)
        // overrides the routers, for measuring speed independently of router weights:
        // forced[r] is 1 (run) or 0 (skip) for routed layer r for every token, or -1 to let its
        // router decide; n_forced is then the number of routed layers. NULL: the routers decide.
        const int8_t * forced;
        int32_t n_forced;
    };

    LLAMA_API struct llama_flexidepth_params llama_flexidepth_default_params(void);

    // The family's name as the plug-in key spells it ("layer", "layer_no_kv", "attention", "ffn";
    // "" out of range), and the family a name spells (-1 for none).
    LLAMA_API const char * llama_flexidepth_skip_name(enum llama_flexidepth_skip skip);
    LLAMA_API int32_t      llama_flexidepth_skip_from_name(const char * name);

    // How a plug-in is loaded.
    struct llama_flexidepth_load_params {
        // Store each adapter projection in the base model's quantization class where the file
        // holds it as F32, F16 or BF16 and the base weight it stands in for (ffn_gate, ffn_up,
        // ffn_down of its layer) is quantized: that weight's type at 6 bits or more (Q8_0, Q6_K),
        // Q8_0 for lower ones, the lowest class whose routing decisions still match the float
        // adapters' (native/README.md). A skipped layer then reads about half the bytes of F16
        // adapters. Rows that are not whole blocks keep the file's type, and routers always do.
        // false keeps every tensor as stored (training needs F32). Default true.
        bool adapters_in_base_type;
    };

    LLAMA_API struct llama_flexidepth_load_params llama_flexidepth_load_default_params(void);

    // Loads a plug-in for `model` (as llama_adapter_lora_init loads a LoRA adapter); params NULL:
    // the defaults. On failure returns NULL and, if `status` is not NULL, stores the reason there;
    // llama_flexidepth_last_error() then describes it. Nothing is left allocated.
    LLAMA_API struct llama_adapter_flexidepth * llama_adapter_flexidepth_load(
            const struct llama_model * model,
                          const char * path,
    const struct llama_flexidepth_load_params * params,
                             int32_t * status);

    // llama_adapter_flexidepth_load with the default load params.
    LLAMA_API struct llama_adapter_flexidepth * llama_adapter_flexidepth_init(
            const struct llama_model * model,
                          const char * path,
                             int32_t * status);

    // Frees a plug-in; contexts that still compute with it go back to the base model.
    LLAMA_API void llama_adapter_flexidepth_free(struct llama_adapter_flexidepth * adapter);

    // The message of the last failure on the calling thread ("" if none). A status code says what
    // kind of failure it was; callers that show it to a person (FFM bindings above all, which
    // cannot catch C++ exceptions) need the detail, such as which tensor of which file is wrong.
    // Thread-local, since contexts are used from several threads.
    LLAMA_API const char * llama_flexidepth_last_error(void);

    LLAMA_API int32_t      llama_adapter_flexidepth_n_routed    (const struct llama_adapter_flexidepth * adapter);
    // The model layer index of the i-th routed layer, ascending; -1 if i is out of range.
    LLAMA_API int32_t      llama_adapter_flexidepth_routed_layer(const struct llama_adapter_flexidepth * adapter, int32_t i);
    LLAMA_API int32_t      llama_adapter_flexidepth_router_size (const struct llama_adapter_flexidepth * adapter);
    LLAMA_API int32_t      llama_adapter_flexidepth_adapter_size(const struct llama_adapter_flexidepth * adapter);
    // The threshold the plug-in was made for, a default for llama_flexidepth_params.threshold.
    LLAMA_API float        llama_adapter_flexidepth_threshold   (const struct llama_adapter_flexidepth * adapter);
    LLAMA_API const char * llama_adapter_flexidepth_arch        (const struct llama_adapter_flexidepth * adapter);
    LLAMA_API enum llama_flexidepth_skip llama_adapter_flexidepth_skip(const struct llama_adapter_flexidepth * adapter);
    // The type routed layer il's adapter input projection is stored in once loaded (see
    // llama_flexidepth_load_params), and the bytes of its three projections; GGML_TYPE_COUNT and 0
    // where il is not routed or the family has no adapter.
    LLAMA_API enum ggml_type llama_adapter_flexidepth_adapter_type  (const struct llama_adapter_flexidepth * adapter, int32_t il);
    LLAMA_API size_t         llama_adapter_flexidepth_adapter_nbytes(const struct llama_adapter_flexidepth * adapter, int32_t il);

    // Sets the plug-in the context computes with and how (params NULL: the defaults); adapter NULL
    // computes the base model again. The plug-in must belong to the context's model. A new
    // threshold or forced decisions take effect at the next decode without rebuilding graphs;
    // another plug-in, mode or masked_max_tokens rebuilds them. On failure the context keeps
    // what it had.
    LLAMA_API int32_t llama_set_adapter_flexidepth(
            struct llama_context * ctx,
            struct llama_adapter_flexidepth * adapter,
            const struct llama_flexidepth_params * params);

    // A threshold for one sequence's tokens instead of the context's (a server's requests share a
    // context, and each may ask for its own), from the next decode on; kept across
    // llama_set_adapter_flexidepth calls. threshold < 0 clears it, and seq_id -1 with a negative
    // threshold clears every sequence's. Forced decisions still override it.
    LLAMA_API int32_t llama_set_flexidepth_threshold_seq(
            struct llama_context * ctx,
                    llama_seq_id   seq_id,
                           float   threshold);

    // The plug-in the context computes with, or NULL.
    LLAMA_API const struct llama_adapter_flexidepth * llama_get_adapter_flexidepth(const struct llama_context * ctx);

    // The routing of the last llama_decode, into caller-owned buffers, token-major:
    // gates[t * n_routed + r] is g of token t at routed layer r, and run[...] is 1 if the token ran
    // the full layer (g > tau), else 0. Tokens are in batch order; pos/seq_id receive each token's
    // position and sequence. Any output may be NULL; with all of them NULL it returns the number
    // of tokens recorded (0 without a plug-in or with collect off). `capacity` is the number of
    // tokens the buffers hold. Returns the number of tokens copied, or a negative status.
    LLAMA_API int32_t llama_get_flexidepth_routing(
            struct llama_context * ctx,
                           float * gates,
                         uint8_t * run,
                       llama_pos * pos,
                    llama_seq_id * seq_id,
                         int32_t   capacity);

#ifdef __cplusplus
}
#endif

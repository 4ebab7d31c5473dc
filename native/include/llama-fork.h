#pragma once

// Public C API of the fork's own additions. It sits next to upstream's llama.h and follows its
// conventions: flat functions, opaque handles, no exceptions across the boundary.

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

    // The upstream llama.cpp commit this library was built from (40 hex digits).
    LLAMA_API const char * llama_fork_upstream_commit(void);

    // Natural-log probability of `token` under the output logits of batch position `idx`
    // (same indexing as llama_get_logits_ith). Returns NaN if idx or token is out of range.
    // Computed in place from the logits: no allocation, so it is safe to call for every token.
    LLAMA_API float llama_fork_token_logprob(struct llama_context * ctx, int32_t idx, llama_token token);

    // The n most likely tokens under the output logits of batch position `idx` and their natural-log
    // probabilities (the raw distribution, as llama_fork_token_logprob), most likely first, into
    // ids and logprobs (capacity n each). Returns how many were written: min(n, vocabulary), or -1
    // if idx has no logits or n < 0.
    LLAMA_API int32_t llama_fork_token_top_logprobs(struct llama_context * ctx, int32_t idx, int32_t n,
                                                   llama_token * ids, float * logprobs);

    // Whether every logit of batch position `idx` (as llama_get_logits_ith) is finite; false if
    // idx has no logits. A NaN logit means the decode computed garbage (NaN weights, overflow).
    LLAMA_API bool llama_fork_logits_finite(struct llama_context * ctx, int32_t idx);

    enum llama_fork_sample_status {
        LLAMA_FORK_SAMPLE_OK           =  0,
        LLAMA_FORK_SAMPLE_NO_LOGITS    = -1, // idx has no logits
        LLAMA_FORK_SAMPLE_NO_CANDIDATE = -3, // the samplers (a grammar) admit no token
        LLAMA_FORK_SAMPLE_FAILED       = -4, // a sampler failed; the reason is in the log
    };

    // An abort callback for llama_set_abort_callback (or the context params') that aborts the
    // decode in progress once the int32 at `flag` is non-zero. The caller cancels from any thread
    // by storing 1 there: the decode does not call back into the caller for every graph node,
    // which from Java would be an upcall per node.
    LLAMA_API bool llama_fork_abort_on_flag(void * flag);

    enum llama_fork_backend_status {
        LLAMA_FORK_BACKEND_OK             =  0,
        LLAMA_FORK_BACKEND_NO_CPU_VARIANT = -1, // no CPU backend in dir runs on this CPU (or none is there)
    };

    // Loads the backends of a build from `dir` (ggml_backend_load_all_from_path; NULL: beside the
    // program and in the working directory): of the CPU backend's variants
    // (libggml-cpu-<variant>.so) the best one this CPU runs, and any other backend there
    // (libggml-cuda.so, ...). Writes the file name of the CPU backend in use into cpu_library
    // (capacity n, may be NULL) and returns a status. A library with the CPU backend linked in
    // (-DFLEXI_NATIVE_CPU=ON) loads nothing; calling it again loads nothing more.
    LLAMA_API int32_t llama_fork_backend_load(const char * dir, char * cpu_library, size_t n);

    // The name of the device that holds layer `il` of `model` ("CPU", "RPC0", "CUDA0", ...), or of
    // its output layer for il = -1; NULL if il is out of range or the model has no weights.
    LLAMA_API const char * llama_fork_model_layer_device(const struct llama_model * model, int32_t il);

    enum llama_fork_rpc_status {
        LLAMA_FORK_RPC_OK           =  0,
        LLAMA_FORK_RPC_BAD_ENDPOINT = -1, // not host:port
        LLAMA_FORK_RPC_UNAVAILABLE  = -2, // the build has no RPC backend module
        LLAMA_FORK_RPC_UNREACHABLE  = -3, // nothing accepts connections there (within 5 s)
        LLAMA_FORK_RPC_NO_DEVICES   = -4, // the server offers no device
    };

    // Connects to an rpc-server (upstream's tools/rpc, built as ggml-rpc-server) at `endpoint`
    // ("host:port") and writes up to `capacity` of its devices into `devices` and their number
    // into n_devices; for llama_model_params.devices (NULL-terminated). A failure returns a status
    // and a message (capacity n) instead of upstream's abort. Calling it again for an endpoint
    // returns the same devices. The server must run this build's protocol version.
    LLAMA_API int32_t llama_fork_rpc_add_server(const char * endpoint, ggml_backend_dev_t * devices, size_t capacity,
                                                size_t * n_devices, char * message, size_t n);

#ifdef __cplusplus
}
#endif

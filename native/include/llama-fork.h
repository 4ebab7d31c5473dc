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

#ifdef __cplusplus
}
#endif

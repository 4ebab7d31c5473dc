#pragma once

// Direct multi-token decoding (../shared/dmtd/SPEC.md): a model fine-tuned so that only its last
// layers (the decoding layers) decode tau-1 of every tau tokens. A DMTD model is an ordinary GGUF
// of its architecture with the keys below (written by the converter and the DMTD trainer); any
// llama or qwen3 model can also be run with explicit parameters, for measuring speed.
//   dmtd.thinking_layers  u32   the first T layers think, the others decode
//   dmtd.cycle            u32   the tau it was trained for (the default cycle)
//   dmtd.phase            str   "prompt_end" (default) or "absolute"
//   dmtd.refill           bool  default true

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

    // Return codes of the functions below; llama_dmtd_decode returns llama_decode's own value when
    // that fails (1: no room in the cache, 2: aborted, negative: an error), which these do not overlap.
    enum llama_dmtd_status {
        LLAMA_DMTD_OK              = 0,
        LLAMA_DMTD_ERR_INVALID_ARG = -100, // a NULL context, parameters out of range, a batch DMTD cannot decode
        LLAMA_DMTD_ERR_NOT_SET     = -101, // the context decodes without DMTD
    };

    // Where cycles start. PROMPT_END: the first token decoded after a prompt is a cycle head (the
    // authors' vLLM port). ABSOLUTE: positions p with p % tau == 0 are heads (the training code).
    enum llama_dmtd_phase {
        LLAMA_DMTD_PHASE_PROMPT_END = 0,
        LLAMA_DMTD_PHASE_ABSOLUTE   = 1,
    };

    struct llama_dmtd_params {
        int32_t n_thinking;            // layers 0 .. n_thinking-1 think, the rest decode; 1 .. n_layer-1
        int32_t cycle;                 // tau >= 1: one full-depth step, then tau-1 decoding-only steps (1: always full)
        enum llama_dmtd_phase phase;
        bool refill;                   // a cycle head first runs the thinking layers for the positions
                                       // decoded since the last one (false: "no refill", SPEC section 4:
                                       // heads decode alone, and the thinking layers of every later
                                       // step attend to the prompts' and the heads' positions only)
    };

    // The parameters a DMTD model was made with. Returns false, with out set to n_thinking =
    // n_layer and cycle 1 (no multi-token decoding), if the model has no dmtd.* keys.
    LLAMA_API bool llama_dmtd_model_params(const struct llama_model * model, struct llama_dmtd_params * out);

    // Decodes the context's sequences with DMTD from the next llama_dmtd_decode on (params NULL:
    // off). The cycle of each sequence is kept across calls. Refused while a FlexiDepth plug-in is
    // set (and llama_set_adapter_flexidepth refuses one while DMTD is on): they do not combine yet.
    LLAMA_API int32_t llama_set_dmtd(struct llama_context * ctx, const struct llama_dmtd_params * params);

    // Decodes a batch under DMTD's schedule. A sequence with several tokens in the batch is a
    // prompt, decoded as by llama_dmtd_prefill. A sequence with one token takes a cycle-head step
    // (full depth, with the refill block of the tokens decoded since its last head) or a
    // decoding-only step. After success, read token i's logits at llama_dmtd_output_index(ctx, i)
    // (the refill rows come first in what was decoded); index -1 is the last token's, as after
    // llama_decode. On failure (a llama_dmtd_status, or llama_decode's value) the cache and the
    // cycles are as they were.
    LLAMA_API int32_t llama_dmtd_decode(struct llama_context * ctx, struct llama_batch batch);

    // Decodes a batch as a prompt for each of its sequences, however many tokens each has: full
    // depth, the next token a cycle head (PROMPT_END). A sequence that decoded tokens since its last
    // full step (a prompt that follows a reply) first refills them, as a head would, so that every
    // position's thinking-layer K/V is written exactly once. llama_decode on a DMTD context decodes
    // full depth too but does not refill: the prompt's thinking layers would read those positions'
    // unwritten K/V. Without refill neither refills, and the prompt's thinking layers do not attend
    // to those positions. Logits and failures as for llama_dmtd_decode.
    LLAMA_API int32_t llama_dmtd_prefill(struct llama_context * ctx, struct llama_batch batch);

    // Decodes a batch as training saw it (SPEC section 3, cyclical masking): every layer for every
    // token, a token at position p a cycle head when p % cycle == 0 (decoding-layer input h + e)
    // and otherwise fed its embedding alone to the decoding layers. For perplexity under DMTD's
    // schedule with teacher forcing; the batch's sequences start a new cycle afterwards. Without
    // refill the thinking layers attend to the heads' positions only, as in decoding without it.
    // Returns 0, llama_decode's value when that fails, or a llama_dmtd_status.
    LLAMA_API int32_t llama_dmtd_score(struct llama_context * ctx, struct llama_batch batch);

    // The index to pass to llama_get_logits_ith (or a sampler) for token i of the last
    // llama_dmtd_decode batch; -1 if i is out of range.
    LLAMA_API int32_t llama_dmtd_output_index(const struct llama_context * ctx, int32_t i);

    // Whether token i of the last llama_dmtd_decode batch was decoded at full depth (1: a prompt
    // or a cycle head) or by the decoding layers only (0); -1 if out of range.
    LLAMA_API int32_t llama_dmtd_full_step(const struct llama_context * ctx, int32_t i);

    // The tokens sequence seq_id decoded since its last full step, which its next head refills,
    // and whether its next token is a head because a prompt just ended (PROMPT_END): saved beside
    // llama_state_seq_* to restore a sequence in the middle of a cycle. Returns their number
    // (copying at most capacity; tokens and starts_cycle may be NULL), or a negative status.
    LLAMA_API int32_t llama_dmtd_seq_pending(const struct llama_context * ctx, llama_seq_id seq_id,
                                             llama_token * tokens, int32_t capacity, bool * starts_cycle);

    // Restores what llama_dmtd_seq_pending returned, after the sequence's cache was restored: the
    // tokens are its last n positions. n = 0 with start_cycle makes its next token a cycle head.
    LLAMA_API int32_t llama_dmtd_seq_set_pending(struct llama_context * ctx, llama_seq_id seq_id,
                                                 const llama_token * tokens, int32_t n, bool start_cycle);

    // Without refill: the positions of sequence seq_id whose tokens were decoded by the decoding
    // layers only, which the thinking layers never see. Saved beside llama_state_seq_* (which
    // does not hold them) to restore a sequence. Returns their number, ascending (copying at most
    // capacity; positions may be NULL), or a negative status; 0 with refill.
    LLAMA_API int32_t llama_dmtd_seq_hidden(const struct llama_context * ctx, llama_seq_id seq_id,
                                            llama_pos * positions, int32_t capacity);

    // Restores what llama_dmtd_seq_hidden returned, after the sequence's cache was restored: those
    // of its positions are hidden from the thinking layers, the others visible.
    LLAMA_API int32_t llama_dmtd_seq_set_hidden(struct llama_context * ctx, llama_seq_id seq_id,
                                                const llama_pos * positions, int32_t n);

    // The message of the last failure on the calling thread ("" if none).
    LLAMA_API const char * llama_dmtd_last_error(void);

#ifdef __cplusplus
}
#endif

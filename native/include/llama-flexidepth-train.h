#pragma once

// Training FlexiDepth plug-ins for a frozen base model on ggml's optimizer (llama_opt_*), and
// ShortGPT's block influence, in libllama-flexidepth-training (link it beside libllama).
// Only the routers and adapters are trainable; the base model stays in whatever type it is
// stored. Objective (SPEC.md section 4): alpha * L_skip + L_lm, where
// L_skip = mean over tokens of (sum over routed layers of g)^2 and L_lm is next-token cross
// entropy. Layers are computed densely (both branches, selected by the hard decision g > tau,
// which is not differentiated): gradients reach the router through the g and (1 - g) scales.

#include "llama-flexidepth.h"

#ifdef __cplusplus
extern "C" {
#endif

    // Tokenized training text.
    struct llama_flexidepth_train_data;

    enum llama_flexidepth_data_format {
        LLAMA_FLEXIDEPTH_DATA_TEXT       = 0, // plain text files, each starting with BOS
        LLAMA_FLEXIDEPTH_DATA_CHAT_JSONL = 1, // one {"messages":[{"role":..,"content":..},..]} per line,
                                              // rendered with the chat template
    };

    // Reads and tokenizes training files for `model`. chat_template: a template name or Jinja text
    // for CHAT_JSONL; NULL uses the model's own. Returns NULL on failure (status and
    // llama_flexidepth_last_error() say why, naming the file and line).
    LLAMA_API struct llama_flexidepth_train_data * llama_flexidepth_train_data_load(
            const struct llama_model * model,
                   const char * const * paths,
                               int32_t   n_paths,
     enum llama_flexidepth_data_format   format,
                          const char * chat_template,
                               int32_t * status);

    // Training data from tokens the caller already has (copied).
    LLAMA_API struct llama_flexidepth_train_data * llama_flexidepth_train_data_from_tokens(
            const llama_token * tokens,
                      int64_t   n_tokens);

    LLAMA_API int64_t llama_flexidepth_train_data_n_tokens(const struct llama_flexidepth_train_data * data);
    LLAMA_API void    llama_flexidepth_train_data_free(struct llama_flexidepth_train_data * data);

    // Reported after every optimizer step.
    struct llama_flexidepth_train_progress {
        int64_t step;               // steps done, counting those before a resume
        int64_t n_steps;            // steps in the whole run
        int64_t n_tokens_done;      // training tokens seen, counting those before a resume
        float   loss_lm;            // next-token cross entropy of this step (nats per token)
        float   loss_skip;          // L_skip of this step (not multiplied by alpha)
        float   mean_layers;        // layers used per token in this step (unrouted + routed that ran)
        float   learning_rate;      // of this step
        double  tokens_per_second;  // since this run started
        double  eta_seconds;        // until the last step, at that speed
    };

    // Returns false to cancel training (a checkpoint is written first).
    typedef bool (*llama_flexidepth_train_callback)(const struct llama_flexidepth_train_progress * progress, void * user_data);

    struct llama_flexidepth_train_params {
        // the plug-in's shape, for a new plug-in (a resumed checkpoint keeps its own)
        const int32_t * routed_layers;     // ascending model layer indices; NULL: the latter half
        int32_t n_routed_layers;
        int32_t router_size;               // 0: n_embd / 16
        int32_t adapter_size;              // 0: n_ff / 16 (a family without an adapter has none)
        enum llama_flexidepth_skip skip;   // what a skipped token leaves out (default LAYER)
        float   threshold;                 // tau for the decisions, stored in the plug-in
        float   init_router_bias;          // router logit at the start: sigmoid(bias) ~ 1 runs every layer

        // objective and optimizer (AdamW, linear warm-up then cosine decay to min_lr_ratio * lr)
        float   alpha;
        float   learning_rate;
        float   min_lr_ratio;
        float   weight_decay;
        int32_t warmup_steps;

        // data: sequences of n_ctx tokens, one per optimizer step, shuffled per epoch with `seed`
        int32_t n_ctx;                     // a multiple of 256 (llama.cpp pads contexts to 256)
        int32_t n_epochs;                  // used when token_budget is 0
        int64_t token_budget;              // training tokens in all; 0: n_epochs passes over the data
        uint32_t seed;
        int32_t n_threads;                 // 0: all cores

        // checkpoints: a plug-in file plus the step reached, written every checkpoint_every steps
        // and when cancelled. NULL: "<output_path>.checkpoint", removed once the output is written
        // (the output resumes too). With resume, training continues from the checkpoint if it
        // exists (AdamW moments restart from zero).
        const char * checkpoint_path;
        int32_t checkpoint_every;
        bool    resume;

        llama_flexidepth_train_callback callback; // may be NULL
        void * callback_user_data;
    };

    LLAMA_API struct llama_flexidepth_train_params llama_flexidepth_train_default_params(void);

    // Trains a plug-in for `model` on `data` and writes it to output_path (F32 routers and
    // adapters; the runtime loads it with llama_adapter_flexidepth_init). Blocks until done. Returns
    // LLAMA_FLEXIDEPTH_OK, LLAMA_FLEXIDEPTH_ERR_CANCELLED or another negative status.
    LLAMA_API int32_t llama_flexidepth_train(
                  struct llama_model * model,
     const struct llama_flexidepth_train_data * data,
                          const char * output_path,
    const struct llama_flexidepth_train_params * params);

    // ShortGPT's block influence of every layer on calibration tokens, for the static baseline
    // that removes the least influential layers: BI_l = 1 - mean over tokens of
    // cos(input of layer l, output of layer l). The tokens are read in windows of n_ctx.
    // out receives n_layer values. Returns LLAMA_FLEXIDEPTH_OK or a negative status.
    LLAMA_API int32_t llama_flexidepth_block_influence(
                  struct llama_model * model,
                   const llama_token * tokens,
                             int64_t   n_tokens,
                             int32_t   n_ctx,
                             int32_t   n_threads,
                               float * out,
                             int32_t   n_layer);

#ifdef __cplusplus
}
#endif

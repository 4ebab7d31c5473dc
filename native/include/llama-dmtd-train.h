#pragma once

// Fine-tuning a base model for direct multi-token decoding on ggml's optimizer (in
// libllama-flexidepth-training, beside the plug-in trainer): the cyclical-masking objective of
// ../shared/dmtd/SPEC.md section 3. Every layer's tensors train; the token embedding, the final
// norm and the output head stay frozen. Windows of n_ctx tokens are phased by absolute position
// (position p is a cycle head when p % cycle == 0), as the authors' training code does.

#include "llama-flexidepth-train.h"

#ifdef __cplusplus
extern "C" {
#endif

    // Trains `model` (loaded from base_path, F32, without mmap and without repacked weights: its
    // weights are changed in place) on `data` and writes the result to output_path: base_path's
    // metadata and tensors with the trained layers and dmtd.thinking_layers = n_thinking,
    // dmtd.cycle = cycle. From `params` it uses the optimizer, data, checkpoint and callback
    // fields (the plug-in's shape, threshold, alpha and skip family do not apply); the progress
    // reports loss_skip 0 and mean_layers the layers a token uses under the schedule. A checkpoint
    // is a model file of the same kind. Returns LLAMA_FLEXIDEPTH_OK, LLAMA_FLEXIDEPTH_ERR_CANCELLED
    // or another negative status (llama_flexidepth_last_error() says why).
    LLAMA_API int32_t llama_dmtd_train(
                  struct llama_model * model,
                          const char * base_path,
     const struct llama_flexidepth_train_data * data,
                          const char * output_path,
                             int32_t   n_thinking,
                             int32_t   cycle,
    const struct llama_flexidepth_train_params * params);

#ifdef __cplusplus
}
#endif

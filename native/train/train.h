#pragma once

// What the files of libllama-flexidepth-train share. The library trains plug-ins for libllama's
// runtime (flexidepth-plugin.h, flexidepth-graph.h) and is loaded only where training is wanted:
// by the CLI tools, and by Java when a trainer is created.

#include "llama-flexidepth-train.h"

#include "flexidepth-graph.h"
#include "flexidepth-plugin.h"

#include "llama-impl.h"
#include "llama-model.h"

#include "ggml-opt.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

struct llama_flexidepth_train_data {
    std::vector<llama_token> tokens;
};

namespace flexidepth_train {

// plug-in files (train-plugin-file.cpp) ------------------------------------------------------

// Where a run stands, stored in every checkpoint so that a resumed run continues exactly.
struct position {
    uint64_t step = 0, tokens = 0;
    uint32_t seed = 0, n_ctx = 0;
    float alpha = 0.0f;
};

// A loaded plug-in's tensors, copied to host memory and written atomically as a plug-in file.
void save_plugin(const std::string & path, const llama_adapter_flexidepth & fd, const position & pos);

// A new plug-in that starts close to the base model, written to path.
void write_initial_plugin(const std::string & path, const llama_model & model, const llama_flexidepth_train_params & p);

// The position stored in a checkpoint.
position read_position(const std::string & path);

// optimizer glue (train-optimizer.cpp) -------------------------------------------------------

// A run's state that ggml-opt's callbacks read.
struct trainer {
    const llama_flexidepth_train_params * params = nullptr;
    llama_flexidepth_binding * binding = nullptr;
    int64_t step = 0, n_steps = 0;
    int32_t n_layer = 0;
    // of the last step, read back by the epoch callback
    float loss_skip = 0.0f, mean_layers = 0.0f;
    std::vector<float> gates;
};

// Linear warm-up, then cosine decay to min_lr_ratio * lr.
float learning_rate(const trainer & t);

// ggml-opt's callbacks: AdamW at this step's rate (ud: the trainer); only the plug-in's tensors
// are trainable (ud: the plug-in); after each step, the skip loss and layers used of its gates
// (the trainer set with set_current, on the training thread).
ggml_opt_optimizer_params optimizer_params(void * ud);
bool is_plugin_tensor(const ggml_tensor * tensor, void * ud);
void after_step(bool train, ggml_opt_context_t, ggml_opt_dataset_t, ggml_opt_result_t, int64_t, int64_t, int64_t);
void set_current(trainer * t);

// shared by plug-in and DMTD training (train-steps.cpp) --------------------------------------

// The CPU's repacked weight layouts have no backward pass: refuses a base model stored in them.
void check_base_buffers(const llama_model & model);

// The optimizer, data and checkpoint options (flexidepth_error with ERR_INVALID_ARG otherwise).
void check_schedule(const llama_flexidepth_train_params & p);

// Windows of n_ctx tokens (and their next tokens) in the data; refuses tokens outside the
// vocabulary and data shorter than one window.
int64_t count_windows(const llama_model & model, const std::vector<llama_token> & tokens, int64_t n_ctx);

// Optimizer steps pos.step .. t.n_steps-1 of llama_opt on ctx, one window of p.n_ctx tokens each,
// the windows of every epoch in an order that depends only on p.seed and the epoch (t.step is the
// step being taken: the learning-rate schedule reads it). After each step it advances pos, reports
// progress to p.callback (describe fills in the losses and layers from the step's total loss) and
// writes a checkpoint (save) every p.checkpoint_every steps and when the callback cancels. Returns
// LLAMA_FLEXIDEPTH_OK, or ERR_CANCELLED naming the checkpoint; a loss that is not finite throws.
int32_t run_steps(llama_context * ctx, const std::vector<llama_token> & tokens, trainer & t, position & pos,
                  const llama_flexidepth_train_params & p, const std::string & checkpoint,
                  const std::function<void(double, llama_flexidepth_train_progress &)> & describe,
                  const std::function<void()> & save);

} // namespace flexidepth_train

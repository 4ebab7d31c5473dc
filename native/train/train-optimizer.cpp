// ggml-opt's callbacks for a training run: the learning-rate schedule, which tensors train, and
// what each step's gates say (the skip loss and layers used, for the progress report).

#include "train.h"

#include <algorithm>
#include <cmath>

namespace flexidepth_train {

namespace {
// ggml-opt's step callback has no user data: the run on this thread
thread_local trainer * current = nullptr;
}

void set_current(trainer * t) {
    current = t;
}

float learning_rate(const trainer & t) {
    const auto & p = *t.params;
    if (t.step < p.warmup_steps) {
        return p.learning_rate * (float) (t.step + 1) / (float) p.warmup_steps;
    }
    const double span = std::max<int64_t>(1, t.n_steps - p.warmup_steps);
    const double progress = std::min(1.0, (double) (t.step - p.warmup_steps) / span);
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
    return (float) (p.learning_rate * (p.min_lr_ratio + (1.0 - p.min_lr_ratio) * cosine));
}

ggml_opt_optimizer_params optimizer_params(void * ud) {
    const trainer & t = *(const trainer *) ud;
    ggml_opt_optimizer_params op = ggml_opt_get_default_optimizer_params(nullptr);
    op.adamw.alpha = learning_rate(t);
    op.adamw.wd = t.params->weight_decay;
    return op;
}

bool is_plugin_tensor(const ggml_tensor * tensor, void * ud) {
    const std::vector<ggml_tensor *> all = ((const llama_adapter_flexidepth *) ud)->tensors();
    return std::find(all.begin(), all.end(), tensor) != all.end();
}

void after_step(bool train, ggml_opt_context_t, ggml_opt_dataset_t, ggml_opt_result_t, int64_t, int64_t, int64_t) {
    trainer * t = current;
    if (t == nullptr || !train || t->binding == nullptr) {
        return; // a DMTD run has no gates
    }
    const auto & gates = t->binding->train_gates;
    if (gates.empty()) {
        return;
    }
    const int64_t n = ggml_nelements(gates[0]);
    t->gates.resize(n * gates.size());
    for (size_t r = 0; r < gates.size(); ++r) {
        ggml_backend_tensor_get(gates[r], t->gates.data() + r * n, 0, n * sizeof(float));
    }
    const float tau = t->binding->tau;
    double skip = 0.0, ran = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        double sum_g = 0.0;
        for (size_t r = 0; r < gates.size(); ++r) {
            const float g = t->gates[r * n + i];
            sum_g += g;
            ran += g > tau ? 1.0 : 0.0;
        }
        skip += sum_g * sum_g;
    }
    t->loss_skip = (float) (skip / n);
    t->mean_layers = (float) (t->n_layer - (int64_t) gates.size()) + (float) (ran / n);
}

} // namespace flexidepth_train

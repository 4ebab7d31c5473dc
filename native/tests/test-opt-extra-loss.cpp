// Patch 0007: ggml-opt adds a scalar node that the model graph flagged with ggml_set_loss to the
// loss it builds from the outputs (the FlexiDepth trainer's alpha * L_skip). One evaluation of
// loss = sum(w * x) + c * sum(w^2) must report that total, and one SGD step of learning rate 1
// must subtract the gradient sum over columns of x + 2 c w; without the flag, only the first term.
// (Non-static graphs are released after evaluation, so the step shows the gradient.)
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "test-cpu-backend.h"
#include "ggml-opt.h"

#include <cmath>
#include <cstdio>
#include <vector>

static ggml_opt_optimizer_params sgd_lr1(void *) {
    ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
    p.sgd.alpha = 1.0f;
    p.sgd.wd = 0.0f;
    return p;
}

static int run(bool extra_term) {
    const int n = 8, cols = 3;
    const float c = 0.25f;
    std::vector<float> w0(n), x0(n * cols);
    for (int i = 0; i < n; ++i) {
        w0[i] = 0.1f * (i - 3);
    }
    for (int i = 0; i < n * cols; ++i) {
        x0[i] = 0.05f * (i % 7) - 0.1f;
    }

    ggml_backend_t cpu = test_cpu_backend(1);
    ggml_backend_sched_t sched = ggml_backend_sched_new(&cpu, nullptr, 1, 4096, false, true);

    ggml_init_params sp = { 16 * ggml_tensor_overhead(), nullptr, true };
    ggml_context * ctx_static = ggml_init(sp);
    ggml_tensor * w = ggml_new_tensor_1d(ctx_static, GGML_TYPE_F32, n);
    ggml_set_name(w, "w");
    ggml_set_param(w);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx_static, cpu);
    ggml_backend_tensor_set(w, w0.data(), 0, n * sizeof(float));

    ggml_opt_params op = ggml_opt_default_params(sched, GGML_OPT_LOSS_TYPE_SUM);
    op.optimizer = GGML_OPT_OPTIMIZER_TYPE_SGD;
    op.get_opt_pars = sgd_lr1;
    ggml_opt_context_t opt = ggml_opt_init(op);

    ggml_init_params cp = { 4096 * ggml_tensor_overhead() + 4 * ggml_graph_overhead_custom(1024, true), nullptr, true };
    ggml_context * ctx = ggml_init(cp);
    ggml_tensor * x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, n, cols);
    ggml_tensor * out = ggml_mul(ctx, x, w);                               // [n, cols]
    ggml_cgraph * gf = ggml_new_graph_custom(ctx, 1024, true);
    ggml_build_forward_expand(gf, out);
    if (extra_term) {
        ggml_tensor * reg = ggml_scale(ctx, ggml_sum(ctx, ggml_sqr(ctx, w)), c);
        ggml_set_loss(reg);
        ggml_build_forward_expand(gf, reg);
    }
    ggml_opt_prepare_alloc(opt, ctx, gf, x, out);
    ggml_opt_alloc(opt, true);
    ggml_backend_tensor_set(x, x0.data(), 0, x0.size() * sizeof(float));
    ggml_opt_result_t result = ggml_opt_result_init();
    ggml_opt_eval(opt, result);

    double loss = 0.0, unc = 0.0;
    ggml_opt_result_loss(result, &loss, &unc);
    std::vector<float> w1(n), grad(n);
    ggml_backend_tensor_get(w, w1.data(), 0, n * sizeof(float));
    for (int i = 0; i < n; ++i) {
        grad[i] = w0[i] - w1[i];
    }

    double want_loss = 0.0;
    int bad = 0;
    for (int i = 0; i < n; ++i) {
        double col_sum = 0.0;
        for (int j = 0; j < cols; ++j) {
            col_sum += x0[j * n + i];
            want_loss += w0[i] * x0[j * n + i];
        }
        want_loss += extra_term ? c * w0[i] * w0[i] : 0.0;
        const double want = col_sum + (extra_term ? 2.0 * c * w0[i] : 0.0);
        bad += std::fabs(grad[i] - want) > 1e-5;
    }
    bad += std::fabs(loss - want_loss) > 1e-5;
    printf("%s: loss %.6f (expected %.6f), %d mismatches\n", extra_term ? "with extra term" : "without", loss, want_loss, bad);

    ggml_opt_result_free(result);
    ggml_free(ctx);
    ggml_opt_free(opt);
    ggml_backend_buffer_free(buf);
    ggml_free(ctx_static);
    ggml_backend_sched_free(sched);
    ggml_backend_free(cpu);
    return bad;
}

int main() {
    const int bad = run(false) + run(true);
    if (bad) {
        fprintf(stderr, "FAIL: the extra loss term is not in the loss or its gradient\n");
    }
    return bad == 0 ? 0 : 1;
}

// Gradient check of the backward passes the fork adds to ggml for FlexiDepth training (tanh and
// sigmoid, the router's nonlinearities): ggml's gradient of sum(w * op(x)) against central finite
// differences, for inputs across the op's range.
#include "ggml.h"
#include "test-cpu-backend.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

static int check(ggml_backend_t backend, const std::string & name, std::function<ggml_tensor *(ggml_context *, ggml_tensor *)> op) {
    const int n = 64;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-4.0f, 4.0f);
    std::vector<float> x0(n), w0(n);
    for (int i = 0; i < n; ++i) { x0[i] = dist(rng); w0[i] = dist(rng); }

    ggml_init_params p = { 64 * 1024 * 1024, nullptr, false };
    ggml_context * ctx = ggml_init(p);
    ggml_tensor * x = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
    ggml_tensor * w = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
    ggml_set_param(x);
    memcpy(x->data, x0.data(), n * sizeof(float));
    memcpy(w->data, w0.data(), n * sizeof(float));
    ggml_tensor * loss = ggml_sum(ctx, ggml_mul(ctx, op(ctx, x), w));
    ggml_set_loss(loss);

    ggml_cgraph * gf = ggml_new_graph_custom(ctx, GGML_DEFAULT_GRAPH_SIZE, true);
    ggml_build_forward_expand(gf, loss);
    ggml_cgraph * gb = ggml_graph_dup(ctx, gf, true);
    ggml_build_backward_expand(ctx, gb, nullptr);
    ggml_graph_reset(gb);
    ggml_backend_graph_compute(backend, gb);
    const float * grad = (const float *) ggml_graph_get_grad(gb, x)->data;

    int bad = 0;
    double max_err = 0;
    // central differences: truncation error O(eps^2), f32 rounding of the sum O(1e-7 / eps)
    const float eps = 1e-2f;
    for (int i = 0; i < n; ++i) {
        float * xd = (float *) x->data;
        xd[i] = x0[i] + eps;
        ggml_backend_graph_compute(backend, gf);
        const double fp = *(const float *) loss->data;
        xd[i] = x0[i] - eps;
        ggml_backend_graph_compute(backend, gf);
        const double fm = *(const float *) loss->data;
        xd[i] = x0[i];
        const double numeric = (fp - fm) / (2 * eps);
        const double err = std::fabs(numeric - grad[i]) / (1e-2 + std::fabs(numeric));
        max_err = std::max(max_err, err);
        bad += err > 1e-2;
    }
    printf("%s: max relative gradient error %.2e over %d inputs in [-4, 4]\n", name.c_str(), max_err, n);
    ggml_free(ctx);
    return bad;
}

int main() {
    int bad = 0;
    ggml_backend_t backend = test_cpu_backend(1);
    bad += check(backend, "tanh", [](ggml_context * c, ggml_tensor * x) { return ggml_tanh(c, x); });
    bad += check(backend, "sigmoid", [](ggml_context * c, ggml_tensor * x) { return ggml_sigmoid(c, x); });
    // the router's composition: sigmoid(sum(tanh(x)))-like chains must also differentiate
    bad += check(backend, "sigmoid(2 tanh(x))", [](ggml_context * c, ggml_tensor * x) { return ggml_sigmoid(c, ggml_scale(c, ggml_tanh(c, x), 2.0f)); });
    ggml_backend_free(backend);
    if (bad) {
        fprintf(stderr, "FAIL: %d gradients differ from finite differences\n", bad);
    }
    return bad == 0 ? 0 : 1;
}

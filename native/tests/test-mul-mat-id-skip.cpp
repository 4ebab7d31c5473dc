// ggml_mul_mat_id with skip ids (-1), in the style of upstream's test-backend-ops: a 1-expert
// weight view with ids in {0, -1} must give the dense ggml_mul_mat result for kept tokens and
// exact zeros for skipped ones, for F32, F16, Q8_0, Q4_0 and Q4_K weights, at skip ratios 0, 0.5
// and 1, through the generic CPU path and, where the CPU has one, the repacked (extra buffer) path;
// layouts whose buffer cannot run the op (AMX) are left out, as the runtime leaves them dense.
// It runs on every CPU backend variant beside it that this CPU can execute (under qemu-user with
// an older -cpu, the lower ones), since patch 0004 is compiled into each of them, and on every GPU
// device of the build (native/tools/gpu-check.sh), where the kernels of patch 0004 differ.
#include "ggml.h"
#include "ggml-backend.h"

#include <algorithm>
#include <dirent.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

static int failures = 0;
static int cases = 0;
// per "buffer type/ggml type": cases run and the largest |masked - dense| / sum |w x| of kept rows
static std::map<std::string, int> cases_of;
static std::map<std::string, double> worst_of;
// the dense product in the plain CPU buffer, by variant, type and batch: the repacked layouts'
// MUL_MAT (whose last 2 or 3 rows go through a padded GEMM, patch 0012) is held to it
static std::map<std::string, std::vector<float>> plain_dense;

static bool half_precision_f16 = false;
// GPU kernels quantize activations (MMVQ, MMQ) or accumulate in half precision (cuBLAS, MMF) on one
// path and not always the same way on the other: a wrong or missing row is still off by far more
static bool gpu_tolerance = false;
static std::string current_variant;

static bool cpu_has_avx512_fp16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512fp16");
#else
    return false;
#endif
}

// F16 products agree to F32 precision on x86 except in a -march=native build on a CPU with
// AVX512-FP16, which accumulates them in half precision (simd-mappings.h under __AVX512FP16__; no
// variant is built with it). On ARM upstream's dense and id kernels differ by half-precision
// rounding in every variant (measured up to 1.2e-4 of sum |w x| with FP16 vector arithmetic,
// 4.6e-5 without), so F16 is bounded loosely there.
static bool f16_in_half_precision(bool native_build) {
#if defined(__aarch64__)
    (void) native_build;
    return true;
#else
    return getenv("FLEXI_F16_HALF_ACC") != nullptr || (native_build && cpu_has_avx512_fp16());
#endif
}

static void check(bool ok, const std::string & what) {
    if (!ok) {
        fprintf(stderr, "FAIL: %s\n", what.c_str());
        failures++;
    }
}

// Runs ids-masked and dense products of the same weights on `buft` and compares them.
static void run_case(ggml_backend_t backend, ggml_backend_buffer_type_t buft, const char * buft_name,
                     ggml_type type, double skip_ratio, int n_tokens) {
    const int K = 256, N = 64;
    std::mt19937 rng(42 + (int) type * 7 + n_tokens);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> w(K * N), x(K * n_tokens);
    for (auto & v : w) v = dist(rng);
    for (auto & v : x) v = dist(rng);
    std::vector<int32_t> ids(n_tokens);
    for (int t = 0; t < n_tokens; ++t) {
        // a deterministic share of skipped tokens, scattered (5 is coprime with every n_tokens)
        ids[t] = ((t * 5 + 2) % n_tokens + 0.5) / n_tokens < skip_ratio ? -1 : 0;
    }

    // weights in `buft` (possibly repacked), everything else in a plain CPU buffer
    ggml_init_params wp = { ggml_tensor_overhead() * 4, nullptr, true };
    ggml_context * wctx = ggml_init(wp);
    ggml_tensor * W3 = ggml_new_tensor_3d(wctx, type, K, N, 1);
    ggml_backend_buffer_t wbuf = ggml_backend_alloc_ctx_tensors_from_buft(wctx, buft);
    if (!wbuf) {
        check(false, std::string("allocating weights in ") + buft_name);
        return;
    }
    if (strcmp(buft_name, "CPU") != 0 && W3->extra == nullptr) {
        // this CPU has no repacked layout for the type: nothing to test in this buffer
        ggml_backend_buffer_free(wbuf);
        ggml_free(wctx);
        return;
    }
    ggml_init_params gp = { ggml_tensor_overhead() * 16 + ggml_graph_overhead(), nullptr, true };
    ggml_context * ctx = ggml_init(gp);
    ggml_tensor * X = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, K, 1, n_tokens);
    ggml_tensor * I = ggml_new_tensor_2d(ctx, GGML_TYPE_I32, 1, n_tokens);
    ggml_tensor * masked = ggml_mul_mat_id(ctx, W3, X, I);                           // [N, 1, n_tokens]
    ggml_tensor * dense = ggml_mul_mat(ctx, ggml_reshape_2d(ctx, W3, K, N),
                                       ggml_reshape_2d(ctx, X, K, n_tokens));        // [N, n_tokens]
    if (!ggml_backend_supports_op(backend, masked) || !ggml_backend_supports_op(backend, dense)) {
        // a layout with a MUL_MAT kernel only (AMX): the runtime keeps such layers dense
        ggml_free(ctx);
        ggml_backend_buffer_free(wbuf);
        ggml_free(wctx);
        return;
    }
    cases++;
    const std::string key = current_variant + " " + buft_name + "/" + ggml_type_name(type);
    cases_of[key]++;
    std::vector<uint8_t> q(ggml_row_size(type, K) * N);
    ggml_quantize_chunk(type, w.data(), q.data(), 0, N, K, nullptr);
    ggml_backend_tensor_set(W3, q.data(), 0, q.size());

    ggml_cgraph * gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, masked);
    ggml_build_forward_expand(gf, dense);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, backend);
    ggml_backend_tensor_set(X, x.data(), 0, x.size() * sizeof(float));
    ggml_backend_tensor_set(I, ids.data(), 0, ids.size() * sizeof(int32_t));
    // poison the output so that rows the kernel forgets to write are caught
    std::vector<float> nan(N * n_tokens, NAN);
    ggml_backend_tensor_set(masked, nan.data(), 0, nan.size() * sizeof(float));
    ggml_backend_graph_compute(backend, gf);

    std::vector<float> m(N * n_tokens), d(N * n_tokens);
    ggml_backend_tensor_get(masked, m.data(), 0, m.size() * sizeof(float));
    ggml_backend_tensor_get(dense, d.data(), 0, d.size() * sizeof(float));
    const std::string name = current_variant + " " + ggml_type_name(type) + " " + buft_name + " skip " + std::to_string(skip_ratio)
                             + " tokens " + std::to_string(n_tokens);
    const std::string dense_key = current_variant + " " + ggml_type_name(type) + " " + std::to_string(n_tokens);
    if (strcmp(buft_name, "CPU") == 0) {
        plain_dense[dense_key] = d;
    } else if (plain_dense.count(dense_key)) {
        const std::vector<float> & p = plain_dense[dense_key];
        for (int t = 0; t < n_tokens; ++t) {
            for (int i = 0; i < N; ++i) {
                double abs_sum = 0.0;
                for (int k = 0; k < K; ++k) {
                    abs_sum += std::fabs((double) w[i * K + k] * x[t * K + k]);
                }
                if (!(std::fabs((double) d[t * N + i] - p[t * N + i]) <= (gpu_tolerance ? 1e-2 : type == GGML_TYPE_F16 && half_precision_f16 ? 2.0 / 1024.0 : 1e-5) * abs_sum)) {
                    check(false, name + ": MUL_MAT differs from the plain buffer's (" + std::to_string(d[t * N + i]) + " vs "
                                 + std::to_string(p[t * N + i]) + ")");
                    goto done;
                }
            }
        }
    }
    for (int t = 0; t < n_tokens; ++t) {
        for (int i = 0; i < N; ++i) {
            const float mv = m[t * N + i], dv = d[t * N + i];
            if (ids[t] < 0) {
                if (mv != 0.0f || std::signbit(mv)) {
                    check(false, name + ": skipped row not exactly zero");
                    goto done;
                }
                continue;
            }
            // Both products round the same terms, summed in other orders: their difference is a few
            // float epsilons of the sum of |w x| (about 160 here; a wrong or missing row is off by
            // tens). The bound is 1e-5 of that sum, except where a CPU accumulates F16 dot products in
            // half precision on one path and in F32 on the other (AVX512-FP16): two half epsilons.
            double abs_sum = 0.0;
            for (int k = 0; k < K; ++k) {
                abs_sum += std::fabs((double) w[i * K + k] * x[t * K + k]);
            }
            const double err = std::fabs((double) mv - dv);
            worst_of[key] = std::max(worst_of[key], err / abs_sum);
            const double tol = (gpu_tolerance ? 1e-2 : type == GGML_TYPE_F16 && half_precision_f16 ? 2.0 / 1024.0 : 1e-5) * abs_sum;
            if (!(err <= tol)) {
                check(false, name + ": kept row differs from dense (" + std::to_string(mv) + " vs " + std::to_string(dv) + ")");
                goto done;
            }
        }
    }
done:
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_buffer_free(wbuf);
    ggml_free(wctx);
}

// The CPU backend libraries beside this program: the variants of a run-time dispatched build
// (libggml-cpu-<variant>.so) or the one library of a -march=native build.
static std::vector<std::string> cpu_libraries(const char * argv0) {
    std::string dir = argv0;
    dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.find_last_of('/'));
    std::vector<std::string> out;
    if (DIR * d = opendir(dir.c_str())) {
        while (dirent * e = readdir(d)) {
            const std::string n = e->d_name;
            if (n.rfind("libggml-cpu", 0) == 0 && n.size() > 3 && n.compare(n.size() - 3, 3, ".so") == 0) {
                out.push_back(dir + "/" + n);
            }
        }
        closedir(d);
    }
    std::sort(out.begin(), out.end());
    return out;
}

static bool has_feature(ggml_backend_reg_t reg, const char * name) {
    auto get = (ggml_backend_get_features_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features");
    for (ggml_backend_feature * f = get ? get(reg) : nullptr; f && f->name; ++f) {
        if (strcmp(f->name, name) == 0) {
            return true;
        }
    }
    return false;
}

static const ggml_type types[] = {GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_K};

// Every case on one CPU backend library, in its plain buffer and its repacked layouts.
static void run_library(ggml_backend_reg_t reg, const std::string & variant) {
    ggml_backend_dev_t dev = ggml_backend_reg_dev_get(reg, 0);
    ggml_backend_t backend = ggml_backend_dev_init(dev, nullptr);
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
    if (set_threads) {
        set_threads(backend, 2);
    }
    // patch 0004 is in every variant: each one says so, and each one runs the cases
    check(has_feature(reg, "MUL_MAT_ID_SKIP"), variant + ": no MUL_MAT_ID_SKIP feature");
    std::vector<std::pair<ggml_backend_buffer_type_t, std::string>> bufts = {{ggml_backend_dev_buffer_type(dev), "CPU"}};
    auto get_extra = (ggml_backend_dev_get_extra_bufts_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_dev_get_extra_bufts");
    if (get_extra) {
        for (ggml_backend_buffer_type_t * b = get_extra(dev); b && *b; ++b) {
            bufts.emplace_back(*b, ggml_backend_buft_name(*b));
        }
    }
    current_variant = variant;
    for (auto & [buft, name] : bufts) {
        for (ggml_type type : types) {
            for (double skip : {0.0, 0.5, 1.0}) {
                // 2, 3, 6 and 7 end in a padded group of 2 or 3 rows (patch 0012), in MUL_MAT_ID and MUL_MAT
                for (int n_tokens : {1, 2, 3, 6, 7, 32}) {
                    run_case(backend, buft, name.c_str(), type, skip, n_tokens);
                }
            }
        }
    }
    ggml_backend_free(backend);
    // the plain CPU buffer runs every case of every type: 3 skip ratios x 6 batch sizes
    for (ggml_type type : types) {
        const std::string key = variant + " CPU/" + ggml_type_name(type);
        check(cases_of[key] == 18, key + ": " + std::to_string(cases_of[key]) + " cases ran, expected 18");
    }
    printf("%s: buffer types", variant.c_str());
    for (auto & b : bufts) printf(" %s", b.second.c_str());
    printf("\n");
}

// Every case on each GPU device of the build, in its own buffer type.
static void run_gpus() {
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
        ggml_backend_dev_t dev = ggml_backend_dev_get(i);
        if (ggml_backend_dev_type(dev) != GGML_BACKEND_DEVICE_TYPE_GPU) {
            continue;
        }
        ggml_backend_t backend = ggml_backend_dev_init(dev, nullptr);
        current_variant = ggml_backend_dev_name(dev);
        gpu_tolerance = true;
        const std::string name = ggml_backend_buft_name(ggml_backend_dev_buffer_type(dev));
        for (ggml_type type : types) {
            for (double skip : {0.0, 0.5, 1.0}) {
                for (int n_tokens : {1, 6, 7, 32, 512}) {
                    run_case(backend, ggml_backend_dev_buffer_type(dev), name.c_str(), type, skip, n_tokens);
                }
            }
        }
        gpu_tolerance = false;
        ggml_backend_free(backend);
        for (ggml_type type : types) {
            const std::string key = current_variant + " " + name + "/" + ggml_type_name(type);
            check(cases_of[key] == 15, key + ": " + std::to_string(cases_of[key]) + " cases ran, expected 15");
        }
    }
}

static void print_summary() {
    for (auto & [key, n] : cases_of) {
        printf("%-44s %d cases, worst |masked - dense| / sum|w x| %.2e\n", key.c_str(), n, worst_of[key]);
    }
}

int main(int, char ** argv) {
    if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
        // a -DFLEXI_NATIVE_CPU build: the one CPU backend is linked in, and any GPU backend too
        half_precision_f16 = f16_in_half_precision(true);
        run_library(ggml_backend_dev_backend_reg(cpu), "libggml-cpu.so (linked in)");
        run_gpus();
        print_summary();
        printf("%d cases, %d failures\n", cases, failures);
        return failures == 0 ? 0 : 1;
    }
    const std::vector<std::string> libraries = cpu_libraries(argv[0]);
    int ran = 0;
    for (const std::string & path : libraries) {
        const std::string file = path.substr(path.find_last_of('/') + 1);
        half_precision_f16 = f16_in_half_precision(file == "libggml-cpu.so");
        ggml_backend_reg_t reg = ggml_backend_load(path.c_str());
        if (!reg) {
            printf("%s: this CPU cannot run it, left out\n", file.c_str());
            continue;
        }
        run_library(reg, file);
        ggml_backend_unload(reg);
        ran++;
    }
    check(ran > 0, "no CPU backend library beside the program runs on this CPU");
    run_gpus();
    print_summary();
    printf("%d CPU libraries of %zu ran, %d cases, %d failures\n", ran, libraries.size(), cases, failures);
    return failures == 0 ? 0 : 1;
}

// The CPU backend for tests, through ggml's registry: the fork builds it as variants loaded at run
// time (one per instruction-set level), so tests cannot link it; they load the best one from their
// own directory, as the library does from the jar's.
#pragma once

#include "ggml-backend.h"

#include <cstdio>
#include <cstdlib>

static ggml_backend_t test_cpu_backend(int n_threads) {
    static bool loaded = false;
    if (!loaded && !ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
        ggml_backend_load_all();
    }
    loaded = true;
    ggml_backend_t backend = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    if (!backend) {
        fprintf(stderr, "no CPU backend: no libggml-cpu*.so beside this program runs on this CPU\n");
        exit(1);
    }
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(
        ggml_backend_dev_backend_reg(ggml_backend_get_device(backend)), "ggml_backend_set_n_threads");
    if (set_threads) {
        set_threads(backend, n_threads);
    }
    return backend;
}

// libFuzzer harnesses for the two native readers of untrusted files that a session meets:
//   plugin  bytes -> a FlexiDepth plug-in file -> llama_adapter_flexidepth_init on a fixed base model,
//           attach and one decode when it loads
//   state   bytes -> llama_state_set_data on a context of that model, then one decode
// A clean error is fine; a crash, an abort or an AddressSanitizer report is a bug.
// Environment: FLEXI_FUZZ_TARGET (plugin|state), FLEXI_FUZZ_MODEL (the base GGUF).
// `--write-seeds DIR` writes a valid plug-in and a valid state for the model into DIR.
#include "llama.h"
#include "llama-flexidepth.h"
#include "gguf.h"
#include "ggml.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

static llama_model * model = nullptr;
static llama_context * ctx = nullptr;
static bool state_target = false;
static int memfd = -1;

static void quiet(enum ggml_log_level, const char *, void *) {}

static llama_context * new_context() {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 64;
    cp.n_ubatch = 64;
    cp.n_threads = 1;
    cp.n_threads_batch = 1;
    return llama_init_from_model(model, cp);
}

static void decode_a_few(llama_context * c) {
    llama_token t[3] = {1, 20, 21};
    llama_decode(c, llama_batch_get_one(t, 3));
}

// A random plug-in routing the last layer, in the format native/README.md describes.
static void write_plugin(const char * path) {
    const int64_t d = llama_model_n_embd(model), n_layer = llama_model_n_layer(model), dr = 8, da = 16;
    gguf_context * g = gguf_init_empty();
    gguf_set_val_str(g, "general.type", "adapter");
    gguf_set_val_str(g, "adapter.type", "flexidepth");
    gguf_set_val_str(g, "general.architecture", "llama");
    gguf_set_val_u32(g, "flexidepth.block_count", (uint32_t) n_layer);
    gguf_set_val_u32(g, "flexidepth.embedding_length", (uint32_t) d);
    gguf_set_val_u32(g, "flexidepth.router_size", (uint32_t) dr);
    gguf_set_val_u32(g, "flexidepth.adapter_size", (uint32_t) da);
    gguf_set_val_f32(g, "flexidepth.threshold", 0.5f);
    const int32_t routed[1] = {(int32_t) n_layer - 1};
    gguf_set_arr_data(g, "flexidepth.routed_layers", GGUF_TYPE_INT32, routed, 1);
    ggml_init_params ip = {16 * ggml_tensor_overhead(), nullptr, true};
    ggml_context * meta = ggml_init(ip);
    struct shape { const char * name; int64_t ne0, ne1; };
    const shape shapes[] = {{"fd_router_down", d, dr}, {"fd_router_norm", dr, 1}, {"fd_router_up", dr, d},
                            {"fd_router_head", d, 1}, {"fd_adapter_gate", d, da}, {"fd_adapter_up", d, da},
                            {"fd_adapter_down", da, d}};
    std::vector<std::vector<float>> data;
    std::mt19937 rng(1);
    std::normal_distribution<float> normal(0.0f, 0.2f);
    for (const shape & s : shapes) {
        ggml_tensor * t = s.ne1 == 1 ? ggml_new_tensor_1d(meta, GGML_TYPE_F32, s.ne0) : ggml_new_tensor_2d(meta, GGML_TYPE_F32, s.ne0, s.ne1);
        ggml_format_name(t, "blk.%d.%s.weight", routed[0], s.name);
        data.emplace_back(s.ne0 * s.ne1);
        for (float & v : data.back()) {
            v = strcmp(s.name, "fd_router_norm") == 0 ? 1.0f : normal(rng);
        }
        t->data = data.back().data();
        gguf_add_tensor(g, t);
    }
    gguf_write_to_file(g, path, false);
    gguf_free(g);
    ggml_free(meta);
}

static int write_seeds(const char * dir) {
    const std::string plugin = std::string(dir) + "/plugin.gguf", state = std::string(dir) + "/state.bin";
    write_plugin(plugin.c_str());
    llama_adapter_flexidepth * fd = llama_adapter_flexidepth_init(model, plugin.c_str(), nullptr);
    if (fd == nullptr) {
        fprintf(stderr, "the seed plug-in does not load: %s\n", llama_flexidepth_last_error());
        return 1;
    }
    llama_adapter_flexidepth_free(fd);
    llama_context * c = new_context();
    decode_a_few(c);
    std::vector<uint8_t> buf(llama_state_get_size(c));
    buf.resize(llama_state_get_data(c, buf.data(), buf.size()));
    FILE * f = fopen(state.c_str(), "wb");
    fwrite(buf.data(), 1, buf.size(), f);
    fclose(f);
    llama_free(c);
    return 0;
}

extern "C" int LLVMFuzzerInitialize(int * argc, char *** argv) {
    llama_log_set(quiet, nullptr);
    const char * path = getenv("FLEXI_FUZZ_MODEL");
    const char * target = getenv("FLEXI_FUZZ_TARGET");
    if (path == nullptr) {
        fprintf(stderr, "set FLEXI_FUZZ_MODEL to a base model\n");
        exit(2);
    }
    state_target = target != nullptr && strcmp(target, "state") == 0;
    llama_backend_init();
    // the CPU backend is a variant loaded at run time from the build's bin/ (run-fuzzer.sh)
    ggml_backend_load_all_from_path(getenv("FLEXI_BACKEND_DIR"));
    model = llama_model_load_from_file(path, llama_model_default_params());
    if (model == nullptr) {
        fprintf(stderr, "cannot load %s\n", path);
        exit(2);
    }
    for (int i = 1; i + 1 < *argc; ++i) {
        if (strcmp((*argv)[i], "--write-seeds") == 0) {
            exit(write_seeds((*argv)[i + 1]));
        }
    }
    ctx = new_context();
    memfd = memfd_create("fuzz-plugin", 0); // the loader reads a path: a file in memory, no disk writes
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    if (state_target) {
        llama_memory_clear(llama_get_memory(ctx), true);
        if (llama_state_set_data(ctx, data, size) != 0) {
            decode_a_few(ctx);
        }
        return 0;
    }
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t) size) {
        return 0;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
    llama_adapter_flexidepth * fd = llama_adapter_flexidepth_init(model, path, nullptr);
    if (fd != nullptr) {
        if (llama_set_adapter_flexidepth(ctx, fd, nullptr) == 0) {
            llama_memory_clear(llama_get_memory(ctx), true);
            decode_a_few(ctx);
        }
        llama_adapter_flexidepth_free(fd);
    }
    return 0;
}

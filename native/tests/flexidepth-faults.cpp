// Provokes a compute-buffer reservation failure in every FlexiDepth call that re-reserves
// (attach, set_mode, detach, free) and checks that the call returns an error and the context keeps
// computing exactly what it computed before; driven by the Java tests, which write the fixtures.
//
// usage: flexidepth-faults MODEL.gguf PLUGIN.gguf     exit 0 when every check holds
#include "llama.h"
#include "llama-flexidepth.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

// test hook in native/src/flexidepth-context.cpp: the next reservation throws as on allocation failure
extern "C" void llama_flexidepth_test_fail_next_reserve(void);

static int failures = 0;

#define CHECK(cond, what) do { if (!(cond)) { fprintf(stderr, "FAIL: %s\n", what); failures++; } \
                               else { fprintf(stderr, "ok: %s\n", what); } } while (0)

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

// Logits of the last token of a fixed prompt, from an emptied cache.
static std::vector<float> logits_of(llama_context * ctx, int n_vocab) {
    llama_memory_clear(llama_get_memory(ctx), true);
    std::vector<llama_token> prompt = {1, 300, 301, 302, 303, 304, 305};
    llama_batch batch = llama_batch_get_one(prompt.data(), (int32_t) prompt.size());
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "FAIL: decode\n");
        exit(1);
    }
    const float * l = llama_get_logits_ith(ctx, -1);
    return std::vector<float>(l, l + n_vocab);
}

int main(int argc, char ** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PLUGIN.gguf\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    ggml_backend_load_all(); // the CPU backend is a variant loaded at run time
    llama_model_params mp = llama_model_default_params();
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 64;
    cp.n_ubatch = 64;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    llama_context * ctx = llama_init_from_model(model, cp);
    int32_t status = 0;
    llama_adapter_flexidepth * fd = llama_adapter_flexidepth_init(model, argv[2], &status);
    llama_adapter_flexidepth * fd2 = llama_adapter_flexidepth_init(model, argv[2], &status);
    if (!ctx || !fd || !fd2) {
        fprintf(stderr, "setup failed: %s\n", llama_flexidepth_last_error());
        return 1;
    }
    auto set = [&](llama_adapter_flexidepth * a, llama_flexidepth_mode mode) {
        llama_flexidepth_params p = llama_flexidepth_default_params();
        p.mode = mode;
        return llama_set_adapter_flexidepth(ctx, a, &p);
    };
    // tokens whose routing the last decode recorded: 0 when no plug-in is set
    auto routed_tokens = [&]() { return llama_get_flexidepth_routing(ctx, nullptr, nullptr, nullptr, nullptr, 0); };

    const std::vector<float> base = logits_of(ctx, n_vocab);

    llama_flexidepth_test_fail_next_reserve();
    CHECK(set(fd, LLAMA_FLEXIDEPTH_MODE_AUTO) == LLAMA_FLEXIDEPTH_ERR_ALLOC, "a failed set returns ERR_ALLOC");
    CHECK(strstr(llama_flexidepth_last_error(), "reserve") != nullptr, "and says why");
    CHECK(logits_of(ctx, n_vocab) == base, "the context still computes the base model, bit for bit");
    CHECK(routed_tokens() == 0, "nothing is set after it");

    CHECK(set(fd, LLAMA_FLEXIDEPTH_MODE_AUTO) == LLAMA_FLEXIDEPTH_OK, "set");
    const std::vector<float> routed = logits_of(ctx, n_vocab);
    CHECK(routed != base, "the plug-in changes the logits");
    CHECK(routed_tokens() > 0, "and records its routing");

    llama_flexidepth_test_fail_next_reserve();
    CHECK(set(fd, LLAMA_FLEXIDEPTH_MODE_DENSE) == LLAMA_FLEXIDEPTH_ERR_ALLOC, "a failed change of mode returns ERR_ALLOC");
    CHECK(logits_of(ctx, n_vocab) == routed, "the mode is unchanged");

    llama_flexidepth_test_fail_next_reserve();
    CHECK(set(fd2, LLAMA_FLEXIDEPTH_MODE_AUTO) == LLAMA_FLEXIDEPTH_ERR_ALLOC, "a failed replacing set returns ERR_ALLOC");
    CHECK(logits_of(ctx, n_vocab) == routed && routed_tokens() > 0, "the first plug-in is still set and computes as before");

    llama_flexidepth_test_fail_next_reserve();
    CHECK(set(nullptr, LLAMA_FLEXIDEPTH_MODE_AUTO) == LLAMA_FLEXIDEPTH_ERR_ALLOC, "a failed unset returns ERR_ALLOC");
    CHECK(logits_of(ctx, n_vocab) == routed, "the plug-in stays set");

    // freeing cannot refuse: the context goes back to the base model by force and reserves at its next decode
    llama_flexidepth_test_fail_next_reserve();
    llama_adapter_flexidepth_free(fd);
    CHECK(logits_of(ctx, n_vocab) == base, "a freed plug-in is unset: the context computes the base model again");
    CHECK(routed_tokens() == 0, "and records no routing");

    CHECK(set(fd2, LLAMA_FLEXIDEPTH_MODE_AUTO) == LLAMA_FLEXIDEPTH_OK, "a plug-in is set after all these failures");
    CHECK(logits_of(ctx, n_vocab) == routed, "and computes what the first one did");
    CHECK(set(nullptr, LLAMA_FLEXIDEPTH_MODE_AUTO) == LLAMA_FLEXIDEPTH_OK, "unset");
    CHECK(logits_of(ctx, n_vocab) == base, "base again");

    llama_adapter_flexidepth_free(fd2);
    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    fprintf(stderr, "%d failures\n", failures);
    return failures == 0 ? 0 : 1;
}

// llama-flexidepth-ab: the base model against the same model with a FlexiDepth plug-in, every
// routed layer running (or the routers deciding, --routers), in two contexts that take turns token
// by token, so that both see the same moments of a noisy machine. llama-flexidepth-bench switches
// one context between configurations once per repetition, which leaves a few percent of drift
// between them; this tool measures ratios near 1 (what routing and mixing cost where nothing is
// skipped). For each repetition: a prefill of -p tokens in each context, then -n decode steps
// alternating between them (the first context alternating too); it prints the medians and ranges
// of the per-repetition speed ratios, plug-in over base.
//
// usage: llama-flexidepth-ab -m MODEL --flexidepth PLUGIN [--routers] [-p 64] [-n 128] [-r 20] [-t THREADS]
#include "llama.h"
#include "llama-flexidepth.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

double ms_since(steady::time_point t0) {
    return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

// milliseconds for one decode of the batch
double timed_decode(llama_context * ctx, llama_batch batch) {
    const auto t0 = steady::now();
    if (llama_decode(ctx, batch) != 0) {
        fprintf(stderr, "decode failed\n");
        exit(1);
    }
    llama_synchronize(ctx);
    return ms_since(t0);
}

void print_ratios(const char * what, std::vector<double> r) {
    std::sort(r.begin(), r.end());
    printf("%-8s plug-in / base speed: median %.3fx (range %.3f-%.3f, %zu reps)\n", what, r[r.size() / 2], r.front(), r.back(), r.size());
}

} // namespace

int main(int argc, char ** argv) {
    std::string model_path, plugin_path;
    bool routers = false;
    int n_prompt = 64, n_gen = 128, reps = 20, threads = (int) std::max(1u, std::thread::hardware_concurrency());
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s needs a value\n", a.c_str());
                exit(2);
            }
            return argv[++i];
        };
        if (a == "-m") model_path = next();
        else if (a == "--flexidepth") plugin_path = next();
        else if (a == "--routers") routers = true;
        else if (a == "-p") n_prompt = atoi(next().c_str());
        else if (a == "-n") n_gen = atoi(next().c_str());
        else if (a == "-r") reps = atoi(next().c_str());
        else if (a == "-t") threads = atoi(next().c_str());
        else {
            fprintf(stderr, "usage: %s -m MODEL --flexidepth PLUGIN [--routers] [-p 64] [-n 128] [-r 20] [-t THREADS]\n", argv[0]);
            return 2;
        }
    }
    if (model_path.empty() || plugin_path.empty() || n_prompt < 1 || n_gen < 1 || reps < 1 || threads < 1) {
        fprintf(stderr, "-m and --flexidepth are required; -p, -n, -r and -t must be positive\n");
        return 2;
    }
    llama_log_set([](ggml_log_level level, const char * text, void *) {
        if (level >= GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
    }, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.progress_callback = [](float, void *) { return true; }; // no progress dots
    llama_model * model = llama_model_load_from_file(model_path.c_str(), mp);
    if (model == nullptr) {
        fprintf(stderr, "cannot load %s\n", model_path.c_str());
        return 1;
    }
    int32_t status = 0;
    llama_adapter_flexidepth * fd = llama_adapter_flexidepth_load(model, plugin_path.c_str(), nullptr, &status);
    if (fd == nullptr) {
        fprintf(stderr, "cannot load %s: %s\n", plugin_path.c_str(), llama_flexidepth_last_error());
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) (n_prompt + n_gen);
    cp.n_batch = cp.n_ubatch = (uint32_t) n_prompt;
    cp.n_threads = cp.n_threads_batch = threads;
    llama_context * base = llama_init_from_model(model, cp);
    llama_context * plug = llama_init_from_model(model, cp);
    if (base == nullptr || plug == nullptr) {
        fprintf(stderr, "cannot create the contexts\n");
        return 1;
    }
    std::vector<int8_t> every_layer_runs(llama_adapter_flexidepth_n_routed(fd), 1);
    llama_flexidepth_params fp = llama_flexidepth_default_params();
    if (!routers) {
        fp.forced = every_layer_runs.data();
        fp.n_forced = (int32_t) every_layer_runs.size();
    }
    if (llama_set_adapter_flexidepth(plug, fd, &fp) != 0) {
        fprintf(stderr, "cannot set the plug-in: %s\n", llama_flexidepth_last_error());
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::vector<llama_token> prompt(n_prompt);
    for (int i = 0; i < n_prompt; ++i) {
        prompt[i] = 3 + (i * 7919 + 5) % (n_vocab - 3);
    }
    std::vector<double> prefill, decode;
    double base_decode_ms = 0;
    for (int rep = -1; rep < reps; ++rep) { // rep -1 warms both up
        double pp[2] = {0, 0}, tg[2] = {0, 0};
        llama_context * ctx[2] = {base, plug};
        for (int k = 0; k < 2; ++k) {
            const int side = k ^ (rep & 1);
            llama_memory_clear(llama_get_memory(ctx[side]), true);
            pp[side] = timed_decode(ctx[side], llama_batch_get_one(prompt.data(), n_prompt));
        }
        llama_token tok = prompt.back();
        for (int i = 0; i < n_gen; ++i) {
            tok = 3 + (tok * 7919 + 13) % (n_vocab - 3);
            for (int k = 0; k < 2; ++k) {
                const int side = k ^ (i & 1);
                tg[side] += timed_decode(ctx[side], llama_batch_get_one(&tok, 1));
            }
        }
        if (rep >= 0) {
            prefill.push_back(pp[0] / pp[1]);
            decode.push_back(tg[0] / tg[1]);
            base_decode_ms += tg[0] / n_gen / reps;
        }
    }
    printf("model %s, plug-in %s (%s), %d threads, prefill %d, decode %d, base decode %.3f ms a token\n", model_path.c_str(),
           plugin_path.c_str(), routers ? "routers deciding" : "every routed layer running", threads, n_prompt, n_gen, base_decode_ms);
    print_ratios("prefill", prefill);
    print_ratios("decode", decode);
    llama_free(plug);
    llama_free(base);
    llama_adapter_flexidepth_free(fd);
    llama_model_free(model);
    return 0;
}

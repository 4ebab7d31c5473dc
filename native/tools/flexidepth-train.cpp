// llama-flexidepth-train: trains a FlexiDepth plug-in for a GGUF base model on the CPU (or any
// ggml backend), with the base frozen; or, with --dmtd T CYCLE, fine-tunes an F32 base model for
// direct multi-token decoding (T thinking layers; llama-dmtd-train.h) and writes the whole model.
// Ctrl-C writes a checkpoint; --resume continues from it.
//
// usage: llama-flexidepth-train -m BASE.gguf -o PLUGIN.gguf (--text FILE... | --chat FILE.jsonl...)
//          [--chat-template NAME] [--layers 6-11|6,7,...] [--router-size N] [--adapter-size N] [--skip FAMILY]
//          [--alpha 0.003] [--lr 1e-4] [--min-lr-ratio 0.1] [--weight-decay 0] [--warmup 10]
//          [--epochs 1 | --tokens N] [--ctx 256] [--seed 42] [--tau 0.5] [--init-bias 3]
//          [--threads N] [--checkpoint PATH] [--checkpoint-every 50] [--resume] [--quiet]
#include "llama.h"
#include "llama-flexidepth-train.h"
#include "llama-dmtd-train.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

static std::atomic<bool> interrupted{false};

static void usage(const char * argv0) {
    fprintf(stderr,
        "usage: %s -m BASE.gguf -o PLUGIN.gguf (--text FILE ... | --chat FILE.jsonl ...) [options]\n"
        "  --chat-template NAME   template for --chat (default: the model's)\n"
        "  --layers SPEC          routed layers, e.g. 6-11 or 6,8,10 (default: the latter half)\n"
        "  --router-size N        router width (default n_embd/16)\n"
        "  --adapter-size N       adapter width (default n_ff/16)\n"
        "  --skip FAMILY          what a skipped token leaves out: layer (FlexiDepth, default), layer_no_kv,\n"
        "                         attention (the FFN always runs, no adapter) or ffn\n"
        "  --alpha X              weight of the skip loss (default 0.003)\n"
        "  --lr X                 peak learning rate (default 1e-4), --min-lr-ratio X (0.1)\n"
        "  --weight-decay X       AdamW weight decay (default 0)\n"
        "  --warmup N             warm-up steps (default 10)\n"
        "  --epochs N | --tokens N  passes over the data (default 1) or a token budget\n"
        "  --ctx N                tokens per training sequence and step (default 256)\n"
        "  --seed N, --tau X, --init-bias X, --threads N\n"
        "  --checkpoint PATH      (default PLUGIN.gguf.checkpoint), --checkpoint-every N (50), --resume\n"
        "  --dmtd T CYCLE         fine-tune the model for DMTD instead (T thinking layers, trained at CYCLE;\n"
        "                         -o names the output model; the routing options do not apply)\n"
        "  --quiet                no per-step progress\n", argv0);
}

static bool parse_layers(const std::string & spec, std::vector<int32_t> & out) {
    std::stringstream ss(spec);
    std::string item;
    while (std::getline(ss, item, ',')) {
        const size_t dash = item.find('-');
        char * end = nullptr;
        if (dash == std::string::npos) {
            out.push_back((int32_t) strtol(item.c_str(), &end, 10));
            if (*end) return false;
        } else {
            const long a = strtol(item.substr(0, dash).c_str(), &end, 10);
            if (*end) return false;
            const long b = strtol(item.substr(dash + 1).c_str(), &end, 10);
            if (*end || b < a) return false;
            for (long i = a; i <= b; ++i) out.push_back((int32_t) i);
        }
    }
    return !out.empty();
}

struct progress_state {
    bool quiet = false;
};

static bool on_progress(const llama_flexidepth_train_progress * p, void * ud) {
    const auto * st = (const progress_state *) ud;
    if (!st->quiet) {
        fprintf(stderr, "step %lld/%lld  tokens %lld  L_lm %.4f  L_skip %.3f  layers %.2f  lr %.2e  %.0f tok/s  ETA %.0f s\n",
                (long long) p->step, (long long) p->n_steps, (long long) p->n_tokens_done, p->loss_lm, p->loss_skip,
                p->mean_layers, p->learning_rate, p->tokens_per_second, p->eta_seconds);
    }
    return !interrupted.load();
}

int main(int argc, char ** argv) {
    int32_t dmtd_thinking = 0, dmtd_cycle = 0;
    std::string model_path, output;
    std::vector<std::string> text_files, chat_files;
    std::string chat_template;
    std::vector<int32_t> layers;
    llama_flexidepth_train_params p = llama_flexidepth_train_default_params();
    std::string checkpoint;
    progress_state st;

    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> const char * {
            if (i + 1 >= argc) {
                fprintf(stderr, "error: %s needs a value\n", a.c_str());
                exit(2);
            }
            return argv[++i];
        };
        auto number = [&](const char * s) {
            char * end = nullptr;
            const double v = strtod(s, &end);
            if (end == s || *end) {
                fprintf(stderr, "error: %s expects a number, got '%s'\n", a.c_str(), s);
                exit(2);
            }
            return v;
        };
        if (a == "-m" || a == "--model") model_path = next();
        else if (a == "-o" || a == "--output") output = next();
        else if (a == "--text") text_files.push_back(next());
        else if (a == "--chat") chat_files.push_back(next());
        else if (a == "--chat-template") chat_template = next();
        else if (a == "--layers") {
            if (!parse_layers(next(), layers)) { fprintf(stderr, "error: bad --layers '%s'\n", argv[i]); return 2; }
        }
        else if (a == "--router-size") p.router_size = (int32_t) number(next());
        else if (a == "--adapter-size") p.adapter_size = (int32_t) number(next());
        else if (a == "--skip") {
            const std::string f = next();
            const int32_t k = llama_flexidepth_skip_from_name(f.c_str());
            if (k < 0) { fprintf(stderr, "error: --skip is layer, layer_no_kv, attention or ffn, got '%s'\n", f.c_str()); return 2; }
            p.skip = (llama_flexidepth_skip) k;
        }
        else if (a == "--alpha") p.alpha = (float) number(next());
        else if (a == "--lr") p.learning_rate = (float) number(next());
        else if (a == "--min-lr-ratio") p.min_lr_ratio = (float) number(next());
        else if (a == "--weight-decay") p.weight_decay = (float) number(next());
        else if (a == "--warmup") p.warmup_steps = (int32_t) number(next());
        else if (a == "--epochs") p.n_epochs = (int32_t) number(next());
        else if (a == "--tokens") p.token_budget = (int64_t) number(next());
        else if (a == "--ctx") p.n_ctx = (int32_t) number(next());
        else if (a == "--seed") p.seed = (uint32_t) number(next());
        else if (a == "--tau") p.threshold = (float) number(next());
        else if (a == "--init-bias") p.init_router_bias = (float) number(next());
        else if (a == "--threads" || a == "-t") p.n_threads = (int32_t) number(next());
        else if (a == "--checkpoint") checkpoint = next();
        else if (a == "--checkpoint-every") p.checkpoint_every = (int32_t) number(next());
        else if (a == "--resume") p.resume = true;
        else if (a == "--dmtd") { dmtd_thinking = (int32_t) number(next()); dmtd_cycle = (int32_t) number(next()); }
        else if (a == "--quiet") st.quiet = true;
        else if (a == "-h" || a == "--help") { usage(argv[0]); return 0; }
        else { fprintf(stderr, "error: unknown argument %s\n", a.c_str()); usage(argv[0]); return 2; }
    }
    if (model_path.empty() || output.empty() || (text_files.empty() == chat_files.empty())) {
        fprintf(stderr, "error: give -m, -o and either --text or --chat files (not both)\n");
        usage(argv[0]);
        return 2;
    }
    if (!layers.empty()) {
        p.routed_layers = layers.data();
        p.n_routed_layers = (int32_t) layers.size();
    }
    if (!checkpoint.empty()) {
        p.checkpoint_path = checkpoint.c_str();
    }
    p.callback = on_progress;
    p.callback_user_data = &st;
    signal(SIGINT, [](int) { interrupted = true; });

    llama_backend_init();
    ggml_backend_load_all(); // the CPU backend is a variant loaded at run time
    llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = false; // the CPU's repacked weight layouts have no backward pass
    if (dmtd_thinking > 0) {
        mp.load_mode = LLAMA_LOAD_MODE_NONE; // DMTD training writes the weights, which a mapping holds read-only
    }
    llama_model * model = llama_model_load_from_file(model_path.c_str(), mp);
    if (model == nullptr) {
        fprintf(stderr, "error: cannot load model %s\n", model_path.c_str());
        return 1;
    }
    const auto & files = text_files.empty() ? chat_files : text_files;
    std::vector<const char *> paths;
    for (const auto & f : files) paths.push_back(f.c_str());
    int32_t status = 0;
    llama_flexidepth_train_data * data = llama_flexidepth_train_data_load(model, paths.data(), (int32_t) paths.size(),
        text_files.empty() ? LLAMA_FLEXIDEPTH_DATA_CHAT_JSONL : LLAMA_FLEXIDEPTH_DATA_TEXT,
        chat_template.empty() ? nullptr : chat_template.c_str(), &status);
    if (data == nullptr) {
        fprintf(stderr, "error: %s\n", llama_flexidepth_last_error());
        llama_model_free(model);
        return 1;
    }
    fprintf(stderr, "training data: %lld tokens\n", (long long) llama_flexidepth_train_data_n_tokens(data));
    const int32_t rc = dmtd_thinking > 0 ? llama_dmtd_train(model, model_path.c_str(), data, output.c_str(), dmtd_thinking, dmtd_cycle, &p)
                                         : llama_flexidepth_train(model, data, output.c_str(), &p);
    llama_flexidepth_train_data_free(data);
    llama_model_free(model);
    if (rc == LLAMA_FLEXIDEPTH_ERR_CANCELLED) {
        fprintf(stderr, "%s\n", llama_flexidepth_last_error());
        return 130;
    }
    if (rc != LLAMA_FLEXIDEPTH_OK) {
        fprintf(stderr, "error: %s\n", llama_flexidepth_last_error());
        return 1;
    }
    fprintf(stderr, "wrote %s\n", output.c_str());
    return 0;
}

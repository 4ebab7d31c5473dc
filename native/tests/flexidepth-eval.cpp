// Runs the fork on a scripted sequence of batches and dumps logits and routing, for the Java
// tests that compare the fork with an independent reference forward pass.
//
// usage: flexidepth-eval MODEL.gguf PLUGIN.gguf|- TAU SCRIPT OUT.bin [dense|masked|masked-fa|auto]
//                       [--lora LORA.gguf SCALE]   a LoRA adapter applied with the plug-in
//                       [--ubatch N]               n_ubatch (default 512)
//                       [--non-unified]            one KV stream per sequence (ubatches split_equal)
//                       [--kv q8_0]                Q8_0 K/V cache (with masked-fa)
//                       [--cpu]                    no layer offloaded to a GPU (the default offloads all)
//                       [--adapters-as-stored]     the plug-in's adapters in the file's types (default:
//                                                  the base model's, llama_flexidepth_load_params)
//                       [--dmtd T CYCLE [absolute] [norefill]] batches decoded with llama_dmtd_decode: T
//                                                  thinking layers, cycle tau, phase prompt_end (or
//                                                  absolute), heads refilling (or not)
//                       [--flash-attn]             flash attention on the F32 cache ("masked-fa": F16)
// Prints "mul_mat_id nodes: N" at the end: the token-skipping products in the graphs it ran, so that
// tests see that MASKED mode really masks (DENSE computes the same values without them); and
// "mul_mat nodes: N", and with --dmtd "dmtd full: F,F,..." (1 where a token was decoded at full
// depth, 0 by the decoding layers only, in output order) and "dmtd refill copies: N" (the gathers of
// refill rows' K/V from their old cells in head steps' decoding layers).
// SCRIPT lines:
//   batch S:T,T,T [S:T,...]   one llama_decode; tokens of sequence S continue that sequence;
//                             every token outputs logits
//   save                      keep the context state in memory (with DMTD, each sequence's pending tokens
//                             and, without refill, its hidden positions)
//   restore                   restore it into a brand-new context (plug-in attached again)
//   rm S P0 P1                llama_memory_seq_rm of positions [P0, P1) of sequence S (P1 -1: to the end)
//   shift S P0 D              llama_memory_seq_add: positions >= P0 of sequence S move by D
//   force D,D,...|-           llama_flexidepth_params.forced: per routed layer 1 run, 0 skip, -1 router
//                             ("-": the routers decide again); kept across restore
// OUT.bin, little-endian, per token of every batch:
//   int32 seq, int32 pos, float logits[n_vocab], float gates[n_routed], uint8 run[n_routed]
// preceded per batch by int32 n_tokens, and at the start by int32 n_vocab, int32 n_routed.
#include "llama.h"
#include "llama-flexidepth.h"
#include "llama-dmtd.h"
#include "llama-fork.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static llama_flexidepth_mode mode = LLAMA_FLEXIDEPTH_MODE_MASKED;
static bool flash_attn = false;
static bool kv_f32 = true; // "masked-fa": llama.cpp's defaults (flash attention, F16 cache)

static int n_ubatch = 512;
static bool kv_unified = true;
static bool kv_q8 = false;
static llama_adapter_lora * lora = nullptr;
static long mul_mat_id_nodes = 0;
static long mul_mat_nodes = 0;
static long dmtd_copies = 0;
static bool dmtd = false;
static llama_dmtd_params dmtd_params;

static bool count_nodes(struct ggml_tensor * t, bool ask, void *) {
    if (ask && t->op == GGML_OP_MUL_MAT_ID) {
        mul_mat_id_nodes++;
    }
    if (ask && t->op == GGML_OP_MUL_MAT) {
        mul_mat_nodes++;
    }
    // dmtd-graph.cpp's gathers from the old cells (K, and V where stored by rows), per decoding layer
    if (ask && t->op == GGML_OP_GET_ROWS && t->src[1] != nullptr && strcmp(t->src[1]->name, "dmtd_old_cells") == 0) {
        dmtd_copies++;
    }
    return false; // observe nothing: the graph is computed as without the callback
}
static float lora_scale = 1.0f;
static std::vector<int8_t> forced; // empty: the routers decide

// The plug-in on ctx with tau, the mode and the forced decisions of the script so far.
static int32_t set_plugin(llama_context * ctx, llama_adapter_flexidepth * fd, float tau) {
    llama_flexidepth_params p = llama_flexidepth_default_params();
    p.threshold = tau;
    p.mode = mode;
    p.forced = forced.empty() ? nullptr : forced.data();
    p.n_forced = (int32_t) forced.size();
    return llama_set_adapter_flexidepth(ctx, fd, &p);
}

static llama_context * new_context(llama_model * model, llama_adapter_flexidepth * fd, float tau) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 512;
    cp.n_batch = 512;
    cp.n_ubatch = n_ubatch;
    cp.n_seq_max = 4;
    cp.kv_unified = kv_unified;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    // an F32 cache (on which the CPU's flash attention keeps Q in F32 too), so that the comparison
    // with the f64 reference is limited by f32 arithmetic only; "masked-fa" keeps the F16 default
    if (kv_f32) {
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
    }
    cp.flash_attn_type = flash_attn ? LLAMA_FLASH_ATTN_TYPE_ENABLED : LLAMA_FLASH_ATTN_TYPE_DISABLED;
    if (kv_q8) {
        cp.type_k = GGML_TYPE_Q8_0;
        cp.type_v = GGML_TYPE_Q8_0;
    }
    cp.cb_eval = count_nodes;
    cp.cb_eval_user_data = nullptr;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "cannot create context\n");
        exit(1);
    }
    if (lora && llama_set_adapters_lora(ctx, &lora, 1, &lora_scale) != 0) {
        fprintf(stderr, "cannot apply the LoRA adapter\n");
        exit(1);
    }
    if (fd && set_plugin(ctx, fd, tau) != 0) {
        fprintf(stderr, "setting the plug-in failed: %s\n", llama_flexidepth_last_error());
        exit(1);
    }
    if (dmtd && llama_set_dmtd(ctx, &dmtd_params) != 0) {
        fprintf(stderr, "setting DMTD failed: %s\n", llama_dmtd_last_error());
        exit(1);
    }
    return ctx;
}

int main(int argc, char ** argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL PLUGIN|- TAU SCRIPT OUT [dense|masked|masked-fa|auto] [--lora FILE SCALE]\n", argv[0]);
        return 2;
    }
    const char * lora_path = nullptr;
    llama_model_params mparams = llama_model_default_params();
    llama_flexidepth_load_params load_params = llama_flexidepth_load_default_params();
    for (int i = 6; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "dense" || a == "masked" || a == "masked-fa" || a == "auto") {
            mode = a == "dense" ? LLAMA_FLEXIDEPTH_MODE_DENSE : a == "auto" ? LLAMA_FLEXIDEPTH_MODE_AUTO : LLAMA_FLEXIDEPTH_MODE_MASKED;
            if (a == "masked-fa") {
                flash_attn = true;
                kv_f32 = false;
            }
        } else if (a == "--flash-attn") {
            flash_attn = true;
        } else if (a == "--ubatch" && i + 1 < argc) {
            n_ubatch = atoi(argv[++i]);
        } else if (a == "--adapters-as-stored") {
            load_params.adapters_in_base_type = false;
        } else if (a == "--non-unified") {
            kv_unified = false;
        } else if (a == "--cpu") {
            mparams.n_gpu_layers = 0;
        } else if (a == "--kv" && i + 1 < argc && std::string(argv[i + 1]) == "q8_0") {
            kv_q8 = true;
            ++i;
        } else if (a == "--dmtd" && i + 2 < argc) {
            dmtd = true;
            dmtd_params.n_thinking = atoi(argv[++i]);
            dmtd_params.cycle = atoi(argv[++i]);
            dmtd_params.phase = LLAMA_DMTD_PHASE_PROMPT_END;
            dmtd_params.refill = true;
            if (i + 1 < argc && std::string(argv[i + 1]) == "absolute") {
                dmtd_params.phase = LLAMA_DMTD_PHASE_ABSOLUTE;
                ++i;
            }
            if (i + 1 < argc && std::string(argv[i + 1]) == "norefill") {
                dmtd_params.refill = false;
                ++i;
            }
        } else if (a == "--lora" && i + 2 < argc) {
            lora_path = argv[++i];
            lora_scale = (float) atof(argv[++i]);
        } else {
            fprintf(stderr, "unknown option %s\n", a.c_str());
            return 2;
        }
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    // the CPU backend variant this CPU runs best, from beside the program; tests under qemu read
    // which one from the log
    char cpu_library[256];
    if (llama_fork_backend_load(nullptr, cpu_library, sizeof(cpu_library)) != LLAMA_FORK_BACKEND_OK) {
        fprintf(stderr, "no CPU backend beside this program runs on this CPU\n");
        return 1;
    }
    fprintf(stderr, "CPU backend: %s\n", cpu_library);
    llama_model * model = llama_model_load_from_file(argv[1], mparams);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    if (lora_path && (lora = llama_adapter_lora_init(model, lora_path)) == nullptr) {
        fprintf(stderr, "cannot load LoRA %s\n", lora_path);
        return 1;
    }
    llama_adapter_flexidepth * fd = nullptr;
    if (std::string(argv[2]) != "-") {
        int32_t status = 0;
        fd = llama_adapter_flexidepth_load(model, argv[2], &load_params, &status);
        if (!fd) {
            fprintf(stderr, "plug-in: %s (%d)\n", llama_flexidepth_last_error(), status);
            return 1;
        }
    }
    const float tau = (float) atof(argv[3]);
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    const int n_routed = llama_adapter_flexidepth_n_routed(fd);

    FILE * out = fopen(argv[5], "wb");
    fwrite(&n_vocab, 4, 1, out);
    fwrite(&n_routed, 4, 1, out);

    llama_context * ctx = new_context(model, fd, tau);
    std::map<int, int> next_pos;
    std::vector<uint8_t> saved;
    std::map<int, int> saved_pos;
    std::map<int, std::pair<std::vector<llama_token>, bool>> saved_pending;
    std::map<int, std::vector<llama_pos>> saved_hidden;
    std::string dmtd_full;

    std::ifstream script(argv[4]);
    std::string line;
    while (std::getline(script, line)) {
        std::istringstream words(line);
        std::string cmd;
        words >> cmd;
        if (cmd == "save") {
            saved.resize(llama_state_get_size(ctx));
            saved.resize(llama_state_get_data(ctx, saved.data(), saved.size()));
            saved_pos = next_pos;
            for (const auto & [s, p] : next_pos) {
                if (dmtd) {
                    bool starts = false;
                    std::vector<llama_token> t(llama_dmtd_seq_pending(ctx, s, nullptr, 0, nullptr));
                    llama_dmtd_seq_pending(ctx, s, t.data(), (int32_t) t.size(), &starts);
                    saved_pending[s] = {t, starts};
                    std::vector<llama_pos> hidden(llama_dmtd_seq_hidden(ctx, s, nullptr, 0));
                    llama_dmtd_seq_hidden(ctx, s, hidden.data(), (int32_t) hidden.size());
                    fprintf(stderr, "dmtd hidden in sequence %d: %zu\n", s, hidden.size());
                    saved_hidden[s] = hidden;
                }
            }
        } else if (cmd == "restore") {
            llama_free(ctx);
            ctx = new_context(model, fd, tau);
            if (llama_state_set_data(ctx, saved.data(), saved.size()) == 0) {
                fprintf(stderr, "restore failed\n");
                return 1;
            }
            next_pos = saved_pos;
            for (const auto & [s, t] : saved_pending) {
                if (llama_dmtd_seq_set_pending(ctx, s, t.first.data(), (int32_t) t.first.size(), t.second) != 0) {
                    fprintf(stderr, "restoring the cycle failed: %s\n", llama_dmtd_last_error());
                    return 1;
                }
            }
            for (const auto & [s, h] : saved_hidden) {
                if (llama_dmtd_seq_set_hidden(ctx, s, h.data(), (int32_t) h.size()) != 0) {
                    fprintf(stderr, "restoring the hidden positions failed: %s\n", llama_dmtd_last_error());
                    return 1;
                }
            }
        } else if (cmd == "force") {
            std::string list;
            words >> list;
            forced.clear();
            if (list != "-") {
                std::stringstream ds(list);
                std::string d;
                while (std::getline(ds, d, ',')) {
                    forced.push_back((int8_t) atoi(d.c_str()));
                }
            }
            if (!fd || set_plugin(ctx, fd, tau) != 0) {
                fprintf(stderr, "force failed: %s\n", fd ? llama_flexidepth_last_error() : "no plug-in");
                return 1;
            }
        } else if (cmd == "rm" || cmd == "shift") {
            int seq = 0, p0 = 0, arg = 0;
            words >> seq >> p0 >> arg;
            llama_memory_t mem = llama_get_memory(ctx);
            if (cmd == "rm") {
                if (!llama_memory_seq_rm(mem, seq, p0, arg)) {
                    fprintf(stderr, "seq_rm failed\n");
                    return 1;
                }
                if (arg < 0 || arg >= next_pos[seq]) {
                    next_pos[seq] = p0;
                }
            } else {
                llama_memory_seq_add(mem, seq, p0, -1, arg);
                next_pos[seq] += arg;
            }
        } else if (cmd == "batch") {
            std::vector<std::pair<int, int>> items; // (seq, token)
            std::string group;
            while (words >> group) {
                const int seq = atoi(group.substr(0, group.find(':')).c_str());
                std::stringstream toks(group.substr(group.find(':') + 1));
                std::string t;
                while (std::getline(toks, t, ',')) {
                    items.emplace_back(seq, atoi(t.c_str()));
                }
            }
            llama_batch batch = llama_batch_init((int) items.size(), 0, 1);
            for (size_t i = 0; i < items.size(); ++i) {
                batch.token[i] = items[i].second;
                batch.pos[i] = next_pos[items[i].first]++;
                batch.n_seq_id[i] = 1;
                batch.seq_id[i][0] = items[i].first;
                batch.logits[i] = 1;
            }
            batch.n_tokens = (int) items.size();
            if (dmtd ? llama_dmtd_decode(ctx, batch) != 0 : llama_decode(ctx, batch) != 0) {
                fprintf(stderr, "decode failed%s%s\n", dmtd ? ": " : "", dmtd ? llama_dmtd_last_error() : "");
                return 1;
            }
            const int n = batch.n_tokens;
            std::vector<float> gates((size_t) n * n_routed);
            std::vector<uint8_t> run((size_t) n * n_routed);
            std::vector<llama_pos> pos(n);
            std::vector<llama_seq_id> seq(n);
            if (fd && llama_get_flexidepth_routing(ctx, gates.data(), run.data(), pos.data(), seq.data(), n) != n) {
                fprintf(stderr, "routing not recorded\n");
                return 1;
            }
            fwrite(&n, 4, 1, out);
            for (int i = 0; i < n; ++i) {
                if (fd && (pos[i] != batch.pos[i] || seq[i] != batch.seq_id[i][0])) {
                    fprintf(stderr, "routing order differs from batch order at %d\n", i);
                    return 1;
                }
                fwrite(&batch.seq_id[i][0], 4, 1, out);
                fwrite(&batch.pos[i], 4, 1, out);
                fwrite(llama_get_logits_ith(ctx, dmtd ? llama_dmtd_output_index(ctx, i) : i), 4, n_vocab, out);
                if (dmtd) {
                    dmtd_full += (dmtd_full.empty() ? "" : ",") + std::to_string(llama_dmtd_full_step(ctx, i));
                }
                fwrite(gates.data() + (size_t) i * n_routed, 4, n_routed, out);
                fwrite(run.data() + (size_t) i * n_routed, 1, n_routed, out);
            }
            llama_batch_free(batch);
        } else if (!cmd.empty()) {
            fprintf(stderr, "unknown script command %s\n", cmd.c_str());
            return 2;
        }
    }
    fclose(out);
    fprintf(stderr, "mul_mat_id nodes: %ld\n", mul_mat_id_nodes);
    fprintf(stderr, "mul_mat nodes: %ld\n", mul_mat_nodes);
    if (dmtd) {
        fprintf(stderr, "dmtd full: %s\n", dmtd_full.c_str());
        fprintf(stderr, "dmtd refill copies: %ld\n", dmtd_copies);
    }
    llama_free(ctx);
    llama_adapter_flexidepth_free(fd);
    llama_model_free(model);
    return 0;
}

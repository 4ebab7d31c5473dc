// llama-flexidepth-bench: prefill and decode speed of a model with and without a FlexiDepth
// plug-in, at forced skip patterns that override the routers (so that speed can be measured
// independently of router weights), and with direct multi-token decoding at several cycles,
// interleaved in one run. For each configuration it prints prefill and decode tokens/s, layers per
// token, and the ideal speedups of a forced pattern: decode's from the bytes of weights a token
// reads, prefill's from the elements of the weights its products multiply.
//
// usage: llama-flexidepth-bench -m MODEL [--flexidepth PLUGIN] [--tau 0.5] [--mode auto|masked|dense]
//          [--skip-ratios 0,0.25,0.5,1] [--skip-layers L,L,...] [-p 128] [-n 64] [-r 3] [-t THREADS]
//          [--dmtd THINKING_LAYERS --cycles 2,3,4 [--dmtd-no-refill]] [--no-repack] [--json]
#include "llama.h"
#include "llama-flexidepth.h"
#include "llama-dmtd.h"
#include "gguf.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

struct config {
    std::string name;
    bool plugin = false;
    std::vector<int8_t> forced; // per routed layer; empty = routers decide
    double skip_ratio = -1;
    int dmtd_cycle = 0;         // > 0: decoded with llama_dmtd_decode at this cycle
    bool dmtd_refill = true;    // whether its heads refill (SPEC section 4)
    bool stored_adapters = false; // the plug-in loaded with its adapters as the file stores them
};

struct result {
    std::vector<double> pp_tps, tg_tps, layers;
    double full_ms = 0, mid_ms = 0; // DMTD: time in full-depth and in decoding-only steps, measured reps
    int n_full = 0, n_mid = 0;
};

static std::vector<std::string> split(const std::string & s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

static double mean(const std::vector<double> & v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / v.size();
}

static double stdev(const std::vector<double> & v) {
    if (v.size() < 2) return 0;
    const double m = mean(v);
    double s = 0;
    for (double x : v) s += (x - m) * (x - m);
    return std::sqrt(s / (v.size() - 1));
}

// The median over reps of a configuration's rate over the base's in the same rep: the reps run
// the configurations in turn, so a burst of the machine's other load slows one rep of each
// rather than one configuration, and the median leaves out the reps it hit.
static double paired_speedup(const std::vector<double> & v, const std::vector<double> & base) {
    std::vector<double> r;
    for (size_t i = 0; i < v.size() && i < base.size(); ++i) r.push_back(v[i] / base[i]);
    if (r.empty()) return 0;
    std::sort(r.begin(), r.end());
    return r.size() % 2 ? r[r.size() / 2] : 0.5 * (r[r.size() / 2 - 1] + r[r.size() / 2]);
}

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

// Weights per layer that a token reads, in bytes (decode's cost) or in elements (the products'
// work, prefill's cost): [layer] -> (skippable: Wq, Wo, FFN; always: the rest), of the skippable
// the FFN's share (an attention-only family skips the rest of them), and the plug-in's router as
// it runs (W_head W_up folded into one vector at load) and adapter as the file stores it
struct weight_bytes {
    bool elements = false;
    std::vector<double> skippable, always, ffn;
    double other = 0; // output head, norms: read once per token
    std::map<int, double> plugin_router, plugin_adapter;
};

static weight_bytes read_weights(const char * model, const char * plugin, bool elements) {
    weight_bytes wb;
    wb.elements = elements;
    auto scan = [&](const char * path, bool is_plugin) {
        gguf_init_params p = { true, nullptr };
        gguf_context * g = gguf_init_from_file(path, p);
        if (!g) { fprintf(stderr, "cannot read %s\n", path); exit(1); }
        for (int64_t i = 0; i < gguf_get_n_tensors(g); ++i) {
            const std::string name = gguf_get_tensor_name(g, i);
            const ggml_type type = gguf_get_tensor_type(g, i);
            const double bytes = (double) gguf_get_tensor_size(g, i) / (elements ? ggml_type_size(type) / (double) ggml_blck_size(type) : 1.0);
            int il = -1;
            char kind[64] = {0};
            if (sscanf(name.c_str(), "blk.%d.%63[^.]", &il, kind) == 2) {
                if ((int) wb.skippable.size() <= il) { wb.skippable.resize(il + 1); wb.always.resize(il + 1); wb.ffn.resize(il + 1); }
                const std::string k = kind;
                if (is_plugin) {
                    if (k == "fd_router_norm") {
                        // the folded vector has the norm's length, in F32
                        wb.plugin_router[il] += bytes * (1 + (elements ? 1.0 : 4.0 / ggml_type_size(type)));
                    } else if (k == "fd_router_down" || k == "fd_router_bias") {
                        wb.plugin_router[il] += bytes;
                    } else if (k.rfind("fd_adapter", 0) == 0) {
                        wb.plugin_adapter[il] += bytes;
                    }
                } else if (k == "attn_q" || k == "attn_output" || k == "ffn_gate" || k == "ffn_up" || k == "ffn_down") {
                    wb.skippable[il] += bytes;
                    wb.ffn[il] += k.rfind("ffn_", 0) == 0 ? bytes : 0;
                } else {
                    wb.always[il] += bytes;
                }
            } else if (!is_plugin && name != "token_embd.weight") {
                wb.other += bytes; // the embedding reads one row per token: not counted
            }
        }
        gguf_free(g);
    };
    scan(model, false);
    if (plugin) scan(plugin, true);
    return wb;
}

int main(int argc, char ** argv) {
    std::string model_path, plugin_path, mode = "auto";
    float tau = 0.5f;
    std::vector<double> ratios = {0, 0.25, 0.5, 1};
    std::vector<int> skip_layers;
    int n_prompt = 128, n_gen = 64, reps = 3, threads = (int) std::thread::hardware_concurrency();
    bool json = false, repack = true;
    int dmtd_thinking = 0;
    bool dmtd_no_refill = false; // each cycle also without refill
    std::vector<int> cycles = {2, 3, 4};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) { fprintf(stderr, "missing value for %s\n", a.c_str()); exit(2); }
            return argv[++i];
        };
        if (a == "-m") model_path = next();
        else if (a == "--flexidepth") plugin_path = next();
        else if (a == "--tau") tau = (float) atof(next().c_str());
        else if (a == "--mode") mode = next();
        else if (a == "--skip-ratios") { ratios.clear(); for (auto & s : split(next())) ratios.push_back(atof(s.c_str())); }
        else if (a == "--skip-layers") { for (auto & s : split(next())) skip_layers.push_back(atoi(s.c_str())); }
        else if (a == "-p") n_prompt = atoi(next().c_str());
        else if (a == "-n") n_gen = atoi(next().c_str());
        else if (a == "-r") reps = atoi(next().c_str());
        else if (a == "-t") threads = atoi(next().c_str());
        else if (a == "--json") json = true;
        else if (a == "--no-repack") repack = false;
        else if (a == "--dmtd") dmtd_thinking = atoi(next().c_str());
        else if (a == "--dmtd-no-refill") dmtd_no_refill = true;
        else if (a == "--cycles") { cycles.clear(); for (auto & s : split(next())) cycles.push_back(atoi(s.c_str())); }
        else { fprintf(stderr, "unknown option %s\n", a.c_str()); return 2; }
    }
    if (model_path.empty() || (mode != "masked" && mode != "dense" && mode != "auto")) {
        fprintf(stderr, "usage: %s -m MODEL [--flexidepth PLUGIN] [--tau T] [--mode auto|masked|dense] [--skip-ratios 0,0.5,1] "
                        "[--skip-layers L,...] [-p N] [-n N] [-r N] [-t N] [--json]\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    ggml_backend_load_all(); // the CPU backend is a variant loaded at run time
    llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = repack; // weights in the CPU's repacked layouts (x86: Q4_0, Q4_K, ...) or plain
    llama_model * model = llama_model_load_from_file(model_path.c_str(), mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", model_path.c_str()); return 1; }
    llama_adapter_flexidepth * fd = nullptr, * fd_stored = nullptr;
    if (!plugin_path.empty()) {
        int32_t status = 0;
        fd = llama_adapter_flexidepth_init(model, plugin_path.c_str(), &status);
        if (!fd) { fprintf(stderr, "%s\n", llama_flexidepth_last_error()); return 1; }
        llama_flexidepth_load_params lp = llama_flexidepth_load_default_params();
        lp.adapters_in_base_type = false;
        fd_stored = llama_adapter_flexidepth_load(model, plugin_path.c_str(), &lp, &status);
        if (!fd_stored) { fprintf(stderr, "%s\n", llama_flexidepth_last_error()); return 1; }
    }
    const int n_layer = llama_model_n_layer(model);
    const int n_routed = llama_adapter_flexidepth_n_routed(fd);

    std::vector<config> configs = {{"no plug-in"}};
    if (fd) {
        configs.push_back({"plug-in, routers", true, {}, -1});
        auto pattern = [&](int k) {
            // k skipped routed layers, spread evenly over the routed ones
            std::vector<int8_t> f(n_routed, 1);
            for (int j = 0; j < k; ++j) f[(int) ((j + 0.5) * n_routed / k)] = 0;
            return f;
        };
        for (double s : ratios) {
            const int k = (int) std::lround(s * n_routed);
            char name[64];
            snprintf(name, sizeof(name), "forced skip %.2f", s);
            configs.push_back({name, true, pattern(k), s});
        }
        // where loading put the adapters in the base model's type, what that saves, side by side
        const int first = llama_adapter_flexidepth_routed_layer(fd, 0);
        if (llama_adapter_flexidepth_adapter_type(fd, first) != llama_adapter_flexidepth_adapter_type(fd_stored, first)) {
            for (double s : ratios) {
                if (s > 0) {
                    char name[64];
                    snprintf(name, sizeof(name), "  %s adapters", ggml_type_name(llama_adapter_flexidepth_adapter_type(fd_stored, first)));
                    configs.push_back({name, true, pattern((int) std::lround(s * n_routed)), s, 0, true});
                }
            }
        }
        if (!skip_layers.empty()) {
            std::vector<int8_t> f(n_routed, 1);
            for (int r = 0; r < n_routed; ++r)
                for (int l : skip_layers) if (llama_adapter_flexidepth_routed_layer(fd, r) == l) f[r] = 0;
            configs.push_back({"forced skip layers", true, f, -1});
        }
    }

    if (dmtd_thinking > 0) {
        for (int c : cycles) {
            configs.push_back({"dmtd tau " + std::to_string(c), false, {}, -1, c});
            if (dmtd_no_refill) {
                configs.push_back({"dmtd tau " + std::to_string(c) + " norefill", false, {}, -1, c, false});
            }
        }
    }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = n_prompt + n_gen + 16;
    cp.n_batch = std::max(n_prompt, 1);
    cp.n_ubatch = std::max(n_prompt, 1);
    cp.n_threads = threads;
    cp.n_threads_batch = threads;
    llama_context * ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create context\n"); return 1; }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    std::mt19937 rng(1234);
    std::vector<llama_token> prompt(n_prompt);
    for (auto & t : prompt) t = 3 + (int) (rng() % (n_vocab - 3));
    std::vector<float> gates((size_t) std::max(n_prompt, 1) * std::max(n_routed, 1));
    std::vector<uint8_t> run(gates.size());

    std::vector<result> results(configs.size());
    llama_batch one = llama_batch_init(1, 0, 1); // llama_dmtd_decode needs explicit positions
    one.n_seq_id[0] = 1;
    one.seq_id[0][0] = 0;
    one.logits[0] = 1;
    using clock = std::chrono::steady_clock;
    for (int rep = -1; rep < reps; ++rep) { // rep -1 warms up every configuration
        for (size_t c = 0; c < configs.size(); ++c) {
            const config & cfg = configs[c];
            if (cfg.plugin) {
                llama_flexidepth_params fp = llama_flexidepth_default_params();
                fp.threshold = tau;
                fp.mode = mode == "dense" ? LLAMA_FLEXIDEPTH_MODE_DENSE : mode == "masked" ? LLAMA_FLEXIDEPTH_MODE_MASKED : LLAMA_FLEXIDEPTH_MODE_AUTO;
                fp.forced = cfg.forced.empty() ? nullptr : cfg.forced.data();
                fp.n_forced = (int32_t) cfg.forced.size();
                llama_set_adapter_flexidepth(ctx, cfg.stored_adapters ? fd_stored : fd, &fp);
            } else {
                llama_set_adapter_flexidepth(ctx, nullptr, nullptr);
            }
            llama_dmtd_params dp = {dmtd_thinking, cfg.dmtd_cycle, LLAMA_DMTD_PHASE_PROMPT_END, cfg.dmtd_refill};
            if (llama_set_dmtd(ctx, cfg.dmtd_cycle > 0 ? &dp : nullptr) != 0) {
                fprintf(stderr, "%s\n", llama_dmtd_last_error());
                return 1;
            }
            llama_memory_clear(llama_get_memory(ctx), true);
            auto t0 = clock::now();
            if (llama_decode(ctx, llama_batch_get_one(prompt.data(), n_prompt)) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
            llama_synchronize(ctx);
            auto t1 = clock::now();
            double layers = 0;
            llama_token tok = prompt.back();
            for (int i = 0; i < n_gen; ++i) {
                tok = 3 + (tok * 7919 + 13) % (n_vocab - 3);
                if (cfg.dmtd_cycle > 0) {
                    one.token[0] = tok;
                    one.pos[0] = n_prompt + i;
                    one.n_tokens = 1;
                    const auto s0 = clock::now();
                    if (llama_dmtd_decode(ctx, one) != 0) { fprintf(stderr, "decode failed: %s\n", llama_dmtd_last_error()); return 1; }
                    llama_synchronize(ctx);
                    const double ms = std::chrono::duration<double, std::milli>(clock::now() - s0).count();
                    const bool full_step = llama_dmtd_full_step(ctx, 0);
                    layers += full_step ? n_layer : n_layer - dmtd_thinking;
                    if (rep >= 0) {
                        (full_step ? results[c].full_ms : results[c].mid_ms) += ms;
                        ++(full_step ? results[c].n_full : results[c].n_mid);
                    }
                    continue;
                }
                if (llama_decode(ctx, llama_batch_get_one(&tok, 1)) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
                if (cfg.plugin) {
                    llama_get_flexidepth_routing(ctx, gates.data(), run.data(), nullptr, nullptr, (int32_t) gates.size());
                    int used = n_layer - n_routed;
                    for (int r = 0; r < n_routed; ++r) used += run[r];
                    layers += used;
                } else {
                    layers += n_layer;
                }
            }
            llama_synchronize(ctx);
            auto t2 = clock::now();
            if (rep >= 0) {
                results[c].pp_tps.push_back(n_prompt / std::chrono::duration<double>(t1 - t0).count());
                results[c].tg_tps.push_back(n_gen / std::chrono::duration<double>(t2 - t1).count());
                results[c].layers.push_back(layers / n_gen);
            }
        }
    }

    const weight_bytes wb = read_weights(model_path.c_str(), fd ? plugin_path.c_str() : nullptr, false);
    const weight_bytes we = read_weights(model_path.c_str(), fd ? plugin_path.c_str() : nullptr, true);
    // what a token costs with every layer running, and with a forced skip pattern: decode by the
    // bytes it reads (adapters as loaded), prefill by its products' elements (the output head
    // once per prompt)
    auto cost = [&](const weight_bytes & w, const config & cfg) {
        double c = w.elements ? w.other / std::max(n_prompt, 1) : w.other;
        for (int l = 0; l < n_layer; ++l) c += w.skippable[l] + w.always[l];
        for (int r = 0; cfg.plugin && r < (int) cfg.forced.size(); ++r) {
            const int l = llama_adapter_flexidepth_routed_layer(fd, r);
            c += w.plugin_router.count(l) ? w.plugin_router.at(l) : 0;
            if (cfg.forced[r] == 0) {
                // what the plug-in's skip family leaves out (native/README.md)
                const llama_flexidepth_skip family = llama_adapter_flexidepth_skip(fd);
                c -= family == LLAMA_FLEXIDEPTH_SKIP_ATTENTION ? w.skippable[l] - w.ffn[l]
                   : family == LLAMA_FLEXIDEPTH_SKIP_FFN ? w.ffn[l] : w.skippable[l];
                c += w.elements ? (w.plugin_adapter.count(l) ? w.plugin_adapter.at(l) : 0)
                                : (double) llama_adapter_flexidepth_adapter_nbytes(cfg.stored_adapters ? fd_stored : fd, l);
            }
        }
        return c;
    };
    const config none;
    const double full = cost(wb, none), full_work = cost(we, none);
    const double base_tg = mean(results[0].tg_tps);
    if (!json) {
        const ggml_type at = fd ? llama_adapter_flexidepth_adapter_type(fd, llama_adapter_flexidepth_routed_layer(fd, 0)) : GGML_TYPE_COUNT;
        printf("model %s, plug-in %s (skip %s, adapters %s), mode %s, %s weights, %d threads, prefill %d, decode %d, %d reps\n", model_path.c_str(),
               fd ? plugin_path.c_str() : "-", fd ? llama_flexidepth_skip_name(llama_adapter_flexidepth_skip(fd)) : "-",
               at == GGML_TYPE_COUNT ? "-" : ggml_type_name(at), mode.c_str(),
               repack ? "repacked" : "plain", threads, n_prompt, n_gen, reps);
        printf("%-20s %14s %8s %8s %14s %8s %8s %8s %7s\n", "config", "prefill t/s", "speedup", "ideal", "decode t/s", "layers",
               "speedup", "ideal", "/ideal");
    }
    for (size_t c = 0; c < configs.size(); ++c) {
        const config & cfg = configs[c];
        // the ideals are those of a forced pattern (the routers' decisions vary per token)
        double ideal = 1.0, ideal_pp = 1.0;
        if (cfg.plugin && !cfg.forced.empty()) {
            ideal = full / cost(wb, cfg);
            ideal_pp = full_work / cost(we, cfg);
        }
        if (cfg.dmtd_cycle > 0) {
            // a cycle reads every layer once and the decoding layers tau-1 more times (SPEC section 6)
            double mid = wb.other;
            for (int l = dmtd_thinking; l < n_layer; ++l) mid += wb.skippable[l] + wb.always[l];
            ideal = full / ((full + (cfg.dmtd_cycle - 1) * mid) / cfg.dmtd_cycle);
        }
        const double speedup = paired_speedup(results[c].tg_tps, results[0].tg_tps);
        const double speedup_pp = paired_speedup(results[c].pp_tps, results[0].pp_tps);
        if (json) {
            printf("{\"config\":\"%s\",\"mode\":\"%s\",\"skip_ratio\":%.3f,\"prefill_tps\":%.3f,\"prefill_sd\":%.3f,"
                   "\"prefill_speedup\":%.4f,\"prefill_ideal_speedup\":%.4f,"
                   "\"decode_tps\":%.3f,\"decode_sd\":%.3f,\"layers_per_token\":%.3f,\"decode_speedup\":%.4f,\"ideal_speedup\":%.4f,\"full_step_ms\":%.3f,\"mid_step_ms\":%.3f}\n",
                   cfg.name.c_str(), mode.c_str(), cfg.skip_ratio, mean(results[c].pp_tps), stdev(results[c].pp_tps), speedup_pp, ideal_pp,
                   mean(results[c].tg_tps), stdev(results[c].tg_tps), mean(results[c].layers), speedup, ideal,
                   results[c].n_full ? results[c].full_ms / results[c].n_full : 0.0, results[c].n_mid ? results[c].mid_ms / results[c].n_mid : 0.0);
        } else {
            printf("%-20s %8.1f ±%4.1f %7.3fx %7.3fx %8.2f ±%4.2f %8.2f %7.3fx %7.3fx %6.0f%%\n", cfg.name.c_str(),
                   mean(results[c].pp_tps), stdev(results[c].pp_tps), speedup_pp, ideal_pp, mean(results[c].tg_tps),
                   stdev(results[c].tg_tps), mean(results[c].layers), speedup, ideal, 100.0 * speedup / ideal);
            if (results[c].n_full > 0 && results[c].n_mid > 0) {
                // where a cycle's time goes: a refilling head runs tau rows through the thinking layers
                printf("%-20s full step %.2f ms, decoding-only step %.2f ms (no DMTD: %.2f ms a token)\n", "",
                       results[c].full_ms / results[c].n_full, results[c].mid_ms / results[c].n_mid, 1000.0 / base_tg);
            }
        }
    }
    llama_batch_free(one);
    llama_free(ctx);
    llama_adapter_flexidepth_free(fd);
    llama_adapter_flexidepth_free(fd_stored);
    llama_model_free(model);
    return 0;
}

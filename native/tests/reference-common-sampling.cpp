// Generation with upstream's common_sampler, as llama-server samples (prompt tokens fed to the
// sampler's history, then sample and accept per token), built against the PRISTINE upstream
// libllama and libllama-common: the reference that the Java API's sampling tests compare with,
// token for token. Prints the generated token ids on one line.
//
// usage: reference-common-sampling MODEL.gguf N_PREDICT PROMPT [key=value ...]
//   keys: the fields of common_params_sampling (seed temp top_k top_p min_p typ_p xtc_probability
//   xtc_threshold dynatemp_range dynatemp_exponent penalty_last_n penalty_repeat penalty_freq
//   penalty_present dry_multiplier dry_base dry_allowed_length dry_penalty_last_n mirostat
//   mirostat_tau mirostat_eta top_n_sigma min_keep ignore_eos), grammar_file=PATH,
//   json_schema_file=PATH, logit_bias=TOKEN:BIAS (repeatable), top_logprobs=N (after the ids, one
//   line per step: the N most likely tokens under the raw logits and their log-probabilities,
//   computed here in double precision)
#include "common.h"
#include "json-schema-to-grammar.h"
#include "json.h"
#include "llama.h"
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static std::string read_file(const std::string & path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

static bool set_param(common_params_sampling & p, const std::string & key, const std::string & v) {
    const float f = std::strtof(v.c_str(), nullptr);
    const int   i = std::atoi(v.c_str());
    if      (key == "seed")               p.seed = (uint32_t) std::strtoul(v.c_str(), nullptr, 10);
    else if (key == "temp")               p.temp = f;
    else if (key == "top_k")              p.top_k = i;
    else if (key == "top_p")              p.top_p = f;
    else if (key == "min_p")              p.min_p = f;
    else if (key == "typ_p")              p.typ_p = f;
    else if (key == "xtc_probability")    p.xtc_probability = f;
    else if (key == "xtc_threshold")      p.xtc_threshold = f;
    else if (key == "dynatemp_range")     p.dynatemp_range = f;
    else if (key == "dynatemp_exponent")  p.dynatemp_exponent = f;
    else if (key == "penalty_last_n")     p.penalty_last_n = i;
    else if (key == "penalty_repeat")     p.penalty_repeat = f;
    else if (key == "penalty_freq")       p.penalty_freq = f;
    else if (key == "penalty_present")    p.penalty_present = f;
    else if (key == "dry_multiplier")     p.dry_multiplier = f;
    else if (key == "dry_base")           p.dry_base = f;
    else if (key == "dry_allowed_length") p.dry_allowed_length = i;
    else if (key == "dry_penalty_last_n") p.dry_penalty_last_n = i;
    else if (key == "mirostat")           p.mirostat = i;
    else if (key == "mirostat_tau")       p.mirostat_tau = f;
    else if (key == "mirostat_eta")       p.mirostat_eta = f;
    else if (key == "top_n_sigma")        p.top_n_sigma = f;
    else if (key == "min_keep")           p.min_keep = i;
    else if (key == "ignore_eos")         p.ignore_eos = i != 0;
    else if (key == "grammar_file")       p.grammar = common_grammar(COMMON_GRAMMAR_TYPE_USER, read_file(v));
    else if (key == "json_schema_file")   p.grammar = common_grammar(COMMON_GRAMMAR_TYPE_USER,
                                                          json_schema_to_grammar(common_json::parse(read_file(v))));
    else if (key == "logit_bias") {
        const size_t colon = v.find(':');
        p.logit_bias.push_back({std::atoi(v.substr(0, colon).c_str()), std::strtof(v.substr(colon + 1).c_str(), nullptr)});
    } else {
        return false;
    }
    return true;
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf N_PREDICT PROMPT [key=value ...]\n", argv[0]);
        return 2;
    }
    common_params_sampling sparams;
    sparams.no_perf = true;
    int top_logprobs = 0;
    for (int a = 4; a < argc; a++) {
        const std::string arg = argv[a];
        const size_t eq = arg.find('=');
        if (eq != std::string::npos && arg.substr(0, eq) == "top_logprobs") {
            top_logprobs = std::atoi(arg.substr(eq + 1).c_str());
            continue;
        }
        if (eq == std::string::npos || !set_param(sparams, arg.substr(0, eq), arg.substr(eq + 1))) {
            fprintf(stderr, "unknown argument %s\n", argv[a]);
            return 2;
        }
    }
    const int n_predict = std::atoi(argv[2]);
    const std::string prompt = argv[3];
    llama_log_set(quiet, nullptr);
    llama_backend_init();

    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    if (sparams.ignore_eos) {
        // as common_init_from_params does
        for (llama_token t = 0; t < llama_vocab_n_tokens(vocab); t++) {
            if (llama_vocab_is_eog(vocab, t)) {
                sparams.logit_bias.push_back({t, -INFINITY});
            }
        }
    }
    std::vector<llama_token> tokens = common_tokenize(vocab, prompt, true, true);

    llama_context_params cparams = llama_context_default_params();
    cparams.n_ctx = 512;
    llama_context * ctx = llama_init_from_model(model, cparams);
    common_sampler * smpl = common_sampler_init(model, sparams);
    if (!smpl) {
        fprintf(stderr, "common_sampler_init failed\n");
        return 1;
    }
    for (llama_token t : tokens) {
        common_sampler_accept(smpl, t, false);
    }

    llama_batch batch = llama_batch_get_one(tokens.data(), (int32_t) tokens.size());
    llama_token next;
    std::string steps;
    for (int i = 0; i < n_predict; i++) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "decode failed\n");
            return 1;
        }
        if (top_logprobs > 0) {
            const float * logits = llama_get_logits_ith(ctx, -1);
            const int n_vocab = llama_vocab_n_tokens(vocab);
            double max = -INFINITY, sum = 0.0;
            for (int t = 0; t < n_vocab; t++) max = std::max(max, (double) logits[t]);
            for (int t = 0; t < n_vocab; t++) sum += std::exp((double) logits[t] - max);
            std::vector<int> order(n_vocab);
            for (int t = 0; t < n_vocab; t++) order[t] = t;
            std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
            for (int k = 0; k < top_logprobs && k < n_vocab; k++) {
                char buf[64];
                snprintf(buf, sizeof(buf), "%s%d %.9g", k == 0 ? "" : " ", order[k], (double) logits[order[k]] - max - std::log(sum));
                steps += buf;
            }
            steps += "\n";
        }
        next = common_sampler_sample(smpl, ctx, -1);
        common_sampler_accept(smpl, next, true);
        if (llama_vocab_is_eog(vocab, next)) {
            break;
        }
        printf("%s%d", i == 0 ? "" : " ", next);
        batch = llama_batch_get_one(&next, 1);
    }
    printf("\n%s", steps.c_str());

    common_sampler_free(smpl);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

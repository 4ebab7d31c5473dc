#include "common-errors.h"

#include "llama-fork-common.h"
#include "llama-fork.h"

#include "common.h"
#include "sampling.h"

#include <cmath>
#include <stdexcept>

struct llama_fork_common_sampler {
    common_sampler * smpl;
};

llama_fork_common_sampling_params llama_fork_common_sampling_default_params(void) {
    const common_params_sampling d;
    llama_fork_common_sampling_params p = {};
    p.seed               = d.seed;
    p.n_prev             = d.n_prev;
    p.min_keep           = d.min_keep;
    p.top_k              = d.top_k;
    p.top_p              = d.top_p;
    p.min_p              = d.min_p;
    p.xtc_probability    = d.xtc_probability;
    p.xtc_threshold      = d.xtc_threshold;
    p.typ_p              = d.typ_p;
    p.temp               = d.temp;
    p.dynatemp_range     = d.dynatemp_range;
    p.dynatemp_exponent  = d.dynatemp_exponent;
    p.penalty_last_n     = d.penalty_last_n;
    p.penalty_repeat     = d.penalty_repeat;
    p.penalty_freq       = d.penalty_freq;
    p.penalty_present    = d.penalty_present;
    p.dry_multiplier     = d.dry_multiplier;
    p.dry_base           = d.dry_base;
    p.dry_allowed_length = d.dry_allowed_length;
    p.dry_penalty_last_n = d.dry_penalty_last_n;
    p.mirostat           = d.mirostat;
    p.mirostat_tau       = d.mirostat_tau;
    p.mirostat_eta       = d.mirostat_eta;
    p.top_n_sigma        = d.top_n_sigma;
    p.ignore_eos         = d.ignore_eos;
    return p;
}

static common_params_sampling to_common(const llama_model * model, const llama_fork_common_sampling_params & p) {
    common_params_sampling c;
    c.seed               = p.seed;
    c.n_prev             = p.n_prev;
    c.min_keep           = p.min_keep;
    c.top_k              = p.top_k;
    c.top_p              = p.top_p;
    c.min_p              = p.min_p;
    c.xtc_probability    = p.xtc_probability;
    c.xtc_threshold      = p.xtc_threshold;
    c.typ_p              = p.typ_p;
    c.temp               = p.temp;
    c.dynatemp_range     = p.dynatemp_range;
    c.dynatemp_exponent  = p.dynatemp_exponent;
    c.penalty_last_n     = p.penalty_last_n;
    c.penalty_repeat     = p.penalty_repeat;
    c.penalty_freq       = p.penalty_freq;
    c.penalty_present    = p.penalty_present;
    c.dry_multiplier     = p.dry_multiplier;
    c.dry_base           = p.dry_base;
    c.dry_allowed_length = p.dry_allowed_length;
    c.dry_penalty_last_n = p.dry_penalty_last_n;
    c.mirostat           = p.mirostat;
    c.mirostat_tau       = p.mirostat_tau;
    c.mirostat_eta       = p.mirostat_eta;
    c.top_n_sigma        = p.top_n_sigma;
    c.ignore_eos         = p.ignore_eos;
    c.no_perf            = true;
    if (p.mirostat < 0 || p.mirostat > 2) {
        // common asserts on any other value
        throw std::invalid_argument("mirostat must be 0, 1 or 2, was " + std::to_string(p.mirostat));
    }
    if (p.dry_sequence_breakers != nullptr) {
        c.dry_sequence_breakers.assign(p.dry_sequence_breakers, p.dry_sequence_breakers + p.n_dry_sequence_breakers);
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    for (int32_t i = 0; i < p.n_logit_bias; ++i) {
        if (p.logit_bias[i].token < 0 || p.logit_bias[i].token >= n_vocab) {
            throw std::invalid_argument("logit bias for token " + std::to_string(p.logit_bias[i].token) +
                                        ", outside the vocabulary of " + std::to_string(n_vocab));
        }
        c.logit_bias.push_back(p.logit_bias[i]);
    }
    if (p.ignore_eos) {
        // as common_init_from_params does: every end-of-generation token is banned
        for (llama_token t = 0; t < n_vocab; ++t) {
            if (llama_vocab_is_eog(vocab, t)) {
                c.logit_bias.push_back({t, -INFINITY});
            }
        }
    }
    if (p.grammar != nullptr && p.grammar[0] != '\0') {
        const common_grammar_type types[] = {COMMON_GRAMMAR_TYPE_USER, COMMON_GRAMMAR_TYPE_OUTPUT_FORMAT, COMMON_GRAMMAR_TYPE_TOOL_CALLS};
        if (p.grammar_type < 0 || p.grammar_type > 2) {
            throw std::invalid_argument("unknown grammar type " + std::to_string(p.grammar_type));
        }
        c.grammar = common_grammar(types[p.grammar_type], p.grammar);
        c.generation_prompt = p.generation_prompt != nullptr ? p.generation_prompt : "";
        c.grammar_lazy = p.grammar_lazy;
        for (int32_t i = 0; i < p.n_grammar_triggers; ++i) {
            const auto & t = p.grammar_triggers[i];
            if (t.type < LLAMA_FORK_COMMON_GRAMMAR_TRIGGER_TOKEN || t.type > LLAMA_FORK_COMMON_GRAMMAR_TRIGGER_PATTERN_FULL) {
                throw std::invalid_argument("unknown grammar trigger type " + std::to_string(t.type));
            }
            if (t.type == LLAMA_FORK_COMMON_GRAMMAR_TRIGGER_TOKEN && (t.token < 0 || t.token >= n_vocab)) {
                throw std::invalid_argument("grammar trigger token " + std::to_string(t.token) + " is outside the vocabulary");
            }
            c.grammar_triggers.push_back({(common_grammar_trigger_type) t.type, t.value != nullptr ? t.value : "", t.token});
        }
    }
    return c;
}

llama_fork_common_sampler * llama_fork_common_sampler_init(const llama_model * model,
                                                           const llama_fork_common_sampling_params * params) {
    return fork_common::guarded<llama_fork_common_sampler *>(nullptr, [&]() -> llama_fork_common_sampler * {
        if (model == nullptr || params == nullptr) {
            throw std::invalid_argument("the model or the parameters are NULL");
        }
        common_params_sampling c = to_common(model, *params);
        common_sampler * s = common_sampler_init(model, c);
        if (s == nullptr) {
            throw std::runtime_error("common_sampler_init failed");
        }
        return new llama_fork_common_sampler{s};
    });
}

void llama_fork_common_sampler_free(llama_fork_common_sampler * smpl) {
    if (smpl != nullptr) {
        common_sampler_free(smpl->smpl);
        delete smpl;
    }
}

int32_t llama_fork_common_sampler_sample(llama_fork_common_sampler * smpl, llama_context * ctx, int32_t idx, llama_token * token) {
    if (smpl == nullptr || ctx == nullptr || token == nullptr) {
        return LLAMA_FORK_SAMPLE_FAILED;
    }
    if (llama_get_logits_ith(ctx, idx) == nullptr) {
        return LLAMA_FORK_SAMPLE_NO_LOGITS;
    }
    return fork_common::guarded<int32_t>(LLAMA_FORK_SAMPLE_FAILED, [&]() -> int32_t {
        const llama_token id = common_sampler_sample(smpl->smpl, ctx, idx);
        // a grammar that admits nothing leaves every candidate at -inf: nothing was sampled
        const llama_token_data_array * cur = common_sampler_get_candidates(smpl->smpl, false);
        if (cur->selected < 0 || cur->selected >= (int64_t) cur->size || !std::isfinite(cur->data[cur->selected].logit)) {
            return LLAMA_FORK_SAMPLE_NO_CANDIDATE;
        }
        common_sampler_accept(smpl->smpl, id, true);
        *token = id;
        return LLAMA_FORK_SAMPLE_OK;
    });
}

void llama_fork_common_sampler_accept_prompt(llama_fork_common_sampler * smpl, llama_token token) {
    if (smpl != nullptr) {
        fork_common::guarded<int>(0, [&]() {
            common_sampler_accept(smpl->smpl, token, false);
            return 0;
        });
    }
}

#pragma once

// C API over upstream's `common` library (libllama-common): what llama-server and llama-cli use
// beyond llama.h, exposed flat for FFM callers. Nothing here re-implements common: each function
// converts its arguments and calls common's own code, catching its exceptions.
//
// Errors: a function that fails returns NULL (or a negative status) and leaves a message for
// llama_fork_common_last_error(). The message is thread-local because FFM callers cannot catch
// C++ exceptions and a failed call must not leave a message another thread reads.

#include "llama.h"

#ifdef __cplusplus
extern "C" {
#endif

    // The message of the last failed call on this thread ("" if none); valid until the next call.
    LLAMA_API const char * llama_fork_common_last_error(void);

    // Frees a string returned by a function below.
    LLAMA_API void llama_fork_common_string_free(char * s);

    // A JSON schema (text) as a GBNF grammar with root rule "root", by common's
    // json_schema_to_grammar (what llama-server does with "json_schema" and "response_format").
    // Returns a string to free with llama_fork_common_string_free, or NULL if the text is not JSON
    // or the schema is not supported (the reason in llama_fork_common_last_error).
    LLAMA_API char * llama_fork_common_json_schema_to_grammar(const char * schema);

    enum llama_fork_common_grammar_trigger_type {
        LLAMA_FORK_COMMON_GRAMMAR_TRIGGER_TOKEN        = 0, // the token `token`
        LLAMA_FORK_COMMON_GRAMMAR_TRIGGER_WORD         = 1, // the literal text `value`
        LLAMA_FORK_COMMON_GRAMMAR_TRIGGER_PATTERN      = 2, // a regular expression matched anywhere
        LLAMA_FORK_COMMON_GRAMMAR_TRIGGER_PATTERN_FULL = 3, // a regular expression the whole output matches
    };

    enum llama_fork_common_grammar_type {
        LLAMA_FORK_COMMON_GRAMMAR_USER          = 0, // the caller's GBNF
        LLAMA_FORK_COMMON_GRAMMAR_OUTPUT_FORMAT = 1, // from a JSON schema of the reply
        LLAMA_FORK_COMMON_GRAMMAR_TOOL_CALLS    = 2, // from a chat template's tool calls
    };

    struct llama_fork_common_grammar_trigger {
        int32_t      type;  // enum llama_fork_common_grammar_trigger_type
        const char * value;
        llama_token  token;
    };

    // common_params_sampling, flattened: the fields and defaults of upstream's sampler
    // (llama-server's request fields of the same names). Samplers run in common's order:
    // logit bias, penalties, DRY, top-n-sigma, top-k, typical-p, top-p, min-p, XTC, temperature,
    // then the random draw; mirostat 1 or 2 replaces the chain after temperature.
    struct llama_fork_common_sampling_params {
        uint32_t seed;
        int32_t  n_prev;
        int32_t  min_keep;
        int32_t  top_k;              // <= 0: the vocabulary
        float    top_p;              // 1: off
        float    min_p;              // 0: off
        float    xtc_probability;    // 0: off
        float    xtc_threshold;
        float    typ_p;              // 1: off
        float    temp;               // <= 0: greedy
        float    dynatemp_range;     // 0: off
        float    dynatemp_exponent;
        int32_t  penalty_last_n;
        float    penalty_repeat;     // 1: off
        float    penalty_freq;       // 0: off
        float    penalty_present;    // 0: off
        float    dry_multiplier;     // 0: off
        float    dry_base;
        int32_t  dry_allowed_length;
        int32_t  dry_penalty_last_n;
        int32_t  mirostat;           // 0: off, 1, 2
        float    mirostat_tau;
        float    mirostat_eta;
        float    top_n_sigma;        // < 0: off
        bool     ignore_eos;

        const char * const * dry_sequence_breakers; // NULL: upstream's defaults
        int32_t              n_dry_sequence_breakers;

        const llama_logit_bias * logit_bias;
        int32_t                  n_logit_bias;

        const char * grammar;          // GBNF with root rule "root", or NULL
        int32_t      grammar_type;     // enum llama_fork_common_grammar_type
        bool         grammar_lazy;     // the grammar applies from the first trigger on
        const struct llama_fork_common_grammar_trigger * grammar_triggers;
        int32_t                                   n_grammar_triggers;
        // the assistant prefix the chat template put at the end of the prompt (chat apply's
        // "generation_prompt"): a tool-call or output-format grammar starts after it
        const char * generation_prompt;
    };

    LLAMA_API struct llama_fork_common_sampling_params llama_fork_common_sampling_default_params(void);

    // A sampler built by common_sampler_init, as llama-server builds one per request.
    struct llama_fork_common_sampler;

    // NULL if a parameter is invalid or the grammar does not parse (llama_fork_common_last_error).
    LLAMA_API struct llama_fork_common_sampler * llama_fork_common_sampler_init(const struct llama_model * model,
                                                                  const struct llama_fork_common_sampling_params * params);
    LLAMA_API void llama_fork_common_sampler_free(struct llama_fork_common_sampler * smpl);

    // Samples from the logits of batch position idx (as llama_get_logits_ith) with
    // common_sampler_sample and accepts the token. Returns an enum llama_fork_sample_status
    // (llama-fork.h): no token is sampled when the grammar admits none. common samples NaN logits
    // without complaint: check them first (llama_fork_logits_finite), as the Java session does
    // after every decode.
    LLAMA_API int32_t llama_fork_common_sampler_sample(struct llama_fork_common_sampler * smpl, struct llama_context * ctx,
                                                      int32_t idx, llama_token * token);

    // Feeds a token to the sampler's history (penalties, DRY) without the grammar, as common does
    // with prompt tokens.
    LLAMA_API void llama_fork_common_sampler_accept_prompt(struct llama_fork_common_sampler * smpl, llama_token token);

    // Chat templates as llama-server renders them: the model's Jinja template (or the override)
    // through common's template engine, with its built-in fallbacks.
    struct llama_fork_common_chat_templates;

    // tmpl_override: a Jinja template or a built-in template name; NULL for the model's own.
    LLAMA_API struct llama_fork_common_chat_templates * llama_fork_common_chat_templates_init(
            const struct llama_model * model, const char * tmpl_override);
    LLAMA_API void llama_fork_common_chat_templates_free(struct llama_fork_common_chat_templates * tmpls);

    // The source of the default template (to free with llama_fork_common_string_free).
    LLAMA_API char * llama_fork_common_chat_templates_source(const struct llama_fork_common_chat_templates * tmpls);

    // Renders a chat request with common_chat_templates_apply. The request is JSON with the fields
    // llama-server reads from an OpenAI chat request: "messages" (OpenAI messages, tool calls and
    // tool results included), "tools", "tool_choice" ("auto", "required", "none"),
    // "parallel_tool_calls", "add_generation_prompt", "enable_thinking", "reasoning_format"
    // ("none", "auto", "deepseek"), "json_schema", "grammar", "chat_template_kwargs", and "now"
    // (seconds since the epoch, for templates that print the date). Returns JSON (to free with
    // llama_fork_common_string_free): "prompt", "format", "format_name", "grammar",
    // "grammar_lazy", "grammar_triggers" ([{"type", "value", "token"}], types as
    // llama_fork_common_grammar_trigger_type), "preserved_tokens", "additional_stops",
    // "generation_prompt", "parser", "supports_thinking", "thinking_start_tag",
    // "thinking_end_tags", "reasoning_format". NULL on error.
    LLAMA_API char * llama_fork_common_chat_apply(const struct llama_fork_common_chat_templates * tmpls, const char * request);

    // Parses generated text into an OpenAI assistant message with common_chat_parse: params is the
    // JSON llama_fork_common_chat_apply returned (its "format", "parser", "generation_prompt",
    // "reasoning_format"; "parse_tool_calls" false keeps calls as text). Returns JSON
    // {"role", "content", "reasoning_content", "tool_calls": [{"type", "id", "function":
    // {"name", "arguments"}}]} (to free with llama_fork_common_string_free), NULL on error.
    // is_partial: the text may stop mid-message (streaming).
    LLAMA_API char * llama_fork_common_chat_parse(const char * params, const char * text, bool is_partial);

#ifdef __cplusplus
}
#endif

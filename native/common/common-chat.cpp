#include "common-errors.h"

#include "llama-fork-common.h"

#include "chat.h"
#include "json.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

using ojson = nlohmann::ordered_json;

struct llama_fork_common_chat_templates {
    common_chat_templates_ptr tmpls;
};

llama_fork_common_chat_templates * llama_fork_common_chat_templates_init(const llama_model * model, const char * tmpl_override) {
    return fork_common::guarded<llama_fork_common_chat_templates *>(nullptr, [&]() -> llama_fork_common_chat_templates * {
        if (model == nullptr) {
            throw std::invalid_argument("the model is NULL");
        }
        auto t = common_chat_templates_init(model, tmpl_override != nullptr ? tmpl_override : "");
        if (!t) {
            throw std::runtime_error("no chat template could be built for this model");
        }
        return new llama_fork_common_chat_templates{std::move(t)};
    });
}

void llama_fork_common_chat_templates_free(llama_fork_common_chat_templates * tmpls) {
    delete tmpls;
}

char * llama_fork_common_chat_templates_source(const llama_fork_common_chat_templates * tmpls) {
    return fork_common::guarded<char *>(nullptr, [&]() -> char * {
        if (tmpls == nullptr) {
            throw std::invalid_argument("the templates are NULL");
        }
        return fork_common::copy_string(common_chat_templates_source(tmpls->tmpls.get()));
    });
}

// The request fields llama-server reads for common_chat_templates_apply (oaicompat_chat_params_parse).
static common_chat_templates_inputs inputs_of(const ojson & body) {
    common_chat_templates_inputs in;
    if (!body.contains("messages") || !body.at("messages").is_array()) {
        throw std::invalid_argument("'messages' must be an array");
    }
    in.messages = common_chat_msgs_parse_oaicompat(common_json::parse(body.at("messages").dump()));
    if (body.contains("tools") && !body.at("tools").is_null()) {
        in.tools = common_chat_tools_parse_oaicompat(common_json::parse(body.at("tools").dump()));
    }
    in.tool_choice = common_chat_tool_choice_parse_oaicompat(body.value("tool_choice", std::string("auto")));
    in.parallel_tool_calls = body.value("parallel_tool_calls", false);
    in.add_generation_prompt = body.value("add_generation_prompt", true);
    in.enable_thinking = body.value("enable_thinking", true);
    in.reasoning_format = common_reasoning_format_from_name(body.value("reasoning_format", std::string("none")));
    if (body.contains("json_schema") && !body.at("json_schema").is_null()) {
        in.json_schema = body.at("json_schema").dump();
    }
    in.grammar = body.value("grammar", std::string());
    if (!in.json_schema.empty() && !in.grammar.empty()) {
        throw std::invalid_argument("set a grammar or a JSON schema, not both");
    }
    if (body.contains("chat_template_kwargs")) {
        for (const auto & item : body.at("chat_template_kwargs").items()) {
            in.chat_template_kwargs[item.key()] = item.value().dump();
        }
    }
    if (body.contains("now")) {
        // a fixed date for templates that print today's date, so that renderings compare
        in.now = std::chrono::system_clock::time_point(std::chrono::seconds(body.at("now").get<int64_t>()));
    }
    return in;
}

char * llama_fork_common_chat_apply(const llama_fork_common_chat_templates * tmpls, const char * request) {
    return fork_common::guarded<char *>(nullptr, [&]() -> char * {
        if (tmpls == nullptr || request == nullptr) {
            throw std::invalid_argument("the templates or the request are NULL");
        }
        const ojson body = ojson::parse(request);
        const common_chat_templates_inputs in = inputs_of(body);
        const common_chat_params p = common_chat_templates_apply(tmpls->tmpls.get(), in);
        ojson out;
        out["prompt"] = p.prompt;
        out["format"] = (int) p.format;
        out["format_name"] = common_chat_format_name(p.format);
        out["grammar"] = p.grammar;
        out["grammar_lazy"] = p.grammar_lazy;
        out["grammar_triggers"] = ojson::array();
        for (const auto & t : p.grammar_triggers) {
            out["grammar_triggers"].push_back({{"type", (int) t.type}, {"value", t.value}, {"token", t.token}});
        }
        out["preserved_tokens"] = p.preserved_tokens;
        out["additional_stops"] = p.additional_stops;
        out["generation_prompt"] = p.generation_prompt;
        out["parser"] = p.parser;
        out["supports_thinking"] = p.supports_thinking;
        out["thinking_start_tag"] = p.thinking_start_tag;
        out["thinking_end_tags"] = p.thinking_end_tags;
        out["reasoning_format"] = body.value("reasoning_format", std::string("none"));
        return fork_common::copy_string(out.dump());
    });
}

char * llama_fork_common_chat_parse(const char * params, const char * text, bool is_partial) {
    return fork_common::guarded<char *>(nullptr, [&]() -> char * {
        if (params == nullptr || text == nullptr) {
            throw std::invalid_argument("the parameters or the text are NULL");
        }
        const ojson p = ojson::parse(params);
        common_chat_parser_params pp;
        pp.format = (common_chat_format) p.value("format", 0);
        if (pp.format < 0 || pp.format >= COMMON_CHAT_FORMAT_COUNT) {
            throw std::invalid_argument("unknown chat format " + std::to_string((int) pp.format));
        }
        pp.generation_prompt = p.value("generation_prompt", std::string());
        pp.reasoning_format = common_reasoning_format_from_name(p.value("reasoning_format", std::string("none")));
        pp.parse_tool_calls = p.value("parse_tool_calls", true);
        const std::string parser = p.value("parser", std::string());
        if (!parser.empty()) {
            pp.parser.load(parser);
        }
        const common_chat_msg msg = common_chat_parse(text, is_partial, pp);
        return fork_common::copy_string(msg.to_json_oaicompat().dump());
    });
}

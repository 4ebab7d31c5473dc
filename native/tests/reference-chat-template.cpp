// A chat request rendered by upstream's common library on the PRISTINE build, as llama-server
// renders it (common_chat_templates_init with the template text, the OpenAI messages and tools
// parsed by common, common_chat_templates_apply): the reference of the Java API's chat template
// tests, byte for byte. Prints the prompt; with --grammar, the grammar instead.
//
// usage: reference-chat-template MODEL.gguf TEMPLATE_FILE REQUEST.json [--grammar]
//   REQUEST.json: {"messages": [...], "tools": [...], "tool_choice": "auto",
//                  "add_generation_prompt": true, "enable_thinking": true, "now": SECONDS}
#include "chat.h"
#include "json.h"
#include "llama.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static std::string read_file(const char * path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf TEMPLATE_FILE REQUEST.json [--grammar]\n", argv[0]);
        return 2;
    }
    const bool print_grammar = argc > 4 && std::string(argv[4]) == "--grammar";
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mparams = llama_model_default_params();
    mparams.vocab_only = true;
    llama_model * model = llama_model_load_from_file(argv[1], mparams);
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    try {
        auto tmpls = common_chat_templates_init(model, read_file(argv[2]));
        const auto body = nlohmann::ordered_json::parse(read_file(argv[3]));
        common_chat_templates_inputs inputs;
        inputs.messages = common_chat_msgs_parse_oaicompat(common_json::parse(body.at("messages").dump()));
        if (body.contains("tools")) {
            inputs.tools = common_chat_tools_parse_oaicompat(common_json::parse(body.at("tools").dump()));
        }
        inputs.tool_choice = common_chat_tool_choice_parse_oaicompat(body.value("tool_choice", std::string("auto")));
        inputs.add_generation_prompt = body.value("add_generation_prompt", true);
        inputs.enable_thinking = body.value("enable_thinking", true);
        inputs.now = std::chrono::system_clock::time_point(std::chrono::seconds(body.value("now", (int64_t) 0)));
        const common_chat_params params = common_chat_templates_apply(tmpls.get(), inputs);
        const std::string & out = print_grammar ? params.grammar : params.prompt;
        fwrite(out.data(), 1, out.size(), stdout);
    } catch (const std::exception & e) {
        fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    llama_model_free(model);
    return 0;
}

// Training data: text files or chat JSONL rendered with a chat template, tokenized for a model.

#include "train.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string read_file(const char * path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, std::string("cannot open training file ") + path);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void tokenize_append(const llama_vocab * vocab, const std::string & text, bool parse_special, std::vector<llama_token> & out) {
    if (text.size() > (size_t) INT32_MAX) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "a training text is larger than 2 GiB");
    }
    const int32_t n = -llama_tokenize(vocab, text.data(), (int32_t) text.size(), nullptr, 0, true, parse_special);
    const size_t at = out.size();
    out.resize(at + std::max(n, 0));
    if (n > 0 && llama_tokenize(vocab, text.data(), (int32_t) text.size(), out.data() + at, n, true, parse_special) != n) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "tokenization failed");
    }
}

std::string render_chat(const char * tmpl, const nlohmann::json & line, const std::string & where) {
    if (!line.is_object() || !line.contains("messages") || !line["messages"].is_array() || line["messages"].empty()) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, where + ": expected {\"messages\": [{\"role\": ..., \"content\": ...}, ...]}");
    }
    std::vector<std::string> roles, contents;
    for (const auto & m : line["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") || !m["content"].is_string()) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, where + ": every message needs string \"role\" and \"content\"");
        }
        roles.push_back(m["role"].get<std::string>());
        contents.push_back(m["content"].get<std::string>());
    }
    std::vector<llama_chat_message> chat;
    size_t size = 0;
    for (size_t i = 0; i < roles.size(); ++i) {
        chat.push_back({roles[i].c_str(), contents[i].c_str()});
        size += roles[i].size() + contents[i].size();
    }
    std::vector<char> buf(2 * size + 256);
    int32_t n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), false, buf.data(), (int32_t) buf.size());
    if (n > (int32_t) buf.size()) {
        buf.resize(n);
        n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), false, buf.data(), (int32_t) buf.size());
    }
    if (n < 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, where + ": the chat template is not supported by llama_chat_apply_template");
    }
    return std::string(buf.data(), n);
}

} // namespace

struct llama_flexidepth_train_data * llama_flexidepth_train_data_load(const struct llama_model * model, const char * const * paths,
        int32_t n_paths, enum llama_flexidepth_data_format format, const char * chat_template, int32_t * status) {
    int32_t rc = LLAMA_FLEXIDEPTH_OK;
    try {
        if (model == nullptr || paths == nullptr || n_paths <= 0) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "a model and at least one training file are needed");
        }
        if (format != LLAMA_FLEXIDEPTH_DATA_TEXT && format != LLAMA_FLEXIDEPTH_DATA_CHAT_JSONL) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "unknown data format " + std::to_string((int) format));
        }
        const llama_vocab * vocab = llama_model_get_vocab(model);
        const char * tmpl = chat_template ? chat_template : llama_model_chat_template(model, nullptr);
        if (format == LLAMA_FLEXIDEPTH_DATA_CHAT_JSONL && tmpl == nullptr) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "the model has no chat template; name one (for example \"chatml\") or train on plain text");
        }
        auto data = std::make_unique<llama_flexidepth_train_data>();
        for (int32_t i = 0; i < n_paths; ++i) {
            const std::string text = read_file(paths[i]);
            if (format == LLAMA_FLEXIDEPTH_DATA_TEXT) {
                tokenize_append(vocab, text, false, data->tokens);
                continue;
            }
            std::istringstream lines(text);
            std::string line;
            for (int64_t no = 1; std::getline(lines, line); ++no) {
                if (line.find_first_not_of(" \t\r") == std::string::npos) {
                    continue;
                }
                const std::string where = std::string(paths[i]) + ":" + std::to_string(no);
                nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
                if (j.is_discarded()) {
                    flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, where + ": not valid JSON");
                }
                tokenize_append(vocab, render_chat(tmpl, j, where), true, data->tokens);
            }
        }
        if (data->tokens.size() < 2) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "the training files contain no text");
        }
        if (status) *status = LLAMA_FLEXIDEPTH_OK;
        return data.release();
    } catch (const flexidepth_error & e) {
        rc = flexidepth_fail(e.status, e.message);
    } catch (const std::exception & e) {
        rc = flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_DATA, std::string("cannot read training data: ") + e.what());
    }
    if (status) *status = rc;
    return nullptr;
}

struct llama_flexidepth_train_data * llama_flexidepth_train_data_from_tokens(const llama_token * tokens, int64_t n_tokens) {
    if (tokens == nullptr || n_tokens < 0) {
        flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "tokens must not be NULL");
        return nullptr;
    }
    auto data = new llama_flexidepth_train_data();
    data->tokens.assign(tokens, tokens + n_tokens);
    return data;
}

int64_t llama_flexidepth_train_data_n_tokens(const struct llama_flexidepth_train_data * data) {
    return data ? (int64_t) data->tokens.size() : 0;
}

void llama_flexidepth_train_data_free(struct llama_flexidepth_train_data * data) {
    delete data;
}

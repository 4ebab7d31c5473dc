// Training FlexiDepth plug-ins (llama-flexidepth-train.h) on ggml's optimizer.
//
// A new plug-in is first written as a checkpoint file and loaded with llama_flexidepth_load, so
// that training, resuming and the runtime share one loader and one set of checks. The plug-in is
// attached to a private context in training mode: the graph is built densely and adds
// alpha * L_skip as an extra loss term (flexidepth-graph.cpp, patch 0007 in ggml-opt), and
// llama_opt_epoch runs one optimizer step per sequence.

#include "llama-flexidepth-train.h"

#include "flexidepth-graph.h"
#include "flexidepth-plugin.h"

#include "llama-impl.h"
#include "llama-model.h"

#include "ggml-backend.h"
#include "ggml-opt.h"
#include "gguf.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

struct llama_flexidepth_train_data {
    std::vector<llama_token> tokens;
};

// a named namespace: the library builds in unity mode, where anonymous namespaces of
// different files merge
namespace flexidepth_training {
namespace {

constexpr const char * KEY_TRAIN_STEP   = "flexidepth.train.step";
constexpr const char * KEY_TRAIN_TOKENS = "flexidepth.train.tokens";
constexpr const char * KEY_TRAIN_SEED   = "flexidepth.train.seed";
constexpr const char * KEY_TRAIN_CTX    = "flexidepth.train.context_length";
constexpr const char * KEY_TRAIN_ALPHA  = "flexidepth.train.alpha";

// ---------------------------------------------------------------------------------------------
// data

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

// ---------------------------------------------------------------------------------------------
// plug-in files

struct plugin_header {
    std::string arch;
    int32_t n_embd = 0, n_layer = 0, router_size = 0, adapter_size = 0;
    float threshold = 0.5f;
    std::vector<int32_t> routed;
};

struct train_position {
    uint64_t step = 0, tokens = 0;
    uint32_t seed = 0, n_ctx = 0;
    float alpha = 0.0f;
};

// Writes tensors (host data) as a plug-in, atomically: a reader never sees half a file.
void write_plugin(const std::string & path, const plugin_header & h, const std::vector<ggml_tensor *> & tensors,
                  const train_position & pos) {
    using namespace flexidepth_format;
    gguf_context_ptr g { gguf_init_empty() };
    gguf_set_val_str(g.get(), KEY_GENERAL_TYPE, "adapter");
    gguf_set_val_str(g.get(), KEY_ADAPTER_TYPE, "flexidepth");
    gguf_set_val_str(g.get(), KEY_ARCH, h.arch.c_str());
    gguf_set_val_str(g.get(), "general.name", "FlexiDepth plug-in (trained by llama_flexidepth_train)");
    gguf_set_val_u32(g.get(), KEY_BLOCK_COUNT, (uint32_t) h.n_layer);
    gguf_set_val_u32(g.get(), KEY_EMBD, (uint32_t) h.n_embd);
    gguf_set_val_u32(g.get(), KEY_ROUTER_SIZE, (uint32_t) h.router_size);
    gguf_set_val_u32(g.get(), KEY_ADAPTER_SIZE, (uint32_t) h.adapter_size);
    gguf_set_val_f32(g.get(), KEY_THRESHOLD, h.threshold);
    gguf_set_arr_data(g.get(), KEY_ROUTED_LAYERS, GGUF_TYPE_INT32, h.routed.data(), h.routed.size());
    gguf_set_val_u64(g.get(), KEY_TRAIN_STEP, pos.step);
    gguf_set_val_u64(g.get(), KEY_TRAIN_TOKENS, pos.tokens);
    gguf_set_val_u32(g.get(), KEY_TRAIN_SEED, pos.seed);
    gguf_set_val_u32(g.get(), KEY_TRAIN_CTX, pos.n_ctx);
    gguf_set_val_f32(g.get(), KEY_TRAIN_ALPHA, pos.alpha);
    for (ggml_tensor * t : tensors) {
        gguf_add_tensor(g.get(), t);
    }
    const std::string tmp = path + ".tmp";
    if (!gguf_write_to_file(g.get(), tmp.c_str(), false)) {
        std::remove(tmp.c_str());
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, "cannot write " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        std::remove(tmp.c_str());
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_IO, "cannot rename " + tmp + " to " + path);
    }
}

std::vector<ggml_tensor *> plugin_tensors(const llama_flexidepth & fd) {
    std::vector<ggml_tensor *> out;
    for (const auto & L : fd.layers) {
        for (ggml_tensor * t : {L.router_down, L.router_norm, L.router_up, L.router_head, L.router_bias,
                                L.adapter_gate, L.adapter_up, L.adapter_down}) {
            if (t != nullptr) {
                out.push_back(t);
            }
        }
    }
    return out;
}

// Copies a loaded plug-in's tensors to host memory and writes them.
void save_plugin(const std::string & path, const llama_flexidepth & fd, const train_position & pos) {
    const std::vector<ggml_tensor *> src = plugin_tensors(fd);
    size_t bytes = 0;
    for (ggml_tensor * t : src) {
        bytes += ggml_nbytes(t) + ggml_tensor_overhead();
    }
    ggml_init_params ip = { bytes + 1024, nullptr, false };
    ggml_context_ptr host { ggml_init(ip) };
    std::vector<ggml_tensor *> copies;
    for (ggml_tensor * t : src) {
        ggml_tensor * c = ggml_dup_tensor(host.get(), t);
        ggml_set_name(c, t->name);
        ggml_backend_tensor_get(t, c->data, 0, ggml_nbytes(t));
        copies.push_back(c);
    }
    plugin_header h;
    h.arch = fd.arch;
    h.n_embd = fd.n_embd;
    h.n_layer = fd.n_layer;
    h.router_size = fd.router_size;
    h.adapter_size = fd.adapter_size;
    h.threshold = fd.threshold;
    for (const auto & L : fd.layers) {
        h.routed.push_back(L.il);
    }
    write_plugin(path, h, copies, pos);
}

// A new plug-in that starts close to the base model: every router's logit is init_router_bias
// for every token (W_head = 0), so all layers run with g = sigmoid(bias) ~ 1, and the adapter's
// output projection is zero (like LoRA's B), so a skip starts as the identity. The other matrices
// are uniform in +-1/sqrt(fan_in), giving the router and adapter gradients to grow from.
void write_initial_plugin(const std::string & path, const llama_model & model, const llama_flexidepth_train_params & p) {
    plugin_header h;
    char arch[64] = {0};
    llama_model_meta_val_str(&model, "general.architecture", arch, sizeof(arch));
    h.arch = arch;
    h.n_embd = llama_model_n_embd(&model);
    h.n_layer = llama_model_n_layer(&model);
    const int32_t n_ff = (int32_t) model.hparams.n_ff(0);
    h.router_size  = p.router_size  > 0 ? p.router_size  : std::max(1, h.n_embd / 16);
    h.adapter_size = p.adapter_size > 0 ? p.adapter_size : std::max(1, n_ff / 16);
    h.threshold = p.threshold;
    if (p.routed_layers != nullptr && p.n_routed_layers > 0) {
        h.routed.assign(p.routed_layers, p.routed_layers + p.n_routed_layers);
    } else {
        for (int32_t il = h.n_layer / 2; il < h.n_layer; ++il) {
            h.routed.push_back(il);
        }
    }
    for (size_t i = 0; i < h.routed.size(); ++i) {
        if (h.routed[i] < 0 || h.routed[i] >= h.n_layer || (i > 0 && h.routed[i] <= h.routed[i - 1])) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "routed layers must be ascending, distinct and in [0, " + std::to_string(h.n_layer) + ")");
        }
    }
    if (h.routed.empty()) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "no layer to route");
    }
    const int64_t d = h.n_embd, dr = h.router_size, da = h.adapter_size;
    const size_t per_layer = (size_t) (2 * d * dr + dr + d + 1 + 3 * d * da) * sizeof(float);
    ggml_init_params ip = { h.routed.size() * (per_layer + 9 * ggml_tensor_overhead()) + 1024, nullptr, false };
    ggml_context_ptr host { ggml_init(ip) };
    std::mt19937 rng(p.seed);
    std::vector<ggml_tensor *> tensors;
    auto make = [&](int il, const char * name, const char * suffix, int64_t ne0, int64_t ne1, float bound, float value) {
        ggml_tensor * t = ne1 > 0 ? ggml_new_tensor_2d(host.get(), GGML_TYPE_F32, ne0, ne1) : ggml_new_tensor_1d(host.get(), GGML_TYPE_F32, ne0);
        ggml_format_name(t, "blk.%d.%s.%s", il, name, suffix);
        float * x = (float *) t->data;
        std::uniform_real_distribution<float> u(-bound, bound);
        for (int64_t i = 0; i < ggml_nelements(t); ++i) {
            x[i] = bound > 0.0f ? u(rng) : value;
        }
        tensors.push_back(t);
    };
    for (int32_t il : h.routed) {
        make(il, "fd_router_down",  "weight", d,  dr, 1.0f / std::sqrt((float) d),  0.0f);
        make(il, "fd_router_norm",  "weight", dr, 0,  0.0f, 1.0f);
        make(il, "fd_router_up",    "weight", dr, d,  1.0f / std::sqrt((float) dr), 0.0f);
        make(il, "fd_router_head",  "weight", d,  1,  0.0f, 0.0f);
        make(il, "fd_router_head",  "bias",   1,  0,  0.0f, p.init_router_bias);
        make(il, "fd_adapter_gate", "weight", d,  da, 1.0f / std::sqrt((float) d),  0.0f);
        make(il, "fd_adapter_up",   "weight", d,  da, 1.0f / std::sqrt((float) d),  0.0f);
        make(il, "fd_adapter_down", "weight", da, d,  0.0f, 0.0f);
    }
    train_position pos;
    pos.seed = p.seed;
    pos.n_ctx = (uint32_t) p.n_ctx;
    pos.alpha = p.alpha;
    write_plugin(path, h, tensors, pos);
}

bool file_exists(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    return f.good();
}

train_position read_position(const std::string & path) {
    ggml_context * meta = nullptr;
    gguf_init_params ip = { true, &meta };
    gguf_context_ptr g { gguf_init_from_file(path.c_str(), ip) };
    ggml_context_ptr meta_ptr { meta };
    if (!g) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, path + " is not a readable GGUF checkpoint");
    }
    train_position pos;
    const int64_t ks = gguf_find_key(g.get(), KEY_TRAIN_STEP);
    const int64_t kt = gguf_find_key(g.get(), KEY_TRAIN_TOKENS);
    const int64_t ke = gguf_find_key(g.get(), KEY_TRAIN_SEED);
    const int64_t kc = gguf_find_key(g.get(), KEY_TRAIN_CTX);
    if (ks < 0 || kt < 0 || ke < 0 || kc < 0) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, path + " is a plug-in but not a training checkpoint (no " + KEY_TRAIN_STEP + ")");
    }
    // gguf_get_val_* abort on another type: check first
    if (gguf_get_kv_type(g.get(), ks) != GGUF_TYPE_UINT64 || gguf_get_kv_type(g.get(), kt) != GGUF_TYPE_UINT64 ||
        gguf_get_kv_type(g.get(), ke) != GGUF_TYPE_UINT32 || gguf_get_kv_type(g.get(), kc) != GGUF_TYPE_UINT32) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_FORMAT, path + " has flexidepth.train.* keys of unexpected types");
    }
    pos.step = gguf_get_val_u64(g.get(), ks);
    pos.tokens = gguf_get_val_u64(g.get(), kt);
    pos.seed = gguf_get_val_u32(g.get(), ke);
    pos.n_ctx = gguf_get_val_u32(g.get(), kc);
    return pos;
}

// ---------------------------------------------------------------------------------------------
// training loop

struct trainer {
    const llama_flexidepth_train_params * params = nullptr;
    llama_flexidepth_binding * binding = nullptr;
    int64_t step = 0, n_steps = 0;
    int32_t n_layer = 0;
    // of the last step, read back by the epoch callback
    float loss_skip = 0.0f, mean_layers = 0.0f;
    std::vector<float> gates;
};

thread_local trainer * current = nullptr;

float learning_rate(const trainer & t) {
    const auto & p = *t.params;
    if (t.step < p.warmup_steps) {
        return p.learning_rate * (float) (t.step + 1) / (float) p.warmup_steps;
    }
    const double span = std::max<int64_t>(1, t.n_steps - p.warmup_steps);
    const double progress = std::min(1.0, (double) (t.step - p.warmup_steps) / span);
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
    return (float) (p.learning_rate * (p.min_lr_ratio + (1.0 - p.min_lr_ratio) * cosine));
}

ggml_opt_optimizer_params optimizer_params(void * ud) {
    const trainer & t = *(const trainer *) ud;
    ggml_opt_optimizer_params op = ggml_opt_get_default_optimizer_params(nullptr);
    op.adamw.alpha = learning_rate(t);
    op.adamw.wd = t.params->weight_decay;
    return op;
}

// Only the plug-in's tensors are trainable; every base tensor stays frozen.
bool is_plugin_tensor(const ggml_tensor * tensor, void * ud) {
    const llama_flexidepth * fd = (const llama_flexidepth *) ud;
    for (const auto & L : fd->layers) {
        for (const ggml_tensor * t : {L.router_down, L.router_norm, L.router_up, L.router_head, L.router_bias,
                                      L.adapter_gate, L.adapter_up, L.adapter_down}) {
            if (t == tensor) {
                return true;
            }
        }
    }
    return false;
}

// Called by llama_opt_epoch after each step's compute, while its graph is still allocated.
void after_step(bool train, ggml_opt_context_t, ggml_opt_dataset_t, ggml_opt_result_t, int64_t, int64_t, int64_t) {
    trainer * t = current;
    if (t == nullptr || !train) {
        return;
    }
    const auto & gates = t->binding->train_gates;
    if (gates.empty()) {
        return;
    }
    const int64_t n = ggml_nelements(gates[0]);
    t->gates.resize(n * gates.size());
    for (size_t r = 0; r < gates.size(); ++r) {
        ggml_backend_tensor_get(gates[r], t->gates.data() + r * n, 0, n * sizeof(float));
    }
    const float tau = t->binding->tau;
    double skip = 0.0, ran = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        double sum_g = 0.0;
        for (size_t r = 0; r < gates.size(); ++r) {
            const float g = t->gates[r * n + i];
            sum_g += g;
            ran += g > tau ? 1.0 : 0.0;
        }
        skip += sum_g * sum_g;
    }
    t->loss_skip = (float) (skip / n);
    t->mean_layers = (float) (t->n_layer - (int64_t) gates.size()) + (float) (ran / n);
}

struct train_resources {
    llama_flexidepth * fd = nullptr;
    llama_context * ctx = nullptr;
    ggml_opt_dataset_t dataset = nullptr;
    ggml_opt_result_t result = nullptr;
    llama_model * model = nullptr;
    uint32_t n_ctx_train = 0;

    ~train_resources() {
        current = nullptr;
        if (result) ggml_opt_result_free(result);
        if (dataset) ggml_opt_dataset_free(dataset);
        if (ctx) llama_free(ctx);   // detaches the plug-in
        if (fd) llama_flexidepth_free(fd);
        if (model) model->hparams.n_ctx_train = n_ctx_train; // llama_opt_init overwrote it
    }
};

// Weights the CPU backend keeps in an extra buffer type (repacked layouts such as CPU_REPACK)
// have no backward pass: the gradient through a frozen matrix reads it in its plain layout.
void check_base_buffers(const llama_model & model) {
    std::set<ggml_backend_buffer_type_t> extra;
    if (ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU)) {
        auto get_extra = (ggml_backend_dev_get_extra_bufts_t)
            ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts");
        for (ggml_backend_buffer_type_t * b = get_extra ? get_extra(cpu) : nullptr; b && *b; ++b) {
            extra.insert(*b);
        }
    }
    for (const auto & [name, t] : model.tensors_by_name) {
        if (t->buffer && extra.count(ggml_backend_buffer_get_type(t->buffer))) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the base model's weights are repacked for the CPU ("
                 + std::string(ggml_backend_buft_name(ggml_backend_buffer_get_type(t->buffer))) + ", e.g. " + name
                 + "), which has no backward pass; load the model with use_extra_bufts = false (Java: ModelOptions.repackWeights(false))");
        }
    }
}

void check_params(const llama_flexidepth_train_params & p) {
    auto bad = [](const std::string & m) { flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, m); };
    if (!(p.alpha >= 0.0f) || !std::isfinite(p.alpha)) bad("alpha must be >= 0");
    if (!(p.learning_rate > 0.0f) || !std::isfinite(p.learning_rate)) bad("the learning rate must be > 0");
    if (!(p.min_lr_ratio >= 0.0f && p.min_lr_ratio <= 1.0f)) bad("min_lr_ratio must be in [0, 1]");
    if (!(p.weight_decay >= 0.0f && p.weight_decay < 1.0f)) bad("weight decay must be in [0, 1)");
    if (!(p.threshold >= 0.0f && p.threshold <= 1.0f)) bad("the threshold must be in [0, 1]");
    if (!std::isfinite(p.init_router_bias)) bad("the initial router bias must be finite");
    if (p.warmup_steps < 0) bad("warm-up steps must be >= 0");
    // llama.cpp pads every context to a multiple of 256, and llama_opt trains on whole contexts
    if (p.n_ctx < 256 || p.n_ctx % 256 != 0) bad("the context length must be a positive multiple of 256, was " + std::to_string(p.n_ctx));
    if (p.token_budget < 0) bad("the token budget must be >= 0");
    if (p.token_budget == 0 && p.n_epochs <= 0) bad("give a token budget or at least one epoch");
    if (p.router_size < 0 || p.adapter_size < 0) bad("router and adapter sizes must be >= 0 (0: default)");
    if (p.checkpoint_every < 0) bad("checkpoint_every must be >= 0 (0: only when cancelled)");
    if (p.n_routed_layers < 0 || (p.n_routed_layers > 0 && p.routed_layers == nullptr)) bad("invalid routed layer list");
}

int32_t train(llama_model * model, const llama_flexidepth_train_data & data, const std::string & output,
              const llama_flexidepth_train_params & p) {
    check_params(p);
    check_base_buffers(*model);
    // everything that can be refused is checked before any file is written
    const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    for (llama_token tok : data.tokens) {
        if (tok < 0 || tok >= n_vocab) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "token " + std::to_string(tok) + " is outside the model's vocabulary of " + std::to_string(n_vocab));
        }
    }

    const int64_t n_ctx = p.n_ctx;
    const int64_t n_seq = ((int64_t) data.tokens.size() - 1) / n_ctx;
    if (n_seq < 1) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "the training data has " + std::to_string(data.tokens.size())
             + " tokens; at least context + 1 = " + std::to_string(n_ctx + 1) + " are needed");
    }

    if (p.n_ctx > (int32_t) llama_model_n_ctx_train(model) && llama_model_n_ctx_train(model) > 0) {
        LLAMA_LOG_WARN("flexidepth-train: context %d is longer than the model was trained with (%u)\n", p.n_ctx, llama_model_n_ctx_train(model));
    }
    const std::string checkpoint = p.checkpoint_path ? p.checkpoint_path : output + ".checkpoint";

    train_position pos;
    if (p.resume && file_exists(checkpoint)) {
        pos = read_position(checkpoint);
        if (pos.seed != p.seed || pos.n_ctx != (uint32_t) p.n_ctx) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "the checkpoint " + checkpoint + " was made with seed " + std::to_string(pos.seed)
                 + " and context " + std::to_string(pos.n_ctx) + "; resume with the same values");
        }
        LLAMA_LOG_INFO("flexidepth-train: resuming %s at step %llu\n", checkpoint.c_str(), (unsigned long long) pos.step);
    } else {
        write_initial_plugin(checkpoint, *model, p);
        pos.seed = p.seed;
        pos.n_ctx = (uint32_t) p.n_ctx;
    }
    pos.alpha = p.alpha;

    train_resources res;
    int32_t status = 0;
    res.fd = llama_flexidepth_load(model, checkpoint.c_str(), &status);
    if (res.fd == nullptr) {
        flexidepth_throw(status, llama_flexidepth_last_error());
    }
    for (ggml_tensor * t : plugin_tensors(*res.fd)) {
        if (t->type != GGML_TYPE_F32) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_TENSOR, std::string("training needs F32 plug-in tensors; ") + t->name + " is " + ggml_type_name(t->type));
        }
    }
    res.fd->threshold = p.threshold;

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) n_ctx;
    cp.n_batch = cp.n_ubatch = (uint32_t) n_ctx;
    cp.n_seq_max = 1;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED; // flash attention has no backward pass
    cp.type_k = cp.type_v = GGML_TYPE_F32;               // nor has OUT_PROD with an F16 cache
    const int32_t n_threads = p.n_threads > 0 ? p.n_threads : (int32_t) std::max(1u, std::thread::hardware_concurrency());
    cp.n_threads = cp.n_threads_batch = n_threads;
    res.ctx = llama_init_from_model(model, cp);
    if (res.ctx == nullptr) {
        flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_ALLOC, "cannot create a training context of " + std::to_string(n_ctx) + " tokens");
    }
    if ((status = flexidepth_attach(res.ctx, res.fd, p.threshold, true, p.alpha)) != LLAMA_FLEXIDEPTH_OK) {
        flexidepth_throw(status, llama_flexidepth_last_error());
    }
    trainer t;
    t.params = &p;
    t.binding = flexidepth_binding(res.ctx);
    t.n_layer = llama_model_n_layer(model);
    t.n_steps = p.token_budget > 0 ? (p.token_budget + n_ctx - 1) / n_ctx : (int64_t) p.n_epochs * n_seq;

    res.model = model;
    res.n_ctx_train = model->hparams.n_ctx_train;
    llama_opt_params op = {};
    op.n_ctx_train = (uint32_t) n_ctx;
    op.param_filter = is_plugin_tensor;
    op.param_filter_ud = res.fd;
    op.get_opt_pars = optimizer_params;
    op.get_opt_pars_ud = &t;
    op.optimizer_type = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
    llama_opt_init(res.ctx, model, op);
    // llama_opt_init offers the filter the base model's tensors (all refused); the plug-in's own
    // tensors live outside the model, so the same filter is applied to them here
    for (ggml_tensor * tensor : plugin_tensors(*res.fd)) {
        if (is_plugin_tensor(tensor, res.fd)) {
            ggml_set_param(tensor);
        }
    }

    res.dataset = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, n_ctx, n_ctx, 1, 1);
    res.result = ggml_opt_result_init();
    int32_t * inputs = (int32_t *) ggml_opt_dataset_data(res.dataset)->data;
    int32_t * labels = (int32_t *) ggml_opt_dataset_labels(res.dataset)->data;

    LLAMA_LOG_INFO("flexidepth-train: %lld steps of %lld tokens (%lld sequences in the data), %zu routed layers, alpha %g, lr %g\n",
                   (long long) t.n_steps, (long long) n_ctx, (long long) n_seq, res.fd->layers.size(), p.alpha, p.learning_rate);

    std::vector<int64_t> order(n_seq);
    int64_t order_epoch = -1;
    const auto t_start = std::chrono::steady_clock::now();
    const int64_t first_step = (int64_t) pos.step;
    current = &t;
    for (t.step = first_step; t.step < t.n_steps; ++t.step) {
        // the order of an epoch depends only on the seed and the epoch, so a resumed run
        // continues with exactly the sequences it would have seen
        const int64_t epoch = t.step / n_seq;
        if (epoch != order_epoch) {
            std::iota(order.begin(), order.end(), 0);
            std::mt19937_64 rng((uint64_t) p.seed * 1000003ull + (uint64_t) epoch);
            std::shuffle(order.begin(), order.end(), rng);
            order_epoch = epoch;
        }
        const llama_token * seq = data.tokens.data() + order[t.step % n_seq] * n_ctx;
        std::copy(seq, seq + n_ctx, inputs);
        std::copy(seq + 1, seq + 1 + n_ctx, labels);

        ggml_opt_result_reset(res.result);
        llama_opt_epoch(res.ctx, res.dataset, res.result, nullptr, 1, after_step, nullptr);
        double loss = 0.0;
        ggml_opt_result_loss(res.result, &loss, nullptr);
        if (!std::isfinite(loss)) {
            flexidepth_throw(LLAMA_FLEXIDEPTH_ERR_DATA, "the loss diverged at step " + std::to_string(t.step) + "; lower the learning rate");
        }

        pos.step = (uint64_t) t.step + 1;
        pos.tokens += (uint64_t) n_ctx;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
        const double tps = (double) (t.step + 1 - first_step) * n_ctx / std::max(seconds, 1e-9);
        llama_flexidepth_train_progress pr = {};
        pr.step = t.step + 1;
        pr.n_steps = t.n_steps;
        pr.n_tokens_done = (int64_t) pos.tokens;
        pr.loss_skip = t.loss_skip;
        pr.loss_lm = (float) (loss - p.alpha * t.loss_skip);
        pr.mean_layers = t.mean_layers;
        pr.learning_rate = learning_rate(t);
        pr.tokens_per_second = tps;
        pr.eta_seconds = (double) (t.n_steps - t.step - 1) * n_ctx / std::max(tps, 1e-9);

        const bool go_on = p.callback == nullptr || p.callback(&pr, p.callback_user_data);
        if (!go_on) {
            save_plugin(checkpoint, *res.fd, pos);
            return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_CANCELLED, "training cancelled at step " + std::to_string(pos.step)
                                   + "; the checkpoint " + checkpoint + " resumes it");
        }
        if (p.checkpoint_every > 0 && pos.step % (uint64_t) p.checkpoint_every == 0 && (int64_t) pos.step < t.n_steps) {
            save_plugin(checkpoint, *res.fd, pos);
        }
    }
    save_plugin(output, *res.fd, pos);
    if (p.checkpoint_path == nullptr) {
        // the output resumes as well as the default checkpoint did; a named one is the caller's
        std::remove(checkpoint.c_str());
    }
    return LLAMA_FLEXIDEPTH_OK;
}

} // namespace
} // namespace flexidepth_training

using namespace flexidepth_training;

struct llama_flexidepth_train_params llama_flexidepth_train_default_params(void) {
    llama_flexidepth_train_params p = {};
    p.routed_layers = nullptr;
    p.n_routed_layers = 0;
    p.router_size = 0;
    p.adapter_size = 0;
    p.threshold = 0.5f;
    p.init_router_bias = 3.0f;
    p.alpha = 3e-3f;
    p.learning_rate = 1e-4f;
    p.min_lr_ratio = 0.1f;
    p.weight_decay = 0.0f;
    p.warmup_steps = 10;
    p.n_ctx = 256;
    p.n_epochs = 1;
    p.token_budget = 0;
    p.seed = 42;
    p.n_threads = 0;
    p.checkpoint_path = nullptr;
    p.checkpoint_every = 50;
    p.resume = false;
    p.callback = nullptr;
    p.callback_user_data = nullptr;
    return p;
}

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

int32_t llama_flexidepth_train(struct llama_model * model, const struct llama_flexidepth_train_data * data,
                               const char * output_path, const struct llama_flexidepth_train_params * params) {
    if (model == nullptr || data == nullptr || output_path == nullptr || params == nullptr) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_INVALID_ARG, "model, data, output path and params must not be NULL");
    }
    try {
        return train(model, *data, output_path, *params);
    } catch (const flexidepth_error & e) {
        return flexidepth_fail(e.status, e.message);
    } catch (const std::exception & e) {
        return flexidepth_fail(LLAMA_FLEXIDEPTH_ERR_ALLOC, std::string("training failed: ") + e.what());
    }
}

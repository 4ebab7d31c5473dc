// A DMTD cycle head aborted by the abort callback (a cancelled generation) leaves the cache and
// the cycle as they were: the positions it had removed for its refill block are put back, and the
// next head decodes as if nothing had happened. Driven by DmtdReferenceTest with a random model.
//
// usage: dmtd-faults MODEL.gguf   (a llama model of 4 layers or more)
#include "llama.h"
#include "llama-dmtd.h"

#include <cmath>
#include <cstdio>
#include <vector>

static int failures = 0;

#define CHECK(cond, what) do { if (!(cond)) { fprintf(stderr, "FAIL: %s\n", what); failures++; } \
                               else { fprintf(stderr, "ok: %s\n", what); } } while (0)

static bool armed = false;
static bool abort_when_armed(void *) { return armed; }

static void quiet(enum ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static llama_context * new_context(llama_model * model) {
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = cp.n_ubatch = 64;
    cp.n_threads = cp.n_threads_batch = 2;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context * ctx = llama_init_from_model(model, cp);
    const llama_dmtd_params p = {2, 3, LLAMA_DMTD_PHASE_PROMPT_END, true};
    if (ctx == nullptr || llama_set_dmtd(ctx, &p) != 0) {
        fprintf(stderr, "setup failed: %s\n", llama_dmtd_last_error());
        return nullptr;
    }
    llama_set_abort_callback(ctx, abort_when_armed, nullptr);
    return ctx;
}

static int32_t step(llama_context * ctx, llama_token tok, llama_pos pos) {
    llama_batch b = llama_batch_init(1, 0, 1);
    b.token[0] = tok;
    b.pos[0] = pos;
    b.n_seq_id[0] = 1;
    b.seq_id[0][0] = 0;
    b.logits[0] = 1;
    b.n_tokens = 1;
    const int32_t rc = llama_dmtd_decode(ctx, b);
    llama_batch_free(b);
    return rc;
}

int main(int argc, char ** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, nullptr);
    llama_backend_init();
    ggml_backend_load_all();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_context * aborted = new_context(model);
    llama_context * clean = new_context(model);
    if (!aborted || !clean) {
        return 1;
    }
    std::vector<llama_token> prompt = {1, 300, 301, 302, 303};
    for (llama_context * ctx : {aborted, clean}) {
        llama_decode(ctx, llama_batch_get_one(prompt.data(), (int32_t) prompt.size()));
        step(ctx, 310, 5); // head
        step(ctx, 311, 6); // decoding only
        step(ctx, 312, 7); // decoding only: the next token is a head that refills 6 and 7
    }
    llama_memory_t mem = llama_get_memory(aborted);
    armed = true;
    const int32_t rc = step(aborted, 313, 8);
    armed = false;
    CHECK(rc == 2, "the aborted head step returns llama_decode's 2");
    CHECK(llama_memory_seq_pos_max(mem, 0) == 7, "the cache holds positions up to 7 again");
    CHECK(llama_dmtd_seq_pending(aborted, 0, nullptr, 0, nullptr) == 2, "and the cycle's two pending tokens");
    CHECK(step(aborted, 313, 8) == 0 && step(clean, 313, 8) == 0, "the head decodes afterwards");
    CHECK(llama_dmtd_full_step(aborted, 0) == 1, "as a full step");
    CHECK(step(aborted, 314, 9) == 0 && step(clean, 314, 9) == 0, "and the next token");
    const float * a = llama_get_logits_ith(aborted, llama_dmtd_output_index(aborted, 0));
    const float * b = llama_get_logits_ith(clean, llama_dmtd_output_index(clean, 0));
    float diff = 0.0f;
    for (int v = 0; v < n_vocab; ++v) {
        diff = std::fmax(diff, std::fabs(a[v] - b[v]));
    }
    fprintf(stderr, "max |logit diff| after the abort: %g\n", diff);
    CHECK(diff < 1e-4f, "logits as if the abort had not happened");
    llama_free(aborted);
    llama_free(clean);
    llama_model_free(model);
    return failures == 0 ? 0 : 1;
}

// Greedy generation printed as token ids, built against the PRISTINE upstream library: the
// reference that the Java API's golden tests compare with, token for token. It does what
// upstream's llama-simple does (tokenize with special tokens, one prompt batch, greedy sampler).
//
// Built a second time against the fork as fork-greedy (FORK_BACKENDS): the same program on the
// run-time dispatched CPU backend, loaded from $FLEXI_BACKEND_DIR (default: beside the program),
// which the tests run under qemu-user with older CPUs and compare with the pristine output.
//
// usage: reference-greedy MODEL.gguf N_PREDICT PROMPT
#include "llama.h"
#ifdef FORK_BACKENDS
#include "llama-fork.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

int main(int argc, char ** argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL.gguf N_PREDICT PROMPT\n", argv[0]);
        return 2;
    }
    const int n_predict = atoi(argv[2]);
    const char * prompt = argv[3];
    llama_log_set(quiet, NULL);
    llama_backend_init();
#ifdef FORK_BACKENDS
    char cpu_library[256];
    if (llama_fork_backend_load(getenv("FLEXI_BACKEND_DIR"), cpu_library, sizeof(cpu_library)) != LLAMA_FORK_BACKEND_OK) {
        fprintf(stderr, "no CPU backend library runs on this CPU\n");
        return 1;
    }
    fprintf(stderr, "CPU backend: %s\n", cpu_library);
#endif

    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_prompt = -llama_tokenize(vocab, prompt, (int) strlen(prompt), NULL, 0, true, true);
    llama_token * tokens = malloc(sizeof(llama_token) * n_prompt);
    if (llama_tokenize(vocab, prompt, (int) strlen(prompt), tokens, n_prompt, true, true) < 0) {
        fprintf(stderr, "cannot tokenize the prompt\n");
        return 1;
    }

    struct llama_context * ctx = llama_init_from_model(model, llama_context_default_params());
    struct llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
    llama_sampler_chain_add(smpl, llama_sampler_init_greedy());

    struct llama_batch batch = llama_batch_get_one(tokens, n_prompt);
    llama_token next;
    for (int i = 0; i < n_predict; i++) {
        if (llama_decode(ctx, batch) != 0) {
            fprintf(stderr, "decode failed\n");
            return 1;
        }
        next = llama_sampler_sample(smpl, ctx, -1);
        if (llama_vocab_is_eog(vocab, next)) {
            break;
        }
        printf("%s%d", i == 0 ? "" : " ", next);
        batch = llama_batch_get_one(&next, 1);
    }
    printf("\n");

    llama_sampler_free(smpl);
    llama_free(ctx);
    llama_model_free(model);
    free(tokens);
    return 0;
}

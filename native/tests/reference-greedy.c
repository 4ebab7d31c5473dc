// Greedy generation printed as token ids, built against the PRISTINE upstream library: the
// reference that the Java API's golden tests compare with, token for token. It does what
// upstream's llama-simple does (tokenize with special tokens, one prompt batch, greedy sampler).
//
// Built a second time against the fork as fork-greedy (FORK_BACKENDS): the same program on the
// run-time dispatched CPU backend, loaded from $FLEXI_BACKEND_DIR (default: beside the program),
// which the tests run under qemu-user with older CPUs and compare with the pristine output.
//
// usage: reference-greedy MODEL.gguf N_PREDICT PROMPT [--lora ADAPTER.gguf SCALE]...
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
    enum { MAX_LORAS = 8 };
    const char * lora_paths[MAX_LORAS];
    float lora_scales[MAX_LORAS];
    int n_loras = 0;
    for (int i = 4; i < argc; i += 3) {
        if (strcmp(argv[i], "--lora") != 0 || i + 2 >= argc || n_loras == MAX_LORAS) {
            argc = -1;
            break;
        }
        lora_paths[n_loras] = argv[i + 1];
        lora_scales[n_loras++] = (float) atof(argv[i + 2]);
    }
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf N_PREDICT PROMPT [--lora ADAPTER.gguf SCALE]...\n", argv[0]);
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
    struct llama_adapter_lora * loras[MAX_LORAS];
    for (int i = 0; i < n_loras; i++) {
        if (!(loras[i] = llama_adapter_lora_init(model, lora_paths[i]))) {
            fprintf(stderr, "cannot load LoRA adapter %s\n", lora_paths[i]);
            return 1;
        }
    }
    if (n_loras > 0 && llama_set_adapters_lora(ctx, loras, (size_t) n_loras, lora_scales) != 0) {
        fprintf(stderr, "cannot apply the LoRA adapters\n");
        return 1;
    }
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

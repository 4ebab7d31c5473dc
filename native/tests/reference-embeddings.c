// Embeddings from the PRISTINE upstream library, as upstream's embedding example computes them
// (every token an output, the context's pooling, a unified cache, the euclidean normalisation of
// common_embd_normalize or none), with the texts packed into decodes as the Java API packs them:
// as many whole texts as fit SEQUENCES sequences and a batch of 512 (rounded down to a multiple
// of SEQUENCES). The reference of the Java API's embedding tests. Prints one line per text: the
// pooled vector, or for pooling 0 (one text per decode) one line per token.
//
// usage: reference-embeddings MODEL.gguf POOLING NORMALIZE SEQUENCES TEXT...
//   POOLING: -1 the model's, 0 none, 1 mean, 2 cls, 3 last, 4 rank; NORMALIZE: 1 or 0
#include "llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char * text, void * user) {
    (void) user;
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static void print_vector(const float * v, int n, int normalize) {
    double norm = 0.0;
    for (int i = 0; i < n; i++) {
        norm += (double) v[i] * v[i];
    }
    norm = normalize ? sqrt(norm) : 1.0;
    for (int i = 0; i < n; i++) {
        printf("%s%.9g", i == 0 ? "" : " ", norm > 0.0 ? v[i] / norm : 0.0);
    }
    printf("\n");
}

int main(int argc, char ** argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s MODEL.gguf POOLING NORMALIZE SEQUENCES TEXT...\n", argv[0]);
        return 2;
    }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "cannot load %s\n", argv[1]);
        return 1;
    }
    const int normalize = atoi(argv[3]);
    const int n_seq = atoi(argv[4]);
    const int n_batch = 512 - 512 % n_seq;
    struct llama_context_params cparams = llama_context_default_params();
    cparams.embeddings = true;
    cparams.pooling_type = (enum llama_pooling_type) atoi(argv[2]);
    cparams.n_ctx = n_batch;
    cparams.n_batch = n_batch;
    cparams.n_ubatch = n_batch;
    cparams.n_seq_max = n_seq;
    cparams.kv_unified = true;
    struct llama_context * ctx = llama_init_from_model(model, cparams);
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    const enum llama_pooling_type pooling = llama_pooling_type(ctx);
    const int n_embd = pooling == LLAMA_POOLING_TYPE_RANK ? (int) llama_model_n_cls_out(model) : llama_model_n_embd(model);
    const int encoder_only = llama_model_has_encoder(model) && !llama_model_has_decoder(model);
    struct llama_batch batch = llama_batch_init(n_batch, 0, 1);

    int next = 5;
    while (next < argc) {
        const int first = next;
        int used = 0;
        while (next < argc && next - first < n_seq) {
            const char * text = argv[next];
            const int n = -llama_tokenize(vocab, text, (int) strlen(text), NULL, 0, true, true);
            if (used + n > n_batch) {
                break;
            }
            llama_tokenize(vocab, text, (int) strlen(text), batch.token + used, n, true, true);
            for (int i = 0; i < n; i++) {
                batch.pos[used + i] = i;
                batch.n_seq_id[used + i] = 1;
                batch.seq_id[used + i][0] = next - first;
                batch.logits[used + i] = 1;
            }
            used += n;
            next++;
            if (pooling == LLAMA_POOLING_TYPE_NONE) {
                break;
            }
        }
        batch.n_tokens = used;
        llama_memory_clear(llama_get_memory(ctx), true);
        if ((encoder_only ? llama_encode(ctx, batch) : llama_decode(ctx, batch)) != 0) {
            fprintf(stderr, "decode failed\n");
            return 1;
        }
        if (pooling == LLAMA_POOLING_TYPE_NONE) {
            for (int i = 0; i < used; i++) {
                print_vector(llama_get_embeddings_ith(ctx, i), n_embd, normalize);
            }
        } else {
            for (int s = 0; s < next - first; s++) {
                print_vector(llama_get_embeddings_seq(ctx, s), n_embd, normalize);
            }
        }
    }
    llama_batch_free(batch);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}

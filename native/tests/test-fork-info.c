// The library reports the upstream commit it was built from, and rejects bad arguments without crashing.
#include "llama-fork.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char ** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPECTED_COMMIT\n", argv[0]);
        return 2;
    }
    const char * commit = llama_fork_upstream_commit();
    if (strcmp(commit, argv[1]) != 0) {
        fprintf(stderr, "built from %s, expected %s\n", commit, argv[1]);
        return 1;
    }
    if (!isnan(llama_fork_token_logprob(NULL, 0, 0))) {
        fprintf(stderr, "logprob without a context must be NaN\n");
        return 1;
    }
    printf("fork built from llama.cpp %s\n", commit);
    return 0;
}

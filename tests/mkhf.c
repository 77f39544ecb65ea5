/*
 * mkhf.c - writes a GGUF model as a Hugging Face checkpoint directory, for
 * the shell tests (tests/hf_write.h):
 *   mkhf IN.gguf OUT_DIR [F32|F16|BF16 [SHARDS]]
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/hf_write.h"

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: mkhf IN.gguf OUT_DIR [F32|F16|BF16 [SHARDS]]\n");
        return 2;
    }
    hf_write_opts o = {argc > 3 ? argv[3] : NULL, argc > 4 ? atoi(argv[4]) : 1};
    em_err err;
    if (hf_write(argv[1], argv[2], &o, &err)) {
        fprintf(stderr, "mkhf: %s\n", err.msg);
        return 1;
    }
    return 0;
}

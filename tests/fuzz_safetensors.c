/*
 * fuzz_safetensors.c - libFuzzer target for the safetensors reader.
 *
 * Build with `make build/fuzz/fuzz_safetensors`;
 * tests/test_fuzz_safetensors.sh does a short run in `make test`.
 * Beyond "no crash", every input that parses must keep the invariants
 * hf.c relies on: each tensor lies inside the input, its byte size is
 * its dtype's size times its element count, no two tensors overlap, and
 * st_find finds each by its name. A broken invariant aborts, so libFuzzer
 * keeps the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/safetensors.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", what);
    abort();
}

static void check(const st_file *f, const uint8_t *d, size_t n)
{
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        const uint8_t *p = t->data;
        if (p < d || p > d + n || t->nbytes > (size_t)(d + n - p))
            fail("tensor outside the input");
        if (t->nbytes != st_dtype_size(t->dtype) * (size_t)t->n_elem)
            fail("byte size is not dtype size x elements");
        if (i && t->nbytes && f->tensors[i - 1].nbytes &&
            (const uint8_t *)f->tensors[i - 1].data +
            f->tensors[i - 1].nbytes > p)
            fail("tensors overlap");
        if (st_find(f, t->name) == NULL)
            fail("st_find misses a tensor");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file *f;
    em_err err;
    if (st_open_mem(data, size, "fuzz", &f, &err) == 0) {
        check(f, data, size);
        st_close(f);
    }
    return 0;
}

/*
 * fuzz_gguf.c - libFuzzer target for the GGUF reader (and writer).
 *
 * Build and run with `make fuzz` (clang -fsanitize=fuzzer,address,
 * undefined); tests/test_fuzz_gguf.sh does a short run in `make test`.
 *
 * Beyond "no crash", each input that parses is checked for the
 * invariants the engine relies on: every tensor lies inside the input and
 * is aligned, every string lies inside the input, and the file survives a
 * trip through the writer (copy every key and tensor, serialise, parse
 * again) with the same keys and tensors. An invariant failure aborts, so
 * libFuzzer saves the input as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/gguf.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_gguf: invariant broken: %s\n", what);
    abort();
}

static int inside(const gguf_file *g, const void *p, uint64_t n)
{
    const char *base = g->map, *q = p;
    return q >= base && (size_t)(q - base) <= g->size &&
           n <= g->size - (size_t)(q - base);
}

static void check_invariants(const gguf_file *g)
{
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        if (kv->type == GGUF_STRING && !inside(g, kv->v.str.s, kv->v.str.len))
            fail("string value outside the input");
        if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING)
            for (uint64_t j = 0; j < kv->n; j++)
                if (!inside(g, kv->strs[j].s, kv->strs[j].len))
                    fail("array string outside the input");
        if (gguf_find_kv(g, kv->key) != kv)
            fail("key lookup finds another entry");
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (!inside(g, t->data, t->nbytes))
            fail("tensor data outside the input");
        if (((const char *)t->data - (const char *)g->map) % g->alignment)
            fail("tensor data misaligned");
        if (gguf_find_tensor(g, t->name) != t)
            fail("tensor lookup finds another entry");
    }
}

/* Parse -> writer -> parse keeps every key and tensor. */
static void check_rewrite(const gguf_file *g)
{
    if (g->alignment > 65536)
        return;   /* the writer caps the alignment it pads to */
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++)
        gguf_writer_copy_kv(w, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne,
                               t->data, t->nbytes);
    }
    void *buf;
    size_t size;
    em_err err;
    if (gguf_writer_write_mem(w, &buf, &size, &err))
        fail(err.msg);
    gguf_writer_free(w);
    gguf_file *h;
    if (gguf_open_mem(buf, size, "rewritten", &h, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        fail("rewritten file does not parse");
    }
    if (h->n_kv != g->n_kv || h->n_tensors != g->n_tensors)
        fail("rewrite changed the counts");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *a = &g->tensors[i], *b = &h->tensors[i];
        if (strcmp(a->name, b->name) || a->type != b->type ||
            a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes))
            fail("rewrite changed a tensor");
    }
    gguf_close(h);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf_file *g;
    em_err err;
    if (gguf_open_mem(data, size, "fuzz.gguf", &g, &err)) {
        if (strncmp(err.msg, "fuzz.gguf: ", 11))
            fail("error message does not name the file");
        return 0;
    }
    check_invariants(g);
    uint64_t u; int64_t i; double d; int b;
    gguf_get_u64(g, "general.alignment", &u);
    gguf_get_i64(g, "general.alignment", &i);
    gguf_get_f64(g, "general.alignment", &d);
    gguf_get_bool(g, "general.alignment", &b);
    free(gguf_get_str(g, "general.architecture"));
    check_rewrite(g);
    gguf_close(g);
    return 0;
}

/*
 * tools/slice_vocab.c - a small-vocabulary copy of a GGUF parity fixture
 * together with the matching columns of llama.cpp's reference logits.
 *
 *   slice_vocab IN.gguf REF.json REF.f32 STRIDE OUT
 *
 * writes OUT.gguf, OUT.json and OUT.f32 (tests/data/parity/ holds what it
 * made from ../shared; tests/data/README.md gives the commands).
 *
 * Why the columns stay llama.cpp's own numbers: a logit of token j is
 * output_row_j . h, and h (the last hidden state) depends only on the
 * input tokens' embedding rows and the layers, never on the other rows of
 * token_embd or output. Keeping a subset of vocabulary rows that contains
 * every input token, byte for byte in the tensor's own type (a row of
 * n_embd elements is whole quant blocks for every fixture), and renumbering
 * the ids, the sliced model's logit for new id k is exactly the full
 * model's logit for old id kept[k], as llama.cpp computed it.
 *
 * Kept ids: every non-normal token (control, unknown, byte, ...), the first
 * 256 ids (SentencePiece control+byte tokens, GPT-2's single-byte
 * symbols), every id in the reference prompts, and every STRIDE-th id so
 * the whole range of the output matrix is sampled. The vocabulary arrays
 * (tokens, scores, token types) are subset the same way; BPE merges are
 * kept where both halves and their concatenation survive; special-token
 * ids are renumbered. The model's tokenizer is then a real but smaller
 * one: the parity test feeds the reference token ids, not text.
 *
 * Build (from the repository root, after `make`):
 *   cc -std=c11 -O2 -I. -D_GNU_SOURCE tools/slice_vocab.c build/rel/libemerge.a \
 *      -lcjson -lcrypto -lm -lpthread -o build/slice_vocab
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/gguf.h"
#include "base/common.h"

static void die(const char *what)
{
    fprintf(stderr, "slice_vocab: %s\n", what);
    exit(1);
}

static int64_t *new_id; /* old id -> new id, -1 if dropped */
static int64_t n_old, n_new;

static int str_id(const gguf_kv *toks, const char *s, size_t len)
{
    for (uint64_t i = 0; i < toks->n; i++)
        if (toks->strs[i].len == len && !memcmp(toks->strs[i].s, s, len))
            return (int)i;
    return -1;
}

/* Merges "a b" whose halves and result are all kept. Linear search per
 * merge is slow for 50000 merges; a hash would be faster, but this runs
 * once to make a fixture. */
static void copy_merges(gguf_writer *w, const gguf_kv *kv, const gguf_kv *toks)
{
    gguf_str *keep = malloc(sizeof *keep * (kv->n ? kv->n : 1));
    size_t n = 0;
    char *buf = NULL;
    for (uint64_t i = 0; i < kv->n; i++) {
        const gguf_str m = kv->strs[i];
        const char *sp = memchr(m.s, ' ', m.len);
        if (!sp)
            continue;
        size_t la = (size_t)(sp - m.s), lb = m.len - la - 1;
        int a = str_id(toks, m.s, la);
        int b = str_id(toks, sp + 1, lb);
        buf = realloc(buf, la + lb + 1);
        memcpy(buf, m.s, la);
        memcpy(buf + la, sp + 1, lb);
        int ab = str_id(toks, buf, la + lb);
        if (a >= 0 && b >= 0 && ab >= 0 && new_id[a] >= 0 && new_id[b] >= 0 &&
            new_id[ab] >= 0)
            keep[n++] = m;
    }
    free(buf);
    gguf_writer_set_arr_strn(w, kv->key, keep, n);
    fprintf(stderr, "  merges: %zu of %llu kept\n", n, (unsigned long long)kv->n);
    free(keep);
}

static void copy_vocab_kv(gguf_writer *w, const gguf_kv *kv, const gguf_kv *toks)
{
    if (!strcmp(kv->key, "tokenizer.ggml.merges")) {
        copy_merges(w, kv, toks);
        return;
    }
    if (kv->type == GGUF_ARRAY && kv->n == (uint64_t)n_old) {
        if (kv->arr_type == GGUF_STRING) {
            gguf_str *v = malloc(sizeof *v * (size_t)n_new);
            for (int64_t i = 0, k = 0; i < n_old; i++)
                if (new_id[i] >= 0)
                    v[k++] = kv->strs[i];
            gguf_writer_set_arr_strn(w, kv->key, v, (size_t)n_new);
            free(v);
            return;
        }
        if (kv->arr_type == GGUF_FLOAT32 || kv->arr_type == GGUF_INT32) {
            int32_t *v = malloc(4 * (size_t)n_new);
            for (int64_t i = 0, k = 0; i < n_old; i++)
                if (new_id[i] >= 0)
                    memcpy(&v[k++], (const char *)kv->data + 4 * i, 4);
            gguf_writer_set_arr(w, kv->key, kv->arr_type, v, (size_t)n_new);
            free(v);
            return;
        }
        die("vocabulary array of an unexpected type");
    }
    if (!strncmp(kv->key, "tokenizer.ggml.", 15) && strstr(kv->key, "_token_id")) {
        if (kv->v.u64 >= (uint64_t)n_old || new_id[kv->v.u64] < 0)
            die("special token not kept");
        gguf_writer_set_u32(w, kv->key, (uint32_t)new_id[kv->v.u64]);
        return;
    }
    gguf_writer_copy_kv(w, kv);
}

int main(int argc, char **argv)
{
    if (argc != 6)
        die("usage: slice_vocab IN.gguf REF.json REF.f32 STRIDE OUT");
    em_err err;
    gguf_file *g;
    if (gguf_open(argv[1], &g, &err))
        die(err.msg);
    const gguf_kv *toks = gguf_find_kv(g, "tokenizer.ggml.tokens");
    const gguf_kv *types = gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (!toks)
        die("no tokenizer.ggml.tokens");
    n_old = (int64_t)toks->n;
    new_id = malloc(sizeof *new_id * (size_t)n_old);
    char *keep = calloc((size_t)n_old, 1);
    int stride = atoi(argv[4]);
    for (int64_t i = 0; i < n_old; i++) {
        int32_t t = 1;
        if (types)
            memcpy(&t, (const char *)types->data + 4 * i, 4);
        keep[i] = i < 256 || t != 1 || (stride > 0 && i % stride == 0);
    }
    for (uint64_t k = 0; k < g->n_kv; k++) /* special ids */
        if (!strncmp(g->kv[k].key, "tokenizer.ggml.", 15) &&
            strstr(g->kv[k].key, "_token_id") && g->kv[k].v.u64 < (uint64_t)n_old)
            keep[g->kv[k].v.u64] = 1;

    char *jtext, *bin;
    size_t jlen, blen;
    if (em_read_file(argv[2], &jtext, &jlen, &err) ||
        em_read_file(argv[3], &bin, &blen, &err))
        die(err.msg);
    cJSON *j = cJSON_Parse(jtext);
    if (!j || cJSON_GetObjectItem(j, "n_vocab")->valueint != n_old)
        die("reference json unreadable or of another vocabulary");
    cJSON *p, *t;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "prompts"))
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(p, "tokens"))
            keep[t->valueint] = 1;
    n_new = 0;
    for (int64_t i = 0; i < n_old; i++)
        new_id[i] = keep[i] ? n_new++ : -1;
    fprintf(stderr, "%s: %lld of %lld ids kept\n", argv[1], (long long)n_new,
            (long long)n_old);

    /* The model. */
    gguf_writer *w = gguf_writer_new();
    for (uint64_t k = 0; k < g->n_kv; k++) {
        if (!strcmp(g->kv[k].key, "general.name")) {
            char name[512];
            snprintf(name, sizeof name, "%.*s-vocab%lld",
                     (int)g->kv[k].v.str.len, g->kv[k].v.str.s, (long long)n_new);
            gguf_writer_set_str(w, "general.name", name);
        } else if (!strcmp(g->kv[k].key, "general.alignment")) {
            continue; /* the writer sets its own */
        } else {
            copy_vocab_kv(w, &g->kv[k], toks);
        }
    }
    for (uint64_t k = 0; k < g->n_tensors; k++) {
        const gguf_tensor *tn = &g->tensors[k];
        if (tn->n_dims == 2 && tn->ne[1] == n_old) {
            size_t row = ggml_type_size(tn->type, tn->ne[0]);
            char *d = malloc(row * (size_t)n_new);
            for (int64_t i = 0; i < n_old; i++)
                if (new_id[i] >= 0)
                    memcpy(d + row * (size_t)new_id[i],
                           (const char *)tn->data + row * (size_t)i, row);
            int64_t ne[2] = {tn->ne[0], n_new};
            gguf_writer_add_tensor(w, tn->name, tn->type, 2, ne, d, row * (size_t)n_new);
            free(d);
        } else {
            gguf_writer_add_tensor(w, tn->name, tn->type, tn->n_dims, tn->ne,
                                   tn->data, tn->nbytes);
        }
    }
    char path[4096];
    snprintf(path, sizeof path, "%s.gguf", argv[5]);
    if (gguf_writer_write(w, path, &err))
        die(err.msg);
    gguf_writer_free(w);

    /* The reference: the same prompts, renumbered, and the kept columns. */
    size_t n_rows = blen / 4 / (size_t)n_old;
    float *cols = malloc(4 * n_rows * (size_t)n_new);
    for (size_t r = 0; r < n_rows; r++)
        for (int64_t i = 0; i < n_old; i++)
            if (new_id[i] >= 0)
                memcpy(&cols[r * (size_t)n_new + (size_t)new_id[i]],
                       bin + 4 * (r * (size_t)n_old + (size_t)i), 4);
    snprintf(path, sizeof path, "%s.f32", argv[5]);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(cols, 4, n_rows * (size_t)n_new, f) != n_rows * (size_t)n_new ||
        fclose(f))
        die("cannot write the logits");
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "prompts"))
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(p, "tokens"))
            cJSON_SetIntValue(t, (int)new_id[t->valueint]);
    cJSON_ReplaceItemInObject(j, "n_vocab", cJSON_CreateNumber((double)n_new));
    const char *slash = strrchr(argv[5], '/');
    snprintf(path, sizeof path, "%s.gguf", slash ? slash + 1 : argv[5]);
    cJSON_ReplaceItemInObject(j, "model", cJSON_CreateString(path));
    const char *src = strrchr(argv[1], '/');
    cJSON_AddStringToObject(j, "sliced_from", src ? src + 1 : argv[1]);
    cJSON *ids = cJSON_CreateArray();
    for (int64_t i = 0; i < n_old; i++)
        if (new_id[i] >= 0)
            cJSON_AddItemToArray(ids, cJSON_CreateNumber((double)i));
    cJSON_AddItemToObject(j, "kept_ids", ids);
    char *out = cJSON_PrintUnformatted(j);
    snprintf(path, sizeof path, "%s.json", argv[5]);
    f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", out) < 0 || fclose(f))
        die("cannot write the json");
    free(out);
    cJSON_Delete(j);
    free(cols);
    free(jtext);
    free(bin);
    free(keep);
    free(new_id);
    gguf_close(g);
    return 0;
}

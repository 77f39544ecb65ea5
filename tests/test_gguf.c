/*
 * test_gguf.c - the GGUF reader and writer: the shared fixtures and vocab
 * files, checksums, writer round trips, truncation at every byte and
 * hand-made hostile headers.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/engine/gguf.h"
#include "base/common.h"
#include "tests/testlib.h"

/* Expected facts about each shared fixture (from shared/README.md and
 * the files' own metadata). */
typedef struct fixture {
    const char *file, *arch;
    uint64_t n_embd, n_vocab, n_tensors;
    ggml_type main_type;      /* type of blk.0.attn_q.weight or qkv */
} fixture;

static const fixture fixtures[] = {
    {"tiny-llama-f32.gguf", "llama", 64, 32000, 21, GGML_F32},
    {"tiny-llama-f16.gguf", "llama", 64, 32000, 21, GGML_F16},
    {"tiny-llama-q8_0.gguf", "llama", 64, 32000, 21, GGML_Q8_0},
    {"tiny-llama-q4_0.gguf", "llama", 64, 32000, 21, GGML_Q4_0},
    {"wide-llama-q4_k.gguf", "llama", 256, 32000, 21, GGML_Q4_K},
    {"wide-llama-q6_k.gguf", "llama", 256, 32000, 21, GGML_Q6_K},
    {"tiny-gpt2-f16.gguf", "gpt2", 64, 50257, 29, GGML_F16},
    {"tiny-gptneox-f16.gguf", "gptneox", 64, 50432, 28, GGML_F16},
};

/* shipped: the small-vocabulary copy in tests/data/parity (n_vocab from
 * its reference json), else the ../shared file. */
static int check_fixture(const fixture *f, int shipped)
{
    char rel[128];
    fixture fc = *f;
    char *path;
    if (shipped) {
        snprintf(rel, sizeof rel, "parity/%.*s.json", (int)strlen(f->file) - 5,
                 f->file);
        char *j = tl_data(rel), *text = NULL;
        size_t len;
        em_err err;
        if (!j)
            return 0; /* not shipped */
        CHECK_INT(em_read_file(j, &text, &len, &err), 0);
        const char *nv = text ? strstr(text, "\"n_vocab\":") : NULL;
        CHECK(nv != NULL);
        fc.n_vocab = nv ? strtoull(nv + 10, NULL, 10) : 0;
        CHECK(fc.n_vocab > 256 && fc.n_vocab < f->n_vocab);
        free(text);
        free(j);
        f = &fc;
        snprintf(rel, sizeof rel, "parity/%s", f->file);
        path = tl_data(rel);
    } else {
        snprintf(rel, sizeof rel, "fixtures/gguf/%s", f->file);
        path = tl_shared(rel);
    }
    if (!path)
        return 0;
    gguf_file *g;
    em_err err;
    int rc = gguf_open(path, &g, &err);
    CHECK_MSG(rc == 0, "%s: %s", f->file, err.msg);
    free(path);
    if (rc)
        return 0;
    CHECK_INT(g->version, 3);
    CHECK_INT(g->alignment, 32);
    CHECK_INT(g->n_tensors, f->n_tensors);
    char *arch = gguf_get_str(g, "general.architecture");
    CHECK_STR(arch, f->arch);
    char key[128];
    snprintf(key, sizeof key, "%s.embedding_length", f->arch);
    uint64_t n_embd = 0, n_layer = 0;
    CHECK_INT(gguf_get_u64(g, key, &n_embd), 0);
    CHECK_INT(n_embd, f->n_embd);
    snprintf(key, sizeof key, "%s.block_count", f->arch);
    CHECK_INT(gguf_get_u64(g, key, &n_layer), 0);
    CHECK_INT(n_layer, 2);
    free(arch);
    const gguf_kv *tok = gguf_find_kv(g, "tokenizer.ggml.tokens");
    CHECK(tok && tok->type == GGUF_ARRAY && tok->arr_type == GGUF_STRING);
    if (tok)
        CHECK_INT(tok->n, f->n_vocab);
    const gguf_tensor *emb = gguf_find_tensor(g, "token_embd.weight");
    CHECK(emb != NULL);
    if (emb) {
        CHECK_INT(emb->ne[0], f->n_embd);
        CHECK_INT(emb->ne[1], f->n_vocab);
    }
    const gguf_tensor *q = gguf_find_tensor(g, "blk.0.attn_q.weight");
    if (!q)
        q = gguf_find_tensor(g, "blk.0.attn_qkv.weight");
    CHECK(q != NULL);
    if (q)
        CHECK_MSG(q->type == f->main_type, "%s: attn type %s", f->file,
                  ggml_type_name(q->type));
    /* Every tensor lies in the file, aligned, with the size its type and
     * shape imply. */
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        int64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        CHECK_INT(t->nbytes, ggml_type_size(t->type, nel));
        CHECK((const char *)t->data + t->nbytes <= (const char *)g->map + g->size);
        CHECK_INT(((const char *)t->data - (const char *)g->map) % 32, 0);
    }
    CHECK(gguf_find_tensor(g, "no.such.tensor") == NULL);
    CHECK(gguf_find_kv(g, "no.such.key") == NULL);
    gguf_close(g);
    return 1;
}

TEST(test_fixtures_open)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        check_fixture(&fixtures[i], 0);
}

TEST(test_shipped_fixtures_open)
{
    int n = 0;
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        n += check_fixture(&fixtures[i], 1);
    CHECK_INT(n, 7); /* all but wide-llama-q6_k */
}

/* tests/data/SHA256SUMS lists every shipped reference file, and they are
 * those bytes (tests/data/README.md says where each came from). */
TEST(test_shipped_checksums)
{
    char *text = NULL;
    size_t len;
    em_err err;
    CHECK_MSG(em_read_file("tests/data/SHA256SUMS", &text, &len, &err) == 0,
              "%s", err.msg);
    int n = 0;
    for (char *line = text ? strtok(text, "\n") : NULL; line;
         line = strtok(NULL, "\n")) {
        char want[65], name[256], path[300], got[65], *data;
        size_t n_data;
        if (sscanf(line, "%64s %255s", want, name) != 2)
            continue;
        snprintf(path, sizeof path, "tests/data/%s", name);
        CHECK_MSG(em_read_file(path, &data, &n_data, &err) == 0, "%s", err.msg);
        if (!data)
            continue;
        em_sha256_hex(data, n_data, got);
        CHECK_MSG(!strcmp(got, want), "%s: sha256 %s, expected %s", name, got, want);
        free(data);
        n++;
    }
    CHECK(n >= 30);
    free(text);
}

TEST(test_fixture_llama_metadata)
{
    char *path = tl_fixture("tiny-llama-q4_0"); /* tests/data/parity */
    if (!path)
        return;
    gguf_file *g;
    em_err err;
    CHECK_INT(gguf_open(path, &g, &err), 0);
    free(path);
    uint64_t u;
    int64_t i;
    double d;
    int b;
    CHECK_INT(gguf_get_u64(g, "llama.attention.head_count_kv", &u), 0);
    CHECK_INT(u, 2);
    CHECK_INT(gguf_get_i64(g, "llama.feed_forward_length", &i), 0);
    CHECK_INT(i, 160);
    CHECK_INT(gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &d), 0);
    CHECK_NEAR(d, 1e-5, 1e-12);
    CHECK_INT(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b), 0);
    CHECK_INT(b, 1);
    CHECK_INT(gguf_get_u64(g, "general.architecture", &u), -1);
    CHECK_INT(gguf_get_f64(g, "llama.block_count", &d), -1);
    CHECK(gguf_get_str(g, "llama.block_count") == NULL);
    const gguf_kv *tok = gguf_find_kv(g, "tokenizer.ggml.tokens");
    CHECK(tok && tok->strs && tok->strs[1].len == 3 &&
          !memcmp(tok->strs[1].s, "<s>", 3));
    CHECK(tok && tok->strs[3].len == 6 && !memcmp(tok->strs[3].s, "<0x00>", 6));
    const gguf_kv *sc = gguf_find_kv(g, "tokenizer.ggml.scores");
    CHECK(sc && tok && sc->arr_type == GGUF_FLOAT32 && sc->n == tok->n && sc->data);
    const gguf_kv *tt = gguf_find_kv(g, "tokenizer.ggml.token_type");
    CHECK(tt && tt->arr_type == GGUF_INT32);
    if (tt) {
        int32_t t0, t3;
        memcpy(&t0, (const char *)tt->data, 4);
        memcpy(&t3, (const char *)tt->data + 12, 4);
        CHECK_INT(t0, 2);   /* <unk>: UNKNOWN */
        CHECK_INT(t3, 6);   /* <0x00>: BYTE */
    }
    int n_q4 = 0, n_f32 = 0;
    for (uint64_t k = 0; k < g->n_tensors; k++) {
        n_q4 += g->tensors[k].type == GGML_Q4_0;
        n_f32 += g->tensors[k].type == GGML_F32;
    }
    CHECK_INT(n_q4, 15);
    CHECK_INT(n_f32, 5);
    gguf_close(g);
}

static void vocab_files_open(int falcon)
{
    static const struct { const char *f, *model; uint64_t n; } v[] = {
        {"ggml-vocab-llama-spm.gguf", "llama", 32000},
        {"ggml-vocab-gpt-2.gguf", "gpt2", 50257},
        {"ggml-vocab-gpt-neox.gguf", "gpt2", 50432},
        {"ggml-vocab-falcon.gguf", "gpt2", 65024},
    };
    /* llama-spm, gpt-2, gpt-neox are shipped in tests/data/tokenizer;
     * falcon is test_vocab_file_falcon's */
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        char rel[128], srel[128];
        snprintf(rel, sizeof rel, "tokenizer/%s", v[k].f);
        snprintf(srel, sizeof srel, "refs/tokenizer/%s", v[k].f);
        char *path = falcon == !!strstr(v[k].f, "falcon")
                         ? tl_data_or_shared(rel, srel) : NULL;
        if (!path)
            continue;
        gguf_file *g;
        em_err err;
        int rc = gguf_open(path, &g, &err);
        CHECK_MSG(rc == 0, "%s: %s", v[k].f, err.msg);
        free(path);
        if (rc)
            continue;
        CHECK_INT(g->n_tensors, 0);
        char *m = gguf_get_str(g, "tokenizer.ggml.model");
        CHECK_STR(m, v[k].model);
        free(m);
        const gguf_kv *tok = gguf_find_kv(g, "tokenizer.ggml.tokens");
        CHECK(tok && tok->n == v[k].n);
        gguf_close(g);
    }
}

TEST(test_vocab_files_open) { vocab_files_open(0); }
TEST(test_vocab_file_falcon) { vocab_files_open(1); }

/* The fixtures are the files the README describes, byte for byte. */
TEST(test_fixture_checksums)
{
    char *sums = tl_shared("fixtures/gguf/SHA256SUMS");
    if (!sums)
        return;
    char *text;
    size_t len;
    em_err err;
    CHECK_INT(em_read_file(sums, &text, &len, &err), 0);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char want[65], name[256], rel[300];
        if (sscanf(line, "%64s %255s", want, name) != 2)
            continue;
        snprintf(rel, sizeof rel, "fixtures/gguf/%s", name);
        char *path = tl_shared(rel), *data, got[65];
        size_t n_data;
        if (!path)
            break;
        CHECK_INT(em_read_file(path, &data, &n_data, &err), 0);
        em_sha256_hex(data, n_data, got);
        CHECK_MSG(!strcmp(got, want), "%s: sha256 %s, expected %s", name, got, want);
        free(data);
        free(path);
        n++;
    }
    CHECK_INT(n, 8);
    free(text);
    free(sums);
}

TEST(test_type_table)
{
    CHECK_INT(ggml_type_size(GGML_F32, 10), 40);
    CHECK_INT(ggml_type_size(GGML_F16, 10), 20);
    CHECK_INT(ggml_type_size(GGML_BF16, 10), 20);
    CHECK_INT(ggml_type_size(GGML_Q4_0, 64), 36);
    CHECK_INT(ggml_type_size(GGML_Q4_1, 32), 20);
    CHECK_INT(ggml_type_size(GGML_Q5_0, 32), 22);
    CHECK_INT(ggml_type_size(GGML_Q5_1, 32), 24);
    CHECK_INT(ggml_type_size(GGML_Q8_0, 32), 34);
    CHECK_INT(ggml_type_size(GGML_Q8_1, 32), 36);
    CHECK_INT(ggml_type_size(GGML_Q2_K, 256), 84);
    CHECK_INT(ggml_type_size(GGML_Q3_K, 256), 110);
    CHECK_INT(ggml_type_size(GGML_Q4_K, 512), 288);
    CHECK_INT(ggml_type_size(GGML_Q5_K, 256), 176);
    CHECK_INT(ggml_type_size(GGML_Q6_K, 256), 210);
    CHECK_INT(ggml_type_size(GGML_Q8_K, 256), 292);
    CHECK_INT(ggml_type_size(GGML_Q4_0, 33), 0);      /* not whole blocks */
    CHECK_INT(ggml_type_size((ggml_type)4, 32), 0);   /* removed Q4_2 */
    CHECK_INT(ggml_block_size(GGML_Q6_K), 256);
    CHECK_INT(ggml_block_size(GGML_F16), 1);
    CHECK_INT(ggml_block_size((ggml_type)99), 0);
    CHECK_STR(ggml_type_name(GGML_Q4_K), "Q4_K");
    CHECK_STR(ggml_type_name(GGML_BF16), "BF16");
    CHECK_STR(ggml_type_name((ggml_type)99), "unknown");
}

/* ---------------------------------------------------------- writer */

/* A writer holding one key of every value type and tensors of several
 * types, shapes and sizes. */
static gguf_writer *sample_writer(void)
{
    gguf_writer *w = gguf_writer_new();
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000;
    int16_t i16 = -30000; uint64_t u64 = 0xfedcba9876543210ull;
    int64_t i64 = -1234567890123ll; double f64 = 3.141592653589793;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_scalar(w, "t.u8", GGUF_UINT8, &u8);
    gguf_writer_set_scalar(w, "t.i8", GGUF_INT8, &i8);
    gguf_writer_set_scalar(w, "t.u16", GGUF_UINT16, &u16);
    gguf_writer_set_scalar(w, "t.i16", GGUF_INT16, &i16);
    gguf_writer_set_u32(w, "t.u32", 4000000000u);
    gguf_writer_set_i32(w, "t.i32", -2000000000);
    gguf_writer_set_f32(w, "t.f32", 0.25f);
    gguf_writer_set_bool(w, "t.bool", 1);
    gguf_writer_set_scalar(w, "t.u64", GGUF_UINT64, &u64);
    gguf_writer_set_scalar(w, "t.i64", GGUF_INT64, &i64);
    gguf_writer_set_scalar(w, "t.f64", GGUF_FLOAT64, &f64);
    gguf_writer_set_str(w, "t.empty", "");
    const char *strs[] = {"a", "", "\xe2\x96\x81hello", "<0x0A>"};
    gguf_writer_set_arr_str(w, "t.arr_str", strs, 4);
    float fa[3] = {1.5f, -2.0f, 1e-8f};
    gguf_writer_set_arr_f32(w, "t.arr_f32", fa, 3);
    int32_t ia[2] = {-7, 7};
    gguf_writer_set_arr_i32(w, "t.arr_i32", ia, 2);
    uint16_t ua[2] = {1, 65535};
    gguf_writer_set_arr(w, "t.arr_u16", GGUF_UINT16, ua, 2);
    double da[1] = {-0.5};
    gguf_writer_set_arr(w, "t.arr_f64", GGUF_FLOAT64, da, 1);
    gguf_writer_set_arr(w, "t.arr_empty", GGUF_INT8, NULL, 0);
    gguf_writer_set_i32(w, "t.replaced", 1);
    gguf_writer_set_i32(w, "t.replaced", 2);   /* replaces, no duplicate */

    float f[6] = {1, 2, 3, 4, 5, 6};
    int64_t ne2[2] = {3, 2};
    gguf_writer_add_tensor(w, "a.f32", GGML_F32, 2, ne2, f, sizeof f);
    uint16_t h[40];
    for (int i = 0; i < 40; i++)
        h[i] = (uint16_t)(0x3c00 + i);
    int64_t ne3[3] = {4, 5, 2};
    gguf_writer_add_tensor(w, "b.f16", GGML_F16, 3, ne3, h, sizeof h);
    unsigned char q[2 * 34];
    for (int i = 0; i < (int)sizeof q; i++)
        q[i] = (unsigned char)(i * 7);
    int64_t ne1[1] = {64};
    gguf_writer_add_tensor(w, "c.q8_0", GGML_Q8_0, 1, ne1, q, sizeof q);
    unsigned char k[144];
    for (int i = 0; i < (int)sizeof k; i++)
        k[i] = (unsigned char)(255 - i);
    int64_t nek[2] = {256, 1};
    gguf_writer_add_tensor(w, "d.q4_k", GGML_Q4_K, 2, nek, k, sizeof k);
    return w;
}

static void check_sample(const gguf_file *g)
{
    uint64_t u; int64_t i; double d; int b;
    CHECK_INT(g->version, 3);
    CHECK_INT(g->n_kv, 20);
    CHECK_INT(g->n_tensors, 4);
    CHECK(gguf_get_u64(g, "t.u8", &u) == 0 && u == 200);
    CHECK(gguf_get_i64(g, "t.i8", &i) == 0 && i == -100);
    CHECK(gguf_get_u64(g, "t.u16", &u) == 0 && u == 60000);
    CHECK(gguf_get_i64(g, "t.i16", &i) == 0 && i == -30000);
    CHECK(gguf_get_u64(g, "t.u32", &u) == 0 && u == 4000000000u);
    CHECK(gguf_get_i64(g, "t.i32", &i) == 0 && i == -2000000000);
    CHECK_INT(gguf_get_u64(g, "t.i32", &u), -1);    /* negative */
    CHECK(gguf_get_f64(g, "t.f32", &d) == 0 && d == 0.25);
    CHECK(gguf_get_bool(g, "t.bool", &b) == 0 && b == 1);
    CHECK(gguf_get_u64(g, "t.u64", &u) == 0 && u == 0xfedcba9876543210ull);
    CHECK_INT(gguf_get_i64(g, "t.u64", &i), -1);    /* > INT64_MAX */
    CHECK(gguf_get_i64(g, "t.i64", &i) == 0 && i == -1234567890123ll);
    CHECK(gguf_get_f64(g, "t.f64", &d) == 0 && d == 3.141592653589793);
    CHECK(gguf_get_i64(g, "t.replaced", &i) == 0 && i == 2);
    char *s = gguf_get_str(g, "t.empty");
    CHECK_STR(s, "");
    free(s);
    const gguf_kv *kv = gguf_find_kv(g, "t.arr_str");
    CHECK(kv && kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING && kv->n == 4);
    if (kv && kv->n == 4) {
        CHECK(kv->strs[0].len == 1 && kv->strs[0].s[0] == 'a');
        CHECK_INT(kv->strs[1].len, 0);
        CHECK(kv->strs[2].len == 8 && !memcmp(kv->strs[2].s, "\xe2\x96\x81hello", 8));
        CHECK(kv->strs[3].len == 6 && !memcmp(kv->strs[3].s, "<0x0A>", 6));
    }
    kv = gguf_find_kv(g, "t.arr_f32");
    float fa[3];
    CHECK(kv && kv->arr_type == GGUF_FLOAT32 && kv->n == 3);
    if (kv) {
        memcpy(fa, kv->data, sizeof fa);
        CHECK(fa[0] == 1.5f && fa[1] == -2.0f && fa[2] == 1e-8f);
    }
    kv = gguf_find_kv(g, "t.arr_i32");
    CHECK(kv && kv->arr_type == GGUF_INT32 && kv->n == 2);
    kv = gguf_find_kv(g, "t.arr_u16");
    CHECK(kv && kv->arr_type == GGUF_UINT16 && kv->n == 2 &&
          !memcmp(kv->data, "\x01\x00\xff\xff", 4));
    kv = gguf_find_kv(g, "t.arr_f64");
    CHECK(kv && kv->arr_type == GGUF_FLOAT64 && kv->n == 1);
    kv = gguf_find_kv(g, "t.arr_empty");
    CHECK(kv && kv->arr_type == GGUF_INT8 && kv->n == 0);

    const gguf_tensor *t = gguf_find_tensor(g, "a.f32");
    CHECK(t && t->type == GGML_F32 && t->n_dims == 2 && t->ne[0] == 3 &&
          t->ne[1] == 2 && t->ne[2] == 1 && t->nbytes == 24);
    float f[6] = {1, 2, 3, 4, 5, 6};
    CHECK(t && !memcmp(t->data, f, sizeof f));
    t = gguf_find_tensor(g, "b.f16");
    CHECK(t && t->type == GGML_F16 && t->n_dims == 3 && t->ne[2] == 2 &&
          t->nbytes == 80 && t->offset % 32 == 0);
    uint16_t h0;
    if (t) {
        memcpy(&h0, (const char *)t->data + 78, 2);
        CHECK_INT(h0, 0x3c00 + 39);
    }
    t = gguf_find_tensor(g, "c.q8_0");
    CHECK(t && t->type == GGML_Q8_0 && t->n_dims == 1 && t->nbytes == 68 &&
          ((const unsigned char *)t->data)[67] == (unsigned char)(67 * 7));
    t = gguf_find_tensor(g, "d.q4_k");
    CHECK(t && t->type == GGML_Q4_K && t->nbytes == 144 &&
          ((const unsigned char *)t->data)[0] == 255);
}

TEST(test_writer_roundtrip)
{
    gguf_writer *w = sample_writer();
    void *buf;
    size_t size;
    em_err err;
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), 0);
    gguf_file *g;
    int rc = gguf_open_mem(buf, size, "sample.gguf", &g, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc) {
        free(buf);
        gguf_writer_free(w);
        return;
    }
    check_sample(g);

    /* The file on disk is the same bytes. */
    char *dir = tl_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/sample.gguf", dir);
    CHECK_INT(gguf_writer_write(w, path, &err), 0);
    char *disk;
    size_t n_disk;
    CHECK_INT(em_read_file(path, &disk, &n_disk, &err), 0);
    CHECK(n_disk == size && !memcmp(disk, buf, size));
    free(disk);
    gguf_file *g2;
    CHECK_INT(gguf_open(path, &g2, &err), 0);
    check_sample(g2);
    gguf_close(g2);

    /* Copying every key and tensor through a second writer reproduces the
     * file byte for byte: nothing is lost or re-typed on the way. */
    gguf_writer *w2 = gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++)
        gguf_writer_copy_kv(w2, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        gguf_writer_add_tensor(w2, t->name, t->type, t->n_dims, t->ne,
                               t->data, t->nbytes);
    }
    void *buf2;
    size_t size2;
    CHECK_INT(gguf_writer_write_mem(w2, &buf2, &size2, &err), 0);
    CHECK(size2 == size && !memcmp(buf2, buf, size));
    free(buf2);
    gguf_writer_free(w2);
    gguf_close(g);
    free(buf);
    free(dir);
    gguf_writer_free(w);
}

TEST(test_writer_alignment)
{
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_u32(w, "general.alignment", 64);
    float a[3] = {1, 2, 3}, b[2] = {4, 5};
    int64_t na = 3, nb = 2;
    gguf_writer_add_tensor(w, "a", GGML_F32, 1, &na, a, sizeof a);
    gguf_writer_add_tensor(w, "b", GGML_F32, 1, &nb, b, sizeof b);
    void *buf;
    size_t size;
    em_err err;
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), 0);
    gguf_file *g;
    CHECK_INT(gguf_open_mem(buf, size, "aligned.gguf", &g, &err), 0);
    CHECK_INT(g->alignment, 64);
    CHECK_INT(g->data_offset % 64, 0);
    CHECK_INT(g->tensors[1].offset, 64);
    CHECK(!memcmp(g->tensors[1].data, b, sizeof b));
    gguf_close(g);
    free(buf);
    gguf_writer_free(w);
}

TEST(test_writer_misuse)
{
    em_err err;
    void *buf;
    size_t size;
    gguf_writer *w = gguf_writer_new();
    float f[4] = {0};
    int64_t ne = 4;
    gguf_writer_add_tensor(w, "x", GGML_F32, 1, &ne, f, 12);
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), -1);
    CHECK_HAS(err.msg, "tensor 'x': 12 bytes given");
    gguf_writer_free(w);

    w = gguf_writer_new();
    ne = 16;
    gguf_writer_add_tensor(w, "q", GGML_Q4_0, 1, &ne, f, 9);
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), -1);
    CHECK_HAS(err.msg, "block size");
    gguf_writer_free(w);

    w = gguf_writer_new();
    ne = 1;
    gguf_writer_add_tensor(w, "d", GGML_F32, 1, &ne, f, 4);
    gguf_writer_add_tensor(w, "d", GGML_F32, 1, &ne, f, 4);
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), -1);
    CHECK_HAS(err.msg, "duplicate tensor 'd'");
    gguf_writer_free(w);

    w = gguf_writer_new();
    gguf_writer_set_u32(w, "general.alignment", 48);
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), -1);
    CHECK_HAS(err.msg, "power of two");
    gguf_writer_free(w);

    w = gguf_writer_new();
    gguf_writer_set_arr(w, "s", GGUF_STRING, NULL, 0);
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), -1);
    CHECK_HAS(err.msg, "key 's'");
    gguf_writer_free(w);
}

/* Every proper prefix of a valid file that cuts into the header, the
 * metadata, the tensor infos or any tensor's data is rejected with a
 * message (ASan checks that nothing reads past the copy). Only the
 * zero padding after the last tensor may be cut. */
TEST(test_truncation_every_byte)
{
    gguf_writer *w = sample_writer();
    void *buf;
    size_t size;
    em_err err;
    CHECK_INT(gguf_writer_write_mem(w, &buf, &size, &err), 0);
    gguf_writer_free(w);
    gguf_file *g;
    CHECK_INT(gguf_open_mem(buf, size, "full", &g, &err), 0);
    size_t end = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        size_t e = g->data_offset + g->tensors[i].offset + g->tensors[i].nbytes;
        end = e > end ? e : end;
    }
    gguf_close(g);
    int bad = 0;
    for (size_t len = 0; len <= size; len++) {
        char *cut = malloc(len ? len : 1);   /* exact size: ASan sees overreads */
        memcpy(cut, buf, len);
        err.msg[0] = 0;
        int rc = gguf_open_mem(cut, len, "cut.gguf", &g, &err);
        if (len < end && (rc == 0 || strncmp(err.msg, "cut.gguf: ", 10))) {
            if (!bad++)
                CHECK_MSG(0, "prefix of %zu bytes: rc %d, message '%s'", len, rc, err.msg);
        }
        if (len >= end && rc != 0 && !bad++)
            CHECK_MSG(0, "prefix of %zu bytes (past the data) rejected: %s", len, err.msg);
        if (rc == 0)
            gguf_close(g);
        free(cut);
    }
    CHECK_INT(bad, 0);
    free(buf);
}

/* ------------------------------------------------- hostile headers */

typedef struct hb { em_buf b; } hb;
static void h_u32(hb *h, uint32_t v) { em_buf_put(&h->b, (const char *)&v, 4); }
static void h_u64(hb *h, uint64_t v) { em_buf_put(&h->b, (const char *)&v, 8); }
static void h_str(hb *h, const char *s) { h_u64(h, strlen(s)); em_buf_puts(&h->b, s); }
static void h_head(hb *h, uint32_t version, uint64_t n_t, uint64_t n_kv)
{
    em_buf_put(&h->b, "GGUF", 4);
    h_u32(h, version);
    h_u64(h, n_t);
    h_u64(h, n_kv);
}
/* One tensor info with ne[0..nd), type and offset. */
static void h_tensor(hb *h, const char *name, uint32_t nd, const uint64_t *ne,
                     uint32_t type, uint64_t off)
{
    h_str(h, name);
    h_u32(h, nd);
    for (uint32_t i = 0; i < nd; i++)
        h_u64(h, ne[i]);
    h_u32(h, type);
    h_u64(h, off);
}
static void h_pad(hb *h, size_t extra)
{
    while (h->b.len % 32)
        em_buf_putc(&h->b, 0);
    for (size_t i = 0; i < extra; i++)
        em_buf_putc(&h->b, 0);
}

/* Parses h (from an exact-size copy), expects failure with a message
 * containing want. */
static void expect_error(hb *h, const char *want, int line)
{
    size_t n = h->b.len;
    char *copy = malloc(n ? n : 1);
    memcpy(copy, h->b.s, n);
    gguf_file *g;
    em_err err;
    err.msg[0] = 0;
    int rc = gguf_open_mem(copy, n, "evil.gguf", &g, &err);
    if (rc == 0) {
        tl_fail(__FILE__, line, "hostile file accepted (wanted '%s')", want);
        gguf_close(g);
    } else if (!strstr(err.msg, want) || strncmp(err.msg, "evil.gguf: ", 11)) {
        tl_fail(__FILE__, line, "message '%s' lacks '%s'", err.msg, want);
    }
    free(copy);
    em_buf_free(&h->b);
}
#define EXPECT_ERROR(h, want) expect_error(&(h), want, __LINE__)

TEST(test_hostile_headers)
{
    hb h = {{0}};
    uint64_t ne[4] = {32, 1, 1, 1};

    em_buf_put(&h.b, "GGML\3\0\0\0", 8);
    EXPECT_ERROR(h, "not a GGUF file");
    h_head(&h, 1, 0, 0);
    EXPECT_ERROR(h, "version 1");
    em_buf_put(&h.b, "GGUF\0\0\0\3", 8);
    h_u64(&h, 0); h_u64(&h, 0);
    EXPECT_ERROR(h, "big-endian");
    h_head(&h, 4, 0, 0);
    EXPECT_ERROR(h, "unsupported GGUF version 4");
    em_buf_put(&h.b, "GGUF\3\0\0\0\0\0", 10);
    EXPECT_ERROR(h, "tensor count needs 8 bytes");

    h_head(&h, 3, 0, 1ull << 60);
    EXPECT_ERROR(h, "claims 1152921504606846976 metadata keys");
    h_head(&h, 3, 1ull << 62, 0);
    EXPECT_ERROR(h, "claims 4611686018427387904 tensors");

    h_head(&h, 3, 0, 1);
    h_u64(&h, 0xffffffffffffull); em_buf_puts(&h.b, "abcdefghijklmnop");
    EXPECT_ERROR(h, "key #0: string length 281474976710655 runs past end");

    h_head(&h, 3, 0, 1);
    h_str(&h, "k"); h_u32(&h, GGUF_STRING); h_u64(&h, 1ull << 40);
    em_buf_puts(&h.b, "xyz");
    EXPECT_ERROR(h, "'k': string length 1099511627776 runs past end");

    h_head(&h, 3, 0, 1);
    h_str(&h, "tokens"); h_u32(&h, GGUF_ARRAY); h_u32(&h, GGUF_STRING);
    h_u64(&h, 1ull << 61); h_u64(&h, 0);
    EXPECT_ERROR(h, "key 'tokens': array of 2305843009213693952 strings cannot fit");

    h_head(&h, 3, 0, 1);
    h_str(&h, "tokens"); h_u32(&h, GGUF_ARRAY); h_u32(&h, GGUF_STRING);
    h_u64(&h, 3); h_str(&h, "ab"); h_u64(&h, 100); h_u64(&h, 0);
    EXPECT_ERROR(h, "key 'tokens': string #1 of 3 runs past end");

    h_head(&h, 3, 0, 1);
    h_str(&h, "scores"); h_u32(&h, GGUF_ARRAY); h_u32(&h, GGUF_FLOAT32);
    h_u64(&h, 0x4000000000000001ull); h_u64(&h, 0);
    EXPECT_ERROR(h, "key 'scores': array of 4611686018427387905 f32");

    h_head(&h, 3, 0, 1);
    h_str(&h, "nest"); h_u32(&h, GGUF_ARRAY); h_u32(&h, GGUF_ARRAY); h_u64(&h, 1);
    h_u32(&h, GGUF_UINT8); h_u64(&h, 1); em_buf_putc(&h.b, 1);
    EXPECT_ERROR(h, "key 'nest': nested arrays");

    h_head(&h, 3, 0, 1);
    h_str(&h, "odd"); h_u32(&h, 13); h_u64(&h, 0);
    EXPECT_ERROR(h, "key 'odd': unknown value type 13");

    h_head(&h, 3, 0, 1);
    h_str(&h, "arr"); h_u32(&h, GGUF_ARRAY); h_u32(&h, 77); h_u64(&h, 0);
    EXPECT_ERROR(h, "key 'arr': unknown array element type 77");

    h_head(&h, 3, 0, 2);
    h_str(&h, "a"); h_u32(&h, GGUF_UINT8); em_buf_putc(&h.b, 1);
    h_str(&h, "a"); h_u32(&h, GGUF_UINT8); em_buf_putc(&h.b, 2);
    EXPECT_ERROR(h, "duplicate key 'a'");

    h_head(&h, 3, 0, 1);
    h_u64(&h, 3); em_buf_put(&h.b, "a\0b", 3); h_u32(&h, GGUF_UINT8);
    em_buf_putc(&h.b, 1);
    EXPECT_ERROR(h, "key #0 contains a NUL byte");

    h_head(&h, 3, 0, 1);
    h_str(&h, "flag"); h_u32(&h, GGUF_BOOL); em_buf_putc(&h.b, 2);
    em_buf_puts(&h.b, "................");
    EXPECT_ERROR(h, "key 'flag': bool value 2");

    h_head(&h, 3, 0, 1);
    h_str(&h, "general.alignment"); h_u32(&h, GGUF_UINT32); h_u32(&h, 24);
    EXPECT_ERROR(h, "'general.alignment' is 24, not a non-zero power of two");
    h_head(&h, 3, 0, 1);
    h_str(&h, "general.alignment"); h_u32(&h, GGUF_UINT32); h_u32(&h, 0);
    EXPECT_ERROR(h, "'general.alignment' is 0");
    h_head(&h, 3, 0, 1);
    h_str(&h, "general.alignment"); h_u32(&h, GGUF_UINT64); h_u64(&h, 32);
    EXPECT_ERROR(h, "has type u64, expected u32");
    h_head(&h, 3, 0, 1);
    h_str(&h, "general.alignment"); h_u32(&h, GGUF_INT32); h_u32(&h, 32);
    EXPECT_ERROR(h, "has type i32, expected u32");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "t5", 5, (uint64_t[5]){1, 1, 1, 1, 1}, 0, 0); h_pad(&h, 64);
    EXPECT_ERROR(h, "tensor 't5': 5 dimensions");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "big", 3, (uint64_t[3]){1ull << 32, 1ull << 32, 4}, 0, 0);
    h_pad(&h, 64);
    EXPECT_ERROR(h, "tensor 'big': shape overflows");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "neg", 2, (uint64_t[2]){4, (uint64_t)-3}, 0, 0); h_pad(&h, 64);
    EXPECT_ERROR(h, "tensor 'neg': ne[1] = -3 is negative");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "bytes", 2, (uint64_t[2]){1ull << 40, 1ull << 22}, 0, 0);
    h_pad(&h, 64);
    EXPECT_ERROR(h, "tensor 'bytes': byte size overflows");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "q4_2", 1, ne, 4, 0); h_pad(&h, 64);
    EXPECT_ERROR(h, "tensor 'q4_2': unknown ggml type 4");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "odd", 1, (uint64_t[1]){48}, GGML_Q4_0, 0); h_pad(&h, 64);
    EXPECT_ERROR(h, "tensor 'odd': row length 48 is not a multiple of the Q4_0 block size 32");

    h_head(&h, 3, 2, 0);
    h_tensor(&h, "a", 1, ne, GGML_F32, 0);
    h_tensor(&h, "b", 1, ne, GGML_F32, 136);
    h_pad(&h, 512);
    EXPECT_ERROR(h, "tensor 'b': offset 136 is not a multiple of the alignment 32");

    h_head(&h, 3, 2, 0);
    h_tensor(&h, "a", 1, ne, GGML_F32, 0);
    h_tensor(&h, "a", 1, ne, GGML_F32, 128);
    h_pad(&h, 512);
    EXPECT_ERROR(h, "duplicate tensor 'a'");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "blk.0.attn_q.weight", 2, (uint64_t[2]){64, 16}, GGML_F32, 0);
    h_pad(&h, 2000);
    EXPECT_ERROR(h, "tensor 'blk.0.attn_q.weight': data [offset 96, 4096 bytes] runs past end of file (size 2096)");

    h_head(&h, 3, 1, 0);
    h_tensor(&h, "far", 1, ne, GGML_F32, 0xffffffffffffffe0ull);
    h_pad(&h, 256);
    EXPECT_ERROR(h, "tensor 'far': data [offset");

    /* Tensor infos end before the padding to the data section. */
    h_head(&h, 3, 1, 0);
    h_tensor(&h, "nopad", 1, ne, GGML_F32, 0);
    EXPECT_ERROR(h, "data section would start at byte");

    /* A valid minimal file, so the cases above fail for their own reason. */
    h_head(&h, 3, 1, 1);
    h_str(&h, "general.alignment"); h_u32(&h, GGUF_UINT32); h_u32(&h, 32);
    h_tensor(&h, "ok", 1, ne, GGML_F32, 0);
    h_pad(&h, 128);
    gguf_file *g;
    em_err err;
    CHECK_INT(gguf_open_mem(h.b.s, h.b.len, "ok.gguf", &g, &err), 0);
    CHECK_INT(g->tensors[0].nbytes, 128);
    gguf_close(g);
    em_buf_free(&h.b);

    /* v2 has the same layout as v3. */
    h_head(&h, 2, 0, 1);
    h_str(&h, "v"); h_u32(&h, GGUF_INT64); h_u64(&h, (uint64_t)-5);
    int64_t v = 0;
    CHECK_INT(gguf_open_mem(h.b.s, h.b.len, "v2.gguf", &g, &err), 0);
    CHECK(gguf_get_i64(g, "v", &v) == 0 && v == -5);
    gguf_close(g);
    em_buf_free(&h.b);
}

TEST(test_open_errors)
{
    gguf_file *g;
    em_err err;
    CHECK_INT(gguf_open("/nonexistent/x.gguf", &g, &err), -1);
    CHECK_HAS(err.msg, "/nonexistent/x.gguf: No such file");
    char *dir = tl_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/empty.gguf", dir);
    FILE *f = fopen(path, "wb");
    fclose(f);
    CHECK_INT(gguf_open(path, &g, &err), -1);
    CHECK_HAS(err.msg, "empty.gguf: not a GGUF file");
    CHECK_INT(gguf_open(dir, &g, &err), -1);
    CHECK_HAS(err.msg, "not a regular file");
    free(dir);
}

/* The writer lays files out exactly as llama.cpp's does: copying every
 * key and tensor of each fixture reproduces it byte for byte. The vocab
 * files (written by an older gguf-py) differ only in that they stop
 * without padding the empty data section. */
static void writer_reproduces(int want_vocab)
{
    static const char *files[] = {
        "fixtures/gguf/tiny-llama-f32.gguf", "fixtures/gguf/tiny-llama-q4_0.gguf",
        "fixtures/gguf/wide-llama-q4_k.gguf", "fixtures/gguf/tiny-gpt2-f16.gguf",
        "refs/tokenizer/ggml-vocab-llama-spm.gguf",
        "refs/tokenizer/ggml-vocab-gpt-2.gguf",
    };
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        /* the vocab files are shipped (tests/data/tokenizer); the fixture
         * files as llama.cpp wrote them only in ../shared */
        int vocab = !strncmp(files[k], "refs/", 5);
        if (vocab != want_vocab)
            continue;
        char rel[128];
        snprintf(rel, sizeof rel, "tokenizer/%s", files[k] + strlen("refs/tokenizer/"));
        char *path = vocab ? tl_data(rel) : tl_shared(files[k]);
        CHECK_MSG(path || !vocab, "tests/data/%s missing", rel);
        if (!path)
            return;
        gguf_file *g;
        em_err err;
        int rc = gguf_open(path, &g, &err);
        free(path);
        CHECK_MSG(rc == 0, "%s", err.msg);
        if (rc)
            continue;
        gguf_writer *w = gguf_writer_new();
        for (uint64_t i = 0; i < g->n_kv; i++)
            gguf_writer_copy_kv(w, &g->kv[i]);
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const gguf_tensor *t = &g->tensors[i];
            gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne,
                                   t->data, t->nbytes);
        }
        void *buf;
        size_t n;
        CHECK_INT(gguf_writer_write_mem(w, &buf, &n, &err), 0);
        size_t same = 0;
        while (same < n && same < g->size &&
               ((char *)buf)[same] == ((char *)g->map)[same])
            same++;
        if (g->n_tensors)
            CHECK_MSG(n == g->size && same == n, "%s: %zu bytes written, "
                      "%zu in the file, first difference at byte %zu",
                      files[k], n, g->size, same);
        else
            CHECK_MSG(same == g->size && n == g->data_offset, "%s: first "
                      "difference at byte %zu", files[k], same);
        free(buf);
        gguf_writer_free(w);
        gguf_close(g);
    }
}

TEST(test_writer_reproduces_llama_cpp) { writer_reproduces(1); }
TEST(test_writer_reproduces_llama_cpp_fixtures) { writer_reproduces(0); }

int main(void)
{
    RUN(test_type_table);
    RUN(test_fixtures_open);
    RUN(test_shipped_fixtures_open);
    RUN(test_shipped_checksums);
    RUN(test_fixture_llama_metadata);
    RUN(test_vocab_files_open);
    RUN(test_vocab_file_falcon);
    RUN(test_fixture_checksums);
    RUN(test_writer_roundtrip);
    RUN(test_writer_alignment);
    RUN(test_writer_reproduces_llama_cpp);
    RUN(test_writer_reproduces_llama_cpp_fixtures);
    RUN(test_writer_misuse);
    RUN(test_truncation_every_byte);
    RUN(test_hostile_headers);
    RUN(test_open_errors);
    return tl_summary();
}

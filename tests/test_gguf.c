/*
 * test_gguf.c - the GGUF reader and writer: the shared fixtures and vocab
 * files, checksums, writer round trips, truncation at every byte and
 * hand-made hostile headers.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/gguf.h"
#include "harness/common.h"
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

static void check_fixture(const fixture *f)
{
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/gguf/%s", f->file);
    char *path = tl_shared(rel);
    if (!path)
        return;
    gguf_file *g;
    em_err err;
    int rc = gguf_open(path, &g, &err);
    CHECK_MSG(rc == 0, "%s: %s", f->file, err.msg);
    free(path);
    if (rc)
        return;
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
}

TEST(test_fixtures_open)
{
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++)
        check_fixture(&fixtures[i]);
}

TEST(test_fixture_llama_metadata)
{
    char *path = tl_shared("fixtures/gguf/tiny-llama-q4_0.gguf");
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
    CHECK(sc && sc->arr_type == GGUF_FLOAT32 && sc->n == 32000 && sc->data);
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

TEST(test_vocab_files_open)
{
    static const struct { const char *f, *model; uint64_t n; } v[] = {
        {"ggml-vocab-llama-spm.gguf", "llama", 32000},
        {"ggml-vocab-gpt-2.gguf", "gpt2", 50257},
        {"ggml-vocab-gpt-neox.gguf", "gpt2", 50432},
        {"ggml-vocab-falcon.gguf", "gpt2", 65024},
    };
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
        char rel[128];
        snprintf(rel, sizeof rel, "refs/tokenizer/%s", v[k].f);
        char *path = tl_shared(rel);
        if (!path)
            return;
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

int main(void)
{
    RUN(test_type_table);
    RUN(test_fixtures_open);
    RUN(test_fixture_llama_metadata);
    RUN(test_vocab_files_open);
    RUN(test_fixture_checksums);
    return tl_summary();
}

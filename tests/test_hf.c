/*
 * test_hf.c - Hugging Face checkpoint directories (backends/engine/hf.c,
 * safetensors.c): the engine's parity fixtures written out as checkpoint
 * directories (tests/hf_write.c) must give the logits of the GGUF files
 * bit for bit; BF16 must agree with the same values in F32; every kind of
 * bad input is an error that names the file and the key or tensor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/engine/gguf.h"
#include "backends/engine/hf.h"
#include "backends/engine/model.h"
#include "backends/engine/safetensors.h"
#include "backends/engine/tokenizer.h"
#include "tests/hf_write.h"
#include "tests/testlib.h"

#define N_TOK 24

static model *build(const char *path, const char *type, em_err *err)
{
    model_opts o = {.n_threads = 2, .kv_exact = 0, .load_type = type};
    model *m = NULL;
    return model_build(path, &o, &m, err) ? NULL : m;
}

/* Logits of a fixed token sequence, all rows. */
static float *logits(model *m)
{
    int32_t tok[N_TOK];
    for (int i = 0; i < N_TOK; i++)
        tok[i] = (int32_t)((i * 37 + 11) % m->hp.n_vocab);
    float *lg = malloc(sizeof(float) * N_TOK * (size_t)m->hp.n_vocab);
    em_err err;
    if (model_forward(m, tok, N_TOK, 0, N_TOK, lg, &err)) {
        tl_fail(__FILE__, __LINE__, "forward: %s", err.msg);
        free(lg);
        return NULL;
    }
    return lg;
}

/* Max |difference| of the log-probabilities of rows of n_vocab logits. */
static double max_logprob_diff(const float *a, const float *b, int rows,
                               int n_vocab)
{
    double w = 0;
    for (int r = 0; r < rows; r++) {
        const float *x = a + (size_t)r * n_vocab, *y = b + (size_t)r * n_vocab;
        double mx = -INFINITY, my = -INFINITY, sx = 0, sy = 0;
        for (int i = 0; i < n_vocab; i++) {
            mx = x[i] > mx ? x[i] : mx;
            my = y[i] > my ? y[i] : my;
        }
        for (int i = 0; i < n_vocab; i++) {
            sx += exp(x[i] - mx);
            sy += exp(y[i] - my);
        }
        for (int i = 0; i < n_vocab; i++) {
            double d = fabs((x[i] - mx - log(sx)) - (y[i] - my - log(sy)));
            w = d > w ? d : w;
        }
    }
    return w;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= w))
            w = isnan(d) ? INFINITY : d;
    }
    return w;
}

/* The fixture as a directory (dtype NULL: each tensor's own type). */
static char *as_dir(const char *fixture, const char *dtype, int shards,
                    char **gguf)
{
    *gguf = tl_fixture(fixture);
    if (!*gguf)
        return NULL;
    char *tmp = tl_tmpdir(), dir[4200];
    snprintf(dir, sizeof dir, "%s/%s", tmp, fixture);
    free(tmp);
    hf_write_opts o = {dtype, shards};
    em_err err;
    if (hf_write(*gguf, dir, &o, &err)) {
        tl_fail(__FILE__, __LINE__, "hf_write %s: %s", fixture, err.msg);
        return NULL;
    }
    return em_strdup(dir);
}

/* The same ids, BOS included, from both files' tokenizers. */
static void same_tokens(const gguf_file *a, const gguf_file *b)
{
    static const char text[] = "Hello world!\n  12+35=47, \xc3\xa9t\xc3\xa9 "
                               "(tabs\tand <s> too) THE end.";
    tokenizer *ta = NULL, *tb = NULL;
    em_err err;
    CHECK_MSG(tok_build(a, &ta, &err) == 0, "%s", err.msg);
    CHECK_MSG(tok_build(b, &tb, &err) == 0, "%s", err.msg);
    int32_t *ia = NULL, *ib = NULL;
    int na = 0, nb = 0;
    if (ta && tb && tok_encode(ta, text, strlen(text), 1, &ia, &na, &err) == 0 &&
        tok_encode(tb, text, strlen(text), 1, &ib, &nb, &err) == 0) {
        CHECK_INT(nb, na);
        CHECK(na == nb && !memcmp(ia, ib, sizeof *ia * (size_t)na));
        CHECK_INT(tok_adds_bos(tb), tok_adds_bos(ta));
    }
    free(ia);
    free(ib);
    tok_free(ta);
    tok_free(tb);
}

/* Same logits, bit for bit, from the GGUF file and from the directory. */
static void bit_identical(const char *fixture, int shards)
{
    char *gguf, *dir = as_dir(fixture, NULL, shards, &gguf);
    if (!dir) {
        free(gguf);
        return;
    }
    em_err err;
    model *a = build(gguf, NULL, &err);
    CHECK_MSG(a, "%s: %s", gguf, a ? "" : err.msg);
    model *b = build(dir, NULL, &err);
    CHECK_MSG(b, "%s: %s", dir, b ? "" : err.msg);
    if (a && b) {
        /* the directory computes the GELU its config.json names (erf for
         * NeoX's "gelu", F32 tanh for GPT-2's "gelu_new"); the GGUF file
         * llama.cpp's table. The mapping is what is compared here. */
        CHECK_INT(b->hp.gelu, !strcmp(fixture, "tiny-gptneox-f16") ?
                  MODEL_GELU_ERF : !strcmp(fixture, "tiny-gpt2-f16") ?
                  MODEL_GELU_TANH : MODEL_GELU_GGML);
        b->hp.gelu = a->hp.gelu;
        CHECK_INT(b->hp.n_vocab, a->hp.n_vocab);
        same_tokens(a->gguf, b->gguf);
        CHECK_INT(b->hp.n_rot, a->hp.n_rot);
        CHECK_INT(b->hp.n_head_kv, a->hp.n_head_kv);
        CHECK(b->n_params == a->n_params);
        float *la = logits(a), *lb = logits(b);
        size_t n = (size_t)N_TOK * (size_t)a->hp.n_vocab;
        CHECK_MSG(la && lb && !memcmp(la, lb, n * sizeof *la),
                  "%s: max |diff| %g", fixture, la && lb ? max_diff(la, lb, n) : -1);
        free(la);
        free(lb);
    }
    model_free(a);
    model_free(b);
    free(gguf);
    free(dir);
}

TEST(llama_f32_bit_identical) { bit_identical("tiny-llama-f32", 1); }
TEST(llama_f16_bit_identical) { bit_identical("tiny-llama-f16", 1); }
TEST(gptneox_f16_bit_identical) { bit_identical("tiny-gptneox-f16", 1); }
TEST(gpt2_f16_bit_identical) { bit_identical("tiny-gpt2-f16", 1); }
TEST(sharded_bit_identical) { bit_identical("tiny-gptneox-f16", 3); }

/* F16/BF16 weights against the same values loaded as F32 (exact
 * widening). The gap is the activations' rounding: like llama.cpp, the
 * engine rounds activations to the weights' 16-bit type in the dot
 * products (quant_impl.h), so BF16's 8-bit mantissa costs about eight
 * times F16's 11 bits. */
static void half_against_f32_copy(const char *dtype, ggml_type t, double tol)
{
    char *gguf, *dir = as_dir("tiny-llama-f32", dtype, 1, &gguf);
    if (!dir) {
        free(gguf);
        return;
    }
    em_err err;
    model *a = build(dir, NULL, &err), *b = build(dir, "f32", &err);
    CHECK_MSG(a && b, "%s", err.msg);
    if (a && b) {
        CHECK_INT(a->layers[0].wq.type, t);
        CHECK_INT(b->layers[0].wq.type, GGML_F32);
        float *la = logits(a), *lb = logits(b);
        double lp = la && lb ? max_logprob_diff(la, lb, N_TOK, a->hp.n_vocab) : 1;
        printf("%s vs its f32 copy: max |log-prob diff| %.3g\n", dtype, lp);
        CHECK_MSG(lp < tol, "max |log-prob diff| %g", lp);
        free(la);
        free(lb);
    }
    model_free(a);
    model_free(b);
    free(gguf);
    free(dir);
}

TEST(f16_against_f32_copy) { half_against_f32_copy("F16", GGML_F16, 1e-2); }
TEST(bf16_against_f32_copy) { half_against_f32_copy("BF16", GGML_BF16, 1e-1); }

/* type: q8_0 on load quantises as `emerge convert --type q8_0` does. */
TEST(on_load_q8_0)
{
    char *gguf, *dir = as_dir("tiny-llama-f32", NULL, 1, &gguf);
    if (!dir) {
        free(gguf);
        return;
    }
    em_err err;
    model *a = build(dir, "q8_0", &err);
    CHECK_MSG(a, "%s", a ? "" : err.msg);
    if (a) {
        CHECK_INT(a->layers[1].w_down.type, GGML_Q8_0);
        CHECK(a->out_norm != NULL);
    }
    model *b = build(dir, "q4_k", &err);
    CHECK(!b);
    /* names the checkpoint's tensor and the block that does not divide */
    CHECK_MSG(strstr(err.msg, "Q4_K") &&
              strstr(err.msg, "model.embed_tokens.weight"), "%s", err.msg);
    /* on a GGUF file the option would do nothing: an error says so */
    model *c = build(gguf, "q8_0", &err);
    CHECK(!c);
    CHECK_MSG(strstr(err.msg, "option type 'q8_0'"), "%s", err.msg);
    model_free(a);
    model_free(b);
    free(gguf);
    free(dir);
}

/* ------------------------------------------------------- bad input */

static void put(const char *dir, const char *name, const char *text)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *dir, const char *name)
{
    char p[4200], *s;
    size_t n;
    em_err err;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return em_read_file(p, &s, &n, &err) ? NULL : s;
}

/* config.json with the value of "key" replaced by text (the key must
 * occur); the value ends at the next ',', newline or '}'. */
static void edit_config(const char *dir, const char *key, const char *text)
{
    char *c = slurp(dir, "config.json"), pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    char *at = c ? strstr(c, pat) : NULL;
    CHECK_MSG(at, "config.json has no key '%s'", key);
    if (!at) {
        free(c);
        return;
    }
    at += strlen(pat);
    at += strspn(at, " \t");
    em_buf b = {0};
    em_buf_put(&b, c, (size_t)(at - c));
    em_buf_puts(&b, text);
    em_buf_puts(&b, at + strcspn(at, ",\n}"));
    put(dir, "config.json", b.s);
    em_buf_free(&b);
    free(c);
}

/* A fresh directory of fixture, damaged by fn, must fail to open with an
 * error containing each of the words. */
static void expect_error(const char *fixture, int shards,
                         void (*damage)(const char *dir), const char *w1,
                         const char *w2)
{
    char *gguf, *dir = as_dir(fixture, NULL, shards, &gguf);
    if (!dir) {
        free(gguf);
        return;
    }
    damage(dir);
    gguf_file *g = NULL;
    em_err err = {{0}};
    int rc = hf_open(dir, NULL, &g, &err);
    CHECK_MSG(rc != 0, "opened a damaged directory (%s)", w1);
    CHECK_MSG(strstr(err.msg, w1) && (!w2 || strstr(err.msg, w2)),
              "error '%s' lacks '%s'/'%s'", err.msg, w1, w2 ? w2 : "");
    gguf_close(g);
    free(gguf);
    free(dir);
}

static void rm(const char *dir, const char *name)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    remove(p);
}

static void truncate_file(const char *dir, const char *name, long keep)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    CHECK(truncate(p, keep) == 0);
}

static void no_shard(const char *d) { rm(d, "model-00002-of-00002.safetensors"); }
static void short_shard(const char *d)
{
    truncate_file(d, "model-00002-of-00002.safetensors", 4000);
}
static void no_config(const char *d) { rm(d, "config.json"); }
static void bad_json(const char *d) { put(d, "config.json", "{\n \"a\": 1,\n oops\n}"); }
static void unknown_arch(const char *d)
{
    edit_config(d, "architectures", "[\"MambaForCausalLM\"]");
}
static void rope_scaling(const char *d)
{
    edit_config(d, "rope_scaling", "{\"type\": \"linear\"}");
}
static void wrong_hidden(const char *d) { edit_config(d, "hidden_size", "32"); }
static void wrong_vocab(const char *d) { edit_config(d, "vocab_size", "1000"); }
static void fewer_layers(const char *d)
{
    edit_config(d, "num_hidden_layers", "1");
}
static void window(const char *d)
{
    edit_config(d, "rope_scaling", "null, \"sliding_window\": 64");
}
static void pickle_only(const char *d)
{
    rm(d, "model.safetensors");
    put(d, "pytorch_model.bin", "PK");
}
static void not_silu(const char *d) { edit_config(d, "hidden_act", "\"relu\""); }

TEST(errors_name_file_and_key)
{
    expect_error("tiny-llama-f32", 2, no_shard, "model-00002-of-00002", "missing");
    expect_error("tiny-llama-f32", 2, short_shard, "model-00002-of-00002", NULL);
    expect_error("tiny-llama-f32", 1, no_config, "config.json", NULL);
    expect_error("tiny-llama-f32", 1, bad_json, "config.json:3", NULL);
    expect_error("tiny-llama-f32", 1, unknown_arch, "architectures", "MambaForCausalLM");
    expect_error("tiny-llama-f32", 1, rope_scaling, "rope_scaling", NULL);
    expect_error("tiny-llama-f32", 1, wrong_hidden, "hidden_size 32", "has shape");
    expect_error("tiny-llama-f32", 1, wrong_vocab, "vocab_size", NULL);
    expect_error("tiny-llama-f32", 1, fewer_layers, "model.layers.1.", "not part");
    expect_error("tiny-llama-f32", 1, window, "sliding_window", NULL);
    expect_error("tiny-llama-f32", 1, pickle_only, "pytorch_model.bin", NULL);
    expect_error("tiny-llama-f32", 1, not_silu, "hidden_act", "relu");
}

/* A tensor of a dtype the engine does not read. */
TEST(dtype_error_names_tensor)
{
    char *tmp = tl_tmpdir(), dir[4200], path[4300];
    snprintf(dir, sizeof dir, "%s/x", tmp);
    char *gguf, *src = as_dir("tiny-gpt2-f16", NULL, 1, &gguf);
    if (!src) {
        free(gguf);
        free(tmp);
        return;
    }
    /* replace the shard with one whose embedding is I64 */
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    st_file *f;
    em_err err;
    CHECK(st_open(path, &f, &err) == 0);
    hf_wtensor *t = calloc((size_t)f->n_tensors, sizeof *t);
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *s = &f->tensors[i];
        int emb = !strcmp(s->name, "wte.weight");
        t[i] = (hf_wtensor){s->name, emb ? "I16" : s->dtype, s->n_dims,
                            {s->shape[0], s->shape[1]}, s->data, s->nbytes};
    }
    char out[4300];
    snprintf(out, sizeof out, "%s/new.safetensors", src);
    CHECK(hf_write_safetensors(out, t, f->n_tensors, &err) == 0);
    st_close(f);
    free(t);
    CHECK(rename(out, path) == 0);
    gguf_file *g = NULL;
    CHECK(hf_open(src, NULL, &g, &err) != 0);
    CHECK_MSG(strstr(err.msg, "wte.weight") && strstr(err.msg, "I16"), "%s",
              err.msg);
    gguf_close(g);
    free(gguf);
    free(src);
    free(tmp);
}

/* ------------------------------------------------- hostile headers */

/* A valid two-tensor file in memory: 8-byte length, header, data. */
static size_t st_make(char *buf, size_t cap, const char *header, size_t data)
{
    size_t n = strlen(header);
    for (int i = 0; i < 8; i++)
        buf[i] = (char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    if (8 + n + data > cap)
        return 0;
    memset(buf + 8 + n, 0, data);
    return 8 + n + data;
}

static void st_expect(const char *header, size_t data, const char *word)
{
    static char buf[4096];
    size_t n = st_make(buf, sizeof buf, header, data);
    st_file *f = NULL;
    em_err err = {{0}};
    int rc = st_open_mem(buf, n, "h.safetensors", &f, &err);
    if (!word) {
        CHECK_MSG(rc == 0, "%s: %s", header, err.msg);
    } else {
        CHECK_MSG(rc != 0 && strstr(err.msg, word) &&
                  strstr(err.msg, "h.safetensors"),
                  "%s: rc %d, '%s' lacks '%s'", header, rc, err.msg, word);
    }
    st_close(f);
}

TEST(safetensors_hostile_headers)
{
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                     "\"__metadata__\":{\"format\":\"pt\"}}";
    st_expect(ok, 16, NULL);
    st_expect("{}", 0, NULL);
    st_expect(ok, 8, "past the end");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}}", 16, "'a'");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16, "span");
    st_expect("{\"a\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "dtype");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "dimensions");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4, "overflows");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "twice");
    st_expect("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", 8, "data_offsets");
    st_expect("{\"a\":[1,2]}", 0, "not an object");
    st_expect("{\"a\":{\"dtype\":\"F32\"", 0, "JSON");
    st_expect("[1,2,3]", 0, "safetensors");
    st_expect("{} garbage", 0, "after the header");
    /* a length past the file, and above the cap */
    char buf[16] = {0};
    st_file *f = NULL;
    em_err err;
    buf[0] = 100;
    CHECK(st_open_mem(buf, sizeof buf, "h.safetensors", &f, &err) != 0 &&
          strstr(err.msg, "past the end"));
    CHECK(st_open_mem(buf, 5, "h.safetensors", &f, &err) != 0 &&
          strstr(err.msg, "too short"));
}

/* Random damage to a real file: every variant opens or fails cleanly
 * (ASan/UBSan watch the reader); none may crash. */
TEST(safetensors_mutations)
{
    char *gguf, *dir = as_dir("tiny-gpt2-f16", NULL, 1, &gguf);
    if (!dir) {
        free(gguf);
        return;
    }
    char *data;
    size_t n;
    em_err err;
    char path[4300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(em_read_file(path, &data, &n, &err) == 0);
    size_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | (unsigned char)data[i];
    uint64_t seed = 7;
    int opened = 0, failed = 0;
    char *copy = malloc(n);
    for (int it = 0; it < 400; it++) {
        memcpy(copy, data, n);
        int k = 1 + (int)(em_splitmix64(&seed) % 4);
        for (int j = 0; j < k; j++) {
            size_t at = (size_t)(em_splitmix64(&seed) % (hl + 8));
            copy[at] = "0123456789[]{},\":-.eE \x01\xff"[em_splitmix64(&seed) % 24];
        }
        size_t len = it % 5 == 0 ? (size_t)(em_splitmix64(&seed) % n) : n;
        st_file *f = NULL;
        if (st_open_mem(copy, len, "m.safetensors", &f, &err) == 0) {
            opened++;
            for (int i = 0; i < f->n_tensors; i++) /* every view readable */
                CHECK((const char *)f->tensors[i].data + f->tensors[i].nbytes <=
                      copy + len);
        } else {
            failed++;
        }
        st_close(f);
    }
    printf("400 damaged files: %d opened, %d refused\n", opened, failed);
    CHECK(failed > 0);
    free(copy);
    free(data);
    free(gguf);
    free(dir);
}

/* inspect/tokenize/run open directories through hf_open_path. */
TEST(open_path_dispatch)
{
    char *gguf, *dir = as_dir("tiny-gptneox-f16", NULL, 1, &gguf);
    if (!dir) {
        free(gguf);
        return;
    }
    gguf_file *a, *b;
    em_err err;
    CHECK(hf_open_path(gguf, NULL, &a, &err) == 0);
    CHECK_MSG(hf_open_path(dir, NULL, &b, &err) == 0, "%s", err.msg);
    if (a && b) {
        CHECK(b->n_tensors == a->n_tensors);
        char *arch = gguf_get_str(b, "general.architecture");
        CHECK(arch && !strcmp(arch, "gptneox"));
        free(arch);
        uint64_t nrot = 0;
        CHECK(gguf_get_u64(b, "gptneox.rope.dimension_count", &nrot) == 0 &&
              nrot == 4);
    }
    gguf_close(a);
    gguf_close(b);
    free(gguf);
    free(dir);
}

/* Every tensor of a equal in b: name, type, shape and bytes. */
static void same_tensors(const gguf_file *a, const gguf_file *b)
{
    CHECK_INT((int)b->n_tensors, (int)a->n_tensors);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const gguf_tensor *x = &a->tensors[i];
        const gguf_tensor *y = gguf_find_tensor(b, x->name);
        CHECK_MSG(y && y->type == x->type && y->n_dims == x->n_dims &&
                  !memcmp(y->ne, x->ne, sizeof x->ne) &&
                  y->nbytes == x->nbytes &&
                  !memcmp(y->data, x->data, x->nbytes),
                  "%s: tensor '%s' differs after convert hf", a->path, x->name);
    }
}

/* emerge convert hf: the directory saved as GGUF holds the fixture's
 * tensors byte for byte (so llama.cpp, which computed the fixtures'
 * reference logits, reads the same model), the architecture keys travel,
 * and the logits are the fixture's bit for bit. */
static void convert_round_trip(const char *fixture, int shards)
{
    char *gguf, *dir = as_dir(fixture, NULL, shards, &gguf);
    if (!dir) {
        free(gguf);
        return;
    }
    char out[4300], *log = NULL;
    snprintf(out, sizeof out, "%s.gguf", dir);
    const char *bin = getenv("EMERGE_BIN");
    int rc = tl_sh(&log, "%s convert hf '%s' -o '%s'",
                   bin && *bin ? bin : "build/asan/emerge", dir, out);
    CHECK_MSG(rc == 0, "status %d: %s", rc, log);
    free(log);
    em_err err;
    model *a = build(gguf, NULL, &err), *b = build(out, NULL, &err);
    CHECK_MSG(a && b, "%s", err.msg);
    if (a && b) {
        same_tensors(a->gguf, b->gguf);
        CHECK_STR(b->hp.arch_name, a->hp.arch_name);
        CHECK(b->hp.rope_base == a->hp.rope_base && b->hp.norm_eps == a->hp.norm_eps &&
              b->hp.n_ctx_train == a->hp.n_ctx_train && b->hp.par_res == a->hp.par_res);
        b->hp.gelu = a->hp.gelu; /* the directory's config names erf/tanh */
        float *la = logits(a), *lb = logits(b);
        CHECK(la && lb && !memcmp(la, lb, sizeof(float) * N_TOK *
                                  (size_t)a->hp.n_vocab));
        free(la);
        free(lb);
    }
    model_free(a);
    model_free(b);
    free(gguf);
    free(dir);
}

TEST(convert_hf_round_trip)
{
    convert_round_trip("tiny-gptneox-f16", 2);
    convert_round_trip("tiny-llama-f32", 1);
    convert_round_trip("tiny-llama-f16", 1);
    convert_round_trip("tiny-gpt2-f16", 1);
}

int main(void)
{
    RUN(llama_f32_bit_identical);
    RUN(llama_f16_bit_identical);
    RUN(gptneox_f16_bit_identical);
    RUN(gpt2_f16_bit_identical);
    RUN(sharded_bit_identical);
    RUN(f16_against_f32_copy);
    RUN(bf16_against_f32_copy);
    RUN(on_load_q8_0);
    RUN(errors_name_file_and_key);
    RUN(dtype_error_names_tensor);
    RUN(safetensors_hostile_headers);
    RUN(safetensors_mutations);
    RUN(open_path_dispatch);
    RUN(convert_hf_round_trip);
    return tl_summary();
}

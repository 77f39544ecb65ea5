/*
 * test_llama2c.c - llama2.c checkpoint conversion: tiny checkpoints are
 * written here in llama2.c's binary format, converted, and every tensor
 * and key of the GGUF is checked against an independent reading of the
 * format.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/engine/gguf.h"
#include "backends/engine/llama2c.h"
#include "backends/engine/model.h"
#include "backends/engine/quant.h"
#include "base/common.h"
#include "tests/testlib.h"

typedef struct ck {
    int32_t dim, hidden, layers, heads, kv_heads, vocab, seq;
    int shared, freq;
} ck;

/* Weight k of the file is the float k: every tensor's slice is unique,
 * so any offset mistake shows. With a seed, random weights instead. */
static float *write_model_seeded(const char *path, const ck *c,
                                 size_t *n_floats, uint64_t seed)
{
    size_t D = c->dim, H = c->hidden, L = c->layers, V = c->vocab,
           KV = D / c->heads * c->kv_heads, hs = D / c->heads;
    size_t n = V * D + L * D + L * D * D + 2 * L * D * KV + L * D * D +
               L * D + 3 * L * D * H + D +
               (c->freq ? 2 * (c->seq * hs / 2) : 0) + (c->shared ? 0 : V * D);
    float *w = malloc(n * sizeof *w);
    for (size_t k = 0; k < n; k++)
        w[k] = seed ? (float)(em_rand01(&seed) - 0.5) : (float)k;
    int32_t hdr[7] = {c->dim, c->hidden, c->layers, c->heads, c->kv_heads,
                      c->shared ? c->vocab : -c->vocab, c->seq};
    FILE *f = fopen(path, "wb");
    fwrite(hdr, 4, 7, f);
    fwrite(w, 4, n, f);
    fclose(f);
    *n_floats = n;
    return w;
}

static float *write_model(const char *path, const ck *c, size_t *n_floats)
{
    return write_model_seeded(path, c, n_floats, 0);
}

static const char *piece(int i, char *buf)
{
    static const char *words[] = {" the", "ing", " a b", "", "x"};
    if (i == 0) return "<unk>";
    if (i == 1) return "\n<s>\n";
    if (i == 2) return "\n</s>\n";
    if (i < 259) { snprintf(buf, 16, "<0x%02X>", i - 3); return buf; }
    return words[(i - 259) % 5];
}

static void write_tokenizer(const char *path, int n)
{
    FILE *f = fopen(path, "wb");
    int32_t max = 7;
    fwrite(&max, 4, 1, f);
    for (int i = 0; i < n; i++) {
        char buf[16];
        const char *p = piece(i, buf);
        float score = -(float)i;
        int32_t len = (int32_t)strlen(p);
        fwrite(&score, 4, 1, f);
        fwrite(&len, 4, 1, f);
        fwrite(p, 1, (size_t)len, f);
    }
    fclose(f);
}

static void check_tensor(const gguf_file *g, const char *name, int64_t ne0,
                         int64_t ne1, const float *want)
{
    const gguf_tensor *t = gguf_find_tensor(g, name);
    CHECK_MSG(t != NULL, "tensor %s missing", name);
    if (!t)
        return;
    CHECK_MSG(t->type == GGML_F32 && t->ne[0] == ne0 && t->ne[1] == ne1,
              "%s: type %s shape [%lld %lld], expected F32 [%lld %lld]",
              name, ggml_type_name(t->type), (long long)t->ne[0],
              (long long)t->ne[1], (long long)ne0, (long long)ne1);
    if (t->nbytes == (size_t)(ne0 * ne1) * 4)
        CHECK_MSG(!memcmp(t->data, want, t->nbytes), "%s: values differ "
                  "(first %g, expected %g)", name, *(const float *)t->data,
                  want[0]);
}

static void convert_and_check(const ck *c)
{
    char *dir = tl_tmpdir(), model[512], tok[512], out[512];
    snprintf(model, sizeof model, "%s/stories.bin", dir);
    snprintf(tok, sizeof tok, "%s/tokenizer.bin", dir);
    snprintf(out, sizeof out, "%s/stories.gguf", dir);
    size_t n;
    float *w = write_model(model, c, &n);
    write_tokenizer(tok, c->vocab + 3);   /* extra tokens are ignored */
    em_err err;
    llama2c_config cfg;
    int rc = llama2c_convert(model, tok, out, GGML_F32, &cfg, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    gguf_file *g = NULL;
    if (!rc) {
        rc = gguf_open(out, &g, &err);
        CHECK_MSG(rc == 0, "%s", err.msg);
    }
    if (rc) {
        free(w);
        free(dir);
        return;
    }
    CHECK_INT(cfg.shared_classifier, c->shared);
    CHECK_INT(cfg.has_freq_cis, c->freq);

    /* Metadata. */
    char *s = gguf_get_str(g, "general.architecture");
    CHECK_STR(s, "llama");
    free(s);
    s = gguf_get_str(g, "general.name");
    CHECK_STR(s, "llama2.c stories");
    free(s);
    s = gguf_get_str(g, "tokenizer.ggml.model");
    CHECK_STR(s, "llama");
    free(s);
    struct { const char *k; uint64_t v; } u[] = {
        {"llama.context_length", (uint64_t)c->seq},
        {"llama.embedding_length", (uint64_t)c->dim},
        {"llama.feed_forward_length", (uint64_t)c->hidden},
        {"llama.block_count", (uint64_t)c->layers},
        {"llama.attention.head_count", (uint64_t)c->heads},
        {"llama.attention.head_count_kv", (uint64_t)c->kv_heads},
        {"llama.rope.dimension_count", (uint64_t)(c->dim / c->heads)},
        {"tokenizer.ggml.bos_token_id", 1}, {"tokenizer.ggml.eos_token_id", 2},
        {"tokenizer.ggml.unknown_token_id", 0},
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
        uint64_t v = 99999;
        CHECK_MSG(gguf_get_u64(g, u[i].k, &v) == 0 && v == u[i].v,
                  "%s = %llu, expected %llu", u[i].k, (unsigned long long)v,
                  (unsigned long long)u[i].v);
    }
    double eps = 0;
    CHECK_INT(gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &eps), 0);
    CHECK_NEAR(eps, 1e-5, 1e-12);

    /* Vocabulary: pieces restored to SentencePiece form. */
    const gguf_kv *tk = gguf_find_kv(g, "tokenizer.ggml.tokens");
    const gguf_kv *sc = gguf_find_kv(g, "tokenizer.ggml.scores");
    const gguf_kv *ty = gguf_find_kv(g, "tokenizer.ggml.token_type");
    CHECK(tk && sc && ty && tk->n == (uint64_t)c->vocab &&
          sc->n == (uint64_t)c->vocab && ty->n == (uint64_t)c->vocab);
    if (tk && sc && ty && tk->n == (uint64_t)c->vocab) {
        static const struct { int id; const char *s; int type; } want[] = {
            {0, "<unk>", 2}, {1, "<s>", 3}, {2, "</s>", 3},
            {3, "<0x00>", 6}, {13, "<0x0A>", 6}, {258, "<0xFF>", 6},
            {259, "\xe2\x96\x81the", 1}, {260, "ing", 1},
            {261, "\xe2\x96\x81" "a\xe2\x96\x81" "b", 1}, {262, "", 3},
            {263, "x", 1},
        };
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
            int id = want[i].id;
            const gguf_str *p = &tk->strs[id];
            CHECK_MSG(p->len == strlen(want[i].s) &&
                      !memcmp(p->s, want[i].s, p->len),
                      "token %d is '%.*s', expected '%s'", id, (int)p->len,
                      p->s, want[i].s);
            int32_t t;
            float f;
            memcpy(&t, (const char *)ty->data + 4 * id, 4);
            memcpy(&f, (const char *)sc->data + 4 * id, 4);
            CHECK_MSG(t == want[i].type, "token %d type %d, expected %d", id,
                      t, want[i].type);
            CHECK_NEAR(f, -(float)id, 0);
        }
    }

    /* Tensors: walk the file layout independently. */
    int64_t D = c->dim, H = c->hidden, L = c->layers, V = c->vocab,
            KV = D / c->heads * c->kv_heads, hs = D / c->heads;
    const float *p = w;
    CHECK_INT(g->n_tensors, 3 + 9 * L);
    check_tensor(g, "token_embd.weight", D, V, p);
    const float *emb = p;
    p += V * D;
    static const char *names[] = {"attn_norm", "attn_q", "attn_k", "attn_v",
        "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
    int64_t shape[9][2] = {{D, 1}, {D, D}, {D, KV}, {D, KV}, {D, D}, {D, 1},
                           {D, H}, {H, D}, {D, H}};
    for (int k = 0; k < 9; k++) {
        for (int64_t l = 0; l < L; l++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)l,
                     names[k]);
            check_tensor(g, name, shape[k][0], shape[k][1],
                         p + l * shape[k][0] * shape[k][1]);
        }
        p += L * shape[k][0] * shape[k][1];
    }
    check_tensor(g, "output_norm.weight", D, 1, p);
    p += D;
    if (c->freq)
        p += 2 * (c->seq * hs / 2);
    check_tensor(g, "output.weight", D, V, c->shared ? emb : p);
    if (!c->shared)
        p += V * D;
    CHECK_INT(p - w, n);
    gguf_close(g);
    free(w);
    free(dir);
}

TEST(test_convert_unshared_gqa)
{
    ck c = {16, 40, 2, 4, 2, 300, 32, 0, 0};
    convert_and_check(&c);
}

TEST(test_convert_shared_legacy_rope)
{
    ck c = {24, 56, 3, 3, 3, 264, 20, 1, 1};
    convert_and_check(&c);
}

TEST(test_convert_errors)
{
    char *dir = tl_tmpdir(), model[512], tok[512], out[512];
    snprintf(model, sizeof model, "%s/m.bin", dir);
    snprintf(tok, sizeof tok, "%s/t.bin", dir);
    snprintf(out, sizeof out, "%s/o.gguf", dir);
    ck c = {16, 40, 2, 4, 2, 300, 32, 0, 0};
    size_t n;
    em_err err;
    free(write_model(model, &c, &n));
    write_tokenizer(tok, 100);
    CHECK_INT(llama2c_convert(model, tok, out, GGML_F32, NULL, &err), -1);
    CHECK_HAS(err.msg, "t.bin: at byte");
    CHECK_HAS(err.msg, "token 100 of 300 is missing");

    /* A tokenizer whose length field runs past the end. */
    FILE *f = fopen(tok, "wb");
    int32_t hdr[3] = {7, 0, 1000};
    fwrite(hdr, 4, 3, f);
    fclose(f);
    CHECK_INT(llama2c_convert(model, tok, out, GGML_F32, NULL, &err), -1);
    CHECK_HAS(err.msg, "token 0: length 1000 runs past end of file");

    write_tokenizer(tok, 300);
    f = fopen(model, "r+b");
    fseek(f, 0, SEEK_END);
    fwrite("xxxx", 1, 4, f);   /* one float too many */
    fclose(f);
    CHECK_INT(llama2c_convert(model, tok, out, GGML_F32, NULL, &err), -1);
    CHECK_HAS(err.msg, "m.bin: ");
    CHECK_HAS(err.msg, "needs ");

    c.heads = 3;
    free(write_model(model, &c, &n));
    CHECK_INT(llama2c_convert(model, tok, out, GGML_F32, NULL, &err), -1);
    CHECK_HAS(err.msg, "dim 16 is not a multiple of n_heads 3");

    c.heads = 4;
    c.layers = 0;
    free(write_model(model, &c, &n));
    CHECK_INT(llama2c_convert(model, tok, out, GGML_F32, NULL, &err), -1);
    CHECK_HAS(err.msg, "n_layers = 0 must be positive");

    f = fopen(model, "wb");
    fwrite("24ka\2\0\0\0", 1, 8, f);
    for (int i = 0; i < 100; i++)
        fputc(0, f);
    fclose(f);
    CHECK_INT(llama2c_convert(model, tok, out, GGML_F32, NULL, &err), -1);
    CHECK_HAS(err.msg, "export version 2");

    CHECK_INT(llama2c_convert("/nonexistent.bin", tok, out, GGML_F32, NULL, &err), -1);
    CHECK_HAS(err.msg, "/nonexistent.bin: No such file");
    /* Nothing was left behind by the failures. */
    f = fopen(out, "rb");
    CHECK(f == NULL);
    if (f)
        fclose(f);
    free(dir);
}

/* ------------------------------------------------------------------ */
/* llama2.c's forward pass, written from its run.c algorithm, on the raw
 * checkpoint floats: the converted file must give the same logits in
 * emerge's engine, which checks the weight mapping and the claim that
 * wq/wk need no RoPE permutation. */

typedef struct ref {
    const ck *c;
    const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3,
        *rms_final, *wcls;
    float *kcache, *vcache;   /* [layer][pos][kv_dim] */
} ref;

static void ref_init(ref *r, const ck *c, const float *w)
{
    size_t D = c->dim, H = c->hidden, L = c->layers, V = c->vocab,
           KV = D / c->heads * c->kv_heads, hs = D / c->heads;
    r->c = c;
    r->emb = w; w += V * D;
    r->rms_att = w; w += L * D;
    r->wq = w; w += L * D * D;
    r->wk = w; w += L * D * KV;
    r->wv = w; w += L * D * KV;
    r->wo = w; w += L * D * D;
    r->rms_ffn = w; w += L * D;
    r->w1 = w; w += L * D * H;
    r->w2 = w; w += L * H * D;
    r->w3 = w; w += L * D * H;
    r->rms_final = w; w += D;
    if (c->freq)
        w += 2 * (c->seq * hs / 2);
    r->wcls = c->shared ? r->emb : w;
    r->kcache = calloc(L * c->seq * KV, sizeof(float));
    r->vcache = calloc(L * c->seq * KV, sizeof(float));
}

static void rmsnorm(float *o, const float *x, const float *w, int n)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float s = 1.0f / sqrtf((float)(ss / n) + 1e-5f);
    for (int i = 0; i < n; i++)
        o[i] = w[i] * (s * x[i]);
}

static void matmul(float *o, const float *x, const float *w, int n, int d)
{
    for (int i = 0; i < d; i++) {
        double v = 0;
        for (int j = 0; j < n; j++)
            v += (double)w[(size_t)i * n + j] * x[j];
        o[i] = (float)v;
    }
}

static void ref_forward(ref *r, int token, int pos, float *logits)
{
    const ck *c = r->c;
    int D = c->dim, H = c->hidden, hs = D / c->heads,
        KV = hs * c->kv_heads, grp = c->heads / c->kv_heads;
    float x[256], xb[256], xb2[256], q[256], hb[1024], hb2[1024], att[64];
    memcpy(x, r->emb + (size_t)token * D, D * sizeof *x);
    for (int l = 0; l < c->layers; l++) {
        float *kc = r->kcache + (size_t)l * c->seq * KV,
              *vc = r->vcache + (size_t)l * c->seq * KV;
        rmsnorm(xb, x, r->rms_att + l * D, D);
        matmul(q, xb, r->wq + (size_t)l * D * D, D, D);
        matmul(kc + pos * KV, xb, r->wk + (size_t)l * D * KV, D, KV);
        matmul(vc + pos * KV, xb, r->wv + (size_t)l * D * KV, D, KV);
        for (int i = 0; i < D; i += 2) {   /* run.c's RoPE: pairs (i, i+1) */
            float freq = 1.0f / powf(10000.0f, (float)(i % hs) / (float)hs);
            float fcr = cosf(pos * freq), fci = sinf(pos * freq);
            for (int v = 0; v < (i < KV ? 2 : 1); v++) {
                float *vec = v == 0 ? q : kc + pos * KV;
                float v0 = vec[i], v1 = vec[i + 1];
                vec[i] = v0 * fcr - v1 * fci;
                vec[i + 1] = v0 * fci + v1 * fcr;
            }
        }
        for (int h = 0; h < c->heads; h++) {
            const float *qh = q + h * hs;
            int kvh = h / grp;
            float mx = -1e30f, sum = 0;
            for (int t = 0; t <= pos; t++) {
                float s = 0;
                for (int i = 0; i < hs; i++)
                    s += qh[i] * kc[t * KV + kvh * hs + i];
                att[t] = s / sqrtf((float)hs);
                mx = att[t] > mx ? att[t] : mx;
            }
            for (int t = 0; t <= pos; t++)
                sum += att[t] = expf(att[t] - mx);
            for (int i = 0; i < hs; i++) {
                float v = 0;
                for (int t = 0; t <= pos; t++)
                    v += att[t] / sum * vc[t * KV + kvh * hs + i];
                xb[h * hs + i] = v;
            }
        }
        matmul(xb2, xb, r->wo + (size_t)l * D * D, D, D);
        for (int i = 0; i < D; i++)
            x[i] += xb2[i];
        rmsnorm(xb, x, r->rms_ffn + l * D, D);
        matmul(hb, xb, r->w1 + (size_t)l * D * H, D, H);
        matmul(hb2, xb, r->w3 + (size_t)l * D * H, D, H);
        for (int i = 0; i < H; i++)
            hb[i] = hb[i] / (1.0f + expf(-hb[i])) * hb2[i];
        matmul(xb, hb, r->w2 + (size_t)l * H * D, H, D);
        for (int i = 0; i < D; i++)
            x[i] += xb[i];
    }
    rmsnorm(xb, x, r->rms_final, D);
    matmul(logits, xb, r->wcls, D, c->vocab);
}

static void forward_matches(const ck *c)
{
    char *dir = tl_tmpdir(), model_path[512], tok[512], out[512];
    snprintf(model_path, sizeof model_path, "%s/m.bin", dir);
    snprintf(tok, sizeof tok, "%s/t.bin", dir);
    snprintf(out, sizeof out, "%s/m.gguf", dir);
    size_t n;
    float *w = write_model_seeded(model_path, c, &n, 42);
    write_tokenizer(tok, c->vocab);
    em_err err;
    model *m = NULL;
    int rc = llama2c_convert(model_path, tok, out, GGML_F32, NULL, &err);
    model_opts mo = {1, 0, 0, 1, NULL};
    if (!rc)
        rc = model_build(out, &mo, &m, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (!rc) {
        ref r;
        ref_init(&r, c, w);
        int32_t toks[6] = {1, 298, 17, 265, 4, 299};
        float *got = malloc(6 * c->vocab * sizeof *got),
              *want = malloc(c->vocab * sizeof *want);
        rc = model_forward(m, toks, 6, 0, 6, got, &err);
        CHECK_MSG(rc == 0, "%s", err.msg);
        double worst = 0;
        for (int pos = 0; pos < 6; pos++) {
            ref_forward(&r, toks[pos], pos, want);
            for (int i = 0; i < c->vocab; i++) {
                double d = fabs(got[pos * c->vocab + i] - want[i]);
                worst = d > worst ? d : worst;
            }
        }
        CHECK_MSG(worst < 1e-4, "logits differ from llama2.c's algorithm by %g",
                  worst);
        free(got);
        free(want);
        free(r.kcache);
        free(r.vcache);
        model_free(m);
    }
    free(w);
    free(dir);
}

TEST(test_forward_matches_llama2c)
{
    ck gqa = {32, 72, 2, 4, 2, 320, 16, 0, 0};
    forward_matches(&gqa);
    ck shared = {48, 64, 2, 6, 6, 300, 16, 1, 1};
    forward_matches(&shared);
}

/* --type: matrices quantised row by row (values within the type's
 * rounding of the checkpoint's), norms kept F32, bad shapes refused. */
TEST(test_convert_quantised)
{
    char *dir = tl_tmpdir(), model[512], tok[512], out[512];
    snprintf(model, sizeof model, "%s/q.bin", dir);
    snprintf(tok, sizeof tok, "%s/t.bin", dir);
    snprintf(out, sizeof out, "%s/q.gguf", dir);
    ck c = {32, 64, 1, 4, 2, 260, 8, 1, 0};
    size_t n;
    float *w = write_model_seeded(model, &c, &n, 7);
    write_tokenizer(tok, c.vocab);
    em_err err;
    static const struct { ggml_type t; double tol; } types[] = {
        {GGML_F16, 1e-3}, {GGML_BF16, 4e-3}, {GGML_Q8_0, 5e-3},
        {GGML_Q4_0, 0.08},
    };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        int rc = llama2c_convert(model, tok, out, types[k].t, NULL, &err);
        CHECK_MSG(rc == 0, "%s: %s", ggml_type_name(types[k].t), err.msg);
        gguf_file *g;
        if (rc || gguf_open(out, &g, &err))
            continue;
        /* blk.0.attn_q.weight follows the embedding and rms_att. */
        const float *wq = w + c.vocab * c.dim + c.dim;
        const gguf_tensor *t = gguf_find_tensor(g, "blk.0.attn_q.weight");
        CHECK(t && t->type == types[k].t);
        float row[32];
        double worst = 0;
        for (int r = 0; t && r < c.dim; r++) {
            quant_dequantize_row(t->type, (const char *)t->data +
                                 r * ggml_type_size(t->type, c.dim), row, c.dim);
            for (int i = 0; i < c.dim; i++) {
                double d = fabs(row[i] - wq[r * c.dim + i]);
                worst = d > worst ? d : worst;
            }
        }
        CHECK_MSG(worst <= types[k].tol, "%s: max error %g",
                  ggml_type_name(types[k].t), worst);
        t = gguf_find_tensor(g, "blk.0.ffn_norm.weight");
        CHECK(t && t->type == GGML_F32);
        uint64_t ft = 99;
        CHECK(gguf_get_u64(g, "general.file_type", &ft) == 0 &&
              ft == gguf_file_type(types[k].t));
        gguf_close(g);
    }
    CHECK_INT(llama2c_convert(model, tok, out, GGML_Q4_K, NULL, &err), -1);
    CHECK_HAS(err.msg, "q.bin: dim 32 and hidden_dim 64 must be multiples of 256 to store Q4_K");
    free(w);
    free(dir);
}

int main(void)
{
    RUN(test_convert_unshared_gqa);
    RUN(test_convert_shared_legacy_rope);
    RUN(test_convert_errors);
    RUN(test_convert_quantised);
    RUN(test_forward_matches_llama2c);
    return tl_summary();
}

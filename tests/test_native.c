/*
 * test_native.c - the native backend: scoring, prefix sharing, generation,
 * sampling and errors, on the tiny GGUF fixtures shipped in tests/data/parity
 * (small-vocabulary copies of ../shared's) and one made by `emerge mkmodel`.
 *
 * The references are computed independently here from model_forward's
 * full logits and the tokenizer, so the backend's bookkeeping (grouping,
 * cache reuse and truncation, row selection) is what is under test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/engine/gguf.h"
#include "backends/engine/model.h"
#include "backends/native.h"
#include "backends/engine/quant.h"
#include "backends/engine/sample.h"
#include "backends/engine/tokenizer.h"
#include "base/common.h"
#include "tests/testlib.h"

static backend *open_native(const char *fixture, const char *share)
{
    /* The shipped small-vocabulary copies of the parity fixtures; the
     * Q6_K one is not shipped: a model of its shape made here. */
    char *path = tl_engine_fixture(fixture);
    if (!path)
        return NULL;
    backend_opt opts[2] = {{"threads", "2"}, {"prefix_sharing", (char *)share}};
    backend_spec spec = {.name = "t", .backend = "native", .path = path,
                         .opts = opts, .n_opts = 2};
    backend *b = NULL;
    em_err err;
    int rc = backend_open(&spec, &b, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    free(path);
    return rc ? NULL : b;
}

static const backend_ll_req mc[] = {
    {"Question: The capital of France is", " Paris"},
    {"Question: The capital of France is", " London"},
    {"Question: The capital of Japan is", " Tokyo, of course."},
    {"Question: The capital of France is", " a city called Berlin"},
    {"Question: The capital of Japan is", " Kyoto"},
    {"", "Once upon a time"},
    {"Question: The capital of France is ", "Rome"},
    {"Question: The capital of France", " is Paris"},
};
#define N_MC (int)(sizeof mc / sizeof mc[0])

/* Scores with sharing equal scores alone to tol (1e-4: the kernels of
 * every SIMD level sum in an order that does not depend on the number of
 * rows in a batch). */
static void mc_compare(const char *fixture, double tol)
{
    backend *b = open_native(fixture, "1"), *alone = open_native(fixture, "0");
    if (!b || !alone)
        goto out;
    backend_ll_res res[N_MC], one[N_MC];
    em_err err;
    CHECK(backend_loglikelihood(b, mc, res, N_MC, &err) == 0);
    uint64_t shared = native_tokens_evaluated(b);
    for (int i = 0; i < N_MC; i++)
        CHECK(backend_loglikelihood(alone, &mc[i], &one[i], 1, &err) == 0);
    uint64_t solo = native_tokens_evaluated(alone);
    for (int i = 0; i < N_MC; i++) {
        CHECK_MSG(res[i].ok && one[i].ok, "%d: %s %s", i, res[i].error,
                  one[i].error);
        CHECK_NEAR(res[i].logprob, one[i].logprob, tol);
        CHECK_INT(res[i].n_tokens, one[i].n_tokens);
        if (tol < 1e-3)
            CHECK_INT(res[i].is_greedy, one[i].is_greedy);
        CHECK(res[i].n_tokens > 0 && res[i].logprob < 0);
    }
    printf("  %s (%s): evaluated tokens with sharing %llu, without %llu\n",
           fixture, quant_simd_name(), (unsigned long long)shared,
           (unsigned long long)solo);
    CHECK(shared < solo);
out:
    backend_close(b);
    backend_close(alone);
}

TEST(prefix_sharing_equals_alone)
{
    CHECK(quant_set_simd("scalar") == 0);
    mc_compare("tiny-llama-f32", 1e-4);
    mc_compare("tiny-gpt2-f16", 1e-4);
    mc_compare("wide-llama-q4_k", 1e-4);
    mc_compare("tiny-gptneox-f16", 1e-4);
    CHECK(quant_set_simd(NULL) == 0);
    mc_compare("tiny-llama-f32", 1e-4);
    mc_compare("wide-llama-q4_k", 1e-4);
}

/* Issue 6: the quantised kernels of every SIMD level sum each output in
 * the same order whatever the number of rows in a batch (test_quant's
 * row_count_independent), so prefix sharing equals scoring alone on the
 * best kernels the CPU has too. The contexts are long enough that a
 * request alone is one batch of ~20 rows (the AVX-512 panel kernels)
 * while its shared branch is 1-3 rows (the row groups); with kernels
 * that sum differently in the two, Q4_K differed by 0.06 here. */
static const backend_ll_req mc_long[] = {
    {"Question: which city is the capital of France, a country in western Europe? Answer:", " Paris"},
    {"Question: which city is the capital of France, a country in western Europe? Answer:", " Lyon"},
    {"Question: which city is the capital of France, a country in western Europe? Answer:", " Marseille, I think"},
    {"Question: which city is the capital of Japan, an island country in east Asia? Answer:", " Tokyo"},
    {"Question: which city is the capital of Japan, an island country in east Asia? Answer:", " Osaka"},
};

static void mc_long_compare(const char *fixture)
{
    enum { N = sizeof mc_long / sizeof mc_long[0] };
    backend *b = open_native(fixture, "1"), *alone = open_native(fixture, "0");
    backend_ll_res res[N], one[N];
    em_err err;
    if (b && alone) {
        CHECK(backend_loglikelihood(b, mc_long, res, N, &err) == 0);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            CHECK(backend_loglikelihood(alone, &mc_long[i], &one[i], 1, &err) == 0);
            CHECK_MSG(res[i].ok && one[i].ok, "%d: %s %s", i, res[i].error,
                      one[i].error);
            CHECK_NEAR(res[i].logprob, one[i].logprob, 1e-4);
            double d = res[i].logprob - one[i].logprob;
            worst = d < 0 ? (-d > worst ? -d : worst) : (d > worst ? d : worst);
        }
        printf("  %s (%s): long contexts, shared vs alone max |diff| %.3g\n",
               fixture, quant_simd_name(), worst);
        CHECK(native_tokens_evaluated(b) < native_tokens_evaluated(alone));
    }
    backend_close(b);
    backend_close(alone);
}

TEST(prefix_sharing_equals_alone_best_simd)
{
    CHECK(quant_set_simd(NULL) == 0);
    static const char *fx[] = {"tiny-llama-q8_0", "tiny-llama-q4_0",
                               "wide-llama-q4_k", "wide-llama-q6_k"};
    for (int i = 0; i < 4; i++) {
        mc_compare(fx[i], 1e-4);
        mc_long_compare(fx[i]);
    }
}

/* log P(cont | ctx) from the full logits of one forward pass over the
 * tokens the harness convention gives. */
TEST(loglik_equals_full_logits)
{
    char *path = tl_fixture("tiny-llama-f32");
    if (!path)
        return;
    backend *b = open_native("tiny-llama-f32", "1");
    model *m = NULL;
    tokenizer *tok = NULL;
    em_err err;
    model_opts o = {.n_threads = 2};
    CHECK(model_build(path, &o, &m, &err) == 0);
    CHECK(tok_build(m->gguf, &tok, &err) == 0);
    /* Row-count independent kernels: see prefix_sharing_equals_alone. */
    CHECK(quant_set_simd("scalar") == 0);
    const char *ctx = "Q: What is 12 + 35?\nA:", *cont = " 47";
    int32_t *whole, *ce;
    int nw, nc;
    char full[128];
    snprintf(full, sizeof full, "%s%s", ctx, cont);
    CHECK(tok_encode(tok, full, strlen(full), 1, &whole, &nw, &err) == 0);
    CHECK(tok_encode(tok, ctx, strlen(ctx), 1, &ce, &nc, &err) == 0);
    CHECK(nw > nc && nc > 1);
    int V = m->hp.n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)nw * V);
    /* Conditioned on the context's own tokens, then the continuation. */
    int32_t *seq = malloc(sizeof(int32_t) * (size_t)nw);
    memcpy(seq, ce, sizeof(int32_t) * (size_t)nc);
    memcpy(seq + nc, whole + nc, sizeof(int32_t) * (size_t)(nw - nc));
    CHECK(model_forward(m, seq, nw, 0, nw, lg, &err) == 0);
    double want = 0;
    int greedy = 1;
    for (int i = nc; i < nw; i++) {
        want += sample_logprob(lg + (size_t)(i - 1) * V, V, seq[i]);
        greedy &= sample_argmax(lg + (size_t)(i - 1) * V, V) == seq[i];
    }
    backend_ll_req rq = {ctx, cont};
    backend_ll_res r;
    CHECK(backend_loglikelihood(b, &rq, &r, 1, &err) == 0);
    CHECK(r.ok);
    CHECK_NEAR(r.logprob, want, 1e-4);
    CHECK_INT(r.n_tokens, nw - nc);
    CHECK_INT(r.is_greedy, greedy);
    /* The argmax continuation is greedy by construction. */
    char piece[64];
    int32_t best = sample_argmax(lg + (size_t)(nc - 1) * V, V);
    tok_decode(tok, best, piece, sizeof piece);
    backend_ll_req rq2 = {ctx, piece};
    CHECK(backend_loglikelihood(b, &rq2, &r, 1, &err) == 0);
    if (r.n_tokens == 1)
        CHECK_INT(r.is_greedy, 1);
    CHECK(quant_set_simd(NULL) == 0);
    free(lg);
    free(seq);
    free(whole);
    free(ce);
    tok_free(tok);
    model_free(m);
    backend_close(b);
    free(path);
}

static backend_gen_res gen(backend *b, const char *prompt, int max,
                           double temp, double top_p, uint64_t seed,
                           const char *const *stop, int n_stop)
{
    backend_gen_req rq = {prompt, stop, n_stop, max, temp, top_p, seed};
    backend_gen_res r;
    em_err err;
    CHECK(backend_generate(b, &rq, &r, 1, &err) == 0);
    CHECK_MSG(r.ok, "%s", r.error);
    return r;
}

TEST(greedy_equals_argmax_decoding)
{
    char *path = tl_fixture("tiny-llama-f32");
    if (!path)
        return;
    backend *b = open_native("tiny-llama-f32", "1");
    if (!b) {
        free(path);
        return;
    }
    const char *prompt = "Once upon a time";
    backend_gen_res r1 = gen(b, prompt, 10, 0, 1, 0, NULL, 0);
    backend_gen_res r2 = gen(b, prompt, 10, 0, 1, 7, NULL, 0);
    CHECK_STR(r1.text, r2.text);
    CHECK_INT(r1.n_tokens, r2.n_tokens);

    model *m = NULL;
    tokenizer *tok = NULL;
    em_err err;
    model_opts o = {.n_threads = 1};
    CHECK(model_build(path, &o, &m, &err) == 0);
    CHECK(tok_build(m->gguf, &tok, &err) == 0);
    int32_t *ids;
    int n;
    CHECK(tok_encode(tok, prompt, strlen(prompt), 1, &ids, &n, &err) == 0);
    int V = m->hp.n_vocab;
    float *lg = malloc(sizeof(float) * (size_t)V);
    CHECK(model_forward(m, ids, n, n - 1, n, lg, &err) == 0);
    em_buf want = {0};
    int k = 0;
    double sum = 0;
    for (; k < 10; k++) {
        int32_t t = sample_argmax(lg, V);
        if (t == tok_eos(tok))
            break;
        double lp = sample_logprob(lg, V, t);
        CHECK_NEAR(r1.token_logprobs[k], lp, 1e-4);
        sum += lp;
        char piece[128];
        em_buf_put(&want, piece, (size_t)tok_decode(tok, t, piece, sizeof piece));
        CHECK(model_forward(m, &t, 1, 0, 1, lg, &err) == 0);
    }
    CHECK_STR(r1.text, want.s ? want.s : "");
    CHECK_INT(r1.n_tokens, k);
    CHECK_NEAR(r1.sum_logprob, sum, 1e-3);
    em_buf_free(&want);
    free(lg);
    free(ids);
    tok_free(tok);
    model_free(m);
    backend_gen_res_clear(&r1);
    backend_gen_res_clear(&r2);
    backend_close(b);
    free(path);
}

TEST(stop_strings_and_max_tokens)
{
    backend *b = open_native("tiny-gptneox-f16", "1");
    if (!b)
        return;
    backend_gen_res full = gen(b, "The capital of France is", 12, 0, 1, 0,
                               NULL, 0);
    CHECK_INT(full.n_tokens, 12); /* random weights: EOS is unlikely */
    CHECK(strlen(full.text) >= 6);
    /* Two stop strings: the earlier one in the text wins. */
    size_t L = strlen(full.text);
    char late[4] = {0}, early[3] = {0};
    memcpy(late, full.text + L - 3, 3);
    memcpy(early, full.text + L / 2, 2);
    const char *stops[] = {late, early};
    backend_gen_res cut = gen(b, "The capital of France is", 12, 0, 1, 0,
                              stops, 2);
    const char *first = strstr(full.text, early);
    const char *firstl = strstr(full.text, late);
    size_t want = (size_t)((firstl && firstl < first ? firstl : first) - full.text);
    CHECK_INT(strlen(cut.text), want);
    CHECK(!strncmp(cut.text, full.text, want));
    CHECK(cut.n_tokens <= full.n_tokens);
    backend_gen_res few = gen(b, "The capital of France is", 3, 0, 1, 0, NULL, 0);
    CHECK_INT(few.n_tokens, 3);
    CHECK(!strncmp(few.text, full.text, strlen(few.text)));
    backend_gen_res_clear(&full);
    backend_gen_res_clear(&cut);
    backend_gen_res_clear(&few);
    backend_close(b);
}

TEST(seeded_sampling_reproducible)
{
    backend *b = open_native("tiny-gpt2-f16", "1");
    if (!b)
        return;
    int distinct = 0;
    char *prev = NULL;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        backend_gen_res a = gen(b, "Hello", 8, 1.0, 0.9, seed, NULL, 0);
        backend_gen_res c = gen(b, "Hello", 8, 1.0, 0.9, seed, NULL, 0);
        CHECK_STR(a.text, c.text);
        CHECK_INT(a.n_tokens, c.n_tokens);
        for (int i = 0; i < a.n_tokens && i < c.n_tokens; i++)
            CHECK_NEAR(a.token_logprobs[i], c.token_logprobs[i], 1e-6);
        if (prev && strcmp(prev, a.text))
            distinct++;
        free(prev);
        prev = em_strdup(a.text);
        backend_gen_res_clear(&a);
        backend_gen_res_clear(&c);
    }
    free(prev);
    CHECK(distinct > 0); /* different seeds give different samples */
    backend_close(b);
}

/* The sampler itself: greedy, nucleus cut-off, and draws that follow
 * softmax(logits / T). */
TEST(sampler_distribution)
{
    float lg[4] = {1, 2, 3, 4};
    sampler *s = sample_build(4);
    uint64_t rng = 5;
    CHECK_INT(sample_next(s, lg, 0, 1, &rng), 3);
    for (int i = 0; i < 50; i++)
        CHECK_INT(sample_next(s, lg, 1.0, 0.3, &rng), 3); /* p(3) = 0.64 */
    int cnt[4] = {0};
    for (int i = 0; i < 4000; i++)
        cnt[sample_next(s, lg, 1.0, 1.0, &rng)]++;
    double z = exp(1) + exp(2) + exp(3) + exp(4);
    for (int k = 0; k < 4; k++)
        CHECK_NEAR(cnt[k] / 4000.0, exp(k + 1) / z, 0.03);
    /* top_p 0.9 keeps {3, 2} (0.64 + 0.24 = 0.88 < 0.9) and then 1. */
    int seen0 = 0;
    for (int i = 0; i < 2000; i++)
        seen0 |= sample_next(s, lg, 1.0, 0.9, &rng) == 0;
    CHECK_INT(seen0, 0);
    CHECK_NEAR(sample_logprob(lg, 4, 3), 4 - log(z), 1e-6);
    sample_free(s);
}

/* The nucleus written the plain way: sort the whole vocabulary by (p desc,
 * id asc), keep the shortest head reaching top_p, draw from it. */
typedef struct ref_cand {
    double p;
    int32_t id;
} ref_cand;

static int ref_cmp(const void *a, const void *b)
{
    const ref_cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t ref_topp(const float *lg, int n, double T, double top_p, uint64_t *rng)
{
    ref_cand *c = malloc((size_t)n * sizeof *c);
    int best = sample_argmax(lg, n);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        c[i].p = exp(((double)lg[i] - lg[best]) / T);
        c[i].id = i;
        sum += c[i].p;
    }
    qsort(c, (size_t)n, sizeof *c, ref_cmp);
    double cum = 0, target = top_p * sum;
    int k = 0;
    while (k < n) {
        cum += c[k++].p;
        if (cum >= target)
            break;
    }
    double r = em_rand01(rng) * cum, acc = 0;
    int32_t got = c[k - 1].id;
    for (int i = 0; i < k; i++) {
        acc += c[i].p;
        if (r < acc) {
            got = c[i].id;
            break;
        }
    }
    free(c);
    return got;
}

/* The sampler sorts only the tokens that can be in the nucleus; every draw
 * must equal the whole-vocabulary sort's, for peaked and flat logits, with
 * ties, at several temperatures and top_p values. */
TEST(sampler_topp_equals_full_sort)
{
    enum { V = 5000 };
    float *lg = malloc(V * sizeof *lg);
    sampler *s = sample_build(V);
    uint64_t gen = 11;
    double tops[] = {0.1, 0.5, 0.9, 0.95, 0.999};
    double temps[] = {0.3, 0.8, 1.0, 2.0};
    int differ = 0;
    for (int trial = 0; trial < 24; trial++) {
        double scale = trial % 3 == 0 ? 0.1 : trial % 3 == 1 ? 2.0 : 8.0;
        for (int i = 0; i < V; i++)
            lg[i] = (float)(scale * (em_rand01(&gen) - 0.5));
        if (trial % 4 == 0) /* ties */
            for (int i = 0; i < V; i += 7)
                lg[i] = lg[0];
        for (int a = 0; a < 5; a++)
            for (int b = 0; b < 4; b++) {
                uint64_t r1 = 100 + (uint64_t)trial, r2 = r1;
                for (int d = 0; d < 5; d++)
                    differ += sample_next(s, lg, temps[b], tops[a], &r1) !=
                              ref_topp(lg, V, temps[b], tops[a], &r2);
            }
    }
    CHECK_INT(differ, 0);
    sample_free(s);
    free(lg);
}

static void expect_open_error(const char *path, const char *want)
{
    backend_spec spec = {.name = "bad", .backend = "native", .path = (char *)path};
    backend *b = NULL;
    em_err err = {{0}};
    CHECK(backend_open(&spec, &b, &err) == -1);
    CHECK_HAS(err.msg, want);
    CHECK(b == NULL);
}

static void write_tiny(const char *path, const char *arch, ggml_type emb)
{
    gguf_writer *w = gguf_writer_new();
    char key[64];
    gguf_writer_set_str(w, "general.architecture", arch);
#define KEY(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    gguf_writer_set_u32(w, KEY("embedding_length"), 256);
    gguf_writer_set_u32(w, KEY("block_count"), 1);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), 64);
    gguf_writer_set_u32(w, KEY("attention.head_count"), 4);
    gguf_writer_set_u32(w, KEY("context_length"), 64);
#undef KEY
    int64_t ne[2] = {256, 8}; /* 256: a whole K-quant block per row */
    size_t nb = ggml_type_size(emb, 256) * 8;
    char *zero = calloc(1, nb);
    gguf_writer_add_tensor(w, "token_embd.weight", emb, 2, ne, zero, nb);
    em_err err;
    CHECK_MSG(gguf_writer_write(w, path, &err) == 0, "%s", err.msg);
    gguf_writer_free(w);
    free(zero);
}

TEST(clear_errors)
{
    expect_open_error("/nonexistent/model.gguf", "/nonexistent/model.gguf");
    char *dir = tl_tmpdir();
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s/mamba.gguf", dir);
    snprintf(p2, sizeof p2, "%s/q5.gguf", dir);
    write_tiny(p1, "mamba", GGML_F32);
    expect_open_error(p1, "unknown architecture 'mamba'");
    write_tiny(p2, "llama", GGML_Q2_K);
    expect_open_error(p2, "tensor 'token_embd.weight' has type Q2_K");
    expect_open_error(p2, "cannot compute with (F32, F16");
    /* A required tensor that is absent is named. */
    write_tiny(p1, "llama", GGML_F32);
    expect_open_error(p1, "missing tensor 'output_norm.weight'");
    /* Bad option values. */
    char *path = tl_fixture("tiny-llama-f32");
    if (path) {
        backend_opt o = {"threads", "many"};
        backend_spec spec = {.name = "x", .backend = "native", .path = path,
                             .opts = &o, .n_opts = 1};
        backend *b = NULL;
        em_err err;
        CHECK(backend_open(&spec, &b, &err) == -1);
        CHECK_HAS(err.msg, "option 'threads'");
        free(path);
    }
    free(dir);
}

TEST(info_and_long_inputs)
{
    backend *b = open_native("tiny-llama-f32", "1");
    if (!b)
        return;
    CHECK_STR(b->info.arch, "llama");
    CHECK_INT(b->info.n_ctx, 512);
    printf("  n_params %llu\n", (unsigned long long)b->info.n_params);
    CHECK(b->info.n_params > 1e5 && b->info.n_params < 2e5); /* 437-token copy */
    CHECK(b->info.caps & BACKEND_CAP_LOGLIK);
    /* A context longer than n_ctx is cut from the left, still scored. */
    em_buf ctx = {0};
    for (int i = 0; i < 400; i++)
        em_buf_puts(&ctx, " cat dog");
    backend_ll_req rq = {ctx.s, " bird"};
    backend_ll_res r;
    em_err err;
    CHECK(backend_loglikelihood(b, &rq, &r, 1, &err) == 0);
    CHECK_MSG(r.ok, "%s", r.error);
    CHECK(r.n_tokens >= 1);
    em_buf_free(&ctx);
    backend_close(b);
}

/* The token-level ops (what `emerge serve` answers with): ids and texts
 * round-trip, prompts sharing a prefix are scored as branches and agree
 * with the same prompt scored alone, and generation is generate()'s. */
TEST(token_level_complete)
{
    backend *b = open_native("tiny-llama-f32", "1");
    if (!b)
        return;
    em_err err;
    CHECK(backend_can_complete(b));
    CHECK(b->info.n_vocab > 0);
    const char *p[2] = {"Question: The capital of France is Paris",
                        "Question: The capital of France is London"};
    int32_t *ids[3] = {0};
    int n[3] = {0};
    em_buf text = {0};
    for (int i = 0; i < 2; i++)
        CHECK_INT(backend_tokenize(b, p[i], &ids[i], &n[i], &err), 0);
    CHECK_INT(backend_tokenize(b, "Once upon a time", &ids[2], &n[2], &err), 0);
    for (int i = 0; i < n[0]; i++) {
        char piece[256];
        int len = backend_token_text(b, ids[0][i], piece, sizeof piece);
        em_buf_put(&text, piece, (size_t)(len < 256 ? len : 255));
    }
    CHECK(text.len >= strlen(p[0]) &&
          !strcmp(text.s + text.len - strlen(p[0]), p[0]));
    backend_cmpl_req rq[4] = {
        {.toks = ids[0], .n_toks = n[0], .score_prompt = 1, .top_p = 1},
        {.toks = ids[1], .n_toks = n[1], .score_prompt = 1, .top_p = 1},
        {.toks = ids[2], .n_toks = n[2], .max_tokens = 8, .top_p = 1},
        {.toks = ids[1], .n_toks = n[1], .score_prompt = 1, .top_p = 1}};
    backend_cmpl_res rs[4];
    CHECK_INT(backend_complete(b, rq, rs, 3, &err), 0);
    CHECK_INT(backend_complete(b, rq + 3, rs + 3, 1, &err), 0); /* alone */
    for (int i = 0; i < 4; i++)
        CHECK_MSG(rs[i].ok, "%d: %s", i, rs[i].error);
    CHECK(rs[0].shared && rs[1].shared && !rs[2].shared && !rs[3].shared);
    for (int i = 1; rs[1].ok && rs[3].ok && i < n[1]; i++) {
        CHECK_NEAR(rs[1].prompt[i].logprob, rs[3].prompt[i].logprob, 1e-4);
        CHECK_INT(rs[1].prompt[i].top_id[0], rs[3].prompt[i].top_id[0]);
    }
    backend_gen_req g = {"Once upon a time", NULL, 0, 8, 0, 1, 0};
    backend_gen_res gr;
    CHECK_INT(backend_generate(b, &g, &gr, 1, &err), 0);
    CHECK_INT(rs[2].n_gen, gr.n_tokens);
    CHECK(rs[2].text_len == strlen(gr.text) &&
          !memcmp(rs[2].text, gr.text, rs[2].text_len));
    backend_gen_res_clear(&gr);
    /* generate() ran the model: the scores kept beside the cache are
     * forgotten, not reused for the prompt that shares its BOS. */
    backend_cmpl_res again;
    CHECK_INT(backend_complete(b, rq + 3, &again, 1, &err), 0);
    for (int i = 1; again.ok && rs[3].ok && i < n[1]; i++)
        CHECK_NEAR(again.prompt[i].logprob, rs[3].prompt[i].logprob, 1e-4);
    backend_cmpl_res_clear(&again);
    for (int i = 0; i < 4; i++)
        backend_cmpl_res_clear(&rs[i]);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    em_buf_free(&text);
    backend_close(b);
    /* A backend without the ops says so by name. */
    backend none = {.ops = backend_find("synthetic")};
    CHECK(!backend_can_complete(&none));
    CHECK_INT(backend_complete(&none, rq, rs, 1, &err), -1);
    CHECK(strstr(err.msg, "synthetic") != NULL);
}

int main(void)
{
    RUN(prefix_sharing_equals_alone);
    RUN(prefix_sharing_equals_alone_best_simd);
    RUN(loglik_equals_full_logits);
    RUN(greedy_equals_argmax_decoding);
    RUN(stop_strings_and_max_tokens);
    RUN(seeded_sampling_reproducible);
    RUN(sampler_distribution);
    RUN(sampler_topp_equals_full_sort);
    RUN(clear_errors);
    RUN(info_and_long_inputs);
    RUN(token_level_complete);
    return tl_summary();
}

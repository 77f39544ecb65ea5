/*
 * test_hf_reference.c - the engine on Hugging Face checkpoint directories
 * against an independent float64 reference.
 *
 * tests/data/hf/ holds small random-weight checkpoints (config.json,
 * safetensors, tokenizer.json) of four shapes - pythia-like (GPT-NeoX,
 * partial rotary, parallel residual, vocabulary padded above the
 * tokenizer), llama-gqa-tied (grouped KV heads, tied output), qwen2-bias
 * (Q/K/V biases, rope_theta 1e6) and gpt2-small (Conv1D weights, learned
 * positions) - each in F32, F16 and BF16, and pythia-like F32 in two
 * shards. tools/hf_reference.py made them and, in float64 with torch and a
 * forward pass written from the architectures' definitions, the
 * references <model>/reference.json: for three token sequences, the
 * log-probability of every next token and the whole log-softmax row of
 * the last position (tests/data/hf/README.md).
 *
 * Each directory is opened with model_build (through hf.h's hf_open_path)
 * with kv_exact = 1 (no F16 rounding of K, V and the attention
 * probabilities), the sequences are run, and every next-token
 * log-probability and every value of the last row is compared with the
 * reference. The maximum |difference| per directory is printed (an
 * indented line before the test's PASS/FAIL line).
 *
 * Bounds: 1e-3 with F32 weights, 1e-2 with F16, as issue 19 asks; BF16
 * 5e-2 as stored, 1e-3 loaded with type f32. Measured (max |difference|
 * of next-token / last-row log-probabilities, AVX-512 kernels):
 *
 *   llama-gqa-tied  F32 2.4e-6 / 2.9e-6   F16 4.2e-3 / 3.7e-3   BF16 3.6e-2 / 2.9e-2
 *   qwen2-bias      F32 2.7e-6 / 2.2e-6   F16 3.4e-3 / 4.9e-3   BF16 2.5e-2 / 3.0e-2
 *   pythia-like     F32 1.2e-6 / 1.7e-6   F16 2.4e-3 / 3.2e-3   BF16 1.7e-2 / 2.0e-2
 *   gpt2-small      F32 1.6e-6 / 1.7e-6   F16 2.4e-3 / 3.4e-3   BF16 2.2e-2 / 2.6e-2
 *
 * - GELU (gpt2, gptneox): a directory computes the form its config.json
 *   names (model.h's MODEL_GELU_*: "gelu" is transformers' exact erf GELU,
 *   "gelu_new" the tanh approximation, both in F32). GGUF files keep
 *   llama.cpp's F16 table; computed that way, these directories differ
 *   from the reference by 1.7e-3 (the table), of which 8.9e-4 is tanh
 *   instead of erf for pythia-like (reference.json's
 *   next_logprob_change_with_tanh_gelu).
 * - BF16: the engine rounds the activations of an F16/BF16 product to the
 *   weights' type (quant.c, as ggml's vec_dot does), and BF16 keeps 8 bits:
 *   up to 3.6e-2. A checkpoint loaded with type f32 (exact widening) is
 *   within float32's error of the reference: the *-bf16 directories are
 *   checked both ways.
 *
 * `test_hf_reference PATH MODEL VARIANT [BOUND]` compares any model PATH
 * (a GGUF file, or a directory) with the reference of VARIANT in
 * tests/data/hf/MODEL/reference.json (BOUND: VARIANT's bound below): the
 * way to check a conversion of these checkpoints to GGUF, or a change of
 * the reader. Run from the repository root.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/model.h"
#include "base/common.h"
#include "tests/testlib.h"

#define F32_BOUND 1e-3
#define F16_BOUND 1e-2
#define BF16_BOUND 5e-2

typedef struct variant {
    const char *model; /* tests/data/hf/MODEL/reference.json */
    const char *dir;   /* tests/data/hf/DIR and the key in "variants" */
    double bound;      /* max |engine - reference| of a log-probability */
    const char *type;  /* NULL, or the on-load type (model_opts.load_type) */
} variant;

static const variant variants[] = {
    {"pythia-like", "pythia-like-f32", F32_BOUND, NULL},
    {"pythia-like", "pythia-like-f16", F16_BOUND, NULL},
    {"pythia-like", "pythia-like-bf16", BF16_BOUND, NULL},
    {"pythia-like", "pythia-like-bf16", F32_BOUND, "f32"},
    {"pythia-like", "pythia-like-f32-sharded", F32_BOUND, NULL},
    {"llama-gqa-tied", "llama-gqa-tied-f32", F32_BOUND, NULL},
    {"llama-gqa-tied", "llama-gqa-tied-f16", F16_BOUND, NULL},
    {"llama-gqa-tied", "llama-gqa-tied-bf16", BF16_BOUND, NULL},
    {"llama-gqa-tied", "llama-gqa-tied-bf16", F32_BOUND, "f32"},
    {"qwen2-bias", "qwen2-bias-f32", F32_BOUND, NULL},
    {"qwen2-bias", "qwen2-bias-f16", F16_BOUND, NULL},
    {"qwen2-bias", "qwen2-bias-bf16", BF16_BOUND, NULL},
    {"qwen2-bias", "qwen2-bias-bf16", F32_BOUND, "f32"},
    {"gpt2-small", "gpt2-small-f32", F32_BOUND, NULL},
    {"gpt2-small", "gpt2-small-f16", F16_BOUND, NULL},
    {"gpt2-small", "gpt2-small-bf16", BF16_BOUND, NULL},
    {"gpt2-small", "gpt2-small-bf16", F32_BOUND, "f32"},
};
#define N_VARIANTS (int)(sizeof variants / sizeof variants[0])

/* The parsed tests/data/hf/FAMILY/reference.json (NULL after a FAIL). */
static cJSON *load_reference(const char *family)
{
    char rel[256];
    snprintf(rel, sizeof rel, "hf/%s/reference.json", family);
    char *path = tl_data(rel);
    CHECK_MSG(path, "tests/data/%s missing", rel);
    if (!path)
        return NULL;
    char *text = NULL;
    size_t len;
    em_err err;
    int rc = em_read_file(path, &text, &len, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    free(path);
    if (rc)
        return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    CHECK_MSG(j, "tests/data/%s: not JSON", rel);
    return j;
}

/* The variant dir of a parsed reference, checked for shape: every
 * sequence has its tokens, n-1 next-token log-probabilities and a last
 * row of vocab_size log-probabilities that sums to 1 (NULL after a FAIL). */
static cJSON *reference_variant(cJSON *ref, const char *dir, int *n_vocab)
{
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(ref, "variants"), dir);
    CHECK_MSG(v, "reference.json has no variant %s", dir);
    if (!v)
        return NULL;
    cJSON *nv = cJSON_GetObjectItem(v, "vocab_size");
    cJSON *seqs = cJSON_GetObjectItem(v, "sequences");
    CHECK_MSG(cJSON_IsNumber(nv) && cJSON_IsArray(seqs) && cJSON_GetArraySize(seqs) > 0,
              "%s: vocab_size or sequences missing", dir);
    if (!cJSON_IsNumber(nv) || !cJSON_IsArray(seqs))
        return NULL;
    *n_vocab = nv->valueint;
    int ok = 1;
    cJSON *s;
    cJSON_ArrayForEach(s, seqs) {
        int n = cJSON_GetArraySize(cJSON_GetObjectItem(s, "tokens"));
        cJSON *next = cJSON_GetObjectItem(s, "next_logprobs");
        cJSON *last = cJSON_GetObjectItem(s, "last_logprobs");
        int shaped = n >= 2 && cJSON_GetArraySize(next) == n - 1 &&
                     cJSON_GetArraySize(last) == *n_vocab;
        CHECK_MSG(shaped, "%s: a sequence of %d tokens has %d next and %d last "
                  "log-probs", dir, n, cJSON_GetArraySize(next),
                  cJSON_GetArraySize(last));
        double sum = 0;
        cJSON *x;
        cJSON_ArrayForEach(x, last) sum += exp(x->valuedouble);
        CHECK_MSG(fabs(sum - 1) < 1e-9, "%s: last row sums to %.12g", dir, sum);
        cJSON_ArrayForEach(x, next) {
            int fine = cJSON_IsNumber(x) && x->valuedouble <= 0 &&
                       isfinite(x->valuedouble);
            CHECK_MSG(fine, "%s: log-probability %g", dir, x->valuedouble);
            shaped &= fine;
        }
        ok &= shaped;
    }
    return ok ? v : NULL;
}

/* log(sum exp(row)), in double: log_softmax(row)[j] = row[j] - this. */
static double log_sum_exp(const float *row, int n)
{
    double mx = -INFINITY, s = 0;
    for (int j = 0; j < n; j++)
        if (row[j] > mx)
            mx = row[j];
    for (int j = 0; j < n; j++)
        s += exp((double)row[j] - mx);
    return mx + log(s);
}

static void worsen(double *worst, double d)
{
    if (!(d <= *worst)) /* NaN counts as worst */
        *worst = isnan(d) ? INFINITY : d;
}

/* Runs the model at path over the reference sequences of dir; checks and
 * prints the max |difference|. */
static void compare(const char *path, const char *family, const char *dir,
                    double bound, const char *type)
{
    cJSON *ref = load_reference(family);
    int n_vocab = 0;
    cJSON *v = ref ? reference_variant(ref, dir, &n_vocab) : NULL;
    model *m = NULL;
    if (!v)
        goto out;
    model_opts o = {.n_threads = 2, .kv_exact = 1, .load_type = type};
    em_err err;
    int rc = model_build(path, &o, &m, &err);
    CHECK_MSG(rc == 0, "%s: %s", dir, err.msg);
    if (rc) {
        m = NULL;
        goto out;
    }
    CHECK_MSG(m->hp.n_vocab == n_vocab, "%s: n_vocab %d, config.json's vocab_size %d",
              dir, m->hp.n_vocab, n_vocab);
    if (m->hp.n_vocab != n_vocab)
        goto out;
    double worst_next = 0, worst_last = 0;
    cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(v, "sequences")) {
        cJSON *toks = cJSON_GetObjectItem(s, "tokens");
        cJSON *next = cJSON_GetObjectItem(s, "next_logprobs");
        cJSON *last = cJSON_GetObjectItem(s, "last_logprobs");
        int n = cJSON_GetArraySize(toks);
        int32_t *t = malloc(sizeof(int32_t) * (size_t)n);
        for (int i = 0; i < n; i++)
            t[i] = cJSON_GetArrayItem(toks, i)->valueint;
        float *lg = malloc(sizeof(float) * (size_t)n * (size_t)n_vocab);
        model_truncate(m, 0);
        rc = model_forward(m, t, n, 0, n, lg, &err);
        CHECK_MSG(rc == 0, "%s: %s", dir, err.msg);
        for (int i = 0; rc == 0 && i < n - 1; i++) {
            const float *row = lg + (size_t)i * n_vocab;
            double lp = (double)row[t[i + 1]] - log_sum_exp(row, n_vocab);
            worsen(&worst_next, fabs(lp - cJSON_GetArrayItem(next, i)->valuedouble));
        }
        if (rc == 0) {
            const float *row = lg + (size_t)(n - 1) * n_vocab;
            double lse = log_sum_exp(row, n_vocab);
            int j = 0;
            cJSON *x;
            cJSON_ArrayForEach(x, last) {
                worsen(&worst_last, fabs((double)row[j] - lse - x->valuedouble));
                j++;
            }
        }
        free(lg);
        free(t);
        if (rc)
            goto out;
    }
    printf("  %-24s%s max |engine - reference| log-prob: next tokens "
           "%.3g, last row %.3g (bound %g)\n", dir, type ? " as f32" : "",
           worst_next, worst_last, bound);
    fflush(stdout);
    CHECK_MSG(worst_next <= bound, "%s: next-token log-probs differ by %.3g (bound %g)",
              dir, worst_next, bound);
    CHECK_MSG(worst_last <= bound, "%s: last-row log-probs differ by %.3g (bound %g)",
              dir, worst_last, bound);
out:
    model_free(m);
    cJSON_Delete(ref);
}

static void compare_family(const char *family)
{
    for (int i = 0; i < N_VARIANTS; i++) {
        if (strcmp(variants[i].model, family))
            continue;
        char rel[256];
        snprintf(rel, sizeof rel, "hf/%s", variants[i].dir);
        char *path = tl_data(rel);
        CHECK_MSG(path, "tests/data/%s missing", rel);
        if (path)
            compare(path, family, variants[i].dir, variants[i].bound,
                    variants[i].type);
        free(path);
    }
}

/* The references themselves: every variant present and well formed
 * (independent of the reader). */
TEST(references_well_formed)
{
    const char *last = "";
    cJSON *ref = NULL;
    for (int i = 0; i < N_VARIANTS; i++) {
        if (strcmp(variants[i].model, last)) {
            cJSON_Delete(ref);
            ref = load_reference(variants[i].model);
            last = variants[i].model;
        }
        int n_vocab;
        if (ref)
            reference_variant(ref, variants[i].dir, &n_vocab);
    }
    cJSON_Delete(ref);
}

TEST(pythia_like) { compare_family("pythia-like"); }
TEST(llama_gqa_tied) { compare_family("llama-gqa-tied"); }
TEST(qwen2_bias) { compare_family("qwen2-bias"); }
TEST(gpt2_small) { compare_family("gpt2-small"); }

static const char *one_path, *one_model, *one_variant;
static double one_bound = F32_BOUND;

TEST(one) { compare(one_path, one_model, one_variant, one_bound, NULL); }

int main(int argc, char **argv)
{
    if (argc == 4 || argc == 5) {
        one_path = argv[1];
        one_model = argv[2];
        one_variant = argv[3];
        for (int i = 0; i < N_VARIANTS; i++)
            if (!strcmp(variants[i].dir, one_variant))
                one_bound = variants[i].bound;
        if (argc == 5)
            one_bound = atof(argv[4]);
        RUN(one);
        return tl_summary();
    }
    RUN(references_well_formed);
    RUN(pythia_like);
    RUN(llama_gqa_tied);
    RUN(qwen2_bias);
    RUN(gpt2_small);
    return tl_summary();
}

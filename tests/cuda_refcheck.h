/*
 * cuda_refcheck.h - for test_cuda_host.c and test_cuda.c: runs the
 * reference prompts of refs/logits (token ids as llama.cpp tokenised
 * them) through a cuda_engine on some device operations and compares the
 * log-probability of every next token with llama.cpp's logits.
 *
 * The references are the small-vocabulary copies shipped in
 * tests/data/parity where there is one (ref_shipped), else the full ones
 * of ../shared.
 *
 * A header of static functions (tests are single-file programs): the
 * reference loader, and ref_check(), which returns the worst per-token
 * difference or -1 when the files are missing (test skipped).
 */
#ifndef EMERGE_TESTS_CUDA_REFCHECK_H
#define EMERGE_TESTS_CUDA_REFCHECK_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/cuda/cuda_engine.h"
#include "backends/engine/sample.h"
#include "base/common.h"
#include "tests/testlib.h"

/* One prompt's ids and where its rows start in the logits file. */
typedef struct ref_prompt {
    int32_t *tok;
    int n, offset;
} ref_prompt;

/* Whether tests/data/parity has fixture name with its reference. */
static int ref_shipped(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "parity/%s.json", name);
    char *p = tl_data(rel);
    free(p);
    return p != NULL;
}

static int ref_prompts(const char *name, ref_prompt **out, int *n_out,
                       float **logits, int *n_vocab)
{
    char rel[256];
    char *jpath, *fpath;
    if (ref_shipped(name)) {
        snprintf(rel, sizeof rel, "parity/%s.json", name);
        jpath = tl_data(rel);
        snprintf(rel, sizeof rel, "parity/%s.f32", name);
        fpath = tl_data(rel);
    } else {
        snprintf(rel, sizeof rel, "refs/logits/logits-%s.json", name);
        jpath = tl_shared(rel);
        snprintf(rel, sizeof rel, "refs/logits/logits-%s.f32", name);
        fpath = jpath ? tl_shared(rel) : NULL;
    }
    char *text = NULL, *bin = NULL;
    size_t tlen, blen;
    em_err err;
    int ok = 0;
    cJSON *j = NULL, *p;
    if (!jpath || !fpath || em_read_file(jpath, &text, &tlen, &err) ||
        em_read_file(fpath, &bin, &blen, &err) || !(j = cJSON_Parse(text)))
        goto out;
    *n_vocab = cJSON_GetObjectItem(j, "n_vocab")->valueint;
    *n_out = 0;
    *out = NULL;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(j, "prompts")) {
        cJSON *toks = cJSON_GetObjectItem(p, "tokens");
        *out = em_realloc(*out, sizeof **out * (size_t)(*n_out + 1));
        ref_prompt *r = &(*out)[(*n_out)++];
        r->offset = cJSON_GetObjectItem(p, "offset_rows")->valueint;
        r->n = cJSON_GetArraySize(toks);
        r->tok = em_malloc(sizeof(int32_t) * (size_t)r->n);
        for (int k = 0; k < r->n; k++)
            r->tok[k] = cJSON_GetArrayItem(toks, k)->valueint;
    }
    *logits = (float *)bin;
    bin = NULL;
    ok = 1;
out:
    cJSON_Delete(j);
    free(text);
    free(bin);
    free(jpath);
    free(fpath);
    return ok;
}

/* Worst |log p_engine - log p_llama.cpp| per next token over every
 * reference prompt of fixture `name`, with the device operations ops
 * (taken over: freed by free_ops). -1 when the files are missing. */
static double ref_check(const char *name, cuda_ops *ops,
                        void (*free_ops)(cuda_ops *))
{
    char *path = tl_fixture(name); /* shipped if its reference is */
    ref_prompt *pr = NULL;
    int np = 0, V = 0;
    float *ref = NULL;
    double worst = -1;
    model *m = NULL;
    cuda_engine *e = NULL;
    em_err err;
    model_opts mo = {0};
    mo.n_threads = 1;
    mo.n_batch = 1;
    mo.n_ctx = 64;
    if (!path || !ref_prompts(name, &pr, &np, &ref, &V))
        goto out;
    if (model_build(path, &mo, &m, &err) ||
        cuda_engine_build(m, ops, 0, &e, &err)) {
        CHECK_MSG(0, "%s: %s", name, err.msg);
        goto out;
    }
    worst = 0;
    for (int i = 0; i < np; i++) {
        cuda_batch b = {0};
        cuda_plan_sequence(&b, pr[i].tok, pr[i].n, 0);
        b.score = em_malloc(sizeof *b.score * (size_t)pr[i].n);
        b.cap_score = pr[i].n;
        for (int k = 0; k + 1 < pr[i].n; k++) {
            b.score[k].row = k;
            b.score[k].target = pr[i].tok[k + 1];
            b.score[k].req = 0;
        }
        b.n_score = pr[i].n - 1;
        double *lp = em_malloc(sizeof(double) * (size_t)pr[i].n);
        int *gr = em_malloc(sizeof(int) * (size_t)pr[i].n);
        if (cuda_engine_forward(e, &b, 0, &err) ||
            cuda_engine_score(e, &b, lp, gr, &err)) {
            CHECK_MSG(0, "%s: %s", name, err.msg);
        } else {
            for (int k = 0; k < b.n_score; k++) {
                const float *row = ref + (size_t)(pr[i].offset + k) * V;
                double d = fabs(lp[k] - sample_logprob(row, V, pr[i].tok[k + 1]));
                worst = d > worst ? d : worst;
            }
        }
        free(lp);
        free(gr);
        cuda_batch_free(&b);
    }
out:
    cuda_engine_free(e);
    if (free_ops)
        free_ops(ops);
    model_free(m);
    for (int i = 0; i < np; i++)
        free(pr[i].tok);
    free(pr);
    free(ref);
    free(path);
    return worst;
}

#endif

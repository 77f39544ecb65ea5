/*
 * native.c - the "native" backend: GGUF models run in-process by model.c.
 *
 * Owns: backend_native_ops, the translation of harness requests into
 * token sequences and forward passes, and the reuse of the KV cache
 * between requests (see native.h for the spec's options).
 *
 * Scoring tokenises like lm-evaluation-harness: trailing whitespace of the
 * context moves to the continuation, whole = encode(context+continuation),
 * context_enc = encode(context) (BOS as the vocabulary asks), continuation
 * = whole[len(context_enc):], and the model is conditioned on context_enc.
 * An empty context conditions on BOS (EOS when the vocabulary has none).
 *
 * Prefix sharing (native_score.h's helpers, shared with token-level
 * completion): requests are sorted by their context tokens so that the
 * choices of a multiple-choice question are neighbours and contexts that
 * share a beginning follow each other. Each distinct context is evaluated
 * once (only the part not already in the cache), its last logits kept,
 * and its continuations then run together in one pass as branches of
 * that cache state (model_forward_branches: each sees the context and
 * its own tokens), so the weights are read once for all the choices.
 * The last token of a continuation is never run: its logits predict
 * nothing we need.
 *
 * Generation: the prompt reuses whatever prefix the cache holds, then one
 * token per step; it ends at EOS, max_tokens, a full context, or as soon
 * as the text contains a stop string (the text is cut before the earliest
 * one).
 *
 * Token-level completion (tokenize, token_text, complete: what `emerge
 * serve` answers with) runs on a native_scorer over the same model, made
 * on first use (native_complete.c). The scorer keeps scores beside the
 * cache, so loglikelihood and generate, which run the model themselves,
 * tell it to forget them.
 */
#include "backends/native.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/model.h"
#include "backends/engine/native_score.h"
#include "backends/engine/sample.h"
#include "backends/native_common.h"
#include "backends/native_complete.h"
#include "backends/engine/tokenizer.h"

typedef struct native {
    model *m;
    tokenizer *tok;
    sampler *smp;
    int prefix_sharing;
    float *lg;      /* logits rows scratch */
    size_t lg_rows;
    float *ctx_lg;  /* logits after the current context's last token */
    native_scorer *ns; /* token-level completion; NULL until first used */
} native;

/* One scoring request as token ids. */
typedef struct ll_item {
    int32_t *ctx;
    int nctx;
    int32_t *cont;
    int ncont;
    int idx;        /* position in the caller's arrays */
    int dropped;    /* context tokens fit_context dropped */
} ll_item;

static void native_close(void *state)
{
    native *nv = state;
    if (!nv)
        return;
    native_scorer_free(nv->ns);
    sample_free(nv->smp);
    tok_free(nv->tok);
    model_free(nv->m);
    free(nv->lg);
    free(nv->ctx_lg);
    free(nv);
}

static int native_open(const backend_spec *spec, void **state,
                       backend_info *info, em_err *err)
{
    if (!spec->path || !*spec->path)
        return em_errorf(err, "the native backend needs 'path' to a .gguf "
                         "file or a checkpoint directory");
    model_opts o = {0};
    o.load_type = backend_spec_opt(spec, "type");
    int share;
    if (native_opt_int(spec, "threads", 0, 0, 256, &o.n_threads, err) ||
        native_opt_int(spec, "n_ctx", 0, 0, 1 << 20, &o.n_ctx, err) ||
        native_opt_int(spec, "prefix_sharing", 1, 0, 1, &share, err) ||
        native_opt_int(spec, "kv_exact", 0, 0, 1, &o.kv_exact, err))
        return -1;
    native *nv = em_calloc(1, sizeof *nv);
    nv->prefix_sharing = share;
    if (model_build(spec->path, &o, &nv->m, err) ||
        tok_build(nv->m->gguf, &nv->tok, err))
        goto fail;
    if (tok_n_vocab(nv->tok) > nv->m->hp.n_vocab) {
        em_errorf(err, "%s: the vocabulary has %d tokens but the embedding "
                  "only %d rows", spec->path, tok_n_vocab(nv->tok),
                  nv->m->hp.n_vocab);
        goto fail;
    }
    nv->smp = sample_build(nv->m->hp.n_vocab);
    nv->ctx_lg = em_malloc(sizeof(float) * (size_t)nv->m->hp.n_vocab);
    native_fill_info(spec, nv->m, info);
    *state = nv;
    return 0;
fail:
    native_close(nv);
    return -1;
}

static float *logit_rows(native *nv, int rows)
{
    if ((size_t)rows > nv->lg_rows) {
        free(nv->lg);
        nv->lg = em_malloc(sizeof(float) * (size_t)rows *
                           (size_t)nv->m->hp.n_vocab);
        nv->lg_rows = (size_t)rows;
    }
    return nv->lg;
}

/* Keeps context + continuation[:-1] within n_ctx by dropping the oldest
 * context tokens, as the harness's left truncation does. */
static int fit_context(const native *nv, ll_item *it, em_err *err)
{
    int n_ctx = nv->m->n_ctx;
    if (it->ncont > n_ctx)
        return em_errorf(err, "continuation of %d tokens exceeds n_ctx %d",
                         it->ncont, n_ctx);
    int over = it->nctx + it->ncont - 1 - n_ctx;
    if (over > 0) {
        memmove(it->ctx, it->ctx + over,
                sizeof(int32_t) * (size_t)(it->nctx - over));
        it->nctx -= over;
        it->dropped = over;
    }
    return 0;
}

static int item_cmp(const void *a, const void *b)
{
    const ll_item *x = *(ll_item *const *)a, *y = *(ll_item *const *)b;
    int c = native_tokens_cmp(x->ctx, x->nctx, y->ctx, y->nctx);
    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int same_ctx(const ll_item *a, const ll_item *b)
{
    return a->nctx == b->nctx &&
           !memcmp(a->ctx, b->ctx, sizeof(int32_t) * (size_t)a->nctx);
}

/* Runs the context of it, reusing the cached prefix; its last logits go
 * to nv->ctx_lg. */
static int run_context(native *nv, const ll_item *it, em_err *err)
{
    model *m = nv->m;
    int reuse = nv->prefix_sharing ? model_common_prefix(m, it->ctx, it->nctx)
                                   : 0;
    if (reuse >= it->nctx)
        reuse = it->nctx - 1; /* its logits must be recomputed */
    model_truncate(m, reuse);
    int n = it->nctx - reuse;
    return model_forward(m, it->ctx + reuse, n, n - 1, n, nv->ctx_lg, err);
}

/* Sum of log-probabilities of it's continuation: its first token from
 * the context's last logits, token j >= 1 from rows[j-1]. */
static void score_rows(native *nv, const ll_item *it, const float *rows,
                       backend_ll_res *r)
{
    int V = nv->m->hp.n_vocab;
    double lp = 0;
    int greedy = 1;
    for (int j = 0; j < it->ncont; j++) {
        const float *row = j == 0 ? nv->ctx_lg : rows + (size_t)(j - 1) * V;
        lp += sample_logprob(row, V, it->cont[j]);
        greedy &= sample_argmax(row, V) == it->cont[j];
    }
    r->logprob = lp;
    r->n_tokens = it->ncont;
    r->is_greedy = greedy;
    r->ok = 1;
}

static int cont_run(const ll_item *it)
{
    return native_branch_run(it->ncont);
}

/* Scores g[0..n) (one context, already in the cache) in one pass: each
 * continuation is a branch of the context (native_branch_forward), so
 * the weights are streamed once for all the choices of a question. */
static void score_branches(native *nv, ll_item **g, int n, int total,
                           backend_ll_res *res)
{
    em_err err;
    float *rows = logit_rows(nv, total > 0 ? total : 1);
    if (total > 0) {
        const int32_t **tails = em_malloc(sizeof *tails * (size_t)n);
        int *n_tail = em_malloc(sizeof *n_tail * (size_t)n);
        for (int k = 0; k < n; k++) {
            tails[k] = g[k]->cont;
            n_tail[k] = g[k]->ncont;
        }
        int rc = native_branch_forward(nv->m, tails, n_tail, n, total, rows,
                                       &err);
        free(tails);
        free(n_tail);
        if (rc) {
            for (int k = 0; k < n; k++)
                native_fail_req(&res[g[k]->idx], err.msg);
            return;
        }
    }
    size_t V = (size_t)nv->m->hp.n_vocab;
    for (int k = 0, at = 0; k < n; k++) {
        score_rows(nv, g[k], rows + (size_t)at * V, &res[g[k]->idx]);
        at += cont_run(g[k]);
    }
}

/* One continuation too long for a shared pass: run it, score, drop it. */
static void score_alone(native *nv, const ll_item *it, backend_ll_res *r)
{
    em_err err;
    int n = cont_run(it);
    float *rows = logit_rows(nv, n > 0 ? n : 1);
    if (n > 0 && model_forward(nv->m, it->cont, n, 0, n, rows, &err)) {
        native_fail_req(r, err.msg);
        return;
    }
    score_rows(nv, it, rows, r);
    model_truncate(nv->m, it->nctx);
}

/* The continuations of one context (in the cache), packed into as few
 * shared passes as n_batch and the free context allow. */
static void score_group(native *nv, ll_item **g, int n, backend_ll_res *res)
{
    model *m = nv->m;
    int cap = m->n_ctx - m->n_past < m->n_batch ? m->n_ctx - m->n_past
                                                : m->n_batch;
    int *n_tail = em_malloc(sizeof *n_tail * (size_t)n);
    for (int k = 0; k < n; k++)
        n_tail[k] = g[k]->ncont;
    for (int i = 0; i < n;) {
        int total, j = i + native_branch_pack(n_tail + i, n - i, cap, &total);
        if (j == i) {
            score_alone(nv, g[i], &res[g[i]->idx]);
            j = i + 1;
        } else {
            score_branches(nv, g + i, j - i, total, res);
        }
        i = j;
    }
    free(n_tail);
}

static void score_sorted(native *nv, ll_item **order, int n,
                         backend_ll_res *res)
{
    em_err err;
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (nv->prefix_sharing && j < n && same_ctx(order[i], order[j]))
            j++;
        if (run_context(nv, order[i], &err)) {
            for (int k = i; k < j; k++)
                native_fail_req(&res[order[k]->idx], err.msg);
        } else {
            score_group(nv, order + i, j - i, res);
        }
        i = j;
    }
}

static int native_loglikelihood(void *state, const backend_ll_req *req,
                                backend_ll_res *res, int n, em_err *err)
{
    (void)err;
    native *nv = state;
    if (nv->ns)
        native_scorer_forget(nv->ns);
    ll_item *items = em_calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    ll_item **order = em_calloc((size_t)(n > 0 ? n : 1), sizeof *order);
    int n_ok = 0;
    for (int i = 0; i < n; i++) {
        em_err e;
        items[i].idx = i;
        if (native_encode_pair(nv->tok, req[i].context ? req[i].context : "",
                               req[i].continuation ? req[i].continuation : "",
                               &items[i].ctx, &items[i].nctx, &items[i].cont,
                               &items[i].ncont, &e) ||
            fit_context(nv, &items[i], &e)) {
            native_fail_req(&res[i], e.msg);
            continue;
        }
        order[n_ok++] = &items[i];
    }
    qsort(order, (size_t)n_ok, sizeof *order, item_cmp);
    score_sorted(nv, order, n_ok, res);
    for (int k = 0; k < n_ok; k++)
        res[order[k]->idx].truncated = order[k]->dropped;
    for (int i = 0; i < n; i++) {
        free(items[i].ctx);
        free(items[i].cont);
    }
    free(items);
    free(order);
    return 0;
}

/* ------------------------------------------------------------ generation */

/* text -> ids, BOS as the vocabulary asks; an empty text is the start
 * token (an empty context conditions on it). */
static int native_tokenize(void *state, const char *text, int32_t **ids,
                           int *n, em_err *err)
{
    const native *nv = state;
    if (tok_encode(nv->tok, text, strlen(text), 1, ids, n, err))
        return -1;
    if (*n == 0) {
        *ids = em_realloc(*ids, sizeof(int32_t));
        (*ids)[0] = native_start_token(nv->tok);
        *n = 1;
    }
    return 0;
}

/* Runs the prompt, reusing the cached prefix; logits of its last token
 * into nv->ctx_lg. *dropped: prompt tokens left out to fit the context
 * with room for max generated tokens (native_prompt_keep). */
static int gen_prompt(void *eng, const char *prompt, int max, int *dropped,
                      em_err *err)
{
    native *nv = eng;
    model *m = nv->m;
    int32_t *ids = NULL;
    int n = 0;
    if (native_tokenize(nv, prompt, &ids, &n, err))
        return -1;
    int keep = native_prompt_keep(n, m->n_ctx, max);
    int32_t *p = ids + (n - keep);
    *dropped = n - keep;
    int reuse = model_common_prefix(m, p, keep);
    if (reuse >= keep)
        reuse = keep - 1;
    model_truncate(m, reuse);
    int rc = model_forward(m, p + reuse, keep - reuse, keep - reuse - 1,
                           keep - reuse, nv->ctx_lg, err);
    free(ids);
    return rc;
}

/* The engine's side of native_generate_one, with gen_prompt above: one
 * generated token in, the next token's logits out; and whether the
 * context is full. */
static int gen_step(void *eng, int32_t t, em_err *err)
{
    native *nv = eng;
    return model_forward(nv->m, &t, 1, 0, 1, nv->ctx_lg, err);
}

static int gen_full(void *eng)
{
    const model *m = ((native *)eng)->m;
    return m->n_past >= m->n_ctx;
}

static int gen_one(native *nv, const backend_gen_req *rq, backend_gen_res *r,
                   em_err *err)
{
    native_gen g = {nv, nv->tok, nv->smp, nv->ctx_lg, nv->m->hp.n_vocab,
                    gen_prompt, gen_step, gen_full};
    return native_generate_one(&g, nv->m->n_ctx, rq, r, err);
}

static int native_generate(void *state, const backend_gen_req *req,
                           backend_gen_res *res, int n, em_err *err)
{
    (void)err;
    native *nv = state;
    if (nv->ns)
        native_scorer_forget(nv->ns);
    for (int i = 0; i < n; i++) {
        em_err e;
        if (gen_one(nv, &req[i], &res[i], &e)) {
            res[i].ok = 0;
            snprintf(res[i].error, sizeof res[i].error, "%.255s", e.msg);
        }
    }
    return 0;
}

/* ---------------------------------------------- token-level completion */

static int native_token_text(void *state, int32_t id, char *buf, int cap)
{
    const native *nv = state;
    return tok_decode(nv->tok, id, buf, (size_t)cap);
}

static int native_complete(void *state, const backend_cmpl_req *req,
                           backend_cmpl_res *res, int n, em_err *err)
{
    (void)err;
    native *nv = state;
    if (!nv->ns)
        nv->ns = native_scorer_build(nv->m, nv->tok);
    native_complete_batch(nv->ns, req, res, n);
    return 0;
}

uint64_t native_tokens_evaluated(const backend *b)
{
    if (!b || b->ops != &backend_native_ops)
        return 0;
    return ((const native *)b->state)->m->n_evaluated;
}

const backend_ops backend_native_ops = {
    .name = "native",
    .open = native_open,
    .loglikelihood = native_loglikelihood,
    .generate = native_generate,
    .close = native_close,
    .tokenize = native_tokenize,
    .token_text = native_token_text,
    .complete = native_complete,
};

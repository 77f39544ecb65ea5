/*
 * cuda_backend.c - requests to batches and back (see cuda_backend.h).
 *
 * Scoring: every request is tokenised (context, continuation) the way
 * native.c does it, left-truncated to fit n_ctx, and the requests are
 * sorted by context so that equal contexts are neighbours. cuda_plan_next
 * packs as many as fit into one batch; one forward pass runs the batch,
 * one scoring pass returns a log-prob and a greedy flag per continuation
 * token, and the sums go back in request order.
 *
 * Generation runs one request at a time on a cache held in the engine's
 * KV rows [0, n_past): the prompt reuses the prefix it shares with the
 * previous generation, then one token per forward pass. A scoring batch
 * overwrites those rows, so it forgets the generation cache.
 */
#include "backends/cuda_backend.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/native_common.h"
#include "backends/engine/sample.h"
#include "backends/engine/tokenizer.h"

typedef struct cuda_state {
    cuda_ops *ops;
    void (*ops_free)(cuda_ops *);
    model *m;
    tokenizer *tok;
    sampler *smp;
    cuda_engine *eng;
    int share;
    cuda_batch batch;
    int32_t *gen_tok; /* what the generation cache holds */
    int gen_n;
    float *lg;        /* one logits row */
    long stat_rows;
    int stat_batches;
} cuda_state;

void cuda_backend_close(void *state)
{
    cuda_state *s = state;
    if (!s)
        return;
    cuda_engine_free(s->eng);
    if (s->ops_free)
        s->ops_free(s->ops);
    sample_free(s->smp);
    tok_free(s->tok);
    model_free(s->m);
    cuda_batch_free(&s->batch);
    free(s->gen_tok);
    free(s->lg);
    free(s);
}

int cuda_backend_open(const backend_spec *spec, cuda_ops *ops,
                      void (*ops_free)(cuda_ops *), void **state,
                      backend_info *info, em_err *err)
{
    cuda_state *s = em_calloc(1, sizeof *s);
    s->ops = ops;
    s->ops_free = ops_free;
    model_opts o = {0};
    int max_tok, kv_exact;
    o.n_threads = 1; /* the CPU model only holds the weights and hparams */
    o.n_batch = 1;
    if (!spec->path || !*spec->path) {
        em_errorf(err, "the %s backend needs 'path' to a .gguf file", ops->name);
        goto fail;
    }
    if (native_opt_int(spec, "n_ctx", 0, 0, 1 << 20, &o.n_ctx, err) ||
        native_opt_int(spec, "prefix_sharing", 1, 0, 1, &s->share, err) ||
        native_opt_int(spec, "batch_tokens", 0, 0, 1 << 20, &max_tok, err) ||
        native_opt_int(spec, "kv_exact", 0, 0, 1, &kv_exact, err))
        goto fail;
    if (kv_exact) {
        em_errorf(err, "option 'kv_exact': the %s backend keeps its KV cache "
                  "in F16 (as llama.cpp's default); only kv_exact: 0 is "
                  "possible", ops->name);
        goto fail;
    }
    if (model_build(spec->path, &o, &s->m, err) ||
        tok_build(s->m->gguf, &s->tok, err))
        goto fail;
    if (tok_n_vocab(s->tok) > s->m->hp.n_vocab) {
        em_errorf(err, "%s: the vocabulary has %d tokens but the embedding "
                  "only %d rows", spec->path, tok_n_vocab(s->tok),
                  s->m->hp.n_vocab);
        goto fail;
    }
    if (cuda_engine_build(s->m, ops, max_tok, &s->eng, err)) {
        em_error_prefix(err, "%s", spec->path);
        goto fail;
    }
    s->smp = sample_build(s->m->hp.n_vocab);
    s->lg = em_malloc(sizeof(float) * (size_t)s->m->hp.n_vocab);
    s->gen_tok = em_malloc(sizeof(int32_t) * (size_t)s->m->n_ctx);
    native_fill_info(spec, s->m, info);
    *state = s;
    return 0;
fail:
    cuda_backend_close(s);
    return -1;
}

void cuda_backend_stats(void *state, long *rows, int *batches)
{
    cuda_state *s = state;
    *rows = s->stat_rows;
    *batches = s->stat_batches;
}

/* ---------------------------------------------------------------- scoring */

typedef struct ll_item {
    cuda_seq seq;
    int32_t *ctx, *cont;
    int dropped;    /* context tokens left out to fit n_ctx */
} ll_item;

/* The shared lm-evaluation-harness split (native_common.c), then left
 * truncation of the context to fit n_ctx. */
static int encode_pair(cuda_state *s, const char *context, const char *cont,
                       ll_item *it, em_err *err)
{
    int nctx = 0, ncont = 0;
    if (native_encode_pair(s->tok, context, cont, &it->ctx, &nctx, &it->cont,
                           &ncont, err))
        return -1;
    int n_ctx = s->m->n_ctx, over = nctx + ncont - 1 - n_ctx;
    if (ncont > n_ctx)
        return em_errorf(err, "continuation of %d tokens exceeds n_ctx %d",
                         ncont, n_ctx);
    if (over > 0) { /* left truncation of the context */
        memmove(it->ctx, it->ctx + over, sizeof(int32_t) * (size_t)(nctx - over));
        nctx -= over;
        it->dropped = over;
    }
    it->seq.ctx = it->ctx;
    it->seq.nctx = nctx;
    it->seq.cont = it->cont;
    it->seq.ncont = ncont;
    return 0;
}

static int seq_cmp(const void *a, const void *b)
{
    const cuda_seq *x = *(const cuda_seq *const *)a;
    const cuda_seq *y = *(const cuda_seq *const *)b;
    int n = x->nctx < y->nctx ? x->nctx : y->nctx;
    for (int i = 0; i < n; i++)
        if (x->ctx[i] != y->ctx[i])
            return x->ctx[i] < y->ctx[i] ? -1 : 1;
    if (x->nctx != y->nctx)
        return x->nctx < y->nctx ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Runs one batch and adds its scores into res. */
static int run_batch(cuda_state *s, backend_ll_res *res, em_err *err)
{
    cuda_batch *b = &s->batch;
    if (b->n_tok == 0)
        return 0;
    double *lp = em_malloc(sizeof(double) * (size_t)(b->n_score + 1));
    int *gr = em_malloc(sizeof(int) * (size_t)(b->n_score + 1));
    int rc = cuda_engine_forward(s->eng, b, 0, err) ||
             cuda_engine_score(s->eng, b, lp, gr, err);
    for (int i = 0; rc == 0 && i < b->n_score; i++) {
        backend_ll_res *r = &res[b->score[i].req];
        r->logprob += lp[i];
        r->is_greedy &= gr[i];
    }
    s->stat_rows += b->n_tok;
    s->stat_batches++;
    free(lp);
    free(gr);
    return rc ? -1 : 0;
}

static void score_all(cuda_state *s, cuda_seq **order, int n,
                      backend_ll_res *res)
{
    int max_tok = cuda_engine_max_tok(s->eng);
    s->gen_n = 0; /* the batches overwrite the generation cache */
    for (int i = 0; i < n;) {
        int k = cuda_plan_next((const cuda_seq *const *)order, n, i, max_tok,
                               s->share, &s->batch);
        em_err e;
        if (k == 0) {
            native_fail_req(&res[order[i]->idx], "request longer than a batch");
            i++;
            continue;
        }
        for (int j = i; j < i + k; j++) {
            backend_ll_res *r = &res[order[j]->idx];
            r->logprob = 0;
            r->is_greedy = 1;
            r->n_tokens = order[j]->ncont;
            r->ok = 1;
        }
        if (run_batch(s, res, &e))
            for (int j = i; j < i + k; j++)
                native_fail_req(&res[order[j]->idx], e.msg);
        i += k;
    }
}

int cuda_backend_loglikelihood(void *state, const backend_ll_req *req,
                               backend_ll_res *res, int n, em_err *err)
{
    (void)err;
    cuda_state *s = state;
    ll_item *items = em_calloc((size_t)(n > 0 ? n : 1), sizeof *items);
    cuda_seq **order = em_calloc((size_t)(n > 0 ? n : 1), sizeof *order);
    int n_ok = 0;
    s->stat_rows = 0;
    s->stat_batches = 0;
    for (int i = 0; i < n; i++) {
        em_err e;
        items[i].seq.idx = i;
        if (encode_pair(s, req[i].context ? req[i].context : "",
                        req[i].continuation ? req[i].continuation : "",
                        &items[i], &e)) {
            native_fail_req(&res[i], e.msg);
            continue;
        }
        order[n_ok++] = &items[i].seq;
    }
    qsort(order, (size_t)n_ok, sizeof *order, seq_cmp);
    score_all(s, order, n_ok, res);
    for (int i = 0; i < n; i++) {
        if (res[i].ok)
            res[i].truncated = items[i].dropped;
        free(items[i].ctx);
        free(items[i].cont);
    }
    free(items);
    free(order);
    return 0;
}

/* ------------------------------------------------------------- generation */

/* Runs toks[from..n) at positions from.. on the generation cache and
 * leaves the logits of the last one in s->lg. */
static int gen_forward(cuda_state *s, const int32_t *toks, int from, int n,
                       em_err *err)
{
    cuda_batch_reset(&s->batch);
    cuda_plan_sequence(&s->batch, toks + from, n - from, from);
    s->gen_n = from; /* valid up to here until the pass succeeds */
    if (cuda_engine_forward(s->eng, &s->batch, from, err) ||
        cuda_engine_logits(s->eng, n - from - 1, s->lg, err))
        return -1;
    memmove(s->gen_tok + from, toks + from, sizeof(int32_t) * (size_t)(n - from));
    s->gen_n = n;
    return 0;
}

static int gen_prompt(void *eng, const char *prompt, int max, int *dropped,
                      em_err *err)
{
    cuda_state *s = eng;
    int32_t *ids = NULL;
    int n = 0, n_ctx = s->m->n_ctx;
    if (tok_encode(s->tok, prompt, strlen(prompt), 1, &ids, &n, err))
        return -1;
    if (n == 0) {
        ids = em_realloc(ids, sizeof(int32_t));
        ids[0] = native_start_token(s->tok);
        n = 1;
    }
    int keep = native_prompt_keep(n, n_ctx, max);
    int32_t *p = ids + (n - keep);
    *dropped = n - keep;
    int reuse = 0;
    while (reuse < keep && reuse < s->gen_n && s->gen_tok[reuse] == p[reuse])
        reuse++;
    if (reuse >= keep)
        reuse = keep - 1;
    int rc = gen_forward(s, p, reuse, keep, err);
    free(ids);
    return rc;
}

/* The engine's side of native_generate_one, with gen_prompt above: one
 * generated token in, the next token's logits out; and whether the
 * context is full. */
static int gen_step(void *eng, int32_t t, em_err *err)
{
    cuda_state *s = eng;
    s->gen_tok[s->gen_n] = t;
    return gen_forward(s, s->gen_tok, s->gen_n, s->gen_n + 1, err);
}

static int gen_full(void *eng)
{
    const cuda_state *s = eng;
    return s->gen_n >= s->m->n_ctx;
}

static int gen_one(cuda_state *s, const backend_gen_req *rq,
                   backend_gen_res *r, em_err *err)
{
    native_gen g = {s, s->tok, s->smp, s->lg, s->m->hp.n_vocab,
                    gen_prompt, gen_step, gen_full};
    return native_generate_one(&g, s->m->n_ctx, rq, r, err);
}

int cuda_backend_generate(void *state, const backend_gen_req *req,
                          backend_gen_res *res, int n, em_err *err)
{
    (void)err;
    cuda_state *s = state;
    for (int i = 0; i < n; i++) {
        em_err e;
        if (gen_one(s, &req[i], &res[i], &e)) {
            s->gen_n = 0;
            res[i].ok = 0;
            snprintf(res[i].error, sizeof res[i].error, "%.255s", e.msg);
        }
    }
    return 0;
}

/* ------------------------------------------------- host emulation backend */

static void host_ops_free(cuda_ops *o)
{
    cuda_host_ops_free(o);
}

static int host_open(const backend_spec *spec, void **state,
                     backend_info *info, em_err *err)
{
    return cuda_backend_open(spec, cuda_host_ops_build(), host_ops_free, state,
                             info, err);
}

const backend_ops backend_cuda_host_ops = {
    .name = "cuda-host",
    .open = host_open,
    .loglikelihood = cuda_backend_loglikelihood,
    .generate = cuda_backend_generate,
    .close = cuda_backend_close,
};

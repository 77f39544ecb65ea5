/*
 * native_complete.c - a batch of token-level completions on a
 * native_scorer (see native_complete.h). Moved here from the server, which
 * now reaches it through the backend interface.
 */
#include "backends/native_complete.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/native_common.h"

_Static_assert(NATIVE_SCORE_TOPK == BACKEND_TOPK,
               "to_scores copies the engine's top entries as they are");

/* One request while it runs: scores in the engine's shape until done. */
typedef struct nc_item {
    const backend_cmpl_req *rq;
    backend_cmpl_res *rs;
    native_score_pos *ppos;      /* prompt scores when score_prompt */
    native_score_pos *gpos;      /* generated tokens' scores */
    em_buf text;                 /* generated text, stop string cut off */
} nc_item;

/* Generation step by step, as the native backend's generate() does, so
 * both give the same text for the same prompt, settings and seed. */
static int generate(native_scorer *s, nc_item *it, em_err *err)
{
    const backend_cmpl_req *r = it->rq;
    backend_cmpl_res *rs = it->rs;
    const model *m = native_scorer_model(s);
    const tokenizer *tok = native_scorer_tok(s);
    int max = r->max_tokens < m->n_ctx ? r->max_tokens : m->n_ctx;
    uint64_t rng = r->seed;
    rs->gen = em_malloc(sizeof(int32_t) * (size_t)(max + 1));
    it->gpos = em_malloc(sizeof *it->gpos * (size_t)(max + 1));
    rs->finish = BACKEND_FINISH_LENGTH;
    while (rs->n_gen < max) {
        native_score_pos p;
        int32_t t = native_scorer_sample(s, r->temperature, r->top_p, &rng, &p);
        if (t == tok_eos(tok)) {
            rs->finish = BACKEND_FINISH_STOP;
            break;
        }
        rs->gen[rs->n_gen] = t;
        it->gpos[rs->n_gen++] = p;
        if (native_append_token(tok, t, &it->text, r->stop, r->n_stop)) {
            rs->finish = BACKEND_FINISH_STOP;
            break;
        }
        if (rs->n_gen == max)
            break;
        if (m->n_past >= m->n_ctx) {
            rs->finish = BACKEND_FINISH_CONTEXT;
            break;
        }
        if (native_scorer_push(s, t, err))
            return -1;
    }
    return 0;
}

static void run_item(native_scorer *s, nc_item *it)
{
    em_err err;
    int want = it->rq->score_prompt;
    if (want)
        it->ppos = em_calloc((size_t)it->rq->n_toks, sizeof *it->ppos);
    if (native_scorer_prompt(s, it->rq->toks, it->rq->n_toks,
                             want ? it->ppos : NULL, &err) ||
        generate(s, it, &err)) {
        it->rs->ok = 0;
        snprintf(it->rs->error, sizeof it->rs->error, "%.255s", err.msg);
    }
}

static int ref_cmp(const void *a, const void *b)
{
    const backend_cmpl_req *x = (*(nc_item *const *)a)->rq,
                           *y = (*(nc_item *const *)b)->rq;
    return native_tokens_cmp(x->toks, x->n_toks, y->toks, y->n_toks);
}

/* A prompt that is only scored (nothing generated): it can share a
 * forward pass with others of the same prefix. */
static int score_only(const nc_item *x)
{
    return x->rq->score_prompt && x->rq->max_tokens == 0;
}

static int lcp(const backend_cmpl_req *a, const backend_cmpl_req *b)
{
    int n = a->n_toks < b->n_toks ? a->n_toks : b->n_toks, i = 0;
    while (i < n && a->toks[i] == b->toks[i])
        i++;
    return i;
}

/* How many sorted prompts from g[0] share a prefix worth a branch pass
 * (more than BOS, every tail short enough); *plen: the prefix length. */
static int branch_group(nc_item *const *g, int n, int *plen)
{
    if (!score_only(g[0]))
        return 1;
    const backend_cmpl_req *first = g[0]->rq;
    int len = first->n_toks - 1, k = 1;
    for (; k < n && score_only(g[k]); k++) {
        const backend_cmpl_req *x = g[k]->rq;
        int l = lcp(first, x);
        if (l > x->n_toks - 1)
            l = x->n_toks - 1;
        if (l < 2 || x->n_toks - l > NATIVE_SCORE_MAX_TAIL ||
            first->n_toks - l > NATIVE_SCORE_MAX_TAIL)
            break;
        if (l < len)
            len = l;
    }
    *plen = len;
    return k;
}

/* Scores g[0..n) as one prefix and n branches; 0 on success, -1 when they
 * have to run one by one. */
static int run_branches(native_scorer *s, nc_item *const *g, int n, int plen)
{
    em_err err;
    native_score_pos *pre = em_calloc((size_t)plen, sizeof *pre);
    const int32_t **tails = em_calloc((size_t)n, sizeof *tails);
    int *nt = em_calloc((size_t)n, sizeof *nt);
    native_score_pos **info = em_calloc((size_t)n, sizeof *info);
    int rc = native_scorer_prompt(s, g[0]->rq->toks, plen, pre, &err);
    for (int k = 0; rc == 0 && k < n; k++) {
        nc_item *it = g[k];
        int nk = it->rq->n_toks;
        it->ppos = em_calloc((size_t)nk, sizeof *it->ppos);
        memcpy(it->ppos + 1, pre + 1, sizeof *pre * (size_t)(plen - 1));
        tails[k] = it->rq->toks + plen;
        nt[k] = nk - plen;
        info[k] = it->ppos + plen;
        it->rs->finish = BACKEND_FINISH_LENGTH;
        it->rs->shared = 1;
    }
    if (rc == 0)
        rc = native_scorer_branches(s, tails, nt, n, info, &err);
    for (int k = 0; rc != 0 && k < n; k++) {
        free(g[k]->ppos);
        g[k]->ppos = NULL;
        g[k]->rs->shared = 0;
    }
    free(pre);
    free(tails);
    free(nt);
    free(info);
    return rc;
}

/* The engine's scores as the interface's (the same fields). */
static backend_tok_score *to_scores(const native_score_pos *p, int n)
{
    if (!p)
        return NULL;
    backend_tok_score *o = em_calloc((size_t)(n > 0 ? n : 1), sizeof *o);
    for (int i = 0; i < n; i++) {
        o[i].logprob = p[i].logprob;
        memcpy(o[i].top_id, p[i].top_id, sizeof o[i].top_id);
        memcpy(o[i].top_lp, p[i].top_lp, sizeof o[i].top_lp);
    }
    return o;
}

static void finish_item(nc_item *it)
{
    backend_cmpl_res *rs = it->rs;
    if (rs->ok) {
        rs->prompt = to_scores(it->ppos, it->rq->n_toks);
        rs->gen_score = to_scores(it->gpos, rs->n_gen);
        rs->text_len = it->text.len;
        rs->text = it->text.s ? em_buf_take(&it->text) : NULL;
    }
    free(it->ppos);
    free(it->gpos);
    em_buf_free(&it->text);
}

void native_complete_batch(native_scorer *s, const backend_cmpl_req *req,
                           backend_cmpl_res *res, int n)
{
    nc_item *items = em_calloc((size_t)(n ? n : 1), sizeof *items);
    nc_item **refs = em_calloc((size_t)(n ? n : 1), sizeof *refs);
    for (int i = 0; i < n; i++) {
        items[i] = (nc_item){.rq = &req[i], .rs = &res[i]};
        res[i].ok = 1;
        refs[i] = &items[i];
    }
    qsort(refs, (size_t)n, sizeof *refs, ref_cmp); /* stable enough: ties equal */
    for (int i = 0; i < n;) {
        int plen = 0, g = branch_group(refs + i, n - i, &plen);
        if (g == 1 || run_branches(s, refs + i, g, plen) != 0)
            for (int k = i; k < i + g; k++)
                run_item(s, refs[k]);
        i += g;
    }
    for (int i = 0; i < n; i++)
        finish_item(&items[i]);
    free(refs);
    free(items);
}

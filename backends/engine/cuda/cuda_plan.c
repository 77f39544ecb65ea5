/*
 * cuda_plan.c - packing scoring requests into GPU batches (see
 * cuda_plan.h).
 */
#include "backends/engine/cuda/cuda_plan.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

int cuda_seq_same_ctx(const cuda_seq *a, const cuda_seq *b)
{
    return a->nctx == b->nctx &&
           !memcmp(a->ctx, b->ctx, sizeof(int32_t) * (size_t)a->nctx);
}

int cuda_plan_cost(const cuda_seq *s, int shares_ctx)
{
    int run = s->ncont > 0 ? s->ncont - 1 : 0;
    return (shares_ctx ? 0 : s->nctx) + run;
}

void cuda_batch_reset(cuda_batch *b)
{
    b->n_tok = 0;
    b->n_score = 0;
}

void cuda_batch_free(cuda_batch *b)
{
    free(b->tok);
    free(b->pos);
    free(b->rng);
    free(b->score);
    memset(b, 0, sizeof *b);
}

static void grow_tok(cuda_batch *b, int need)
{
    if (need <= b->cap_tok)
        return;
    int cap = b->cap_tok ? b->cap_tok : 256;
    while (cap < need)
        cap *= 2;
    b->tok = em_realloc(b->tok, sizeof *b->tok * (size_t)cap);
    b->pos = em_realloc(b->pos, sizeof *b->pos * (size_t)cap);
    b->rng = em_realloc(b->rng, sizeof *b->rng * (size_t)cap);
    b->cap_tok = cap;
}

static void add_row(cuda_batch *b, int32_t tok, int32_t pos, cuda_range r)
{
    grow_tok(b, b->n_tok + 1);
    int i = b->n_tok++;
    b->tok[i] = tok;
    b->pos[i] = pos;
    b->rng[i] = r;
}

static cuda_range range3(int32_t a0, int32_t alen, int32_t b0, int32_t blen,
                         int32_t c0, int32_t clen)
{
    cuda_range r;
    r.a0 = a0;
    r.alen = alen;
    r.b0 = b0;
    r.blen = blen;
    r.c0 = c0;
    r.clen = clen;
    return r;
}

static void add_score(cuda_batch *b, int32_t row, int32_t target, int32_t req)
{
    if (b->n_score == b->cap_score) {
        b->cap_score = b->cap_score ? 2 * b->cap_score : 256;
        b->score = em_realloc(b->score, sizeof *b->score * (size_t)b->cap_score);
    }
    cuda_score_row *s = &b->score[b->n_score++];
    s->row = row;
    s->target = target;
    s->req = req;
}

void cuda_plan_sequence(cuda_batch *b, const int32_t *tok, int T, int p0)
{
    for (int t = 0; t < T; t++)
        add_row(b, tok[t], p0 + t, range3(0, 0, 0, p0 + t + 1, 0, 0));
}

/* Where a context lies in the batch: its first p tokens are the anchor's
 * rows [a0, a0+p), the rest its own rows [c0, c0+nctx-p). */
typedef struct ctx_place {
    int32_t a0, p, c0;
} ctx_place;

static ctx_place put_context(cuda_batch *b, const cuda_seq *s, int32_t a0,
                             int p)
{
    ctx_place cp = {a0, p, b->n_tok};
    for (int i = p; i < s->nctx; i++)
        add_row(b, s->ctx[i], i, range3(a0, p, cp.c0, i - p + 1, 0, 0));
    return cp;
}

/* A continuation after a placed context. */
static void put_cont(cuda_batch *b, const cuda_seq *s, ctx_place cp)
{
    int k0 = b->n_tok, own = s->nctx - cp.p;
    for (int j = 0; j + 1 < s->ncont; j++)
        add_row(b, s->cont[j], s->nctx + j,
                range3(cp.a0, cp.p, cp.c0, own, k0, j + 1));
    for (int j = 0; j < s->ncont; j++)
        add_score(b, j == 0 ? cp.c0 + own - 1 : k0 + j - 1, s->cont[j], s->idx);
}

/* Tokens s's context shares with the anchor context (at least one token
 * of s stays its own, whose row predicts the continuation). */
static int shared_prefix(const cuda_seq *anchor, const cuda_seq *s)
{
    int n = anchor->nctx < s->nctx - 1 ? anchor->nctx : s->nctx - 1, p = 0;
    while (p < n && anchor->ctx[p] == s->ctx[p])
        p++;
    return p;
}

int cuda_plan_next(const cuda_seq *const *seqs, int n, int first, int max_tok,
                   int share, cuda_batch *b)
{
    cuda_batch_reset(b);
    int k = first;
    const cuda_seq *prev = NULL, *anchor = NULL;
    ctx_place cp = {0, 0, 0}, anchor_cp = {0, 0, 0};
    for (; k < n; k++) {
        const cuda_seq *s = seqs[k];
        int same = share && prev && cuda_seq_same_ctx(prev, s);
        int p = share && anchor && !same ? shared_prefix(anchor, s) : 0;
        int cost = same ? cuda_plan_cost(s, 1) : cuda_plan_cost(s, 0) - p;
        if (b->n_tok + cost > max_tok)
            break;
        if (!same) {
            cp = put_context(b, s, anchor_cp.c0, p);
            if (p == 0) { /* shares nothing: the anchor of those after it */
                anchor = s;
                anchor_cp = cp;
            }
        }
        put_cont(b, s, cp);
        prev = s;
    }
    return k - first;
}

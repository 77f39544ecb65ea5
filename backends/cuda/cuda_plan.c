/*
 * cuda_plan.c - packing scoring requests into GPU batches (see
 * cuda_plan.h).
 */
#include "backends/cuda/cuda_plan.h"

#include <stdlib.h>
#include <string.h>

#include "harness/common.h"

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

static void add_row(cuda_batch *b, int32_t tok, int32_t pos, int32_t a0,
                    int32_t alen, int32_t b0, int32_t blen)
{
    grow_tok(b, b->n_tok + 1);
    int i = b->n_tok++;
    b->tok[i] = tok;
    b->pos[i] = pos;
    b->rng[i].a0 = a0;
    b->rng[i].alen = alen;
    b->rng[i].b0 = b0;
    b->rng[i].blen = blen;
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
        add_row(b, tok[t], p0 + t, 0, 0, 0, p0 + t + 1);
}

/* Lays out a context: rows [c0, c0+nctx), each attending causally to
 * itself. Returns c0. */
static int put_context(cuda_batch *b, const cuda_seq *s)
{
    int c0 = b->n_tok;
    for (int i = 0; i < s->nctx; i++)
        add_row(b, s->ctx[i], i, 0, 0, c0, i + 1);
    return c0;
}

/* A continuation after the context at rows [c0, c0+nctx). */
static void put_cont(cuda_batch *b, const cuda_seq *s, int c0)
{
    int k0 = b->n_tok;
    for (int j = 0; j + 1 < s->ncont; j++)
        add_row(b, s->cont[j], s->nctx + j, c0, s->nctx, k0, j + 1);
    for (int j = 0; j < s->ncont; j++)
        add_score(b, j == 0 ? c0 + s->nctx - 1 : k0 + j - 1, s->cont[j],
                  s->idx);
}

int cuda_plan_next(const cuda_seq *const *seqs, int n, int first, int max_tok,
                   int share, cuda_batch *b)
{
    cuda_batch_reset(b);
    int c0 = -1, k = first;
    const cuda_seq *prev = NULL;
    for (; k < n; k++) {
        const cuda_seq *s = seqs[k];
        int shares = share && prev && cuda_seq_same_ctx(prev, s);
        if (b->n_tok + cuda_plan_cost(s, shares) > max_tok)
            break;
        if (!shares)
            c0 = put_context(b, s);
        put_cont(b, s, c0);
        prev = s;
    }
    return k - first;
}

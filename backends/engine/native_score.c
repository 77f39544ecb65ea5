/*
 * native_score.c - per-token prompt scoring and generation steps (see
 * native_score.h).
 *
 * The cache of model.h holds token ids only, so a reused prefix has no
 * logits left to score its tokens with. We keep, beside the cache, what
 * each position's token scored when it was computed (`pos`, valid for
 * positions [1, valid_upto)) and the logits after the last cached token
 * (`last`). A prompt that shares a prefix with the cache then only runs
 * its new tail; at worst one token more, to recover the logits that
 * predict the first new token.
 *
 * Logits are computed CHUNK rows at a time so a long prompt never needs
 * n_ctx x n_vocab floats at once.
 */
#include "backends/engine/native_score.h"

#include <stdlib.h>
#include <string.h>

#include "backends/engine/sample.h"

enum { CHUNK = 32 };

struct native_scorer {
    model *m;                /* borrowed */
    const tokenizer *tok;    /* borrowed */
    sampler *smp;
    float *rows;             /* CHUNK x n_vocab */
    float *last;             /* logits after the last cached token */
    int last_ok;             /* `last` belongs to the cache's last token */
    native_score_pos *pos;   /* n_ctx entries */
    int valid_upto;          /* pos[1..valid_upto) hold scores */
};

void native_scorer_free(native_scorer *s)
{
    if (!s)
        return;
    sample_free(s->smp);
    free(s->rows);
    free(s->last);
    free(s->pos);
    free(s);
}

native_scorer *native_scorer_build(model *m, const tokenizer *tok)
{
    native_scorer *s = em_calloc(1, sizeof *s);
    size_t V = (size_t)m->hp.n_vocab;
    s->m = m;
    s->tok = tok;
    s->smp = sample_build((int)V);
    s->rows = em_malloc(sizeof(float) * V * CHUNK);
    s->last = em_malloc(sizeof(float) * V);
    s->pos = em_calloc((size_t)m->n_ctx, sizeof *s->pos);
    s->valid_upto = 1;
    return s;
}

void native_scorer_forget(native_scorer *s)
{
    s->valid_upto = 1;
    s->last_ok = 0;
}

const model *native_scorer_model(const native_scorer *s) { return s->m; }
const tokenizer *native_scorer_tok(const native_scorer *s) { return s->tok; }

/* Scores token `next` against a row of logits: its log-prob and the top
 * NATIVE_SCORE_TOPK tokens (one pass, insertion into a short list). */
static void score_row(const native_scorer *s, const float *row, int32_t next,
                      native_score_pos *p)
{
    int V = s->m->hp.n_vocab, k = 0;
    double lse = sample_logsumexp(row, V);
    p->logprob = (double)row[next] - lse;
    for (int i = 0; i < V; i++) {
        if (k == NATIVE_SCORE_TOPK && row[i] <= row[p->top_id[k - 1]])
            continue;
        int j = k < NATIVE_SCORE_TOPK ? k++ : k - 1;
        while (j > 0 && row[i] > row[p->top_id[j - 1]]) {
            p->top_id[j] = p->top_id[j - 1];
            j--;
        }
        p->top_id[j] = i;
    }
    for (int j = 0; j < k; j++)
        p->top_lp[j] = (double)row[p->top_id[j]] - lse;
    for (int j = k; j < NATIVE_SCORE_TOPK; j++) {
        p->top_id[j] = -1;
        p->top_lp[j] = 0;
    }
}

/* Where to start running toks: after the reusable prefix, minus one when
 * the logits predicting the first new token are gone. */
static int start_pos(const native_scorer *s, const int32_t *toks, int n,
                     int want_info)
{
    int start = model_common_prefix(s->m, toks, n);
    if (want_info && start > s->valid_upto)
        start = s->valid_upto;
    if (start > 0 && !(start == s->m->n_past && s->last_ok))
        start--;
    return start;
}

int native_scorer_prompt(native_scorer *s, const int32_t *toks, int n,
                         native_score_pos *info, em_err *err)
{
    model *m = s->m;
    int V = m->hp.n_vocab;
    if (n <= 0 || n > m->n_ctx)
        return em_errorf(err, "prompt of %d tokens (the context holds %d)",
                         n, m->n_ctx);
    int start = start_pos(s, toks, n, info != NULL);
    int reuse_last = start > 0 && start == m->n_past && s->last_ok;
    model_truncate(m, start);
    if (s->valid_upto > start)
        s->valid_upto = start > 1 ? start : 1;
    s->last_ok = 0;
    if (reuse_last && start < n)
        score_row(s, s->last, toks[start], &s->pos[start]);
    for (int a = start; a < n; a += CHUNK) {
        int b = a + CHUNK < n ? a + CHUNK : n;
        /* Without info only the very last row is needed. */
        int r0 = info ? 0 : b == n ? b - a - 1 : b - a;
        if (model_forward(m, toks + a, b - a, r0, b - a, s->rows, err))
            return -1; /* the cache keeps what ran: still consistent */
        for (int r = r0; r < b - a; r++) {
            const float *row = s->rows + (size_t)(r - r0) * (size_t)V;
            if (a + r + 1 < n)
                score_row(s, row, toks[a + r + 1], &s->pos[a + r + 1]);
            else
                memcpy(s->last, row, sizeof(float) * (size_t)V);
        }
    }
    s->last_ok = 1;
    if (info) {
        s->valid_upto = n;
        memcpy(info + 1, s->pos + 1, sizeof *info * (size_t)(n - 1));
    }
    return 0;
}

/* ------------------------------------------------------ prefix sharing */

int native_tokens_cmp(const int32_t *a, int na, const int32_t *b, int nb)
{
    int n = na < nb ? na : nb;
    for (int i = 0; i < n; i++)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return (na > nb) - (na < nb);
}

int native_branch_run(int n_tail)
{
    return n_tail > 1 ? n_tail - 1 : 0;
}

int native_branch_pack(const int *n_tail, int nb, int cap, int *total)
{
    int e = 0;
    *total = 0;
    while (e < nb && *total + native_branch_run(n_tail[e]) <= cap)
        *total += native_branch_run(n_tail[e++]);
    return e;
}

int native_branch_forward(model *m, const int32_t *const *tails,
                          const int *n_tail, int nb, int total, float *rows,
                          em_err *err)
{
    int32_t *toks = em_malloc(sizeof(int32_t) * (size_t)(total > 0 ? total : 1));
    int *branch = em_malloc(sizeof(int) * (size_t)(total > 0 ? total : 1));
    for (int k = 0, at = 0; k < nb; k++)
        for (int j = 0; j < native_branch_run(n_tail[k]); j++, at++) {
            toks[at] = tails[k][j];
            branch[at] = at - j;
        }
    int rc = model_forward_branches(m, toks, total, branch, rows, err);
    free(toks);
    free(branch);
    return rc;
}

/* One shared pass over tails [0, nb) (total tokens run) */
static int branch_pass(native_scorer *s, const int32_t *const *tails,
                       const int *n_tail, int nb, int total,
                       native_score_pos *const *info, em_err *err)
{
    size_t V = (size_t)s->m->hp.n_vocab;
    if (native_branch_forward(s->m, tails, n_tail, nb, total, s->rows, err))
        return -1;
    for (int k = 0, at = 0; k < nb; k++) {
        for (int j = 1; j < n_tail[k]; j++)
            score_row(s, s->rows + (size_t)(at + j - 1) * V, tails[k][j],
                      &info[k][j]);
        at += native_branch_run(n_tail[k]);
    }
    return 0;
}

int native_scorer_branches(native_scorer *s, const int32_t *const *tails,
                           const int *n_tail, int nb,
                           native_score_pos *const *info, em_err *err)
{
    model *m = s->m;
    if (!s->last_ok)
        return em_errorf(err, "native_scorer_branches: no prompt in the cache");
    int cap = CHUNK < m->n_batch ? CHUNK : m->n_batch;
    if (cap > m->n_ctx - m->n_past)
        cap = m->n_ctx - m->n_past;
    for (int b = 0; b < nb; b++)
        if (n_tail[b] < 1 || n_tail[b] > NATIVE_SCORE_MAX_TAIL ||
            native_branch_run(n_tail[b]) > cap)
            return em_errorf(err, "native_scorer_branches: tail %d of %d "
                             "tokens does not fit a shared pass", b, n_tail[b]);
    for (int b = 0; b < nb; b++)
        score_row(s, s->last, tails[b][0], &info[b][0]);
    for (int b = 0; b < nb;) {
        int total, e = b + native_branch_pack(n_tail + b, nb - b, cap, &total);
        if (total > 0 && branch_pass(s, tails + b, n_tail + b, e - b, total,
                                     info + b, err))
            return -1;
        b = e;
    }
    return 0;
}

int32_t native_scorer_sample(native_scorer *s, double temperature,
                             double top_p, uint64_t *rng,
                             native_score_pos *info)
{
    int32_t t = sample_next(s->smp, s->last, temperature,
                            top_p > 0 ? top_p : 1.0, rng);
    if (info)
        score_row(s, s->last, t, info);
    return t;
}

int native_scorer_push(native_scorer *s, int32_t tok, em_err *err)
{
    model *m = s->m;
    if (s->valid_upto > m->n_past)
        s->valid_upto = m->n_past > 1 ? m->n_past : 1;
    s->last_ok = 0;
    if (model_forward(m, &tok, 1, 0, 1, s->last, err))
        return -1;
    s->last_ok = 1;
    return 0;
}

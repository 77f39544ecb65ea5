/*
 * cuda_plan.h - packing scoring requests into GPU batches (plain C, no
 * CUDA: compiled in every build so the host tests check it).
 *
 * Owns: the layout of a packed batch. Each batch is a list of token rows;
 * every row has a RoPE position and a cuda_range naming the flat KV rows
 * it attends to. A context is laid out once, followed by the
 * continuations that share it (the choices of a multiple-choice
 * question): a continuation token attends to the context's rows and to
 * its own rows up to itself. A context that begins like the batch's
 * anchor context (the first one that shared nothing: few-shot examples
 * common to every question) lays out only the tokens after the common
 * prefix and attends to the anchor's rows for the rest. All of it runs in
 * one forward pass, because at every layer the K/V of all rows are stored
 * before any row attends. The last token of a continuation is never run:
 * its logits predict nothing that is scored.
 *
 * Scored rows say which logits row predicts which token for which
 * request: the context's last row predicts the first continuation token,
 * continuation row j predicts token j+1.
 */
#ifndef EMERGE_CUDA_PLAN_H
#define EMERGE_CUDA_PLAN_H

#include <stdint.h>

#include "backends/engine/cuda/cuda_math.h"

/* One scoring request in token ids (the caller owns the arrays). */
typedef struct cuda_seq {
    const int32_t *ctx;
    int nctx;          /* >= 1 */
    const int32_t *cont;
    int ncont;         /* >= 0 */
    int idx;           /* the caller's request index */
} cuda_seq;

typedef struct cuda_score_row {
    int32_t row;       /* batch row whose logits are used */
    int32_t target;    /* token whose log-prob is wanted */
    int32_t req;       /* cuda_seq.idx it belongs to */
} cuda_score_row;

typedef struct cuda_batch {
    int n_tok, cap_tok;
    int32_t *tok, *pos;
    cuda_range *rng;
    int n_score, cap_score;
    cuda_score_row *score;
} cuda_batch;

/* Rows one request costs when it starts a new context (sharing nothing)
 * / shares the previous request's whole context. */
int cuda_plan_cost(const cuda_seq *s, int shares_ctx);

/* Empties b (keeps its arrays) and packs seqs[first], seqs[first+1], ...
 * into at most max_tok rows, in order; when share is 1, consecutive
 * requests with equal contexts share one copy and contexts share their
 * common prefix with the anchor. Returns the number of
 * requests packed (>= 1 when first < n, provided max_tok is at least
 * one request's cost; 0 when seqs[first] alone does not fit). */
int cuda_plan_next(const cuda_seq *const *seqs, int n, int first, int max_tok,
                   int share, cuda_batch *b);

/* Appends T rows of one sequence continuing at position p0, attending
 * to flat rows [0, p0 + t] (generation: the sequence's cache starts at
 * flat row 0). */
void cuda_plan_sequence(cuda_batch *b, const int32_t *tok, int T, int p0);

void cuda_batch_reset(cuda_batch *b);
void cuda_batch_free(cuda_batch *b);

/* 1 when a and b have the same context tokens. */
int cuda_seq_same_ctx(const cuda_seq *a, const cuda_seq *b);

#endif

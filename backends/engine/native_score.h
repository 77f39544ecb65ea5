/*
 * native_score.h - per-token prompt scores and step-wise generation on one
 * GGUF model (the native backend's token-level completion, which
 * `emerge serve` answers with).
 *
 * Owns: the scoring state beside a model's cache (native_scorer: borrows
 * the model and tokenizer, owns a sampler) that answers what an OpenAI
 * completions server must: the log-prob of every prompt
 * token given the ones before it with the most likely tokens at that
 * position (echo + logprobs), and the next-token logits for generation.
 * It only uses model.h's public API; the cached prefix of one prompt is
 * reused by the next (per-position scores are kept with the cache), which
 * is what makes the choices of a multiple-choice question cheap.
 *
 * Not thread-safe: one caller at a time (the server's model worker).
 */
#ifndef EMERGE_NATIVE_SCORE_H
#define EMERGE_NATIVE_SCORE_H

#include <stdint.h>

#include "backends/engine/model.h"
#include "backends/engine/tokenizer.h"

#define NATIVE_SCORE_TOPK 5

/* What the model said at one position about the token there. */
typedef struct native_score_pos {
    double logprob;                       /* log P(token | before) */
    int32_t top_id[NATIVE_SCORE_TOPK];    /* most likely first; ties: low id */
    double top_lp[NATIVE_SCORE_TOPK];
} native_score_pos;

typedef struct native_scorer native_scorer;

/* m and tok are borrowed: they must outlive the scorer. */
native_scorer *native_scorer_build(model *m, const tokenizer *tok);
void native_scorer_free(native_scorer *s);

/* Someone else has run or truncated the model: the scores and logits
 * kept beside its cache no longer belong to it. */
void native_scorer_forget(native_scorer *s);

const model *native_scorer_model(const native_scorer *s);
const tokenizer *native_scorer_tok(const native_scorer *s);

/* Runs toks[0..n) (n <= n_ctx), reusing the cached prefix, and leaves the
 * logits after the last token for native_scorer_sample(). When info is
 * not NULL, info[i] is filled for 1 <= i < n (info[0] is untouched: the
 * first token has nothing before it). */
int native_scorer_prompt(native_scorer *s, const int32_t *toks, int n,
                         native_score_pos *info, em_err *err);

/* Scores nb continuations of the prompt last run by native_scorer_prompt
 * in shared forward passes (model_forward_branches: the weights are read
 * once for all of them): info[b][k] for tails[b][k], given the prompt and
 * tails[b][0..k). The cache is left holding the prompt. Fails when a tail
 * is longer than NATIVE_SCORE_MAX_TAIL tokens or the context is too full;
 * the caller then scores those prompts one by one. */
#define NATIVE_SCORE_MAX_TAIL 32
int native_scorer_branches(native_scorer *s, const int32_t *const *tails,
                           const int *n_tail, int nb,
                           native_score_pos *const *info, em_err *err);

/* ---- prefix sharing: the one implementation, used by the native
 * backend's loglikelihood (native.c) and by token-level completion
 * (native_complete.c, for `emerge serve`) ----
 *
 * Requests are sorted by their tokens (native_tokens_cmp) so that those
 * sharing a beginning follow each other and reuse the KV cache; the
 * continuations ("tails") of one cached prefix are packed greedily into
 * passes of at most cap tokens (native_branch_pack) and each pass runs
 * them as branches of the cache (native_branch_forward: every tail sees
 * the prefix and its own earlier tokens, the weights are read once). The
 * last token of a tail is never run: its logits predict nothing scored. */

/* Order of two token sequences: lexicographic, a prefix first. */
int native_tokens_cmp(const int32_t *a, int na, const int32_t *b, int nb);

/* Tokens a tail of n tokens runs in a branch pass: all but its last. */
int native_branch_run(int n_tail);

/* How many of the tails n_tail[0..nb) go into the next pass of at most
 * cap tokens (0 when the first alone is over cap); *total: their tokens. */
int native_branch_pack(const int *n_tail, int nb, int cap, int *total);

/* Runs tails[0..nb) (total tokens, from native_branch_pack) in one pass
 * as branches of the cache: rows (total x n_vocab) gets the logits after
 * tails[k][j] at row (tokens of tails before k) + j. */
int native_branch_forward(model *m, const int32_t *const *tails,
                          const int *n_tail, int nb, int total, float *rows,
                          em_err *err);

/* The next token from the current logits (see sample_next()), and what
 * the model said about it (info may be NULL). */
int32_t native_scorer_sample(native_scorer *s, double temperature,
                             double top_p, uint64_t *rng,
                             native_score_pos *info);

/* Appends tok to the cache and computes the logits after it. Fails when
 * the context is full. */
int native_scorer_push(native_scorer *s, int32_t tok, em_err *err);

#endif

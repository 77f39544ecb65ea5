/*
 * sample.h - choosing the next token from a row of logits.
 *
 * Owns: greedy choice (argmax, lowest id on ties), temperature sampling and
 * nucleus (top-p) sampling driven by a caller-held SplitMix64 state, so a
 * given seed always yields the same tokens; and the log-softmax helpers the
 * scorer uses. A sampler holds the scratch arrays one vocabulary needs.
 */
#ifndef EMERGE_SAMPLE_H
#define EMERGE_SAMPLE_H

#include <stdint.h>

typedef struct sampler sampler;

sampler *sample_build(int n_vocab);
void sample_free(sampler *s);

/* Index of the largest logit; the lowest index wins a tie. */
int32_t sample_argmax(const float *logits, int n);
/* log(sum(exp(logits))), computed stably. */
double sample_logsumexp(const float *logits, int n);
/* log_softmax(logits)[id]. */
double sample_logprob(const float *logits, int n, int32_t id);

/* The next token: argmax when temperature <= 0; otherwise a draw from
 * softmax(logits / temperature) restricted to the smallest set of most
 * probable tokens whose probability reaches top_p (top_p >= 1: all).
 * *rng advances; the same state and logits give the same token. */
int32_t sample_next(sampler *s, const float *logits, double temperature,
                    double top_p, uint64_t *rng);

#endif

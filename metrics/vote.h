/*
 * vote.h - self-consistency: majority vote over sampled answers, its
 * agreement, and the pass@k estimator.
 *
 * Owns: the vote (plurality of non-empty answers with a deterministic
 * tie-break), the unbiased pass@k estimator of Chen et al. 2021 and the
 * agreement calibration bins (agreement -> accuracy) that
 * harness/store.c reports next to the ECE of agreement.
 *
 * Why answers and not outputs: two chains of thought that reach "42" by
 * different routes agree; the caller extracts and normalises answers
 * with the task's own rules before voting.
 */
#ifndef EMERGE_VOTE_H
#define EMERGE_VOTE_H

typedef struct vote_result {
    int winner;       /* index of the first sample giving the winning
                       * answer, -1 when no sample gave any answer */
    int votes;        /* samples giving the winning answer */
    int n;            /* samples drawn (empty answers included) */
    double agreement; /* votes / n, 0 when n == 0 */
} vote_result;

/* Plurality vote over n answers in sample order. Empty answers ("" or
 * NULL: nothing was extracted) abstain. Ties between answers with the
 * same count go to the one whose samples' summed log-probability is
 * highest (logprobs may be NULL: all zero), and if those are equal too,
 * to the answer reached first in sample order. */
void vote_majority(const char *const *answers, const double *logprobs, int n,
                   vote_result *out);

/* Unbiased pass@k from n samples of which c are correct:
 * 1 - C(n-c, k) / C(n, k), computed as a product (no overflow). k must be
 * 1..n; returns NAN otherwise. */
double vote_pass_at_k(int n, int c, int k);

/* Equal-width calibration bins of agreement (or any confidence in
 * [0,1]): for bin b, count[b] examples with confidence in
 * [b/n_bins, (b+1)/n_bins) (the last bin includes 1) and acc[b] the mean
 * correctness among them (NAN for an empty bin). */
void vote_calibration(const double *conf, const double *correct, int n,
                      int n_bins, int *count, double *acc);

#endif

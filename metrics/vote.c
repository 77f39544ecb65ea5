/*
 * vote.c - majority vote, pass@k and agreement calibration (see vote.h).
 *
 * The vote is quadratic in the number of samples; self-consistency draws
 * tens of samples per example, so a hash table would only add code.
 */
#include "metrics/vote.h"

#include <math.h>
#include <string.h>

static int empty(const char *s) { return !s || !*s; }

void vote_majority(const char *const *answers, const double *logprobs, int n,
                   vote_result *out)
{
    out->winner = -1;
    out->votes = 0;
    out->n = n > 0 ? n : 0;
    out->agreement = 0;
    double best_lp = 0;
    for (int i = 0; i < n; i++) {
        if (empty(answers[i]))
            continue;
        /* Count each distinct answer once, at its first sample. */
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = !empty(answers[j]) && !strcmp(answers[j], answers[i]);
        if (seen)
            continue;
        int votes = 0;
        double lp = 0;
        for (int j = i; j < n; j++)
            if (!empty(answers[j]) && !strcmp(answers[j], answers[i])) {
                votes++;
                lp += logprobs ? logprobs[j] : 0;
            }
        /* Strictly better only: an equal one reached later loses. */
        if (votes > out->votes || (votes == out->votes && lp > best_lp)) {
            out->winner = i;
            out->votes = votes;
            best_lp = lp;
        }
    }
    if (n > 0)
        out->agreement = (double)out->votes / n;
}

double vote_pass_at_k(int n, int c, int k)
{
    if (n <= 0 || k < 1 || k > n || c < 0 || c > n)
        return NAN;
    if (n - c < k)
        return 1.0;
    /* C(n-c, k) / C(n, k) = prod_{i = n-c+1}^{n} (1 - k / i). */
    double miss = 1.0;
    for (int i = n - c + 1; i <= n; i++)
        miss *= 1.0 - (double)k / i;
    return 1.0 - miss;
}

void vote_calibration(const double *conf, const double *correct, int n,
                      int n_bins, int *count, double *acc)
{
    for (int b = 0; b < n_bins; b++) {
        count[b] = 0;
        acc[b] = 0;
    }
    for (int i = 0; i < n; i++) {
        int b = (int)(conf[i] * n_bins);
        b = b < 0 ? 0 : b >= n_bins ? n_bins - 1 : b;
        count[b]++;
        acc[b] += correct[i];
    }
    for (int b = 0; b < n_bins; b++)
        acc[b] = count[b] ? acc[b] / count[b] : NAN;
}

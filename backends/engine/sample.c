/*
 * sample.c - greedy, temperature and top-p token choice (see sample.h).
 *
 * Sums run in double so that the cumulative probability walk, and hence
 * the token a seed picks, does not depend on summation order subtleties.
 * Candidates are ordered by probability with the token id as tie-break,
 * which makes the ordering (and so the draw) fully deterministic.
 */
#include "backends/engine/sample.h"

#include <math.h>
#include <stdlib.h>

#include "base/common.h"

typedef struct sample_cand {
    double p;
    int32_t id;
} sample_cand;

struct sampler {
    int n_vocab;
    sample_cand *cand;
};

sampler *sample_build(int n_vocab)
{
    sampler *s = em_calloc(1, sizeof *s);
    s->n_vocab = n_vocab;
    s->cand = em_malloc(sizeof *s->cand * (size_t)(n_vocab > 0 ? n_vocab : 1));
    return s;
}

void sample_free(sampler *s)
{
    if (!s)
        return;
    free(s->cand);
    free(s);
}

int32_t sample_argmax(const float *logits, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

double sample_logsumexp(const float *logits, int n)
{
    /* Every term is <= 1 after subtracting the maximum, so expf is exact
     * to an ulp and the double sum loses nothing that matters; this runs
     * once per scored token over the whole vocabulary. */
    float mx = logits[sample_argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += expf(logits[i] - mx);
    return mx + log(sum);
}

double sample_logprob(const float *logits, int n, int32_t id)
{
    return (double)logits[id] - sample_logsumexp(logits, n);
}

static int cand_cmp(const void *a, const void *b)
{
    const sample_cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* cand[i] = (exp((logits[i] - mx) / T), i) for the whole vocabulary;
 * returns the sum of the weights. */
static double fill_cand(sample_cand *cand, const float *logits, int n,
                        double mx, double T)
{
    double sum = 0;
    for (int i = 0; i < n; i++) {
        cand[i].p = exp(((double)logits[i] - mx) / T);
        cand[i].id = i;
        sum += cand[i].p;
    }
    return sum;
}

/* The lower edge 2^-b of the first power-of-two bucket b (probabilities
 * relative to the largest, so in (0, 1]) at which the mass of buckets
 * 0..b reaches target; 0 when it never does. */
static double nucleus_cut(const sample_cand *cand, int n, double target)
{
    double mass[64] = {0};
    for (int i = 0; i < n; i++) {
        int e;
        frexp(cand[i].p, &e); /* p = m * 2^e, m in [0.5, 1): p >= 2^(e-1) */
        int b = 1 - e;
        mass[b < 0 ? 0 : b > 63 ? 63 : b] += cand[i].p;
    }
    double cum = 0;
    for (int b = 0; b < 63; b++) {
        cum += mass[b];
        if (cum >= target)
            return ldexp(1.0, -b);
    }
    return 0;
}

/* Sorts cand[0..n) by probability and returns the length of the shortest
 * head whose mass reaches target (its mass in *mass), or -1 when all n
 * together stay below it. */
static int nucleus(sample_cand *cand, int n, double target, double *mass)
{
    qsort(cand, (size_t)n, sizeof *cand, cand_cmp);
    double cum = 0;
    for (int k = 0; k < n; k++) {
        cum += cand[k].p;
        if (cum >= target) {
            *mass = cum;
            return k + 1;
        }
    }
    *mass = cum;
    return -1;
}

int32_t sample_next(sampler *s, const float *logits, double temperature,
                    double top_p, uint64_t *rng)
{
    int n = s->n_vocab;
    int32_t best = sample_argmax(logits, n);
    if (temperature <= 0)
        return best;
    double mx = logits[best];
    double sum = fill_cand(s->cand, logits, n, mx, temperature);
    int n_keep = n;
    if (top_p < 1.0) {
        /* Nucleus: sort by probability and keep the smallest head whose
         * mass reaches top_p (always at least the most probable token).
         * Sorting the whole vocabulary per token cost more than a small
         * model's forward pass (4.2 ms at 32K), so sort only the tokens
         * that can be in it: bucket the probabilities (relative to the
         * largest, 1) by power of two, find the bucket where the mass
         * from the top reaches top_p, and keep every token at or above
         * that bucket's lower edge. They hold the nucleus and precede all
         * other tokens in the full order: same order, same sums, same
         * draw. When rounding leaves their mass a hair short, sort all. */
        double target = (top_p > 0 ? top_p : 0) * sum;
        double cut = nucleus_cut(s->cand, n, target);
        int n_cand = 0;
        for (int i = 0; i < n; i++)
            if (s->cand[i].p >= cut)
                s->cand[n_cand++] = s->cand[i];
        n_keep = nucleus(s->cand, n_cand, target, &sum);
        if (n_keep < 0) {
            /* rounding left the kept mass a hair below target: sort all */
            fill_cand(s->cand, logits, n, mx, temperature);
            n_keep = nucleus(s->cand, n, target, &sum);
            if (n_keep < 0)
                n_keep = n;
        }
    }
    double r = em_rand01(rng) * sum, acc = 0;
    for (int i = 0; i < n_keep; i++) {
        acc += s->cand[i].p;
        if (r < acc)
            return s->cand[i].id;
    }
    return s->cand[n_keep - 1].id; /* rounding left r at the very top */
}

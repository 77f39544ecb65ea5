/*
 * compare.h - the cross-family matching scale (`emerge scaling --compare`).
 *
 * Owns: for two score-vs-size curves of one task and metric, A and B (two
 * model families, or two prompt variants of one family such as retrieval
 * vs. standard), the parameter count at which A reaches B's score at each
 * of B's sizes, and the parameter-efficiency ratio B params / A params
 * ("B needs 49x the parameters of A for the same score").
 *
 * Matching: A's curve is the piecewise-linear interpolation of the score
 * (the scaling_y of metrics/scaling.h: normalised, higher is better)
 * against log10(params), through A's models in size order. The match of
 * a score y is the first crossing: the smallest size at which the curve
 * reaches y. A score that A's smallest model already reaches is censored
 * below (the match is at most A's smallest size), one that A never
 * reaches is censored above; neither gives a ratio.
 *
 * Uncertainty: a parametric bootstrap from the per-model CIs. Each
 * replicate draws every model's score from a split normal with the score
 * as mode and (score - lo)/1.96, (hi - score)/1.96 as the two standard
 * deviations, and re-matches; the 2.5% and 97.5% quantiles of the matched
 * log10 size (censored replicates count as -inf / +inf) give the CI. The
 * summary ratio is the geometric mean over B's sizes matched inside A's
 * range, with its CI from the same replicates.
 */
#ifndef EMERGE_COMPARE_H
#define EMERGE_COMPARE_H

#include <stdio.h>

#include "base/common.h"
#include "metrics/scaling.h"

/* A curve: one series (task, variant, metric) restricted to one family. */
typedef struct compare_group {
    scaling_series s;   /* owned */
    char *family;       /* NULL when the source has no families */
} compare_group;

void compare_groups_free(compare_group *g, int n);

/* Splits every series into the points of family a and of family b: a
 * model belongs to the family whose name is the longer prefix of the
 * model's name (the store keeps no family name, so members are named
 * "FAMILY-..."). Series without points of either family are dropped. */
void compare_split_families(const scaling_series *s, int n, const char *a,
                            const char *b, compare_group **out, int *n_out);
/* Every series as a group without a family (for --compare-variants). */
void compare_from_series(const scaling_series *s, int n, compare_group **out,
                         int *n_out);

/* Reads the CSV of `emerge scaling --scores` with an optional `family`
 * column: one group per (task, variant, metric, family). Columns: task,
 * model, params, score required; lo, hi, variant, metric, family, low,
 * high used; flops, tokens, n, baseline, baseline_hi accepted. */
int compare_read_csv(const char *path, compare_group **out, int *n,
                     em_err *err);

/* First crossing of y = target on the curve (x ascending, x = log10
 * params): the x where it is reached; *censor is 0, or -1 when y[0]
 * already reaches target (returns x[0]), or +1 when no point does
 * (returns x[n-1]). */
double compare_cross(const double *x, const double *y, int n, double target,
                     int *censor);

typedef struct compare_match {
    char *model;          /* B's model */
    double b_params, b_score;   /* raw score */
    double a_params;      /* where A reaches it (see censor) */
    int censor;           /* 0, -1 (<= A's smallest), +1 (> A's largest) */
    double a_lo, a_hi;    /* 95% CI of a_params; 0 / INFINITY when censored */
    double ratio, ratio_lo, ratio_hi; /* b_params / a_params; NAN if censored */
} compare_match;

typedef struct compare_result {
    char *task, *variant, *metric; /* variant: B's */
    char *a_label, *b_label;       /* family or variant names */
    compare_match *m;     /* one per B model, by size */
    int n;
    int n_matched;        /* uncensored matches */
    double ratio, ratio_lo, ratio_hi; /* geometric mean; NAN when none */
} compare_result;

/* Matches B's points on A's curve; replicates 0 skips the bootstrap. */
void compare_curves(const scaling_series *a, const scaling_series *b,
                    int replicates, uint64_t seed, compare_result *out);
/* Frees one result's contents (compare_curves fills a caller's struct). */
void compare_result_clear(compare_result *r);
/* Frees an array of results (compare_families / compare_variants). */
void compare_result_free(compare_result *r, int n);

/* --compare A B: pairs the groups of family a and b of each (task,
 * variant, metric). --compare-variants A,B: pairs variant a and b of each
 * (task, metric, family). Results in the groups' order. */
int compare_families(const compare_group *g, int n, const char *a,
                     const char *b, int replicates, uint64_t seed,
                     compare_result **out, int *n_out);
int compare_variants(const compare_group *g, int n, const char *a,
                     const char *b, int replicates, uint64_t seed,
                     compare_result **out, int *n_out);

/* fmt: SCALING_TABLE or SCALING_CSV (others print as a table). */
int compare_print(FILE *f, const compare_result *r, int n, scaling_format fmt,
                  em_err *err);

#endif

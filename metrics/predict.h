/*
 * predict.h - back-testing: can a task's exact-match curve be predicted
 * from the smaller models? (BIG-bench's stated goal; `emerge scaling
 * --predict [--hold K]`.)
 *
 * Owns: the two predictors and their back-test. The models of a (task,
 * variant) with exact_match and target_logprob scores, in axis order, are
 * split into the smallest n-K (fitted) and the largest K (held back):
 *   direct   the sharp metric itself: y = c / (1 + exp(-k (x - x0))),
 *            x = log10 of the axis, fitted to the fitted models' exact
 *            match by least squares (a deterministic grid over k and x0,
 *            c in closed form, 0 < c <= 1);
 *   smooth   each example's target log-prob, fitted as the mirage test
 *            fits it (mirage_smooth_fit: a line or a power law of the
 *            loss in x), extrapolated to the held-back scales, and mapped
 *            to the grade by the mirage relation: the predicted exact
 *            match is the mean over examples of exp(log-prob).
 * For each held-back model: the observed exact match and both
 * predictions, each with a bootstrap 95% CI over examples (the examples
 * resampled, everything refitted); per row the mean absolute error of
 * each predictor over the held-back models, with its CI, and the
 * emergence scale the series has with the held-back models observed and
 * with them as each predictor puts them (score and CI).
 */
#ifndef EMERGE_PREDICT_H
#define EMERGE_PREDICT_H

#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "metrics/store_query.h"

typedef struct predict_point {
    char *model;
    double x;                                 /* log10 of the axis */
    double observed, direct, smooth;
    double obs_lo, obs_hi, direct_lo, direct_hi, smooth_lo, smooth_hi;
} predict_point;

typedef struct predict_row {
    char *task, *variant;
    const char *why;           /* not NULL: not predicted, and why */
    int n_fit, n_examples;
    predict_point *held;       /* n_held */
    int n_held;
    double err_direct, err_direct_lo, err_direct_hi;
    double err_smooth, err_smooth_lo, err_smooth_hi;
    /* emergence scale (scaling.h: the smallest scale from which every
     * model's lower CI is above the random baseline; 0: none) with the
     * held-back models as observed, and as each predictor puts them */
    double emergence_observed, emergence_direct, emergence_smooth;
} predict_row;

/* Numbers in: n models in axis order (x), n_ex examples, em and lp
 * [m * n_ex + e] (every value present), hold the number held back,
 * replicates bootstrap resamples. Fills r (held, errors; r->task and
 * r->variant untouched). */
void predict_run(const double *x, const double *em, const double *lp,
                 int n, int n_ex, int hold, int replicates, uint64_t seed,
                 predict_row *r);

/* c / (1 + exp(-k (x - x0))) fitted to (x, y): returns the fitted value at
 * each xe. */
void predict_logistic(const double *x, const double *y, int n,
                      const double *xe, int ne, double *out);

/* axis: SCALING_AXIS_*. One row per (task, variant) with exact_match. */
int predict_from_store(store_query *q, int axis, int hold, int replicates,
                       uint64_t seed, predict_row **rows, int *n,
                       em_err *err);
void predict_rows_free(predict_row *rows, int n);
void predict_print(FILE *f, const predict_row *rows, int n, int csv);

#endif

/*
 * results.h - statistics over the stored scores, read through the
 * read-only query layer: result rows (mean, bootstrap CI, normalised
 * score, ECE), scaling series, and the per-example dump.
 */
#ifndef EMERGE_RESULTS_H
#define EMERGE_RESULTS_H

#include <stdio.h>

#include "base/common.h"
#include "metrics/scaling.h"
#include "metrics/store_query.h"

/* One row of `emerge results`. */
typedef struct result_row {
    char *task, *variant, *model, *metric;
    double params, tokens, step;
    double params_nonembed;    /* 0 when unknown */
    double mean, lo, hi;       /* lo/hi NAN when there is no CI (ece) */
    int n;
    double normalized;         /* NAN unless metric is the preferred one */
    int preferred;
    double random_baseline, low_score, high_score;  /* from the task */
    int n_truncated;           /* examples with a truncated prompt */
    int n_cut;                 /* examples with a generation cut short */
} result_row;

/* Every (task, variant, model, metric) aggregate, sorted by task, variant,
 * model size and metric; bootstrap: 1000 resamples, 95%, seeded by the
 * names. Multiple-choice groups get an extra "ece" row (10 bins);
 * self-consistency groups (sc_agreement and sc_correct scores) an
 * "sc_ece" row and one "sc_calib_LO-HI" row per non-empty agreement bin
 * (mean = accuracy in the bin, n = examples). Derived rows have no CI. */
int results_load(store_query *q, result_row **rows, int *n, em_err *err);
void results_free(result_row *rows, int n);

/* Writes every stored score, one CSV line per (model, task, variant,
 * example, metric), values with 17 significant digits: for comparing
 * runs byte for byte. */
int results_dump_scores(store_query *q, FILE *f, em_err *err);

/* One series per task x variant x metric, the models sorted by params (or
 * by training flops 6*N*D on the flops axis; models without a token count
 * are left out then; on the nonembed axis a point's params are the
 * non-embedding count, models without one left out; on a parameter axis,
 * of several checkpoints of one size only the most-trained is kept),
 * score = mean, lo/hi = bootstrap CI, random baseline and normalisation
 * from the task for its preferred metric. Free with scaling_series_free. */
int results_series(store_query *q, int axis, scaling_series **out,
                   int *n, em_err *err);

/* The models with scores that have no count on this axis (params, or
 * params and tokens for flops, or the non-embedding count), names joined
 * by ", " into a malloc'd *names (NULL when every model has one). */
int results_axis_unknown(store_query *q, int axis, char **names, int *n,
                         em_err *err);

#endif

/*
 * scaling.h - metrics of a score across a model family sorted by size.
 *
 * Owns: BIG-bench linearity and breakthroughness, emergence scale,
 * inverse-scaling and U-shape flags, exactly as written in
 * ../shared/refs/scaling-metrics.md (copied into metrics/README.md), and
 * the printing of scaling tables (table, csv, json, md).
 */
#ifndef EMERGE_SCALING_H
#define EMERGE_SCALING_H

#include <stdio.h>
#include "base/common.h"

typedef struct scaling_point {
    char *model;
    double params;   /* parameters */
    double flops;    /* training compute 6*N*D, 0 if unknown */
    double score;    /* raw preferred score (mean) */
    double lo, hi;   /* bootstrap 95% CI of the raw score */
    int n;           /* examples */
    double step;     /* training step of a checkpoint; <= 0: not given */
    int n_truncated; /* examples scored on prompts cut to fit the context */
} scaling_point;

typedef struct scaling_series {
    char *task;
    char *variant;
    char *metric;
    double random_baseline; /* raw units; NAN if none */
    double random_hi;       /* upper CI of the baseline; NAN if none */
    double low_score, high_score; /* normalisation; low == high: none */
    scaling_point *pts;     /* sorted by the axis */
    int n;
} scaling_series;

typedef struct scaling_result {
    double linearity;
    double breakthroughness;
    int b_inf;               /* breakthroughness is +-inf (0 denominator) */
    double emergence_scale;  /* params (or flops); 0 when none */
    int inverse;             /* inverse-scaling flag */
    int u_shape;
    double slope;            /* least squares of y on log10(x) */
} scaling_result;

/* The y that the analysis uses for a raw score of series s:
 * metric_normalize(raw, low_score, high_score); when the series has no
 * normalisation (low == high) and its metric is lower-is-better
 * (metric_higher_is_better() == 0: brier_score, edit_distance), -raw, so
 * that a rising y always means a better model. */
double scaling_y(const scaling_series *s, double raw);

/* y: normalised scores of n models sorted by scale. */
double scaling_range(const double *y, int n); /* I(y) */
double scaling_linearity(const double *y, int n);
double scaling_breakthroughness(const double *y, int n, int *is_inf);
/* Least-squares slope of y on x (x = log10 of the scale); 0 when the x
 * are all equal or n < 2. */
double scaling_slope(const double *x, const double *y, int n);
/* Index k of the emergence scale: the smallest k with lo[i] > threshold
 * for every i >= k; -1 when none. */
int scaling_emergence_index(const double *lo, int n, double threshold);
/* Inverse scaling: y[n-1] below y[0] with the CIs [lo, hi] apart
 * (hi[n-1] < lo[0]) and slope < 0. */
int scaling_is_inverse(const double *y, const double *lo, const double *hi,
                       int n, double slope);
/* U-shape: the (first) minimum is interior and both ends' CIs lie above
 * its CI (lo[0] > hi[m] and lo[n-1] > hi[m]). */
int scaling_is_u_shape(const double *y, const double *lo, const double *hi,
                       int n);
/* Indices of s->pts sorted by params (or flops), stable; malloc'd. The
 * analysis and printing go through it rather than trust the order. */
int *scaling_axis_order(const scaling_series *s, int axis_flops);
void scaling_analyze(const scaling_series *s, int axis_flops,
                     scaling_result *out);

typedef enum scaling_format {
    SCALING_TABLE, SCALING_CSV, SCALING_JSON, SCALING_MD
} scaling_format;

/* The x axes (--axis): parameters, training flops 6*N*D, or
 * non-embedding parameters (Kaplan et al.'s N; the store's
 * models.params_nonembed, which results_series puts in the points'
 * params on that axis). */
enum { SCALING_AXIS_PARAMS = 0, SCALING_AXIS_FLOPS = 1,
       SCALING_AXIS_NONEMBED = 2 };
#define SCALING_AXIS_NAMES "params, flops or nonembed"

/* SCALING_AXIS_* of an --axis value, or -1. */
int scaling_axis_parse(const char *name);
/* "params", "flops" or "nonembed": the column and JSON name. */
const char *scaling_axis_name(int axis);

/* axis: SCALING_AXIS_* (names the x column). */
int scaling_print(FILE *f, const scaling_series *s, int n, int axis,
                  scaling_format fmt, em_err *err);
/* Reads task,model,params,score[,lo,hi] CSV into series (one per task,
 * variant and metric; see metrics/README.md for the optional columns). */
int scaling_read_csv(const char *path, scaling_series **out, int *n,
                     em_err *err);
/* The same with an optional `family` column: one series per (task,
 * variant, metric, family); (*families)[i] is series i's family (malloc'd),
 * or NULL when the file has no such column. Free each and the array. */
int scaling_read_csv_families(const char *path, scaling_series **out,
                              char ***families, int *n, em_err *err);
/* Several files, each a CSV as above or an lm-evaluation-harness results
 * JSON (a leading '{'; metrics/lmeval.h, whose options o may be NULL),
 * merged: series of the same (task, variant, metric) share their points. */
struct lmeval_opts;
int scaling_read_scores(const char *const *paths, int n_paths,
                        const struct lmeval_opts *o, scaling_series **out,
                        int *n, em_err *err);
void scaling_series_free(scaling_series *s, int n);

#endif

/*
 * check.h - `emerge check`: regressions of a new results database against
 * a baseline, by a paired bootstrap over the examples both scored.
 *
 * Owns: matching (task, variant, model) cells of two stores, the paired
 * bootstrap of the per-example differences of the preferred metric, the
 * regression verdict, and its outputs: a table, JUnit XML (junit.c) and a
 * Markdown summary.
 *
 * Verdict: d_i = new_i - base_i over the example ids both databases
 * scored; the CI is the percentile bootstrap of mean(d) at `level`. For a
 * higher-is-better metric a cell regresses when the CI's upper end is
 * below 0 AND the drop -mean(d) exceeds `tolerance` (absolute, in the
 * metric's units); for a lower-is-better metric (brier_score, ...) the
 * same with the signs flipped. Anything else passes, including cells with
 * too few shared examples to tell.
 */
#ifndef EMERGE_REPORT_CHECK_H
#define EMERGE_REPORT_CHECK_H

#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "metrics/store_query.h"

typedef struct report_check_opts {
    double tolerance;      /* default 0 */
    double level;          /* default 0.95 */
    int n_boot;            /* default 2000 */
} report_check_opts;

typedef struct report_check_row {
    char *task, *variant, *model, *metric;
    double params;
    int n;                 /* shared examples */
    double base, cur;      /* means over the shared examples */
    double diff, lo, hi;   /* mean(new - base) and its bootstrap CI */
    int higher_better;
    int regression;
} report_check_row;

typedef struct report_check {
    report_check_row *rows;  /* sorted by task, variant, params, model */
    int n;
    int n_regressions;
    int only_base, only_new; /* cells present in one database only */
    char *base_path, *new_path;
} report_check;

void report_check_defaults(report_check_opts *o);
/* Fails when no (task, variant, model) cell is in both databases. */
int report_check_run(store_query *base, store_query *cur,
                     const report_check_opts *o, report_check *out,
                     em_err *err);
void report_check_free(report_check *c);

void report_check_print(FILE *f, const report_check *c,
                        const report_check_opts *o);
int report_check_markdown(const char *path, const report_check *c,
                          const report_check_opts *o, em_err *err);
/* junit.c: one testcase per task x variant x model, failures with the
 * numbers. */
int report_junit_write(const char *path, const report_check *c,
                       const report_check_opts *o, em_err *err);

#endif

/*
 * lmeval.h - lm-evaluation-harness results files as scaling series, so
 * that published or earlier lm-eval numbers go through `emerge scaling`.
 *
 * Owns: reading one results_*.json (lm-eval 0.4: "results" {task:
 * {"METRIC,FILTER": x, "METRIC_stderr,FILTER": se, "alias": ...}},
 * "n-samples", "higher_is_better", "config" {"model_args",
 * "model_num_parameters", "model_revision"}, "model_name") and the
 * parameter counts the user gives for models whose file has none
 * (--params). metrics/README.md documents the mapping.
 */
#ifndef EMERGE_LMEVAL_H
#define EMERGE_LMEVAL_H

#include <stddef.h>

#include "base/common.h"
#include "metrics/scaling.h"

/* Parameter counts by model, as --params gives them. */
typedef struct lmeval_params {
    char **model;
    double *params;
    int n;
} lmeval_params;

/* Adds "MODEL=N[,MODEL=N...]" (N a number, with an optional K, M, B or
 * T suffix: 160M, 1.4B) or, when spec has no '=', the file it names:
 * lines "MODEL,N" (a "model,params" header is skipped; # comments). */
int lmeval_params_add(lmeval_params *p, const char *spec, em_err *err);
void lmeval_params_free(lmeval_params *p);

typedef struct lmeval_opts {
    const lmeval_params *params; /* may be NULL */
    const char *task, *metric;   /* NULL: all; others are skipped unread */
} lmeval_opts;

/* 1 when text is a JSON object (its first non-blank byte is '{'), which
 * is how --scores tells lm-eval results from CSV. */
int lmeval_is_json(const char *text, size_t len);

/* The series of one results file (one point each: the file's model).
 * Every error names the file and the key. */
int lmeval_read(const char *path, const char *text, size_t len,
                const lmeval_opts *o, scaling_series **out, int *n,
                em_err *err);

#endif

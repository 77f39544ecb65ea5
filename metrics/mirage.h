/*
 * mirage.h - the mirage test (Schaeffer et al. 2023): is a task's jump in
 * exact match a property of the models, or of the metric?
 *
 * Owns: the test on numbers (mirage_analyze) and on a store
 * (mirage_from_store). For a generate task scored with both exact_match
 * and target_logprob (the summed log-probability of the whole target),
 * the probability that a model produces the whole target is exp of that
 * log-prob. Exact match is a sharp function of it: a target of L tokens
 * whose per-token probability rises smoothly with scale is produced
 * with a probability that is flat, then jumps. The test asks whether a
 * SMOOTH account of each example's log-prob (a line or a power law in
 * log10 of the scale) already predicts the observed exact-match curve:
 *
 *   observed   EM_m       mean exact match of model m
 *   direct     P_m        mean over examples of exp(lp_{m,e})
 *   smooth     S_m        mean over examples of exp(f_e(x_m)), f_e the
 *                         smooth account of example e's log-probs: of the
 *                         least-squares line min(0, a + b x) and the power
 *                         law of the loss -exp(c + d x) (x = log10 scale),
 *                         whichever fits lp_{e} closer
 *
 * and reports breakthroughness (scaling.h) of each curve, the ratio of
 * the observed to the smooth one's, the correlation of the observed and
 * smooth curves on the log-odds scale, and R^2, the share of the observed
 * curve's variance the smooth curve accounts for (1 - sum (EM - S)^2 /
 * sum (EM - mean EM)^2, on the probability scale). The verdict rests on
 * R^2: breakthroughness is infinite whenever half the steps are flat
 * (several models at exactly 0), and log-odds blow up near 0 and 1, so
 * both are reported but neither decides.
 *   metric-induced      the smooth curve reproduces the jump: R^2 >= 0.9;
 *   not explained       otherwise: the log-probs themselves jump (or do
 *                       not predict the grade), so the metric alone does
 *                       not make the emergence;
 *   no jump             exact match moves by less than 0.1 over the
 *                       family: nothing to explain;
 *   not applicable      fewer than 3 models, no target_logprob scores, or
 *                       a chain-of-thought variant (its grade is of an
 *                       answer extracted from a generated rationale, not
 *                       of the target's probability).
 * Multiple choice: the grade (multiple_choice_grade) against the
 * probability of the correct choice normalised over the choices
 * (store_query_choice_cells), fitted and mapped the same way.
 * Probabilities are clamped to [1e-9, 1 - 1e-9] for the log-odds.
 */
#ifndef EMERGE_MIRAGE_H
#define EMERGE_MIRAGE_H

#include <stdio.h>

#include "base/common.h"
#include "metrics/store_query.h"

typedef enum mirage_verdict {
    MIRAGE_METRIC_INDUCED, MIRAGE_NOT_EXPLAINED, MIRAGE_NO_JUMP,
    MIRAGE_NOT_APPLICABLE,
} mirage_verdict;

typedef struct mirage_result {
    mirage_verdict verdict;
    const char *why;       /* for MIRAGE_NOT_APPLICABLE */
    int n_models, n_examples;
    double em_range;       /* max - min of the observed exact match */
    double b_observed, b_direct, b_smooth; /* breakthroughness */
    double ratio;          /* b_observed / b_smooth (INFINITY if 0) */
    double corr_logodds;   /* observed vs smooth, NAN when undefined */
    double corr_direct;    /* observed vs direct, NAN when undefined */
    double r2;             /* of the observed curve by the smooth one */
} mirage_result;

/* n models sorted by scale: x[m] = log10 of the scale, em[m] the mean
 * exact match, lp[m * n_ex + e] example e's summed target log-prob (NAN:
 * missing; an example is used only where every model has it). */
void mirage_analyze(const double *x, const double *em, const double *lp,
                    int n, int n_ex, mirage_result *r);
/* The same, also writing the direct and smooth curves (n each) where
 * direct and smooth are not NULL (for the figures). */
void mirage_analyze_curves(const double *x, const double *em,
                           const double *lp, int n, int n_ex,
                           mirage_result *r, double *direct, double *smooth);

const char *mirage_verdict_name(mirage_verdict v);

/* Whether a variant is chain of thought ("cot", "zero_shot_cot",
 * "cot+sc8", ...): its grade is of an answer extracted from a generated
 * rationale, so neither the mirage test nor back-testing applies. The
 * store keeps variants by name, so the name decides. */
int mirage_is_cot(const char *variant);

/* The smooth account of one example's log-probs y at the n scales x (the
 * line or the power law of the loss, as above), evaluated at the ne
 * scales xe: log-probs (<= 0) in out. predict.c extrapolates with it. */
void mirage_smooth_fit(const double *x, const double *y, int n,
                       const double *xe, int ne, double *out);

/* One row per (task, variant) with exact_match (or multiple_choice_grade)
 * scores in the store, with
 * its curves in axis order (n points; scale: the axis value). */
typedef struct mirage_row {
    char *task, *variant;
    mirage_result r;
    int n;
    double *scale, *em, *direct, *smooth;
} mirage_row;

/* axis: SCALING_AXIS_* (scaling.h). */
int mirage_from_store(store_query *q, int axis, mirage_row **rows, int *n,
                      em_err *err);
void mirage_rows_free(mirage_row *rows, int n);
/* A table (or CSV when csv) of the rows. */
void mirage_print(FILE *f, const mirage_row *rows, int n, int csv);

#endif

/*
 * mirage.c - the mirage test (mirage.h).
 */
#include "metrics/mirage.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/results.h"
#include "metrics/scaling.h"

#define P_CLAMP 1e-9
#define R2_MIN 0.9     /* share of the observed variance: "reproduces" */
#define JUMP_MIN 0.1   /* exact-match range below which there is no jump */

const char *mirage_verdict_name(mirage_verdict v)
{
    static const char *const names[] = {"metric-induced",
        "not explained by token log-probs", "no jump", "not applicable"};
    return names[v];
}

static double logodds(double p)
{
    p = p < P_CLAMP ? P_CLAMP : p > 1 - P_CLAMP ? 1 - P_CLAMP : p;
    return log(p / (1 - p));
}

/* Pearson correlation of logodds(a) and logodds(b); NAN when either is
 * constant. */
static double corr_logodds(const double *a, const double *b, int n)
{
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        ma += logodds(a[i]) / n;
        mb += logodds(b[i]) / n;
    }
    for (int i = 0; i < n; i++) {
        double da = logodds(a[i]) - ma, db = logodds(b[i]) - mb;
        sab += da * db;
        saa += da * da;
        sbb += db * db;
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : NAN;
}

/* 1 - SS_res / SS_tot of y predicted by p. */
static double r_squared(const double *y, const double *p, int n)
{
    double my = 0, res = 0, tot = 0;
    for (int i = 0; i < n; i++)
        my += y[i] / n;
    for (int i = 0; i < n; i++) {
        res += (y[i] - p[i]) * (y[i] - p[i]);
        tot += (y[i] - my) * (y[i] - my);
    }
    return tot > 0 ? 1 - res / tot : NAN;
}

static double breakthrough(const double *y, int n)
{
    int inf;
    double b = scaling_breakthroughness(y, n, &inf);
    return inf ? INFINITY : b;
}

/* Least squares of y on x: y = a + b x. */
static void line_fit(const double *x, const double *y, int n, double *a,
                     double *b)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i] / n;
        my += y[i] / n;
    }
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
    }
    *b = sxx > 0 ? sxy / sxx : 0;
    *a = my - *b * mx;
}

/* The smooth account of one example's log-probs y over x: of a straight
 * line (y = a + b x) and a power law of the loss (-y = exp(c + d x), the
 * form pre-training loss follows in scale), each fitted by least squares,
 * the one whose probabilities exp(.) are closer to exp(y) (the scale the
 * grade lives on: in log-prob space the flat floor of the smallest models
 * would decide), evaluated at xe into out. Both are smooth in x by
 * construction: a step in y is what neither can follow. */
void mirage_smooth_fit(const double *x, const double *y, int n,
                       const double *xe, int ne, double *out)
{
    double a, b, c, d, sse_line = 0, sse_pow = 0;
    double *ly = em_calloc((size_t)n + 1, sizeof *ly);
    for (int m = 0; m < n; m++)
        ly[m] = log(-y[m] > 1e-6 ? -y[m] : 1e-6);
    line_fit(x, y, n, &a, &b);
    line_fit(x, ly, n, &c, &d);
    for (int m = 0; m < n; m++) {
        double l = a + b * x[m], p = -exp(c + d * x[m]);
        double py = exp(y[m] < 0 ? y[m] : 0), pl = exp(l < 0 ? l : 0);
        sse_line += (py - pl) * (py - pl);
        sse_pow += (py - exp(p)) * (py - exp(p));
    }
    for (int m = 0; m < ne; m++) {
        double l = a + b * xe[m];
        out[m] = sse_pow < sse_line ? -exp(c + d * xe[m]) : l < 0 ? l : 0;
    }
    free(ly);
}

/* The direct and smooth probability curves over the examples every model
 * has; returns how many examples that is. */
static int curves(const double *x, const double *lp, int n, int n_ex,
                  double *direct, double *smooth)
{
    double *y = malloc(sizeof *y * (size_t)n);
    double *s = malloc(sizeof *s * (size_t)n);
    int used = 0;
    memset(direct, 0, sizeof *direct * (size_t)n);
    memset(smooth, 0, sizeof *smooth * (size_t)n);
    for (int e = 0; e < n_ex; e++) {
        int ok = 1;
        for (int m = 0; m < n && ok; m++) {
            y[m] = lp[(size_t)m * n_ex + e];
            ok = !isnan(y[m]);
        }
        if (!ok)
            continue;
        mirage_smooth_fit(x, y, n, x, n, s);
        for (int m = 0; m < n; m++) {
            direct[m] += exp(y[m] < 0 ? y[m] : 0);
            smooth[m] += exp(s[m]);
        }
        used++;
    }
    for (int m = 0; used && m < n; m++) {
        direct[m] /= used;
        smooth[m] /= used;
    }
    free(y);
    free(s);
    return used;
}

void mirage_analyze(const double *x, const double *em, const double *lp,
                    int n, int n_ex, mirage_result *r)
{
    mirage_analyze_curves(x, em, lp, n, n_ex, r, NULL, NULL);
}

void mirage_analyze_curves(const double *x, const double *em,
                           const double *lp, int n, int n_ex,
                           mirage_result *r, double *direct_out,
                           double *smooth_out)
{
    memset(r, 0, sizeof *r);
    r->n_models = n;
    r->corr_logodds = r->corr_direct = r->r2 = NAN;
    r->verdict = MIRAGE_NOT_APPLICABLE;
    if (n < 3) {
        r->why = "fewer than 3 models";
        return;
    }
    double *direct = malloc(sizeof *direct * (size_t)n);
    double *smooth = malloc(sizeof *smooth * (size_t)n);
    r->n_examples = curves(x, lp, n, n_ex, direct, smooth);
    if (!r->n_examples) {
        r->why = "no example has its log-probs on every model";
        goto out;
    }
    double lo = em[0], hi = em[0];
    for (int m = 1; m < n; m++) {
        lo = em[m] < lo ? em[m] : lo;
        hi = em[m] > hi ? em[m] : hi;
    }
    r->em_range = hi - lo;
    r->b_observed = breakthrough(em, n);
    r->b_direct = breakthrough(direct, n);
    r->b_smooth = breakthrough(smooth, n);
    r->ratio = r->b_smooth > 0 ? r->b_observed / r->b_smooth : INFINITY;
    r->corr_logodds = corr_logodds(em, smooth, n);
    r->corr_direct = corr_logodds(em, direct, n);
    r->r2 = r_squared(em, smooth, n);
    if (r->em_range < JUMP_MIN)
        r->verdict = MIRAGE_NO_JUMP;
    else if (r->r2 >= R2_MIN)
        r->verdict = MIRAGE_METRIC_INDUCED;
    else
        r->verdict = MIRAGE_NOT_EXPLAINED;
    if (direct_out)
        memcpy(direct_out, direct, sizeof *direct * (size_t)n);
    if (smooth_out)
        memcpy(smooth_out, smooth, sizeof *smooth * (size_t)n);
out:
    free(direct);
    free(smooth);
}

/* ------------------------------------------------------------ store */

int mirage_is_cot(const char *variant)
{
    return strstr(variant, "cot") != NULL;
}

/* The test on one exact_match series, its models in axis order. */
static void analyze_series(const scaling_series *s, int axis,
                           const sq_cell *lp, int n_lp, mirage_row *row)
{
    mirage_result *r = &row->r;
    int *ord = scaling_axis_order(s, axis == SCALING_AXIS_FLOPS);
    const sq_cell *first = NULL;
    for (int i = 0; i < s->n && !first; i++)
        first = sq_cell_lookup(lp, n_lp, s->task, s->variant, s->pts[ord[i]].model);
    int n_ex = first ? first->n : 0;
    double *x = malloc(sizeof *x * (size_t)(s->n + 1));
    double *em = malloc(sizeof *em * (size_t)(s->n + 1));
    double *v = malloc(sizeof *v * ((size_t)s->n * (size_t)n_ex + 1));
    for (int i = 0; i < s->n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        const sq_cell *c = sq_cell_lookup(lp, n_lp, s->task, s->variant, p->model);
        x[i] = log10(axis == SCALING_AXIS_FLOPS ? p->flops : p->params);
        em[i] = p->score;
        for (int e = 0; e < n_ex; e++) {
            int k = c ? sq_cell_find(c, first->ids[e]) : -1;
            v[(size_t)i * n_ex + e] = k >= 0 ? c->v[k] : NAN;
        }
    }
    row->n = s->n;
    row->scale = em_calloc((size_t)s->n + 1, sizeof *row->scale);
    row->em = em_calloc((size_t)s->n + 1, sizeof *row->em);
    row->direct = em_calloc((size_t)s->n + 1, sizeof *row->direct);
    row->smooth = em_calloc((size_t)s->n + 1, sizeof *row->smooth);
    for (int i = 0; i < s->n; i++) {
        row->scale[i] = pow(10, x[i]);
        row->em[i] = em[i];
    }
    mirage_analyze_curves(x, em, v, s->n, n_ex, r, row->direct, row->smooth);
    if (!first) {
        r->verdict = MIRAGE_NOT_APPLICABLE;
        r->why = "no log-probs stored";
    }
    free(x);
    free(em);
    free(v);
    free(ord);
}

int mirage_from_store(store_query *q, int axis, mirage_row **rows, int *n,
                      em_err *err)
{
    scaling_series *s;
    sq_cell *lp = NULL, *mc = NULL;
    int ns, nlp = 0, nmc = 0;
    *rows = NULL;
    *n = 0;
    if (results_series(q, axis, &s, &ns, err))
        return -1;
    if (store_query_metric_cells(q, "target_logprob", &lp, &nlp, err) ||
        store_query_choice_cells(q, &mc, &nmc, err)) {
        store_query_cells_free(lp, nlp);
        scaling_series_free(s, ns);
        return -1;
    }
    for (int i = 0; i < ns; i++) {
        /* generation: exact match against the whole target's probability;
         * multiple choice: the grade against the correct choice's
         * probability normalised over the choices */
        int is_mc = !strcmp(s[i].metric, "multiple_choice_grade");
        if (strcmp(s[i].metric, "exact_match") && !is_mc)
            continue;
        *rows = em_realloc(*rows, sizeof **rows * (size_t)(*n + 1));
        mirage_row *r = &(*rows)[(*n)++];
        memset(r, 0, sizeof *r);
        r->task = em_strdup(s[i].task);
        r->variant = em_strdup(s[i].variant);
        analyze_series(&s[i], axis, is_mc ? mc : lp, is_mc ? nmc : nlp, r);
        if (r->r.verdict == MIRAGE_NOT_APPLICABLE && !r->r.n_examples &&
            r->r.n_models >= 3)
            r->r.why = is_mc ? "no example with a correct and an incorrect "
                       "choice's log-prob stored on every model (a request "
                       "shared with another task is stored under it)"
                     : "no target_logprob on every model for any example";
        if (mirage_is_cot(s[i].variant)) {
            r->r.verdict = MIRAGE_NOT_APPLICABLE;
            r->r.why = "chain of thought: the grade is of an extracted answer";
        }
    }
    store_query_cells_free(lp, nlp);
    store_query_cells_free(mc, nmc);
    scaling_series_free(s, ns);
    return 0;
}

void mirage_rows_free(mirage_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].task);
        free(rows[i].variant);
        free(rows[i].scale);
        free(rows[i].em);
        free(rows[i].direct);
        free(rows[i].smooth);
    }
    free(rows);
}

void mirage_print(FILE *f, const mirage_row *rows, int n, int csv)
{
    if (csv)
        fprintf(f, "task,variant,models,examples,em_range,r2,b_observed,"
                "b_direct,b_smooth,ratio,corr_logodds,corr_direct,verdict\n");
    else
        fprintf(f, "%-24s %-14s %6s %8s %6s %8s %8s %8s %7s  %s\n", "task",
                "variant", "models", "em_range", "r2", "b_obs", "b_smooth",
                "ratio", "corr", "verdict");
    for (int i = 0; i < n; i++) {
        const mirage_result *r = &rows[i].r;
        const char *v = mirage_verdict_name(r->verdict);
        if (csv)
            fprintf(f, "%s,%s,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,"
                    "\"%s%s%s\"\n", rows[i].task, rows[i].variant,
                    r->n_models, r->n_examples, r->em_range, r->r2, r->b_observed,
                    r->b_direct, r->b_smooth, r->ratio, r->corr_logodds,
                    r->corr_direct, v, r->why ? ": " : "",
                    r->why ? r->why : "");
        else
            fprintf(f, "%-24s %-14s %6d %8.3f %6.3f %8.3g %8.3g %8.3g %7.3f"
                    "  %s%s%s%s\n", rows[i].task, rows[i].variant,
                    r->n_models, r->em_range, r->r2, r->b_observed,
                    r->b_smooth, r->ratio, r->corr_logodds, v,
                    r->why ? " (" : "", r->why ? r->why : "",
                    r->why ? ")" : "");
    }
}

/*
 * predict.c - back-testing predictions of exact match (predict.h).
 */
#include "metrics/predict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/mirage.h"
#include "metrics/results.h"
#include "metrics/scaling.h"

#define K_STEPS 32      /* slopes k, geometric from 0.05 to 50 per decade */
#define X0_STEPS 96    /* midpoints over the fitted range +- 3 decades */

static double sigmoid(double z)
{
    return 1 / (1 + exp(-z));
}

/* SSE of c * sigmoid(k (x - x0)) with c in closed form (clipped to
 * (0, 1]); *c_out the c used. */
static double logistic_sse(const double *x, const double *y, int n, double k,
                           double x0, double *c_out)
{
    double gy = 0, gg = 0, sse = 0;
    for (int i = 0; i < n; i++) {
        double g = sigmoid(k * (x[i] - x0));
        gy += g * y[i];
        gg += g * g;
    }
    double c = gg > 0 ? gy / gg : 0;
    c = c > 1 ? 1 : c < 1e-9 ? 1e-9 : c;
    for (int i = 0; i < n; i++) {
        double d = y[i] - c * sigmoid(k * (x[i] - x0));
        sse += d * d;
    }
    *c_out = c;
    return sse;
}

void predict_logistic(const double *x, const double *y, int n,
                      const double *xe, int ne, double *out)
{
    double lo = x[0], hi = x[0], best = INFINITY, bk = 1, bx = x[0], bc = 0;
    for (int i = 1; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    lo -= 3;
    hi += 3;
    for (int a = 0; a < K_STEPS; a++) {
        double k = 0.05 * pow(1000.0, (double)a / (K_STEPS - 1));
        for (int b = 0; b < X0_STEPS; b++) {
            double x0 = lo + (hi - lo) * b / (X0_STEPS - 1), c;
            double sse = logistic_sse(x, y, n, k, x0, &c);
            if (sse < best - 1e-15) {
                best = sse;
                bk = k;
                bx = x0;
                bc = c;
            }
        }
    }
    for (int i = 0; i < ne; i++)
        out[i] = bc * sigmoid(bk * (xe[i] - bx));
}

/* ------------------------------------------------------------ back-test */

/* What one resample gives: the held-back models' observed exact match and
 * both predictions, and the two mean absolute errors. */
typedef struct estimate {
    double *obs, *direct, *smooth; /* [hold] */
    double err_direct, err_smooth;
} estimate;

typedef struct problem {
    const double *x, *em;
    int n, n_ex, nf, hold;
    double *sp;   /* [e * hold + h]: exp of example e's smooth fit at h */
} problem;

static void estimate_once(const problem *p, const int *idx, double *em_mean,
                          estimate *out)
{
    for (int m = 0; m < p->n; m++) {
        double s = 0;
        for (int i = 0; i < p->n_ex; i++)
            s += p->em[(size_t)m * p->n_ex + idx[i]];
        em_mean[m] = s / p->n_ex;
    }
    predict_logistic(p->x, em_mean, p->nf, p->x + p->nf, p->hold, out->direct);
    out->err_direct = out->err_smooth = 0;
    for (int h = 0; h < p->hold; h++) {
        double s = 0;
        for (int i = 0; i < p->n_ex; i++)
            s += p->sp[(size_t)idx[i] * p->hold + h];
        out->smooth[h] = s / p->n_ex;
        out->obs[h] = em_mean[p->nf + h];
        out->err_direct += fabs(out->direct[h] - out->obs[h]) / p->hold;
        out->err_smooth += fabs(out->smooth[h] - out->obs[h]) / p->hold;
    }
}

/* Example e's log-probs over the fitted models, extrapolated. */
static void smooth_table(problem *p, const double *lp)
{
    double *y = malloc(sizeof *y * (size_t)p->nf), *out = malloc(sizeof *out * (size_t)p->hold);
    p->sp = malloc(sizeof *p->sp * (size_t)p->n_ex * (size_t)p->hold);
    for (int e = 0; e < p->n_ex; e++) {
        for (int m = 0; m < p->nf; m++)
            y[m] = lp[(size_t)m * p->n_ex + e];
        mirage_smooth_fit(p->x, y, p->nf, p->x + p->nf, p->hold, out);
        for (int h = 0; h < p->hold; h++)
            p->sp[(size_t)e * p->hold + h] = exp(out[h]);
    }
    free(y);
    free(out);
}

static void interval(double *v, int n, double *lo, double *hi)
{
    qsort(v, (size_t)n, sizeof *v, em_cmp_double);
    *lo = v[(int)floor(0.025 * (n - 1))];
    *hi = v[(int)ceil(0.975 * (n - 1))];
}

static void alloc_estimate(estimate *e, int hold)
{
    e->obs = malloc(sizeof *e->obs * (size_t)hold);
    e->direct = malloc(sizeof *e->direct * (size_t)hold);
    e->smooth = malloc(sizeof *e->smooth * (size_t)hold);
}

static void free_estimate(estimate *e)
{
    free(e->obs);
    free(e->direct);
    free(e->smooth);
}

/* Bootstrap: B resamples of the examples; CIs of every figure. */
static void bootstrap(const problem *p, int B, uint64_t seed, predict_row *r)
{
    int H = p->hold, *idx = malloc(sizeof *idx * (size_t)p->n_ex);
    double *em_mean = malloc(sizeof *em_mean * (size_t)p->n);
    double *v = malloc(sizeof *v * (size_t)B * (size_t)(3 * H + 2));
    estimate e;
    alloc_estimate(&e, H);
    uint64_t st = seed;
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < p->n_ex; i++)
            idx[i] = (int)(em_splitmix64(&st) % (uint64_t)p->n_ex);
        estimate_once(p, idx, em_mean, &e);
        for (int h = 0; h < H; h++) {
            v[(size_t)(3 * h) * B + b] = e.obs[h];
            v[(size_t)(3 * h + 1) * B + b] = e.direct[h];
            v[(size_t)(3 * h + 2) * B + b] = e.smooth[h];
        }
        v[(size_t)(3 * H) * B + b] = e.err_direct;
        v[(size_t)(3 * H + 1) * B + b] = e.err_smooth;
    }
    for (int h = 0; h < H; h++) {
        predict_point *q = &r->held[h];
        interval(v + (size_t)(3 * h) * B, B, &q->obs_lo, &q->obs_hi);
        interval(v + (size_t)(3 * h + 1) * B, B, &q->direct_lo, &q->direct_hi);
        interval(v + (size_t)(3 * h + 2) * B, B, &q->smooth_lo, &q->smooth_hi);
    }
    interval(v + (size_t)(3 * H) * B, B, &r->err_direct_lo, &r->err_direct_hi);
    interval(v + (size_t)(3 * H + 1) * B, B, &r->err_smooth_lo, &r->err_smooth_hi);
    free_estimate(&e);
    free(v);
    free(em_mean);
    free(idx);
}

void predict_run(const double *x, const double *em, const double *lp,
                 int n, int n_ex, int hold, int replicates, uint64_t seed,
                 predict_row *r)
{
    r->why = NULL;
    r->held = NULL;
    r->n_held = 0;
    r->n_fit = n - hold;
    r->n_examples = n_ex;
    if (r->n_fit < 3) {
        r->why = "fewer than 3 models to fit";
        return;
    }
    if (n_ex <= 0) {
        r->why = "no example has exact_match and target_logprob on every model";
        return;
    }
    problem p = {x, em, n, n_ex, n - hold, hold, NULL};
    smooth_table(&p, lp);
    r->n_held = hold;
    r->held = em_calloc((size_t)hold, sizeof *r->held);
    int *idx = malloc(sizeof *idx * (size_t)n_ex);
    double *em_mean = malloc(sizeof *em_mean * (size_t)n);
    for (int i = 0; i < n_ex; i++)
        idx[i] = i;
    estimate e;
    alloc_estimate(&e, hold);
    estimate_once(&p, idx, em_mean, &e);
    for (int h = 0; h < hold; h++) {
        r->held[h].x = x[p.nf + h];
        r->held[h].observed = e.obs[h];
        r->held[h].direct = e.direct[h];
        r->held[h].smooth = e.smooth[h];
    }
    r->err_direct = e.err_direct;
    r->err_smooth = e.err_smooth;
    bootstrap(&p, replicates > 0 ? replicates : 1, seed, r);
    free_estimate(&e);
    free(em_mean);
    free(idx);
    free(p.sp);
}

/* ---------------------------------------------------------------- store */

/* The examples of the first model that every model has in both metrics,
 * as matrices in axis order; returns how many. */
static int gather(const scaling_series *s, const int *ord, const sq_cell *em,
                  int n_em, const sq_cell *lp, int n_lp, double *x,
                  double **emm, double **lpm)
{
    const sq_cell **ce = malloc(sizeof *ce * (size_t)s->n);
    const sq_cell **cl = malloc(sizeof *cl * (size_t)s->n);
    int ok = 1, k = 0;
    for (int i = 0; i < s->n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        ce[i] = sq_cell_lookup(em, n_em, s->task, s->variant, p->model);
        cl[i] = sq_cell_lookup(lp, n_lp, s->task, s->variant, p->model);
        ok &= ce[i] && cl[i];
    }
    int n0 = ok ? ce[0]->n : 0;
    *emm = malloc(sizeof **emm * ((size_t)s->n * (size_t)n0 + 1));
    *lpm = malloc(sizeof **lpm * ((size_t)s->n * (size_t)n0 + 1));
    double *a = malloc(sizeof *a * (size_t)s->n), *b = malloc(sizeof *b * (size_t)s->n);
    for (int e = 0; e < n0; e++) {
        const char *id = ce[0]->ids[e];
        int all = 1;
        for (int i = 0; i < s->n && all; i++) {
            int j = sq_cell_find(ce[i], id), l = sq_cell_find(cl[i], id);
            all = j >= 0 && l >= 0;
            if (all)
                a[i] = ce[i]->v[j], b[i] = cl[i]->v[l];
        }
        if (!all)
            continue;
        for (int i = 0; i < s->n; i++) {
            (*emm)[(size_t)i * n0 + k] = a[i];
            (*lpm)[(size_t)i * n0 + k] = b[i];
        }
        k++;
    }
    /* compact the rows from stride n0 to stride k */
    for (int i = 0; k < n0 && i < s->n; i++) {
        memmove(*emm + (size_t)i * k, *emm + (size_t)i * n0, sizeof **emm * (size_t)k);
        memmove(*lpm + (size_t)i * k, *lpm + (size_t)i * n0, sizeof **lpm * (size_t)k);
    }
    for (int i = 0; i < s->n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        x[i] = log10(p->params); /* the caller puts flops in params */
    }
    free(a);
    free(b);
    free(ce);
    free(cl);
    return k;
}

/* The emergence scale of s with its held-back points replaced by a
 * predictor's (which: 0 observed as stored, 1 direct, 2 smooth). */
static double emergence_with(const scaling_series *s, const int *ord,
                             const predict_row *r, int axis, int which)
{
    scaling_series c = *s;
    c.pts = em_malloc(sizeof *c.pts * (size_t)(s->n + 1));
    memcpy(c.pts, s->pts, sizeof *c.pts * (size_t)s->n);
    for (int h = 0; which && h < r->n_held; h++) {
        scaling_point *p = &c.pts[ord[s->n - r->n_held + h]];
        const predict_point *q = &r->held[h];
        p->score = which == 1 ? q->direct : q->smooth;
        p->lo = which == 1 ? q->direct_lo : q->smooth_lo;
        p->hi = which == 1 ? q->direct_hi : q->smooth_hi;
    }
    scaling_result res;
    scaling_analyze(&c, axis == SCALING_AXIS_FLOPS, &res);
    free(c.pts);
    return res.emergence_scale;
}

static void predict_series(const scaling_series *s, int axis, const sq_cell *em,
                           int n_em, const sq_cell *lp, int n_lp, int hold,
                           int replicates, uint64_t seed, predict_row *r)
{
    int *ord = scaling_axis_order(s, axis == SCALING_AXIS_FLOPS);
    double *x = malloc(sizeof *x * (size_t)(s->n + 1)), *emm, *lpm;
    int k = gather(s, ord, em, n_em, lp, n_lp, x, &emm, &lpm);
    if (axis == SCALING_AXIS_FLOPS)
        for (int i = 0; i < s->n; i++)
            x[i] = log10(s->pts[ord[i]].flops);
    predict_run(x, emm, lpm, s->n, k, hold, replicates, seed, r);
    for (int h = 0; h < r->n_held; h++)
        r->held[h].model = em_strdup(s->pts[ord[s->n - hold + h]].model);
    if (r->n_held) {
        r->emergence_observed = emergence_with(s, ord, r, axis, 0);
        r->emergence_direct = emergence_with(s, ord, r, axis, 1);
        r->emergence_smooth = emergence_with(s, ord, r, axis, 2);
    }
    free(x);
    free(emm);
    free(lpm);
    free(ord);
}

int predict_from_store(store_query *q, int axis, int hold, int replicates,
                       uint64_t seed, predict_row **rows, int *n,
                       em_err *err)
{
    scaling_series *s;
    sq_cell *em = NULL, *lp = NULL;
    int ns, n_em = 0, n_lp = 0;
    *rows = NULL;
    *n = 0;
    if (results_series(q, axis, &s, &ns, err))
        return -1;
    if (store_query_metric_cells(q, "exact_match", &em, &n_em, err) ||
        store_query_metric_cells(q, "target_logprob", &lp, &n_lp, err)) {
        store_query_cells_free(em, n_em);
        scaling_series_free(s, ns);
        return -1;
    }
    for (int i = 0; i < ns; i++) {
        if (strcmp(s[i].metric, "exact_match"))
            continue;
        *rows = em_realloc(*rows, sizeof **rows * (size_t)(*n + 1));
        predict_row *r = &(*rows)[(*n)++];
        memset(r, 0, sizeof *r);
        r->task = em_strdup(s[i].task);
        r->variant = em_strdup(s[i].variant);
        if (mirage_is_cot(s[i].variant)) {
            r->why = "chain of thought: the grade is of an extracted answer";
            continue;
        }
        predict_series(&s[i], axis, em, n_em, lp, n_lp, hold, replicates,
                       seed, r);
    }
    store_query_cells_free(em, n_em);
    store_query_cells_free(lp, n_lp);
    scaling_series_free(s, ns);
    return 0;
}

void predict_rows_free(predict_row *rows, int n)
{
    for (int i = 0; i < n; i++) {
        for (int h = 0; h < rows[i].n_held; h++)
            free(rows[i].held[h].model);
        free(rows[i].held);
        free(rows[i].task);
        free(rows[i].variant);
    }
    free(rows);
}

void predict_print(FILE *f, const predict_row *rows, int n, int csv)
{
    if (csv)
        fprintf(f, "task,variant,model,fitted,examples,observed,obs_lo,obs_hi,"
                "direct,direct_lo,direct_hi,smooth,smooth_lo,smooth_hi,"
                "emergence_observed,emergence_direct,emergence_smooth,note\n");
    else
        fprintf(f, "%-20s %-10s %-16s %4s %-21s %-21s %-21s\n", "task",
                "variant", "held-back model", "fit", "observed [95% CI]",
                "direct [95% CI]", "smooth [95% CI]");
    for (int i = 0; i < n; i++) {
        const predict_row *r = &rows[i];
        if (r->why) {
            if (csv)
                fprintf(f, "%s,%s,,,,,,,,,,,,,,,,\"%s\"\n", r->task, r->variant,
                        r->why);
            else
                fprintf(f, "%-20s %-10s (not predicted: %s)\n", r->task,
                        r->variant, r->why);
            continue;
        }
        for (int h = 0; h < r->n_held; h++) {
            const predict_point *p = &r->held[h];
            if (csv)
                fprintf(f, "%s,%s,%s,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,"
                        "%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,\n", r->task, r->variant,
                        p->model, r->n_fit, r->n_examples, p->observed,
                        p->obs_lo, p->obs_hi, p->direct, p->direct_lo,
                        p->direct_hi, p->smooth, p->smooth_lo, p->smooth_hi,
                        r->emergence_observed, r->emergence_direct,
                        r->emergence_smooth);
            else
                fprintf(f, "%-20s %-10s %-16s %4d %.3f [%.3f,%.3f]  %.3f "
                        "[%.3f,%.3f]  %.3f [%.3f,%.3f]\n", r->task, r->variant,
                        p->model, r->n_fit, p->observed, p->obs_lo, p->obs_hi,
                        p->direct, p->direct_lo, p->direct_hi, p->smooth,
                        p->smooth_lo, p->smooth_hi);
        }
        if (!csv) {
            fprintf(f, "%-20s %-10s %-16s      mean |error|: direct %.3f "
                    "[%.3f,%.3f], smooth %.3f [%.3f,%.3f]\n", "", "", "",
                    r->err_direct, r->err_direct_lo, r->err_direct_hi,
                    r->err_smooth, r->err_smooth_lo, r->err_smooth_hi);
            fprintf(f, "%-20s %-10s %-16s      emergence scale: observed "
                    "%.3g, direct %.3g, smooth %.3g (0: none)\n", "", "", "",
                    r->emergence_observed, r->emergence_direct,
                    r->emergence_smooth);
        }
    }
}

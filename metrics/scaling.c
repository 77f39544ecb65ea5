/*
 * scaling.c - how a score moves across a model family.
 *
 * Owns: the formulas of ../shared/refs/scaling-metrics.md, one function
 * each: the signed range I(y), linearity, breakthroughness, the
 * least-squares slope on log10 scale, the emergence scale, and the
 * inverse-scaling and U-shape flags; scaling_analyze applies them to a
 * series. Printing is in scaling_print.c, CSV input in scaling_csv.c.
 *
 * Everything is computed on the normalised score y (BIG-bench:
 * 100*(raw - low)/(high - low), the raw score when low == high), and the
 * CIs are normalised the same way, so "above" always means "better".
 */
#include "metrics/scaling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metric.h"

/* First index of the maximum / minimum (numpy's argmax convention). */
static int argmax(const double *y, int n)
{
    int k = 0;
    for (int i = 1; i < n; i++)
        if (y[i] > y[k])
            k = i;
    return k;
}

static int argmin(const double *y, int n)
{
    int k = 0;
    for (int i = 1; i < n; i++)
        if (y[i] < y[k])
            k = i;
    return k;
}

/* I(y) = sign(argmax - argmin) * (max - min). */
double scaling_range(const double *y, int n)
{
    if (n < 2)
        return 0;
    int hi = argmax(y, n), lo = argmin(y, n);
    double r = y[hi] - y[lo];
    if (r == 0)
        return 0;
    return hi > lo ? r : -r;
}

/* Squared steps d_i^2 = (y[i+1] - y[i])^2; n-1 values, malloc'd. */
static double *squared_steps(const double *y, int n)
{
    double *d = em_malloc(sizeof(double) * (size_t)(n > 1 ? n - 1 : 1));
    for (int i = 0; i + 1 < n; i++)
        d[i] = (y[i + 1] - y[i]) * (y[i + 1] - y[i]);
    return d;
}

/* L = I(y) / sqrt(mean of squared steps). The denominator is 0 only when
 * all y are equal, where I(y) = 0 too, and L is 0 by definition. */
double scaling_linearity(const double *y, int n)
{
    double I = scaling_range(y, n);
    if (I == 0)
        return 0;
    double *d = squared_steps(y, n), s = 0;
    for (int i = 0; i + 1 < n; i++)
        s += d[i];
    free(d);
    return I / sqrt(s / (n - 1));
}

/* B = I(y) / sqrt(median of squared steps); the median of an even count is
 * the mean of the two middle values. A zero median with I != 0 (a jump
 * among flat steps) is reported as +-inf with *is_inf set. */
double scaling_breakthroughness(const double *y, int n, int *is_inf)
{
    *is_inf = 0;
    double I = scaling_range(y, n);
    if (I == 0)
        return 0;
    int m = n - 1;
    double *d = squared_steps(y, n);
    qsort(d, (size_t)m, sizeof(double), em_cmp_double);
    double med = m % 2 ? d[m / 2] : (d[m / 2 - 1] + d[m / 2]) / 2;
    free(d);
    if (med == 0) {
        *is_inf = 1;
        return I > 0 ? INFINITY : -INFINITY;
    }
    return I / sqrt(med);
}

double scaling_slope(const double *x, const double *y, int n)
{
    if (n < 2)
        return 0;
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= n;
    my /= n;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
    }
    return sxx > 0 ? sxy / sxx : 0;
}

int scaling_emergence_index(const double *lo, int n, double threshold)
{
    int k = n;
    while (k > 0 && lo[k - 1] > threshold)
        k--;
    return k < n ? k : -1;
}

int scaling_is_inverse(const double *y, const double *lo, const double *hi,
                       int n, double slope)
{
    if (n < 2)
        return 0;
    return y[n - 1] < y[0] && hi[n - 1] < lo[0] && slope < 0;
}

int scaling_is_u_shape(const double *y, const double *lo, const double *hi,
                       int n)
{
    if (n < 3)
        return 0;
    int m = argmin(y, n);
    if (m == 0 || m == n - 1)
        return 0;
    return lo[0] > hi[m] && lo[n - 1] > hi[m];
}

static double axis_value(const scaling_point *p, int axis_flops)
{
    return axis_flops ? p->flops : p->params;
}

static const char *const axis_names[] = {"params", "flops", "nonembed"};

int scaling_axis_parse(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, axis_names[i]))
            return i;
    return -1;
}

const char *scaling_axis_name(int axis)
{
    return axis >= 0 && axis < 3 ? axis_names[axis] : "params";
}

int *scaling_axis_order(const scaling_series *s, int axis_flops)
{
    int *ord = em_malloc(sizeof(int) * (size_t)(s->n ? s->n : 1));
    for (int i = 0; i < s->n; i++) {
        int j = i;
        double v = axis_value(&s->pts[i], axis_flops);
        while (j > 0 && axis_value(&s->pts[ord[j - 1]], axis_flops) > v) {
            ord[j] = ord[j - 1];
            j--;
        }
        ord[j] = i;
    }
    return ord;
}

/* The raw score that "above random" means: the baseline and its upper CI
 * when known, else BIG-bench's low_score (its random-chance score), else
 * none (NAN). Returned normalised. */
static double emergence_threshold(const scaling_series *s)
{
    double t = NAN;
    if (!isnan(s->random_baseline))
        t = scaling_y(s, s->random_baseline);
    if (!isnan(s->random_hi)) {
        double h = scaling_y(s, s->random_hi);
        if (isnan(t) || h > t)
            t = h;
    }
    if (isnan(t) && s->low_score != s->high_score)
        t = 0; /* y of low_score */
    return t;
}

double scaling_y(const scaling_series *s, double raw)
{
    if (s->low_score == s->high_score && s->metric &&
        !metric_higher_is_better(s->metric))
        return -raw;
    return metric_normalize(raw, s->low_score, s->high_score);
}

void scaling_analyze(const scaling_series *s, int axis_flops,
                     scaling_result *out)
{
    memset(out, 0, sizeof *out);
    int n = s->n, *ord = scaling_axis_order(s, axis_flops);
    size_t sz = sizeof(double) * (size_t)(n ? n : 1);
    double *y = em_malloc(sz), *lo = em_malloc(sz), *hi = em_malloc(sz);
    double *x = em_malloc(sz);
    int nx = 0;
    for (int i = 0; i < n; i++) {
        const scaling_point *p = &s->pts[ord[i]];
        y[i] = scaling_y(s, p->score);
        double a = scaling_y(s, isnan(p->lo) ? p->score : p->lo);
        double b = scaling_y(s, isnan(p->hi) ? p->score : p->hi);
        lo[i] = a < b ? a : b; /* a decreasing y(raw) flips the interval */
        hi[i] = a < b ? b : a;
    }
    out->linearity = scaling_linearity(y, n);
    out->breakthroughness = scaling_breakthroughness(y, n, &out->b_inf);
    /* The slope uses the models with a positive scale only (log10). */
    double *ys = em_malloc(sz);
    for (int i = 0; i < n; i++) {
        double v = axis_value(&s->pts[ord[i]], axis_flops);
        if (v > 0) {
            x[nx] = log10(v);
            ys[nx++] = y[i];
        }
    }
    out->slope = scaling_slope(x, ys, nx);
    double t = emergence_threshold(s);
    int k = isnan(t) ? -1 : scaling_emergence_index(lo, n, t);
    out->emergence_scale = k < 0 ? 0 : axis_value(&s->pts[ord[k]], axis_flops);
    out->inverse = scaling_is_inverse(y, lo, hi, n, out->slope);
    out->u_shape = scaling_is_u_shape(y, lo, hi, n);
    free(ys);
    free(x);
    free(y);
    free(lo);
    free(hi);
    free(ord);
}

void scaling_series_free(scaling_series *s, int n)
{
    if (!s)
        return;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < s[i].n; j++)
            free(s[i].pts[j].model);
        free(s[i].pts);
        free(s[i].task);
        free(s[i].variant);
        free(s[i].metric);
    }
    free(s);
}

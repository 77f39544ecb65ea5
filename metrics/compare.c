/*
 * compare.c - the cross-family matching scale: where family (or variant)
 * A reaches the scores of B, with bootstrap CIs (see compare.h).
 */
#include "metrics/compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/csv.h"

/* ---- groups ----------------------------------------------------------- */

static void series_clear(scaling_series *s)
{
    for (int j = 0; j < s->n; j++)
        free(s->pts[j].model);
    free(s->pts);
    free(s->task);
    free(s->variant);
    free(s->metric);
}

void compare_groups_free(compare_group *g, int n)
{
    if (!g)
        return;
    for (int i = 0; i < n; i++) {
        series_clear(&g[i].s);
        free(g[i].family);
    }
    free(g);
}

/* A group with s's task, variant, metric and normalisation, no points. */
static compare_group *group_push(compare_group **v, int *n, const scaling_series *s,
                                 const char *family)
{
    *v = em_realloc(*v, sizeof **v * (size_t)(*n + 1));
    compare_group *g = &(*v)[(*n)++];
    memset(g, 0, sizeof *g);
    g->s.task = em_strdup(s->task);
    g->s.variant = em_strdup(s->variant ? s->variant : "");
    g->s.metric = em_strdup(s->metric ? s->metric : "");
    g->s.random_baseline = s->random_baseline;
    g->s.random_hi = s->random_hi;
    g->s.low_score = s->low_score;
    g->s.high_score = s->high_score;
    g->family = family ? em_strdup(family) : NULL;
    return g;
}

static void point_push(scaling_series *s, const scaling_point *p)
{
    s->pts = em_realloc(s->pts, sizeof *s->pts * (size_t)(s->n + 1));
    s->pts[s->n] = *p;
    s->pts[s->n++].model = em_strdup(p->model);
}

/* Length of prefix p when name starts with it, else -1. */
static int prefix_of(const char *name, const char *p)
{
    size_t n = strlen(p);
    return strncmp(name, p, n) ? -1 : (int)n;
}

void compare_split_families(const scaling_series *s, int n, const char *a,
                            const char *b, compare_group **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    for (int i = 0; i < n; i++) {
        int ga = *n_out, gb = ga + 1;
        group_push(out, n_out, &s[i], a);
        group_push(out, n_out, &s[i], b);
        for (int j = 0; j < s[i].n; j++) {
            int la = prefix_of(s[i].pts[j].model, a), lb = prefix_of(s[i].pts[j].model, b);
            if (la >= 0 || lb >= 0)
                point_push(&(*out)[la >= lb ? ga : gb].s, &s[i].pts[j]);
        }
        /* Drop empty groups (from the end, so ga stays valid). */
        for (int k = gb; k >= ga; k--)
            if ((*out)[k].s.n == 0) {
                series_clear(&(*out)[k].s);
                free((*out)[k].family);
                memmove(&(*out)[k], &(*out)[k + 1], sizeof **out * (size_t)(*n_out - k - 1));
                (*n_out)--;
            }
    }
}

void compare_from_series(const scaling_series *s, int n, compare_group **out,
                         int *n_out)
{
    *out = NULL;
    *n_out = 0;
    for (int i = 0; i < n; i++) {
        compare_group *g = group_push(out, n_out, &s[i], NULL);
        for (int j = 0; j < s[i].n; j++)
            point_push(&g->s, &s[i].pts[j]);
    }
}

/* ---- matching --------------------------------------------------------- */

double compare_cross(const double *x, const double *y, int n, double target,
                     int *censor)
{
    if (n <= 0) {
        *censor = 1;
        return NAN;
    }
    if (y[0] >= target) {
        *censor = -1;
        return x[0];
    }
    for (int i = 1; i < n; i++)
        if (y[i] >= target) {
            /* y[i-1] < target <= y[i]: the denominator is positive. */
            double t = (target - y[i - 1]) / (y[i] - y[i - 1]);
            *censor = 0;
            return x[i - 1] + t * (x[i] - x[i - 1]);
        }
    *censor = 1;
    return x[n - 1];
}

/* A series as a curve: log10 params, scaling_y of score and of its CI
 * (ordered, since a lower-is-better metric flips it), by size. Models of
 * equal size (checkpoints of one size) count once: the most trained
 * (largest flops, else the later one in size order). */
typedef struct curve {
    double *x, *y, *lo, *hi, *params, *raw;
    const char **model;
    int n;
} curve;

static int by_params(const void *pa, const void *pb)
{
    const scaling_point *a = *(const scaling_point *const *)pa;
    const scaling_point *b = *(const scaling_point *const *)pb;
    if (a->params != b->params)
        return a->params < b->params ? -1 : 1;
    if (a->flops != b->flops)
        return a->flops < b->flops ? -1 : 1;
    return strcmp(a->model, b->model);
}

static void curve_build(const scaling_series *s, curve *c)
{
    size_t n = (size_t)(s->n ? s->n : 1);
    const scaling_point **p = em_malloc(n * sizeof *p);
    int m = 0;
    for (int i = 0; i < s->n; i++)
        if (s->pts[i].params > 0 && !isnan(s->pts[i].score))
            p[m++] = &s->pts[i];
    qsort(p, (size_t)m, sizeof *p, by_params);
    c->x = em_malloc(n * sizeof(double));
    c->y = em_malloc(n * sizeof(double));
    c->lo = em_malloc(n * sizeof(double));
    c->hi = em_malloc(n * sizeof(double));
    c->params = em_malloc(n * sizeof(double));
    c->raw = em_malloc(n * sizeof(double));
    c->model = em_malloc(n * sizeof(char *));
    c->n = 0;
    for (int i = 0; i < m; i++) {
        if (i + 1 < m && p[i + 1]->params == p[i]->params)
            continue; /* a more trained model of this size follows */
        int k = c->n++;
        double y = scaling_y(s, p[i]->score);
        double l = isnan(p[i]->lo) ? y : scaling_y(s, p[i]->lo);
        double h = isnan(p[i]->hi) ? y : scaling_y(s, p[i]->hi);
        c->x[k] = log10(p[i]->params);
        c->y[k] = y;
        c->lo[k] = fmin(l, h) < y ? fmin(l, h) : y;
        c->hi[k] = fmax(l, h) > y ? fmax(l, h) : y;
        c->params[k] = p[i]->params;
        c->raw[k] = p[i]->score;
        c->model[k] = p[i]->model;
    }
    free(p);
}

static void curve_free(curve *c)
{
    free(c->x);
    free(c->y);
    free(c->lo);
    free(c->hi);
    free(c->params);
    free(c->raw);
    free(c->model);
}

static double std_normal(uint64_t *st)
{
    double u1 = 1.0 - em_rand01(st), u2 = em_rand01(st);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* A split-normal draw with mode y and CI [lo, hi] (95%). */
static double draw(uint64_t *st, double y, double lo, double hi)
{
    double z = std_normal(st);
    return y + z * (z < 0 ? (y - lo) : (hi - y)) / 1.959963984540054;
}

/* Nearest-rank 2.5% and 97.5% quantiles of the non-NaN values of v
 * (infinities allowed; v is reordered). NAN when there are none. */
static void ci95(double *v, int n, double *lo, double *hi)
{
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[m++] = v[i];
    *lo = *hi = NAN;
    if (!m)
        return;
    qsort(v, (size_t)m, sizeof *v, em_cmp_double);
    int a = (int)ceil(0.025 * m) - 1, b = (int)ceil(0.975 * m) - 1;
    *lo = v[a < 0 ? 0 : a];
    *hi = v[b >= m ? m - 1 : b];
}

static double censored_x(double x, int censor)
{
    return censor < 0 ? -INFINITY : censor > 0 ? INFINITY : x;
}

/* Replicates: matched log10 sizes per B point (xs[j*R + r]) and the
 * summary mean log-ratio over the matched points (sum[r]). */
static void bootstrap(const curve *a, const curve *b, const compare_result *res,
                      int R, uint64_t seed, double *xs, double *sum)
{
    uint64_t st = seed;
    double *ya = em_malloc(sizeof(double) * (size_t)(a->n ? a->n : 1));
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < a->n; i++)
            ya[i] = draw(&st, a->y[i], a->lo[i], a->hi[i]);
        double acc = 0;
        int pos = 0, neg = 0;
        for (int j = 0; j < b->n; j++) {
            int c;
            double t = draw(&st, b->y[j], b->lo[j], b->hi[j]);
            double x = compare_cross(a->x, ya, a->n, t, &c);
            x = censored_x(x, c);
            xs[(size_t)j * (size_t)R + (size_t)r] = x;
            if (res->m[j].censor)
                continue;
            if (isinf(x))
                x < 0 ? pos++ : neg++;
            else
                acc += b->x[j] - x;
        }
        /* An unmatched replicate of a matched point drives the mean to
         * +-inf; both directions at once leave it undefined. */
        sum[r] = pos && neg ? NAN : pos ? INFINITY : neg ? -INFINITY
                 : acc / res->n_matched;
    }
    free(ya);
}

static uint64_t result_seed(uint64_t seed, const scaling_series *s)
{
    uint64_t h = em_hash64(s->task, strlen(s->task), seed);
    h = em_hash64(s->variant ? s->variant : "", strlen(s->variant ? s->variant : ""), h);
    return em_hash64(s->metric ? s->metric : "", strlen(s->metric ? s->metric : ""), h);
}

static void fill_ci(compare_result *r, const curve *b, double *xs, double *sum, int R)
{
    for (int j = 0; j < r->n; j++) {
        compare_match *m = &r->m[j];
        double lo, hi;
        ci95(xs + (size_t)j * (size_t)R, R, &lo, &hi);
        m->a_lo = isinf(lo) && lo < 0 ? 0 : pow(10, lo);
        m->a_hi = isinf(hi) && hi > 0 ? INFINITY : pow(10, hi);
        if (!m->censor) {
            m->ratio_lo = b->params[j] / m->a_hi;
            m->ratio_hi = m->a_lo > 0 ? b->params[j] / m->a_lo : INFINITY;
        }
    }
    if (r->n_matched) {
        double lo, hi;
        ci95(sum, R, &lo, &hi);
        r->ratio_lo = pow(10, lo);
        r->ratio_hi = pow(10, hi);
    }
}

void compare_curves(const scaling_series *a, const scaling_series *b, int replicates,
                    uint64_t seed, compare_result *out)
{
    memset(out, 0, sizeof *out);
    curve ca, cb;
    curve_build(a, &ca);
    curve_build(b, &cb);
    out->task = em_strdup(b->task);
    out->variant = em_strdup(b->variant ? b->variant : "");
    out->metric = em_strdup(b->metric ? b->metric : "");
    out->m = em_calloc((size_t)(cb.n ? cb.n : 1), sizeof *out->m);
    out->n = cb.n;
    double acc = 0;
    for (int j = 0; j < cb.n; j++) {
        compare_match *m = &out->m[j];
        m->model = em_strdup(cb.model[j]);
        m->b_params = cb.params[j];
        m->b_score = cb.raw[j];
        double x = compare_cross(ca.x, ca.y, ca.n, cb.y[j], &m->censor);
        m->a_params = isnan(x) ? NAN : pow(10, x);
        m->a_lo = m->a_hi = m->a_params;
        m->ratio = m->ratio_lo = m->ratio_hi = NAN;
        if (!m->censor) {
            m->ratio = m->ratio_lo = m->ratio_hi = m->b_params / m->a_params;
            acc += cb.x[j] - x;
            out->n_matched++;
        }
    }
    out->ratio = out->ratio_lo = out->ratio_hi =
        out->n_matched ? pow(10, acc / out->n_matched) : NAN;
    if (replicates > 0 && cb.n && ca.n) {
        double *xs = em_malloc(sizeof(double) * (size_t)cb.n * (size_t)replicates);
        double *sum = em_malloc(sizeof(double) * (size_t)replicates);
        bootstrap(&ca, &cb, out, replicates, result_seed(seed, b), xs, sum);
        fill_ci(out, &cb, xs, sum, replicates);
        free(xs);
        free(sum);
    }
    curve_free(&ca);
    curve_free(&cb);
}

void compare_result_clear(compare_result *r)
{
    for (int j = 0; j < r->n; j++)
        free(r->m[j].model);
    free(r->m);
    free(r->task);
    free(r->variant);
    free(r->metric);
    free(r->a_label);
    free(r->b_label);
    memset(r, 0, sizeof *r);
}

void compare_result_free(compare_result *r, int n)
{
    if (!r)
        return;
    for (int i = 0; i < n; i++)
        compare_result_clear(&r[i]);
    free(r);
}

/* ---- pairing ---------------------------------------------------------- */

static int same(const char *x, const char *y)
{
    return (!x && !y) || (x && y && !strcmp(x, y));
}

static compare_result *result_push(compare_result **v, int *n)
{
    *v = em_realloc(*v, sizeof **v * (size_t)(*n + 1));
    return &(*v)[(*n)++];
}

int compare_families(const compare_group *g, int n, const char *a, const char *b,
                     int replicates, uint64_t seed, compare_result **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    for (int j = 0; j < n; j++) {
        if (!same(g[j].family, b))
            continue;
        for (int i = 0; i < n; i++)
            if (same(g[i].family, a) && !strcmp(g[i].s.task, g[j].s.task) &&
                same(g[i].s.variant, g[j].s.variant) &&
                same(g[i].s.metric, g[j].s.metric)) {
                compare_result *r = result_push(out, n_out);
                compare_curves(&g[i].s, &g[j].s, replicates, seed, r);
                r->a_label = em_strdup(a);
                r->b_label = em_strdup(b);
                break;
            }
    }
    return *n_out ? 0 : -1;
}

int compare_variants(const compare_group *g, int n, const char *a, const char *b,
                     int replicates, uint64_t seed, compare_result **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    for (int j = 0; j < n; j++) {
        if (!same(g[j].s.variant, b))
            continue;
        for (int i = 0; i < n; i++)
            if (same(g[i].s.variant, a) && !strcmp(g[i].s.task, g[j].s.task) &&
                same(g[i].s.metric, g[j].s.metric) && same(g[i].family, g[j].family)) {
                compare_result *r = result_push(out, n_out);
                compare_curves(&g[i].s, &g[j].s, replicates, seed, r);
                r->a_label = em_strdup(a);
                r->b_label = em_strdup(b);
                break;
            }
    }
    return *n_out ? 0 : -1;
}

/* ---- printing ----------------------------------------------------------- */

static void fmt_count(char *out, size_t n, double v)
{
    static const char *suffix[] = {"", "K", "M", "B", "T"};
    int k = 0;
    double a = v;
    if (isinf(v)) {
        snprintf(out, n, "inf");
        return;
    }
    while (fabs(a) >= 1000 && k < 4) {
        a /= 1000;
        k++;
    }
    snprintf(out, n, "%.3g%s", a, suffix[k]);
}

static void fmt_ratio(char *out, size_t n, double v)
{
    if (isnan(v))
        snprintf(out, n, "-");
    else if (isinf(v))
        snprintf(out, n, "inf");
    else
        snprintf(out, n, "%.3gx", v);
}

static void print_match(FILE *f, const compare_match *m)
{
    char bp[32], ap[32], lo[32], hi[32], r[32], rl[32], rh[32], where[160], rat[160];
    fmt_count(bp, sizeof bp, m->b_params);
    fmt_count(ap, sizeof ap, m->a_params);
    fmt_count(lo, sizeof lo, m->a_lo);
    fmt_count(hi, sizeof hi, m->a_hi);
    if (m->censor < 0)
        snprintf(where, sizeof where, "<= %s (A's smallest)", ap);
    else if (m->censor > 0)
        snprintf(where, sizeof where, "> %s (not reached)", ap);
    else
        snprintf(where, sizeof where, "%s [%s, %s]", ap, lo, hi);
    fmt_ratio(r, sizeof r, m->ratio);
    fmt_ratio(rl, sizeof rl, m->ratio_lo);
    fmt_ratio(rh, sizeof rh, m->ratio_hi);
    if (m->censor)
        snprintf(rat, sizeof rat, "-");
    else
        snprintf(rat, sizeof rat, "%s [%s, %s]", r, rl, rh);
    fprintf(f, "  %-22s %9s %10.4g   %-30s %s\n", m->model, bp, m->b_score, where, rat);
}

static void print_table(FILE *f, const compare_result *r)
{
    fprintf(f, "task %s  variant %s  metric %s  A = %s  B = %s\n", r->task,
            r->variant[0] ? r->variant : "-", r->metric[0] ? r->metric : "-",
            r->a_label, r->b_label);
    fprintf(f, "  %-22s %9s %10s   %-30s %s\n", "B model", "B params", "B score",
            "A reaches it at [95% CI]", "B/A params [95% CI]");
    for (int j = 0; j < r->n; j++)
        print_match(f, &r->m[j]);
    if (r->n_matched) {
        char a[32], lo[32], hi[32];
        fmt_ratio(a, sizeof a, r->ratio);
        fmt_ratio(lo, sizeof lo, r->ratio_lo);
        fmt_ratio(hi, sizeof hi, r->ratio_hi);
        fprintf(f, "  %s needs %s [%s, %s] the parameters of %s for the same score "
                "(geometric mean over %d matched size%s)\n\n", r->b_label, a, lo, hi,
                r->a_label, r->n_matched, r->n_matched == 1 ? "" : "s");
    } else {
        fprintf(f, "  no size of %s has a score inside %s's range: no ratio\n\n",
                r->b_label, r->a_label);
    }
}

static void print_csv_row(FILE *f, const compare_result *r, const char *model,
                          double bp, double bs, double ap, double alo, double ahi,
                          int censor, double ra, double rlo, double rhi)
{
    const char *txt[] = {r->task, r->variant, r->metric, r->a_label, r->b_label, model};
    for (int i = 0; i < 6; i++) {
        if (i)
            fputc(',', f);
        csv_field_file(f, txt[i]);
    }
    csv_num_file(f, bp, 10);
    csv_num_file(f, bs, 10);
    csv_num_file(f, ap, 10);
    csv_num_file(f, alo, 10);
    csv_num_file(f, ahi, 10);
    fprintf(f, ",%d", censor);
    csv_num_file(f, ra, 10);
    csv_num_file(f, rlo, 10);
    csv_num_file(f, rhi, 10);
    fputc('\n', f);
}

int compare_print(FILE *f, const compare_result *r, int n, scaling_format fmt,
                  em_err *err)
{
    if (fmt == SCALING_CSV)
        fputs("task,variant,metric,a,b,b_model,b_params,b_score,a_params,a_lo,a_hi,"
              "censor,ratio,ratio_lo,ratio_hi\n", f);
    for (int i = 0; i < n; i++) {
        if (fmt != SCALING_CSV) {
            print_table(f, &r[i]);
            continue;
        }
        for (int j = 0; j < r[i].n; j++) {
            const compare_match *m = &r[i].m[j];
            print_csv_row(f, &r[i], m->model, m->b_params, m->b_score, m->a_params,
                          m->a_lo, m->a_hi, m->censor, m->ratio, m->ratio_lo,
                          m->ratio_hi);
        }
        /* The summary row: model "*" (geometric mean over matched sizes). */
        print_csv_row(f, &r[i], "*", NAN, NAN, NAN, NAN, NAN, 0, r[i].ratio,
                      r[i].ratio_lo, r[i].ratio_hi);
    }
    if (ferror(f))
        return em_errorf(err, "write error");
    return 0;
}

int compare_read_csv(const char *path, compare_group **out, int *n, em_err *err)
{
    scaling_series *s;
    char **fam;
    *out = NULL;
    *n = 0;
    if (scaling_read_csv_families(path, &s, &fam, n, err) != 0)
        return -1;
    if (*n)
        *out = em_calloc((size_t)*n, sizeof **out);
    for (int i = 0; i < *n; i++) {
        (*out)[i].s = s[i];
        (*out)[i].family = fam[i];
    }
    free(s);
    free(fam);
    return 0;
}

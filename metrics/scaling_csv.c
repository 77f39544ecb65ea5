/*
 * scaling_csv.c - scores by model size from a CSV file (`emerge scaling
 * --scores`), for results that did not come from emerge's store.
 *
 * Owns: scaling_read_csv and scaling_read_csv_families (for comparing
 * families, compare_read_csv). The first row names the columns, in any
 * order:
 *   required  task, model, params, score
 *   optional  lo, hi (together: the score's CI), variant, metric,
 *             flops (or tokens, giving flops = 6*params*tokens), n,
 *             baseline, baseline_hi (random baseline and its upper CI),
 *             low, high (normalisation range of the score)
 * and, for scaling_read_csv_families, family. Fields follow RFC 4180
 * (base/csv.c). Rows are grouped into one series per (task, variant,
 * metric[, family]) in order of first appearance; series-wide values
 * (baseline, low, high) come from the first row that gives them. Every error names file:line:column and field.
 *
 * Also scaling_read_scores: several --scores files, each a CSV as above
 * or an lm-evaluation-harness results JSON (metrics/lmeval_json.c), told
 * apart by content (a leading '{'), merged into one set of series.
 */
#include "metrics/scaling.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/csv.h"
#include "metrics/lmeval.h"

enum {
    COL_TASK, COL_MODEL, COL_PARAMS, COL_SCORE, COL_LO, COL_HI, COL_VARIANT,
    COL_METRIC, COL_FLOPS, COL_TOKENS, COL_N, COL_BASELINE, COL_BASELINE_HI,
    COL_LOW, COL_HIGH, COL_FAMILY, N_COLS
};

static const char *col_names[N_COLS] = {
    "task", "model", "params", "score", "lo", "hi", "variant", "metric",
    "flops", "tokens", "n", "baseline", "baseline_hi", "low", "high", "family",
};

/* Field text without surrounding spaces (in place). */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Where each COL_* is in the header (-1: absent); an unknown column is an
 * error, so typos are caught. family is known only when families is set. */
static int read_header(csv_row *h, const char *path, int families, int *where,
                       em_err *err)
{
    int known = families ? N_COLS : COL_FAMILY;
    for (int c = 0; c < N_COLS; c++)
        where[c] = -1;
    for (int i = 0; i < h->n; i++) {
        char *name = trim(h->f[i]);
        int c = 0;
        while (c < known && strcmp(col_names[c], name))
            c++;
        if (c == known)
            return em_errorf(err, "%s:%d:%d: unknown column '%s' (known: task, "
                             "model, params, score, lo, hi, variant, metric, "
                             "flops, tokens, n, baseline, baseline_hi, low, "
                             "high%s)", path, h->line, h->col[i], name,
                             families ? ", family" : "");
        if (where[c] >= 0)
            return em_errorf(err, "%s:%d:%d: column '%s' appears twice", path,
                             h->line, h->col[i], name);
        where[c] = i;
    }
    for (int c = COL_TASK; c <= COL_SCORE; c++)
        if (where[c] < 0)
            return em_errorf(err, "%s:%d: missing column '%s' (the header must "
                             "name task, model, params and score)", path,
                             h->line, col_names[c]);
    if ((where[COL_LO] < 0) != (where[COL_HI] < 0))
        return em_errorf(err, "%s:%d: columns 'lo' and 'hi' go together",
                         path, h->line);
    return 0;
}

typedef struct row_ctx {
    const char *path;
    const csv_row *r;
    const int *where;
} row_ctx;

/* The text of column c in the row ("" when the file has no such column). */
static const char *field(const row_ctx *x, int c)
{
    return x->where[c] < 0 ? "" : trim(x->r->f[x->where[c]]);
}

static int field_col(const row_ctx *x, int c)
{
    return x->where[c] < 0 ? 1 : x->r->col[x->where[c]];
}

/* A finite number; empty gives NAN unless required. */
static int field_num(const row_ctx *x, int c, int required, double *out,
                     em_err *err)
{
    const char *s = field(x, c);
    *out = NAN;
    if (!*s) {
        if (required)
            return em_errorf(err, "%s:%d:%d: field '%s' is empty", x->path,
                             x->r->line, field_col(x, c), col_names[c]);
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v))
        return em_errorf(err, "%s:%d:%d: field '%s': '%s' is not a finite "
                         "number", x->path, x->r->line, field_col(x, c),
                         col_names[c], s);
    *out = v;
    return 0;
}

static int field_text(const row_ctx *x, int c, int required, em_err *err)
{
    if (required && !*field(x, c))
        return em_errorf(err, "%s:%d:%d: field '%s' is empty", x->path,
                         x->r->line, field_col(x, c), col_names[c]);
    return 0;
}

/* The series read so far, with what the reader keeps beside each. */
typedef struct series_extra {
    int cap;                     /* capacity of pts */
    int has_low, has_high, has_base, has_base_hi;
    char *family;                /* the family column's value, or NULL */
} series_extra;

typedef struct series_set {
    scaling_series *v;
    series_extra *ex;
    int n, cap;
} series_set;

/* The series for the row's (task, variant, metric, family), added when
 * new. */
static int series_for(series_set *set, const row_ctx *x)
{
    const char *task = field(x, COL_TASK), *variant = field(x, COL_VARIANT),
               *metric = field(x, COL_METRIC), *family = field(x, COL_FAMILY);
    for (int i = 0; i < set->n; i++) {
        const scaling_series *s = &set->v[i];
        const char *f = set->ex[i].family;
        if (!strcmp(s->task, task) && !strcmp(s->variant, variant) &&
            !strcmp(s->metric, metric) && !strcmp(f ? f : "", family))
            return i;
    }
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 8;
        set->v = em_realloc(set->v, sizeof *set->v * (size_t)set->cap);
        set->ex = em_realloc(set->ex, sizeof *set->ex * (size_t)set->cap);
    }
    scaling_series *s = &set->v[set->n];
    memset(s, 0, sizeof *s);
    memset(&set->ex[set->n], 0, sizeof *set->ex);
    s->task = em_strdup(task);
    s->variant = em_strdup(variant);
    s->metric = em_strdup(metric);
    s->random_baseline = s->random_hi = NAN;
    if (x->where[COL_FAMILY] >= 0)
        set->ex[set->n].family = em_strdup(family);
    return set->n++;
}

/* Series-wide values: the first row that gives one sets it. */
static void set_once(double *dst, double v, int *given)
{
    if (!*given && !isnan(v)) {
        *dst = v;
        *given = 1;
    }
}

/* The row's numbers, checked. */
typedef struct row_nums {
    double params, score, lo, hi, flops, tokens, cnt, base, base_hi, low, high;
} row_nums;

static int read_nums(const row_ctx *x, row_nums *v, em_err *err)
{
    if (field_text(x, COL_TASK, 1, err) || field_text(x, COL_MODEL, 1, err) ||
        field_num(x, COL_PARAMS, 1, &v->params, err) ||
        field_num(x, COL_SCORE, 1, &v->score, err) ||
        field_num(x, COL_LO, 0, &v->lo, err) || field_num(x, COL_HI, 0, &v->hi, err) ||
        field_num(x, COL_FLOPS, 0, &v->flops, err) ||
        field_num(x, COL_TOKENS, 0, &v->tokens, err) ||
        field_num(x, COL_N, 0, &v->cnt, err) ||
        field_num(x, COL_BASELINE, 0, &v->base, err) ||
        field_num(x, COL_BASELINE_HI, 0, &v->base_hi, err) ||
        field_num(x, COL_LOW, 0, &v->low, err) ||
        field_num(x, COL_HIGH, 0, &v->high, err))
        return -1;
    if (v->params <= 0)
        return em_errorf(err, "%s:%d:%d: field 'params': %g is not a positive "
                         "parameter count", x->path, x->r->line,
                         field_col(x, COL_PARAMS), v->params);
    if (isnan(v->lo) != isnan(v->hi) || (!isnan(v->lo) && v->lo > v->hi))
        return em_errorf(err, "%s:%d:%d: fields 'lo'/'hi': need both, with "
                         "lo <= hi", x->path, x->r->line, field_col(x, COL_LO));
    return 0;
}

static int add_row(const row_ctx *x, series_set *set, em_err *err)
{
    row_nums v;
    if (read_nums(x, &v, err) != 0)
        return -1;
    int k = series_for(set, x);
    scaling_series *s = &set->v[k];
    series_extra *e = &set->ex[k];
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->pts[i].model, field(x, COL_MODEL)))
            return em_errorf(err, "%s:%d:%d: field 'model': '%s' appears twice "
                             "for task '%s'", x->path, x->r->line,
                             field_col(x, COL_MODEL), s->pts[i].model, s->task);
    if (s->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        s->pts = em_realloc(s->pts, sizeof(scaling_point) * (size_t)e->cap);
    }
    scaling_point *p = &s->pts[s->n++];
    p->model = em_strdup(field(x, COL_MODEL));
    p->params = v.params;
    p->flops = !isnan(v.flops) ? v.flops
             : !isnan(v.tokens) ? 6 * v.params * v.tokens : 0;
    p->score = v.score;
    p->lo = v.lo;
    p->hi = v.hi;
    p->n = isnan(v.cnt) ? 0 : (int)v.cnt;
    p->step = 0;
    p->n_truncated = 0;
    set_once(&s->random_baseline, v.base, &e->has_base);
    set_once(&s->random_hi, v.base_hi, &e->has_base_hi);
    set_once(&s->low_score, v.low, &e->has_low);
    set_once(&s->high_score, v.high, &e->has_high);
    return 0;
}

static void sort_by_params(scaling_series *s)
{
    for (int i = 1; i < s->n; i++) {
        scaling_point p = s->pts[i];
        int j = i;
        while (j > 0 && s->pts[j - 1].params > p.params) {
            s->pts[j] = s->pts[j - 1];
            j--;
        }
        s->pts[j] = p;
    }
}

static int parse_rows(const char *path, const char *text, int families,
                      series_set *set, em_err *err)
{
    csv_row r = {0};
    int line = 1, rc, where[N_COLS];
    const char *p = text;
    rc = csv_next(&p, &line, &r, path, err);
    if (rc == 0)
        rc = em_errorf(err, "%s: empty file (expected a header row: "
                       "task,model,params,score%s)", path,
                       families ? "[,family]" : "");
    if (rc > 0)
        rc = read_header(&r, path, families, where, err) ? -1 : 1;
    int ncols = r.n, rows = 0;
    while (rc > 0 && (rc = csv_next(&p, &line, &r, path, err)) > 0) {
        if (r.n != ncols) {
            rc = em_errorf(err, "%s:%d: %d fields, but the header has %d",
                           path, r.line, r.n, ncols);
            break;
        }
        row_ctx x = {path, &r, where};
        if (add_row(&x, set, err))
            rc = -1;
        rows++;
    }
    if (rc == 0 && rows == 0)
        rc = em_errorf(err, "%s: no data rows after the header", path);
    csv_row_free(&r);
    return rc < 0 ? -1 : 0;
}

int scaling_read_csv_families(const char *path, scaling_series **out,
                              char ***families, int *n, em_err *err)
{
    char *text;
    size_t len;
    *out = NULL;
    *n = 0;
    if (families)
        *families = NULL;
    if (em_read_file(path, &text, &len, err))
        return -1;
    if (memchr(text, '\0', len)) {
        free(text);
        return em_errorf(err, "%s: binary data (NUL byte) in a CSV file", path);
    }
    series_set set = {0};
    int rc = parse_rows(path, text, families != NULL, &set, err);
    free(text);
    char **fam = families && set.n ? em_calloc((size_t)set.n, sizeof *fam) : NULL;
    for (int i = 0; i < set.n; i++) {
        if (fam && rc == 0)
            fam[i] = set.ex[i].family;
        else
            free(set.ex[i].family);
    }
    free(set.ex);
    if (rc) {
        free(fam);
        scaling_series_free(set.v, set.n);
        return -1;
    }
    for (int i = 0; i < set.n; i++)
        sort_by_params(&set.v[i]);
    *out = set.v;
    *n = set.n;
    if (families)
        *families = fam;
    return 0;
}

int scaling_read_csv(const char *path, scaling_series **out, int *n,
                     em_err *err)
{
    return scaling_read_csv_families(path, out, NULL, n, err);
}

/* ------------------------------------------- several files, lm-eval too */

/* Adds one file's series to *all: a series of the same (task, variant,
 * metric) takes the file's points; a model twice in a series is an
 * error naming the file. Takes s (freed here). */
static int merge_series(scaling_series **all, int *n_all, scaling_series *s,
                        int n, const char *path, em_err *err)
{
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        int k = 0;
        while (k < *n_all && (strcmp((*all)[k].task, s[i].task) ||
                              strcmp((*all)[k].variant, s[i].variant) ||
                              strcmp((*all)[k].metric, s[i].metric)))
            k++;
        if (k == *n_all) {
            *all = em_realloc(*all, sizeof **all * (size_t)(*n_all + 1));
            (*all)[(*n_all)++] = s[i];
            memset(&s[i], 0, sizeof s[i]);
            continue;
        }
        scaling_series *d = &(*all)[k];
        for (int j = 0; j < s[i].n && rc == 0; j++)
            for (int q = 0; q < d->n && rc == 0; q++)
                if (!strcmp(d->pts[q].model, s[i].pts[j].model))
                    rc = em_errorf(err, "%s: model '%s' already has a score "
                                   "for task '%s' (metric '%s') in an "
                                   "earlier file", path, d->pts[q].model,
                                   d->task, d->metric);
        if (rc)
            break;
        d->pts = em_realloc(d->pts, sizeof *d->pts * (size_t)(d->n + s[i].n));
        memcpy(d->pts + d->n, s[i].pts, sizeof *d->pts * (size_t)s[i].n);
        d->n += s[i].n;
        s[i].n = 0;
        if (isnan(d->random_baseline))
            d->random_baseline = s[i].random_baseline;
        if (isnan(d->random_hi))
            d->random_hi = s[i].random_hi;
        if (d->low_score == d->high_score) {
            d->low_score = s[i].low_score;
            d->high_score = s[i].high_score;
        }
    }
    scaling_series_free(s, n);
    return rc;
}

/* One file's series: lm-eval results JSON when it starts with '{'. */
static int read_one(const char *path, const struct lmeval_opts *o,
                    scaling_series **s, int *n, em_err *err)
{
    char *text;
    size_t len;
    if (em_read_file(path, &text, &len, err))
        return -1;
    int json = lmeval_is_json(text, len);
    int rc = json ? lmeval_read(path, text, len, o, s, n, err) : 0;
    free(text);
    return json ? rc : scaling_read_csv(path, s, n, err);
}

int scaling_read_scores(const char *const *paths, int n_paths,
                        const struct lmeval_opts *o, scaling_series **out,
                        int *n, em_err *err)
{
    scaling_series *all = NULL;
    int n_all = 0;
    *out = NULL;
    *n = 0;
    for (int f = 0; f < n_paths; f++) {
        scaling_series *s;
        int k;
        if (read_one(paths[f], o, &s, &k, err) ||
            merge_series(&all, &n_all, s, k, paths[f], err)) {
            scaling_series_free(all, n_all);
            return -1;
        }
    }
    for (int i = 0; i < n_all; i++)
        sort_by_params(&all[i]);
    *out = all;
    *n = n_all;
    return 0;
}

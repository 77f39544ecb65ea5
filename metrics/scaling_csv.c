/*
 * scaling_csv.c - scores by model size from a CSV file (`emerge scaling
 * --scores`), for results that did not come from emerge's store.
 *
 * Owns: scaling_read_csv. The first row names the columns, in any order:
 *   required  task, model, params, score
 *   optional  lo, hi (together: the score's CI), variant, metric,
 *             flops (or tokens, giving flops = 6*params*tokens), n,
 *             baseline, baseline_hi (random baseline and its upper CI),
 *             low, high (normalisation range of the score)
 * Fields may be double-quoted ("" inside quotes is a quote). Rows are
 * grouped into one series per (task, variant, metric) in order of first
 * appearance; series-wide values (baseline, low, high) come from the
 * first row that gives them. Every error names file:line:column and field.
 */
#include "metrics/scaling.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
    COL_TASK, COL_MODEL, COL_PARAMS, COL_SCORE, COL_LO, COL_HI, COL_VARIANT,
    COL_METRIC, COL_FLOPS, COL_TOKENS, COL_N, COL_BASELINE, COL_BASELINE_HI,
    COL_LOW, COL_HIGH, N_COLS
};

static const char *col_names[N_COLS] = {
    "task", "model", "params", "score", "lo", "hi", "variant", "metric",
    "flops", "tokens", "n", "baseline", "baseline_hi", "low", "high",
};

typedef struct csv_row {
    char **f;   /* field texts, owned */
    int *col;   /* 1-based column of each field's first character */
    int n, cap;
    int line;   /* line where the row starts */
} csv_row;

static void row_clear(csv_row *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->f[i]);
    r->n = 0;
}

static void row_free(csv_row *r)
{
    row_clear(r);
    free(r->f);
    free(r->col);
}

static void row_push(csv_row *r, em_buf *b, int col)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->f = em_realloc(r->f, sizeof(char *) * (size_t)r->cap);
        r->col = em_realloc(r->col, sizeof(int) * (size_t)r->cap);
    }
    r->f[r->n] = em_buf_take(b);
    r->col[r->n++] = col;
}

/* Reads one record at *pp into r. Returns 1 for a row, 0 at the end of
 * the text, -1 on a malformed quote. Blank lines are skipped. */
static int csv_next(const char **pp, int *line, csv_row *r, const char *path,
                    em_err *err)
{
    const char *p = *pp;
    while (*p == '\n' || *p == '\r') { /* blank lines */
        if (*p == '\n')
            (*line)++;
        p++;
    }
    if (!*p) {
        *pp = p;
        return 0;
    }
    row_clear(r);
    r->line = *line;
    const char *line_start = p;
    em_buf b = {0};
    for (;;) {
        int col = (int)(p - line_start) + 1;
        em_buf_puts(&b, "");
        if (*p == '"') {
            int qline = *line;
            for (p++;; p++) {
                if (!*p) {
                    em_buf_free(&b);
                    return em_errorf(err, "%s:%d:%d: unterminated quoted "
                                          "field", path, qline, col);
                }
                if (*p == '"' && p[1] == '"') {
                    em_buf_putc(&b, '"');
                    p++;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    if (*p == '\n') {
                        (*line)++;
                        line_start = p + 1;
                    }
                    em_buf_putc(&b, *p);
                }
            }
        }
        while (*p && *p != ',' && *p != '\n' && !(*p == '\r' && p[1] == '\n'))
            em_buf_putc(&b, *p++);
        row_push(r, &b, col);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\r')
            p++;
        if (*p == '\n') {
            p++;
            (*line)++;
        }
        break;
    }
    *pp = p;
    return 1;
}

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

/* Maps header columns to COL_* ids; map[i] = -1 never happens (unknown
 * columns are an error, so typos are caught). */
static int read_header(csv_row *h, const char *path, int *map, int *where,
                       em_err *err)
{
    for (int c = 0; c < N_COLS; c++)
        where[c] = -1;
    for (int i = 0; i < h->n; i++) {
        char *name = trim(h->f[i]);
        int c = 0;
        while (c < N_COLS && strcmp(col_names[c], name))
            c++;
        if (c == N_COLS)
            return em_errorf(err, "%s:%d:%d: unknown column '%s' (known: task, "
                             "model, params, score, lo, hi, variant, metric, "
                             "flops, tokens, n, baseline, baseline_hi, low, "
                             "high)", path, h->line, h->col[i], name);
        if (where[c] >= 0)
            return em_errorf(err, "%s:%d:%d: column '%s' appears twice", path,
                             h->line, h->col[i], name);
        where[c] = i;
        map[i] = c;
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

/* The series for (task, variant, metric), added when new. */
static scaling_series *series_for(scaling_series **v, int *n, int *cap,
                                  const char *task, const char *variant,
                                  const char *metric)
{
    for (int i = 0; i < *n; i++) {
        scaling_series *s = &(*v)[i];
        if (!strcmp(s->task, task) && !strcmp(s->variant, variant) &&
            !strcmp(s->metric, metric))
            return s;
    }
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = em_realloc(*v, sizeof(scaling_series) * (size_t)*cap);
    }
    scaling_series *s = &(*v)[(*n)++];
    memset(s, 0, sizeof *s);
    s->task = em_strdup(task);
    s->variant = em_strdup(variant);
    s->metric = em_strdup(metric);
    s->random_baseline = s->random_hi = NAN;
    return s;
}

/* Series-wide values: the first row that gives one sets it. */
static void set_once(double *dst, double v, int *given)
{
    if (!*given && !isnan(v)) {
        *dst = v;
        *given = 1;
    }
}

typedef struct series_extra {
    int cap;                     /* capacity of pts */
    int has_low, has_high, has_base, has_base_hi;
} series_extra;

static int add_row(const row_ctx *x, scaling_series **v, series_extra **ex,
                   int *n, int *cap, em_err *err)
{
    double params, score, lo, hi, flops, tokens, cnt, base, base_hi, low, high;
    if (field_text(x, COL_TASK, 1, err) || field_text(x, COL_MODEL, 1, err) ||
        field_num(x, COL_PARAMS, 1, &params, err) ||
        field_num(x, COL_SCORE, 1, &score, err) ||
        field_num(x, COL_LO, 0, &lo, err) || field_num(x, COL_HI, 0, &hi, err) ||
        field_num(x, COL_FLOPS, 0, &flops, err) ||
        field_num(x, COL_TOKENS, 0, &tokens, err) ||
        field_num(x, COL_N, 0, &cnt, err) ||
        field_num(x, COL_BASELINE, 0, &base, err) ||
        field_num(x, COL_BASELINE_HI, 0, &base_hi, err) ||
        field_num(x, COL_LOW, 0, &low, err) ||
        field_num(x, COL_HIGH, 0, &high, err))
        return -1;
    if (params <= 0)
        return em_errorf(err, "%s:%d:%d: field 'params': %g is not a positive "
                         "parameter count", x->path, x->r->line,
                         field_col(x, COL_PARAMS), params);
    if (isnan(lo) != isnan(hi) || (!isnan(lo) && lo > hi))
        return em_errorf(err, "%s:%d:%d: fields 'lo'/'hi': need both, with "
                         "lo <= hi", x->path, x->r->line, field_col(x, COL_LO));
    int old_cap = *cap;
    scaling_series *s = series_for(v, n, cap, field(x, COL_TASK),
                                   field(x, COL_VARIANT), field(x, COL_METRIC));
    if (*cap != old_cap)
        *ex = em_realloc(*ex, sizeof(series_extra) * (size_t)*cap);
    series_extra *e = &(*ex)[s - *v];
    if (s->n == 0 && s->pts == NULL)
        memset(e, 0, sizeof *e);
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
    p->params = params;
    p->flops = !isnan(flops) ? flops : !isnan(tokens) ? 6 * params * tokens : 0;
    p->score = score;
    p->lo = lo;
    p->hi = hi;
    p->n = isnan(cnt) ? 0 : (int)cnt;
    p->step = 0;
    set_once(&s->random_baseline, base, &e->has_base);
    set_once(&s->random_hi, base_hi, &e->has_base_hi);
    set_once(&s->low_score, low, &e->has_low);
    set_once(&s->high_score, high, &e->has_high);
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

static int parse_rows(const char *path, const char *text, scaling_series **v,
                      int *n, em_err *err)
{
    csv_row r = {0};
    int line = 1, cap = 0, rc, *map = NULL, where[N_COLS];
    series_extra *ex = NULL;
    const char *p = text;
    rc = csv_next(&p, &line, &r, path, err);
    if (rc == 0)
        rc = em_errorf(err, "%s: empty file (expected a header row: "
                       "task,model,params,score)", path);
    if (rc > 0) {
        map = em_malloc(sizeof(int) * (size_t)r.n);
        rc = read_header(&r, path, map, where, err) ? -1 : 1;
    }
    int ncols = r.n, rows = 0;
    while (rc > 0 && (rc = csv_next(&p, &line, &r, path, err)) > 0) {
        if (r.n != ncols) {
            rc = em_errorf(err, "%s:%d: %d fields, but the header has %d",
                           path, r.line, r.n, ncols);
            break;
        }
        row_ctx x = {path, &r, where};
        if (add_row(&x, v, &ex, n, &cap, err))
            rc = -1;
        rows++;
    }
    if (rc == 0 && rows == 0)
        rc = em_errorf(err, "%s: no data rows after the header", path);
    free(ex);
    free(map);
    row_free(&r);
    return rc < 0 ? -1 : 0;
}

int scaling_read_csv(const char *path, scaling_series **out, int *n,
                     em_err *err)
{
    char *text;
    size_t len;
    *out = NULL;
    *n = 0;
    if (em_read_file(path, &text, &len, err))
        return -1;
    if (memchr(text, '\0', len)) {
        free(text);
        return em_errorf(err, "%s: binary data (NUL byte) in a CSV file", path);
    }
    scaling_series *v = NULL;
    int nv = 0;
    int rc = parse_rows(path, text, &v, &nv, err);
    free(text);
    if (rc) {
        scaling_series_free(v, nv);
        return -1;
    }
    for (int i = 0; i < nv; i++)
        sort_by_params(&v[i]);
    *out = v;
    *n = nv;
    return 0;
}

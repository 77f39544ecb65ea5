/*
 * compare_csv.c - compare_read_csv: the scores CSV of `emerge scaling
 * --scores` plus a `family` column, for comparing families whose results
 * did not come from one emerge store.
 *
 * The columns are those of metrics/scaling_csv.c (task, model, params,
 * score required; lo and hi together) and `family`; rows are grouped per
 * (task, variant, metric, family) in order of first appearance. Fields may
 * be double-quoted ("" inside quotes is a quote). Errors name
 * file:line:column and the field.
 */
#include "metrics/compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { C_TASK, C_MODEL, C_PARAMS, C_SCORE, C_LO, C_HI, C_VARIANT, C_METRIC,
       C_FAMILY, C_LOW, C_HIGH, C_FLOPS, C_TOKENS, C_N, C_BASE, C_BASE_HI, N_C };
static const char *const names[N_C] = {
    "task", "model", "params", "score", "lo", "hi", "variant", "metric",
    "family", "low", "high", "flops", "tokens", "n", "baseline", "baseline_hi"};

typedef struct row {
    char **f;
    int *col;
    int n, line;
} row;

static void row_free(row *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->f[i]);
    free(r->f);
    free(r->col);
    memset(r, 0, sizeof *r);
}

/* Reads one record at *p (advancing it and *line). 1 = a row, 0 = end. */
static int next_row(const char **p, int *line, row *r, const char *path, em_err *err)
{
    row_free(r);
    const char *s = *p;
    while (*s == '\n' || *s == '\r') /* blank lines */
        *line += *s++ == '\n';
    if (!*s) {
        *p = s;
        return 0;
    }
    r->line = *line;
    const char *ls = s; /* start of the current line, for columns */
    for (;;) {
        em_buf b = {0};
        em_buf_puts(&b, "");
        int col = (int)(s - ls) + 1;
        if (*s == '"') {
            for (s++;; s++) {
                if (!*s) {
                    em_buf_free(&b);
                    return em_errorf(err, "%s:%d:%d: unterminated quoted field", path,
                                     r->line, col);
                }
                if (*s == '"' && s[1] != '"')
                    break;
                if (*s == '"')
                    s++;
                if (*s == '\n') {
                    (*line)++;
                    ls = s + 1;
                }
                em_buf_putc(&b, *s);
            }
            s++;
        } else {
            while (*s && *s != ',' && *s != '\n' && *s != '\r')
                em_buf_putc(&b, *s++);
        }
        r->f = em_realloc(r->f, sizeof(char *) * (size_t)(r->n + 1));
        r->col = em_realloc(r->col, sizeof(int) * (size_t)(r->n + 1));
        r->col[r->n] = col;
        r->f[r->n++] = em_buf_take(&b);
        if (*s == ',') {
            s++;
            continue;
        }
        if (*s == '\r')
            s++;
        if (*s && *s != '\n')
            return em_errorf(err, "%s:%d:%d: text after a quoted field", path, *line,
                             (int)(s - ls) + 1);
        if (*s == '\n') {
            s++;
            (*line)++;
        }
        *p = s;
        return 1;
    }
}

static int read_header(const row *r, const char *path, int *where, em_err *err)
{
    for (int c = 0; c < N_C; c++)
        where[c] = -1;
    for (int i = 0; i < r->n; i++) {
        int c = 0;
        while (c < N_C && strcmp(r->f[i], names[c]))
            c++;
        if (c == N_C)
            return em_errorf(err, "%s:%d:%d: unknown column '%s' (known: task, model, "
                             "params, score, lo, hi, variant, metric, family, low, high, "
                             "flops, tokens, n, baseline, baseline_hi)", path, r->line,
                             r->col[i], r->f[i]);
        if (where[c] >= 0)
            return em_errorf(err, "%s:%d:%d: column '%s' appears twice", path, r->line,
                             r->col[i], r->f[i]);
        where[c] = i;
    }
    for (int c = 0; c <= C_SCORE; c++)
        if (where[c] < 0)
            return em_errorf(err, "%s:%d: missing column '%s' (the header must name "
                             "task, model, params and score)", path, r->line, names[c]);
    if ((where[C_LO] < 0) != (where[C_HI] < 0))
        return em_errorf(err, "%s:%d: columns 'lo' and 'hi' go together", path, r->line);
    return 0;
}

static const char *fld(const row *r, const int *where, int c)
{
    return where[c] >= 0 ? r->f[where[c]] : "";
}

/* A number field; absent or empty optional fields give NAN. */
static int num(const row *r, const int *where, int c, int required, double *out,
               const char *path, em_err *err)
{
    const char *s = fld(r, where, c);
    *out = NAN;
    if (!*s) {
        if (!required)
            return 0;
        return em_errorf(err, "%s:%d:%d: field '%s' is empty", path, r->line,
                         where[c] >= 0 ? r->col[where[c]] : 1, names[c]);
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || isnan(v))
        return em_errorf(err, "%s:%d:%d: field '%s': '%s' is not a number", path,
                         r->line, r->col[where[c]], names[c], s);
    *out = v;
    return 0;
}

static compare_group *group_for(compare_group **v, int *n, const row *r,
                                const int *where)
{
    const char *t = fld(r, where, C_TASK), *va = fld(r, where, C_VARIANT),
               *m = fld(r, where, C_METRIC), *fa = fld(r, where, C_FAMILY);
    for (int i = 0; i < *n; i++) {
        compare_group *g = &(*v)[i];
        if (!strcmp(g->s.task, t) && !strcmp(g->s.variant, va) &&
            !strcmp(g->s.metric, m) && !strcmp(g->family ? g->family : "", fa))
            return g;
    }
    *v = em_realloc(*v, sizeof **v * (size_t)(*n + 1));
    compare_group *g = &(*v)[(*n)++];
    memset(g, 0, sizeof *g);
    g->s.task = em_strdup(t);
    g->s.variant = em_strdup(va);
    g->s.metric = em_strdup(m);
    g->s.random_baseline = g->s.random_hi = NAN;
    g->family = where[C_FAMILY] >= 0 ? em_strdup(fa) : NULL;
    return g;
}

static int add_row(const row *r, const int *where, compare_group **v, int *n,
                   const char *path, em_err *err)
{
    double params, score, lo, hi, low, high, flops, tokens, dummy;
    if (!*fld(r, where, C_TASK) || !*fld(r, where, C_MODEL))
        return em_errorf(err, "%s:%d: fields 'task' and 'model' must not be empty",
                         path, r->line);
    if (num(r, where, C_PARAMS, 1, &params, path, err) ||
        num(r, where, C_SCORE, 1, &score, path, err) ||
        num(r, where, C_LO, 0, &lo, path, err) || num(r, where, C_HI, 0, &hi, path, err) ||
        num(r, where, C_LOW, 0, &low, path, err) ||
        num(r, where, C_HIGH, 0, &high, path, err) ||
        num(r, where, C_FLOPS, 0, &flops, path, err) ||
        num(r, where, C_TOKENS, 0, &tokens, path, err) ||
        num(r, where, C_N, 0, &dummy, path, err) ||
        num(r, where, C_BASE, 0, &dummy, path, err) ||
        num(r, where, C_BASE_HI, 0, &dummy, path, err))
        return -1;
    if (params <= 0)
        return em_errorf(err, "%s:%d:%d: field 'params': %g is not a positive "
                         "parameter count", path, r->line, r->col[where[C_PARAMS]], params);
    if (isnan(lo) != isnan(hi) || (!isnan(lo) && lo > hi))
        return em_errorf(err, "%s:%d: fields 'lo'/'hi': need both, with lo <= hi",
                         path, r->line);
    compare_group *g = group_for(v, n, r, where);
    if (g->s.n == 0) {
        g->s.low_score = isnan(low) ? 0 : low;
        g->s.high_score = isnan(high) ? 0 : high;
    }
    for (int i = 0; i < g->s.n; i++)
        if (!strcmp(g->s.pts[i].model, fld(r, where, C_MODEL)))
            return em_errorf(err, "%s:%d:%d: field 'model': '%s' appears twice for "
                             "task '%s'", path, r->line, r->col[where[C_MODEL]],
                             g->s.pts[i].model, g->s.task);
    g->s.pts = em_realloc(g->s.pts, sizeof *g->s.pts * (size_t)(g->s.n + 1));
    scaling_point *p = &g->s.pts[g->s.n++];
    memset(p, 0, sizeof *p);
    p->model = em_strdup(fld(r, where, C_MODEL));
    p->params = params;
    p->flops = !isnan(flops) ? flops : !isnan(tokens) ? 6 * params * tokens : 0;
    p->score = score;
    p->lo = lo;
    p->hi = hi;
    return 0;
}

int compare_read_csv(const char *path, compare_group **out, int *n, em_err *err)
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
    const char *p = text;
    int line = 1, where[N_C], rows = 0, rc;
    row r = {0};
    rc = next_row(&p, &line, &r, path, err);
    if (rc == 0)
        rc = em_errorf(err, "%s: empty file (expected a header row: "
                       "task,model,params,score[,family])", path);
    if (rc > 0)
        rc = read_header(&r, path, where, err) ? -1 : 1;
    int ncols = r.n;
    while (rc > 0 && (rc = next_row(&p, &line, &r, path, err)) > 0) {
        if (r.n != ncols)
            rc = em_errorf(err, "%s:%d: %d fields, but the header has %d", path,
                           r.line, r.n, ncols);
        else if (add_row(&r, where, out, n, path, err))
            rc = -1;
        rows++;
    }
    if (rc == 0 && !rows)
        rc = em_errorf(err, "%s: no data rows after the header", path);
    row_free(&r);
    free(text);
    if (rc < 0) {
        compare_groups_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

/*
 * report.c - what `emerge report` shows, gathered once (see report.h).
 *
 * Why the examples are chosen by total variation of their score across
 * sizes (the sum of |score(next model) - score(model)|): for a 0/1 metric
 * that is the number of times the example flips between wrong and right
 * as models grow, so the examples shown are the ones whose fate depends
 * on scale - the interesting ones - rather than ones every model gets
 * right or wrong. Ties go to the larger net change, then to file order.
 */
#include "reports/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int report_write_file(const char *path, const em_buf *b, em_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return em_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    int bad = b->len && fwrite(b->s, 1, b->len, f) != b->len;
    bad |= fclose(f) != 0;
    return bad ? em_errorf(err, "%s: write failed", path) : 0;
}

void report_put_num(em_buf *b, double v, const report_marks *m)
{
    if (isfinite(v))
        em_buf_printf(b, "%.4g", v);
    else if (isinf(v))
        em_buf_puts(b, v > 0 ? m->inf : m->neg_inf);
    else
        em_buf_puts(b, m->none);
}

void report_put_scale(em_buf *b, double v, const report_marks *m)
{
    char s[32];
    report_fmt_scale(s, sizeof s, v);
    em_buf_puts(b, v > 0 ? s : m->none);
}

int report_series(const report_data *d, const char *task, const char *variant)
{
    for (int t = 0; t < d->n_tasks; t++) {
        if (strcmp(d->tasks[t].name, task) || !d->tasks[t].preferred)
            continue;
        for (int i = 0; i < d->n_series; i++)
            if (!strcmp(d->series[i].task, task) &&
                !strcmp(d->series[i].variant, variant) &&
                !strcmp(d->series[i].metric, d->tasks[t].preferred))
                return i;
    }
    return -1;
}

/* ---- figures ---------------------------------------------------------------- */

/* Copies svg with every id and reference to one ("id='x'", "href='#x'",
 * "url(#x)") prefixed by "f<k>-": each gnuplot SVG defines the same ids
 * (gpPt0, gnuplot_plot_1, ...), and several inline in one page would
 * otherwise collide. */
static char *prefix_ids(const char *svg, int k)
{
    static const char *const pats[] = {"id='", "id=\"", "href='#", "href=\"#",
                                       "url(#"};
    em_buf b = {0};
    for (const char *p = svg; *p;) {
        size_t n = 0;
        for (size_t i = 0; i < sizeof pats / sizeof *pats && !n; i++)
            if (!strncmp(p, pats[i], strlen(pats[i])))
                n = strlen(pats[i]);
        if (n) {
            em_buf_put(&b, p, n);
            em_buf_printf(&b, "f%d-", k);
            p += n;
        } else {
            em_buf_putc(&b, *p++);
        }
    }
    return em_buf_take(&b);
}

/* The <svg ...>...</svg> part of a gnuplot SVG file with its ids made
 * unique to figure k, or NULL. */
static char *inline_svg(const char *path, int k)
{
    char *text = NULL;
    em_err err;
    if (em_read_file(path, &text, NULL, &err) != 0)
        return NULL;
    char *start = strstr(text, "<svg");
    char *svg = start ? prefix_ids(start, k) : NULL;
    free(text);
    return svg;
}

static int build_figures(report_ctx *c, const char *dir, em_err *err)
{
    report_figures(c->d, &c->figs, &c->n_figs);
    c->svg = em_calloc((size_t)c->n_figs + 1, sizeof *c->svg);
    em_buf fdir = {0};
    em_buf_printf(&fdir, "%s/figures", dir);
    int have = report_gnuplot_check(NULL) == 0;
    int rc = report_plot_write(c->figs, c->n_figs, fdir.s, have, have, err);
    if (rc == 0 && !have)
        c->figures_note = em_strdup("Figures need gnuplot, which is not installed "
                                    "(apt-get install gnuplot-nox); their data "
                                    "is in figures/*.csv.");
    for (int i = 0; rc == 0 && have && i < c->n_figs; i++) {
        em_buf p = {0};
        em_buf_printf(&p, "%s/%s.svg", fdir.s, c->figs[i].name);
        c->svg[i] = inline_svg(p.s, i);
        em_buf_free(&p);
    }
    em_buf_free(&fdir);
    return rc;
}

/* ---- examples ----------------------------------------------------------------- */

typedef struct ex_score {
    const char *id;
    int order;
    double variation, net;
} ex_score;

static int ex_cmp(const void *pa, const void *pb)
{
    const ex_score *a = pa, *b = pb;
    if (a->variation != b->variation)
        return a->variation > b->variation ? -1 : 1;
    if (fabs(a->net) != fabs(b->net))
        return fabs(a->net) > fabs(b->net) ? -1 : 1;
    return a->order - b->order;
}

/* Scores every example of the cells [lo, hi) (one task and variant, by
 * size) by total variation; returns them sorted, best first. */
static ex_score *score_examples(const sq_cell *cells, int lo, int hi, int *n)
{
    const sq_cell *first = &cells[lo];
    ex_score *e = em_calloc((size_t)first->n + 1, sizeof *e);
    for (int j = 0; j < first->n; j++) {
        e[j].id = first->ids[j];
        e[j].order = j;
        double prev = first->v[j], v0 = prev;
        for (int k = lo + 1; k < hi; k++) {
            int x = sq_cell_find(&cells[k], first->ids[j]);
            if (x < 0)
                continue;
            e[j].variation += fabs(cells[k].v[x] - prev);
            prev = cells[k].v[x];
        }
        e[j].net = prev - v0;
    }
    qsort(e, (size_t)first->n, sizeof *e, ex_cmp);
    *n = first->n;
    return e;
}

static int add_example(report_ctx *c, store_query *q, const sq_cell *cell,
                       const ex_score *s, em_err *err)
{
    c->ex = em_realloc(c->ex, sizeof *c->ex * (size_t)(c->n_ex + 1));
    report_example *x = &c->ex[c->n_ex++];
    memset(x, 0, sizeof *x);
    x->task = em_strdup(cell->task);
    x->variant = em_strdup(cell->variant);
    x->id = em_strdup(s->id);
    x->changes = (int)lround(s->variation);
    if (store_query_example(q, x->task, x->id, &x->input, &x->targets, err) != 0)
        return -1;
    return store_query_outputs(q, x->task, x->variant, x->id, &x->outs,
                               &x->n_outs, err);
}

static int pick_examples(report_ctx *c, int per_task, em_err *err)
{
    store_query *q;
    if (store_query_open(c->d->db_path, &q, err) != 0)
        return -1;
    sq_cell *cells = NULL;
    int n = 0, rc = store_query_select_versions(q, c->d->task_version, err);
    if (rc == 0)
        rc = store_query_cells(q, &cells, &n, err);
    for (int t = 0; rc == 0 && t < c->d->n_tasks; t++) {
        int m = c->d->main_series[t];
        if (m < 0)
            continue;
        const char *task = c->d->tasks[t].name, *var = c->d->series[m].variant;
        int lo = 0;
        while (lo < n && (strcmp(cells[lo].task, task) || strcmp(cells[lo].variant, var)))
            lo++;
        int hi = lo;
        while (hi < n && !strcmp(cells[hi].task, task) && !strcmp(cells[hi].variant, var))
            hi++;
        if (lo == hi)
            continue;
        int ne;
        ex_score *e = score_examples(cells, lo, hi, &ne);
        for (int k = 0; rc == 0 && k < ne && k < per_task; k++)
            rc = add_example(c, q, &cells[lo], &e[k], err);
        free(e);
    }
    store_query_cells_free(cells, n);
    store_query_close(q);
    return rc;
}

int report_build(const report_data *d, const char *dir, int per_task,
                 report_ctx *c, em_err *err)
{
    memset(c, 0, sizeof *c);
    c->d = d;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    c->generated = em_strdup(when);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return em_errorf(err, "%s: cannot create directory: %s", dir,
                         strerror(errno));
    if (build_figures(c, dir, err) != 0 || pick_examples(c, per_task, err) != 0) {
        report_ctx_free(c);
        return -1;
    }
    return 0;
}

void report_ctx_free(report_ctx *c)
{
    for (int i = 0; i < c->n_figs; i++) {
        report_fig_free(&c->figs[i]);
        free(c->svg[i]);
    }
    free(c->figs);
    free(c->svg);
    for (int i = 0; i < c->n_ex; i++) {
        report_example *x = &c->ex[i];
        free(x->task);
        free(x->variant);
        free(x->id);
        free(x->input);
        free(x->targets);
        store_query_outputs_free(x->outs, x->n_outs);
    }
    free(c->ex);
    free(c->figures_note);
    free(c->generated);
    memset(c, 0, sizeof *c);
}

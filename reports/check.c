/*
 * check.c - paired-bootstrap regression check of two results databases
 * (see check.h for the verdict).
 *
 * Why paired over the shared example ids: two runs of the same suite
 * score the same examples, and most of the variance of a mean accuracy is
 * which examples are hard, not the model change. Resampling the
 * per-example differences removes that shared part, so a real drop of a
 * few points is significant while two runs that differ by a handful of
 * flipped examples in a large set are not.
 */
#include "reports/check.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metric.h"
#include "reports/escape.h"

void report_check_defaults(report_check_opts *o)
{
    o->tolerance = 0;
    o->level = 0.95;
    o->n_boot = 2000;
}

/* Order of cells in both lists (store_query_cells sorts them so). */
static int cell_cmp(const sq_cell *a, const sq_cell *b)
{
    int d = strcmp(a->task, b->task);
    if (!d)
        d = strcmp(a->variant, b->variant);
    if (!d)
        d = strcmp(a->model, b->model);
    return d;
}

static uint64_t cell_seed(const sq_cell *c)
{
    uint64_t h = em_hash64(c->task, strlen(c->task), 17);
    h = em_hash64(c->variant, strlen(c->variant), h);
    return em_hash64(c->model, strlen(c->model), h);
}

/* Compares the shared examples of one matched cell into r. */
static void compare_cell(const sq_cell *b, const sq_cell *c,
                         const report_check_opts *o, report_check_row *r)
{
    memset(r, 0, sizeof *r);
    r->task = em_strdup(c->task);
    r->variant = em_strdup(c->variant);
    r->model = em_strdup(c->model);
    r->metric = em_strdup(c->metric);
    r->params = c->params;
    r->higher_better = metric_higher_is_better(c->metric) != 0;
    double *d = em_malloc(sizeof *d * (size_t)(c->n + 1));
    double sb = 0, sc = 0;
    for (int i = 0; i < c->n; i++) {
        int j = sq_cell_find(b, c->ids[i]);
        if (j < 0)
            continue;
        d[r->n++] = c->v[i] - b->v[j];
        sb += b->v[j];
        sc += c->v[i];
    }
    r->lo = r->hi = r->diff = NAN;
    if (r->n) {
        metric_summary s;
        metric_bootstrap(d, r->n, o->n_boot, o->level, cell_seed(c), &s);
        r->base = sb / r->n;
        r->cur = sc / r->n;
        r->diff = s.mean;
        r->lo = s.lo;
        r->hi = s.hi;
        if (r->higher_better)
            r->regression = r->hi < 0 && -r->diff > o->tolerance;
        else
            r->regression = r->lo > 0 && r->diff > o->tolerance;
    }
    free(d);
}

/* Merges two sorted cell lists; fills the rows of matched cells. */
static void merge(const sq_cell *bc, int nb, const sq_cell *cc, int nc,
                  const report_check_opts *o, report_check *out)
{
    int i = 0, j = 0;
    out->rows = em_calloc((size_t)(nb < nc ? nb : nc) + 1, sizeof *out->rows);
    while (i < nb || j < nc) {
        int d = i == nb ? 1 : j == nc ? -1 : cell_cmp(&bc[i], &cc[j]);
        if (d < 0) {
            out->only_base++;
            i++;
        } else if (d > 0) {
            out->only_new++;
            j++;
        } else {
            report_check_row *r = &out->rows[out->n++];
            compare_cell(&bc[i++], &cc[j++], o, r);
            out->n_regressions += r->regression;
        }
    }
}

/* store_query_cells sorts by params before model name; the merge needs
 * one total order, so both lists are re-sorted by name first. */
static int cell_qsort(const void *a, const void *b) { return cell_cmp(a, b); }

static int row_qsort(const void *pa, const void *pb)
{
    const report_check_row *a = pa, *b = pb;
    int d = strcmp(a->task, b->task);
    if (!d)
        d = strcmp(a->variant, b->variant);
    if (!d)
        d = (a->params > b->params) - (a->params < b->params);
    if (!d)
        d = strcmp(a->model, b->model);
    return d;
}

int report_check_run(store_query *base, store_query *cur,
                     const report_check_opts *o, report_check *out,
                     em_err *err)
{
    memset(out, 0, sizeof *out);
    sq_cell *bc = NULL, *cc = NULL;
    int nb = 0, nc = 0;
    if (store_query_cells(base, &bc, &nb, err) != 0)
        return -1;
    if (store_query_cells(cur, &cc, &nc, err) != 0) {
        store_query_cells_free(bc, nb);
        return -1;
    }
    if (nb > 1)
        qsort(bc, (size_t)nb, sizeof *bc, cell_qsort);
    if (nc > 1)
        qsort(cc, (size_t)nc, sizeof *cc, cell_qsort);
    merge(bc, nb, cc, nc, o, out);
    store_query_cells_free(bc, nb);
    store_query_cells_free(cc, nc);
    out->base_path = em_strdup(store_query_path(base));
    out->new_path = em_strdup(store_query_path(cur));
    if (out->n == 0) {
        em_errorf(err, "%s and %s share no (task, variant, model) with scores "
                  "(%d cells only in the baseline, %d only in the new one)",
                  out->base_path, out->new_path, out->only_base, out->only_new);
        report_check_free(out);
        return -1;
    }
    if (out->n > 1)
        qsort(out->rows, (size_t)out->n, sizeof *out->rows, row_qsort);
    return 0;
}

void report_check_free(report_check *c)
{
    for (int i = 0; i < c->n; i++) {
        free(c->rows[i].task);
        free(c->rows[i].variant);
        free(c->rows[i].model);
        free(c->rows[i].metric);
    }
    free(c->rows);
    free(c->base_path);
    free(c->new_path);
    memset(c, 0, sizeof *c);
}

/* ---- table and Markdown ---------------------------------------------------- */

void report_check_print(FILE *f, const report_check *c, const report_check_opts *o)
{
    fprintf(f, "%-22s %-14s %-16s %-22s %5s %9s %9s %9s  %-21s %s\n", "task",
            "variant", "model", "metric", "n", "base", "new", "delta",
            "CI", "verdict");
    for (int i = 0; i < c->n; i++) {
        const report_check_row *r = &c->rows[i];
        if (!r->n) {
            fprintf(f, "%-22s %-14s %-16s %-22s %5d %9s %9s %9s  %-21s %s\n",
                    r->task, r->variant, r->model, r->metric, 0, "-", "-", "-",
                    "-", "no shared examples");
            continue;
        }
        char ci[64];
        snprintf(ci, sizeof ci, "[%+.4f, %+.4f]", r->lo, r->hi);
        fprintf(f, "%-22s %-14s %-16s %-22s %5d %9.4f %9.4f %+9.4f  %-21s %s\n",
                r->task, r->variant, r->model, r->metric, r->n, r->base, r->cur,
                r->diff, ci, r->regression ? "REGRESSION" : "ok");
    }
    fprintf(f, "%d compared, %d regression%s (paired bootstrap, %g%% level, "
            "tolerance %g)", c->n, c->n_regressions,
            c->n_regressions == 1 ? "" : "s", o->level * 100, o->tolerance);
    if (c->only_base || c->only_new)
        fprintf(f, "; not compared: %d only in the baseline, %d only in the new "
                "database", c->only_base, c->only_new);
    fputc('\n', f);
}

static int write_file(const char *path, const em_buf *b, em_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return em_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    size_t w = b->len ? fwrite(b->s, 1, b->len, f) : 0;
    int bad = w != b->len;
    if (fclose(f) != 0 || bad)
        return em_errorf(err, "%s: write failed", path);
    return 0;
}

int report_check_markdown(const char *path, const report_check *c,
                          const report_check_opts *o, em_err *err)
{
    em_buf b = {0};
    em_buf_printf(&b, "## emerge check: %s\n\n",
                  c->n_regressions ? "regressions found" : "no regressions");
    em_buf_puts(&b, "Baseline `");
    report_md_escape(&b, c->base_path, 200);
    em_buf_puts(&b, "`, new `");
    report_md_escape(&b, c->new_path, 200);
    em_buf_printf(&b, "`: %d compared, %d regression%s (paired bootstrap over "
                  "shared examples, %g%% level, tolerance %g).\n\n", c->n,
                  c->n_regressions, c->n_regressions == 1 ? "" : "s",
                  o->level * 100, o->tolerance);
    em_buf_puts(&b, "| task | variant | model | metric | n | base | new | delta "
                "| CI | verdict |\n|---|---|---|---|---:|---:|---:|---:|---|---|\n");
    for (int i = 0; i < c->n; i++) {
        const report_check_row *r = &c->rows[i];
        em_buf_puts(&b, "| ");
        report_md_escape(&b, r->task, 80);
        em_buf_puts(&b, " | ");
        report_md_escape(&b, r->variant, 40);
        em_buf_puts(&b, " | ");
        report_md_escape(&b, r->model, 80);
        em_buf_puts(&b, " | ");
        report_md_escape(&b, r->metric, 40);
        if (!r->n)
            em_buf_puts(&b, " | 0 | - | - | - | - | no shared examples |\n");
        else
            em_buf_printf(&b, " | %d | %.4f | %.4f | %+.4f | [%+.4f, %+.4f] | %s |\n",
                          r->n, r->base, r->cur, r->diff, r->lo, r->hi,
                          r->regression ? "**regression**" : "ok");
    }
    if (c->only_base || c->only_new)
        em_buf_printf(&b, "\nNot compared: %d cells only in the baseline, %d only "
                      "in the new database.\n", c->only_base, c->only_new);
    int rc = write_file(path, &b, err);
    em_buf_free(&b);
    return rc;
}

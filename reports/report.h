/*
 * report.h - `emerge report`: a self-contained index.html and a report.md
 * describing one results database.
 *
 * Owns: gathering what both documents show (report_ctx: the data, the
 * figures and their inline SVG, the examples chosen to show "the same
 * example across scales") and writing them. report_html.c and
 * report_md.c only format a report_ctx; neither touches the database.
 */
#ifndef EMERGE_REPORT_REPORT_H
#define EMERGE_REPORT_REPORT_H

#include "metrics/store_query.h"
#include "reports/figures.h"
#include "reports/plot.h"

/* One example shown across every model of the family. */
typedef struct report_example {
    char *task, *variant, *id;
    char *input, *targets;     /* targets: the JSON array as stored */
    int changes;               /* correctness flips between adjacent sizes */
    sq_output *outs;           /* by model size */
    int n_outs;
} report_example;

typedef struct report_ctx {
    const report_data *d;
    report_fig *figs;
    int n_figs;
    char **svg;                /* per figure: inline <svg>...</svg>, or NULL */
    char *figures_note;        /* why figures are missing, or NULL */
    report_example *ex;
    int n_ex;
    char *generated;           /* UTC time, ISO 8601 */
} report_ctx;

/* Builds figures into DIR/figures (PNG+SVG+CSV when gnuplot is present;
 * CSV only and a note otherwise) and picks up to per_task examples per
 * task: those whose correctness changes most often across sizes. */
int report_build(const report_data *d, const char *dir, int per_task,
                 report_ctx *c, em_err *err);
void report_ctx_free(report_ctx *c);

/* The preferred-metric series of task t and variant v, or -1. */
int report_series(const report_data *d, const char *task, const char *variant);

int report_html_write(const report_ctx *c, const char *path, em_err *err);
int report_md_write(const report_ctx *c, const char *path, em_err *err);

/* Writes b to path. */
int report_write_file(const char *path, const em_buf *b, em_err *err);

/* How one format writes what a table cell cannot show as a number, so
 * that both reports print the same values the same way otherwise. */
typedef struct report_marks {
    const char *inf, *neg_inf;  /* +infinity, -infinity */
    const char *none;           /* no value: NaN, or a size that is not > 0 */
} report_marks;
/* v as %.4g, or the format's mark when it is not finite. */
void report_put_num(em_buf *b, double v, const report_marks *m);
/* A model size or compute as report_fmt_scale writes it; m->none when
 * v is not > 0 (unknown). */
void report_put_scale(em_buf *b, double v, const report_marks *m);

#endif

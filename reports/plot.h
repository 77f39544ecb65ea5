/*
 * plot.h - figures as data, their CSV, and their rendering by gnuplot.
 *
 * Owns: report_fig (a titled x-y chart of lines with optional error bars,
 * a horizontal baseline and vertical marks, or a grid of such panels),
 * writing a figure's data as CSV, writing the gnuplot script that draws it
 * (data inlined as datablocks, so the .gp file stands alone), and running
 * gnuplot through a pipe. What goes into the figures is figures.c's job.
 */
#ifndef EMERGE_REPORT_PLOT_H
#define EMERGE_REPORT_PLOT_H

#include "base/common.h"

typedef struct report_line {
    char *title;
    char **labels;          /* model name per point */
    double *x, *y, *lo, *hi;/* lo/hi NAN: no error bar at that point */
    int n, cap;
    int color;              /* palette index */
    int dashed;
    double dodge;           /* drawn x offset (decades on a log axis), so
                               lines that coincide stay visible; the CSV
                               keeps the true x */
} report_line;

typedef struct report_fig {
    char *name;             /* file stem */
    char *title, *xlabel, *ylabel;
    report_line *lines;
    int n_lines;
    double baseline;        /* dashed horizontal line; NAN: none */
    char *baseline_title;
    double *marks;          /* dashed vertical lines (emergence scales) */
    int *mark_colors;
    char **mark_titles;
    int n_marks;
    double ymin, ymax;      /* NAN: automatic */
    int xlog;               /* log-10 x axis */
    struct report_fig *panels; /* a grid of small multiples instead */
    int n_panels;
} report_fig;

/* A fresh figure (all strings copied). */
void report_fig_init(report_fig *f, const char *name, const char *title,
                     const char *xlabel, const char *ylabel);
report_line *report_fig_line(report_fig *f, const char *title, int color,
                             int dashed);
void report_line_add(report_line *l, const char *label, double x, double y,
                     double lo, double hi);
void report_fig_mark(report_fig *f, double x, int color, const char *title);
report_fig *report_fig_panel(report_fig *grid);
void report_fig_free(report_fig *f);

/* figure,panel,line,model,x,y,lo,hi - one row per point. */
void report_fig_csv(const report_fig *f, em_buf *b);
/* The gnuplot script drawing f into outpath; format "png" or "svg". */
void report_fig_script(const report_fig *f, const char *format,
                       const char *outpath, em_buf *b);

/* 0 when `gnuplot` is on PATH; else an error that says how to install it. */
int report_gnuplot_check(em_err *err);
/* Pipes script into gnuplot; fails when gnuplot exits non-zero. */
int report_gnuplot_run(const char *script, const char *what, em_err *err);

/* Writes DIR/NAME.csv, DIR/NAME.gp and DIR/NAME.png / .svg for each
 * figure (png, svg: which formats). */
int report_plot_write(const report_fig *figs, int n, const char *dir, int png,
                      int svg, em_err *err);

#endif

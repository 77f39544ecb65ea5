/*
 * plot.c - report_fig: data, CSV, gnuplot script, and running gnuplot.
 *
 * Why gnuplot through a pipe rather than a plotting library: it is one
 * Debian package, it writes both PNG (pngcairo) and SVG, and the script we
 * send it is kept next to the figure (NAME.gp, data inlined as
 * datablocks), so anyone can re-draw or restyle a figure without emerge.
 * The CSV next to each figure holds the same numbers for readers without
 * gnuplot at all.
 *
 * Every string that came from the database is written into the script as
 * a double-quoted gnuplot string (backslash and quote escaped, control
 * characters dropped) with `noenhanced`, so '_' and '^' in task names are
 * not read as sub/superscripts.
 */
#include "reports/plot.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/csv.h"
#include "reports/escape.h"

static const char *const palette[] = {"#1f77b4", "#d95f02", "#1b9e77", "#7570b3",
                                      "#e7298a", "#66a61e", "#a6761d", "#666666"};
#define N_PALETTE ((int)(sizeof palette / sizeof *palette))

static const char *color(int i)
{
    return palette[(i < 0 ? 0 : i) % N_PALETTE];
}

/* ---- building -------------------------------------------------------------- */

void report_fig_init(report_fig *f, const char *name, const char *title,
                     const char *xlabel, const char *ylabel)
{
    memset(f, 0, sizeof *f);
    f->name = em_strdup(name ? name : "");
    f->title = em_strdup(title ? title : "");
    f->xlabel = em_strdup(xlabel ? xlabel : "");
    f->ylabel = em_strdup(ylabel ? ylabel : "");
    f->baseline = NAN;
    f->ymin = f->ymax = NAN;
    f->xlog = 1;
}

report_line *report_fig_line(report_fig *f, const char *title, int color_ix,
                             int dashed)
{
    f->lines = em_realloc(f->lines, sizeof *f->lines * (size_t)(f->n_lines + 1));
    report_line *l = &f->lines[f->n_lines++];
    memset(l, 0, sizeof *l);
    l->title = em_strdup(title ? title : "");
    l->color = color_ix;
    l->dashed = dashed;
    return l;
}

void report_line_add(report_line *l, const char *label, double x, double y,
                     double lo, double hi)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        size_t c = (size_t)l->cap;
        l->labels = em_realloc(l->labels, sizeof *l->labels * c);
        l->x = em_realloc(l->x, sizeof *l->x * c);
        l->y = em_realloc(l->y, sizeof *l->y * c);
        l->lo = em_realloc(l->lo, sizeof *l->lo * c);
        l->hi = em_realloc(l->hi, sizeof *l->hi * c);
    }
    l->labels[l->n] = em_strdup(label ? label : "");
    l->x[l->n] = x;
    l->y[l->n] = y;
    l->lo[l->n] = lo;
    l->hi[l->n] = hi;
    l->n++;
}

void report_fig_mark(report_fig *f, double x, int color_ix, const char *title)
{
    size_t n = (size_t)f->n_marks + 1;
    f->marks = em_realloc(f->marks, sizeof *f->marks * n);
    f->mark_colors = em_realloc(f->mark_colors, sizeof *f->mark_colors * n);
    f->mark_titles = em_realloc(f->mark_titles, sizeof *f->mark_titles * n);
    f->marks[f->n_marks] = x;
    f->mark_colors[f->n_marks] = color_ix;
    f->mark_titles[f->n_marks] = em_strdup(title ? title : "");
    f->n_marks++;
}

report_fig *report_fig_panel(report_fig *grid)
{
    grid->panels = em_realloc(grid->panels,
                              sizeof *grid->panels * (size_t)(grid->n_panels + 1));
    return &grid->panels[grid->n_panels++];
}

static void line_free(report_line *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->labels[i]);
    free(l->labels);
    free(l->x);
    free(l->y);
    free(l->lo);
    free(l->hi);
    free(l->title);
}

void report_fig_free(report_fig *f)
{
    for (int i = 0; i < f->n_lines; i++)
        line_free(&f->lines[i]);
    free(f->lines);
    for (int i = 0; i < f->n_marks; i++)
        free(f->mark_titles[i]);
    free(f->marks);
    free(f->mark_colors);
    free(f->mark_titles);
    for (int i = 0; i < f->n_panels; i++)
        report_fig_free(&f->panels[i]);
    free(f->panels);
    free(f->name);
    free(f->title);
    free(f->xlabel);
    free(f->ylabel);
    free(f->baseline_title);
    memset(f, 0, sizeof *f);
}

/* ---- CSV ------------------------------------------------------------------- */

static void csv_fig(const report_fig *f, const char *panel, em_buf *b)
{
    for (int i = 0; i < f->n_lines; i++) {
        const report_line *l = &f->lines[i];
        for (int j = 0; j < l->n; j++) {
            csv_field(b, panel);
            em_buf_putc(b, ',');
            csv_field(b, l->title);
            em_buf_putc(b, ',');
            csv_field(b, l->labels[j]);
            csv_num(b, l->x[j], 17);
            csv_num(b, l->y[j], 17);
            csv_num(b, l->lo[j], 17);
            csv_num(b, l->hi[j], 17);
            em_buf_putc(b, '\n');
        }
    }
    if (isfinite(f->baseline)) {
        csv_field(b, panel);
        em_buf_puts(b, ",random baseline,");
        csv_num(b, NAN, 17);
        csv_num(b, f->baseline, 17);
        em_buf_puts(b, ",,\n");
    }
    for (int i = 0; i < f->n_marks; i++) {
        csv_field(b, panel);
        em_buf_putc(b, ',');
        csv_field(b, f->mark_titles[i]);
        em_buf_putc(b, ',');
        csv_num(b, f->marks[i], 17);
        em_buf_puts(b, ",,,\n");
    }
}

void report_fig_csv(const report_fig *f, em_buf *b)
{
    em_buf_puts(b, "panel,line,model,x,y,lo,hi\n");
    if (!f->n_panels)
        csv_fig(f, f->title, b);
    for (int i = 0; i < f->n_panels; i++)
        csv_fig(&f->panels[i], f->panels[i].title, b);
}

/* ---- gnuplot script -------------------------------------------------------- */

/* A double-quoted gnuplot string. */
static void gp_str(em_buf *b, const char *s)
{
    em_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '\\' || *p == '"') {
            em_buf_putc(b, '\\');
            em_buf_putc(b, (char)*p);
        } else if (*p == '\n') {
            em_buf_puts(b, "\\n");
        } else if (*p >= 0x20 && *p != 0x7F) {
            em_buf_putc(b, (char)*p);
        }
    }
    em_buf_putc(b, '"');
}

/* A point is drawn when it is finite (and positive on a log axis). */
static int drawable(const report_fig *f, const report_line *l, int j)
{
    return isfinite(l->x[j]) && isfinite(l->y[j]) && (!f->xlog || l->x[j] > 0);
}

static int line_has_ci(const report_line *l)
{
    for (int j = 0; j < l->n; j++)
        if (isfinite(l->lo[j]) && isfinite(l->hi[j]))
            return 1;
    return 0;
}

/* Datablocks $dP_L with x y lo hi per drawable point. */
static void gp_data(const report_fig *f, int panel, em_buf *b)
{
    for (int i = 0; i < f->n_lines; i++) {
        const report_line *l = &f->lines[i];
        em_buf_printf(b, "$d%d_%d << EOD\n", panel, i);
        for (int j = 0; j < l->n; j++) {
            if (!drawable(f, l, j))
                continue;
            double lo = isfinite(l->lo[j]) ? l->lo[j] : l->y[j];
            double hi = isfinite(l->hi[j]) ? l->hi[j] : l->y[j];
            /* The dodge keeps coinciding lines and their CIs apart. */
            double x = f->xlog ? l->x[j] * pow(10, l->dodge) : l->x[j] + l->dodge;
            em_buf_printf(b, "%.9g %.9g %.9g %.9g\n", x, l->y[j], lo, hi);
        }
        em_buf_puts(b, "EOD\n");
    }
}

static int count_drawable(const report_fig *f, const report_line *l)
{
    int k = 0;
    for (int j = 0; j < l->n; j++)
        k += drawable(f, l, j);
    return k;
}

/* An explicit x range a little wider than the points (gnuplot's own
 * autoscale rounds a log axis out to whole decades and its offsets do not
 * pad one), so the first and last models sit clear of the border. */
static void x_range(const report_fig *f, em_buf *b)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < f->n_lines; i++) {
        const report_line *l = &f->lines[i];
        for (int j = 0; j < l->n; j++) {
            if (!drawable(f, l, j))
                continue;
            double x = f->xlog ? log10(l->x[j]) + l->dodge : l->x[j] + l->dodge;
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
    }
    if (!(hi >= lo)) {
        em_buf_puts(b, "set autoscale x\n");
        return;
    }
    double pad = (hi - lo) * 0.05 + (f->xlog ? 0.1 : (hi > lo ? 0 : 1));
    lo -= pad;
    hi += pad;
    if (f->xlog)
        em_buf_printf(b, "set xrange [%.9g:%.9g]\n", pow(10, lo), pow(10, hi));
    else
        em_buf_printf(b, "set xrange [%.9g:%.9g]\n", lo, hi);
}

static void gp_axes(const report_fig *f, em_buf *b, int small)
{
    em_buf_puts(b, "set title ");
    gp_str(b, f->title);
    em_buf_puts(b, " noenhanced\nset xlabel ");
    gp_str(b, f->xlabel);
    em_buf_puts(b, " noenhanced\nset ylabel ");
    gp_str(b, f->ylabel);
    em_buf_puts(b, " noenhanced\n");
    if (f->xlog)
        em_buf_puts(b, "set logscale x 10\nset format x \"10^{%T}\"\n");
    else
        em_buf_puts(b, "unset logscale x\nset format x \"%g\"\n");
    if (isfinite(f->ymin) && isfinite(f->ymax))
        em_buf_printf(b, "set yrange [%.9g:%.9g]\n", f->ymin, f->ymax);
    else
        em_buf_puts(b, "set autoscale y\n");
    x_range(f, b);
    em_buf_puts(b, "unset arrow\n");
    if (small)
        em_buf_puts(b, "unset key\n");
    else
        em_buf_puts(b, "set key outside right top vertical box opaque "
                    "spacing 1.2\n");
}

/* The plot command of one figure (or panel); "" when nothing to draw. */
static void gp_plot(const report_fig *f, int panel, em_buf *b, int small)
{
    for (int i = 0; i < f->n_marks; i++) {
        if (!(f->marks[i] > 0) && f->xlog)
            continue;
        em_buf_printf(b, "set arrow from %.9g, graph 0 to %.9g, graph 1 nohead "
                      "dt 3 lw 2 lc rgb \"%s\"\n", f->marks[i], f->marks[i],
                      color(f->mark_colors[i]));
    }
    const char *sep = "plot ";
    int any = 0;
    for (int i = 0; i < f->n_lines; i++) {
        const report_line *l = &f->lines[i];
        if (!count_drawable(f, l))
            continue;
        int ci = line_has_ci(l);
        em_buf_printf(b, "%s$d%d_%d using 1:2%s with %s lw %s pt %d ps %s dt %d "
                      "lc rgb \"%s\" title ", sep, panel, i, ci ? ":3:4" : "",
                      ci ? "yerrorlines" : "linespoints", small ? "1.5" : "2",
                      l->dashed ? 6 : 7, small ? "0.6" : "0.9", l->dashed ? 2 : 1,
                      color(l->color));
        gp_str(b, l->title);
        em_buf_puts(b, " noenhanced");
        sep = ", \\\n     ";
        any = 1;
    }
    if (isfinite(f->baseline) && any) {
        em_buf_printf(b, "%s%.9g with lines dt 2 lw 1.5 lc rgb \"#555555\" title ",
                      sep, f->baseline);
        gp_str(b, f->baseline_title ? f->baseline_title : "random baseline");
        em_buf_puts(b, " noenhanced");
    }
    for (int i = 0; i < f->n_marks && any && !small; i++) {
        em_buf_printf(b, ", \\\n     keyentry with lines dt 3 lw 2 lc rgb \"%s\" "
                      "title ", color(f->mark_colors[i]));
        gp_str(b, f->mark_titles[i]);
        em_buf_puts(b, " noenhanced");
    }
    if (!any) {
        /* An empty panel still needs axes: plot nothing visible. */
        em_buf_puts(b, "set xrange [1:10]\nset yrange [0:1]\nset label 1 "
                    "\"no data\" at graph 0.5, graph 0.5 center\nplot NaN notitle\n"
                    "unset label 1\nset autoscale x\n");
        return;
    }
    em_buf_putc(b, '\n');
}

static void gp_terminal(em_buf *b, const char *format, int w, int h, int font)
{
    if (!strcmp(format, "svg"))
        em_buf_printf(b, "set terminal svg size %d,%d enhanced font \"Sans,%d\" "
                      "background rgb \"white\"\n", w, h, font);
    else
        em_buf_printf(b, "set terminal pngcairo size %d,%d enhanced font "
                      "\"Sans,%d\" background rgb \"white\"\n", w, h, font);
}

void report_fig_script(const report_fig *f, const char *format,
                       const char *outpath, em_buf *b)
{
    em_buf_puts(b, "# written by emerge (reports/plot.c); data inline\n"
                "set encoding utf8\n");
    int grid = f->n_panels > 0;
    int cols = 1, rows = 1;
    if (grid) {
        while (cols * cols < f->n_panels)
            cols++;
        rows = (f->n_panels + cols - 1) / cols;
        gp_terminal(b, format, 340 * cols, 270 * rows + 50, 9);
    } else {
        gp_terminal(b, format, 1000, 600, 11);
    }
    em_buf_puts(b, "set output ");
    gp_str(b, outpath);
    em_buf_puts(b, "\nset style line 100 lc rgb \"#d8d8d8\" lw 1 dt 1\n"
                "set grid xtics ytics back ls 100\nset border lc rgb \"#444444\"\n"
                "set bars small\n");
    if (!grid) {
        gp_data(f, 0, b);
        gp_axes(f, b, 0);
        gp_plot(f, 0, b, 0);
    } else {
        for (int i = 0; i < f->n_panels; i++)
            gp_data(&f->panels[i], i, b);
        em_buf_printf(b, "set multiplot layout %d,%d title ", rows, cols);
        gp_str(b, f->title);
        em_buf_puts(b, " noenhanced font \",12\"\n");
        for (int i = 0; i < f->n_panels; i++) {
            gp_axes(&f->panels[i], b, 1);
            gp_plot(&f->panels[i], i, b, 1);
        }
        em_buf_puts(b, "unset multiplot\n");
    }
    em_buf_puts(b, "set output\n");
}

/* ---- running gnuplot ------------------------------------------------------- */

int report_gnuplot_check(em_err *err)
{
    const char *path = getenv("PATH");
    char *dirs = em_strdup(path ? path : "");
    int found = 0;
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d && !found;
         d = strtok_r(NULL, ":", &save)) {
        em_buf p = {0};
        em_buf_printf(&p, "%s/gnuplot", *d ? d : ".");
        struct stat sb;
        found = stat(p.s, &sb) == 0 && S_ISREG(sb.st_mode) && access(p.s, X_OK) == 0;
        em_buf_free(&p);
    }
    free(dirs);
    if (!found)
        return em_errorf(err, "gnuplot is not installed (not found on PATH); "
                         "install it with `apt-get install gnuplot-nox`");
    return 0;
}

int report_gnuplot_run(const char *script, const char *what, em_err *err)
{
    fflush(NULL);
    FILE *p = popen("gnuplot", "w");
    if (!p)
        return em_errorf(err, "%s: cannot start gnuplot: %s", what, strerror(errno));
    /* If gnuplot dies early, a write must fail rather than kill us. */
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    size_t len = strlen(script);
    int bad = fwrite(script, 1, len, p) != len;
    int st = pclose(p);
    signal(SIGPIPE, old);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || bad)
        return em_errorf(err, "%s: gnuplot failed (exit status %d)", what,
                         st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

static int write_buf(const char *path, const em_buf *b, em_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return em_errorf(err, "%s: cannot write: %s", path, strerror(errno));
    int bad = b->len && fwrite(b->s, 1, b->len, f) != b->len;
    bad |= fclose(f) != 0;
    return bad ? em_errorf(err, "%s: write failed", path) : 0;
}

static int csv_one(const report_fig *f, const char *dir, em_err *err)
{
    em_buf path = {0}, b = {0};
    em_buf_printf(&path, "%s/%s.csv", dir, f->name);
    report_fig_csv(f, &b);
    int rc = write_buf(path.s, &b, err);
    em_buf_free(&path);
    em_buf_free(&b);
    return rc;
}

/* NAME.<format> and NAME.gp (the script of the last format drawn). */
static int plot_one(const report_fig *f, const char *dir, int png, int svg,
                    em_err *err)
{
    em_buf path = {0}, b = {0};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        const char *fmt = k == 0 ? "png" : "svg";
        if (!(k == 0 ? png : svg))
            continue;
        em_buf_reset(&path);
        em_buf_printf(&path, "%s/%s.%s", dir, f->name, fmt);
        em_buf_reset(&b);
        report_fig_script(f, fmt, path.s, &b);
        rc = report_gnuplot_run(b.s, path.s, err);
        em_buf_reset(&path);
        em_buf_printf(&path, "%s/%s.gp", dir, f->name);
        if (rc == 0)
            rc = write_buf(path.s, &b, err);
    }
    em_buf_free(&path);
    em_buf_free(&b);
    return rc;
}

int report_plot_write(const report_fig *figs, int n, const char *dir, int png,
                      int svg, em_err *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return em_errorf(err, "%s: cannot create directory: %s", dir,
                         strerror(errno));
    /* The CSVs first: they are the figures' data even without gnuplot. */
    for (int i = 0; i < n; i++)
        if (csv_one(&figs[i], dir, err) != 0)
            return -1;
    if ((png || svg) && report_gnuplot_check(NULL) != 0)
        return em_errorf(err, "gnuplot is not installed (not found on PATH); "
                         "install it with `apt-get install gnuplot-nox`. The "
                         "data of every figure is written as CSV in %s/", dir);
    for (int i = 0; i < n; i++)
        if (plot_one(&figs[i], dir, png, svg, err) != 0)
            return -1;
    return 0;
}

/*
 * cmd_report.c - `emerge plot`, `emerge report` and `emerge check`.
 *
 *   emerge plot --db RUNS.sqlite --out DIR [--axis params|flops|nonembed]
 *               [--format png|svg|both]
 *       emergence figures through gnuplot, each with its data as CSV
 *   emerge report --db RUNS.sqlite --out DIR [--axis params|flops|nonembed]
 *       self-contained index.html (inline SVG figures) and report.md
 *   emerge check --baseline BASE.sqlite --db NEW.sqlite [--tolerance T]
 *               [--level 0.95] [--junit FILE] [--markdown FILE]
 *       paired-bootstrap regression check: exit 0 pass, 1 regression,
 *       2 error
 */
#include <stdlib.h>
#include <string.h>

#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"
#include "metrics/results.h"
#include "metrics/store_query.h"
#include "reports/check.h"
#include "reports/figures.h"
#include "reports/plot.h"
#include "reports/report.h"

int cmd_plot(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* A finite number from an option value, or -1 with a message. */
static int opt_number(const char *cmd, const char *name, const char *v,
                      double *out)
{
    double d;
    if (cli_double(v, &d) || d != d) {
        fprintf(stderr, "emerge %s: %s: '%s' is not a number\n", cmd, name, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* Options shared by plot, report and check (each takes some). */
enum { OPT_DB = 256, OPT_OUT, OPT_TASK_VERSION, OPT_AXIS, OPT_SCORES, OPT_FORMAT,
       OPT_EXAMPLES, OPT_BASELINE, OPT_JUNIT, OPT_MARKDOWN, OPT_TOLERANCE,
       OPT_LEVEL };

#define OPTION(name, key) {name, required_argument, NULL, key}

/* None of these commands takes operands; each has required options.
 * CLI_OK or CLI_BAD. */
static int no_operands(const cli_cmd *c, int argc, char **argv, int first,
                       int have_required, const char *required)
{
    if (first < argc)
        return cli_usage_error(c, 0, "unexpected argument '%s'", argv[first]);
    if (!have_required)
        return cli_usage_error(c, 1, "%s are required", required);
    return CLI_OK;
}

/* ---- plot ------------------------------------------------------------------ */

/* What plot and report both take: the database, the output directory,
 * the task versions and the axis. */
typedef struct fig_args {
    const char *db, *out, *task_version;
    const char *scores;  /* --scores FILE: overlaid numbers, or NULL */
    int axis;           /* SCALING_AXIS_* */
} fig_args;

typedef struct plot_args {
    fig_args f;
    int png, svg;
} plot_args;

static const char plot_help[] =
    "usage: emerge plot --db RUNS.sqlite --out DIR [--axis params|flops|nonembed]\n"
    "                   [--format png|svg|both] [--task-version [TASK=]N]\n"
    "                   [--scores FILE.csv]\n"
    "--scores overlays published or other families' numbers (the CSV emerge\n"
    "scaling --scores reads; a family column names each line) on the\n"
    "TASK-variants figures of the tasks it names, dashed.\n"
    "Writes per task DIR/TASK-variants, TASK-metrics, TASK-choices "
    "(multiple choice)\nand DIR/overview, each as .png/.svg (gnuplot), "
    ".csv (the data) and .gp (the script).\n";

/* The options of fig_args (below). */
#define FIG_OPTIONS OPTION("db", OPT_DB), OPTION("out", OPT_OUT), \
    OPTION("task-version", OPT_TASK_VERSION), OPTION("axis", OPT_AXIS), \
    OPTION("scores", OPT_SCORES)

static const cli_cmd plot_cmd = {"plot", plot_help, (const struct option[]){
    FIG_OPTIONS, OPTION("format", OPT_FORMAT), {0}}, 0};

/* Shared by plot and report: --axis. */
static int parse_axis(const char *cmd, const char *v, int *axis)
{
    *axis = scaling_axis_parse(v);
    if (*axis >= 0)
        return 0;
    fprintf(stderr, "emerge %s: --axis must be " SCALING_AXIS_NAMES ", not "
            "'%s'\n", cmd, v);
    return -1;
}

/* One of fig_args' options: 0 taken, -1 bad value (message printed),
 * 1 not one of them. */
static int fig_opt(const char *cmd, fig_args *a, int key, const char *v)
{
    if (key == OPT_DB)
        a->db = v;
    else if (key == OPT_TASK_VERSION)
        a->task_version = v;
    else if (key == OPT_OUT)
        a->out = v;
    else if (key == OPT_AXIS)
        return parse_axis(cmd, v, &a->axis);
    else if (key == OPT_SCORES)
        a->scores = v;
    else
        return 1;
    return 0;
}

/* The database, and the --scores overlay when given (its series that
 * match no task are named on stderr). */
static int fig_load(const fig_args *f, const char *cmd, report_data *d)
{
    em_err err = {{0}};
    int unmatched;
    if (report_data_load(f->db, f->axis, f->task_version, d, &err) != 0) {
        fprintf(stderr, "emerge %s: %s\n", cmd, err.msg);
        return -1;
    }
    if (f->scores && report_data_overlay(d, f->scores, &unmatched, &err)) {
        fprintf(stderr, "emerge %s: %s\n", cmd, err.msg);
        report_data_free(d);
        return -1;
    }
    return 0;
}

/* cli_parse for plot and report, then no operands and --db, --out. */
static int fig_parse(const cli_cmd *c, int argc, char **argv, cli_opt_fn fn,
                     void *ctx, const fig_args *f)
{
    int first, p = cli_parse(c, argc, argv, fn, ctx, &first);
    return p ? p : no_operands(c, argc, argv, first, f->db && f->out,
                               "--db and --out");
}

static int plot_opt(void *ctx, int key, const char *v)
{
    plot_args *a = ctx;
    int rc = fig_opt("plot", &a->f, key, v);
    if (rc <= 0)
        return rc;
    a->png = !strcmp(v, "png") || !strcmp(v, "both");
    a->svg = !strcmp(v, "svg") || !strcmp(v, "both");
    if (!a->png && !a->svg) {
        fprintf(stderr, "emerge plot: --format must be png, svg or both, "
                "not '%s'\n", v);
        return -1;
    }
    return 0;
}

static int plot_parse(int argc, char **argv, plot_args *a)
{
    memset(a, 0, sizeof *a);
    a->png = 1;
    return fig_parse(&plot_cmd, argc, argv, plot_opt, a, &a->f);
}

int cmd_plot(int argc, char **argv)
{
    plot_args a;
    int p = plot_parse(argc, argv, &a);
    if (p != 0)
        return cli_exit(p);
    em_err err = {{0}};
    report_data d;
    if (fig_load(&a.f, "plot", &d) != 0)
        return 2;
    report_fig *figs;
    int n;
    report_figures(&d, &figs, &n);
    int rc = report_plot_write(figs, n, a.f.out, a.png, a.svg, &err);
    if (rc != 0)
        fprintf(stderr, "emerge plot: %s\n", err.msg);
    else
        printf("%d figures in %s/\n", n, a.f.out);
    for (int i = 0; i < n; i++)
        report_fig_free(&figs[i]);
    free(figs);
    report_data_free(&d);
    return rc ? 2 : 0;
}

/* ---- report ---------------------------------------------------------------- */

static const char report_help[] =
    "usage: emerge report --db RUNS.sqlite --out DIR [--axis params|flops|nonembed]"
    "\n                     [--examples N] [--task-version [TASK=]N]\n"
    "                     [--scores FILE.csv]\n"
    "Writes DIR/index.html (self-contained: inline SVG figures, no "
    "network),\nDIR/report.md and DIR/figures/ (PNG, SVG, CSV, .gp). "
    "--examples: examples\nshown across scales per task (default 3). --scores: as for plot.\n"
    "--task-version: the task versions shown (default: per task, the "
    "one the latest\nrun used; N alone: every task that has version N)."
    "\n";

static const cli_cmd report_cmd = {"report", report_help, (const struct option[]){
    FIG_OPTIONS, OPTION("examples", OPT_EXAMPLES), {0}}, 0};

typedef struct report_args {
    fig_args f;
    int examples;
} report_args;

static int report_opt(void *ctx, int key, const char *v)
{
    report_args *a = ctx;
    double x;
    int rc = fig_opt("report", &a->f, key, v);
    if (rc <= 0)
        return rc;
    if (opt_number("report", "--examples", v, &x) != 0)
        return -1;
    if (x < 0 || x > 100 || x != (int)x) {
        fprintf(stderr, "emerge report: --examples must be an integer "
                "from 0 to 100\n");
        return -1;
    }
    a->examples = (int)x;
    return 0;
}

static int report_parse(int argc, char **argv, report_args *a)
{
    memset(a, 0, sizeof *a);
    a->examples = 3;
    return fig_parse(&report_cmd, argc, argv, report_opt, a, &a->f);
}

static int report_files(const report_args *a, const report_ctx *c, em_err *err)
{
    em_buf p = {0};
    em_buf_printf(&p, "%s/index.html", a->f.out);
    int rc = report_html_write(c, p.s, err);
    em_buf_reset(&p);
    em_buf_printf(&p, "%s/report.md", a->f.out);
    if (rc == 0)
        rc = report_md_write(c, p.s, err);
    em_buf_free(&p);
    return rc;
}

int cmd_report(int argc, char **argv)
{
    report_args a;
    int p = report_parse(argc, argv, &a);
    if (p != 0)
        return cli_exit(p);
    em_err err = {{0}};
    report_data d;
    if (fig_load(&a.f, "report", &d) != 0)
        return 2;
    report_ctx c;
    int rc = report_build(&d, a.f.out, a.examples, &c, &err);
    if (rc == 0) {
        if (c.figures_note)
            fprintf(stderr, "emerge report: warning: %s\n", c.figures_note);
        rc = report_files(&a, &c, &err);
        report_ctx_free(&c);
    }
    if (rc != 0)
        fprintf(stderr, "emerge report: %s\n", err.msg);
    else
        printf("%s/index.html, %s/report.md\n", a.f.out, a.f.out);
    report_data_free(&d);
    return rc ? 2 : 0;
}

/* ---- check ----------------------------------------------------------------- */

typedef struct check_args {
    const char *base, *db, *junit, *markdown, *task_version;
    report_check_opts o;
} check_args;

static const char check_help[] =
    "usage: emerge check --baseline BASE.sqlite --db NEW.sqlite\n"
    "                    [--tolerance T] [--level 0.95] [--junit FILE]"
    " [--markdown FILE]\n"
    "                    [--task-version [TASK=]N]\n"
    "Compares the preferred score of every (task, variant, model) in "
    "both databases.\n"
    "A regression is a drop whose paired bootstrap CI (over the "
    "shared example ids)\nlies below 0 at --level and that is larger "
    "than --tolerance (absolute).\n"
    "Exit status: 0 no regression, 1 regression, 2 error.\n";

static const cli_cmd check_cmd = {"check", check_help, (const struct option[]){
    OPTION("baseline", OPT_BASELINE), OPTION("db", OPT_DB),
    OPTION("task-version", OPT_TASK_VERSION), OPTION("junit", OPT_JUNIT),
    OPTION("markdown", OPT_MARKDOWN), OPTION("tolerance", OPT_TOLERANCE),
    OPTION("level", OPT_LEVEL), {0}}, 0};

static int check_number(check_args *a, int key, const char *v)
{
    if (key == OPT_TOLERANCE) {
        if (opt_number("check", "--tolerance", v, &a->o.tolerance) != 0)
            return -1;
        if (a->o.tolerance < 0) {
            fprintf(stderr, "emerge check: --tolerance must be >= 0\n");
            return -1;
        }
        return 0;
    }
    if (opt_number("check", "--level", v, &a->o.level) != 0)
        return -1;
    if (!(a->o.level > 0 && a->o.level < 1)) {
        fprintf(stderr, "emerge check: --level must be between 0 and 1 "
                "(e.g. 0.95)\n");
        return -1;
    }
    return 0;
}

static int check_opt(void *ctx, int key, const char *v)
{
    check_args *a = ctx;
    switch (key) {
    case OPT_TASK_VERSION: a->task_version = v; return 0;
    case OPT_BASELINE: a->base = v; return 0;
    case OPT_DB: a->db = v; return 0;
    case OPT_JUNIT: a->junit = v; return 0;
    case OPT_MARKDOWN: a->markdown = v; return 0;
    }
    return check_number(a, key, v);
}

/* CLI_OK parsed, CLI_HELP, CLI_BAD (message printed). */
static int check_parse(int argc, char **argv, check_args *a)
{
    memset(a, 0, sizeof *a);
    report_check_defaults(&a->o);
    int first, p = cli_parse(&check_cmd, argc, argv, check_opt, a, &first);
    return p ? p : no_operands(&check_cmd, argc, argv, first, a->base && a->db,
                               "--baseline and --db");
}

static int check_outputs(const check_args *a, const report_check *c, em_err *err)
{
    report_check_print(stdout, c, &a->o);
    if (a->junit && report_junit_write(a->junit, c, &a->o, err) != 0)
        return -1;
    if (a->markdown && report_check_markdown(a->markdown, c, &a->o, err) != 0)
        return -1;
    return 0;
}

int cmd_check(int argc, char **argv)
{
    check_args a;
    int p = check_parse(argc, argv, &a);
    if (p != 0)
        return cli_exit(p);
    em_err err = {{0}};
    store_query *qb = NULL, *qn = NULL;
    report_check c = {0};
    int rc = 2;
    if (store_query_open(a.base, &qb, &err) == 0 &&
        store_query_open(a.db, &qn, &err) == 0 &&
        store_query_select_versions(qb, a.task_version, &err) == 0 &&
        store_query_select_versions(qn, a.task_version, &err) == 0 &&
        store_query_version_notes(qn, stderr, &err) == 0 &&
        report_check_run(qb, qn, &a.o, &c, &err) == 0) {
        rc = check_outputs(&a, &c, &err) != 0 ? 2 : c.n_regressions ? 1 : 0;
        report_check_free(&c);
    }
    if (rc == 2)
        fprintf(stderr, "emerge check: %s\n", err.msg);
    store_query_close(qb);
    store_query_close(qn);
    return rc;
}

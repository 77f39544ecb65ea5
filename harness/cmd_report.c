/*
 * cmd_report.c - `emerge plot`, `emerge report` and `emerge check`.
 *
 *   emerge plot --db RUNS.sqlite --out DIR [--axis params|flops]
 *               [--format png|svg|both]
 *       emergence figures through gnuplot, each with its data as CSV
 *   emerge report --db RUNS.sqlite --out DIR [--axis params|flops]
 *       self-contained index.html (inline SVG figures) and report.md
 *   emerge check --baseline BASE.sqlite --db NEW.sqlite [--tolerance T]
 *               [--level 0.95] [--junit FILE] [--markdown FILE]
 *       paired-bootstrap regression check: exit 0 pass, 1 regression,
 *       2 error
 */
#include <stdlib.h>
#include <string.h>

#include "harness/cli.h"
#include "harness/store_query.h"
#include "reports/check.h"

int cmd_check(int argc, char **argv);

/* "--name value" or "--name=value": the value, advancing *i; NULL when
 * argv[*i] is not that option. *missing is set when the value is absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *name,
                             int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n])
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* A finite number from an option value, or -1 with a message. */
static int opt_number(const char *cmd, const char *name, const char *v,
                      double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || d != d) {
        fprintf(stderr, "emerge %s: %s: '%s' is not a number\n", cmd, name, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* ---- check ----------------------------------------------------------------- */

typedef struct check_args {
    const char *base, *db, *junit, *markdown;
    report_check_opts o;
} check_args;

static void check_usage(FILE *f)
{
    fprintf(f, "usage: emerge check --baseline BASE.sqlite --db NEW.sqlite\n"
               "                    [--tolerance T] [--level 0.95] [--junit FILE]"
               " [--markdown FILE]\n"
               "Compares the preferred score of every (task, variant, model) in "
               "both databases.\n"
               "A regression is a drop whose paired bootstrap CI (over the "
               "shared example ids)\nlies below 0 at --level and that is larger "
               "than --tolerance (absolute).\n"
               "Exit status: 0 no regression, 1 regression, 2 error.\n");
}

/* 0 parsed, 1 --help, -1 bad usage (message printed). */
static int check_parse(int argc, char **argv, check_args *a)
{
    memset(a, 0, sizeof *a);
    report_check_defaults(&a->o);
    for (int i = 1; i < argc; i++) {
        int miss = 0;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
        if ((v = opt_value(argc, argv, &i, "--baseline", &miss)))
            a->base = v;
        else if ((v = opt_value(argc, argv, &i, "--db", &miss)))
            a->db = v;
        else if ((v = opt_value(argc, argv, &i, "--junit", &miss)))
            a->junit = v;
        else if ((v = opt_value(argc, argv, &i, "--markdown", &miss)))
            a->markdown = v;
        else if ((v = opt_value(argc, argv, &i, "--tolerance", &miss))) {
            if (opt_number("check", "--tolerance", v, &a->o.tolerance) != 0)
                return -1;
            if (a->o.tolerance < 0) {
                fprintf(stderr, "emerge check: --tolerance must be >= 0\n");
                return -1;
            }
        } else if ((v = opt_value(argc, argv, &i, "--level", &miss))) {
            if (opt_number("check", "--level", v, &a->o.level) != 0)
                return -1;
            if (!(a->o.level > 0 && a->o.level < 1)) {
                fprintf(stderr, "emerge check: --level must be between 0 and 1 "
                        "(e.g. 0.95)\n");
                return -1;
            }
        } else {
            fprintf(stderr, miss ? "emerge check: %s needs a value\n"
                                 : "emerge check: unknown option '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!a->base || !a->db) {
        fprintf(stderr, "emerge check: --baseline and --db are required\n");
        return -1;
    }
    return 0;
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
    if (p != 0) {
        check_usage(p > 0 ? stdout : stderr);
        return p > 0 ? 0 : 2;
    }
    em_err err = {{0}};
    store_query *qb = NULL, *qn = NULL;
    report_check c = {0};
    int rc = 2;
    if (store_query_open(a.base, &qb, &err) == 0 &&
        store_query_open(a.db, &qn, &err) == 0 &&
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

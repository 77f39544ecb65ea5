/*
 * main.c - the emerge command line: the global options (--help,
 * --version) and the dispatch to a subcommand. The only place in emerge
 * that decides the process exit status.
 *
 * The command table is also the top-level help, and the man page is
 * made from that help and each command's own (tools/man-include.sh): a
 * command added here is listed, documented and tested (tests/test_cli.sh
 * walks this list) without another edit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/version.h"
#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"

int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_tasks(int argc, char **argv);
int cmd_scaling(int argc, char **argv);
int cmd_bleu(int argc, char **argv);
int cmd_sweep(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_results(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_models(int argc, char **argv);
int cmd_family(int argc, char **argv);

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

/* One line per subcommand; each lives in the module that owns it. */
static const cli_command commands[] = {
    {"tokenize", cmd_tokenize, "show how a model's vocabulary tokenises a text"},
    {"inspect", cmd_inspect, "show a GGUF file's metadata and tensors"},
    {"convert", cmd_convert, "convert a llama2.c checkpoint to GGUF"},
    {"mkmodel", cmd_mkmodel, "write a random-weight llama GGUF (benchmarks)"},
    {"tasks", cmd_tasks, "validate, list and show task files"},
    {"scaling", cmd_scaling, "scaling table: linearity, breakthroughness, emergence"},
    {"bleu", cmd_bleu, "corpus BLEU of a hypothesis file against references"},
    {"family", cmd_family, "write a family file from checkpoint directories (scan)"},
    {"sweep", cmd_sweep, "evaluate tasks over a model family into a SQLite store"},
    {"run", cmd_run, "evaluate tasks on one model into a SQLite store"},
    {"results", cmd_results, "per task/variant/model/metric means, CIs, ECE"},
    {"gc", cmd_gc, "remove superseded task versions (and their scores) from a store"},
    {"merge", cmd_merge, "fold sharded sweeps' databases into one"},
    {"migrate", cmd_migrate, "upgrade a store written by an older emerge in place"},
    {"plot", cmd_plot, "emergence figures (gnuplot PNG/SVG) with their data as CSV"},
    {"report", cmd_report, "self-contained HTML and Markdown report of a database"},
    {"check", cmd_check, "regressions against a baseline database (paired bootstrap)"},
    {"serve", cmd_serve, "serve a GGUF model with an OpenAI-compatible HTTP API"},
    {"models", cmd_models, "list CUDA devices (--devices) and backends"},
    {"version", cmd_version, "print the version and the source commit"},
    {"help", cmd_help, "describe emerge, or one command: emerge help COMMAND"},
    {NULL, NULL, NULL},
};

static const char *top_help;    /* made from the table by help_text() */

static char *help_text(void)
{
    em_buf b = {0};
    em_buf_puts(&b, "usage: emerge <command> [options]\n"
                    "       emerge --help | --version\n"
                    "\n"
                    "Evaluates language-model task suites across model scales:\n"
                    "sweeps tasks over a family of models into a SQLite store,\n"
                    "then measures, plots and reports how abilities emerge.\n"
                    "\n"
                    "commands:\n");
    for (const cli_command *c = commands; c->name; c++)
        em_buf_printf(&b, "  %-10s %s\n", c->name, c->summary);
    em_buf_puts(&b, "\n"
                    "options:\n"
                    "  -h, --help     this text\n"
                    "  -V, --version  the version and the source commit\n"
                    "\n"
                    "'emerge <command> --help' describes each command.\n");
    return em_buf_take(&b);
}

static const cli_command *find_command(const char *name)
{
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

static int cmd_version(int argc, char **argv)
{
    static const cli_cmd cmd = {"version", "usage: emerge version\n"
        "\n"
        "Prints the version and the source commit emerge was built from\n"
        "(\"-dirty\": with uncommitted changes), as every run records it in\n"
        "the store's runs table. Same as emerge --version.\n", NULL, 0};
    int first, p = cli_parse(&cmd, argc, argv, NULL, NULL, &first);
    if (p)
        return cli_exit(p);
    if (first < argc)
        return cli_usage_error(&cmd, 1, "unexpected argument '%s'", argv[first]);
    printf("%s\n", em_version());
    return 0;
}

/* emerge help [COMMAND]: the top-level help, or COMMAND --help. */
static int cmd_help(int argc, char **argv)
{
    const cli_cmd cmd = {"help", top_help, NULL, 1};
    int first, p = cli_parse(&cmd, argc, argv, NULL, NULL, &first);
    if (p)
        return cli_exit(p);
    if (first == argc) {
        fputs(top_help, stdout);
        return 0;
    }
    const cli_command *c = find_command(argv[first]);
    if (!c)
        return cli_usage_error(&cmd, 0, "unknown command '%s'", argv[first]);
    if (first + 1 < argc)
        return cli_usage_error(&cmd, 0, "one command at a time");
    char *args[] = {argv[first], "--help", NULL};
    return c->fn(2, args);
}

static int set_version(void *ctx, int key, const char *v)
{
    (void)v;
    *(int *)ctx = key == 'V';
    return 0;
}

static int run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"version", no_argument, NULL, 'V'}, {0}};
    const cli_cmd top = {"", top_help, opts, 1};
    int version = 0, first;
    int p = cli_parse(&top, argc, argv, set_version, &version, &first);
    if (p)
        return cli_exit(p);
    if (version) {
        printf("%s\n", em_version());
        return 0;
    }
    if (first == argc) {
        fputs(top_help, stderr);
        return 2;
    }
    const cli_command *c = find_command(argv[first]);
    if (c)
        return c->fn(argc - first, argv + first);
    fprintf(stderr, "emerge: unknown command '%s' (see 'emerge --help')\n",
            argv[first]);
    return 2;
}

int main(int argc, char **argv)
{
    char *help = help_text();
    top_help = help;
    int rc = run(argc, argv);
    free(help);
    return rc;
}

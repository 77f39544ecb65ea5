/*
 * main.c - the emerge command line: dispatches to a subcommand.
 * The only place in emerge that decides the process exit status.
 */
#include <stdio.h>
#include <string.h>

#include "harness/cli/cli.h"

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
int cmd_serve(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_models(int argc, char **argv);

/* One line per subcommand; each lives in the module that owns it. */
static const cli_command commands[] = {
    {"tokenize", cmd_tokenize, "show how a model's vocabulary tokenises a text"},
    {"inspect", cmd_inspect, "show a GGUF file's metadata and tensors"},
    {"convert", cmd_convert, "convert a llama2.c checkpoint to GGUF"},
    {"mkmodel", cmd_mkmodel, "write a random-weight llama GGUF (benchmarks)"},
    {"tasks", cmd_tasks, "validate, list and show task files"},
    {"scaling", cmd_scaling, "scaling table: linearity, breakthroughness, emergence"},
    {"bleu", cmd_bleu, "corpus BLEU of a hypothesis file against references"},
    {"sweep", cmd_sweep, "evaluate tasks over a model family into a SQLite store"},
    {"run", cmd_run, "evaluate tasks on one model into a SQLite store"},
    {"results", cmd_results, "per task/variant/model/metric means, CIs, ECE"},
    {"gc", cmd_gc, "remove superseded task versions (and their scores) from a store"},
    {"migrate", cmd_migrate, "upgrade a store written by an older emerge in place"},
    {"plot", cmd_plot, "emergence figures (gnuplot PNG/SVG) with their data as CSV"},
    {"report", cmd_report, "self-contained HTML and Markdown report of a database"},
    {"check", cmd_check, "regressions against a baseline database (paired bootstrap)"},
    {"serve", cmd_serve, "serve a GGUF model with an OpenAI-compatible HTTP API"},
    {"models", cmd_models, "list CUDA devices (--devices) and backends"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: emerge <command> [options]\n\ncommands:\n");
    for (const cli_command *c = commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n'emerge <command> --help' describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("emerge 0.1\n");
        return 0;
    }
    for (const cli_command *c = commands; c->name; c++)
        if (!strcmp(c->name, argv[1]))
            return c->fn(argc - 1, argv + 1);
    fprintf(stderr, "emerge: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

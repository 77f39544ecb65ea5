/*
 * cmd_merge.c - the `emerge merge` subcommand: option parsing and the
 * exit status around harness/merge.c.
 */
#include <stdio.h>

#include "harness/cli/cliargs.h"
#include "harness/merge.h"

int cmd_merge(int argc, char **argv);

static const char merge_usage[] =
    "usage: emerge merge --db OUT.sqlite IN.sqlite...\n"
    "\n"
    "Folds stores - the databases of `emerge sweep --shard I/N`, each written\n"
    "on its own node - into OUT (created if missing, else merged into). Rows\n"
    "are matched by what they are: models by identity (file contents, so one\n"
    "model at different paths is one model), tasks by name and hash,\n"
    "responses by cache key, scores by model, task, variant, example and\n"
    "metric. Run records are kept per shard. The same row twice is kept once,\n"
    "so merging an input again changes nothing; a different answer or score\n"
    "for the same key is refused, naming it, and that input is not merged.\n"
    "Inputs are read-only and must have this emerge's schema version\n"
    "(`emerge migrate --db IN` upgrades an older one).\n"
    "Prints, per input and table, what was added and what was already\n"
    "there. An input whose sweep did not finish (failed requests, examples\n"
    "without scores), or a shard I/N of which neither an input nor OUT holds\n"
    "a run, is named.\n"
    "  --db FILE      the output database\n"
    "Exit status: 0 merged and complete; 1 merged, but something is\n"
    "incomplete (named); 2 an error or a refused input (the inputs before it\n"
    "stay merged).\n";

enum { OPT_DB = 256 };

static int merge_opt(void *ctx, int key, const char *v)
{
    if (key == OPT_DB)
        *(const char **)ctx = v;
    return 0;
}

int cmd_merge(int argc, char **argv)
{
    const cli_cmd cmd = {"merge", merge_usage, (const struct option[]){
        {"db", required_argument, NULL, OPT_DB}, {0}}, 0};
    const char *out = NULL;
    int first, p = cli_parse(&cmd, argc, argv, merge_opt, &out, &first);
    if (p)
        return cli_exit(p);
    if (!out)
        return cli_exit(cli_usage_error(&cmd, 1, "--db is required"));
    if (first == argc)
        return cli_exit(cli_usage_error(&cmd, 1, "no input databases"));
    em_err err = {{0}};
    merge_stats st;
    if (merge_stores(out, argv + first, argc - first, stdout, &st, &err) != 0) {
        fflush(stdout);
        fprintf(stderr, "emerge merge: %s\n", err.msg);
        return 2;
    }
    printf("merged %d database%s into %s%s\n", st.inputs,
           st.inputs == 1 ? "" : "s", out,
           st.incomplete || st.missing_shards ? "; incomplete (see above)" : "");
    return st.incomplete || st.missing_shards ? 1 : 0;
}

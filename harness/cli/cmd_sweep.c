/*
 * cmd_sweep.c - the `emerge sweep`, `emerge run` and `emerge results`
 * subcommands: option parsing and printing around harness/sweep.c and
 * harness/store.c.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/csv.h"
#include "harness/cli/cliargs.h"
#include "harness/family.h"
#include "backends/openai.h"
#include "harness/shard.h"
#include "harness/store.h"
#include "harness/sweep.h"
#include "metrics/results.h"

int cmd_sweep(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_results(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

static const char sweep_usage[] =
    "usage: emerge sweep --tasks A.yaml,B.yaml|DIR --models FAMILY.yaml --db FILE\n"
    "                    [--variants standard,cot,zero_shot_cot] [--seed N]\n"
    "                    [--limit N] [--batch N] [--temperature T]\n"
    "                    [--max-samples N]\n"
    "                    [--record FILE] [--rescore] [--quiet]\n"
    "                    [--on-overflow truncate|skip|error] [--shard I/N]\n"
    "                    [--plan]\n"
    "       emerge run --model SPEC --tasks ... --db FILE [same options]\n"
    "\n"
    "Evaluates every task x variant x example on every model (smallest first),\n"
    "storing requests, responses and per-example scores in the SQLite file.\n"
    "Responses are cached: re-running (also after a crash) only sends what is\n"
    "missing or failed, and gives the same scores.\n"
    "  --tasks LIST   task files (YAML or BIG-bench .json) and directories\n"
    "                 (their *.yaml, *.yml, *.json and */task.json), comma-\n"
    "                 separated\n"
    "  --variants L   variant names; NAME+scN is NAME with self-consistency:\n"
    "                 N sampled generations per example (temperature: the\n"
    "                 variant's self_consistency one, else --temperature,\n"
    "                 else 0.7; top_p 1), the majority answer scored, plus\n"
    "                 sc_agreement, sc_correct, pass@1, pass@N/2, pass@N\n"
    "  --max-samples N  draw at most N self-consistency samples per example\n"
    "                 (a quick look): the vote, agreement and pass@k use the\n"
    "                 first N samples (the same ones a full run draws first),\n"
    "                 so pass@N becomes pass@(that N); a later full run keeps\n"
    "                 them and draws only the rest\n"
    "  --limit N      first N examples of each task\n"
    "  --batch N      about N requests per backend call (default 32): each\n"
    "                 batch is a fixed run of consecutive examples, the same\n"
    "                 whether or not an earlier run was interrupted\n"
    "  --seed N       run seed; sampled generations (--temperature > 0) derive\n"
    "                 their seeds from it, task, example and pass, and the\n"
    "                 sample index under self-consistency (default 1234)\n"
    "  --record FILE  append every response as replay JSONL (a fixture for the\n"
    "                 replay backend)\n"
    "  --rescore      recompute stored scores from the cached responses (after\n"
    "                 a metric changed); examples already scored are skipped\n"
    "                 otherwise\n"
    "  --on-overflow  a prompt longer than the model's context: truncate (the\n"
    "                 default: its oldest tokens are dropped, counted per model\n"
    "                 and task, and the cell is marked in `emerge results`),\n"
    "                 skip (the example is left unscored; exit 1) or error\n"
    "                 (the sweep stops; exit 2)\n"
    "  --shard I/N    evaluate only shard I of N (I from 1 to N): a fixed share\n"
    "                 of the cells model x task x variant x batch, chosen from\n"
    "                 the task files, the family file, these options and N\n"
    "                 alone and balanced by estimated cost; run I = 1..N with\n"
    "                 the same command, each into its own database, then\n"
    "                 `emerge merge` them (the same scores as one sweep)\n"
    "  --plan         evaluate nothing and store nothing (--db is not opened):\n"
    "                 print per member (of the shard, with --shard) the\n"
    "                 requests, prompt tokens and generated tokens at most,\n"
    "                 and the time they would take here, from a short\n"
    "                 calibration on each member (two timed requests)\n"
    "Exit status: 0 every requested example scored; 1 incomplete (failed\n"
    "requests, skipped prompts, or a requested task/variant that cannot be\n"
    "built: each named); 2 an error (nothing could be built); 130/143 stopped\n"
    "by SIGINT/SIGTERM after the batch in flight (what is stored is kept; the\n"
    "same command resumes).\n"
    "SPEC for run: FILE.gguf | DIR (a Hugging Face checkpoint) | FAMILY.yaml |\n"
    "  BACKEND[:PATH][,key=value...],\n"
    "  e.g. synthetic,params=1e9,shape=sharp or replay:rec.jsonl\n";

static const char results_usage[] =
    "usage: emerge results --db FILE [--format table|csv|json] [--per-example]\n"
    "                      [--task T] [--variant V] [--model M] [--metric X]\n"
    "                      [--task-version [TASK=]N]\n"
    "\n"
    "Per (task, variant, model, metric): mean, bootstrap 95% CI (1000\n"
    "resamples, seeded), n and the normalised score of the preferred metric;\n"
    "multiple-choice tasks also get an 'ece' row, self-consistency variants\n"
    "an 'sc_ece' row and 'sc_calib_LO-HI' rows (accuracy per agreement bin).\n"
    "--per-example prints every stored score as CSV instead. The filters\n"
    "keep rows whose field equals the given value.\n"
    "In the table, n* marks a cell with examples scored on prompts that lost\n"
    "tokens to the model's context, n+ one with generations stopped at\n"
    "max_tokens or the context (counts in the csv/json columns truncated, cut).\n"
    "Each task shows one version: the one the latest run used, or what\n"
    "--task-version selects (N: every task that has version N; TASK=N,...).\n"
    "The database is opened read-only: nothing is created or written.\n";

static const char gc_usage[] =
    "usage: emerge gc --db FILE [--dry-run]\n"
    "\n"
    "Removes the superseded versions of every task (each version but the one\n"
    "the latest run used) with their examples and scores, naming each one.\n"
    "Cached responses stay (they are still the models' answers). --dry-run\n"
    "only lists what would go.\n";

static const char migrate_usage[] =
    "usage: emerge migrate --db FILE\n"
    "\n"
    "Upgrades a store written by an older emerge to this one's schema, in\n"
    "place (a sweep into it does the same; reading commands never write).\n";

typedef struct row_filter {
    const char *task, *variant, *model, *metric;
} row_filter;

static int keep_row(const row_filter *f, const result_row *r)
{
    return (!f->task || !strcmp(f->task, r->task)) &&
           (!f->variant || !strcmp(f->variant, r->variant)) &&
           (!f->model || !strcmp(f->model, r->model)) &&
           (!f->metric || !strcmp(f->metric, r->metric));
}

/* Drops the rows the filter rejects, keeping order. */
static int filter_rows(const row_filter *f, result_row *r, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (keep_row(f, &r[i])) {
            r[k++] = r[i];
            continue;
        }
        free(r[i].task);
        free(r[i].variant);
        free(r[i].model);
        free(r[i].metric);
    }
    return k;
}

static int parse_long(const char *cmd, const char *name, const char *v,
                      long min, long *out)
{
    long x;
    if (cli_long(v, &x) || x < min) {
        fprintf(stderr, "emerge %s: %s must be an integer >= %ld, got '%s'\n",
                cmd, name, min, v);
        return -1;
    }
    *out = x;
    return 0;
}

static char *join_args(int argc, char **argv)
{
    em_buf b = {0};
    em_buf_puts(&b, "emerge");
    for (int i = 0; i < argc; i++)
        em_buf_printf(&b, " %s", argv[i]);
    return em_buf_take(&b);
}

typedef struct sweep_args {
    const char *cmd;    /* "sweep" or "run", for messages */
    const char *tasks, *models, *model, *variants, *db, *record;
    long seed, limit, batch, max_samples;
    double temperature;
    int quiet, rescore, on_overflow;
    int shard, n_shards;
    int plan;
} sweep_args;

enum { OPT_TASKS = 256, OPT_MODELS, OPT_MODEL, OPT_VARIANTS, OPT_DB,
       OPT_RECORD, OPT_ON_OVERFLOW, OPT_SEED, OPT_LIMIT, OPT_MAX_SAMPLES,
       OPT_BATCH, OPT_TEMPERATURE, OPT_RESCORE, OPT_SHARD, OPT_PLAN };

/* sweep and run take the same options (run's --model, sweep's --models). */
static const struct option sweep_options[] = {
    {"tasks", required_argument, NULL, OPT_TASKS},
    {"models", required_argument, NULL, OPT_MODELS},
    {"model", required_argument, NULL, OPT_MODEL},
    {"variants", required_argument, NULL, OPT_VARIANTS},
    {"db", required_argument, NULL, OPT_DB},
    {"record", required_argument, NULL, OPT_RECORD},
    {"on-overflow", required_argument, NULL, OPT_ON_OVERFLOW},
    {"seed", required_argument, NULL, OPT_SEED},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"max-samples", required_argument, NULL, OPT_MAX_SAMPLES},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"temperature", required_argument, NULL, OPT_TEMPERATURE},
    {"quiet", no_argument, NULL, 'q'},
    {"rescore", no_argument, NULL, OPT_RESCORE},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"plan", no_argument, NULL, OPT_PLAN}, {0}};

static int parse_overflow(sweep_args *a, const char *v)
{
    static const char *const names[] = {"truncate", "skip", "error"};
    for (a->on_overflow = 0; a->on_overflow < 3; a->on_overflow++)
        if (!strcmp(v, names[a->on_overflow]))
            return 0;
    fprintf(stderr, "emerge %s: --on-overflow must be truncate, skip or error, "
            "got '%s'\n", a->cmd, v);
    return -1;
}

static int parse_shard(sweep_args *a, const char *v)
{
    em_err e;
    if (shard_parse(v, &a->shard, &a->n_shards, &e) == 0)
        return 0;
    fprintf(stderr, "emerge %s: %s\n", a->cmd, e.msg);
    return -1;
}

static int sweep_opt(void *ctx, int key, const char *v)
{
    sweep_args *a = ctx;
    switch (key) {
    case OPT_TASKS: a->tasks = v; return 0;
    case OPT_MODELS: a->models = v; return 0;
    case OPT_MODEL: a->model = v; return 0;
    case OPT_VARIANTS: a->variants = v; return 0;
    case OPT_DB: a->db = v; return 0;
    case OPT_RECORD: a->record = v; return 0;
    case OPT_ON_OVERFLOW: return parse_overflow(a, v);
    case OPT_SEED: return parse_long(a->cmd, "--seed", v, 0, &a->seed);
    case OPT_LIMIT: return parse_long(a->cmd, "--limit", v, 0, &a->limit);
    case OPT_MAX_SAMPLES:
        return parse_long(a->cmd, "--max-samples", v, 1, &a->max_samples);
    case OPT_BATCH: return parse_long(a->cmd, "--batch", v, 1, &a->batch);
    case 'q': a->quiet = 1; return 0;
    case OPT_RESCORE: a->rescore = 1; return 0;
    case OPT_SHARD: return parse_shard(a, v);
    case OPT_PLAN: a->plan = 1; return 0;
    }
    if (cli_double(v, &a->temperature) || a->temperature < 0) {
        fprintf(stderr, "emerge %s: --temperature must be a number >= 0\n", a->cmd);
        return -1;
    }
    return 0;
}

/* The signal that asked the sweep to stop (0: none). The handler only
 * sets it; the sweep looks at it between batches. A second signal ends
 * the process at once (the default action): the store stays consistent,
 * as after a kill. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
    signal(sig, SIG_DFL);
}

static void catch_stop_signals(int on)
{
    struct sigaction sa = {0};
    sa.sa_handler = on ? on_stop_signal : SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The closing lines and the exit status of a sweep that ran. */
static int sweep_summary(const sweep_stats *st, const char *db, int quiet)
{
    if (!quiet || st->stopped)
        fprintf(stderr, "emerge: %s: %ld requests (%ld cached, %ld sent, %ld "
                "failed; %ld of them self-consistency samples), %ld examples "
                "scored, %ld unscored, %ld scored before\n",
                st->stopped ? "stopped" : "done", st->requests, st->cached,
                st->sent, st->failed, st->samples, st->scored, st->unscored,
                st->skipped);
    /* openai members whose server cannot return prompt log-probs: their
     * log-likelihood requests failed once each, not retried (counted in
     * "failed" above; said here with what to do) */
    openai_counts oc;
    openai_get_counts(&oc);
    if (oc.limited > 0)
        fprintf(stderr, "emerge: %ld log-likelihood requests failed because "
                "the server cannot return prompt log-probs (not retried; "
                "generation tasks ran): check it with `emerge models --probe "
                "URL`, or serve the model with a server that echoes\n",
                oc.limited);
    if (st->truncated || st->cut || st->no_logprobs)
        fprintf(stderr, "emerge: %ld prompts did not fit the model's context, "
                "%ld generations stopped at max_tokens or the context, %ld "
                "generations came without token log-probs\n", st->truncated,
                st->cut, st->no_logprobs);
    if (st->overflowed)
        fprintf(stderr, "emerge: incomplete: %ld examples left unscored because "
                "their prompt did not fit (--on-overflow)\n", st->overflowed);
    if (st->missing)
        fprintf(stderr, "emerge: incomplete: %ld requested task/variant pairs "
                "could not be built (named above)\n", st->missing);
    if (st->stopped) {
        fprintf(stderr, "emerge: stopped by %s after storing the batch in flight; "
                "everything above is in %s, and the same command resumes from "
                "there\n", stop_signal == SIGTERM ? "SIGTERM" : "SIGINT", db);
        return 128 + (stop_signal ? stop_signal : SIGINT);
    }
    return st->unscored > 0 || st->overflowed > 0 || st->missing > 0 ? 1 : 0;
}

static int sweep_main(int argc, char **argv, int single)
{
    const cli_cmd cmd = {single ? "run" : "sweep", sweep_usage, sweep_options, 0};
    sweep_args a = {.cmd = cmd.name, .seed = 1234, .batch = 32};
    int first, p = cli_parse(&cmd, argc, argv, sweep_opt, &a, &first);
    if (p)
        return cli_exit(p);
    if (first < argc)
        return cli_usage_error(&cmd, 0, "unexpected argument '%s'", argv[first]);
    const char *models = single ? a.model : a.models;
    if (!a.tasks || !models || !a.db)
        return cli_usage_error(&cmd, 1, "--tasks, %s and --db are required",
                               single ? "--model" : "--models");
    em_err err = {{0}};
    family *fam = NULL;
    sweep_opts o = {.db_path = a.db, .seed = (uint64_t)a.seed, .limit = (int)a.limit,
                    .batch = (int)a.batch, .temperature = a.temperature,
                    .record_path = a.record, .quiet = a.quiet,
                    .rescore = a.rescore, .max_samples = (int)a.max_samples,
                    .on_overflow = a.on_overflow, .stop = &stop_signal,
                    .shard = a.shard, .n_shards = a.n_shards, .plan = a.plan};
    int rc = single ? family_from_spec(models, &fam, &err)
                    : family_load(models, &fam, &err);
    if (rc == 0)
        rc = sweep_expand_tasks(a.tasks, &o.task_paths, &o.n_tasks, &err);
    if (a.variants)
        sweep_split(a.variants, &o.variants, &o.n_variants);
    char *cmdline = join_args(argc, argv);
    o.command = cmdline;
    sweep_stats st;
    if (rc == 0) {
        family_sort(fam);
        o.fam = fam;
        catch_stop_signals(1);
        rc = sweep_run(&o, &st, &err);
    }
    int status = 2;
    if (rc != 0)
        fprintf(stderr, "emerge %s: %s\n", argv[0], err.msg);
    else
        status = a.plan ? 0 : sweep_summary(&st, a.db, a.quiet);
    /* Only now: a signal after the last batch must not cut the summary. */
    catch_stop_signals(0);
    free(cmdline);
    sweep_free_list(o.task_paths, o.n_tasks);
    sweep_free_list(o.variants, o.n_variants);
    family_free(fam);
    return status;
}

int cmd_sweep(int argc, char **argv) { return sweep_main(argc, argv, 0); }
int cmd_run(int argc, char **argv) { return sweep_main(argc, argv, 1); }

/* ---- results --------------------------------------------------------------- */

static void num_or_blank(FILE *f, double v, const char *fmt)
{
    if (!isnan(v))
        fprintf(f, fmt, v);
}

static void print_csv(FILE *f, const result_row *r, int n)
{
    fprintf(f, "task,variant,model,params,tokens,metric,mean,lo,hi,n,normalized,"
            "truncated,cut\n");
    for (int i = 0; i < n; i++) {
        csv_field_file(f, r[i].task);
        fputc(',', f);
        csv_field_file(f, r[i].variant);
        fputc(',', f);
        csv_field_file(f, r[i].model);
        fprintf(f, ",%.6g,%.6g,", r[i].params, r[i].tokens);
        csv_field_file(f, r[i].metric);
        fprintf(f, ",%.6f,", r[i].mean);
        num_or_blank(f, r[i].lo, "%.6f");
        fputc(',', f);
        num_or_blank(f, r[i].hi, "%.6f");
        fprintf(f, ",%d,", r[i].n);
        num_or_blank(f, r[i].normalized, "%.4f");
        fprintf(f, ",%d,%d\n", r[i].n_truncated, r[i].n_cut);
    }
}

static void print_table(FILE *f, const result_row *r, int n)
{
    fprintf(f, "%-24s %-14s %-18s %10s %-26s %9s %21s %7s %8s\n", "task",
            "variant", "model", "params", "metric", "mean", "95% CI", "n", "norm");
    int marked = 0;
    for (int i = 0; i < n; i++) {
        char ci[48] = "", norm[24] = "", cnt[24];
        if (!isnan(r[i].lo))
            snprintf(ci, sizeof ci, "[%.4f, %.4f]", r[i].lo, r[i].hi);
        if (!isnan(r[i].normalized))
            snprintf(norm, sizeof norm, "%.2f", r[i].normalized);
        snprintf(cnt, sizeof cnt, "%d%s%s", r[i].n, r[i].n_truncated ? "*" : "",
                 r[i].n_cut ? "+" : "");
        marked |= r[i].n_truncated || r[i].n_cut;
        fprintf(f, "%-24s %-14s %-18s %10.3g %-26s %9.4f %21s %7s %8s\n",
                r[i].task, r[i].variant, r[i].model, r[i].params, r[i].metric,
                r[i].mean, ci, cnt, norm);
    }
    if (marked)
        fprintf(f, "* some examples were scored on prompts cut to fit the model's "
                "context; + some generations stopped at max_tokens or the context "
                "(--format csv: columns truncated, cut)\n");
}

static void add_num(cJSON *o, const char *k, double v)
{
    if (isnan(v))
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, v);
}

static void print_json(FILE *f, const result_row *r, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task", r[i].task);
        cJSON_AddStringToObject(o, "variant", r[i].variant);
        cJSON_AddStringToObject(o, "model", r[i].model);
        add_num(o, "params", r[i].params);
        add_num(o, "tokens", r[i].tokens);
        cJSON_AddStringToObject(o, "metric", r[i].metric);
        add_num(o, "mean", r[i].mean);
        add_num(o, "lo", r[i].lo);
        add_num(o, "hi", r[i].hi);
        cJSON_AddNumberToObject(o, "n", r[i].n);
        add_num(o, "normalized", r[i].normalized);
        cJSON_AddBoolToObject(o, "preferred", r[i].preferred);
        cJSON_AddNumberToObject(o, "truncated", r[i].n_truncated);
        cJSON_AddNumberToObject(o, "cut", r[i].n_cut);
        cJSON_AddItemToArray(a, o);
    }
    char *s = cJSON_Print(a);
    fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(a);
}

static int print_results(store_query *q, const row_filter *flt,
                         const char *format, em_err *err)
{
    result_row *rows;
    int n;
    if (results_load(q, &rows, &n, err) != 0)
        return -1;
    n = filter_rows(flt, rows, n);
    if (!strcmp(format, "csv"))
        print_csv(stdout, rows, n);
    else if (!strcmp(format, "json"))
        print_json(stdout, rows, n);
    else
        print_table(stdout, rows, n);
    results_free(rows, n);
    return 0;
}

typedef struct results_args {
    const char *db, *format, *task_version;
    int per_example;
    row_filter flt;
} results_args;

enum { OPT_FORMAT = 300, OPT_TASK_VERSION, OPT_TASK, OPT_VARIANT, OPT_METRIC,
       OPT_PER_EXAMPLE };

static const cli_cmd results_cmd = {"results", results_usage, (const struct option[]){
    {"db", required_argument, NULL, OPT_DB},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"task-version", required_argument, NULL, OPT_TASK_VERSION},
    {"task", required_argument, NULL, OPT_TASK},
    {"variant", required_argument, NULL, OPT_VARIANT},
    {"model", required_argument, NULL, OPT_MODEL},
    {"metric", required_argument, NULL, OPT_METRIC},
    {"per-example", no_argument, NULL, OPT_PER_EXAMPLE}, {0}}, 0};

static int results_opt(void *ctx, int key, const char *v)
{
    results_args *a = ctx;
    switch (key) {
    case OPT_DB: a->db = v; break;
    case OPT_FORMAT: a->format = v; break;
    case OPT_TASK_VERSION: a->task_version = v; break;
    case OPT_TASK: a->flt.task = v; break;
    case OPT_VARIANT: a->flt.variant = v; break;
    case OPT_MODEL: a->flt.model = v; break;
    case OPT_METRIC: a->flt.metric = v; break;
    default: a->per_example = 1; break;
    }
    return 0;
}

static int results_parse(int argc, char **argv, results_args *a)
{
    int first, p = cli_parse(&results_cmd, argc, argv, results_opt, a, &first);
    if (p)
        return p;
    if (first < argc)
        return cli_usage_error(&results_cmd, 0, "unexpected argument '%s'",
                               argv[first]);
    if (!a->db)
        return cli_usage_error(&results_cmd, 1, "--db is required");
    if (strcmp(a->format, "table") && strcmp(a->format, "csv") &&
        strcmp(a->format, "json"))
        return cli_usage_error(&results_cmd, 0, "--format must be table, csv "
                               "or json, got '%s'", a->format);
    return CLI_OK;
}

int cmd_results(int argc, char **argv)
{
    results_args a = {.format = "table"};
    int p = results_parse(argc, argv, &a);
    if (p)
        return cli_exit(p);
    const char *db = a.db, *format = a.format, *task_version = a.task_version;
    int per_example = a.per_example;
    row_filter flt = a.flt;
    em_err err = {{0}};
    store_query *q;
    if (store_query_open(db, &q, &err) != 0) {
        fprintf(stderr, "emerge results: %s\n", err.msg);
        return 2;
    }
    int rc = store_query_select_versions(q, task_version, &err);
    if (rc == 0)
        rc = store_query_version_notes(q, stderr, &err);
    if (rc == 0)
        rc = per_example ? results_dump_scores(q, stdout, &err)
                         : print_results(q, &flt, format, &err);
    store_query_close(q);
    if (rc != 0) {
        fprintf(stderr, "emerge results: %s\n", err.msg);
        return 2;
    }
    return 0;
}

/* ---- gc, migrate -------------------------------------------------------- */

enum { OPT_DRY_RUN = 320 };

static int db_opt(void *ctx, int key, const char *v)
{
    const char **db = ctx;
    if (key == OPT_DB)
        *db = v;
    else
        db[1] = "";     /* --dry-run: any non-NULL */
    return 0;
}

/* --db FILE (required) and --dry-run where c has it: db[0] the file,
 * db[1] non-NULL for --dry-run. CLI_OK, CLI_HELP or CLI_BAD. */
static int db_args(const cli_cmd *c, int argc, char **argv, const char *db[2])
{
    int first, p = cli_parse(c, argc, argv, db_opt, db, &first);
    if (p)
        return p;
    if (first < argc)
        return cli_usage_error(c, 0, "unexpected argument '%s'", argv[first]);
    if (!db[0])
        return cli_usage_error(c, 1, "--db is required");
    return CLI_OK;
}

/* A writing command on an existing store: never creates one. */
static int open_existing(const char *cmd, const char *db, store **s, em_err *err)
{
    struct stat sb;
    if (stat(db, &sb) != 0) {
        fprintf(stderr, "emerge %s: %s: no such database\n", cmd, db);
        return -1;
    }
    if (store_open(db, s, err) != 0) {
        fprintf(stderr, "emerge %s: %s\n", cmd, err->msg);
        return -1;
    }
    return 0;
}

int cmd_gc(int argc, char **argv)
{
    const cli_cmd cmd = {"gc", gc_usage, (const struct option[]){
        {"db", required_argument, NULL, OPT_DB},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN}, {0}}, 0};
    const char *args[2] = {NULL, NULL};
    int p = db_args(&cmd, argc, argv, args);
    if (p)
        return cli_exit(p);
    const char *db = args[0];
    int dry = args[1] != NULL;
    em_err err = {{0}};
    store *s;
    if (open_existing("gc", db, &s, &err) != 0)
        return 2;
    int removed = 0, rc = store_gc(s, dry, stdout, &removed, &err);
    store_close(s);
    if (rc != 0) {
        fprintf(stderr, "emerge gc: %s\n", err.msg);
        return 2;
    }
    printf("%d superseded task versions %s\n", removed,
           dry ? "would be removed" : "removed");
    return 0;
}

int cmd_migrate(int argc, char **argv)
{
    const cli_cmd cmd = {"migrate", migrate_usage, (const struct option[]){
        {"db", required_argument, NULL, OPT_DB}, {0}}, 0};
    const char *args[2] = {NULL, NULL};
    int p = db_args(&cmd, argc, argv, args);
    if (p)
        return cli_exit(p);
    const char *db = args[0];
    em_err err = {{0}};
    store *s;
    if (open_existing("migrate", db, &s, &err) != 0)
        return 2;
    store_close(s);
    printf("%s: schema version %d\n", db, STORE_SCHEMA_VERSION);
    return 0;
}

/*
 * cmd_scaling.c - `emerge scaling` and `emerge bleu`.
 *
 *   emerge scaling (--db RUNS.sqlite | --scores FILE [FILE...])
 *                  [--params MODEL=N,...|FILE] [--format table|csv|json|md]
 *                  [--axis params|flops|nonembed] [--task T] [--variant V]
 *                  [--metric M]
 *       scores by model size per (task, variant, metric), with linearity,
 *       breakthroughness, emergence scale and inverse/U-shape flags
 *       (metrics/README.md defines them and the CSV columns). A --scores
 *       file is a CSV or an lm-evaluation-harness results JSON
 *       (metrics/lmeval.h; --params gives the parameter counts it lacks).
 *   emerge scaling ... --compare FAMILY_A FAMILY_B | --compare-variants A,B
 *                  [--replicates N] [--seed N]
 *       the cross-family matching scale (metrics/compare.h): where A
 *       reaches B's score at each of B's sizes, and B/A parameter ratios.
 *
 *   emerge bleu REF [REF...] HYP       (the last file is the hypotheses)
 *   emerge bleu --refs REF1,REF2 HYP   [--score-only]
 *       corpus BLEU as sacrebleu prints it: one segment per line, line i
 *       of every reference file is a reference of hypothesis line i.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"
#include "metrics/lmeval.h"
#include "metrics/results.h"
#include "metrics/compare.h"
#include "metrics/metric.h"
#include "metrics/mirage.h"
#include "metrics/predict.h"
#include "metrics/scaling.h"

int cmd_scaling(int argc, char **argv);
int cmd_bleu(int argc, char **argv);

static const char scaling_help[] =
    "usage: emerge scaling (--db RUNS.sqlite | --scores FILE [FILE...])\n"
    "                      [--params MODEL=N[,MODEL=N...] | --params FILE]\n"
    "                      [--format table|csv|json|md] "
    "[--axis params|flops|nonembed]\n"
    "                      [--task T] [--variant V] [--metric M]\n"
    "                      [--task-version [TASK=]N]\n"
    "CSV columns (header row required): task,model,params,score"
    "[,lo,hi][,variant][,metric]\n"
    "  optional: flops or tokens, n, baseline, baseline_hi, low, "
    "high\n"
    "--scores files may also be lm-evaluation-harness results_*.json (one\n"
    "model each; told apart by a leading '{'): every 'METRIC,FILTER' with\n"
    "its stderr. Their parameter counts: --params MODEL=N (160M, 1.4B, 1.2e9;\n"
    "repeatable; or a file of 'MODEL,N' lines), else the file's\n"
    "config.model_num_parameters (lm-eval's hf model writes it)\n"
    "cross-family matching scale (table or csv):\n"
    "  --compare FAMILY_A FAMILY_B   models named FAMILY_A... vs "
    "FAMILY_B... (or a\n"
    "                                'family' column in --scores)\n"
    "  --compare-variants A,B        e.g. retrieval,standard or "
    "cot,standard\n"
    "  --replicates N (bootstrap, default 1000)  --seed N (default 1)\n"
    "the mirage test (needs --db; table or csv):\n"
    "  --mirage    per (task, variant) with exact_match and target_logprob:\n"
    "              does a smooth (log-linear) account of each example's\n"
    "              target log-prob predict the exact-match curve? R^2,\n"
    "              breakthroughness of both curves, and a verdict:\n"
    "              metric-induced | not explained by token log-probs |\n"
    "              no jump | not applicable (metrics/mirage.h)\n"
    "back-testing (needs --db; table or csv):\n"
    "  --predict   fit exact match on all but the largest K models, two ways\n"
    "              (a logistic of the metric; each example's smooth target\n"
    "              log-prob mapped to the grade), predict the held-back\n"
    "              models, report both errors with bootstrap CIs\n"
    "              (metrics/predict.h; --replicates, default 200 here)\n"
    "  --hold K    models held back (default 1)\n";

enum { OPT_COMPARE = 256, OPT_COMPARE_VARIANTS, OPT_REPLICATES, OPT_SEED,
       OPT_DB, OPT_TASK_VERSION, OPT_SCORES, OPT_TASK, OPT_VARIANT, OPT_METRIC,
       OPT_FORMAT, OPT_AXIS, OPT_REFS, OPT_PARAMS, OPT_MIRAGE, OPT_PREDICT,
       OPT_HOLD };

#define OPTION(name, key) {name, required_argument, NULL, key}

static const cli_cmd scaling_cmd = {"scaling", scaling_help, (const struct option[]){
    OPTION("compare", OPT_COMPARE),
    OPTION("compare-variants", OPT_COMPARE_VARIANTS),
    OPTION("replicates", OPT_REPLICATES), OPTION("seed", OPT_SEED),
    OPTION("db", OPT_DB), OPTION("task-version", OPT_TASK_VERSION),
    OPTION("scores", OPT_SCORES), OPTION("task", OPT_TASK),
    OPTION("variant", OPT_VARIANT), OPTION("metric", OPT_METRIC),
    OPTION("format", OPT_FORMAT), OPTION("axis", OPT_AXIS),
    OPTION("params", OPT_PARAMS), {"mirage", no_argument, NULL, OPT_MIRAGE},
    {"predict", no_argument, NULL, OPT_PREDICT}, OPTION("hold", OPT_HOLD),
    {0}}, 0};

typedef struct scaling_opts {
    const char *db, *scores, *task, *variant, *metric, *task_version;
    const char **files;         /* --scores and the words after it */
    int n_files;
    lmeval_params params;       /* --params */
    scaling_format fmt;
    int axis;                   /* SCALING_AXIS_* */
    int axis_flops;             /* axis == SCALING_AXIS_FLOPS */
    const char *cmp_a, *cmp_b;  /* --compare families */
    const char *cmp_variants;   /* --compare-variants "A,B" */
    long replicates;
    unsigned long long seed;
    int mirage;                 /* --mirage */
    int predict;                /* --predict */
    long hold;                  /* --hold K */
    int replicates_given;
} scaling_opts;

static int parse_format(const char *s, scaling_format *out)
{
    static const char *names[] = {"table", "csv", "json", "md"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (scaling_format)i;
            return 0;
        }
    return -1;
}

/* A non-negative integer option value up to max; -1 after a message. */
static int parse_count(const char *v, const char *name, long max, long *out)
{
    long x;
    if (cli_long(v, &x) || x < 0 || x > max) {
        fprintf(stderr, "emerge scaling: %s must be an integer from 0 to %ld, got "
                        "'%s'\n", name, max, v);
        return -1;
    }
    *out = x;
    return 0;
}

/* The options that only name something. */
static int scaling_str(scaling_opts *o, int key, const char *v)
{
    switch (key) {
    case OPT_DB: o->db = v; break;
    case OPT_TASK_VERSION: o->task_version = v; break;
    case OPT_SCORES:
        o->scores = o->scores ? o->scores : v;
        o->files = em_realloc(o->files, sizeof *o->files * (size_t)(o->n_files + 1));
        o->files[o->n_files++] = v;
        break;
    case OPT_TASK: o->task = v; break;
    case OPT_VARIANT: o->variant = v; break;
    default: o->metric = v; break;
    }
    return 0;
}

/* What scaling_opt works on: the options, and the words being parsed
 * for --compare's second value. */
typedef struct scaling_ctx {
    scaling_opts *o;
    int argc;
    char **argv;
} scaling_ctx;

/* --compare A B: the second family is the word after A (getopt_long
 * gives an option one value; optind is the next word). */
static int parse_compare(scaling_ctx *c, const char *v)
{
    if (optind >= c->argc) {
        fprintf(stderr, "emerge scaling: --compare needs two family names\n");
        return -1;
    }
    c->o->cmp_a = v;
    c->o->cmp_b = c->argv[optind++];
    return 0;
}

static int parse_pair(scaling_opts *o, const char *v)
{
    const char *comma = strchr(v, ',');
    if (!comma || comma == v || !comma[1] || strchr(comma + 1, ',')) {
        fprintf(stderr, "emerge scaling: --compare-variants wants A,B "
                        "(e.g. retrieval,standard), got '%s'\n", v);
        return -1;
    }
    o->cmp_variants = v;
    return 0;
}

static int scaling_opt(void *ctx, int key, const char *v)
{
    scaling_opts *o = ((scaling_ctx *)ctx)->o;
    long seed;
    switch (key) {
    case OPT_COMPARE: return parse_compare(ctx, v);
    case OPT_MIRAGE: o->mirage = 1; return 0;
    case OPT_PREDICT: o->predict = 1; return 0;
    case OPT_HOLD: return parse_count(v, "--hold", 1000, &o->hold);
    case OPT_COMPARE_VARIANTS: return parse_pair(o, v);
    case OPT_REPLICATES:
        o->replicates_given = 1;
        return parse_count(v, "--replicates", 1000000, &o->replicates);
    case OPT_SEED:
        if (parse_count(v, "--seed", 0x7fffffffL, &seed))
            return -1;
        o->seed = (unsigned long long)seed;
        return 0;
    case OPT_FORMAT:
        if (parse_format(v, &o->fmt) == 0)
            return 0;
        fprintf(stderr, "emerge scaling: unknown format '%s' (table, "
                        "csv, json, md)\n", v);
        return -1;
    case OPT_PARAMS: {
        em_err err;
        if (lmeval_params_add(&o->params, v, &err) == 0)
            return 0;
        fprintf(stderr, "emerge scaling: %s\n", err.msg);
        return -1;
    }
    case OPT_AXIS:
        o->axis = scaling_axis_parse(v);
        if (o->axis < 0) {
            fprintf(stderr, "emerge scaling: unknown axis '%s' ("
                            SCALING_AXIS_NAMES ")\n", v);
            return -1;
        }
        o->axis_flops = o->axis == SCALING_AXIS_FLOPS;
        return 0;
    }
    return scaling_str(o, key, v);
}

/* CLI_OK, CLI_HELP (help printed) or CLI_BAD (error printed). */
static int scaling_parse(int argc, char **argv, scaling_opts *o)
{
    memset(o, 0, sizeof *o);
    o->fmt = SCALING_TABLE;
    o->replicates = 1000;
    o->seed = 1;
    o->hold = 1;
    scaling_ctx c = {o, argc, argv};
    int first, p = cli_parse(&scaling_cmd, argc, argv, scaling_opt, &c, &first);
    if (p)
        return p;
    if (first < argc && !o->scores)
        return cli_usage_error(&scaling_cmd, 0, "unexpected argument '%s'",
                               argv[first]);
    for (; first < argc; first++) { /* --scores a.json b.json ... */
        o->files = em_realloc(o->files, sizeof *o->files * (size_t)(o->n_files + 1));
        o->files[o->n_files++] = argv[first];
    }
    if (!o->db == !o->scores)
        return cli_usage_error(&scaling_cmd, 1, "give exactly one of --db and "
                               "--scores");
    if (o->cmp_a && o->cmp_variants)
        return cli_usage_error(&scaling_cmd, 0, "give one of --compare and "
                               "--compare-variants");
    if ((o->mirage || o->predict) &&
        (o->scores || o->cmp_a || o->cmp_variants || (o->mirage && o->predict) ||
         (o->fmt != SCALING_TABLE && o->fmt != SCALING_CSV)))
        return cli_usage_error(&scaling_cmd, 0, "--mirage and --predict read "
                               "per-example scores from --db, print a table "
                               "or csv, and go one at a time, without "
                               "--compare");
    if (o->hold < 1)
        return cli_usage_error(&scaling_cmd, 0, "--hold wants at least 1");
    if (o->predict && !o->replicates_given)
        o->replicates = 200;
    if (o->scores && o->axis == SCALING_AXIS_NONEMBED)
        return cli_usage_error(&scaling_cmd, 0, "--axis nonembed reads the "
                               "models table: it needs --db");
    return CLI_OK;
}

/* Models without a non-embedding count are left off that axis, and
 * named. */
static int note_unknown(store_query *q, int axis, em_err *err)
{
    char *names = NULL;
    int n = 0;
    if (results_axis_unknown(q, axis, &names, &n, err) != 0)
        return -1;
    if (n)
        fprintf(stderr, "emerge scaling: note: %d model%s without a "
                "non-embedding parameter count left out of the nonembed "
                "axis: %s\n", n, n == 1 ? "" : "s", names);
    free(names);
    return 0;
}

static int load_series(const scaling_opts *o, scaling_series **s, int *n,
                       em_err *err)
{
    if (o->scores) {
        lmeval_opts lo = {&o->params, o->task, o->metric};
        return scaling_read_scores(o->files, o->n_files, &lo, s, n, err);
    }
    /* Read-only: nothing is created, migrated or written. */
    store_query *q;
    if (store_query_open(o->db, &q, err))
        return -1;
    int rc = store_query_select_versions(q, o->task_version, err);
    if (rc == 0)
        rc = store_query_version_notes(q, stderr, err);
    if (rc == 0)
        rc = results_series(q, o->axis, s, n, err);
    if (rc == 0 && o->axis == SCALING_AXIS_NONEMBED)
        rc = note_unknown(q, o->axis, err);
    store_query_close(q);
    return rc;
}

static int keep_series(const scaling_opts *o, const scaling_series *s)
{
    return (!o->task || !strcmp(o->task, s->task)) &&
           (!o->variant || !strcmp(o->variant, s->variant)) &&
           (!o->metric || !strcmp(o->metric, s->metric));
}

/* On the flops axis, points without a training-token count have no place:
 * they are dropped (as the store does) and counted for a note. */
static int drop_no_flops(scaling_series *s)
{
    int k = 0, dropped = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->pts[i].flops > 0) {
            s->pts[k++] = s->pts[i];
        } else {
            free(s->pts[i].model);
            dropped++;
        }
    }
    s->n = k;
    return dropped;
}

/* Moves the wanted series to the front; frees the others' contents.
 * Returns how many are kept. */
static int filter_series(const scaling_opts *o, scaling_series *s, int n,
                         int *dropped_pts)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (o->axis_flops)
            *dropped_pts += drop_no_flops(&s[i]);
        if (keep_series(o, &s[i]) && s[i].n > 0) {
            scaling_series t = s[k];
            s[k++] = s[i];
            s[i] = t;
        }
    }
    return k;
}

/* What the scores were read from, for messages. */
static const char *source_name(const scaling_opts *o)
{
    return o->db ? o->db : o->n_files == 1 ? o->scores : "the --scores files";
}

/* Whether --scores names one file, and it is a CSV (which may have a
 * 'family' column); several files, or lm-eval's JSON, are read as series. */
static int single_csv(const scaling_opts *o)
{
    char *text;
    size_t len;
    em_err err;
    if (o->n_files != 1 || em_read_file(o->scores, &text, &len, &err))
        return o->n_files == 1; /* unreadable: compare_read_csv says why */
    int json = lmeval_is_json(text, len);
    free(text);
    return !json;
}

/* The curves to compare: CSV groups (with their family column), or the
 * store's series split by model-name prefix (--compare) or whole
 * (--compare-variants). A CSV without families is split like the store. */
static int compare_groups(const scaling_opts *o, compare_group **g, int *ng,
                          em_err *err)
{
    scaling_series *s = NULL;
    int n = 0, has_family = 0;
    if (o->scores && single_csv(o)) {
        if (compare_read_csv(o->scores, g, ng, err))
            return -1;
        for (int i = 0; i < *ng; i++)
            has_family |= (*g)[i].family != NULL;
        if (has_family || !o->cmp_a)
            return 0;
        s = em_calloc((size_t)(*ng ? *ng : 1), sizeof *s);
        for (int i = 0; i < *ng; i++)
            s[i] = (*g)[i].s;
        compare_split_families(s, *ng, o->cmp_a, o->cmp_b, g, ng);
        free(s);
        return 0;
    }
    if (load_series(o, &s, &n, err))
        return -1;
    if (o->cmp_a)
        compare_split_families(s, n, o->cmp_a, o->cmp_b, g, ng);
    else
        compare_from_series(s, n, g, ng);
    scaling_series_free(s, n);
    return 0;
}

/* --task / --metric (and --variant when comparing families) filters. */
static int keep_group(const scaling_opts *o, const compare_group *g)
{
    return (!o->task || !strcmp(o->task, g->s.task)) &&
           (!o->metric || !strcmp(o->metric, g->s.metric)) &&
           (!o->variant || !o->cmp_a || !strcmp(o->variant, g->s.variant));
}

static int run_compare(const scaling_opts *o)
{
    compare_group *g = NULL, *all = NULL;
    int ng = 0, n_all = 0, nr = 0, rc;
    compare_result *r = NULL;
    em_err err;
    char va[256] = "", *vb = NULL;
    if (o->cmp_variants) {
        snprintf(va, sizeof va, "%s", o->cmp_variants);
        vb = strchr(va, ',');
        *vb++ = '\0';
    }
    if (compare_groups(o, &all, &n_all, &err)) {
        fprintf(stderr, "emerge scaling: %s\n", err.msg);
        return 2;
    }
    g = em_calloc((size_t)(n_all ? n_all : 1), sizeof *g);
    for (int i = 0; i < n_all; i++)
        if (keep_group(o, &all[i]))
            g[ng++] = all[i];
    rc = o->cmp_a ? compare_families(g, ng, o->cmp_a, o->cmp_b, (int)o->replicates,
                                     o->seed, &r, &nr)
                  : compare_variants(g, ng, va, vb, (int)o->replicates, o->seed, &r, &nr);
    if (rc)
        fprintf(stderr, "emerge scaling: no (task, metric) has scores of both %s and "
                        "%s%s in %s\n", o->cmp_a ? o->cmp_a : va, o->cmp_a ? o->cmp_b : vb,
                o->cmp_a ? " (families are model-name prefixes, or the CSV's "
                           "'family' column)" : " (variants)", source_name(o));
    else if (compare_print(stdout, r, nr, o->fmt, &err) || fflush(stdout))
        rc = fprintf(stderr, "emerge scaling: write error\n");
    compare_result_free(r, nr);
    free(g);
    compare_groups_free(all, n_all);
    return rc ? 2 : 0;
}

/* The store read-only at the selected task versions, for --mirage and
 * --predict; 0, or -1 with the error printed. */
static int open_store(const scaling_opts *o, store_query **q)
{
    em_err err;
    int rc = store_query_open(o->db, q, &err);
    if (!rc) {
        rc = store_query_select_versions(*q, o->task_version, &err);
        if (!rc)
            rc = store_query_version_notes(*q, stderr, &err);
        if (rc)
            store_query_close(*q);
    }
    if (rc)
        fprintf(stderr, "emerge scaling: %s\n", err.msg);
    return rc;
}

static int keep_row(const scaling_opts *o, const char *task,
                    const char *variant)
{
    return (!o->task || !strcmp(o->task, task)) &&
           (!o->variant || !strcmp(o->variant, variant));
}

/* Nothing to print: said, exit 2. */
static int no_rows(const scaling_opts *o)
{
    fprintf(stderr, "emerge scaling: no (task, variant) with exact_match "
            "scores%s in %s\n", o->task || o->variant ? " matches the "
            "filters" : "", o->db);
    return 2;
}

/* --mirage: the test per (task, variant), filtered by --task/--variant. */
static int run_mirage(const scaling_opts *o)
{
    store_query *q;
    mirage_row *rows = NULL;
    int n = 0, k = 0;
    em_err err;
    if (open_store(o, &q))
        return 2;
    int rc = mirage_from_store(q, o->axis, &rows, &n, &err);
    store_query_close(q);
    if (rc) {
        fprintf(stderr, "emerge scaling: %s\n", err.msg);
        return 2;
    }
    for (int i = 0; i < n; i++)
        if (keep_row(o, rows[i].task, rows[i].variant)) {
            mirage_row t = rows[k];
            rows[k++] = rows[i];
            rows[i] = t;
        }
    if (k)
        mirage_print(stdout, rows, k, o->fmt == SCALING_CSV);
    mirage_rows_free(rows, n);
    return k ? 0 : no_rows(o);
}

/* --predict: the back-test per (task, variant). */
static int run_predict(const scaling_opts *o)
{
    store_query *q;
    predict_row *rows = NULL;
    int n = 0, k = 0;
    em_err err;
    if (open_store(o, &q))
        return 2;
    int rc = predict_from_store(q, o->axis, (int)o->hold, (int)o->replicates,
                                o->seed, &rows, &n, &err);
    store_query_close(q);
    if (rc) {
        fprintf(stderr, "emerge scaling: %s\n", err.msg);
        return 2;
    }
    for (int i = 0; i < n; i++)
        if (keep_row(o, rows[i].task, rows[i].variant)) {
            predict_row t = rows[k];
            rows[k++] = rows[i];
            rows[i] = t;
        }
    if (k)
        predict_print(stdout, rows, k, o->fmt == SCALING_CSV);
    predict_rows_free(rows, n);
    return k ? 0 : no_rows(o);
}

/* The scaling table of the chosen series; an exit status. */
static int run_scaling(const scaling_opts *op)
{
    scaling_opts o = *op;
    scaling_series *s;
    int n, dropped = 0, rc;
    em_err err;
    if (load_series(&o, &s, &n, &err)) {
        fprintf(stderr, "emerge scaling: %s\n", err.msg);
        return 2;
    }
    int kept = filter_series(&o, s, n, &dropped);
    if (dropped)
        fprintf(stderr, "emerge scaling: note: %d scores without a token "
                        "count left out of the flops axis\n", dropped);
    if (!kept) {
        fprintf(stderr, "emerge scaling: no series%s in %s\n",
                o.task || o.variant || o.metric ? " match the filters" : "",
                source_name(&o));
        scaling_series_free(s, n);
        return 2;
    }
    rc = scaling_print(stdout, s, kept, o.axis, o.fmt, &err);
    scaling_series_free(s, n);
    if (rc || fflush(stdout)) {
        fprintf(stderr, "emerge scaling: %s\n", rc ? err.msg : "write error");
        return 2;
    }
    return 0;
}

int cmd_scaling(int argc, char **argv)
{
    scaling_opts o;
    int rc = scaling_parse(argc, argv, &o);
    if (rc == 0)
        rc = o.mirage ? run_mirage(&o) : o.predict ? run_predict(&o)
           : o.cmp_a || o.cmp_variants ? run_compare(&o) : run_scaling(&o);
    else
        rc = cli_exit(rc);
    free(o.files);
    lmeval_params_free(&o.params);
    return rc;
}

/* ---- emerge bleu ---- */

typedef struct lines {
    char *text; /* the file, its newlines replaced by NULs */
    char **v;
    int n;
} lines;

/* Splits at '\n' only (sacrebleu opens files with newline="\n"); a final
 * newline does not start another line. A '\r' left at the end of a line is
 * whitespace that BLEU's right-strip removes. */
static int lines_read(const char *path, lines *l, em_err *err)
{
    size_t len;
    memset(l, 0, sizeof *l);
    if (em_read_file(path, &l->text, &len, err))
        return -1;
    if (memchr(l->text, '\0', len)) {
        free(l->text);
        return em_errorf(err, "%s: binary data (NUL byte)", path);
    }
    int cap = 0;
    for (char *p = l->text; *p;) {
        char *e = strchr(p, '\n');
        if (l->n == cap) {
            cap = cap ? cap * 2 : 64;
            l->v = em_realloc(l->v, sizeof(char *) * (size_t)cap);
        }
        l->v[l->n++] = p;
        if (!e)
            break;
        *e = '\0';
        p = e + 1;
    }
    return 0;
}

static void lines_free(lines *l)
{
    free(l->text);
    free(l->v);
}

static const char bleu_help[] =
    "usage: emerge bleu REF [REF...] HYP [--score-only]\n"
    "       emerge bleu --refs REF1,REF2,... HYP [--score-only]\n"
    "corpus BLEU (sacrebleu defaults: 13a, exp smoothing); one "
    "segment per line\n"
    "  -b, --score-only  print only the score\n";

static const cli_cmd bleu_cmd = {"bleu", bleu_help, (const struct option[]){
    {"score-only", no_argument, NULL, 'b'},
    OPTION("refs", OPT_REFS), {0}}, 0};

typedef struct bleu_args {
    int score_only;
    const char *refs;   /* --refs (the last one given) */
} bleu_args;

static int bleu_opt(void *ctx, int key, const char *v)
{
    bleu_args *a = ctx;
    if (key == 'b')
        a->score_only = 1;
    else
        a->refs = v;
    return 0;
}

/* Splits a comma-separated list onto paths[] (pointing into s). */
static int split_refs(char *s, char **paths, int max)
{
    int n = 0;
    for (char *p = strtok(s, ","); p && n < max; p = strtok(NULL, ","))
        paths[n++] = p;
    return n;
}

static void print_bleu(const metric_bleu *b, int score_only)
{
    if (score_only) {
        printf("%.2f\n", b->score);
        return;
    }
    double ratio = b->ref_len > 0 ? b->hyp_len / b->ref_len : 0;
    printf("BLEU = %.2f %.1f/%.1f/%.1f/%.1f (BP = %.3f ratio = %.3f "
           "hyp_len = %.0f ref_len = %.0f)\n",
           b->score, b->precisions[0], b->precisions[1], b->precisions[2],
           b->precisions[3], b->bp, ratio, b->hyp_len, b->ref_len);
}

/* Scores HYP against the reference files; -1 with err on bad input. */
static int bleu_files(char **refs, int n_refs, const char *hyp,
                      metric_bleu *out, em_err *err)
{
    lines h, *r = em_calloc((size_t)n_refs, sizeof(lines));
    int rc = lines_read(hyp, &h, err), nr = 0;
    for (; !rc && nr < n_refs; nr++) {
        rc = lines_read(refs[nr], &r[nr], err);
        if (!rc && r[nr].n != h.n)
            rc = em_errorf(err, "%s has %d lines but %s has %d: line i of "
                           "each reference file goes with line i of the "
                           "hypotheses", refs[nr], r[nr].n, hyp, h.n);
    }
    if (!rc) {
        metric_bleu_stats st;
        const char **seg = em_malloc(sizeof(char *) * (size_t)n_refs);
        memset(&st, 0, sizeof st);
        for (int i = 0; i < h.n; i++) {
            for (int j = 0; j < n_refs; j++)
                seg[j] = r[j].v[i];
            metric_bleu_add(&st, h.v[i], seg, n_refs);
        }
        free(seg);
        metric_bleu_corpus(&st, out);
    }
    for (int j = 0; j < nr; j++)
        lines_free(&r[j]);
    free(r);
    if (h.text || h.v)
        lines_free(&h);
    return rc;
}

int cmd_bleu(int argc, char **argv)
{
    bleu_args a = {0, NULL};
    int first, p = cli_parse(&bleu_cmd, argc, argv, bleu_opt, &a, &first);
    if (p)
        return cli_exit(p);
    char **files = argv + first, *refs_arg = a.refs ? em_strdup(a.refs) : NULL;
    int n = argc - first, score_only = a.score_only, n_refs = 0, rc = 0;
    /* Positional files are REF... HYP; --refs adds references before. */
    char **all = em_calloc((size_t)argc + 64, sizeof(char *));
    if (refs_arg)
        n_refs = split_refs(refs_arg, all, 64);
    for (int i = 0; i + 1 < n; i++)
        all[n_refs++] = files[i];
    if (n < 1 || n_refs < 1) {
        rc = cli_usage_error(&bleu_cmd, 1, "need at least one reference file "
                             "and a hypothesis file");
    } else {
        metric_bleu b;
        em_err err;
        if (bleu_files(all, n_refs, files[n - 1], &b, &err)) {
            fprintf(stderr, "emerge bleu: %s\n", err.msg);
            rc = 2;
        } else {
            print_bleu(&b, score_only);
        }
    }
    free(all);
    free(refs_arg);
    return rc;
}

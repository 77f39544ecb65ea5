/*
 * cmd_scaling.c - `emerge scaling` and `emerge bleu`.
 *
 *   emerge scaling (--db RUNS.sqlite | --scores FILE.csv)
 *                  [--format table|csv|json|md] [--axis params|flops]
 *                  [--task T] [--variant V] [--metric M]
 *       scores by model size per (task, variant, metric), with linearity,
 *       breakthroughness, emergence scale and inverse/U-shape flags
 *       (metrics/README.md defines them and the CSV columns).
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
#include "metrics/results.h"
#include "metrics/compare.h"
#include "metrics/metric.h"
#include "metrics/scaling.h"

int cmd_scaling(int argc, char **argv);
int cmd_bleu(int argc, char **argv);

/* "--name value" or "--name=value": harness/cli/cliargs.h's cli_value, under
 * the name the parsers below were written with. */
#define opt_value cli_value

static void scaling_usage(FILE *f)
{
    fprintf(f, "usage: emerge scaling (--db RUNS.sqlite | --scores FILE.csv)\n"
               "                      [--format table|csv|json|md] "
               "[--axis params|flops]\n"
               "                      [--task T] [--variant V] [--metric M]\n"
               "                      [--task-version [TASK=]N]\n"
               "CSV columns (header row required): task,model,params,score"
               "[,lo,hi][,variant][,metric]\n"
               "  optional: flops or tokens, n, baseline, baseline_hi, low, "
               "high\n"
               "cross-family matching scale (table or csv):\n"
               "  --compare FAMILY_A FAMILY_B   models named FAMILY_A... vs "
               "FAMILY_B... (or a\n"
               "                                'family' column in --scores)\n"
               "  --compare-variants A,B        e.g. retrieval,standard or "
               "cot,standard\n"
               "  --replicates N (bootstrap, default 1000)  --seed N (default 1)\n");
}

typedef struct scaling_opts {
    const char *db, *scores, *task, *variant, *metric, *task_version;
    scaling_format fmt;
    int axis_flops;
    const char *cmp_a, *cmp_b;  /* --compare families */
    const char *cmp_variants;   /* --compare-variants "A,B" */
    long replicates;
    unsigned long long seed;
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

/* 0 ok, 1 help printed, -1 error printed. */
static int scaling_parse(int argc, char **argv, scaling_opts *o)
{
    memset(o, 0, sizeof *o);
    o->fmt = SCALING_TABLE;
    o->replicates = 1000;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            scaling_usage(stdout);
            return 1;
        } else if (!strcmp(argv[i], "--compare")) {
            if (i + 2 >= argc) {
                fprintf(stderr, "emerge scaling: --compare needs two family "
                                "names\n");
                return -1;
            }
            o->cmp_a = argv[++i];
            o->cmp_b = argv[++i];
        } else if ((v = opt_value(argc, argv, &i, "--compare-variants", &missing))) {
            const char *comma = strchr(v, ',');
            if (!comma || comma == v || !comma[1] || strchr(comma + 1, ',')) {
                fprintf(stderr, "emerge scaling: --compare-variants wants A,B "
                                "(e.g. retrieval,standard), got '%s'\n", v);
                return -1;
            }
            o->cmp_variants = v;
        } else if ((v = opt_value(argc, argv, &i, "--replicates", &missing))) {
            if (parse_count(v, "--replicates", 1000000, &o->replicates))
                return -1;
        } else if ((v = opt_value(argc, argv, &i, "--seed", &missing))) {
            long seed;
            if (parse_count(v, "--seed", 0x7fffffffL, &seed))
                return -1;
            o->seed = (unsigned long long)seed;
        } else if ((v = opt_value(argc, argv, &i, "--db", &missing))) {
            o->db = v;
        } else if ((v = opt_value(argc, argv, &i, "--task-version", &missing))) {
            o->task_version = v;
        } else if ((v = opt_value(argc, argv, &i, "--scores", &missing))) {
            o->scores = v;
        } else if ((v = opt_value(argc, argv, &i, "--task", &missing))) {
            o->task = v;
        } else if ((v = opt_value(argc, argv, &i, "--variant", &missing))) {
            o->variant = v;
        } else if ((v = opt_value(argc, argv, &i, "--metric", &missing))) {
            o->metric = v;
        } else if ((v = opt_value(argc, argv, &i, "--format", &missing))) {
            if (parse_format(v, &o->fmt)) {
                fprintf(stderr, "emerge scaling: unknown format '%s' (table, "
                                "csv, json, md)\n", v);
                return -1;
            }
        } else if ((v = opt_value(argc, argv, &i, "--axis", &missing))) {
            if (strcmp(v, "params") && strcmp(v, "flops")) {
                fprintf(stderr, "emerge scaling: unknown axis '%s' (params, "
                                "flops)\n", v);
                return -1;
            }
            o->axis_flops = !strcmp(v, "flops");
        } else {
            fprintf(stderr, "emerge scaling: %s '%s'\n",
                    missing ? "missing value for" : "unknown argument",
                    argv[i]);
            scaling_usage(stderr);
            return -1;
        }
    }
    if (!o->db == !o->scores) {
        fprintf(stderr, "emerge scaling: give exactly one of --db and "
                        "--scores\n");
        scaling_usage(stderr);
        return -1;
    }
    if (o->cmp_a && o->cmp_variants) {
        fprintf(stderr, "emerge scaling: give one of --compare and "
                        "--compare-variants\n");
        return -1;
    }
    return 0;
}

static int load_series(const scaling_opts *o, scaling_series **s, int *n,
                       em_err *err)
{
    if (o->scores)
        return scaling_read_csv(o->scores, s, n, err);
    /* Read-only: nothing is created, migrated or written. */
    store_query *q;
    if (store_query_open(o->db, &q, err))
        return -1;
    int rc = store_query_select_versions(q, o->task_version, err);
    if (rc == 0)
        rc = store_query_version_notes(q, stderr, err);
    if (rc == 0)
        rc = results_series(q, o->axis_flops, s, n, err);
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

/* The curves to compare: CSV groups (with their family column), or the
 * store's series split by model-name prefix (--compare) or whole
 * (--compare-variants). A CSV without families is split like the store. */
static int compare_groups(const scaling_opts *o, compare_group **g, int *ng,
                          em_err *err)
{
    scaling_series *s = NULL;
    int n = 0, has_family = 0;
    if (o->scores) {
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
                           "'family' column)" : " (variants)", o->db ? o->db : o->scores);
    else if (compare_print(stdout, r, nr, o->fmt, &err) || fflush(stdout))
        rc = fprintf(stderr, "emerge scaling: write error\n");
    compare_result_free(r, nr);
    free(g);
    compare_groups_free(all, n_all);
    return rc ? 2 : 0;
}

int cmd_scaling(int argc, char **argv)
{
    scaling_opts o;
    int rc = scaling_parse(argc, argv, &o);
    if (rc)
        return rc > 0 ? 0 : 2;
    if (o.cmp_a || o.cmp_variants)
        return run_compare(&o);
    scaling_series *s;
    int n, dropped = 0;
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
                o.db ? o.db : o.scores);
        scaling_series_free(s, n);
        return 2;
    }
    rc = scaling_print(stdout, s, kept, o.axis_flops, o.fmt, &err);
    scaling_series_free(s, n);
    if (rc || fflush(stdout)) {
        fprintf(stderr, "emerge scaling: %s\n", rc ? err.msg : "write error");
        return 2;
    }
    return 0;
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

static void bleu_usage(FILE *f)
{
    fprintf(f, "usage: emerge bleu REF [REF...] HYP [--score-only]\n"
               "       emerge bleu --refs REF1,REF2,... HYP [--score-only]\n"
               "corpus BLEU (sacrebleu defaults: 13a, exp smoothing); one "
               "segment per line\n");
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
    char **files = em_calloc((size_t)argc + 64, sizeof(char *));
    char *refs_arg = NULL;
    int n = 0, score_only = 0, n_refs = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        int missing = 0;
        const char *v;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            bleu_usage(stdout);
            free(files);
            return 0;
        } else if (!strcmp(argv[i], "--score-only") || !strcmp(argv[i], "-b")) {
            score_only = 1;
        } else if ((v = opt_value(argc, argv, &i, "--refs", &missing))) {
            free(refs_arg);
            refs_arg = em_strdup(v);
        } else if (missing || (argv[i][0] == '-' && argv[i][1])) {
            fprintf(stderr, "emerge bleu: %s '%s'\n",
                    missing ? "missing value for" : "unknown option", argv[i]);
            rc = 2;
        } else {
            files[n++] = argv[i];
        }
    }
    /* Positional files are REF... HYP; --refs adds references before. */
    char **all = em_calloc((size_t)argc + 64, sizeof(char *));
    if (refs_arg)
        n_refs = split_refs(refs_arg, all, 64);
    for (int i = 0; i + 1 < n; i++)
        all[n_refs++] = files[i];
    if (!rc && (n < 1 || n_refs < 1)) {
        fprintf(stderr, "emerge bleu: need at least one reference file and "
                        "a hypothesis file\n");
        rc = 2;
    }
    if (rc) {
        bleu_usage(stderr);
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
    free(files);
    free(refs_arg);
    return rc;
}

/* test_sc.c - self-consistency end to end over the synthetic and replay
 * backends: the majority beats one sample exactly when the per-sample
 * accuracy is above the plurality threshold, every sample is its own
 * stored request, --max-samples draws a prefix that a full run extends,
 * the self_consistency YAML key, and replaying recorded samples. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/family.h"
#include "harness/store.h"
#include "metrics/results.h"
#include "harness/sweep.h"
#include "harness/task.h"
#include "tests/testlib.h"

#define ARITH "tests/data/tasks/sweep-arith.yaml"

static char *path_in(const char *dir, const char *name)
{
    em_buf b = {0};
    em_buf_printf(&b, "%s/%s", dir, name);
    return em_buf_take(&b);
}

typedef struct run_cfg {
    const char *tasks, *model, *variants, *db, *record;
    int limit, max_samples;
    uint64_t seed;
} run_cfg;

static int sweep(const run_cfg *c, sweep_stats *st, em_err *err)
{
    family *fam = NULL;
    sweep_opts o = {.db_path = c->db, .seed = c->seed, .limit = c->limit,
                    .batch = 32, .record_path = c->record, .command = "test",
                    .quiet = 1, .max_samples = c->max_samples};
    int rc = family_from_spec(c->model, &fam, err);
    if (rc == 0)
        rc = sweep_expand_tasks(c->tasks, &o.task_paths, &o.n_tasks, err);
    if (c->variants)
        sweep_split(c->variants, &o.variants, &o.n_variants);
    if (rc == 0) {
        family_sort(fam);
        o.fam = fam;
        rc = sweep_run(&o, st, err);
    }
    sweep_free_list(o.task_paths, o.n_tasks);
    sweep_free_list(o.variants, o.n_variants);
    family_free(fam);
    return rc;
}

/* First column of the first row, as a double; NAN when none. */
static double sql_num(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    double v = NAN;
    if (sqlite3_open(db, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            v = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

/* Every row of a query, one line each (values with 17 digits). */
static char *sql_rows(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    em_buf b = {0};
    em_buf_puts(&b, "");
    if (sqlite3_open(db, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int i = 0; i < sqlite3_column_count(st); i++) {
                if (sqlite3_column_type(st, i) == SQLITE_FLOAT)
                    em_buf_printf(&b, "%.17g|", sqlite3_column_double(st, i));
                else
                    em_buf_printf(&b, "%s|", (const char *)sqlite3_column_text(st, i));
            }
            em_buf_putc(&b, '\n');
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return em_buf_take(&b);
}

static double metric_mean(const char *db, const char *metric)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT avg(value) FROM scores WHERE metric = '%s'",
             metric);
    return sql_num(db, sql);
}

/* A flat synthetic model answers each sample right with probability p and
 * spreads the rest over k-1 = 3 wrong answers: the plurality threshold is
 * p = (1-p)/3, i.e. p = 0.25. */
static void plurality_case(double p, double *single, double *majority,
                           double *agreement)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "p.sqlite");
    char model[128];
    snprintf(model, sizeof model, "synthetic,params=1e8,shape=flat,floor=%g,ceil=%g",
             p, p);
    run_cfg c = {.tasks = ARITH, .model = model, .variants = "standard+sc9",
                 .db = db, .limit = 120, .seed = 7};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_MSG(st.samples == 120 * 9, "samples %ld", st.samples);
    *single = metric_mean(db, "pass@1");
    *majority = metric_mean(db, "sc_correct");
    *agreement = metric_mean(db, "sc_agreement");
    /* The task's own metric scores the majority answer. */
    CHECK_NEAR(metric_mean(db, "exact_match"), *majority, 1e-12);
    free(db);
    free(dir);
}

TEST(majority_beats_single_above_plurality_threshold)
{
    double single, major, agree;
    /* Above 1/2: a majority is reached and wins almost always. */
    plurality_case(0.6, &single, &major, &agree);
    CHECK_NEAR(single, 0.6, 0.06);
    CHECK_MSG(major > single + 0.2, "p=0.6: majority %g, single %g", major, single);
    /* Below 1/2 but above the plurality threshold 0.25: still wins, since
     * the wrong answers split their votes. */
    plurality_case(0.38, &single, &major, &agree);
    CHECK_NEAR(single, 0.38, 0.06);
    CHECK_MSG(major > single + 0.1, "p=0.38: majority %g, single %g", major, single);
    /* Below the threshold: each wrong answer is likelier than the right
     * one, and voting makes things worse. */
    plurality_case(0.12, &single, &major, &agree);
    CHECK_NEAR(single, 0.12, 0.05);
    CHECK_MSG(major < single, "p=0.12: majority %g, single %g", major, single);
}

TEST(samples_are_requests_and_resume_draws_the_rest)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "s.sqlite"), *full = path_in(dir, "full.sqlite");
    const char *model = "synthetic,params=1e8,shape=flat,floor=0.5,ceil=0.5";
    run_cfg c = {.tasks = ARITH, .model = model, .variants = "standard+sc8",
                 .db = db, .limit = 12, .seed = 3, .max_samples = 3};
    sweep_stats st;
    em_err err = {{0}};
    /* A quick look: 3 samples (plus the target log-likelihood) each. */
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 12 * 4);
    CHECK_INT(st.samples, 12 * 3);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM scores WHERE metric = 'pass@3'"), 12, 0);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM scores WHERE metric = 'pass@8'"), 0, 0);
    CHECK_NEAR(sql_num(db, "SELECT count(DISTINCT config) FROM scores WHERE config"
                           " LIKE 'sc=3/8,%'"), 1, 0);
    /* The full run keeps those samples and draws only the other 5. */
    c.max_samples = 0;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 12 * 5);
    CHECK_INT(st.cached, 12 * 4);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM requests WHERE kind = 'generate'"),
               12 * 8, 0);
    CHECK_NEAR(sql_num(db, "SELECT count(DISTINCT settings) FROM requests WHERE"
                           " kind = 'generate' AND example_id = 'q000'"), 8, 0);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM scores WHERE metric = 'pass@3'"), 0, 0);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM scores WHERE metric = 'pass@8'"), 12, 0);
    /* ... and ends where an uninterrupted full run does. */
    c.db = full;
    CHECK_INT(sweep(&c, &st, &err), 0);
    const char *q = "SELECT example_id, metric, value, answer, config FROM scores"
                    " ORDER BY example_id, metric";
    char *a = sql_rows(db, q), *b = sql_rows(full, q);
    CHECK(strlen(a) > 100);
    CHECK_STR(a, b);
    /* A finished run sends nothing. */
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 0);
    CHECK_INT(st.skipped, 12);
    /* Another run seed draws other samples. */
    c.seed = 4;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 12 * 8);
    free(a);
    free(b);
    free(db);
    free(full);
    free(dir);
}

TEST(pass_at_k_and_agreement_consistent)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "k.sqlite");
    run_cfg c = {.tasks = ARITH, .model = "synthetic,params=1e8,shape=flat,floor=0.4,ceil=0.4",
                 .variants = "standard+sc6", .db = db, .limit = 30, .seed = 9};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), 0);
    /* pass@6 is "any of 6 correct", pass@3 lies between pass@1 and it. */
    double p1 = metric_mean(db, "pass@1"), p3 = metric_mean(db, "pass@3"),
           p6 = metric_mean(db, "pass@6");
    CHECK(p1 < p3 && p3 < p6 && p6 <= 1);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM scores WHERE metric = 'pass@6'"
                           " AND value NOT IN (0, 1)"), 0, 0);
    /* Agreement is a vote share of 6 samples: at least 2/6 with 4 answers. */
    CHECK(sql_num(db, "SELECT min(value) FROM scores WHERE metric = 'sc_agreement'")
          >= 2.0 / 6 - 1e-12);
    /* Results carry the agreement ECE and its calibration bins. */
    store_query *q;
    result_row *rows;
    int n, ece = 0, bins = 0, bin_n = 0;
    CHECK_INT(store_query_open(db, &q, &err), 0);
    CHECK_INT(results_load(q, &rows, &n, &err), 0);
    for (int i = 0; i < n; i++) {
        ece += !strcmp(rows[i].metric, "sc_ece") && rows[i].mean >= 0 &&
               rows[i].mean <= 1 && rows[i].n == 30;
        if (!strncmp(rows[i].metric, "sc_calib_", 9)) {
            bins++;
            bin_n += rows[i].n;
        }
    }
    CHECK_INT(ece, 1);
    CHECK(bins >= 2);
    CHECK_INT(bin_n, 30);
    results_free(rows, n);
    scaling_series *ss;
    int ns, found = 0;
    CHECK_INT(results_series(q, 0, &ss, &ns, &err), 0);
    for (int i = 0; i < ns; i++)
        found += !strcmp(ss[i].metric, "sc_agreement") || !strcmp(ss[i].metric, "pass@1") ||
                 !strcmp(ss[i].metric, "sc_ece");
    CHECK_INT(found, 3);
    scaling_series_free(ss, ns);
    store_query_close(q);
    free(db);
    free(dir);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

TEST(yaml_self_consistency_key)
{
    char *dir = tl_tmpdir();
    char *path = path_in(dir, "t.yaml");
    write_file(path,
        "name: sc-yaml\n"
        "type: generate\n"
        "template: \"Q: What is {{input}}?\\nA:\"\n"
        "examples:\n"
        "  - {input: \"12 + 30\", target: \"42\"}\n"
        "  - {input: \"40 + 11\", target: \"51\"}\n"
        "answer: {pattern: '(-?[0-9]+)', normalize: [strip, number]}\n"
        "stop: [\"\\n\"]\n"
        "metrics: [exact_match]\n"
        "variants:\n"
        "  - name: voted\n"
        "    self_consistency: {samples: 5, temperature: 0.5, top_p: 0.9}\n");
    task *t;
    em_err err = {{0}};
    CHECK_INT(task_load(path, &t, &err), 0);
    const task_variant *v = task_variant_find(t, "voted");
    CHECK(v && v->sc_samples == 5);
    CHECK_NEAR(v->sc_temperature, 0.5, 0);
    CHECK_NEAR(v->sc_top_p, 0.9, 0);
    CHECK_INT(task_variant_find(t, "standard")->sc_samples, 0);
    task_free(t);
    char *db = path_in(dir, "y.sqlite");
    run_cfg c = {.tasks = path, .model = "synthetic,params=1e8,shape=flat,floor=0.5,ceil=0.5",
                 .variants = "voted", .db = db, .seed = 1};
    sweep_stats st;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 10);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM requests WHERE settings LIKE"
                           " '%\"temperature\":0.5,\"top_p\":0.9,%'"), 10, 0);
    CHECK_NEAR(sql_num(db, "SELECT count(*) FROM scores WHERE metric = 'pass@5'"), 2, 0);
    /* Bad values name the file, line and column. */
    write_file(path,
        "name: sc-yaml\n"
        "type: generate\n"
        "template: \"{{input}}\"\n"
        "examples: [{input: a, target: b}]\n"
        "metrics: [exact_match]\n"
        "variants:\n"
        "  - name: voted\n"
        "    self_consistency: {samples: 5, temperature: 0}\n");
    CHECK_INT(task_load(path, &t, &err), -1);
    CHECK_HAS(err.msg, "t.yaml:8:");
    CHECK_HAS(err.msg, "temperature > 0");
    write_file(path,
        "name: sc-yaml\n"
        "type: generate\n"
        "template: \"{{input}}\"\n"
        "examples: [{input: a, target: b}]\n"
        "metrics: [exact_match]\n"
        "variants:\n"
        "  - name: voted\n"
        "    self_consistency: {sample: 5}\n");
    CHECK_INT(task_load(path, &t, &err), -1);
    CHECK_HAS(err.msg, "t.yaml:8:");
    CHECK_HAS(err.msg, "'sample'");
    free(db);
    free(path);
    free(dir);
}

TEST(cli_suffix_errors)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "e.sqlite");
    run_cfg c = {.tasks = ARITH, .model = "synthetic,params=1e8", .db = db,
                 .variants = "nonesuch+sc4", .limit = 2};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), -1);
    CHECK_HAS(err.msg, "no variant 'nonesuch+sc4'");
    CHECK_HAS(err.msg, "+scN");
    c.variants = "cot+scx";
    CHECK_INT(sweep(&c, &st, &err), -1);
    CHECK_HAS(err.msg, "no variant 'cot+scx'");
    free(db);
    free(dir);
}

TEST(replay_answers_each_sample)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "r1.sqlite"), *db2 = path_in(dir, "r2.sqlite");
    char *rec = path_in(dir, "rec.jsonl");
    run_cfg c = {.tasks = ARITH, .model = "synthetic,params=1e8,shape=flat,floor=0.5,ceil=0.5",
                 .variants = "standard+sc4", .db = db, .record = rec, .limit = 8,
                 .seed = 5};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), 0);
    em_buf spec = {0};
    em_buf_printf(&spec, "replay:%s,params=1e8", rec);
    c.model = spec.s;
    c.record = NULL;
    c.db = db2;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.failed, 0);
    const char *q = "SELECT example_id, metric, value, answer FROM scores"
                    " ORDER BY example_id, metric";
    char *a = sql_rows(db, q), *b = sql_rows(db2, q);
    CHECK(strlen(a) > 100);
    CHECK_STR(a, b);
    /* The samples really differ: some example has agreement below 1. */
    CHECK(sql_num(db2, "SELECT min(value) FROM scores WHERE metric = 'sc_agreement'") < 1);
    free(a);
    free(b);
    em_buf_free(&spec);
    free(rec);
    free(db);
    free(db2);
    free(dir);
}

static int has_path(char **paths, int n, const char *suffix)
{
    for (int i = 0; i < n; i++) {
        size_t a = strlen(paths[i]), b = strlen(suffix);
        if (a >= b && !strcmp(paths[i] + a - b, suffix))
            return 1;
    }
    return 0;
}

/* --tasks DIR takes BIG-bench JSON tasks too; a loose JSON data file of a
 * YAML task is not taken for a task. */
TEST(tasks_dir_takes_bigbench_json)
{
    char **paths;
    int n;
    em_err err = {{0}};
    CHECK_INT(sweep_expand_tasks("tests/data/bigbench", &paths, &n, &err), 0);
    CHECK(has_path(paths, n, "/mc_arith.json"));
    CHECK(has_path(paths, n, "/arith_regex/task.json"));
    sweep_free_list(paths, n);
    CHECK_INT(sweep_expand_tasks("tests/data/tasks/good", &paths, &n, &err), 0);
    CHECK(has_path(paths, n, "/arith.yaml"));
    CHECK(!has_path(paths, n, "/bb.json"));
    sweep_free_list(paths, n);
}

int main(void)
{
    RUN(majority_beats_single_above_plurality_threshold);
    RUN(samples_are_requests_and_resume_draws_the_rest);
    RUN(pass_at_k_and_agreement_consistent);
    RUN(yaml_self_consistency_key);
    RUN(cli_suffix_errors);
    RUN(replay_answers_each_sample);
    RUN(tasks_dir_takes_bigbench_json);
    return tl_summary();
}

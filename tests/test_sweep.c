/* test_sweep.c - the sweep loop end to end over the synthetic and replay
 * backends: scores follow the synthetic ground truth, the cache (within a
 * batch, across batches, tasks and runs), failed requests retried, zero-shot
 * CoT second passes, recording and replaying. */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/family.h"
#include "harness/identity.h"
#include "harness/store.h"
#include "metrics/results.h"
#include "harness/sweep.h"
#include "tests/testlib.h"

#define ARITH "tests/data/tasks/sweep-arith.yaml"
#define MC "tests/data/tasks/sweep-mc.yaml"

static char *path_in(const char *dir, const char *name)
{
    em_buf b = {0};
    em_buf_printf(&b, "%s/%s", dir, name);
    return em_buf_take(&b);
}

typedef struct run_cfg {
    const char *tasks;     /* comma list */
    const char *family;    /* family file, or NULL */
    const char *model;     /* command-line spec, or NULL */
    const char *variants;  /* comma list, or NULL */
    const char *db;
    const char *record;
    int limit, batch, rescore;
    double temperature;
    uint64_t seed;
} run_cfg;

static int sweep(const run_cfg *c, sweep_stats *st, em_err *err)
{
    family *fam = NULL;
    sweep_opts o = {.db_path = c->db, .seed = c->seed, .limit = c->limit,
                    .batch = c->batch ? c->batch : 32,
                    .temperature = c->temperature, .record_path = c->record,
                    .command = "test", .quiet = 1, .rescore = c->rescore};
    int rc = c->family ? family_load(c->family, &fam, err)
                       : family_from_spec(c->model, &fam, err);
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

static char *dump(const char *db)
{
    store_query *q;
    em_err err;
    if (store_query_open(db, &q, &err) != 0)
        return em_strdup(err.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    results_dump_scores(q, f, &err);
    fclose(f);
    store_query_close(q);
    return buf;
}

static long long sql_int(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open(db, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

static double logistic_p(double params, double mid, double width)
{
    double z = 2 * log(9.0) * (log10(params) - log10(mid)) / width;
    return 1 / (1 + exp(-z));
}

TEST(test_sweep_follows_ground_truth)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "a.sqlite");
    run_cfg c = {.tasks = ARITH, .family = "tests/data/families/synthetic-smooth.yaml",
                 .db = db};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_MSG(st.requests == 6 * 200 * 2, "requests %ld (%s)", st.requests, err.msg);
    CHECK_INT(st.sent, st.requests);
    CHECK_INT(st.scored, 6 * 200);
    CHECK_INT(st.unscored, 0);
    store_query *q;
    result_row *r = NULL;
    int n = 0;
    CHECK_INT(store_query_open(db, &q, &err), 0);
    CHECK_INT(results_load(q, &r, &n, &err), 0);
    int checked = 0;
    for (int i = 0; i < n; i++) {
        double p = logistic_p(r[i].params, 1e8, 4);
        p = p < 1e-6 ? 1e-6 : p > 1 - 1e-6 ? 1 - 1e-6 : p;
        if (!strcmp(r[i].metric, "exact_match")) {
            double sd = sqrt(p * (1 - p) / r[i].n);
            CHECK_MSG(fabs(r[i].mean - p) <= 4 * sd + 1e-3, "%s: accuracy %.3f, p %.3f",
                      r[i].model, r[i].mean, p);
            CHECK_INT(r[i].n, 200);
            checked++;
        } else if (!strcmp(r[i].metric, "target_logprob")) {
            CHECK_NEAR(r[i].mean, log(p), 1e-9);
        }
    }
    CHECK_INT(checked, 6);
    results_free(r, n);
    /* The scaling series: one per metric, sorted by params. */
    scaling_series *ss;
    int ns;
    CHECK_INT(results_series(q, 0, &ss, &ns, &err), 0);
    CHECK_INT(ns, 2);
    if (ns > 0) {
        CHECK_INT(ss[0].n, 6);
        for (int i = 1; i < ss[0].n; i++)
            CHECK(ss[0].pts[i].params > ss[0].pts[i - 1].params);
        CHECK(ss[0].pts[5].score > ss[0].pts[0].score);
    }
    scaling_series_free(ss, ns);
    store_query_close(q);
    free(db);
    free(dir);
}

TEST(test_rerun_is_all_cache)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "a.sqlite");
    run_cfg c = {.tasks = ARITH "," MC, .family = "tests/data/families/synthetic.yaml",
                 .variants = "standard,zero_shot_cot", .db = db, .limit = 30,
                 .batch = 7};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_MSG(st.sent > 0 && st.cached == 0, "sent %ld cached %ld: %s", st.sent,
              st.cached, err.msg);
    char *d1 = dump(db);
    long need = st.requests, units = st.scored;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 0);
    CHECK_INT(st.skipped, units);
    char *d2 = dump(db);
    CHECK_STR(d1, d2);
    free(d2);
    /* --rescore recomputes (here: repairs) every score from the cached
     * responses without sending anything. */
    sqlite3 *h;
    sqlite3_open(db, &h);
    sqlite3_exec(h, "UPDATE scores SET value = 42", NULL, NULL, NULL);
    sqlite3_close(h);
    c.rescore = 1;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 0);
    CHECK_INT(st.skipped, 0);
    CHECK_INT(st.cached, need);
    c.rescore = 0;
    d2 = dump(db);
    CHECK_STR(d1, d2);
    CHECK(strlen(d1) > 1000);
    /* zero_shot_cot ran its second pass from the first pass's output. */
    CHECK(sql_int(db, "SELECT count(*) FROM requests WHERE pass = 2 AND prompt"
                      " LIKE '%Let''s think step by step.%Therefore%'") == 6 * 60);
    CHECK(sql_int(db, "SELECT count(*) FROM scores WHERE variant = 'zero_shot_cot'"
                      " AND metric = 'exact_match'") == 6 * 30);
    CHECK(sql_int(db, "SELECT count(*) FROM runs") == 3);
    free(d1);
    free(d2);
    free(db);
    free(dir);
}

static void copy_task(const char *dir)
{
    /* The same prompts under another task name. */
    char *out = NULL;
    tl_sh(&out, "sed 's/^name: sweep-arith/name: sweep-arith-copy/' %s > %s/copy.yaml"
                " && cp tests/data/tasks/sweep-arith.jsonl %s/", ARITH, dir, dir);
    free(out);
}

TEST(test_cache_across_tasks_and_batches)
{
    char *dir = tl_tmpdir();
    copy_task(dir);
    char *copy = path_in(dir, "copy.yaml");
    em_buf tasks = {0};
    em_buf_printf(&tasks, "%s,%s", ARITH, copy);
    for (int pass = 0; pass < 2; pass++) {
        /* The copy's requests are cache hits from the batches before,
         * whatever the batch size. */
        char name[32];
        snprintf(name, sizeof name, "b%d.sqlite", pass);
        char *db = path_in(dir, name);
        run_cfg c = {.tasks = tasks.s, .model = "synthetic,params=1e8,name=m",
                     .db = db, .limit = 50, .batch = pass ? 1000 : 8};
        sweep_stats st;
        em_err err = {{0}};
        CHECK_INT(sweep(&c, &st, &err), 0);
        CHECK_MSG(st.requests == 200, "requests %ld: %s", st.requests, err.msg);
        CHECK_INT(st.sent, 100);
        CHECK_INT(st.scored, 100);
        CHECK(sql_int(db, "SELECT count(*) FROM requests") == 100);
        CHECK(sql_int(db, "SELECT count(DISTINCT task_id) FROM scores") == 2);
        /* Both tasks got identical scores. */
        CHECK(sql_int(db, "SELECT count(*) FROM scores a JOIN scores b ON"
                          " a.example_id = b.example_id AND a.metric = b.metric AND"
                          " a.task_id < b.task_id AND a.value = b.value") == 100);
        free(db);
    }
    em_buf_free(&tasks);
    free(copy);
    /* Identical requests inside one batch are sent once. */
    char *dup = path_in(dir, "dup.yaml");
    FILE *f = fopen(dup, "w");
    fputs("name: dup\ntemplate: \"Q: {{input}}=\"\nexamples:\n"
          "  - {id: a, input: 2+2, target: '4'}\n"
          "  - {id: b, input: 2+2, target: '4'}\n"
          "  - {id: c, input: 3+3, target: '6'}\n", f);
    fclose(f);
    char *db = path_in(dir, "dup.sqlite");
    run_cfg c = {.tasks = dup, .model = "synthetic,params=1e12", .db = db};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_MSG(st.requests == 3, "requests %ld: %s", st.requests, err.msg);
    CHECK_INT(st.sent, 2);
    CHECK_INT(st.scored, 3);
    free(db);
    free(dup);
    free(dir);
}

/* Drops line `skip` (0-based) of a file. */
static void drop_line(const char *path, int skip, char **dropped)
{
    char *text;
    em_err err;
    if (em_read_file(path, &text, NULL, &err) != 0)
        return;
    em_buf keep = {0};
    int line = 0;
    for (char *p = text; *p; line++) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (line == skip)
            *dropped = em_strndup(p, len);
        else
            em_buf_put(&keep, p, len);
        p += len;
    }
    FILE *f = fopen(path, "w");
    fputs(keep.s ? keep.s : "", f);
    fclose(f);
    em_buf_free(&keep);
    free(text);
}

TEST(test_record_replay_and_retry)
{
    char *dir = tl_tmpdir();
    char *db1 = path_in(dir, "syn.sqlite"), *db2 = path_in(dir, "rep.sqlite");
    char *rec = path_in(dir, "rec.jsonl");
    run_cfg c = {.tasks = ARITH "," MC, .model = "synthetic,params=3e8,name=m",
                 .variants = "standard,zero_shot_cot", .db = db1, .record = rec,
                 .limit = 12};
    sweep_stats st, st1;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st1, &err), 0);
    /* Replay the recording without one of its lines: that request fails. */
    char *dropped = NULL;
    drop_line(rec, 5, &dropped);
    CHECK(dropped != NULL);
    em_buf spec = {0};
    em_buf_printf(&spec, "replay:%s,params=3e8,name=m", rec);
    run_cfg r = {.tasks = c.tasks, .model = spec.s, .variants = c.variants,
                 .db = db2, .limit = 12};
    CHECK_INT(sweep(&r, &st, &err), 0);
    CHECK_INT(st.failed, 1);
    CHECK_INT(st.unscored, 1);
    CHECK_INT(st.sent, st1.sent);
    CHECK(sql_int(db2, "SELECT count(*) FROM responses WHERE ok = 0 AND error"
                       " LIKE 'replay: no recorded%'") == 1);
    /* Record it again: the next run sends only that request. */
    FILE *f = fopen(rec, "a");
    fputs(dropped ? dropped : "", f);
    fclose(f);
    CHECK_INT(sweep(&r, &st, &err), 0);
    CHECK_INT(st.sent, 1);
    CHECK_INT(st.failed, 0);
    CHECK_INT(st.unscored, 0);
    CHECK(sql_int(db2, "SELECT count(*) FROM responses WHERE ok = 0") == 0);
    /* The replayed model scores exactly as the recorded one. */
    char *d1 = dump(db1), *d2 = dump(db2);
    CHECK_STR(d1, d2);
    free(d1);
    free(d2);
    free(dropped);
    em_buf_free(&spec);
    free(rec);
    free(db1);
    free(db2);
    free(dir);
}

TEST(test_sampling_seeds)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "s.sqlite");
    run_cfg c = {.tasks = ARITH, .model = "synthetic,params=1e8", .db = db,
                 .limit = 10, .temperature = 0.7, .seed = 1};
    sweep_stats st;
    em_err err = {{0}};
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 20);
    /* A sampled generation depends on the run seed; log-likelihoods and
     * greedy generations do not. */
    c.seed = 2;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 10);
    CHECK_INT(st.cached, 10);
    CHECK(sql_int(db, "SELECT count(*) FROM requests WHERE settings LIKE '%\"seed\":%'") == 20);
    c.temperature = 0;
    c.seed = 3;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 10);
    c.seed = 4;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 0);
    free(db);
    free(dir);
}

TEST(test_sweep_errors)
{
    char *dir = tl_tmpdir();
    char *db = path_in(dir, "e.sqlite");
    sweep_stats st;
    em_err err = {{0}};
    run_cfg c = {.tasks = ARITH, .model = "synthetic,params=1e8", .db = db,
                 .variants = "standard,nonesuch"};
    CHECK_INT(sweep(&c, &st, &err), -1);
    CHECK_HAS(err.msg, "task 'sweep-arith' has no variant 'nonesuch' (it has: standard, cot, zero_shot_cot");
    c.variants = NULL;
    c.model = "synthetic";
    CHECK_INT(sweep(&c, &st, &err), -1);
    CHECK_HAS(err.msg, "'params'");
    c.model = "synthetic,params=1e8";
    c.tasks = "tests/data/tasks/no-such.yaml";
    CHECK_INT(sweep(&c, &st, &err), -1);
    CHECK_HAS(err.msg, "no-such.yaml");
    c.tasks = dir; /* a directory without task files */
    CHECK_INT(sweep(&c, &st, &err), -1);
    CHECK_HAS(err.msg, "no task files");
    /* A prompt the model cannot read fails per request, is stored as
     * failed and leaves the example unscored. */
    char *t = path_in(dir, "words.yaml");
    FILE *f = fopen(t, "w");
    fputs("name: words\ntype: generate\ntemplate: \"Say {{input}}\"\n"
          "examples:\n  - {input: hello, target: hello}\n", f);
    fclose(f);
    c.tasks = t;
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.failed, 1);
    CHECK_INT(st.unscored, 1);
    CHECK_INT(st.scored, 0);
    free(t);
    free(db);
    free(dir);
}

TEST(test_model_identity)
{
    backend_opt o1[2] = {{"shape", "sharp"}, {"threads", "2"}};
    backend_opt o2[2] = {{"threads", "8"}, {"shape", "sharp"}};
    backend_spec a = {"a", "synthetic", NULL, 1e6, 0, o1, 2, 0};
    backend_spec b = {"b", "synthetic", NULL, 1e6, 0, o2, 2, 0};
    em_err err;
    char *ia, *ib, *ic;
    CHECK_INT(identity_of_model(&a, NULL, &ia, &err), 0);
    CHECK_INT(identity_of_model(&b, NULL, &ib, &err), 0);
    CHECK_STR(ia, ib); /* option order and threads do not matter */
    b.n_params = 1e7;
    CHECK_INT(identity_of_model(&b, NULL, &ic, &err), 0);
    CHECK(strcmp(ia, ic) != 0);
    /* native models are identified by their bytes. */
    char *dir = tl_tmpdir();
    char *p = path_in(dir, "m.gguf");
    FILE *f = fopen(p, "w");
    fputs("weights-1", f);
    fclose(f);
    backend_spec n = {"n", "native", p, 0, 0, NULL, 0, 0};
    char *i1, *i2;
    CHECK_INT(identity_of_model(&n, NULL, &i1, &err), 0);
    CHECK_HAS(i1, "sha256");
    f = fopen(p, "w");
    fputs("weights-2", f);
    fclose(f);
    CHECK_INT(identity_of_model(&n, NULL, &i2, &err), 0);
    CHECK(strcmp(i1, i2) != 0);
    free(i1);
    free(i2);
    free(p);
    free(dir);
    free(ia);
    free(ib);
    free(ic);
}

/* The sweep identifies a native model by its bytes and keeps the hash in
 * its database, so the next run does not read the file again. */
TEST(test_sweep_caches_model_hash)
{
    char *fixture = tl_fixture("tiny-llama-q4_0");
    if (!fixture)
        return;
    char *dir = tl_tmpdir(), *db = path_in(dir, "r.sqlite");
    sweep_stats st;
    em_err err;
    run_cfg c = {.tasks = MC, .model = fixture, .db = db, .limit = 2};
    CHECK_MSG(sweep(&c, &st, &err) == 0, "%s", err.msg);
    char hex[65] = "";
    CHECK_INT(identity_file_sha256(fixture, NULL, hex, &err), 0);
    em_buf q = {0};
    em_buf_printf(&q, "SELECT count(*) FROM models WHERE identity LIKE "
                  "'%%\"sha256\":\"%s\"%%'", hex);
    CHECK_INT(sql_int(db, q.s), 1);
    em_buf_reset(&q);
    em_buf_printf(&q, "SELECT count(*) FROM file_hashes WHERE sha256 = '%s'", hex);
    CHECK_INT(sql_int(db, q.s), 1);
    CHECK_INT(sweep(&c, &st, &err), 0);
    CHECK_INT(st.sent, 0);
    CHECK_INT(sql_int(db, "SELECT count(*) FROM file_hashes"), 1);
    em_buf_free(&q);
    free(db);
    free(dir);
    free(fixture);
}

int main(void)
{
    RUN(test_sweep_follows_ground_truth);
    RUN(test_rerun_is_all_cache);
    RUN(test_cache_across_tasks_and_batches);
    RUN(test_record_replay_and_retry);
    RUN(test_sampling_seeds);
    RUN(test_sweep_errors);
    RUN(test_model_identity);
    RUN(test_sweep_caches_model_hash);
    return tl_summary();
}

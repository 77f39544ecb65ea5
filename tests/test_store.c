/* test_store.c - the SQLite store, family files, and the replay and
 * synthetic test backends (everything below the sweep loop). */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "harness/family.h"
#include "harness/store.h"
#include "metrics/metric.h"
#include "metrics/results.h"
#include "tests/testlib.h"

static char *path_in(const char *dir, const char *name)
{
    em_buf b = {0};
    em_buf_printf(&b, "%s/%s", dir, name);
    return em_buf_take(&b);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* ---- family files ---------------------------------------------------------- */

TEST(test_family_load)
{
    family *f = NULL;
    em_err err = {{0}};
    CHECK_INT(family_load("tests/data/families/synthetic.yaml", &f, &err), 0);
    if (!f) {
        tl_fail(__FILE__, __LINE__, "%s", err.msg);
        return;
    }
    CHECK_STR(f->name, "synthetic-sharp");
    CHECK_INT(f->n_members, 6);
    CHECK_STR(f->members[0].spec.name, "syn-1m");
    CHECK_STR(f->members[0].spec.backend, "synthetic");
    CHECK_NEAR(f->members[3].spec.n_params, 1e9, 1);
    CHECK_NEAR(f->members[3].spec.n_tokens, 2e10, 1);
    CHECK_STR(backend_spec_opt(&f->members[2].spec, "shape"), "sharp");
    CHECK_STR(backend_spec_opt(&f->members[2].spec, "midpoint"), "3e8");
    CHECK(f->members[0].step == -1);
    family_free(f);
}

TEST(test_family_paths_and_sort)
{
    char *dir = tl_tmpdir();
    char *p = path_in(dir, "fam.yaml");
    write_file(p, "name: demo\n"
                  "defaults: {backend: replay, threads: 2}\n"
                  "members:\n"
                  "  - {name: big, path: big.jsonl, params: 1.3B, step: 100}\n"
                  "  - {name: small-late, path: /abs/s.jsonl, params: 125M, step: 20}\n"
                  "  - {name: small-early, path: s.jsonl, params: 125M, step: 10,"
                  " checkpoint: c1, threads: 4}\n");
    family *f = NULL;
    em_err err = {{0}};
    CHECK_INT(family_load(p, &f, &err), 0);
    if (f) {
        family_sort(f);
        CHECK_STR(f->members[0].spec.name, "small-early");
        CHECK_STR(f->members[1].spec.name, "small-late");
        CHECK_STR(f->members[2].spec.name, "big");
        CHECK_NEAR(f->members[2].spec.n_params, 1.3e9, 1);
        char *want = path_in(dir, "big.jsonl");
        CHECK_STR(f->members[2].spec.path, want);
        free(want);
        CHECK_STR(f->members[1].spec.path, "/abs/s.jsonl");
        CHECK_STR(f->members[0].checkpoint, "c1");
        CHECK_STR(backend_spec_opt(&f->members[0].spec, "threads"), "4");
        CHECK_STR(backend_spec_opt(&f->members[1].spec, "threads"), "2");
        CHECK_NEAR(f->members[0].step, 10, 0);
        family_free(f);
    }
    free(p);
    free(dir);
}

TEST(test_family_errors)
{
    static const struct { const char *file, *want; } cases[] = {
        {"unknown-backend.yaml", "unknown-backend.yaml:7:14: members[1]: unknown backend 'synthetc' (known: "},
        {"bad-params.yaml", "bad-params.yaml:5:13: members[0]: 'params' must be a positive number, got 'lots'"},
        {"unknown-top-key.yaml", "unknown-top-key.yaml:2:1: unknown key 'memebers'"},
        {"missing-name.yaml", "missing-name.yaml:4:5: members[0]: missing required field 'name'"},
        {"duplicate-member.yaml", "duplicate-member.yaml:5:5: members[1]: duplicate member name 'a' (first at line 4)"},
        {"syntax.yaml", "syntax.yaml:4:"},
        {"nested-value.yaml", "nested-value.yaml:5:13: members[0]: 'params' must be a single value, not a list"},
        {"no-backend.yaml", "no-backend.yaml:3:5: members[0]: member 'a': missing required field 'backend'"},
        {"members-not-list.yaml", "members-not-list.yaml:2:10: 'members' must be a list"},
        {"duplicate-key.yaml", "duplicate-key.yaml:5:5: members[0]: duplicate key 'backend'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/families/bad/%s", cases[i].file);
        family *f = NULL;
        em_err err = {{0}};
        CHECK_INT(family_load(path, &f, &err), -1);
        CHECK(f == NULL);
        CHECK_HAS(err.msg, cases[i].want);
    }
    em_err err = {{0}};
    family *f = NULL;
    CHECK_INT(family_load("tests/data/families/nope.yaml", &f, &err), -1);
    CHECK_HAS(err.msg, "nope.yaml: cannot open");
}

TEST(test_family_from_spec)
{
    family *f = NULL;
    em_err err = {{0}};
    CHECK_INT(family_from_spec("synthetic,params=2e9,shape=sharp,name=s2b", &f, &err), 0);
    if (f) {
        CHECK_INT(f->n_members, 1);
        CHECK_STR(f->members[0].spec.backend, "synthetic");
        CHECK_STR(f->members[0].spec.name, "s2b");
        CHECK_NEAR(f->members[0].spec.n_params, 2e9, 1);
        CHECK_STR(backend_spec_opt(&f->members[0].spec, "shape"), "sharp");
        family_free(f);
        f = NULL;
    }
    CHECK_INT(family_from_spec("replay:dir/rec.jsonl", &f, &err), 0);
    if (f) {
        CHECK_STR(f->members[0].spec.path, "dir/rec.jsonl");
        CHECK_STR(f->members[0].spec.name, "rec.jsonl");
        family_free(f);
        f = NULL;
    }
    CHECK_INT(family_from_spec("nosuch:x", &f, &err), -1);
    CHECK_HAS(err.msg, "unknown backend 'nosuch'");
    CHECK_INT(family_from_spec("synthetic,params", &f, &err), -1);
    CHECK_HAS(err.msg, "'params' is not key=value");
    CHECK_INT(family_from_spec("synthetic,params=-3", &f, &err), -1);
    CHECK_HAS(err.msg, "'params' must be a positive number");
    double v;
    CHECK_INT(family_parse_number("7K", &v), 0);
    CHECK_NEAR(v, 7000, 0);
    CHECK_INT(family_parse_number("2T", &v), 0);
    CHECK_NEAR(v, 2e12, 0);
    CHECK_INT(family_parse_number("12X", &v), -1);
}

/* ---- store --------------------------------------------------------------------- */

static char *new_db(void)
{
    char *dir = tl_tmpdir();
    char *p = path_in(dir, "x.sqlite");
    free(dir);
    return p;
}

TEST(test_store_schema)
{
    char *db = new_db();
    store *s = NULL;
    em_err err = {{0}};
    CHECK_INT(store_open(db, &s, &err), 0);
    if (!s) {
        tl_fail(__FILE__, __LINE__, "%s", err.msg);
        free(db);
        return;
    }
    const char *tables[] = {"runs", "models", "tasks", "examples", "requests",
                            "responses", "scores"};
    for (int i = 0; i < 7; i++) {
        int64_t n = -1;
        CHECK_INT(store_count(s, tables[i], &n, &err), 0);
        CHECK_INT(n, 0);
    }
    int64_t run;
    CHECK_INT(store_add_run(s, "emerge test", 7, &run, &err), 0);
    CHECK(run > 0);
    store_close(s);
    /* Reopening keeps the data and does not re-create the schema. */
    CHECK_INT(store_open(db, &s, &err), 0);
    int64_t n = 0;
    store_count(s, "runs", &n, &err);
    CHECK_INT(n, 1);
    store_close(s);
    char *out = NULL;
    tl_sh(&out, "python3 -c \"import sqlite3; c=sqlite3.connect('%s');"
                " print(c.execute('PRAGMA user_version').fetchone()[0]);"
                " c.execute('PRAGMA user_version=99'); c.commit()\"", db);
    char want[16];
    snprintf(want, sizeof want, "%d\n", STORE_SCHEMA_VERSION);
    CHECK_STR(out, want);
    free(out);
    CHECK_INT(store_open(db, &s, &err), -1);
    CHECK_HAS(err.msg, "schema version 99 is newer");
    free(db);
    /* Another program's database is left alone. */
    db = new_db();
    tl_sh(NULL, "python3 -c \"import sqlite3; c=sqlite3.connect('%s');"
                " c.execute('CREATE TABLE t(x)'); c.commit()\"", db);
    CHECK_INT(store_open(db, &s, &err), -1);
    CHECK_HAS(err.msg, "not an emerge store");
    free(db);
}

/* The schema of version 2 (emerge before task versions), as it was: the
 * fixture for the upgrades. Version 1 lacked scores.config and
 * models.last_run. */
static const char v2_schema[] =
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, created TEXT NOT NULL, command TEXT,"
    " seed INTEGER, version TEXT);"
    "CREATE TABLE models(id INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL, backend TEXT NOT NULL, path TEXT, params REAL,"
    " tokens REAL, step REAL, spec TEXT, last_run INTEGER);"
    "CREATE TABLE tasks(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " hash TEXT NOT NULL, path TEXT, preferred_metric TEXT, random_baseline REAL,"
    " low_score REAL, high_score REAL);"
    "CREATE TABLE examples(task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE"
    " CASCADE, example_id TEXT NOT NULL, idx INTEGER NOT NULL, input TEXT,"
    " targets TEXT, PRIMARY KEY(task_id, example_id));"
    "CREATE TABLE requests(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL, model_id INTEGER NOT NULL REFERENCES models(id),"
    " task_id INTEGER REFERENCES tasks(id) ON DELETE SET NULL, variant TEXT,"
    " example_id TEXT, pass INTEGER, choice INTEGER, prompt TEXT NOT NULL,"
    " continuation TEXT, settings TEXT);"
    "CREATE TABLE responses(request_id INTEGER PRIMARY KEY REFERENCES"
    " requests(id) ON DELETE CASCADE, run_id INTEGER REFERENCES runs(id),"
    " ok INTEGER NOT NULL, output TEXT, logprob REAL, n_tokens INTEGER,"
    " is_greedy INTEGER, token_logprobs TEXT, error TEXT, elapsed REAL);"
    "CREATE TABLE scores(model_id INTEGER NOT NULL REFERENCES models(id),"
    " task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
    " variant TEXT NOT NULL, example_id TEXT NOT NULL, metric TEXT NOT NULL,"
    " value REAL, answer TEXT, config TEXT,"
    " PRIMARY KEY(model_id, task_id, variant, example_id, metric));"
    "INSERT INTO models VALUES(1, 'I', 'm', 'synthetic', NULL, 1e6, 0, -1, '{}', 1);"
    "INSERT INTO tasks VALUES(1, 'arith', 'h1', NULL, 'exact_match', 0, 0, 1);"
    "INSERT INTO examples VALUES(1, 'e0', 0, '1+1', '[\"2\"]');"
    "INSERT INTO scores VALUES(1, 1, 'standard', 'e0', 'exact_match', 1, '2',"
    " 'greedy');";

/* Writes an old store at db: version 2, or 1 (without the two columns). */
static int write_old_store(const char *db, int version)
{
    sqlite3 *h = NULL;
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d;", version);
    int rc = sqlite3_open(db, &h) != SQLITE_OK ||
             sqlite3_exec(h, v2_schema, NULL, NULL, NULL) != SQLITE_OK ||
             (version == 1 &&
              sqlite3_exec(h, "ALTER TABLE scores DROP COLUMN config;"
                           "ALTER TABLE models DROP COLUMN last_run;", NULL, NULL,
                           NULL) != SQLITE_OK) ||
             sqlite3_exec(h, sql, NULL, NULL, NULL) != SQLITE_OK;
    sqlite3_close(h);
    return rc;
}

/* One integer a query on db gives (-1 on error). */
/* The readers' view of db: result rows (or, with series, the scaling
 * series) through a read-only connection beside the writer, task
 * versions selected by spec (NULL: the default). */
static int read_rows(const char *db, const char *spec, result_row **r, int *n,
                     scaling_series **ss, int *ns, em_err *err)
{
    store_query *q;
    if (store_query_open(db, &q, err) != 0)
        return -1;
    int rc = store_query_select_versions(q, spec, err);
    if (rc == 0 && r)
        rc = results_load(q, r, n, err);
    if (rc == 0 && ss)
        rc = results_series(q, 0, ss, ns, err);
    store_query_close(q);
    return rc;
}

static long long query_int(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_open(db, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return v;
}

/* Version-1 and version-2 files are upgraded in place by a writer: their
 * scores survive (each task becomes its version 1) and the foreign keys
 * hold; a reader refuses them with the hint. */
TEST(test_store_migrates_old)
{
    for (int version = 1; version <= 2; version++) {
        char *db = new_db();
        store *s = NULL;
        em_err err = {{0}};
        if (write_old_store(db, version) != 0) {
            tl_skip("this SQLite cannot make a version-%d file", version);
            free(db);
            return;
        }
        store_query *q = NULL;
        CHECK_INT(store_query_open(db, &q, &err), -1);
        CHECK_HAS(err.msg, "emerge migrate");
        CHECK_INT(store_open(db, &s, &err), 0);
        if (!s) {
            tl_fail(__FILE__, __LINE__, "v%d: %s", version, err.msg);
            free(db);
            continue;
        }
        int64_t mid, n;
        store_model m = {"m", "synthetic", NULL, 1e6, 0, -1, "{}", "I", 3, 0};
        CHECK_INT(store_put_model(s, &m, &mid, &err), 0);
        CHECK_INT(store_count(s, "scores", &n, &err), 0);
        CHECK_INT(n, 1);
        result_row *r = NULL;
        int nr = 0;
        CHECK_INT(read_rows(db, NULL, &r, &nr, NULL, NULL, &err), 0);
        CHECK_INT(nr, 1);
        results_free(r, nr);
        store_close(s);
        CHECK_INT(query_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
        CHECK_INT(query_int(db, "SELECT last_run FROM models"), 3);
        CHECK_INT(query_int(db, "SELECT version FROM tasks"), 1);
        CHECK_INT(query_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
        free(db);
    }
}

/* A version-3 file (before models.params_nonembed): today's schema less
 * that column, with one scored model. */
static int write_v3_store(const char *db)
{
    store *s = NULL;
    em_err err;
    if (store_open(db, &s, &err) != 0)
        return -1;
    store_close(s);
    sqlite3 *h = NULL;
    int rc = sqlite3_open(db, &h) != SQLITE_OK ||
             sqlite3_exec(h, "ALTER TABLE models DROP COLUMN params_nonembed;"
                          "INSERT INTO models(id, identity, name, backend,"
                          " params, tokens, step, spec, last_run)"
                          " VALUES(1, 'I', 'm', 'synthetic', 1e6, 0, -1, '{}', 1);"
                          "INSERT INTO tasks(id, name, hash, preferred_metric,"
                          " low_score, high_score, version, last_run)"
                          " VALUES(1, 'arith', 'h1', 'exact_match', 0, 1, 1, 1);"
                          "INSERT INTO examples VALUES(1, 'e0', 0, '1+1', '[\"2\"]');"
                          "INSERT INTO scores(model_id, task_id, variant,"
                          " example_id, metric, value, answer, config)"
                          " VALUES(1, 1, 'standard', 'e0', 'exact_match', 1, '2',"
                          " 'greedy');"
                          "PRAGMA user_version=3;", NULL, NULL, NULL) != SQLITE_OK;
    sqlite3_close(h);
    return rc;
}

/* The points of the first series on an axis, through a reader. */
static int series_points(const char *db, int axis, double *x0)
{
    store_query *q;
    em_err err;
    scaling_series *ss = NULL;
    int ns = 0, n = -1;
    if (store_query_open(db, &q, &err) != 0)
        return -1;
    if (results_series(q, axis, &ss, &ns, &err) == 0) {
        n = ns ? ss[0].n : 0;
        *x0 = ns && ss[0].n ? ss[0].pts[0].params : 0;
        scaling_series_free(ss, ns);
    }
    store_query_close(q);
    return n;
}

/* 3 -> 4 adds models.params_nonembed (NULL for the models already there,
 * which the nonembed axis leaves out and names); a reader refuses a v3
 * file with the hint, and a file newer than 4 is refused by both. */
TEST(test_store_migrates_v3)
{
    char *db = new_db();
    em_err err = {{0}};
    if (write_v3_store(db) != 0) {
        tl_skip("this SQLite cannot drop a column");
        free(db);
        return;
    }
    store_query *q = NULL;
    CHECK_INT(store_query_open(db, &q, &err), -1);
    CHECK_HAS(err.msg, "schema version 3");
    CHECK_HAS(err.msg, "emerge migrate");
    store *s = NULL;
    CHECK_INT(store_open(db, &s, &err), 0);
    CHECK_INT(query_int(db, "PRAGMA user_version"), 4);
    CHECK_INT(query_int(db, "SELECT count(*) FROM pragma_table_info('models')"
                        " WHERE name = 'params_nonembed'"), 1);
    CHECK_INT(query_int(db, "SELECT params_nonembed IS NULL FROM models"), 1);
    double x = 0;
    CHECK_INT(series_points(db, SCALING_AXIS_PARAMS, &x), 1);
    CHECK(x == 1e6);
    CHECK_INT(series_points(db, SCALING_AXIS_NONEMBED, &x), 0);
    CHECK_INT(store_query_open(db, &q, &err), 0);
    char *names = NULL;
    int n = 0;
    CHECK_INT(results_axis_unknown(q, SCALING_AXIS_NONEMBED, &names, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_STR(names ? names : "", "m");
    free(names);
    store_query_close(q);
    /* A count of 0 keeps the other one. */
    CHECK_INT(store_set_model_params(s, 1, 0, 4e5, &err), 0);
    CHECK_INT(query_int(db, "SELECT params FROM models"), 1000000);
    CHECK_INT(series_points(db, SCALING_AXIS_NONEMBED, &x), 1);
    CHECK(x == 4e5);
    store_close(s);
    CHECK_INT(query_int(db, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    sqlite3 *h = NULL;
    if (sqlite3_open(db, &h) == SQLITE_OK)
        sqlite3_exec(h, "PRAGMA user_version=5;", NULL, NULL, NULL);
    sqlite3_close(h);
    CHECK_INT(store_open(db, &s, &err), -1);
    CHECK_HAS(err.msg, "schema version 5 is newer");
    CHECK_INT(store_query_open(db, &q, &err), -1);
    CHECK_HAS(err.msg, "schema version 5");
    free(db);
}

TEST(test_cache_key)
{
    char a[65], b[65];
    store_cache_key("m", "loglik", "ctx", "cont", NULL, a);
    store_cache_key("m", "loglik", "ctx", "cont", NULL, b);
    CHECK_STR(a, b);
    store_cache_key("m", "loglik", "ctxc", "ont", NULL, b);
    CHECK(strcmp(a, b) != 0);
    store_cache_key("m2", "loglik", "ctx", "cont", NULL, b);
    CHECK(strcmp(a, b) != 0);
    store_cache_key("m", "generate", "ctx", "cont", NULL, b);
    CHECK(strcmp(a, b) != 0);
    store_cache_key("m", "loglik", "ctx", "cont", "{}", b);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT((int)strlen(a), 64);
}

/* A two-example task built by hand (the store needs no task file). */
static task *fake_task(const char *name, const char *hash)
{
    task *t = em_calloc(1, sizeof *t);
    t->name = em_strdup(name);
    t->path = em_strdup("fake.yaml");
    snprintf(t->hash, sizeof t->hash, "%s", hash);
    t->preferred_metric = em_strdup("exact_match");
    t->random_baseline = 0.25;
    t->low_score = 0;
    t->high_score = 1;
    t->n_examples = 4;
    t->examples = em_calloc(4, sizeof *t->examples);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "e%d", i);
        t->examples[i].id = em_strdup(id);
        t->examples[i].input = em_strdup("1+1");
        t->examples[i].targets = em_calloc(1, sizeof(char *));
        t->examples[i].targets[0] = em_strdup("2");
        t->examples[i].n_targets = 1;
    }
    return t;
}

static void fake_task_free(task *t)
{
    for (int i = 0; i < t->n_examples; i++) {
        free(t->examples[i].id);
        free(t->examples[i].input);
        free(t->examples[i].targets[0]);
        free(t->examples[i].targets);
    }
    free(t->examples);
    free(t->name);
    free(t->path);
    free(t->preferred_metric);
    free(t);
}

TEST(test_store_cache)
{
    char *db = new_db();
    store *s = NULL;
    em_err err = {{0}};
    CHECK_INT(store_open(db, &s, &err), 0);
    if (!s) {
        free(db);
        return;
    }
    int64_t run, mid, tid;
    task *t = fake_task("arith", "h1");
    store_model m = {"m1", "synthetic", NULL, 1e6, 0, -1, "{}", "{\"id\":1}", 1, 0};
    CHECK_INT(store_add_run(s, "x", 1, &run, &err), 0);
    CHECK_INT(store_put_model(s, &m, &mid, &err), 0);
    CHECK_INT(store_put_task(s, t, run, &tid, &err), 0);
    store_request rq = {.kind = "generate", .model_id = mid, .task_id = tid,
                        .variant = "standard", .example_id = "e0", .pass = 1,
                        .choice = -2, .prompt = "Q: 1+1=", .settings = "{}"};
    store_cache_key(m.identity, rq.kind, rq.prompt, NULL, rq.settings, rq.key);
    store_response got;
    int found = 1;
    CHECK_INT(store_lookup(s, rq.key, &got, &found, &err), 0);
    CHECK_INT(found, 0);
    /* A failed response is stored but never served. */
    store_response bad = {.ok = 0, .error = "boom"};
    CHECK_INT(store_put_response(s, &rq, &bad, run, &err), 0);
    CHECK_INT(store_lookup(s, rq.key, &got, &found, &err), 0);
    CHECK_INT(found, 0);
    float tl[2] = {-0.5f, -0.25f};
    store_response ok = {.ok = 1, .text = " 2", .logprob = -0.75, .n_tokens = 2,
                         .token_logprobs = tl, .n_token_logprobs = 2};
    CHECK_INT(store_put_response(s, &rq, &ok, run, &err), 0);
    CHECK_INT(store_lookup(s, rq.key, &got, &found, &err), 0);
    CHECK_INT(found, 1);
    if (found) {
        CHECK_STR(got.text, " 2");
        CHECK_NEAR(got.logprob, -0.75, 1e-12);
        CHECK_INT(got.n_tokens, 2);
        CHECK_INT(got.ok, 1);
        store_response_clear(&got);
    }
    int64_t n;
    store_count(s, "requests", &n, &err);
    CHECK_INT(n, 1);
    store_count(s, "responses", &n, &err);
    CHECK_INT(n, 1);
    /* Same identity again: the same model row, a known size kept. */
    int64_t mid2;
    store_model m0 = m;
    m0.params = 0;
    CHECK_INT(store_put_model(s, &m0, &mid2, &err), 0);
    CHECK_INT(mid2, mid);
    store_count(s, "examples", &n, &err);
    CHECK_INT(n, 4);
    store_close(s);
    fake_task_free(t);
    free(db);
}

static void put(store *s, int64_t m, int64_t t, const char *metric,
                const double *v, int n)
{
    em_err err;
    for (int i = 0; i < n; i++) {
        char id[16];
        snprintf(id, sizeof id, "e%d", i);
        store_score sc = {m, t, "standard", id, metric, v[i], "x", "greedy", 0, 0};
        if (store_put_score(s, &sc, &err) != 0)
            tl_fail(__FILE__, __LINE__, "%s", err.msg);
    }
}

TEST(test_store_results_and_series)
{
    char *db = new_db();
    store *s = NULL;
    em_err err = {{0}};
    CHECK_INT(store_open(db, &s, &err), 0);
    if (!s) {
        free(db);
        return;
    }
    task *t = fake_task("arith", "h1");
    int64_t big, small, tid;
    store_model mb = {"big", "synthetic", NULL, 1e8, 2e9, -1, "{}", "B", 1, 0};
    store_model ms = {"small", "synthetic", NULL, 1e6, 2e7, -1, "{}", "S", 1, 0};
    store_put_model(s, &mb, &big, &err);
    store_put_model(s, &ms, &small, &err);
    store_put_task(s, t, 1, &tid, &err);
    double vs[4] = {1, 0, 0, 0}, vb[4] = {1, 1, 1, 0};
    double conf[4] = {0.9, 0.9, 0.6, 0.6}, grade[4] = {1, 0, 1, 1};
    put(s, small, tid, "exact_match", vs, 4);
    put(s, big, tid, "exact_match", vb, 4);
    put(s, big, tid, "mc_confidence", conf, 4);
    put(s, big, tid, "multiple_choice_grade", grade, 4);
    result_row *r = NULL;
    int n = 0;
    CHECK_INT(read_rows(db, NULL, &r, &n, NULL, NULL, &err), 0);
    /* small/exact_match, big/{exact_match, mc_confidence, mcg}, big/ece */
    CHECK_INT(n, 5);
    if (n == 5) {
        CHECK_STR(r[0].model, "small");
        CHECK_STR(r[0].metric, "exact_match");
        CHECK_NEAR(r[0].mean, 0.25, 1e-12);
        CHECK_INT(r[0].n, 4);
        CHECK(r[0].lo <= r[0].mean && r[0].mean <= r[0].hi);
        CHECK_NEAR(r[0].normalized, 25, 1e-9);
        CHECK_STR(r[1].model, "big");
        CHECK_NEAR(r[1].mean, 0.75, 1e-12);
        CHECK_NEAR(r[1].normalized, 75, 1e-9);
        CHECK(isnan(r[2].normalized));
        CHECK_STR(r[4].metric, "ece");
        double corr[4] = {1, 0, 1, 1};
        CHECK_NEAR(r[4].mean, metric_ece(conf, corr, 4, 10), 1e-12);
        CHECK_NEAR(r[4].mean, 0.4, 1e-9);
        CHECK(isnan(r[4].lo));
        /* Deterministic bootstrap: same numbers the second time. */
        result_row *r2;
        int n2;
        CHECK_INT(read_rows(db, NULL, &r2, &n2, NULL, NULL, &err), 0);
        CHECK(r2[1].lo == r[1].lo && r2[1].hi == r[1].hi);
        results_free(r2, n2);
    }
    results_free(r, n);

    scaling_series *ss = NULL;
    int ns = 0;
    CHECK_INT(read_rows(db, NULL, NULL, NULL, &ss, &ns, &err), 0);
    CHECK_INT(ns, 2); /* exact_match, multiple_choice_grade */
    if (ns == 2) {
        CHECK_STR(ss[0].task, "arith");
        CHECK_STR(ss[0].metric, "exact_match");
        CHECK_INT(ss[0].n, 2);
        CHECK_STR(ss[0].pts[0].model, "small");
        CHECK_NEAR(ss[0].pts[1].score, 0.75, 1e-12);
        CHECK_NEAR(ss[0].pts[1].flops, 6 * 1e8 * 2e9, 1e6);
        CHECK_NEAR(ss[0].random_baseline, 0.25, 0);
        CHECK_NEAR(ss[0].high_score, 1, 0);
        CHECK(isnan(ss[1].random_baseline));
    }
    scaling_series_free(ss, ns);

    /* A model retrained under the same name: the results follow the
     * identity the latest run used. */
    int64_t big2;
    store_model mb2 = {"big", "synthetic", NULL, 1e8, 2e9, -1, "{}", "B2", 5, 0};
    store_put_model(s, &mb2, &big2, &err);
    CHECK(big2 != big);
    double vb2[4] = {0, 0, 0, 0};
    put(s, big2, tid, "exact_match", vb2, 4);
    CHECK_INT(read_rows(db, NULL, &r, &n, NULL, NULL, &err), 0);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(r[1].model, "big");
        CHECK_NEAR(r[1].mean, 0, 0);
    }
    results_free(r, n);

    /* A changed task is a new version: the old scores stay, the readers
     * follow the version the latest run used, --task-version selects the
     * old one, and gc removes it explicitly. */
    int64_t cnt_before, cnt;
    store_count(s, "scores", &cnt_before, &err);
    task *t2 = fake_task("arith", "h2");
    int64_t tid2, tid_again;
    CHECK_INT(store_put_task(s, t2, 6, &tid2, &err), 0);
    CHECK(tid2 != tid);
    store_count(s, "scores", &cnt, &err);
    CHECK_INT(cnt, cnt_before);
    CHECK_INT(read_rows(db, NULL, &r, &n, NULL, NULL, &err), 0);
    CHECK_INT(n, 0); /* version 2 has no scores yet */
    results_free(r, n);
    CHECK_INT(read_rows(db, "arith=1", &r, &n, NULL, NULL, &err), 0);
    CHECK_INT(n, 2);
    results_free(r, n);
    CHECK(read_rows(db, "arith=3", &r, &n, NULL, NULL, &err) != 0);
    CHECK_HAS(err.msg, "has no version 3");
    /* The same hash again is the same version. */
    CHECK_INT(store_put_task(s, t2, 7, &tid_again, &err), 0);
    CHECK_INT(tid_again, tid2);
    char *gc_out = NULL;
    size_t gc_len = 0;
    FILE *gf = open_memstream(&gc_out, &gc_len);
    int removed = 0;
    CHECK_INT(store_gc(s, 0, gf, &removed, &err), 0);
    fclose(gf);
    CHECK_INT(removed, 1);
    CHECK_HAS(gc_out, "removing task arith version 1");
    free(gc_out);
    store_count(s, "scores", &cnt, &err);
    CHECK_INT(cnt, 0);
    fake_task_free(t2);
    store_close(s);
    fake_task_free(t);
    free(db);
}

/* ---- synthetic backend ---------------------------------------------------------- */

static backend *open_spec(const char *spec)
{
    family *f = NULL;
    em_err err = {{0}};
    backend *b = NULL;
    if (family_from_spec(spec, &f, &err) != 0 ||
        backend_open(&f->members[0].spec, &b, &err) != 0)
        tl_fail(__FILE__, __LINE__, "%s: %s", spec, err.msg);
    family_free(f);
    return b;
}

/* p of the documented smooth/sharp logistic. */
static double logistic_p(double params, double mid, double width)
{
    double z = 2 * log(9.0) * (log10(params) - log10(mid)) / width;
    return 1 / (1 + exp(-z));
}

TEST(test_synthetic_accuracy_follows_p)
{
    const double sizes[] = {1e6, 1e7, 3e7, 1e8, 3e8, 1e9, 1e11};
    enum { N = 1500 };
    backend_gen_req *rq = em_calloc(N, sizeof *rq);
    backend_gen_res *rs = em_calloc(N, sizeof *rs);
    char (*prompts)[64] = em_calloc(N, 64);
    int *truth = em_calloc(N, sizeof *truth);
    for (int i = 0; i < N; i++) {
        int a = 10 + i % 90, b = i / 90 * 7 + 3;
        truth[i] = a + b;
        snprintf(prompts[i], 64, "Answer.\nQ: %d+%d=", a, b);
        rq[i].prompt = prompts[i];
        rq[i].max_tokens = 8;
    }
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char spec[128];
        snprintf(spec, sizeof spec, "synthetic,params=%g,midpoint=1e8,width=2", sizes[k]);
        backend *b = open_spec(spec);
        if (!b)
            break;
        em_err err;
        CHECK_INT(backend_generate(b, rq, rs, N, &err), 0);
        int right = 0;
        for (int i = 0; i < N; i++) {
            CHECK(rs[i].ok);
            right += rs[i].ok && atoi(rs[i].text) == truth[i];
            backend_gen_res_clear(&rs[i]);
        }
        double p = logistic_p(sizes[k], 1e8, 2);
        double sd = sqrt(p * (1 - p) / N);
        CHECK_MSG(fabs((double)right / N - p) <= 4 * sd + 1e-3,
                  "params %g: accuracy %.4f, p %.4f", sizes[k], (double)right / N, p);
        backend_close(b);
    }
    free(rq);
    free(rs);
    free(prompts);
    free(truth);
}

TEST(test_synthetic_loglik_and_shapes)
{
    backend *b = open_spec("synthetic,params=1e9,midpoint=1e8,width=2,k=4");
    if (!b)
        return;
    backend_ll_req rq[4] = {{"Q: What is 37 + 48?\nA:", " 85"},
                            {"Q: What is 37 + 48?\nA:", " 86"},
                            {"Q: 12*3=", "36."},
                            {"no question here", " 1"}};
    backend_ll_res rs[4];
    em_err err;
    CHECK_INT(backend_loglikelihood(b, rq, rs, 4, &err), 0);
    double p = logistic_p(1e9, 1e8, 2);
    CHECK_NEAR(rs[0].logprob, log(p), 1e-9);
    CHECK_INT(rs[0].n_tokens, 3);
    CHECK_INT(rs[0].is_greedy, 1);
    CHECK_NEAR(rs[1].logprob, log((1 - p) / 3), 1e-9);
    CHECK_INT(rs[1].is_greedy, 0);
    CHECK_NEAR(rs[2].logprob, log(p), 1e-9);
    CHECK_INT(rs[3].ok, 0);
    CHECK_HAS(rs[3].error, "no arithmetic question");
    backend_close(b);

    /* Zero-shot CoT second pass: the question is above the last lines. */
    b = open_spec("synthetic,params=1e12,midpoint=1e8,width=1");
    backend_gen_req g = {.prompt = "Q: 20-5=\nA: Let's think step by step. 15\n"
                                   "Therefore, the answer is", .max_tokens = 5};
    backend_gen_res gr;
    CHECK_INT(backend_generate(b, &g, &gr, 1, &err), 0);
    CHECK_STR(gr.text, " 15");
    CHECK_INT(gr.n_tokens, 3);
    backend_gen_res_clear(&gr);
    backend_close(b);

    /* batch_jitter: log-probs depend on the batch (n and position). */
    b = open_spec("synthetic,params=1e9,midpoint=1e8,width=2,batch_jitter=1e-6");
    CHECK_INT(backend_loglikelihood(b, rq, rs, 1, &err), 0);
    CHECK_NEAR(rs[0].logprob, log(p) + 1e-6 * 1000, 1e-12);
    CHECK_INT(backend_loglikelihood(b, rq, rs, 2, &err), 0);
    CHECK_NEAR(rs[0].logprob, log(p) + 1e-6 * 2000, 1e-12);
    backend_close(b);

    /* inverse and flat shapes; unknown shape and missing params fail. */
    b = open_spec("synthetic,params=1e12,shape=inverse,midpoint=1e8");
    CHECK_INT(backend_loglikelihood(b, rq, rs, 1, &err), 0);
    CHECK(rs[0].logprob < log(0.01));
    backend_close(b);
    b = open_spec("synthetic,params=1e6,shape=flat,floor=0.2,ceil=0.4");
    CHECK_INT(backend_loglikelihood(b, rq, rs, 1, &err), 0);
    CHECK_NEAR(rs[0].logprob, log(0.3), 1e-9);
    backend_close(b);
    family *f = NULL;
    backend *bad = NULL;
    CHECK_INT(family_from_spec("synthetic,params=1e6,shape=wobbly", &f, &err), 0);
    CHECK_INT(backend_open(&f->members[0].spec, &bad, &err), -1);
    CHECK_HAS(err.msg, "unknown shape 'wobbly'");
    family_free(f);
    CHECK_INT(family_from_spec("synthetic", &f, &err), 0);
    CHECK_INT(backend_open(&f->members[0].spec, &bad, &err), -1);
    CHECK_HAS(err.msg, "'params'");
    family_free(f);
}

/* ---- replay backend ---------------------------------------------------------------- */

TEST(test_replay)
{
    char *dir = tl_tmpdir();
    char *p = path_in(dir, "rec.jsonl");
    write_file(p, "{\"kind\":\"loglik\",\"context\":\"Q: 1+1=\",\"continuation\":\" 2\","
                  "\"logprob\":-0.5,\"n_tokens\":1,\"is_greedy\":true}\n"
                  "\n"
                  "{\"kind\":\"generate\",\"prompt\":\"Q: 2+2=\",\"text\":\" 4\","
                  "\"token_logprobs\":[-0.25,-0.5]}\n"
                  "{\"kind\":\"generate\",\"prompt\":\"Q: 2+2=\",\"text\":\" 5\"}\n");
    em_buf spec = {0};
    em_buf_printf(&spec, "replay:%s", p);
    backend *b = open_spec(spec.s);
    em_buf_free(&spec);
    if (b) {
        backend_ll_req lr[2] = {{"Q: 1+1=", " 2"}, {"Q: 1+1=", " 3"}};
        backend_ll_res ls[2];
        em_err err;
        CHECK_INT(backend_loglikelihood(b, lr, ls, 2, &err), 0);
        CHECK_INT(ls[0].ok, 1);
        CHECK_NEAR(ls[0].logprob, -0.5, 0);
        CHECK_INT(ls[0].is_greedy, 1);
        CHECK_INT(ls[1].ok, 0);
        CHECK_HAS(ls[1].error, "no recorded loglik");
        backend_gen_req gq[2] = {{.prompt = "Q: 2+2="}, {.prompt = "Q: 3+3="}};
        backend_gen_res gs[2];
        CHECK_INT(backend_generate(b, gq, gs, 2, &err), 0);
        CHECK_STR(gs[0].text, " 5"); /* the later record wins */
        CHECK_INT(gs[1].ok, 0);
        CHECK_HAS(gs[1].error, "no recorded generation");
        backend_gen_res_clear(&gs[0]);
        backend_gen_res_clear(&gs[1]);
        backend_close(b);
    }
    write_file(p, "{\"kind\":\"loglik\",\"context\":\"a\",\"continuation\":\"b\","
                  "\"logprob\":-1}\n{\"kind\":\"loglik\",\"context\":\"a\"}\n");
    family *f = NULL;
    em_err err = {{0}};
    em_buf s2 = {0};
    em_buf_printf(&s2, "replay:%s", p);
    CHECK_INT(family_from_spec(s2.s, &f, &err), 0);
    CHECK_INT(backend_open(&f->members[0].spec, &b, &err), -1);
    CHECK_HAS(err.msg, "rec.jsonl:2: a loglik record needs");
    write_file(p, "not json\n");
    CHECK_INT(backend_open(&f->members[0].spec, &b, &err), -1);
    CHECK_HAS(err.msg, "rec.jsonl:1: not a JSON object");
    family_free(f);
    em_buf_free(&s2);
    free(p);
    free(dir);
}

int main(void)
{
    RUN(test_family_load);
    RUN(test_family_paths_and_sort);
    RUN(test_family_errors);
    RUN(test_family_from_spec);
    RUN(test_store_schema);
    RUN(test_store_migrates_old);
    RUN(test_store_migrates_v3);
    RUN(test_cache_key);
    RUN(test_store_cache);
    RUN(test_store_results_and_series);
    RUN(test_synthetic_accuracy_follows_p);
    RUN(test_synthetic_loglik_and_shapes);
    RUN(test_replay);
    return tl_summary();
}

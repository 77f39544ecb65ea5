/*
 * store.c - the SQLite store's write side: schema and migrations, runs,
 * models, task versions and `emerge gc`, the response cache, scores.
 *
 * Why SQLite in WAL mode with synchronous=NORMAL: a committed transaction
 * survives the process being killed (only a power loss can undo the last
 * ones), readers never block the writer, and the whole state of a sweep
 * is one file a user can inspect with any SQLite tool.
 *
 * Schema (user_version 4; migrate() upgrades 1, 2 and 3 in place, and only
 * a writing command (a sweep, `emerge migrate`) does: readers open the
 * file read-only and ask for the upgrade):
 *   runs      one row per invocation
 *   models    unique by identity (backend + file hash or options);
 *             params, params_nonembed: total and non-embedding parameter
 *             counts (NULL or 0: unknown; version 4 added the second);
 *             last_run: the latest run that used it. Results show, per
 *             model name, only the identity used last (a retrained model
 *             keeps its name but its old scores stop being reported)
 *   tasks     one row per task VERSION: unique by (name, hash), the hash
 *             covering what changes prompts or scoring. version counts
 *             1, 2, ... per name; last_run: the latest run that used it.
 *             A changed task is a new version with its own examples and
 *             scores; the old version's rows stay until `emerge gc`.
 *             Readers show, per name, the version used last (task_sel)
 *   examples  (task version, example id) -> input, targets, order
 *   requests  unique by cache key; where it was first needed
 *   responses one per request: the latest attempt (ok or failed), with
 *             the prompt tokens dropped to fit the context (truncated)
 *             and why a generation ended (finish)
 *   scores    (model, task version, variant, example, metric) -> value,
 *             answer; truncated: prompt tokens the example's requests
 *             lost to the context (the most of any), cut: its generations
 *             that ended at max_tokens or a full context
 *   file_hashes  a model file's SHA-256 by path and stat (identity.c)
 *
 * This file is the write side. The readers (metrics/store_query.c,
 * metrics/results.c) open the file read-only through metrics/store_db.c,
 * which also says which task version each of them sees.
 */
#include "harness/store.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/version.h"

struct store {
    sqlite3 *db;
    char *path;
    int busy_ms;              /* how long the current wait has lasted */
    sqlite3_stmt *lookup, *put_req, *get_req, *put_resp, *put_score, *has_score,
        *clear_scores;
};

/* identity.c's cache of model-file digests (store_file_hash_get). */
#define FILE_HASHES_TABLE \
    "CREATE TABLE IF NOT EXISTS file_hashes(" \
    " path TEXT PRIMARY KEY, size INTEGER NOT NULL," \
    " mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL," \
    " inode INTEGER NOT NULL, device INTEGER NOT NULL," \
    " sha256 TEXT NOT NULL, hashed TEXT NOT NULL);"

#define TASKS_TABLE(name) \
    "CREATE TABLE IF NOT EXISTS " name "(" \
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL," \
    " path TEXT, preferred_metric TEXT, random_baseline REAL," \
    " low_score REAL, high_score REAL, version INTEGER NOT NULL DEFAULT 1," \
    " last_run INTEGER, UNIQUE(name, hash));"

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS runs("
    " id INTEGER PRIMARY KEY, created TEXT NOT NULL, command TEXT,"
    " seed INTEGER, version TEXT);"
    "CREATE TABLE IF NOT EXISTS models("
    " id INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " backend TEXT NOT NULL, path TEXT, params REAL, tokens REAL, step REAL,"
    " spec TEXT, last_run INTEGER, params_nonembed REAL);"
    TASKS_TABLE("tasks")
    "CREATE TABLE IF NOT EXISTS examples("
    " task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
    " example_id TEXT NOT NULL, idx INTEGER NOT NULL, input TEXT,"
    " targets TEXT, PRIMARY KEY(task_id, example_id));"
    "CREATE TABLE IF NOT EXISTS requests("
    " id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
    " model_id INTEGER NOT NULL REFERENCES models(id),"
    " task_id INTEGER REFERENCES tasks(id) ON DELETE SET NULL,"
    " variant TEXT, example_id TEXT, pass INTEGER, choice INTEGER,"
    " prompt TEXT NOT NULL, continuation TEXT, settings TEXT);"
    "CREATE TABLE IF NOT EXISTS responses("
    " request_id INTEGER PRIMARY KEY REFERENCES requests(id) ON DELETE CASCADE,"
    " run_id INTEGER REFERENCES runs(id), ok INTEGER NOT NULL, output TEXT,"
    " logprob REAL, n_tokens INTEGER, is_greedy INTEGER, token_logprobs TEXT,"
    " error TEXT, elapsed REAL, truncated INTEGER, finish TEXT);"
    "CREATE TABLE IF NOT EXISTS scores("
    " model_id INTEGER NOT NULL REFERENCES models(id),"
    " task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,"
    " variant TEXT NOT NULL, example_id TEXT NOT NULL, metric TEXT NOT NULL,"
    " value REAL, answer TEXT, config TEXT, truncated INTEGER, cut INTEGER,"
    " PRIMARY KEY(model_id, task_id, variant, example_id, metric));"
    FILE_HASHES_TABLE;

static int db_error(store *s, em_err *err, const char *what)
{
    return em_errorf(err, "%s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
}

static int exec(store *s, const char *sql, em_err *err)
{
    return store_db_exec(s->db, s->path, sql, err);
}

static int prepare(store *s, const char *sql, sqlite3_stmt **st, em_err *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return db_error(s, err, "prepare");
    return 0;
}

static int user_version(store *s, int *v, em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "PRAGMA user_version", &st, err) != 0)
        return -1;
    *v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return 0;
}

static int has_tables(store *s)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return n > 0;
}

/* Steps from version i to i+1 (index i - 1); version 0 (a new file) gets
 * the current schema at once. */
static const char *const upgrades[] = {
    "ALTER TABLE scores ADD COLUMN config TEXT;"
    "ALTER TABLE models ADD COLUMN last_run INTEGER;",
    /* tasks was unique by name: rebuilt (foreign keys are off during a
     * migration, so dropping it cascades nowhere). */
    TASKS_TABLE("tasks_v3")
    "INSERT INTO tasks_v3(id, name, hash, path, preferred_metric,"
    " random_baseline, low_score, high_score, version)"
    " SELECT id, name, hash, path, preferred_metric, random_baseline,"
    " low_score, high_score, 1 FROM tasks;"
    "DROP TABLE tasks;"
    "ALTER TABLE tasks_v3 RENAME TO tasks;"
    "ALTER TABLE responses ADD COLUMN truncated INTEGER;"
    "ALTER TABLE responses ADD COLUMN finish TEXT;"
    "ALTER TABLE scores ADD COLUMN truncated INTEGER;"
    "ALTER TABLE scores ADD COLUMN cut INTEGER;"
    FILE_HASHES_TABLE,
    /* 3 -> 4: the non-embedding count; old models have none (NULL) until
     * a sweep opens them again. */
    "ALTER TABLE models ADD COLUMN params_nonembed REAL;",
};

/* Upgrades an older store in place, saying so. Foreign keys are off
 * meanwhile (a table rebuild must not cascade) and the upgrade is one
 * transaction: a kill leaves the old version intact. */
static int migrate(store *s, em_err *err)
{
    int v;
    if (user_version(s, &v, err) != 0)
        return -1;
    if (v > STORE_SCHEMA_VERSION)
        return em_errorf(err, "%s: schema version %d is newer than this emerge "
                         "understands (%d)", s->path, v, STORE_SCHEMA_VERSION);
    if (v == STORE_SCHEMA_VERSION)
        return 0;
    if (v == 0 && has_tables(s))
        return em_errorf(err, "%s: not an emerge store (it has tables but no "
                         "emerge schema version)", s->path);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d;", STORE_SCHEMA_VERSION);
    if (exec(s, "PRAGMA foreign_keys=OFF; BEGIN IMMEDIATE;", err) != 0)
        return -1;
    int rc = user_version(s, &v, err); /* another process may have done it */
    if (rc == 0 && v == 0)
        rc = exec(s, schema, err);
    for (int i = v; rc == 0 && v > 0 && i < STORE_SCHEMA_VERSION; i++)
        rc = exec(s, upgrades[i - 1], err);
    if (rc != 0 || exec(s, sql, err) != 0) {
        store_rollback(s);
        exec(s, "PRAGMA foreign_keys=ON;", err);
        return -1;
    }
    if (exec(s, "COMMIT; PRAGMA foreign_keys=ON;", err) != 0)
        return -1;
    if (v > 0 && v < STORE_SCHEMA_VERSION)
        fprintf(stderr, "emerge: note: %s: upgraded the store from schema "
                "version %d to %d\n", s->path, v, STORE_SCHEMA_VERSION);
    return 0;
}

static int prepare_all(store *s, em_err *err)
{
    return prepare(s, "SELECT r.ok, r.output, r.logprob, r.n_tokens, r.is_greedy,"
                   " r.error, r.elapsed, r.truncated, r.finish FROM requests q"
                   " JOIN responses r"
                   " ON r.request_id = q.id WHERE q.key = ? AND r.ok = 1",
                   &s->lookup, err) ||
           prepare(s, "INSERT OR IGNORE INTO requests(key, kind, model_id,"
                   " task_id, variant, example_id, pass, choice, prompt,"
                   " continuation, settings) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                   &s->put_req, err) ||
           prepare(s, "SELECT id FROM requests WHERE key = ?", &s->get_req, err) ||
           prepare(s, "INSERT OR REPLACE INTO responses(request_id, run_id, ok,"
                   " output, logprob, n_tokens, is_greedy, token_logprobs, error,"
                   " elapsed, truncated, finish) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                   &s->put_resp, err) ||
           prepare(s, "INSERT OR REPLACE INTO scores(model_id, task_id, variant,"
                   " example_id, metric, value, answer, config, truncated, cut)"
                   " VALUES(?,?,?,?,?,?,?,?,?,?)",
                   &s->put_score, err) ||
           prepare(s, "SELECT 1 FROM scores WHERE model_id = ? AND task_id = ?"
                   " AND variant = ? AND example_id = ? AND config IS ? LIMIT 1",
                   &s->has_score,
                   err) ||
           prepare(s, "DELETE FROM scores WHERE model_id = ? AND task_id = ?"
                   " AND variant = ? AND example_id = ?", &s->clear_scores, err);
}

/* How long a writer waits for another one's transaction before giving
 * up, and when it says that it is waiting. Transactions are short (the
 * sweep computes outside them), so a long wait means a stuck writer. */
#define STORE_BUSY_NOTE_MS 5000

/* sqlite3's busy handler: sleeps 1, 2, 4 ... 100 ms between tries, says
 * once that it is waiting, gives up (SQLITE_BUSY: "database is locked")
 * after STORE_BUSY_LIMIT_MS. */
static int busy_wait(void *arg, int tries)
{
    store *s = arg;
    if (tries == 0)
        s->busy_ms = 0;
    int ms = tries < 7 ? 1 << tries : 100;
    if (s->busy_ms >= STORE_BUSY_LIMIT_MS)
        return 0;
    if (s->busy_ms < STORE_BUSY_NOTE_MS && s->busy_ms + ms >= STORE_BUSY_NOTE_MS)
        fprintf(stderr, "emerge: note: %s: waiting for another process's "
                "write transaction (gives up after %d s)\n", s->path,
                STORE_BUSY_LIMIT_MS / 1000);
    sqlite3_sleep(ms);
    s->busy_ms += ms;
    return 1;
}

int store_open(const char *path, store **out, em_err *err)
{
    store *s = em_calloc(1, sizeof *s);
    s->path = em_strdup(path);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK) {
        em_errorf(err, "%s: cannot open database: %s", path,
                  s->db ? sqlite3_errmsg(s->db) : "out of memory");
        store_close(s);
        return -1;
    }
    sqlite3_busy_handler(s->db, busy_wait, s);
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
             " PRAGMA foreign_keys=ON;", err) != 0 ||
        migrate(s, err) != 0 || prepare_all(s, err) != 0) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

void store_close(store *s)
{
    if (!s)
        return;
    sqlite3_finalize(s->lookup);
    sqlite3_finalize(s->put_req);
    sqlite3_finalize(s->get_req);
    sqlite3_finalize(s->put_resp);
    sqlite3_finalize(s->put_score);
    sqlite3_finalize(s->has_score);
    sqlite3_finalize(s->clear_scores);
    sqlite3_close(s->db);
    free(s->path);
    free(s);
}

int store_begin(store *s, em_err *err)
{
    return exec(s, "BEGIN IMMEDIATE;", err);
}

int store_commit(store *s, em_err *err) { return exec(s, "COMMIT;", err); }

void store_rollback(store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
}

/* ---- task versions: `emerge gc` (store_db.c says what a version is) -- */

/* Superseded versions: every task row that is not its name's current one. */
#define SUPERSEDED_SQL \
    " FROM tasks t WHERE t.id <> " STORE_DB_CURRENT_TASK

/* Lists (and unless dry_run deletes) the superseded task versions. */
static int gc_versions(store *s, int dry_run, FILE *f, int *removed, em_err *err)
{
    sqlite3_stmt *st;
    *removed = 0;
    if (prepare(s,
            "SELECT t.name, t.version, substr(t.hash, 1, 12),"
            " (SELECT count(*) FROM examples e WHERE e.task_id = t.id),"
            " (SELECT count(*) FROM scores s WHERE s.task_id = t.id)"
            SUPERSEDED_SQL " ORDER BY t.name, t.version", &st, err) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        fprintf(f, "%s task %s version %d (hash %s...): %d examples, %d scores\n",
                dry_run ? "would remove" : "removing",
                sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
                sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
                sqlite3_column_int(st, 4));
        (*removed)++;
    }
    sqlite3_finalize(st);
    if (dry_run || *removed == 0)
        return 0;
    /* examples and scores cascade; requests keep their cached responses
     * (task_id set to NULL): they are still answers of that model. */
    return exec(s, "DELETE FROM tasks WHERE id IN (SELECT t.id"
                   SUPERSEDED_SQL ");", err);
}

int store_gc(store *s, int dry_run, FILE *f, int *removed, em_err *err)
{
    if (store_begin(s, err) != 0)
        return -1;
    if (gc_versions(s, dry_run, f, removed, err) != 0) {
        store_rollback(s);
        return -1;
    }
    return store_commit(s, err);
}

/* Binds text or NULL. */
static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

/* Steps a statement that returns no rows, then resets it. */
static int step_done(store *s, sqlite3_stmt *st, const char *what, em_err *err)
{
    int rc = sqlite3_step(st);
    int bad = rc != SQLITE_DONE && rc != SQLITE_ROW;
    if (bad)
        db_error(s, err, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return bad ? -1 : 0;
}

int store_add_run(store *s, const char *command, uint64_t seed, int64_t *id,
                  em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "INSERT INTO runs(created, command, seed, version)"
                " VALUES(strftime('%Y-%m-%dT%H:%M:%SZ','now'), ?, ?, ?)",
                &st, err) != 0)
        return -1;
    bind_text(st, 1, command);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)seed);
    bind_text(st, 3, em_version());   /* release and source commit */
    int rc = step_done(s, st, "adding run", err);
    sqlite3_finalize(st);
    *id = sqlite3_last_insert_rowid(s->db);
    return rc;
}

static int id_of(store *s, const char *sql, const char *key, int64_t *id,
                 em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, sql, &st, err) != 0)
        return -1;
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : em_errorf(err, "%s: no row for '%s'", s->path, key);
}

int store_put_model(store *s, const store_model *m, int64_t *id, em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "INSERT INTO models(identity, name, backend, path, params,"
                " tokens, step, spec, last_run, params_nonembed)"
                " VALUES(?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(identity) DO UPDATE SET name=excluded.name,"
                " backend=excluded.backend, path=excluded.path,"
                " params=CASE WHEN excluded.params > 0 THEN excluded.params"
                " ELSE models.params END, params_nonembed=CASE WHEN"
                " excluded.params_nonembed > 0 THEN excluded.params_nonembed"
                " ELSE models.params_nonembed END, tokens=excluded.tokens,"
                " step=excluded.step, spec=excluded.spec,"
                " last_run=excluded.last_run", &st, err) != 0)
        return -1;
    bind_text(st, 1, m->identity);
    bind_text(st, 2, m->name);
    bind_text(st, 3, m->backend);
    bind_text(st, 4, m->path);
    sqlite3_bind_double(st, 5, m->params);
    sqlite3_bind_double(st, 6, m->tokens);
    sqlite3_bind_double(st, 7, m->step);
    bind_text(st, 8, m->spec_json);
    sqlite3_bind_int64(st, 9, m->run_id);
    if (m->params_nonembed > 0)
        sqlite3_bind_double(st, 10, m->params_nonembed);
    int rc = step_done(s, st, "storing model", err);
    sqlite3_finalize(st);
    if (rc != 0)
        return -1;
    return id_of(s, "SELECT id FROM models WHERE identity = ?", m->identity, id, err);
}

int store_set_model_params(store *s, int64_t id, double params,
                           double params_nonembed, em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "UPDATE models SET params = coalesce(?1, params),"
                " params_nonembed = coalesce(?2, params_nonembed)"
                " WHERE id = ?3", &st, err) != 0)
        return -1;
    if (params > 0)
        sqlite3_bind_double(st, 1, params);
    if (params_nonembed > 0)
        sqlite3_bind_double(st, 2, params_nonembed);
    sqlite3_bind_int64(st, 3, id);
    int rc = step_done(s, st, "storing model size", err);
    sqlite3_finalize(st);
    return rc;
}

static char *targets_json(const task_example *e)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < e->n_targets; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(e->targets[i]));
    char *js = cJSON_PrintUnformatted(a);
    cJSON_Delete(a);
    return js;
}

static int put_examples(store *s, const task *t, int64_t id, em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "INSERT OR REPLACE INTO examples(task_id, example_id, idx,"
                " input, targets) VALUES(?,?,?,?,?)", &st, err) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < t->n_examples; i++) {
        char *js = targets_json(&t->examples[i]);
        sqlite3_bind_int64(st, 1, id);
        bind_text(st, 2, t->examples[i].id);
        sqlite3_bind_int(st, 3, i);
        bind_text(st, 4, t->examples[i].input);
        bind_text(st, 5, js);
        rc = step_done(s, st, "storing examples", err);
        free(js);
    }
    sqlite3_finalize(st);
    return rc;
}

/* The id of (name, hash), or -1; *next: the version a new row gets. */
static int find_version(store *s, const task *t, int64_t *id, int *next,
                        em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "SELECT (SELECT id FROM tasks WHERE name = ?1 AND hash = ?2),"
                " (SELECT coalesce(max(version), 0) + 1 FROM tasks WHERE name = ?1)",
                &st, err) != 0)
        return -1;
    bind_text(st, 1, t->name);
    bind_text(st, 2, t->hash);
    int rc = sqlite3_step(st);
    *id = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL
              ? sqlite3_column_int64(st, 0) : -1;
    *next = rc == SQLITE_ROW ? sqlite3_column_int(st, 1) : 1;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : db_error(s, err, "reading tasks");
}

int store_put_task(store *s, const task *t, int64_t run_id, int64_t *id,
                   em_err *err)
{
    int64_t old;
    int next;
    if (find_version(s, t, &old, &next, err) != 0)
        return -1;
    sqlite3_stmt *st;
    if (prepare(s, "INSERT INTO tasks(name, hash, path, preferred_metric,"
                " random_baseline, low_score, high_score, version, last_run)"
                " VALUES(?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(name, hash) DO UPDATE SET path=excluded.path,"
                " preferred_metric=excluded.preferred_metric,"
                " random_baseline=excluded.random_baseline,"
                " low_score=excluded.low_score, high_score=excluded.high_score,"
                " last_run=excluded.last_run", &st, err) != 0)
        return -1;
    bind_text(st, 1, t->name);
    bind_text(st, 2, t->hash);
    bind_text(st, 3, t->path);
    bind_text(st, 4, t->preferred_metric);
    if (isnan(t->random_baseline))
        sqlite3_bind_null(st, 5);
    else
        sqlite3_bind_double(st, 5, t->random_baseline);
    sqlite3_bind_double(st, 6, t->low_score);
    sqlite3_bind_double(st, 7, t->high_score);
    sqlite3_bind_int(st, 8, next);
    sqlite3_bind_int64(st, 9, run_id);
    int rc = step_done(s, st, "storing task", err);
    sqlite3_finalize(st);
    if (rc != 0)
        return -1;
    if (old >= 0) { /* a known version: its examples are stored */
        *id = old;
        return 0;
    }
    *id = sqlite3_last_insert_rowid(s->db);
    if (next > 1)
        fprintf(stderr, "emerge: note: task %s changed (%s): stored as version "
                "%d; the scores of earlier versions are kept\n", t->name,
                t->path ? t->path : "", next);
    return put_examples(s, t, *id, err);
}

/* ---- the response cache ------------------------------------------------ */

static void sha_field(em_buf *b, const char *v)
{
    /* Length-prefixed, so ("ab","c") and ("a","bc") differ; NULL != "". */
    if (!v) {
        em_buf_puts(b, "-1:");
        return;
    }
    em_buf_printf(b, "%zu:", strlen(v));
    em_buf_puts(b, v);
}

void store_cache_key(const char *identity, const char *kind, const char *prompt,
                     const char *cont, const char *settings, char out[65])
{
    em_buf b = {0};
    sha_field(&b, identity);
    sha_field(&b, kind);
    sha_field(&b, prompt);
    sha_field(&b, cont);
    sha_field(&b, settings);
    em_sha256_hex(b.s, b.len, out);
    em_buf_free(&b);
}

void store_response_clear(store_response *r)
{
    free(r->text);
    free(r->error);
    memset(r, 0, sizeof *r);
}

static const char *const finish_names[] = {NULL, "stop", "length", "context"};

static const char *finish_name(int f)
{
    return f > 0 && f < (int)(sizeof finish_names / sizeof *finish_names)
               ? finish_names[f] : NULL;
}

static int finish_code(const char *name)
{
    for (int i = 1; name && i < (int)(sizeof finish_names / sizeof *finish_names); i++)
        if (!strcmp(name, finish_names[i]))
            return i;
    return 0;
}

int store_lookup(store *s, const char *key, store_response *out, int *found,
                 em_err *err)
{
    sqlite3_stmt *st = s->lookup;
    bind_text(st, 1, key);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        memset(out, 0, sizeof *out);
        out->ok = sqlite3_column_int(st, 0);
        out->text = store_db_col_dup(st, 1);
        out->logprob = sqlite3_column_double(st, 2);
        out->n_tokens = sqlite3_column_int(st, 3);
        out->is_greedy = sqlite3_column_int(st, 4);
        out->error = store_db_col_dup(st, 5);
        out->elapsed = sqlite3_column_double(st, 6);
        out->truncated = sqlite3_column_int(st, 7);
        out->finish = finish_code((const char *)sqlite3_column_text(st, 8));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(s, err, "cache lookup");
    return 0;
}

static char *floats_json(const float *v, int n)
{
    if (!v)
        return NULL;
    em_buf b = {0};
    em_buf_putc(&b, '[');
    for (int i = 0; i < n; i++)
        em_buf_printf(&b, "%s%.9g", i ? "," : "", (double)v[i]);
    em_buf_putc(&b, ']');
    return em_buf_take(&b);
}

int store_put_response(store *s, const store_request *rq,
                       const store_response *rs, int64_t run_id, em_err *err)
{
    sqlite3_stmt *st = s->put_req;
    bind_text(st, 1, rq->key);
    bind_text(st, 2, rq->kind);
    sqlite3_bind_int64(st, 3, rq->model_id);
    sqlite3_bind_int64(st, 4, rq->task_id);
    bind_text(st, 5, rq->variant);
    bind_text(st, 6, rq->example_id);
    sqlite3_bind_int(st, 7, rq->pass);
    sqlite3_bind_int(st, 8, rq->choice);
    bind_text(st, 9, rq->prompt);
    bind_text(st, 10, rq->continuation);
    bind_text(st, 11, rq->settings);
    int64_t req_id = 0;
    if (step_done(s, st, "storing request", err) != 0)
        return -1;
    st = s->get_req;
    bind_text(st, 1, rq->key);
    if (sqlite3_step(st) == SQLITE_ROW)
        req_id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    st = s->put_resp;
    char *tl = floats_json(rs->token_logprobs, rs->n_token_logprobs);
    sqlite3_bind_int64(st, 1, req_id);
    sqlite3_bind_int64(st, 2, run_id);
    sqlite3_bind_int(st, 3, rs->ok);
    bind_text(st, 4, rs->text);
    sqlite3_bind_double(st, 5, rs->logprob);
    sqlite3_bind_int(st, 6, rs->n_tokens);
    sqlite3_bind_int(st, 7, rs->is_greedy);
    bind_text(st, 8, tl);
    bind_text(st, 9, rs->error);
    sqlite3_bind_double(st, 10, rs->elapsed);
    sqlite3_bind_int(st, 11, rs->truncated);
    bind_text(st, 12, finish_name(rs->finish));
    int rc = step_done(s, st, "storing response", err);
    free(tl);
    return rc;
}

int store_put_score(store *s, const store_score *sc, em_err *err)
{
    sqlite3_stmt *st = s->put_score;
    sqlite3_bind_int64(st, 1, sc->model_id);
    sqlite3_bind_int64(st, 2, sc->task_id);
    bind_text(st, 3, sc->variant);
    bind_text(st, 4, sc->example_id);
    bind_text(st, 5, sc->metric);
    sqlite3_bind_double(st, 6, sc->value);
    bind_text(st, 7, sc->answer);
    bind_text(st, 8, sc->config);
    sqlite3_bind_int(st, 9, sc->truncated);
    sqlite3_bind_int(st, 10, sc->cut);
    return step_done(s, st, "storing score", err);
}

int store_clear_scores(store *s, int64_t model_id, int64_t task_id,
                       const char *variant, const char *example_id, em_err *err)
{
    sqlite3_stmt *st = s->clear_scores;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, task_id);
    bind_text(st, 3, variant);
    bind_text(st, 4, example_id);
    return step_done(s, st, "clearing scores", err);
}

int store_has_scores(store *s, int64_t model_id, int64_t task_id,
                     const char *variant, const char *example_id,
                     const char *config, int *yes, em_err *err)
{
    sqlite3_stmt *st = s->has_score;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, task_id);
    bind_text(st, 3, variant);
    bind_text(st, 4, example_id);
    bind_text(st, 5, config);
    int rc = sqlite3_step(st);
    *yes = rc == SQLITE_ROW;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(s, err, "reading scores");
    return 0;
}

int store_count(store *s, const char *table, int64_t *n, em_err *err)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM \"%s\"", table);
    sqlite3_stmt *st;
    if (prepare(s, sql, &st, err) != 0)
        return -1;
    *n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return 0;
}

/* ---- file hash cache (for identity.c) -------------------------------------
 *
 * A model's identity is the SHA-256 of its files (identity.h); hashing a
 * multi-gigabyte file takes seconds, so the digest is kept, keyed by all
 * that stat() says a rewrite changes: path, size, mtime and ctime (with
 * nanoseconds), inode and device. ctime cannot be set from user space
 * (cp -p, rsync -t and touch restore mtime only), so a file rewritten in
 * place always misses. Losing a row costs only a re-hash.
 */

/* Binds (path, size, mtime_ns, ctime_ns, inode, device) to ?1..?6. Inode
 * and device numbers are unsigned; their bits go in as they are. */
static void bind_file_stat(sqlite3_stmt *q, const char *path, const struct stat *st)
{
    bind_text(q, 1, path);
    sqlite3_bind_int64(q, 2, (sqlite3_int64)st->st_size);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)st->st_mtim.tv_sec * 1000000000 +
                                 st->st_mtim.tv_nsec);
    sqlite3_bind_int64(q, 4, (sqlite3_int64)st->st_ctim.tv_sec * 1000000000 +
                                 st->st_ctim.tv_nsec);
    sqlite3_bind_int64(q, 5, (sqlite3_int64)st->st_ino);
    sqlite3_bind_int64(q, 6, (sqlite3_int64)st->st_dev);
}

int store_file_hash_get(store *s, const char *path, const struct stat *st,
                        char hex[65], int *found, em_err *err)
{
    sqlite3_stmt *q;
    *found = 0;
    if (prepare(s, "SELECT sha256 FROM file_hashes WHERE path = ?1 AND size = ?2"
                " AND mtime_ns = ?3 AND ctime_ns = ?4 AND inode = ?5"
                " AND device = ?6", &q, err) != 0)
        return -1;
    bind_file_stat(q, path, st);
    int rc = sqlite3_step(q), ret = 0;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(q, 0);
        if (v && strlen(v) == 64) {
            memcpy(hex, v, 65);
            *found = 1;
        } else {
            ret = em_errorf(err, "%s: file_hashes: the row for %s holds no "
                            "SHA-256", s->path, path);
        }
    } else if (rc != SQLITE_DONE) {
        ret = db_error(s, err, "reading file_hashes");
    }
    sqlite3_finalize(q);
    return ret;
}

int store_file_hash_put(store *s, const char *path, const struct stat *st,
                        const char hex[65], em_err *err)
{
    sqlite3_stmt *q;
    if (prepare(s, "INSERT OR REPLACE INTO file_hashes(path, size, mtime_ns,"
                " ctime_ns, inode, device, sha256, hashed) VALUES(?1, ?2, ?3,"
                " ?4, ?5, ?6, ?7, strftime('%Y-%m-%dT%H:%M:%SZ','now'))",
                &q, err) != 0)
        return -1;
    bind_file_stat(q, path, st);
    sqlite3_bind_text(q, 7, hex, 64, SQLITE_TRANSIENT);
    int rc = step_done(s, q, "writing file_hashes", err);
    sqlite3_finalize(q);
    return rc;
}

/*
 * store.c - the SQLite store: schema, response cache, scores, results.
 *
 * Why SQLite in WAL mode with synchronous=NORMAL: a committed transaction
 * survives the process being killed (only a power loss can undo the last
 * ones), readers never block the writer, and the whole state of a sweep
 * is one file a user can inspect with any SQLite tool.
 *
 * Schema (user_version 3; migrate() upgrades 1 and 2 in place, and only
 * a writing command (a sweep, `emerge migrate`) does: readers open the
 * file read-only and ask for the upgrade):
 *   runs      one row per invocation
 *   models    unique by identity (backend + file hash or options);
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
 * Every connection also has temp.task_sel, the task versions that the
 * read queries see (store_select_versions): by default the one used last
 * per name.
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
#include "metrics/metric.h"
#include "metrics/vote.h"

struct store {
    sqlite3 *db;
    char *path;
    int readonly;
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
    " spec TEXT, last_run INTEGER);"
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

int store_sqlite_exec(sqlite3 *db, const char *path, const char *sql, em_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        em_errorf(err, "%s: %s", path, msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int exec(store *s, const char *sql, em_err *err)
{
    return store_sqlite_exec(s->db, s->path, sql, err);
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
#define STORE_BUSY_LIMIT_MS 120000

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
        migrate(s, err) != 0 || prepare_all(s, err) != 0 ||
        store_select_versions_db(s->db, s->path, NULL, err) != 0) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

/* The file: URI that opens path read-only. Without a -wal file beside it
 * every committed page is in the main file, and "immutable" reads it
 * without taking locks or creating the -wal/-shm files a read-only WAL
 * connection would otherwise leave behind (a committed baseline must stay
 * one file; a 0444 file in a 0555 directory or a read-only mount must
 * work). With a -wal file (a store being written elsewhere) it is read
 * normally, read-only. */
static char *ro_uri(const char *path)
{
    em_buf b = {0};
    em_buf_puts(&b, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if (*p == '?' || *p == '#' || *p == '%' || *p < 0x20 || *p == 0x7F)
            em_buf_printf(&b, "%%%02X", *p);
        else
            em_buf_putc(&b, (char)*p);
    }
    em_buf wal = {0};
    em_buf_printf(&wal, "%s-wal", path);
    struct stat sb;
    if (stat(wal.s, &sb) != 0)
        em_buf_puts(&b, "?immutable=1");
    em_buf_free(&wal);
    return em_buf_take(&b);
}

/* The verdict on what a file opened read-only is: an emerge store of our
 * version with every table the reading queries use. */
static int ro_validate(sqlite3 *db, const char *path, em_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return em_errorf(err, "%s: not an SQLite database (%s)", path,
                         sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    int v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return em_errorf(err, "%s: not an SQLite database (%s)", path,
                         sqlite3_errmsg(db));
    static const char *const tables[] = {"models", "tasks", "examples",
                                         "requests", "responses", "scores"};
    int missing = 0;
    for (size_t i = 0; i < sizeof tables / sizeof *tables; i++) {
        if (sqlite3_table_column_metadata(db, NULL, tables[i], NULL, NULL,
                                          NULL, NULL, NULL, NULL) != SQLITE_OK)
            missing++;
    }
    if (missing == (int)(sizeof tables / sizeof *tables))
        return em_errorf(err, "%s: not an emerge results database (no models, "
                         "tasks or scores tables)", path);
    if (v > STORE_SCHEMA_VERSION || (v < STORE_SCHEMA_VERSION && !missing))
        return em_errorf(err, "%s: schema version %d, this emerge reads version "
                         "%d%s", path, v, STORE_SCHEMA_VERSION,
                         v < STORE_SCHEMA_VERSION ? " (`emerge migrate --db FILE` "
                         "upgrades an older store in place; reading commands "
                         "never write)" : "");
    if (missing)
        return em_errorf(err, "%s: not an emerge results database (%d of its "
                         "tables are missing)", path, missing);
    return 0;
}

int store_sqlite_open_ro(const char *path, sqlite3 **db, em_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return em_errorf(err, "%s: no such database", path);
    if (!S_ISREG(sb.st_mode))
        return em_errorf(err, "%s: not a regular file", path);
    char *uri = ro_uri(path);
    int rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    free(uri);
    if (rc != SQLITE_OK) {
        em_errorf(err, "%s: cannot open database: %s", path,
                  *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(*db, STORE_BUSY_LIMIT_MS);
    if (ro_validate(*db, path, err) != 0 ||
        store_select_versions_db(*db, path, NULL, err) != 0) {
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

int store_open_readonly(const char *path, store **out, em_err *err)
{
    store *s = em_calloc(1, sizeof *s);
    s->path = em_strdup(path);
    s->readonly = 1;
    if (store_sqlite_open_ro(path, &s->db, err) != 0) {
        store_close(s);
        return -1;
    }
    *out = s;
    return 0;
}

int store_select_versions(store *s, const char *spec, em_err *err)
{
    return store_select_versions_db(s->db, s->path, spec, err);
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
    if (s->readonly)
        return em_errorf(err, "%s: opened read-only", s->path);
    return exec(s, "BEGIN IMMEDIATE;", err);
}

int store_version_notes(store *s, FILE *f, em_err *err)
{
    return store_version_notes_db(s->db, f, err);
}

int store_gc(store *s, int dry_run, FILE *f, int *removed, em_err *err)
{
    if (store_begin(s, err) != 0)
        return -1;
    if (store_gc_db(s->db, s->path, dry_run, f, removed, err) != 0) {
        store_rollback(s);
        return -1;
    }
    return store_commit(s, err);
}
int store_commit(store *s, em_err *err) { return exec(s, "COMMIT;", err); }

void store_rollback(store *s)
{
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK;", NULL, NULL, NULL);
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
                " tokens, step, spec, last_run) VALUES(?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT(identity) DO UPDATE SET name=excluded.name,"
                " backend=excluded.backend, path=excluded.path,"
                " params=CASE WHEN excluded.params > 0 THEN excluded.params"
                " ELSE models.params END, tokens=excluded.tokens,"
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
    int rc = step_done(s, st, "storing model", err);
    sqlite3_finalize(st);
    if (rc != 0)
        return -1;
    return id_of(s, "SELECT id FROM models WHERE identity = ?", m->identity, id, err);
}

int store_set_model_params(store *s, int64_t id, double params, em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "UPDATE models SET params = ? WHERE id = ?", &st, err) != 0)
        return -1;
    sqlite3_bind_double(st, 1, params);
    sqlite3_bind_int64(st, 2, id);
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

static char *col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    return v ? em_strdup((const char *)v) : NULL;
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
        out->text = col_dup(st, 1);
        out->logprob = sqlite3_column_double(st, 2);
        out->n_tokens = sqlite3_column_int(st, 3);
        out->is_greedy = sqlite3_column_int(st, 4);
        out->error = col_dup(st, 5);
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

int store_dump_scores(store *s, FILE *f, em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, "SELECT m.name, t.name, s.variant, s.example_id, s.metric,"
                " s.value, s.answer FROM scores s JOIN models m ON m.id ="
                " s.model_id JOIN tasks t ON t.id = s.task_id"
                " JOIN temp.task_sel ts ON ts.id = t.id ORDER BY m.params,"
                " m.tokens, m.step, m.name, t.name, s.variant, s.example_id,"
                " s.metric", &st, err) != 0)
        return -1;
    fprintf(f, "model,task,variant,example,metric,value,answer\n");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *ans = (const char *)sqlite3_column_text(st, 6);
        fprintf(f, "%s,%s,%s,%s,%s,%.17g,\"", sqlite3_column_text(st, 0),
                sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
                sqlite3_column_text(st, 3), sqlite3_column_text(st, 4),
                sqlite3_column_double(st, 5));
        for (const char *c = ans ? ans : ""; *c; c++)
            fputs(*c == '"' ? "\"\"" : *c == '\n' ? "\\n" : (char[2]){*c, 0}, f);
        fputs("\"\n", f);
    }
    sqlite3_finalize(st);
    return 0;
}

/* ---- aggregation --------------------------------------------------------- */

typedef struct row_acc {
    store_result *rows;
    int n, cap;
} row_acc;

static store_result *acc_push(row_acc *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->rows = em_realloc(a->rows, sizeof *a->rows * (size_t)a->cap);
    }
    store_result *r = &a->rows[a->n++];
    memset(r, 0, sizeof *r);
    return r;
}

void store_results_free(store_result *rows, int n)
{
    for (int i = 0; i < n; i++) {
        free(rows[i].task);
        free(rows[i].variant);
        free(rows[i].model);
        free(rows[i].metric);
    }
    free(rows);
}

/* The group a score row belongs to, as columns 0..5 of the query below. */
static int same_group(sqlite3_stmt *st, const store_result *r, int with_metric)
{
    return !strcmp((const char *)sqlite3_column_text(st, 0), r->task) &&
           !strcmp((const char *)sqlite3_column_text(st, 1), r->variant) &&
           !strcmp((const char *)sqlite3_column_text(st, 2), r->model) &&
           (!with_metric || !strcmp((const char *)sqlite3_column_text(st, 3), r->metric));
}

static uint64_t group_seed(const store_result *r)
{
    uint64_t h = em_hash64(r->task, strlen(r->task), 0);
    h = em_hash64(r->variant, strlen(r->variant), h);
    h = em_hash64(r->model, strlen(r->model), h);
    return em_hash64(r->metric, strlen(r->metric), h);
}

static void finish_group(store_result *r, const double *v, int n)
{
    metric_summary sum;
    metric_bootstrap(v, n, 1000, 0.95, group_seed(r), &sum);
    r->mean = sum.mean;
    r->lo = sum.lo;
    r->hi = sum.hi;
    r->n = n;
    r->normalized = NAN;
    if (r->preferred)
        r->normalized = r->high_score != r->low_score
                            ? metric_normalize(r->mean, r->low_score, r->high_score)
                            : r->mean;
}

static void start_group(sqlite3_stmt *st, store_result *r)
{
    r->task = col_dup(st, 0);
    r->variant = col_dup(st, 1);
    r->model = col_dup(st, 2);
    r->metric = col_dup(st, 3);
    r->params = sqlite3_column_double(st, 5);
    r->tokens = sqlite3_column_double(st, 6);
    r->step = sqlite3_column_double(st, 7);
    const unsigned char *pm = sqlite3_column_text(st, 8);
    r->preferred = pm && !strcmp((const char *)pm, r->metric);
    r->random_baseline = sqlite3_column_type(st, 9) == SQLITE_NULL
                             ? NAN : sqlite3_column_double(st, 9);
    r->low_score = sqlite3_column_double(st, 10);
    r->high_score = sqlite3_column_double(st, 11);
}

/* A derived row (no CI) of the group like belongs to. like is a copy:
 * acc_push may move the array it came from. */
static store_result *push_derived(row_acc *a, const store_result *like,
                                  const char *metric, double mean, int n)
{
    store_result *r = acc_push(a);
    r->task = em_strdup(like->task);
    r->variant = em_strdup(like->variant);
    r->model = em_strdup(like->model);
    r->metric = em_strdup(metric);
    r->params = like->params;
    r->tokens = like->tokens;
    r->step = like->step;
    r->mean = mean;
    r->lo = r->hi = r->normalized = NAN;
    r->random_baseline = NAN;
    r->n = n;
    return r;
}

/* Appends an ECE row after a model's metrics: confidence against
 * correctness (grade > 0.5). "ece": mc_confidence against
 * multiple_choice_grade; "sc_ece": self-consistency agreement against
 * sc_correct, followed by the calibration curve, one "sc_calib_LO-HI" row
 * per non-empty agreement bin (mean = accuracy there, n = examples). */
static void add_ece(row_acc *a, store_result like, const char *name,
                    const double *conf, const double *grade, int n)
{
    if (n == 0)
        return;
    double *correct = em_malloc(sizeof *correct * (size_t)n);
    for (int i = 0; i < n; i++)
        correct[i] = grade[i] > 0.5;
    push_derived(a, &like, name, metric_ece(conf, correct, n, 10), n);
    if (!strcmp(name, "sc_ece")) {
        int count[10];
        double acc[10];
        vote_calibration(conf, correct, n, 10, count, acc);
        for (int b = 0; b < 10; b++) {
            char m[32];
            snprintf(m, sizeof m, "sc_calib_%.1f-%.1f", b / 10.0, (b + 1) / 10.0);
            if (count[b])
                push_derived(a, &like, m, acc[b], count[b]);
        }
    }
    free(correct);
}

static const char *const results_sql =
    "SELECT t.name, s.variant, m.name, s.metric, s.value, m.params, m.tokens,"
    " m.step, t.preferred_metric, t.random_baseline, t.low_score, t.high_score,"
    " coalesce(s.truncated, 0), coalesce(s.cut, 0)"
    " FROM scores s JOIN tasks t ON t.id = s.task_id"
    " JOIN temp.task_sel ts ON ts.id = t.id"
    " JOIN models m ON m.id = s.model_id AND m.last_run IS (SELECT"
    " max(last_run) FROM models m2 WHERE m2.name = m.name)"
    " LEFT JOIN examples e ON e.task_id = s.task_id AND e.example_id = s.example_id"
    " ORDER BY t.name, s.variant, m.params, m.tokens, m.step, m.name, s.metric,"
    " e.idx, s.example_id";

typedef struct dvec {
    double *v;
    int n, cap;
} dvec;

static void dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->v = em_realloc(d->v, sizeof *d->v * (size_t)d->cap);
    }
    d->v[d->n++] = x;
}

/* The ECE rows of a finished (task, variant, model) group; the vectors
 * are in example order (the query sorts metric, then example), so equal
 * lengths pair them up. */
static void add_eces(row_acc *a, const store_result *cur, dvec *conf, dvec *grade,
                     dvec *agree, dvec *sc_ok)
{
    store_result like = *cur;
    add_ece(a, like, "ece", conf->v, grade->v, conf->n == grade->n ? conf->n : 0);
    add_ece(a, like, "sc_ece", agree->v, sc_ok->v,
            agree->n == sc_ok->n ? agree->n : 0);
    conf->n = grade->n = agree->n = sc_ok->n = 0;
}

int store_results(store *s, store_result **rows, int *n, em_err *err)
{
    sqlite3_stmt *st;
    if (prepare(s, results_sql, &st, err) != 0)
        return -1;
    row_acc a = {0};
    dvec vals = {0}, conf = {0}, grade = {0}, agree = {0}, sc_ok = {0};
    store_result *cur = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cur && !same_group(st, cur, 1)) {
            finish_group(cur, vals.v, vals.n);
            vals.n = 0;
            if (!same_group(st, cur, 0)) {
                add_eces(&a, cur, &conf, &grade, &agree, &sc_ok);
            }
        }
        if (!cur || vals.n == 0) {
            cur = acc_push(&a);
            start_group(st, cur);
        }
        double v = sqlite3_column_double(st, 4);
        dvec_push(&vals, v);
        cur->n_truncated += sqlite3_column_int(st, 12) > 0;
        cur->n_cut += sqlite3_column_int(st, 13) > 0;
        if (!strcmp(cur->metric, "mc_confidence"))
            dvec_push(&conf, v);
        else if (!strcmp(cur->metric, "multiple_choice_grade"))
            dvec_push(&grade, v);
        else if (!strcmp(cur->metric, "sc_agreement"))
            dvec_push(&agree, v);
        else if (!strcmp(cur->metric, "sc_correct"))
            dvec_push(&sc_ok, v);
    }
    if (cur) {
        finish_group(cur, vals.v, vals.n);
        add_eces(&a, cur, &conf, &grade, &agree, &sc_ok);
    }
    sqlite3_finalize(st);
    free(vals.v);
    free(conf.v);
    free(grade.v);
    free(agree.v);
    free(sc_ok.v);
    if (rc != SQLITE_DONE) {
        store_results_free(a.rows, a.n);
        return db_error(s, err, "reading scores");
    }
    *rows = a.rows;
    *n = a.n;
    return 0;
}

/* ---- scaling series ------------------------------------------------------ */

static double axis_of(const store_result *r, int axis_flops)
{
    return axis_flops ? 6 * r->params * r->tokens : r->params;
}

static int series_find(scaling_series *ss, int n, const store_result *r)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ss[i].task, r->task) && !strcmp(ss[i].variant, r->variant) &&
            !strcmp(ss[i].metric, r->metric))
            return i;
    return -1;
}

static void series_init(scaling_series *s, const store_result *r)
{
    memset(s, 0, sizeof *s);
    s->task = em_strdup(r->task);
    s->variant = em_strdup(r->variant);
    s->metric = em_strdup(r->metric);
    s->random_baseline = r->preferred ? r->random_baseline : NAN;
    s->random_hi = NAN;
    s->low_score = r->preferred ? r->low_score : 0;
    s->high_score = r->preferred ? r->high_score : 0;
    /* ECE falls as a model improves: normalised as 100 (1 - ece), so the
     * scaling analysis sees a rising curve for better calibration. */
    if (!strcmp(r->metric, "sc_ece")) {
        s->low_score = 1;
        s->high_score = 0;
    }
}

static void series_sort(scaling_series *s, int axis_flops)
{
    for (int i = 1; i < s->n; i++) {
        scaling_point p = s->pts[i];
        double key = axis_flops ? p.flops : p.params;
        int j = i;
        while (j > 0 && (axis_flops ? s->pts[j - 1].flops : s->pts[j - 1].params) > key) {
            s->pts[j] = s->pts[j - 1];
            j--;
        }
        s->pts[j] = p;
    }
}

/* On the parameter axis a family with several checkpoints per size (the
 * demo family, Pythia) would put several points at one x; the reading
 * "score vs. size" means each size fully trained, so of the points that
 * are declared checkpoints (a `step` in the family file) and share a
 * parameter count, keep the most-trained (most compute; ties: the first).
 * Models without a step are never merged: two families may well have
 * members of one size. Every checkpoint stays on the flops axis.
 * Expects s sorted by params. */
static void series_keep_most_trained(scaling_series *s)
{
    int out = 0;
    for (int i = 0; i < s->n; i++) {
        scaling_point *p = &s->pts[i];
        int k = -1;
        for (int j = out - 1; p->step > 0 && j >= 0 &&
                              s->pts[j].params == p->params; j--)
            if (s->pts[j].step > 0)
                k = j;
        if (k < 0) {
            s->pts[out++] = *p;
        } else if (p->flops > s->pts[k].flops) {
            free(s->pts[k].model);
            s->pts[k] = *p;
        } else {
            free(p->model);
        }
    }
    s->n = out;
}

int store_load_series(store *s, int axis_flops, scaling_series **out, int *n,
                      em_err *err)
{
    store_result *rows;
    int nr;
    if (store_results(s, &rows, &nr, err) != 0)
        return -1;
    scaling_series *ss = NULL;
    int ns = 0;
    for (int i = 0; i < nr; i++) {
        const store_result *r = &rows[i];
        if (!strcmp(r->metric, "ece") || !strcmp(r->metric, "mc_confidence") ||
            !strncmp(r->metric, "sc_calib_", 9))
            continue;
        if (axis_flops && !(axis_of(r, 1) > 0))
            continue;
        int k = series_find(ss, ns, r);
        if (k < 0) {
            ss = em_realloc(ss, sizeof *ss * (size_t)(ns + 1));
            series_init(&ss[ns], r);
            k = ns++;
        }
        scaling_series *se = &ss[k];
        se->pts = em_realloc(se->pts, sizeof *se->pts * (size_t)(se->n + 1));
        scaling_point *p = &se->pts[se->n++];
        p->model = em_strdup(r->model);
        p->params = r->params;
        p->flops = r->tokens > 0 ? 6 * r->params * r->tokens : 0;
        p->score = r->mean;
        p->lo = r->lo;
        p->hi = r->hi;
        p->n = r->n;
        p->step = r->step;
        p->n_truncated = r->n_truncated;
    }
    for (int i = 0; i < ns; i++) {
        series_sort(&ss[i], axis_flops);
        if (!axis_flops)
            series_keep_most_trained(&ss[i]);
    }
    store_results_free(rows, nr);
    *out = ss;
    *n = ns;
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

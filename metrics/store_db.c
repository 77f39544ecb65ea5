/*
 * store_db.c - the SQLite pieces that the store's writer (harness/store.c)
 * and its readers (store_query.c, results.c) share: the read-only open that
 * judges a file before anything is read, sqlite3_exec with the file named
 * in errors, and which task version each reading query sees.
 *
 * Why the read-only open is careful: see store_db_ro_uri. Why task versions live
 * here: a task whose prompts or scoring change (its hash, task.h) is
 * stored as a new row of `tasks` with the next version number; the old
 * version keeps its examples and scores, so editing a task file never
 * deletes a result. Every reading query joins temp.task_sel, the set of
 * task ids it may see: by default, per task name, the version the latest
 * run used (ties: the newest row), or what --task-version asks for
 * (temp.task_pick). Both live in the connection's temp schema, so a
 * read-only connection can hold them without writing the file.
 */
#include "metrics/store_db.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int store_db_exec(sqlite3 *db, const char *path, const char *sql, em_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        em_errorf(err, "%s: %s", path, msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* The file: URI that opens path read-only. Without a -wal file beside it
 * every committed page is in the main file, and "immutable" reads it
 * without taking locks or creating the -wal/-shm files a read-only WAL
 * connection would otherwise leave behind (a committed baseline must stay
 * one file; a 0444 file in a 0555 directory or a read-only mount must
 * work). With a -wal file (a store being written elsewhere) it is read
 * normally, read-only. `emerge merge` ATTACHes its inputs through it. */
char *store_db_ro_uri(const char *path)
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

int store_db_open_ro(const char *path, sqlite3 **db, em_err *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return em_errorf(err, "%s: no such database", path);
    if (!S_ISREG(sb.st_mode))
        return em_errorf(err, "%s: not a regular file", path);
    char *uri = store_db_ro_uri(path);
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
        store_db_select_versions(*db, path, NULL, err) != 0) {
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    return 0;
}

/* Runs sql with ?1 = name (or NULL) and ?2 = version; *changes receives
 * the rows it inserted. */
static int sv_run(sqlite3 *db, const char *path, const char *sql,
                  const char *name, long version, int *changes, em_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return em_errorf(err, "%s: %s", path, sqlite3_errmsg(db));
    if (name)
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, version);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return em_errorf(err, "%s: selecting task versions: %s", path,
                         sqlite3_errmsg(db));
    *changes = sqlite3_changes(db);
    return 0;
}

/* One "NAME=N" or "N" of a --task-version list into temp.task_pick. */
static int select_one(sqlite3 *db, const char *path, const char *part,
                      em_err *err)
{
    const char *eq = strrchr(part, '=');
    const char *num = eq ? eq + 1 : part;
    char *end;
    long v = strtol(num, &end, 10);
    if (end == num || *end || v < 1)
        return em_errorf(err, "--task-version: '%s' is not VERSION or "
                         "TASK=VERSION (a positive number)", part);
    char *name = eq ? em_strndup(part, (size_t)(eq - part)) : NULL;
    int n = 0;
    int rc = sv_run(db, path,
                    "INSERT OR REPLACE INTO temp.task_pick SELECT name, version"
                    " FROM tasks WHERE (?1 IS NULL OR name = ?1) AND version = ?2",
                    name, v, &n, err);
    if (rc == 0 && n == 0)
        rc = name ? em_errorf(err, "--task-version: task '%s' has no version "
                              "%ld in %s", name, v, path)
                  : em_errorf(err, "--task-version: no task has version %ld "
                              "in %s", v, path);
    free(name);
    return rc;
}

/* task_sel is a view, so tasks stored after the selection are seen too:
 * a picked version where one was picked, else the current one. */
int store_db_select_versions(sqlite3 *db, const char *path, const char *spec,
                             em_err *err)
{
    if (store_db_exec(db, path,
                "CREATE TEMP TABLE IF NOT EXISTS task_pick(name TEXT PRIMARY KEY,"
                " version INTEGER NOT NULL);"
                "DELETE FROM temp.task_pick;"
                "CREATE TEMP VIEW IF NOT EXISTS task_sel AS SELECT t.id FROM tasks t"
                " LEFT JOIN temp.task_pick p ON p.name = t.name"
                " WHERE (p.name IS NOT NULL AND t.version = p.version)"
                " OR (p.name IS NULL AND t.id = " STORE_DB_CURRENT_TASK ");", err) != 0)
        return -1;
    int rc = 0;
    for (const char *p = spec; rc == 0 && p && *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char *part = em_strndup(p, len);
        if (len)
            rc = select_one(db, path, part, err);
        free(part);
        p = c ? c + 1 : NULL;
    }
    return rc;
}

int store_db_version_notes(sqlite3 *db, FILE *f, em_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
            "SELECT t.name, t.version, (SELECT count(*) FROM tasks t2"
            " WHERE t2.name = t.name), (SELECT max(version) FROM tasks t2"
            " WHERE t2.name = t.name), t.id = " STORE_DB_CURRENT_TASK
            " FROM tasks t JOIN temp.task_sel ts ON ts.id = t.id"
            " ORDER BY t.name", -1, &st, NULL) != SQLITE_OK)
        return em_errorf(err, "reading task versions: %s", sqlite3_errmsg(db));
    while (sqlite3_step(st) == SQLITE_ROW) {
        int n = sqlite3_column_int(st, 2), cur = sqlite3_column_int(st, 4);
        if (n < 2 && cur)
            continue;
        const char *name = (const char *)sqlite3_column_text(st, 0);
        fprintf(f, "emerge: note: task %s: showing version %d (%s) of %d stored "
                "versions; --task-version %s=N shows another, `emerge gc` "
                "removes all but the current one\n", name,
                sqlite3_column_int(st, 1), cur ? "the current one" : "selected",
                n, name);
    }
    sqlite3_finalize(st);
    return 0;
}


char *store_db_col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? em_strdup((const char *)t) : NULL;
}

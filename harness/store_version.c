/*
 * store_version.c - task versions in a store: which version each reading
 * query sees, the notes that say older ones exist, and `emerge gc`.
 *
 * A task whose prompts or scoring change (its hash, task.h) is stored as
 * a new row of `tasks` with the next version number; the old version
 * keeps its examples and scores, so editing a task file never deletes a
 * result. Every reading query joins temp.task_sel, the set of task ids it
 * may see: by default, per task name, the version the latest run used
 * (ties: the newest row), or what --task-version asks for (temp.task_pick).
 * Both live in the connection's temp schema, so a read-only connection
 * can hold them without writing the file.
 */
#include "harness/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* The version of task t.name that readers see by default. */
#define CURRENT_SQL \
    "(SELECT t2.id FROM tasks t2 WHERE t2.name = t.name" \
    " ORDER BY coalesce(t2.last_run, 0) DESC, t2.id DESC LIMIT 1)"

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
int store_select_versions_db(sqlite3 *db, const char *path, const char *spec,
                             em_err *err)
{
    if (store_sqlite_exec(db, path,
                "CREATE TEMP TABLE IF NOT EXISTS task_pick(name TEXT PRIMARY KEY,"
                " version INTEGER NOT NULL);"
                "DELETE FROM temp.task_pick;"
                "CREATE TEMP VIEW IF NOT EXISTS task_sel AS SELECT t.id FROM tasks t"
                " LEFT JOIN temp.task_pick p ON p.name = t.name"
                " WHERE (p.name IS NOT NULL AND t.version = p.version)"
                " OR (p.name IS NULL AND t.id = " CURRENT_SQL ");", err) != 0)
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

int store_version_notes_db(sqlite3 *db, FILE *f, em_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db,
            "SELECT t.name, t.version, (SELECT count(*) FROM tasks t2"
            " WHERE t2.name = t.name), (SELECT max(version) FROM tasks t2"
            " WHERE t2.name = t.name), t.id = " CURRENT_SQL
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

/* Superseded versions: every task row that is not its name's current one. */
#define SUPERSEDED_SQL \
    " FROM tasks t WHERE t.id <> " CURRENT_SQL

int store_gc_db(sqlite3 *db, const char *path, int dry_run, FILE *f,
                int *removed, em_err *err)
{
    sqlite3_stmt *st;
    *removed = 0;
    if (sqlite3_prepare_v2(db,
            "SELECT t.name, t.version, substr(t.hash, 1, 12),"
            " (SELECT count(*) FROM examples e WHERE e.task_id = t.id),"
            " (SELECT count(*) FROM scores s WHERE s.task_id = t.id)"
            SUPERSEDED_SQL " ORDER BY t.name, t.version", -1, &st, NULL)
        != SQLITE_OK)
        return em_errorf(err, "%s: %s", path, sqlite3_errmsg(db));
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
    return store_sqlite_exec(db, path, "DELETE FROM tasks WHERE id IN (SELECT t.id"
                   SUPERSEDED_SQL ");", err);
}

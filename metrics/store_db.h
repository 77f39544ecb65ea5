/*
 * store_db.h - the SQLite pieces the store's writer (harness/store.c) and
 * its readers (store_query.c, results.c) share: the schema version they
 * agree on, the read-only open, sqlite3_exec with the file named in
 * errors, and the task versions reading queries see (temp.task_sel).
 */
#ifndef EMERGE_STORE_DB_H
#define EMERGE_STORE_DB_H

#include <stdio.h>

#include "base/common.h"

/* The schema harness/store.c writes (PRAGMA user_version) and the readers
 * read; an older file is upgraded only by a writer (`emerge migrate`). */
#define STORE_SCHEMA_VERSION 4
/* How long any connection waits for another process's write transaction. */
#define STORE_BUSY_LIMIT_MS 120000

/* The version of task t.name that readers see by default: the one the
 * latest run used (ties: the newest row). An SQL expression. */
#define STORE_DB_CURRENT_TASK \
    "(SELECT t2.id FROM tasks t2 WHERE t2.name = t.name" \
    " ORDER BY coalesce(t2.last_run, 0) DESC, t2.id DESC LIMIT 1)"

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;

/* Opens path read-only (immutable when no -wal exists: no -wal/-shm files
 * are created, so a 0444 file, a read-only mount or a rollback-journal
 * store stay as they are), judges it (missing, not SQLite, not an emerge
 * store, another schema version: each its own error) and selects the
 * default task versions. */
int store_db_open_ro(const char *path, sqlite3 **db, em_err *err);
/* The file: URI (malloc'd) that store_db_open_ro opens path with: read-
 * only, and immutable when no -wal file is beside it. For ATTACH on a
 * connection opened with SQLITE_OPEN_URI. */
char *store_db_ro_uri(const char *path);
/* sqlite3_exec with the error as "PATH: message". */
int store_db_exec(sqlite3 *db, const char *path, const char *sql, em_err *err);
/* Column i as a malloc'd string, or NULL for SQL NULL. */
char *store_db_col_dup(sqlite3_stmt *st, int i);

/* Which task version each reading query on db sees: spec NULL, the
 * default (see STORE_DB_CURRENT_TASK); else a --task-version list "N" or
 * "TASK=N,..." (N alone: every task that has version N). */
int store_db_select_versions(sqlite3 *db, const char *path, const char *spec,
                             em_err *err);
/* One note line on f per selected task that has other stored versions. */
int store_db_version_notes(sqlite3 *db, FILE *f, em_err *err);

#endif

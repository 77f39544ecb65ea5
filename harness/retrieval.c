/*
 * retrieval.c - passage corpora indexed with SQLite FTS5 and searched
 * with BM25 (see retrieval.h).
 *
 * The index lives in a private in-memory database: it costs milliseconds
 * for the corpora a task carries (a thousand short facts) and leaves no
 * file to go stale next to the corpus.
 */
#include "harness/retrieval.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct retr_index {
    sqlite3 *db;
    sqlite3_stmt *search;
    char **text;     /* passages in corpus order */
    char **where;    /* "file:line" of each */
    int n, cap;
};

static int db_fail(retr_index *ix, const char *path, const char *what, em_err *err)
{
    return em_errorf(err, "%s: %s: %s", path, what, sqlite3_errmsg(ix->db));
}

static void push(retr_index *ix, const char *path, int line, char *text)
{
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 64;
        ix->text = em_realloc(ix->text, (size_t)ix->cap * sizeof *ix->text);
        ix->where = em_realloc(ix->where, (size_t)ix->cap * sizeof *ix->where);
    }
    em_buf w = {0};
    em_buf_printf(&w, "%s:%d", path, line);
    ix->text[ix->n] = text;
    ix->where[ix->n++] = em_buf_take(&w);
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return 0;
    return 1;
}

/* One JSONL record: {"text": "...", "title": "..."?}. The title, when
 * present, is put before the text ("title: text") so it is searched and
 * shown. */
static int parse_record(retr_index *ix, const char *path, int line,
                        const char *s, size_t n, em_err *err)
{
    cJSON *o = cJSON_ParseWithLength(s, n);
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return em_errorf(err, "%s:%d: a corpus line must be a JSON object with a "
                         "\"text\" field", path, line);
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(o, "title");
    int rc = 0;
    if (!cJSON_IsString(t) || !*t->valuestring) {
        rc = em_errorf(err, "%s:%d: record has no non-empty string field 'text'",
                       path, line);
    } else if (ti && !cJSON_IsString(ti)) {
        rc = em_errorf(err, "%s:%d: field 'title' must be a string", path, line);
    } else {
        em_buf b = {0};
        if (ti && *ti->valuestring)
            em_buf_printf(&b, "%s: ", ti->valuestring);
        em_buf_puts(&b, t->valuestring);
        push(ix, path, line, em_buf_take(&b));
    }
    cJSON_Delete(o);
    return rc;
}

/* Splits the corpus into passages: lines (.txt) or JSONL records. */
static int read_passages(retr_index *ix, const char *path, const char *text,
                         size_t len, em_err *err)
{
    size_t pl = strlen(path);
    int jsonl = pl >= 6 && !strcmp(path + pl - 6, ".jsonl");
    if (memchr(text, '\0', len))
        return em_errorf(err, "%s: binary data (NUL byte) in a corpus", path);
    int line = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len, n = end - i;
        line++;
        if (n && text[i + n - 1] == '\r')
            n--;
        if (!blank(text + i, n)) {
            if (jsonl) {
                if (parse_record(ix, path, line, text + i, n, err))
                    return -1;
            } else {
                push(ix, path, line, em_strndup(text + i, n));
            }
        }
        i = end + 1;
    }
    if (!ix->n)
        return em_errorf(err, "%s: the corpus holds no passages", path);
    return 0;
}

static int build_fts(retr_index *ix, const char *path, em_err *err)
{
    if (sqlite3_open_v2(":memory:", &ix->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        NULL) != SQLITE_OK)
        return db_fail(ix, path, "cannot open an in-memory index", err);
    if (sqlite3_exec(ix->db, "CREATE VIRTUAL TABLE p USING fts5(text, "
                     "tokenize='porter unicode61'); BEGIN", NULL, NULL, NULL))
        return db_fail(ix, path, "cannot create the FTS5 index (SQLite without "
                       "FTS5?)", err);
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(ix->db, "INSERT INTO p(rowid, text) VALUES(?1, ?2)", -1,
                           &ins, NULL))
        return db_fail(ix, path, "index", err);
    int rc = 0;
    for (int i = 0; i < ix->n && !rc; i++) {
        sqlite3_bind_int(ins, 1, i + 1);
        sqlite3_bind_text(ins, 2, ix->text[i], -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            rc = db_fail(ix, path, "index", err);
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (rc || sqlite3_exec(ix->db, "COMMIT", NULL, NULL, NULL))
        return rc ? rc : db_fail(ix, path, "index", err);
    /* Lower bm25() is better; rowid breaks ties in corpus order. */
    if (sqlite3_prepare_v2(ix->db, "SELECT rowid, bm25(p) FROM p WHERE p MATCH ?1 "
                           "ORDER BY bm25(p), rowid LIMIT ?2", -1, &ix->search, NULL))
        return db_fail(ix, path, "search", err);
    return 0;
}

int retr_build(const char *path, const char *text, size_t len, retr_index **out,
               em_err *err)
{
    retr_index *ix = em_calloc(1, sizeof *ix);
    *out = NULL;
    if (read_passages(ix, path, text, len, err) || build_fts(ix, path, err)) {
        retr_free(ix);
        return -1;
    }
    *out = ix;
    return 0;
}

int retr_open(const char *path, retr_index **out, em_err *err)
{
    char *text;
    size_t len;
    *out = NULL;
    if (em_read_file(path, &text, &len, err))
        return -1;
    int rc = retr_build(path, text, len, out, err);
    free(text);
    return rc;
}

void retr_free(retr_index *ix)
{
    if (!ix)
        return;
    sqlite3_finalize(ix->search);
    sqlite3_close(ix->db);
    for (int i = 0; i < ix->n; i++) {
        free(ix->text[i]);
        free(ix->where[i]);
    }
    free(ix->text);
    free(ix->where);
    free(ix);
}

int retr_count(const retr_index *ix) { return ix->n; }

const char *retr_passage(const retr_index *ix, int i)
{
    return i >= 0 && i < ix->n ? ix->text[i] : NULL;
}

const char *retr_where(const retr_index *ix, int i)
{
    return i >= 0 && i < ix->n ? ix->where[i] : NULL;
}

/* Lucene's English stop words, and every single letter ("Q:", "A:"):
 * in a corpus of short facts a rare "a" would otherwise outweigh the
 * name that the question is about. */
static int stop_word(const char *w, size_t n)
{
    static const char *const stop[] = {
        "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in",
        "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the",
        "their", "then", "there", "these", "they", "this", "to", "was", "will",
        "with", NULL};
    if (n == 1)
        return isalpha((unsigned char)w[0]) != 0;
    for (int i = 0; stop[i]; i++)
        if (strlen(stop[i]) == n && !strncasecmp(stop[i], w, n))
            return 1;
    return 0;
}

/* The query's words, each quoted, joined by OR: any word may match and
 * BM25 weighs them; quoting keeps FTS5 operators (NOT, NEAR, "-", "*",
 * ":") in an input from being read as syntax. */
static char *fts_query(const char *q)
{
    em_buf b = {0};
    for (size_t i = 0; q[i];) {
        unsigned char c = (unsigned char)q[i];
        if (!isalnum(c) && c < 0x80) {
            i++;
            continue;
        }
        size_t st = i;
        while (q[i] && (isalnum((unsigned char)q[i]) || (unsigned char)q[i] >= 0x80))
            i++;
        if (!stop_word(q + st, i - st))
            em_buf_printf(&b, "%s\"%.*s\"", b.len ? " OR " : "", (int)(i - st), q + st);
    }
    return em_buf_take(&b);
}

int retr_search(retr_index *ix, const char *query, int k, int **idx, double **score,
                int *n, em_err *err)
{
    *idx = NULL;
    *score = NULL;
    *n = 0;
    char *fq = fts_query(query);
    if (!fq || !*fq || k <= 0) {
        free(fq);
        return 0;
    }
    sqlite3_stmt *st = ix->search;
    sqlite3_bind_text(st, 1, fq, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, k);
    int rc = 0, s;
    *idx = em_malloc((size_t)k * sizeof **idx);
    *score = em_malloc((size_t)k * sizeof **score);
    while ((s = sqlite3_step(st)) == SQLITE_ROW && *n < k) {
        (*idx)[*n] = sqlite3_column_int(st, 0) - 1;
        (*score)[(*n)++] = -sqlite3_column_double(st, 1);
    }
    if (s != SQLITE_ROW && s != SQLITE_DONE)
        rc = em_errorf(err, "retrieval search '%s': %s", query, sqlite3_errmsg(ix->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    free(fq);
    if (rc || !*n) {
        free(*idx);
        free(*score);
        *idx = NULL;
        *score = NULL;
        *n = 0;
    }
    return rc;
}

int retr_passages(retr_index *ix, const char *query, int k, const char *sep,
                  char **out, em_err *err)
{
    int *idx, n;
    double *sc;
    *out = NULL;
    if (retr_search(ix, query, k, &idx, &sc, &n, err))
        return -1;
    em_buf b = {0};
    em_buf_puts(&b, "");
    for (int i = 0; i < n; i++) {
        if (i)
            em_buf_puts(&b, sep);
        em_buf_puts(&b, ix->text[idx[i]]);
    }
    free(idx);
    free(sc);
    *out = em_buf_take(&b);
    return 0;
}

void retr_spec_free(retr_spec *s)
{
    if (!s)
        return;
    free(s->corpus);
    free(s->template);
    free(s->query);
    free(s->separator);
    retr_free(s->index);
    free(s);
}

/*
 * merge.c - `emerge merge` (see merge.h): each input ATTACHed read-only
 * to a connection on the output and folded in by SQL, one transaction
 * per input. Ids never cross files: temp.run_map, model_map and task_map
 * translate an input's ids into the output's, found by what the rows
 * are (merge.h). Conflicts are looked for before anything of a table is
 * written; a refusal rolls the whole input back.
 */
#include "harness/merge.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/store.h"
#include "metrics/store_db.h"

/* A shard I/N named in an input's runs. */
typedef struct seen_shard {
    int i, n;
} seen_shard;

typedef struct merger {
    sqlite3 *db;
    const char *out;      /* the output's path */
    const char *in;       /* the input being merged */
    FILE *f;              /* the report */
    seen_shard *shards;
    int n_shards;
} merger;

/* ---- SQL helpers ----------------------------------------------------------- */

static int m_prepare(merger *m, const char *sql, sqlite3_stmt **st, em_err *err)
{
    if (sqlite3_prepare_v2(m->db, sql, -1, st, NULL) != SQLITE_OK)
        return em_errorf(err, "%s: merging %s: %s", m->out, m->in,
                         sqlite3_errmsg(m->db));
    return 0;
}

/* Runs one statement; *changes (if not NULL): the rows it wrote. */
static int m_exec(merger *m, const char *sql, long *changes, em_err *err)
{
    if (changes)
        *changes = 0;
    if (store_db_exec(m->db, m->out, sql, err) != 0)
        return em_error_prefix(err, "merging %s", m->in);
    if (changes)
        *changes = sqlite3_changes(m->db);
    return 0;
}

/* The one number a query returns. */
static int m_long(merger *m, const char *sql, long *v, em_err *err)
{
    sqlite3_stmt *st;
    if (m_prepare(m, sql, &st, err) != 0)
        return -1;
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return em_errorf(err, "%s: merging %s: %s", m->out, m->in,
                         sqlite3_errmsg(m->db));
    return 0;
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "(none)";
}

/* ---- runs ------------------------------------------------------------------ */

#define RUN_SAME " d.created IS s.created AND d.command IS s.command" \
                 " AND d.seed IS s.seed AND d.version IS s.version"

/* Notes the --shard I/N of a command line, if it has one. */
static void note_shard(merger *m, const char *cmd)
{
    const char *p = cmd ? strstr(cmd, " --shard") : NULL;
    int i, n;
    if (!p || (p[8] != ' ' && p[8] != '=') || sscanf(p + 9, "%d/%d", &i, &n) != 2 ||
        i < 1 || n < 1 || i > n)
        return;
    for (int k = 0; k < m->n_shards; k++)
        if (m->shards[k].i == i && m->shards[k].n == n)
            return;
    m->shards = em_realloc(m->shards, sizeof *m->shards * (size_t)(m->n_shards + 1));
    m->shards[m->n_shards++] = (seen_shard){i, n};
}

/* The shards the output's runs (its own and every input's) name. */
static int note_shards(merger *m, em_err *err)
{
    sqlite3_stmt *st;
    if (m_prepare(m, "SELECT command FROM main.runs", &st, err) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        note_shard(m, (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return 0;
}

static int merge_runs(merger *m, em_err *err)
{
    long total, added;
    if (m_long(m, "SELECT count(*) FROM src.runs", &total, err) != 0 ||
        m_exec(m, "INSERT INTO main.runs(created, command, seed, version)"
               " SELECT created, command, seed, version FROM src.runs s"
               " WHERE NOT EXISTS (SELECT 1 FROM main.runs d WHERE" RUN_SAME ")"
               " ORDER BY s.id", &added, err) != 0 ||
        m_exec(m, "INSERT INTO temp.run_map SELECT s.id, (SELECT min(d.id)"
               " FROM main.runs d WHERE" RUN_SAME ") FROM src.runs s", NULL,
               err) != 0)
        return -1;
    fprintf(m->f, "  runs         %ld added, %ld already there\n", added,
            total - added);
    return 0;
}

/* ---- models ---------------------------------------------------------------- */

/* An input's models with their last run in the output's numbering. */
#define SRC_MODELS "(SELECT x.*, (SELECT dst FROM temp.run_map WHERE src =" \
                   " x.last_run) AS lr FROM src.models x)"

/* A name the output already gives a model of another identity (another
 * file's contents, say a checkpoint that differs between two nodes): both
 * are kept, and readers show, per name, the one the later run used. Said,
 * since the other's scores then stop being shown. */
static int note_renamed(merger *m, em_err *err)
{
    sqlite3_stmt *st;
    if (m_prepare(m, "SELECT s.name, s.identity, d.identity FROM src.models s"
                  " JOIN main.models d ON d.name = s.name AND d.identity <>"
                  " s.identity ORDER BY s.name", &st, err) != 0)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW)
        fprintf(m->f, "  warning: model %s: another model than the output's of "
                "that name (identity %.100s here, %.100s there); both are kept "
                "and readers show the one the later run used\n", col(st, 0),
                col(st, 1), col(st, 2));
    sqlite3_finalize(st);
    return 0;
}

static int merge_models(merger *m, em_err *err)
{
    long total, added, updated;
    if (note_renamed(m, err) != 0 ||
        m_long(m, "SELECT count(*) FROM src.models", &total, err) != 0 ||
        m_exec(m, "INSERT INTO main.models(identity, name, backend, path, params,"
               " tokens, step, spec, last_run, params_nonembed) SELECT identity,"
               " name, backend, path, params, tokens, step, spec, lr,"
               " params_nonembed FROM " SRC_MODELS " s WHERE NOT EXISTS"
               " (SELECT 1 FROM main.models d WHERE d.identity = s.identity)"
               " ORDER BY s.id", &added, err) != 0 ||
        /* as store_put_model: the later run's name, path and counts */
        m_exec(m, "UPDATE main.models AS d SET name = s.name, backend ="
               " s.backend, path = s.path, params = CASE WHEN s.params > 0"
               " THEN s.params ELSE d.params END, params_nonembed = CASE WHEN"
               " s.params_nonembed > 0 THEN s.params_nonembed ELSE"
               " d.params_nonembed END, tokens = s.tokens, step = s.step,"
               " spec = s.spec, last_run = s.lr FROM " SRC_MODELS " s"
               " WHERE d.identity = s.identity AND s.lr > coalesce(d.last_run, 0)",
               &updated, err) != 0 ||
        m_exec(m, "INSERT INTO temp.model_map SELECT s.id, d.id FROM src.models s"
               " JOIN main.models d ON d.identity = s.identity", NULL, err) != 0)
        return -1;
    fprintf(m->f, "  models       %ld added, %ld already there (the same "
            "identity; %ld of them last used by this input's runs, whose "
            "names and paths they now carry)\n", added, total - added, updated);
    return 0;
}

/* ---- tasks and examples ------------------------------------------------------ */

/* Inserts the input's task row id as the next version of its name. */
static int add_task(merger *m, sqlite3_stmt *ins, long id, long *version,
                    em_err *err)
{
    sqlite3_bind_int64(ins, 1, id);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE)
        return em_errorf(err, "%s: merging %s: storing task: %s", m->out, m->in,
                         sqlite3_errmsg(m->db));
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT version FROM main.tasks WHERE id = %lld",
             (long long)sqlite3_last_insert_rowid(m->db));
    return m_long(m, sql, version, err);
}

/* New (name, hash) pairs become the next version of their name, in the
 * input's version order. */
static int add_tasks(merger *m, long *added, em_err *err)
{
    sqlite3_stmt *sel, *ins;
    *added = 0;
    if (m_prepare(m, "SELECT s.id, s.name FROM src.tasks s WHERE NOT EXISTS"
                  " (SELECT 1 FROM main.tasks d WHERE d.name = s.name AND"
                  " d.hash = s.hash) ORDER BY s.name, s.version, s.id", &sel,
                  err) != 0)
        return -1;
    if (m_prepare(m, "INSERT INTO main.tasks(name, hash, path, preferred_metric,"
                  " random_baseline, low_score, high_score, version, last_run)"
                  " SELECT name, hash, path, preferred_metric, random_baseline,"
                  " low_score, high_score, (SELECT coalesce(max(version), 0) + 1"
                  " FROM main.tasks d WHERE d.name = s.name), (SELECT dst FROM"
                  " temp.run_map WHERE src = s.last_run) FROM src.tasks s"
                  " WHERE s.id = ?", &ins, err) != 0) {
        sqlite3_finalize(sel);
        return -1;
    }
    int rc = 0;
    while (rc == 0 && sqlite3_step(sel) == SQLITE_ROW) {
        long version;
        rc = add_task(m, ins, (long)sqlite3_column_int64(sel, 0), &version, err);
        if (rc == 0 && version > 1)
            fprintf(m->f, "  note: task %s: another version than the output's, "
                    "stored as version %ld\n", col(sel, 1), version);
        *added += rc == 0;
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(ins);
    return rc;
}

static int merge_tasks(merger *m, em_err *err)
{
    long total, added;
    if (m_long(m, "SELECT count(*) FROM src.tasks", &total, err) != 0 ||
        add_tasks(m, &added, err) != 0 ||
        m_exec(m, "UPDATE main.tasks AS d SET path = s.path, last_run = s.lr"
               " FROM (SELECT x.*, (SELECT dst FROM temp.run_map WHERE src ="
               " x.last_run) AS lr FROM src.tasks x) s WHERE d.name = s.name"
               " AND d.hash = s.hash AND s.lr > coalesce(d.last_run, 0)",
               NULL, err) != 0 ||
        m_exec(m, "INSERT INTO temp.task_map SELECT s.id, d.id FROM src.tasks s"
               " JOIN main.tasks d ON d.name = s.name AND d.hash = s.hash",
               NULL, err) != 0)
        return -1;
    fprintf(m->f, "  tasks        %ld added, %ld already there (the same name "
            "and hash)\n", added, total - added);
    return 0;
}

static int merge_examples(merger *m, em_err *err)
{
    sqlite3_stmt *st;
    if (m_prepare(m, "SELECT t.name, e.example_id FROM src.examples e"
                  " JOIN temp.task_map tm ON tm.src = e.task_id"
                  " JOIN main.examples d ON d.task_id = tm.dst AND d.example_id"
                  " = e.example_id JOIN src.tasks t ON t.id = e.task_id"
                  " WHERE NOT (d.input IS e.input AND d.targets IS e.targets)"
                  " LIMIT 1", &st, err) != 0)
        return -1;
    int clash = sqlite3_step(st) == SQLITE_ROW;
    if (clash)
        em_errorf(err, "%s: task %s, example %s: its input or targets differ "
                  "from %s's under the same task hash; refusing to merge it",
                  m->in, col(st, 0), col(st, 1), m->out);
    sqlite3_finalize(st);
    long total, added;
    if (clash || m_long(m, "SELECT count(*) FROM src.examples", &total, err) != 0 ||
        m_exec(m, "INSERT OR IGNORE INTO main.examples(task_id, example_id, idx,"
               " input, targets) SELECT tm.dst, e.example_id, e.idx, e.input,"
               " e.targets FROM src.examples e JOIN temp.task_map tm ON tm.src ="
               " e.task_id", &added, err) != 0)
        return -1;
    fprintf(m->f, "  examples     %ld added, %ld already there\n", added,
            total - added);
    return 0;
}

/* ---- requests and responses ---------------------------------------------------- */

static int merge_requests(merger *m, em_err *err)
{
    long total, added;
    if (m_long(m, "SELECT count(*) FROM src.requests", &total, err) != 0 ||
        m_exec(m, "INSERT OR IGNORE INTO main.requests(key, kind, model_id,"
               " task_id, variant, example_id, pass, choice, prompt,"
               " continuation, settings) SELECT q.key, q.kind, mm.dst, tm.dst,"
               " q.variant, q.example_id, q.pass, q.choice, q.prompt,"
               " q.continuation, q.settings FROM src.requests q"
               " JOIN temp.model_map mm ON mm.src = q.model_id"
               " LEFT JOIN temp.task_map tm ON tm.src = q.task_id ORDER BY q.id",
               &added, err) != 0)
        return -1;
    fprintf(m->f, "  requests     %ld added, %ld already there (the same cache "
            "key)\n", added, total - added);
    return 0;
}

/* An input's responses, each with the output's request for its key. */
#define RESP_JOIN " FROM src.responses r JOIN src.requests q ON q.id =" \
                  " r.request_id JOIN main.requests dq ON dq.key = q.key"
#define RESP_SAME " r.output IS d.output AND r.logprob IS d.logprob AND" \
                  " r.n_tokens IS d.n_tokens AND r.is_greedy IS d.is_greedy AND" \
                  " r.token_logprobs IS d.token_logprobs AND r.truncated IS" \
                  " d.truncated AND r.finish IS d.finish"
#define RESP_COLS "(request_id, run_id, ok, output, logprob, n_tokens," \
                  " is_greedy, token_logprobs, error, elapsed, truncated, finish)" \
                  " SELECT dq.id, (SELECT dst FROM temp.run_map WHERE src =" \
                  " r.run_id), r.ok, r.output, r.logprob, r.n_tokens, r.is_greedy," \
                  " r.token_logprobs, r.error, r.elapsed, r.truncated, r.finish"

/* Two answers to one cache key that differ: refused, naming both. */
static int response_conflict(merger *m, em_err *err)
{
    sqlite3_stmt *st;
    if (m_prepare(m, "SELECT q.key, mo.name, t.name, q.variant, q.example_id,"
                  " d.output, r.output, d.logprob, r.logprob" RESP_JOIN
                  " JOIN main.responses d ON d.request_id = dq.id"
                  " LEFT JOIN src.models mo ON mo.id = q.model_id"
                  " LEFT JOIN src.tasks t ON t.id = q.task_id"
                  " WHERE r.ok = 1 AND d.ok = 1 AND NOT (" RESP_SAME ") LIMIT 1",
                  &st, err) != 0)
        return -1;
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = em_errorf(err, "%s: conflicting answer for cache key %s (model %s, "
                       "task %s, variant %s, example %s): output \"%.60s\" "
                       "logprob %.17g here, \"%.60s\" %.17g in %s; refusing to "
                       "merge it (nothing of it was merged)", m->in, col(st, 0),
                       col(st, 1), col(st, 2), col(st, 3), col(st, 4), col(st, 6),
                       sqlite3_column_double(st, 8), col(st, 5),
                       sqlite3_column_double(st, 7), m->out);
    sqlite3_finalize(st);
    return rc;
}

static int merge_responses(merger *m, em_err *err)
{
    long total, same, replaced, added;
    if (response_conflict(m, err) != 0 ||
        m_long(m, "SELECT count(*) FROM src.responses", &total, err) != 0 ||
        m_long(m, "SELECT count(*)" RESP_JOIN " JOIN main.responses d ON"
               " d.request_id = dq.id WHERE r.ok = 1 AND d.ok = 1", &same,
               err) != 0 ||
        m_exec(m, "INSERT OR REPLACE INTO main.responses" RESP_COLS RESP_JOIN
               " WHERE r.ok = 1 AND EXISTS (SELECT 1 FROM main.responses d"
               " WHERE d.request_id = dq.id AND d.ok = 0)", &replaced, err) != 0 ||
        m_exec(m, "INSERT INTO main.responses" RESP_COLS RESP_JOIN
               " WHERE NOT EXISTS (SELECT 1 FROM main.responses d"
               " WHERE d.request_id = dq.id)", &added, err) != 0)
        return -1;
    fprintf(m->f, "  responses    %ld added, %ld identical, %ld failed attempts "
            "replaced by an answer, %ld failed attempts skipped (the output has "
            "an answer or an attempt)\n", added, same, replaced,
            total - added - same - replaced);
    return 0;
}

/* ---- scores ------------------------------------------------------------------- */

#define SCORE_JOIN " FROM src.scores s JOIN temp.model_map mm ON mm.src =" \
                   " s.model_id JOIN temp.task_map tm ON tm.src = s.task_id"

static int score_conflict(merger *m, em_err *err)
{
    sqlite3_stmt *st;
    if (m_prepare(m, "SELECT mo.name, t.name, s.variant, s.example_id, s.metric,"
                  " s.value, d.value, s.answer, d.answer, s.config, d.config"
                  SCORE_JOIN " JOIN main.scores d ON d.model_id = mm.dst AND"
                  " d.task_id = tm.dst AND d.variant = s.variant AND"
                  " d.example_id = s.example_id AND d.metric = s.metric"
                  " JOIN src.models mo ON mo.id = s.model_id"
                  " JOIN src.tasks t ON t.id = s.task_id"
                  " WHERE NOT (s.value IS d.value AND s.answer IS d.answer AND"
                  " s.config IS d.config AND s.truncated IS d.truncated AND"
                  " s.cut IS d.cut) LIMIT 1", &st, err) != 0)
        return -1;
    int rc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        rc = em_errorf(err, "%s: conflicting score (model %s, task %s, variant "
                       "%s, example %s, metric %s): %.17g (answer \"%.40s\", "
                       "%s) here, %.17g (answer \"%.40s\", %s) in %s; refusing "
                       "to merge it (nothing of it was merged)", m->in,
                       col(st, 0), col(st, 1), col(st, 2), col(st, 3), col(st, 4),
                       sqlite3_column_double(st, 5), col(st, 7), col(st, 9),
                       sqlite3_column_double(st, 6), col(st, 8), col(st, 10),
                       m->out);
    sqlite3_finalize(st);
    return rc;
}

static int merge_scores(merger *m, em_err *err)
{
    long total, added;
    if (score_conflict(m, err) != 0 ||
        m_long(m, "SELECT count(*) FROM src.scores", &total, err) != 0 ||
        m_exec(m, "INSERT OR IGNORE INTO main.scores(model_id, task_id, variant,"
               " example_id, metric, value, answer, config, truncated, cut)"
               " SELECT mm.dst, tm.dst, s.variant, s.example_id, s.metric,"
               " s.value, s.answer, s.config, s.truncated, s.cut" SCORE_JOIN,
               &added, err) != 0)
        return -1;
    long hashes;
    if (m_long(m, "SELECT count(*) FROM src.file_hashes", &hashes, err) != 0)
        return -1;
    fprintf(m->f, "  scores       %ld added, %ld identical\n"
            "  file_hashes  %ld not merged (they describe files on the node "
            "that wrote them)\n", added, total - added, hashes);
    return 0;
}

/* ---- completeness --------------------------------------------------------------- */

/* Failed requests the output still has no answer for, and examples with
 * answers but no scores: what a sweep that did not finish leaves. */
static int check_complete(merger *m, int *incomplete, em_err *err)
{
    long failed, unscored;
    if (m_long(m, "SELECT count(*) FROM src.responses r JOIN src.requests q ON"
               " q.id = r.request_id WHERE r.ok = 0 AND NOT EXISTS (SELECT 1"
               " FROM main.requests dq JOIN main.responses d ON d.request_id ="
               " dq.id WHERE dq.key = q.key AND d.ok = 1)", &failed, err) != 0 ||
        m_long(m, "SELECT count(*) FROM (SELECT DISTINCT q.model_id, q.task_id,"
               " q.variant, q.example_id FROM src.requests q JOIN src.responses"
               " r ON r.request_id = q.id WHERE q.task_id IS NOT NULL AND NOT"
               " EXISTS (SELECT 1 FROM src.scores s WHERE s.model_id ="
               " q.model_id AND s.task_id = q.task_id AND s.variant = q.variant"
               " AND s.example_id = q.example_id))", &unscored, err) != 0)
        return -1;
    *incomplete = failed > 0 || unscored > 0;
    if (*incomplete)
        fprintf(m->f, "  incomplete: %ld failed requests without an answer, %ld "
                "examples with answers but no scores: the sweep that wrote %s "
                "did not finish; `emerge results` shows what is there. Run its "
                "command again (it resends only what is missing) and merge "
                "again\n", failed, unscored, m->in);
    return 0;
}

/* ---- one input ------------------------------------------------------------------- */

static int merge_tables(merger *m, int *incomplete, em_err *err)
{
    return m_exec(m, "DELETE FROM temp.run_map; DELETE FROM temp.model_map;"
                  " DELETE FROM temp.task_map;", NULL, err) ||
           merge_runs(m, err) || merge_models(m, err) || merge_tasks(m, err) ||
           merge_examples(m, err) || merge_requests(m, err) ||
           merge_responses(m, err) || merge_scores(m, err) ||
           check_complete(m, incomplete, err);
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* ATTACHes the input (judged by judge_inputs) read-only as src. */
static int attach(merger *m, em_err *err)
{
    char *uri = store_db_ro_uri(m->in);
    sqlite3_stmt *st;
    int rc = m_prepare(m, "ATTACH DATABASE ? AS src", &st, err);
    if (rc == 0) {
        sqlite3_bind_text(st, 1, uri, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = em_errorf(err, "%s: cannot attach: %s", m->in,
                           sqlite3_errmsg(m->db));
        sqlite3_finalize(st);
    }
    free(uri);
    return rc;
}

static int merge_one(merger *m, int *incomplete, em_err *err)
{
    if (attach(m, err) != 0)
        return -1;
    fprintf(m->f, "%s -> %s\n", m->in, m->out);
    int rc = m_exec(m, "BEGIN IMMEDIATE;", NULL, err);
    if (rc == 0 && merge_tables(m, incomplete, err) != 0) {
        sqlite3_exec(m->db, "ROLLBACK;", NULL, NULL, NULL);
        rc = -1;
    } else if (rc == 0) {
        rc = m_exec(m, "COMMIT;", NULL, err);
    }
    sqlite3_exec(m->db, "DETACH DATABASE src;", NULL, NULL, NULL);
    return rc;
}

/* ---- the whole merge ------------------------------------------------------------- */

/* Creates or upgrades the output as a sweep would, then opens it with
 * URIs allowed (for ATTACH) and the id maps in its temp schema. */
static int open_output(merger *m, em_err *err)
{
    store *s;
    if (store_open(m->out, &s, err) != 0)
        return -1;
    store_close(s);
    if (sqlite3_open_v2(m->out, &m->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK)
        return em_errorf(err, "%s: cannot open database: %s", m->out,
                         m->db ? sqlite3_errmsg(m->db) : "out of memory");
    sqlite3_busy_timeout(m->db, STORE_BUSY_LIMIT_MS);
    return store_db_exec(m->db, m->out, "PRAGMA foreign_keys=ON;"
                         "CREATE TEMP TABLE run_map(src INTEGER PRIMARY KEY, dst"
                         " INTEGER); CREATE TEMP TABLE model_map(src INTEGER"
                         " PRIMARY KEY, dst INTEGER); CREATE TEMP TABLE task_map("
                         "src INTEGER PRIMARY KEY, dst INTEGER);", err);
}

/* Every I of each N the output's runs name (--shard I/N) should be
 * there; the missing ones are named. */
static int missing_shards(const merger *m)
{
    int missing = 0;
    for (int k = 0; k < m->n_shards; k++) {
        int n = m->shards[k].n, first = 1;
        for (int j = 0; j < k; j++)
            first &= m->shards[j].n != n;
        for (int i = 1; first && i <= n; i++) {
            int seen = 0;
            for (int j = 0; j < m->n_shards; j++)
                seen |= m->shards[j].n == n && m->shards[j].i == i;
            if (!seen)
                fprintf(m->f, "incomplete: shard %d/%d is missing (neither an "
                        "input nor the output holds a run of it)\n", i, n);
            missing += !seen;
        }
    }
    return missing;
}

/* Every input judged before the output is created or touched: a typo in
 * the last name must not leave a new, empty output behind. */
static int judge_inputs(const char *out, char *const *in, int n_in, em_err *err)
{
    for (int i = 0; i < n_in; i++) {
        sqlite3 *ro;
        if (same_file(in[i], out))
            return em_errorf(err, "%s: it is the output database", in[i]);
        if (store_db_open_ro(in[i], &ro, err) != 0)
            return -1;
        sqlite3_close(ro);
    }
    return 0;
}

int merge_stores(const char *out, char *const *in, int n_in, FILE *report,
                 merge_stats *st, em_err *err)
{
    memset(st, 0, sizeof *st);
    merger m = {.out = out, .f = report};
    if (judge_inputs(out, in, n_in, err) != 0)
        return -1;
    int rc = open_output(&m, err);
    for (int i = 0; rc == 0 && i < n_in; i++) {
        int incomplete = 0;
        m.in = in[i];
        rc = merge_one(&m, &incomplete, err);
        st->inputs += rc == 0;
        st->incomplete += rc == 0 && incomplete;
    }
    if (rc == 0)
        rc = note_shards(&m, err);
    if (rc == 0)
        st->missing_shards = missing_shards(&m);
    sqlite3_close(m.db);
    free(m.shards);
    return rc;
}

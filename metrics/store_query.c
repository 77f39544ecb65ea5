/*
 * store_query.c - read-only queries over a results database (reports).
 *
 * Why a connection type apart from harness/store.c: every reading command
 * (results, scaling, plot, report, check) goes through this one, so none
 * of them can create, migrate or write a file. The file is opened
 * read-only (store_db_open_ro) and judged before anything is read. Like
 * every reader it sees one version per task (temp.task_sel, store_db.c).
 * The aggregates over these rows are results.c.
 */
#include "metrics/store_query.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/store_db.h"

struct store_query {
    sqlite3 *db;
    char *path;
};

int store_query_error(store_query *q, em_err *err, const char *what)
{
    return em_errorf(err, "%s: %s: %s", q->path, what, sqlite3_errmsg(q->db));
}

int store_query_prepare(store_query *q, const char *sql, sqlite3_stmt **st,
                        em_err *err)
{
    if (sqlite3_prepare_v2(q->db, sql, -1, st, NULL) != SQLITE_OK)
        return store_query_error(q, err, "query");
    return 0;
}

static const char *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

int store_query_open(const char *path, store_query **out, em_err *err)
{
    store_query *q = em_calloc(1, sizeof *q);
    q->path = em_strdup(path);
    if (store_db_open_ro(path, &q->db, err) != 0) {
        store_query_close(q);
        return -1;
    }
    *out = q;
    return 0;
}

int store_query_select_versions(store_query *q, const char *spec, em_err *err)
{
    return store_db_select_versions(q->db, q->path, spec, err);
}

int store_query_version_notes(store_query *q, FILE *f, em_err *err)
{
    return store_db_version_notes(q->db, f, err);
}

void store_query_close(store_query *q)
{
    if (!q)
        return;
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

const char *store_query_path(const store_query *q) { return q->path; }

/* store.c's rule: per model name, only the identity its latest run used
 * (a retrained model keeps its name; its old scores stop counting). */
#define LATEST_SQL \
    " m.last_run IS (SELECT max(last_run) FROM models m2 WHERE m2.name = m.name)"

#define PREFERRED_SQL \
    "COALESCE(t.preferred_metric, (SELECT min(metric) FROM scores s2" \
    " WHERE s2.task_id = t.id))"

/* ---- models --------------------------------------------------------------- */

int store_query_models(store_query *q, sq_model **out, int *n, em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q,
            "SELECT name, backend, params, tokens, params_nonembed FROM models m"
            " WHERE EXISTS(SELECT 1 FROM scores s WHERE s.model_id = m.id) AND"
            LATEST_SQL
            " ORDER BY params, tokens, step, name, id", &st, err) != 0)
        return -1;
    sq_model *m = NULL;
    int k = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        m = em_realloc(m, sizeof *m * (size_t)(k + 1));
        m[k].name = store_db_col_dup(st, 0);
        m[k].backend = store_db_col_dup(st, 1);
        m[k].params = sqlite3_column_double(st, 2);
        m[k].tokens = sqlite3_column_double(st, 3);
        m[k].params_nonembed = sqlite3_column_double(st, 4);
        k++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_query_models_free(m, k);
        return store_query_error(q, err, "reading models");
    }
    *out = m;
    *n = k;
    return 0;
}

void store_query_models_free(sq_model *m, int n)
{
    for (int i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].backend);
    }
    free(m);
}

/* ---- tasks --------------------------------------------------------------- */

int store_query_tasks(store_query *q, sq_task **out, int *n, em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q,
            "SELECT t.name, " PREFERRED_SQL ", t.random_baseline,"
            " (SELECT count(*) FROM examples e WHERE e.task_id = t.id)"
            " FROM tasks t JOIN temp.task_sel ts ON ts.id = t.id"
            " WHERE EXISTS(SELECT 1 FROM scores s"
            " WHERE s.task_id = t.id) ORDER BY t.name", &st, err) != 0)
        return -1;
    sq_task *t = NULL;
    int k = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        t = em_realloc(t, sizeof *t * (size_t)(k + 1));
        t[k].name = store_db_col_dup(st, 0);
        t[k].preferred = store_db_col_dup(st, 1);
        t[k].random_baseline = sqlite3_column_type(st, 2) == SQLITE_NULL
                                   ? NAN : sqlite3_column_double(st, 2);
        t[k].n_examples = sqlite3_column_int(st, 3);
        k++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_query_tasks_free(t, k);
        return store_query_error(q, err, "reading tasks");
    }
    *out = t;
    *n = k;
    return 0;
}

void store_query_tasks_free(sq_task *t, int n)
{
    for (int i = 0; i < n; i++) {
        free(t[i].name);
        free(t[i].preferred);
    }
    free(t);
}

/* ---- preferred scores by example ------------------------------------------ */

static const char *const cells_sql =
    "SELECT t.name, s.variant, m.name, s.metric, m.params, s.example_id,"
    " s.value, m.id FROM scores s JOIN tasks t ON t.id = s.task_id"
    " JOIN temp.task_sel ts ON ts.id = t.id"
    " JOIN models m ON m.id = s.model_id AND" LATEST_SQL
    " WHERE s.metric = " PREFERRED_SQL
    " ORDER BY t.name, s.variant, m.params, m.name, m.id, s.example_id";

static int cell_same(sqlite3_stmt *st, const sq_cell *c, int64_t mid,
                     int64_t cur_mid)
{
    return mid == cur_mid && !strcmp(col_str(st, 0), c->task) &&
           !strcmp(col_str(st, 1), c->variant);
}

/* The same for one named metric (bound as ?1). */
static const char *const metric_cells_sql =
    "SELECT t.name, s.variant, m.name, s.metric, m.params, s.example_id,"
    " s.value, m.id FROM scores s JOIN tasks t ON t.id = s.task_id"
    " JOIN temp.task_sel ts ON ts.id = t.id"
    " JOIN models m ON m.id = s.model_id AND" LATEST_SQL
    " WHERE s.metric = ?1"
    " ORDER BY t.name, s.variant, m.params, m.name, m.id, s.example_id";

static int read_cells(store_query *q, const char *metric, sq_cell **out,
                      int *n, em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q, metric ? metric_cells_sql : cells_sql, &st,
                            err) != 0)
        return -1;
    if (metric)
        sqlite3_bind_text(st, 1, metric, -1, SQLITE_TRANSIENT);
    sq_cell *c = NULL;
    int k = 0, cap = 0, rc;
    int64_t cur_mid = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t mid = sqlite3_column_int64(st, 7);
        if (!k || !cell_same(st, &c[k - 1], mid, cur_mid)) {
            c = em_realloc(c, sizeof *c * (size_t)(k + 1));
            sq_cell *x = &c[k++];
            memset(x, 0, sizeof *x);
            x->task = store_db_col_dup(st, 0);
            x->variant = store_db_col_dup(st, 1);
            x->model = store_db_col_dup(st, 2);
            x->metric = store_db_col_dup(st, 3);
            x->params = sqlite3_column_double(st, 4);
            cur_mid = mid;
            cap = 0;
        }
        sq_cell *x = &c[k - 1];
        if (x->n == cap) {
            cap = cap ? cap * 2 : 64;
            x->ids = em_realloc(x->ids, sizeof *x->ids * (size_t)cap);
            x->v = em_realloc(x->v, sizeof *x->v * (size_t)cap);
        }
        x->ids[x->n] = store_db_col_dup(st, 5);
        x->v[x->n++] = sqlite3_column_double(st, 6);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_query_cells_free(c, k);
        return store_query_error(q, err, "reading scores");
    }
    *out = c;
    *n = k;
    return 0;
}

int store_query_cells(store_query *q, sq_cell **out, int *n, em_err *err)
{
    return read_cells(q, NULL, out, n, err);
}

int store_query_metric_cells(store_query *q, const char *metric,
                             sq_cell **out, int *n, em_err *err)
{
    return read_cells(q, metric, out, n, err);
}

void store_query_cells_free(sq_cell *c, int n)
{
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < c[i].n; j++)
            free(c[i].ids[j]);
        free(c[i].ids);
        free(c[i].v);
        free(c[i].task);
        free(c[i].variant);
        free(c[i].model);
        free(c[i].metric);
    }
    free(c);
}

const sq_cell *sq_cell_lookup(const sq_cell *c, int n, const char *task,
                              const char *variant, const char *model)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(c[i].task, task) && !strcmp(c[i].variant, variant) &&
            !strcmp(c[i].model, model))
            return &c[i];
    return NULL;
}

int sq_cell_find(const sq_cell *c, const char *id)
{
    int lo = 0, hi = c->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int d = strcmp(c->ids[mid], id);
        if (!d)
            return mid;
        if (d < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* ---- multiple-choice log-likelihoods -------------------------------------- */

static const char *const choices_sql =
    "SELECT t.name, r.variant, m.name, m.params, m.id, r.example_id,"
    " r.continuation, e.targets, p.logprob"
    " FROM requests r JOIN responses p ON p.request_id = r.id AND p.ok = 1"
    " JOIN tasks t ON t.id = r.task_id"
    " JOIN temp.task_sel ts ON ts.id = t.id"
    " JOIN models m ON m.id = r.model_id AND" LATEST_SQL
    " JOIN examples e ON e.task_id = r.task_id AND e.example_id = r.example_id"
    " WHERE r.kind = 'loglik' AND r.choice >= 0"
    " ORDER BY t.name, r.variant, m.params, m.name, m.id, r.example_id, r.choice";

/* Whether the continuation is one of the JSON targets, both trimmed: a
 * choice is stored with the space that joins it to the context (" B"),
 * and a target may carry it too (the demo family's [" Fenwarr"]) or not. */
static int is_target(const char *cont, const char *targets_json)
{
    size_t len, tlen;
    cont = em_trim(cont, &len);
    cJSON *a = cJSON_Parse(targets_json);
    int yes = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, a) {
        if (!cJSON_IsString(t))
            continue;
        const char *tt = em_trim(t->valuestring, &tlen);
        yes |= tlen == len && !memcmp(tt, cont, len);
    }
    cJSON_Delete(a);
    return yes;
}

/* Running sums for one example and for the (task, variant, model). */
typedef struct choice_acc {
    double ex_c, ex_i;
    int ex_nc, ex_ni;
    double sum_c, sum_i;
} choice_acc;

static void choice_flush_example(choice_acc *a, sq_choice *c)
{
    if (a->ex_nc && a->ex_ni) {
        a->sum_c += a->ex_c / a->ex_nc;
        a->sum_i += a->ex_i / a->ex_ni;
        c->n++;
    }
    a->ex_c = a->ex_i = 0;
    a->ex_nc = a->ex_ni = 0;
}

static void choice_flush(choice_acc *a, sq_choice *c)
{
    choice_flush_example(a, c);
    c->correct = c->n ? a->sum_c / c->n : 0;
    c->incorrect = c->n ? a->sum_i / c->n : 0;
    memset(a, 0, sizeof *a);
}

static void choices_clear(sq_choice *c, int n)
{
    for (int i = 0; i < n; i++) {
        free(c[i].task);
        free(c[i].variant);
        free(c[i].model);
    }
}

int store_query_choices(store_query *q, sq_choice **out, int *n, em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q, choices_sql, &st, err) != 0)
        return -1;
    sq_choice *c = NULL;
    int k = 0, rc;
    int64_t cur_mid = -1;
    char *cur_ex = NULL;
    choice_acc a = {0};
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t mid = sqlite3_column_int64(st, 4);
        int fresh = !k || mid != cur_mid || strcmp(col_str(st, 0), c[k - 1].task) ||
                    strcmp(col_str(st, 1), c[k - 1].variant);
        if (fresh) {
            if (k)
                choice_flush(&a, &c[k - 1]);
            c = em_realloc(c, sizeof *c * (size_t)(k + 1));
            sq_choice *x = &c[k++];
            memset(x, 0, sizeof *x);
            x->task = store_db_col_dup(st, 0);
            x->variant = store_db_col_dup(st, 1);
            x->model = store_db_col_dup(st, 2);
            x->params = sqlite3_column_double(st, 3);
            cur_mid = mid;
        } else if (strcmp(col_str(st, 5), cur_ex)) {
            choice_flush_example(&a, &c[k - 1]);
        }
        free(cur_ex);
        cur_ex = store_db_col_dup(st, 5);
        double lp = sqlite3_column_double(st, 8);
        if (is_target(col_str(st, 6), col_str(st, 7))) {
            a.ex_c += lp;
            a.ex_nc++;
        } else {
            a.ex_i += lp;
            a.ex_ni++;
        }
    }
    if (k)
        choice_flush(&a, &c[k - 1]);
    free(cur_ex);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_query_choices_free(c, k);
        return store_query_error(q, err, "reading choice log-likelihoods");
    }
    /* A generate task's target log-prob has one continuation per example
     * (always "correct"): no incorrect choices, so n == 0. Drop those. */
    int w = 0;
    for (int i = 0; i < k; i++) {
        if (c[i].n)
            c[w++] = c[i];
        else
            choices_clear(&c[i], 1);
    }
    *out = c;
    *n = w;
    return 0;
}

/* One example's choices: log-sum-exp of the correct ones and of all. */
typedef struct norm_acc {
    double mx;
    double *lp;
    int *ok, n, cap;
} norm_acc;

/* log P(correct | the choices): log sum exp(correct) - log sum exp(all);
 * 1 when the example has both a correct and an incorrect choice. */
static int norm_value(const norm_acc *a, double *out)
{
    double mx = -INFINITY, sc = 0, sa = 0;
    int nc = 0;
    for (int i = 0; i < a->n; i++)
        mx = a->lp[i] > mx ? a->lp[i] : mx;
    for (int i = 0; i < a->n; i++) {
        double e = exp(a->lp[i] - mx);
        sa += e;
        if (a->ok[i])
            sc += e, nc++;
    }
    if (!nc || nc == a->n)
        return 0;
    *out = log(sc) - log(sa);
    return 1;
}

static void cell_push(sq_cell *x, const char *id, double v, int *cap)
{
    if (x->n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        x->ids = em_realloc(x->ids, sizeof *x->ids * (size_t)*cap);
        x->v = em_realloc(x->v, sizeof *x->v * (size_t)*cap);
    }
    x->ids[x->n] = em_strdup(id);
    x->v[x->n++] = v;
}

int store_query_choice_cells(store_query *q, sq_cell **out, int *n,
                             em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q, choices_sql, &st, err) != 0)
        return -1;
    sq_cell *c = NULL;
    int k = 0, rc, cap = 0;
    int64_t cur_mid = -1;
    char *cur_ex = NULL;
    norm_acc a = {0};
    double v;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t mid = sqlite3_column_int64(st, 4);
        int fresh = !k || mid != cur_mid || strcmp(col_str(st, 0), c[k - 1].task) ||
                    strcmp(col_str(st, 1), c[k - 1].variant);
        if (cur_ex && (fresh || strcmp(col_str(st, 5), cur_ex))) {
            if (norm_value(&a, &v))
                cell_push(&c[k - 1], cur_ex, v, &cap);
            a.n = 0;
        }
        if (fresh) {
            c = em_realloc(c, sizeof *c * (size_t)(k + 1));
            sq_cell *x = &c[k++];
            memset(x, 0, sizeof *x);
            x->task = store_db_col_dup(st, 0);
            x->variant = store_db_col_dup(st, 1);
            x->model = store_db_col_dup(st, 2);
            x->metric = em_strdup("choice_logprob_norm");
            x->params = sqlite3_column_double(st, 3);
            cur_mid = mid;
            cap = 0;
        }
        free(cur_ex);
        cur_ex = store_db_col_dup(st, 5);
        if (a.n == a.cap) {
            a.cap = a.cap ? a.cap * 2 : 16;
            a.lp = em_realloc(a.lp, sizeof *a.lp * (size_t)a.cap);
            a.ok = em_realloc(a.ok, sizeof *a.ok * (size_t)a.cap);
        }
        a.lp[a.n] = sqlite3_column_double(st, 8);
        a.ok[a.n++] = is_target(col_str(st, 6), col_str(st, 7));
    }
    if (cur_ex && k && norm_value(&a, &v))
        cell_push(&c[k - 1], cur_ex, v, &cap);
    free(cur_ex);
    free(a.lp);
    free(a.ok);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_query_cells_free(c, k);
        return store_query_error(q, err, "reading choice log-likelihoods");
    }
    *out = c;
    *n = k;
    return 0;
}

void store_query_choices_free(sq_choice *c, int n)
{
    choices_clear(c, n);
    free(c);
}

/* ---- one example across models -------------------------------------------- */

static const char *const outputs_sql =
    "SELECT m.name, m.params, s.value, s.answer,"
    " (SELECT p.output FROM requests r JOIN responses p ON p.request_id = r.id"
    "  WHERE r.model_id = m.id AND r.task_id = t.id AND r.variant = s.variant"
    "  AND r.example_id = s.example_id AND r.kind = 'generate'"
    "  ORDER BY r.pass DESC LIMIT 1)"
    " FROM scores s JOIN tasks t ON t.id = s.task_id"
    " JOIN temp.task_sel ts ON ts.id = t.id"
    " JOIN models m ON m.id = s.model_id AND" LATEST_SQL
    " WHERE t.name = ?1 AND s.variant = ?2 AND s.example_id = ?3"
    " AND s.metric = " PREFERRED_SQL
    " ORDER BY m.params, m.name, m.id";

int store_query_outputs(store_query *q, const char *task, const char *variant,
                        const char *example_id, sq_output **out, int *n,
                        em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q, outputs_sql, &st, err) != 0)
        return -1;
    sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, variant, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, example_id, -1, SQLITE_TRANSIENT);
    sq_output *o = NULL;
    int k = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        o = em_realloc(o, sizeof *o * (size_t)(k + 1));
        o[k].model = store_db_col_dup(st, 0);
        o[k].params = sqlite3_column_double(st, 1);
        o[k].value = sqlite3_column_double(st, 2);
        o[k].answer = store_db_col_dup(st, 3);
        o[k].output = store_db_col_dup(st, 4);
        k++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_query_outputs_free(o, k);
        return store_query_error(q, err, "reading outputs");
    }
    *out = o;
    *n = k;
    return 0;
}

void store_query_outputs_free(sq_output *o, int n)
{
    for (int i = 0; i < n; i++) {
        free(o[i].model);
        free(o[i].answer);
        free(o[i].output);
    }
    free(o);
}

int store_query_example(store_query *q, const char *task, const char *example_id,
                        char **input, char **targets, em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q,
            "SELECT e.input, e.targets FROM examples e JOIN tasks t"
            " ON t.id = e.task_id JOIN temp.task_sel ts ON ts.id = t.id"
            " WHERE t.name = ? AND e.example_id = ?",
            &st, err) != 0)
        return -1;
    sqlite3_bind_text(st, 1, task, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, example_id, -1, SQLITE_TRANSIENT);
    *input = *targets = NULL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *input = store_db_col_dup(st, 0);
        *targets = store_db_col_dup(st, 1);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_query_error(q, err, "reading example");
    return 0;
}

/*
 * results.c - statistics over the stored scores: one row per (task,
 * variant, model, metric) with its mean and bootstrap CI, normalised score
 * and calibration rows, the scaling series the analysis and the figures
 * read, and the per-example dump for comparing runs byte for byte.
 *
 * Why here and not in the store: the store (harness/store.c) records what
 * a sweep did; what the numbers mean is statistics, and every reader
 * (`emerge results`, `scaling`, `plot`, `report`) gets it through the
 * read-only query layer (store_query.c), so no reading command can write.
 * Like every reader it sees one version per task (temp.task_sel).
 */
#include "metrics/results.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metric.h"
#include "metrics/store_db.h"
#include "metrics/vote.h"

int results_dump_scores(store_query *q, FILE *f, em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q,
            "SELECT m.name, t.name, s.variant, s.example_id, s.metric,"
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
    result_row *rows;
    int n, cap;
} row_acc;

static result_row *acc_push(row_acc *a)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        a->rows = em_realloc(a->rows, sizeof *a->rows * (size_t)a->cap);
    }
    result_row *r = &a->rows[a->n++];
    memset(r, 0, sizeof *r);
    return r;
}

void results_free(result_row *rows, int n)
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
static int same_group(sqlite3_stmt *st, const result_row *r, int with_metric)
{
    return !strcmp((const char *)sqlite3_column_text(st, 0), r->task) &&
           !strcmp((const char *)sqlite3_column_text(st, 1), r->variant) &&
           !strcmp((const char *)sqlite3_column_text(st, 2), r->model) &&
           (!with_metric || !strcmp((const char *)sqlite3_column_text(st, 3), r->metric));
}

static uint64_t group_seed(const result_row *r)
{
    uint64_t h = em_hash64(r->task, strlen(r->task), 0);
    h = em_hash64(r->variant, strlen(r->variant), h);
    h = em_hash64(r->model, strlen(r->model), h);
    return em_hash64(r->metric, strlen(r->metric), h);
}

static void finish_group(result_row *r, const double *v, int n)
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

static void start_group(sqlite3_stmt *st, result_row *r)
{
    r->task = store_db_col_dup(st, 0);
    r->variant = store_db_col_dup(st, 1);
    r->model = store_db_col_dup(st, 2);
    r->metric = store_db_col_dup(st, 3);
    r->params = sqlite3_column_double(st, 5);
    r->tokens = sqlite3_column_double(st, 6);
    r->step = sqlite3_column_double(st, 7);
    const unsigned char *pm = sqlite3_column_text(st, 8);
    r->preferred = pm && !strcmp((const char *)pm, r->metric);
    r->random_baseline = sqlite3_column_type(st, 9) == SQLITE_NULL
                             ? NAN : sqlite3_column_double(st, 9);
    r->low_score = sqlite3_column_double(st, 10);
    r->high_score = sqlite3_column_double(st, 11);
    r->params_nonembed = sqlite3_column_double(st, 14);
}

/* A derived row (no CI) of the group like belongs to. like is a copy:
 * acc_push may move the array it came from. */
static result_row *push_derived(row_acc *a, const result_row *like,
                                  const char *metric, double mean, int n)
{
    result_row *r = acc_push(a);
    r->task = em_strdup(like->task);
    r->variant = em_strdup(like->variant);
    r->model = em_strdup(like->model);
    r->metric = em_strdup(metric);
    r->params = like->params;
    r->params_nonembed = like->params_nonembed;
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
static void add_ece(row_acc *a, result_row like, const char *name,
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
    " coalesce(s.truncated, 0), coalesce(s.cut, 0), m.params_nonembed"
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
static void add_eces(row_acc *a, const result_row *cur, dvec *conf, dvec *grade,
                     dvec *agree, dvec *sc_ok)
{
    result_row like = *cur;
    add_ece(a, like, "ece", conf->v, grade->v, conf->n == grade->n ? conf->n : 0);
    add_ece(a, like, "sc_ece", agree->v, sc_ok->v,
            agree->n == sc_ok->n ? agree->n : 0);
    conf->n = grade->n = agree->n = sc_ok->n = 0;
}

int results_load(store_query *q, result_row **rows, int *n, em_err *err)
{
    sqlite3_stmt *st;
    if (store_query_prepare(q, results_sql, &st, err) != 0)
        return -1;
    row_acc a = {0};
    dvec vals = {0}, conf = {0}, grade = {0}, agree = {0}, sc_ok = {0};
    result_row *cur = NULL;
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
        results_free(a.rows, a.n);
        return store_query_error(q, err, "reading scores");
    }
    *rows = a.rows;
    *n = a.n;
    return 0;
}

/* ---- scaling series ------------------------------------------------------ */

/* The parameter count a point has on this axis (0: none). */
static double params_of(const result_row *r, int axis)
{
    return axis == SCALING_AXIS_NONEMBED ? r->params_nonembed : r->params;
}

static double axis_of(const result_row *r, int axis)
{
    return axis == SCALING_AXIS_FLOPS ? 6 * r->params * r->tokens
                                      : params_of(r, axis);
}

static int series_find(scaling_series *ss, int n, const result_row *r)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(ss[i].task, r->task) && !strcmp(ss[i].variant, r->variant) &&
            !strcmp(ss[i].metric, r->metric))
            return i;
    return -1;
}

static void series_init(scaling_series *s, const result_row *r)
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

int results_series(store_query *q, int axis, scaling_series **out, int *n,
                      em_err *err)
{
    int axis_flops = axis == SCALING_AXIS_FLOPS;
    result_row *rows;
    int nr;
    if (results_load(q, &rows, &nr, err) != 0)
        return -1;
    scaling_series *ss = NULL;
    int ns = 0;
    for (int i = 0; i < nr; i++) {
        const result_row *r = &rows[i];
        if (!strcmp(r->metric, "ece") || !strcmp(r->metric, "mc_confidence") ||
            !strncmp(r->metric, "sc_calib_", 9))
            continue;
        if (axis != SCALING_AXIS_PARAMS && !(axis_of(r, axis) > 0))
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
        p->params = params_of(r, axis);
        p->flops = r->tokens > 0 ? 6 * p->params * r->tokens : 0;
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
    results_free(rows, nr);
    *out = ss;
    *n = ns;
    return 0;
}

int results_axis_unknown(store_query *q, int axis, char **names, int *n,
                         em_err *err)
{
    static const char *const sql[] = {
        "SELECT name FROM models m WHERE NOT coalesce(params, 0) > 0",
        "SELECT name FROM models m WHERE NOT (coalesce(params, 0) > 0 AND"
        " coalesce(tokens, 0) > 0)",
        "SELECT name FROM models m WHERE NOT coalesce(params_nonembed, 0) > 0",
    };
    em_buf q2 = {0};
    em_buf_printf(&q2, "%s AND EXISTS(SELECT 1 FROM scores s WHERE s.model_id"
                  " = m.id) AND m.last_run IS (SELECT max(last_run) FROM models"
                  " m2 WHERE m2.name = m.name) ORDER BY name", sql[axis]);
    sqlite3_stmt *st;
    int rc = store_query_prepare(q, q2.s, &st, err);
    em_buf_free(&q2);
    if (rc != 0)
        return -1;
    em_buf b = {0};
    *n = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        em_buf_printf(&b, "%s%s", b.len ? ", " : "", sqlite3_column_text(st, 0));
        ++*n;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        em_buf_free(&b);
        return store_query_error(q, err, "reading models");
    }
    *names = b.s ? em_buf_take(&b) : NULL;
    return 0;
}

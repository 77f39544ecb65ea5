/*
 * figures.c - report_data from a results database, and the emergence
 * figures built from it (see figures.h for the set).
 *
 * Why the series come from results_series rather than our own query:
 * the means and bootstrap CIs in the figures must be the ones `emerge
 * results` and `emerge scaling` print. The connection is read-only
 * (store_query_open): a report never creates, migrates or writes the
 * database it reads.
 */
#include "reports/figures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metric.h"
#include "metrics/mirage.h"
#include "metrics/results.h"
#include "reports/escape.h"

/* Models the axis has no place for are said, never dropped silently. */
static int note_unknown(store_query *q, int axis)
{
    char *names = NULL;
    int n = 0;
    em_err e;
    if (results_axis_unknown(q, axis, &names, &n, &e) != 0) {
        fprintf(stderr, "emerge: note: %s\n", e.msg);
        return 0;
    }
    if (n)
        fprintf(stderr, "emerge: note: %d model%s without a non-embedding "
                "parameter count left off the axis: %s (a native model's is "
                "stored when a sweep opens it; others take params_nonembed "
                "in the family file)\n", n, n == 1 ? "" : "s", names);
    free(names);
    return 0;
}

static int query_all(const char *path, report_data *d, em_err *err)
{
    store_query *q;
    if (store_query_open(path, &q, err) != 0)
        return -1;
    int rc = store_query_select_versions(q, d->task_version, err);
    if (rc == 0)
        rc = store_query_version_notes(q, stderr, err);
    if (rc == 0)
        rc = store_query_tasks(q, &d->tasks, &d->n_tasks, err);
    if (rc == 0)
        rc = store_query_models(q, &d->models, &d->n_models, err);
    if (rc == 0)
        rc = store_query_choices(q, &d->choices, &d->n_choices, err);
    if (rc == 0)
        rc = results_series(q, d->axis, &d->series, &d->n_series, err);
    if (rc == 0)
        rc = mirage_from_store(q, d->axis, &d->mirage, &d->n_mirage, err);
    if (rc == 0 && d->axis == SCALING_AXIS_NONEMBED)
        rc = note_unknown(q, d->axis);
    store_query_close(q);
    return rc;
}

/* The series of the preferred metric of task t's main variant. */
static int find_main(const report_data *d, const sq_task *t)
{
    int best = -1;
    for (int i = 0; i < d->n_series; i++) {
        const scaling_series *s = &d->series[i];
        if (strcmp(s->task, t->name) || !t->preferred || strcmp(s->metric, t->preferred))
            continue;
        if (!strcmp(s->variant, "standard"))
            return i;
        if (best < 0 || strcmp(s->variant, d->series[best].variant) < 0)
            best = i;
    }
    return best;
}

static const char *const known_variants[] = {"standard", "cot", "zero_shot_cot"};

/* 0, 1, 2 for the known variants, 3 for others (drawn in that order). */
static int variant_rank(const char *v)
{
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, known_variants[i]))
            return i;
    return 3;
}

/* Tables and figures list a task's variants as standard, cot,
 * zero_shot_cot, then the others by name. */
static int series_cmp(const void *pa, const void *pb)
{
    const scaling_series *a = pa, *b = pb;
    int d = strcmp(a->task, b->task);
    if (!d)
        d = variant_rank(a->variant) - variant_rank(b->variant);
    if (!d)
        d = strcmp(a->variant, b->variant);
    if (!d)
        d = strcmp(a->metric, b->metric);
    return d;
}

static const report_data *sort_ctx;

static double sort_key(int task)
{
    int m = sort_ctx->main_series[task];
    return m < 0 ? -INFINITY : sort_ctx->res[m].breakthroughness;
}

static int by_breakthroughness(const void *pa, const void *pb)
{
    int a = *(const int *)pa, b = *(const int *)pb;
    double ka = sort_key(a), kb = sort_key(b);
    if (isnan(ka))
        ka = -INFINITY;
    if (isnan(kb))
        kb = -INFINITY;
    if (ka != kb)
        return ka > kb ? -1 : 1;
    return a - b;
}

int report_data_load(const char *db_path, int axis,
                     const char *task_version, report_data *d, em_err *err)
{
    memset(d, 0, sizeof *d);
    d->db_path = em_strdup(db_path);
    d->task_version = task_version ? em_strdup(task_version) : NULL;
    d->axis = axis;
    d->axis_flops = axis == SCALING_AXIS_FLOPS;
    if (query_all(db_path, d, err) != 0) {
        report_data_free(d);
        return -1;
    }
    if (d->n_tasks == 0) {
        em_errorf(err, "%s: no scores yet (run `emerge sweep` first)", db_path);
        report_data_free(d);
        return -1;
    }
    if (d->n_series > 1)
        qsort(d->series, (size_t)d->n_series, sizeof *d->series, series_cmp);
    d->res = em_calloc((size_t)d->n_series + 1, sizeof *d->res);
    for (int i = 0; i < d->n_series; i++)
        scaling_analyze(&d->series[i], d->axis_flops, &d->res[i]);
    d->main_series = em_malloc(sizeof *d->main_series * (size_t)d->n_tasks);
    d->order = em_malloc(sizeof *d->order * (size_t)d->n_tasks);
    for (int i = 0; i < d->n_tasks; i++) {
        d->main_series[i] = find_main(d, &d->tasks[i]);
        d->order[i] = i;
    }
    /* qsort has no context argument; the reports are single-threaded. */
    sort_ctx = d;
    qsort(d->order, (size_t)d->n_tasks, sizeof *d->order, by_breakthroughness);
    sort_ctx = NULL;
    return 0;
}

int report_data_overlay(report_data *d, const char *csv_path, int *unmatched,
                        em_err *err)
{
    *unmatched = 0;
    if (d->axis == SCALING_AXIS_NONEMBED)
        return em_errorf(err, "%s: --scores overlays need --axis params or "
                         "flops (a scores file has no non-embedding counts)",
                         csv_path);
    if (scaling_read_csv_families(csv_path, &d->overlay, &d->overlay_family,
                                  &d->n_overlay, err))
        return -1;
    for (int i = 0; i < d->n_overlay; i++) {
        const scaling_series *s = &d->overlay[i];
        const sq_task *t = NULL;
        for (int k = 0; k < d->n_tasks && !t; k++)
            if (!strcmp(d->tasks[k].name, s->task))
                t = &d->tasks[k];
        int ok = t && (!s->metric[0] || (t->preferred &&
                                         !strcmp(s->metric, t->preferred)));
        if (!ok) {
            (*unmatched)++;
            fprintf(stderr, "emerge: note: %s: task %s, variant '%s', metric "
                    "'%s' not drawn: %s\n", csv_path, s->task, s->variant,
                    s->metric, t ? "another metric than the task's preferred "
                    "one" : "no such task in the database");
        }
    }
    return 0;
}

void report_data_free(report_data *d)
{
    mirage_rows_free(d->mirage, d->n_mirage);
    if (d->overlay_family)
        for (int i = 0; i < d->n_overlay; i++)
            free(d->overlay_family[i]);
    free(d->overlay_family);
    scaling_series_free(d->overlay, d->n_overlay);
    free(d->task_version);
    scaling_series_free(d->series, d->n_series);
    free(d->res);
    store_query_tasks_free(d->tasks, d->n_tasks);
    store_query_models_free(d->models, d->n_models);
    store_query_choices_free(d->choices, d->n_choices);
    free(d->main_series);
    free(d->order);
    free(d->db_path);
    memset(d, 0, sizeof *d);
}

/* ---- labels ---------------------------------------------------------------- */

double report_axis_x(const report_data *d, const scaling_point *p)
{
    return d->axis_flops ? p->flops : p->params;
}

const char *report_axis_label(const report_data *d)
{
    return d->axis_flops ? "training compute 6ND (FLOPs, log scale)"
           : d->axis == SCALING_AXIS_NONEMBED
               ? "non-embedding parameters (log scale)"
               : "parameters (log scale)";
}

const char *report_metric_label(const char *metric)
{
    static const struct { const char *name, *label; } labels[] = {
        {"exact_match", "exact match (fraction of examples)"},
        {"multiple_choice_grade", "multiple-choice accuracy (fraction)"},
        {"acc_norm", "accuracy, log-prob per character (fraction)"},
        {"acc_bytes", "accuracy, log-prob per UTF-8 byte (fraction)"},
        {"target_logprob", "log-prob of the target (nats)"},
        {"brier_score", "Brier score (lower is better)"},
        {"mc_confidence", "confidence in the chosen answer"},
        {"bleu", "BLEU (0-100)"},
        {"edit_distance", "token edit distance (lower is better)"},
    };
    for (size_t i = 0; i < sizeof labels / sizeof *labels; i++)
        if (!strcmp(labels[i].name, metric))
            return labels[i].label;
    return metric;
}

void report_fmt_scale(char *out, size_t n, double v)
{
    static const char *const suffix[] = {"", "K", "M", "B", "T"};
    int k = 0;
    double x = v;
    while (fabs(x) >= 1000 && k < 4) {
        x /= 1000;
        k++;
    }
    if (!(v > 0))
        snprintf(out, n, "?");
    else if (fabs(x) >= 1000)
        snprintf(out, n, "%.3g", v);
    else
        snprintf(out, n, "%.3g%s", x, suffix[k]);
}

/* ---- normalisation --------------------------------------------------------- */

/* The 0-1 view of a metric, so that several fit on one axis:
 *  - log-prob metrics (unbounded): min-max across the family, worst model
 *    0, best 1. Min-max keeps the log scale's linearity, which is the point
 *    of the figure: a smooth log-prob beside a sharp exact match. (exp()
 *    would map it back to a probability and make it as sharp as accuracy.)
 *  - lower-is-better metrics (Brier, edit distance): min-max of -raw.
 *  - metrics whose means and CIs lie in [0, 1]: as they are;
 *    in [0, 100] (BLEU, ROUGE, normalised scores): divided by 100;
 *  - anything else: min-max.
 * CIs go through the same (monotone) map. */
void report_normalize(const scaling_series *s, double *y, double *lo,
                      double *hi, int n)
{
    double mn = INFINITY, mx = -INFINITY;
    int logp = strstr(s->metric, "logprob") != NULL;
    int lower = !metric_higher_is_better(s->metric);
    for (int i = 0; i < n; i++) {
        double v[3] = {y[i], lo[i], hi[i]};
        for (int k = 0; k < 3; k++) {
            if (!isfinite(v[k]))
                continue;
            mn = v[k] < mn ? v[k] : mn;
            mx = v[k] > mx ? v[k] : mx;
        }
    }
    double a = 1, b = 0;   /* out = a * raw + b */
    if (!(mx >= mn))
        return;
    if (!logp && !lower && mn >= 0 && mx <= 1) {
        a = 1;
    } else if (!logp && !lower && mn >= 0 && mx <= 100) {
        a = 0.01;
    } else {
        /* min-max over the means only, so CIs may poke out of [0, 1]. */
        double m0 = INFINITY, m1 = -INFINITY;
        for (int i = 0; i < n; i++) {
            if (isfinite(y[i])) {
                m0 = y[i] < m0 ? y[i] : m0;
                m1 = y[i] > m1 ? y[i] : m1;
            }
        }
        double range = m1 > m0 ? m1 - m0 : 1;
        a = (lower ? -1 : 1) / range;
        b = lower ? m1 / range : -m0 / range;
    }
    for (int i = 0; i < n; i++) {
        double l = a * lo[i] + b, h = a * hi[i] + b;
        y[i] = a * y[i] + b;
        lo[i] = a < 0 ? h : l;
        hi[i] = a < 0 ? l : h;
    }
}

/* ---- figures ---------------------------------------------------------------- */

static int variant_color(const char *v)
{
    int r = variant_rank(v);
    return r < 3 ? r : 3 + (int)(em_hash64(v, strlen(v), 0) % 4);
}

char *report_fig_name(const char *task, const char *kind)
{
    char *t = report_file_name(task);
    em_buf b = {0};
    em_buf_printf(&b, "%s-%s", t, kind);
    free(t);
    return em_buf_take(&b);
}

/* Adds series s as a line (raw scores, CIs) to f. On the flops axis a
 * series holds every checkpoint of every size: one line per model size
 * then ("TITLE, 3.7K"), through that size's checkpoints in compute order,
 * instead of one line zig-zagging between sizes; the sizes of one series
 * share its colour, dashed in turn so neighbours stay apart. */
static void add_series_line(const report_data *d, report_fig *f,
                            const scaling_series *s, const char *title, int color)
{
    if (!d->axis_flops) {
        report_line *l = report_fig_line(f, title, color, 0);
        for (int j = 0; j < s->n; j++) {
            const scaling_point *p = &s->pts[j];
            report_line_add(l, p->model, report_axis_x(d, p), p->score, p->lo,
                            p->hi);
        }
        return;
    }
    char *done = em_calloc((size_t)s->n + 1, 1);
    for (int j = 0, k = 0; j < s->n; j++) {
        if (done[j])
            continue;
        char sz[32];
        em_buf t = {0};
        report_fmt_scale(sz, sizeof sz, s->pts[j].params);
        em_buf_printf(&t, "%s, %s", title, sz);
        report_line *l = report_fig_line(f, t.s, color, k++ % 2);
        em_buf_free(&t);
        for (int i = j; i < s->n; i++) {
            const scaling_point *p = &s->pts[i];
            if (done[i] || p->params != s->pts[j].params)
                continue;
            done[i] = 1;
            report_line_add(l, p->model, report_axis_x(d, p), p->score, p->lo,
                            p->hi);
        }
    }
    free(done);
}

/* Fixed 0-1 range for metrics that are fractions. */
static void fraction_range(report_fig *f, const char *metric)
{
    if (!strcmp(metric, "exact_match") || !strcmp(metric, "multiple_choice_grade")) {
        f->ymin = -0.03;
        f->ymax = 1.03;
    }
}

static void baseline(report_fig *f, double v)
{
    if (!isfinite(v))
        return;
    f->baseline = v;
    em_buf b = {0};
    em_buf_printf(&b, "random baseline (%.3g)", v);
    f->baseline_title = em_buf_take(&b);
}

/* Adds series i to the variants figure of task t when it belongs there. */
static void variant_line(const report_data *d, const sq_task *t, int i,
                         report_fig *f)
{
    const scaling_series *s = &d->series[i];
    if (strcmp(s->task, t->name) || !t->preferred || strcmp(s->metric, t->preferred))
        return;
    int c = variant_color(s->variant);
    add_series_line(d, f, s, s->variant, c);
    if (!isfinite(f->baseline))
        baseline(f, s->random_baseline);
    if (d->res[i].emergence_scale > 0) {
        char sc[32];
        em_buf m = {0};
        report_fmt_scale(sc, sizeof sc, d->res[i].emergence_scale);
        em_buf_printf(&m, "emergence, %s (%s)", s->variant, sc);
        report_fig_mark(f, d->res[i].emergence_scale, c, m.s);
        em_buf_free(&m);
    }
}

/* The --scores series of task t, dashed, after the database's own lines;
 * points without a value on the axis (no flops) are left out. */
static void overlay_lines(const report_data *d, const sq_task *t,
                          report_fig *f)
{
    for (int i = 0; i < d->n_overlay; i++) {
        const scaling_series *s = &d->overlay[i];
        if (strcmp(s->task, t->name) || (s->metric[0] && (!t->preferred ||
                                                         strcmp(s->metric, t->preferred))))
            continue;
        const char *fam = d->overlay_family && d->overlay_family[i]
                          ? d->overlay_family[i] : "scores";
        em_buf title = {0};
        em_buf_printf(&title, "%s%s%s", fam, s->variant[0] ? ": " : "",
                      s->variant);
        report_line *l = report_fig_line(f, title.s, 3 + i % 4, 1);
        em_buf_free(&title);
        for (int j = 0; j < s->n; j++) {
            const scaling_point *p = &s->pts[j];
            double x = report_axis_x(d, p);
            if (x > 0)
                report_line_add(l, p->model, x, p->score, p->lo, p->hi);
        }
    }
}

static void fig_variants(const report_data *d, const sq_task *t, report_fig *f)
{
    em_buf title = {0};
    em_buf_printf(&title, "%s: %s by %s (95%% bootstrap CI)", t->name,
                  t->preferred ? t->preferred : "?", d->axis_flops ?
                  "training compute, a line per size and variant" :
                  "model size, one line per prompt variant");
    char *name = report_fig_name(t->name, "variants");
    report_fig_init(f, name, title.s, report_axis_label(d),
                    report_metric_label(t->preferred ? t->preferred : ""));
    free(name);
    em_buf_free(&title);
    fraction_range(f, t->preferred ? t->preferred : "");
    for (int rank = 0; rank < 4; rank++)
        for (int i = 0; i < d->n_series; i++)
            if (variant_rank(d->series[i].variant) == rank)
                variant_line(d, t, i, f);
    overlay_lines(d, t, f);
    /* Spread the lines by 0.02 decades each around the true x. */
    for (int i = 0; i < f->n_lines; i++)
        f->lines[i].dodge = 0.02 * (i - (f->n_lines - 1) / 2.0);
}

/* The mirage test's curves (probabilities, already 0-1) on the metrics
 * figure of (task, variant), where it applies; the verdict in the title. */
static void mirage_lines(const report_data *d, const char *task,
                         const char *variant, report_fig *f)
{
    for (int i = 0; i < d->n_mirage; i++) {
        const mirage_row *m = &d->mirage[i];
        if (strcmp(m->task, task) || strcmp(m->variant, variant) ||
            m->r.verdict == MIRAGE_NOT_APPLICABLE || m->n < 1)
            continue;
        /* one line at a time: report_fig_line may move the lines */
        report_line *a = report_fig_line(f, "P(whole target), measured", 5, 1);
        for (int j = 0; j < m->n; j++)
            report_line_add(a, "", m->scale[j], m->direct[j], NAN, NAN);
        report_line *b = report_fig_line(f, "P(whole target), smooth "
                                         "log-prob fit", 6, 1);
        for (int j = 0; j < m->n; j++)
            report_line_add(b, "", m->scale[j], m->smooth[j], NAN, NAN);
        em_buf t = {0};
        em_buf_printf(&t, "%s; mirage test: %s (R^2 %.2f)", f->title,
                      mirage_verdict_name(m->r.verdict), m->r.r2);
        free(f->title);
        f->title = em_buf_take(&t);
    }
}

static int fig_metrics(const report_data *d, int task, report_fig *f)
{
    const sq_task *t = &d->tasks[task];
    int m = d->main_series[task];
    if (m < 0)
        return 0;
    const char *variant = d->series[m].variant;
    int k = 0;
    for (int i = 0; i < d->n_series; i++)
        k += !strcmp(d->series[i].task, t->name) &&
             !strcmp(d->series[i].variant, variant);
    if (k < 2)
        return 0;
    em_buf title = {0};
    em_buf_printf(&title, "%s (%s): every metric, normalised to 0-1", t->name,
                  variant);
    char *name = report_fig_name(t->name, "metrics");
    report_fig_init(f, name, title.s, report_axis_label(d),
                    "score normalised to 0-1 (log-probs: min-max over the family)");
    free(name);
    em_buf_free(&title);
    f->ymin = -0.05;
    f->ymax = 1.05;
    for (int i = 0, c = 0; i < d->n_series; i++) {
        const scaling_series *s = &d->series[i];
        if (strcmp(s->task, t->name) || strcmp(s->variant, variant))
            continue;
        report_line *l = report_fig_line(f, s->metric, c++, 0);
        for (int j = 0; j < s->n; j++)
            report_line_add(l, s->pts[j].model, report_axis_x(d, &s->pts[j]),
                            s->pts[j].score, s->pts[j].lo, s->pts[j].hi);
        report_normalize(s, l->y, l->lo, l->hi, l->n);
    }
    mirage_lines(d, t->name, variant, f);
    return 1;
}

static double model_x(const report_data *d, const char *model, double params)
{
    if (d->axis == SCALING_AXIS_PARAMS)
        return params;
    for (int i = 0; i < d->n_models; i++) {
        const sq_model *m = &d->models[i];
        if (strcmp(m->name, model))
            continue;
        if (d->axis == SCALING_AXIS_NONEMBED)
            return m->params_nonembed;
        return m->tokens > 0 ? 6 * params * m->tokens : 0;
    }
    return 0;
}

static int fig_choices(const report_data *d, const sq_task *t, report_fig *f)
{
    int any = 0;
    for (int i = 0; i < d->n_choices; i++)
        any |= !strcmp(d->choices[i].task, t->name);
    if (!any)
        return 0;
    em_buf title = {0};
    em_buf_printf(&title, "%s: mean log-prob of the correct choice (solid) and of "
                  "the incorrect ones (dashed)", t->name);
    char *name = report_fig_name(t->name, "choices");
    report_fig_init(f, name, title.s, report_axis_label(d),
                    "mean log-likelihood of a choice (nats)");
    free(name);
    em_buf_free(&title);
    report_line *lc = NULL, *li = NULL;
    const char *cur = NULL;
    for (int i = 0; i < d->n_choices; i++) {
        const sq_choice *c = &d->choices[i];
        if (strcmp(c->task, t->name))
            continue;
        if (!cur || strcmp(cur, c->variant)) {
            em_buf a = {0}, b = {0};
            em_buf_printf(&a, "correct, %s", c->variant);
            em_buf_printf(&b, "incorrect, %s", c->variant);
            int col = variant_color(c->variant);
            report_fig_line(f, a.s, col, 0);
            report_fig_line(f, b.s, col, 1);
            lc = &f->lines[f->n_lines - 2];
            li = &f->lines[f->n_lines - 1];
            em_buf_free(&a);
            em_buf_free(&b);
            cur = c->variant;
        }
        double x = model_x(d, c->model, c->params);
        report_line_add(lc, c->model, x, c->correct, NAN, NAN);
        report_line_add(li, c->model, x, c->incorrect, NAN, NAN);
    }
    return 1;
}

/* The score of s's point at the largest scale on the axis. */
static double final_score(const report_data *d, const scaling_series *s)
{
    int *ord = scaling_axis_order(s, d->axis_flops);
    double v = s->n ? s->pts[ord[s->n - 1]].score : NAN;
    free(ord);
    return v;
}

/* The overview shows, per task, the variant of the preferred metric that
 * ends highest (chain of thought where it wins), the main series on a
 * tie; -1 when the task has none. Lower-is-better metrics compare by
 * scaling_y, so "highest" always means best. */
static int best_final(const report_data *d, int t)
{
    int best = d->main_series[t];
    const char *pref = d->tasks[t].preferred;
    double bv = best >= 0 ? scaling_y(&d->series[best],
                                      final_score(d, &d->series[best])) : NAN;
    for (int i = 0; pref && i < d->n_series; i++) {
        const scaling_series *s = &d->series[i];
        if (strcmp(s->task, d->tasks[t].name) || strcmp(s->metric, pref) || !s->n)
            continue;
        double v = scaling_y(s, final_score(d, s));
        if (best < 0 || v > bv)
            best = i, bv = v;
    }
    return best;
}

static void fig_overview(const report_data *d, report_fig *f)
{
    report_fig_init(f, "overview", d->axis_flops ? "all tasks: preferred "
                    "metric by training compute, one line per model size, "
                    "sorted by breakthroughness" : "all tasks: preferred "
                    "metric by model size, sorted by breakthroughness",
                    report_axis_label(d), "score");
    for (int k = 0; k < d->n_tasks; k++) {
        int t = d->order[k];
        int m = best_final(d, t);
        report_fig *p = report_fig_panel(f);
        const scaling_series *s = m >= 0 ? &d->series[m] : NULL;
        em_buf title = {0};
        em_buf_printf(&title, "%s", d->tasks[t].name);
        if (s) {
            const scaling_result *r = &d->res[m];
            em_buf_printf(&title, "\n%s, %s, B=%.3g", s->variant, s->metric,
                          r->breakthroughness);
        }
        report_fig_init(p, "", title.s, d->axis_flops ? "training FLOPs"
                        : d->axis == SCALING_AXIS_NONEMBED
                            ? "non-embedding parameters" : "parameters", "");
        em_buf_free(&title);
        if (!s)
            continue;
        fraction_range(p, s->metric);
        add_series_line(d, p, s, s->variant, variant_color(s->variant));
        baseline(p, s->random_baseline);
        if (d->res[m].emergence_scale > 0)
            report_fig_mark(p, d->res[m].emergence_scale,
                            variant_color(s->variant), "emergence");
    }
}

int report_figures(const report_data *d, report_fig **out, int *n)
{
    report_fig *f = em_calloc((size_t)d->n_tasks * 3 + 1, sizeof *f);
    int k = 0;
    for (int t = 0; t < d->n_tasks; t++) {
        fig_variants(d, &d->tasks[t], &f[k++]);
        k += fig_metrics(d, t, &f[k]);
        k += fig_choices(d, &d->tasks[t], &f[k]);
    }
    fig_overview(d, &f[k++]);
    *out = f;
    *n = k;
    return 0;
}

int report_any_truncated(const report_data *d)
{
    for (int i = 0; i < d->n_series; i++)
        for (int j = 0; j < d->series[i].n; j++)
            if (d->series[i].pts[j].n_truncated > 0)
                return 1;
    return 0;
}

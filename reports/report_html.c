/*
 * report_html.c - the report as one self-contained index.html.
 *
 * Self-contained means no network and no other file: the CSS is inline,
 * the figures are gnuplot's SVG inlined into the page, and there is no
 * script at all. Every string that came from the database (task, model
 * and variant names, inputs, targets, model outputs) goes through
 * report_xml_escape, so a model that writes "<script>" shows it as text.
 */
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "reports/escape.h"
#include "reports/report.h"

static const char *const css =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "margin:2em auto;max-width:1150px;padding:0 1em;color:#222;background:#fff}"
    "h1{font-size:1.8em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;"
    "padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}"
    "table{border-collapse:collapse;margin:.8em 0;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;"
    "vertical-align:top}th{background:#f2f4f7}td.num{text-align:right;"
    "font-variant-numeric:tabular-nums;white-space:nowrap}"
    "small{color:#666}.meta{color:#555}figure{margin:1em 0}"
    "figure svg{max-width:100%;height:auto;border:1px solid #eee}"
    "figcaption{color:#555;font-size:.9em}pre{background:#f6f8fa;"
    "padding:.5em;white-space:pre-wrap;word-break:break-word;margin:.3em 0}"
    ".ok{background:#e6f4ea}.bad{background:#fce8e6}.flag{color:#b3261e;"
    "font-weight:bold}.note{background:#fff4e5;padding:.6em;border:1px solid "
    "#f0c36d}nav ul{columns:3}.wide{overflow-x:auto}td:first-child{"
    "white-space:nowrap}";

static void esc(em_buf *b, const char *s) { report_xml_escape(b, s); }

/* At most max bytes of s, cut at a character boundary, escaped. */
static void esc_cut(em_buf *b, const char *s, size_t max)
{
    if (!s) {
        em_buf_puts(b, "<small>(none)</small>");
        return;
    }
    size_t n = strlen(s);
    if (n <= max) {
        esc(b, s);
        return;
    }
    max = utf8_cut(s, max);
    char *cut = em_strndup(s, max);
    esc(b, cut);
    free(cut);
    em_buf_printf(b, "<small> ... (%zu more bytes)</small>", n - max);
}

/* Infinity signs and an en dash for "no value". */
static const report_marks marks = {"&#8734;", "-&#8734;", "&#8211;"};

static void num(em_buf *b, double v) { report_put_num(b, v, &marks); }
static void scale(em_buf *b, double v) { report_put_scale(b, v, &marks); }

/* An id usable in href="#...": the file-name form of the task. */
static void anchor(em_buf *b, const char *task)
{
    char *a = report_file_name(task);
    em_buf_printf(b, "task-%s", a);
    free(a);
}

static void head(em_buf *b, const report_ctx *c)
{
    em_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset="
                "\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, "
                "initial-scale=1\">\n<title>emerge report: ");
    esc(b, c->d->db_path);
    em_buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n", css);
    em_buf_puts(b, "<h1>emerge report</h1>\n<p class=\"meta\">Database <code>");
    esc(b, c->d->db_path);
    em_buf_printf(b, "</code>, generated %s. %d tasks, %d models; x axis: %s. "
                  "Scores are means with 95%% bootstrap confidence intervals.</p>\n",
                  c->generated, c->d->n_tasks, c->d->n_models,
                  report_axis_label(c->d));
    if (c->figures_note) {
        em_buf_puts(b, "<p class=\"note\">");
        esc(b, c->figures_note);
        em_buf_puts(b, "</p>\n");
    }
    em_buf_puts(b, "<nav><ul><li><a href=\"#overview\">Overview</a></li><li><a "
                "href=\"#models\">Models</a></li><li><a href=\"#scores\">Scores"
                "</a></li><li><a href=\"#scaling\">Scaling metrics</a></li>");
    for (int k = 0; k < c->d->n_tasks; k++) {
        const char *t = c->d->tasks[c->d->order[k]].name;
        em_buf_puts(b, "<li><a href=\"#");
        anchor(b, t);
        em_buf_puts(b, "\">");
        esc(b, t);
        em_buf_puts(b, "</a></li>");
    }
    em_buf_puts(b, "</ul></nav>\n");
}

static void figure(em_buf *b, const report_ctx *c, const char *name,
                   const char *caption)
{
    for (int i = 0; i < c->n_figs; i++) {
        if (strcmp(c->figs[i].name, name))
            continue;
        em_buf_puts(b, "<figure>\n");
        if (c->svg[i])
            em_buf_puts(b, c->svg[i]);
        else
            em_buf_puts(b, "<p class=\"note\">(figure not drawn)</p>");
        em_buf_puts(b, "\n<figcaption>");
        esc(b, caption);
        em_buf_puts(b, " Data: <code>figures/");
        esc(b, name);
        em_buf_puts(b, ".csv</code>.</figcaption>\n</figure>\n");
    }
}

static void models_table(em_buf *b, const report_data *d)
{
    em_buf_puts(b, "<h2 id=\"models\">Models</h2>\n<table>\n<tr><th>model</th>"
                "<th>backend</th><th>parameters</th><th>training tokens</th>"
                "<th>training compute 6ND (FLOPs)</th></tr>\n");
    for (int i = 0; i < d->n_models; i++) {
        const sq_model *m = &d->models[i];
        em_buf_puts(b, "<tr><td>");
        esc(b, m->name);
        em_buf_puts(b, "</td><td>");
        esc(b, m->backend);
        em_buf_puts(b, "</td><td class=\"num\">");
        scale(b, m->params);
        em_buf_puts(b, "</td><td class=\"num\">");
        scale(b, m->tokens);
        em_buf_puts(b, "</td><td class=\"num\">");
        if (m->params > 0 && m->tokens > 0)
            em_buf_printf(b, "%.3g", 6 * m->params * m->tokens);
        else
            em_buf_puts(b, "&#8211;");
        em_buf_puts(b, "</td></tr>\n");
    }
    em_buf_puts(b, "</table>\n");
}

static const scaling_point *point_of(const scaling_series *s, const char *model)
{
    for (int j = 0; j < s->n; j++)
        if (!strcmp(s->pts[j].model, model))
            return &s->pts[j];
    return NULL;
}

static void scores_table(em_buf *b, const report_data *d)
{
    em_buf_puts(b, "<h2 id=\"scores\">Scores</h2>\n<p>Preferred metric of each "
                "task and prompt variant, per model (mean and 95% CI).</p>\n"
                "<div class=\"wide\"><table>\n<tr><th>task</th><th>variant</th><th>metric</th>");
    for (int i = 0; i < d->n_models; i++) {
        em_buf_puts(b, "<th>");
        esc(b, d->models[i].name);
        em_buf_puts(b, "</th>");
    }
    em_buf_puts(b, "</tr>\n");
    for (int t = 0; t < d->n_tasks; t++) {
        for (int i = 0; i < d->n_series; i++) {
            const scaling_series *s = &d->series[i];
            if (strcmp(s->task, d->tasks[t].name) || !d->tasks[t].preferred ||
                strcmp(s->metric, d->tasks[t].preferred))
                continue;
            em_buf_puts(b, "<tr><td>");
            esc(b, s->task);
            em_buf_puts(b, "</td><td>");
            esc(b, s->variant);
            em_buf_puts(b, "</td><td>");
            esc(b, s->metric);
            em_buf_puts(b, "</td>");
            for (int m = 0; m < d->n_models; m++) {
                const scaling_point *p = point_of(s, d->models[m].name);
                em_buf_puts(b, "<td class=\"num\">");
                if (p)
                    em_buf_printf(b, "%.3f%s<br><small>[%.3f, %.3f]</small>",
                                  p->score, p->n_truncated ? " *" : "", p->lo,
                                  p->hi);
                else
                    em_buf_puts(b, "&#8211;");
                em_buf_puts(b, "</td>");
            }
            em_buf_puts(b, "</tr>\n");
        }
    }
    em_buf_puts(b, "</table></div>\n");
    if (report_any_truncated(d))
        em_buf_puts(b, "<p><small>* scored in part on prompts cut to fit the "
                    "model's context (<code>emerge results</code> counts them)"
                    "</small></p>\n");
}

static void scaling_table(em_buf *b, const report_data *d)
{
    em_buf_puts(b, "<h2 id=\"scaling\">Scaling metrics</h2>\n<p>BIG-bench "
                "linearity and breakthroughness of the preferred metric "
                "(metrics/README.md), the emergence scale (smallest size from "
                "which every larger model's CI lies above the random baseline) "
                "and the inverse-scaling and U-shape flags. Tasks sorted by "
                "breakthroughness.</p>\n<table>\n<tr><th>task</th><th>variant"
                "</th><th>metric</th><th>linearity</th><th>breakthroughness</th>"
                "<th>emergence scale</th><th>slope / decade</th><th>flags</th>"
                "</tr>\n");
    for (int k = 0; k < d->n_tasks; k++) {
        const sq_task *t = &d->tasks[d->order[k]];
        for (int i = 0; i < d->n_series; i++) {
            const scaling_series *s = &d->series[i];
            const scaling_result *r = &d->res[i];
            if (strcmp(s->task, t->name) || !t->preferred || strcmp(s->metric, t->preferred))
                continue;
            em_buf_puts(b, "<tr><td>");
            esc(b, s->task);
            em_buf_puts(b, "</td><td>");
            esc(b, s->variant);
            em_buf_puts(b, "</td><td>");
            esc(b, s->metric);
            em_buf_puts(b, "</td><td class=\"num\">");
            num(b, r->linearity);
            em_buf_puts(b, "</td><td class=\"num\">");
            num(b, r->breakthroughness);
            em_buf_puts(b, "</td><td class=\"num\">");
            if (r->emergence_scale > 0)
                scale(b, r->emergence_scale);
            else
                em_buf_puts(b, "none");
            em_buf_puts(b, "</td><td class=\"num\">");
            num(b, r->slope);
            em_buf_printf(b, "</td><td>%s%s%s</td></tr>\n",
                          r->inverse ? "<span class=\"flag\">inverse scaling</span>" : "",
                          r->inverse && r->u_shape ? ", " : "",
                          r->u_shape ? "<span class=\"flag\">U-shape</span>" : "");
        }
    }
    em_buf_puts(b, "</table>\n");
}

static void example_html(em_buf *b, const report_example *x)
{
    em_buf_puts(b, "<h4>Example <code>");
    esc(b, x->id);
    em_buf_puts(b, "</code> <small>(");
    esc(b, x->variant);
    em_buf_printf(b, "; its score changes %d time%s across sizes)</small></h4>\n"
                  "<p>Input:</p><pre>", x->changes, x->changes == 1 ? "" : "s");
    esc_cut(b, x->input, 2000);
    em_buf_puts(b, "</pre><p>Targets: <code>");
    esc_cut(b, x->targets, 500);
    em_buf_puts(b, "</code></p>\n<table>\n<tr><th>model</th><th>parameters</th>"
                "<th>score</th><th>extracted answer</th><th>output</th></tr>\n");
    for (int i = 0; i < x->n_outs; i++) {
        const sq_output *o = &x->outs[i];
        /* Colour only a clear right (1) or wrong (0). */
        em_buf_printf(b, "<tr class=\"%s\"><td>", o->value == 1 ? "ok"
                      : o->value == 0 ? "bad" : "");
        esc(b, o->model);
        em_buf_puts(b, "</td><td class=\"num\">");
        scale(b, o->params);
        em_buf_puts(b, "</td><td class=\"num\">");
        num(b, o->value);
        em_buf_puts(b, "</td><td>");
        esc_cut(b, o->answer, 200);
        em_buf_puts(b, "</td><td><pre>");
        esc_cut(b, o->output, 600);
        em_buf_puts(b, "</pre></td></tr>\n");
    }
    em_buf_puts(b, "</table>\n");
}

static void task_section(em_buf *b, const report_ctx *c, int t)
{
    const report_data *d = c->d;
    const sq_task *task = &d->tasks[t];
    em_buf_puts(b, "<h2 id=\"");
    anchor(b, task->name);
    em_buf_puts(b, "\">Task ");
    esc(b, task->name);
    em_buf_puts(b, "</h2>\n<p class=\"meta\">");
    em_buf_printf(b, "%d examples; preferred metric ", task->n_examples);
    esc(b, task->preferred ? task->preferred : "(none)");
    em_buf_puts(b, "; random baseline ");
    num(b, task->random_baseline);
    em_buf_puts(b, ".</p>\n");
    static const char *const kinds[] = {"variants", "metrics", "choices"};
    static const char *const captions[] = {
        "Preferred metric by model size, one line per prompt variant, with 95% "
        "bootstrap CIs, the random baseline (dashed) and emergence scales "
        "(dotted).",
        "Every metric normalised to 0-1: fractions as they are, log-probs "
        "min-max over the family, lower-is-better metrics flipped.",
        "Multiple choice: mean log-prob of the correct choice and of the "
        "incorrect ones."};
    for (int k = 0; k < 3; k++) {
        char *name = report_fig_name(task->name, kinds[k]);
        figure(b, c, name, captions[k]);
        free(name);
    }
    int shown = 0;
    for (int i = 0; i < c->n_ex; i++) {
        if (strcmp(c->ex[i].task, task->name))
            continue;
        if (!shown++)
            em_buf_puts(b, "<h3>The same example across scales</h3>\n<p>The "
                        "examples whose score changes most often as models grow."
                        "</p>\n");
        example_html(b, &c->ex[i]);
    }
}

int report_html_write(const report_ctx *c, const char *path, em_err *err)
{
    em_buf b = {0};
    head(&b, c);
    em_buf_puts(&b, "<h2 id=\"overview\">Overview</h2>\n");
    figure(&b, c, "overview", "Each task's preferred metric by model size, "
           "in the prompt variant whose largest model scores highest (chain "
           "of thought where it wins), sorted by the main variant's "
           "breakthroughness (sharpest first).");
    models_table(&b, c->d);
    scores_table(&b, c->d);
    scaling_table(&b, c->d);
    for (int k = 0; k < c->d->n_tasks; k++)
        task_section(&b, c, c->d->order[k]);
    em_buf_puts(&b, "<p class=\"meta\">Written by emerge report.</p>\n</body>\n"
                "</html>\n");
    int rc = report_write_file(path, &b, err);
    em_buf_free(&b);
    return rc;
}

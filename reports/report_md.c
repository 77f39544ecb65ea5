/*
 * report_md.c - the report as report.md (GitHub-flavoured Markdown).
 *
 * The same content as index.html, for places that render Markdown (a
 * repository, a CI job summary). Figures are linked as figures/NAME.png
 * next to the file rather than inlined. Database text goes through
 * report_md_escape (table cells) or fenced code blocks whose fence is
 * longer than any backtick run in the text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "reports/escape.h"
#include "reports/report.h"

static void cell(em_buf *b, const char *s) { report_md_escape(b, s, 120); }

/* Plain ASCII, readable where the Markdown is not rendered. */
static const report_marks marks = {"inf", "-inf", "-"};

static void num(em_buf *b, double v) { report_put_num(b, v, &marks); }
static void scale(em_buf *b, double v) { report_put_scale(b, v, &marks); }

/* A fenced block that no backtick run inside s can close. */
static void fenced(em_buf *b, const char *s, size_t max)
{
    int run = 0, longest = 0;
    for (const char *p = s ? s : ""; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    int n = longest >= 3 ? longest + 1 : 3;
    for (int i = 0; i < n; i++)
        em_buf_putc(b, '`');
    em_buf_puts(b, "text\n");
    size_t len = s ? strlen(s) : 0;
    if (len > max) {
        max = utf8_cut(s, max);
        em_buf_put(b, s, max);
        em_buf_printf(b, "\n... (%zu more bytes)", len - max);
    } else if (s) {
        em_buf_puts(b, s);
    }
    em_buf_putc(b, '\n');
    for (int i = 0; i < n; i++)
        em_buf_putc(b, '`');
    em_buf_putc(b, '\n');
}

static void tables(em_buf *b, const report_data *d)
{
    em_buf_puts(b, "## Models\n\n| model | backend | parameters | training "
                "tokens | 6ND FLOPs |\n|---|---|---:|---:|---:|\n");
    for (int i = 0; i < d->n_models; i++) {
        const sq_model *m = &d->models[i];
        em_buf_puts(b, "| ");
        cell(b, m->name);
        em_buf_puts(b, " | ");
        cell(b, m->backend);
        em_buf_puts(b, " | ");
        scale(b, m->params);
        em_buf_puts(b, " | ");
        scale(b, m->tokens);
        em_buf_puts(b, " | ");
        num(b, m->params > 0 && m->tokens > 0 ? 6 * m->params * m->tokens : NAN);
        em_buf_puts(b, " |\n");
    }
    em_buf_puts(b, "\n## Scores\n\nPreferred metric per task, variant and model: "
                "mean [95% bootstrap CI].\n\n| task | variant | metric |");
    for (int i = 0; i < d->n_models; i++) {
        em_buf_putc(b, ' ');
        cell(b, d->models[i].name);
        em_buf_puts(b, " |");
    }
    em_buf_puts(b, "\n|---|---|---|");
    for (int i = 0; i < d->n_models; i++)
        em_buf_puts(b, "---:|");
    em_buf_putc(b, '\n');
    for (int i = 0; i < d->n_series; i++) {
        const scaling_series *s = &d->series[i];
        if (report_series(d, s->task, s->variant) != i)
            continue;
        em_buf_puts(b, "| ");
        cell(b, s->task);
        em_buf_puts(b, " | ");
        cell(b, s->variant);
        em_buf_puts(b, " | ");
        cell(b, s->metric);
        em_buf_puts(b, " |");
        for (int m = 0; m < d->n_models; m++) {
            const scaling_point *p = NULL;
            for (int j = 0; j < s->n; j++)
                if (!strcmp(s->pts[j].model, d->models[m].name))
                    p = &s->pts[j];
            if (p)
                em_buf_printf(b, " %.3f [%.3f, %.3f]%s |", p->score, p->lo, p->hi,
                              p->n_truncated ? " *" : "");
            else
                em_buf_puts(b, " - |");
        }
        em_buf_putc(b, '\n');
    }
    if (report_any_truncated(d))
        em_buf_puts(b, "\n\\* scored in part on prompts cut to fit the model's "
                    "context (`emerge results` counts them)\n");
}

static void scaling(em_buf *b, const report_data *d)
{
    em_buf_puts(b, "\n## Scaling metrics\n\nSorted by breakthroughness; "
                "definitions in metrics/README.md.\n\n| task | variant | metric | "
                "linearity | breakthroughness | emergence scale | slope/decade | "
                "flags |\n|---|---|---|---:|---:|---:|---:|---|\n");
    for (int k = 0; k < d->n_tasks; k++) {
        const sq_task *t = &d->tasks[d->order[k]];
        for (int i = 0; i < d->n_series; i++) {
            const scaling_series *s = &d->series[i];
            const scaling_result *r = &d->res[i];
            if (strcmp(s->task, t->name) || report_series(d, s->task, s->variant) != i)
                continue;
            em_buf_puts(b, "| ");
            cell(b, s->task);
            em_buf_puts(b, " | ");
            cell(b, s->variant);
            em_buf_puts(b, " | ");
            cell(b, s->metric);
            em_buf_puts(b, " | ");
            num(b, r->linearity);
            em_buf_puts(b, " | ");
            num(b, r->breakthroughness);
            em_buf_puts(b, " | ");
            if (r->emergence_scale > 0)
                scale(b, r->emergence_scale);
            else
                em_buf_puts(b, "none");
            em_buf_puts(b, " | ");
            num(b, r->slope);
            em_buf_printf(b, " | %s%s%s |\n", r->inverse ? "**inverse scaling**" : "",
                          r->inverse && r->u_shape ? ", " : "",
                          r->u_shape ? "**U-shape**" : "");
        }
    }
}

static void example_md(em_buf *b, const report_example *x)
{
    em_buf_puts(b, "\n#### Example ");
    cell(b, x->id);
    em_buf_puts(b, " (");
    cell(b, x->variant);
    em_buf_printf(b, "; score changes %d time%s across sizes)\n\nInput:\n\n",
                  x->changes, x->changes == 1 ? "" : "s");
    fenced(b, x->input, 2000);
    em_buf_puts(b, "\nTargets: ");
    cell(b, x->targets);
    em_buf_puts(b, "\n\n| model | parameters | score | extracted answer | output |\n"
                "|---|---:|---:|---|---|\n");
    for (int i = 0; i < x->n_outs; i++) {
        const sq_output *o = &x->outs[i];
        em_buf_puts(b, "| ");
        cell(b, o->model);
        em_buf_puts(b, " | ");
        scale(b, o->params);
        em_buf_puts(b, " | ");
        num(b, o->value);
        em_buf_puts(b, " | ");
        cell(b, o->answer);
        em_buf_puts(b, " | ");
        cell(b, o->output);
        em_buf_puts(b, " |\n");
    }
}

static void figure_link(em_buf *b, const report_ctx *c, const char *name,
                        const char *alt)
{
    for (int i = 0; i < c->n_figs; i++) {
        if (strcmp(c->figs[i].name, name))
            continue;
        if (c->svg[i])
            em_buf_printf(b, "\n![%s](figures/%s.png)\n", alt, name);
        em_buf_printf(b, "\nData: [figures/%s.csv](figures/%s.csv)\n", name, name);
    }
}

static void task_md(em_buf *b, const report_ctx *c, int t)
{
    const sq_task *task = &c->d->tasks[t];
    em_buf_puts(b, "\n## Task ");
    cell(b, task->name);
    em_buf_printf(b, "\n\n%d examples; preferred metric ", task->n_examples);
    cell(b, task->preferred ? task->preferred : "(none)");
    em_buf_puts(b, "; random baseline ");
    num(b, task->random_baseline);
    em_buf_puts(b, ".\n");
    static const char *const kinds[] = {"variants", "metrics", "choices"};
    static const char *const alts[] = {"preferred metric by variant",
                                       "every metric normalised",
                                       "correct vs incorrect choice log-probs"};
    for (int k = 0; k < 3; k++) {
        char *name = report_fig_name(task->name, kinds[k]);
        figure_link(b, c, name, alts[k]);
        free(name);
    }
    int shown = 0;
    for (int i = 0; i < c->n_ex; i++) {
        if (strcmp(c->ex[i].task, task->name))
            continue;
        if (!shown++)
            em_buf_puts(b, "\n### The same example across scales\n");
        example_md(b, &c->ex[i]);
    }
}

int report_md_write(const report_ctx *c, const char *path, em_err *err)
{
    em_buf b = {0};
    em_buf_puts(&b, "# emerge report\n\nDatabase `");
    report_md_escape(&b, c->d->db_path, 300);
    em_buf_printf(&b, "`, generated %s. %d tasks, %d models; x axis: %s.\n",
                  c->generated, c->d->n_tasks, c->d->n_models,
                  report_axis_label(c->d));
    if (c->figures_note)
        em_buf_printf(&b, "\n> %s\n", c->figures_note);
    em_buf_puts(&b, "\n## Overview\n");
    figure_link(&b, c, "overview", "all tasks by breakthroughness");
    em_buf_putc(&b, '\n');
    tables(&b, c->d);
    scaling(&b, c->d);
    for (int k = 0; k < c->d->n_tasks; k++)
        task_md(&b, c, c->d->order[k]);
    int rc = report_write_file(path, &b, err);
    em_buf_free(&b);
    return rc;
}

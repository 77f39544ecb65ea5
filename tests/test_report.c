/*
 * test_report.c - plots and reports: escaping, the 0-1 normalisation of
 * the metrics figure, the figure set and its numbers from a real
 * synthetic sweep, the gnuplot script, `emerge plot` (PNG/SVG/CSV, and the
 * error without gnuplot) and `emerge report` (self-contained HTML,
 * Markdown, escaping of database text, the examples chosen).
 *
 * Ground truth: the synthetic backend (backends/synthetic.c) with a sharp
 * logistic, midpoint 3e8, width 0.5 decades, k = 4 answers: a model of N
 * parameters puts p = L(2 ln 9 (log10 N - log10 3e8) / 0.5) on the right
 * answer and (1-p)/3 on each wrong one.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"
#include "base/csv.h"
#include "reports/escape.h"
#include "reports/figures.h"
#include "reports/plot.h"
#include "reports/report.h"
#include "tests/emerge_bin.h"
#include "tests/testlib.h"

static char *dir;     /* holds a.sqlite: sweep-arith + sweep-mc, sharp family */
static int ready;

static int have_gnuplot(void)
{
    return report_gnuplot_check(NULL) == 0;
}

static void sql(const char *path, const char *stmt)
{
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, stmt, NULL, NULL, &msg);
    CHECK_MSG(rc == SQLITE_OK, "%s: %s", stmt, msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
}

static char *path_in(const char *d, const char *name)
{
    em_buf b = {0};
    em_buf_printf(&b, "%s/%s", d, name);
    return em_buf_take(&b);
}

static char *slurp(const char *path)
{
    char *s = NULL;
    em_err err;
    if (em_read_file(path, &s, NULL, &err) != 0) {
        tl_fail(__FILE__, __LINE__, "%s", err.msg);
        return em_strdup("");
    }
    return s;
}

static int count(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

/* ---- pure functions --------------------------------------------------------- */

TEST(test_escape)
{
    em_buf b = {0};
    report_xml_escape(&b, "<script>a&b</script> \"q\" 'x' \x01\x7f \xff ok \xc3\xa9");
    CHECK_STR(b.s, "&lt;script&gt;a&amp;b&lt;/script&gt; &quot;q&quot; &#39;x&#39; "
                   "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD ok \xc3\xa9");
    em_buf_reset(&b);
    report_xml_escape(&b, "\xe0\x80\x80|\xed\xa0\x80|\xf4\x90\x80\x80");  /* overlong, surrogate, >U+10FFFF */
    CHECK_STR(b.s, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD"
                   "\xEF\xBF\xBD|\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    em_buf_reset(&b);
    report_md_escape(&b, "a|b`c*d_e\nf<g>", 0);
    CHECK_STR(b.s, "a\\|b\\`c\\*d\\_e f&lt;g&gt;");
    em_buf_reset(&b);
    report_md_escape(&b, "abcdefgh", 4);
    CHECK_STR(b.s, "abcd...");
    em_buf_reset(&b);
    csv_field(&b, "plain");
    em_buf_putc(&b, ',');
    csv_field(&b, "a,\"b\"\nc");
    CHECK_STR(b.s, "plain,\"a,\"\"b\"\"\nc\"");
    em_buf_free(&b);
    char *f = report_file_name("../x y/é");
    CHECK_STR(f, "_._x_y___");
    free(f);
}

static scaling_series series_of(const char *metric, const double *y, int n)
{
    scaling_series s = {0};
    s.metric = (char *)metric;
    (void)y;
    s.n = n;
    return s;
}

TEST(test_normalize)
{
    /* Fractions as they are. */
    double y[3] = {0.1, 0.5, 0.9}, lo[3] = {0.05, 0.4, 0.8}, hi[3] = {0.2, 0.6, 1};
    scaling_series s = series_of("exact_match", y, 3);
    report_normalize(&s, y, lo, hi, 3);
    CHECK_NEAR(y[1], 0.5, 0);
    CHECK_NEAR(hi[2], 1, 0);
    /* 0-100 scores divided by 100. */
    double b[2] = {10, 60}, bl[2] = {5, 50}, bh[2] = {20, 70};
    s = series_of("bleu", b, 2);
    report_normalize(&s, b, bl, bh, 2);
    CHECK_NEAR(b[0], 0.1, 1e-12);
    CHECK_NEAR(bh[1], 0.7, 1e-12);
    /* Log-probs: min-max of the means, CIs through the same map. */
    double l[3] = {-10, -4, -2}, ll[3] = {-11, -5, -2.5}, lh[3] = {-9, -3, -1.5};
    s = series_of("target_logprob", l, 3);
    report_normalize(&s, l, ll, lh, 3);
    CHECK_NEAR(l[0], 0, 1e-12);
    CHECK_NEAR(l[1], 0.75, 1e-12);
    CHECK_NEAR(l[2], 1, 1e-12);
    CHECK_NEAR(ll[0], -0.125, 1e-12);
    CHECK_NEAR(lh[2], 1.0625, 1e-12);
    /* Lower is better: the best (smallest) Brier score maps to 1. */
    double r[2] = {0.8, 0.2}, rl[2] = {0.7, 0.1}, rh[2] = {0.9, 0.3};
    s = series_of("brier_score", r, 2);
    report_normalize(&s, r, rl, rh, 2);
    CHECK_NEAR(r[0], 0, 1e-12);
    CHECK_NEAR(r[1], 1, 1e-12);
    CHECK(rl[1] <= r[1] && r[1] <= rh[1]);
    CHECK_NEAR(rl[1], 1 - 0.1 / 0.6, 1e-12);
}

/* Names with quotes and backslashes are gnuplot-escaped and noenhanced;
 * CSV keeps the true x while the drawing dodges. */
TEST(test_script)
{
    report_fig f;
    report_fig_init(&f, "t", "task \"q\" \\ x_y", "parameters", "score");
    report_line *l = report_fig_line(&f, "std_\"v\"", 0, 0);
    report_line_add(l, "m1", 1e6, 0.1, 0.05, 0.15);
    report_line_add(l, "m,2", 1e9, 0.9, 0.85, 0.95);
    report_line_add(l, "m3", 0, 0.5, NAN, NAN);   /* not drawable on log x */
    l->dodge = 0.5;
    f.baseline = 0.25;
    report_fig_mark(&f, 3e8, 0, "emergence");
    em_buf b = {0};
    report_fig_script(&f, "png", "/tmp/x.png", &b);
    CHECK_HAS(b.s, "set title \"task \\\"q\\\" \\\\ x_y\" noenhanced");
    CHECK_HAS(b.s, "set logscale x 10");
    CHECK_HAS(b.s, "yerrorlines");
    CHECK_HAS(b.s, "title \"std_\\\"v\\\"\" noenhanced");
    CHECK_HAS(b.s, "set arrow from 300000000, graph 0 to 300000000, graph 1");
    CHECK_HAS(b.s, "0.25 with lines dt 2");
    CHECK_HAS(b.s, "3162277.66 0.1 0.05 0.15\n");   /* 1e6 * 10^0.5 */
    CHECK(!strstr(b.s, "\n0 0.5"));
    em_buf_reset(&b);
    report_fig_csv(&f, &b);
    CHECK_HAS(b.s, "panel,line,model,x,y,lo,hi\n");
    CHECK_HAS(b.s, ",\"std_\"\"v\"\"\",m1,1000000,0.10000000000000001,");
    CHECK_HAS(b.s, ",\"m,2\",1000000000,");
    CHECK_HAS(b.s, ",m3,0,0.5,,\n");
    CHECK_HAS(b.s, ",random baseline,,,0.25,,\n");
    em_buf_free(&b);
    report_fig_free(&f);
}

/* ---- on a real sweep --------------------------------------------------------- */

TEST(test_setup)
{
    if (tl_sh(NULL, "test -x %s", bin()) != 0) {
        if (em_is_ci())
            tl_fail(__FILE__, __LINE__, "%s not built", bin());
        else
            tl_skip("%s not built", bin());
        return;
    }
    dir = tl_tmpdir();
    use_private_bin(dir);
    int rc = tl_sh(NULL, "%s sweep --tasks tests/data/tasks/sweep-arith.yaml,"
                   "tests/data/tasks/sweep-mc.yaml --models "
                   "tests/data/families/synthetic.yaml --db %s/a.sqlite "
                   "--variants standard,cot --quiet", bin(), dir);
    /* sweep-mc has no cot variant it can build: named, and the sweep
     * says it is incomplete (exit 1); everything else is stored. */
    CHECK_INT(rc, 1);
    ready = rc == 1;
}

static double logistic_p(double params)
{
    double x = log10(params), m = log10(3e8);
    double p = 1 / (1 + exp(-2 * log(9) * (x - m) / 0.5));
    return fmin(fmax(p, 1e-6), 1 - 1e-6);
}

static const report_fig *fig_named(const report_fig *f, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(f[i].name, name))
            return &f[i];
    return NULL;
}

TEST(test_figures)
{
    if (!ready)
    {
        tl_skip("no database");
        return;
    }
    char *db = path_in(dir, "a.sqlite");
    report_data d;
    em_err err;
    CHECK_MSG(report_data_load(db, 0, NULL, &d, &err) == 0, "%s", err.msg);
    free(db);
    report_fig *f;
    int n;
    report_figures(&d, &f, &n);
    /* arith: variants + metrics; mc: variants + metrics + choices; overview. */
    CHECK_INT(n, 6);
    const report_fig *v = fig_named(f, n, "sweep-arith-variants");
    CHECK(v != NULL);
    if (v) {
        CHECK_INT(v->n_lines, 2);
        CHECK_STR(v->lines[0].title, "standard");   /* standard drawn first */
        CHECK_INT(v->lines[0].n, 6);
        CHECK_NEAR(v->lines[0].y[3], 0.995, 1e-12); /* syn-1b, as emerge results */
        CHECK_NEAR(v->baseline, 0, 0);
        CHECK(v->n_marks == 2 && v->marks[0] == 1e8);
    }
    const report_fig *m = fig_named(f, n, "sweep-arith-metrics");
    /* exact_match and target_logprob, then the mirage test's two curves
     * (the synthetic family's target is one token: P(target) is what
     * exact match samples, so the verdict names itself in the title) */
    CHECK(m && m->n_lines == 4);
    if (m && m->n_lines == 4) {
        CHECK_STR(m->lines[2].title, "P(whole target), measured");
        CHECK_STR(m->lines[3].title, "P(whole target), smooth log-prob fit");
        CHECK(strstr(m->title, "mirage test: ") != NULL);
        CHECK_INT(m->lines[2].n, 6);
    }
    const report_fig *c = fig_named(f, n, "sweep-mc-choices");
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(c->n_lines, 2);   /* correct/incorrect, standard only (MC) */
        for (int j = 0; j < c->lines[0].n; j++) {
            double p = logistic_p(c->lines[0].x[j]);
            CHECK_NEAR(c->lines[0].y[j], log(p), 1e-9);
            CHECK_NEAR(c->lines[1].y[j], log((1 - p) / 3), 1e-9);
        }
    }
    const report_fig *o = fig_named(f, n, "overview");
    CHECK(o && o->n_panels == 2);
    /* each panel draws the variant whose largest model scores highest */
    for (int k = 0; o && k < o->n_panels; k++) {
        const report_fig *p = &o->panels[k];
        const char *best = NULL;
        double bv = -INFINITY;
        for (int i = 0; i < d.n_series; i++) {
            const scaling_series *s = &d.series[i];
            const sq_task *t = &d.tasks[d.order[k]];
            if (strcmp(s->task, t->name) || strcmp(s->metric, t->preferred))
                continue;
            double last = s->pts[s->n - 1].score; /* points are in size order */
            if (!best || last > bv)
                best = s->variant, bv = last;
        }
        CHECK_MSG(best && p->n_lines >= 1 && !strcmp(p->lines[0].title, best),
                  "overview panel %d draws '%s', best-ending variant '%s'", k,
                  p->n_lines ? p->lines[0].title : "?", best ? best : "?");
    }
    for (int k = 1; k < d.n_tasks; k++) {
        int a = d.main_series[d.order[k - 1]], b = d.main_series[d.order[k]];
        CHECK(d.res[a].breakthroughness >= d.res[b].breakthroughness);
    }
    for (int i = 0; i < n; i++)
        report_fig_free(&f[i]);
    free(f);
    report_data_free(&d);
}

/* Stored targets may carry the leading space of the choice text (the demo
 * family's [" Fenwarr"]): the choices figure still finds the correct
 * choice, whichever side holds the space, with the same log-probs. */
TEST(test_choices_leading_space_targets)
{
    if (!ready) {
        tl_skip("no database");
        return;
    }
    char *a = path_in(dir, "a.sqlite"), *b = path_in(dir, "spaced.sqlite");
    CHECK_INT(tl_sh(NULL, "cp %s %s", a, b), 0);
    sql(b, "UPDATE examples SET targets = replace(targets, '[\"', '[\" ')"
           " WHERE task_id IN (SELECT id FROM tasks WHERE name = 'sweep-mc')");
    report_data d[2];
    em_err err;
    CHECK_MSG(report_data_load(a, 0, NULL, &d[0], &err) == 0, "%s", err.msg);
    CHECK_MSG(report_data_load(b, 0, NULL, &d[1], &err) == 0, "%s", err.msg);
    CHECK(d[0].n_choices > 0);
    CHECK_INT(d[1].n_choices, d[0].n_choices);
    for (int i = 0; i < d[0].n_choices && i < d[1].n_choices; i++) {
        CHECK_NEAR(d[1].choices[i].correct, d[0].choices[i].correct, 0);
        CHECK_NEAR(d[1].choices[i].incorrect, d[0].choices[i].incorrect, 0);
        CHECK_INT(d[1].choices[i].n, d[0].choices[i].n);
    }
    report_data_free(&d[0]);
    report_data_free(&d[1]);
    free(a);
    free(b);
}

static int is_png(const char *path)
{
    FILE *f = fopen(path, "rb");
    unsigned char sig[8] = {0};
    size_t got = f ? fread(sig, 1, 8, f) : 0;
    if (f)
        fclose(f);
    return got == 8 && !memcmp(sig, "\x89PNG\r\n\x1a\n", 8);
}

TEST(test_cli_plot)
{
    if (!ready)
    {
        tl_skip("no database");
        return;
    }
    char *out = NULL;
    /* Without gnuplot: CSVs, exit 2 and how to install it. */
    int rc = tl_sh(&out, "PATH=/nonexistent %s plot --db %s/a.sqlite --out "
                   "%s/nognu 2>&1", bin(), dir, dir);
    CHECK_INT(rc, 2);
    CHECK_HAS(out, "apt-get install gnuplot-nox");
    free(out);
    CHECK_INT(tl_sh(NULL, "test -s %s/nognu/overview.csv", dir), 0);
    CHECK_INT(tl_sh(NULL, "test -e %s/nognu/overview.png", dir) != 0, 1);
    /* Bad usage. */
    CHECK_INT(tl_sh(&out, "%s plot --db %s/a.sqlite --out %s/p --format gif 2>&1",
                    bin(), dir, dir), 2);
    CHECK_HAS(out, "--format must be png, svg or both");
    free(out);
    CHECK_INT(tl_sh(&out, "%s plot --db %s/missing.sqlite --out %s/p 2>&1",
                    bin(), dir, dir), 2);
    CHECK_HAS(out, "missing.sqlite: no such database");
    free(out);
    if (!have_gnuplot()) {
        if (em_is_ci())
            tl_fail(__FILE__, __LINE__, "gnuplot missing under CI");
        else
            tl_skip("gnuplot missing");
        return;
    }
    rc = tl_sh(&out, "%s plot --db %s/a.sqlite --out %s/plots --format both "
               "--axis flops 2>&1", bin(), dir, dir);
    CHECK_INT(rc, 0);
    CHECK_HAS(out, "6 figures");
    free(out);
    static const char *const names[] = {"overview", "sweep-arith-variants",
                                        "sweep-arith-metrics", "sweep-mc-variants",
                                        "sweep-mc-metrics", "sweep-mc-choices"};
    for (int i = 0; i < 6; i++) {
        em_buf p = {0};
        em_buf_printf(&p, "%s/plots/%s.png", dir, names[i]);
        CHECK_MSG(is_png(p.s), "%s is not a PNG", p.s);
        em_buf_reset(&p);
        em_buf_printf(&p, "%s/plots/%s.svg", dir, names[i]);
        char *svg = slurp(p.s);
        CHECK_HAS(svg, "<svg");
        CHECK_HAS(svg, "</svg>");
        free(svg);
        em_buf_free(&p);
    }
    char *gp = path_in(dir, "plots/sweep-arith-variants.gp");
    char *s = slurp(gp);
    CHECK_HAS(s, "training compute 6ND");
    free(s);
    free(gp);
}

/* The report: self-contained HTML with every figure inline, Markdown,
 * database text escaped, and the example that flips most shown first. */
TEST(test_cli_report)
{
    if (!ready)
    {
        tl_skip("no database");
        return;
    }
    char *db = path_in(dir, "evil.sqlite");
    CHECK_INT(tl_sh(NULL, "cp %s/a.sqlite %s", dir, db), 0);
    sql(db, "UPDATE models SET name = '<script>alert(1)</script>' "
            "WHERE name = 'syn-1m';"
            "UPDATE examples SET input = '</pre><img src=x onerror=alert(2)>' "
            "WHERE example_id = 'q007';"
            /* q007 of sweep-arith: right at 10m, wrong at 100m, right from
             * 1b on - three flips, more than any other example. */
            "UPDATE scores SET value = 1 WHERE example_id = 'q007' AND "
            "metric = 'exact_match' AND variant = 'standard' AND model_id = "
            "(SELECT id FROM models WHERE name = 'syn-10m');"
            "UPDATE scores SET value = 0 WHERE example_id = 'q007' AND "
            "metric = 'exact_match' AND variant = 'standard' AND model_id = "
            "(SELECT id FROM models WHERE name = 'syn-100m');");
    char *out = NULL;
    int rc = tl_sh(&out, "%s report --db %s --out %s/rep --examples 2 2>&1",
                   bin(), db, dir);
    CHECK_INT(rc, 0);
    free(out);
    char *hp = path_in(dir, "rep/index.html"), *mp = path_in(dir, "rep/report.md");
    char *html = slurp(hp), *md = slurp(mp);
    CHECK(!strstr(html, "<script"));
    CHECK(!strstr(html, "<img"));
    CHECK(!strstr(html, "<link"));
    CHECK(!strstr(html, "src=\""));
    CHECK_HAS(html, "&lt;script&gt;alert(1)&lt;/script&gt;");
    CHECK_HAS(html, "&lt;/pre&gt;&lt;img src=x onerror=alert(2)&gt;");
    CHECK_HAS(html, "<h2 id=\"scaling\">");
    CHECK_HAS(html, "same example across scales");
    if (have_gnuplot()) {
        CHECK_INT(count(html, "<svg"), 6);
        CHECK_INT(count(html, "</svg>"), 6);
        CHECK(!strstr(html, "figure not drawn"));
        /* Each figure's ids are its own. */
        CHECK(!strstr(html, "id='gpPt"));
        CHECK(!strstr(html, "href='#gpPt"));
        CHECK_HAS(html, "id='f0-gpPt0'");
        CHECK_HAS(html, "href='#f5-gpPt");
    } else {
        CHECK_HAS(html, "apt-get install gnuplot-nox");
    }
    /* Example q007 comes first in sweep-arith's section. */
    const char *sec = strstr(html, "<h2 id=\"task-sweep-arith\">");
    CHECK(sec != NULL);
    if (sec) {
        const char *first = strstr(sec, "<h4>Example <code>");
        CHECK(first && !strncmp(first + 18, "q007</code>", 11));
        CHECK_HAS(first, "changes 3 times");
        CHECK_INT(count(sec, "<h4>Example"), 2);
    }
    CHECK_HAS(md, "| &lt;script&gt;alert(1)&lt;/script&gt; |");
    CHECK_HAS(md, "## Scaling metrics");
    CHECK_HAS(md, "#### Example q007 (standard; score changes 3 times");
    CHECK(!strstr(md, "<script"));
    free(html);
    free(md);
    free(hp);
    free(mp);
    free(db);
    /* Without gnuplot: the tables, a note on how to get figures, exit 0. */
    rc = tl_sh(&out, "PATH=/nonexistent %s report --db %s/a.sqlite --out %s/rep2 "
               "2>&1", bin(), dir, dir);
    CHECK_INT(rc, 0);
    CHECK_HAS(out, "warning: Figures need gnuplot");
    free(out);
    hp = path_in(dir, "rep2/index.html");
    html = slurp(hp);
    CHECK_HAS(html, "apt-get install gnuplot-nox");
    CHECK(!strstr(html, "<svg"));
    CHECK_HAS(html, "<h2 id=\"scores\">");
    /* standard before cot in the scores table */
    const char *tab = strstr(html, "<h2 id=\"scores\">");
    const char *st = tab ? strstr(tab, "<td>standard</td>") : NULL;
    const char *co = tab ? strstr(tab, "<td>cot</td>") : NULL;
    CHECK(st && co && st < co);
    free(html);
    free(hp);
    /* A database that is not one. */
    CHECK_INT(tl_sh(&out, "%s report --db %s/rep/report.md --out %s/r2 2>&1",
                    bin(), dir, dir), 2);
    CHECK_HAS(out, "not an SQLite database");
    free(out);
}

int main(void)
{
    RUN(test_escape);
    RUN(test_normalize);
    RUN(test_script);
    RUN(test_setup);
    RUN(test_figures);
    RUN(test_choices_leading_space_targets);
    RUN(test_cli_plot);
    RUN(test_cli_report);
    if (dir)
        tl_sh(NULL, "rm -rf '%s'", dir);
    free(dir);
    free(private_bin);
    return tl_summary();
}

/* test_scaling.c - the scaling metrics of ../shared/refs/scaling-metrics.md
 * one formula at a time, the worked shapes of that file, generated
 * smooth/sharp/inverse/flat families, printing, and the CSV reader. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "metrics/scaling.h"
#include "tests/testlib.h"

TEST(test_range)
{
    double up[] = {1, 3, 2}, down[] = {3, 1, 2}, flat[] = {4, 4, 4};
    CHECK_NEAR(scaling_range(up, 3), 2, 0);    /* max after min: + */
    CHECK_NEAR(scaling_range(down, 3), -2, 0); /* max before min: - */
    CHECK_NEAR(scaling_range(flat, 3), 0, 0);
    CHECK_NEAR(scaling_range(up, 1), 0, 0);
}

/* Equal steps d: L = B = n - 1 (refs file, worked shape 1). */
TEST(test_equal_steps)
{
    for (int n = 2; n <= 9; n++) {
        double y[9];
        for (int i = 0; i < n; i++)
            y[i] = 7.5 * i;
        int inf;
        CHECK_NEAR(scaling_linearity(y, n), n - 1, 1e-9);
        CHECK_NEAR(scaling_breakthroughness(y, n, &inf), n - 1, 1e-9);
        CHECK_INT(inf, 0);
    }
}

/* A single jump among n - 1 >= 3 steps: L = sqrt(n - 1), B unbounded. */
TEST(test_single_jump)
{
    for (int n = 4; n <= 9; n++) {
        double y[9];
        for (int i = 0; i < n; i++)
            y[i] = i < n / 2 ? 0 : 40;
        int inf = 0;
        CHECK_NEAR(scaling_linearity(y, n), sqrt(n - 1), 1e-9);
        double b = scaling_breakthroughness(y, n, &inf);
        CHECK_INT(inf, 1);
        CHECK(isinf(b) && b > 0);
        for (int i = 0; i < n; i++)
            y[i] = -y[i]; /* a drop: -inf */
        b = scaling_breakthroughness(y, n, &inf);
        CHECK(inf == 1 && isinf(b) && b < 0);
        CHECK_NEAR(scaling_linearity(y, n), -sqrt(n - 1), 1e-9);
    }
    /* With only 2 steps the median is the mean of both: finite. */
    double y3[] = {0, 0, 10};
    int inf;
    CHECK_NEAR(scaling_breakthroughness(y3, 3, &inf), 10 / sqrt(50), 1e-12);
    CHECK_INT(inf, 0);
}

TEST(test_even_median)
{
    /* steps 1,2,3,4: squares 1,4,9,16; median (4+9)/2 = 6.5, mean 7.5. */
    double y[] = {0, 1, 3, 6, 10};
    int inf;
    CHECK_NEAR(scaling_breakthroughness(y, 5, &inf), 10 / sqrt(6.5), 1e-12);
    CHECK_NEAR(scaling_linearity(y, 5), 10 / sqrt(7.5), 1e-12);
    /* odd count: steps 3,1,2 -> squares 9,1,4, median 4. I = 6. */
    double z[] = {0, 3, 4, 6};
    CHECK_NEAR(scaling_breakthroughness(z, 4, &inf), 6 / 2.0, 1e-12);
}

TEST(test_flat)
{
    double y[] = {5, 5, 5, 5};
    int inf = 7;
    CHECK_NEAR(scaling_linearity(y, 4), 0, 0);
    CHECK_NEAR(scaling_breakthroughness(y, 4, &inf), 0, 0);
    CHECK_INT(inf, 0);
}

TEST(test_slope)
{
    double x[] = {0, 1, 2}, y[] = {1, 3, 5};
    CHECK_NEAR(scaling_slope(x, y, 3), 2, 1e-12);
    double x2[] = {8, 9, 10, 11}, y2[] = {4, 1, 3, 0};
    /* mean x 9.5, mean y 2: sxy = -1.5*2 + -0.5*-1 + 0.5*1 + 1.5*-2 = -5;
     * sxx = 5: slope -1. */
    CHECK_NEAR(scaling_slope(x2, y2, 4), -1, 1e-12);
    double xs[] = {3, 3};
    CHECK_NEAR(scaling_slope(xs, y, 2), 0, 0);
    CHECK_NEAR(scaling_slope(x, y, 1), 0, 0);
}

TEST(test_emergence_index)
{
    double lo[] = {0.1, 0.3, 0.2, 0.5, 0.6};
    CHECK_INT(scaling_emergence_index(lo, 5, 0.25), 3);
    CHECK_INT(scaling_emergence_index(lo, 5, 0.05), 0);
    CHECK_INT(scaling_emergence_index(lo, 5, 0.55), 4);
    CHECK_INT(scaling_emergence_index(lo, 5, 0.6), -1); /* strictly above */
    CHECK_INT(scaling_emergence_index(lo, 0, 0), -1);
}

TEST(test_inverse_flag)
{
    double y[] = {50, 40, 30}, lo[] = {48, 38, 28}, hi[] = {52, 42, 32};
    CHECK_INT(scaling_is_inverse(y, lo, hi, 3, -10), 1);
    CHECK_INT(scaling_is_inverse(y, lo, hi, 3, 0.5), 0); /* slope must fall */
    /* Ends 2 apart with CIs of +-5: within noise. */
    double y2[] = {50, 48}, lo2[] = {45, 43}, hi2[] = {55, 53};
    CHECK_INT(scaling_is_inverse(y2, lo2, hi2, 2, -2), 0);
    CHECK_INT(scaling_is_inverse(y, lo, hi, 1, -10), 0);
}

TEST(test_u_shape_flag)
{
    double y[] = {50, 20, 60}, lo[] = {45, 15, 55}, hi[] = {55, 25, 65};
    CHECK_INT(scaling_is_u_shape(y, lo, hi, 3), 1);
    double y2[] = {50, 60, 20}, lo2[] = {45, 55, 15}, hi2[] = {55, 65, 25};
    CHECK_INT(scaling_is_u_shape(y2, lo2, hi2, 3), 0); /* minimum at an end */
    double y3[] = {30, 20, 60}, lo3[] = {22, 15, 55}, hi3[] = {38, 25, 65};
    CHECK_INT(scaling_is_u_shape(y3, lo3, hi3, 3), 0); /* left end in the CI */
    CHECK_INT(scaling_is_u_shape(y, lo, hi, 2), 0);
}

/* ---- families generated from shapes of log10(params) ---- */

static scaling_series *make_series(double (*f)(double x), double noise,
                                   uint64_t seed)
{
    scaling_series *s = em_calloc(1, sizeof *s);
    s->task = em_strdup("gen");
    s->variant = em_strdup("standard");
    s->metric = em_strdup("exact_match");
    s->random_baseline = 0.05;
    s->random_hi = NAN;
    s->low_score = 0;
    s->high_score = 1;
    s->n = 8;
    s->pts = em_calloc(8, sizeof(scaling_point));
    uint64_t st = seed;
    for (int i = 0; i < 8; i++) {
        double x = 7 + 0.5 * i; /* 10M .. 3.2B */
        scaling_point *p = &s->pts[i];
        char name[32];
        snprintf(name, sizeof name, "m%d", i);
        p->model = em_strdup(name);
        p->params = pow(10, x);
        p->flops = 6 * p->params * 3e11;
        p->score = f(x) + noise * (2 * em_rand01(&st) - 1);
        p->lo = p->score - 0.03;
        p->hi = p->score + 0.03;
        p->n = 200;
    }
    return s;
}

static double f_smooth(double x) { return 0.05 + 0.9 / (1 + exp(-(x - 8.75))); }
static double f_sharp(double x) { return x < 9.5 ? 0.05 : 0.85; }
static double f_inverse(double x) { return 0.9 - 0.2 * (x - 7); }
static double f_flat(double x) { (void)x; return 0.3; }
static double f_u(double x) { return 0.2 + 0.1 * (x - 8.5) * (x - 8.5); }

TEST(test_shapes)
{
    for (int k = 0; k < 2; k++) { /* without and with noise */
        double noise = k ? 0.01 : 0;
        scaling_result r;
        scaling_series *s = make_series(f_smooth, noise, 1);
        scaling_analyze(s, 0, &r);
        CHECK_MSG(r.linearity > 5 && !r.b_inf &&
                  r.breakthroughness < 1.5 * r.linearity,
                  "smooth: L %.3f B %.3f", r.linearity, r.breakthroughness);
        CHECK(r.slope > 0 && !r.inverse && !r.u_shape);
        scaling_series_free(s, 1);

        s = make_series(f_sharp, noise, 2);
        scaling_analyze(s, 0, &r);
        CHECK_MSG(r.linearity < 3 &&
                  (r.b_inf || r.breakthroughness > 10 * r.linearity),
                  "sharp: L %.3f B %.3f", r.linearity, r.breakthroughness);
        CHECK_INT(r.b_inf, !k); /* exactly flat steps only without noise */
        CHECK_NEAR(log10(r.emergence_scale), 9.5, 1e-9); /* at the jump */
        scaling_analyze(s, 1, &r); /* flops axis */
        CHECK_NEAR(r.emergence_scale / (6 * pow(10, 9.5) * 3e11), 1, 1e-12);
        scaling_series_free(s, 1);

        s = make_series(f_inverse, noise, 3);
        scaling_analyze(s, 0, &r);
        CHECK(r.inverse && r.slope < 0 && r.linearity < 0);
        CHECK_NEAR(r.slope, -20, 2); /* -0.2 per decade, normalised x100 */
        scaling_series_free(s, 1);

        s = make_series(f_flat, noise, 4);
        scaling_analyze(s, 0, &r);
        if (!k) {
            CHECK_NEAR(r.linearity, 0, 0);
            CHECK_NEAR(r.breakthroughness, 0, 0);
        }
        double y[8];
        for (int i = 0; i < 8; i++)
            y[i] = 100 * s->pts[i].score;
        CHECK(fabs(scaling_range(y, 8)) <= 2);
        CHECK(!r.inverse && !r.u_shape && fabs(r.slope) < 1);
        CHECK_NEAR(r.emergence_scale, 1e7, 1e-3); /* above chance throughout */
        scaling_series_free(s, 1);

        s = make_series(f_u, noise, 5); /* 0.425 down to 0.2, up to 0.6 */
        scaling_analyze(s, 0, &r);
        CHECK(r.u_shape && !r.inverse);
        scaling_series_free(s, 1);
    }
}

/* ---- scaling_analyze on a hand-built series ---- */

static scaling_series *one_series(void)
{
    scaling_series *s = em_calloc(1, sizeof *s);
    s->task = em_strdup("t");
    s->variant = em_strdup("standard");
    s->metric = em_strdup("multiple_choice_grade");
    s->random_baseline = 0.25;
    s->random_hi = 0.30;
    s->low_score = 0.25;
    s->high_score = 1;
    double params[] = {4e8, 1e8, 2e9, 8e9}; /* deliberately unsorted */
    double score[] = {0.27, 0.26, 0.40, 0.70};
    double lo[] = {0.22, 0.21, 0.31, 0.62};
    s->n = 4;
    s->pts = em_calloc(4, sizeof(scaling_point));
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%g", params[i]);
        s->pts[i].model = em_strdup(name);
        s->pts[i].params = params[i];
        s->pts[i].score = score[i];
        s->pts[i].lo = lo[i];
        s->pts[i].hi = 2 * score[i] - lo[i];
        s->pts[i].n = 100;
    }
    return s;
}

TEST(test_analyze)
{
    scaling_series *s = one_series();
    scaling_result r;
    scaling_analyze(s, 0, &r);
    /* y by size: 100*(s - .25)/.75 = 4/3, 8/3, 20, 60. */
    double y[] = {4.0 / 3, 8.0 / 3, 20, 60};
    int inf;
    CHECK_NEAR(r.linearity, scaling_linearity(y, 4), 1e-9);
    CHECK_NEAR(r.breakthroughness, scaling_breakthroughness(y, 4, &inf), 1e-9);
    /* lower CIs .21 .22 .31 .62 against max(.25, .30): from 2e9 on. */
    CHECK_NEAR(r.emergence_scale, 2e9, 0);
    CHECK(r.slope > 0 && !r.inverse && !r.u_shape && !r.b_inf);
    /* Without a baseline, low_score (chance) is the threshold: .25. */
    s->random_baseline = s->random_hi = NAN;
    scaling_analyze(s, 0, &r);
    CHECK_NEAR(r.emergence_scale, 2e9, 0);
    /* No baseline and no normalisation: no emergence scale. */
    s->low_score = s->high_score = 0;
    scaling_analyze(s, 0, &r);
    CHECK_NEAR(r.emergence_scale, 0, 0);
    scaling_series_free(s, 1);
}

/* Without a normalisation range, a lower-is-better metric is analysed as
 * -raw: a Brier score falling with scale is an improvement, not inverse
 * scaling. The same numbers as exact_match would be inverse. */
TEST(test_lower_is_better)
{
    scaling_series *s = one_series();
    /* pts are 4e8, 1e8, 2e9, 8e9: by size 1.3, 1.2, 0.5, 0.1. */
    double want[] = {1.2, 1.3, 0.5, 0.1};
    for (int i = 0; i < 4; i++) {
        s->pts[i].score = want[i];
        s->pts[i].lo = want[i] - 0.01;
        s->pts[i].hi = want[i] + 0.01;
    }
    s->low_score = s->high_score = 0;
    s->random_baseline = s->random_hi = NAN;
    free(s->metric);
    s->metric = em_strdup("brier_score");
    scaling_result r;
    scaling_analyze(s, 0, &r);
    CHECK(!r.inverse && r.linearity > 0 && r.slope > 0);
    CHECK_NEAR(scaling_y(s, 0.5), -0.5, 0);
    free(s->metric);
    s->metric = em_strdup("exact_match");
    scaling_analyze(s, 0, &r);
    CHECK(r.inverse && r.linearity < 0 && r.slope < 0);
    CHECK_NEAR(scaling_y(s, 0.5), 0.5, 0);
    scaling_series_free(s, 1);
}

static const char *emerge_bin(void)
{
    const char *b = getenv("EMERGE_BIN");
    return b && *b ? b : "build/asan/emerge";
}

/* The CLI end to end on the CSV fixture (tests/run.sh sets EMERGE_BIN). */
TEST(test_cli_scaling)
{
    const char *bin = emerge_bin();
    if (tl_sh(NULL, "test -x %s", bin)) {
        if (em_is_ci())
            tl_fail(__FILE__, __LINE__, "%s not built", bin);
        else
            tl_skip("%s not built", bin);
        return;
    }
    char *out = NULL;
    CHECK_INT(tl_sh(&out, "%s scaling --scores tests/data/scaling/family.csv "
                    "--format json", bin), 0);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    CHECK(j && cJSON_GetArraySize(j) == 2);
    if (j) {
        cJSON *o = cJSON_GetArrayItem(j, 0);
        CHECK_NEAR(cJSON_GetObjectItem(o, "breakthroughness")->valuedouble,
                   32.5, 1e-9);
        CHECK_NEAR(cJSON_GetObjectItem(o, "emergence_scale")->valuedouble,
                   1e9, 0);
    }
    cJSON_Delete(j);
    free(out);
    CHECK_INT(tl_sh(&out, "%s scaling --scores tests/data/scaling/family.csv "
                    "--task arith --format csv", bin), 0);
    int lines = 0;
    for (char *p = out; p && *p; p++)
        lines += *p == '\n';
    CHECK_INT(lines, 7); /* header + 6 models */
    free(out);
    CHECK_INT(tl_sh(&out, "%s scaling --scores tests/data/scaling/family.csv "
                    "--task nope", bin), 2);
    CHECK_HAS(out, "no series match");
    free(out);
    CHECK_INT(tl_sh(&out, "%s scaling --scores tests/data/scaling/family.csv "
                    "--axis time", bin), 2);
    CHECK_HAS(out, "unknown axis 'time'");
    free(out);
    CHECK_INT(tl_sh(&out, "%s scaling --scores /nonexistent.csv", bin), 2);
    CHECK_HAS(out, "/nonexistent.csv");
    free(out);
    CHECK_INT(tl_sh(&out, "%s scaling --db /nonexistent/r.sqlite", bin), 2);
    CHECK_HAS(out, "/nonexistent/r.sqlite: no such database");
    free(out);
    CHECK_INT(tl_sh(&out, "%s scaling", bin), 2);
    CHECK_HAS(out, "exactly one of --db and --scores");
    free(out);
}

/* --db: a synthetic sweep (backends/synthetic.c, a sharp family) into a
 * fresh store, then the scaling table from it. */
TEST(test_cli_scaling_db)
{
    const char *bin = emerge_bin();
    if (tl_sh(NULL, "test -x %s", bin)) {
        if (em_is_ci())
            tl_fail(__FILE__, __LINE__, "%s not built", bin);
        else
            tl_skip("%s not built", bin);
        return;
    }
    char *dir = tl_tmpdir(), *out = NULL;
    int rc = tl_sh(&out, "%s sweep --tasks tests/data/tasks/sweep-mc.yaml "
                   "--models tests/data/families/synthetic.yaml --db %s/r.sqlite "
                   "--quiet", bin, dir);
    CHECK_MSG(rc == 0, "sweep failed: %s", out ? out : "");
    free(out);
    rc = tl_sh(&out, "%s scaling --db %s/r.sqlite --metric "
               "multiple_choice_grade --format json", bin, dir);
    CHECK_MSG(rc == 0, "scaling --db failed: %s", out ? out : "");
    cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
    CHECK(j && cJSON_GetArraySize(j) == 1);
    if (j && cJSON_GetArraySize(j) == 1) {
        cJSON *o = cJSON_GetArrayItem(j, 0);
        CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(o, "points")), 6);
        CHECK(cJSON_IsNumber(cJSON_GetObjectItem(o, "emergence_scale")));
        CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "inverse")));
    }
    cJSON_Delete(j);
    free(out);
    free(dir);
}

TEST(test_print_formats)
{
    scaling_series *s = one_series();
    char *dir = tl_tmpdir(), path[1024];
    snprintf(path, sizeof path, "%s/out.txt", dir);
    const scaling_format fmts[] = {SCALING_TABLE, SCALING_CSV, SCALING_JSON,
                                   SCALING_MD};
    for (int k = 0; k < 4; k++) {
        FILE *f = fopen(path, "w");
        em_err e;
        CHECK_INT(scaling_print(f, s, 1, 0, fmts[k], &e), 0);
        fclose(f);
        char *txt;
        size_t len;
        CHECK_INT(em_read_file(path, &txt, &len, &e), 0);
        if (fmts[k] == SCALING_TABLE) {
            CHECK_HAS(txt, "linearity");
            CHECK_HAS(txt, "emergence 2B");
            CHECK_HAS(txt, "100M");
            CHECK_HAS(txt, "8B"); /* 8e9 */
            /* rows in size order */
            CHECK(strstr(txt, "m1e+08") < strstr(txt, "m4e+08"));
        } else if (fmts[k] == SCALING_CSV) {
            CHECK_HAS(txt, "task,variant,metric,model,params,flops,score,lo,hi");
            CHECK_HAS(txt, "\nt,standard,multiple_choice_grade,m1e+08,");
            int lines = 0;
            for (char *p = txt; *p; p++)
                lines += *p == '\n';
            CHECK_INT(lines, 5);
        } else if (fmts[k] == SCALING_JSON) {
            cJSON *j = cJSON_Parse(txt);
            CHECK(j && cJSON_IsArray(j) && cJSON_GetArraySize(j) == 1);
            cJSON *o = cJSON_GetArrayItem(j, 0);
            cJSON *pts = cJSON_GetObjectItem(o, "points");
            CHECK(cJSON_GetArraySize(pts) == 4);
            CHECK_NEAR(cJSON_GetObjectItem(o, "emergence_scale")->valuedouble,
                       2e9, 0);
            CHECK(cJSON_IsFalse(cJSON_GetObjectItem(o, "inverse")));
            cJSON_Delete(j);
        } else {
            CHECK_HAS(txt, "### t / standard / multiple_choice_grade");
            CHECK_HAS(txt, "|---|");
        }
        free(txt);
    }
    /* An infinite breakthroughness and no emergence print as words. */
    for (int i = 0; i < 4; i++)
        s->pts[i].score = s->pts[i].lo = s->pts[i].hi = i < 2 ? 0.25 : 0.75;
    s->pts[3].score = s->pts[3].lo = s->pts[3].hi = 0.75;
    s->random_baseline = 0.8;
    s->random_hi = NAN;
    for (int k = 0; k < 3; k++) {
        FILE *f = fopen(path, "w");
        em_err e;
        CHECK_INT(scaling_print(f, s, 1, 0, fmts[k], &e), 0);
        fclose(f);
        char *txt;
        size_t len;
        em_read_file(path, &txt, &len, &e);
        if (k == 2) {
            CHECK_HAS(txt, "\"breakthroughness\":\t\"inf\"");
            CHECK_HAS(txt, "\"emergence_scale\":\tnull");
        } else {
            CHECK_HAS(txt, k == 0 ? "breakthroughness inf" : ",inf,none,");
            CHECK_HAS(txt, k == 0 ? "emergence none" : ",inf,none,");
        }
        free(txt);
    }
    scaling_series_free(s, 1);
    free(dir);
}

/* ---- CSV input ---- */

TEST(test_csv_family)
{
    scaling_series *s;
    int n;
    em_err e;
    int rc = scaling_read_csv("tests/data/scaling/family.csv", &s, &n, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc)
        return;
    CHECK_INT(n, 2);
    CHECK_STR(s[0].task, "arith");
    CHECK_STR(s[1].task, "trivia, open");
    CHECK_STR(s[0].metric, "exact_match");
    CHECK_STR(s[1].metric, "rougeL");
    CHECK_INT(s[0].n, 6);
    CHECK_STR(s[0].pts[0].model, "pythia-70m"); /* sorted by params */
    CHECK_STR(s[0].pts[3].model, "pythia-1b");
    CHECK_NEAR(s[0].pts[0].flops, 6 * 7e7 * 3e11, 1);
    CHECK_INT(s[0].pts[0].n, 100);
    CHECK_NEAR(s[0].random_baseline, 0.02, 0);
    CHECK(isnan(s[1].random_baseline));
    scaling_result r;
    scaling_analyze(&s[0], 0, &r);
    /* steps .01 .01 .59 .02 .02: RMS^2 = .3491/5, median of squares
     * 4e-4; I = .65. */
    CHECK_NEAR(r.linearity, 0.65 / sqrt(0.3491 / 5), 1e-9);
    CHECK_NEAR(r.breakthroughness, 0.65 / 0.02, 1e-9);
    CHECK_NEAR(r.emergence_scale, 1e9, 0);
    scaling_analyze(&s[1], 0, &r);
    CHECK_NEAR(r.linearity, 5, 1e-9);
    CHECK_NEAR(r.breakthroughness, 5, 1e-9);
    CHECK_NEAR(r.emergence_scale, 0, 0); /* no baseline, no range */
    scaling_series_free(s, n);

    rc = scaling_read_csv("tests/data/scaling/minimal.csv", &s, &n, &e);
    CHECK_MSG(rc == 0, "%s", e.msg);
    if (rc)
        return;
    CHECK_INT(n, 1);
    CHECK_STR(s[0].variant, "");
    CHECK(isnan(s[0].pts[0].lo));
    scaling_analyze(&s[0], 0, &r);
    CHECK(r.inverse);
    CHECK_NEAR(r.linearity, -2, 1e-9);
    CHECK_NEAR(r.breakthroughness, -2, 1e-9);
    scaling_series_free(s, n);
}

static void csv_error(const char *text, const char *want, int line)
{
    char *dir = tl_tmpdir(), path[1024];
    snprintf(path, sizeof path, "%s/bad.csv", dir);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    scaling_series *s = NULL;
    int n = -1;
    em_err e = {{0}};
    int rc = scaling_read_csv(path, &s, &n, &e);
    if (rc != -1 || s || n != 0)
        tl_fail(__FILE__, line, "expected an error for %s", want);
    else if (!strstr(e.msg, want) || !strstr(e.msg, "bad.csv"))
        tl_fail(__FILE__, line, "error \"%s\" lacks \"%s\"", e.msg, want);
    free(dir);
}
#define CSV_ERROR(text, want) csv_error(text, want, __LINE__)

TEST(test_csv_errors)
{
    CSV_ERROR("", "empty file");
    CSV_ERROR("task,model,params,score\n", "no data rows");
    CSV_ERROR("task,model,score\nt,m,1\n", ":1: missing column 'params'");
    CSV_ERROR("task,model,parms,score\n", ":1:12: unknown column 'parms'");
    CSV_ERROR("task,model,params,score,model\n", "column 'model' appears twice");
    CSV_ERROR("task,model,params,score,lo\n", "'lo' and 'hi' go together");
    CSV_ERROR("task,model,params,score\nt,m,abc,0.5\n",
              ":2:5: field 'params': 'abc' is not a finite number");
    CSV_ERROR("task,model,params,score\nt,m,1e9,\n", ":2:9: field 'score' is empty");
    CSV_ERROR("task,model,params,score\nt,m,1e9,0.5\nt,m2,2e9\n",
              ":3: 3 fields, but the header has 4");
    CSV_ERROR("task,model,params,score\nt,m,1e9,0.5\nt,m,2e9,0.6\n",
              ":3:3: field 'model': 'm' appears twice");
    CSV_ERROR("task,model,params,score\nt,m,0,0.5\n", "not a positive");
    CSV_ERROR("task,model,params,score\nt,\"m,1e9,0.5\n", ":2:3: unterminated");
    CSV_ERROR("task,model,params,score,lo,hi\nt,m,1e9,0.5,0.6,0.4\n", "lo <= hi");
    CSV_ERROR("task,model,params,score\n\n,m,1e9,0.5\n", ":3:1: field 'task' is empty");
    CSV_ERROR("task,model,params,score\r\nt,m,1e9,nan\r\n", "'nan' is not a finite");
    CSV_ERROR("task,model,params,score\nt,\"m\"x,1e9,0.5\n", ":2:6: text after a quoted field");
    CSV_ERROR("task,model,params,score\nt,m\r,1e9,0.5\n", ":2:4: carriage return without");
    CSV_ERROR("task,model,params,score,family\nt,m,1e9,0.5,A\n", "unknown column 'family'");
    scaling_series *s;
    int n;
    em_err e;
    CHECK_INT(scaling_read_csv("/nonexistent/x.csv", &s, &n, &e), -1);
    CHECK_HAS(e.msg, "/nonexistent/x.csv");
}

int main(void)
{
    RUN(test_range);
    RUN(test_equal_steps);
    RUN(test_single_jump);
    RUN(test_even_median);
    RUN(test_flat);
    RUN(test_slope);
    RUN(test_emergence_index);
    RUN(test_inverse_flag);
    RUN(test_u_shape_flag);
    RUN(test_shapes);
    RUN(test_analyze);
    RUN(test_lower_is_better);
    RUN(test_print_formats);
    RUN(test_csv_family);
    RUN(test_csv_errors);
    RUN(test_cli_scaling);
    RUN(test_cli_scaling_db);
    return tl_summary();
}

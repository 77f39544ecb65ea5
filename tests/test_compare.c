/*
 * test_compare.c - the cross-family matching scale (metrics/compare.c)
 * against hand-worked curves.
 */
#include <stdio.h>
#include <stdlib.h>

#include "metrics/compare.h"
#include "tests/testlib.h"

TEST(first_crossing)
{
    double x[] = {6, 7, 8, 9}, y[] = {0.1, 0.5, 0.3, 0.9};
    int c;
    /* 0.3 is first reached between 1e6 and 1e7: 6 + (0.3-0.1)/(0.5-0.1). */
    CHECK_NEAR(compare_cross(x, y, 4, 0.3, &c), 6.5, 1e-12);
    CHECK_INT(c, 0);
    /* 0.7: the dip to 0.3 does not count; reached between 1e8 and 1e9. */
    CHECK_NEAR(compare_cross(x, y, 4, 0.7, &c), 8 + 0.4 / 0.6, 1e-12);
    CHECK_INT(c, 0);
    /* Exactly a point's score: that point. */
    CHECK_NEAR(compare_cross(x, y, 4, 0.5, &c), 7, 1e-12);
    CHECK_INT(c, 0);
    compare_cross(x, y, 4, 0.05, &c);
    CHECK_INT(c, -1);
    CHECK_NEAR(compare_cross(x, y, 4, 0.1, &c), 6, 1e-12);
    CHECK_INT(c, -1);
    CHECK_NEAR(compare_cross(x, y, 4, 0.95, &c), 9, 1e-12);
    CHECK_INT(c, 1);
}

static scaling_series series(const char *metric, scaling_point *p, int n)
{
    scaling_series s = {(char *)"t", (char *)"standard", (char *)metric, NAN, NAN,
                        0, 0, p, n};
    return s;
}

/* A: 0.1, 0.5, 0.9 at 1M, 10M, 100M. B: 0.1, 0.3, 0.5, 0.7 at 10M..10B.
 * B's 10M is censored (A's smallest already scores 0.1); 0.3 is reached
 * at 10^6.5, 0.5 at 10^7, 0.7 at 10^7.5: ratios 31.6, 100, 316 and a
 * geometric mean of exactly 100. */
static scaling_point pa[] = {
    {(char *)"a-10m", 1e7, 0, 0.5, 0.4, 0.6, 100, 0, 0},
    {(char *)"a-1m", 1e6, 0, 0.1, 0.05, 0.15, 100, 0, 0}, /* order does not matter */
    {(char *)"a-100m", 1e8, 0, 0.9, 0.85, 0.95, 100, 0, 0}};
static scaling_point pb[] = {
    {(char *)"b-10m", 1e7, 0, 0.1, 0.05, 0.15, 100, 0, 0},
    {(char *)"b-100m", 1e8, 0, 0.3, 0.2, 0.4, 100, 0, 0},
    {(char *)"b-1b", 1e9, 0, 0.5, 0.4, 0.6, 100, 0, 0},
    {(char *)"b-10b", 1e10, 0, 0.7, 0.6, 0.8, 100, 0, 0}};

TEST(hand_worked_ratios)
{
    scaling_series a = series("exact_match", pa, 3), b = series("exact_match", pb, 4);
    compare_result r;
    compare_curves(&a, &b, 0, 1, &r);
    CHECK_INT(r.n, 4);
    CHECK_STR(r.m[0].model, "b-10m");
    CHECK_INT(r.m[0].censor, -1);
    CHECK(isnan(r.m[0].ratio));
    CHECK_NEAR(r.m[1].a_params, pow(10, 6.5), 1e-3);
    CHECK_NEAR(r.m[1].ratio, pow(10, 1.5), 1e-9);
    CHECK_NEAR(r.m[2].ratio, 100, 1e-9);
    CHECK_NEAR(r.m[3].ratio, pow(10, 2.5), 1e-9);
    CHECK_INT(r.n_matched, 3);
    CHECK_NEAR(r.ratio, 100, 1e-9);
    compare_result_clear(&r);

    /* Reversed: A's 10M (0.5) is where B is at 1B; A's 100M (0.9) is
     * beyond B's range. */
    compare_curves(&b, &a, 0, 1, &r);
    CHECK_STR(r.m[0].model, "a-1m");
    CHECK_INT(r.m[0].censor, -1);
    CHECK_NEAR(r.m[1].ratio, 0.01, 1e-12);
    CHECK_INT(r.m[2].censor, 1);
    CHECK_INT(r.n_matched, 1);
    compare_result_clear(&r);
}

TEST(bootstrap_ci)
{
    scaling_series a = series("exact_match", pa, 3), b = series("exact_match", pb, 4);
    compare_result r, r2;
    compare_curves(&a, &b, 2000, 7, &r);
    compare_curves(&a, &b, 2000, 7, &r2);
    /* Point estimates are not moved by the bootstrap; the CI brackets
     * them. B's 0.3 +- 0.1 (sd 0.051) on A's slope of 0.4 per decade,
     * with A's own +-0.05 and +-0.1: about +-0.3 decades. */
    CHECK_NEAR(r.m[2].ratio, 100, 1e-9);
    CHECK(r.m[2].ratio_lo < 100 && r.m[2].ratio_hi > 100);
    CHECK(r.m[2].ratio_lo > 100 / pow(10, 0.6) && r.m[2].ratio_hi < 100 * pow(10, 0.6));
    CHECK(r.m[2].ratio_lo < 100 / pow(10, 0.1) && r.m[2].ratio_hi > 100 * pow(10, 0.1));
    CHECK(r.ratio_lo < 100 && r.ratio_hi > 100);
    /* The same seed gives the same interval. */
    CHECK_NEAR(r.m[1].a_lo, r2.m[1].a_lo, 0);
    CHECK_NEAR(r.ratio_hi, r2.ratio_hi, 0);
    /* Censored rows have no ratio even with a bootstrap. */
    CHECK(isnan(r.m[0].ratio_lo));
    compare_result_clear(&r);
    compare_result_clear(&r2);

    /* Models with no uncertainty: a degenerate interval at the estimate. */
    scaling_point qa[] = {{(char *)"x", 1e6, 0, 0, 0, 0, 1, 0, 0}, {(char *)"y", 1e8, 0, 1, 1, 1, 1, 0, 0}};
    scaling_point qb[] = {{(char *)"z", 1e9, 0, 0.5, 0.5, 0.5, 1, 0, 0}};
    scaling_series sa = series("exact_match", qa, 2), sb = series("exact_match", qb, 1);
    compare_curves(&sa, &sb, 500, 1, &r);
    CHECK_NEAR(r.m[0].a_params, 1e7, 1e-3);
    CHECK_NEAR(r.m[0].a_lo, 1e7, 1e-3);
    CHECK_NEAR(r.m[0].a_hi, 1e7, 1e-3);
    CHECK_NEAR(r.ratio, 100, 1e-9);
    compare_result_clear(&r);
}

TEST(lower_is_better_and_checkpoints)
{
    /* brier_score falls as models improve: A reaches B's 0.25 halfway
     * between 0.3 (1M) and 0.2 (10M). */
    scaling_point qa[] = {{(char *)"a1", 1e6, 0, 0.3, 0.3, 0.3, 1, 0, 0},
                          {(char *)"a2", 1e7, 0, 0.2, 0.2, 0.2, 1, 0, 0},
                          {(char *)"a3", 1e8, 0, 0.1, 0.1, 0.1, 1, 0, 0}};
    scaling_point qb[] = {{(char *)"b1", 1e8, 0, 0.25, 0.25, 0.25, 1, 0, 0}};
    scaling_series a = series("brier_score", qa, 3), b = series("brier_score", qb, 1);
    compare_result r;
    compare_curves(&a, &b, 0, 1, &r);
    CHECK_INT(r.m[0].censor, 0);
    CHECK_NEAR(r.m[0].a_params, pow(10, 6.5), 1e-3);
    compare_result_clear(&r);

    /* Checkpoints of one size: the most trained (largest flops) counts. */
    scaling_point ca[] = {{(char *)"a-1m-s1", 1e6, 1e12, 0.9, 0.9, 0.9, 1, 0, 0},
                          {(char *)"a-1m-s4", 1e6, 4e12, 0.0, 0.0, 0.0, 1, 0, 0},
                          {(char *)"a-10m", 1e7, 4e13, 1.0, 1.0, 1.0, 1, 0, 0}};
    scaling_point cb[] = {{(char *)"b", 1e9, 0, 0.5, 0.5, 0.5, 1, 0, 0}};
    a = series("exact_match", ca, 3);
    b = series("exact_match", cb, 1);
    compare_curves(&a, &b, 0, 1, &r);
    CHECK_INT(r.m[0].censor, 0);
    CHECK_NEAR(r.m[0].a_params, pow(10, 6.5), 1e-3);
    compare_result_clear(&r);
}

TEST(split_families)
{
    scaling_point p[] = {{(char *)"fam-1m", 1e6, 0, 0.1, NAN, NAN, 1, 0, 0},
                         {(char *)"fam-big-1m", 1e6, 0, 0.2, NAN, NAN, 1, 0, 0},
                         {(char *)"other", 1e6, 0, 0.3, NAN, NAN, 1, 0, 0},
                         {(char *)"fam-10m", 1e7, 0, 0.4, NAN, NAN, 1, 0, 0}};
    scaling_series s = series("exact_match", p, 4);
    compare_group *g;
    int n;
    /* "fam-big" is the longer prefix of fam-big-1m. */
    compare_split_families(&s, 1, "fam-", "fam-big", &g, &n);
    CHECK_INT(n, 2);
    CHECK_STR(g[0].family, "fam-");
    CHECK_INT(g[0].s.n, 2);
    CHECK_STR(g[0].s.pts[1].model, "fam-10m");
    CHECK_STR(g[1].family, "fam-big");
    CHECK_INT(g[1].s.n, 1);
    compare_groups_free(g, n);
    compare_split_families(&s, 1, "fam-", "nobody", &g, &n);
    CHECK_INT(n, 1);
    compare_result *r;
    int nr;
    CHECK_INT(compare_families(g, n, "fam-", "nobody", 0, 1, &r, &nr), -1);
    CHECK_INT(nr, 0);
    compare_groups_free(g, n);
}

static char *write_csv(const char *text)
{
    char *dir = tl_tmpdir();
    size_t n = strlen(dir) + 16;
    char *path = malloc(n);
    snprintf(path, n, "%s/s.csv", dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(dir);
    return path;
}

TEST(csv_families)
{
    char *path = write_csv(
        "task,family,model,params,score,lo,hi,variant\n"
        "t,A,a-1m,1e6,0.1,0.05,0.15,standard\n"
        "t,A,a-10m,1e7,0.5,0.4,0.6,standard\n"
        "t,A,a-100m,1e8,0.9,0.85,0.95,standard\n"
        "\"t\",B,b-100m,1e8,0.3,0.2,0.4,standard\n"
        "t,B,\"b-1b\",1e9,0.5,0.4,0.6,standard\n"
        "t,B,b-10b,1e10,0.7,0.6,0.8,standard\n");
    compare_group *g;
    int n;
    em_err err;
    CHECK_MSG(compare_read_csv(path, &g, &n, &err) == 0, "%s", err.msg);
    CHECK_INT(n, 2);
    compare_result *r;
    int nr;
    CHECK_INT(compare_families(g, n, "A", "B", 0, 1, &r, &nr), 0);
    CHECK_INT(nr, 1);
    CHECK_NEAR(r[0].ratio, 100, 1e-9);
    CHECK_STR(r[0].a_label, "A");
    compare_result_free(r, nr);
    compare_groups_free(g, n);
    free(path);

    path = write_csv("task,model,params,score,famly\nt,a,1,0.5,A\n");
    CHECK_INT(compare_read_csv(path, &g, &n, &err), -1);
    CHECK_HAS(err.msg, "s.csv:1:25: unknown column 'famly'");
    free(path);
    path = write_csv("task,model,params,score\nt,a,1e6,0.5\nt,b,ten,0.5\n");
    CHECK_INT(compare_read_csv(path, &g, &n, &err), -1);
    CHECK_HAS(err.msg, "s.csv:3:5: field 'params': 'ten' is not a finite number");
    free(path);
    path = write_csv("task,model,score\nt,a,0.5\n");
    CHECK_INT(compare_read_csv(path, &g, &n, &err), -1);
    CHECK_HAS(err.msg, "missing column 'params'");
    free(path);
}

TEST(variants)
{
    scaling_point ps[] = {{(char *)"m1", 1e6, 0, 0.0, NAN, NAN, 1, 0, 0},
                          {(char *)"m2", 1e7, 0, 0.2, NAN, NAN, 1, 0, 0},
                          {(char *)"m3", 1e8, 0, 0.6, NAN, NAN, 1, 0, 0}};
    scaling_point pr[] = {{(char *)"m1", 1e6, 0, 0.2, NAN, NAN, 1, 0, 0},
                          {(char *)"m2", 1e7, 0, 0.6, NAN, NAN, 1, 0, 0},
                          {(char *)"m3", 1e8, 0, 0.8, NAN, NAN, 1, 0, 0}};
    scaling_series s[2] = {series("exact_match", ps, 3), series("exact_match", pr, 3)};
    s[1].variant = (char *)"retrieval";
    compare_group *g;
    int n;
    compare_from_series(s, 2, &g, &n);
    compare_result *r;
    int nr;
    /* A = retrieval reaches standard's 0.2 (10M) at 1M and its 0.6 (100M)
     * at 10M: standard needs 10x the parameters of retrieval. */
    CHECK_INT(compare_variants(g, n, "retrieval", "standard", 0, 1, &r, &nr), 0);
    CHECK_INT(nr, 1);
    CHECK_INT(r[0].m[1].censor, -1);
    CHECK_NEAR(r[0].m[2].ratio, 10, 1e-9);
    CHECK_NEAR(r[0].ratio, 10, 1e-9);
    CHECK_STR(r[0].b_label, "standard");
    compare_result_free(r, nr);
    compare_groups_free(g, n);
}

int main(void)
{
    RUN(first_crossing);
    RUN(hand_worked_ratios);
    RUN(bootstrap_ci);
    RUN(lower_is_better_and_checkpoints);
    RUN(split_families);
    RUN(csv_families);
    RUN(variants);
    return tl_summary();
}

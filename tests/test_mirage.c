/*
 * test_mirage.c - the mirage test (metrics/mirage.c) on synthetic
 * families with known causes: per-token log-probs that rise smoothly
 * (a straight line in log10 scale) under a sharp exact-match curve must
 * come out "metric-induced"; log-probs with a planted step, "not
 * explained"; a flat family "no jump"; too few models "not applicable".
 * Plus the numbers on a hand-computed three-model case.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"
#include "metrics/mirage.h"
#include "tests/testlib.h"

#define N_MOD 6
#define N_EX 200

/* Exact match of each model drawn from its examples' probabilities with
 * fixed uniforms: example e is right when u_e < exp(lp). */
static void draw_em(const double *lp, double *em)
{
    uint64_t s = 11;
    double u[N_EX];
    for (int e = 0; e < N_EX; e++)
        u[e] = em_rand01(&s);
    for (int m = 0; m < N_MOD; m++) {
        int right = 0;
        for (int e = 0; e < N_EX; e++)
            right += u[e] < exp(lp[m * N_EX + e]);
        em[m] = (double)right / N_EX;
    }
}

static const double x[N_MOD] = {6, 7, 8, 9, 10, 11};

TEST(smooth_logprobs_are_metric_induced)
{
    /* a 10-token target whose per-token log-prob is linear in x: the
     * whole target's probability is flat, then jumps at the top */
    double lp[N_MOD * N_EX], em[N_MOD];
    uint64_t s = 3;
    for (int e = 0; e < N_EX; e++) {
        double d = em_rand01(&s);
        for (int m = 0; m < N_MOD; m++) {
            double t = -0.35 * (10.5 + d - x[m]);
            lp[m * N_EX + e] = 10 * (t < 0 ? t : 0);
        }
    }
    draw_em(lp, em);
    mirage_result r;
    mirage_analyze(x, em, lp, N_MOD, N_EX, &r);
    printf("  smooth: em %.3f..%.3f, r2 %.3f, b_obs %g, b_smooth %g: %s\n",
           em[0], em[N_MOD - 1], r.r2, r.b_observed, r.b_smooth,
           mirage_verdict_name(r.verdict));
    CHECK(em[N_MOD - 1] - em[0] > 0.3);
    CHECK_INT(r.n_examples, N_EX);
    CHECK_MSG(r.verdict == MIRAGE_METRIC_INDUCED, "%s (r2 %g)",
              mirage_verdict_name(r.verdict), r.r2);
}

TEST(planted_step_is_not_explained)
{
    /* the log-probs themselves step up between 1e8 and 1e9 */
    double lp[N_MOD * N_EX], em[N_MOD];
    uint64_t s = 5;
    for (int e = 0; e < N_EX; e++) {
        double d = 0.2 * em_rand01(&s);
        for (int m = 0; m < N_MOD; m++)
            lp[m * N_EX + e] = x[m] < 9 ? -12 - d : -0.2 - d;
    }
    draw_em(lp, em);
    mirage_result r;
    mirage_analyze(x, em, lp, N_MOD, N_EX, &r);
    printf("  step: em %.3f..%.3f, r2 %.3f, b_obs %g, b_smooth %g: %s\n",
           em[0], em[N_MOD - 1], r.r2, r.b_observed, r.b_smooth,
           mirage_verdict_name(r.verdict));
    CHECK_MSG(r.verdict == MIRAGE_NOT_EXPLAINED, "%s (r2 %g)",
              mirage_verdict_name(r.verdict), r.r2);
}

TEST(flat_and_too_few)
{
    double lp[N_MOD * N_EX], em[N_MOD];
    for (int i = 0; i < N_MOD * N_EX; i++)
        lp[i] = log(0.3);
    draw_em(lp, em);
    mirage_result r;
    mirage_analyze(x, em, lp, N_MOD, N_EX, &r);
    CHECK_INT(r.verdict, MIRAGE_NO_JUMP);
    mirage_analyze(x, em, lp, 2, N_EX, &r);
    CHECK_INT(r.verdict, MIRAGE_NOT_APPLICABLE);
    CHECK(r.why != NULL);
    /* an example missing on one model is left out; none left: n/a */
    double one[N_MOD];
    for (int m = 0; m < N_MOD; m++)
        one[m] = lp[m * N_EX + 0] = m == 2 ? NAN : -1;
    mirage_analyze(x, em, one, N_MOD, 1, &r);
    CHECK_INT(r.verdict, MIRAGE_NOT_APPLICABLE);
    mirage_analyze(x, em, lp, N_MOD, N_EX, &r);
    CHECK_INT(r.n_examples, N_EX - 1);
}

/* Three models, one example whose log-prob is exactly linear in x:
 * lp = -4, -2, 0 at x = 1, 2, 3, so the smooth and direct curves are
 * exp(-4), exp(-2), 1; with em = those values, R^2 is 1. */
TEST(hand_computed)
{
    const double xx[3] = {1, 2, 3}, lp[3] = {-4, -2, 0};
    double em[3] = {exp(-4), exp(-2), 1};
    mirage_result r;
    mirage_analyze(xx, em, lp, 3, 1, &r);
    CHECK_NEAR(r.r2, 1, 1e-12);
    CHECK_NEAR(r.em_range, 1 - exp(-4), 1e-12);
    CHECK_NEAR(r.corr_logodds, 1, 1e-12);
    CHECK_NEAR(r.b_direct, r.b_smooth, 1e-12);
    CHECK_INT(r.verdict, MIRAGE_METRIC_INDUCED);
    /* em flat at 0.5 except the last: the smooth curve explains little */
    double em2[3] = {0.5, 0.5, 0.52};
    mirage_analyze(xx, em2, lp, 3, 1, &r);
    CHECK_INT(r.verdict, MIRAGE_NO_JUMP);
}

int main(void)
{
    RUN(smooth_logprobs_are_metric_induced);
    RUN(planted_step_is_not_explained);
    RUN(flat_and_too_few);
    RUN(hand_computed);
    return tl_summary();
}

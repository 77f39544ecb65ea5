/*
 * test_predict.c - back-testing (metrics/predict.c) on synthetic curves
 * with known answers: the logistic fit recovers a logistic; on a family
 * whose 10-token target has a smooth per-token log-prob, the smooth
 * predictor finds the held-back model's jump that a logistic of the
 * smaller models' exact match cannot; results are deterministic per seed;
 * too few models are refused with a reason.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"
#include "metrics/predict.h"
#include "tests/testlib.h"

#define N_MOD 6
#define N_EX 200

static const double x[N_MOD] = {6, 7, 8, 9, 10, 11};

static double sig(double z) { return 1 / (1 + exp(-z)); }

TEST(logistic_recovers_a_logistic)
{
    double y[N_MOD], xe[2] = {11, 12}, out[2];
    for (int i = 0; i < N_MOD; i++)
        y[i] = 0.8 * sig(2 * (x[i] - 8.3));
    predict_logistic(x, y, N_MOD, xe, 2, out);
    CHECK_NEAR(out[0], 0.8 * sig(2 * (11 - 8.3)), 0.02);
    CHECK_NEAR(out[1], 0.8 * sig(2 * (12 - 8.3)), 0.02);
    /* all zero: predicts (nearly) zero */
    double z[N_MOD] = {0};
    predict_logistic(x, z, N_MOD, xe, 1, out);
    CHECK(out[0] < 1e-6);
}

/* Per-token log-prob linear in x, 10 tokens: exact match drawn with
 * fixed uniforms, so it follows exp(lp) example by example. */
static void smooth_family(double *em, double *lp)
{
    uint64_t s = 3, t = 11;
    double u[N_EX];
    for (int e = 0; e < N_EX; e++)
        u[e] = em_rand01(&t);
    for (int e = 0; e < N_EX; e++) {
        double d = em_rand01(&s);
        for (int m = 0; m < N_MOD; m++) {
            double v = -0.35 * (10.5 + d - x[m]);
            lp[m * N_EX + e] = 10 * (v < 0 ? v : 0);
            em[m * N_EX + e] = u[e] < exp(lp[m * N_EX + e]);
        }
    }
}

TEST(smooth_predictor_sees_the_jump)
{
    static double em[N_MOD * N_EX], lp[N_MOD * N_EX];
    smooth_family(em, lp);
    predict_row r = {0}, r2 = {0};
    predict_run(x, em, lp, N_MOD, N_EX, 1, 200, 7, &r);
    CHECK(r.why == NULL);
    CHECK_INT(r.n_held, 1);
    printf("  held x=11: observed %.3f, direct %.3f (err %.3f), smooth %.3f "
           "(err %.3f [%.3f, %.3f])\n", r.held[0].observed, r.held[0].direct,
           r.err_direct, r.held[0].smooth, r.err_smooth, r.err_smooth_lo,
           r.err_smooth_hi);
    CHECK(r.err_smooth < 0.1);
    CHECK(r.err_smooth < r.err_direct);
    CHECK(r.held[0].obs_lo <= r.held[0].observed &&
          r.held[0].observed <= r.held[0].obs_hi);
    CHECK(r.err_smooth_lo <= r.err_smooth_hi);
    /* the same seed, the same numbers */
    predict_run(x, em, lp, N_MOD, N_EX, 1, 200, 7, &r2);
    CHECK(r2.err_direct == r.err_direct && r2.err_smooth_hi == r.err_smooth_hi &&
          r2.held[0].direct_lo == r.held[0].direct_lo);
    free(r.held);
    free(r2.held);
    /* hold 2: two held-back models, each predicted */
    predict_run(x, em, lp, N_MOD, N_EX, 2, 50, 7, &r);
    CHECK_INT(r.n_held, 2);
    CHECK_INT(r.n_fit, 4);
    free(r.held);
}

TEST(too_few_models)
{
    static double em[N_MOD * N_EX], lp[N_MOD * N_EX];
    smooth_family(em, lp);
    predict_row r = {0};
    predict_run(x, em, lp, N_MOD, N_EX, 4, 10, 1, &r);
    CHECK(r.why != NULL && r.n_held == 0);
}

int main(void)
{
    RUN(logistic_recovers_a_logistic);
    RUN(smooth_predictor_sees_the_jump);
    RUN(too_few_models);
    return tl_summary();
}

/* test_metric.c - per-example metrics and aggregation against values
 * worked by hand (the working is in the comments). */
#include <math.h>
#include <stdlib.h>

#include "metrics/metric.h"
#include "tests/testlib.h"

static double run_metric(const char *name, const metric_input *in)
{
    em_err e = {{0}};
    double v = NAN;
    int rc = metric_compute(name, in, &v, &e);
    CHECK_MSG(rc == 0, "%s failed: %s", name, e.msg);
    return v;
}

TEST(test_registry)
{
    const char *const *names = metric_names();
    int n = 0;
    for (; names[n]; n++)
        CHECK_MSG(metric_known(names[n]), "%s not known", names[n]);
    CHECK_INT(n, 14);
    CHECK(!metric_known("bleu4"));
    CHECK(!metric_known(NULL));
    CHECK_INT(metric_higher_is_better("brier_score"), 0);
    CHECK_INT(metric_higher_is_better("edit_distance"), 0);
    CHECK_INT(metric_higher_is_better("ece"), 0);
    CHECK_INT(metric_higher_is_better("sc_ece"), 0);
    CHECK_INT(metric_higher_is_better("exact_match"), 1);
    CHECK_INT(metric_higher_is_better("rougeL"), 1);
    em_err e;
    metric_input in = {0};
    double v;
    CHECK_INT(metric_compute("nope", &in, &v, &e), -1);
    CHECK_HAS(e.msg, "unknown metric 'nope'");
}

TEST(test_exact_match)
{
    const char *t[] = {"41", "42"};
    metric_input in = {.answer = "42", .targets = t, .n_targets = 2};
    CHECK_NEAR(run_metric("exact_match", &in), 1, 0);
    in.answer = "4";
    CHECK_NEAR(run_metric("exact_match", &in), 0, 0);
    in.n_targets = 0;
    em_err e;
    double v;
    CHECK_INT(metric_compute("exact_match", &in, &v, &e), -1);
    CHECK_HAS(e.msg, "target");
}

TEST(test_rouge)
{
    /* pred: the cat sat on the mat / ref: the cat is on the mat.
     * unigrams: the 2, cat, on, mat -> 5 of 6 each side: F = 5/6.
     * bigrams: the-cat, on-the, the-mat -> 3 of 5 each side: F = 0.6.
     * LCS "the cat on the mat" = 5: F = 5/6. */
    const char *pred = "the cat sat on the mat";
    const char *ref = "the cat is on the mat";
    CHECK_NEAR(metric_rouge(pred, ref, 1), 5.0 / 6, 1e-12);
    CHECK_NEAR(metric_rouge(pred, ref, 2), 0.6, 1e-12);
    CHECK_NEAR(metric_rouge(pred, ref, 0), 5.0 / 6, 1e-12);
    /* Case and punctuation vanish in the tokenizer. */
    CHECK_NEAR(metric_rouge("Hello, WORLD!", "hello world", 1), 1, 1e-12);
    CHECK_NEAR(metric_rouge("Hello, WORLD!", "hello world", 2), 1, 1e-12);
    /* P = 3/3, R = 3/5: F = 2*0.6/1.6 = 0.75. */
    CHECK_NEAR(metric_rouge("a b c", "a b c d e", 1), 0.75, 1e-12);
    /* Repeats are clipped: pred "a a a", ref "a": overlap 1, P 1/3, R 1,
     * F = 2*(1/3)/(4/3) = 0.5. */
    CHECK_NEAR(metric_rouge("a a a", "a", 1), 0.5, 1e-12);
    /* Non-ASCII letters separate words; KELVIN SIGN lower-cases to k. */
    CHECK_NEAR(metric_rouge("caf\xc3\xa9 ok", "caf ok", 1), 1, 1e-12);
    CHECK_NEAR(metric_rouge("\xe2\x84\xaa" "elvin", "kelvin", 1), 1, 1e-12);
    CHECK_NEAR(metric_rouge("", "a", 1), 0, 0);
    CHECK_NEAR(metric_rouge("", "a", 0), 0, 0);
    /* LCS of "a b c d" and "b d a c" is 2: F = 0.5. */
    CHECK_NEAR(metric_rouge("a b c d", "b d a c", 0), 0.5, 1e-12);
    /* Through metric_compute: the best target wins, output is scored. */
    const char *t[] = {"x y", "the cat is on the mat"};
    metric_input in = {.output = pred, .answer = "zzz", .targets = t,
                       .n_targets = 2};
    CHECK_NEAR(run_metric("rouge1", &in), 5.0 / 6, 1e-12);
    CHECK_NEAR(run_metric("rouge2", &in), 0.6, 1e-12);
    CHECK_NEAR(run_metric("rougeL", &in), 5.0 / 6, 1e-12);
}

TEST(test_logprob)
{
    metric_input in = {.has_target_logprob = 1, .target_logprob = -3.5,
                       .target_tokens = 7};
    CHECK_NEAR(run_metric("target_logprob", &in), -3.5, 0);
    CHECK_NEAR(run_metric("target_logprob_per_token", &in), -0.5, 1e-15);
    em_err e;
    double v;
    in.target_tokens = 0;
    CHECK_INT(metric_compute("target_logprob_per_token", &in, &v, &e), -1);
    in.has_target_logprob = 0;
    CHECK_INT(metric_compute("target_logprob", &in, &v, &e), -1);
    CHECK_HAS(e.msg, "log-probability");
}

TEST(test_multiple_choice)
{
    double lp[] = {-1, -0.5, -2};
    double sc[] = {0, 1, 0};
    metric_input in = {.choice_logprobs = lp, .choice_scores = sc,
                       .n_choices = 3};
    CHECK_NEAR(run_metric("multiple_choice_grade", &in), 1, 0);
    sc[1] = 0.25; /* partial credit: the score of the argmax choice */
    CHECK_NEAR(run_metric("multiple_choice_grade", &in), 0.25, 0);
    /* Ties go to the first choice. */
    double lt[] = {-1, -1};
    double s1[] = {1, 0}, s2[] = {0, 1};
    metric_input t1 = {.choice_logprobs = lt, .choice_scores = s1,
                       .n_choices = 2};
    CHECK_NEAR(run_metric("multiple_choice_grade", &t1), 1, 0);
    t1.choice_scores = s2;
    CHECK_NEAR(run_metric("multiple_choice_grade", &t1), 0, 0);
    em_err e;
    double v;
    t1.choice_scores = NULL;
    CHECK_INT(metric_compute("multiple_choice_grade", &t1, &v, &e), -1);
    CHECK_HAS(e.msg, "target_scores");
}

TEST(test_brier_confidence)
{
    /* p = (0.7, 0.2, 0.1), y = (1, 0, 0):
     * 0.3^2 + 0.2^2 + 0.1^2 = 0.09 + 0.04 + 0.01 = 0.14. */
    double lp[] = {log(0.7), log(0.2), log(0.1)};
    double sc[] = {1, 0, 0};
    metric_input in = {.choice_logprobs = lp, .choice_scores = sc,
                       .n_choices = 3};
    CHECK_NEAR(run_metric("brier_score", &in), 0.14, 1e-12);
    CHECK_NEAR(run_metric("mc_confidence", &in), 0.7, 1e-12);
    /* Scores are normalised to sum 1: (2, 2, 0) -> y = (.5, .5, 0):
     * 0.2^2 + 0.3^2 + 0.1^2 = 0.14. */
    double sc2[] = {2, 2, 0};
    in.choice_scores = sc2;
    CHECK_NEAR(run_metric("brier_score", &in), 0.14, 1e-12);
    /* Log-probs need not be normalised: (-50, -50) -> p = (.5, .5);
     * y = (1, 0): 0.25 + 0.25 = 0.5. */
    double lp2[] = {-50, -50}, sc3[] = {1, 0};
    metric_input in2 = {.choice_logprobs = lp2, .choice_scores = sc3,
                        .n_choices = 2};
    CHECK_NEAR(run_metric("brier_score", &in2), 0.5, 1e-12);
    CHECK_NEAR(run_metric("mc_confidence", &in2), 0.5, 1e-12);
    /* Very negative log-probs do not underflow to 0/0. */
    double lp3[] = {-2000, -2001};
    in2.choice_logprobs = lp3;
    double c = run_metric("mc_confidence", &in2);
    CHECK_NEAR(c, 1 / (1 + exp(-1)), 1e-12);
}

TEST(test_edit_distance)
{
    CHECK_INT(metric_edit_distance("the cat sat", "the cat sat down"), 1);
    CHECK_INT(metric_edit_distance("a b c", "c b a"), 2);
    CHECK_INT(metric_edit_distance("", "a b"), 2);
    CHECK_INT(metric_edit_distance("  x\ty \n", "x y"), 0);
    CHECK_INT(metric_edit_distance("kitten sitting", "sitting kitten on"), 2);
    const char *t[] = {"a b c d", "a x c"};
    metric_input in = {.output = "a b c", .targets = t, .n_targets = 2};
    CHECK_NEAR(run_metric("edit_distance", &in), 1, 0);
}

TEST(test_bootstrap_determinism)
{
    double v[50];
    uint64_t st = 11;
    for (int i = 0; i < 50; i++)
        v[i] = em_rand01(&st) < 0.4;
    metric_summary a, b, c;
    metric_bootstrap(v, 50, 1000, 0.95, 42, &a);
    metric_bootstrap(v, 50, 1000, 0.95, 42, &b);
    metric_bootstrap(v, 50, 1000, 0.95, 43, &c);
    CHECK_INT(a.n, 50);
    CHECK(a.mean == b.mean && a.lo == b.lo && a.hi == b.hi);
    CHECK(a.lo != c.lo || a.hi != c.hi);
    CHECK(a.lo < a.mean && a.mean < a.hi);
    double s = 0;
    for (int i = 0; i < 50; i++)
        s += v[i];
    CHECK_NEAR(a.mean, s / 50, 1e-15);
    /* A constant sample has a zero-width interval. */
    double k[4] = {0.5, 0.5, 0.5, 0.5};
    metric_bootstrap(k, 4, 100, 0.95, 1, &a);
    CHECK(a.lo == 0.5 && a.hi == 0.5);
    metric_bootstrap(k, 0, 100, 0.95, 1, &a);
    CHECK(isnan(a.mean) && a.n == 0);
}

/* 95% intervals of Bernoulli(0.3) samples of 100 should cover 0.3 about
 * 95% of the time; a percentile bootstrap runs a little under. */
TEST(test_bootstrap_coverage)
{
    uint64_t st = 2024;
    int covered = 0, trials = 200;
    double v[100], width = 0;
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < 100; i++)
            v[i] = em_rand01(&st) < 0.3;
        metric_summary s;
        metric_bootstrap(v, 100, 400, 0.95, (uint64_t)t, &s);
        covered += s.lo <= 0.3 && 0.3 <= s.hi;
        width += s.hi - s.lo;
    }
    double cov = (double)covered / trials;
    CHECK_MSG(cov > 0.88 && cov < 0.99, "coverage %.3f", cov);
    /* Normal approximation: 2 * 1.96 * sqrt(0.21 / 100) = 0.180. */
    CHECK_NEAR(width / trials, 0.180, 0.02);
}

TEST(test_ece)
{
    /* Bin 9: conf .9 .9, correct 1 0 -> |0.5 - 0.9| * 2/4 = 0.2.
     * Bin 2: conf .2 .2, correct 0 0 -> |0 - 0.2| * 2/4 = 0.1. */
    double conf[] = {0.9, 0.9, 0.2, 0.2}, ok[] = {1, 0, 0, 0};
    CHECK_NEAR(metric_ece(conf, ok, 4, 10), 0.3, 1e-12);
    /* Confidence 1 lands in the last bin; perfectly calibrated = 0. */
    double c1[] = {1.0, 0.5, 0.5}, k1[] = {1, 1, 0};
    CHECK_NEAR(metric_ece(c1, k1, 3, 10), 0, 1e-12);
    /* One bin: |mean acc - mean conf| = |0.25 - 0.55|. */
    CHECK_NEAR(metric_ece(conf, ok, 4, 1), 0.3, 1e-12);
    CHECK_NEAR(metric_ece(conf, ok, 0, 10), 0, 0);
}

TEST(test_normalize)
{
    CHECK_NEAR(metric_normalize(0.5, 0.25, 1), 100.0 / 3, 1e-12);
    CHECK_NEAR(metric_normalize(0.25, 0.25, 1), 0, 0);
    CHECK_NEAR(metric_normalize(1, 0.25, 1), 100, 1e-12);
    CHECK_NEAR(metric_normalize(0.7, 0, 0), 0.7, 0); /* no range: raw */
    CHECK_NEAR(metric_normalize(0.2, 1, 0), 80, 1e-12); /* lower is better */
}

/* lm-eval's acc_norm / acc_bytes on a hand-computed case: log-probs
 * -1, -3, -2.4 of "a", "bbbb", "cc\u00e7" (3 characters, 4 bytes):
 * argmax of lp is "a"; of lp/chars (-1, -0.75, -0.8) "bbbb"; of lp/bytes
 * (-1, -0.75, -0.6) "cc\u00e7". */
TEST(test_acc_norm_bytes)
{
    const char *texts[] = {"a", "bbbb", "cc\xc3\xa7"};
    double lp[] = {-1.0, -3.0, -2.4}, sc[] = {0, 0, 1}, v;
    metric_input in = {0};
    in.choice_logprobs = lp;
    in.choice_scores = sc;
    in.choice_texts = texts;
    in.n_choices = 3;
    em_err err;
    CHECK(metric_compute("multiple_choice_grade", &in, &v, &err) == 0 && v == 0);
    CHECK(metric_compute("acc_norm", &in, &v, &err) == 0 && v == 0);
    CHECK(metric_compute("acc_bytes", &in, &v, &err) == 0 && v == 1);
    double sc2[] = {0, 1, 0};
    in.choice_scores = sc2;
    CHECK(metric_compute("acc_norm", &in, &v, &err) == 0 && v == 1);
    CHECK(metric_compute("acc_bytes", &in, &v, &err) == 0 && v == 0);
    /* no texts, or an empty choice: errors that say so */
    in.choice_texts = NULL;
    CHECK(metric_compute("acc_norm", &in, &v, &err) != 0 && strstr(err.msg, "texts"));
    const char *empty[] = {"a", "", "c"};
    in.choice_texts = empty;
    CHECK(metric_compute("acc_bytes", &in, &v, &err) != 0 && strstr(err.msg, "empty"));
    /* mutual information: lp - unconditional lp = -1+0.2, -3+3.5, -2.4+2.0
     * = -0.8, 0.5, -0.4: choice 1 */
    double un[] = {-0.2, -3.5, -2.0};
    in.choice_scores = sc2;
    CHECK(metric_compute("acc_mutual_info", &in, &v, &err) != 0 &&
          strstr(err.msg, "unconditional"));
    in.choice_uncond_logprobs = un;
    CHECK(metric_compute("acc_mutual_info", &in, &v, &err) == 0 && v == 1);
    in.choice_scores = sc;
    CHECK(metric_compute("acc_mutual_info", &in, &v, &err) == 0 && v == 0);
}

int main(void)
{
    RUN(test_registry);
    RUN(test_exact_match);
    RUN(test_rouge);
    RUN(test_logprob);
    RUN(test_acc_norm_bytes);
    RUN(test_multiple_choice);
    RUN(test_brier_confidence);
    RUN(test_edit_distance);
    RUN(test_bootstrap_determinism);
    RUN(test_bootstrap_coverage);
    RUN(test_ece);
    RUN(test_normalize);
    return tl_summary();
}

/*
 * test_vote.c - majority vote, tie-breaks, pass@k and calibration bins
 * against hand-worked cases.
 */
#include "metrics/vote.h"
#include "tests/testlib.h"

TEST(plurality_and_abstentions)
{
    const char *a[] = {"7", "", "5", "7", NULL, "5", "7", "9"};
    vote_result r;
    vote_majority(a, NULL, 8, &r);
    CHECK_INT(r.winner, 0);
    CHECK_INT(r.votes, 3);
    CHECK_INT(r.n, 8);
    CHECK_NEAR(r.agreement, 3.0 / 8, 1e-12); /* abstentions count in n */
}

TEST(tie_first_in_sample_order)
{
    /* 3 and 5 have two votes each; no log-probs: 3 came first. */
    const char *a[] = {"3", "5", "3", "", "5", "7"};
    vote_result r;
    vote_majority(a, NULL, 6, &r);
    CHECK_INT(r.winner, 0);
    CHECK_INT(r.votes, 2);
    CHECK_NEAR(r.agreement, 2.0 / 6, 1e-12);
    /* Equal log-prob sums fall through to sample order as well. */
    double flat[] = {-1, -1, -1, 0, -1, -1};
    vote_majority(a, flat, 6, &r);
    CHECK_INT(r.winner, 0);
}

TEST(tie_highest_summed_logprob)
{
    const char *a[] = {"3", "5", "3", "", "5", "7"};
    double lp[] = {-1, -0.5, -1, 0, -0.5, -0.1};
    vote_result r;
    vote_majority(a, lp, 6, &r);
    CHECK_INT(r.winner, 1);   /* 5: -1.0 beats 3: -2.0; 7 has one vote */
    CHECK_INT(r.votes, 2);
}

TEST(nothing_extracted)
{
    const char *a[] = {"", "", NULL};
    vote_result r;
    vote_majority(a, NULL, 3, &r);
    CHECK_INT(r.winner, -1);
    CHECK_INT(r.votes, 0);
    CHECK_NEAR(r.agreement, 0, 0);
    vote_majority(a, NULL, 0, &r);
    CHECK_INT(r.n, 0);
}

TEST(pass_at_k_hand_worked)
{
    /* n=5, c=2: C(3,k)/C(5,k) = 3/5, 3/10, 1/10, then 0. */
    CHECK_NEAR(vote_pass_at_k(5, 2, 1), 0.4, 1e-12);
    CHECK_NEAR(vote_pass_at_k(5, 2, 2), 0.7, 1e-12);
    CHECK_NEAR(vote_pass_at_k(5, 2, 3), 0.9, 1e-12);
    CHECK_NEAR(vote_pass_at_k(5, 2, 4), 1.0, 0);
    CHECK_NEAR(vote_pass_at_k(5, 2, 5), 1.0, 0);
    /* n=10, c=3, k=5: 1 - C(7,5)/C(10,5) = 1 - 21/252. */
    CHECK_NEAR(vote_pass_at_k(10, 3, 5), 1 - 21.0 / 252, 1e-12);
    CHECK_NEAR(vote_pass_at_k(8, 0, 4), 0, 0);
    CHECK_NEAR(vote_pass_at_k(8, 8, 1), 1, 0);
    /* pass@1 is the fraction correct. */
    CHECK_NEAR(vote_pass_at_k(8, 3, 1), 3.0 / 8, 1e-12);
    CHECK(isnan(vote_pass_at_k(4, 1, 5)));
    CHECK(isnan(vote_pass_at_k(4, 1, 0)));
    CHECK(isnan(vote_pass_at_k(0, 0, 1)));
}

TEST(calibration_bins)
{
    double conf[] = {0.2, 0.25, 0.9, 1.0, 0.55};
    double ok[] = {0, 1, 1, 1, 0};
    int count[10];
    double acc[10];
    vote_calibration(conf, ok, 5, 10, count, acc);
    CHECK_INT(count[2], 2);
    CHECK_NEAR(acc[2], 0.5, 1e-12);
    CHECK_INT(count[9], 2);   /* 1.0 goes into the last bin */
    CHECK_NEAR(acc[9], 1.0, 1e-12);
    CHECK_INT(count[5], 1);
    CHECK_NEAR(acc[5], 0.0, 0);
    CHECK_INT(count[0], 0);
    CHECK(isnan(acc[0]));
}

int main(void)
{
    RUN(plurality_and_abstentions);
    RUN(tie_first_in_sample_order);
    RUN(tie_highest_summed_logprob);
    RUN(nothing_extracted);
    RUN(pass_at_k_hand_worked);
    RUN(calibration_bins);
    return tl_summary();
}

/*
 * metric.h - per-example metrics and their aggregation over a dataset.
 *
 * Owns: exact match, BLEU (sacrebleu's default: 13a tokenisation, n=4,
 * brevity penalty; exponential smoothing for sentence BLEU), ROUGE-1/2/L F,
 * target log-probability (sum and per token), multiple-choice grade
 * (BIG-bench target_scores semantics), Brier score, expected calibration
 * error, token edit distance; mean, seeded bootstrap CI and normalisation.
 *
 * Metric names used in task files and the store:
 *   exact_match, bleu, rouge1, rouge2, rougeL, target_logprob,
 *   target_logprob_per_token, multiple_choice_grade, brier_score,
 *   mc_confidence (max normalised choice probability; feeds ece),
 *   edit_distance, acc_norm and acc_bytes (lm-evaluation-harness's:
 *   the grade of the choice whose log-prob divided by its length in
 *   characters, or in UTF-8 bytes, is largest), acc_mutual_info (the
 *   choice whose log P(choice | question) - log P(choice | unconditional
 *   prefix) is largest)
 */
#ifndef EMERGE_METRIC_H
#define EMERGE_METRIC_H

#include "base/common.h"

/* Everything a metric may look at for one example. Unused parts are NULL/0. */
typedef struct metric_input {
    const char *output;          /* raw model output (last pass) */
    const char *answer;          /* extracted and normalised answer */
    const char *const *targets;  /* normalised acceptable answers */
    int n_targets;
    int has_target_logprob;
    double target_logprob;       /* sum over target tokens */
    int target_tokens;
    const double *choice_logprobs; /* n_choices */
    const int *choice_tokens;
    const double *choice_scores;   /* BIG-bench target_scores */
    const char *const *choice_texts; /* the choices as the task gives
                                        them (acc_norm, acc_bytes) */
    const double *choice_uncond_logprobs; /* each choice's log-prob
                                        without the question
                                        (acc_mutual_info), or NULL */
    int n_choices;
} metric_input;

/* 1 if name is a known per-example metric. */
int metric_known(const char *name);
/* NULL-terminated list of per-example metric names (for suggestions). */
const char *const *metric_names(void);
/* Computes one metric; -1 with err when the input lacks what it needs. */
int metric_compute(const char *name, const metric_input *in, double *out,
                   em_err *err);

/* Higher is better for every metric except these (brier_score,
 * edit_distance, ece): returns 0 for them. */
int metric_higher_is_better(const char *name);

typedef struct metric_summary {
    double mean;
    double lo, hi; /* bootstrap CI */
    int n;
} metric_summary;

/* Mean and percentile bootstrap CI at `level` (e.g. 0.95) with n_boot
 * resamples from a SplitMix64 stream seeded by seed. */
void metric_bootstrap(const double *v, int n, int n_boot, double level,
                      uint64_t seed, metric_summary *out);

/* Expected calibration error with n_bins equal-width confidence bins. */
double metric_ece(const double *confidence, const double *correct, int n,
                  int n_bins);

/* 100*(s-low)/(high-low). */
double metric_normalize(double s, double low, double high);

/* BLEU. */
typedef struct metric_bleu_stats {
    double matches[4], totals[4];
    double hyp_len, ref_len;
} metric_bleu_stats;

typedef struct metric_bleu {
    double score;         /* 0..100 */
    double precisions[4]; /* 0..100 */
    double bp;
    double hyp_len, ref_len;
} metric_bleu;

/* Adds one segment's n-gram statistics (13a tokens, closest ref length;
 * zero-initialise st first). */
void metric_bleu_add(metric_bleu_stats *st, const char *hyp,
                     const char *const *refs, int n_refs);
/* Corpus BLEU of the accumulated statistics (exp smoothing, no effective
 * order), as sacrebleu's corpus_bleu; definitions in metrics/README.md. */
void metric_bleu_corpus(const metric_bleu_stats *st, metric_bleu *out);
/* Sentence BLEU 0..100, as sacrebleu's sentence_bleu (effective order). */
double metric_bleu_sentence(const char *hyp, const char *const *refs, int n_refs);
/* sacrebleu 13a tokenisation; malloc'd. */
char *metric_tokenize_13a(const char *s);

/* ROUGE F-measure of pred against one reference (rouge-score's default
 * tokenizer): n >= 1 for ROUGE-n, n = 0 for ROUGE-L (LCS). 0..1. */
double metric_rouge(const char *pred, const char *ref, int n);
/* Levenshtein distance between the whitespace tokens of a and b. */
int metric_edit_distance(const char *a, const char *b);

#endif

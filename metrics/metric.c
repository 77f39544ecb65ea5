/*
 * metric.c - the per-example metrics and their registry.
 *
 * Owns: the table of metric names (metric_known, metric_names,
 * metric_higher_is_better), metric_compute and the metrics that are a few
 * lines each: exact match, target log-probability, the multiple-choice
 * family (grade, Brier score, confidence) and token edit distance. BLEU
 * and ROUGE live in bleu.c and rouge.c; aggregation in aggregate.c.
 * Exact definitions, with the reasons for each choice, are in
 * metrics/README.md.
 */
#include "metrics/metric.h"

#include "base/utf8.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef int (*metric_fn)(const metric_input *in, double *out, em_err *err);

/* Text that text metrics score: the raw output when there is one (BLEU and
 * ROUGE compare generations, not extracted answers), else the answer. */
static const char *scored_text(const metric_input *in)
{
    return in->output ? in->output : in->answer;
}

static int need_targets(const char *name, const metric_input *in,
                        em_err *err)
{
    if (!in->targets || in->n_targets < 1)
        return em_errorf(err, "metric %s needs at least one target", name);
    if (!scored_text(in))
        return em_errorf(err, "metric %s needs a model output", name);
    return 0;
}

static int m_exact_match(const metric_input *in, double *out, em_err *err)
{
    if (!in->targets || in->n_targets < 1)
        return em_errorf(err, "metric exact_match needs at least one target");
    if (!in->answer)
        return em_errorf(err, "metric exact_match needs an extracted answer");
    *out = 0;
    for (int i = 0; i < in->n_targets; i++)
        if (in->targets[i] && !strcmp(in->answer, in->targets[i]))
            *out = 1;
    return 0;
}

static int m_bleu(const metric_input *in, double *out, em_err *err)
{
    if (need_targets("bleu", in, err))
        return -1;
    *out = metric_bleu_sentence(scored_text(in), in->targets, in->n_targets);
    return 0;
}

/* rouge-score's score_multi: the best F-measure over the targets. */
static int rouge_best(const char *name, int n, const metric_input *in,
                      double *out, em_err *err)
{
    if (need_targets(name, in, err))
        return -1;
    *out = 0;
    for (int i = 0; i < in->n_targets; i++) {
        double f = metric_rouge(scored_text(in), in->targets[i], n);
        if (f > *out)
            *out = f;
    }
    return 0;
}

static int m_rouge1(const metric_input *in, double *out, em_err *err)
{
    return rouge_best("rouge1", 1, in, out, err);
}

static int m_rouge2(const metric_input *in, double *out, em_err *err)
{
    return rouge_best("rouge2", 2, in, out, err);
}

static int m_rougeL(const metric_input *in, double *out, em_err *err)
{
    return rouge_best("rougeL", 0, in, out, err);
}

static int m_target_logprob(const metric_input *in, double *out, em_err *err)
{
    if (!in->has_target_logprob)
        return em_errorf(err, "metric target_logprob needs the target's "
                              "log-probability, which this variant's requests "
                              "do not include");
    *out = in->target_logprob;
    return 0;
}

static int m_target_logprob_per_token(const metric_input *in, double *out,
                                      em_err *err)
{
    if (!in->has_target_logprob)
        return em_errorf(err, "metric target_logprob_per_token needs the "
                              "target's log-probability, which this variant's "
                              "requests do not include");
    if (in->target_tokens < 1)
        return em_errorf(err, "metric target_logprob_per_token: the target "
                              "has %d tokens", in->target_tokens);
    *out = in->target_logprob / in->target_tokens;
    return 0;
}

static int need_choices(const char *name, const metric_input *in,
                        int scores, em_err *err)
{
    if (!in->choice_logprobs || in->n_choices < 1)
        return em_errorf(err, "metric %s needs choice log-probabilities",
                         name);
    if (scores && !in->choice_scores)
        return em_errorf(err, "metric %s needs choice scores (target_scores)",
                         name);
    return 0;
}

/* Index of the most likely choice; ties go to the first. */
static int argmax_choice(const metric_input *in)
{
    int best = 0;
    for (int i = 1; i < in->n_choices; i++)
        if (in->choice_logprobs[i] > in->choice_logprobs[best])
            best = i;
    return best;
}

/* p_i = softmax(choice log-probs), computed stably. */
static void choice_probs(const metric_input *in, double *p)
{
    double mx = in->choice_logprobs[argmax_choice(in)], z = 0;
    for (int i = 0; i < in->n_choices; i++)
        z += p[i] = exp(in->choice_logprobs[i] - mx);
    for (int i = 0; i < in->n_choices; i++)
        p[i] /= z;
}

static int m_multiple_choice_grade(const metric_input *in, double *out,
                                   em_err *err)
{
    if (need_choices("multiple_choice_grade", in, 1, err))
        return -1;
    *out = in->choice_scores[argmax_choice(in)];
    return 0;
}

/* lm-evaluation-harness's length-normalised accuracies (lm_eval/api/
 * task.py, process_results of multiple_choice): the choice with the
 * largest log-prob / length wins, the length of the choice string as the
 * task gives it (no joining space) in characters (acc_norm: Python's
 * len, code points) or in UTF-8 bytes (acc_bytes); its grade is the
 * choice's target score, as for multiple_choice_grade. */
static int m_acc_len(const char *name, const metric_input *in, int bytes,
                     double *out, em_err *err)
{
    if (need_choices(name, in, 1, err))
        return -1;
    if (!in->choice_texts)
        return em_errorf(err, "metric %s needs the choices' texts", name);
    int best = -1;
    double best_v = 0;
    for (int i = 0; i < in->n_choices; i++) {
        const char *c = in->choice_texts[i];
        long len = bytes ? (long)strlen(c) : utf8_count(c, strlen(c));
        if (len <= 0)
            return em_errorf(err, "metric %s: choice %d is empty (no length "
                             "to divide by)", name, i);
        double v = in->choice_logprobs[i] / (double)len;
        if (best < 0 || v > best_v)
            best = i, best_v = v;
    }
    *out = in->choice_scores[best];
    return 0;
}

/* lm-eval's acc_mutual_info: argmax of log P(c | context) - log P(c |
 * unconditional context), graded by the choice's target score. */
static int m_acc_mutual_info(const metric_input *in, double *out, em_err *err)
{
    if (need_choices("acc_mutual_info", in, 1, err))
        return -1;
    if (!in->choice_uncond_logprobs)
        return em_errorf(err, "metric acc_mutual_info needs the choices' "
                         "unconditional log-probabilities");
    int best = 0;
    for (int i = 1; i < in->n_choices; i++)
        if (in->choice_logprobs[i] - in->choice_uncond_logprobs[i] >
            in->choice_logprobs[best] - in->choice_uncond_logprobs[best])
            best = i;
    *out = in->choice_scores[best];
    return 0;
}

static int m_acc_norm(const metric_input *in, double *out, em_err *err)
{
    return m_acc_len("acc_norm", in, 0, out, err);
}

static int m_acc_bytes(const metric_input *in, double *out, em_err *err)
{
    return m_acc_len("acc_bytes", in, 1, out, err);
}

/* Sum over choices of (p_i - y_i)^2 with y = target_scores / their sum
 * (all zero when every score is 0). */
static int m_brier_score(const metric_input *in, double *out, em_err *err)
{
    if (need_choices("brier_score", in, 1, err))
        return -1;
    double *p = em_malloc(sizeof(double) * (size_t)in->n_choices);
    double ysum = 0, s = 0;
    choice_probs(in, p);
    for (int i = 0; i < in->n_choices; i++)
        ysum += in->choice_scores[i];
    for (int i = 0; i < in->n_choices; i++) {
        double y = ysum != 0 ? in->choice_scores[i] / ysum : 0;
        s += (p[i] - y) * (p[i] - y);
    }
    free(p);
    *out = s;
    return 0;
}

static int m_mc_confidence(const metric_input *in, double *out, em_err *err)
{
    if (need_choices("mc_confidence", in, 0, err))
        return -1;
    double *p = em_malloc(sizeof(double) * (size_t)in->n_choices);
    choice_probs(in, p);
    *out = p[argmax_choice(in)];
    free(p);
    return 0;
}

/* Whitespace tokens of s as [start, len) pairs; returns the count. */
static int split_ws(const char *s, const char ***start, int **len)
{
    int n = 0, cap = 8;
    *start = em_malloc(sizeof(char *) * (size_t)cap);
    *len = em_malloc(sizeof(int) * (size_t)cap);
    for (const char *p = s; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *b = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (n == cap) {
            cap *= 2;
            *start = em_realloc(*start, sizeof(char *) * (size_t)cap);
            *len = em_realloc(*len, sizeof(int) * (size_t)cap);
        }
        (*start)[n] = b;
        (*len)[n++] = (int)(p - b);
    }
    return n;
}

int metric_edit_distance(const char *a, const char *b)
{
    const char **as, **bs;
    int *al, *bl;
    int na = split_ws(a ? a : "", &as, &al);
    int nb = split_ws(b ? b : "", &bs, &bl);
    int *row = em_malloc(sizeof(int) * (size_t)(nb + 1));
    for (int j = 0; j <= nb; j++)
        row[j] = j;
    for (int i = 1; i <= na; i++) {
        int diag = row[0]; /* d[i-1][j-1] */
        row[0] = i;
        for (int j = 1; j <= nb; j++) {
            int same = al[i - 1] == bl[j - 1] &&
                       !memcmp(as[i - 1], bs[j - 1], (size_t)al[i - 1]);
            int best = diag + !same;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = row[j];
            row[j] = best;
        }
    }
    int d = row[nb];
    free(row);
    free(as);
    free(al);
    free(bs);
    free(bl);
    return d;
}

static int m_edit_distance(const metric_input *in, double *out, em_err *err)
{
    if (need_targets("edit_distance", in, err))
        return -1;
    for (int i = 0; i < in->n_targets; i++) {
        double d = metric_edit_distance(scored_text(in), in->targets[i]);
        if (i == 0 || d < *out)
            *out = d;
    }
    return 0;
}

typedef struct metric_def {
    const char *name;
    metric_fn fn;
    int higher_is_better;
} metric_def;

static const metric_def metrics[] = {
    {"exact_match", m_exact_match, 1},
    {"bleu", m_bleu, 1},
    {"rouge1", m_rouge1, 1},
    {"rouge2", m_rouge2, 1},
    {"rougeL", m_rougeL, 1},
    {"target_logprob", m_target_logprob, 1},
    {"target_logprob_per_token", m_target_logprob_per_token, 1},
    {"multiple_choice_grade", m_multiple_choice_grade, 1},
    {"brier_score", m_brier_score, 0},
    {"mc_confidence", m_mc_confidence, 1},
    {"edit_distance", m_edit_distance, 0},
    {"acc_norm", m_acc_norm, 1},
    {"acc_bytes", m_acc_bytes, 1},
    {"acc_mutual_info", m_acc_mutual_info, 1},
};
#define N_METRICS (int)(sizeof metrics / sizeof metrics[0])

static const metric_def *find_metric(const char *name)
{
    for (int i = 0; name && i < N_METRICS; i++)
        if (!strcmp(metrics[i].name, name))
            return &metrics[i];
    return NULL;
}

int metric_known(const char *name)
{
    return find_metric(name) != NULL;
}

/* Kept as a constant (not filled lazily from the table) so that threads
 * may call it freely; test_metric checks that it matches the table. */
static const char *const names[N_METRICS + 1] = {
    "exact_match", "bleu", "rouge1", "rouge2", "rougeL", "target_logprob",
    "target_logprob_per_token", "multiple_choice_grade", "brier_score",
    "mc_confidence", "edit_distance", "acc_norm", "acc_bytes",
    "acc_mutual_info", NULL,
};

const char *const *metric_names(void)
{
    return names;
}

int metric_compute(const char *name, const metric_input *in, double *out,
                   em_err *err)
{
    const metric_def *m = find_metric(name);
    if (!m)
        return em_errorf(err, "unknown metric '%s'", name ? name : "(null)");
    return m->fn(in, out, err);
}

int metric_higher_is_better(const char *name)
{
    /* Dataset-level calibration errors are not per-example metrics, so they
     * are not in the table; both fall as calibration improves. */
    if (name && (!strcmp(name, "ece") || !strcmp(name, "sc_ece")))
        return 0;
    const metric_def *m = find_metric(name);
    return m ? m->higher_is_better : 1;
}

/*
 * sweep_score.c - the scores of a finished item: its answers gathered into
 * a metric_input (the generated output and its extracted answer, the
 * choices' and the target's log-likelihoods), every metric of the task
 * computed and stored (a metric that cannot be computed is named once),
 * and for self-consistency the majority vote over the samples' answers
 * with its own metrics (sc_agreement, sc_correct, pass@k).
 *
 * An item's scores are replaced as a whole, so a rescored or resumed item
 * never mixes old and new values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/store.h"
#include "harness/sweep_int.h"
#include "harness/task.h"
#include "metrics/metric.h"
#include "metrics/vote.h"

/* ---- scoring ------------------------------------------------------------------ */

static void warn_once(run_ctx *c, const pair *p, const char *metric, const char *why)
{
    run_notes *nt = &c->notes;
    em_buf b = {0};
    em_buf_printf(&b, "%s/%s/%s", p->t->name, p->v->name, metric);
    for (int i = 0; i < nt->n_warned; i++)
        if (!strcmp(nt->warned[i], b.s)) {
            em_buf_free(&b);
            return;
        }
    nt->warned = em_realloc(nt->warned,
                            sizeof *nt->warned * (size_t)(nt->n_warned + 1));
    nt->warned[nt->n_warned++] = em_buf_take(&b);
    if (!c->o->quiet)
        fprintf(stderr, "emerge: note: task %s, variant %s: metric %s not "
                "computed: %s\n", p->t->name, p->v->name, metric, why);
}

/* Why metric m could not be computed on pair p: the metric's own reason,
 * unless the variant is the cause (the note must say what is true: a
 * native model does score log-probabilities). */
static const char *why_not(const pair *p, const char *m, const char *reason)
{
    if (!strncmp(m, "target_logprob", 14) && p->v->kind == VARIANT_ZERO_SHOT_COT)
        return "zero_shot_cot reads its answer from a second pass over the "
               "model's own rationale, so there is no fixed prompt whose target "
               "log-probability to score (the standard and cot variants have it)";
    return reason;
}

typedef struct scored {
    metric_input in;
    char *answer;          /* stored with the scores */
    char **norm_targets;
    double *choice_lp;
    int *choice_tok;
    double *uncond_lp;     /* the choices without the question, or NULL */
    int gen_choice;        /* multiple choice answered by generation */
    int matched;           /* that answer's choice, -1 none */
} scored;

static void scored_free(scored *s, int n_targets)
{
    for (int i = 0; i < n_targets; i++)
        free(s->norm_targets[i]);
    free(s->norm_targets);
    free(s->choice_lp);
    free(s->choice_tok);
    free(s->uncond_lp);
    free(s->answer);
}

static void fill_targets(const task *t, const task_example *e, scored *s)
{
    s->norm_targets = em_calloc((size_t)e->n_targets + 1, sizeof *s->norm_targets);
    for (int i = 0; i < e->n_targets; i++)
        s->norm_targets[i] = task_normalize(e->targets[i], t->answer.norm);
    s->in.targets = (const char *const *)s->norm_targets;
    s->in.n_targets = e->n_targets;
    s->in.choice_scores = e->choice_scores;
}

static void fill_input(const task *t, const task_example *e, const item *it,
                       scored *s)
{
    metric_input *in = &s->in;
    int has_choice_lp = 0;
    fill_targets(t, e, s);
    if (e->n_choices > 0) {
        s->choice_lp = em_calloc((size_t)e->n_choices, sizeof *s->choice_lp);
        s->choice_tok = em_calloc((size_t)e->n_choices, sizeof *s->choice_tok);
    }
    for (int i = 0; i < it->n_reqs; i++) {
        const task_request *r = &it->reqs[i];
        const slot *sl = &it->slots[i];
        if (r->kind == TASK_REQ_GENERATE) {
            in->output = sl->text ? sl->text : "";
        } else if (r->choice == -1) {
            in->has_target_logprob = 1;
            in->target_logprob = sl->logprob;
            in->target_tokens = sl->n_tokens;
        } else if (TASK_IS_UNCOND(r->choice) &&
                   TASK_UNCOND_INDEX(r->choice) < e->n_choices) {
            if (!s->uncond_lp)
                s->uncond_lp = em_calloc((size_t)e->n_choices, sizeof *s->uncond_lp);
            s->uncond_lp[TASK_UNCOND_INDEX(r->choice)] = sl->logprob;
        } else if (r->choice >= 0 && r->choice < e->n_choices) {
            s->choice_lp[r->choice] = sl->logprob;
            s->choice_tok[r->choice] = sl->n_tokens;
            has_choice_lp = 1;
        }
    }
    s->matched = -1;
    if (has_choice_lp) {
        int best = 0;
        for (int i = 1; i < e->n_choices; i++)
            if (s->choice_lp[i] > s->choice_lp[best])
                best = i;
        in->choice_logprobs = s->choice_lp;
        in->choice_tokens = s->choice_tok;
        in->choice_texts = (const char *const *)e->choices;
        in->choice_uncond_logprobs = s->uncond_lp;
        in->n_choices = e->n_choices;
        s->answer = task_normalize(e->choices[best], t->answer.norm);
    } else if (in->output) {
        s->answer = task_extract_answer(t, in->output);
        s->gen_choice = e->n_choices > 0;
        for (int i = 0; s->gen_choice && i < e->n_choices && s->matched < 0; i++) {
            char *c = task_normalize(e->choices[i], t->answer.norm);
            if (!strcmp(c, s->answer))
                s->matched = i;
            free(c);
        }
    }
    in->answer = s->answer;
}

static int put_metric(run_ctx *c, const item *it, const char *metric, double v,
                      const char *answer, em_err *err)
{
    const pair *p = &c->plan.pairs[it->pair];
    store_score sc = {c->model.id, p->task_id, p->v->name,
                      p->t->examples[it->ex].id, metric, v, answer, p->config,
                      it->truncated, it->cut};
    return store_put_score(c->out.db, &sc, err);
}

/* Every metric of the task on s (plus mc_confidence when choice
 * probabilities exist, for ECE). A multiple choice answered by
 * generation (cot variants) scores the choice its extracted answer names:
 * multiple_choice_grade is that choice's score, 0 when it names none. */
static int score_metrics(run_ctx *c, const item *it, scored *s, em_err *err)
{
    const pair *p = &c->plan.pairs[it->pair];
    const task *t = p->t;
    const task_example *e = &t->examples[it->ex];
    int rc = 0, has_conf = 0;
    /* The unit's scores are replaced as a whole (see store_clear_scores). */
    if (store_clear_scores(c->out.db, c->model.id, p->task_id, p->v->name, e->id,
                           err) != 0)
        return -1;
    for (int i = 0; rc == 0 && i <= t->n_metrics; i++) {
        const char *m = i < t->n_metrics ? t->metrics[i] : "mc_confidence";
        if (i == t->n_metrics && (has_conf || !s->in.choice_logprobs))
            break;
        has_conf |= !strcmp(m, "mc_confidence");
        double v;
        em_err merr = {{0}};
        if (s->gen_choice && !strcmp(m, "multiple_choice_grade")) {
            v = s->matched >= 0 && e->choice_scores ? e->choice_scores[s->matched]
                                                    : 0;
        } else if (metric_compute(m, &s->in, &v, &merr) != 0) {
            warn_once(c, p, m, why_not(p, m, merr.msg));
            continue;
        }
        rc = put_metric(c, it, m, v, s->answer, err);
    }
    return rc;
}

static int score_single(run_ctx *c, item *it, em_err *err)
{
    const task *t = c->plan.pairs[it->pair].t;
    const task_example *e = &t->examples[it->ex];
    scored s = {0};
    fill_input(t, e, it, &s);
    int rc = score_metrics(c, it, &s, err);
    scored_free(&s, e->n_targets);
    return rc;
}

/* ---- self-consistency ------------------------------------------------------ */

/* One sample's answer: the variant-aware extraction; for a multiple
 * choice, a named choice ("B", or its text) becomes that choice's
 * normalised text, so that both ways of naming it vote together. */
static char *sample_answer(const task *t, const task_variant *v, int ex,
                           const char *text, int *choice)
{
    const task_example *e = &t->examples[ex];
    char *a = task_extract_answer_variant(t, v, text ? text : "");
    *choice = -1;
    if (e->n_choices > 0 && *a) {
        *choice = task_match_choice(t, ex, a);
        if (*choice >= 0) {
            free(a);
            a = task_normalize(e->choices[*choice], t->answer.norm);
        }
    }
    return a;
}

/* A sample is correct (for pass@k and the agreement calibration) when its
 * answer is a normalised target, or, for a multiple choice, names a
 * choice whose target score is above 0.5. */
static int answer_correct(const task_example *e, const scored *s, const char *a,
                          int choice)
{
    if (e->n_choices > 0)
        return choice >= 0 && e->choice_scores && e->choice_scores[choice] > 0.5;
    for (int i = 0; i < e->n_targets; i++)
        if (*a && !strcmp(a, s->norm_targets[i]))
            return 1;
    return 0;
}

/* The self-consistency metrics next to the task's: sc_agreement (vote
 * share of the winner), sc_correct (the majority answer is correct),
 * pass@1, pass@(n/2) when it lies strictly between, and pass@n. */
static int put_sc_metrics(run_ctx *c, const item *it, const vote_result *vr,
                          int correct, int n_correct, const char *answer,
                          em_err *err)
{
    int n = vr->n, ks[3] = {1, n / 2, n};
    int rc = put_metric(c, it, "sc_agreement", vr->agreement, answer, err);
    if (rc == 0)
        rc = put_metric(c, it, "sc_correct", correct, answer, err);
    for (int i = 0; rc == 0 && i < 3; i++) {
        if ((i == 1 && (ks[1] <= 1 || ks[1] >= n)) || (i == 2 && n == 1))
            continue;
        char name[32];
        snprintf(name, sizeof name, "pass@%d", ks[i]);
        rc = put_metric(c, it, name, vote_pass_at_k(n, n_correct, ks[i]), answer,
                        err);
    }
    return rc;
}

/* Scores a self-consistency item: every sample's answer is extracted, the
 * majority answer (metrics/vote.h: ties to the highest summed log-prob,
 * then to the answer reached first) is scored with the task's metrics as
 * if it were the one output - the output metrics see the first sample
 * that gave it - and the vote's own metrics are stored beside them. */
static int score_sc_item(run_ctx *c, item *it, em_err *err)
{
    const pair *p = &c->plan.pairs[it->pair];
    const task *t = p->t;
    const task_example *e = &t->examples[it->ex];
    int n = 0, n_correct = 0;
    char **ans = em_calloc((size_t)it->n_reqs + 1, sizeof *ans);
    const char **text = em_calloc((size_t)it->n_reqs + 1, sizeof *text);
    double *lp = em_calloc((size_t)it->n_reqs + 1, sizeof *lp);
    int *choice = em_calloc((size_t)it->n_reqs + 1, sizeof *choice);
    scored s = {0};
    fill_targets(t, e, &s);
    for (int i = 0; i < it->n_reqs; i++) {
        const slot *sl = &it->slots[i];
        if (it->reqs[i].kind != TASK_REQ_GENERATE) {
            if (it->reqs[i].choice == -1) {
                s.in.has_target_logprob = 1;
                s.in.target_logprob = sl->logprob;
                s.in.target_tokens = sl->n_tokens;
            }
            continue;
        }
        text[n] = sl->text ? sl->text : "";
        ans[n] = sample_answer(t, p->v, it->ex, text[n], &choice[n]);
        lp[n] = sl->logprob;
        n_correct += answer_correct(e, &s, ans[n], choice[n]);
        n++;
    }
    vote_result vr;
    vote_majority((const char *const *)ans, lp, n, &vr);
    int w = vr.winner;
    s.answer = em_strdup(w >= 0 ? ans[w] : "");
    s.in.answer = s.answer;
    s.in.output = n ? text[w >= 0 ? w : 0] : "";
    s.gen_choice = e->n_choices > 0;
    s.matched = w >= 0 ? choice[w] : -1;
    int rc = score_metrics(c, it, &s, err);
    if (rc == 0)
        rc = put_sc_metrics(c, it, &vr, answer_correct(e, &s, s.answer, s.matched),
                            n_correct, s.answer, err);
    scored_free(&s, e->n_targets);
    for (int i = 0; i < n; i++)
        free(ans[i]);
    free(ans);
    free(text);
    free(lp);
    free(choice);
    return rc;
}

int sweep_score_item(run_ctx *c, item *it, em_err *err)
{
    return sweep_is_sc(&c->plan.pairs[it->pair]) ? score_sc_item(c, it, err)
                                                 : score_single(c, it, err);
}

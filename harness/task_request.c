/*
 * task_request.c - the requests the sweep sends for an example: one
 * generation, or one log-likelihood per choice (multiple choice; with
 * acc_mutual_info, each choice again after the task's unconditional
 * prefix) or for the target (target_logprob), plus the zero-shot
 * chain-of-thought second pass built from the first pass's output.
 */
#include <stdlib.h>
#include <string.h>

#include "harness/task.h"
#include "harness/task_int.h"

static int wants_target_logprob(const task *t)
{
    for (int i = 0; i < t->n_metrics; i++)
        if (!strncmp(t->metrics[i], "target_logprob", 14))
            return 1;
    return 0;
}

static int wants_metric(const task *t, const char *name)
{
    for (int i = 0; i < t->n_metrics; i++)
        if (!strcmp(t->metrics[i], name))
            return 1;
    return 0;
}

static task_request *req_push(task_request **r, int *n)
{
    *r = em_realloc(*r, (size_t)(*n + 1) * sizeof **r);
    task_request *q = &(*r)[(*n)++];
    memset(q, 0, sizeof *q);
    q->choice = -2;
    return q;
}

static void req_loglik(const task *t, const char *prompt, const char *cont, int choice,
                       task_request **r, int *n)
{
    task_request *q = req_push(r, n);
    q->kind = TASK_REQ_LOGLIK;
    q->prompt = em_strdup(prompt);
    em_buf b = {0};
    em_buf_printf(&b, "%s%s", t->continuation_prefix, cont);
    q->continuation = em_buf_take(&b);
    q->choice = choice;
}

int task_build_requests(const task *t, const task_variant *v, int ex,
                        task_request **out, int *n, em_err *err)
{
    *out = NULL;
    *n = 0;
    if (ex < 0 || ex >= t->n_examples)
        return em_errorf(err, "%s: example %d out of range (0..%d)", t->path, ex,
                         t->n_examples - 1);
    task_variant_kind kind = v ? v->kind : VARIANT_STANDARD;
    if (kind == VARIANT_ZERO_SHOT_COT && t->type == TASK_TARGET_LOGPROB)
        return em_errorf(err, "%s: variant '%s' needs generation; a target_logprob task "
                         "only scores", t->path, v->name);
    em_buf p = {0};
    if (task_build_prompt(t, v, ex, &p, err)) {
        em_buf_free(&p);
        return -1;
    }
    const task_example *e = &t->examples[ex];
    if (t->type == TASK_TARGET_LOGPROB) {
        req_loglik(t, p.s, e->targets[0], -1, out, n);
    } else if (t->type == TASK_MULTIPLE_CHOICE &&
               (kind == VARIANT_STANDARD || kind == VARIANT_RETRIEVAL)) {
        for (int i = 0; i < e->n_choices; i++)
            req_loglik(t, p.s, e->choices[i], i, out, n);
        /* acc_mutual_info: each choice again without the question (the
         * same continuation in every example is one cached request) */
        for (int i = 0; wants_metric(t, "acc_mutual_info") && i < e->n_choices; i++)
            req_loglik(t, t->unconditional_prefix, e->choices[i],
                       TASK_UNCOND(i), out, n);
    } else {
        task_request *q = req_push(out, n);
        q->kind = TASK_REQ_GENERATE;
        q->prompt = em_strdup(p.s);
        q->max_tokens = v && v->max_tokens > 0 ? v->max_tokens : t->max_tokens;
        if (t->type == TASK_GENERATE && kind != VARIANT_ZERO_SHOT_COT &&
            wants_target_logprob(t))
            req_loglik(t, p.s, e->targets[0], -1, out, n);
    }
    em_buf_free(&p);
    return 0;
}

int task_build_second_pass(const task *t, const task_variant *v, int ex,
                           const char *first_prompt, const char *rationale,
                           task_request *out, em_err *err)
{
    memset(out, 0, sizeof *out);
    if (!v || v->kind != VARIANT_ZERO_SHOT_COT)
        return em_errorf(err, "%s: variant '%s' has no second pass (only zero_shot_cot "
                         "variants do)", t->path, v ? v->name : "(none)");
    if (ex < 0 || ex >= t->n_examples)
        return em_errorf(err, "%s: example %d out of range", t->path, ex);
    em_buf b = {0};
    em_buf_printf(&b, "%s%s\n%s", first_prompt, rationale,
                  v->answer_trigger ? v->answer_trigger : DEFAULT_ZS_ANSWER);
    out->kind = TASK_REQ_GENERATE;
    out->prompt = em_buf_take(&b);
    out->choice = -2;
    out->max_tokens = t->max_tokens;
    return 0;
}

void task_requests_free(task_request *r, int n)
{
    for (int i = 0; i < n; i++) {
        free(r[i].prompt);
        free(r[i].continuation);
    }
    free(r);
}


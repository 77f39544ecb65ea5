/*
 * task.c - the task object: freeing a task and what it holds, the built-in
 * settings of each variant kind, and what more than one part of the task
 * module asks of a loaded task (a variant by name, how many few-shot
 * exemplars carry a rationale).
 *
 * Every loader (task_yaml.c, task_bigbench.c) fills a struct task with
 * these pieces and frees a partly built one here, so the loaders sit above
 * this file and it knows neither of them.
 */
#include "harness/task.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "harness/retrieval.h"
#include "harness/task_int.h"

/* ------------------------------------------------------------------ */
/* Freeing                                                            */

void task_strs_free(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void example_free(task_example *e)
{
    free(e->id);
    free(e->input);
    task_strs_free(e->targets, e->n_targets);
    task_strs_free(e->choices, e->n_choices);
    free(e->choice_scores);
    free(e->rationale);
    task_strs_free(e->field_keys, e->n_fields);
    task_strs_free(e->field_vals, e->n_fields);
    free(e->where);
}

static void examples_free(task_example *v, int n)
{
    for (int i = 0; i < n; i++)
        example_free(&v[i]);
    free(v);
}

static void variant_free(task_variant *v)
{
    free(v->name);
    free(v->instruction);
    free(v->template);
    free(v->example_template);
    free(v->cot_trigger);
    free(v->answer_trigger);
}

void task_free(task *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->name);
    free(t->description);
    task_strs_free(t->keywords, t->n_keywords);
    free(t->template);
    examples_free(t->examples, t->n_examples);
    examples_free(t->shots, t->n_shots);
    free(t->few_shot.separator);
    free(t->few_shot.example_template);
    task_strs_free(t->stop, t->n_stop);
    free(t->answer.pattern);
    task_strs_free(t->metrics, t->n_metrics);
    free(t->preferred_metric);
    for (int i = 0; i < t->n_variants; i++)
        variant_free(&t->variants[i]);
    free(t->variants);
    free(t->choice_format);
    free(t->continuation_prefix);
    free(t->unconditional_prefix);
    pcre2_code_free(t->answer_re);
    free(t->prefix);
    free(t->output_stop);
    retr_spec_free(t->retrieval);
    free(t);
}

/* ------------------------------------------------------------------ */
/* Variants                                                           */

void task_variant_defaults(task_variant *v, const char *name, task_variant_kind kind)
{
    memset(v, 0, sizeof *v);
    v->name = em_strdup(name);
    v->kind = kind;
    v->few_shot_k = kind == VARIANT_ZERO_SHOT_COT ? 0 : -1;
    if (kind == VARIANT_COT || kind == VARIANT_ZERO_SHOT_COT)
        v->max_tokens = DEFAULT_COT_MAX_TOKENS;
    if (kind == VARIANT_COT)
        v->answer_trigger = em_strdup(DEFAULT_COT_ANSWER);
    if (kind == VARIANT_ZERO_SHOT_COT) {
        v->cot_trigger = em_strdup(DEFAULT_ZS_TRIGGER);
        v->answer_trigger = em_strdup(DEFAULT_ZS_ANSWER);
    }
}

const task_variant *task_variant_find(const task *t, const char *name)
{
    for (int i = 0; i < t->n_variants; i++)
        if (!strcmp(t->variants[i].name, name))
            return &t->variants[i];
    return NULL;
}

int task_count_rationales(const task *t)
{
    const task_example *pool = t->n_shots ? t->shots : t->examples;
    int n = t->n_shots ? t->n_shots : t->n_examples, have = 0;
    for (int i = 0; i < n; i++)
        have += pool[i].rationale != NULL;
    return have;
}

/* ------------------------------------------------------------------ */
/* Small helpers (for task_data.c and task_bigbench.c)                */

int task_has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

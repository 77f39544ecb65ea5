/*
 * task_prompt.c - the prompt an example is sent with under a variant:
 * templates rendered against a record ({{input}}, {{choices}} in the
 * task's choice_format, any record field, retrieved {{passages}}), the
 * few-shot exemplars drawn for it (deterministic in the task seed and the
 * example id), and their assembly: prefix, instruction, exemplars, the
 * example's own prompt, the zero-shot chain-of-thought trigger.
 */
#include <stdlib.h>
#include <string.h>

#include "harness/retrieval.h"
#include "harness/task.h"
#include "harness/task_int.h"
#include "harness/template.h"

/* ------------------------------------------------------------------ */
/* Rendering                                                          */

typedef struct render_ctx {
    const task *t;
    const task_example *e;
    const char *passages; /* {{passages}} of a retrieval prompt, or NULL */
    char *choices;   /* {{choices}}, rendered on first use */
    em_err err;      /* a choice_format failure */
    int failed;
} render_ctx;

typedef struct choice_ctx {
    const char *choice;
    char letter[16], number[16];
} choice_ctx;

static const char *choice_lookup(void *p, const char *name)
{
    choice_ctx *c = p;
    if (!strcmp(name, "choice"))
        return c->choice;
    if (!strcmp(name, "letter"))
        return c->letter;
    if (!strcmp(name, "number"))
        return c->number;
    return NULL;
}

static char *render_choices(render_ctx *c)
{
    em_buf b = {0};
    for (int i = 0; i < c->e->n_choices; i++) {
        choice_ctx cc = {.choice = c->e->choices[i]};
        if (i < 26)
            snprintf(cc.letter, sizeof cc.letter, "%c", 'A' + i);
        else
            snprintf(cc.letter, sizeof cc.letter, "%d", i + 1);
        snprintf(cc.number, sizeof cc.number, "%d", i + 1);
        if (i)
            em_buf_putc(&b, '\n');
        if (tmpl_render(c->t->choice_format, choice_lookup, &cc, &b, &c->err))
            c->failed = 1;
    }
    return em_buf_take(&b);
}

static const char *lookup(void *p, const char *name)
{
    render_ctx *c = p;
    const task_example *e = c->e;
    if (!strcmp(name, "input"))
        return e->input;
    if (!strcmp(name, "target"))
        return e->n_targets ? e->targets[0] : "";
    if (!strcmp(name, "rationale"))
        return e->rationale ? e->rationale : "";
    if (!strcmp(name, "id"))
        return e->id;
    if (c->passages && !strcmp(name, "passages"))
        return c->passages;
    if (!strcmp(name, "choices")) {
        if (!c->choices)
            c->choices = render_choices(c);
        return c->choices;
    }
    for (int i = 0; i < e->n_fields; i++)
        if (!strcmp(e->field_keys[i], name))
            return e->field_vals[i];
    return NULL;
}

static int render_with(const task *t, const task_example *e, const char *text,
                       const char *passages, em_buf *out, em_err *err)
{
    render_ctx c = {.t = t, .e = e, .passages = passages};
    int rc = tmpl_render(text, lookup, &c, out, err);
    if (!rc && c.failed)
        rc = em_errorf(err, "%s", c.err.msg);
    free(c.choices);
    if (rc)
        return em_error_prefix(err, "%s: example '%s'", t->path, e->id);
    return 0;
}

static int render(const task *t, const task_example *e, const char *text, em_buf *out,
                  em_err *err)
{
    return render_with(t, e, text, NULL, out, err);
}

/* The evaluated example's own prompt. A retrieval variant searches the
 * corpus with the rendered query and renders its template (the variant's,
 * else the task's retrieval.template) with the passages. */
static int render_prompt(const task *t, const task_variant *v, int ex, em_buf *out,
                         em_err *err)
{
    const task_example *e = &t->examples[ex];
    const retr_spec *r = t->retrieval;
    if (!v || v->kind != VARIANT_RETRIEVAL)
        return render(t, e, v && v->template ? v->template : t->template, out, err);
    if (!r)
        return em_errorf(err, "%s: variant '%s' is retrieval but the task has no "
                         "'retrieval' corpus", t->path, v->name);
    em_buf q = {0};
    char *passages = NULL;
    int rc = render(t, e, r->query, &q, err);
    if (!rc && retr_passages(r->index, q.s ? q.s : "", r->k, r->separator, &passages,
                             err))
        rc = em_error_prefix(err, "%s: example '%s'", t->path, e->id);
    if (!rc)
        rc = render_with(t, e, v->template ? v->template : r->template, passages, out,
                         err);
    free(passages);
    em_buf_free(&q);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Few-shot selection                                                 */

static int variant_k(const task *t, const task_variant *v)
{
    int k = v && v->few_shot_k >= 0 ? v->few_shot_k : t->few_shot.k;
    return v && v->kind == VARIANT_ZERO_SHOT_COT && v->few_shot_k < 0 ? 0 : k;
}

int task_pick_shots(const task *t, const task_variant *v, int ex, int **idx, int *k,
                    em_err *err)
{
    *idx = NULL;
    *k = variant_k(t, v);
    if (*k == 0)
        return 0;
    const task_example *me = &t->examples[ex];
    const task_example *pool = t->n_shots ? t->shots : t->examples;
    int n = t->n_shots ? t->n_shots : t->n_examples, m = 0;
    int cot = v && v->kind == VARIANT_COT;
    int *cand = em_malloc((size_t)(n ? n : 1) * sizeof *cand);
    for (int i = 0; i < n; i++) {
        /* Never the evaluated example itself: by position in the same
         * array, and by id when the pool is separate. */
        if ((pool == t->examples && i == ex) || !strcmp(pool[i].id, me->id))
            continue;
        if (cot && !pool[i].rationale)
            continue;
        cand[m++] = i;
    }
    if (cot && !task_count_rationales(t)) {
        free(cand);
        return em_errorf(err, "%s: variant '%s' is chain-of-thought, but no few-shot "
                         "exemplar of task '%s' has a rationale (give records a "
                         "'rationale' field, or map one with fields: {rationale: ...})",
                         t->path, v->name, t->name);
    }
    if (m < *k) {
        free(cand);
        return em_errorf(err, "%s: variant '%s' needs %d exemplars%s but the pool has "
                         "only %d for example '%s'", t->path, v ? v->name : "standard",
                         *k, cot ? " with a rationale" : "", m, me->id);
    }
    if (t->few_shot.fixed) {
        *idx = cand; /* the first k candidates, in pool order */
        return 0;
    }
    /* Partial Fisher-Yates from a stream seeded by (task seed, example id):
     * the same example always sees the same exemplars, whatever else runs. */
    uint64_t st = em_hash64(me->id, strlen(me->id), t->few_shot.seed);
    for (int i = 0; i < *k; i++) {
        int j = i + (int)(em_splitmix64(&st) % (uint64_t)(m - i));
        int tmp = cand[i];
        cand[i] = cand[j];
        cand[j] = tmp;
    }
    *idx = cand;
    return 0;
}

/* The exemplar template a variant uses. */
static char *example_template(const task *t, const task_variant *v)
{
    if (v && v->example_template)
        return em_strdup(v->example_template);
    const char *main = v && v->template ? v->template : t->template;
    em_buf b = {0};
    if (v && v->kind == VARIANT_COT)
        em_buf_printf(&b, "%s {{rationale}} %s {{target}}.", main,
                      v->answer_trigger ? v->answer_trigger : DEFAULT_COT_ANSWER);
    else if (t->few_shot.example_template_given)
        em_buf_puts(&b, t->few_shot.example_template);
    else
        em_buf_printf(&b, "%s {{target}}", main);
    return em_buf_take(&b);
}

/* instruction + exemplars + the example's own prompt (first pass). */
int task_build_prompt(const task *t, const task_variant *v, int ex, em_buf *out,
                      em_err *err)
{
    int *idx, k;
    /* A cot variant without exemplars must carry its own prompt (a model
     * trained on the scratchpad format is prompted with it zero-shot);
     * otherwise nothing would ask for a rationale. */
    if (v && v->kind == VARIANT_COT && variant_k(t, v) == 0 && !v->template)
        return em_errorf(err, "%s: variant '%s' is chain-of-thought but its k is 0 "
                         "and it has no template of its own", t->path, v->name);
    if (task_pick_shots(t, v, ex, &idx, &k, err))
        return -1;
    const char *sep = t->few_shot.separator;
    int rc = 0;
    if (t->prefix)
        em_buf_puts(out, t->prefix);
    if (v && v->instruction) {
        rc = render(t, &t->examples[ex], v->instruction, out, err);
        em_buf_puts(out, sep);
    }
    char *et = example_template(t, v);
    const task_example *pool = t->n_shots ? t->shots : t->examples;
    for (int i = 0; i < k && !rc; i++) {
        rc = render(t, &pool[idx[i]], et, out, err);
        em_buf_puts(out, sep);
    }
    free(et);
    free(idx);
    if (!rc)
        rc = render_prompt(t, v, ex, out, err);
    /* An empty cot_trigger: the template already ends with the trigger
     * (a family trained on "A: Let's think step by step."). */
    if (!rc && v && v->kind == VARIANT_ZERO_SHOT_COT && v->cot_trigger &&
        *v->cot_trigger) {
        em_buf_putc(out, ' ');
        em_buf_puts(out, v->cot_trigger);
    }
    return rc;
}


/*
 * sweep.c - the evaluation loop (see sweep.h).
 *
 * Per model, every (task, variant, example) becomes an `item` holding the
 * requests of its current pass. A round scans the items in order: each
 * request is looked up in the store; a miss joins the batch (identical
 * requests in a batch are sent once and answer every item that asked).
 * When the batch is full it is sent - log-likelihoods in one backend call,
 * generations in another - and, in the same transaction, the responses
 * are stored and every item they complete is scored. An item whose pass 1
 * completes under zero_shot_cot gets its second pass built from the first
 * pass's output and goes round again. An item with a failed request is
 * left unscored; the failed response is stored and the next run resends
 * it (only ok responses are cache hits).
 *
 * Determinism: prompts come from the task module (deterministic), the
 * cache key covers everything a backend sees, and generation seeds derive
 * from (run seed, task, example id, pass), so a resumed run recomputes
 * exactly the scores an uninterrupted one writes.
 *
 * Self-consistency (a variant with sc_samples > 0, from the task's
 * self_consistency key or a "NAME+scN" variant name): the item's one
 * generation becomes N requests whose seeds also mix in the sample index
 * (and whose settings name it), so each sample is cached on its own and
 * a resume draws only the missing ones. The item is scored by a majority
 * vote over the samples' extracted answers (metrics/vote.h).
 */
#include "harness/sweep.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/backend.h"
#include "harness/identity.h"
#include "base/progress.h"
#include "harness/store.h"
#include "harness/task.h"
#include "harness/task_bigbench.h"
#include "metrics/metric.h"
#include "metrics/vote.h"

/* ---- lists ---------------------------------------------------------------- */

void sweep_split(const char *list, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    const char *p = list;
    while (p && *p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len) {
            *out = em_realloc(*out, sizeof **out * (size_t)(*n + 1));
            (*out)[(*n)++] = em_strndup(p, len);
        }
        p = c ? c + 1 : NULL;
    }
}

void sweep_free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* A loose *.json file in a task directory may be a YAML task's data (or
 * few-shot pool) rather than a BIG-bench task: one that does not load as
 * a task is left out, with a note saying why. */
int sweep_json_is_data(const char *path)
{
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 5, ".json") ||
        (n >= 10 && !strcmp(path + n - 10, "/task.json")))
        return 0;
    task *t;
    em_err e;
    if (task_load(path, &t, &e) == 0) {
        task_free(t);
        return 0;
    }
    fprintf(stderr, "emerge: note: %s: not a task, taken for a data file (%s)\n",
            path, e.msg);
    return 1;
}

/* Every task file of a directory (task_list_dir: YAML, BIG-bench JSON and
 * <sub>/task.json), appended to paths in sorted order. */
static int expand_dir(const char *dir, char ***paths, int *n, em_err *err)
{
    char **found;
    int nf;
    if (task_list_dir(dir, &found, &nf, err) != 0)
        return -1;
    *paths = em_realloc(*paths, sizeof **paths * (size_t)(*n + nf));
    for (int i = 0; i < nf; i++) {
        if (sweep_json_is_data(found[i]))
            free(found[i]);
        else
            (*paths)[(*n)++] = found[i];
    }
    free(found);
    return 0;
}

int sweep_expand_tasks(const char *list, char ***paths, int *n, em_err *err)
{
    char **parts;
    int np;
    sweep_split(list, &parts, &np);
    *paths = NULL;
    *n = 0;
    int rc = np ? 0 : em_errorf(err, "no task files given");
    for (int i = 0; rc == 0 && i < np; i++) {
        struct stat st;
        if (stat(parts[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = expand_dir(parts[i], paths, n, err);
        } else {
            *paths = em_realloc(*paths, sizeof **paths * (size_t)(*n + 1));
            (*paths)[(*n)++] = em_strdup(parts[i]);
        }
    }
    sweep_free_list(parts, np);
    if (rc != 0) {
        sweep_free_list(*paths, *n);
        *paths = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- the model row --------------------------------------------------------- */

/* The member as the family file gives it, for the models table. */
static char *spec_json(const family_member *m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", m->spec.name);
    cJSON_AddStringToObject(o, "backend", m->spec.backend);
    if (m->spec.path)
        cJSON_AddStringToObject(o, "path", m->spec.path);
    if (m->spec.n_params > 0)
        cJSON_AddNumberToObject(o, "params", m->spec.n_params);
    if (m->spec.n_tokens > 0)
        cJSON_AddNumberToObject(o, "tokens", m->spec.n_tokens);
    if (m->step >= 0)
        cJSON_AddNumberToObject(o, "step", m->step);
    if (m->checkpoint)
        cJSON_AddStringToObject(o, "checkpoint", m->checkpoint);
    for (int i = 0; i < m->spec.n_opts; i++)
        cJSON_AddStringToObject(o, m->spec.opts[i].key, m->spec.opts[i].value);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- items ------------------------------------------------------------------ */

enum { SLOT_OPEN, SLOT_OK, SLOT_FAILED };
enum { ITEM_ACTIVE, ITEM_DONE, ITEM_FAILED, ITEM_OVERFLOW };

typedef struct slot {
    char key[65];
    char *settings;   /* generate settings JSON, NULL for loglik */
    int sample;       /* self-consistency sample index, -1 otherwise */
    int state;
    char *text;
    double logprob;
    int n_tokens, is_greedy;
    int truncated, finish;  /* from the response (store_response) */
} slot;

typedef struct item {
    int pair;         /* index into the run's task x variant pairs */
    int ex;
    task_request *reqs;
    slot *slots;
    int n_reqs;
    int pass;
    int status;
    int truncated;    /* prompt tokens lost to the context, most of any
                         request of any pass */
    int cut;          /* generations ended by max_tokens or the context */
} item;

typedef struct pair {
    task *t;
    int64_t task_id;
    const task_variant *v;
    int n_ex;         /* examples run (--limit applied) */
    int per_unit;     /* pass-1 requests of its first example */
    int chunk;        /* examples per batch */
    int drawn;        /* self-consistency: samples drawn (--max-samples) */
    char config[160]; /* run settings its scores depend on */
    /* the model being run: */
    long n_trunc;     /* requests whose prompt did not fit the context */
    int max_trunc;    /* the most tokens one of them lost */
    long n_cut;       /* generations ended by max_tokens or the context */
} pair;

typedef struct bentry {
    char key[65];
    int item, req;    /* the first item that asked: its request is sent */
} bentry;

typedef struct waiter {
    int entry, item, req;
} waiter;

typedef struct batch {
    bentry *e;
    int n, cap;
    waiter *w;
    int nw, wcap;
} batch;

/* run_ctx's parts, by concern. */
typedef struct run_out {        /* where results go */
    store *db;
    int64_t run_id;
    FILE *rec;        /* --record file, or NULL */
    sweep_stats *st;  /* the counts sweep_run returns */
} run_out;

typedef struct run_notes {      /* what is said once */
    char **warned;    /* "task/variant/metric" already warned about */
    int n_warned;
    char overflow_msg[512]; /* --on-overflow error: the first overflow */
} run_notes;

typedef struct run_plan {       /* what the run evaluates */
    pair *pairs;
    int n_pairs;
    char config[96];  /* what besides the requests decides scores */
    task_variant **xvars; /* "cot+sc8" variants made for this run */
    int n_xvars;
} run_plan;

typedef struct run_member {     /* the model being run */
    const family_member *m;
    char *identity;
    int64_t id;
    backend *be;      /* opened on its first miss */
} run_member;

typedef struct run_progress {   /* the model's requests, done of total */
    progress *pb;
    long total, done;
} run_progress;

typedef struct run_chunk {      /* the chunk being run */
    item *items;
    int n_items;
} run_chunk;

typedef struct run_ctx {
    const sweep_opts *o;
    run_out out;
    run_notes notes;
    run_plan plan;
    run_member model;
    run_progress prog;
    run_chunk chunk;
} run_ctx;

static void slot_clear(slot *s)
{
    free(s->settings);
    free(s->text);
    memset(s, 0, sizeof *s);
}

static void item_clear(item *it)
{
    for (int i = 0; i < it->n_reqs; i++)
        slot_clear(&it->slots[i]);
    free(it->slots);
    task_requests_free(it->reqs, it->n_reqs);
    it->reqs = NULL;
    it->slots = NULL;
    it->n_reqs = 0;
}

/* The seed of a generation: (run seed, task, example id, pass) and, for a
 * self-consistency sample, its index - so every sample is its own request
 * and a resumed run draws exactly the samples an uninterrupted one does. */
static uint64_t gen_seed(const run_ctx *c, const item *it, int sample)
{
    const pair *p = &c->plan.pairs[it->pair];
    const char *id = p->t->examples[it->ex].id;
    uint64_t h = em_hash64(p->t->name, strlen(p->t->name), c->o->seed);
    h = em_hash64(id, strlen(id), h);
    h ^= (uint64_t)it->pass * 0x9e3779b97f4a7c15ULL;
    if (sample >= 0)
        h ^= ((uint64_t)sample + 1) * 0xbf58476d1ce4e5b9ULL;
    return em_splitmix64(&h);
}

static int is_sc(const pair *p) { return p->v->sc_samples > 0; }

/* The self-consistency generations among an item's requests. */
static long sc_requests(const run_ctx *c, const item *it)
{
    long n = 0;
    for (int i = 0; is_sc(&c->plan.pairs[it->pair]) && i < it->n_reqs; i++)
        n += it->reqs[i].kind == TASK_REQ_GENERATE;
    return n;
}

/* Self-consistency samples pass 1 at the variant's temperature; a
 * zero_shot_cot second pass (reading the answer out of a sampled
 * rationale) is greedy, as in Kojima et al. Other variants use the run's
 * --temperature. */
static double req_temperature(const run_ctx *c, const item *it)
{
    const pair *p = &c->plan.pairs[it->pair];
    if (is_sc(p))
        return it->pass == 1 ? p->v->sc_temperature : 0;
    return c->o->temperature;
}

static double req_top_p(const run_ctx *c, const item *it)
{
    const pair *p = &c->plan.pairs[it->pair];
    return is_sc(p) && it->pass == 1 ? p->v->sc_top_p : 1;
}

static int req_max_tokens(const task *t, const task_request *r)
{
    return r->max_tokens > 0 ? r->max_tokens : t->max_tokens;
}

/* Everything besides the prompt that decides a generation. The seed only
 * matters when sampling, so greedy requests share cache entries across
 * tasks and seeds. */
static char *gen_settings(const run_ctx *c, const item *it, const task_request *r,
                          int sample)
{
    const task *t = c->plan.pairs[it->pair].t;
    double temp = req_temperature(c, it);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "max_tokens", req_max_tokens(t, r));
    cJSON *stop = cJSON_AddArrayToObject(o, "stop");
    for (int i = 0; i < t->n_stop; i++)
        cJSON_AddItemToArray(stop, cJSON_CreateString(t->stop[i]));
    cJSON_AddNumberToObject(o, "temperature", temp);
    cJSON_AddNumberToObject(o, "top_p", req_top_p(c, it));
    if (temp > 0)
        cJSON_AddNumberToObject(o, "seed", (double)(gen_seed(c, it, sample) >> 11));
    if (temp > 0 && sample >= 0)
        cJSON_AddNumberToObject(o, "sample", sample);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char *kind_name(task_req_kind k)
{
    return k == TASK_REQ_GENERATE ? "generate" : "loglik";
}

static void slots_init(run_ctx *c, item *it)
{
    it->slots = em_calloc((size_t)it->n_reqs + 1, sizeof *it->slots);
    int sample = 0;
    for (int i = 0; i < it->n_reqs; i++) {
        const task_request *r = &it->reqs[i];
        slot *s = &it->slots[i];
        s->sample = is_sc(&c->plan.pairs[it->pair]) && r->kind == TASK_REQ_GENERATE
                        ? sample++ : -1;
        s->settings = r->kind == TASK_REQ_GENERATE ? gen_settings(c, it, r, s->sample)
                                                   : NULL;
        store_cache_key(c->model.identity, kind_name(r->kind), r->prompt,
                        r->kind == TASK_REQ_LOGLIK ? r->continuation : NULL,
                        s->settings, s->key);
    }
}

/* Self-consistency: the variant's one generation, n times (one request
 * per sample; the samples differ by seed), after the scoring requests it
 * also makes (a target's log-likelihood), which are sent once. */
static int replicate(task_request **reqs, int *n_reqs, int n, em_err *err)
{
    int n_gen = 0;
    for (int i = 0; i < *n_reqs; i++)
        n_gen += (*reqs)[i].kind == TASK_REQ_GENERATE;
    if (n_gen != 1)
        return em_errorf(err, "self_consistency needs a variant that generates one "
                         "answer (this one makes %d generation requests%s)", n_gen,
                         n_gen ? "" : ": it scores by log-likelihood");
    task_request *r = em_calloc((size_t)(*n_reqs - 1 + n), sizeof *r), gen = {0};
    int k = 0;
    for (int i = 0; i < *n_reqs; i++) {
        if ((*reqs)[i].kind == TASK_REQ_GENERATE)
            gen = (*reqs)[i];
        else
            r[k++] = (*reqs)[i];
    }
    for (int i = 0; i < n; i++) {
        r[k + i] = gen;
        r[k + i].prompt = em_strdup(gen.prompt);
        r[k + i].continuation = gen.continuation ? em_strdup(gen.continuation) : NULL;
    }
    /* The kept requests moved into r: free only the generation's strings. */
    free(gen.prompt);
    free(gen.continuation);
    free(*reqs);
    *reqs = r;
    *n_reqs = k + n;
    return 0;
}

/* The pass-1 requests of example ex of pair p. */
static int pair_requests(const pair *p, int ex, task_request **reqs, int *n,
                         em_err *err)
{
    if (task_build_requests(p->t, p->v, ex, reqs, n, err) != 0)
        return -1;
    if (is_sc(p) && replicate(reqs, n, p->drawn, err) != 0) {
        task_requests_free(*reqs, *n);
        *reqs = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

static int build_pass1(run_ctx *c, item *it, em_err *err)
{
    const pair *p = &c->plan.pairs[it->pair];
    if (pair_requests(p, it->ex, &it->reqs, &it->n_reqs, err) != 0)
        return em_error_prefix(err, "%s: variant %s, example %s", p->t->path,
                               p->v->name, p->t->examples[it->ex].id);
    it->pass = 1;
    slots_init(c, it);
    return 0;
}

/* zero_shot_cot's second pass: one per sample under self-consistency,
 * each reading its own rationale; else one, after the first generation. */
static int build_pass2(run_ctx *c, item *it, em_err *err)
{
    const pair *p = &c->plan.pairs[it->pair];
    int g = 0;
    while (g < it->n_reqs && it->reqs[g].kind != TASK_REQ_GENERATE)
        g++;
    if (g == it->n_reqs)
        return em_errorf(err, "%s: zero_shot_cot pass 1 has no generation",
                         p->t->path);
    int n2 = 0;
    for (int k = 0; k < it->n_reqs; k++)
        n2 += it->reqs[k].kind == TASK_REQ_GENERATE;
    n2 = is_sc(p) ? n2 : 1;
    task_request *r2 = em_calloc((size_t)n2, sizeof *r2);
    for (int j = 0, k = g; j < n2; j++, k++) {
        while (it->reqs[k].kind != TASK_REQ_GENERATE)
            k++;
        if (task_build_second_pass(p->t, p->v, it->ex, it->reqs[k].prompt,
                                   it->slots[k].text ? it->slots[k].text : "",
                                   &r2[j], err) != 0) {
            task_requests_free(r2, j);
            return em_error_prefix(err, "%s: example %s, second pass", p->t->path,
                                   p->t->examples[it->ex].id);
        }
    }
    item_clear(it);
    it->reqs = r2;
    it->n_reqs = n2;
    it->pass = 2;
    slots_init(c, it);
    return 0;
}

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
    nt->warned = em_realloc(nt->warned, sizeof *nt->warned * (size_t)(nt->n_warned + 1));
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

static int score_item(run_ctx *c, item *it, em_err *err)
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

/* ---- batches -------------------------------------------------------------------- */

static int batch_find(const batch *b, const char *key)
{
    for (int i = 0; i < b->n; i++)
        if (!strcmp(b->e[i].key, key))
            return i;
    return -1;
}

static void batch_wait(batch *b, int entry, int item, int req)
{
    if (b->nw == b->wcap) {
        b->wcap = b->wcap ? b->wcap * 2 : 64;
        b->w = em_realloc(b->w, sizeof *b->w * (size_t)b->wcap);
    }
    b->w[b->nw++] = (waiter){entry, item, req};
}

static void progress_tick(run_ctx *c)
{
    c->prog.done++;
    progress_update(c->prog.pb, c->prog.done);
}

static int batch_add(batch *b, const char *key, int item, int req)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->e = em_realloc(b->e, sizeof *b->e * (size_t)b->cap);
    }
    memcpy(b->e[b->n].key, key, sizeof b->e[b->n].key);
    b->e[b->n].item = item;
    b->e[b->n].req = req;
    return b->n++;
}

/* Counts what a response of slot s says about the context: a prompt
 * that lost tokens to it, a generation it (or max_tokens) cut short. */
static void note_slot(run_ctx *c, const item *it, slot *s, int truncated,
                      int finish)
{
    pair *p = &c->plan.pairs[it->pair];
    s->truncated = truncated;
    s->finish = finish;
    if (truncated > 0) {
        p->n_trunc++;
        if (truncated > p->max_trunc)
            p->max_trunc = truncated;
        c->out.st->truncated++;
    }
    if (finish == BACKEND_FINISH_LENGTH || finish == BACKEND_FINISH_CONTEXT) {
        p->n_cut++;
        c->out.st->cut++;
    }
}

/* Slot s of item it gets response res (the text is copied); an ok one is
 * counted by note_slot. */
static void fill_slot(run_ctx *c, const item *it, slot *s,
                      const store_response *res)
{
    s->state = res->ok ? SLOT_OK : SLOT_FAILED;
    s->text = em_strdup(res->text);
    s->logprob = res->logprob;
    s->n_tokens = res->n_tokens;
    s->is_greedy = res->is_greedy;
    if (res->ok)
        note_slot(c, it, s, res->truncated, res->finish);
}

/* A pass of it is answered: what its requests lost joins the item's. */
static void pass_done(item *it)
{
    for (int r = 0; r < it->n_reqs; r++) {
        const slot *s = &it->slots[r];
        if (s->truncated > it->truncated)
            it->truncated = s->truncated;
        it->cut += s->finish == BACKEND_FINISH_LENGTH ||
                   s->finish == BACKEND_FINISH_CONTEXT;
    }
}

/* --on-overflow skip or error: the item is not scored. error keeps the
 * first case to stop the sweep with once the batch is stored. */
static void overflowed(run_ctx *c, item *it)
{
    const pair *p = &c->plan.pairs[it->pair];
    it->status = ITEM_OVERFLOW;
    c->out.st->overflowed++;
    if (c->o->on_overflow == SWEEP_OVERFLOW_ERROR && !c->notes.overflow_msg[0])
        snprintf(c->notes.overflow_msg, sizeof c->notes.overflow_msg,
                 "task %s, variant %s, example %s: the prompt does not fit the "
                 "model's context (%d tokens over); stopped by --on-overflow "
                 "error (--on-overflow truncate scores such prompts truncated)",
                 p->t->name, p->v->name, p->t->examples[it->ex].id, it->truncated);
}

/* One look at the open requests of item idx: a request the store has
 * answered fills its slot; a miss joins batch b (its first asker sends
 * it, later ones wait on it), or with b NULL stays open. *waiting: some
 * request is still unanswered; *failed: some slot holds a failed
 * response. 0 or -1. */
static int lookup_slots(run_ctx *c, int idx, batch *b, int *waiting, int *failed,
                        em_err *err)
{
    item *it = &c->chunk.items[idx];
    for (int r = 0; r < it->n_reqs; r++) {
        slot *s = &it->slots[r];
        *failed |= s->state == SLOT_FAILED;
        if (s->state != SLOT_OPEN)
            continue;
        store_response res;
        int found;
        if (store_lookup(c->out.db, s->key, &res, &found, err) != 0)
            return -1;
        if (found) {
            fill_slot(c, it, s, &res);
            store_response_clear(&res);
            c->out.st->cached++;
            progress_tick(c);
            continue;
        }
        *waiting = 1;
        if (!b)
            continue;
        int e = batch_find(b, s->key);
        if (e < 0)
            e = batch_add(b, s->key, idx, r);
        batch_wait(b, e, idx, r);
    }
    return 0;
}

/* zero_shot_cot: pass 1 answered, the second pass becomes the item's
 * requests (counted like pass 1's) and goes round again. */
static int start_pass2(run_ctx *c, item *it, em_err *err)
{
    if (build_pass2(c, it, err) != 0)
        return -1;
    c->out.st->requests += it->n_reqs;
    c->out.st->samples += sc_requests(c, it);
    return 0;
}

/* Every request of the item's pass is answered: it is left unscored (a
 * request failed), not scored (its prompt overflowed, unless
 * --on-overflow truncate), sent round again (zero_shot_cot's second
 * pass) or scored. */
static int finish_pass(run_ctx *c, item *it, int failed, em_err *err)
{
    pass_done(it);
    if (failed) {
        it->status = ITEM_FAILED;
        c->out.st->unscored++;
    } else if (it->truncated > 0 && c->o->on_overflow != SWEEP_OVERFLOW_TRUNCATE) {
        overflowed(c, it);
    } else if (it->pass == 1 &&
               c->plan.pairs[it->pair].v->kind == VARIANT_ZERO_SHOT_COT) {
        return start_pass2(c, it, err);
    } else {
        if ((is_sc(&c->plan.pairs[it->pair]) ? score_sc_item(c, it, err)
                                              : score_item(c, it, err)) != 0)
            return -1;
        it->status = ITEM_DONE;
        c->out.st->scored++;
    }
    return 0;
}

/* Resolves what the cache can of item idx and adds its misses to b (or,
 * with b NULL, only finishes what is already answered): each answered
 * pass is finished, until the item waits on a request or is done. */
static int visit(run_ctx *c, int idx, batch *b, em_err *err)
{
    item *it = &c->chunk.items[idx];
    while (it->status == ITEM_ACTIVE) {
        int waiting = 0, failed = 0;
        if (lookup_slots(c, idx, b, &waiting, &failed, err) != 0)
            return -1;
        if (waiting)
            return 0;
        if (finish_pass(c, it, failed, err) != 0)
            return -1;
        if (it->status != ITEM_ACTIVE)
            item_clear(it);
    }
    return 0;
}

static int ensure_open(run_ctx *c, em_err *err)
{
    if (c->model.be)
        return 0;
    if (backend_open(&c->model.m->spec, &c->model.be, err) != 0)
        return -1;
    if (!(c->model.m->spec.n_params > 0) && c->model.be->info.n_params > 0)
        return store_set_model_params(c->out.db, c->model.id,
                                      c->model.be->info.n_params, err);
    return 0;
}

/* What the backend is asked for request req of item it. */
static void gen_request(const run_ctx *c, const item *it, int req,
                        backend_gen_req *out)
{
    const task *t = c->plan.pairs[it->pair].t;
    const task_request *r = &it->reqs[req];
    *out = (backend_gen_req){r->prompt, (const char *const *)t->stop, t->n_stop,
                             req_max_tokens(t, r), req_temperature(c, it),
                             req_top_p(c, it), gen_seed(c, it, it->slots[req].sample)};
}

/* A sampled generation is recorded with its seed (a decimal string: it
 * does not fit a double), so that the replay backend can tell the samples
 * of one prompt apart. */
static void record(run_ctx *c, const item *it, int req, const store_response *res)
{
    const task_request *r = &it->reqs[req];
    if (!c->out.rec || !res->ok)
        return;
    cJSON *o = cJSON_CreateObject();
    if (r->kind == TASK_REQ_LOGLIK) {
        cJSON_AddStringToObject(o, "kind", "loglik");
        cJSON_AddStringToObject(o, "context", r->prompt);
        cJSON_AddStringToObject(o, "continuation", r->continuation);
        cJSON_AddNumberToObject(o, "logprob", res->logprob);
        cJSON_AddNumberToObject(o, "n_tokens", res->n_tokens);
        cJSON_AddBoolToObject(o, "is_greedy", res->is_greedy);
    } else {
        cJSON_AddStringToObject(o, "kind", "generate");
        cJSON_AddStringToObject(o, "prompt", r->prompt);
        cJSON_AddStringToObject(o, "text", res->text ? res->text : "");
        backend_gen_req g;
        gen_request(c, it, req, &g);
        if (g.temperature > 0) {
            char seed[32];
            snprintf(seed, sizeof seed, "%llu", (unsigned long long)g.seed);
            cJSON_AddStringToObject(o, "seed", seed);
        }
        cJSON_AddNumberToObject(o, "n_tokens", res->n_tokens);
        if (res->token_logprobs) {
            cJSON *a = cJSON_AddArrayToObject(o, "token_logprobs");
            for (int i = 0; i < res->n_token_logprobs; i++)
                cJSON_AddItemToArray(a, cJSON_CreateNumber(res->token_logprobs[i]));
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    fprintf(c->out.rec, "%s\n", s);
    free(s);
    cJSON_Delete(o);
}

/* Stores entry i's response and hands it to every item waiting on it. */
static int settle(run_ctx *c, const batch *b, int i, const store_response *res,
                  em_err *err)
{
    const item *first = &c->chunk.items[b->e[i].item];
    const task_request *r = &first->reqs[b->e[i].req];
    const pair *p = &c->plan.pairs[first->pair];
    store_request rq = {.kind = kind_name(r->kind), .model_id = c->model.id,
                        .task_id = p->task_id, .variant = p->v->name,
                        .example_id = p->t->examples[first->ex].id,
                        .pass = first->pass, .choice = r->choice,
                        .prompt = r->prompt,
                        .continuation = r->kind == TASK_REQ_LOGLIK ? r->continuation
                                                                   : NULL,
                        .settings = first->slots[b->e[i].req].settings};
    memcpy(rq.key, b->e[i].key, sizeof rq.key);
    if (store_put_response(c->out.db, &rq, res, c->out.run_id, err) != 0)
        return -1;
    record(c, first, b->e[i].req, res);
    if (!res->ok)
        c->out.st->failed++;
    else if (r->kind == TASK_REQ_GENERATE && !res->token_logprobs)
        c->out.st->no_logprobs++;
    for (int w = 0; w < b->nw; w++) {
        if (b->w[w].entry != i)
            continue;
        const item *it = &c->chunk.items[b->w[w].item];
        fill_slot(c, it, &it->slots[b->w[w].req], res);
        progress_tick(c);
    }
    return 0;
}

/* A batch's answers, computed outside any transaction and stored after:
 * res[i] answers batch entry i; its texts and log-probs are borrowed
 * from gen (freed with it), its error strings owned. */
typedef struct answers {
    store_response *res;
    backend_gen_res *gen;
    int n_gen;
} answers;

static void answers_free(answers *a, int n)
{
    for (int i = 0; i < n; i++)
        free(a->res[i].error);
    for (int k = 0; k < a->n_gen; k++)
        backend_gen_res_clear(&a->gen[k]);
    free(a->res);
    free(a->gen);
}

static int run_loglik(run_ctx *c, const batch *b, answers *a, em_err *err)
{
    int n = 0;
    for (int i = 0; i < b->n; i++)
        n += c->chunk.items[b->e[i].item].reqs[b->e[i].req].kind == TASK_REQ_LOGLIK;
    if (n == 0)
        return 0;
    backend_ll_req *rq = em_calloc((size_t)n, sizeof *rq);
    backend_ll_res *rs = em_calloc((size_t)n, sizeof *rs);
    int *which = em_calloc((size_t)n, sizeof *which);
    for (int i = 0, k = 0; i < b->n; i++) {
        const task_request *r = &c->chunk.items[b->e[i].item].reqs[b->e[i].req];
        if (r->kind != TASK_REQ_LOGLIK)
            continue;
        rq[k] = (backend_ll_req){r->prompt, r->continuation};
        which[k++] = i;
    }
    double t0 = em_now();
    int rc = backend_loglikelihood(c->model.be, rq, rs, n, err);
    double per = (em_now() - t0) / n;
    for (int k = 0; rc == 0 && k < n; k++)
        a->res[which[k]] = (store_response){
            .ok = rs[k].ok, .logprob = rs[k].logprob, .n_tokens = rs[k].n_tokens,
            .is_greedy = rs[k].is_greedy,
            .error = rs[k].ok ? NULL : em_strdup(rs[k].error), .elapsed = per,
            .truncated = rs[k].truncated};
    free(rq);
    free(rs);
    free(which);
    return rc;
}

static int run_generate(run_ctx *c, const batch *b, answers *a, em_err *err)
{
    int n = 0;
    for (int i = 0; i < b->n; i++)
        n += c->chunk.items[b->e[i].item].reqs[b->e[i].req].kind == TASK_REQ_GENERATE;
    if (n == 0)
        return 0;
    backend_gen_req *rq = em_calloc((size_t)n, sizeof *rq);
    a->gen = em_calloc((size_t)n, sizeof *a->gen);
    a->n_gen = n;
    int *which = em_calloc((size_t)n, sizeof *which);
    for (int i = 0, k = 0; i < b->n; i++) {
        const item *it = &c->chunk.items[b->e[i].item];
        const task_request *r = &it->reqs[b->e[i].req];
        if (r->kind != TASK_REQ_GENERATE)
            continue;
        gen_request(c, it, b->e[i].req, &rq[k]);
        which[k++] = i;
    }
    double t0 = em_now();
    int rc = backend_generate(c->model.be, rq, a->gen, n, err);
    double per = (em_now() - t0) / n;
    for (int k = 0; rc == 0 && k < n; k++) {
        const backend_gen_res *g = &a->gen[k];
        a->res[which[k]] = (store_response){
            .ok = g->ok, .text = g->text, .logprob = g->sum_logprob,
            .n_tokens = g->n_tokens, .token_logprobs = g->token_logprobs,
            .n_token_logprobs = g->token_logprobs ? g->n_tokens : 0,
            .error = g->ok ? NULL : em_strdup(g->error), .elapsed = per,
            .truncated = g->truncated, .finish = g->finish};
    }
    free(rq);
    free(which);
    return rc;
}

/* Commits the transaction when rc is 0, else rolls it back. */
static int end_tx(run_ctx *c, int rc, em_err *err)
{
    if (rc == 0 && c->out.rec)
        fflush(c->out.rec);
    if (rc == 0)
        rc = store_commit(c->out.db, err);
    if (rc != 0)
        store_rollback(c->out.db);
    return rc;
}

/* One round over the chunk. Three steps, so that no transaction is open
 * while the model computes (a slow server must not lock the database for
 * other sweeps): the cache lookups and the scores of what the cache
 * completes (one short transaction), the backend calls for every miss,
 * then their responses and the scores they complete (another). A kill
 * between them loses at most the computed batch. *more is 0 when every
 * item of the chunk is done. */
static int round_once(run_ctx *c, batch *b, int *more, em_err *err)
{
    b->n = b->nw = 0;
    int rc = store_begin(c->out.db, err);
    for (int i = 0; rc == 0 && i < c->chunk.n_items; i++)
        rc = visit(c, i, b, err);
    rc = end_tx(c, rc, err);
    *more = b->n > 0;
    if (rc != 0 || b->n == 0)
        return rc;
    answers a = {.res = em_calloc((size_t)b->n, sizeof *a.res)};
    rc = ensure_open(c, err);
    if (rc == 0)
        rc = run_loglik(c, b, &a, err);
    if (rc == 0)
        rc = run_generate(c, b, &a, err);
    c->out.st->sent += b->n;
    if (rc != 0) { /* nothing to store: the sweep stops with err */
        answers_free(&a, b->n);
        return rc;
    }
    rc = store_begin(c->out.db, err);
    for (int i = 0; rc == 0 && i < b->n; i++)
        rc = settle(c, b, i, &a.res[i], err);
    for (int w = 0; rc == 0 && w < b->nw; w++)
        rc = visit(c, b->w[w].item, NULL, err);
    rc = end_tx(c, rc, err);
    answers_free(&a, b->n);
    return rc;
}

/* ---- per model ------------------------------------------------------------------- */

/* Requests one example of the pair costs: its pass-1 requests, plus the
 * zero_shot_cot second pass (one per sample under self-consistency). The
 * progress bar counts these, so self-consistency shows samples. */
static long unit_cost(const pair *p)
{
    if (p->v->kind != VARIANT_ZERO_SHOT_COT)
        return p->per_unit;
    return p->per_unit + (is_sc(p) ? p->drawn : 1);
}

/* Batches are chunks of consecutive examples of one (task, variant), cut
 * from the full example list by --batch alone. What a chunk sends does
 * not depend on how far an earlier, killed run got, so a backend whose
 * numbers depend on batch composition still gives a resumed sweep the
 * same responses as an uninterrupted one. */
static int build_chunk(run_ctx *c, int p, int start, int end, em_err *err)
{
    const pair *pp = &c->plan.pairs[p];
    c->chunk.items = em_calloc((size_t)(end - start) + 1, sizeof *c->chunk.items);
    c->chunk.n_items = 0;
    for (int e = start; e < end; e++) {
        int done = 0;
        if (!c->o->rescore &&
            store_has_scores(c->out.db, c->model.id, pp->task_id, pp->v->name,
                             pp->t->examples[e].id, pp->config, &done, err) != 0)
            return -1;
        if (done) {
            c->out.st->skipped++;
            c->prog.done += unit_cost(pp);
            progress_update(c->prog.pb, c->prog.done);
            continue;
        }
        item *it = &c->chunk.items[c->chunk.n_items++];
        it->pair = p;
        it->ex = e;
        if (build_pass1(c, it, err) != 0)
            return -1;
        c->out.st->requests += it->n_reqs;
        c->out.st->samples += sc_requests(c, it);
    }
    return 0;
}

static void free_items(run_ctx *c)
{
    for (int i = 0; i < c->chunk.n_items; i++)
        item_clear(&c->chunk.items[i]);
    free(c->chunk.items);
    c->chunk.items = NULL;
    c->chunk.n_items = 0;
}

/* Whether the sweep must stop after the round it just stored: a signal
 * asked for it (sweep_opts.stop), or --on-overflow error met a prompt. */
static int must_stop(run_ctx *c, em_err *err)
{
    if (c->notes.overflow_msg[0])
        return em_errorf(err, "%s", c->notes.overflow_msg);
    if (c->o->stop && *c->o->stop) {
        c->out.st->stopped = 1;
        return 1;
    }
    return 0;
}

static int run_chunks(run_ctx *c, em_err *err)
{
    batch b = {0};
    int rc = 0;
    for (int p = 0; rc == 0 && p < c->plan.n_pairs; p++) {
        const pair *pp = &c->plan.pairs[p];
        for (int s = 0; rc == 0 && s < pp->n_ex; s += pp->chunk) {
            int end = s + pp->chunk < pp->n_ex ? s + pp->chunk : pp->n_ex;
            rc = build_chunk(c, p, s, end, err);
            for (int more = 1; rc == 0 && more;) {
                rc = round_once(c, &b, &more, err);
                if (rc == 0)
                    rc = must_stop(c, err);
            }
            free_items(c);
        }
    }
    if (rc > 0) /* stopped by a signal: not an error */
        rc = 0;
    free(b.e);
    free(b.w);
    return rc;
}

static int register_model(run_ctx *c, em_err *err)
{
    const family_member *m = c->model.m;
    if (identity_of_model(&m->spec, c->out.db, &c->model.identity, err) != 0)
        return -1;
    char *js = spec_json(m);
    store_model sm = {m->spec.name, m->spec.backend, m->spec.path,
                      m->spec.n_params, m->spec.n_tokens, m->step, js,
                      c->model.identity, c->out.run_id};
    int rc = store_put_model(c->out.db, &sm, &c->model.id, err);
    free(js);
    return rc;
}

/* Per task and variant of member m: the prompts that did not fit the
 * context and the generations cut short, with what became of them. */
static void report_context(const run_ctx *c, const family_member *m)
{
    static const char *const fate[] = {
        "scored on the truncated prompts (marked in `emerge results`)",
        "those examples left unscored (--on-overflow skip)",
        "the sweep stopped (--on-overflow error)"};
    char ctx[48] = "";
    if (c->model.be && c->model.be->info.n_ctx > 0)
        snprintf(ctx, sizeof ctx, " of %d tokens", c->model.be->info.n_ctx);
    for (int p = 0; p < c->plan.n_pairs; p++) {
        const pair *pp = &c->plan.pairs[p];
        if (pp->n_trunc > 0)
            fprintf(stderr, "emerge: %s: task %s, variant %s: %ld prompts did not "
                    "fit the model's context%s (up to %d tokens dropped from the "
                    "start): %s\n", m->spec.name, pp->t->name, pp->v->name,
                    pp->n_trunc, ctx, pp->max_trunc, fate[c->o->on_overflow]);
        if (pp->n_cut > 0)
            fprintf(stderr, "emerge: %s: task %s, variant %s: %ld generations "
                    "stopped at max_tokens or the end of the context before a "
                    "stop string\n", m->spec.name, pp->t->name, pp->v->name,
                    pp->n_cut);
    }
}

static int run_model(run_ctx *c, int index, em_err *err)
{
    const family_member *m = &c->o->fam->members[index];
    sweep_stats before = *c->out.st;
    c->model.m = m;
    int rc = register_model(c, err);
    c->prog.done = c->prog.total = 0;
    for (int p = 0; p < c->plan.n_pairs; p++) {
        c->prog.total += (long)c->plan.pairs[p].n_ex * unit_cost(&c->plan.pairs[p]);
        c->plan.pairs[p].n_trunc = c->plan.pairs[p].n_cut = 0;
        c->plan.pairs[p].max_trunc = 0;
    }
    if (rc == 0) {
        char label[96];
        snprintf(label, sizeof label, "%.80s %d/%d", m->spec.name, index + 1,
                 c->o->fam->n_members);
        c->prog.pb = c->o->quiet ? NULL : progress_new(label, c->prog.total);
        rc = run_chunks(c, err);
    }
    progress_free(c->prog.pb);
    c->prog.pb = NULL;
    if (!c->o->quiet)
        report_context(c, m);
    backend_close(c->model.be);
    c->model.be = NULL;
    free(c->model.identity);
    c->model.identity = NULL;
    if (rc != 0)
        return em_error_prefix(err, "model '%s'", m->spec.name);
    if (!c->o->quiet)
        fprintf(stderr, "emerge: %s: %ld requests (%ld cached, %ld sent, %ld "
                "failed; %ld self-consistency samples), %ld examples scored, "
                "%ld scored before%s\n",
                m->spec.name,
                c->out.st->cached - before.cached + c->out.st->sent - before.sent,
                c->out.st->cached - before.cached, c->out.st->sent - before.sent,
                c->out.st->failed - before.failed, c->out.st->samples - before.samples,
                c->out.st->scored - before.scored,
                c->out.st->skipped - before.skipped,
                c->out.st->unscored > before.unscored
                    ? " (some left unscored: failed requests are retried by "
                      "the next run)" : "");
    return 0;
}

/* ---- tasks ----------------------------------------------------------------------- */

/* "NAME+scN": variant NAME with N self-consistency samples. Its sampling
 * settings are NAME's own self_consistency ones when it has them, else
 * temperature --temperature (TASK_SC_TEMPERATURE, 0.7, when that is 0)
 * and top_p 1. The copy borrows NAME's strings and lives for the run. */
static const task_variant *find_variant(run_ctx *c, const task *t,
                                        const char *name)
{
    const task_variant *v = task_variant_find(t, name);
    const char *plus = strstr(name, "+sc");
    if (v || !plus)
        return v;
    char *end;
    long n = strtol(plus + 3, &end, 10);
    if (end == plus + 3 || *end || n < 1 || n > 1000)
        return NULL;
    char *base = em_strndup(name, (size_t)(plus - name));
    const task_variant *bv = task_variant_find(t, base);
    free(base);
    if (!bv)
        return NULL;
    task_variant *nv = em_malloc(sizeof *nv);
    *nv = *bv;
    nv->name = em_strdup(name);
    nv->sc_samples = (int)n;
    if (bv->sc_samples <= 0) {
        nv->sc_temperature = c->o->temperature > 0 ? c->o->temperature
                                                   : TASK_SC_TEMPERATURE;
        nv->sc_top_p = 1;
    }
    run_plan *pl = &c->plan;
    pl->xvars = em_realloc(pl->xvars, sizeof *pl->xvars * (size_t)(pl->n_xvars + 1));
    c->plan.xvars[c->plan.n_xvars++] = nv;
    return nv;
}

static int load_pairs(run_ctx *c, task ***tasks, em_err *err)
{
    const sweep_opts *o = c->o;
    static char *standard[] = {"standard"};
    char **vnames = o->n_variants ? o->variants : standard;
    int nv = o->n_variants ? o->n_variants : 1;
    *tasks = em_calloc((size_t)o->n_tasks + 1, sizeof **tasks);
    c->plan.pairs = em_calloc((size_t)(o->n_tasks * nv) + 1, sizeof *c->plan.pairs);
    for (int i = 0; i < o->n_tasks; i++) {
        if (task_load(o->task_paths[i], &(*tasks)[i], err) != 0)
            return -1;
        task *t = (*tasks)[i];
        for (int k = 0; k < i; k++)
            if (!strcmp((*tasks)[k]->name, t->name))
                return em_errorf(err, "%s: task name '%s' is also used by %s",
                                 t->path, t->name, (*tasks)[k]->path);
        int64_t id;
        if (store_put_task(c->out.db, t, c->out.run_id, &id, err) != 0)
            return -1;
        for (int v = 0; v < nv; v++) {
            const task_variant *tv = find_variant(c, t, vnames[v]);
            if (!tv) {
                em_buf known = {0};
                for (int k = 0; k < t->n_variants; k++)
                    em_buf_printf(&known, "%s%s", k ? ", " : "", t->variants[k].name);
                em_errorf(err, "%s: task '%s' has no variant '%s' (it has: %s; "
                          "add +scN for self-consistency, e.g. cot+sc8)",
                          t->path, t->name, vnames[v], known.s ? known.s : "");
                em_buf_free(&known);
                return -1;
            }
            c->plan.pairs[c->plan.n_pairs++] = (pair){.t = t, .task_id = id, .v = tv,
                                            .per_unit = 1, .chunk = 1};
        }
    }
    return 0;
}

/* Samples drawn and the score config of a pair. Greedy scores do not
 * depend on the seed, so greedy runs share them; sampled scores depend on
 * the temperature and the seed, and self-consistency scores also on the
 * samples voted (a --max-samples look is recomputed by a full run, which
 * draws only the samples the look did not). */
static void pair_settings(const run_ctx *c, pair *p)
{
    const sweep_opts *o = c->o;
    if (!is_sc(p)) {
        snprintf(p->config, sizeof p->config, "%s", c->plan.config);
        return;
    }
    p->drawn = o->max_samples > 0 && o->max_samples < p->v->sc_samples
                   ? o->max_samples : p->v->sc_samples;
    snprintf(p->config, sizeof p->config,
             "sc=%d/%d,temperature=%.17g,top_p=%.17g,seed=%llu", p->drawn,
             p->v->sc_samples, p->v->sc_temperature, p->v->sc_top_p,
             (unsigned long long)o->seed);
}

/* A variant a task cannot run (cot without rationales, +scN on a
 * log-likelihood task) is left out, named on stderr and counted
 * (stats.missing: the sweep's exit status says it is incomplete) rather
 * than stopping the rest. The first example's requests also size the
 * pair's chunks. */
static void drop_unbuildable(run_ctx *c)
{
    int k = 0;
    for (int p = 0; p < c->plan.n_pairs; p++) {
        pair *pp = &c->plan.pairs[p];
        task_request *r;
        int n;
        em_err e;
        pair_settings(c, pp);
        if (pp->t->n_examples > 0 && pair_requests(pp, 0, &r, &n, &e) != 0) {
            fprintf(stderr, "emerge: error: task %s, variant %s cannot be run, "
                    "left out: %s\n", pp->t->name, pp->v->name, e.msg);
            c->out.st->missing++;
            continue;
        }
        if (pp->t->n_examples > 0)
            task_requests_free(r, n);
        else
            n = 1;
        c->plan.pairs[k] = *pp;
        c->plan.pairs[k].n_ex = c->o->limit > 0 && c->o->limit < pp->t->n_examples
                               ? c->o->limit : pp->t->n_examples;
        c->plan.pairs[k].per_unit = n > 0 ? n : 1;
        c->plan.pairs[k].chunk = c->o->batch / c->plan.pairs[k].per_unit;
        if (c->plan.pairs[k].chunk < 1)
            c->plan.pairs[k].chunk = 1;
        k++;
    }
    c->plan.n_pairs = k;
}

int sweep_run(const sweep_opts *o, sweep_stats *stats, em_err *err)
{
    memset(stats, 0, sizeof *stats);
    if (o->batch <= 0)
        return em_errorf(err, "--batch must be a positive number");
    run_ctx c = {.o = o, .out.st = stats};
    /* Greedy scores do not depend on the seed, so greedy runs share them;
     * sampled scores depend on the temperature and the seed. */
    if (o->temperature > 0)
        snprintf(c.plan.config, sizeof c.plan.config, "temperature=%.17g,seed=%llu",
                 o->temperature, (unsigned long long)o->seed);
    else
        snprintf(c.plan.config, sizeof c.plan.config, "greedy");
    if (store_open(o->db_path, &c.out.db, err) != 0)
        return -1;
    task **tasks = NULL;
    int rc = store_add_run(c.out.db, o->command, o->seed, &c.out.run_id, err);
    if (rc == 0 && store_begin(c.out.db, err) == 0) {
        rc = load_pairs(&c, &tasks, err);
        rc = rc == 0 ? store_commit(c.out.db, err) : (store_rollback(c.out.db), -1);
    } else {
        rc = -1;
    }
    if (rc == 0 && o->record_path && !(c.out.rec = fopen(o->record_path, "a")))
        rc = em_errorf(err, "%s: cannot open for appending", o->record_path);
    if (rc == 0)
        drop_unbuildable(&c);
    if (rc == 0 && c.plan.n_pairs == 0)
        rc = em_errorf(err, "nothing to run: none of the %ld requested task/"
                       "variant pairs can be built", stats->missing);
    for (int i = 0; rc == 0 && !stats->stopped && i < o->fam->n_members; i++)
        rc = run_model(&c, i, err);
    if (c.out.rec)
        fclose(c.out.rec);
    for (int i = 0; tasks && i < o->n_tasks; i++)
        task_free(tasks[i]);
    free(tasks);
    free(c.plan.pairs);
    sweep_free_list(c.notes.warned, c.notes.n_warned);
    for (int i = 0; i < c.plan.n_xvars; i++) {
        free(c.plan.xvars[i]->name);
        free(c.plan.xvars[i]);
    }
    free(c.plan.xvars);
    store_close(c.out.db);
    return rc;
}

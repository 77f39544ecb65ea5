/*
 * sweep_item.c - an item of a sweep (one example of a task x variant pair)
 * and the requests of its current pass: pass 1 from the task module
 * (replicated per sample under self-consistency), zero_shot_cot's second
 * pass built from pass 1's outputs, and for every request the generation
 * settings and seed, and the cache key it is stored under.
 *
 * Determinism lives here: seeds derive from (run seed, task, example id,
 * pass, sample), and the cache key covers everything a backend sees, so a
 * resumed run sends exactly the requests an uninterrupted one would.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "harness/store.h"
#include "harness/sweep_int.h"
#include "harness/task.h"

static void slot_clear(slot *s)
{
    free(s->settings);
    free(s->text);
    memset(s, 0, sizeof *s);
}

void sweep_item_clear(item *it)
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

/* The self-consistency generations among an item's requests. */
long sweep_sc_requests(const run_ctx *c, const item *it)
{
    long n = 0;
    for (int i = 0; sweep_is_sc(&c->plan.pairs[it->pair]) && i < it->n_reqs; i++)
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
    if (sweep_is_sc(p))
        return it->pass == 1 ? p->v->sc_temperature : 0;
    return c->o->temperature;
}

static double req_top_p(const run_ctx *c, const item *it)
{
    const pair *p = &c->plan.pairs[it->pair];
    return sweep_is_sc(p) && it->pass == 1 ? p->v->sc_top_p : 1;
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

const char *sweep_kind_name(task_req_kind k)
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
        s->sample = sweep_is_sc(&c->plan.pairs[it->pair]) &&
                            r->kind == TASK_REQ_GENERATE ? sample++ : -1;
        s->settings = r->kind == TASK_REQ_GENERATE ? gen_settings(c, it, r, s->sample)
                                                   : NULL;
        store_cache_key(c->model.identity, sweep_kind_name(r->kind), r->prompt,
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
int sweep_pair_requests(const pair *p, int ex, task_request **reqs, int *n,
                        em_err *err)
{
    if (task_build_requests(p->t, p->v, ex, reqs, n, err) != 0)
        return -1;
    if (sweep_is_sc(p) && replicate(reqs, n, p->drawn, err) != 0) {
        task_requests_free(*reqs, *n);
        *reqs = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

int sweep_item_pass1(run_ctx *c, item *it, em_err *err)
{
    const pair *p = &c->plan.pairs[it->pair];
    if (sweep_pair_requests(p, it->ex, &it->reqs, &it->n_reqs, err) != 0)
        return em_error_prefix(err, "%s: variant %s, example %s", p->t->path,
                               p->v->name, p->t->examples[it->ex].id);
    it->pass = 1;
    slots_init(c, it);
    return 0;
}

/* zero_shot_cot's second pass: one per sample under self-consistency,
 * each reading its own rationale; else one, after the first generation. */
int sweep_item_pass2(run_ctx *c, item *it, em_err *err)
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
    n2 = sweep_is_sc(p) ? n2 : 1;
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
    sweep_item_clear(it);
    it->reqs = r2;
    it->n_reqs = n2;
    it->pass = 2;
    slots_init(c, it);
    return 0;
}

/* What the backend is asked for request req of item it. */
void sweep_gen_request(const run_ctx *c, const item *it, int req,
                       backend_gen_req *out)
{
    const task *t = c->plan.pairs[it->pair].t;
    const task_request *r = &it->reqs[req];
    *out = (backend_gen_req){r->prompt, (const char *const *)t->stop, t->n_stop,
                             req_max_tokens(t, r), req_temperature(c, it),
                             req_top_p(c, it), gen_seed(c, it, it->slots[req].sample)};
}

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
 *
 * This file is the loop; an item's requests (seeds, settings, cache keys,
 * passes) are built in sweep_item.c, a finished item is scored in
 * sweep_score.c, and the task lists are sweep_list.c's (sweep_int.h).
 */
#include "harness/sweep.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "base/progress.h"
#include "harness/identity.h"
#include "harness/store.h"
#include "harness/shard.h"
#include "harness/sweep_int.h"
#include "harness/task.h"

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
    if (m->spec.n_params_nonembed > 0)
        cJSON_AddNumberToObject(o, "params_nonembed",
                                m->spec.n_params_nonembed);
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

/* ---- batches -------------------------------------------------------------------- */

/* A batch: the distinct requests to send (entries) and every item
 * request waiting on one of them (waiters). */
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
    if (sweep_item_pass2(c, it, err) != 0)
        return -1;
    c->out.st->requests += it->n_reqs;
    c->out.st->samples += sweep_sc_requests(c, it);
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
        if (sweep_score_item(c, it, err) != 0)
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
            sweep_item_clear(it);
    }
    return 0;
}

static int ensure_open(run_ctx *c, em_err *err)
{
    if (c->model.be)
        return 0;
    if (backend_open(&c->model.m->spec, &c->model.be, err) != 0)
        return -1;
    const backend_spec *sp = &c->model.m->spec;
    const backend_info *in = &c->model.be->info;
    double total = sp->n_params > 0 ? 0 : in->n_params;
    double nonembed = sp->n_params_nonembed > 0 ? 0 : in->n_params_nonembed;
    if (total > 0 || nonembed > 0)
        return store_set_model_params(c->out.db, c->model.id, total, nonembed,
                                      err);
    return 0;
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
        sweep_gen_request(c, it, req, &g);
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
    store_request rq = {.kind = sweep_kind_name(r->kind), .model_id = c->model.id,
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
        sweep_gen_request(c, it, b->e[i].req, &rq[k]);
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
    return p->per_unit + (sweep_is_sc(p) ? p->drawn : 1);
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
        if (sweep_item_pass1(c, it, err) != 0)
            return -1;
        c->out.st->requests += it->n_reqs;
        c->out.st->samples += sweep_sc_requests(c, it);
    }
    return 0;
}

static void free_items(run_ctx *c)
{
    for (int i = 0; i < c->chunk.n_items; i++)
        sweep_item_clear(&c->chunk.items[i]);
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
            if (!sweep_shard_mine(c, c->model.index, p, s))
                continue;
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
                      c->model.identity, c->out.run_id,
                      m->spec.n_params_nonembed};
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

/* The requests the model's share of the plan costs (its cells under
 * --shard), for the progress bar. */
static long model_total(run_ctx *c)
{
    long total = 0;
    for (int p = 0; p < c->plan.n_pairs; p++) {
        pair *pp = &c->plan.pairs[p];
        for (int s = 0; s < pp->n_ex; s += pp->chunk) {
            int end = s + pp->chunk < pp->n_ex ? s + pp->chunk : pp->n_ex;
            if (sweep_shard_mine(c, c->model.index, p, s))
                total += (long)(end - s) * unit_cost(pp);
        }
        pp->n_trunc = pp->n_cut = 0;
        pp->max_trunc = 0;
    }
    return total;
}

/* Member index's estimated cost over this run's cells. */
static double member_cost(run_ctx *c, int index)
{
    double cost = 0;
    const family_member *m = &c->o->fam->members[index];
    for (int p = 0; p < c->plan.n_pairs; p++) {
        const pair *pp = &c->plan.pairs[p];
        for (int s = 0; s < pp->n_ex; s += pp->chunk) {
            int ex = s + pp->chunk < pp->n_ex ? pp->chunk : pp->n_ex - s;
            if (sweep_shard_mine(c, index, p, s))
                cost += (double)shard_cost(m->spec.n_params, ex, pp->unit_tokens);
        }
    }
    return cost;
}

/* "sweep ETA 12 min" from the members done so far, scaled by cost; "" for
 * the first member (nothing to scale from yet). */
static void sweep_eta(const run_ctx *c, char *buf, size_t n)
{
    const run_progress *g = &c->prog;
    double el = em_now() - g->t0;
    buf[0] = '\0';
    if (g->cost_done <= 0 || g->cost_total <= g->cost_done || el <= 0)
        return;
    double s = el * (g->cost_total - g->cost_done) / g->cost_done;
    if (s < 120)
        snprintf(buf, n, ", sweep ETA %.0f s", s);
    else if (s < 7200)
        snprintf(buf, n, ", sweep ETA %.0f min", s / 60);
    else
        snprintf(buf, n, ", sweep ETA %.1f h", s / 3600);
}

static int run_model(run_ctx *c, int index, em_err *err)
{
    const family_member *m = &c->o->fam->members[index];
    sweep_stats before = *c->out.st;
    c->model.m = m;
    c->model.index = index;
    /* A member with no cell in this shard is not even registered: its
     * files are not hashed, and the shard that evaluates it stores it. */
    if (sweep_shard_member_cells(c, index) == 0)
        return 0;
    int rc = register_model(c, err);
    c->prog.done = 0;
    c->prog.total = model_total(c);
    if (rc == 0) {
        char label[160], eta[48];
        sweep_eta(c, eta, sizeof eta);
        snprintf(label, sizeof label, "%.80s %d/%d%s", m->spec.name, index + 1,
                 c->o->fam->n_members, eta);
        c->prog.pb = c->o->quiet ? NULL : progress_new(label, c->prog.total);
        rc = run_chunks(c, err);
    }
    progress_free(c->prog.pb);
    c->prog.pb = NULL;
    c->prog.cost_done += member_cost(c, index);
    if (!c->o->quiet)
        report_context(c, m);
    backend_close(c->model.be);
    c->model.be = NULL;
    free(c->model.identity);
    c->model.identity = NULL;
    if (rc != 0)
        return em_error_prefix(err, "model '%s'", m->spec.name);
    char eta[48];
    sweep_eta(c, eta, sizeof eta);
    if (!c->o->quiet)
        fprintf(stderr, "emerge: %s: %ld requests (%ld cached, %ld sent, %ld "
                "failed; %ld self-consistency samples), %ld examples scored, "
                "%ld scored before%s%s\n",
                m->spec.name,
                c->out.st->cached - before.cached + c->out.st->sent - before.sent,
                c->out.st->cached - before.cached, c->out.st->sent - before.sent,
                c->out.st->failed - before.failed, c->out.st->samples - before.samples,
                c->out.st->scored - before.scored,
                c->out.st->skipped - before.skipped,
                c->out.st->unscored > before.unscored
                    ? " (some left unscored: failed requests are retried by "
                      "the next run)" : "", eta);
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
    if (!sweep_is_sc(p)) {
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
        if (pp->t->n_examples > 0 && sweep_pair_requests(pp, 0, &r, &n, &e) != 0) {
            fprintf(stderr, "emerge: error: task %s, variant %s cannot be run, "
                    "left out: %s\n", pp->t->name, pp->v->name, e.msg);
            c->out.st->missing++;
            continue;
        }
        if (pp->t->n_examples > 0) {
            pp->unit_tokens = sweep_shard_tokens(pp->t, r, n);
            task_requests_free(r, n);
        } else {
            n = 1;
        }
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
    /* a plan stores nothing: its tasks register in a store in memory */
    if (store_open(o->plan ? ":memory:" : o->db_path, &c.out.db, err) != 0)
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
    if (rc == 0)
        sweep_shard_plan(&c);
    if (rc == 0 && o->plan)
        rc = sweep_plan(&c, err);
    c.prog.t0 = em_now();
    for (int i = 0; rc == 0 && i < o->fam->n_members; i++)
        c.prog.cost_total += member_cost(&c, i);
    for (int i = 0; rc == 0 && !o->plan && !stats->stopped &&
                    i < o->fam->n_members; i++)
        rc = run_model(&c, i, err);
    if (c.out.rec)
        fclose(c.out.rec);
    for (int i = 0; tasks && i < o->n_tasks; i++)
        task_free(tasks[i]);
    free(tasks);
    sweep_shard_free(&c);
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

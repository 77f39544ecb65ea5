/*
 * sweep_int.h - what the files of the sweep share (sweep.h is the public
 * face): the run's state, the items it evaluates and the task x variant
 * pairs they belong to.
 *
 * The files, bottom first (each uses only those before it):
 *   sweep_list.c   task lists: --tasks entries, directories, suites
 *   sweep_item.c   an item's requests: passes, seeds, settings, cache keys
 *   sweep_score.c  a finished item's scores (self-consistency's vote too)
 *   sweep_shard.c  --shard: the cells (model x pair x batch) this run owns
 *   sweep_plan.c   --plan: the run's requests, tokens and estimated time
 *   sweep.c        the loop: cache, batches, backend calls, models, run
 */
#ifndef EMERGE_SWEEP_INT_H
#define EMERGE_SWEEP_INT_H

#include <stdint.h>
#include <stdio.h>

#include "backends/backend.h"
#include "base/progress.h"
#include "harness/family.h"
#include "harness/store.h"
#include "harness/sweep.h"
#include "harness/task.h"

enum { SLOT_OPEN, SLOT_OK, SLOT_FAILED };
enum { ITEM_ACTIVE, ITEM_DONE, ITEM_FAILED, ITEM_OVERFLOW };

/* One request of an item's current pass and the response that answers it. */
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

/* One example of a pair, with the requests of its current pass. */
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

/* One task under one variant, as this run evaluates it. */
typedef struct pair {
    task *t;
    int64_t task_id;
    const task_variant *v;
    int n_ex;         /* examples run (--limit applied) */
    int per_unit;     /* pass-1 requests of its first example */
    int chunk;        /* examples per batch */
    int drawn;        /* self-consistency: samples drawn (--max-samples) */
    long unit_tokens; /* estimated tokens of one example (--shard costs) */
    char config[160]; /* run settings its scores depend on */
    /* the model being run: */
    long n_trunc;     /* requests whose prompt did not fit the context */
    int max_trunc;    /* the most tokens one of them lost */
    long n_cut;       /* generations ended by max_tokens or the context */
} pair;

/* The state of one sweep_run, in parts by concern. */
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
    /* --shard: whether cell (member, pair, batch) is this shard's, at
     * mine[member * cells_per_member + pair_off[pair] + batch] */
    unsigned char *mine;
    int *pair_off;
    int cells_per_member;
} run_plan;

typedef struct run_member {     /* the model being run */
    const family_member *m;
    int index;        /* in the family */
    char *identity;
    int64_t id;
    backend *be;      /* opened on its first miss */
} run_member;

typedef struct run_progress {   /* the model's requests, done of total */
    progress *pb;
    long total, done;
    /* the whole sweep, in estimated cost (shard_cost: parameters x
     * examples x tokens), for its ETA: the members' costs differ by their
     * size, so elapsed time scales by cost, not by request count */
    double cost_total, cost_done;
    double t0;
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

static inline int sweep_is_sc(const pair *p) { return p->v->sc_samples > 0; }

/* ---- sweep_item.c ---- */

/* Frees the item's requests and slots (it keeps its pair and example). */
void sweep_item_clear(item *it);
/* The pass-1 requests of example ex of pair p (self-consistency: its
 * generation once per sample drawn). */
int sweep_pair_requests(const pair *p, int ex, task_request **reqs, int *n,
                        em_err *err);
/* Item it's first pass / zero_shot_cot's second pass (from pass 1's
 * outputs), with slots keyed for the cache. */
int sweep_item_pass1(run_ctx *c, item *it, em_err *err);
int sweep_item_pass2(run_ctx *c, item *it, em_err *err);
/* The self-consistency generations among an item's requests. */
long sweep_sc_requests(const run_ctx *c, const item *it);
/* "generate" or "loglik", as the store names request kinds. */
const char *sweep_kind_name(task_req_kind k);
/* What the backend is asked for request req of item it. */
void sweep_gen_request(const run_ctx *c, const item *it, int req,
                       backend_gen_req *out);

/* ---- sweep_score.c ---- */

/* Scores a finished item with its task's metrics (self-consistency: by
 * majority vote, with the vote's metrics) and stores the scores. */
int sweep_score_item(run_ctx *c, item *it, em_err *err);

/* ---- sweep_shard.c ---- */

/* Estimated tokens of one example: its requests' prompt and continuation
 * bytes / 4, plus max_tokens for each generation. */
long sweep_shard_tokens(const task *t, const task_request *r, int n);
/* Under --shard: cuts the plan into cells, assigns them (shard.h) and
 * says on stderr what this shard got. Nothing without --shard. */
void sweep_shard_plan(run_ctx *c);
/* 1 when the batch of pair p starting at example start of family member
 * m is this run's (always, without --shard). */
int sweep_shard_mine(const run_ctx *c, int m, int p, int start);
/* The cells of member m this run owns (without --shard: 1). */
long sweep_shard_member_cells(const run_ctx *c, int m);
void sweep_shard_free(run_ctx *c);

/* ---- sweep_plan.c ---- */

/* --plan: prints per member (of this shard) the requests, prompt tokens,
 * generated tokens at most and an estimated time from a calibration on
 * the member; evaluates nothing. */
int sweep_plan(run_ctx *c, em_err *err);

#endif

/*
 * sweep.h - runs tasks x variants x examples over a model family.
 *
 * Owns: the evaluation loop. Models run one at a time in the family's
 * order (loaded once, all their work done, closed); for each (task,
 * variant, example) the requests are built by the task module, served
 * from the store's cache when an ok response exists, otherwise sent to
 * the backend in batches. Each batch is stored in ONE transaction together
 * with the scores of the examples it completes, so a killed sweep resumes
 * where it stopped and ends with byte-identical scores. The backend
 * computes outside any transaction: a batch's lookups (and the scores of
 * examples the cache completes) are one short transaction, its responses
 * and the scores they complete another, so concurrent sweeps into one
 * database never wait on a model. Units (model,
 * task, variant, example) that already have scores are skipped without
 * rebuilding their requests, so a resumed run costs only what is left.
 *
 * Self-consistency variants draw N seeded samples per example, each its own
 * request, and score the majority answer plus sc_agreement, sc_correct and
 * pass@k (tasks/README.md, "Self-consistency").
 *
 * Sharding (sweep_opts.shard, n_shards): the run evaluates only its cells
 * of member x task x variant x batch as harness/shard.h deals them out, and
 * registers (hashes) only the members it has cells of; since batches and
 * seeds do not depend on what else runs, N shards merged (harness/merge.h)
 * hold exactly the scores one unsharded run writes.
 */
#ifndef EMERGE_SWEEP_H
#define EMERGE_SWEEP_H

#include <signal.h>
#include <stdint.h>

#include "base/common.h"
#include "harness/family.h"

typedef struct sweep_opts {
    char **task_paths;      /* task files (directories already expanded) */
    int n_tasks;
    char **variants;        /* variant names; none means "standard" */
    int n_variants;
    family *fam;            /* borrowed; run in member order (family_sort) */
    const char *db_path;
    uint64_t seed;          /* run seed: generation seeds derive from it */
    int limit;              /* examples per task, 0 = all */
    int batch;              /* requests per backend call, default 32 */
    double temperature;     /* 0 = greedy; also the temperature of
                               "NAME+scN" variants (0: TASK_SC_TEMPERATURE) */
    int max_samples;        /* self-consistency samples drawn per example,
                               0 = all the variant asks for */
    const char *record_path;/* append every ok response as replay JSONL */
    const char *command;    /* the command line, for the runs table */
    int quiet;              /* no progress bar or summary lines */
    int rescore;            /* recompute scores already stored (from the
                               cached responses: after a metric changed) */
    int on_overflow;        /* SWEEP_OVERFLOW_*: a prompt longer than the
                               model's context */
    volatile sig_atomic_t *stop; /* set (by a signal handler) to stop after
                               the batch in flight; NULL: never */
    int plan;               /* --plan: print what the run would cost
                               (harness/sweep_plan.c) and evaluate nothing;
                               db_path is not opened */
    int shard, n_shards;    /* --shard I/N: evaluate only shard I (1-based)
                               of n_shards (harness/shard.h); n_shards 0:
                               the whole sweep */
} sweep_opts;

/* What a sweep does with an example whose prompt did not fit the model's
 * context (the backend dropped its oldest tokens): score it on the
 * truncated prompt (stored, counted and marked in the results), leave it
 * unscored (counted; the sweep exits 1), or stop the sweep with an error
 * (after storing the batch). */
enum { SWEEP_OVERFLOW_TRUNCATE, SWEEP_OVERFLOW_SKIP, SWEEP_OVERFLOW_ERROR };

typedef struct sweep_stats {
    long requests;   /* requests the sweep needed (every self-consistency
                        sample is one) */
    long samples;    /* of those, self-consistency samples (and their
                        zero_shot_cot second passes) */
    long cached;     /* served from the store */
    long sent;       /* sent to a backend */
    long failed;     /* failed responses (retried by the next run) */
    long scored;     /* (model, task, variant, example) units scored */
    long unscored;   /* units left unscored because a request failed */
    long skipped;    /* units already scored by an earlier run */
    long truncated;  /* requests whose prompt lost tokens to the context */
    long cut;        /* generations ended by max_tokens or a full context */
    long no_logprobs;/* ok generations the backend gave no log-probs for */
    long overflowed; /* units left unscored by --on-overflow skip/error */
    long missing;    /* requested (task, variant) pairs that could not be
                        built (each named on stderr) */
    int stopped;     /* a signal stopped the sweep between batches */
} sweep_stats;

int sweep_run(const sweep_opts *o, sweep_stats *stats, em_err *err);

/* Expands a comma-separated list of task files and directories (every
 * task file of a directory as task_list_dir() finds them - *.yaml, *.yml,
 * BIG-bench *.json and <sub>/task.json - sorted) into paths. */
int sweep_expand_tasks(const char *list, char ***paths, int *n, em_err *err);
void sweep_free_list(char **list, int n);
/* 1 for a loose *.json file (not <sub>/task.json) of a task directory
 * that does not load as a task: a YAML task's data file. Notes why on
 * stderr. */
int sweep_json_is_data(const char *path);
/* Splits "a,b,c" into a malloc'd list. */
void sweep_split(const char *list, char ***out, int *n);

#endif

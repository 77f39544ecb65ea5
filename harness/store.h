/*
 * store.h - the SQLite store of runs, models, tasks, requests, responses
 * and scores.
 *
 * Owns: the schema (versioned with PRAGMA user_version), the response
 * cache keyed by SHA-256 of (model identity, kind, prompt, continuation,
 * settings) and per-example scores: the write side. What the scores add
 * up to (result rows, scaling series) is metrics/results.h, read through
 * the read-only metrics/store_query.h.
 *
 * The database is opened in WAL mode with foreign keys on. The sweep
 * wraps each batch of responses and the scores they complete in ONE
 * transaction (store_begin/store_commit), so a process killed at any
 * moment leaves either all of a batch or none of it; re-running resumes.
 * Only ok responses are served from the cache: a failed response is kept
 * (for the record) and the request is sent again by the next run.
 */
#ifndef EMERGE_STORE_H
#define EMERGE_STORE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "base/common.h"
#include "harness/task.h"
#include "metrics/store_db.h"

typedef struct store store;

/* Opens (creating it if missing) a store for writing; an older schema is
 * upgraded in place, with a note. A writer that finds the database busy
 * waits for the other writer with backoff, says so after 5 s and gives up
 * after 120 s. */
int store_open(const char *path, store **out, em_err *err);
void store_close(store *s);

/* Removes every superseded task version (not the one a name's latest run
 * used, store_db.h) with its examples and scores, a line on f for each;
 * dry_run only prints. Cached responses stay. *removed: versions listed. */
int store_gc(store *s, int dry_run, FILE *f, int *removed, em_err *err);

int store_begin(store *s, em_err *err);
int store_commit(store *s, em_err *err);
void store_rollback(store *s);

/* Records one invocation; *id receives the run id. */
int store_add_run(store *s, const char *command, uint64_t seed, int64_t *id,
                  em_err *err);

typedef struct store_model {
    const char *name, *backend, *path;
    double params, tokens, step;  /* 0 / 0 / -1 when unknown */
    const char *spec_json;        /* the member as JSON, for the record */
    const char *identity;         /* what makes its outputs what they are */
    int64_t run_id;               /* the run using it now */
    double params_nonembed;       /* non-embedding parameters, 0: unknown */
} store_model;

/* Inserts or updates the model with that identity (name, params etc.
 * follow the latest family file; a count of 0 keeps a known one). Results
 * report, per name, the identity stored by the latest run. */
int store_put_model(store *s, const store_model *m, int64_t *id, em_err *err);
/* Sets the counts a backend found; a count of 0 leaves that one as is. */
int store_set_model_params(store *s, int64_t id, double params,
                           double params_nonembed, em_err *err);

/* Inserts the task version (name, hash) with its examples, or marks a
 * stored one as used by run_id. A new hash under a known name becomes the
 * next version: the old versions keep their examples and scores. */
int store_put_task(store *s, const task *t, int64_t run_id, int64_t *id,
                   em_err *err);

/* SHA-256 over the length-prefixed fields: the cache key. cont may be NULL. */
void store_cache_key(const char *identity, const char *kind, const char *prompt,
                     const char *cont, const char *settings, char out[65]);

typedef struct store_request {
    char key[65];
    const char *kind;          /* "loglik" or "generate" */
    int64_t model_id, task_id;
    const char *variant, *example_id;
    int pass, choice;
    const char *prompt, *continuation, *settings;
} store_request;

typedef struct store_response {
    int ok;
    char *text;                /* generate output (malloc'd), or NULL */
    double logprob;
    int n_tokens;
    int is_greedy;
    const float *token_logprobs; /* borrowed when storing; NULL on lookup */
    int n_token_logprobs;
    char *error;               /* malloc'd, or NULL */
    double elapsed;            /* seconds of backend time, amortised */
    int truncated;             /* prompt tokens dropped to fit the context */
    int finish;                /* BACKEND_FINISH_* of a generation, else 0 */
} store_response;

void store_response_clear(store_response *r);

/* The cached ok response for key; *found 0 when there is none. */
int store_lookup(store *s, const char *key, store_response *out, int *found,
                 em_err *err);
/* Stores a request (once per key) and its response (replacing an earlier
 * failed one). */
int store_put_response(store *s, const store_request *rq,
                       const store_response *rs, int64_t run_id, em_err *err);

typedef struct store_score {
    int64_t model_id, task_id;
    const char *variant, *example_id, *metric;
    double value;
    const char *answer;        /* extracted answer, or NULL */
    const char *config;        /* run settings that change scores
                                  ("greedy", or temperature and seed) */
    int truncated;             /* prompt tokens the example's requests lost
                                  to the context (the most of any) */
    int cut;                   /* its generations that ended at max_tokens
                                  or a full context */
} store_score;

int store_put_score(store *s, const store_score *sc, em_err *err);
/* Deletes every score of the unit (model, task, variant, example): a unit
 * being (re)scored writes its whole set of metrics, so none is left over
 * from a run with other settings (a --max-samples look's pass@3). */
int store_clear_scores(store *s, int64_t model_id, int64_t task_id,
                       const char *variant, const char *example_id, em_err *err);
/* *yes = 1 when the example already has scores under (model, task,
 * variant) made with the same config: a unit's scores are written all at
 * once, in the transaction that completes it, so any row means the unit
 * is done. */
int store_has_scores(store *s, int64_t model_id, int64_t task_id,
                     const char *variant, const char *example_id,
                     const char *config, int *yes, em_err *err);

/* Count of rows in a table (tests and progress). */
int store_count(store *s, const char *table, int64_t *n, em_err *err);

/* The file hash cache of identity.c (table file_hashes): the SHA-256 recorded for the file at path when it had exactly
 * st's size, mtime and ctime (nanoseconds), inode and device; *found is 0
 * when there is none. put records one, replacing any older one for path. */
int store_file_hash_get(store *s, const char *path, const struct stat *st,
                        char hex[65], int *found, em_err *err);
int store_file_hash_put(store *s, const char *path, const struct stat *st,
                        const char hex[65], em_err *err);

#endif

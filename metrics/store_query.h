/*
 * store_query.h - read-only queries over a results database, for every
 * reading command (results, scaling, plots, HTML/Markdown report,
 * `emerge check`).
 *
 * Owns: opening a store strictly read-only with a clear verdict on what the
 * file is (missing, not SQLite, not an emerge store, another schema
 * version), and the per-example views that results_load() aggregates
 * away: preferred scores by example id (the paired bootstrap of `emerge
 * check` and the "same example across scales" section), per-choice
 * log-likelihoods of multiple-choice tasks, and each model's output for
 * one example. It never writes: a report must not migrate or touch the
 * database it reads (store_open would create or upgrade one).
 */
#ifndef EMERGE_STORE_QUERY_H
#define EMERGE_STORE_QUERY_H

#include <stdio.h>

#include "base/common.h"

typedef struct store_query store_query;

/* Opens path read-only and checks that it is an emerge store of
 * STORE_SCHEMA_VERSION with the tables the queries use. */
int store_query_open(const char *path, store_query **out, em_err *err);
void store_query_close(store_query *q);
/* Which task versions the queries see (store_db_select_versions), and
 * the notes that say others exist (store_db_version_notes). */
int store_query_select_versions(store_query *q, const char *spec, em_err *err);
int store_query_version_notes(store_query *q, FILE *f, em_err *err);
const char *store_query_path(const store_query *q);
/* For the other reading modules (results.c): a statement on the
 * connection, and an error "PATH: what: SQLite's message". */
typedef struct sqlite3_stmt sqlite3_stmt;
int store_query_prepare(store_query *q, const char *sql, sqlite3_stmt **st,
                        em_err *err);
int store_query_error(store_query *q, em_err *err, const char *what);

typedef struct sq_model {
    char *name, *backend;
    double params, tokens;      /* 0 when unknown */
    double params_nonembed;     /* non-embedding parameters, 0: unknown */
} sq_model;

/* Models that have scores, sorted by params, then training tokens and
 * step (a size's checkpoints in training order), then name. */
int store_query_models(store_query *q, sq_model **out, int *n, em_err *err);
void store_query_models_free(sq_model *m, int n);

typedef struct sq_task {
    char *name, *preferred;     /* preferred: see store_query_cells */
    double random_baseline;     /* NAN when the task has none */
    int n_examples;
} sq_task;

/* Tasks that have scores, sorted by name. */
int store_query_tasks(store_query *q, sq_task **out, int *n, em_err *err);
void store_query_tasks_free(sq_task *t, int n);

/* The preferred-metric scores of one (task, variant, model), by example:
 * ids sorted (strcmp) so two databases can be merged in one pass. The
 * preferred metric is the task's preferred_metric, or, when the task has
 * none, the first of its metrics by name (so every task is covered). */
typedef struct sq_cell {
    char *task, *variant, *model, *metric;
    double params;
    char **ids;
    double *v;
    int n;
} sq_cell;

/* Sorted by task, variant, params, model. */
int store_query_cells(store_query *q, sq_cell **out, int *n, em_err *err);
/* The same for one metric by name (e.g. "target_logprob"), whatever the
 * task prefers. */
int store_query_metric_cells(store_query *q, const char *metric,
                             sq_cell **out, int *n, em_err *err);
void store_query_cells_free(sq_cell *c, int n);
/* Index of the value for example id in c, or -1 (binary search). */
int sq_cell_find(const sq_cell *c, const char *id);
/* Per (task, variant, model) of a multiple-choice task, by example: the
 * log-probability of the correct choice(s) normalised over the choices,
 * log(sum exp(lp correct) / sum exp(lp all)) (metric
 * "choice_logprob_norm"); examples without both a correct and an
 * incorrect choice among the stored requests are left out. */
int store_query_choice_cells(store_query *q, sq_cell **out, int *n,
                             em_err *err);
/* The cell of (task, variant, model) among n, or NULL. */
const sq_cell *sq_cell_lookup(const sq_cell *c, int n, const char *task,
                              const char *variant, const char *model);

/* Multiple-choice log-likelihoods of one (task, variant, model): the mean
 * over examples of the correct choice's log-prob and of the mean
 * log-prob of its incorrect choices. The correct choice is the one whose
 * continuation, trimmed of spaces, equals one of the example's targets. */
typedef struct sq_choice {
    char *task, *variant, *model;
    double params;
    double correct, incorrect;
    int n;                      /* examples with both kinds of choice */
} sq_choice;

/* Sorted by task, variant, params, model; tasks without loglik choice
 * requests do not appear. */
int store_query_choices(store_query *q, sq_choice **out, int *n, em_err *err);
void store_query_choices_free(sq_choice *c, int n);

/* One model's work on one example: its preferred score, extracted answer
 * and raw output (last pass of a generate request; NULL for
 * multiple-choice tasks). */
typedef struct sq_output {
    char *model;
    double params;
    double value;
    char *answer, *output;
} sq_output;

int store_query_outputs(store_query *q, const char *task, const char *variant,
                        const char *example_id, sq_output **out, int *n,
                        em_err *err);
void store_query_outputs_free(sq_output *o, int n);

/* The example's input and targets (JSON array text), malloc'd; NULL when
 * the example is not stored. */
int store_query_example(store_query *q, const char *task, const char *example_id,
                        char **input, char **targets, em_err *err);

#endif

/*
 * shard.h - which part of a sweep one shard of N evaluates.
 *
 * Owns: the shard assignment and the "I/N" syntax. A sweep's work is cut
 * into cells: one family member x one task x one variant x one batch of
 * consecutive examples (the batches --batch cuts, sweep.h). Every cell
 * gets an estimated cost and the cells are dealt out greedily, most
 * expensive first, each onto the shard with the least cost so far (ties:
 * the lower shard; cells of equal cost in the order member, pair, first
 * example). Nothing else enters: the assignment depends only on the task
 * files, the family file, the options that shape the cells (--variants,
 * --limit, --batch) and N - never on the host, the time or how far
 * another shard got - so N processes started anywhere with the same
 * command and I = 1..N cover every cell exactly once.
 *
 * Costs are integers, so every host adds them up the same way: about
 * parameters (in thousands) x examples x tokens per example (prompt
 * bytes / 4 plus max_tokens for a generation). Greedy "largest first"
 * keeps the spread between the most and the least loaded shard at most
 * the cost of the largest cell.
 *
 * Shards are numbered from 1 (1/N ... N/N), as Slurm's --array=1-N gives
 * them; Kubernetes' JOB_COMPLETION_INDEX counts from 0 (add 1).
 */
#ifndef EMERGE_SHARD_H
#define EMERGE_SHARD_H

#include <stdint.h>

#include "base/common.h"

/* The most shards a sweep is cut into. */
#define SHARD_MAX 10000

typedef struct shard_cell {
    int member;      /* index in the family (its sorted order) */
    int pair;        /* task x variant, in the run's order */
    int start;       /* the batch's first example */
    uint64_t cost;   /* shard_cost() */
    int shard;       /* 0-based, set by shard_assign */
} shard_cell;

/* Parses "I/N" (1 <= I <= N <= SHARD_MAX) into *index (1-based) and
 * *count; anything else is an error that says what was expected. */
int shard_parse(const char *spec, int *index, int *count, em_err *err);

/* The estimated cost of a cell: params (0: unknown, counted as 1000),
 * examples and tokens per example, each clamped so the product fits. */
uint64_t shard_cost(double params, long examples, long tokens);

/* Sets every cell's shard (0 .. count-1). loads, when not NULL, receives
 * each shard's total cost (count entries). cells keep their order. */
void shard_assign(shard_cell *cells, int n, int count, uint64_t *loads);

#endif

/*
 * merge.h - `emerge merge`: folds stores (the databases of sharded
 * sweeps, typically) into one.
 *
 * Owns: what "the same row" means across two stores, and what a merge
 * refuses. Each input is judged like a reader judges it (an emerge store
 * of this schema version: an older one is refused with the way to
 * upgrade it) and merged in ONE transaction, so a refused input leaves
 * the output as it was. Rows are matched by what they are, never by
 * their ids:
 *   runs       by (created, command, seed, version): every shard's run
 *              records are kept, each once
 *   models     by identity (harness/identity.h: the content, not the
 *              path, so one model at different paths on different nodes
 *              is one model); name, path and counts follow the later run.
 *              One name on two identities (a file that differs between
 *              nodes) keeps both, with a warning: readers show the later
 *   tasks      by (name, hash): the same task version; a new hash under a
 *              known name becomes that name's next version
 *   examples   by (task version, example id)
 *   requests, responses  by cache key; an answer the output lacks is
 *              added, a failed attempt there is replaced by an answer,
 *              the same answer is kept once, a different one is refused
 *   scores     by (model, task version, variant, example, metric); the
 *              same score is kept once, a different one is refused
 *   file_hashes  not merged: they describe files on the node that wrote
 *              them
 * A refusal names the input, the key, model, task, variant and example.
 * So merging an input twice changes nothing, and after merging the N
 * shards of a sweep the output reads as that sweep run in one process.
 *
 * What each table gained is printed per input. An input that holds
 * failed requests without an answer, or examples with answers but no
 * scores (a sweep that did not finish), is merged and named as
 * incomplete; so are missing shards: the inputs' runs record their
 * --shard I/N, and every I of each N the output then names is expected.
 */
#ifndef EMERGE_MERGE_H
#define EMERGE_MERGE_H

#include <stdio.h>

#include "base/common.h"

typedef struct merge_stats {
    int inputs;          /* inputs merged */
    int incomplete;      /* of those, incomplete ones (named on report) */
    int missing_shards;  /* shards I/N never seen among the inputs */
} merge_stats;

/* Merges the stores in[0..n_in-1] into out (created when missing; an
 * older schema is upgraded like a sweep does), one transaction per
 * input, describing each on report. Stops at the first refused input;
 * the inputs before it stay merged. */
int merge_stores(const char *out, char *const *in, int n_in, FILE *report,
                 merge_stats *st, em_err *err);

#endif

/*
 * family.h - a model family: the models a sweep evaluates, in size order.
 *
 * Owns: loading family files (YAML) into backend specs, validating them
 * with file:line:column errors, one-model "families" built from a command
 * line spec (`emerge run --model ...`), and the size ordering of members.
 *
 * A family file:
 *
 *   name: demo
 *   defaults: {backend: native, threads: 2}   # optional, any member key
 *   members:
 *     - name: demo-1m
 *       path: demo-1m.gguf     # relative to the family file
 *       params: 1.2e6          # optional when the backend counts them
 *       tokens: 2e7            # training tokens, optional (flops axis)
 *       step: 4000             # optional checkpoint step
 *       checkpoint: final      # optional checkpoint label
 *       threads: 2             # any other key is a backend option
 *   series:                    # optional: checkpoints of one size
 *     - name: pythia-160m
 *       path: "ckpts/pythia-160m/step{step}"  # {step} required
 *       steps: [1000, 2000, 143000]           # whole numbers, each once
 *       tokens_per_step: 2097152              # optional: tokens = step x it
 *       backend: native        # the default; any member key but step,
 *                              # tokens and checkpoint may follow
 *
 * A file has 'members', 'series' or both. A series becomes one member per
 * step, named NAME-stepN, with path (relative to the file), step and
 * tokens filled in; defaults apply to it as to a member. Without
 * 'params' the counts of a native or cuda series are read from the
 * tensor shapes of its last step (model_params.h), once at load time; a
 * file not readable yet leaves them to the backend, which counts when
 * it opens the model. 'params_nonembed' (optional, any member) is the
 * non-embedding count, else the backend's.
 *
 * Numbers accept the suffixes K, M, B (or G) and T: "125M", "1.3B".
 */
#ifndef EMERGE_FAMILY_H
#define EMERGE_FAMILY_H

#include "backends/backend.h"
#include "base/common.h"

typedef struct family_member {
    backend_spec spec;  /* all strings owned by the family */
    char *checkpoint;   /* NULL when not given */
    double step;        /* -1 when not given */
    int line, col;      /* where the member starts in the file (1-based) */
} family_member;

typedef struct family {
    char *path;         /* the file, or "<command line>" */
    char *name;
    char *description;
    family_member *members;
    int n_members;
} family;

int family_load(const char *path, family **out, em_err *err);

/* A one-member family from a command-line spec:
 *   file.gguf                        native backend on that file
 *   DIR                              native backend on a Hugging Face
 *                                    checkpoint directory
 *   file.yaml / file.yml             the family file itself
 *   BACKEND[:PATH][,key=value...]    e.g. "synthetic,params=1e9,shape=sharp"
 *                                    or "replay:rec.jsonl"
 * The keys name, params, tokens, step and checkpoint fill the member's
 * fields; other keys become backend options. */
int family_from_spec(const char *spec, family **out, em_err *err);

void family_free(family *f);

/* Stable sort of the members by parameters, then training tokens, then
 * step: the order a sweep runs and reports models in. Members whose
 * parameter count is unknown (0) keep their file order, first. */
void family_sort(family *f);

/* Parses "1.5e9", "125M", "1.3B", "7K", "2T"; -1 when not a number. */
int family_parse_number(const char *s, double *out);

#endif

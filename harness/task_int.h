/*
 * task_int.h - what the files of the task module share and nobody else
 * needs (task.h is the public face).
 *
 * The files, bottom first (each uses only those before it):
 *   task.c          the object: freeing, variant defaults, small queries
 *   task_data.c     records and data files of a YAML task -> task_example
 *   task_yaml.c     the YAML schema -> struct task, and the task hash
 *   task_bigbench.c BIG-bench / BBH JSON -> struct task
 *   task_load.c     task_load: picks the YAML or the BIG-bench loader
 *   task_prompt.c   templates rendered, few-shot exemplars, the prompt
 *   task_request.c  the requests of an example (and its second pass)
 *   task_answer.c   answers extracted, normalised, matched to choices
 */
#ifndef EMERGE_TASK_INT_H
#define EMERGE_TASK_INT_H

#include "base/common.h"
#include "harness/task.h"

#include "base/yamldoc.h"

#define DEFAULT_MAX_TOKENS 32
#define DEFAULT_COT_MAX_TOKENS 256
#define DEFAULT_COT_ANSWER "So the answer is"
#define DEFAULT_ZS_TRIGGER "Let's think step by step."
#define DEFAULT_ZS_ANSWER "Therefore, the answer is"

/* ---- task.c ---- */

/* Frees v[0..n) and v. */
void task_strs_free(char **v, int n);
/* 1 when s ends in suf. */
int task_has_suffix(const char *s, const char *suf);
/* How many exemplars of the few-shot pool carry a rationale. */
int task_count_rationales(const task *t);

/* ---- task_data.c / task_yaml.c: loading a YAML task ---- */

/* Record roles and the keys a `fields:` map may name. */
enum { ROLE_ID, ROLE_INPUT, ROLE_TARGET, ROLE_CHOICES, ROLE_SCORES,
       ROLE_RATIONALE, N_ROLES };

/* One YAML task being loaded. */
typedef struct loader {
    const char *path;
    ydoc_node *root;
    task *t;
    em_buf bytes;                /* everything the hash covers */
    const char *role_key[N_ROLES];
    em_err *err;
} loader;

/* The `fields:` map (record key of each role; default: the role's name). */
int task_data_fields(loader *L);
/* The evaluated examples: `examples:` (inline) or `data:` (a file). */
int task_data_examples(loader *L);
/* Records of an inline list / of the data file named by node, appended to
 * *v; ids default to prefix + index. key names the YAML key in messages. */
int task_data_inline(loader *L, const ydoc_node *list, const char *key,
                     const char *prefix, task_example **v, int *n);
int task_data_file(loader *L, const ydoc_node *node, const char *key,
                   const char *prefix, task_example **v, int *n);
/* A file named in the task: rel taken relative to the task file's folder
 * (malloc'd). */
char *task_data_path(const loader *L, const char *rel);
/* Fails naming both records when two of v[0..n) share an id. */
int task_data_unique_ids(loader *L, task_example *v, int n);

/* Loads a YAML task file (task_load's case for every non-JSON path). */
int task_load_yaml(const char *path, task **out, em_err *err);

/* ---- task_prompt.c ---- */

/* The first-pass prompt of example ex under v: prefix, instruction,
 * exemplars, the example's own prompt, a zero_shot_cot trigger. */
int task_build_prompt(const task *t, const task_variant *v, int ex, em_buf *out,
                      em_err *err);

#endif

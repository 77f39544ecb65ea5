/*
 * task_bigbench.h - BIG-bench JSON tasks and BIG-Bench-Hard files, loaded
 * unmodified into struct task.
 *
 * Owns: reading BIG-bench's task.json format (name, metrics, examples with
 * input/target/target_scores, task_prefix, input/output/choice prefixes,
 * output_regex, stop_string...) and BBH's {"canary", "examples"} files
 * with their published chain-of-thought prompts, and turning them into the
 * struct task the rest of emerge runs: prompts byte-identical to the ones
 * BIG-bench and BBH build, answers extracted the way they score them.
 * task_load hands every *.json path here. tasks/BIGBENCH.md documents what
 * is and is not supported.
 */
#ifndef EMERGE_TASK_BIGBENCH_H
#define EMERGE_TASK_BIGBENCH_H

#include <stdint.h>

#include "base/common.h"
#include "harness/task.h"

/* 1 when task_load should hand path to this module (*.json, and *.py so
 * that a programmatic BIG-bench task gets a clear error). */
int task_bigbench_path(const char *path);

/* Loads a BIG-bench task.json or a BBH task file (told apart by their
 * keys: BBH files hold only "canary" and "examples"). A BBH task's
 * chain-of-thought prompt is found by task_bbh_prompt_path. */
int task_load_bigbench(const char *path, task **out, em_err *err);

/* Loads a BBH task file with an explicit chain-of-thought prompt file. */
int task_load_bbh(const char *json_path, const char *prompt_path, task **out,
                  em_err *err);

/* Where the chain-of-thought prompt of a BBH file is looked up (malloc'd):
 * $EMERGE_BBH_PROMPTS/<name>.txt when that variable is set, else
 * <dir of json>/../cot-prompts/<name>.txt. */
char *task_bbh_prompt_path(const char *json_path);

/* The task files of a directory, sorted: *.yaml, *.yml and *.json files
 * in it, plus <sub>/task.json (BIG-bench's benchmark_tasks layout) and
 * <sub>/task.py (programmatic tasks, so that loading them says why they
 * cannot run). Free with sweep_free_list or strs free. */
int task_list_dir(const char *dir, char ***paths, int *n, em_err *err);

/* numpy's legacy RandomState (MT19937, init_genrand seeding), enough to
 * draw the permutation BIG-bench shows multiple-choice options in. */
typedef struct bb_rng {
    uint32_t s[624];
    int i;
} bb_rng;

void bb_rng_seed(bb_rng *r, uint32_t seed);
uint32_t bb_rng_next(bb_rng *r);
/* Uniform integer in [0, max] by masked rejection (numpy random_interval). */
uint32_t bb_rng_interval(bb_rng *r, uint32_t max);
/* Shuffles v[0..n) in place as RandomState.shuffle does (Fisher-Yates from
 * the end, j = interval(i)); permutation(x) is this on a copy of x. */
void bb_rng_shuffle(bb_rng *r, int *v, int n);

#endif

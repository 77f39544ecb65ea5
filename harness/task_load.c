/*
 * task_load.c - task_load, the one entry point for task files: BIG-bench
 * and BIG-Bench-Hard JSON (and BIG-bench's programmatic task.py, to say
 * why it cannot run) go to task_bigbench.c, everything else to the YAML
 * loader of task_yaml.c.
 *
 * It sits above both loaders so that neither knows the other: the
 * pieces they share (freeing, variant defaults) live below them, in
 * task.c.
 */
#include "harness/task.h"
#include "harness/task_bigbench.h"
#include "harness/task_int.h"

int task_load(const char *path, task **out, em_err *err)
{
    *out = NULL;
    /* BIG-bench / BIG-Bench-Hard JSON loads unmodified (task_bigbench.c). */
    if (task_bigbench_path(path))
        return task_load_bigbench(path, out, err);
    return task_load_yaml(path, out, err);
}

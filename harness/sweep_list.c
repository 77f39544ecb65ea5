/*
 * sweep_list.c - the task files a sweep runs (see sweep.h): a --tasks list
 * split on commas, directories expanded to the task files in them, and
 * the loose *.json files of a directory told apart as data rather than
 * tasks.
 */
#include "harness/sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/task.h"
#include "harness/task_bigbench.h"

void sweep_split(const char *list, char ***out, int *n)
{
    *out = NULL;
    *n = 0;
    const char *p = list;
    while (p && *p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len) {
            *out = em_realloc(*out, sizeof **out * (size_t)(*n + 1));
            (*out)[(*n)++] = em_strndup(p, len);
        }
        p = c ? c + 1 : NULL;
    }
}

void sweep_free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* A loose *.json file in a task directory may be a YAML task's data (or
 * few-shot pool) rather than a BIG-bench task: one that does not load as
 * a task is left out, with a note saying why. */
int sweep_json_is_data(const char *path)
{
    size_t n = strlen(path);
    if (n < 5 || strcmp(path + n - 5, ".json") ||
        (n >= 10 && !strcmp(path + n - 10, "/task.json")))
        return 0;
    task *t;
    em_err e;
    if (task_load(path, &t, &e) == 0) {
        task_free(t);
        return 0;
    }
    fprintf(stderr, "emerge: note: %s: not a task, taken for a data file (%s)\n",
            path, e.msg);
    return 1;
}

/* Every task file of a directory (task_list_dir: YAML, BIG-bench JSON and
 * <sub>/task.json), appended to paths in sorted order. */
static int expand_dir(const char *dir, char ***paths, int *n, em_err *err)
{
    char **found;
    int nf;
    if (task_list_dir(dir, &found, &nf, err) != 0)
        return -1;
    *paths = em_realloc(*paths, sizeof **paths * (size_t)(*n + nf));
    for (int i = 0; i < nf; i++) {
        if (sweep_json_is_data(found[i]))
            free(found[i]);
        else
            (*paths)[(*n)++] = found[i];
    }
    free(found);
    return 0;
}

int sweep_expand_tasks(const char *list, char ***paths, int *n, em_err *err)
{
    char **parts;
    int np;
    sweep_split(list, &parts, &np);
    *paths = NULL;
    *n = 0;
    int rc = np ? 0 : em_errorf(err, "no task files given");
    for (int i = 0; rc == 0 && i < np; i++) {
        struct stat st;
        if (stat(parts[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = expand_dir(parts[i], paths, n, err);
        } else {
            *paths = em_realloc(*paths, sizeof **paths * (size_t)(*n + 1));
            (*paths)[(*n)++] = em_strdup(parts[i]);
        }
    }
    sweep_free_list(parts, np);
    if (rc != 0) {
        sweep_free_list(*paths, *n);
        *paths = NULL;
        *n = 0;
    }
    return rc;
}

/*
 * cmd_tasks.c - `emerge tasks`: validate, list and show task files.
 *
 *   emerge tasks validate FILE...       exit 0 when all load, 2 otherwise
 *   emerge tasks list [DIR]             name, type, examples, variants
 *   emerge tasks show FILE [--variant V] [--example N] [--rationale TEXT]
 *                                       the prompts exactly as sent
 *
 * `show` is the task author's debugger: it prints every request a variant
 * builds for one example, byte for byte, between marker lines.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cli/cli.h"
#include "harness/task.h"
#include "harness/sweep.h"
#include "harness/task_bigbench.h"

int cmd_tasks(int argc, char **argv);

static const char *const type_label[] = {"generate", "multiple_choice", "target_logprob"};

static void tasks_usage(FILE *f)
{
    fprintf(f, "usage: emerge tasks validate FILE...\n"
               "       emerge tasks list [DIR]            (default DIR: tasks)\n"
               "       emerge tasks show FILE [--variant V] [--example N] "
               "[--rationale TEXT]\n");
}

static int tasks_validate(int argc, char **argv)
{
    if (argc < 1) {
        tasks_usage(stderr);
        return 2;
    }
    int bad = 0;
    for (int i = 0; i < argc; i++) {
        task *t;
        em_err err;
        if (task_load(argv[i], &t, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            bad++;
            continue;
        }
        printf("%s: ok (%s, %s, %d examples)\n", argv[i], t->name,
               type_label[t->type], t->n_examples);
        task_free(t);
    }
    return bad ? 2 : 0;
}

/* Every task file of DIR as the sweep expands it (task_list_dir: *.yaml,
 * *.yml, BIG-bench *.json and <sub>/task.json; a loose .json that is
 * not a task is taken for a YAML task's data). A self-consistency
 * variant shows its sample count: "voted(sc5)". */
static int tasks_list(int argc, char **argv)
{
    const char *dir = argc > 0 ? argv[0] : "tasks";
    char **paths;
    int n;
    em_err err;
    if (task_list_dir(dir, &paths, &n, &err) != 0) {
        fprintf(stderr, "emerge tasks list: %s\n", err.msg);
        return 2;
    }
    int bad = 0;
    printf("%-24s %-16s %8s  %s\n", "name", "type", "examples", "variants");
    for (int i = 0; i < n; i++) {
        task *t;
        if (sweep_json_is_data(paths[i])) {
            /* a YAML task's data, noted on stderr */
        } else if (task_load(paths[i], &t, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            bad++;
        } else {
            printf("%-24s %-16s %8d  ", t->name, type_label[t->type], t->n_examples);
            for (int v = 0; v < t->n_variants; v++) {
                printf("%s%s", v ? "," : "", t->variants[v].name);
                if (t->variants[v].sc_samples > 0)
                    printf("(sc%d)", t->variants[v].sc_samples);
            }
            printf("\n");
            task_free(t);
        }
        free(paths[i]);
    }
    free(paths);
    return bad ? 2 : 0;
}

static void show_request(const task *t, const task_request *r, int i)
{
    if (r->kind == TASK_REQ_GENERATE) {
        printf("=== request %d: generate (max_tokens %d, stop", i + 1, r->max_tokens);
        for (int s = 0; s < t->n_stop; s++) {
            printf(" \"");
            for (const char *p = t->stop[s]; *p; p++)
                printf(*p == '\n' ? "\\n" : "%c", *p);
            printf("\"");
        }
        printf("%s)\n%s\n", t->n_stop ? "" : " none", r->prompt);
        return;
    }
    printf("=== request %d: loglik %s %d\n%s", i + 1,
           r->choice >= 0 ? "choice" : "target", r->choice, r->prompt);
    printf("\n=== continuation\n%s\n", r->continuation);
}

static int show_one(const task *t, const task_variant *v, int ex, const char *rationale)
{
    task_request *r;
    int n;
    em_err err;
    if (task_build_requests(t, v, ex, &r, &n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    printf("# task %s, variant %s (%s), example %d (id %s)\n", t->name, v->name,
           v->kind == VARIANT_STANDARD ? "standard"
           : v->kind == VARIANT_COT ? "cot"
           : v->kind == VARIANT_RETRIEVAL ? "retrieval" : "zero_shot_cot", ex,
           t->examples[ex].id);
    for (int i = 0; i < n; i++)
        show_request(t, &r[i], i);
    int rc = 0;
    if (v->kind == VARIANT_ZERO_SHOT_COT) {
        task_request p2;
        if (task_build_second_pass(t, v, ex, r[0].prompt, rationale, &p2, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            rc = 2;
        } else {
            printf("=== pass 2 (after a pass-1 output of \"%s\")\n", rationale);
            show_request(t, &p2, 1);
            free(p2.prompt);
        }
    }
    printf("=== end\n");
    task_requests_free(r, n);
    return rc;
}

static int tasks_show(int argc, char **argv)
{
    const char *file = NULL, *vname = "standard", *rationale = " <pass-1 output>";
    long ex = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--variant") && i + 1 < argc) {
            vname = argv[++i];
        } else if (!strcmp(argv[i], "--example") && i + 1 < argc) {
            char *end;
            ex = strtol(argv[++i], &end, 10);
            if (*end || ex < 0) {
                fprintf(stderr, "emerge tasks show: --example needs an index >= 0\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--rationale") && i + 1 < argc) {
            rationale = argv[++i];
        } else if (argv[i][0] != '-' && !file) {
            file = argv[i];
        } else {
            tasks_usage(stderr);
            return 2;
        }
    }
    if (!file) {
        tasks_usage(stderr);
        return 2;
    }
    task *t;
    em_err err;
    if (task_load(file, &t, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    int rc = 2;
    const task_variant *v = task_variant_find(t, vname);
    if (!v)
        fprintf(stderr, "emerge tasks show: %s has no variant '%s'\n", file, vname);
    else if (ex >= t->n_examples)
        fprintf(stderr, "emerge tasks show: %s has %d examples (0..%d), not %ld\n", file,
                t->n_examples, t->n_examples - 1, ex);
    else
        rc = show_one(t, v, (int)ex, rationale);
    task_free(t);
    return rc;
}

int cmd_tasks(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        tasks_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "validate"))
        return tasks_validate(argc - 2, argv + 2);
    if (!strcmp(argv[1], "list"))
        return tasks_list(argc - 2, argv + 2);
    if (!strcmp(argv[1], "show"))
        return tasks_show(argc - 2, argv + 2);
    fprintf(stderr, "emerge tasks: unknown action '%s'\n", argv[1]);
    tasks_usage(stderr);
    return 2;
}

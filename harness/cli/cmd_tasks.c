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
#include "harness/cli/cliargs.h"
#include "harness/task.h"
#include "harness/sweep.h"
#include "harness/task_bigbench.h"

int cmd_tasks(int argc, char **argv);

static const char *const type_label[] = {"generate", "multiple_choice", "target_logprob"};

static const char tasks_help[] =
    "usage: emerge tasks validate FILE...\n"
    "       emerge tasks list [DIR]            (default DIR: tasks)\n"
    "       emerge tasks show FILE [--variant V] [--example N] "
    "[--rationale TEXT]\n"
    "\n"
    "validate  loads each task file as a sweep would; exit 0 when all load,\n"
    "          2 otherwise (each error names its file, line and field)\n"
    "list      every task of DIR: name, type, examples, variants\n"
    "show      the requests one variant builds for one example, byte for\n"
    "          byte between marker lines (the prompts exactly as sent):\n"
    "  --variant V       the variant (default standard)\n"
    "  --example N       the example's index (default 0)\n"
    "  --rationale TEXT  the pass-1 output a zero_shot_cot variant's second\n"
    "                    pass is shown with\n";

/* The three actions share the help text (one per command), each under
 * its own name in messages. */
static const cli_cmd tasks_cmd = {"tasks", tasks_help, NULL, 1};
static const cli_cmd validate_cmd = {"tasks validate", tasks_help, NULL, 0};
static const cli_cmd list_cmd = {"tasks list", tasks_help, NULL, 0};
enum { OPT_VARIANT = 256, OPT_EXAMPLE, OPT_RATIONALE };   /* long only */
static const cli_cmd show_cmd = {"tasks show", tasks_help, (const struct option[]){
    {"variant", required_argument, NULL, OPT_VARIANT},
    {"example", required_argument, NULL, OPT_EXAMPLE},
    {"rationale", required_argument, NULL, OPT_RATIONALE}, {0}}, 0};

static int tasks_validate(int argc, char **argv)
{
    int i, p = cli_parse(&validate_cmd, argc, argv, NULL, NULL, &i);
    if (p)
        return cli_exit(p);
    if (i == argc)
        return cli_usage_error(&validate_cmd, 1, "no task file given");
    int bad = 0;
    for (; i < argc; i++) {
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
    int i, p = cli_parse(&list_cmd, argc, argv, NULL, NULL, &i);
    if (p)
        return cli_exit(p);
    if (argc - i > 1)
        return cli_usage_error(&list_cmd, 1, "one directory at a time");
    const char *dir = i < argc ? argv[i] : "tasks";
    char **paths;
    int n;
    em_err err;
    if (task_list_dir(dir, &paths, &n, &err) != 0) {
        fprintf(stderr, "emerge tasks list: %s\n", err.msg);
        return 2;
    }
    int bad = 0;
    printf("%-24s %-16s %8s  %s\n", "name", "type", "examples", "variants");
    for (i = 0; i < n; i++) {
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

typedef struct show_args {
    const char *vname, *rationale;
    long ex;
} show_args;

static int show_opt(void *ctx, int key, const char *v)
{
    show_args *a = ctx;
    if (key == OPT_VARIANT)
        a->vname = v;
    else if (key == OPT_RATIONALE)
        a->rationale = v;
    else if (cli_long(v, &a->ex) || a->ex < 0) {
        fprintf(stderr, "emerge tasks show: --example needs an index >= 0\n");
        return -1;
    }
    return 0;
}

static int tasks_show(int argc, char **argv)
{
    show_args a = {"standard", " <pass-1 output>", 0};
    int i, p = cli_parse(&show_cmd, argc, argv, show_opt, &a, &i);
    if (p)
        return cli_exit(p);
    if (argc - i != 1)
        return cli_usage_error(&show_cmd, 1, i == argc ? "no task file given"
                               : "one task file at a time");
    const char *file = argv[i], *vname = a.vname, *rationale = a.rationale;
    long ex = a.ex;
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
    int i, p = cli_parse(&tasks_cmd, argc, argv, NULL, NULL, &i);
    if (p)
        return cli_exit(p);
    if (i == argc)
        return cli_usage_error(&tasks_cmd, 1, "no action given");
    /* Each action parses its own words: argv[i] is its argv[0]. */
    if (!strcmp(argv[i], "validate"))
        return tasks_validate(argc - i, argv + i);
    if (!strcmp(argv[i], "list"))
        return tasks_list(argc - i, argv + i);
    if (!strcmp(argv[i], "show"))
        return tasks_show(argc - i, argv + i);
    return cli_usage_error(&tasks_cmd, 1, "unknown action '%s'", argv[i]);
}

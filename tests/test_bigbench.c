/*
 * test_bigbench.c - BIG-bench task.json and BIG-Bench-Hard files load
 * unmodified: prompts byte for byte as BIG-bench's json_task.py and BBH's
 * published few-shot format build them, answers extracted the way they
 * score them, and clear errors for what is not supported.
 *
 * Expected prompts are written out by hand (tests/data/bigbench/) or, for
 * BBH, assembled here from the raw cot-prompt files independently of the
 * loader. BBH data is read from the shared directory, never copied.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "harness/task.h"
#include "harness/task_bigbench.h"
#include "metrics/metric.h"
#include "tests/testlib.h"

#define DATA "tests/data/bigbench/"

static task *load(const char *path)
{
    task *t = NULL;
    em_err err = {{0}};
    if (task_load(path, &t, &err))
        tl_fail(__FILE__, __LINE__, "loading %s: %s", path, err.msg);
    return t;
}

/* The requests of example ex under variant vname (n = -1 on failure). */
static task_request *reqs(const task *t, const char *vname, int ex, int *n)
{
    task_request *r = NULL;
    em_err err = {{0}};
    const task_variant *v = task_variant_find(t, vname);
    if (!v || task_build_requests(t, v, ex, &r, n, &err)) {
        tl_fail(__FILE__, __LINE__, "variant %s: %s", vname, v ? err.msg : "missing");
        *n = -1;
        return NULL;
    }
    return r;
}

/* The prompt of the single generate request, malloc'd. */
static char *gen_prompt(const task *t, const char *vname, int ex)
{
    int n;
    task_request *r = reqs(t, vname, ex, &n);
    char *p = NULL;
    for (int i = 0; i < n; i++)
        if (r[i].kind == TASK_REQ_GENERATE && !p)
            p = strdup(r[i].prompt);
    task_requests_free(r, n);
    return p;
}

static char *answer(const task *t, const char *output)
{
    return task_extract_answer(t, output);
}

#define CHECK_ANSWER(t, out, want)             \
    do {                                       \
        char *ans_ = answer((t), (out));       \
        CHECK_STR(ans_, (want));               \
        free(ans_);                            \
    } while (0)

/* Loading path must fail with a message containing every non-NULL part. */
static void check_error(const char *path, const char *p1, const char *p2,
                        const char *p3)
{
    task *t = NULL;
    em_err err = {{0}};
    int rc = task_load(path, &t, &err);
    CHECK_MSG(rc == -1, "%s loaded but should fail", path);
    task_free(t);
    CHECK_HAS(err.msg, p1);
    if (p2)
        CHECK_HAS(err.msg, p2);
    if (p3)
        CHECK_HAS(err.msg, p3);
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    return path;
}

/* ------------------------------------------------------------------ */
/* numpy's RandomState                                                */

TEST(test_rng_matches_numpy)
{
    bb_rng r;
    /* MT19937 reference outputs (init_genrand seeding, as numpy's
     * RandomState(seed) and C++'s std::mt19937). */
    bb_rng_seed(&r, 5489);
    CHECK(bb_rng_next(&r) == 3499211612u);
    bb_rng_seed(&r, 42);
    CHECK(bb_rng_next(&r) == 1608637542u);
    /* numpy.random.RandomState(42).permutation(10) */
    static const int want[10] = {8, 1, 5, 0, 7, 2, 9, 4, 3, 6};
    int v[10];
    for (int i = 0; i < 10; i++)
        v[i] = i;
    bb_rng_seed(&r, 42);
    bb_rng_shuffle(&r, v, 10);
    for (int i = 0; i < 10; i++)
        CHECK_INT(v[i], want[i]);
    /* interval stays in range and reaches both ends */
    int lo = 0, hi = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t x = bb_rng_interval(&r, 5);
        CHECK(x <= 5);
        lo |= x == 0;
        hi |= x == 5;
    }
    CHECK(lo && hi);
    CHECK_INT(bb_rng_interval(&r, 0), 0);
}

/* ------------------------------------------------------------------ */
/* BIG-bench JSON tasks                                               */

TEST(test_generative_regex_prompts)
{
    task *t = load(DATA "arith_regex/task.json");
    if (!t)
        return;
    CHECK_STR(t->name, "arith_regex");
    CHECK_INT(t->type, TASK_GENERATE);
    CHECK_INT(t->n_keywords, 2);
    /* the fifth example repeats the first: BIG-bench drops duplicates */
    CHECK_INT(t->n_examples, 4);
    CHECK_STR(t->examples[3].id, "3");
    CHECK_INT(t->n_metrics, 4);
    CHECK_STR(t->metrics[0], "exact_match");
    CHECK_STR(t->metrics[1], "rouge1");
    CHECK_STR(t->metrics[2], "rouge2");
    CHECK_STR(t->metrics[3], "rougeL");
    CHECK_STR(t->preferred_metric, "exact_match");
    CHECK_INT(t->examples[1].n_targets, 2);
    CHECK_STR(t->examples[1].targets[1], "seven");
    CHECK_STR(t->examples[2].input, "10 + 3");

    /* zero-shot: task_prefix + input prefix + input + output prefix */
    char *p = gen_prompt(t, "standard", 0);
    CHECK_STR(p, "Add the numbers.\n\nQuestion: 1 + 1\nAnswer: ");
    free(p);
    p = gen_prompt(t, "standard", 2);
    CHECK_STR(p, "Add the numbers.\n\nQuestion: 10 + 3\nAnswer: ");
    free(p);

    /* k shots: prefix + (query + target) joined by the separator + sep +
     * query; the exemplars are emerge's seeded draw */
    for (int k = 1; k <= 3; k++) {
        char vname[32];
        snprintf(vname, sizeof vname, "shots%d", k);
        const task_variant *v = task_variant_find(t, vname);
        CHECK(v != NULL);
        int *idx, kk;
        em_err err = {{0}};
        if (!v || task_pick_shots(t, v, 1, &idx, &kk, &err))
            continue;
        CHECK_INT(kk, k);
        char want[1024] = "Add the numbers.\n";
        for (int i = 0; i < kk; i++) {
            const task_example *s = &t->examples[idx[i]];
            CHECK(idx[i] != 1);
            snprintf(want + strlen(want), sizeof want - strlen(want),
                     "\nQuestion: %s\nAnswer: %s\n\n", s->input, s->targets[0]);
        }
        strcat(want, "\nQuestion: 2 + 5\nAnswer: ");
        p = gen_prompt(t, vname, 1);
        CHECK_STR(p, want);
        free(p);
        free(idx);
    }
    CHECK(task_variant_find(t, "shots4") == NULL);

    /* output_regex: the first match */
    CHECK_ANSWER(t, "13 is the sum. 14", "13");
    CHECK_ANSWER(t, "The answer is -4.", "-4");
    CHECK_ANSWER(t, "no digits here", "");
    /* invalid UTF-8 in an output does not stop the match */
    CHECK_ANSWER(t, "\xff\xfe = 12", "12");
    task_free(t);
    /* Python's re matches code points with Unicode classes */
    char *dir = tl_tmpdir();
    if (!dir)
        return;
    char *p2 = write_tmp(dir, "w.json", "{\"name\": \"w\", \"metrics\": [\"exact_str_match\"],"
                         " \"output_regex\": \"\\\\w+ .\",\n"
                         " \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]}");
    t = load(p2);
    if (t) {
        CHECK_ANSWER(t, "!! h\xc3\xa9llo \xc3\xa9t\xc3\xa9", "h\xc3\xa9llo \xc3\xa9");
        CHECK_ANSWER(t, "\xd0\xbc\xd0\xb8\xd1\x80 x", "\xd0\xbc\xd0\xb8\xd1\x80 x");
    }
    free(p2);
    free(dir);
    task_free(t);
}

TEST(test_stop_string_kept)
{
    task *t = load(DATA "stop_only.json");
    if (!t)
        return;
    CHECK_STR(t->name, "stop_only");
    char *p = gen_prompt(t, "standard", 1);
    CHECK_STR(p, "\nQ: Say bye.\nA: ");
    free(p);
    /* Cut after the first stop string, which is kept; no regex. */
    CHECK_ANSWER(t, "hi. And more.", "hi.");
    CHECK_ANSWER(t, "hi", "hi");
    CHECK_ANSWER(t, " bye.\nQ: next", " bye.");
    /* A stop string at offset 0 cuts nothing (json_task's index > 0). */
    CHECK_ANSWER(t, ".hi. x", ".hi. x");
    /* the backend must not cut at the stop string itself */
    CHECK_INT(t->n_stop, 0);
    task_free(t);
}

TEST(test_default_regex)
{
    task *t = load(DATA "default_regex.json");
    if (!t)
        return;
    CHECK_STR(t->metrics[1], "target_logprob");
    CHECK_ANSWER(t, "Paris. It is big", "Paris");
    CHECK_ANSWER(t, " Rome! yes", " Rome");
    CHECK_ANSWER(t, "Rome\nParis", "Rome");
    /* generation plus the target's log-likelihood, scored after "A: " */
    int n;
    task_request *r = reqs(t, "standard", 0, &n);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(r[0].prompt, "\nQ: Capital of France?\nA: ");
        CHECK_INT(r[1].kind, TASK_REQ_LOGLIK);
        CHECK_STR(r[1].continuation, "Paris");
    }
    task_requests_free(r, n);
    task_free(t);
}

TEST(test_multiple_choice_prompts)
{
    task *t = load(DATA "mc_colors/task.json");
    if (!t)
        return;
    CHECK_INT(t->type, TASK_MULTIPLE_CHOICE);
    CHECK_STR(t->metrics[0], "multiple_choice_grade");
    CHECK_STR(t->metrics[1], "brier_score");
    CHECK_NEAR(t->random_baseline, (1.0 / 3 + 1.0 / 3 + 1.0 / 4 + 1.0 / 2) / 4, 1e-12);
    /* Choices in the order RandomState(42) permutes the sorted texts,
     * one permutation per example in file order: [0,1,2], [1,2,0],
     * [1,3,0,2], [1,0]. */
    static const char *const want[] = {
        "\nQ: The sky on a clear day is\n  choice: blue\n  choice: green\n  choice: red\nA: ",
        "\nQ: Grass is usually\n  choice: green\n  choice: purple\n  choice: blue\nA: ",
        "\nQ: Snow is\n  choice: orange\n  choice: white\n  choice: black\n  choice: pink\nA: ",
        "\nQ: A ripe banana is\n  choice: yellow\n  choice: blue\nA: ",
    };
    /* scored continuations: the choices in file order, no leading space */
    static const char *const conts[][4] = {
        {"blue", "green", "red"}, {"green", "purple", "blue"},
        {"white", "black", "orange", "pink"}, {"yellow", "blue"}};
    static const int n_ch[] = {3, 3, 4, 2};
    for (int ex = 0; ex < 4; ex++) {
        int n;
        task_request *r = reqs(t, "standard", ex, &n);
        CHECK_INT(n, n_ch[ex]);
        for (int i = 0; i < n && i < n_ch[ex]; i++) {
            CHECK_INT(r[i].kind, TASK_REQ_LOGLIK);
            CHECK_STR(r[i].prompt, want[ex]);
            CHECK_STR(r[i].continuation, conts[ex][i]);
            CHECK_INT(r[i].choice, i);
        }
        task_requests_free(r, n);
    }
    CHECK_STR(t->examples[2].targets[0], "white");
    CHECK_NEAR(t->examples[2].choice_scores[0], 1, 0);

    /* multiple_choice_grade: the score of the choice with the top logprob */
    double lp[3] = {-3, -1, -2}, g = -1;
    int tok[3] = {1, 1, 1};
    metric_input in = {.choice_logprobs = lp, .choice_tokens = tok,
                       .choice_scores = t->examples[0].choice_scores, .n_choices = 3};
    em_err err = {{0}};
    CHECK(metric_compute("multiple_choice_grade", &in, &g, &err) == 0);
    CHECK_NEAR(g, 0, 0); /* "green" scores 0 */
    task_free(t);
}

TEST(test_custom_prefixes_and_shots)
{
    task *t = load(DATA "mc_custom.json");
    if (!t)
        return;
    CHECK_INT(t->type, TASK_MULTIPLE_CHOICE);
    CHECK_STR(t->metrics[1], "exact_match");
    int n;
    task_request *r = reqs(t, "standard", 0, &n);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(r[0].prompt, "Choose the larger number.\nInput: 3 or 8\n - 8\n - 3\nOutput:");
        CHECK_STR(r[0].continuation, "3");
        CHECK_STR(r[1].continuation, "8");
    }
    task_requests_free(r, n);
    r = reqs(t, "standard", 2, &n);
    if (n > 0)
        CHECK_STR(r[0].prompt, "Choose the larger number.\nInput: 5, 6 or 4\n - 5\n - 6\n - 4\nOutput:");
    task_requests_free(r, n);

    /* two shots for example 0: both others, in the draw's order, each as
     * query + its top-scored choice, joined by the separator */
    const task_variant *v = task_variant_find(t, "shots2");
    int *idx = NULL, k = 0;
    em_err err = {{0}};
    CHECK(v && task_pick_shots(t, v, 0, &idx, &k, &err) == 0);
    if (k == 2) {
        static const char *const q[] = {
            NULL, "\nInput: 9 or 2\n - 2\n - 9\nOutput:9",
            "\nInput: 5, 6 or 4\n - 5\n - 6\n - 4\nOutput:6"};
        char want[512];
        snprintf(want, sizeof want, "Choose the larger number.%s\n###%s\n###"
                 "\nInput: 3 or 8\n - 8\n - 3\nOutput:", q[idx[0]], q[idx[1]]);
        r = reqs(t, "shots2", 0, &n);
        if (n > 0)
            CHECK_STR(r[0].prompt, want);
        task_requests_free(r, n);
    }
    free(idx);
    CHECK(task_variant_find(t, "shots3") == NULL);
    task_free(t);

    t = load(DATA "mc_noappend.json");
    if (!t)
        return;
    r = reqs(t, "standard", 0, &n);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(r[0].prompt, "\nQ: The opposite of hot is\nA: ");
        CHECK_STR(r[2].continuation, "tall");
    }
    task_requests_free(r, n);
    CHECK_NEAR(t->examples[0].choice_scores[1], 0.5, 0);
    task_free(t);
}

TEST(test_hash_and_cot_refusal)
{
    task *t = load(DATA "arith_regex/task.json");
    if (!t)
        return;
    char *bytes;
    size_t len;
    em_err err = {{0}};
    CHECK(em_read_file(DATA "arith_regex/task.json", &bytes, &len, &err) == 0);
    char hex[65];
    em_sha256_hex(bytes, len, hex);
    CHECK_STR(t->hash, hex);
    free(bytes);
    /* BIG-bench examples carry no rationale: the cot variant says so */
    int n;
    task_request *r = NULL;
    const task_variant *v = task_variant_find(t, "cot");
    CHECK(v && task_build_requests(t, v, 0, &r, &n, &err) == -1);
    CHECK_HAS(err.msg, "chain-of-thought");
    task_free(t);
}

TEST(test_bigbench_errors)
{
    char *dir = tl_tmpdir();
    if (!dir)
        return;
    char *p = write_tmp(dir, "typo.json",
                        "{\n  \"name\": \"x\",\n  \"task_prefx\": \"a\",\n"
                        "  \"metrics\": [\"exact_str_match\"],\n"
                        "  \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]\n}\n");
    check_error(p, "typo.json:3:3", "unknown field 'task_prefx'", "did you mean 'task_prefix'");
    free(p);
    p = write_tmp(dir, "subtasks.json",
                  "{\"name\": \"x\", \"metrics\": [\"exact_str_match\"],\n"
                  " \"subtasks\": [], \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]}");
    check_error(p, "subtasks.json:2:2", "'subtasks'", "subtask's own task.json");
    free(p);
    p = write_tmp(dir, "metric.json",
                  "{\"name\": \"x\",\n \"metrics\": [\"exact_str_match\", \"bleurt\"],\n"
                  " \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]}");
    check_error(p, "metric.json:2:33", "metric 'bleurt' is not supported", NULL);
    free(p);
    p = write_tmp(dir, "exkey.json",
                  "{\"name\": \"x\", \"metrics\": [\"exact_str_match\"], \"examples\": [\n"
                  "  {\"input\": \"a\", \"target\": \"b\"},\n"
                  "  {\"input\": \"a\", \"targets\": \"b\"}]}");
    check_error(p, "exkey.json:3:3", "examples[1]", "unknown field 'targets'");
    free(p);
    p = write_tmp(dir, "groups.json",
                  "{\"name\": \"x\", \"metrics\": [\"exact_str_match\"],\n"
                  " \"output_regex\": \"(a)(b)\",\n"
                  " \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]}");
    check_error(p, "groups.json:2:18", "output_regex", "2 capture groups");
    free(p);
    p = write_tmp(dir, "badre.json",
                  "{\"name\": \"x\", \"metrics\": [\"exact_str_match\"],\n"
                  " \"output_regex\": \"(a\",\n"
                  " \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]}");
    check_error(p, "badre.json:2:18", "does not compile", NULL);
    free(p);
    p = write_tmp(dir, "absnorm.json",
                  "{\"name\": \"x\", \"metrics\": [\"multiple_choice_grade\"],\n"
                  " \"absolute_normalization\": true,\n"
                  " \"examples\": [{\"input\": \"a\", \"target_scores\": {\"b\": 1, \"c\": 0}}]}");
    check_error(p, "absnorm.json:2:28", "absolute_normalization", "not supported");
    free(p);
    p = write_tmp(dir, "noscores.json",
                  "{\"name\": \"x\", \"metrics\": [\"multiple_choice_grade\"],\n"
                  " \"examples\": [{\"input\": \"a\", \"target_scores\": {\"b\": 1, \"c\": 0}},\n"
                  "  {\"input\": \"a\", \"target\": \"b\"}]}");
    check_error(p, "noscores.json:3:3", "examples[1]", "no 'target_scores'");
    free(p);
    p = write_tmp(dir, "score.json",
                  "{\"name\": \"x\", \"metrics\": [\"multiple_choice_grade\"],\n"
                  " \"examples\": [{\"input\": \"a\", \"target_scores\": {\"b\": \"1\", \"c\": 0}}]}");
    check_error(p, "examples[0]", "value of 'b' must be a number", NULL);
    free(p);
    p = write_tmp(dir, "nometrics.json",
                  "{\"name\": \"x\", \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]}");
    check_error(p, "nometrics.json:1:1", "missing required field 'metrics'", NULL);
    free(p);
    p = write_tmp(dir, "pref.json",
                  "{\"name\": \"x\", \"metrics\": [\"exact_str_match\"],\n"
                  " \"preferred_score\": \"bleu\",\n"
                  " \"examples\": [{\"input\": \"a\", \"target\": \"b\"}]}");
    check_error(p, "pref.json:2:21", "preferred_score 'bleu'", NULL);
    free(p);
    p = write_tmp(dir, "broken.json", "{\"name\": \"x\",\n \"metrics\": [}");
    check_error(p, "broken.json:2:", "invalid JSON", NULL);
    free(p);
    p = write_tmp(dir, "trailing.json", "{\"name\": \"x\"}\n{}\n");
    check_error(p, "trailing.json:1:14", "text after the top-level value", NULL);
    free(p);
    p = write_tmp(dir, "task.py", "class T: pass\n");
    check_error(p, "task.py", "programmatic BIG-bench tasks", "not supported");
    free(p);
    free(dir);
}

TEST(test_list_dir)
{
    char *dir = tl_tmpdir();
    if (!dir)
        return;
    char *made[] = {write_tmp(dir, "a.yaml", "x"), write_tmp(dir, "b.json", "{}"),
                    write_tmp(dir, "notes.txt", "x")};
    for (int i = 0; i < 3; i++)
        free(made[i]);
    CHECK(tl_sh(NULL, "mkdir -p %s/sub %s/prog %s/empty && echo '{}' > %s/sub/task.json"
                " && echo x > %s/prog/task.py", dir, dir, dir, dir, dir) == 0);
    char **paths;
    int n;
    em_err err = {{0}};
    CHECK(task_list_dir(dir, &paths, &n, &err) == 0);
    CHECK_INT(n, 4);
    static const char *const want[] = {"/a.yaml", "/b.json", "/prog/task.py",
                                       "/sub/task.json"};
    for (int i = 0; i < n && i < 4; i++) {
        CHECK(!strncmp(paths[i], dir, strlen(dir)));
        CHECK_STR(paths[i] + strlen(dir), want[i]);
    }
    for (int i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    char *empty = malloc(strlen(dir) + 8);
    sprintf(empty, "%s/empty", dir);
    CHECK(task_list_dir(empty, &paths, &n, &err) == -1);
    CHECK_HAS(err.msg, "no task files");
    free(empty);
    free(dir);
}

/* Random byte edits of every good file: each either loads (and renders
 * example 0 under every variant that builds) or fails with a message that
 * names the file; nothing crashes or leaks (ASan, valgrind). */
TEST(test_mutated_files)
{
    static const char *const files[] = {
        DATA "arith_regex/task.json", DATA "stop_only.json", DATA "default_regex.json",
        DATA "mc_colors/task.json", DATA "mc_custom.json", DATA "mc_noappend.json",
        DATA "mc_arith.json", NULL};
    static const char junk[] = "{}[]\",:0a\\ \n-1.5e9truenull";
    char *dir = tl_tmpdir();
    if (!dir)
        return;
    uint64_t st = 12345;
    int loaded = 0, failed = 0;
    for (int f = 0; files[f]; f++) {
        char *text;
        size_t len;
        em_err err = {{0}};
        if (em_read_file(files[f], &text, &len, &err)) {
            CHECK(0);
            continue;
        }
        for (int m = 0; m < 150; m++) {
            char *mut = malloc(len * 2 + 8);
            memcpy(mut, text, len + 1);
            size_t n = len;
            for (int e = 0; e < 1 + (int)(em_splitmix64(&st) % 3); e++) {
                size_t at = n ? em_splitmix64(&st) % n : 0;
                int op = (int)(em_splitmix64(&st) % 3);
                if (op == 0 && n > 0) { /* delete a short run */
                    size_t k = 1 + em_splitmix64(&st) % 4;
                    k = at + k > n ? n - at : k;
                    memmove(mut + at, mut + at + k, n - at - k + 1);
                    n -= k;
                } else if (op == 1) { /* overwrite with a JSON-ish byte */
                    if (n)
                        mut[at] = junk[em_splitmix64(&st) % (sizeof junk - 1)];
                } else { /* insert one */
                    memmove(mut + at + 1, mut + at, n - at + 1);
                    mut[at] = junk[em_splitmix64(&st) % (sizeof junk - 1)];
                    n++;
                }
            }
            char *p = write_tmp(dir, "m.json", mut);
            task *t = NULL;
            if (task_load(p, &t, &err) == 0) {
                loaded++;
                for (int v = 0; v < t->n_variants; v++) {
                    task_request *r = NULL;
                    int nr = 0;
                    if (task_build_requests(t, &t->variants[v], 0, &r, &nr, &err) == 0)
                        task_requests_free(r, nr);
                }
                char *a = task_extract_answer(t, "1 + 1. 2");
                free(a);
                task_free(t);
            } else {
                failed++;
                CHECK_MSG(!strncmp(err.msg, p, strlen(p)), "message without the file: %s",
                          err.msg);
            }
            free(p);
            free(mut);
        }
        free(text);
    }
    CHECK(loaded > 0 && failed > 0);
    free(dir);
}

/* ------------------------------------------------------------------ */
/* BIG-Bench-Hard                                                     */

static const char *const bbh_tasks[] = {
    "boolean_expressions", "date_understanding", "logical_deduction_three_objects",
    "multistep_arithmetic_two", "navigate", "object_counting", "sports_understanding",
    "web_of_lies", "word_sorting", NULL};

/* The published prompt body: the cot-prompt file without its first two
 * lines (canary, -----). */
static char *bbh_body(const char *root, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cot-prompts/%s.txt", root, name);
    char *text = NULL;
    size_t len;
    em_err err = {{0}};
    CHECK_MSG(em_read_file(path, &text, &len, &err) == 0, "%s", err.msg);
    if (!text)
        return NULL;
    char *nl = strchr(text, '\n');
    nl = nl ? strchr(nl + 1, '\n') : NULL;
    char *body = strdup(nl ? nl + 1 : "");
    free(text);
    return body;
}

/* The answer-only version of a body: every "\nA: " answer, which runs to
 * the next "\n\nQ: " or the end, becomes "\nA: " + the words after its
 * last "So the answer is " without the closing period. */
static char *answer_only(const char *body)
{
    size_t cap = strlen(body) + 1;
    char *out = calloc(1, cap);
    const char *p = body;
    for (;;) {
        const char *a = strstr(p, "\nA: ");
        if (!a) {
            strcat(out, p);
            break;
        }
        strncat(out, p, (size_t)(a - p) + 4);
        const char *end = strstr(a, "\n\nQ: ");
        if (!end)
            end = a + strlen(a);
        const char *last = NULL;
        for (const char *s = a; (s = strstr(s, "So the answer is ")) && s < end; s++)
            last = s;
        CHECK(last != NULL);
        if (!last)
            break;
        const char *fin = last + strlen("So the answer is ");
        const char *stop = end;
        while (stop > fin && (stop[-1] == '\n' || stop[-1] == ' '))
            stop--;
        if (stop > fin && stop[-1] == '.')
            stop--;
        strncat(out, fin, (size_t)(stop - fin));
        p = end;
    }
    return out;
}

/* Every BBH task under root/bbh (n of them) loads, and its prompts are
 * the published ones. */
static void bbh_all_load_and_prompts(const char *root, int n)
{
    char dir[2048];
    snprintf(dir, sizeof dir, "%.2000s/bbh", root);
    int seen = 0;
    for (int k = 0; bbh_tasks[k]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.json", dir, bbh_tasks[k]);
        if (access(path, F_OK) != 0)
            continue;
        task *t = load(path);
        char *body = bbh_body(root, bbh_tasks[k]);
        if (!t || !body) {
            task_free(t);
            free(body);
            continue;
        }
        seen++;
        CHECK_STR(t->name, bbh_tasks[k]);
        CHECK_INT(t->type, TASK_GENERATE);
        CHECK_INT(t->n_examples, 250);
        CHECK_INT(t->n_shots, 3);
        char *direct = answer_only(body);
        const task_variant *cv = task_variant_find(t, "cot");
        for (int ex = 0; ex < t->n_examples; ex++) {
            const char *in = t->examples[ex].input;
            /* room for the answer even at one token per byte */
            CHECK(t->max_tokens >= (int)strlen(t->examples[ex].targets[0]) + 2);
            CHECK(cv && cv->max_tokens >= 256);
            char *want = malloc(strlen(body) + strlen(in) + 64);
            sprintf(want, "%s\n\nQ: %s\nA: Let's think step by step.", body, in);
            char *got = gen_prompt(t, "cot", ex);
            CHECK_MSG(got && !strcmp(got, want), "%s example %d: cot prompt differs",
                      bbh_tasks[k], ex);
            free(got);
            free(want);
            want = malloc(strlen(direct) + strlen(in) + 64);
            sprintf(want, "%s\n\nQ: %s\nA:", direct, in);
            got = gen_prompt(t, "standard", ex);
            CHECK_MSG(got && !strcmp(got, want), "%s example %d: answer-only prompt "
                      "differs", bbh_tasks[k], ex);
            free(got);
            free(want);
        }
        /* every exemplar answer is the gold format of the task's targets */
        for (int i = 0; i < t->n_shots; i++)
            CHECK(t->shots[i].targets[0][0] != '\0');
        free(direct);
        free(body);
        task_free(t);
    }
    CHECK_INT(seen, n);
    /* and nothing else sits in the directory unloaded */
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        files += strstr(e->d_name, ".json") != NULL;
    if (d)
        closedir(d);
    CHECK_INT(files, n);
}

/* The three tasks shipped in tests/data/bbh. */
TEST(test_bbh_shipped_load_and_prompts)
{
    bbh_all_load_and_prompts("tests/data/bbh", 3);
}

/* All nine (../shared). */
TEST(test_bbh_all_load_and_prompts)
{
    char *root = tl_shared("tasks/bbh");
    if (root)
        bbh_all_load_and_prompts(root, 9);
    free(root);
}

TEST(test_bbh_answer_only_exemplars)
{
    char *path = tl_data_or_shared("bbh/bbh/boolean_expressions.json", "tasks/bbh/bbh/boolean_expressions.json");
    if (!path)
        return;
    task *t = load(path);
    if (t) {
        /* the answers BBH's answer-only prompt shows for this task */
        CHECK_STR(t->shots[0].targets[0], "False");
        CHECK_STR(t->shots[1].targets[0], "False");
        CHECK_STR(t->shots[2].targets[0], "True");
        CHECK_STR(t->description, "Evaluate the result of a random Boolean expression.");
        CHECK_INT(t->n_stop, 1);
    }
    task_free(t);
    free(path);
}

/* A generative task's random baseline is the chance of a guess, by the
 * form of the target: one of the input's (A)..(K) options, a binary
 * answer, or free text (0). Hand-computed. */
TEST(test_generative_random_baselines)
{
    char *dir = tl_tmpdir();
    char *path = write_tmp(dir, "guess.json",
        "{\"name\": \"guess\", \"description\": \"d\", \"keywords\": [\"k\"],\n"
        " \"metrics\": [\"exact_str_match\"], \"examples\": [\n"
        "  {\"input\": \"Pick: (A) x (B) y (C) z\", \"target\": \"(B)\"},\n"
        "  {\"input\": \"Is it?\", \"target\": \"True\"},\n"
        "  {\"input\": \"Well?\", \"target\": \" no \"},\n"
        "  {\"input\": \"Argument: (A) is fine\", \"target\": \"Invalid\"},\n"
        "  {\"input\": \"Sum?\", \"target\": \"42\"},\n"
        "  {\"input\": \"(A) a (B) b\", \"target\": \"(C)\"}]}\n");
    task *t = load(path);
    if (t)   /* 1/3, 1/2, 1/2, 1/2, 0, and (C) is not an option: 0 */
        CHECK_NEAR(t->random_baseline, (1.0 / 3 + 0.5 + 0.5 + 0.5) / 6, 1e-12);
    task_free(t);
    free(path);
    free(dir);
    static const struct { const char *name; double want; } bbh[] = {
        {"boolean_expressions", 0.5},                 /* True/False */
        {"navigate", 0.5},                            /* Yes/No */
        /* 212 examples list (A)-(F), 38 list (A)-(E) */
        {"date_understanding", (212.0 / 6 + 38.0 / 5) / 250},
    };
    for (size_t i = 0; i < sizeof bbh / sizeof *bbh; i++) {
        char rel[128], srel[128];
        snprintf(rel, sizeof rel, "bbh/bbh/%s.json", bbh[i].name);
        snprintf(srel, sizeof srel, "tasks/bbh/bbh/%s.json", bbh[i].name);
        char *p = tl_data_or_shared(rel, srel);
        task *b = p ? load(p) : NULL;
        if (b)
            CHECK_MSG(fabs(b->random_baseline - bbh[i].want) < 1e-12,
                      "%s: baseline %.15g, want %.15g (%d examples)",
                      bbh[i].name, b->random_baseline, bbh[i].want, b->n_examples);
        task_free(b);
        free(p);
    }
}

TEST(test_bbh_answer_extraction)
{
    char *path = tl_data_or_shared("bbh/bbh/date_understanding.json", "tasks/bbh/bbh/date_understanding.json");
    if (!path)
        return;
    task *t = load(path);
    free(path);
    if (!t)
        return;
    /* chain of thought: after "So the answer is ", up to the final period */
    CHECK_ANSWER(t, "Z = A and B = False and True = False. So the answer is False.", "False");
    CHECK_ANSWER(t, "10 days ago is 12/14/1937. So the answer is (D).\n\nQ: next", "(D)");
    CHECK_ANSWER(t, "Sorted. So the answer is apple banana cherry.", "apple banana cherry");
    CHECK_ANSWER(t, "= -219. So the answer is -219.", "-219");
    CHECK_ANSWER(t, "So the answer is 3.5.", "3.5");
    CHECK_ANSWER(t, "So the answer is 12/25/1937", "12/25/1937");
    CHECK_ANSWER(t, "So the answer is Yes. Q: more. So the answer is No.", "Yes");
    /* answer-only outputs: the first line */
    CHECK_ANSWER(t, " (D)\n\nQ: Today is", "(D)");
    CHECK_ANSWER(t, " True", "True");
    CHECK_ANSWER(t, " 24.", "24");
    CHECK_ANSWER(t, "\n  no\nyes", "no");
    /* and it scores with exact match against the target */
    char *a = answer(t, "...so. So the answer is (B).");
    const char *tg[] = {"(B)"};
    metric_input in = {.answer = a, .targets = tg, .n_targets = 1};
    double s = -1;
    em_err err = {{0}};
    CHECK(metric_compute("exact_match", &in, &s, &err) == 0);
    CHECK_NEAR(s, 1, 0);
    tg[0] = "(D)";
    CHECK(metric_compute("exact_match", &in, &s, &err) == 0);
    CHECK_NEAR(s, 0, 0);
    free(a);
    /* the cot variant's own extraction agrees */
    const task_variant *v = task_variant_find(t, "cot");
    a = task_extract_answer_variant(t, v, "x. So the answer is (A).");
    CHECK_STR(a, "(A)");
    free(a);
    task_free(t);
}

TEST(test_bbh_prompt_lookup)
{
    char *src = tl_data_or_shared("bbh/bbh/navigate.json", "tasks/bbh/bbh/navigate.json");
    char *cot = tl_data_or_shared("bbh/cot-prompts/navigate.txt", "tasks/bbh/cot-prompts/navigate.txt");
    char *dir = tl_tmpdir();
    if (!src || !cot || !dir) {
        free(src);
        free(cot);
        free(dir);
        return;
    }
    /* a copy away from its cot-prompts directory (a temporary file, not
     * in the repository) */
    CHECK(tl_sh(NULL, "cp %s %s/navigate.json", src, dir) == 0);
    char path[4096];
    snprintf(path, sizeof path, "%s/navigate.json", dir);
    unsetenv("EMERGE_BBH_PROMPTS");
    check_error(path, "navigate.json", "chain-of-thought prompt", "EMERGE_BBH_PROMPTS");
    task *t = NULL;
    em_err err = {{0}};
    CHECK(task_load_bbh(path, cot, &t, &err) == 0);
    if (t) {
        CHECK_STR(t->name, "navigate");
        CHECK_INT(t->n_shots, 3);
        char *bytes, *pbytes;
        size_t len, plen;
        CHECK(em_read_file(path, &bytes, &len, &err) == 0);
        CHECK(em_read_file(cot, &pbytes, &plen, &err) == 0);
        /* the hash covers the data and the prompt file */
        char *both = malloc(len + plen);
        memcpy(both, bytes, len);
        memcpy(both + len, pbytes, plen);
        char hex[65];
        em_sha256_hex(both, len + plen, hex);
        CHECK_STR(t->hash, hex);
        free(both);
        free(bytes);
        free(pbytes);
    }
    task_free(t);
    char *cdir = strdup(cot);
    *strrchr(cdir, '/') = '\0';
    setenv("EMERGE_BBH_PROMPTS", cdir, 1);
    t = load(path);
    CHECK(t != NULL);
    task_free(t);
    unsetenv("EMERGE_BBH_PROMPTS");
    /* malformed prompt files and data */
    char *bad = write_tmp(dir, "bad.txt", "canary\nno dashes\nDesc.\n\nQ: a\nA: b");
    CHECK(task_load_bbh(path, bad, &t, &err) == -1);
    CHECK_HAS(err.msg, "bad.txt:2:1");
    free(bad);
    bad = write_tmp(dir, "noans.txt", "canary\n-----\nDesc.\n\nQ: a\nA: b\n\nQ: c\nA: d");
    CHECK(task_load_bbh(path, bad, &t, &err) == -1);
    CHECK_HAS(err.msg, "noans.txt:5:1");
    CHECK_HAS(err.msg, "So the answer is");
    free(bad);
    char *data = write_tmp(dir, "x.json", "{\"canary\": \"c\", \"examples\": "
                           "[{\"input\": \"a\", \"target\": \"b\", \"id\": 1}]}");
    CHECK(task_load_bbh(data, cot, &t, &err) == -1);
    CHECK_HAS(err.msg, "examples[0]");
    free(data);
    free(cdir);
    free(src);
    free(cot);
    free(dir);
}

int main(void)
{
    RUN(test_rng_matches_numpy);
    RUN(test_generative_regex_prompts);
    RUN(test_stop_string_kept);
    RUN(test_default_regex);
    RUN(test_multiple_choice_prompts);
    RUN(test_custom_prefixes_and_shots);
    RUN(test_hash_and_cot_refusal);
    RUN(test_bigbench_errors);
    RUN(test_list_dir);
    RUN(test_mutated_files);
    RUN(test_bbh_shipped_load_and_prompts);
    RUN(test_bbh_all_load_and_prompts);
    RUN(test_bbh_answer_only_exemplars);
    RUN(test_bbh_answer_extraction);
    RUN(test_generative_random_baselines);
    RUN(test_bbh_prompt_lookup);
    return tl_summary();
}

/*
 * test_suite.c - the bundled suite (tasks/suite/ YAML files) against the demo
 * family's formats: every task loads, every prompt plus what the model
 * must write fits the family's 256-token context (one token per
 * character, plus BOS), the prompts are the family's exact formats, the
 * answers of family-style outputs are extracted right, and the retrieval
 * corpus states the held-out facts.
 *
 * Run from the repository root (the test programs are).
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness/retrieval.h"
#include "harness/task.h"
#include "tests/testlib.h"

#define CTX 256 /* the family's context, BOS included */

static const char *const demo_tasks[] = {
    "add_1d", "add_2d", "add_3d", "kb_recall", "kb_recall_mc", "kb_two_hop",
    "kb_two_hop_mc", "memo_trap", "nonsense", "story_gen", "story_moral",
    "story_moral_mc", NULL};

static task *load(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "tasks/suite/%s.yaml", name);
    task *t = NULL;
    em_err err;
    if (task_load(path, &t, &err)) {
        tl_fail(__FILE__, __LINE__, "%s", err.msg);
        return NULL;
    }
    return t;
}

/* Tokens a request needs at most: BOS + prompt + continuation or the
 * generation budget (the family's vocabulary is one piece per character). */
static int budget(const task_request *r)
{
    return 1 + (int)strlen(r->prompt) +
           (r->kind == TASK_REQ_LOGLIK ? (int)strlen(r->continuation) : r->max_tokens);
}

/* A variant is part of the demo when the task defines it for the family:
 * standard always, cot/zero_shot_cot for arithmetic, retrieval for KB. */
static int in_demo(const task *t, const task_variant *v)
{
    if (v->kind == VARIANT_STANDARD || v->kind == VARIANT_RETRIEVAL)
        return 1;
    return !strncmp(t->name, "add_", 4);
}

TEST(suite_loads_and_fits_context)
{
    for (int i = 0; demo_tasks[i]; i++) {
        task *t = load(demo_tasks[i]);
        if (!t)
            continue;
        CHECK_STR(t->name, demo_tasks[i]);
        for (int vi = 0; vi < t->n_variants; vi++) {
            const task_variant *v = &t->variants[vi];
            if (!in_demo(t, v))
                continue;
            int worst = 0;
            for (int ex = 0; ex < t->n_examples; ex++) {
                task_request *r;
                int n;
                em_err err;
                if (task_build_requests(t, v, ex, &r, &n, &err)) {
                    tl_fail(__FILE__, __LINE__, "%s/%s: %s", t->name, v->name, err.msg);
                    break;
                }
                for (int k = 0; k < n; k++) {
                    int b = budget(&r[k]);
                    /* Pass 2 of zero_shot_cot adds "\n" + trigger and the
                     * answer after the whole first pass. */
                    if (v->kind == VARIANT_ZERO_SHOT_COT)
                        b += 1 + (int)strlen(v->answer_trigger) + t->max_tokens;
                    worst = b > worst ? b : worst;
                }
                task_requests_free(r, n);
            }
            CHECK_MSG(worst <= CTX, "%s/%s needs %d tokens of the family's %d",
                      t->name, v->name, worst, CTX);
        }
        task_free(t);
    }
}

TEST(arithmetic_prompts_and_answers)
{
    task *t = load("add_3d");
    if (!t)
        return;
    task_request *r;
    int n;
    em_err err;
    const task_variant *cot = task_variant_find(t, "cot"),
                       *zs = task_variant_find(t, "zero_shot_cot");
    /* Record 0 of the family's held-out file, 103+184 (the task is
     * shuffled; ids are record positions). */
    int e0 = 0;
    while (e0 < t->n_examples && strcmp(t->examples[e0].id, "0"))
        e0++;
    CHECK(e0 < t->n_examples);
    CHECK_INT(task_build_requests(t, task_variant_find(t, "standard"), e0, &r, &n, &err), 0);
    CHECK_STR(r[0].prompt, "Q: What is 103+184?\nA: The answer is");
    CHECK_INT(r[0].kind, TASK_REQ_GENERATE);
    CHECK_STR(r[1].continuation, " 287");
    task_requests_free(r, n);
    CHECK_INT(task_build_requests(t, cot, e0, &r, &n, &err), 0);
    CHECK_STR(r[0].prompt, "Q: What is 103+184?\nA: Let's think step by step.");
    CHECK_INT(r[0].max_tokens, 104);
    task_requests_free(r, n);
    /* Kojima's pass 1 is the same prompt: no trailing space is added. */
    CHECK_INT(task_build_requests(t, zs, e0, &r, &n, &err), 0);
    CHECK_STR(r[0].prompt, "Q: What is 103+184?\nA: Let's think step by step.");
    task_request p2;
    CHECK_INT(task_build_second_pass(t, zs, e0, r[0].prompt, " 3+4=7, write 7 carry 0. "
                                     "So the answer is 287", &p2, &err), 0);
    CHECK_STR(p2.prompt, "Q: What is 103+184?\nA: Let's think step by step. 3+4=7, "
                         "write 7 carry 0. So the answer is 287\nTherefore, the answer is");
    free(p2.prompt);
    free(p2.continuation);
    task_requests_free(r, n);
    /* Answers: the first number of an answer-only output, the number
     * after the last "answer is" of a scratchpad, and a scratchpad cut
     * short yields its first number (wrong, as it should be). */
    const char *cases[][2] = {
        {" 585", "585"},
        {" 5+0=5, write 5 carry 0. 0+8=8, write 8 carry 0. 1+4=5, write 5 carry 0. "
         "So the answer is 585", "585"},
        {" 5+0=5, write 5 carry 0. 0+8=8, wri", "5"},
        {" 0585", "585"},
        {" The answer is 12", "12"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *a = task_extract_answer(t, cases[i][0]);
        CHECK_STR(a, cases[i][1]);
        free(a);
    }
    task_free(t);
}

static const char *field(const task_example *e, const char *key)
{
    for (int i = 0; i < e->n_fields; i++)
        if (!strcmp(e->field_keys[i], key))
            return e->field_vals[i];
    return "";
}

/* The fact a recall question asks for, in the corpus's phrasing:
 * "Q: Where does X live?" -> "X lives in C." etc. */
static char *expected_fact(const task_example *e)
{
    const char *q = e->input, *attr = field(e, "attribute");
    const char *a = strstr(q, !strcmp(attr, "city") || !strcmp(attr, "pet") ? "does "
                                                                             : "of ");
    if (!a)
        return NULL;
    a = strchr(a, ' ') + 1;
    size_t n = strcspn(a, " ?");
    char buf[256];
    const char *v = e->targets[0] + 1; /* targets carry a leading space */
    if (!strcmp(attr, "city"))
        snprintf(buf, sizeof buf, "%.*s lives in %s.", (int)n, a, v);
    else if (!strcmp(attr, "colour"))
        snprintf(buf, sizeof buf, "The favourite colour of %.*s is %s.", (int)n, a, v);
    else if (!strcmp(attr, "pet"))
        snprintf(buf, sizeof buf, "%.*s has a pet %s.", (int)n, a, v);
    else
        snprintf(buf, sizeof buf, "The friend of %.*s is %s.", (int)n, a, v);
    return em_strdup(buf);
}

/* Every held-out recall fact is stated in the corpus (it was generated
 * from the family's own knowledge base), and BM25 puts it in the top 3
 * for nearly every question. */
TEST(retrieval_corpus_covers_heldout)
{
    task *t = load("kb_recall");
    if (!t)
        return;
    CHECK(t->retrieval != NULL);
    if (!t->retrieval) {
        task_free(t);
        return;
    }
    retr_index *ix = t->retrieval->index;
    CHECK_INT(retr_count(ix), 480);
    int hits = 0, stated = 0, n_ex = t->n_examples;
    for (int ex = 0; ex < n_ex; ex++) {
        char *fact = expected_fact(&t->examples[ex]);
        if (!fact) {
            tl_fail(__FILE__, __LINE__, "example %d: cannot parse '%s'", ex,
                    t->examples[ex].input);
            continue;
        }
        for (int i = 0; i < retr_count(ix); i++)
            if (!strcmp(retr_passage(ix, i), fact)) {
                stated++;
                break;
            }
        char *ps = NULL;
        em_err err;
        CHECK_INT(retr_passages(ix, t->examples[ex].input, 3, "\n", &ps, &err), 0);
        hits += ps && strstr(ps, fact) != NULL;
        free(ps);
        free(fact);
    }
    CHECK_INT(stated, n_ex);
    CHECK_MSG(hits >= n_ex * 95 / 100, "the asked fact is in the top 3 for %d of %d",
              hits, n_ex);
    printf("  retrieval: the asked fact is in the top 3 for %d of %d questions\n", hits,
           n_ex);
    task_free(t);
}

/* kb_recall_mc.jsonl holds exactly kb_recall's rows minus the friend rows
 * (whose only choice is the target). */
TEST(derived_data_in_sync)
{
    task *all = load("kb_recall"), *mc = load("kb_recall_mc");
    if (all && mc) {
        int want = 0, found = 0;
        for (int i = 0; i < all->n_examples; i++) {
            const task_example *a = &all->examples[i];
            if (!strcmp(field(a, "attribute"), "friend"))
                continue;
            want++;
            for (int j = 0; j < mc->n_examples; j++)
                if (!strcmp(mc->examples[j].input, a->input) &&
                    !strcmp(mc->examples[j].targets[0], a->targets[0])) {
                    found++;
                    break;
                }
        }
        CHECK_INT(want, 120);
        CHECK_INT(found, want);
        CHECK_INT(mc->n_examples, want);
    }
    task_free(all);
    task_free(mc);
}

/* shuffle: a seeded permutation of the evaluated examples; ids stay. */
TEST(shuffle_order)
{
    char *dir = tl_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    const char *yaml[] = {
        "name: s\nshuffle: 3\nexamples:\n",
        "name: s\nshuffle: 4\nexamples:\n",
        "name: s\nexamples:\n"};
    char order[3][64];
    for (int v = 0; v < 3; v++) {
        FILE *f = fopen(path, "w");
        if (!f)
            break;
        fputs(yaml[v], f);
        for (int i = 0; i < 12; i++)
            fprintf(f, "  - {input: q%d, target: a%d}\n", i, i);
        fclose(f);
        task *t = NULL;
        em_err err;
        CHECK_MSG(task_load(path, &t, &err) == 0, "%s", err.msg);
        if (!t)
            continue;
        order[v][0] = 0;
        int seen[12] = {0};
        for (int i = 0; i < t->n_examples; i++) {
            int id = atoi(t->examples[i].id);
            CHECK(id >= 0 && id < 12);
            if (id >= 0 && id < 12)
                seen[id]++;
            /* the record keeps its id: q<id> -> a<id> */
            char want[16];
            snprintf(want, sizeof want, "q%d", id);
            CHECK_STR(t->examples[i].input, want);
            snprintf(order[v] + strlen(order[v]), 5, "%d,", id);
        }
        for (int i = 0; i < 12; i++)
            CHECK_INT(seen[i], 1);
        task_free(t);
    }
    CHECK(strcmp(order[0], order[2]) != 0); /* shuffled */
    CHECK(strcmp(order[0], order[1]) != 0); /* the seed matters */
    CHECK_STR(order[2], "0,1,2,3,4,5,6,7,8,9,10,11,");
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("name: s\nshuffle: -1\nexamples: [{input: a, target: b}]\n", f);
        fclose(f);
    }
    task *t = NULL;
    em_err err;
    CHECK_INT(task_load(path, &t, &err), -1);
    CHECK_HAS(err.msg, "s.yaml:2:");
    CHECK_HAS(err.msg, "shuffle");
    free(dir);
}

TEST(large_model_tasks_load)
{
    const char *names[] = {"modified_arithmetic", "emoji_movie", "word_unscramble"};
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "tasks/suite/large/%s.yaml", names[i]);
        task *t = NULL;
        em_err err;
        CHECK_MSG(task_load(path, &t, &err) == 0, "%s", err.msg);
        if (t)
            CHECK(t->n_examples >= 10);
        task_free(t);
    }
}

int main(void)
{
    RUN(suite_loads_and_fits_context);
    RUN(arithmetic_prompts_and_answers);
    RUN(retrieval_corpus_covers_heldout);
    RUN(derived_data_in_sync);
    RUN(shuffle_order);
    RUN(large_model_tasks_load);
    return tl_summary();
}

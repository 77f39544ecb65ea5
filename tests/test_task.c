/*
 * test_task.c - task files: loading, prompts under every variant, few-shot
 * determinism, answer extraction and normalisation, templates, and the
 * error message of every malformed file under tests/data/tasks/bad/.
 */
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/task.h"
#include "harness/template.h"
#include "base/yamldoc.h"
#include "tests/testlib.h"

#define GOOD "tests/data/tasks/good/"
#define BAD "tests/data/tasks/bad/"

static task *load(const char *path)
{
    task *t = NULL;
    em_err err = {{0}};
    if (task_load(path, &t, &err))
        tl_fail(__FILE__, __LINE__, "loading %s: %s", path, err.msg);
    return t;
}

/* The requests of example ex under variant vname, or NULL with n = -1. */
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

TEST(load_inline_generate)
{
    task *t = load(GOOD "arith.yaml");
    if (!t)
        return;
    CHECK_STR(t->name, "arith");
    CHECK_STR(t->description, "two-digit addition");
    CHECK_INT(t->n_keywords, 2);
    CHECK_STR(t->keywords[1], "test");
    CHECK_INT(t->type, TASK_GENERATE);
    CHECK_INT(t->n_examples, 5);
    CHECK_INT(t->n_shots, 0);
    CHECK_STR(t->examples[0].id, "0");
    CHECK_STR(t->examples[2].input, "21 + 21");
    CHECK_INT(t->examples[2].n_targets, 2);
    CHECK_STR(t->examples[2].targets[1], "42.0");
    CHECK_STR(t->examples[3].targets[0], "18"); /* a YAML integer */
    CHECK_STR(t->examples[0].rationale, "2 plus 3 is 5.");
    CHECK_INT(t->few_shot.k, 2);
    CHECK_INT(t->few_shot.seed, 7);
    CHECK_STR(t->few_shot.separator, "\n\n");
    CHECK_STR(t->few_shot.example_template, "Q: What is {{input}}?\nA: {{target}}");
    CHECK_INT(t->n_stop, 1);
    CHECK_STR(t->stop[0], "\n\n");
    CHECK_INT(t->max_tokens, 8);
    CHECK_INT(t->answer.last, 1);
    CHECK_INT(t->answer.norm, NORM_STRIP | NORM_NUMBER);
    CHECK_INT(t->n_metrics, 2);
    CHECK_STR(t->preferred_metric, "exact_match");
    CHECK_NEAR(t->random_baseline, 0, 0);
    CHECK_NEAR(t->low_score, 0, 0);
    CHECK_NEAR(t->high_score, 1, 0);
    CHECK_INT(t->n_variants, 4);
    CHECK_STR(t->variants[3].name, "terse");
    CHECK_INT(t->variants[3].few_shot_k, 1);
    CHECK_STR(task_variant_find(t, "zero_shot_cot")->answer_trigger,
              "Therefore, the answer (arabic numerals) is");
    CHECK(task_variant_find(t, "nope") == NULL);
    CHECK_INT(strlen(t->hash), 64);
    CHECK_STR(t->examples[4].where, GOOD "arith.yaml:29:5");
    task_free(t);
}

static const char arith_standard[] =
    "Q: What is 10 + 7?\nA: 17\n\n"
    "Q: What is 9 + 9?\nA: 18\n\n"
    "Q: What is 21 + 21?\nA:";

TEST(prompt_standard)
{
    task *t = load(GOOD "arith.yaml");
    if (!t)
        return;
    int n;
    task_request *r = reqs(t, "standard", 2, &n);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_INT(r[0].kind, TASK_REQ_GENERATE);
        CHECK_STR(r[0].prompt, arith_standard);
        CHECK_INT(r[0].max_tokens, 8);
        CHECK_INT(r[0].choice, -2);
        /* target_logprob is among the metrics: one scored continuation */
        CHECK_INT(r[1].kind, TASK_REQ_LOGLIK);
        CHECK_STR(r[1].prompt, arith_standard);
        CHECK_STR(r[1].continuation, " 42");
        CHECK_INT(r[1].choice, -1);
    }
    task_requests_free(r, n);
    task_free(t);
}

TEST(prompt_cot)
{
    task *t = load(GOOD "arith.yaml");
    if (!t)
        return;
    int n;
    task_request *r = reqs(t, "cot", 2, &n);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(r[0].prompt,
                  "Q: What is 10 + 7?\nA: 10 plus 7 is 17. So the answer is 17.\n\n"
                  "Q: What is 9 + 9?\nA: 9 doubled is 18. So the answer is 18.\n\n"
                  "Q: What is 21 + 21?\nA:");
        CHECK_INT(r[0].max_tokens, 256);
        CHECK_STR(r[1].continuation, " 42");
    }
    task_requests_free(r, n);
    /* The answer comes from after the last "So the answer is". */
    char *a = task_extract_answer_variant(
        t, task_variant_find(t, "cot"),
        " 20 plus 20 is 40, and 1 more is 41. So the answer is 1,042.0.\n\nQ: 7");
    CHECK_STR(a, "1042");
    free(a);
    task_free(t);
}

TEST(prompt_zero_shot_cot)
{
    task *t = load(GOOD "arith.yaml");
    if (!t)
        return;
    int n;
    task_request *r = reqs(t, "zero_shot_cot", 2, &n);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(r[0].kind, TASK_REQ_GENERATE);
        CHECK_STR(r[0].prompt, "Q: What is 21 + 21?\nA: Let's think step by step.");
        CHECK_INT(r[0].max_tokens, 256);
        task_request p2;
        em_err err;
        const task_variant *v = task_variant_find(t, "zero_shot_cot");
        CHECK_INT(task_build_second_pass(t, v, 2, r[0].prompt, " 21 and 21 make 42.",
                                         &p2, &err), 0);
        CHECK_STR(p2.prompt, "Q: What is 21 + 21?\nA: Let's think step by step."
                             " 21 and 21 make 42.\n"
                             "Therefore, the answer (arabic numerals) is");
        CHECK_INT(p2.kind, TASK_REQ_GENERATE);
        CHECK_INT(p2.max_tokens, 8);
        free(p2.prompt);
        /* Only zero_shot_cot variants have a second pass. */
        CHECK_INT(task_build_second_pass(t, task_variant_find(t, "standard"), 2,
                                         r[0].prompt, "x", &p2, &err), -1);
        CHECK_HAS(err.msg, "no second pass");
    }
    task_requests_free(r, n);
    task_free(t);
}

TEST(prompt_custom_variant)
{
    task *t = load(GOOD "arith.yaml");
    if (!t)
        return;
    int n;
    task_request *r = reqs(t, "terse", 2, &n);
    CHECK_INT(n, 2);
    if (n == 2)
        CHECK_STR(r[0].prompt, "Answer with a number.\n\n"
                               "Q: What is 10 + 7?\nA: 17\n\n"
                               "Q: What is 21 + 21?\nA:");
    task_requests_free(r, n);
    task_free(t);
}

/* Joins the ids of the exemplars picked for ex. */
static char *picked(const task *t, const char *vname, int ex)
{
    int *idx, k;
    em_err err;
    if (task_pick_shots(t, task_variant_find(t, vname), ex, &idx, &k, &err)) {
        tl_fail(__FILE__, __LINE__, "%s", err.msg);
        return em_strdup("");
    }
    em_buf b = {0};
    em_buf_puts(&b, "");
    const task_example *pool = t->n_shots ? t->shots : t->examples;
    for (int i = 0; i < k; i++)
        em_buf_printf(&b, "%s%s", i ? "," : "", pool[idx[i]].id);
    free(idx);
    return em_buf_take(&b);
}

TEST(few_shot_deterministic)
{
    task *a = load(GOOD "arith.yaml"), *b = load(GOOD "arith.yaml");
    if (!a || !b) {
        task_free(a);
        task_free(b);
        return;
    }
    int differs = 0;
    for (int ex = 0; ex < a->n_examples; ex++) {
        int n1, n2;
        task_request *r1 = reqs(a, "standard", ex, &n1), *r2 = reqs(b, "standard", ex, &n2);
        if (n1 > 0 && n2 > 0)
            CHECK_STR(r1[0].prompt, r2[0].prompt);
        task_requests_free(r1, n1);
        task_requests_free(r2, n2);
        /* never the evaluated example itself, even with k = pool size */
        a->few_shot.k = a->n_examples - 1;
        char *all = picked(a, "standard", ex), id[16];
        snprintf(id, sizeof id, "%d", ex);
        CHECK(strstr(all, id) == NULL);
        CHECK_INT(strlen(all), 2 * (a->n_examples - 1) - 1);
        free(all);
        a->few_shot.k = 2;
        /* another seed draws other exemplars for some example */
        b->few_shot.seed = 12345;
        char *s1 = picked(a, "standard", ex), *s2 = picked(b, "standard", ex);
        differs |= strcmp(s1, s2) != 0;
        free(s1);
        free(s2);
        b->few_shot.seed = 7;
    }
    CHECK(differs);
    task_free(a);
    task_free(b);
}

TEST(few_shot_pools)
{
    task *t = load(GOOD "shots.yaml");
    if (t) {
        CHECK_INT(t->n_examples, 2);
        CHECK_INT(t->n_shots, 3);
        CHECK_STR(t->shots[2].id, "shot2");
        char *p = picked(t, "standard", 0);
        CHECK_INT(strlen(p), strlen("shotN,shotN"));
        free(p);
        int n;
        task_request *r = reqs(t, "cot", 1, &n);
        if (n == 1)
            CHECK_STR(r[0].prompt, "cat -> French for cat. So the answer is chat.\n\n"
                                   "bird -> French for bird. So the answer is oiseau.\n\n"
                                   "tree ->");
        task_requests_free(r, n);
    }
    task_free(t);
    t = load(GOOD "split.yaml");
    if (t) {
        CHECK_INT(t->n_shots, 1);
        CHECK_INT(t->n_examples, 2);
        CHECK_STR(t->shots[0].id, "q1");
        CHECK_STR(t->examples[0].id, "q2");
        int n;
        task_request *r = reqs(t, "standard", 1, &n);
        if (n == 1)
            CHECK_STR(r[0].prompt, "Capital of France? Paris\n\nCapital of Peru?");
        task_requests_free(r, n);
    }
    task_free(t);
}

TEST(load_jsonl_field_map)
{
    task *t = load(GOOD "qa.yaml");
    if (!t)
        return;
    CHECK_INT(t->n_examples, 3);
    CHECK_STR(t->examples[1].id, "q2");
    CHECK_STR(t->examples[1].input, "Capital of Japan?");
    CHECK_INT(t->examples[1].n_targets, 2);
    CHECK_STR(t->examples[1].targets[1], "Tokio");
    CHECK_STR(t->examples[1].rationale, "Japan's capital is Tokyo.");
    CHECK_STR(t->examples[1].where, GOOD "qa.jsonl:3"); /* a blank line 2 */
    CHECK_INT(t->answer.norm, NORM_STRIP | NORM_CASE | NORM_PUNCT | NORM_ARTICLES);
    int n;
    task_request *r = reqs(t, "standard", 1, &n);
    if (n == 1)
        CHECK_STR(r[0].prompt, "[Europe] Capital of France? Paris\n---\n[Asia] Capital of Japan?");
    task_requests_free(r, n);
    task_free(t);
}

TEST(json_scalars_as_text)
{
    task *t = load(GOOD "nums.yaml");
    if (!t)
        return;
    CHECK_STR(t->examples[0].targets[0], "0.1");
    CHECK_INT(t->examples[1].n_targets, 3);
    CHECK_STR(t->examples[1].targets[0], "2.5");
    CHECK_STR(t->examples[1].targets[1], "7");
    CHECK_STR(t->examples[1].targets[2], "true");
    CHECK_STR(t->examples[2].targets[0], "1e+20");
    CHECK_STR(t->examples[2].field_vals[2], "3");
    task_free(t);
}

TEST(multiple_choice_choices)
{
    task *t = load(GOOD "mc.yaml");
    if (!t)
        return;
    CHECK_INT(t->type, TASK_MULTIPLE_CHOICE);
    CHECK_STR(t->metrics[0], "multiple_choice_grade");
    const task_example *g = &t->examples[1];
    CHECK_INT(g->n_choices, 3);
    CHECK_STR(g->targets[0], "green"); /* target: 0 is an index */
    CHECK_NEAR(g->choice_scores[0], 1, 0);
    CHECK_NEAR(g->choice_scores[1], 0, 0);
    CHECK_STR(t->examples[0].targets[0], "blue");
    CHECK_NEAR(t->random_baseline, (1.0 / 3 + 1.0 / 3 + 1.0 / 4) / 3, 1e-12);
    int n;
    task_request *r = reqs(t, "standard", 2, &n);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(r[0].prompt, "Q: Colour of blood?\nA. green\nB. blue\nC. red\nD. black\nA:");
        CHECK_STR(r[3].continuation, " black");
        CHECK_INT(r[3].choice, 3);
        CHECK_INT(r[3].kind, TASK_REQ_LOGLIK);
    }
    task_requests_free(r, n);
    /* under zero_shot_cot a choice task generates, and the answer is matched */
    r = reqs(t, "zero_shot_cot", 0, &n);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_INT(r[0].kind, TASK_REQ_GENERATE);
    task_requests_free(r, n);
    CHECK_INT(task_match_choice(t, 0, "blue"), 1);
    CHECK_INT(task_match_choice(t, 0, "C"), 2);
    CHECK_INT(task_match_choice(t, 0, "(a)"), 0);
    CHECK_INT(task_match_choice(t, 0, "purple"), -1);
    CHECK_INT(task_match_choice(t, 0, "D"), -1);
    /* the task has no rationales: cot fails with a message, not a crash */
    em_err err;
    CHECK_INT(task_build_requests(t, task_variant_find(t, "cot"), 0, &r, &n, &err), -1);
    CHECK_HAS(err.msg, "chain-of-thought");
    task_free(t);
}

TEST(multiple_choice_target_scores)
{
    task *t = load(GOOD "bb.yaml");
    if (!t)
        return;
    CHECK_INT(t->n_examples, 2);
    const task_example *e = &t->examples[1];
    CHECK_INT(e->n_choices, 4);
    CHECK_STR(e->choices[3], "22");
    CHECK_NEAR(e->choice_scores[1], 1, 0);
    CHECK_INT(e->n_targets, 1);
    CHECK_STR(e->targets[0], "4");
    CHECK_STR(t->metrics[1], "brier_score");
    int n;
    task_request *r = reqs(t, "standard", 1, &n);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_STR(r[0].prompt, "1 + 1 = 2\n\n2 + 2 =");
        CHECK_STR(r[1].continuation, " 4");
    }
    task_requests_free(r, n);
    em_err err;
    CHECK_INT(task_build_requests(t, task_variant_find(t, "cot"), 0, &r, &n, &err), -1);
    CHECK_HAS(err.msg, "no few-shot exemplar of task 'bb' has a rationale");
    task_free(t);
}

TEST(target_logprob_task)
{
    task *t = load(GOOD "logprob.yaml");
    if (!t)
        return;
    int n;
    task_request *r = reqs(t, "standard", 0, &n);
    CHECK_INT(n, 1);
    if (n == 1) {
        CHECK_INT(r[0].kind, TASK_REQ_LOGLIK);
        CHECK_STR(r[0].prompt, "The cat sat on the");
        CHECK_STR(r[0].continuation, " mat");
        CHECK_INT(r[0].choice, -1);
    }
    task_requests_free(r, n);
    em_err err;
    CHECK_INT(task_build_requests(t, task_variant_find(t, "zero_shot_cot"), 0, &r, &n,
                                  &err), -1);
    CHECK_HAS(err.msg, "only scores");
    task_free(t);
}

TEST(extraction)
{
    task *t = load(GOOD "arith.yaml");
    if (!t)
        return;
    /* pattern with a group, match: last, number normalisation */
    char *a = task_extract_answer(t, "First 12, then 7, finally 1,234.50 apples");
    CHECK_STR(a, "1234.5");
    free(a);
    a = task_extract_answer(t, "no digits here");
    CHECK_STR(a, "");
    free(a);
    t->answer.last = 0;
    a = task_extract_answer(t, "First 12, then 7");
    CHECK_STR(a, "12");
    free(a);
    task_free(t);
    /* no pattern: the first line, stripped */
    t = load(GOOD "qa.yaml");
    if (!t)
        return;
    a = task_extract_answer(t, "  The Paris!\nQ: next question");
    CHECK_STR(a, "paris");
    free(a);
    t->answer.norm = 0;
    a = task_extract_answer(t, "\n\n  Lima  \nmore");
    CHECK_STR(a, "Lima");
    free(a);
    task_free(t);
}

TEST(extraction_whole_match)
{
    /* A pattern without groups yields the whole match. */
    task *t = load(GOOD "arith.yaml");
    if (!t)
        return;
    pcre2_code_free(t->answer_re);
    int code;
    PCRE2_SIZE off;
    t->answer_re = pcre2_compile((PCRE2_SPTR) "[a-z]+[0-9]", PCRE2_ZERO_TERMINATED, 0,
                                 &code, &off, NULL);
    char *a = task_extract_answer(t, "x ab1 cd2 y");
    CHECK_STR(a, "cd2");
    free(a);
    task_free(t);
}

TEST(normalize)
{
    struct { const char *in; unsigned flags; const char *out; } cases[] = {
        {"  hi there \n", NORM_STRIP, "hi there"},
        {"MiXeD Case", NORM_CASE, "mixed case"},
        {"a.b,c!d?", NORM_PUNCT, "abcd"},
        {"-3.5, not 3-5 or 1,000.", NORM_PUNCT, "-3.5 not 35 or 1,000"},
        {"-3.50, (-0)", NORM_PUNCT | NORM_NUMBER, "-3.5 0"},
        {"the cat and a dog an owl", NORM_ARTICLES, "cat and dog owl"},
        {"The  end", NORM_ARTICLES, "end"},
        {"1,000", NORM_NUMBER, "1000"},
        {"+5", NORM_NUMBER, "5"},
        {"3.0", NORM_NUMBER, "3"},
        {"2.50", NORM_NUMBER, "2.5"},
        {"-0", NORM_NUMBER, "0"},
        {"-0.00", NORM_NUMBER, "0"},
        {"-7", NORM_NUMBER, "-7"},
        {"1,234,567.890 and 12,34", NORM_NUMBER, "1234567.89 and 12,34"},
        {"42.", NORM_NUMBER, "42."},
        {"x2.0", NORM_NUMBER, "x2.0"},
        {"007", NORM_NUMBER, "7"},
        {" The Answer: 1,000.0! ", NORM_STRIP | NORM_CASE | NORM_PUNCT | NORM_ARTICLES |
                                       NORM_NUMBER, "answer 1000"},
        {"unchanged  ", 0, "unchanged  "},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = task_normalize(cases[i].in, cases[i].flags);
        CHECK_MSG(!strcmp(r, cases[i].out), "normalize(\"%s\", %u) = \"%s\", expected \"%s\"",
                  cases[i].in, cases[i].flags, r, cases[i].out);
        free(r);
    }
}

static const char *tl_lookup(void *ctx, const char *name)
{
    (void)ctx;
    return !strcmp(name, "a") ? "A" : !strcmp(name, "long_name-2") ? "L" : NULL;
}

TEST(templates)
{
    em_buf b = {0};
    em_err err;
    CHECK_INT(tmpl_render("x {{a}} {{ long_name-2 }}{{a}}!", tl_lookup, NULL, &b, &err), 0);
    CHECK_STR(b.s, "x A LA!");
    em_buf_reset(&b);
    CHECK_INT(tmpl_render("no placeholders { } }}", tl_lookup, NULL, &b, &err), 0);
    CHECK_STR(b.s, "no placeholders { } }}");
    em_buf_reset(&b);
    CHECK_INT(tmpl_render("line\n  {{b}}", tl_lookup, NULL, &b, &err), -1);
    CHECK_HAS(err.msg, "line 2 col 3: unknown field 'b'");
    CHECK_INT(tmpl_render("{{a b}}", tl_lookup, NULL, &b, &err), -1);
    CHECK_HAS(err.msg, "malformed placeholder '{{a b}}'");
    CHECK_INT(tmpl_render("{{", tl_lookup, NULL, &b, &err), -1);
    CHECK_HAS(err.msg, "unterminated");
    em_buf_free(&b);
    char **names;
    int n;
    CHECK_INT(tmpl_names("{{x}} and {{ y }} and {{x}}", &names, &n, &err), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(names[1], "y");
        CHECK_STR(names[2], "x");
    }
    tmpl_names_free(names, n);
    CHECK_INT(ydoc_edit_distance("templat", "template"), 1);
    CHECK_INT(ydoc_edit_distance("kitten", "sitting"), 3);
}

TEST(hash_tracks_data)
{
    char *dir = tl_tmpdir();
    CHECK_INT(tl_sh(NULL, "cp %sqa.yaml %sqa.jsonl %s/", GOOD, GOOD, dir), 0);
    em_buf p = {0};
    em_buf_printf(&p, "%s/qa.yaml", dir);
    task *a = load(p.s), *a2 = load(GOOD "qa.yaml");
    CHECK_INT(tl_sh(NULL, "sed -i 's/Lima/Lima, Peru/' %s/qa.jsonl", dir), 0);
    task *b = load(p.s);
    if (a && a2 && b) {
        CHECK_STR(a->hash, a2->hash);
        CHECK(strcmp(a->hash, b->hash) != 0);
        CHECK_STR(b->examples[2].targets[0], "Lima, Peru");
    }
    task_free(a);
    task_free(a2);
    task_free(b);
    em_buf_free(&p);
    free(dir);
}

/* Every malformed file and a fragment its message must contain. */
static const struct { const char *file, *msg; } bad_cases[] = {
    {"unknown_key.yaml", "unknown_key.yaml:3:1: unknown key 'templat' in the task (did you mean 'template'?)"},
    {"max_tokens_text.yaml", "max_tokens_text.yaml:2:13: 'max_tokens' must be a positive integer, got 'ten'"},
    {"missing_name.yaml", "missing_name.yaml:1:1: missing required field 'name'"},
    {"bad_type.yaml", "bad_type.yaml:2:7: 'type' must be one of generate, multiple_choice, target_logprob, got 'generation' (did you mean 'generate'?)"},
    {"unknown_metric.yaml", "unknown_metric.yaml:3:11: unknown metric 'exact_macth' (did you mean 'exact_match'?)"},
    {"template_unknown_field.yaml", "template_unknown_field.yaml:5:11: 'template' references unknown field 'questoin' (did you mean 'question'?)"},
    {"template_field_missing.yaml", "template_field_missing.yaml:4:5: record has no field 'topic' used by 'template'"},
    {"bad_regex.yaml", "bad_regex.yaml:4:12: invalid answer pattern '([0-9]+': missing closing parenthesis at offset 7"},
    {"preferred_not_in_metrics.yaml", "preferred_not_in_metrics.yaml:4:19: preferred_metric 'bleu' is not among metrics [exact_match]"},
    {"k_too_large.yaml", "k_too_large.yaml:3:6: few_shot k is 5 but the few-shot pool has only 2 examples"},
    {"missing_data.yaml", "missing_data.yaml:2:7: data file cannot be read: " BAD "nothere.jsonl"},
    {"bad_jsonl.yaml", "bad_jsonl.jsonl:2:26: invalid JSON"},
    {"bad_json.yaml", "broken.json:3:17: invalid JSON"},
    {"field_absent.yaml", "field_absent.jsonl:3: record has no field 'question' (mapped to input)"},
    {"duplicate_key.yaml", "duplicate_key.yaml:3:1: duplicate key 'name' (first at line 1:1)"},
    {"duplicate_variant.yaml", "duplicate_variant.yaml:6:11: duplicate variant name 'short' (first at line 4:11)"},
    {"duplicate_id.yaml", "duplicate_id.yaml:5:5: duplicate example id 'a' (also at " BAD "duplicate_id.yaml:3:5)"},
    {"empty_examples.yaml", "empty_examples.yaml:2:11: 'examples' is empty"},
    {"mc_no_choices.yaml", "mc_no_choices.yaml:4:5: multiple_choice record has no choices"},
    {"one_choice.yaml", "one_choice.yaml:4:5: a multiple_choice record needs at least 2 choices"},
    {"mc_target_not_choice.yaml", "mc_target_not_choice.yaml:4:5: target 'purple' is neither one of the choices"},
    {"cot_variant_no_rationale.yaml", "cot_variant_no_rationale.yaml:6:5: variant 'mycot' is chain-of-thought but no few-shot exemplar has a rationale"},
    {"no_examples.yaml", "no_examples.yaml:1:1: missing required field 'examples'"},
    {"yaml_syntax.yaml", "yaml_syntax.yaml:4:4: YAML syntax error"},
    {"not_mapping.yaml", "not_mapping.yaml:1:1: a task file must be a mapping, got a list"},
    {"empty_file.yaml", "empty_file.yaml:1:1: empty task file"},
    {"unknown_normalize.yaml", "unknown_normalize.yaml:4:22: unknown normalization 'lowercase'"},
    {"bad_match.yaml", "bad_match.yaml:3:17: 'match' must be first or last, got 'middle'"},
    {"template_unterminated.yaml", "template_unterminated.yaml:3:11: 'template': template line 1 col 4: unterminated '{{'"},
    {"choices_not_mc.yaml", "choices_not_mc.yaml:3:11: 'template' uses {{choices}} but the task type is not multiple_choice"},
    {"bad_field_role.yaml", "bad_field_role.yaml:4:3: unknown key 'inptu' in 'fields'"},
    {"mc_metric_on_generate.yaml", "mc_metric_on_generate.yaml:3:24: metric 'multiple_choice_grade' needs a multiple_choice task"},
    {"variant_kind_bad.yaml", "variant_kind_bad.yaml:5:11: variant 'kind' must be standard, cot or zero_shot_cot, got 'chain'"},
    {"builtin_kind_change.yaml", "builtin_kind_change.yaml:5:11: variant 'cot' is built in with kind cot"},
    {"json_not_list.yaml", "not_list.json: expected a list of records"},
    {"missing_target.yaml", "missing_target.yaml:4:5: record has no field 'target'"},
    {"split_too_big.yaml", "split_too_big.yaml:2:19: few_shot 'split' is 3 but there are only 3 examples"},
    {"high_eq_low.yaml", "high_eq_low.yaml:4:13: high_score and low_score must differ"},
    {"alias.yaml", "alias.yaml:3:12: YAML aliases (*b) are not supported"},
    {"data_ext.yaml", "data_ext.yaml:2:7: 'data' file 'records.csv' must end in .jsonl or .json"},
    {"choice_format_field.yaml", "choice_format_field.yaml:3:16: 'choice_format' references unknown field 'label'"},
    {"keywords_map.yaml", "keywords_map.yaml:2:11: 'keywords' must be a list of strings, got a mapping"},
    {"variant_k_too_large.yaml", "variant_k_too_large.yaml:7:8: variant k is 4 but the few-shot pool has only 1 example"},
    {"few_shot_typo.yaml", "few_shot_typo.yaml:3:12: unknown key 'kk' in 'few_shot' (did you mean 'k'?)"},
    {"negative_k.yaml", "negative_k.yaml:4:6: 'k' must be a non-negative integer, got '-1'"},
    {"negative_seed.yaml", "negative_seed.yaml:3:18: 'seed' must be a non-negative integer below 2^64, got '-3'"},
    {"example_not_map.yaml", "example_not_map.yaml:4:5: 'examples' item 2 must be a mapping, got a list"},
};

TEST(bad_task_files)
{
    int n = (int)(sizeof bad_cases / sizeof bad_cases[0]);
    CHECK(n >= 25);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, BAD "%s", bad_cases[i].file);
        task *t = NULL;
        em_err err = {{0}};
        int rc = task_load(path, &t, &err);
        CHECK_MSG(rc == -1 && t == NULL, "%s loaded without error", path);
        CHECK_MSG(strstr(err.msg, bad_cases[i].msg) != NULL,
                  "%s: message \"%s\" lacks \"%s\"", path, err.msg, bad_cases[i].msg);
        task_free(t);
    }
    /* every file in bad/ that is a task file has a case in the table */
    char *out = NULL;
    tl_sh(&out, "ls " BAD " | grep -c '\\.yaml$'");
    CHECK_INT(atoi(out ? out : "0"), n);
    free(out);
}

TEST(missing_task_file)
{
    task *t;
    em_err err;
    CHECK_INT(task_load(BAD "does-not-exist.yaml", &t, &err), -1);
    CHECK_HAS(err.msg, "does-not-exist.yaml: cannot open");
}

/* Exercises a loaded task the way a sweep does. */
static void exercise(const task *t)
{
    for (int v = 0; v < t->n_variants; v++) {
        task_request *r;
        int n;
        em_err err;
        if (task_build_requests(t, &t->variants[v], 0, &r, &n, &err) == 0)
            task_requests_free(r, n);
    }
    char *a = task_extract_answer(t, " 12, the answer is 3.\nmore");
    free(a);
}

/* Mutated task files (bytes deleted, YAML-significant characters inserted,
 * lines duplicated, truncation) must load or fail with a message naming a
 * file - never crash or leak (ASan and valgrind watch this test). */
TEST(mutated_files)
{
    static const char *const files[] = {"arith.yaml", "mc.yaml", "qa.yaml", "shots.yaml",
                                        "bb.yaml"};
    static const char ins[] = ":-[]{}#&*!|>'\"%@`,?\n \t{{}}0";
    char *dir = tl_tmpdir();
    CHECK_INT(tl_sh(NULL, "cp " GOOD "* %s/", dir), 0);
    uint64_t st = 2024;
    int loaded = 0, failed = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char src[256], *text;
        size_t len;
        snprintf(src, sizeof src, GOOD "%s", files[f]);
        if (em_read_file(src, &text, &len, NULL)) {
            CHECK_MSG(0, "cannot read %s", src);
            continue;
        }
        for (int i = 0; i < 150; i++) {
            em_buf m = {0};
            size_t at = (size_t)(em_splitmix64(&st) % (len + 1));
            int op = (int)(em_splitmix64(&st) % 4);
            em_buf_put(&m, text, at);
            if (op == 1)
                em_buf_putc(&m, ins[em_splitmix64(&st) % (sizeof ins - 1)]);
            if (op == 2) {
                const char *ls = text + at;
                while (ls > text && ls[-1] != '\n')
                    ls--;
                const char *le = strchr(text + at, '\n');
                size_t ll = le ? (size_t)(le - ls) + 1 : strlen(ls);
                em_buf_put(&m, ls, ll);
            }
            if (op != 3)
                em_buf_puts(&m, text + at + (op == 0 && at < len));
            char path[4200];
            snprintf(path, sizeof path, "%s/m_%s", dir, files[f]);
            FILE *fp = fopen(path, "wb");
            if (fp) {
                fwrite(m.s, 1, m.len, fp);
                fclose(fp);
            }
            em_buf_free(&m);
            task *t = NULL;
            em_err err = {{0}};
            if (task_load(path, &t, &err) == 0) {
                loaded++;
                exercise(t);
                task_free(t);
            } else {
                failed++;
                CHECK_MSG(strstr(err.msg, dir) != NULL, "message without a file: %s", err.msg);
            }
        }
        free(text);
    }
    CHECK(loaded > 0);
    CHECK(failed > 0);
    free(dir);
}

/* The example users copy must stay valid, and render as documented. */
TEST(example_task)
{
    task *t = load("tasks/example-arith.yaml");
    if (!t)
        return;
    int n;
    task_request *r = reqs(t, "zero_shot", 1, &n);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(r[0].prompt, "17+38=");
        CHECK_STR(r[1].continuation, "55");
    }
    task_requests_free(r, n);
    char *a = task_extract_answer_variant(t, task_variant_find(t, "cot"),
                                          " 7+8=15 carry 1, 1+3+1=5 so 55");
    CHECK_STR(a, "55");
    free(a);
    task_free(t);
}

/* The `emerge tasks` subcommand, through the binary tests/run.sh names. */
TEST(cli_tasks)
{
    const char *bin = getenv("EMERGE_BIN");
    char *out = NULL;
    if (!bin || tl_sh(NULL, "test -x '%s'", bin) != 0) {
        tl_skip("EMERGE_BIN is not an executable emerge (run through make test)");
        return;
    }
    CHECK_INT(tl_sh(&out, "%s tasks validate " GOOD "*.yaml", bin), 0);
    CHECK_HAS(out, GOOD "arith.yaml: ok (arith, generate, 5 examples)");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tasks validate " GOOD "mc.yaml " BAD "unknown_key.yaml", bin), 2);
    CHECK_HAS(out, "unknown_key.yaml:3:1: unknown key 'templat'");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tasks list " GOOD, bin), 0);
    CHECK_HAS(out, "colours                  multiple_choice         3  standard,cot,zero_shot_cot");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tasks show " GOOD "arith.yaml --variant standard --example 2",
                    bin), 0);
    CHECK_HAS(out, "=== request 1: generate (max_tokens 8, stop \"\\n\\n\")\n");
    CHECK_HAS(out, arith_standard);
    free(out);
    CHECK_INT(tl_sh(&out, "%s tasks show " GOOD "arith.yaml --variant zero_shot_cot "
                    "--rationale ' because.'", bin), 0);
    CHECK_HAS(out, "Let's think step by step. because.\nTherefore, the answer (arabic");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tasks show " GOOD "arith.yaml --variant nope", bin), 2);
    CHECK_HAS(out, "has no variant 'nope'");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tasks show " GOOD "bb.yaml --variant cot", bin), 2);
    CHECK_HAS(out, "has a rationale");
    free(out);
}

int main(void)
{
    RUN(load_inline_generate);
    RUN(prompt_standard);
    RUN(prompt_cot);
    RUN(prompt_zero_shot_cot);
    RUN(prompt_custom_variant);
    RUN(few_shot_deterministic);
    RUN(few_shot_pools);
    RUN(load_jsonl_field_map);
    RUN(json_scalars_as_text);
    RUN(multiple_choice_choices);
    RUN(multiple_choice_target_scores);
    RUN(target_logprob_task);
    RUN(extraction);
    RUN(extraction_whole_match);
    RUN(normalize);
    RUN(templates);
    RUN(hash_tracks_data);
    RUN(bad_task_files);
    RUN(missing_task_file);
    RUN(mutated_files);
    RUN(example_task);
    RUN(cli_tasks);
    return tl_summary();
}

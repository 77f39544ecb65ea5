/*
 * test_retrieval.c - BM25 passage retrieval (harness/retrieval.c) and the
 * `retrieval` variant of task files (harness/task.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "harness/retrieval.h"
#include "harness/task.h"
#include "tests/testlib.h"

static const char corpus[] =
    "Gijusup lives in Lirrow.\n"
    "The favourite colour of Gijusup is grey.\n"
    "\n"
    "Minagar lives in Kelmor.\n"
    "The friend of Gijusup is Minagar.\n"
    "Tovin is a city of bells.\n";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* FTS5's BM25 (k1 1.2, b 0.75) of a one-word query, written out here so
 * the test checks the ranking function, not just an order. */
static double bm25_one(double N, double n_with, double f, double dl, double avgdl)
{
    double idf = log((N - n_with + 0.5) / (n_with + 0.5));
    if (idf <= 0)
        idf = 1e-6;
    return idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * dl / avgdl));
}

TEST(bm25_ranking)
{
    retr_index *ix;
    em_err err;
    CHECK_INT(retr_build("kb.txt", corpus, sizeof corpus - 1, &ix, &err), 0);
    CHECK_INT(retr_count(ix), 5); /* the blank line is not a passage */
    CHECK_STR(retr_where(ix, 2), "kb.txt:4");
    int *idx, n;
    double *sc;
    /* "live" matches "lives" through the porter stemmer; "gijusup" is in
     * three passages and "live" in two, so only passage 0 has both. */
    CHECK_INT(retr_search(ix, "Q: Where does Gijusup live?\nA:", 3, &idx, &sc, &n, &err), 0);
    CHECK_INT(n, 3);
    CHECK_INT(idx[0], 0);
    CHECK(sc[0] > sc[1] && sc[1] >= sc[2]);
    free(idx);
    free(sc);
    /* One word: the exact BM25 value. "tovin" occurs once, in passage 4
     * (6 tokens); the corpus has 5 passages of 4+7+4+6+6 = 27 tokens. */
    CHECK_INT(retr_search(ix, "tovin", 5, &idx, &sc, &n, &err), 0);
    CHECK_INT(n, 1);
    CHECK_INT(idx[0], 4);
    CHECK_NEAR(sc[0], bm25_one(5, 1, 1, 6, 27.0 / 5), 1e-9);
    free(idx);
    free(sc);
    /* "minagar": passages 2 (4 tokens) and 3 (6 tokens) both have it
     * once; the shorter one ranks first. */
    CHECK_INT(retr_search(ix, "Minagar", 5, &idx, &sc, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_INT(idx[0], 2);
    CHECK_INT(idx[1], 3);
    CHECK_NEAR(sc[0], bm25_one(5, 2, 1, 4, 5.4), 1e-9);
    CHECK_NEAR(sc[1], bm25_one(5, 2, 1, 6, 5.4), 1e-9);
    free(idx);
    free(sc);
    retr_free(ix);
}

TEST(ties_and_syntax)
{
    static const char dup[] = "alpha beta\nalpha beta\ngamma\n";
    retr_index *ix;
    em_err err;
    CHECK_INT(retr_build("d.txt", dup, sizeof dup - 1, &ix, &err), 0);
    int *idx, n;
    double *sc;
    CHECK_INT(retr_search(ix, "beta", 2, &idx, &sc, &n, &err), 0);
    CHECK_INT(n, 2);
    CHECK_INT(idx[0], 0); /* equal scores: corpus order */
    CHECK_INT(idx[1], 1);
    free(idx);
    free(sc);
    /* FTS5 operators and quotes in an input are words, not syntax. */
    CHECK_INT(retr_search(ix, "NOT \"gamma* -alpha NEAR(x) col:y a the", 3, &idx, &sc, &n, &err), 0);
    CHECK_INT(n, 3);
    free(idx);
    free(sc);
    CHECK_INT(retr_search(ix, "?! ...", 3, &idx, &sc, &n, &err), 0);
    CHECK_INT(n, 0);
    CHECK(idx == NULL);
    char *p;
    CHECK_INT(retr_passages(ix, "gamma alpha", 2, " | ", &p, &err), 0);
    CHECK_STR(p, "gamma | alpha beta");
    free(p);
    retr_free(ix);
}

TEST(jsonl_corpus)
{
    static const char js[] = "{\"title\": \"Kelmor\", \"text\": \"A town by the sea.\"}\n"
                             "\n{\"text\": \"Brask has a mill.\"}\n";
    retr_index *ix;
    em_err err;
    CHECK_INT(retr_build("c.jsonl", js, sizeof js - 1, &ix, &err), 0);
    CHECK_INT(retr_count(ix), 2);
    CHECK_STR(retr_passage(ix, 0), "Kelmor: A town by the sea.");
    CHECK_STR(retr_where(ix, 1), "c.jsonl:3");
    retr_free(ix);
    static const char bad[] = "{\"text\": \"ok\"}\n{\"title\": \"x\"}\n";
    CHECK_INT(retr_build("c.jsonl", bad, sizeof bad - 1, &ix, &err), -1);
    CHECK_HAS(err.msg, "c.jsonl:2: record has no non-empty string field 'text'");
    static const char junk[] = "not json\n";
    CHECK_INT(retr_build("c.jsonl", junk, sizeof junk - 1, &ix, &err), -1);
    CHECK_HAS(err.msg, "c.jsonl:1: a corpus line must be a JSON object");
    CHECK_INT(retr_build("e.txt", "\n \n", 3, &ix, &err), -1);
    CHECK_HAS(err.msg, "e.txt: the corpus holds no passages");
    CHECK_INT(retr_open("/nonexistent/kb.txt", &ix, &err), -1);
    CHECK_HAS(err.msg, "/nonexistent/kb.txt");
}

static const char task_yaml[] =
    "name: kb\n"
    "type: multiple_choice\n"
    "template: \"{{input}}\"\n"
    "continuation_prefix: \"\"\n"
    "retrieval:\n"
    "  corpus: kb.txt\n"
    "  k: 2\n"
    "examples:\n"
    "  - {input: \"Q: Where does Gijusup live?\\nA:\", choices: [\" Lirrow\", \" Kelmor\"], target: 0}\n"
    "  - {input: \"Q: Who is the friend of Gijusup?\\nA:\", choices: [\" Minagar\", \" Tovin\"], target: 0}\n";

static task *load_in(const char *dir, const char *yaml, em_err *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/t.yaml", dir);
    write_file(path, yaml);
    task *t = NULL;
    if (task_load(path, &t, err))
        return NULL;
    return t;
}

TEST(retrieval_variant_prompts)
{
    char *dir = tl_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/kb.txt", dir);
    write_file(path, corpus);
    em_err err;
    task *t = load_in(dir, task_yaml, &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (!t) {
        free(dir);
        return;
    }
    const task_variant *v = task_variant_find(t, "retrieval");
    CHECK(v != NULL && v->kind == VARIANT_RETRIEVAL);
    task_request *r;
    int n;
    CHECK_INT(task_build_requests(t, v, 0, &r, &n, &err), 0);
    /* Multiple choice under retrieval scores the choices like standard,
     * after the default template "{{passages}}\n" + template. */
    CHECK_INT(n, 2);
    CHECK_INT(r[0].kind, TASK_REQ_LOGLIK);
    /* "live" (2 of 5 passages) has a higher idf than "gijusup" (3 of 5),
     * so the other city fact outranks Gijusup's colour. */
    CHECK_STR(r[0].prompt, "Gijusup lives in Lirrow.\nMinagar lives in Kelmor.\n"
                           "Q: Where does Gijusup live?\nA:");
    CHECK_STR(r[1].continuation, " Kelmor");
    /* The same prompt on every build. */
    task_request *r2;
    int n2;
    CHECK_INT(task_build_requests(t, v, 0, &r2, &n2, &err), 0);
    CHECK_STR(r2[0].prompt, r[0].prompt);
    task_requests_free(r2, n2);
    task_requests_free(r, n);
    CHECK_INT(task_build_requests(t, v, 1, &r, &n, &err), 0);
    CHECK_HAS(r[0].prompt, "The friend of Gijusup is Minagar.\n");
    task_requests_free(r, n);
    /* The standard variant is untouched. */
    CHECK_INT(task_build_requests(t, task_variant_find(t, "standard"), 0, &r, &n, &err), 0);
    CHECK_STR(r[0].prompt, "Q: Where does Gijusup live?\nA:");
    task_requests_free(r, n);
    task_free(t);
    free(dir);
}

TEST(retrieval_template_and_errors)
{
    char *dir = tl_tmpdir(), path[512];
    snprintf(path, sizeof path, "%s/kb.txt", dir);
    write_file(path, corpus);
    em_err err;
    task *t = load_in(dir,
        "name: g\n"
        "template: \"{{input}}\"\n"
        "retrieval: {corpus: kb.txt, k: 1, query: \"{{who}}\", separator: \" \",\n"
        "            template: \"Facts: {{passages}}\\n{{input}}\"}\n"
        "variants:\n"
        "  - {name: ctx2, kind: retrieval, template: \"{{passages}} | {{input}}\"}\n"
        "examples:\n"
        "  - {input: \"Q?\", target: x, who: Tovin}\n", &err);
    CHECK_MSG(t != NULL, "%s", err.msg);
    if (t) {
        task_request *r;
        int n;
        CHECK_INT(task_build_requests(t, task_variant_find(t, "retrieval"), 0, &r, &n, &err), 0);
        CHECK_STR(r[0].prompt, "Facts: Tovin is a city of bells.\nQ?");
        CHECK_INT(r[0].kind, TASK_REQ_GENERATE);
        CHECK_INT(r[0].max_tokens, 32); /* the task's, not a cot default */
        task_requests_free(r, n);
        CHECK_INT(task_build_requests(t, task_variant_find(t, "ctx2"), 0, &r, &n, &err), 0);
        CHECK_STR(r[0].prompt, "Tovin is a city of bells. | Q?");
        task_requests_free(r, n);
        task_free(t);
    }
    /* Missing corpus: file, line and column of the key. */
    t = load_in(dir, "name: g\nretrieval:\n  corpus: nope.txt\nexamples: [{input: a, target: b}]\n",
                &err);
    CHECK(t == NULL);
    CHECK_HAS(err.msg, "t.yaml:3:11: retrieval corpus cannot be read");
    CHECK_HAS(err.msg, "nope.txt");
    t = load_in(dir, "name: g\nretrieval: {k: 2}\nexamples: [{input: a, target: b}]\n", &err);
    CHECK(t == NULL);
    CHECK_HAS(err.msg, "'retrieval' needs a 'corpus' file");
    t = load_in(dir, "name: g\nretrieval: {corpus: kb.txt, kk: 2}\n"
                "examples: [{input: a, target: b}]\n", &err);
    CHECK(t == NULL);
    CHECK_HAS(err.msg, "unknown key 'kk'");
    /* {{passages}} only where retrieval fills it. */
    t = load_in(dir, "name: g\ntemplate: \"{{passages}}\"\nexamples: [{input: a, target: b}]\n",
                &err);
    CHECK(t == NULL);
    CHECK_HAS(err.msg, "unknown field 'passages'");
    t = load_in(dir, "name: g\nvariants: [{name: r, kind: retrieval}]\n"
                "examples: [{input: a, target: b}]\n", &err);
    CHECK(t == NULL);
    CHECK_HAS(err.msg, "variant 'r' is retrieval but the task has no 'retrieval' corpus");
    /* The corpus is part of the task hash. */
    const char *y = "name: g\nretrieval: {corpus: kb.txt}\nexamples: [{input: a, target: b}]\n";
    task *a = load_in(dir, y, &err);
    write_file(path, "something else entirely\n");
    task *b = load_in(dir, y, &err);
    CHECK(a && b && strcmp(a->hash, b->hash));
    task_free(a);
    task_free(b);
    free(dir);
}

int main(void)
{
    RUN(bm25_ranking);
    RUN(ties_and_syntax);
    RUN(jsonl_corpus);
    RUN(retrieval_variant_prompts);
    RUN(retrieval_template_and_errors);
    return tl_summary();
}

/* test_serve.c - the OpenAI-compatible server in-process on a shared
 * fixture model: a sweep through the "openai" backend against it gives
 * the native backend's log-probs (<= 1e-4), greedy flags and generations;
 * echo/logprobs answers have the shape lm-evaluation-harness reads; bad
 * requests get 400/404/405/413 with JSON error bodies; answers do not
 * depend on what else is in flight (prefix reuse across requests). */
#include <cjson/cJSON.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/engine/model.h"
#include "backends/engine/sample.h"
#include "backends/engine/tokenizer.h"
#include "harness/family.h"
#include "harness/serve/serve.h"
#include "harness/sweep.h"
#include "tests/testlib.h"

#define FIXTURE "tiny-llama-f32" /* tests/data/parity */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    em_buf_put(ud, p, size * n);
    return size * n;
}

/* One HTTP request; returns the status, body into *out (malloc'd). */
static long http(int port, const char *method, const char *path,
                 const char *body, char **out)
{
    CURL *h = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    em_buf b = {0};
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L); /* valgrind runs are slow */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long status = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    *out = b.s ? em_buf_take(&b) : em_strdup("");
    return status;
}

static serve *start(const char *model, em_err *err)
{
    serve_opts o = {.model_path = model, .port = 0, .threads = 2,
                    .max_body = 4096, .max_tokens = 64, .max_prompts = 8};
    serve *s = NULL;
    if (serve_start(&o, &s, err))
        return NULL;
    return s;
}

/* ---- parity with the native backend through a sweep ------------------ */

static int sweep_spec(const char *spec, const char *db, em_err *err)
{
    family *fam = NULL;
    sweep_opts o = {.db_path = db, .seed = 3, .limit = 6, .batch = 16,
                    .command = "test", .quiet = 1};
    sweep_stats st;
    int rc = family_from_spec(spec, &fam, err);
    if (rc == 0)
        rc = sweep_expand_tasks("tests/data/tasks/sweep-arith.yaml,"
                                "tests/data/tasks/sweep-mc.yaml",
                                &o.task_paths, &o.n_tasks, err);
    if (rc == 0) {
        o.fam = fam;
        rc = sweep_run(&o, &st, err);
    }
    if (rc == 0 && (st.failed || st.unscored))
        rc = em_errorf(err, "%ld failed requests", st.failed);
    sweep_free_list(o.task_paths, o.n_tasks);
    family_free(fam);
    return rc;
}

static void sql_row(const char *db, const char *sql, double *v, int n)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    for (int i = 0; i < n; i++)
        v[i] = -1;
    if (sqlite3_open(db, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            for (int i = 0; i < n; i++)
                v[i] = sqlite3_column_double(st, i);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
}

TEST(test_sweep_parity_with_native)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    char *dir = tl_tmpdir();
    char db[512], spec[1024];
    snprintf(db, sizeof db, "%s/p.sqlite", dir);
    snprintf(spec, sizeof spec, "native:%s,name=tiny-native,threads=2", model);
    CHECK_MSG(sweep_spec(spec, db, &err) == 0, "native: %s", err.msg);
    if (s) {
        snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,"
                 "name=tiny-served,params=4182336,concurrency=4", serve_port(s));
        CHECK_MSG(sweep_spec(spec, db, &err) == 0, "served: %s", err.msg);
    }
    /* The same request under both models: kind, task, example, pass and
     * choice identify it. */
    double v[6];
    sql_row(db,
        "SELECT COUNT(*), SUM(a.kind = 'loglik'), "
        "       MAX(CASE WHEN a.kind = 'loglik' THEN ABS(x.logprob - y.logprob) END),"
        "       SUM(x.output IS NOT y.output), SUM(x.is_greedy IS NOT y.is_greedy),"
        "       SUM(x.n_tokens != y.n_tokens)"
        " FROM requests a JOIN responses x ON x.request_id = a.id"
        " JOIN requests b ON b.kind = a.kind AND b.task_id = a.task_id"
        "  AND b.variant = a.variant AND b.example_id = a.example_id"
        "  AND b.pass = a.pass AND b.choice IS a.choice"
        " JOIN responses y ON y.request_id = b.id"
        " WHERE a.model_id = (SELECT id FROM models WHERE name = 'tiny-native')"
        "   AND b.model_id = (SELECT id FROM models WHERE name = 'tiny-served')",
        v, 6);
    CHECK_MSG(v[0] >= 30, "only %g paired requests", v[0]);
    CHECK_MSG(v[1] >= 24 && v[1] < v[0], "%g log-likelihood requests of %g",
              v[1], v[0]);
    /* The native backend and the server chunk tokens into forward passes
     * differently (context, then branches of continuations vs whole
     * prompts behind a shared cache); the issue asks for the same log-probs
     * to 1e-4, which holds now that the quant kernels sum in an order that
     * does not depend on the number of rows in a pass (F32 fixture). */
    CHECK_MSG(v[2] >= 0 && v[2] <= 1e-4, "largest log-prob difference %g", v[2]);
    CHECK_INT(v[3], 0); /* generations */
    CHECK_INT(v[4], 0);
    CHECK_INT(v[5], 0);
    serve_stop(s);
    tl_sh(NULL, "rm -rf '%s'", dir);
    free(dir);
    free(model);
}

/* ---- the client's options against the server, request by request ---- */

static backend *open_spec(const char *spec, em_err *err)
{
    family *f;
    backend *b = NULL;
    if (family_from_spec(spec, &f, err) == 0) {
        if (backend_open(&f->members[0].spec, &b, err))
            b = NULL;
        family_free(f);
    }
    return b;
}

/* log P(continuation | context) from one forward pass over the whole
 * token sequence: what the server computes for a fresh prompt. The
 * continuation is the last n_tokens tokens (as the native backend split
 * them; true for the requests used here). */
static void one_pass_reference(const char *path, const backend_ll_req *rq,
                               const backend_ll_res *nat, double *out, int n)
{
    model *m;
    tokenizer *tok;
    em_err err;
    model_opts mo = {.n_threads = 2};
    for (int i = 0; i < n; i++)
        out[i] = NAN;
    if (model_build(path, &mo, &m, &err) || tok_build(m->gguf, &tok, &err))
        return;
    int V = m->hp.n_vocab;
    for (int i = 0; i < n; i++) {
        em_buf all = {0};
        em_buf_puts(&all, rq[i].context);
        em_buf_puts(&all, rq[i].continuation);
        int32_t *ids;
        int nt;
        if (tok_encode(tok, all.s, all.len, 1, &ids, &nt, &err) == 0) {
            float *lg = em_malloc(sizeof(float) * (size_t)V * (size_t)nt);
            model_truncate(m, 0);
            if (model_forward(m, ids, nt, 0, nt, lg, &err) == 0) {
                out[i] = 0;
                for (int k = nt - nat[i].n_tokens; k < nt; k++)
                    out[i] += sample_logprob(lg + (size_t)(k - 1) * V, V, ids[k]);
            }
            free(lg);
            free(ids);
        }
        em_buf_free(&all);
    }
    tok_free(tok);
    model_free(m);
}

TEST(test_client_matches_native)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    char spec[1024];
    snprintf(spec, sizeof spec, "native:%s,threads=2", model);
    backend *nat = open_spec(spec, &err);
    CHECK_MSG(nat != NULL, "%s", err.msg);
    const char *opts[] = {"", ",loglik_max_tokens=1", ",chat=1"};
    /* Multi-byte characters (offsets count code points), trailing spaces
     * moved to the continuation, an empty context (conditioned on BOS). */
    backend_ll_req ll[] = {{"Die Größe ist", " groß"}, {"The cat sat on the ", "mat"},
                           {"Ünïcödé ", "wörds ok"}, {"", "Hello world"},
                           {"Q: 12 + 30 =\nA:", " 42"}};
    enum { NL = sizeof ll / sizeof ll[0] };
    backend_ll_res want[NL], got[NL];
    const char *stop[] = {"\n"};
    backend_gen_req gen[2] = {{"Once upon a time", stop, 1, 12, 0, 1, 5},
                              {"Q: 1 + 1 =\nA:", stop, 1, 6, 0.8, 0.9, 77}};
    backend_gen_res gw[2], gg[2];
    if (nat) {
        CHECK_INT(backend_loglikelihood(nat, ll, want, NL, &err), 0);
        CHECK_INT(backend_generate(nat, gen, gw, 2, &err), 0);
    }
    double ref[NL];
    one_pass_reference(model, ll, want, ref, NL);
    for (int o = 0; s && nat && o < 3; o++) {
        snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1%s",
                 serve_port(s), opts[o]);
        backend *b = open_spec(spec, &err);
        CHECK_MSG(b != NULL, "%s", err.msg);
        if (!b)
            continue;
        CHECK_INT(backend_loglikelihood(b, ll, got, NL, &err), 0);
        for (int i = 0; i < NL; i++) {
            CHECK_MSG(got[i].ok, "%s: %d: %s", opts[o], i, got[i].error);
            /* First round: every prompt runs from scratch in one pass on the
             * server, exactly as the reference. Later rounds reuse cached
             * prefixes (other chunking): the native backend's noise. */
            if (o == 0)
                CHECK_MSG(fabs(got[i].logprob - ref[i]) <= 1e-6,
                          "%d: %.9g vs one-pass %.9g", i, got[i].logprob, ref[i]);
            CHECK_MSG(fabs(got[i].logprob - want[i].logprob) <= 1e-4,
                      "%s: %d: %g vs native %g", opts[o], i, got[i].logprob,
                      want[i].logprob);
            CHECK_INT(got[i].n_tokens, want[i].n_tokens);
            CHECK_INT(got[i].is_greedy, want[i].is_greedy);
        }
        CHECK_INT(backend_generate(b, gen, gg, 2, &err), 0);
        for (int i = 0; i < 2; i++) {
            CHECK_MSG(gg[i].ok, "%s: %s", opts[o], gg[i].error);
            CHECK_STR(gg[i].text, gw[i].text); /* sampled one too: same seed */
            CHECK_INT(gg[i].n_tokens, gw[i].n_tokens);
            CHECK(gg[i].token_logprobs != NULL);
            CHECK_NEAR(gg[i].sum_logprob, gw[i].sum_logprob, 1e-4);
            backend_gen_res_clear(&gg[i]);
        }
        backend_close(b);
    }
    for (int i = 0; nat && i < 2; i++)
        backend_gen_res_clear(&gw[i]);
    backend_close(nat);
    serve_stop(s);
    free(model);
}

/* ---- answers ------------------------------------------------------------ */

static const cJSON *path(const cJSON *j, const char *a, int i, const char *b)
{
    const cJSON *x = cJSON_GetObjectItem(j, a);
    x = cJSON_GetArrayItem(x, i);
    return b ? cJSON_GetObjectItem(x, b) : x;
}

TEST(test_echo_shape_lm_eval)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    /* lm-eval local-completions: token ids, echo, max_tokens 1, logprobs 1;
     * it sums token_logprobs[ctxlen:-1] and compares each with the max of
     * top_logprobs. */
    char *out;
    /* "<s> The capital of" in the shipped copy's ids (450 7483 310 in
     * LLaMA's vocabulary; see kept_ids in tests/data/parity/ *.json) */
    long st = http(serve_port(s), "POST", "/v1/completions",
                   "{\"model\":\"x\",\"prompt\":[[1,271,320,262],[1,271]],"
                   "\"temperature\":0,\"max_tokens\":1,\"logprobs\":1,"
                   "\"seed\":1234,\"echo\":true}", &out);
    CHECK_INT(st, 200);
    cJSON *j = cJSON_Parse(out);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "choices")), 2);
    const cJSON *lp = path(j, "choices", 0, "logprobs");
    const cJSON *tl = cJSON_GetObjectItem(lp, "token_logprobs");
    const cJSON *top = cJSON_GetObjectItem(lp, "top_logprobs");
    CHECK_INT(cJSON_GetArraySize(tl), 5); /* 4 prompt tokens + 1 generated */
    CHECK(cJSON_IsNull(cJSON_GetArrayItem(tl, 0)));
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(lp, "tokens")), 5);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItem(lp, "text_offset")), 5);
    for (int i = 1; i < 5; i++) {
        const cJSON *t = cJSON_GetArrayItem(tl, i), *tp = cJSON_GetArrayItem(top, i);
        CHECK(cJSON_IsNumber(t) && t->valuedouble < 0);
        CHECK(cJSON_IsObject(tp) && tp->child && tp->child->valuedouble >= t->valuedouble);
    }
    /* The generated token is greedy (temperature 0): equal to its top. */
    CHECK_NEAR(cJSON_GetArrayItem(tl, 4)->valuedouble,
               cJSON_GetArrayItem(top, 4)->child->valuedouble, 0);
    /* The second prompt is a prefix of the first: same scores there. */
    const cJSON *tl2 = cJSON_GetObjectItem(path(j, "choices", 1, "logprobs"),
                                           "token_logprobs");
    CHECK_NEAR(cJSON_GetArrayItem(tl2, 1)->valuedouble,
               cJSON_GetArrayItem(tl, 1)->valuedouble, 1e-5);
    cJSON_Delete(j);
    free(out);

    /* A text prompt: offsets index the prompt (SentencePiece's added space
     * dropped), BOS has offset 0 and empty text. */
    st = http(serve_port(s), "POST", "/v1/completions",
              "{\"prompt\":\"The cat sat\",\"max_tokens\":0,\"echo\":true,"
              "\"logprobs\":2}", &out);
    CHECK_INT(st, 200);
    j = cJSON_Parse(out);
    lp = path(j, "choices", 0, "logprobs");
    const cJSON *off = cJSON_GetObjectItem(lp, "text_offset"),
                *tk = cJSON_GetObjectItem(lp, "tokens");
    CHECK_STR(path(j, "choices", 0, "text")->valuestring, "The cat sat");
    em_buf cat = {0};
    for (int i = 0; i < cJSON_GetArraySize(tk); i++) {
        const char *t = cJSON_GetArrayItem(tk, i)->valuestring;
        CHECK_INT(cJSON_GetArrayItem(off, i)->valuedouble, cat.len);
        em_buf_puts(&cat, t);
    }
    CHECK_STR(cat.s, "The cat sat");
    em_buf_free(&cat);
    CHECK_INT(cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetObjectItem(lp, "top_logprobs"), 1)), 2);
    cJSON_Delete(j);
    free(out);
    serve_stop(s);
    free(model);
}

TEST(test_errors)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    struct { const char *method, *path, *body; long status; const char *msg; } cases[] = {
        {"POST", "/v1/completions", "{\"prompt\": ", 400, "malformed JSON"},
        {"POST", "/v1/completions", "[1,2]", 400, "JSON object"},
        {"POST", "/v1/completions", "{\"max_tokens\":1}", 400, "'prompt'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"max_tokens\":65}", 400, "'max_tokens'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"n\":2}", 400, "'n'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"stream\":true}", 400, "'stream'"},
        {"POST", "/v1/completions", "{\"prompt\":[[1,99999999]]}", 400, "token ids"},
        {"POST", "/v1/completions", "{\"prompt\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\"]}", 400, "1 to 8 prompts"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"logprobs\":9}", 400, "'logprobs'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"stop\":3}", 400, "'stop'"},
        {"POST", "/v1/chat/completions", "{\"messages\":[]}", 400, "'messages'"},
        /* Strict JSON: one value, then only whitespace. */
        {"POST", "/v1/completions", "{\"prompt\":\"a\"} x", 400, "after its JSON value, at byte 15"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\"}{}", 400, "after its JSON value"},
        /* Seeds: integers in [0, 2^64 - 1], exactly. */
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"seed\":18446744073709551616}", 400, "'seed'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"seed\":1e30}", 400, "'seed'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"seed\":-1}", 400, "'seed'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"seed\":1.5}", 400, "'seed'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"seed\":\"7\"}", 400, "'seed'"},
        {"POST", "/v1/completions", "{\"prompt\":\"a\",\"se\\u0065d\":-2}", 400, "'seed'"},
        {"GET", "/v1/completions", NULL, 405, "POST"},
        {"GET", "/v1/nothing", NULL, 404, "no route"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        long st = http(serve_port(s), cases[i].method, cases[i].path, cases[i].body, &out);
        CHECK_MSG(st == cases[i].status, "case %zu: status %ld: %s", i, st, out);
        cJSON *j = cJSON_Parse(out);
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "message");
        const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type");
        CHECK_MSG(cJSON_IsString(m) && cJSON_IsString(t), "case %zu: %s", i, out);
        CHECK_HAS(cJSON_IsString(m) ? m->valuestring : out, cases[i].msg);
        const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
        CHECK_MSG(cJSON_IsNumber(code) && code->valuedouble == cases[i].status,
                  "case %zu: %s", i, out);
        cJSON_Delete(j);
        free(out);
    }
    /* Over --max-body (4096 here). */
    em_buf big = {0};
    em_buf_puts(&big, "{\"prompt\":\"");
    for (int i = 0; i < 5000; i++)
        em_buf_putc(&big, 'a');
    em_buf_puts(&big, "\"}");
    char *out;
    CHECK_INT(http(serve_port(s), "POST", "/v1/completions", big.s, &out), 413);
    CHECK_HAS(out, "max-body");
    free(out);
    em_buf_free(&big);
    CHECK_INT(http(serve_port(s), "GET", "/health", NULL, &out), 200);
    CHECK_HAS(out, "ok");
    free(out);
    CHECK_INT(http(serve_port(s), "GET", "/v1/models", NULL, &out), 200);
    CHECK_HAS(out, "\"id\":\"tiny-llama-f32.gguf\"");
    free(out);
    serve_stop(s);
    free(model);
}

/* The generated text of a chat answer (malloc'd), NULL unless a 200. */
static char *chat_text(int port, const char *body)
{
    char *out, *text = NULL;
    long st = http(port, "POST", "/v1/chat/completions", body, &out);
    cJSON *j = cJSON_Parse(out);
    const cJSON *c = cJSON_GetObjectItem(path(j, "choices", 0, "message"), "content");
    if (st == 200 && cJSON_IsString(c))
        text = em_strdup(c->valuestring);
    else
        fprintf(stderr, "HTTP %ld: %s\n", st, out);
    cJSON_Delete(j);
    free(out);
    return text;
}

/* Top-level fields come from the top level: a "seed" inside a message
 * (written before the real one) does not change the sampled text; seeds
 * use all 64 bits. */
TEST(test_seed_top_level_only)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    int port = serve_port(s);
    const char *fmt = "{\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"Once upon a time\"%s}],\"seed\":%s,\"max_tokens\":16,"
                      "\"temperature\":1.5}";
    char body[512];
    snprintf(body, sizeof body, fmt, "", "11");
    char *a = chat_text(port, body);
    snprintf(body, sizeof body, fmt, "", "99");
    char *b = chat_text(port, body);
    snprintf(body, sizeof body, fmt, ",\"seed\":99", "11");
    char *a_inner_b = chat_text(port, body);
    CHECK(a && b && a_inner_b);
    /* Otherwise the check below could not tell the seeds apart. */
    CHECK_MSG(a && b && strcmp(a, b), "seeds 11 and 99 gave the same text");
    if (a && a_inner_b)
        CHECK_STR(a_inner_b, a);
    free(a);
    free(b);
    free(a_inner_b);
    /* 2^64 - 1 and 2^64 - 2 are one double apart from nothing: read exactly. */
    snprintf(body, sizeof body, fmt, "", "18446744073709551615");
    a = chat_text(port, body);
    snprintf(body, sizeof body, fmt, "", "18446744073709551614");
    b = chat_text(port, body);
    CHECK_MSG(a && b && strcmp(a, b), "seeds 2^64-1 and 2^64-2 gave the same text");
    free(a);
    free(b);
    serve_stop(s);
    free(model);
}

/* Multiple choice as lm-eval and emerge's client send it: the choices share
 * the question, are only scored, and run as branches of one pass. The
 * answers are those of the prompts sent one at a time. */
TEST(test_shared_prefix_branches)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    const char *q = "Question: which colour is the clear daytime sky? Answer:";
    const char *choice[] = {" blue", " green with stripes", " red", " the colour of grass"};
    char *one[4], *all, body[2048];
    for (int i = 0; i < 4; i++) {
        snprintf(body, sizeof body, "{\"prompt\":\"%s%s\",\"max_tokens\":0,"
                 "\"echo\":true,\"logprobs\":1}", q, choice[i]);
        CHECK_INT(http(serve_port(s), "POST", "/v1/completions", body, &one[i]), 200);
    }
    serve_stats st0, st1;
    serve_get_stats(s, &st0);
    snprintf(body, sizeof body, "{\"prompt\":[\"%s%s\",\"%s%s\",\"%s%s\",\"%s%s\"],"
             "\"max_tokens\":0,\"echo\":true,\"logprobs\":1}", q, choice[0], q,
             choice[1], q, choice[2], q, choice[3]);
    CHECK_INT(http(serve_port(s), "POST", "/v1/completions", body, &all), 200);
    serve_get_stats(s, &st1);
    CHECK_INT(st1.branched - st0.branched, 4);
    cJSON *j = cJSON_Parse(all);
    for (int i = 0; i < 4; i++) {
        cJSON *x = cJSON_Parse(one[i]);
        const cJSON *a = path(x, "choices", 0, "logprobs"), *b = path(j, "choices", i, "logprobs");
        const cJSON *ta = cJSON_GetObjectItem(a, "token_logprobs"),
                    *tb = cJSON_GetObjectItem(b, "token_logprobs");
        CHECK_INT(cJSON_GetArraySize(tb), cJSON_GetArraySize(ta));
        double worst = 0;
        for (int k = 1; k < cJSON_GetArraySize(ta) && k < cJSON_GetArraySize(tb); k++) {
            double d = fabs(cJSON_GetArrayItem(ta, k)->valuedouble -
                            cJSON_GetArrayItem(tb, k)->valuedouble);
            worst = d > worst ? d : worst;
        }
        CHECK_MSG(worst <= 1e-4, "choice %d: token log-probs differ by %g", i, worst);
        char *oa = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "text_offset"));
        char *ob = cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "text_offset"));
        CHECK_STR(ob, oa);
        free(oa);
        free(ob);
        cJSON_Delete(x);
        free(one[i]);
    }
    cJSON_Delete(j);
    free(all);
    serve_stop(s);
    free(model);
}

/* ---- concurrency ---------------------------------------------------------- */

#define NPROMPT 12

typedef struct client {
    int port, first;
    char *out[NPROMPT];
} client;

static void prompt_body(int i, char *buf, size_t cap)
{
    /* Shared prefixes, as multiple-choice questions have. */
    snprintf(buf, cap, "{\"prompt\":\"Question %d: which is larger? Answer: %d\","
             "\"max_tokens\":3,\"temperature\":0,\"echo\":true,\"logprobs\":1}",
             i / 3, i);
}

static void *client_main(void *arg)
{
    client *c = arg;
    for (int k = 0; k < NPROMPT; k++) {
        int i = (c->first + k) % NPROMPT;
        char body[256];
        prompt_body(i, body, sizeof body);
        long st = http(c->port, "POST", "/v1/completions", body, &c->out[i]);
        if (st != 200) {
            fprintf(stderr, "prompt %d: HTTP %ld: %s\n", i, st, c->out[i]);
            free(c->out[i]);
            c->out[i] = NULL;
        }
    }
    return NULL;
}

/* token_logprobs and text of an answer, for comparison. */
static int same_answer(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    cJSON *x = cJSON_Parse(a), *y = cJSON_Parse(b);
    const cJSON *tx = cJSON_GetObjectItem(path(x, "choices", 0, "logprobs"), "token_logprobs");
    const cJSON *ty = cJSON_GetObjectItem(path(y, "choices", 0, "logprobs"), "token_logprobs");
    int ok = cJSON_GetArraySize(tx) == cJSON_GetArraySize(ty) && cJSON_GetArraySize(tx) > 3 &&
             !strcmp(path(x, "choices", 0, "text")->valuestring,
                     path(y, "choices", 0, "text")->valuestring);
    for (int i = 1; ok && i < cJSON_GetArraySize(tx); i++) {
        double d = fabs(cJSON_GetArrayItem(tx, i)->valuedouble -
                        cJSON_GetArrayItem(ty, i)->valuedouble);
        /* Prompt tokens: 1e-4. Generated ones follow a cache filled in
         * other chunk sizes (F16 K/V, other summation orders): 5e-4. */
        int gen = i >= cJSON_GetArraySize(tx) - 3;
        if (!(d <= (gen ? 5e-4 : 1e-4))) {
            fprintf(stderr, "token %d: log-probs differ by %g\n", i, d);
            ok = 0;
        }
    }
    cJSON_Delete(x);
    cJSON_Delete(y);
    return ok;
}

TEST(test_concurrent_clients_agree)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    client seq = {.port = serve_port(s)};
    client_main(&seq); /* the reference, one request at a time */
    enum { NC = 6 };
    client cs[NC];
    pthread_t th[NC];
    for (int c = 0; c < NC; c++) {
        cs[c] = (client){.port = serve_port(s), .first = c * 5};
        pthread_create(&th[c], NULL, client_main, &cs[c]);
    }
    for (int c = 0; c < NC; c++)
        pthread_join(th[c], NULL);
    for (int c = 0; c < NC; c++)
        for (int i = 0; i < NPROMPT; i++) {
            CHECK_MSG(seq.out[i] && cs[c].out[i] && same_answer(seq.out[i], cs[c].out[i]),
                      "client %d prompt %d differs", c, i);
            free(cs[c].out[i]);
        }
    for (int i = 0; i < NPROMPT; i++)
        free(seq.out[i]);
    serve_stats st;
    serve_get_stats(s, &st);
    CHECK_INT(st.requests, NPROMPT * (NC + 1));
    CHECK_INT(st.errors, 0);
    CHECK(st.batches <= st.prompts);
    serve_stop(s);
    free(model);
}

/* ---- hostile clients ------------------------------------------------------ */

/* A TCP connection to the server from the loopback address src: tests
 * stand several clients on 127.0.0.2, 127.0.0.3, ... (Linux routes all of
 * 127.0.0.0/8 to lo), since the server limits connections per address. */
static int tcp_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        a.sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
            return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Whether the server closes fd (end of stream or reset) within wait_ms;
 * what it sends before is appended to out when given. */
static int closed_within(int fd, int wait_ms, em_buf *out)
{
    double end = em_now() + wait_ms / 1000.0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        double left = (end - em_now()) * 1000;
        if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
            return 0;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return 1;
        if (out)
            em_buf_put(out, buf, (size_t)n);
    }
}

/* Sends a raw request from 127.0.0.1 and reads the answer until the
 * server closes; returns the status (-1 without one). */
static long raw_request(int port, const char *req, size_t n, em_buf *out)
{
    int fd = tcp_from("127.0.0.1", port);
    long st = -1;
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < n;) {
        ssize_t k = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    closed_within(fd, 10000, out);
    close(fd);
    if (out->s && sscanf(out->s, "HTTP/1.%*d %ld", &st) != 1)
        st = -1;
    return st;
}

/* The JSON body of a raw answer, or NULL. */
static cJSON *raw_json(const em_buf *b)
{
    const char *p = b->s ? strstr(b->s, "\r\n\r\n") : NULL;
    return p ? cJSON_Parse(p + 4) : NULL;
}

/* /health and a scoring request, each answered (200) within a second. */
static void check_answers_fast(int port, const char *when)
{
    char *out;
    double t0 = em_now();
    long st = http(port, "GET", "/health", NULL, &out);
    double t1 = em_now();
    CHECK_MSG(st == 200 && t1 - t0 < 1.0, "%s: /health: HTTP %ld after %.2f s",
              when, st, t1 - t0);
    free(out);
    st = http(port, "POST", "/v1/completions", "{\"prompt\":\"The cat sat\","
              "\"max_tokens\":0,\"echo\":true,\"logprobs\":1}", &out);
    double t2 = em_now();
    CHECK_MSG(st == 200 && t2 - t1 < 1.0, "%s: scoring: HTTP %ld after %.2f s",
              when, st, t2 - t1);
    free(out);
}

/* 70 sockets that send nothing and 100 that send a header byte a second
 * (default limits: 512 connections, 64 per address) do not keep /health
 * or a scoring request from answering within a second. */
TEST(test_idle_and_slow_clients_do_not_lock_out)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    enum { NIDLE = 70, NSLOW = 100, N = NIDLE + NSLOW };
    static const char drip[] = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
    int fd[N], port = serve_port(s), opened = 0;
    for (int i = 0; i < N; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.0.%d", 2 + i % 3); /* <= 57 each */
        fd[i] = tcp_from(src, port);
        opened += fd[i] >= 0;
        if (fd[i] >= 0 && i >= NIDLE)
            (void)!send(fd[i], drip, 1, MSG_NOSIGNAL);
    }
    CHECK_INT(opened, N);
    usleep(300000); /* the server has accepted them all by now */
    for (int round = 1; round <= 3; round++) {
        double t0 = em_now();
        char when[32];
        snprintf(when, sizeof when, "round %d", round);
        check_answers_fast(port, when);
        for (int i = NIDLE; i < N; i++)
            if (fd[i] >= 0)
                (void)!send(fd[i], drip + round, 1, MSG_NOSIGNAL);
        double left = 1.0 - (em_now() - t0);
        if (left > 0)
            usleep((useconds_t)(left * 1e6));
    }
    /* They were held open all along, not turned away. */
    int open_now = 0;
    for (int i = 0; i < N; i++)
        open_now += fd[i] >= 0 && !closed_within(fd[i], 0, NULL);
    CHECK_INT(open_now, N);
    for (int i = 0; i < N; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    serve_stop(s);
    free(model);
}

/* One address gets --max-per-ip connections; the others from it are
 * closed at once, and other addresses are still served. */
TEST(test_per_ip_limit)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve_opts o = {.model_path = model, .threads = 2, .max_per_ip = 4};
    serve *s = NULL;
    CHECK_MSG(serve_start(&o, &s, &err) == 0, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    enum { N = 10 };
    int fd[N], closed = 0;
    for (int i = 0; i < N; i++)
        fd[i] = tcp_from("127.0.0.5", serve_port(s));
    usleep(300000);
    for (int i = 0; i < N; i++)
        closed += fd[i] < 0 || closed_within(fd[i], 100, NULL);
    CHECK_INT(closed, N - 4);
    check_answers_fast(serve_port(s), "per-ip");
    for (int i = 0; i < N; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    serve_stop(s);
    free(model);
}

typedef struct long_gen {
    int port;
    long status;
    double seconds;
} long_gen;

static void *long_gen_main(void *arg)
{
    long_gen *g = arg;
    char *out;
    double t0 = em_now();
    g->status = http(g->port, "POST", "/v1/completions", "{\"prompt\":\"Once\","
                     "\"max_tokens\":1000,\"temperature\":1,\"seed\":5}", &out);
    g->seconds = em_now() - t0;
    free(out);
    return NULL;
}

/* --timeout 1: a socket that sends nothing is closed, one that sends a
 * byte every 0.2 s after its request line gets a JSON 408 and is closed,
 * both within about a second; a generation that takes longer than that
 * is still answered (waiting for the model is not idleness). */
TEST(test_request_deadline)
{
    /* A model made here with a 32000-token vocabulary (random weights): the
     * sampled tokens take seconds, and EOS is as unlikely as in the
     * full tiny-llama (the shipped 437-token copy draws it within ~0.3 s);
     * 1000 of them, so that even a fast machine takes well over the 1 s
     * the deadline allows (500 once took only 1.46 s) */
    char *model = tl_mkmodel("llama-32k.gguf", "--n-embd 64 --n-layer 2 "
                             "--n-head 4 --n-head-kv 2 --n-ff 160 --ctx 1024 "
                             "--n-vocab 32000");
    if (!model)
        return;
    em_err err = {{0}};
    serve_opts o = {.model_path = model, .threads = 2, .timeout = 1};
    serve *s = NULL;
    CHECK_MSG(serve_start(&o, &s, &err) == 0, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    int port = serve_port(s);
    long_gen g = {.port = port};
    pthread_t th;
    pthread_create(&th, NULL, long_gen_main, &g);
    int silent = tcp_from("127.0.0.2", port), slow = tcp_from("127.0.0.3", port);
    CHECK(silent >= 0 && slow >= 0);
    (void)!send(slow, "GET /health HTTP/1.1\r\nX-Slow: ", 31, MSG_NOSIGNAL);
    double t0 = em_now(), t_silent = 0, t_slow = 0;
    em_buf got = {0};
    while (em_now() - t0 < 4 && (!t_silent || !t_slow)) {
        if (!t_silent && closed_within(silent, 0, NULL))
            t_silent = em_now() - t0;
        if (!t_slow && closed_within(slow, 0, &got))
            t_slow = em_now() - t0;
        if (!t_slow)
            (void)!send(slow, "x", 1, MSG_NOSIGNAL);
        usleep(200000);
    }
    CHECK_MSG(t_silent > 0.5 && t_silent < 2.5, "silent socket closed after %.2f s "
              "(0: not in 4 s)", t_silent);
    CHECK_MSG(t_slow > 0.5 && t_slow < 2.5, "slow socket closed after %.2f s "
              "(0: not in 4 s)", t_slow);
    CHECK_MSG(got.s && !strncmp(got.s, "HTTP/1.1 408", 12), "%s", got.s ? got.s : "");
    cJSON *j = raw_json(&got);
    const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
    CHECK_MSG(cJSON_IsNumber(code) && code->valuedouble == 408, "%s", got.s ? got.s : "");
    cJSON_Delete(j);
    em_buf_free(&got);
    close(silent);
    close(slow);
    pthread_join(th, NULL);
    CHECK_MSG(g.status == 200, "generation: HTTP %ld after %.2f s", g.status, g.seconds);
    CHECK_MSG(g.seconds > 1.2, "the generation took %.2f s: too short to show "
              "that it outlives --timeout 1", g.seconds);
    serve_stop(s);
    free(model);
}

/* Too large requests come back as JSON where emerge sees them first; the
 * ones MHD refuses before emerge sees the request keep MHD's own page
 * (README: a head beyond MHD's memory, a chunk size or Content-Length
 * beyond 64 bits, an HTTP version other than 1.x), and the server goes on. */
TEST(test_too_large_as_json)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err); /* --max-body 4096 */
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s) {
        free(model);
        return;
    }
    em_buf req = {0};
    struct { int head, chunk; long status; int json; } cases[] = {
        {20000, 0, 431, 1},   /* over emerge's 16 KiB head */
        {0, 8192, 413, 1},    /* a chunked body over --max-body */
        {200000, 0, 431, 0},  /* over MHD's connection memory */
        {0, -1, 413, 0},      /* a chunk size beyond 64 bits */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        em_buf_free(&req);
        em_buf_puts(&req, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                    "Connection: close\r\n");
        if (cases[i].head) {
            em_buf_puts(&req, "X-Big: ");
            for (int k = 0; k < cases[i].head; k++)
                em_buf_putc(&req, 'a');
            em_buf_puts(&req, "\r\nContent-Length: 2\r\n\r\n{}");
        } else {
            em_buf_puts(&req, "Transfer-Encoding: chunked\r\n\r\n");
            if (cases[i].chunk > 0) {
                em_buf_printf(&req, "%x\r\n", cases[i].chunk);
                for (int k = 0; k < cases[i].chunk; k++)
                    em_buf_putc(&req, ' ');
                em_buf_puts(&req, "\r\n0\r\n\r\n");
            } else {
                em_buf_puts(&req, "1ffffffffffffffff\r\n");
            }
        }
        em_buf out = {0};
        long st = raw_request(serve_port(s), req.s, req.len, &out);
        CHECK_MSG(st == cases[i].status, "case %zu: %.300s", i, out.s ? out.s : "");
        cJSON *j = raw_json(&out);
        const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code");
        CHECK_MSG((cJSON_IsNumber(code) && code->valuedouble == st) == cases[i].json,
                  "case %zu: %.300s", i, out.s ? out.s : "");
        cJSON_Delete(j);
        em_buf_free(&out);
    }
    em_buf_free(&req);
    em_buf out = {0};
    const char *v2 = "GET /health HTTP/2.0\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK_INT(raw_request(serve_port(s), v2, strlen(v2), &out), 505);
    em_buf_free(&out);
    check_answers_fast(serve_port(s), "after");
    serve_stop(s);
    free(model);
}

/* Any backend can be served; one without token-level completion (the
 * openai client, here over the server itself) answers 501 there. */
TEST(backend_without_complete_is_501)
{
    char *model = tl_fixture(FIXTURE);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, &err), *t = NULL;
    CHECK_MSG(s != NULL, "%s", err.msg);
    char url[128], *out = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", s ? serve_port(s) : 0);
    serve_opts o = {.model_path = url, .backend = "openai", .threads = 2};
    if (s)
        CHECK_MSG(serve_start(&o, &t, &err) == 0, "%s", err.msg);
    if (t) {
        long st = http(serve_port(t), "POST", "/v1/completions",
                       "{\"prompt\":\"Hi\"}", &out);
        CHECK_INT(st, 501);
        CHECK(out && strstr(out, "'openai' backend cannot answer completions"));
        free(out);
        CHECK_INT(http(serve_port(t), "GET", "/v1/models", NULL, &out), 200);
        free(out);
        serve_stop(t);
    }
    serve_stop(s);
    free(model);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_sweep_parity_with_native);
    RUN(test_client_matches_native);
    RUN(test_echo_shape_lm_eval);
    RUN(test_errors);
    RUN(test_seed_top_level_only);
    RUN(test_shared_prefix_branches);
    RUN(test_concurrent_clients_agree);
    RUN(test_idle_and_slow_clients_do_not_lock_out);
    RUN(test_per_ip_limit);
    RUN(test_request_deadline);
    RUN(test_too_large_as_json);
    RUN(backend_without_complete_is_501);
    int rc = tl_summary();
    curl_global_cleanup();
    return rc;
}

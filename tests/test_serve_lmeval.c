/* test_serve_lmeval.c - lm-evaluation-harness against `emerge serve`, its
 * requests replayed byte for byte and its answers read with its own rules.
 *
 * Source read: EleutherAI/lm-evaluation-harness at 4e7e0d47 (2026-08-21,
 * pyproject version 0.4.13.dev0):
 *   lm_eval/utils.py                 RemoteTokenizer and
 *                                    check_remote_tokenizer_support
 *   lm_eval/models/api_models.py     TemplateAPI: tok_encode (remote: no
 *                                    specials), prefix_token_id,
 *                                    batch_loglikelihood_requests
 *   lm_eval/models/openai_completions.py  LocalCompletionsAPI:
 *                                    _create_payload, parse_logprobs,
 *                                    parse_generations
 *   lm_eval/api/model.py             TemplateLM._encode_pair
 * What lm-eval does, and this file replays:
 *   - GET {base}/tokenizer_info must be a dict with "eos_token"; POST
 *     {base}/tokenize {"prompt": "test", "add_special_tokens": false} must
 *     give a "tokens" list ({base}: base_url less "/v1/completions").
 *   - eos/bos ids are /tokenize of the eos_token / bos_token texts, [0].
 *   - loglikelihood: context's trailing spaces move to the continuation;
 *     whole = encode(context + continuation), ctx = encode(context), the
 *     continuation is whole[len(ctx):]; an empty context is
 *     [prefix_token_id] (bos id, or eos id when that is falsy). Body:
 *     {"model", "prompt": [[ids], ...], "temperature": 0, "max_tokens": 1,
 *     "logprobs": 1, "seed": 1234, "echo": true}; the answer's choices
 *     sorted by "index", sum(token_logprobs[ctxlen:-1]), greedy when every
 *     one of those equals max(top_logprobs[i].values()).
 *   - generate_until: {"prompt": [[ids]], "model", "max_tokens",
 *     "temperature": 0, "stop": until + [eos_token], "seed": 1234}; the
 *     text is choices[index]["text"].
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "harness/family.h"
#include "harness/serve/serve.h"
#include "tests/testlib.h"

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    em_buf_put(ud, p, size * n);
    return size * n;
}

/* One request; the status, and the answer as JSON (NULL if not JSON). */
static long call(int port, const char *path, const char *body, cJSON **out)
{
    CURL *h = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    em_buf b = {0};
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    long status = -1;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    *out = b.s ? cJSON_ParseWithLength(b.s, b.len) : NULL;
    em_buf_free(&b);
    return status;
}

static serve *start(const char *model, int hide_bos, em_err *err)
{
    serve_opts o = {.model_path = model, .port = 0, .threads = 2,
                    .max_body = 1 << 16, .max_tokens = 64, .max_prompts = 16,
                    .model_name = "m", .hide_bos = hide_bos};
    serve *s = NULL;
    return serve_start(&o, &s, err) ? NULL : s;
}

static backend *open_native(const char *model, em_err *err)
{
    char spec[1024];
    family *f;
    backend *b = NULL;
    snprintf(spec, sizeof spec, "native:%s,threads=2", model);
    if (family_from_spec(spec, &f, err) == 0) {
        if (backend_open(&f->members[0].spec, &b, err))
            b = NULL;
        family_free(f);
    }
    return b;
}

/* ---- RemoteTokenizer ---------------------------------------------------- */

typedef struct ids {
    int v[512];
    int n;
} ids;

/* RemoteTokenizer.encode: /tokenize without specials. */
static int encode(int port, const char *text, int special, ids *out)
{
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    cJSON_AddStringToObject(req, "prompt", text);
    cJSON_AddBoolToObject(req, "add_special_tokens", special);
    char *body = cJSON_PrintUnformatted(req);
    long st = call(port, "/tokenize", body, &ans);
    const cJSON *t = cJSON_GetObjectItem(ans, "tokens"), *e;
    out->n = 0;
    cJSON_ArrayForEach(e, t)
        if (out->n < 512)
            out->v[out->n++] = e->valueint;
    int ok = st == 200 && cJSON_IsArray(t) &&
             cJSON_GetObjectItem(ans, "count")->valueint == out->n;
    free(body);
    cJSON_Delete(req);
    cJSON_Delete(ans);
    return ok ? 0 : -1;
}

static cJSON *id_array(const ids *x)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < x->n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(x->v[i]));
    return a;
}

/* RemoteTokenizer.decode: /detokenize; malloc'd, NULL on failure. */
static char *decode(int port, const ids *x)
{
    cJSON *req = cJSON_CreateObject(), *ans = NULL;
    cJSON_AddItemToObject(req, "tokens", id_array(x));
    char *body = cJSON_PrintUnformatted(req);
    long st = call(port, "/detokenize", body, &ans);
    const cJSON *p = cJSON_GetObjectItem(ans, "prompt");
    char *out = st == 200 && cJSON_IsString(p) ? em_strdup(p->valuestring) : NULL;
    free(body);
    cJSON_Delete(req);
    cJSON_Delete(ans);
    return out;
}

/* The ids of tokenizer_info's key (a token text), as RemoteTokenizer
 * finds them: encode(text)[0]; -1 when the key is null. */
static int special_id(int port, const cJSON *info, const char *key)
{
    const cJSON *t = cJSON_GetObjectItem(info, key);
    ids x;
    if (!cJSON_IsString(t) || encode(port, t->valuestring, 0, &x) || !x.n)
        return -1;
    return x.v[0];
}

TEST(test_remote_tokenizer)
{
    char *model = tl_fixture("tiny-llama-f32");
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, 0, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    int port = s ? serve_port(s) : 0;
    cJSON *info = NULL;
    /* check_remote_tokenizer_support, then RemoteTokenizer's reads */
    CHECK_INT(s ? call(port, "/tokenizer_info", NULL, &info) : 0, 200);
    CHECK(cJSON_IsObject(info) && cJSON_GetObjectItem(info, "eos_token"));
    ids x;
    CHECK_INT(s ? encode(port, "test", 0, &x) : 0, 0);
    CHECK_INT(special_id(port, info, "eos_token"), 2);  /* </s> */
    CHECK_INT(special_id(port, info, "bos_token"), 1);  /* <s> */
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(info, "chat_template")));
    CHECK_STR(cJSON_GetObjectItem(info, "tokenizer_class")->valuestring,
              "LlamaTokenizerFast");
    /* also under /v1, as vLLM has them */
    cJSON *again = NULL;
    CHECK_INT(call(port, "/v1/tokenizer_info", NULL, &again), 200);
    cJSON_Delete(again);
    /* add_special_tokens: false gives no BOS; true (and the default) one */
    ids with, without;
    CHECK_INT(encode(port, "Hello world", 1, &with), 0);
    CHECK_INT(encode(port, "Hello world", 0, &without), 0);
    CHECK_INT(with.n, without.n + 1);
    CHECK_INT(with.v[0], 1);
    CHECK(without.v[0] != 1);
    /* round trips, byte-fallback characters too */
    const char *texts[] = {"Hello world", "Die Größe ist groß", "Q: 12 + 30 =\nA: 42",
                           "Ünïcödé wörds ok", "a  b\t\tc"};
    for (size_t i = 0; s && i < sizeof texts / sizeof *texts; i++) {
        CHECK_INT(encode(port, texts[i], 0, &x), 0);
        char *back = decode(port, &x);
        CHECK_MSG(back && !strcmp(back, texts[i]), "'%s' came back as '%s'",
                  texts[i], back ? back : "(none)");
        free(back);
    }
    /* special texts in the prompt are their tokens (as with vLLM) */
    CHECK_INT(encode(port, "Hi</s>", 0, &x), 0);
    CHECK(x.n >= 2 && x.v[x.n - 1] == 2);
    cJSON_Delete(info);
    serve_stop(s);
    free(model);
}

TEST(test_tokenizer_errors)
{
    char *model = tl_fixture("tiny-llama-f32");
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, 0, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    int port = s ? serve_port(s) : 0;
    struct { const char *path, *body, *says; long status; } bad[] = {
        {"/tokenize", "{\"prompt\": 3}", "'prompt' must be a string", 400},
        {"/tokenize", "{\"prompt\": \"a\", \"add_special_tokens\": 1}",
         "'add_special_tokens' must be true or false", 400},
        {"/detokenize", "{\"tokens\": [1, 99999]}", "token ids must be integers", 400},
        {"/detokenize", "{\"tokens\": \"1\"}", "'tokens' must be a list", 400},
        {"/tokenize", "[1]", "JSON object", 400},
        {"/v1/completions", "{\"prompt\": \"a\", \"add_special_tokens\": \"no\"}",
         "'add_special_tokens' must be true or false", 400},
        {"/tokenizer_info", "{}", "use GET", 405},
    };
    for (size_t i = 0; s && i < sizeof bad / sizeof *bad; i++) {
        cJSON *ans = NULL;
        long st = call(port, bad[i].path, bad[i].body, &ans);
        const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "error"),
                                             "message");
        CHECK_MSG(st == bad[i].status, "%s %s: %ld", bad[i].path, bad[i].body, st);
        CHECK_MSG(cJSON_IsString(m) && strstr(m->valuestring, bad[i].says),
                  "%s: %s", bad[i].path, cJSON_IsString(m) ? m->valuestring : "?");
        cJSON_Delete(ans);
    }
    serve_stop(s);
    free(model);
}

/* ---- loglikelihood as lm-eval asks and reads it ------------------------- */

typedef struct ll_case {
    const char *context, *continuation;
} ll_case;

/* TemplateLM._encode_pair with the remote tokenizer, or the empty
 * context's [prefix_token_id]. */
static int encode_pair(int port, int prefix, const ll_case *c, ids *ctx,
                       ids *cont)
{
    char context[256], continuation[256];
    size_t n = strlen(c->context), sp = 0;
    while (sp < n && c->context[n - sp - 1] == ' ')
        sp++;
    snprintf(context, sizeof context, "%.*s", (int)(n - sp), c->context);
    snprintf(continuation, sizeof continuation, "%s%s", c->context + n - sp,
             c->continuation);
    if (!*c->context) {
        ctx->v[0] = prefix;
        ctx->n = 1;
        return encode(port, c->continuation, 0, cont);
    }
    char whole_s[512];
    ids whole;
    snprintf(whole_s, sizeof whole_s, "%s%s", context, continuation);
    if (encode(port, whole_s, 0, &whole) || encode(port, context, 0, ctx))
        return -1;
    cont->n = 0;
    for (int i = ctx->n; i < whole.n; i++)
        cont->v[cont->n++] = whole.v[i];
    return 0;
}

/* LocalCompletionsAPI._create_payload(generate=False) over a batch. */
static char *ll_body(const ids *inputs, int n, char *const *strings)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", "m");
    cJSON *p = cJSON_AddArrayToObject(o, "prompt");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(p, strings ? cJSON_CreateString(strings[i])
                                        : id_array(&inputs[i]));
    cJSON_AddNumberToObject(o, "temperature", 0);
    cJSON_AddNumberToObject(o, "max_tokens", 1);
    cJSON_AddNumberToObject(o, "logprobs", 1);
    cJSON_AddNumberToObject(o, "seed", 1234);
    cJSON_AddBoolToObject(o, "echo", 1);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* LocalCompletionsAPI.parse_logprobs for the choice with index i. */
static int parse_ll(const cJSON *ans, int i, int ctxlen, double *lp, int *greedy,
                    int *n_echo)
{
    const cJSON *ch, *choice = NULL;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItem(ans, "choices"))
        if (cJSON_GetObjectItem(ch, "index")->valueint == i)
            choice = ch;
    const cJSON *l = cJSON_GetObjectItem(choice, "logprobs");
    const cJSON *tl = cJSON_GetObjectItem(l, "token_logprobs");
    const cJSON *top = cJSON_GetObjectItem(l, "top_logprobs");
    int n = cJSON_GetArraySize(tl);
    if (!choice || ctxlen <= 0 || n < ctxlen + 1)
        return -1;
    *n_echo = n - 1; /* the last entry is the one generated token */
    *lp = 0;
    *greedy = 1;
    for (int k = ctxlen; k < n - 1; k++) {
        const cJSON *e = cJSON_GetArrayItem(tl, k), *t;
        double best = -INFINITY;
        cJSON_ArrayForEach(t, cJSON_GetArrayItem(top, k))
            best = t->valuedouble > best ? t->valuedouble : best;
        *lp += e->valuedouble;
        *greedy &= e->valuedouble == best;
    }
    return 0;
}

static const ll_case CASES[] = {
    {"The cat sat on the ", "mat"}, {"Die Größe ist", " groß"},
    {"Q: 12 + 30 =\nA:", " 42"}, {"Ünïcödé ", "wörds ok"}, {"", "Hello world"},
};
enum { N_CASES = sizeof CASES / sizeof CASES[0] };

/* Scores CASES as lm-eval does (tokenized_requests, or strings through
 * /detokenize when as_text; the empty context is left out there) and
 * compares with emerge's own scorer on the same texts. */
static void lm_eval_vs_native(const char *fixture, int hide_bos, int as_text)
{
    char *model = tl_fixture(fixture);
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, hide_bos, &err);
    backend *nat = open_native(model, &err);
    CHECK_MSG(s && nat, "%s", err.msg);
    int port = s ? serve_port(s) : 0, n = as_text ? N_CASES - 1 : N_CASES;
    cJSON *info = NULL;
    call(port, "/tokenizer_info", NULL, &info);
    int bos = special_id(port, info, "bos_token");
    int prefix = bos > 0 ? bos : special_id(port, info, "eos_token");
    ids ctx[N_CASES], cont[N_CASES], in[N_CASES];
    char *text[N_CASES] = {0};
    backend_ll_req rq[N_CASES];
    backend_ll_res want[N_CASES];
    for (int i = 0; s && i < n; i++) {
        CHECK_INT(encode_pair(port, prefix, &CASES[i], &ctx[i], &cont[i]), 0);
        in[i] = ctx[i];
        for (int k = 0; k < cont[i].n; k++)
            in[i].v[in[i].n++] = cont[i].v[k];
        text[i] = as_text ? decode(port, &in[i]) : NULL;
        rq[i] = (backend_ll_req){CASES[i].context, CASES[i].continuation};
    }
    if (nat)
        CHECK_INT(backend_loglikelihood(nat, rq, want, n, &err), 0);
    char *body = ll_body(in, n, as_text ? text : NULL);
    cJSON *ans = NULL;
    CHECK_INT(s ? call(port, "/v1/completions", body, &ans) : 200, 200);
    for (int i = 0; s && nat && i < n; i++) {
        double lp;
        int greedy, n_echo;
        CHECK_INT(parse_ll(ans, i, ctx[i].n, &lp, &greedy, &n_echo), 0);
        CHECK_MSG(n_echo == in[i].n, "%s %d: echo of %d tokens, lm-eval "
                  "counts %d", fixture, i, n_echo, in[i].n);
        CHECK_MSG(fabs(lp - want[i].logprob) <= 1e-4, "%s %d: lm-eval "
                  "reads %.6f, emerge scores %.6f", fixture, i, lp,
                  want[i].logprob);
        CHECK_INT(cont[i].n, want[i].n_tokens);
        CHECK_INT(greedy, want[i].is_greedy);
    }
    for (int i = 0; i < n; i++)
        free(text[i]);
    free(body);
    cJSON_Delete(ans);
    cJSON_Delete(info);
    backend_close(nat);
    serve_stop(s);
    free(model);
}

/* A vocabulary with a BOS rule (SentencePiece llama): --hide-bos. */
TEST(test_loglikelihood_hide_bos_ids)
{
    lm_eval_vs_native("tiny-llama-f32", 1, 0);
}

TEST(test_loglikelihood_hide_bos_strings)
{
    lm_eval_vs_native("tiny-llama-f32", 1, 1);
}

/* Without a BOS rule (GPT-NeoX's BPE) the default server already agrees. */
TEST(test_loglikelihood_no_bos_vocab)
{
    lm_eval_vs_native("tiny-gptneox-f16", 0, 0);
}

/* Why --hide-bos: without it a string prompt's echo has one token more
 * than lm-eval counts, and [ctxlen:-1] is shifted by it. */
TEST(test_string_prompt_bos_shift)
{
    char *model = tl_fixture("tiny-llama-f32");
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, 0, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    int port = s ? serve_port(s) : 0;
    ids x;
    char *text[1] = {"The cat sat on the mat"};
    CHECK_INT(s ? encode(port, text[0], 0, &x) : 0, 0);
    char *body = ll_body(NULL, 1, text);
    cJSON *ans = NULL;
    CHECK_INT(s ? call(port, "/v1/completions", body, &ans) : 200, 200);
    double lp;
    int greedy, n_echo;
    CHECK_INT(parse_ll(ans, 0, 1, &lp, &greedy, &n_echo), 0);
    CHECK_INT(n_echo, x.n + 1);
    cJSON_Delete(ans);
    free(body);
    /* add_special_tokens: false on the completion: no BOS, counts agree */
    ans = NULL;
    CHECK_INT(call(port, "/v1/completions", "{\"prompt\": \"The cat sat on the "
                   "mat\", \"max_tokens\": 1, \"echo\": true, \"logprobs\": 1, "
                   "\"add_special_tokens\": false}", &ans), 200);
    CHECK_INT(parse_ll(ans, 0, 1, &lp, &greedy, &n_echo), 0);
    CHECK_INT(n_echo, x.n);
    const cJSON *u = cJSON_GetObjectItem(ans, "usage");
    CHECK_INT(cJSON_GetObjectItem(u, "prompt_tokens")->valueint, x.n);
    cJSON_Delete(ans);
    serve_stop(s);
    free(model);
}

/* ---- generate_until ---------------------------------------------------- */

/* A choice's text as bytes: emerge_text_hex when the server sent it. */
static char *text_bytes(const cJSON *choice)
{
    const cJSON *h = cJSON_GetObjectItem(choice, "emerge_text_hex");
    if (!cJSON_IsString(h))
        return em_strdup(cJSON_GetObjectItem(choice, "text")->valuestring);
    size_t n = strlen(h->valuestring) / 2;
    char *out = em_malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(h->valuestring + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    out[n] = '\0';
    return out;
}

TEST(test_generate_until)
{
    char *model = tl_fixture("tiny-llama-f32");
    if (!model)
        return;
    em_err err = {{0}};
    serve *s = start(model, 1, &err);
    backend *nat = open_native(model, &err);
    CHECK_MSG(s && nat, "%s", err.msg);
    int port = s ? serve_port(s) : 0;
    const char *prompts[] = {"Once upon a time", "Q: 1 + 1 =\nA:"};
    const char *stop[] = {"\n\n", "</s>"};
    ids in[2];
    backend_gen_req gr[2];
    backend_gen_res gw[2];
    cJSON *o = cJSON_CreateObject();
    cJSON *p = cJSON_AddArrayToObject(o, "prompt");
    for (int i = 0; s && i < 2; i++) {
        CHECK_INT(encode(port, prompts[i], 0, &in[i]), 0);
        cJSON_AddItemToArray(p, id_array(&in[i]));
        gr[i] = (backend_gen_req){prompts[i], stop, 2, 12, 0, 1, 1234};
    }
    cJSON_AddStringToObject(o, "model", "m");
    cJSON_AddNumberToObject(o, "max_tokens", 12);
    cJSON_AddNumberToObject(o, "temperature", 0);
    cJSON *st = cJSON_AddArrayToObject(o, "stop");
    for (int i = 0; i < 2; i++)
        cJSON_AddItemToArray(st, cJSON_CreateString(stop[i]));
    cJSON_AddNumberToObject(o, "seed", 1234);
    char *body = cJSON_PrintUnformatted(o);
    cJSON *ans = NULL;
    if (nat)
        CHECK_INT(backend_generate(nat, gr, gw, 2, &err), 0);
    CHECK_INT(s ? call(port, "/v1/completions", body, &ans) : 200, 200);
    const cJSON *ch;
    int seen = 0;
    cJSON_ArrayForEach(ch, cJSON_GetObjectItem(ans, "choices")) {
        int i = cJSON_GetObjectItem(ch, "index")->valueint;
        const cJSON *t = cJSON_GetObjectItem(ch, "text");
        if (nat && i >= 0 && i < 2 && cJSON_IsString(t)) {
            /* lm-eval reads "text" (U+FFFD for half characters); the
             * exact bytes are in emerge_text_hex then */
            char *raw = text_bytes(ch);
            CHECK_STR(raw, gw[i].text);
            free(raw);
            seen++;
        }
    }
    CHECK_INT(seen, nat ? 2 : 0);
    for (int i = 0; nat && i < 2; i++)
        backend_gen_res_clear(&gw[i]);
    cJSON_Delete(ans);
    cJSON_Delete(o);
    free(body);
    backend_close(nat);
    serve_stop(s);
    free(model);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_remote_tokenizer);
    RUN(test_tokenizer_errors);
    RUN(test_loglikelihood_hide_bos_ids);
    RUN(test_loglikelihood_hide_bos_strings);
    RUN(test_loglikelihood_no_bos_vocab);
    RUN(test_string_prompt_bos_shift);
    RUN(test_generate_until);
    int rc = tl_summary();
    curl_global_cleanup();
    return rc;
}

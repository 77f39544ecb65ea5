/*
 * openai.c - the "openai" backend (see openai.h for the spec's options).
 *
 * Owns: turning harness requests into OpenAI completion requests, running
 * many of them at once over libcurl's multi interface, retrying the ones
 * that fail for transient reasons, and reading the answers back.
 *
 * Log-likelihood: POST /completions with prompt = context + continuation,
 * echo, max_tokens 0 and logprobs 1. The server answers every prompt token
 * with its text and log-prob; the continuation's tokens are those that
 * start at or after the end of the context. As the native backend (and
 * lm-evaluation-harness) do, trailing whitespace of the context moves to
 * the continuation first, so " Paris" is one token of the continuation
 * rather than a space left dangling in the context. Where each token
 * starts comes from the token texts, which must spell the whole prompt
 * (see echo alignment below): an answer whose tokens stop short, skip or
 * change text fails the request instead of scoring fewer tokens.
 *
 * Generation: log-probs, when the server sends any, must cover every
 * generated token; none at all is fine (token_logprobs NULL), a few is a
 * failed request.
 *
 * vLLM's prompt_logprobs (logprobs_mode) is the other way to ask; in auto
 * mode echo is tried first. While the member does not know whether its
 * server can answer a way, one request asks first; a server limitation
 * (OA_LIMIT: the parameter refused, the log-probs missing or short) ends
 * that way for the member, and the requests left fail without asking.
 *
 * Retries: HTTP 429 and 5xx, timeouts, refused and reset connections, and
 * bodies that are not JSON (a cut transfer) are retried with exponential
 * backoff and jitter, waiting at least what Retry-After says. Other 4xx
 * answers, answers that lack what we asked for, and a 4xx/5xx whose
 * message names echo or prompt_logprobs (what was asked for) are final. A request
 * that finally fails comes back as res.ok = 0 with the reason: the sweep
 * records it as failed and resends it on its next run.
 */
#include "backends/openai.h"
#include "backends/openai_int.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>


#define OA_MAX_BODY (64u << 20) /* a larger answer is an error, not OOM */

/* What this member learnt about its server this run, per method. */
enum { SRV_UNKNOWN, SRV_WORKS, SRV_LIMITED };

typedef struct oa {
    char *url_compl, *url_chat;
    char *model;
    struct curl_slist *headers;
    int concurrency, max_retries, chat, ll_max_tokens, lp_mode;
    long timeout_ms;
    double backoff;
    uint64_t rng;   /* jitter */
    int srv[2];             /* SRV_* of LP_ECHO and LP_PLP */
    char srv_why[2][256];   /* why a method is SRV_LIMITED */
} oa;

static void memo_recall(oa *o);

/* One HTTP request and its attempts. */
typedef struct oa_job {
    char *body;
    const char *url;
    CURL *h;
    em_buf resp;
    int attempts;
    double not_before;
    int state;          /* JOB_WAIT, JOB_RUN, JOB_DONE */
    int kind;           /* JOB_GEN, JOB_ECHO, JOB_PLP */
    int ok;
    int limit;          /* failed for what the server cannot do at all */
    char error[256];
} oa_job;

enum { JOB_WAIT, JOB_RUN, JOB_DONE };
enum { JOB_GEN, JOB_ECHO, JOB_PLP };

/* Checks and extracts one parsed answer: 0 ok, -1 final failure (msg
 * says why), OA_LIMIT: the server cannot give what was asked for, for
 * any request of this kind (msg says why). */

typedef int (*oa_take_fn)(void *ctx, int i, const cJSON *json, char *msg,
                          size_t cap);

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t count_mu = PTHREAD_MUTEX_INITIALIZER;
static openai_counts counts;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void openai_get_counts(openai_counts *out)
{
    pthread_mutex_lock(&count_mu);
    *out = counts;
    pthread_mutex_unlock(&count_mu);
}

static void count_attempt(int retry)
{
    pthread_mutex_lock(&count_mu);
    counts.attempts++;
    counts.retries += retry;
    counts.in_flight++;
    pthread_mutex_unlock(&count_mu);
}

static void count_landed(void)
{
    pthread_mutex_lock(&count_mu);
    counts.in_flight--;
    pthread_mutex_unlock(&count_mu);
}

static void count_limited(long n)
{
    pthread_mutex_lock(&count_mu);
    counts.limited += n;
    pthread_mutex_unlock(&count_mu);
}

/* ---------------------------------------------------------------- options */

static int opt_num(const backend_spec *sp, const char *key, double def,
                   double lo, double hi, double *out, em_err *err)
{
    const char *v = backend_spec_opt(sp, key);
    *out = def;
    if (!v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi))
        return em_errorf(err, "option '%s': '%s' is not a number in "
                         "[%g, %g]", key, v, lo, hi);
    *out = d;
    return 0;
}

static int opt_lp_mode(const backend_spec *sp, int *out, em_err *err)
{
    static const char *const names[] = {"echo", "prompt_logprobs", "auto"};
    const char *v = backend_spec_opt(sp, "logprobs_mode");
    *out = LP_AUTO;
    if (!v)
        return 0;
    for (int i = 0; i < 3; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return 0;
        }
    return em_errorf(err, "option 'logprobs_mode': '%s' is not echo, "
                     "prompt_logprobs or auto", v);
}

static void oa_free(oa *o)
{
    if (!o)
        return;
    free(o->url_compl);
    free(o->url_chat);
    free(o->model);
    curl_slist_free_all(o->headers);
    free(o);
}

static char *join_url(const char *base, const char *path)
{
    em_buf b = {0};
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    em_buf_put(&b, base, n);
    em_buf_puts(&b, path);
    return em_buf_take(&b);
}

static int set_auth(oa *o, const backend_spec *spec, em_err *err)
{
    o->headers = curl_slist_append(NULL, "Content-Type: application/json");
    o->headers = curl_slist_append(o->headers, "Expect:"); /* no 100-continue */
    const char *env = backend_spec_opt(spec, "api_key_env");
    if (!env)
        return 0;
    const char *key = getenv(env);
    if (!key || !*key)
        return em_errorf(err, "option 'api_key_env': the environment "
                         "variable '%s' is not set", env);
    em_buf h = {0};
    em_buf_printf(&h, "Authorization: Bearer %s", key);
    o->headers = curl_slist_append(o->headers, h.s);
    memset(h.s, 0, h.len); /* the key lives on only inside curl's list */
    em_buf_free(&h);
    return 0;
}

static int openai_open(const backend_spec *spec, void **state,
                       backend_info *info, em_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    const char *base = backend_spec_opt(spec, "base_url");
    if (!base)
        base = spec->path;
    if (!base || !*base)
        return em_errorf(err, "the openai backend needs 'base_url' (or "
                         "'path'), e.g. http://127.0.0.1:8080/v1");
    if (strncmp(base, "http://", 7) && strncmp(base, "https://", 8))
        return em_errorf(err, "option 'base_url': '%s' is not an http:// or "
                         "https:// URL", base);
    double conc, timeout, retries, chat, llmax, backoff;
    int lp_mode;
    if (opt_num(spec, "concurrency", 8, 1, 1024, &conc, err) ||
        opt_num(spec, "timeout", 300, 0.001, 86400, &timeout, err) ||
        opt_num(spec, "max_retries", 5, 0, 100, &retries, err) ||
        opt_num(spec, "chat", 0, 0, 1, &chat, err) ||
        opt_num(spec, "loglik_max_tokens", 0, 0, 1, &llmax, err) ||
        opt_num(spec, "backoff", 0.5, 0, 60, &backoff, err) ||
        opt_lp_mode(spec, &lp_mode, err))
        return -1;
    oa *o = em_calloc(1, sizeof *o);
    o->url_compl = join_url(base, "/completions");
    o->url_chat = join_url(base, "/chat/completions");
    const char *model = backend_spec_opt(spec, "model");
    o->model = em_strdup(model ? model : spec->name ? spec->name : "default");
    o->concurrency = (int)conc;
    o->timeout_ms = (long)(timeout * 1000);
    o->max_retries = (int)retries;
    o->chat = chat != 0;
    o->ll_max_tokens = (int)llmax;
    o->backoff = backoff;
    o->lp_mode = lp_mode;
    o->rng = em_hash64(base, strlen(base), (uint64_t)(em_now() * 1e6));
    memo_recall(o);
    if (set_auth(o, spec, err)) {
        oa_free(o);
        return -1;
    }
    snprintf(info->name, sizeof info->name, "%s", o->model);
    snprintf(info->arch, sizeof info->arch, "openai");
    info->n_params = spec->n_params;
    info->caps = BACKEND_CAP_LOGLIK | BACKEND_CAP_GENERATE |
                 BACKEND_CAP_GEN_LOGPROBS;
    *state = o;
    return 0;
}

static void openai_close(void *state)
{
    oa_free(state);
}

/* ------------------------------------------------------- the HTTP engine */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    em_buf *b = ud;
    size_t len = size * n;
    if (b->len + len > OA_MAX_BODY)
        return 0; /* curl reports CURLE_WRITE_ERROR */
    em_buf_put(b, p, len);
    return len;
}

static void job_start(oa *o, CURLM *multi, oa_job *j)
{
    em_buf_reset(&j->resp);
    j->h = curl_easy_init();
    curl_easy_setopt(j->h, CURLOPT_URL, j->url);
    curl_easy_setopt(j->h, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(j->h, CURLOPT_POSTFIELDS, j->body);
    curl_easy_setopt(j->h, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
    curl_easy_setopt(j->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(j->h, CURLOPT_WRITEDATA, &j->resp);
    curl_easy_setopt(j->h, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(j->h, CURLOPT_CONNECTTIMEOUT_MS,
                     o->timeout_ms < 10000 ? o->timeout_ms : 10000L);
    curl_easy_setopt(j->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(j->h, CURLOPT_PRIVATE, j);
    curl_multi_add_handle(multi, j->h);
    count_attempt(j->attempts > 0);
    j->attempts++;
    j->state = JOB_RUN;
}

static int curl_transient(CURLcode c)
{
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT: case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR: case CURLE_SEND_ERROR: case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE: case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_SSL_CONNECT_ERROR: case CURLE_HTTP2: case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* The server's own words from an error body, when it has some. */
static void server_message(const em_buf *resp, char *out, size_t cap)
{
    cJSON *j = resp->s ? cJSON_Parse(resp->s) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message")
                                       : e;
    if (cJSON_IsString(m))
        snprintf(out, cap, ": %.200s", m->valuestring);
    else if (resp->s && resp->len)
        snprintf(out, cap, ": %.120s", resp->s);
    else
        out[0] = '\0';
    cJSON_Delete(j);
}

/* Whether an HTTP error is the server refusing the very parameter that
 * asks for prompt log-probs: llama.cpp's server answers echo with 500
 * "Unsupported param: echo" (builds of early 2025) or "Only no echo is
 * supported" (later ones); others say so with a 400. Such an answer is
 * final for every request of that kind, never transient. */
static int refuses_param(int kind, long status, const char *sm)
{
    if (status < 400 || status == 429 || status == 408)
        return 0;
    if (kind == JOB_ECHO)
        return strcasestr(sm, "echo") != NULL;
    if (kind == JOB_PLP)
        return strcasestr(sm, "prompt_logprobs") != NULL;
    return 0;
}

/* Schedules another attempt, or fails the job when it had its last. */
static void job_retry(oa *o, oa_job *j, double retry_after, const char *why)
{
    if (j->attempts > o->max_retries) {
        j->state = JOB_DONE;
        j->ok = 0;
        snprintf(j->error, sizeof j->error, "%s (gave up after %d attempts)",
                 why, j->attempts);
        return;
    }
    double d = o->backoff * pow(2, j->attempts - 1);
    if (d > 30)
        d = 30;
    d *= 0.5 + 0.5 * em_rand01(&o->rng); /* spread the herd */
    if (retry_after > 300)
        retry_after = 300; /* a server asking for hours is treated as down */
    if (retry_after > d)
        d = retry_after + 0.1 * o->backoff * em_rand01(&o->rng);
    j->not_before = em_now() + d;
    j->state = JOB_WAIT;
}

/* A finished transfer: done, retry, or final failure. */
static void job_finish(oa *o, oa_job *j, CURLcode rc, oa_take_fn take,
                       void *ctx, int idx)
{
    long status = 0;
    curl_off_t ra = -1;
    char msg[256];
    curl_easy_getinfo(j->h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(j->h, CURLINFO_RETRY_AFTER, &ra);
    if (rc != CURLE_OK) {
        snprintf(msg, sizeof msg, "%s: %s", j->url, curl_easy_strerror(rc));
        if (curl_transient(rc))
            job_retry(o, j, 0, msg);
        else {
            j->state = JOB_DONE;
            snprintf(j->error, sizeof j->error, "%s", msg);
        }
        return;
    }
    if (status != 200) {
        char sm[240];
        server_message(&j->resp, sm, sizeof sm);
        snprintf(msg, sizeof msg, "%s: HTTP %ld%s", j->url, status, sm);
        if (refuses_param(j->kind, status, sm)) {
            j->state = JOB_DONE;
            j->limit = 1;
            snprintf(j->error, sizeof j->error, "%s", msg);
        } else if (status == 429 || status >= 500)
            job_retry(o, j, ra > 0 ? (double)ra : 0, msg);
        else {
            j->state = JOB_DONE;
            snprintf(j->error, sizeof j->error, "%s", msg);
        }
        return;
    }
    cJSON *json = j->resp.s ? cJSON_ParseWithLength(j->resp.s, j->resp.len) : NULL;
    if (!json) {
        snprintf(msg, sizeof msg, "%s: the answer is not JSON", j->url);
        job_retry(o, j, 0, msg);
        return;
    }
    j->state = JOB_DONE;
    int got = take(ctx, idx, json, j->error, sizeof j->error);
    j->ok = got == 0;
    j->limit = got == OA_LIMIT;
    cJSON_Delete(json);
}

/* A job found its server unable to do what it asked: the waiting jobs of
 * its kind fail with its reason instead of asking again; returns how many. */
static int fail_kind(oa_job *jobs, int from, int to, const oa_job *why)
{
    int n = 0;
    for (int i = from; i < to; i++) {
        oa_job *j = &jobs[i];
        if (j->state != JOB_WAIT || j->kind != why->kind)
            continue;
        j->state = JOB_DONE;
        j->ok = 0;
        j->limit = 1;
        snprintf(j->error, sizeof j->error, "%s", why->error);
        n++;
    }
    return n;
}

/* Runs jobs[from..to) with up to o->concurrency in flight; each ends ok
 * or with its error set. */
static void oa_run(oa *o, oa_job *jobs, int from, int to, oa_take_fn take,
                   void *ctx)
{
    CURLM *multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o->concurrency);
    int done = 0, active = 0, n = to - from;
    jobs += from;
    while (done < n) {
        double now = em_now(), next = now + 1;
        for (int i = 0; i < n && active < o->concurrency; i++) {
            if (jobs[i].state != JOB_WAIT)
                continue;
            if (jobs[i].not_before <= now) {
                job_start(o, multi, &jobs[i]);
                active++;
            } else if (jobs[i].not_before < next) {
                next = jobs[i].not_before;
            }
        }
        int running;
        curl_multi_perform(multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            oa_job *j;
            CURLcode rc = m->data.result;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
            curl_multi_remove_handle(multi, j->h);
            count_landed();
            job_finish(o, j, rc, take, ctx, from + (int)(j - jobs));
            curl_easy_cleanup(j->h);
            j->h = NULL;
            active--;
            done += j->state == JOB_DONE;
            if (j->limit)
                done += fail_kind(jobs, 0, n, j);
        }
        if (done >= n)
            break;
        /* Sleep until a transfer moves or the next retry is due. */
        double until = next - em_now();
        int wait_ms = until <= 0 ? 0 : until >= 0.1 ? 100 : (int)(until * 1000) + 1;
        if (active > 0 && wait_ms == 0)
            wait_ms = 1;
        if (wait_ms > 0)
            curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
    curl_multi_cleanup(multi);
}

static void jobs_free(oa_job *jobs, int n)
{
    for (int i = 0; i < n; i++) {
        free(jobs[i].body);
        em_buf_free(&jobs[i].resp);
    }
    free(jobs);
}

static char *print_body(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* -------------------------------------------------------- log-likelihood */

static size_t ctx_trimmed(const char *ctx)
{
    size_t n = strlen(ctx);
    while (n > 0 && (ctx[n - 1] == ' ' || ctx[n - 1] == '\t' ||
                     ctx[n - 1] == '\n' || ctx[n - 1] == '\r' ||
                     ctx[n - 1] == '\v' || ctx[n - 1] == '\f'))
        n--;
    return n;
}

typedef struct ll_ctx {
    const backend_ll_req *req;
    backend_ll_res *res;
    char **prompt;    /* context + continuation, as sent */
    size_t *bound;    /* bytes of the prompt before the continuation */
    int max_tokens;   /* tokens the server may generate after the echo */
    int method;       /* LP_ECHO or LP_PLP */
} ll_ctx;

static int take_echo(ll_ctx *c, int i, const cJSON *json, char *msg, size_t cap)
{
    oa_toks t = {0};
    int rc = oa_echo_toks(json, &t, msg, cap);
    if (rc == 0)
        rc = oa_echo_offsets(json, msg, cap);
    if (rc == 0)
        rc = oa_ll_score(c->prompt[i], c->bound[i], json, &t, c->max_tokens,
                         &c->res[i], NULL, msg, cap);
    oa_toks_free(&t);
    return rc;
}

static int take_plp(ll_ctx *c, int i, const cJSON *json, char *msg, size_t cap)
{
    oa_toks t = {0};
    int rc = oa_plp_toks(json, c->prompt[i], c->bound[i], &t, msg, cap);
    if (rc == 0)
        rc = oa_ll_score(c->prompt[i], c->bound[i], json, &t, -1, &c->res[i],
                         NULL, msg, cap);
    oa_toks_free(&t);
    return rc;
}

static int take_ll(void *vctx, int i, const cJSON *json, char *msg, size_t cap)
{
    ll_ctx *c = vctx;
    return c->method == LP_ECHO ? take_echo(c, i, json, msg, cap)
                                : take_plp(c, i, json, msg, cap);
}

static char *ll_body(const oa *o, const char *prompt, int method)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", o->model);
    cJSON_AddStringToObject(b, "prompt", prompt);
    if (method == LP_ECHO) {
        cJSON_AddNumberToObject(b, "max_tokens", o->ll_max_tokens);
        cJSON_AddBoolToObject(b, "echo", 1);
        cJSON_AddNumberToObject(b, "logprobs", 1);
    } else { /* vLLM: max_tokens must be >= 1; the token is not read */
        cJSON_AddNumberToObject(b, "max_tokens", 1);
        cJSON_AddNumberToObject(b, "prompt_logprobs", 1);
    }
    cJSON_AddNumberToObject(b, "temperature", 0);
    return print_body(b);
}

/* The method to ask with next: the chosen one, or in auto mode echo and
 * then prompt_logprobs; -1 when the server cannot do what is left. */
static int ll_method(const oa *o)
{
    if (o->lp_mode != LP_AUTO)
        return o->srv[o->lp_mode] == SRV_LIMITED ? -1 : o->lp_mode;
    for (int m = LP_ECHO; m <= LP_PLP; m++)
        if (o->srv[m] != SRV_LIMITED)
            return m;
    return -1;
}

/* (Re)makes jobs[from..n) for method m. */
static void ll_jobs(const oa *o, const ll_ctx *c, oa_job *jobs, int from,
                    int n, int m)
{
    for (int i = from; i < n; i++) {
        oa_job *j = &jobs[i];
        free(j->body);
        em_buf resp = j->resp;
        *j = (oa_job){.resp = resp, .url = o->url_compl,
                      .kind = m == LP_ECHO ? JOB_ECHO : JOB_PLP};
        j->body = ll_body(o, c->prompt[i], m);
    }
}

/* The message of a request failed for what the server cannot do. */
static void limit_error(const oa *o, char *out, size_t cap)
{
    char why[256];
    if (o->srv[LP_ECHO] == SRV_LIMITED && o->srv[LP_PLP] == SRV_LIMITED)
        snprintf(why, sizeof why, "echo: %.120s; prompt_logprobs: %.60s",
                 o->srv_why[LP_ECHO], o->srv_why[LP_PLP]);
    else
        snprintf(why, sizeof why, "%s", o->srv_why[o->srv[LP_ECHO] ==
                                                   SRV_LIMITED ? LP_ECHO : LP_PLP]);
    snprintf(out, cap, "server limitation, not retried: %.190s; generation "
             "tasks still run", why);
}

/* What servers could not do, for every member of the process on them: a
 * server's limitation (llama.cpp cannot echo, whatever model it serves) is
 * asked once per server, not once per member. Keyed by the completions
 * URL; only SRV_LIMITED is shared (what works is asked by each member as
 * it comes, which costs nothing extra). */
typedef struct srv_memo {
    char *url;
    int limited[2];
    char why[2][256];
} srv_memo;

static srv_memo *memo;
static int n_memo;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

/* The member starts with what earlier members found on its server. */
static void memo_recall(oa *o)
{
    pthread_mutex_lock(&memo_lock);
    for (int i = 0; i < n_memo; i++)
        if (!strcmp(memo[i].url, o->url_compl))
            for (int m = 0; m < 2; m++)
                if (memo[i].limited[m]) {
                    o->srv[m] = SRV_LIMITED;
                    snprintf(o->srv_why[m], sizeof o->srv_why[m], "%s",
                             memo[i].why[m]);
                }
    pthread_mutex_unlock(&memo_lock);
}

static void memo_note(const oa *o, int m)
{
    pthread_mutex_lock(&memo_lock);
    int i = 0;
    while (i < n_memo && strcmp(memo[i].url, o->url_compl))
        i++;
    if (i == n_memo) {
        memo = em_realloc(memo, sizeof *memo * (size_t)(n_memo + 1));
        memset(&memo[n_memo], 0, sizeof *memo);
        memo[n_memo++].url = em_strdup(o->url_compl);
    }
    memo[i].limited[m] = 1;
    snprintf(memo[i].why[m], sizeof memo[i].why[m], "%s", o->srv_why[m]);
    pthread_mutex_unlock(&memo_lock);
}

void openai_forget_servers(void)
{
    pthread_mutex_lock(&memo_lock);
    for (int i = 0; i < n_memo; i++)
        free(memo[i].url);
    free(memo);
    memo = NULL;
    n_memo = 0;
    pthread_mutex_unlock(&memo_lock);
}

/* Marks method m limited with the reason job j failed, once. */
static void srv_limited(oa *o, int m, const oa_job *j)
{
    if (o->srv[m] == SRV_LIMITED)
        return;
    o->srv[m] = SRV_LIMITED;
    snprintf(o->srv_why[m], sizeof o->srv_why[m], "%s", j->error);
    memo_note(o, m);
}

/* Runs the requests: while a method is untried, one request asks first;
 * one the server cannot answer that way ends the method for this member
 * (auto mode then asks with the next) and the rest fail without asking. */
static void ll_run(oa *o, ll_ctx *c, oa_job *jobs, int n)
{
    int from = 0, m;
    while (from < n && (m = ll_method(o)) >= 0) {
        c->method = m;
        c->max_tokens = o->ll_max_tokens;
        ll_jobs(o, c, jobs, from, n, m);
        if (o->srv[m] == SRV_UNKNOWN) {
            oa_run(o, jobs, from, from + 1, take_ll, c);
            if (jobs[from].limit) {
                srv_limited(o, m, &jobs[from]);
                continue;
            }
            o->srv[m] = jobs[from].ok ? SRV_WORKS : SRV_UNKNOWN;
            from++;
        }
        oa_run(o, jobs, from, n, take_ll, c);
        for (int i = from; i < n; i++)
            if (jobs[i].limit)
                srv_limited(o, m, &jobs[i]);
        return;
    }
    for (int i = from; i < n; i++) { /* nothing left to ask with */
        jobs[i].state = JOB_DONE;
        jobs[i].ok = 0;
        jobs[i].limit = 1;
    }
}

/* One prompt-scoring request as the probe sends it: the answer kept. */
static int take_raw(void *vctx, int i, const cJSON *json, char *msg, size_t cap)
{
    (void)i;
    (void)msg;
    (void)cap;
    *(cJSON **)vctx = cJSON_Duplicate(json, 1);
    return 0;
}

int oa_ask(void *state, const char *prompt, int method, cJSON **answer,
           char *msg, size_t cap)
{
    oa *o = state;
    oa_job j = {.url = o->url_compl,
                .kind = method == LP_ECHO ? JOB_ECHO : JOB_PLP};
    j.body = ll_body(o, prompt, method);
    *answer = NULL;
    oa_run(o, &j, 0, 1, take_raw, answer);
    int rc = j.ok ? 0 : j.limit ? OA_LIMIT : OA_TRANSPORT;
    if (!j.ok)
        snprintf(msg, cap, "%s", j.error);
    free(j.body);
    em_buf_free(&j.resp);
    return rc;
}

static int openai_loglikelihood(void *state, const backend_ll_req *req,
                                backend_ll_res *res, int n, em_err *err)
{
    (void)err;
    oa *o = state;
    if (n <= 0)
        return 0;
    oa_job *jobs = em_calloc((size_t)n, sizeof *jobs);
    ll_ctx c = {req, res, em_calloc((size_t)n, sizeof(char *)),
                em_calloc((size_t)n, sizeof(size_t)), o->ll_max_tokens, LP_ECHO};
    for (int i = 0; i < n; i++) {
        const char *ctx = req[i].context ? req[i].context : "";
        const char *cont = req[i].continuation ? req[i].continuation : "";
        em_buf p = {0};
        em_buf_puts(&p, ctx);
        em_buf_puts(&p, cont);
        c.bound[i] = ctx_trimmed(ctx);
        c.prompt[i] = p.s ? em_buf_take(&p) : em_strdup("");
    }
    ll_run(o, &c, jobs, n);
    long limited = 0;
    for (int i = 0; i < n; i++) {
        res[i].ok = jobs[i].ok;
        res[i].truncated = 0; /* a server does not say */
        if (jobs[i].limit)
            limit_error(o, res[i].error, sizeof res[i].error);
        else if (!jobs[i].ok)
            snprintf(res[i].error, sizeof res[i].error, "%s", jobs[i].error);
        limited += jobs[i].limit;
        free(c.prompt[i]);
    }
    count_limited(limited);
    jobs_free(jobs, n);
    free(c.prompt);
    free(c.bound);
    return 0;
}

/* ------------------------------------------------------------ generation */

typedef struct gen_ctx {
    const backend_gen_req *req;
    backend_gen_res *res;
    int chat;
} gen_ctx;

/* Cuts text before the earliest stop string (servers should, but a stop
 * string split across tokens is easy to miss). */
static void cut_stop(char *text, const backend_gen_req *rq)
{
    char *cut = NULL;
    for (int i = 0; i < rq->n_stop; i++) {
        if (!rq->stop[i] || !*rq->stop[i])
            continue;
        char *hit = strstr(text, rq->stop[i]);
        if (hit && (!cut || hit < cut))
            cut = hit;
    }
    if (cut)
        *cut = '\0';
}

/* Why the server stopped. OpenAI says "stop" or "length"; TGI's
 * "eos_token" and "stop_sequence" are its words for "stop". A server that
 * says nothing, or something else ("content_filter"), gives NONE. */
static int finish_of(const cJSON *fr)
{
    const char *s = cJSON_IsString(fr) ? fr->valuestring : "";
    if (!strcmp(s, "stop") || !strcmp(s, "eos_token") ||
        !strcmp(s, "stop_sequence"))
        return BACKEND_FINISH_STOP;
    if (!strcmp(s, "length"))
        return BACKEND_FINISH_LENGTH;
    return BACKEND_FINISH_NONE;
}

/* emerge serve sends the exact bytes of a text that is not valid UTF-8
 * (JSON cannot carry it) as hex; NULL when absent or not hex. */
static char *raw_text(const cJSON *hex)
{
    if (!cJSON_IsString(hex))
        return NULL;
    const char *h = hex->valuestring;
    size_t n = strlen(h);
    if (n % 2)
        return NULL;
    char *out = em_malloc(n / 2 + 1);
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(h + 2 * i, "%2x", &v) != 1 || v == 0) {
            free(out);
            return NULL;
        }
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    return out;
}

static int take_gen(void *vctx, int i, const cJSON *json, char *msg, size_t cap)
{
    gen_ctx *c = vctx;
    backend_gen_res *r = &c->res[i];
    const cJSON *text = c->chat ? oa_get(oa_choice0(json, "message"), "content")
                                : oa_choice0(json, "text");
    if (!cJSON_IsString(text)) {
        snprintf(msg, cap, "the answer has no choices[0].%s string",
                 c->chat ? "message.content" : "text");
        return -1;
    }
    r->finish = finish_of(oa_choice0(json, "finish_reason"));
    r->truncated = 0; /* a server does not say */
    int uc = oa_usage_count(json, "completion_tokens");
    r->n_tokens = uc >= 0 ? uc : 0;
    if (oa_gen_logprobs(json, oa_choice0(json, "logprobs"), text->valuestring,
                        r->finish, r, msg, cap))
        return -1;
    r->text = raw_text(oa_choice0(json, "emerge_text_hex"));
    if (!r->text)
        r->text = em_strdup(text->valuestring);
    cut_stop(r->text, &c->req[i]);
    return 0;
}

static char *gen_body(const oa *o, const backend_gen_req *rq)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "model", o->model);
    if (o->chat) {
        cJSON *msgs = cJSON_AddArrayToObject(b, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", rq->prompt ? rq->prompt : "");
        cJSON_AddItemToArray(msgs, m);
        cJSON_AddBoolToObject(b, "logprobs", 1);
    } else {
        cJSON_AddStringToObject(b, "prompt", rq->prompt ? rq->prompt : "");
        cJSON_AddNumberToObject(b, "logprobs", 1);
    }
    cJSON_AddNumberToObject(b, "max_tokens", rq->max_tokens > 0 ? rq->max_tokens : 256);
    cJSON_AddNumberToObject(b, "temperature", rq->temperature);
    cJSON_AddNumberToObject(b, "top_p", rq->top_p > 0 ? rq->top_p : 1);
    /* All 64 bits: a double would round the seed and change the samples. */
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)rq->seed);
    cJSON_AddRawToObject(b, "seed", seed);
    if (rq->n_stop > 0) {
        cJSON *st = cJSON_AddArrayToObject(b, "stop");
        for (int i = 0; i < rq->n_stop; i++)
            if (rq->stop[i] && *rq->stop[i])
                cJSON_AddItemToArray(st, cJSON_CreateString(rq->stop[i]));
    }
    return print_body(b);
}

static int openai_generate(void *state, const backend_gen_req *req,
                           backend_gen_res *res, int n, em_err *err)
{
    (void)err;
    oa *o = state;
    if (n <= 0)
        return 0;
    oa_job *jobs = em_calloc((size_t)n, sizeof *jobs);
    for (int i = 0; i < n; i++) {
        jobs[i].body = gen_body(o, &req[i]);
        jobs[i].url = o->chat ? o->url_chat : o->url_compl;
    }
    gen_ctx c = {req, res, o->chat};
    oa_run(o, jobs, 0, n, take_gen, &c);
    for (int i = 0; i < n; i++) {
        if (jobs[i].ok) {
            res[i].ok = 1;
            continue;
        }
        backend_gen_res_clear(&res[i]);
        snprintf(res[i].error, sizeof res[i].error, "%s", jobs[i].error);
    }
    jobs_free(jobs, n);
    return 0;
}

const backend_ops backend_openai_ops = {
    .name = "openai",
    .open = openai_open,
    .loglikelihood = openai_loglikelihood,
    .generate = openai_generate,
    .close = openai_close,
};

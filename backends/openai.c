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
 * Retries: HTTP 429 and 5xx, timeouts, refused and reset connections, and
 * bodies that are not JSON (a cut transfer) are retried with exponential
 * backoff and jitter, waiting at least what Retry-After says. Other 4xx
 * answers and answers that lack what we asked for are final. A request
 * that finally fails comes back as res.ok = 0 with the reason: the sweep
 * records it as failed and resends it on its next run.
 */
#include "backends/openai.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

#define OA_MAX_BODY (64u << 20) /* a larger answer is an error, not OOM */

/* How prompt log-probs are asked for (option logprobs_mode). */
enum { LP_ECHO, LP_PLP, LP_AUTO };

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
#define OA_LIMIT (-2)

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

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The first choice's logprobs object, or NULL. */
static const cJSON *choice0(const cJSON *json, const char *field)
{
    const cJSON *ch = get(json, "choices");
    const cJSON *c0 = cJSON_IsArray(ch) ? cJSON_GetArrayItem(ch, 0) : NULL;
    return cJSON_IsObject(c0) ? get(c0, field) : NULL;
}

/* Largest value in a top_logprobs entry; NAN when it has none. */
static double top_value(const cJSON *top)
{
    double best = NAN;
    const cJSON *v;
    cJSON_ArrayForEach(v, top)
        if (cJSON_IsNumber(v) && (isnan(best) || v->valuedouble > best))
            best = v->valuedouble;
    return best;
}

/* Whether a token text is a start token rather than text: servers show
 * BOS as "" (emerge serve) or as "<s>"-like markup (llama.cpp, vLLM). */
static int is_start_text(const char *s)
{
    size_t n = strlen(s);
    return n == 0 || (n >= 3 && s[0] == '<' && s[n - 1] == '>' && !strchr(s, ' '));
}

/* Bytes of the UTF-8 character at s (1 for a stray byte), at most n. */
static size_t char_len(const char *s, size_t n)
{
    size_t m = utf8_lead_len((unsigned char)s[0]);
    return m < n ? m : n;
}

#define FFFD "\xEF\xBF\xBD" /* U+FFFD, what a piece of a character shows */

/*
 * Echo alignment: which bytes of the prompt each echoed token stands for,
 * found from the token texts rather than text_offset. Servers disagree on
 * offsets: OpenAI and emerge serve give each token's position in the
 * prompt; vLLM adds up the lengths of the token texts, so its offsets
 * count a "<s>" start token and one U+FFFD per piece of a character that
 * a tokenizer split (each piece decodes to U+FFFD on its own). Token texts
 * are the one thing all of them agree on: concatenated, they spell the
 * prompt, except that a split character shows as U+FFFD in every piece.
 *
 * So a token matches the prompt byte for byte, except that a run of
 * U+FFFD (across tokens) stands for whole multi-byte characters: at least
 * one character and at least one byte per U+FFFD, ending where the next
 * real text of the tokens follows. With one U+FFFD per byte (emerge serve;
 * Python's decoder on one-byte pieces) every piece's position is exact;
 * with fewer the pieces' positions inside the run are unknown, which is
 * harmless unless the continuation starts inside the run: that request
 * fails rather than guessing which pieces are the continuation's.
 */
typedef struct aligner {
    const char *p;     /* the prompt */
    size_t len, pos;   /* its length, and where the tokens have reached */
    size_t bound;      /* the continuation's first byte */
    size_t *at;        /* out: where token k starts, bytes */
    int *run_idx;      /* U+FFFD of the run before token k's start, or -1 */
    int n;             /* tokens */
    size_t run_start;  /* the open run of U+FFFD: where it starts, */
    int run_n, run_tok;/* how many, and the first token that starts in it */
    int short_end;     /* out: the tokens stopped before the prompt's end */
    char *msg;
    size_t cap;
} aligner;

/* Closes the open run: the first character boundary e past run_start with
 * >= run_n bytes, <= run_n characters, all multi-byte, where `next` (the
 * next real text, n bytes) follows; NULL next: the tokens ended, the run
 * takes what it can of the prompt's end. 1: no such e, but the run can
 * end the prompt (next is then text after the prompt); -1: msg says. */
static int al_close(aligner *a, const char *next, size_t n)
{
    if (a->run_n == 0)
        return 0;
    size_t s = a->run_start, e = s, best = 0;
    int chars = 0;
    while (e < a->len && (unsigned char)a->p[e] >= 0x80 && chars < a->run_n) {
        e += char_len(a->p + e, a->len - e);
        chars++;
        if (e - s < (size_t)a->run_n)
            continue;
        best = e;
        if (next && e + n <= a->len && !memcmp(a->p + e, next, n))
            break;
    }
    int ends = best == a->len;
    if (best && next && (best + n > a->len || memcmp(a->p + best, next, n))) {
        if (!ends)
            best = 0;
    } else {
        ends = 0;
    }
    if (!best) {
        snprintf(a->msg, a->cap, "the server's echoed tokens show %d U+FFFD "
                 "at byte %zu of the prompt, where the prompt has no split "
                 "multi-byte character for them", a->run_n, s);
        return -1;
    }
    int exact = best - s == (size_t)a->run_n;
    if (!exact && s < a->bound && a->bound < best) {
        snprintf(a->msg, a->cap, "the server's echoed tokens split the "
                 "characters at bytes %zu-%zu of the prompt into U+FFFD pieces "
                 "across the continuation's start (byte %zu): cannot tell "
                 "which pieces are the continuation's", s, best, a->bound);
        return -1;
    }
    for (int k = a->run_tok; k >= 0 && k < a->n && a->run_idx[k] >= 0; k++) {
        size_t o = (size_t)a->run_idx[k];
        a->at[k] = s + (o < best - s ? o : best - s - 1);
        a->run_idx[k] = -1;
    }
    a->pos = best;
    a->run_n = 0;
    a->run_tok = -1;
    return ends;
}

static void al_init(aligner *a, const char *p, size_t len, size_t bound,
                    int n, char *msg, size_t cap)
{
    *a = (aligner){.p = p, .len = len, .bound = bound, .n = n, .run_tok = -1,
                   .msg = msg, .cap = cap};
    a->at = em_calloc((size_t)n + 1, sizeof *a->at);
    a->run_idx = em_malloc(sizeof(int) * ((size_t)n + 1));
    for (int k = 0; k < n; k++)
        a->run_idx[k] = -1;
}

static void al_free(aligner *a)
{
    free(a->at);
    free(a->run_idx);
}

/* Quotes up to 16 bytes of s for a message, whole characters only,
 * control characters, quotes and backslashes escaped. */
static const char *quote(const char *s, size_t n, char out[80])
{
    size_t o = 0, stop = 0;
    while (stop < n && stop + char_len(s + stop, n - stop) <= 16)
        stop += char_len(s + stop, n - stop);
    for (size_t i = 0; i < stop && s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            o += (size_t)snprintf(out + o, 80 - o, "\\x%02x", c);
        else
            out[o++] = (char)c;
    }
    out[o] = '\0';
    return out;
}

/* Matches token k's text t at the prompt; 1 when the prompt ended before
 * the token (it is generated text), -1 with msg when it does not match. */
static int al_token(aligner *a, int k, const char *t)
{
    a->at[k] = a->pos;
    if (a->run_n > 0) {
        a->run_idx[k] = a->run_n;
        if (a->run_tok < 0)
            a->run_tok = k;
    } else if (a->pos == a->len && *t) {
        return 1;
    }
    size_t n = strlen(t);
    for (size_t i = 0; i < n;) {
        size_t m = char_len(t + i, n - i);
        int piece = m == 3 && !memcmp(t + i, FFFD, 3) &&
                    (a->run_n > 0 || a->pos + 3 > a->len ||
                     memcmp(a->p + a->pos, FFFD, 3));
        if (piece) {
            if (a->run_n == 0) {
                a->run_start = a->pos;
                a->run_tok = i == 0 ? k : -1; /* the tokens starting in it */
                if (i == 0)
                    a->run_idx[k] = 0;
            }
            a->run_n++;
            i += m;
            continue;
        }
        int rc = al_close(a, t + i, m);
        if (rc == 1 && i == 0)
            return 1;
        if (rc == 0 && a->pos + m <= a->len && !memcmp(a->p + a->pos, t + i, m)) {
            if (i == 0)
                a->at[k] = a->pos; /* text after a run starts where it ends */
            a->pos += m;
            i += m;
            continue;
        }
        if (rc < 0)
            return -1;
        char q1[80], q2[80];
        if (a->pos == a->len)
            snprintf(a->msg, a->cap, "the server's echoed token %d \"%s\" "
                     "runs past the end of the prompt (byte %zu)", k,
                     quote(t, n, q1), a->len);
        else
            snprintf(a->msg, a->cap, "the server's echoed token %d \"%s\" "
                     "does not match the prompt at byte %zu (\"%s\")", k,
                     quote(t, n, q1), a->pos,
                     quote(a->p + a->pos, a->len - a->pos, q2));
        return -1;
    }
    return 0;
}

/* Aligns the echoed tokens with the prompt. n_prompt: how many tokens the
 * server says the prompt has (-1: unknown, then the prompt ends where the
 * tokens first reach its end). Returns the prompt's tokens (the rest were
 * generated after it), or -1 with msg. */
static int echo_align(aligner *a, const char *const *texts, int n_prompt)
{
    int k = 0;
    for (; k < a->n && (n_prompt < 0 || k < n_prompt); k++) {
        const char *s = texts[k];
        int rc;
        if (k == 0 && *s && is_start_text(s) && strncmp(a->p, s, strlen(s)))
            rc = 0; /* "<s>": conditions, spells no text */
        else
            rc = al_token(a, k, s);
        if (rc < 0)
            return -1;
        if (rc == 1)
            break;
    }
    if (al_close(a, NULL, 0) < 0)
        return -1;
    if (a->pos < a->len) {
        char q[80];
        a->short_end = 1;
        snprintf(a->msg, a->cap, "the server's echoed tokens end at byte %zu "
                 "of %zu: the last %zu bytes of the prompt (\"%s\") have no "
                 "log-prob", a->pos, a->len, a->len - a->pos,
                 quote(a->p + a->pos, a->len - a->pos, q));
        return -1;
    }
    return k;
}

/* text_offset: integers, never decreasing, never ahead of the text that
 * the tokens before them spell (vLLM's offsets are exactly that sum; true
 * positions are at most it, a split character shows as several U+FFFD). */
static int check_offsets(const cJSON *off, const cJSON *tokens, char *msg,
                         size_t cap)
{
    double first = 0, prev = 0, spelled = 0;
    const cJSON *o = off->child, *t = tokens->child;
    for (int k = 0; o && t; k++, o = o->next, t = t->next) {
        double v = o->valuedouble;
        if (!cJSON_IsNumber(o) || v < 0 || v != floor(v) || v > 1e15) {
            snprintf(msg, cap, "the server's text_offset[%d] is not an offset", k);
            return -1;
        }
        if (k == 0)
            first = prev = v;
        if (v < prev || v > first + spelled) {
            snprintf(msg, cap, "the server's text_offset[%d] = %.0f does not "
                     "follow its tokens (the one before is %.0f, the tokens "
                     "before it spell %.0f characters from %.0f)", k, v, prev,
                     spelled, first);
            return -1;
        }
        prev = v;
        spelled += (double)utf8_count(t->valuestring, strlen(t->valuestring));
    }
    return 0;
}

/* The four parallel arrays of an echo, checked for shape; n their length.
 * Missing arrays, or log-probs for fewer tokens than the echo shows, are
 * what the server cannot do (OA_LIMIT). */
static int ll_arrays(const cJSON *lp, const cJSON *arr[4], int *n, char *msg,
                     size_t cap)
{
    static const char *const name[4] = {"tokens", "token_logprobs",
                                        "top_logprobs", "text_offset"};
    for (int j = 0; j < 4; j++)
        if (!cJSON_IsArray(arr[j] = get(lp, name[j]))) {
            snprintf(msg, cap, "the server returned no prompt log-probs "
                     "(choices[0].logprobs.%s is missing for echo=true, "
                     "logprobs=1)", name[j]);
            return OA_LIMIT;
        }
    *n = cJSON_GetArraySize(arr[0]);
    for (int j = 1; j < 4; j++)
        if (cJSON_GetArraySize(arr[j]) != *n) {
            snprintf(msg, cap, "the server's logprobs arrays differ in length: "
                     "%d tokens, %d %s", *n, cJSON_GetArraySize(arr[j]), name[j]);
            return OA_LIMIT;
        }
    int k = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, arr[0]) {
        if (!cJSON_IsString(t)) {
            snprintf(msg, cap, "the server's logprobs.tokens[%d] is not a string", k);
            return -1;
        }
        k++;
    }
    return check_offsets(arr[3], arr[0], msg, cap);
}

/* usage.NAME when the server sent a count, else -1. */
static int usage_count(const cJSON *json, const char *name)
{
    const cJSON *v = get(get(json, "usage"), name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9
               ? (int)v->valuedouble : -1;
}

/* The counts agree: the prompt's tokens and the generated ones make up
 * the echo (usage when the server sent it, else at most max_tokens).
 * max_tokens < 0: the tokens are the prompt's alone (prompt_logprobs). */
static int ll_counts(const cJSON *json, int n, int n_prompt, int max_tokens,
                     char *msg, size_t cap)
{
    int up = usage_count(json, "prompt_tokens");
    int uc = max_tokens < 0 ? 0 : usage_count(json, "completion_tokens");
    if (up >= 0 && up != n_prompt) {
        snprintf(msg, cap, "the server's usage.prompt_tokens is %d but its "
                 "tokens spell the prompt in %d", up, n_prompt);
        return -1;
    }
    if (uc >= 0 ? n - n_prompt != uc : n - n_prompt > max_tokens) {
        snprintf(msg, cap, "the server echoed %d tokens after the prompt's %d "
                 "but generated %d (usage.completion_tokens %s, max_tokens %d)",
                 n - n_prompt, n_prompt, uc >= 0 ? uc : max_tokens,
                 uc >= 0 ? "says so" : "absent", max_tokens);
        return -1;
    }
    return 0;
}

/* The prompt's tokens as the server scored them, however it was asked:
 * each token's text, its log-prob and the best log-prob at its position
 * (NAN: none sent). */
typedef struct ll_toks {
    int n;
    const char **texts;
    double *lp, *best;
    char *first;      /* malloc'd text of token 0 when we worked it out */
} ll_toks;

static void toks_init(ll_toks *t, int n)
{
    *t = (ll_toks){.n = n};
    t->texts = em_calloc((size_t)n + 1, sizeof *t->texts);
    t->lp = em_malloc(sizeof(double) * ((size_t)n + 1));
    t->best = em_malloc(sizeof(double) * ((size_t)n + 1));
}

static void toks_free(ll_toks *t)
{
    free(t->texts);
    free(t->lp);
    free(t->best);
    free(t->first);
}

/* Sums the continuation's tokens: those that start at or after the
 * boundary and inside the prompt. A token that starts in the context and
 * reaches into the continuation counts for the context (the text_offset
 * rule this backend always used). */
static int ll_sum(const aligner *a, const ll_toks *t, int n_prompt,
                  backend_ll_res *r, char *msg, size_t cap)
{
    double sum = 0;
    int ntok = 0, greedy = 1;
    for (int k = 0; k < n_prompt; k++) {
        if (a->at[k] < a->bound || a->at[k] >= a->len)
            continue;
        if (k == 0 && isnan(t->lp[k]) && is_start_text(t->texts[k]))
            continue; /* BOS of an empty context: it conditions, not scored */
        if (isnan(t->lp[k])) {
            snprintf(msg, cap, "the server gave no log-prob for prompt token "
                     "%d (byte %zu, in the continuation)%s", k, a->at[k],
                     k == 0 ? ": an empty context needs a model with a BOS "
                     "token" : "");
            return k == 0 ? -1 : OA_LIMIT;
        }
        if (isnan(t->best[k])) {
            snprintf(msg, cap, "top_logprobs[%d] is empty: cannot tell whether "
                     "the continuation is the greedy one", k);
            return -1;
        }
        sum += t->lp[k];
        greedy &= t->lp[k] >= t->best[k];
        ntok++;
    }
    if (ntok == 0 && a->len > a->bound) {
        snprintf(msg, cap, "the server echoed no tokens of the continuation "
                 "(does it support echo=true?)");
        return OA_LIMIT;
    }
    r->logprob = sum;
    r->n_tokens = ntok;
    r->is_greedy = greedy;
    return 0;
}

typedef struct ll_ctx {
    const backend_ll_req *req;
    backend_ll_res *res;
    char **prompt;    /* context + continuation, as sent */
    size_t *bound;    /* bytes of the prompt before the continuation */
    int max_tokens;   /* tokens the server may generate after the echo */
    int method;       /* LP_ECHO or LP_PLP */
} ll_ctx;

/* Aligns t with request i's prompt and sums its continuation. gen: the
 * tokens the server may add after the prompt's (-1: none, t is the
 * prompt's alone). */
static int ll_score(ll_ctx *c, int i, const cJSON *json, const ll_toks *t,
                    int gen, char *msg, size_t cap)
{
    aligner a;
    al_init(&a, c->prompt[i], strlen(c->prompt[i]), c->bound[i], t->n, msg, cap);
    int up = usage_count(json, "prompt_tokens");
    int np = echo_align(&a, t->texts, gen < 0 ? t->n : up <= t->n ? up : -1);
    int rc = np < 0 ? (a.short_end ? OA_LIMIT : -1)
             : ll_counts(json, t->n, np, gen, msg, cap) ? -1
             : ll_sum(&a, t, np, &c->res[i], msg, cap);
    al_free(&a);
    return rc;
}

static int take_echo(ll_ctx *c, int i, const cJSON *json, char *msg, size_t cap)
{
    const cJSON *arr[4];
    int n, rc = ll_arrays(choice0(json, "logprobs"), arr, &n, msg, cap);
    if (rc)
        return rc;
    ll_toks t;
    toks_init(&t, n);
    const cJSON *s = arr[0]->child, *l = arr[1]->child, *p = arr[2]->child;
    for (int k = 0; k < n; k++, s = s->next, l = l->next, p = p->next) {
        t.texts[k] = s->valuestring;
        t.lp[k] = cJSON_IsNumber(l) ? l->valuedouble : NAN;
        t.best[k] = top_value(p);
    }
    rc = ll_score(c, i, json, &t, c->max_tokens, msg, cap);
    toks_free(&t);
    return rc;
}

/* Fills t from vLLM's choices[0].prompt_logprobs: null for the first
 * token, then per position {"<id>": {logprob, rank, decoded_token}, ...}
 * whose first entry is the prompt's token and the rest the most likely
 * ones (vllm/v1/engine/logprobs.py, _make_logprob_dict). */
static int plp_read(const cJSON *arr, ll_toks *t, char *msg, size_t cap)
{
    int k = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        t->lp[k] = t->best[k] = NAN;
        if (k == 0 && cJSON_IsNull(e)) {
            k++;
            continue; /* nothing before it: its text is worked out later */
        }
        const cJSON *tok = cJSON_IsObject(e) ? e->child : NULL;
        const cJSON *lp = get(tok, "logprob"), *dt = get(tok, "decoded_token");
        if (!cJSON_IsNumber(lp) || !cJSON_IsString(dt)) {
            snprintf(msg, cap, "the server's prompt_logprobs[%d] has no "
                     "{logprob, decoded_token} for the prompt's token", k);
            return OA_LIMIT;
        }
        t->texts[k] = dt->valuestring;
        t->lp[k] = lp->valuedouble;
        t->best[k] = lp->valuedouble;
        for (const cJSON *o = tok->next; o; o = o->next) {
            const cJSON *v = get(o, "logprob");
            if (cJSON_IsNumber(v) && v->valuedouble > t->best[k])
                t->best[k] = v->valuedouble;
        }
        k++;
    }
    return 0;
}

/* The text of a first token the server did not show (prompt_logprobs
 * starts with null): the prompt bytes before those the other tokens
 * spell ("" for a start token). A U+FFFD piece stands for 1 to 4 bytes,
 * so each length the rest may spell is tried, fewest bytes first; -1
 * when none aligns. */
static int plp_first(const char *prompt, size_t bound, ll_toks *t)
{
    size_t len = strlen(prompt), lo = 0, hi = 0;
    for (int k = 1; k < t->n; k++)
        for (const char *p = t->texts[k]; *p;) {
            int ff = !strncmp(p, FFFD, 3);
            lo += 1;
            hi += ff ? 4 : 1;
            p += ff ? 3 : 1;
        }
    if (lo > len)
        return -1;
    char msg[256];
    for (size_t keep = len - lo + 1; keep-- > 0 && len - keep <= hi;) {
        free(t->first);
        t->first = em_malloc(keep + 1);
        memcpy(t->first, prompt, keep);
        t->first[keep] = '\0';
        t->texts[0] = t->first;
        aligner a;
        al_init(&a, prompt, len, bound, t->n, msg, sizeof msg);
        int ok = echo_align(&a, t->texts, t->n) == t->n;
        al_free(&a);
        if (ok)
            return 0;
    }
    return -1;
}

static int take_plp(ll_ctx *c, int i, const cJSON *json, char *msg, size_t cap)
{
    const cJSON *arr = choice0(json, "prompt_logprobs");
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (n == 0) {
        snprintf(msg, cap, "no choices[0].prompt_logprobs in the answer");
        return OA_LIMIT;
    }
    ll_toks t;
    toks_init(&t, n);
    int rc = plp_read(arr, &t, msg, cap);
    if (rc == 0 && !t.texts[0] && plp_first(c->prompt[i], c->bound[i], &t)) {
        snprintf(msg, cap, "the server's prompt_logprobs tokens (decoded_token) "
                 "do not spell the prompt");
        rc = -1;
    }
    if (rc == 0)
        rc = ll_score(c, i, json, &t, -1, msg, cap);
    toks_free(&t);
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

/* Marks method m limited with the reason job j failed, once. */
static void srv_limited(oa *o, int m, const oa_job *j)
{
    if (o->srv[m] == SRV_LIMITED)
        return;
    o->srv[m] = SRV_LIMITED;
    snprintf(o->srv_why[m], sizeof o->srv_why[m], "%s", j->error);
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

/* Generation log-probs as the server sent them: completions'
 * logprobs.token_logprobs (with logprobs.tokens), or the logprobs.content[]
 * entries {token, logprob} of chat and of llama.cpp's completions. */
typedef struct gen_lp {
    float *v;            /* NULL: the server sent none */
    const char **texts;  /* the tokens' texts, NULL when it sent none */
    int n;
    const char *where;   /* which field, for messages */
} gen_lp;

static int gen_lp_read(const cJSON *lp, gen_lp *g, char *msg, size_t cap)
{
    const cJSON *legacy = get(lp, "token_logprobs"), *content = get(lp, "content");
    const cJSON *arr = cJSON_IsArray(legacy) ? legacy : content;
    const cJSON *toks = cJSON_IsArray(legacy) ? get(lp, "tokens") : NULL;
    if (!cJSON_IsArray(arr))
        return 0; /* none at all: absent, not a failure */
    g->where = arr == legacy ? "logprobs.token_logprobs" : "logprobs.content[].logprob";
    g->n = cJSON_GetArraySize(arr);
    if (cJSON_IsArray(toks) && cJSON_GetArraySize(toks) != g->n) {
        snprintf(msg, cap, "the server sent %d logprobs.tokens but %d "
                 "logprobs.token_logprobs", cJSON_GetArraySize(toks), g->n);
        return -1;
    }
    g->v = em_malloc(sizeof(float) * ((size_t)g->n + 1));
    g->texts = em_calloc((size_t)g->n + 1, sizeof(char *));
    int all_texts = 1;
    const cJSON *e = arr->child, *t = cJSON_IsArray(toks) ? toks->child : NULL;
    for (int k = 0; k < g->n; k++, e = e->next, t = t ? t->next : NULL) {
        const cJSON *x = arr == legacy ? e : get(e, "logprob");
        const cJSON *s = arr == legacy ? t : get(e, "token");
        if (!cJSON_IsNumber(x)) {
            snprintf(msg, cap, "the server's %s has no number for generated "
                     "token %d: its log-probs do not cover the generation",
                     g->where, k);
            return -1;
        }
        g->v[k] = (float)x->valuedouble;
        g->texts[k] = cJSON_IsString(s) ? s->valuestring : NULL;
        all_texts &= g->texts[k] != NULL;
    }
    if (!all_texts) { /* texts for every token or for none */
        free(g->texts);
        g->texts = NULL;
    }
    return 0;
}

static void gen_lp_free(gen_lp *g)
{
    free(g->v);
    free(g->texts);
}

/* Whether the tokens' texts spell exactly text (U+FFFD pieces allowed, as
 * for an echo). */
static int texts_spell(const char *const *texts, int n, const char *text)
{
    char msg[256];
    aligner a;
    size_t len = strlen(text);
    al_init(&a, text, len, len, n, msg, sizeof msg);
    int ok = echo_align(&a, texts, n) == n;
    al_free(&a);
    return ok;
}

/* The log-probs cover every generated token: as many as the server says
 * it generated (usage.completion_tokens, else the log-probs are the
 * count). llama.cpp leaves out the tokens of a stop string it matched, and
 * the string too: fewer log-probs are accepted after a stop when their
 * texts spell the whole text the server returned, and n_tokens counts the
 * tokens behind that text. */
static int gen_cover(const cJSON *json, gen_lp *g, const char *text,
                     int finish, backend_gen_res *r, char *msg, size_t cap)
{
    int uc = usage_count(json, "completion_tokens");
    int want = uc >= 0 ? uc : g->n;
    if (g->n == want || (g->n < want && finish == BACKEND_FINISH_STOP &&
                         g->texts && texts_spell(g->texts, g->n, text))) {
        r->n_tokens = g->n;
        r->sum_logprob = 0;
        for (int k = 0; k < g->n; k++)
            r->sum_logprob += g->v[k];
        r->token_logprobs = g->v;
        g->v = NULL; /* r owns it now */
        return 0;
    }
    snprintf(msg, cap, "the server sent %d generation log-prob%s (%s) for %d "
             "generated tokens (usage.completion_tokens): they do not cover "
             "the generation", g->n, g->n == 1 ? "" : "s", g->where, want);
    return -1;
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
    const cJSON *text = c->chat ? get(choice0(json, "message"), "content")
                                : choice0(json, "text");
    if (!cJSON_IsString(text)) {
        snprintf(msg, cap, "the answer has no choices[0].%s string",
                 c->chat ? "message.content" : "text");
        return -1;
    }
    r->finish = finish_of(choice0(json, "finish_reason"));
    r->truncated = 0; /* a server does not say */
    int uc = usage_count(json, "completion_tokens");
    r->n_tokens = uc >= 0 ? uc : 0;
    gen_lp g = {0};
    int rc = gen_lp_read(choice0(json, "logprobs"), &g, msg, cap);
    if (rc == 0 && g.v)
        rc = gen_cover(json, &g, text->valuestring, r->finish, r, msg, cap);
    gen_lp_free(&g);
    if (rc)
        return -1;
    r->text = raw_text(choice0(json, "emerge_text_hex"));
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

/*
 * serve.c - the OpenAI-compatible server (see serve.h).
 *
 * Why libmicrohttpd rather than hand-written HTTP: it parses requests
 * robustly (chunked bodies, pipelining, slow clients, header limits),
 * and its thread-per-connection mode lets a handler simply block until
 * the model worker has answered, which keeps this file about requests and
 * models instead of sockets.
 *
 * Flow: a connection thread reads the body (bounded), parses and checks
 * it, tokenises the prompts (backend_tokenize may be called from any
 * thread) and queues one sv_req. The single worker thread owns the model:
 * it takes the whole queue and hands every prompt in it to the backend as
 * one backend_complete batch (the backend shares prefixes), and wakes the
 * waiting handlers, which build their JSON answers.
 *
 * Errors come back as {"error": {"message", "type", "code"}} with 400 for
 * bad requests (naming the field), 404/405 for wrong routes, 408 for a
 * request that did not arrive in time, 413 for a body over the limit, 431
 * for a head over SV_MAX_HEAD, 500 when the model failed and 501 when the
 * backend has no token-level completion (backend_can_complete). What MHD
 * refuses before calling us keeps MHD's own body (README lists it).
 *
 * Against clients that hold connections without finishing a request:
 * limits in all and per address (MHD), MHD's idle timeout, and a deadline
 * per request enforced by a reaper thread (see sv_sock). A connection
 * thread waiting for the model is not subject to either.
 */
#include "harness/serve/serve.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "backends/backend.h"

#define SV_MAX_STOP 16
#define SV_MAX_HEAD 16384         /* request line + headers, bytes */

typedef struct sv_item {
    int32_t *toks;
    int n;
    const char *prompt;          /* string prompts: the text (in req's JSON) */
    backend_cmpl_res res;        /* what the backend answered */
} sv_item;

typedef struct sv_req {
    int chat;
    int echo;
    int logprobs;                /* -1: none; else top entries (0..5) */
    int max_tokens;
    double temperature, top_p;
    uint64_t seed;
    const char *stop[SV_MAX_STOP];
    int n_stop;
    cJSON *json;                 /* owns the strings above */
    sv_item *items;
    int n_items;
    int done;
    struct sv_req *next;
} sv_req;

struct serve {
    serve_opts o;
    char *name;
    backend *b;
    struct MHD_Daemon *d;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    sv_req *head, *tail;
    int stopping;
    serve_stats st;
    int port;
    long next_id;
    /* The request deadline (see sv_sock): open connections, guarded by
     * sock_mu, and the thread that enforces it. */
    pthread_mutex_t sock_mu;
    pthread_cond_t reap_cv;
    struct sv_sock *socks;
    int reaper_stop;
    pthread_t reaper;
};

/* Per-request state: the body read so far. */
typedef struct sv_conn {
    em_buf body;
    int seen;                    /* the handler has had its first call */
    int too_big;
    int replied;
} sv_conn;

/* One open socket (MHD's socket context). MHD's idle timeout cannot stop
 * a client that sends one byte a second, so each socket also has a
 * deadline: --timeout seconds from being opened, or from its previous
 * answer, to deliver a whole request. The reaper thread closes sockets
 * past it: with a JSON 408 when a request line has arrived, silently when
 * nothing has (an idle keep-alive connection, which is what MHD's idle
 * timeout does too). */
typedef struct sv_sock {
    int fd;
    uint64_t deadline_ms;        /* monotonic; 0: none (being answered) */
    int partial;                 /* a request line has arrived */
    struct sv_sock *prev, *next;
} sv_sock;

/* ------------------------------------------------------------- helpers */

static long count_cp(const char *s, size_t n)
{
    long c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
               : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
               : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, above U+10FFFF */
    return len;
}

/* s[0..n) as valid UTF-8 (JSON must be): a byte that starts no valid
 * sequence - half a character from a byte-fallback token - becomes
 * U+FFFD, as it does in Python's decode(errors="replace"). Malloc'd. */
static char *utf8_clean(const char *s, size_t n)
{
    em_buf b = {0};
    for (size_t i = 0; i < n;) {
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (len && s[i]) {
            em_buf_put(&b, s + i, len);
            i += len;
        } else {
            em_buf_puts(&b, s[i] ? "\xEF\xBF\xBD" : "");
            i++;
        }
    }
    return b.s ? em_buf_take(&b) : em_strdup("");
}

static cJSON *json_text(const char *s, size_t n)
{
    char *c = utf8_clean(s, n);
    cJSON *j = cJSON_CreateString(c);
    free(c);
    return j;
}

/* When text is not valid UTF-8, the JSON text shows U+FFFD; emerge's own
 * client reads the exact bytes from "emerge_text_hex" instead, so that a
 * generation through the server is byte for byte the native backend's. */
static void add_raw_text(cJSON *choice, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] && utf8_len((const unsigned char *)s + i, n - i))
        i += utf8_len((const unsigned char *)s + i, n - i);
    if (i == n)
        return;
    char *hex = em_malloc(2 * n + 1);
    for (size_t k = 0; k < n; k++)
        snprintf(hex + 2 * k, 3, "%02x", (unsigned char)s[k]);
    cJSON_AddStringToObject(choice, "emerge_text_hex", hex);
    free(hex);
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static int is_int(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
           fabs(v->valuedouble) < 9e18;
}

/* OpenAI's error shape; "code" is the HTTP status. */
static char *error_json(unsigned status, const char *msg)
{
    const char *type = status == 404 ? "not_found_error"
                     : status == 408 ? "timeout_error"
                     : status == 413 || status == 431 ? "request_too_large"
                     : status >= 500 ? "server_error" : "invalid_request_error";
    cJSON *o = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddNumberToObject(e, "code", status);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void req_free(sv_req *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_items; i++) {
        sv_item *it = &r->items[i];
        free(it->toks);
        backend_cmpl_res_clear(&it->res);
    }
    free(r->items);
    cJSON_Delete(r->json);
    free(r);
}

/* ------------------------------------------------------- request parsing */

static int bad(char *msg, size_t cap, const char *fmt, const char *field)
{
    snprintf(msg, cap, fmt, field);
    return -1;
}

/* The raw text of the body's top-level members. cJSON keeps numbers as
 * doubles, which would round a 64-bit seed (and change every sample drawn
 * from it); the digits are read here instead. Only called on a body that
 * cJSON has parsed, so strings and brackets are known to be well formed;
 * whitespace is what cJSON skips (any byte <= 32). */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= 32)
        p++;
    return p;
}

static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++)
        if (*p == '\\')
            p++;
    return p < end ? p + 1 : end;
}

static const char *skip_value(const char *p, const char *end)
{
    if (p < end && *p == '"')
        return skip_string(p, end);
    if (p < end && (*p == '{' || *p == '[')) {
        int depth = 0;
        while (p < end) {
            if (*p == '"') {
                p = skip_string(p, end);
                continue;
            }
            depth += (*p == '{' || *p == '[') - (*p == '}' || *p == ']');
            p++;
            if (depth == 0)
                break;
        }
        return p;
    }
    while (p < end && (unsigned char)*p > 32 && *p != ',' && *p != '}' &&
           *p != ']')
        p++;
    return p;
}

/* Whether the JSON string k[0..n) (quotes included) spells key; escaped
 * keys ("se\u0065d") are decoded by cJSON, as the parse did. */
static int key_is(const char *k, size_t n, const char *key)
{
    if (!memchr(k, '\\', n))
        return n == strlen(key) + 2 && !memcmp(k + 1, key, n - 2);
    cJSON *j = cJSON_ParseWithLength(k, n);
    int same = cJSON_IsString(j) && !strcmp(j->valuestring, key);
    cJSON_Delete(j);
    return same;
}

/* The first top-level member named key, as cJSON_GetObjectItem finds it:
 * its value's text in [*val, *vend). Nested objects (a chat message's
 * "seed") are skipped whole. */
static int raw_member(const char *body, size_t len, const char *key,
                      const char **val, const char **vend)
{
    const char *end = body + len, *p = body;
    if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3))
        p += 3; /* cJSON skips a UTF-8 byte order mark */
    p = skip_ws(p, end);
    if (p >= end || *p != '{')
        return -1;
    for (p = skip_ws(p + 1, end); p < end && *p == '"';) {
        const char *k = p;
        p = skip_string(p, end);
        int match = key_is(k, (size_t)(p - k), key);
        p = skip_ws(skip_ws(p, end) + 1, end); /* past the ':' */
        const char *v = p;
        p = skip_value(p, end);
        if (match) {
            *val = v;
            *vend = p;
            return 0;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
    }
    return -1;
}

/* seed: an integer in [0, 2^64 - 1] written with digits. Read from its
 * text, exactly: as a double, 2^64 - 1 and 2^64 are the same number. */
static int parse_seed(sv_req *r, const cJSON *v, const char *body, size_t len,
                      char *msg, size_t cap)
{
    const char *a = NULL, *b = NULL;
    uint64_t x = 0;
    int ok = cJSON_IsNumber(v) && raw_member(body, len, "seed", &a, &b) == 0 &&
             a < b;
    for (const char *p = a; ok && p < b; p++) {
        unsigned d = (unsigned)(*p - '0');
        ok = d <= 9 && x <= (UINT64_MAX - d) / 10;
        x = x * 10 + d;
    }
    if (!ok)
        return bad(msg, cap, "'%s' must be an integer in [0, "
                   "18446744073709551615], written with digits", "seed");
    r->seed = x;
    return 0;
}

static int parse_stop(sv_req *r, const cJSON *v, char *msg, size_t cap)
{
    if (!v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsString(v)) {
        r->stop[r->n_stop++] = v->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > SV_MAX_STOP)
        return bad(msg, cap, "'%s' must be a string or a list of at most 16 "
                   "strings", "stop");
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e))
            return bad(msg, cap, "'%s' must hold strings", "stop");
        if (*e->valuestring)
            r->stop[r->n_stop++] = e->valuestring;
    }
    return 0;
}

/* Sampling fields common to both endpoints. */
static int parse_sampling(serve *s, sv_req *r, const char *body, size_t len,
                          char *msg, size_t cap)
{
    const cJSON *j = r->json, *v;
    if ((v = get(j, "n")) && !cJSON_IsNull(v) && !(is_int(v) && v->valuedouble == 1))
        return bad(msg, cap, "'%s' must be 1 (one completion per prompt)", "n");
    if (cJSON_IsTrue(get(j, "stream")))
        return bad(msg, cap, "'%s' is not supported: answers come whole", "stream");
    r->max_tokens = 16;
    if (!(v = get(j, "max_tokens")) || cJSON_IsNull(v))
        v = get(j, "max_completion_tokens");
    if (v && !cJSON_IsNull(v)) {
        if (!is_int(v) || v->valuedouble < 0 || v->valuedouble > s->o.max_tokens) {
            snprintf(msg, cap, "'max_tokens' must be an integer in [0, %d]",
                     s->o.max_tokens);
            return -1;
        }
        r->max_tokens = (int)v->valuedouble;
    }
    r->temperature = 1;
    if ((v = get(j, "temperature")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 100)
            return bad(msg, cap, "'%s' must be a number >= 0", "temperature");
        r->temperature = v->valuedouble;
    }
    r->top_p = 1;
    if ((v = get(j, "top_p")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0 && v->valuedouble <= 1))
            return bad(msg, cap, "'%s' must be a number in (0, 1]", "top_p");
        r->top_p = v->valuedouble;
    }
    r->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
    if ((v = get(j, "seed")) && !cJSON_IsNull(v) &&
        parse_seed(r, v, body, len, msg, cap))
        return -1;
    return parse_stop(r, get(j, "stop"), msg, cap);
}

/* One prompt given as text: tokens as the backend makes them. */
static int add_text(serve *s, sv_item *it, const char *text, em_err *err)
{
    it->prompt = text;
    return backend_tokenize(s->b, text, &it->toks, &it->n, err);
}

static int add_ids(serve *s, sv_item *it, const cJSON *arr, char *msg, size_t cap)
{
    int n = cJSON_GetArraySize(arr), V = s->b->info.n_vocab;
    if (n == 0)
        return bad(msg, cap, "'%s' holds an empty list of token ids", "prompt");
    it->toks = em_malloc(sizeof(int32_t) * (size_t)n);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (!is_int(e) || e->valuedouble < 0 || e->valuedouble >= V) {
            snprintf(msg, cap, "'prompt': token ids must be integers in "
                     "[0, %d)", V);
            return -1;
        }
        it->toks[it->n++] = (int32_t)e->valuedouble;
    }
    return 0;
}

/* prompt: "text" | ["text", ...] | [id, ...] | [[id, ...], ...] */
static int parse_prompts(serve *s, sv_req *r, const cJSON *p, char *msg,
                         size_t cap)
{
    const cJSON *list[1] = {p};
    int n = 1, ids_one = 0;
    if (cJSON_IsArray(p)) {
        n = cJSON_GetArraySize(p);
        ids_one = n > 0 && cJSON_IsNumber(p->child);
        if (ids_one)
            n = 1;
    } else if (!cJSON_IsString(p)) {
        return bad(msg, cap, "'%s' must be a string, a list of strings or "
                   "token ids", "prompt");
    }
    if (n == 0 || n > s->o.max_prompts) {
        snprintf(msg, cap, "'prompt' must hold 1 to %d prompts", s->o.max_prompts);
        return -1;
    }
    r->items = em_calloc((size_t)n, sizeof *r->items);
    const cJSON *e = cJSON_IsArray(p) && !ids_one ? p->child : list[0];
    for (int i = 0; i < n; i++, e = e->next) {
        sv_item *it = &r->items[r->n_items++];
        em_err err;
        if (cJSON_IsString(e)) {
            if (add_text(s, it, e->valuestring, &err)) {
                snprintf(msg, cap, "'prompt': %.400s", err.msg);
                return -1;
            }
        } else if (cJSON_IsArray(e)) {
            if (add_ids(s, it, e, msg, cap))
                return -1;
        } else {
            return bad(msg, cap, "'%s' entries must be strings or lists of "
                       "token ids", "prompt");
        }
        int room = s->b->info.n_ctx - (r->max_tokens > 0);
        if (it->n > room) {
            snprintf(msg, cap, "'prompt' %d has %d tokens; at most %d fit the "
                     "context with max_tokens %d", i, it->n, room, r->max_tokens);
            return -1;
        }
    }
    return 0;
}

static int parse_completion(serve *s, sv_req *r, char *msg, size_t cap)
{
    const cJSON *j = r->json, *v;
    if ((v = get(j, "echo")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v))
            return bad(msg, cap, "'%s' must be true or false", "echo");
        r->echo = cJSON_IsTrue(v);
    }
    r->logprobs = -1;
    if ((v = get(j, "logprobs")) && !cJSON_IsNull(v)) {
        if (!is_int(v) || v->valuedouble < 0 || v->valuedouble > BACKEND_TOPK)
            return bad(msg, cap, "'%s' must be an integer in [0, 5]", "logprobs");
        r->logprobs = (int)v->valuedouble;
    }
    if (!(v = get(j, "prompt")))
        return bad(msg, cap, "missing required field '%s'", "prompt");
    return parse_prompts(s, r, v, msg, cap);
}

/* Chat: the contents of the messages, joined by newlines, as one plain
 * prompt (this engine has no chat template). */
static int parse_chat(serve *s, sv_req *r, char *msg, size_t cap)
{
    const cJSON *j = r->json, *v, *m;
    r->logprobs = -1;
    if ((v = get(j, "logprobs")) && cJSON_IsTrue(v)) {
        r->logprobs = 0;
        if ((v = get(j, "top_logprobs")) && !cJSON_IsNull(v)) {
            if (!is_int(v) || v->valuedouble < 0 || v->valuedouble > BACKEND_TOPK)
                return bad(msg, cap, "'%s' must be an integer in [0, 5]",
                           "top_logprobs");
            r->logprobs = (int)v->valuedouble;
        }
    }
    if (!cJSON_IsArray(v = get(j, "messages")) || cJSON_GetArraySize(v) == 0)
        return bad(msg, cap, "'%s' must be a non-empty list", "messages");
    em_buf text = {0};
    cJSON_ArrayForEach(m, v) {
        const cJSON *c = get(m, "content");
        if (!cJSON_IsString(c)) {
            em_buf_free(&text);
            return bad(msg, cap, "'%s' entries need a string 'content'", "messages");
        }
        if (text.len)
            em_buf_putc(&text, '\n');
        em_buf_puts(&text, c->valuestring);
    }
    /* Kept in the request's JSON so that it is freed with it. */
    cJSON *keep = cJSON_AddStringToObject(r->json, "_emerge_prompt",
                                          text.s ? text.s : "");
    em_buf_free(&text);
    return parse_prompts(s, r, keep, msg, cap);
}

static sv_req *parse_request(serve *s, const char *body, size_t len, int chat,
                             char *msg, size_t cap)
{
    sv_req *r = em_calloc(1, sizeof *r);
    r->chat = chat;
    const char *end = NULL;
    r->json = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    int rc = -1;
    const char *rest = r->json ? body + len : NULL;
    while (r->json && end < rest && *end && strchr(" \t\r\n", *end))
        end++; /* JSON's whitespace only */
    if (!r->json) {
        long at = end ? (long)(end - body) : 0;
        snprintf(msg, cap, "malformed JSON in the request body at byte %ld", at);
    } else if (end != rest) {
        snprintf(msg, cap, "the request body has bytes after its JSON value, "
                 "at byte %ld", (long)(end - body));
    } else if (!cJSON_IsObject(r->json)) {
        rc = bad(msg, cap, "the request body must be a JSON %s", "object");
    } else {
        rc = parse_sampling(s, r, body, len, msg, cap);
        if (rc == 0)
            rc = chat ? parse_chat(s, r, msg, cap) : parse_completion(s, r, msg, cap);
    }
    if (rc != 0) {
        req_free(r);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------- the worker */

/* Runs every prompt of a list of requests in one backend batch: the
 * backend may reorder them and share prefixes (native_complete.c). */
static void run_batch(serve *s, sv_req *list)
{
    int n = 0, k = 0;
    long ptok = 0, ctok = 0, branched = 0;
    for (sv_req *r = list; r; r = r->next)
        n += r->n_items;
    backend_cmpl_req *req = em_calloc((size_t)(n ? n : 1), sizeof *req);
    backend_cmpl_res *res = em_calloc((size_t)(n ? n : 1), sizeof *res);
    for (sv_req *r = list; r; r = r->next)
        for (int i = 0; i < r->n_items; i++)
            req[k++] = (backend_cmpl_req){
                .toks = r->items[i].toks, .n_toks = r->items[i].n,
                .score_prompt = r->echo && r->logprobs >= 0,
                .max_tokens = r->max_tokens, .temperature = r->temperature,
                .top_p = r->top_p, .seed = r->seed, .stop = r->stop,
                .n_stop = r->n_stop};
    em_err err;
    if (backend_complete(s->b, req, res, n, &err))
        for (int i = 0; i < n; i++)
            snprintf(res[i].error, sizeof res[i].error, "%.255s", err.msg);
    k = 0;
    for (sv_req *r = list; r; r = r->next)
        for (int i = 0; i < r->n_items; i++, k++) {
            r->items[i].res = res[k];
            ptok += r->items[i].n;
            ctok += res[k].n_gen;
            branched += res[k].shared;
        }
    free(req);
    free(res);
    pthread_mutex_lock(&s->mu);
    s->st.batches++;
    s->st.prompts += n;
    s->st.branched += branched;
    s->st.prompt_tokens += ptok;
    s->st.completion_tokens += ctok;
    for (sv_req *r = list; r; r = r->next)
        r->done = 1;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    serve *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->head)
            break;
        sv_req *list = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, list); /* takes the lock itself at the end */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queues r and waits until the worker has run it. */
static void submit(serve *s, sv_req *r)
{
    pthread_mutex_lock(&s->mu);
    r->next = NULL;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    pthread_cond_signal(&s->work_cv);
    while (!r->done)
        pthread_cond_wait(&s->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------- answers */

/* The text of each prompt token, and its offset (code points) in the
 * prompt text. SentencePiece vocabularies put a space before the first
 * word that the prompt does not have: the decoded tokens are then longer
 * than the prompt by that prefix, which the offsets and texts drop. */
typedef struct sv_pieces {
    char **text;
    long *off;
    const char *base;   /* the prompt text the offsets index */
    size_t base_len;
    em_buf all;
} sv_pieces;

static void pieces_build(serve *s, const sv_item *it, sv_pieces *p)
{
    size_t *start = em_malloc(sizeof(size_t) * (size_t)it->n);
    p->text = em_calloc((size_t)it->n, sizeof *p->text);
    p->off = em_calloc((size_t)it->n, sizeof *p->off);
    memset(&p->all, 0, sizeof p->all);
    for (int i = 0; i < it->n; i++) {
        char piece[256];
        int len = backend_token_text(s->b, it->toks[i], piece, sizeof piece);
        start[i] = p->all.len;
        em_buf_put(&p->all, piece, (size_t)(len < 256 ? len : 255));
    }
    size_t shift = 0;
    p->base = p->all.s ? p->all.s : "";
    p->base_len = p->all.len;
    if (it->prompt) {
        size_t pl = strlen(it->prompt);
        if (p->all.len >= pl && !memcmp(p->all.s + p->all.len - pl, it->prompt, pl))
            shift = p->all.len - pl;
        p->base = it->prompt;
        p->base_len = pl;
    }
    for (int i = 0; i < it->n; i++) {
        size_t b = start[i], e = i + 1 < it->n ? start[i + 1] : p->all.len;
        size_t from = b < shift ? (shift < e ? shift : e) : b;
        p->text[i] = em_strndup(p->all.s + from, e - from);
        size_t o = from >= shift ? from - shift : 0;
        p->off[i] = count_cp(p->base, o < p->base_len ? o : p->base_len);
    }
    free(start);
}

static void pieces_free(sv_pieces *p, int n)
{
    for (int i = 0; i < n; i++)
        free(p->text[i]);
    free(p->text);
    free(p->off);
    em_buf_free(&p->all);
}

static cJSON *top_object(serve *s, const backend_tok_score *p, int k)
{
    cJSON *o = cJSON_CreateObject();
    for (int j = 0; j < k && p->top_id[j] >= 0; j++) {
        char piece[256];
        int len = backend_token_text(s->b, p->top_id[j], piece, sizeof piece);
        char *key = utf8_clean(piece, (size_t)(len < 256 ? len : 255));
        /* Two ids with the same text: keep the likelier (listed first). */
        if (!get(o, key))
            cJSON_AddNumberToObject(o, key, p->top_lp[j]);
        free(key);
    }
    return o;
}

/* Appends one token to the four logprobs arrays. */
static void add_token(serve *s, cJSON *const arr[4], const char *text, long off,
                      const backend_tok_score *p, int k)
{
    cJSON_AddItemToArray(arr[0], json_text(text, strlen(text)));
    cJSON_AddItemToArray(arr[1], p ? cJSON_CreateNumber(p->logprob) : cJSON_CreateNull());
    cJSON_AddItemToArray(arr[2], p ? top_object(s, p, k > 0 ? k : 1) : cJSON_CreateNull());
    cJSON_AddItemToArray(arr[3], cJSON_CreateNumber((double)off));
}

/* OpenAI's reasons: a full context ends a completion as its length does. */
static const char *finish_reason(const sv_item *it)
{
    return it->res.finish == BACKEND_FINISH_STOP ? "stop" : "length";
}

static void completion_choice(serve *s, const sv_req *r, const sv_item *it,
                              int index, cJSON *choices, long *ptoks)
{
    sv_pieces pc;
    pieces_build(s, it, &pc);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", index);
    em_buf text = {0};
    if (r->echo)
        em_buf_put(&text, pc.base, pc.base_len);
    em_buf_put(&text, it->res.text ? it->res.text : "", it->res.text_len);
    cJSON_AddItemToObject(c, "text", json_text(text.s ? text.s : "", text.len));
    add_raw_text(c, text.s ? text.s : "", text.len);
    em_buf_free(&text);
    if (r->logprobs < 0) {
        cJSON_AddNullToObject(c, "logprobs");
    } else {
        cJSON *lp = cJSON_AddObjectToObject(c, "logprobs");
        cJSON *arr[4] = {cJSON_AddArrayToObject(lp, "tokens"),
                         cJSON_AddArrayToObject(lp, "token_logprobs"),
                         cJSON_AddArrayToObject(lp, "top_logprobs"),
                         cJSON_AddArrayToObject(lp, "text_offset")};
        for (int i = 0; r->echo && i < it->n; i++)
            add_token(s, arr, pc.text[i], pc.off[i], i ? &it->res.prompt[i] : NULL,
                      r->logprobs);
        long off = count_cp(pc.base, pc.base_len);
        for (int i = 0; i < it->res.n_gen; i++) {
            char piece[256];
            int len = backend_token_text(s->b, it->res.gen[i], piece, sizeof piece);
            piece[len < 256 ? len : 255] = '\0';
            add_token(s, arr, piece, off, &it->res.gen_score[i], r->logprobs);
            off += count_cp(piece, strlen(piece));
        }
    }
    cJSON_AddStringToObject(c, "finish_reason", finish_reason(it));
    cJSON_AddItemToArray(choices, c);
    *ptoks += it->n;
    pieces_free(&pc, it->n);
}

static void chat_choice(serve *s, const sv_req *r, const sv_item *it,
                        cJSON *choices)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON *m = cJSON_AddObjectToObject(c, "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    const char *text = it->res.text ? it->res.text : "";
    cJSON_AddItemToObject(m, "content", json_text(text, it->res.text_len));
    add_raw_text(c, text, it->res.text_len);
    if (r->logprobs < 0) {
        cJSON_AddNullToObject(c, "logprobs");
    } else {
        cJSON *content = cJSON_AddArrayToObject(cJSON_AddObjectToObject(c, "logprobs"),
                                                "content");
        for (int i = 0; i < it->res.n_gen; i++) {
            char piece[256];
            const backend_tok_score *p = &it->res.gen_score[i];
            int len = backend_token_text(s->b, it->res.gen[i], piece, sizeof piece);
            piece[len < 256 ? len : 255] = '\0';
            cJSON *e = cJSON_CreateObject();
            cJSON_AddItemToObject(e, "token", json_text(piece, strlen(piece)));
            cJSON_AddNumberToObject(e, "logprob", p->logprob);
            cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
            for (int j = 0; j < r->logprobs && p->top_id[j] >= 0; j++) {
                cJSON *t = cJSON_CreateObject();
                len = backend_token_text(s->b, p->top_id[j], piece, sizeof piece);
                piece[len < 256 ? len : 255] = '\0';
                cJSON_AddItemToObject(t, "token", json_text(piece, strlen(piece)));
                cJSON_AddNumberToObject(t, "logprob", p->top_lp[j]);
                cJSON_AddItemToArray(top, t);
            }
            cJSON_AddItemToArray(content, e);
        }
    }
    cJSON_AddStringToObject(c, "finish_reason", finish_reason(it));
    cJSON_AddItemToArray(choices, c);
}

static char *answer_json(serve *s, const sv_req *r)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&s->mu);
    long id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    char ids[48];
    snprintf(ids, sizeof ids, "%s-%ld", r->chat ? "chatcmpl" : "cmpl", id);
    cJSON_AddStringToObject(o, "id", ids);
    cJSON_AddStringToObject(o, "object", r->chat ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(o, "created", (double)time(NULL));
    cJSON_AddStringToObject(o, "model", s->name);
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    long ptoks = 0, ctoks = 0;
    for (int i = 0; i < r->n_items; i++) {
        if (r->chat) {
            chat_choice(s, r, &r->items[i], choices);
            ptoks += r->items[i].n;
        } else {
            completion_choice(s, r, &r->items[i], i, choices, &ptoks);
        }
        ctoks += r->items[i].res.n_gen;
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)ptoks);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)ctoks);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(ptoks + ctoks));
    char *str = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return str;
}

static char *models_json(const serve *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", s->name);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "emerge");
    cJSON_AddNumberToObject(m, "n_ctx", s->b->info.n_ctx);
    cJSON_AddNumberToObject(m, "n_params", s->b->info.n_params);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "data"), m);
    char *str = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return str;
}

/* ------------------------------------------------- the request deadline */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static sv_sock *sock_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Sets the deadline of c's socket (0: none); partial as sock says. */
static void sock_set(serve *s, struct MHD_Connection *c, uint64_t deadline_ms,
                     int partial)
{
    sv_sock *k = sock_of(c);
    if (!k)
        return;
    pthread_mutex_lock(&s->sock_mu);
    k->deadline_ms = deadline_ms;
    k->partial = partial;
    pthread_mutex_unlock(&s->sock_mu);
}

static uint64_t sock_deadline(const serve *s)
{
    return now_ms() + (uint64_t)s->o.timeout * 1000;
}

/* MHD_OPTION_NOTIFY_CONNECTION: keeps the list of open sockets. MHD calls
 * CLOSED before it closes the descriptor, so the reaper, under sock_mu,
 * never touches a descriptor that has been closed (or reused). */
static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    serve *s = cls;
    sv_sock *k = *ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k = em_calloc(1, sizeof *k);
        k->fd = ci ? ci->connect_fd : -1;
        k->deadline_ms = k->fd >= 0 ? sock_deadline(s) : 0;
        pthread_mutex_lock(&s->sock_mu);
        k->next = s->socks;
        if (s->socks)
            s->socks->prev = k;
        s->socks = k;
        pthread_mutex_unlock(&s->sock_mu);
        *ctx = k;
    } else if (k) {
        pthread_mutex_lock(&s->sock_mu);
        if (k->prev)
            k->prev->next = k->next;
        else
            s->socks = k->next;
        if (k->next)
            k->next->prev = k->prev;
        pthread_mutex_unlock(&s->sock_mu);
        free(k);
        *ctx = NULL;
    }
}

/* Closes a socket past its deadline; called with sock_mu held. The
 * connection's thread is only reading (a socket being answered has no
 * deadline), so the 408 cannot mix with another answer; shutdown() wakes
 * that thread, which sees the end of the stream and closes as usual. */
static void sock_expire(serve *s, sv_sock *k)
{
    k->deadline_ms = 0;
    if (k->partial) {
        char msg[128], head[256];
        snprintf(msg, sizeof msg, "the request did not arrive whole within "
                 "%d s (--timeout)", s->o.timeout);
        char *json = error_json(408, msg);
        int n = snprintf(head, sizeof head, "HTTP/1.1 408 Request Timeout\r\n"
                         "Content-Type: application/json\r\nContent-Length: "
                         "%zu\r\nConnection: close\r\n\r\n", strlen(json));
        if (send(k->fd, head, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) == n)
            (void)!send(k->fd, json, strlen(json), MSG_DONTWAIT | MSG_NOSIGNAL);
        free(json);
        if (s->o.log)
            fprintf(stderr, "emerge serve: 408 %s\n", msg);
    }
    shutdown(k->fd, SHUT_RDWR);
}

static void *reaper_main(void *arg)
{
    serve *s = arg;
    pthread_mutex_lock(&s->sock_mu);
    while (!s->reaper_stop) {
        uint64_t now = now_ms();
        long expired = 0;
        for (sv_sock *k = s->socks; k; k = k->next)
            if (k->deadline_ms && k->deadline_ms <= now) {
                expired += k->partial;
                sock_expire(s, k);
            }
        if (expired) {
            pthread_mutex_lock(&s->mu);
            s->st.requests += expired;
            s->st.errors += expired;
            pthread_mutex_unlock(&s->mu);
        }
        /* A quarter second: the deadline is a bound, not a timer. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 250000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&s->reap_cv, &s->sock_mu, &ts);
    }
    pthread_mutex_unlock(&s->sock_mu);
    return NULL;
}

static int reaper_start(serve *s)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->reap_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->sock_mu, NULL);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0)
        return 0;
    pthread_cond_destroy(&s->reap_cv);
    pthread_mutex_destroy(&s->sock_mu);
    return -1;
}

/* After the daemon has stopped: every socket is closed by then. */
static void reaper_stop(serve *s)
{
    pthread_mutex_lock(&s->sock_mu);
    s->reaper_stop = 1;
    pthread_cond_signal(&s->reap_cv);
    pthread_mutex_unlock(&s->sock_mu);
    pthread_join(s->reaper, NULL);
    pthread_cond_destroy(&s->reap_cv);
    pthread_mutex_destroy(&s->sock_mu);
}

/* ---------------------------------------------------------------- HTTP */

static enum MHD_Result reply(serve *s, struct MHD_Connection *c, unsigned status,
                             char *json)
{
    sock_set(s, c, 0, 0); /* answering: the reaper must not write too */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(json), json, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    pthread_mutex_lock(&s->mu);
    s->st.requests++;
    s->st.errors += status >= 400;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static enum MHD_Result reply_error(serve *s, struct MHD_Connection *c,
                                   unsigned status, const char *msg)
{
    if (s->o.log)
        fprintf(stderr, "emerge serve: %u %s\n", status, msg);
    return reply(s, c, status, error_json(status, msg));
}

static enum MHD_Result do_completion(serve *s, struct MHD_Connection *c,
                                     sv_conn *cn, int chat)
{
    char msg[512];
    if (!backend_can_complete(s->b)) {
        snprintf(msg, sizeof msg, "the '%s' backend cannot answer completions "
                 "(it has no tokenize, token_text and complete ops)",
                 s->b->ops->name);
        return reply_error(s, c, 501, msg);
    }
    sv_req *r = parse_request(s, cn->body.s ? cn->body.s : "", cn->body.len,
                              chat, msg, sizeof msg);
    if (!r)
        return reply_error(s, c, 400, msg);
    /* Waiting for the model is not idleness: MHD would close the
     * connection once the answer is queued if the wait took longer than
     * its timeout. Switching the timeout off and on restarts its clock. */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    submit(s, r);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)s->o.timeout);
    for (int i = 0; i < r->n_items; i++)
        if (!r->items[i].res.ok) {
            snprintf(msg, sizeof msg, "prompt %d: %s", i, r->items[i].res.error);
            req_free(r);
            return reply_error(s, c, 500, msg);
        }
    char *json = answer_json(s, r);
    req_free(r);
    return reply(s, c, 200, json);
}

static int route_is(const char *url, const char *path)
{
    /* "/v1/x" or "/x": clients disagree on whether the base has /v1. */
    return !strcmp(url, path) || (!strncmp(url, "/v1", 3) && !strcmp(url + 3, path));
}

static enum MHD_Result add_len(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* The first call of a request: checks that need only the head. */
static enum MHD_Result on_head(serve *s, struct MHD_Connection *c,
                               const char *url, sv_conn *cn)
{
    size_t head = strlen(url);
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_len, &head);
    if (head > SV_MAX_HEAD) {
        cn->replied = 1;
        char msg[128];
        snprintf(msg, sizeof msg, "the request line and headers are over %d "
                 "bytes", SV_MAX_HEAD);
        return reply_error(s, c, 431, msg);
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
        cn->replied = 1;
        return reply_error(s, c, 413, "request body over the server's "
                           "--max-body limit");
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *up,
                                  size_t *up_size, void **con_cls)
{
    (void)version;
    serve *s = cls;
    sv_conn *cn = *con_cls;
    if (!cn->seen) {
        cn->seen = 1;
        return on_head(s, c, url, cn);
    }
    if (*up_size) {
        if (!cn->replied && cn->body.len + *up_size <= s->o.max_body)
            em_buf_put(&cn->body, up, *up_size);
        else
            cn->too_big = 1;
        *up_size = 0;
        return MHD_YES;
    }
    if (cn->replied)
        return MHD_YES;
    cn->replied = 1;
    sock_set(s, c, 0, 0); /* all here: no deadline while it is answered */
    if (cn->too_big)
        return reply_error(s, c, 413, "request body over the server's "
                           "--max-body limit");
    int post = !strcmp(method, "POST"), getm = !strcmp(method, "GET");
    if (route_is(url, "/completions") || route_is(url, "/chat/completions")) {
        if (!post)
            return reply_error(s, c, 405, "use POST");
        return do_completion(s, c, cn, route_is(url, "/chat/completions"));
    }
    if (!strcmp(url, "/health") || route_is(url, "/models")) {
        if (!getm)
            return reply_error(s, c, 405, "use GET");
        return reply(s, c, 200, url[1] == 'h' ? em_strdup("{\"status\":\"ok\"}")
                                              : models_json(s));
    }
    char msg[300];
    snprintf(msg, sizeof msg, "no route %.200s (try /v1/completions, "
             "/v1/chat/completions, /v1/models, /health)", url);
    return reply_error(s, c, 404, msg);
}

/* MHD_OPTION_URI_LOG_CALLBACK: a request line has arrived. Its state is
 * made here (the handler's *con_cls), so that on_completed frees it
 * whether or not MHD ever calls the handler. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    serve *s = cls;
    (void)uri;
    sv_sock *k = sock_of(c);
    if (k) {
        pthread_mutex_lock(&s->sock_mu);
        k->partial = k->deadline_ms != 0;
        pthread_mutex_unlock(&s->sock_mu);
    }
    return em_calloc(1, sizeof(sv_conn));
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    serve *s = cls;
    (void)toe;
    sv_conn *cn = *con_cls;
    /* Keep-alive: the next request has --timeout seconds from now. */
    sock_set(s, c, sock_deadline(s), 0);
    if (!cn)
        return;
    em_buf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
}

/* ------------------------------------------------------------ lifecycle */

static int listen_addr(const char *host, int port, struct sockaddr_storage *ss,
                       int *ipv6, em_err *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return em_errorf(err, "--host '%s': %s", host, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    if (*ipv6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

static int start_http(serve *s, em_err *err)
{
    struct sockaddr_storage ss;
    int ipv6 = 0;
    const char *host = s->o.host ? s->o.host : "127.0.0.1";
    if (listen_addr(host, s->o.port, &ss, &ipv6, err))
        return -1;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_AUTO | (ipv6 ? MHD_USE_IPv6 : 0);
    /* The per-address limit keeps one client from taking every slot; the
     * memory limit leaves room above SV_MAX_HEAD, so that a head a little
     * too large gets emerge's JSON 431 rather than MHD's own page. */
    s->d = MHD_start_daemon(flags, (uint16_t)s->o.port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_conns,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)s->o.max_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.timeout,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)SV_MAX_HEAD * 4,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_END);
    if (!s->d)
        return em_errorf(err, "cannot listen on %s:%d (address in use or not "
                         "local?)", host, s->o.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return 0;
}

static void model_name(serve *s)
{
    const char *n = s->o.model_name, *p = s->o.model_path;
    if (!n) {
        const char *slash = strrchr(p, '/');
        n = slash ? slash + 1 : p;
    }
    s->name = em_strdup(n);
}

static void set_defaults(serve_opts *o)
{
    if (!o->max_body)
        o->max_body = 1 << 20;
    if (o->max_tokens <= 0)
        o->max_tokens = 1024;
    if (o->max_prompts <= 0)
        o->max_prompts = 64;
    if (o->max_conns <= 0)
        o->max_conns = 512;
    if (o->max_per_ip <= 0)
        o->max_per_ip = 64;
    if (o->timeout <= 0)
        o->timeout = 10;
}

/* Each connection holds a descriptor: past the process's limit, accept()
 * would fail and the listen queue stall instead of the limit holding. */
static int check_fds(const serve_opts *o, em_err *err)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)o->max_conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < need)
        return em_errorf(err, "--max-conns %d needs about %llu open files; this "
                         "process may open %llu (raise it with ulimit -n, or "
                         "lower --max-conns)", o->max_conns,
                         (unsigned long long)need, (unsigned long long)rl.rlim_cur);
    return 0;
}

static void stop_worker(serve *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->worker, NULL);
}

/* The model as a backend spec: o's backend (native unless named) with
 * the server's threads and context as the spec's options. */
static int open_backend(serve *s, em_err *err)
{
    char threads[16], n_ctx[16];
    snprintf(threads, sizeof threads, "%d", s->o.threads);
    snprintf(n_ctx, sizeof n_ctx, "%d", s->o.n_ctx);
    backend_opt opts[] = {{"threads", threads}, {"n_ctx", n_ctx}};
    backend_spec spec = {.name = s->name,
                         .backend = (char *)(s->o.backend ? s->o.backend : "native"),
                         .path = (char *)s->o.model_path, .opts = opts,
                         .n_opts = 2};
    return backend_open(&spec, &s->b, err);
}

int serve_start(const serve_opts *o, serve **out, em_err *err)
{
    serve *s = em_calloc(1, sizeof *s);
    s->o = *o;
    set_defaults(&s->o);
    model_name(s);
    if (check_fds(&s->o, err) || open_backend(s, err)) {
        free(s->name);
        free(s);
        return -1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
        em_errorf(err, "cannot start the model worker thread");
        goto fail_worker;
    }
    if (reaper_start(s) != 0) {
        em_errorf(err, "cannot start the request deadline thread");
        goto fail_reaper;
    }
    if (start_http(s, err) == 0) {
        *out = s;
        return 0;
    }
    reaper_stop(s);
fail_reaper:
    stop_worker(s);
fail_worker:
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    backend_close(s->b);
    free(s->name);
    free(s);
    return -1;
}

int serve_port(const serve *s)
{
    return s->port;
}

void serve_get_stats(serve *s, serve_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

void serve_stop(serve *s)
{
    if (!s)
        return;
    /* Connection threads wait on the worker, so the worker runs until
     * the daemon (and every connection) is gone. */
    MHD_stop_daemon(s->d);
    reaper_stop(s);
    stop_worker(s);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    backend_close(s->b);
    free(s->name);
    free(s);
}

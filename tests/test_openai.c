/* test_openai.c - the "openai" client backend against a fault-injecting
 * HTTP server on loopback (a thread of this program): log-likelihoods from
 * echoed prompt log-probs, generations, 429 + Retry-After, 500s, hangs past
 * the client timeout, connections reset mid-body and malformed JSON are
 * retried; requests that finally fail come back failed (never scored), and
 * a sweep through the faulty server ends with exactly the scores of a
 * sweep through a clean one, each example scored once. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/openai.h"
#include "harness/family.h"
#include "harness/store.h"
#include "metrics/results.h"
#include "harness/sweep.h"
#include "tests/testlib.h"

/* ---- the fault server -------------------------------------------------- */

typedef enum fault_mode {
    FAULT_NONE,      /* every answer right */
    FAULT_PER_REQUEST, /* per request body: its first one or two attempts
                          get 429, 500, a hang, a reset or bad JSON */
    FAULT_PERSIST,     /* as above, and every 5th request fails until
                          `persist` is cleared (its sweep run gives up) */
    FAULT_429_ONCE,  /* first request 429 with Retry-After: 1 */
    FAULT_ALWAYS_500,
    FAULT_NO_LOGPROBS, /* a server that cannot echo prompt log-probs */
    FAULT_ECHO_SHORT,  /* echoed tokens stop one token before the end */
    FAULT_ECHO_VLLM,   /* vLLM's shape: "<s>" first, a multi-byte character
                          split into U+FFFD pieces, offsets that add up
                          the token texts */
    FAULT_GEN_SHORT,   /* 1 generation log-prob for 2 tokens */
    FAULT_GEN_NONE,    /* no generation log-probs at all */
    FAULT_GEN_CONTENT, /* completions with logprobs.content[] (llama.cpp) */
    FAULT_LLAMA_ECHO,  /* llama.cpp's server: echo is a 500 naming it */
    FAULT_LLAMA_ECHO2, /* the same, in the words of later sources */
    FAULT_ECHO_400,    /* echo a 400 naming it; vLLM's prompt_logprobs */
    FAULT_PLP_NOBOS,   /* as FAULT_ECHO_400, a model without a BOS token */
    /* Servers that each break one property the probe checks: */
    FAULT_NULL_MID,    /* token_logprobs[2] null */
    FAULT_OFFSETS_BAD, /* text_offset[3] goes back to 0 */
    FAULT_JITTER,      /* log-probs shift with every request (a cache) */
    FAULT_NONCAUSAL,   /* log-probs shift with the prompt's length */
} fault_mode;

typedef struct fsrv {
    int fd, port;
    fault_mode mode;
    pthread_t accept_th;
    volatile int stop;
    pthread_mutex_t mu;
    long count;
    char auth[256];
    double t[8];               /* times of the first requests */
    pthread_t conn_th[4096];
    int n_conn;
    volatile int persist;      /* FAULT_PERSIST: still failing */
    uint64_t seen[4096];       /* request body hashes ... */
    int tries[4096];           /* ... and the attempts at each */
    int n_seen, max_tries;
    int hit[10];               /* answers given per fault kind */
} fsrv;

typedef struct fconn {
    fsrv *s;
    int fd;
} fconn;

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, int status, const char *extra, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n", status, strlen(body), extra);
    send_all(fd, head, (size_t)n);
    send_all(fd, body, strlen(body));
}

/* The log-prob this fake model gives character c (one token per byte). */
static double fake_lp(unsigned char c)
{
    return -0.125 * (c % 13 + 1);
}

/* Digits are the "greedy" tokens; anything else has a likelier rival. */
static int fake_greedy(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static char *fake_echo(const char *prompt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *ch = cJSON_AddArrayToObject(o, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(ch, c);
    cJSON_AddStringToObject(c, "text", prompt);
    cJSON *lp = cJSON_AddObjectToObject(c, "logprobs");
    cJSON *tk = cJSON_AddArrayToObject(lp, "tokens"),
          *tl = cJSON_AddArrayToObject(lp, "token_logprobs"),
          *top = cJSON_AddArrayToObject(lp, "top_logprobs"),
          *off = cJSON_AddArrayToObject(lp, "text_offset");
    int chars = 0; /* offsets count characters, as OpenAI's do */
    for (size_t i = 0; prompt[i]; i++) {
        unsigned char b = (unsigned char)prompt[i];
        char t[2] = {prompt[i], 0};
        chars += (b & 0xC0) != 0x80;
        /* A byte of a multi-byte character is a piece: U+FFFD. */
        cJSON_AddItemToArray(tk, cJSON_CreateString(b < 0x80 ? t : "\xEF\xBF\xBD"));
        cJSON_AddItemToArray(off, cJSON_CreateNumber(chars - 1));
        if (i == 0) {
            cJSON_AddItemToArray(tl, cJSON_CreateNull());
            cJSON_AddItemToArray(top, cJSON_CreateNull());
            continue;
        }
        cJSON_AddItemToArray(tl, cJSON_CreateNumber(fake_lp(b)));
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, fake_greedy(b) ? t : "~",
                                fake_lp(b) + (fake_greedy(b) ? 0 : 0.5));
        cJSON_AddItemToArray(top, e);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* vLLM's echo: a "<s>" token, one token per ASCII character, and each
 * multi-byte character in two pieces (all its bytes but the last, then
 * the last), each of which decodes to one U+FFFD; the offsets add up the
 * token texts' lengths in code points. A piece's log-prob is fake_lp of
 * its last byte. */
static char *fake_echo_vllm(const char *prompt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), c);
    cJSON_AddStringToObject(c, "text", prompt);
    cJSON *lp = cJSON_AddObjectToObject(c, "logprobs");
    cJSON *tk = cJSON_AddArrayToObject(lp, "tokens"),
          *tl = cJSON_AddArrayToObject(lp, "token_logprobs"),
          *top = cJSON_AddArrayToObject(lp, "top_logprobs"),
          *off = cJSON_AddArrayToObject(lp, "text_offset");
    cJSON_AddItemToArray(tk, cJSON_CreateString("<s>"));
    cJSON_AddItemToArray(tl, cJSON_CreateNull());
    cJSON_AddItemToArray(top, cJSON_CreateNull());
    cJSON_AddItemToArray(off, cJSON_CreateNumber(0));
    int at = 3; /* "<s>" */
    for (size_t i = 0; prompt[i];) {
        unsigned char b = (unsigned char)prompt[i];
        size_t m = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        size_t cut[2] = {m == 1 ? 1 : m - 1, 1};
        for (int p = 0; p < (m == 1 ? 1 : 2); i += cut[p], p++) {
            char t[2] = {prompt[i], 0};
            const char *text = m == 1 ? t : "\xEF\xBF\xBD";
            unsigned char last = (unsigned char)prompt[i + cut[p] - 1];
            cJSON_AddItemToArray(tk, cJSON_CreateString(text));
            cJSON_AddItemToArray(tl, cJSON_CreateNumber(fake_lp(last)));
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "~", fake_lp(last) + 0.5);
            cJSON_AddItemToArray(top, e);
            cJSON_AddItemToArray(off, cJSON_CreateNumber(at));
            at += 1; /* each token text is one code point here */
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* vLLM's prompt_logprobs answer (CompletionResponseChoice.prompt_logprobs,
 * vllm/entrypoints/openai/protocol.py; the per-position dicts built by
 * _make_logprob_dict in vllm/v1/engine/logprobs.py, read on vLLM's main
 * branch as stored in Dec 2026, same shape since the V1 engine of 0.8):
 * null for the first token, then per token {"<id>": {logprob, rank,
 * decoded_token}} with the prompt's token first and the top-1 after it.
 * Tokens as in fake_echo_vllm: one per ASCII byte, a multi-byte character
 * in two U+FFFD pieces; bos: "<s>" (id 1) comes first. */
static char *fake_plp(const char *prompt, int bos)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "text_completion");
    cJSON_AddStringToObject(o, "model", "fake");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), c);
    cJSON_AddNumberToObject(c, "index", 0);
    cJSON_AddStringToObject(c, "text", "x");
    cJSON_AddNullToObject(c, "logprobs");
    cJSON_AddStringToObject(c, "finish_reason", "length");
    cJSON_AddNullToObject(c, "stop_reason");
    cJSON *plp = cJSON_AddArrayToObject(c, "prompt_logprobs");
    cJSON_AddItemToArray(plp, cJSON_CreateNull());
    int n = 1;
    for (size_t i = 0; prompt[i];) {
        unsigned char b = (unsigned char)prompt[i];
        size_t m = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
        size_t cut[2] = {m == 1 ? 1 : m - 1, 1};
        for (int p = 0; p < (m == 1 ? 1 : 2); i += cut[p], p++, n++) {
            if (n == 1 && !bos)
                continue; /* the first token: the null above */
            char t[2] = {prompt[i], 0}, id[16];
            unsigned char last = (unsigned char)prompt[i + cut[p] - 1];
            double lp = fake_lp(last);
            int greedy = m == 1 && fake_greedy(last);
            cJSON *pos = cJSON_CreateObject(), *e = cJSON_CreateObject();
            snprintf(id, sizeof id, "%d", 100 + last);
            cJSON_AddNumberToObject(e, "logprob", lp);
            cJSON_AddNumberToObject(e, "rank", greedy ? 1 : 2);
            cJSON_AddStringToObject(e, "decoded_token", m == 1 ? t : "\xEF\xBF\xBD");
            cJSON_AddItemToObject(pos, id, e);
            if (!greedy) {
                cJSON *top = cJSON_CreateObject();
                cJSON_AddNumberToObject(top, "logprob", lp + 0.5);
                cJSON_AddNumberToObject(top, "rank", 1);
                cJSON_AddStringToObject(top, "decoded_token", "~");
                cJSON_AddItemToObject(pos, "99", top);
            }
            cJSON_AddItemToArray(plp, pos);
        }
    }
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", cJSON_GetArraySize(plp));
    cJSON_AddNumberToObject(u, "total_tokens", cJSON_GetArraySize(plp) + 1);
    cJSON_AddNumberToObject(u, "completion_tokens", 1);
    cJSON_AddNullToObject(u, "prompt_tokens_details");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* llama.cpp's server on /v1/completions when asked for echo: a 500 with
 * its words ("Unsupported param: echo" in builds of Feb 2025, as measured
 * in issue 20; "Only no echo is supported" in oaicompat_completion_params_
 * parse of later tools/server sources, also a 500: a runtime_error). */
static const char llama_echo_500[] =
    "{\"error\":{\"code\":500,\"message\":\"Unsupported param: echo\","
    "\"type\":\"server_error\"}}";
static const char llama_echo_500_new[] =
    "{\"error\":{\"code\":500,\"message\":\"Only no echo is supported\","
    "\"type\":\"server_error\"}}";
/* What it answers a request it does not refuse: prompt_logprobs is not
 * one of its parameters, so it generates and sends no prompt log-probs. */
static const char llama_plain[] =
    "{\"choices\":[{\"text\":\"x\",\"index\":0,\"logprobs\":null,"
    "\"finish_reason\":\"length\"}],\"created\":1738000000,\"model\":"
    "\"fake\",\"system_fingerprint\":\"b4700-0000000\",\"object\":"
    "\"text_completion\",\"usage\":{\"completion_tokens\":1,"
    "\"prompt_tokens\":3,\"total_tokens\":4},\"id\":\"chatcmpl-x\"}";
/* An OpenAI-style 400 naming echo (e.g. OpenAI's chat-era models). */
static const char echo_400[] =
    "{\"error\":{\"message\":\"echo is not supported with this model\","
    "\"type\":\"invalid_request_error\",\"param\":\"echo\",\"code\":null}}";

/* fake_echo broken in the way mode says; nth: the request's number. */
static char *fake_echo_broken(const char *prompt, fault_mode mode, long nth)
{
    char *full = fake_echo(prompt);
    cJSON *o = cJSON_Parse(full);
    free(full);
    cJSON *lp = cJSON_GetObjectItem(cJSON_GetArrayItem(
        cJSON_GetObjectItem(o, "choices"), 0), "logprobs");
    cJSON *tl = cJSON_GetObjectItem(lp, "token_logprobs");
    if (mode == FAULT_NULL_MID && cJSON_GetArraySize(tl) > 2)
        cJSON_ReplaceItemInArray(tl, 2, cJSON_CreateNull());
    if (mode == FAULT_OFFSETS_BAD && cJSON_GetArraySize(tl) > 3)
        cJSON_ReplaceItemInArray(cJSON_GetObjectItem(lp, "text_offset"), 3,
                                 cJSON_CreateNumber(0));
    double shift = mode == FAULT_JITTER ? 0.01 * (double)nth
                   : mode == FAULT_NONCAUSAL ? 0.01 * (double)strlen(prompt) : 0;
    cJSON *v;
    cJSON_ArrayForEach(v, tl)
        if (cJSON_IsNumber(v))
            cJSON_SetNumberValue(v, v->valuedouble - shift);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* The echo less its last token, all four arrays alike. */
static char *fake_echo_short(const char *prompt)
{
    char *full = fake_echo(prompt);
    cJSON *o = cJSON_Parse(full);
    free(full);
    cJSON *lp = cJSON_GetObjectItem(cJSON_GetArrayItem(
        cJSON_GetObjectItem(o, "choices"), 0), "logprobs");
    const char *names[] = {"tokens", "token_logprobs", "top_logprobs",
                           "text_offset"};
    for (int j = 0; j < 4; j++) {
        cJSON *a = cJSON_GetObjectItem(lp, names[j]);
        cJSON_DeleteItemFromArray(a, cJSON_GetArraySize(a) - 1);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* Generation log-probs for two tokens " 1" and "0\nQ: more" in the
 * server's mode: both in logprobs.token_logprobs (the default), one only,
 * none, or as logprobs.content[] entries. */
static void fake_gen_logprobs(cJSON *c, fault_mode mode)
{
    const double v[2] = {-0.5, -0.25};
    const char *t[2] = {" 1", "0\nQ: more"};
    if (mode == FAULT_GEN_NONE) {
        cJSON_AddNullToObject(c, "logprobs");
        return;
    }
    cJSON *lp = cJSON_AddObjectToObject(c, "logprobs");
    if (mode == FAULT_GEN_CONTENT) {
        /* llama.cpp's server on /v1/completions: logprobs.content[] of
         * {id, token, bytes, logprob, top_logprobs: [{id, token, bytes,
         * logprob}]} (completion_token_output::probs_vector_to_json in
         * tools/server/server-task.cpp, ggml-org/llama.cpp 00efb3e1). */
        cJSON *ct = cJSON_AddArrayToObject(lp, "content");
        for (int k = 0; k < 2; k++) {
            cJSON *e = cJSON_CreateObject(), *top = cJSON_CreateObject();
            cJSON *bytes = cJSON_CreateArray(), *tb = cJSON_CreateArray();
            for (const char *b = t[k]; *b; b++) {
                cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)*b));
                cJSON_AddItemToArray(tb, cJSON_CreateNumber((unsigned char)*b));
            }
            cJSON_AddNumberToObject(e, "id", 300 + k);
            cJSON_AddStringToObject(e, "token", t[k]);
            cJSON_AddItemToObject(e, "bytes", bytes);
            cJSON_AddNumberToObject(e, "logprob", v[k]);
            cJSON_AddNumberToObject(top, "id", 300 + k);
            cJSON_AddStringToObject(top, "token", t[k]);
            cJSON_AddItemToObject(top, "bytes", tb);
            cJSON_AddNumberToObject(top, "logprob", v[k]);
            cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "top_logprobs"), top);
            cJSON_AddItemToArray(ct, e);
        }
        return;
    }
    cJSON *tl = cJSON_AddArrayToObject(lp, "token_logprobs");
    for (int k = 0; k < (mode == FAULT_GEN_SHORT ? 1 : 2); k++)
        cJSON_AddItemToArray(tl, cJSON_CreateNumber(v[k]));
}

/* What each mode says about why the generation ended. */
static const char *fake_finish(fault_mode mode)
{
    return mode == FAULT_GEN_CONTENT ? "length"
           : mode == FAULT_GEN_NONE  ? "content_filter"
                                     : "stop";
}

/* Generation: the sum of the digits in the prompt's last line, then a
 * newline the client must cut (the tasks stop at "\n"). */
static char *fake_gen(const char *prompt, int chat, fault_mode mode)
{
    const char *line = strrchr(prompt, 'Q');
    int sum = 0;
    for (const char *p = line ? line : prompt; *p; p++)
        sum += *p >= '0' && *p <= '9' ? *p - '0' : 0;
    char text[64];
    snprintf(text, sizeof text, " %d\nQ: more", sum);
    cJSON *o = cJSON_CreateObject();
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "choices"), c);
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "content", text);
    } else {
        cJSON_AddStringToObject(c, "text", text);
        fake_gen_logprobs(c, mode);
    }
    cJSON_AddStringToObject(c, "finish_reason", fake_finish(mode));
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "completion_tokens", 2);
    if (mode == FAULT_GEN_CONTENT) { /* the rest of llama.cpp's answer */
        cJSON_AddNumberToObject(c, "index", 0);
        cJSON_AddNumberToObject(u, "prompt_tokens", 9);
        cJSON_AddNumberToObject(u, "total_tokens", 11);
        cJSON_AddNumberToObject(o, "created", 1765000000);
        cJSON_AddStringToObject(o, "model", "fake");
        cJSON_AddStringToObject(o, "system_fingerprint", "b7300-00efb3e1");
        cJSON_AddStringToObject(o, "object", "text_completion");
        cJSON_AddStringToObject(o, "id", "chatcmpl-x");
        cJSON *tm = cJSON_AddObjectToObject(o, "timings");
        cJSON_AddNumberToObject(tm, "prompt_n", 9);
        cJSON_AddNumberToObject(tm, "predicted_n", 2);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void answer_ok(fsrv *s, int fd, const char *body)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *p = cJSON_GetObjectItem(j, "prompt");
    const cJSON *msgs = cJSON_GetObjectItem(j, "messages");
    char *out;
    int echo = cJSON_IsTrue(cJSON_GetObjectItem(j, "echo"));
    int plp = cJSON_GetObjectItem(j, "prompt_logprobs") != NULL;
    int status = 200;
    if ((s->mode == FAULT_LLAMA_ECHO || s->mode == FAULT_LLAMA_ECHO2) &&
        (echo || plp)) {
        status = echo ? 500 : 200;
        out = em_strdup(!echo ? llama_plain : s->mode == FAULT_LLAMA_ECHO
                                                  ? llama_echo_500
                                                  : llama_echo_500_new);
    } else if ((s->mode == FAULT_ECHO_400 || s->mode == FAULT_PLP_NOBOS) &&
               (echo || plp) && cJSON_IsString(p)) {
        status = echo ? 400 : 200;
        out = echo ? em_strdup(echo_400)
                   : fake_plp(p->valuestring, s->mode == FAULT_ECHO_400);
    } else if (plp && cJSON_IsString(p))
        out = em_strdup(llama_plain); /* servers that ignore it */
    else if (echo && cJSON_IsString(p) && s->mode >= FAULT_NULL_MID)
        out = fake_echo_broken(p->valuestring, s->mode, s->count);
    else if (echo && cJSON_IsString(p))
        out = s->mode == FAULT_NO_LOGPROBS
                  ? em_strdup("{\"choices\":[{\"text\":\"x\",\"logprobs\":null}]}")
              : s->mode == FAULT_ECHO_SHORT ? fake_echo_short(p->valuestring)
              : s->mode == FAULT_ECHO_VLLM  ? fake_echo_vllm(p->valuestring)
                                            : fake_echo(p->valuestring);
    else if (cJSON_IsString(p))
        out = fake_gen(p->valuestring, 0, s->mode);
    else if (cJSON_IsArray(msgs))
        out = fake_gen(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")
                           ->valuestring, 1, s->mode);
    else
        out = em_strdup("{\"error\":{\"message\":\"bad request\"}}");
    if (status == 200 && strstr(out, "\"error\""))
        status = 400;
    respond(fd, status, "", out);
    free(out);
    cJSON_Delete(j);
}

/* Reads one request; body malloc'd. */
static char *read_request(fsrv *s, int fd)
{
    em_buf b = {0};
    char chunk[4096];
    char *hdr_end = NULL;
    size_t need = 0;
    for (;;) {
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r <= 0)
            break;
        em_buf_put(&b, chunk, (size_t)r);
        if (!hdr_end && (hdr_end = strstr(b.s, "\r\n\r\n"))) {
            const char *cl = strcasestr(b.s, "Content-Length:");
            need = (size_t)(hdr_end - b.s) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            const char *au = strcasestr(b.s, "Authorization:");
            if (au) {
                pthread_mutex_lock(&s->mu);
                snprintf(s->auth, sizeof s->auth, "%.*s",
                         (int)strcspn(au, "\r\n"), au);
                pthread_mutex_unlock(&s->mu);
            }
        }
        if (hdr_end && b.len >= need)
            break;
    }
    if (!hdr_end || b.len < need) {
        em_buf_free(&b);
        return NULL;
    }
    char *body = em_strdup(strstr(b.s, "\r\n\r\n") + 4);
    em_buf_free(&b);
    return body;
}

/* The attempt number (0-based) of this body: faults are a function of
 * the request and its attempt, never of timing, so runs are repeatable. */
static int attempt_of(fsrv *s, uint64_t h)
{
    int i = 0;
    while (i < s->n_seen && s->seen[i] != h)
        i++;
    if (i == s->n_seen && s->n_seen < 4096)
        s->seen[s->n_seen++] = h;
    int a = i < 4096 ? s->tries[i]++ : 0;
    if (a + 1 > s->max_tries)
        s->max_tries = a + 1;
    return a;
}

/* 0 ok, 1 429 with Retry-After, 2 429 without, 3 500, 5 hang, 7 reset,
 * 9 malformed JSON. */
static int fault_for(const fsrv *s, uint64_t h, int attempt)
{
    static const int kinds[] = {0, 2, 3, 5, 7, 9, 3, 9};
    if (s->mode == FAULT_PERSIST && s->persist && h % 5 == 0)
        return 3;
    if (attempt == 0)
        return h % 97 == 0 ? 1 : kinds[h % 8];
    if (attempt == 1 && (h >> 8) % 3 == 0)
        return kinds[1 + (h >> 16) % 7];
    return 0;
}

static void *conn_main(void *arg)
{
    fconn *c = arg;
    fsrv *s = c->s;
    char *body = read_request(s, c->fd);
    if (body) {
        uint64_t h = em_hash64(body, strlen(body), 7);
        pthread_mutex_lock(&s->mu);
        long n = ++s->count;
        if (n <= 8)
            s->t[n - 1] = em_now();
        int a = attempt_of(s, h);
        pthread_mutex_unlock(&s->mu);
        int fault = s->mode >= FAULT_PER_REQUEST && s->mode <= FAULT_PERSIST
                        ? fault_for(s, h, a) : 0;
        if (s->mode == FAULT_429_ONCE && n == 1)
            fault = 1;
        if (s->mode == FAULT_ALWAYS_500)
            fault = 3;
        pthread_mutex_lock(&s->mu);
        s->hit[fault]++;
        pthread_mutex_unlock(&s->mu);
        if (fault == 1 || fault == 2) {
            respond(c->fd, 429, fault == 1 ? "Retry-After: 1\r\n" : "",
                    "{\"error\":{\"message\":\"slow down\",\"type\":\"rate\"}}");
        } else if (fault == 3) {
            respond(c->fd, 500, "", "{\"error\":{\"message\":\"boom\"}}");
        } else if (fault == 5) {
            for (int i = 0; i < 500 && !s->stop; i++) /* past the timeout */
                usleep(10000);
        } else if (fault == 7) {
            const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 400\r\n\r\n{\"choi";
            send_all(c->fd, h, strlen(h));
            struct linger l = {1, 0}; /* close with RST */
            setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        } else if (fault == 9) {
            respond(c->fd, 200, "", "{\"choices\": [{\"text\": ");
        } else {
            answer_ok(s, c->fd, body);
        }
        free(body);
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *accept_main(void *arg)
{
    fsrv *s = arg;
    while (!s->stop) {
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            break;
        fconn *c = em_calloc(1, sizeof *c);
        c->s = s;
        c->fd = fd;
        pthread_mutex_lock(&s->mu);
        int slot = s->n_conn < 4096 ? s->n_conn++ : -1;
        pthread_mutex_unlock(&s->mu);
        if (slot < 0 || pthread_create(&s->conn_th[slot], NULL, conn_main, c)) {
            close(fd);
            free(c);
        }
    }
    return NULL;
}

static fsrv *fsrv_start(fault_mode mode)
{
    fsrv *s = em_calloc(1, sizeof *s);
    s->mode = mode;
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) || listen(s->fd, 128) ||
        getsockname(s->fd, (struct sockaddr *)&a, &len)) {
        perror("fault server");
        abort();
    }
    s->port = ntohs(a.sin_port);
    pthread_create(&s->accept_th, NULL, accept_main, s);
    return s;
}

static void fsrv_stop(fsrv *s)
{
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->accept_th, NULL);
    close(s->fd);
    for (int i = 0; i < s->n_conn; i++)
        pthread_join(s->conn_th[i], NULL);
    pthread_mutex_destroy(&s->mu);
    free(s);
    /* its port may come back for another fake server */
    openai_forget_servers();
}

/* ---- helpers ------------------------------------------------------------ */

/* Opens the openai backend on s with extra options "k=v,..." */
static backend *open_on(const fsrv *s, const char *extra, em_err *err)
{
    char spec[512];
    snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,model=fake,"
             "timeout=0.3,backoff=0.01%s%s", s->port, *extra ? "," : "", extra);
    family *f;
    backend *b = NULL;
    if (family_from_spec(spec, &f, err) == 0) {
        if (backend_open(&f->members[0].spec, &b, err))
            b = NULL;
        family_free(f);
    }
    return b;
}

static double expect_lp(const char *ctx, const char *cont, int *ntok, int *greedy)
{
    em_buf all = {0};
    em_buf_puts(&all, ctx);
    em_buf_puts(&all, cont);
    size_t b = strlen(ctx);
    while (b > 0 && ctx[b - 1] == ' ')
        b--;
    double s = 0;
    *ntok = 0;
    *greedy = 1;
    for (size_t i = b > 0 ? b : 1; i < all.len; i++) {
        s += fake_lp((unsigned char)all.s[i]);
        *greedy &= fake_greedy((unsigned char)all.s[i]);
        (*ntok)++;
    }
    em_buf_free(&all);
    return s;
}

/* ---- client tests ------------------------------------------------------ */

TEST(test_loglik_from_echo)
{
    fsrv *s = fsrv_start(FAULT_NONE);
    em_err err = {{0}};
    backend *b = open_on(s, "", &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        backend_ll_req rq[3] = {{"Q: 2+2=\nA:", " 4"}, {"The sky is ", "blue"},
                                {"x", "12ab"}};
        backend_ll_res rs[3];
        CHECK_INT(backend_loglikelihood(b, rq, rs, 3, &err), 0);
        for (int i = 0; i < 3; i++) {
            int n, g;
            double e = expect_lp(rq[i].context, rq[i].continuation, &n, &g);
            CHECK_MSG(rs[i].ok, "%d: %s", i, rs[i].error);
            CHECK_NEAR(rs[i].logprob, e, 1e-12);
            CHECK_INT(rs[i].n_tokens, n);
            CHECK_INT(rs[i].is_greedy, g);
        }
        /* " 4" is two tokens, the space moved from "is " counts too. */
        CHECK_INT(rs[0].n_tokens, 2);
        CHECK_INT(rs[1].n_tokens, 5);
        CHECK_INT(rs[2].is_greedy, 0);
        backend_close(b);
    }
    fsrv_stop(s);
}

TEST(test_generate_cuts_stop)
{
    fsrv *s = fsrv_start(FAULT_NONE);
    em_err err = {{0}};
    for (int chat = 0; chat < 2; chat++) {
        backend *b = open_on(s, chat ? "chat=1" : "", &err);
        CHECK_MSG(b != NULL, "%s", err.msg);
        if (!b)
            continue;
        const char *stop[] = {"\n"};
        backend_gen_req rq = {"Q: What is 12 + 34?\nA:", stop, 1, 8, 0, 1, 7};
        backend_gen_res rs;
        CHECK_INT(backend_generate(b, &rq, &rs, 1, &err), 0);
        CHECK_MSG(rs.ok, "%s", rs.error);
        CHECK_STR(rs.text, " 10");
        if (!chat) {
            CHECK_INT(rs.n_tokens, 2);
            CHECK(rs.token_logprobs != NULL);
            CHECK_NEAR(rs.sum_logprob, -0.75, 1e-9);
        }
        backend_gen_res_clear(&rs);
        backend_close(b);
    }
    fsrv_stop(s);
}

/* A server whose echo stops one token early cannot score any request:
 * the first request finds out, the rest fail without asking, each with
 * a message that says where the echo ended; none is scored over one
 * token fewer. */
TEST(test_short_echo_fails)
{
    fsrv *s = fsrv_start(FAULT_ECHO_SHORT);
    em_err err = {{0}};
    backend *b = open_on(s, "logprobs_mode=echo", &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        backend_ll_req rq[5] = {{"Q: 2+2=\nA:", " 4"}, {"The sky is ", "blue"},
                                {"x", "12ab"}, {"a", "b"}, {"Paris is in", " France"}};
        backend_ll_res rs[5];
        openai_counts c0, c1;
        openai_get_counts(&c0);
        CHECK_INT(backend_loglikelihood(b, rq, rs, 5, &err), 0);
        openai_get_counts(&c1);
        for (int i = 0; i < 5; i++) {
            CHECK_MSG(!rs[i].ok, "%d scored %g over %d tokens", i,
                      rs[i].logprob, rs[i].n_tokens);
            CHECK_HAS(rs[i].error, "server limitation, not retried: the "
                      "server's echoed tokens end at byte 11 of 12: the last "
                      "1 bytes of the prompt (\"4\") have no log-prob");
            CHECK_HAS(rs[i].error, "generation tasks still run");
        }
        CHECK_INT(s->count, 1); /* one request found out, none retried */
        CHECK_INT(c1.limited - c0.limited, 5);
        backend_close(b);
    }
    fsrv_stop(s);
}

/* vLLM's echo: "<s>" counted in the offsets, split characters shown as
 * U+FFFD pieces, offsets that add up token texts. The token texts place
 * each piece: the scores are those of the continuation's pieces. */
TEST(test_vllm_echo_with_split_characters)
{
    fsrv *s = fsrv_start(FAULT_ECHO_VLLM);
    em_err err = {{0}};
    backend *b = open_on(s, "", &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        /* "é" is 2 bytes (one U+FFFD per byte), "中" and "文" 3 bytes in 2
         * pieces (fewer U+FFFD than bytes). */
        backend_ll_req rq[3] = {{"Le café", " 中文 ok"}, {"中文", " é"},
                                {"Le 中", "文"}};
        backend_ll_res rs[3];
        CHECK_INT(backend_loglikelihood(b, rq, rs, 3, &err), 0);
        /* The continuation's tokens and the last byte of each. */
        const unsigned char last0[] = {' ', 0xb8, 0xad, 0x96, 0x87, ' ', 'o', 'k'};
        const unsigned char last1[] = {' ', 0xc3, 0xa9};
        double e0 = 0, e1 = 0;
        for (size_t k = 0; k < sizeof last0; k++)
            e0 += fake_lp(last0[k]);
        for (size_t k = 0; k < sizeof last1; k++)
            e1 += fake_lp(last1[k]);
        CHECK_MSG(rs[0].ok, "%s", rs[0].error);
        CHECK_NEAR(rs[0].logprob, e0, 1e-12);
        CHECK_INT(rs[0].n_tokens, 8);
        CHECK_MSG(rs[1].ok, "%s", rs[1].error);
        CHECK_NEAR(rs[1].logprob, e1, 1e-12);
        CHECK_INT(rs[1].n_tokens, 3);
        /* "中" and "文" both split, the boundary between them: which piece
         * is whose cannot be told from 4 U+FFFD for 6 bytes. */
        CHECK_INT(rs[2].ok, 0);
        CHECK_HAS(rs[2].error, "cannot tell which pieces are the continuation's");
        backend_close(b);
    }
    fsrv_stop(s);
}

/* Generation log-probs: 1 for 2 tokens fails; none at all is ok and
 * absent; llama.cpp's content[] shape on /completions is read; the
 * finish reason comes through. */
TEST(test_generation_logprob_coverage)
{
    const fault_mode modes[] = {FAULT_NONE, FAULT_GEN_SHORT, FAULT_GEN_NONE,
                                FAULT_GEN_CONTENT};
    const int finish[] = {BACKEND_FINISH_STOP, 0, BACKEND_FINISH_NONE,
                          BACKEND_FINISH_LENGTH};
    for (int m = 0; m < 4; m++) {
        fsrv *s = fsrv_start(modes[m]);
        em_err err = {{0}};
        backend *b = open_on(s, "", &err);
        CHECK_MSG(b != NULL, "%s", err.msg);
        if (!b) {
            fsrv_stop(s);
            continue;
        }
        const char *stop[] = {"\n"};
        backend_gen_req rq = {"Q: What is 12 + 34?\nA:", stop, 1, 8, 0, 1, 7};
        backend_gen_res rs = {0};
        CHECK_INT(backend_generate(b, &rq, &rs, 1, &err), 0);
        if (modes[m] == FAULT_GEN_SHORT) {
            CHECK_MSG(!rs.ok, "scored with %d tokens", rs.n_tokens);
            CHECK_HAS(rs.error, "the server sent 1 generation log-prob "
                      "(logprobs.token_logprobs) for 2 generated tokens");
            CHECK(rs.token_logprobs == NULL && rs.text == NULL);
        } else {
            CHECK_MSG(rs.ok, "mode %d: %s", m, rs.error);
            CHECK_STR(rs.text, " 10");
            CHECK_INT(rs.n_tokens, 2);
            CHECK_INT(rs.finish, finish[m]);
            CHECK_INT(rs.truncated, 0);
            if (modes[m] == FAULT_GEN_NONE) {
                CHECK(rs.token_logprobs == NULL);
            } else {
                CHECK(rs.token_logprobs != NULL);
                CHECK_NEAR(rs.sum_logprob, -0.75, 1e-9);
            }
        }
        backend_gen_res_clear(&rs);
        backend_close(b);
        fsrv_stop(s);
    }
}

/* Recorded server shapes that cannot echo: llama.cpp's 500 naming echo
 * and a 400 naming it. 17 requests with max_retries 2 once cost 51 POSTs;
 * now one per method (echo, then prompt_logprobs in auto mode), and with
 * a server that has prompt_logprobs every request is scored by it. */
TEST(test_echo_refused_costs_one_request)
{
    const fault_mode modes[4] = {FAULT_LLAMA_ECHO, FAULT_LLAMA_ECHO,
                                 FAULT_ECHO_400, FAULT_LLAMA_ECHO2};
    const char *opts[4] = {"max_retries=2,logprobs_mode=echo",
                           "max_retries=2", "max_retries=2",
                           "max_retries=2,logprobs_mode=echo"};
    const long posts[4] = {1, 2, 18, 1};
    for (int m = 0; m < 4; m++) {
        fsrv *s = fsrv_start(modes[m]);
        em_err err = {{0}};
        backend *b = open_on(s, opts[m], &err);
        CHECK_MSG(b != NULL, "%s", err.msg);
        if (!b) {
            fsrv_stop(s);
            continue;
        }
        backend_ll_req rq[17];
        backend_ll_res rs[17];
        char ctx[17][32];
        for (int i = 0; i < 17; i++) {
            snprintf(ctx[i], sizeof ctx[i], "Q: %d+%d=\nA:", i, i);
            rq[i] = (backend_ll_req){ctx[i], " 7"};
        }
        openai_counts c0, c1;
        openai_get_counts(&c0);
        CHECK_INT(backend_loglikelihood(b, rq, rs, 17, &err), 0);
        openai_get_counts(&c1);
        CHECK_MSG(s->count == posts[m], "mode %d: %ld POSTs", m, s->count);
        CHECK_INT(c1.retries - c0.retries, 0);
        for (int i = 0; i < 17 && modes[m] == FAULT_LLAMA_ECHO; i++) {
            CHECK_INT(rs[i].ok, 0);
            CHECK_HAS(rs[i].error, "server limitation, not retried: ");
            CHECK_HAS(rs[i].error, "HTTP 500: Unsupported param: echo");
        }
        if (modes[m] == FAULT_LLAMA_ECHO2)
            CHECK_HAS(rs[16].error, "HTTP 500: Only no echo is supported");
        if (modes[m] != FAULT_ECHO_400) {
            CHECK_INT(c1.limited - c0.limited, 17);
            if (m == 1)
                CHECK_HAS(rs[16].error, "prompt_logprobs: no choices[0]."
                          "prompt_logprobs");
        }
        for (int i = 0; i < 17 && modes[m] == FAULT_ECHO_400; i++) {
            int n, g;
            double e = expect_lp(rq[i].context, rq[i].continuation, &n, &g);
            CHECK_MSG(rs[i].ok, "%d: %s", i, rs[i].error);
            CHECK_NEAR(rs[i].logprob, e, 1e-12);
            CHECK_INT(rs[i].n_tokens, n);
            CHECK_INT(rs[i].is_greedy, g);
        }
        backend_close(b);
        fsrv_stop(s);
    }
}

/* vLLM's prompt_logprobs asked for directly, with and without a BOS token
 * (the first entry is null either way), with split characters: the first
 * token's text is what the others leave of the prompt. */
TEST(test_prompt_logprobs_shapes)
{
    for (int nobos = 0; nobos < 2; nobos++) {
        fsrv *s = fsrv_start(nobos ? FAULT_PLP_NOBOS : FAULT_ECHO_400);
        em_err err = {{0}};
        backend *b = open_on(s, "logprobs_mode=prompt_logprobs", &err);
        CHECK_MSG(b != NULL, "%s", err.msg);
        if (!b) {
            fsrv_stop(s);
            continue;
        }
        backend_ll_req rq[4] = {{"The sky is ", "blue"}, {"x", "12ab"},
                                {"Le café", " ok"}, {"", "ab"}};
        backend_ll_res rs[4];
        CHECK_INT(backend_loglikelihood(b, rq, rs, 4, &err), 0);
        for (int i = 0; i < 3; i++) {
            int n, g;
            double e = i < 2 ? expect_lp(rq[i].context, rq[i].continuation, &n, &g)
                             : fake_lp(' ') + fake_lp('o') + fake_lp('k');
            CHECK_MSG(rs[i].ok, "nobos %d, %d: %s", nobos, i, rs[i].error);
            CHECK_NEAR(rs[i].logprob, e, 1e-12);
            if (i < 2) {
                CHECK_INT(rs[i].n_tokens, n);
                CHECK_INT(rs[i].is_greedy, g);
            }
        }
        CHECK_INT(rs[2].n_tokens, 3);
        CHECK_INT(rs[1].is_greedy, 0);
        /* An empty context: with BOS both tokens count; without, the first
         * has nothing before it and the request fails (not a limitation). */
        if (nobos) {
            CHECK_INT(rs[3].ok, 0);
            CHECK_HAS(rs[3].error, "needs a model with a BOS token");
        } else {
            CHECK_MSG(rs[3].ok, "%s", rs[3].error);
            CHECK_NEAR(rs[3].logprob, fake_lp('a') + fake_lp('b'), 1e-12);
        }
        CHECK_INT(s->count, 4);
        backend_close(b);
        fsrv_stop(s);
    }
}

/* Runs the probe on s; its output into out (cap bytes). */
static int probe_on(const fsrv *s, const char *extra, char *out, size_t cap)
{
    char spec[256];
    snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,model=fake,"
             "timeout=2,backoff=0.01,max_retries=1%s%s", s->port,
             *extra ? "," : "", extra);
    family *f;
    em_err err = {{0}};
    if (family_from_spec(spec, &f, &err))
        return -9;
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    int rc = openai_probe(&f->members[0].spec, fp, &err);
    fclose(fp);
    snprintf(out, cap, "%s%s", buf ? buf : "", rc < 0 ? err.msg : "");
    free(buf);
    family_free(f);
    return rc;
}

/* The probe: 0 on good servers (echo; vLLM's prompt_logprobs), 1 with
 * the failing check named on servers that each break one property, -1
 * on a server that does not answer. */
TEST(test_probe_verdicts)
{
    static const struct {
        fault_mode mode;
        int rc;
        const char *has;
    } cases[] = {
        {FAULT_NONE, 0, "ok    difference"},
        {FAULT_ECHO_400, 0, "ok    prompt_logprobs"},
        {FAULT_PLP_NOBOS, 0, "note  bos              no start token"},
        {FAULT_LLAMA_ECHO, 1, "FAIL  prompt log-probs neither echo nor"},
        {FAULT_NULL_MID, 1, "FAIL  coverage         the server gave no "
                            "log-prob for prompt token 2"},
        {FAULT_OFFSETS_BAD, 1, "FAIL  offsets          the server's "
                               "text_offset[3] = 0"},
        {FAULT_JITTER, 1, "FAIL  repeat"},
        {FAULT_NONCAUSAL, 1, "FAIL  difference"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fsrv *s = fsrv_start(cases[i].mode);
        char out[4096];
        int rc = probe_on(s, "", out, sizeof out);
        CHECK_MSG(rc == cases[i].rc, "case %zu: rc %d\n%s", i, rc, out);
        CHECK_HAS(out, cases[i].has);
        CHECK_HAS(out, cases[i].rc ? "check" : "verdict: ok");
        if (cases[i].mode == FAULT_NONE) {
            CHECK_HAS(out, "ok    echo");
            CHECK_HAS(out, "ok    coverage");
            CHECK_HAS(out, "ok    offsets");
            CHECK_HAS(out, "ok    repeat");
        }
        fsrv_stop(s);
    }
    fsrv *s = fsrv_start(FAULT_NONE);
    int port = s->port;
    fsrv_stop(s);
    char out[512], spec[128];
    snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,max_retries=0",
             port);
    family *f;
    em_err err = {{0}};
    CHECK_INT(family_from_spec(spec, &f, &err), 0);
    FILE *fp = fopen("/dev/null", "w");
    CHECK_INT(openai_probe(&f->members[0].spec, fp, &err), -1);
    fclose(fp);
    CHECK_HAS(err.msg, "no answer from the server");
    family_free(f);
    (void)out;
}

TEST(test_retry_after_honoured)
{
    fsrv *s = fsrv_start(FAULT_429_ONCE);
    em_err err = {{0}};
    backend *b = open_on(s, "", &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        backend_ll_req rq = {"a", "b"};
        backend_ll_res rs;
        CHECK_INT(backend_loglikelihood(b, &rq, &rs, 1, &err), 0);
        CHECK_MSG(rs.ok, "%s", rs.error);
        CHECK_INT(s->count, 2);
        /* backoff is 0.01 s: only Retry-After explains a 1 s wait. */
        CHECK_MSG(s->t[1] - s->t[0] >= 0.95, "retried after %.3f s",
                  s->t[1] - s->t[0]);
        backend_close(b);
    }
    fsrv_stop(s);
}

TEST(test_final_failure_is_failed)
{
    fsrv *s = fsrv_start(FAULT_ALWAYS_500);
    em_err err = {{0}};
    backend *b = open_on(s, "max_retries=2", &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        backend_ll_req rq = {"a", "b"};
        backend_ll_res rs;
        CHECK_INT(backend_loglikelihood(b, &rq, &rs, 1, &err), 0);
        CHECK_INT(rs.ok, 0);
        CHECK_HAS(rs.error, "HTTP 500: boom");
        CHECK_HAS(rs.error, "gave up after 3 attempts");
        CHECK_INT(s->count, 3);
        backend_close(b);
    }
    fsrv_stop(s);
}

/* A server that answers echo without log-probs: in auto mode one request
 * asks with echo and one with prompt_logprobs, then nothing more; a second
 * member on the same server (logprobs_mode=echo) asks nothing at all: the
 * process remembers what each server cannot do. */
TEST(test_server_without_prompt_logprobs)
{
    fsrv *s = fsrv_start(FAULT_NO_LOGPROBS);
    em_err err = {{0}};
    for (int mode = 0; mode < 2; mode++) {
        backend *b = open_on(s, mode ? "logprobs_mode=echo" : "", &err);
        CHECK_MSG(b != NULL, "%s", err.msg);
        if (!b)
            continue;
        long before = s->count;
        backend_ll_req rq[3] = {{"a", "b"}, {"c", "d"}, {"e", "f"}};
        backend_ll_res rs[3];
        CHECK_INT(backend_loglikelihood(b, rq, rs, 3, &err), 0);
        for (int i = 0; i < 3; i++) {
            CHECK_INT(rs[i].ok, 0);
            CHECK_HAS(rs[i].error, "server limitation, not retried: ");
            CHECK_HAS(rs[i].error, "choices[0].logprobs.tokens is missing");
            if (!mode)
                CHECK_HAS(rs[i].error, "; prompt_logprobs: no choices[0]."
                          "prompt_logprobs in the answer");
        }
        CHECK_INT(s->count - before, mode ? 0 : 2); /* no retry */
        /* The member knows now: a second batch asks nothing. */
        CHECK_INT(backend_loglikelihood(b, rq, rs, 3, &err), 0);
        CHECK_INT(s->count - before, mode ? 0 : 2);
        CHECK_HAS(rs[2].error, "server limitation");
        backend_close(b);
    }
    fsrv_stop(s);
}

/* A command-line member is named by its model= (the server's name for
 * it), not by the URL's last segment ("v1"). */
TEST(test_member_named_by_model)
{
    const char *spec[3] = {"openai:http://127.0.0.1:1/v1,model=qwen-0.5b",
                           "openai:http://127.0.0.1:1/v1",
                           "openai:http://127.0.0.1:1/v1,model=m,name=mine"};
    const char *want[3] = {"qwen-0.5b", "v1", "mine"};
    for (int i = 0; i < 3; i++) {
        family *f;
        em_err err = {{0}};
        CHECK_INT(family_from_spec(spec[i], &f, &err), 0);
        CHECK_STR(f->members[0].spec.name, want[i]);
        family_free(f);
    }
}

TEST(test_connection_refused_fails)
{
    fsrv *s = fsrv_start(FAULT_NONE);
    int port = s->port;
    fsrv_stop(s); /* nothing listens there now */
    char spec[256];
    snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,timeout=0.3,"
             "backoff=0.01,max_retries=1", port);
    family *f;
    backend *b;
    em_err err = {{0}};
    CHECK_INT(family_from_spec(spec, &f, &err), 0);
    CHECK_INT(backend_open(&f->members[0].spec, &b, &err), 0);
    backend_ll_req rq = {"a", "b"};
    backend_ll_res rs;
    CHECK_INT(backend_loglikelihood(b, &rq, &rs, 1, &err), 0);
    CHECK_INT(rs.ok, 0);
    CHECK_HAS(rs.error, "gave up after 2 attempts");
    backend_close(b);
    family_free(f);
}

TEST(test_api_key_from_env)
{
    fsrv *s = fsrv_start(FAULT_NONE);
    em_err err = {{0}};
    CHECK(open_on(s, "api_key_env=EMERGE_TEST_NO_SUCH_KEY", &err) == NULL);
    CHECK_HAS(err.msg, "EMERGE_TEST_NO_SUCH_KEY");
    setenv("EMERGE_TEST_KEY", "sk-test-123", 1);
    backend *b = open_on(s, "api_key_env=EMERGE_TEST_KEY", &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        backend_ll_req rq = {"a", "b"};
        backend_ll_res rs;
        CHECK_INT(backend_loglikelihood(b, &rq, &rs, 1, &err), 0);
        CHECK_STR(s->auth, "Authorization: Bearer sk-test-123");
        backend_close(b);
    }
    unsetenv("EMERGE_TEST_KEY");
    fsrv_stop(s);
}

TEST(test_bad_options)
{
    family *f;
    backend *b;
    em_err err = {{0}};
    const char *bad[] = {"openai", "openai:ftp://x/v1",
                         "openai:http://127.0.0.1:1/v1,concurrency=0",
                         "openai:http://127.0.0.1:1/v1,timeout=abc"};
    const char *want[] = {"needs 'base_url'", "not an http", "concurrency",
                          "timeout"};
    for (int i = 0; i < 4; i++) {
        CHECK_INT(family_from_spec(bad[i], &f, &err), 0);
        CHECK_INT(backend_open(&f->members[0].spec, &b, &err), -1);
        CHECK_HAS(err.msg, want[i]);
        family_free(f);
    }
}

/* Many requests, every fault kind several times over: all come back
 * right (the retries absorb the faults). */
TEST(test_faults_absorbed)
{
    fsrv *s = fsrv_start(FAULT_PER_REQUEST);
    em_err err = {{0}};
    backend *b = open_on(s, "max_retries=2,concurrency=6,timeout=1.5", &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    if (b) {
        enum { N = 30 };
        backend_ll_req rq[N];
        backend_ll_res rs[N];
        char ctx[N][32];
        for (int i = 0; i < N; i++) {
            snprintf(ctx[i], sizeof ctx[i], "Q: %d + %d =", i, 2 * i);
            rq[i] = (backend_ll_req){ctx[i], " 7"};
        }
        CHECK_INT(backend_loglikelihood(b, rq, rs, N, &err), 0);
        for (int i = 0; i < N; i++) {
            int n, g;
            double e = expect_lp(rq[i].context, rq[i].continuation, &n, &g);
            CHECK_MSG(rs[i].ok, "%d: %s", i, rs[i].error);
            CHECK_NEAR(rs[i].logprob, e, 1e-12);
        }
        openai_counts oc;
        openai_get_counts(&oc);
        CHECK_MSG(s->count >= N + N / 2, "only %ld server requests", s->count);
        CHECK_INT(s->max_tries, 3); /* some needed both retries, none more */
        const int kinds[] = {2, 3, 5, 7, 9};
        for (int k = 0; k < 5; k++)
            CHECK_MSG(s->hit[kinds[k]] > 0, "fault kind %d never injected", kinds[k]);
        CHECK(oc.retries > 0);
        CHECK_INT(oc.in_flight, 0);
        backend_close(b);
    }
    fsrv_stop(s);
}

/* ---- a sweep through the faulty server -------------------------------- */

static int sweep_on(int port, const char *db, sweep_stats *st, em_err *err)
{
    char spec[512];
    /* A timeout that a slow run (valgrind, a loaded machine) never hits
     * by accident; only the server's hangs (5 s) trip it. */
    snprintf(spec, sizeof spec, "openai:http://127.0.0.1:%d/v1,name=fake-model,"
             "params=1e6,timeout=1.5,backoff=0.01,max_retries=2,concurrency=6",
             port);
    family *fam = NULL;
    sweep_opts o = {.db_path = db, .seed = 1, .limit = 12, .batch = 16,
                    .command = "test", .quiet = 1};
    int rc = family_from_spec(spec, &fam, err);
    if (rc == 0)
        rc = sweep_expand_tasks("tests/data/tasks/sweep-arith.yaml,"
                                "tests/data/tasks/sweep-mc.yaml",
                                &o.task_paths, &o.n_tasks, err);
    if (rc == 0) {
        o.fam = fam;
        rc = sweep_run(&o, st, err);
    }
    sweep_free_list(o.task_paths, o.n_tasks);
    family_free(fam);
    return rc;
}

static char *dump(const char *db)
{
    store_query *q;
    em_err err;
    if (store_query_open(db, &q, &err) != 0)
        return em_strdup(err.msg);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    results_dump_scores(q, f, &err);
    fclose(f);
    store_query_close(q);
    return buf;
}

static long long sql_int(const char *db, const char *sql)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    long long v = -1;
    if (sqlite3_open(db, &h) == SQLITE_OK &&
        sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return v;
}

TEST(test_sweep_through_faults)
{
    char *dir = tl_tmpdir();
    char clean[512], faulty[512];
    snprintf(clean, sizeof clean, "%s/clean.sqlite", dir);
    snprintf(faulty, sizeof faulty, "%s/faulty.sqlite", dir);
    em_err err = {{0}};
    sweep_stats st;
    fsrv *s = fsrv_start(FAULT_NONE);
    CHECK_MSG(sweep_on(s->port, clean, &st, &err) == 0, "%s", err.msg);
    CHECK_INT(st.failed, 0);
    long units = st.scored;
    CHECK_INT(units, 24); /* 12 examples x 2 tasks */
    fsrv_stop(s);

    /* Run 1: transient faults are retried away, but every 5th request
     * keeps failing: those are stored as failed and their examples left
     * unscored. Run 2 (the server healed) resends only those. */
    s = fsrv_start(FAULT_PERSIST);
    s->persist = 1;
    CHECK_MSG(sweep_on(s->port, faulty, &st, &err) == 0, "%s", err.msg);
    long scored = st.scored, failed1 = st.failed;
    CHECK(failed1 > 0 && st.unscored > 0);
    CHECK(s->count > st.sent); /* faults happened and were retried */
    CHECK_INT(sql_int(faulty, "SELECT COUNT(*) FROM responses WHERE ok = 0"),
              failed1);
    s->persist = 0;
    CHECK_MSG(sweep_on(s->port, faulty, &st, &err) == 0, "%s", err.msg);
    CHECK_INT(st.failed, 0);
    CHECK_INT(st.unscored, 0);
    CHECK_INT(st.sent, failed1); /* only the failed ones went out again */
    scored += st.scored;
    CHECK_INT(scored, units); /* every example scored once, none twice */
    fsrv_stop(s);

    char *a = dump(clean), *b = dump(faulty);
    CHECK(a && b && *a && !strcmp(a, b));
    free(a);
    free(b);
    CHECK_INT(sql_int(faulty, "SELECT COUNT(*) FROM responses WHERE ok = 0"), 0);
    CHECK_INT(sql_int(faulty, "SELECT COUNT(*) FROM requests"),
              sql_int(clean, "SELECT COUNT(*) FROM requests"));
    CHECK_INT(sql_int(faulty, "SELECT COUNT(*) FROM scores"),
              sql_int(clean, "SELECT COUNT(*) FROM scores"));
    tl_sh(NULL, "rm -rf '%s'", dir);
    free(dir);
}

int main(void)
{
    RUN(test_loglik_from_echo);
    RUN(test_generate_cuts_stop);
    RUN(test_short_echo_fails);
    RUN(test_vllm_echo_with_split_characters);
    RUN(test_generation_logprob_coverage);
    RUN(test_echo_refused_costs_one_request);
    RUN(test_prompt_logprobs_shapes);
    RUN(test_probe_verdicts);
    RUN(test_retry_after_honoured);
    RUN(test_final_failure_is_failed);
    RUN(test_server_without_prompt_logprobs);
    RUN(test_member_named_by_model);
    RUN(test_connection_refused_fails);
    RUN(test_api_key_from_env);
    RUN(test_bad_options);
    RUN(test_faults_absorbed);
    RUN(test_sweep_through_faults);
    return tl_summary();
}

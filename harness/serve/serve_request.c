/*
 * serve_request.c - an OpenAI request body as an sv_req (see serve_int.h):
 * JSON parsed and checked field by field (a 400's message names the
 * field), the seed read exactly from its digits, prompts tokenised by the
 * server's backend (or, with add_special_tokens or --hide-bos, by
 * serve_tok.c) and checked against its vocabulary and context.
 */
#include "harness/serve/serve_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static int is_int(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
           fabs(v->valuedouble) < 9e18;
}

void sv_req_free(sv_req *r)
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

/* Sampling fields common to both endpoints (and add_special_tokens). */
static int parse_sampling(serve *s, sv_req *r, const char *body, size_t len,
                          char *msg, size_t cap)
{
    const cJSON *j = r->json, *v;
    r->special = -1;
    if ((v = get(j, "add_special_tokens")) && !cJSON_IsNull(v)) {
        if (!cJSON_IsBool(v))
            return bad(msg, cap, "'%s' must be true or false", "add_special_tokens");
        r->special = cJSON_IsTrue(v);
    }
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

/* One prompt given as text: tokens as the backend makes them, or with
 * the request's add_special_tokens (serve_tok.c). */
static int add_text(serve *s, const sv_req *r, sv_item *it, const char *text,
                    em_err *err)
{
    it->prompt = text;
    if (r->special >= 0 && !s->tok)
        return em_errorf(err, "'add_special_tokens' needs the model's "
                         "vocabulary: %s", s->tok_why);
    if (sv_tok_prompt(s, text, r->special, &it->toks, &it->n, err))
        return -1;
    if (r->special != 0)
        it->hidden = sv_tok_hide_bos(s, 1, &it->toks, &it->n);
    return 0;
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
            if (add_text(s, r, it, e->valuestring, &err)) {
                snprintf(msg, cap, "'prompt': %.400s", err.msg);
                return -1;
            }
        } else if (cJSON_IsArray(e)) {
            if (add_ids(s, it, e, msg, cap))
                return -1;
            if (r->special != 0)
                it->hidden = sv_tok_hide_bos(s, 0, &it->toks, &it->n);
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

sv_req *sv_parse_request(serve *s, const char *body, size_t len, int chat,
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
        sv_req_free(r);
        return NULL;
    }
    return r;
}

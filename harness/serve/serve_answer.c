/*
 * serve_answer.c - the server's JSON answers (see serve_int.h): OpenAI's
 * completion and chat completion shapes with their logprobs, the model
 * list and the error body. Token texts come from the backend
 * (backend_token_text); JSON needs valid UTF-8, so a byte that starts no
 * valid sequence becomes U+FFFD and the exact bytes go beside it.
 */
#include "harness/serve/serve_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/utf8.h"

/* s[0..n) as valid UTF-8 (JSON must be): a byte that starts no valid
 * sequence - half a character from a byte-fallback token - becomes
 * U+FFFD, as it does in Python's decode(errors="replace"). Malloc'd. */
char *sv_utf8_clean(const char *s, size_t n)
{
    em_buf b = {0};
    for (size_t i = 0; i < n;) {
        size_t len = utf8_valid_len(s + i, n - i);
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
    char *c = sv_utf8_clean(s, n);
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
    while (i < n && s[i] && utf8_valid_len(s + i, n - i))
        i += utf8_valid_len(s + i, n - i);
    if (i == n)
        return;
    char *hex = em_malloc(2 * n + 1);
    for (size_t k = 0; k < n; k++)
        snprintf(hex + 2 * k, 3, "%02x", (unsigned char)s[k]);
    cJSON_AddStringToObject(choice, "emerge_text_hex", hex);
    free(hex);
}

/* OpenAI's error shape; "code" is the HTTP status. */
char *sv_error_json(unsigned status, const char *msg)
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
        p->off[i] = utf8_count(p->base, o < p->base_len ? o : p->base_len);
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
        char *key = sv_utf8_clean(piece, (size_t)(len < 256 ? len : 255));
        /* Two ids with the same text: keep the likelier (listed first). */
        if (!cJSON_GetObjectItemCaseSensitive(o, key))
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
        for (int i = it->hidden; r->echo && i < it->n; i++)
            add_token(s, arr, pc.text[i], pc.off[i], i ? &it->res.prompt[i] : NULL,
                      r->logprobs);
        long off = utf8_count(pc.base, pc.base_len);
        for (int i = 0; i < it->res.n_gen; i++) {
            char piece[256];
            int len = backend_token_text(s->b, it->res.gen[i], piece, sizeof piece);
            piece[len < 256 ? len : 255] = '\0';
            add_token(s, arr, piece, off, &it->res.gen_score[i], r->logprobs);
            off += utf8_count(piece, strlen(piece));
        }
    }
    cJSON_AddStringToObject(c, "finish_reason", finish_reason(it));
    cJSON_AddItemToArray(choices, c);
    *ptoks += it->n - it->hidden;
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

char *sv_answer_json(serve *s, const sv_req *r, long id)
{
    cJSON *o = cJSON_CreateObject();
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
            ptoks += r->items[i].n - r->items[i].hidden;
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

char *sv_models_json(const serve *s)
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

/*
 * serve_tok.c - the server's vocabulary routes and BOS handling (see
 * serve_int.h).
 *
 * Owns: a second, read-only copy of the served model's vocabulary (the
 * backend interface tokenizes with the model's BOS rule only; these
 * routes need more: no specials, special tokens written in the text, the
 * BOS/EOS texts), read from the model path as `emerge tokenize` reads it,
 * and the answers of
 *   POST /tokenize       {"prompt", "add_special_tokens" (default true),
 *                        "return_token_strs"} -> {"count", "max_model_len",
 *                        "tokens", "token_strs"}
 *   POST /detokenize     {"tokens"} -> {"prompt"}
 *   GET  /tokenizer_info {"tokenizer_class", "bos_token", "eos_token",
 *                        "pad_token", "chat_template", ...}
 * in vLLM's shapes, which lm-evaluation-harness's RemoteTokenizer reads
 * (lm_eval/utils.py, 0.4.13.dev0: eos_token and bos_token as texts, their
 * ids as /tokenize of those texts without specials, decode as
 * /detokenize). As in vLLM (a Hugging Face tokenizer), /tokenize finds the
 * texts of control tokens ("<s>", "<|endoftext|>") in the prompt and
 * gives their ids; completions' string prompts keep the backend's rule
 * (control texts are plain text), as before.
 *
 * Also the prompts' BOS: add_special_tokens on a completion, and
 * --hide-bos (serve_opts.hide_bos), which conditions on the start token
 * emerge's scorer uses without showing it in the echo.
 */
#include "harness/serve/serve_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/hf.h"

static size_t text_len(const tokenizer *t, int32_t id)
{
    size_t len = 0;
    return tok_text(t, id, &len) ? len : 0;
}

/* Control tokens with a text, longest first (the longest match wins), and
 * the bytes their texts start with. */
static void collect_controls(serve *s)
{
    int V = tok_n_vocab(s->tok);
    s->ctrl = em_malloc(sizeof(int32_t) * (size_t)(V ? V : 1));
    for (int32_t i = 0; i < V; i++)
        if (tok_is_control(s->tok, i) && text_len(s->tok, i)) {
            size_t len;
            s->ctrl[s->n_ctrl++] = i;
            s->ctrl_first[(unsigned char)*tok_text(s->tok, i, &len)] = 1;
        }
    /* insertion sort: a vocabulary has few control tokens */
    for (int i = 1; i < s->n_ctrl; i++)
        for (int j = i; j > 0 && text_len(s->tok, s->ctrl[j - 1]) <
                                 text_len(s->tok, s->ctrl[j]); j--) {
            int32_t t = s->ctrl[j];
            s->ctrl[j] = s->ctrl[j - 1];
            s->ctrl[j - 1] = t;
        }
}

void sv_tok_open(serve *s)
{
    em_err err;
    hf_opts ho = {.shapes_only = 1};
    if (!backend_can_complete(s->b)) {
        snprintf(s->tok_why, sizeof s->tok_why, "the '%s' backend has no "
                 "local vocabulary", s->b->ops->name);
        return;
    }
    if (hf_open_path(s->o.model_path, &ho, &s->tok_g, &err) ||
        tok_build(s->tok_g, &s->tok, &err)) {
        snprintf(s->tok_why, sizeof s->tok_why, "%.250s", err.msg);
        if (s->tok_g)
            gguf_close(s->tok_g);
        s->tok_g = NULL;
        return;
    }
    collect_controls(s);
}

void sv_tok_close(serve *s)
{
    tok_free(s->tok);
    if (s->tok_g)
        gguf_close(s->tok_g);
    free(s->ctrl);
}

static int32_t start_token(const tokenizer *t)
{
    int32_t b = tok_bos(t);
    return b >= 0 ? b : tok_eos(t);
}

int sv_tok_prompt(serve *s, const char *text, int special, int32_t **ids,
                  int *n, em_err *err)
{
    if (special < 0 || !s->tok)
        return backend_tokenize(s->b, text, ids, n, err);
    if (tok_encode(s->tok, text, strlen(text), special, ids, n, err))
        return -1;
    if (*n == 0 && start_token(s->tok) >= 0) { /* something to condition on */
        (*ids)[0] = start_token(s->tok);
        *n = 1;
    }
    return 0;
}

int sv_tok_hide_bos(serve *s, int from_text, int32_t **ids, int *n)
{
    if (!s->o.hide_bos || !s->tok || !tok_adds_bos(s->tok) || tok_bos(s->tok) < 0)
        return 0;
    int32_t bos = tok_bos(s->tok);
    if (*n > 0 && (*ids)[0] == bos)
        return from_text; /* text: the vocabulary's rule put it there */
    if (from_text)
        return 0;
    *ids = em_realloc(*ids, sizeof(int32_t) * (size_t)(*n + 1));
    memmove(*ids + 1, *ids, sizeof(int32_t) * (size_t)*n);
    (*ids)[0] = bos;
    (*n)++;
    return 1;
}

/* ------------------------------------------------------------- routes */

static char *print_free(cJSON *o)
{
    char *str = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return str;
}

static char *fail(unsigned code, unsigned *status, const char *fmt,
                  const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    *status = code;
    return sv_error_json(code, msg);
}

/* The control token whose text starts p[0..n), or -1. */
static int32_t control_at(const serve *s, const char *p, size_t n)
{
    for (int i = 0; i < s->n_ctrl; i++) {
        size_t len = 0;
        const char *t = tok_text(s->tok, s->ctrl[i], &len);
        if (len <= n && !memcmp(p, t, len))
            return s->ctrl[i];
    }
    return -1;
}

static void push_ids(em_buf *out, const int32_t *ids, int n)
{
    em_buf_put(out, (const char *)ids, sizeof(int32_t) * (size_t)n);
}

static int push_text(const serve *s, const char *p, size_t n, em_buf *out,
                     em_err *err)
{
    int32_t *ids = NULL;
    int k = 0;
    if (n && tok_encode(s->tok, p, n, 0, &ids, &k, err))
        return -1;
    push_ids(out, ids, k);
    free(ids);
    return 0;
}

/* text -> ids with control-token texts read as those tokens, and the
 * vocabulary's BOS/EOS when special. ids in out (int32_t each). */
static int encode_parsed(const serve *s, const char *text, int special,
                         em_buf *out, em_err *err)
{
    int32_t bos = tok_bos(s->tok), eos = tok_eos(s->tok);
    if (special && tok_adds_bos(s->tok) && bos >= 0)
        push_ids(out, &bos, 1);
    size_t n = strlen(text), from = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)text[i];
        int32_t c = s->ctrl_first[b] ? control_at(s, text + i, n - i) : -1;
        if (c < 0)
            continue;
        size_t len = 0;
        tok_text(s->tok, c, &len);
        if (push_text(s, text + from, i - from, out, err))
            return -1;
        push_ids(out, &c, 1);
        from = i + len;
        i = from - 1;
    }
    if (push_text(s, text + from, n - from, out, err))
        return -1;
    if (special && tok_adds_eos(s->tok) && eos >= 0)
        push_ids(out, &eos, 1);
    return 0;
}

/* The bytes one token stands for: a control token's text (as a Hugging
 * Face decode without skip_special_tokens shows it), else its piece. */
static void token_bytes(const serve *s, int32_t id, em_buf *b)
{
    size_t len = 0;
    const char *t = tok_text(s->tok, id, &len);
    if (tok_is_control(s->tok, id)) {
        em_buf_put(b, t, len);
        return;
    }
    char piece[256];
    int n = tok_decode(s->tok, id, piece, sizeof piece);
    em_buf_put(b, piece, (size_t)(n < 256 ? n : 255));
}

static cJSON *parse_body(const char *body, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *token_strs(const serve *s, const int32_t *ids, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        const char *t = tok_text(s->tok, ids[i], &len);
        char *c = sv_utf8_clean(t ? t : "", t ? len : 0);
        cJSON_AddItemToArray(a, cJSON_CreateString(c));
        free(c);
    }
    return a;
}

static char *tokenize_answer(serve *s, const cJSON *j, unsigned *status)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "prompt");
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "add_special_tokens");
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "return_token_strs");
    if (!cJSON_IsString(p))
        return fail(400, status, "'%s' must be a string (chat messages are "
                    "not tokenised: emerge has no chat template)", "prompt");
    if (sp && !cJSON_IsNull(sp) && !cJSON_IsBool(sp))
        return fail(400, status, "'%s' must be true or false",
                    "add_special_tokens");
    em_buf ids = {0};
    em_err err;
    if (encode_parsed(s, p->valuestring, !cJSON_IsFalse(sp), &ids, &err)) {
        char *e = fail(400, status, "'prompt': %.400s", err.msg);
        em_buf_free(&ids);
        return e;
    }
    int n = (int)(ids.len / sizeof(int32_t));
    const int32_t *v = (const int32_t *)ids.s;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "count", n);
    cJSON_AddNumberToObject(o, "max_model_len", s->b->info.n_ctx);
    cJSON *t = cJSON_AddArrayToObject(o, "tokens");
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(t, cJSON_CreateNumber(v[i]));
    if (cJSON_IsTrue(rs))
        cJSON_AddItemToObject(o, "token_strs", token_strs(s, v, n));
    else
        cJSON_AddNullToObject(o, "token_strs");
    em_buf_free(&ids);
    *status = 200;
    return print_free(o);
}


static char *detokenize_answer(serve *s, const cJSON *j, unsigned *status)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tokens"), *e;
    int V = tok_n_vocab(s->tok);
    if (!cJSON_IsArray(t))
        return fail(400, status, "'%s' must be a list of token ids", "tokens");
    em_buf b = {0};
    int first = 1;
    cJSON_ArrayForEach(e, t) {
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) ||
            e->valuedouble < 0 || e->valuedouble >= V) {
            em_buf_free(&b);
            char msg[96];
            snprintf(msg, sizeof msg, "'tokens': token ids must be integers "
                     "in [0, %d)", V);
            return fail(400, status, "%s", msg);
        }
        size_t at = b.len;
        token_bytes(s, (int32_t)e->valuedouble, &b);
        /* SentencePiece decodes drop the space the encoder put first */
        if (first && b.len > at && !strcmp(tok_model(s->tok), "llama") &&
            b.s[at] == ' ') {
            memmove(b.s + at, b.s + at + 1, b.len - at - 1);
            b.len--;
        }
        first = 0;
    }
    char *c = sv_utf8_clean(b.s ? b.s : "", b.len);
    em_buf_free(&b);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "prompt", c);
    free(c);
    *status = 200;
    return print_free(o);
}

typedef char *(*tok_answer_fn)(serve *, const cJSON *, unsigned *);

/* The vocabulary's routes: 501 without one, 400 for a body that is not a
 * JSON object, else what answer makes of it. what: "tokenize" or
 * "detokenize", for the 501's message. */
static char *tok_route(serve *s, const char *body, size_t len,
                       unsigned *status, const char *what, tok_answer_fn answer)
{
    if (!s->tok) {
        char why[490];
        snprintf(why, sizeof why, "%s with: %.460s", what, s->tok_why);
        return fail(501, status, "no vocabulary to %s", why);
    }
    cJSON *j = parse_body(body, len);
    if (!j)
        return fail(400, status, "the request body must be a JSON %s", "object");
    char *out = answer(s, j, status);
    cJSON_Delete(j);
    return out;
}

char *sv_tokenize_json(serve *s, const char *body, size_t len, unsigned *status)
{
    return tok_route(s, body, len, status, "tokenize", tokenize_answer);
}

char *sv_detokenize_json(serve *s, const char *body, size_t len, unsigned *status)
{
    return tok_route(s, body, len, status, "detokenize", detokenize_answer);
}

/* A token's text as a JSON string, or null when id is none. */
static void add_token_text(cJSON *o, const char *key, const serve *s, int32_t id)
{
    size_t len = 0;
    const char *t = id >= 0 ? tok_text(s->tok, id, &len) : NULL;
    if (!t) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char *c = sv_utf8_clean(t, len);
    cJSON_AddStringToObject(o, key, c);
    free(c);
}

/* Hugging Face's name for the tokenizer a GGUF vocabulary stands for. */
static const char *tokenizer_class(const tokenizer *t)
{
    const char *m = tok_model(t);
    return !strcmp(m, "llama") ? "LlamaTokenizerFast"
         : !strcmp(m, "gpt2") ? "GPT2TokenizerFast" : m;
}

char *sv_tokenizer_info_json(serve *s, unsigned *status)
{
    if (!s->tok)
        return fail(501, status, "no vocabulary to describe: %s", s->tok_why);
    const tokenizer *t = s->tok;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tokenizer_class", tokenizer_class(t));
    add_token_text(o, "bos_token", s, tok_bos(t));
    add_token_text(o, "eos_token", s, tok_eos(t));
    uint64_t pad = 0;
    int has_pad = gguf_get_u64(s->tok_g, "tokenizer.ggml.padding_token_id", &pad) == 0 &&
                  pad < (uint64_t)tok_n_vocab(t);
    add_token_text(o, "pad_token", s, has_pad ? (int32_t)pad : -1);
    cJSON_AddNumberToObject(o, "bos_token_id", tok_bos(t));
    cJSON_AddNumberToObject(o, "eos_token_id", tok_eos(t));
    cJSON_AddBoolToObject(o, "add_bos_token", tok_adds_bos(t));
    cJSON_AddBoolToObject(o, "add_eos_token", tok_adds_eos(t));
    cJSON_AddNumberToObject(o, "model_max_length", s->b->info.n_ctx);
    cJSON_AddNumberToObject(o, "vocab_size", tok_n_vocab(t));
    char *tmpl = gguf_get_str(s->tok_g, "tokenizer.chat_template");
    if (tmpl)
        cJSON_AddStringToObject(o, "chat_template", tmpl);
    else
        cJSON_AddNullToObject(o, "chat_template");
    free(tmpl);
    cJSON_AddStringToObject(o, "gguf_tokenizer_model", tok_model(t));
    cJSON_AddStringToObject(o, "gguf_tokenizer_pre", tok_pre(t));
    cJSON_AddBoolToObject(o, "hide_bos", s->o.hide_bos != 0);
    *status = 200;
    return print_free(o);
}

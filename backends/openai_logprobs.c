/*
 * openai_logprobs.c - reading log-probs out of an OpenAI-compatible
 * server's answers, for the openai backend (openai.c) and its probe
 * (openai_probe.c); see openai_int.h.
 *
 * Owns: echo alignment (which prompt bytes each returned token stands
 * for), the shapes of prompt log-probs (completions' echo arrays, vLLM's
 * prompt_logprobs), the sums of a continuation's log-probs, and the
 * generation log-probs of both shapes (logprobs.token_logprobs and
 * logprobs.content[]) with their coverage checks.
 */
#include "backends/openai_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

const cJSON *oa_get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

const cJSON *oa_choice0(const cJSON *json, const char *field)
{
    const cJSON *ch = oa_get(json, "choices");
    const cJSON *c0 = cJSON_IsArray(ch) ? cJSON_GetArrayItem(ch, 0) : NULL;
    return cJSON_IsObject(c0) ? oa_get(c0, field) : NULL;
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
int oa_is_start_text(const char *s)
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
        if (k == 0 && *s && oa_is_start_text(s) && strncmp(a->p, s, strlen(s)))
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
        if (!cJSON_IsArray(arr[j] = oa_get(lp, name[j]))) {
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
    return 0;
}

/* usage.NAME when the server sent a count, else -1. */
int oa_usage_count(const cJSON *json, const char *name)
{
    const cJSON *v = oa_get(oa_get(json, "usage"), name);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 1e9
               ? (int)v->valuedouble : -1;
}

/* The counts agree: the prompt's tokens and the generated ones make up
 * the echo (usage when the server sent it, else at most max_tokens).
 * max_tokens < 0: the tokens are the prompt's alone (prompt_logprobs). */
static int ll_counts(const cJSON *json, int n, int n_prompt, int max_tokens,
                     char *msg, size_t cap)
{
    int up = oa_usage_count(json, "prompt_tokens");
    int uc = max_tokens < 0 ? 0 : oa_usage_count(json, "completion_tokens");
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

void oa_toks_init(oa_toks *t, int n)
{
    *t = (oa_toks){.n = n};
    t->texts = em_calloc((size_t)n + 1, sizeof *t->texts);
    t->lp = em_malloc(sizeof(double) * ((size_t)n + 1));
    t->best = em_malloc(sizeof(double) * ((size_t)n + 1));
}

void oa_toks_free(oa_toks *t)
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
static int ll_sum(const aligner *a, const oa_toks *t, int n_prompt,
                  backend_ll_res *r, char *msg, size_t cap)
{
    double sum = 0;
    int ntok = 0, greedy = 1;
    for (int k = 0; k < n_prompt; k++) {
        if (a->at[k] < a->bound || a->at[k] >= a->len)
            continue;
        if (k == 0 && isnan(t->lp[k]) && oa_is_start_text(t->texts[k]))
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


/* Fills t from vLLM's choices[0].prompt_logprobs: null for the first
 * token, then per position {"<id>": {logprob, rank, decoded_token}, ...}
 * whose first entry is the prompt's token and the rest the most likely
 * ones (vllm/v1/engine/logprobs.py, _make_logprob_dict). */
static int plp_read(const cJSON *arr, oa_toks *t, char *msg, size_t cap)
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
        const cJSON *lp = oa_get(tok, "logprob"), *dt = oa_get(tok, "decoded_token");
        if (!cJSON_IsNumber(lp) || !cJSON_IsString(dt)) {
            snprintf(msg, cap, "the server's prompt_logprobs[%d] has no "
                     "{logprob, decoded_token} for the prompt's token", k);
            return OA_LIMIT;
        }
        t->texts[k] = dt->valuestring;
        t->lp[k] = lp->valuedouble;
        t->best[k] = lp->valuedouble;
        for (const cJSON *o = tok->next; o; o = o->next) {
            const cJSON *v = oa_get(o, "logprob");
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
static int plp_first(const char *prompt, size_t bound, oa_toks *t)
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
    const cJSON *legacy = oa_get(lp, "token_logprobs"), *content = oa_get(lp, "content");
    const cJSON *arr = cJSON_IsArray(legacy) ? legacy : content;
    const cJSON *toks = cJSON_IsArray(legacy) ? oa_get(lp, "tokens") : NULL;
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
        const cJSON *x = arr == legacy ? e : oa_get(e, "logprob");
        const cJSON *s = arr == legacy ? t : oa_get(e, "token");
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
    int uc = oa_usage_count(json, "completion_tokens");
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

/* ------------------------------------------------------------ exported */

int oa_echo_toks(const cJSON *json, oa_toks *t, char *msg, size_t cap)
{
    const cJSON *arr[4];
    int n, rc = ll_arrays(oa_choice0(json, "logprobs"), arr, &n, msg, cap);
    if (rc)
        return rc;
    oa_toks_init(t, n);
    const cJSON *s = arr[0]->child, *l = arr[1]->child, *p = arr[2]->child;
    for (int k = 0; k < n; k++, s = s->next, l = l->next, p = p->next) {
        t->texts[k] = s->valuestring;
        t->lp[k] = cJSON_IsNumber(l) ? l->valuedouble : NAN;
        t->best[k] = top_value(p);
    }
    return 0;
}

int oa_echo_offsets(const cJSON *json, char *msg, size_t cap)
{
    const cJSON *lp = oa_choice0(json, "logprobs");
    const cJSON *off = oa_get(lp, "text_offset"), *tok = oa_get(lp, "tokens");
    if (!cJSON_IsArray(off) || !cJSON_IsArray(tok)) {
        snprintf(msg, cap, "the answer has no logprobs.text_offset");
        return -1;
    }
    return check_offsets(off, tok, msg, cap);
}

int oa_plp_toks(const cJSON *json, const char *prompt, size_t bound,
                oa_toks *t, char *msg, size_t cap)
{
    const cJSON *arr = oa_choice0(json, "prompt_logprobs");
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
    if (n == 0) {
        snprintf(msg, cap, "no choices[0].prompt_logprobs in the answer");
        return OA_LIMIT;
    }
    oa_toks_init(t, n);
    int rc = plp_read(arr, t, msg, cap);
    if (rc == 0 && !t->texts[0] && plp_first(prompt, bound, t)) {
        snprintf(msg, cap, "the server's prompt_logprobs tokens (decoded_token) "
                 "do not spell the prompt");
        rc = -1;
    }
    return rc;
}

int oa_ll_score(const char *prompt, size_t bound, const cJSON *json,
                const oa_toks *t, int gen, backend_ll_res *r, int *n_prompt,
                char *msg, size_t cap)
{
    aligner a;
    al_init(&a, prompt, strlen(prompt), bound, t->n, msg, cap);
    int up = oa_usage_count(json, "prompt_tokens");
    int np = echo_align(&a, t->texts, gen < 0 ? t->n : up <= t->n ? up : -1);
    int rc = np < 0 ? (a.short_end ? OA_LIMIT : -1)
             : ll_counts(json, t->n, np, gen, msg, cap) ? -1
             : ll_sum(&a, t, np, r, msg, cap);
    al_free(&a);
    if (n_prompt)
        *n_prompt = np;
    return rc;
}

int oa_gen_logprobs(const cJSON *json, const cJSON *lp, const char *text,
                    int finish, backend_gen_res *r, char *msg, size_t cap)
{
    gen_lp g = {0};
    int rc = gen_lp_read(lp, &g, msg, cap);
    if (rc == 0 && g.v)
        rc = gen_cover(json, &g, text, finish, r, msg, cap);
    gen_lp_free(&g);
    return rc;
}

/*
 * replay.c - a test backend that answers from recorded responses.
 *
 * Owns: backend_replay_ops. The model's `path` is a JSONL file, one
 * recorded request per line:
 *   {"kind":"loglik","context":"...","continuation":"...",
 *    "logprob":-1.5,"n_tokens":2,"is_greedy":true}
 *   {"kind":"generate","prompt":"...","text":"...",
 *    "n_tokens":3,"token_logprobs":[-0.1,-0.2,-0.3]}
 * (n_tokens, is_greedy and token_logprobs are optional; a sampled
 * generation carries "seed":"<decimal uint64>", and a request with
 * temperature > 0 is answered by the record of its prompt and seed, else
 * by the record of its prompt without a seed). A request that was
 * not recorded fails on its own with a clear error; the rest of the batch
 * still runs. `emerge sweep --record FILE` writes this format from a real
 * run, so fixtures come from real models. Later lines win over earlier
 * ones for the same request.
 */
#include "backends/backend.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    int is_gen;
    char *a, *b;       /* context+continuation, or prompt and seed (b NULL
                        * for a generation recorded without one) */
    double logprob;
    int n_tokens, is_greedy;
    char *text;
    float *tlp;        /* token log-probs, n_tokens of them, or NULL */
} rec;

typedef struct replay {
    rec *recs;
    int n;
    int *slot;         /* open addressing: index into recs, -1 empty */
    size_t cap;        /* power of two */
} replay;

static uint64_t rec_hash(int is_gen, const char *a, const char *b)
{
    uint64_t h = em_hash64(a, strlen(a), (uint64_t)is_gen);
    return b ? em_hash64(b, strlen(b), h) : h;
}

static int rec_same(const rec *r, int is_gen, const char *a, const char *b)
{
    return r->is_gen == is_gen && !strcmp(r->a, a) &&
           ((!r->b && !b) || (r->b && b && !strcmp(r->b, b)));
}

/* The slot holding this request, or the empty slot where it belongs. */
static size_t find_slot(const replay *rp, int is_gen, const char *a, const char *b)
{
    size_t i = rec_hash(is_gen, a, b) & (rp->cap - 1);
    while (rp->slot[i] >= 0 && !rec_same(&rp->recs[rp->slot[i]], is_gen, a, b))
        i = (i + 1) & (rp->cap - 1);
    return i;
}

static void rec_clear(rec *r)
{
    free(r->a);
    free(r->b);
    free(r->text);
    free(r->tlp);
}

static void replay_free(replay *rp)
{
    for (int i = 0; i < rp->n; i++)
        rec_clear(&rp->recs[i]);
    free(rp->recs);
    free(rp->slot);
    free(rp);
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int parse_rec(const cJSON *o, rec *r, const char *where, em_err *err)
{
    const char *kind = jstr(o, "kind");
    if (!kind || (strcmp(kind, "loglik") && strcmp(kind, "generate")))
        return em_errorf(err, "%s: 'kind' must be \"loglik\" or \"generate\"", where);
    r->is_gen = kind[0] == 'g';
    const char *a = jstr(o, r->is_gen ? "prompt" : "context");
    const char *b = jstr(o, r->is_gen ? "seed" : "continuation");
    const char *text = r->is_gen ? jstr(o, "text") : NULL;
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(o, "logprob");
    if (!a || (!r->is_gen && (!b || !cJSON_IsNumber(lp))) || (r->is_gen && !text))
        return em_errorf(err, "%s: a %s record needs %s", where, kind,
                         r->is_gen ? "string 'prompt' and 'text'"
                                   : "string 'context', 'continuation' and "
                                     "number 'logprob'");
    r->a = em_strdup(a);
    r->b = em_strdup(b);
    r->text = em_strdup(text);
    r->logprob = cJSON_IsNumber(lp) ? lp->valuedouble : 0;
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(o, "n_tokens");
    r->n_tokens = cJSON_IsNumber(nt) ? nt->valueint : 0;
    r->is_greedy = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "is_greedy"));
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(o, "token_logprobs");
    if (r->is_gen && cJSON_IsArray(tl)) {
        int m = cJSON_GetArraySize(tl);
        r->tlp = em_malloc(sizeof(float) * (size_t)(m ? m : 1));
        for (int i = 0; i < m; i++)
            r->tlp[i] = (float)cJSON_GetArrayItem(tl, i)->valuedouble;
        r->n_tokens = m;
    }
    return 0;
}

static int replay_add(replay *rp, rec *r)
{
    if ((size_t)(rp->n + 1) * 2 > rp->cap) {
        size_t cap = rp->cap ? rp->cap * 2 : 64;
        free(rp->slot);
        rp->slot = em_malloc(sizeof *rp->slot * cap);
        for (size_t i = 0; i < cap; i++)
            rp->slot[i] = -1;
        rp->cap = cap;
        for (int i = 0; i < rp->n; i++)
            rp->slot[find_slot(rp, rp->recs[i].is_gen, rp->recs[i].a,
                               rp->recs[i].b)] = i;
    }
    size_t s = find_slot(rp, r->is_gen, r->a, r->b);
    if (rp->slot[s] >= 0) { /* re-recorded: the later line wins */
        rec_clear(&rp->recs[rp->slot[s]]);
        rp->recs[rp->slot[s]] = *r;
        return 0;
    }
    rp->recs = em_realloc(rp->recs, sizeof *rp->recs * (size_t)(rp->n + 1));
    rp->recs[rp->n] = *r;
    rp->slot[s] = rp->n++;
    return 0;
}

static int replay_load(replay *rp, const char *path, char *text, em_err *err)
{
    int line = 0;
    for (char *p = text, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        line++;
        if (strspn(p, " \t\r") == strlen(p))
            continue;
        char where[600];
        snprintf(where, sizeof where, "%s:%d", path, line);
        cJSON *o = cJSON_Parse(p);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            return em_errorf(err, "%s: not a JSON object", where);
        }
        rec r = {0};
        int rc = parse_rec(o, &r, where, err);
        cJSON_Delete(o);
        if (rc != 0) {
            rec_clear(&r);
            return -1;
        }
        replay_add(rp, &r);
    }
    return 0;
}

static int replay_open(const backend_spec *spec, void **state, backend_info *info,
                       em_err *err)
{
    if (!spec->path)
        return em_errorf(err, "replay: 'path' (a JSONL file of recorded "
                         "requests) is required");
    char *text;
    if (em_read_file(spec->path, &text, NULL, err) != 0)
        return -1;
    replay *rp = em_calloc(1, sizeof *rp);
    int rc = replay_load(rp, spec->path, text, err);
    free(text);
    if (rc != 0) {
        replay_free(rp);
        return -1;
    }
    snprintf(info->name, sizeof info->name, "%s", spec->name ? spec->name : "replay");
    snprintf(info->arch, sizeof info->arch, "replay");
    info->n_params = spec->n_params;
    info->caps = BACKEND_CAP_LOGLIK | BACKEND_CAP_GENERATE | BACKEND_CAP_GEN_LOGPROBS;
    *state = rp;
    return 0;
}

static const rec *lookup(const replay *rp, int is_gen, const char *a, const char *b)
{
    if (!rp->cap)
        return NULL;
    int i = rp->slot[find_slot(rp, is_gen, a, b)];
    return i >= 0 ? &rp->recs[i] : NULL;
}

/* Short, single-line quote of a prompt for error messages. */
static void quote_tail(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);
    const char *t = n > 60 ? s + n - 60 : s;
    snprintf(out, cap, "%s%s", n > 60 ? "..." : "", t);
    for (char *c = out; *c; c++)
        if (*c == '\n')
            *c = '|';
}

static int replay_loglik(void *state, const backend_ll_req *req,
                         backend_ll_res *res, int n, em_err *err)
{
    (void)err;
    for (int i = 0; i < n; i++) {
        const rec *r = lookup(state, 0, req[i].context, req[i].continuation);
        if (!r) {
            char q[80];
            quote_tail(q, sizeof q, req[i].context);
            snprintf(res[i].error, sizeof res[i].error,
                     "replay: no recorded loglik for context \"%s\" + \"%.40s\"",
                     q, req[i].continuation);
            continue;
        }
        res[i].logprob = r->logprob;
        res[i].n_tokens = r->n_tokens;
        res[i].is_greedy = r->is_greedy;
        res[i].ok = 1;
    }
    return 0;
}

static int replay_generate(void *state, const backend_gen_req *req,
                           backend_gen_res *res, int n, em_err *err)
{
    (void)err;
    for (int i = 0; i < n; i++) {
        char seed[32];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)req[i].seed);
        const rec *r = req[i].temperature > 0 ? lookup(state, 1, req[i].prompt, seed)
                                              : NULL;
        if (!r)
            r = lookup(state, 1, req[i].prompt, NULL);
        if (!r) {
            char q[80];
            quote_tail(q, sizeof q, req[i].prompt);
            snprintf(res[i].error, sizeof res[i].error,
                     "replay: no recorded generation for prompt \"%s\"", q);
            continue;
        }
        res[i].text = em_strdup(r->text);
        res[i].n_tokens = r->n_tokens;
        if (r->tlp) {
            res[i].token_logprobs = em_malloc(sizeof(float) * (size_t)(r->n_tokens + 1));
            memcpy(res[i].token_logprobs, r->tlp, sizeof(float) * (size_t)r->n_tokens);
            for (int j = 0; j < r->n_tokens; j++)
                res[i].sum_logprob += r->tlp[j];
        }
        res[i].ok = 1;
    }
    return 0;
}

static void replay_close(void *state) { replay_free(state); }

const backend_ops backend_replay_ops = {
    .name = "replay",
    .open = replay_open,
    .loglikelihood = replay_loglik,
    .generate = replay_generate,
    .close = replay_close,
};

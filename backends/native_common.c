/*
 * native_common.c - the pieces the native and cuda backends and the server
 * share; see native_common.h.
 */
#include "backends/native_common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/model_params.h"

int native_opt_int(const backend_spec *sp, const char *key, int def, int lo,
                   int hi, int *out, em_err *err)
{
    const char *v = backend_spec_opt(sp, key);
    *out = def;
    if (!v)
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || *end || n < lo || n > hi)
        return em_errorf(err, "option '%s': '%s' is not an integer in "
                         "[%d, %d]", key, v, lo, hi);
    *out = (int)n;
    return 0;
}

void native_fill_info(const backend_spec *spec, const model *m,
                      backend_info *info)
{
    const char *name = spec->name;
    char *gname = NULL;
    if (!name || !*name)
        name = gname = gguf_get_str(m->gguf, "general.name");
    if (!name) {
        const char *slash = strrchr(spec->path, '/');
        name = slash ? slash + 1 : spec->path;
    }
    snprintf(info->name, sizeof info->name, "%s", name);
    free(gname);
    snprintf(info->arch, sizeof info->arch, "%s", m->hp.arch_name);
    double total;
    model_params_of(m->gguf, &total, &info->n_params_nonembed);
    info->n_params = m->n_params;
    info->n_ctx = m->n_ctx;
    info->n_vocab = m->hp.n_vocab;
    info->caps = BACKEND_CAP_LOGLIK | BACKEND_CAP_GENERATE |
                 BACKEND_CAP_GEN_LOGPROBS;
}

int32_t native_start_token(const tokenizer *t)
{
    int32_t b = tok_bos(t);
    return b >= 0 ? b : tok_eos(t);
}

static int start_only(const tokenizer *t, int32_t **ctx, int *nctx,
                      em_err *err)
{
    int32_t st = native_start_token(t);
    if (st < 0)
        return em_errorf(err, "empty context and no BOS/EOS token");
    *ctx = em_malloc(sizeof(int32_t));
    (*ctx)[0] = st;
    *nctx = 1;
    return 0;
}

int native_encode_pair(const tokenizer *t, const char *context,
                       const char *continuation, int32_t **ctx, int *nctx,
                       int32_t **cont, int *ncont, em_err *err)
{
    size_t lc = strlen(context), ns = 0;
    *ctx = *cont = NULL;
    *nctx = *ncont = 0;
    while (ns < lc && isspace((unsigned char)context[lc - ns - 1]))
        ns++;
    if (lc == 0) { /* condition on BOS; the continuation has no specials */
        if (start_only(t, ctx, nctx, err) == 0 &&
            tok_encode(t, continuation, strlen(continuation), 0, cont, ncont,
                       err) == 0)
            return 0;
        goto fail;
    }
    em_buf full = {0};
    em_buf_put(&full, context, lc);
    em_buf_puts(&full, continuation);
    int32_t *whole = NULL;
    int nwhole = 0;
    int rc = tok_encode(t, full.s, full.len, 1, &whole, &nwhole, err) ||
             tok_encode(t, context, lc - ns, 1, ctx, nctx, err);
    em_buf_free(&full);
    if (rc) {
        free(whole);
        goto fail;
    }
    int skip = *nctx < nwhole ? *nctx : nwhole;
    *ncont = nwhole - skip;
    *cont = em_malloc(sizeof(int32_t) * (size_t)(*ncont + 1));
    memcpy(*cont, whole + skip, sizeof(int32_t) * (size_t)*ncont);
    free(whole);
    if (*nctx == 0) { /* whitespace-only context without BOS */
        free(*ctx);
        *ctx = NULL;
        if (start_only(t, ctx, nctx, err) != 0)
            goto fail;
    }
    return 0;
fail:
    free(*ctx);
    free(*cont);
    *ctx = *cont = NULL;
    *nctx = *ncont = 0;
    return -1;
}

/* Offset of the earliest stop string in text[0..len), or -1; NULL and
 * empty stop strings never match. */
static long find_stop(const char *text, size_t len, const char *const *stop,
                      int n_stop)
{
    long best = -1;
    for (int i = 0; text && i < n_stop; i++) {
        const char *s = stop[i];
        if (!s || !*s)
            continue;
        const char *hit = memmem(text, len, s, strlen(s));
        if (hit && (best < 0 || hit - text < best))
            best = hit - text;
    }
    return best;
}

int native_append_token(const tokenizer *t, int32_t id, em_buf *text,
                        const char *const *stop, int n_stop)
{
    char piece[256];
    int len = tok_decode(t, id, piece, sizeof piece);
    em_buf_put(text, piece, (size_t)(len < (int)sizeof piece ? len : 255));
    long at = find_stop(text->s, text->len, stop, n_stop);
    if (at < 0)
        return 0;
    text->len = (size_t)at;
    text->s[at] = '\0';
    return 1;
}

void native_fail_req(backend_ll_res *r, const char *msg)
{
    r->ok = 0;
    snprintf(r->error, sizeof r->error, "%.255s", msg);
}

int native_prompt_keep(int n, int n_ctx, int max_tokens)
{
    if (n <= n_ctx - 1)
        return n;
    int room = max_tokens < n_ctx / 2 ? max_tokens : n_ctx / 2;
    if (room < 1)
        room = 1;
    return n_ctx - room;
}

int native_generate_one(const native_gen *g, int n_ctx, const backend_gen_req *rq,
                        backend_gen_res *r, em_err *err)
{
    int max = rq->max_tokens > 0 ? rq->max_tokens : 256;
    if (max > n_ctx)
        max = n_ctx;
    uint64_t rng = rq->seed;
    em_buf text = {0};
    float *lps = em_malloc(sizeof(float) * (size_t)max);
    int n = 0;
    if (g->prompt(g->eng, rq->prompt ? rq->prompt : "", max, &r->truncated, err))
        goto fail;
    r->finish = BACKEND_FINISH_LENGTH; /* also max == 0 */
    while (n < max) {
        int32_t t = sample_next(g->smp, g->logits, rq->temperature,
                                rq->top_p > 0 ? rq->top_p : 1.0, &rng);
        r->finish = BACKEND_FINISH_STOP;
        if (t == tok_eos(g->tok))
            break;
        lps[n++] = (float)sample_logprob(g->logits, g->n_vocab, t);
        if (native_append_token(g->tok, t, &text, rq->stop, rq->n_stop))
            break;
        r->finish = n == max ? BACKEND_FINISH_LENGTH : BACKEND_FINISH_CONTEXT;
        if (n == max || g->full(g->eng))
            break;
        if (g->step(g->eng, t, err))
            goto fail;
    }
    r->text = text.s ? em_buf_take(&text) : em_strdup("");
    r->n_tokens = n;
    r->token_logprobs = lps;
    r->sum_logprob = 0;
    for (int i = 0; i < n; i++)
        r->sum_logprob += lps[i];
    r->ok = 1;
    return 0;
fail:
    em_buf_free(&text);
    free(lps);
    return -1;
}

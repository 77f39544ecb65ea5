/*
 * backend.c - what every side of the backend interface shares: the spec's
 * options, freeing results, and the thin dispatch around an open
 * backend's vtable.
 *
 * Owns no backend: the registry (name -> ops, backend_open) is in
 * registry.c, which uses the adapters; the adapters use this file.
 */
#include "backends/backend.h"

#include <stdlib.h>
#include <string.h>

const char *backend_spec_opt(const backend_spec *spec, const char *key)
{
    for (int i = 0; i < spec->n_opts; i++)
        if (!strcmp(spec->opts[i].key, key))
            return spec->opts[i].value;
    return NULL;
}

void backend_gen_res_clear(backend_gen_res *res)
{
    free(res->text);
    free(res->token_logprobs);
    memset(res, 0, sizeof *res);
}

void backend_cmpl_res_clear(backend_cmpl_res *res)
{
    free(res->prompt);
    free(res->gen);
    free(res->gen_score);
    free(res->text);
    memset(res, 0, sizeof *res);
}

int backend_loglikelihood(backend *b, const backend_ll_req *req,
                          backend_ll_res *res, int n, em_err *err)
{
    if (!b->ops->loglikelihood)
        return em_errorf(err, "backend '%s' cannot score log-likelihoods",
                         b->ops->name);
    memset(res, 0, sizeof *res * (size_t)n);
    return b->ops->loglikelihood(b->state, req, res, n, err);
}

int backend_generate(backend *b, const backend_gen_req *req,
                     backend_gen_res *res, int n, em_err *err)
{
    if (!b->ops->generate)
        return em_errorf(err, "backend '%s' cannot generate", b->ops->name);
    memset(res, 0, sizeof *res * (size_t)n);
    return b->ops->generate(b->state, req, res, n, err);
}

void backend_close(backend *b)
{
    if (!b)
        return;
    if (b->ops->close)
        b->ops->close(b->state);
    free(b);
}

int backend_can_complete(const backend *b)
{
    return b->ops->tokenize && b->ops->token_text && b->ops->complete;
}

int backend_tokenize(backend *b, const char *text, int32_t **ids, int *n,
                     em_err *err)
{
    if (!b->ops->tokenize)
        return em_errorf(err, "backend '%s' cannot tokenize", b->ops->name);
    return b->ops->tokenize(b->state, text, ids, n, err);
}

/* 0 bytes when the backend cannot say (it has no token_text). */
int backend_token_text(backend *b, int32_t id, char *buf, int cap)
{
    return b->ops->token_text ? b->ops->token_text(b->state, id, buf, cap) : 0;
}

int backend_complete(backend *b, const backend_cmpl_req *req,
                     backend_cmpl_res *res, int n, em_err *err)
{
    if (!b->ops->complete)
        return em_errorf(err, "backend '%s' cannot complete token ids",
                         b->ops->name);
    memset(res, 0, sizeof *res * (size_t)n);
    return b->ops->complete(b->state, req, res, n, err);
}

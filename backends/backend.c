/*
 * backend.c - the backend registry and the thin dispatch around the vtable.
 *
 * Adding a backend: define its `const backend_ops backend_<name>_ops` in
 * backends/<name>.c and list it in `registry` below.
 */
#include "backends/backend.h"

#include <stdlib.h>
#include <string.h>

extern const backend_ops backend_replay_ops;
extern const backend_ops backend_synthetic_ops;
extern const backend_ops backend_native_ops;
extern const backend_ops backend_openai_ops;
extern const backend_ops backend_cuda_ops; /* loads its plugin on open */

static const backend_ops *const registry[] = {
    &backend_replay_ops,
    &backend_synthetic_ops,
    &backend_native_ops,
    &backend_openai_ops,
    &backend_cuda_ops,
};

#define N_REGISTRY (sizeof registry / sizeof registry[0])

const backend_ops *backend_find(const char *name)
{
    for (size_t i = 0; i < N_REGISTRY; i++)
        if (name && !strcmp(registry[i]->name, name))
            return registry[i];
    return NULL;
}

const char *const *backend_names(void)
{
    static const char *names[N_REGISTRY + 1];
    for (size_t i = 0; i < N_REGISTRY; i++)
        names[i] = registry[i]->name;
    names[N_REGISTRY] = NULL;
    return names;
}

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

int backend_open(const backend_spec *spec, backend **out, em_err *err)
{
    const backend_ops *ops = backend_find(spec->backend);
    if (!ops) {
        em_buf known = {0};
        for (const char *const *n = backend_names(); *n; n++)
            em_buf_printf(&known, "%s%s", known.len ? ", " : "", *n);
        em_errorf(err, "model '%s': unknown backend '%s' (known: %s)",
                  spec->name ? spec->name : "?",
                  spec->backend ? spec->backend : "", known.s ? known.s : "");
        em_buf_free(&known);
        return -1;
    }
    backend *b = em_calloc(1, sizeof *b);
    b->ops = ops;
    if (ops->open(spec, &b->state, &b->info, err) != 0) {
        free(b);
        return em_error_prefix(err, "model '%s'", spec->name ? spec->name : "?");
    }
    if (spec->n_params > 0)
        b->info.n_params = spec->n_params;
    *out = b;
    return 0;
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

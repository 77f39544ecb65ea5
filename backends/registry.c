/*
 * registry.c - the backend registry: backend names to their ops, and
 * backend_open (declared in backend.h).
 *
 * Owns: the list of adapters. It is the one file that knows them all;
 * the adapters know only backend.c's helpers, so the dependencies run one
 * way (registry -> adapters -> backend.c), never in a circle.
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
    if (spec->n_params_nonembed > 0)
        b->info.n_params_nonembed = spec->n_params_nonembed;
    *out = b;
    return 0;
}

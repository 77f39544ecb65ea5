/*
 * model_params.c - parameter counts from tensor shapes; see model_params.h.
 */
#include "backends/engine/model_params.h"

#include <string.h>

#include "backends/engine/hf.h"

static double elements(const gguf_tensor *t)
{
    double e = 1;
    for (int d = 0; d < t->n_dims; d++)
        e *= (double)t->ne[d];
    return e;
}

/* The tensors Kaplan et al. leave out of N: the token and position
 * embeddings and the unembedding when it is a matrix of its own. */
static int is_embedding(const char *name)
{
    return !strcmp(name, "token_embd.weight") ||
           !strcmp(name, "position_embd.weight") ||
           !strcmp(name, "output.weight");
}

void model_params_of(const gguf_file *g, double *total, double *non_embd)
{
    double all = 0, embd = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        double e = elements(&g->tensors[i]);
        all += e;
        if (is_embedding(g->tensors[i].name))
            embd += e;
    }
    *total = all;
    *non_embd = all - embd;
}

int model_count_params(const char *path, double *total, double *non_embd,
                       em_err *err)
{
    gguf_file *g;
    hf_opts o = {NULL, 0, 1}; /* shapes only: nothing rearranged */
    if (hf_open_path(path, &o, &g, err) != 0)
        return -1;
    model_params_of(g, total, non_embd);
    gguf_close(g);
    return 0;
}

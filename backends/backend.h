/*
 * backend.h - the one interface every model backend implements.
 *
 * Owns: the backend vtable, the model spec a family file gives a backend,
 * the request/response structs. backend.c holds the helpers and the
 * dispatch; registry.c maps a backend name ("native", "replay",
 * "synthetic", "openai", ...) to its ops and opens models (backend_open,
 * backend_find, backend_names below).
 *
 * Calls are batched: the harness hands a backend every request it has for
 * a model at once (or a large chunk), so the backend may reorder them, share
 * prompt prefixes (multiple-choice choices share their context) and batch
 * forward passes. Results come back in request order.
 *
 * Return values: 0 when the batch ran (individual requests may still have
 * failed: res[i].ok == 0 with res[i].error set; the harness records those as
 * failed and retries them on the next run, never scores them as wrong);
 * -1 when the whole batch could not run (err says why).
 */
#ifndef EMERGE_BACKEND_H
#define EMERGE_BACKEND_H

#include "base/common.h"

typedef struct backend_opt {
    char *key;
    char *value;
} backend_opt;

/* One model as a family file describes it. Strings are owned by the
 * family that holds the spec. */
typedef struct backend_spec {
    char *name;        /* member name, e.g. "demo-1m" */
    char *backend;     /* "native", "replay", "synthetic", ... */
    char *path;        /* model file / URL, resolved against the family file */
    double n_params;   /* 0: ask the backend */
    double n_tokens;   /* training tokens, 0: unknown (for --axis flops) */
    backend_opt *opts; /* backend-specific key/values from the family file */
    int n_opts;
} backend_spec;

/* The value of option key in spec, or NULL. */
const char *backend_spec_opt(const backend_spec *spec, const char *key);

enum {
    BACKEND_CAP_LOGLIK = 1,        /* loglikelihood() is exact */
    BACKEND_CAP_GENERATE = 2,
    BACKEND_CAP_GEN_LOGPROBS = 4,  /* generate() fills token log-probs */
};

typedef struct backend_info {
    char name[128];   /* model name as the backend knows it */
    char arch[64];    /* "llama", "gptneox", "synthetic", ... */
    double n_params;  /* parameters counted from the tensors, or spec's */
    int n_ctx;        /* context length, 0 = unknown */
    unsigned caps;    /* BACKEND_CAP_* */
} backend_info;

/* log P(continuation | context). */
typedef struct backend_ll_req {
    const char *context;
    const char *continuation;
} backend_ll_req;

typedef struct backend_ll_res {
    double logprob;   /* sum over the continuation's tokens */
    int n_tokens;     /* tokens in the continuation */
    int is_greedy;    /* every continuation token was the argmax */
    int truncated;    /* context tokens dropped from the left so that the
                         request fits the model's context (0: none). A
                         backend that cannot tell reports 0. */
    int ok;           /* 0: this request failed, see error */
    char error[256];
} backend_ll_res;

typedef struct backend_gen_req {
    const char *prompt;
    const char *const *stop; /* stop strings; the text is cut before them */
    int n_stop;
    int max_tokens;
    double temperature;      /* 0 = greedy */
    double top_p;            /* 1 = off */
    uint64_t seed;
} backend_gen_req;

/* Why a generation ended. NONE when the backend does not say. */
enum {
    BACKEND_FINISH_NONE = 0,
    BACKEND_FINISH_STOP,    /* a stop string or the end-of-sequence token */
    BACKEND_FINISH_LENGTH,  /* max_tokens reached */
    BACKEND_FINISH_CONTEXT, /* the model's context is full */
};

typedef struct backend_gen_res {
    char *text;            /* malloc'd; the output, stop string excluded */
    int n_tokens;          /* tokens generated */
    float *token_logprobs; /* malloc'd, n_tokens entries, or NULL when the
                              backend has none (never fewer than n_tokens) */
    double sum_logprob;    /* sum of token_logprobs when present */
    int truncated;         /* prompt tokens dropped from the left to fit
                              the model's context (0: none) */
    int finish;            /* BACKEND_FINISH_* */
    int ok;
    char error[256];
} backend_gen_res;

void backend_gen_res_clear(backend_gen_res *res);

typedef struct backend_ops {
    const char *name;
    int (*open)(const backend_spec *spec, void **state, backend_info *info,
                em_err *err);
    int (*loglikelihood)(void *state, const backend_ll_req *req,
                         backend_ll_res *res, int n, em_err *err);
    int (*generate)(void *state, const backend_gen_req *req,
                    backend_gen_res *res, int n, em_err *err);
    void (*close)(void *state);
} backend_ops;

/* An open model: ops + its state. build/free pair. */
typedef struct backend {
    const backend_ops *ops;
    void *state;
    backend_info info;
} backend;

/* registry.c: finds spec->backend in the registry and opens the model. */
int backend_open(const backend_spec *spec, backend **out, em_err *err);
int backend_loglikelihood(backend *b, const backend_ll_req *req,
                          backend_ll_res *res, int n, em_err *err);
int backend_generate(backend *b, const backend_gen_req *req,
                     backend_gen_res *res, int n, em_err *err);
void backend_close(backend *b);

/* Registry lookup; NULL when no backend has that name. */
const backend_ops *backend_find(const char *name);
/* Names of all registered backends, NULL-terminated. */
const char *const *backend_names(void);

#endif

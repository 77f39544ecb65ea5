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
    double n_params_nonembed; /* non-embedding parameters (backend_info's),
                                 0: ask the backend */
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
    double n_params_nonembed; /* n_params less the token and position
                                 embeddings and a separate output matrix
                                 (Kaplan et al.'s N); 0 = unknown */
    int n_ctx;        /* context length, 0 = unknown */
    unsigned caps;    /* BACKEND_CAP_* */
    int n_vocab;      /* token ids are [0, n_vocab); 0 = unknown */
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

/* Token-level completion: what an OpenAI completions server needs and
 * loglikelihood()/generate() do not give, i.e. prompts as token ids, the
 * log-prob of every prompt token with the most likely tokens at each
 * position (echo + logprobs), and the generated tokens with theirs. */
#define BACKEND_TOPK 5

/* What the model said at one position about the token there. */
typedef struct backend_tok_score {
    double logprob;                 /* log P(token | the tokens before) */
    int32_t top_id[BACKEND_TOPK];   /* most likely first; ties: low id;
                                       -1 past the vocabulary */
    double top_lp[BACKEND_TOPK];
} backend_tok_score;

typedef struct backend_cmpl_req {
    const int32_t *toks;     /* the prompt, n_toks >= 1 ids (fits n_ctx) */
    int n_toks;
    int score_prompt;        /* 1: fill res.prompt */
    int max_tokens;          /* 0: nothing is generated */
    double temperature;      /* 0 = greedy */
    double top_p;            /* 1 = off */
    uint64_t seed;
    const char *const *stop; /* generation ends at a stop string (cut) */
    int n_stop;
} backend_cmpl_req;

typedef struct backend_cmpl_res {
    backend_tok_score *prompt; /* malloc'd when score_prompt: n_toks
                                  entries, [0] unset (nothing before it) */
    int32_t *gen;              /* malloc'd: the n_gen generated ids */
    backend_tok_score *gen_score; /* malloc'd: n_gen entries */
    int n_gen;
    char *text;                /* malloc'd or NULL: the generated bytes,
                                  stop string cut off (may hold NULs) */
    size_t text_len;
    int finish;                /* BACKEND_FINISH_*; LENGTH when only scored */
    int shared;                /* 1: scored as a branch of a prefix shared
                                  with other prompts of the batch */
    int ok;
    char error[256];
} backend_cmpl_res;

void backend_cmpl_res_clear(backend_cmpl_res *res);

typedef struct backend_ops {
    const char *name;
    int (*open)(const backend_spec *spec, void **state, backend_info *info,
                em_err *err);
    int (*loglikelihood)(void *state, const backend_ll_req *req,
                         backend_ll_res *res, int n, em_err *err);
    int (*generate)(void *state, const backend_gen_req *req,
                    backend_gen_res *res, int n, em_err *err);
    void (*close)(void *state);
    /* Optional token-level ops (NULL: not offered; the wrappers below
     * then fail with a message that names the backend). tokenize and
     * token_text may be called from any thread, also while another op
     * runs; complete runs one batch at a time, like the ops above. */
    /* text -> ids as the backend conditions on them (BOS as the
     * vocabulary asks; an empty text is the start token). */
    int (*tokenize)(void *state, const char *text, int32_t **ids, int *n,
                    em_err *err);
    /* The bytes of token id into buf (cap bytes, not terminated); returns
     * their length, which may exceed cap (then only cap were written). */
    int (*token_text)(void *state, int32_t id, char *buf, int cap);
    int (*complete)(void *state, const backend_cmpl_req *req,
                    backend_cmpl_res *res, int n, em_err *err);
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

/* The optional token-level ops (see backend_ops). backend_can_complete:
 * 1 when b offers all three, so that a server can answer with them. */
int backend_can_complete(const backend *b);
int backend_tokenize(backend *b, const char *text, int32_t **ids, int *n,
                     em_err *err);
int backend_token_text(backend *b, int32_t id, char *buf, int cap);
int backend_complete(backend *b, const backend_cmpl_req *req,
                     backend_cmpl_res *res, int n, em_err *err);

/* Registry lookup; NULL when no backend has that name. */
const backend_ops *backend_find(const char *name);
/* Names of all registered backends, NULL-terminated. */
const char *const *backend_names(void);

#endif

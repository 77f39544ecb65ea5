/*
 * model.h - a transformer read from a GGUF file, and its forward pass.
 *
 * Owns: the hyper-parameters and weight views of one model (`llama`,
 * `gpt2` and `gptneox` architectures, tensors of any type quant.h computes
 * with, read in place from the mmap'd file), its KV cache, its scratch
 * buffers and its thread pool; and the forward pass that turns token ids
 * into logits the way llama.cpp's CPU graph does, so that emerge's numbers
 * can be checked against llama.cpp's.
 *
 * A model is a single sequence: model_forward() appends tokens at positions
 * n_past, n_past+1, ... to the KV cache; model_truncate() drops the cache
 * back to a shorter prefix, which is how the scorer reuses a shared prompt.
 * `tokens` mirrors what the cache holds so callers can find common prefixes.
 * Not thread-safe: one caller at a time (the model's pool does the
 * parallel work).
 */
#ifndef EMERGE_MODEL_H
#define EMERGE_MODEL_H

#include <stdint.h>

#include "base/common.h"
#include "backends/engine/gguf.h"
#include "backends/engine/ops.h"
#include "backends/engine/threadpool.h"

typedef enum model_arch {
    MODEL_LLAMA,
    MODEL_GPT2,
    MODEL_GPTNEOX,
} model_arch;

typedef struct model_hparams {
    model_arch arch;
    char arch_name[32];
    int n_vocab;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;     /* n_embd / n_head */
    int n_ff;
    int n_ctx_train;
    int n_rot;        /* rotary dimensions per head (0: no RoPE) */
    int rope_neox;    /* 1: pairs (i, i+n_rot/2); 0: adjacent pairs */
    float rope_base;
    float norm_eps;   /* RMSNorm or LayerNorm epsilon */
    int par_res;      /* gptneox parallel residual */
    int gelu;         /* MODEL_GELU_*: how gpt2/gptneox compute GELU */
} model_hparams;

/* GELU forms. GGUF files run llama.cpp's: the tanh approximation looked up
 * by the input's F16 value and rounded to F16. A checkpoint directory runs
 * what its config.json names (hf.c writes the key emerge.gelu): "gelu" is
 * the exact erf form in transformers, "gelu_new" and its aliases the tanh
 * approximation, both in F32. */
enum { MODEL_GELU_GGML, MODEL_GELU_TANH, MODEL_GELU_ERF };

/* A weight matrix in the file: n_out rows of n_in elements of `type`. */
typedef struct model_mat {
    ggml_type type;
    const void *data; /* NULL when the tensor is absent */
    int64_t n_in;
    int64_t n_out;
    size_t row_bytes;
} model_mat;

typedef struct model_layer {
    float *attn_norm, *attn_norm_b;         /* F32 copies, n_embd */
    model_mat wq, wk, wv, wqkv, wo;         /* separate or fused Q|K|V */
    float *bq, *bk, *bv, *bqkv, *bo;        /* biases, NULL when absent */
    float *ffn_norm, *ffn_norm_b;
    model_mat w_gate, w_up, w_down;         /* w_gate absent: GELU FFN */
    float *b_up, *b_down;
} model_layer;

typedef struct model_opts {
    int n_threads; /* <= 0: online CPUs */
    int n_ctx;     /* <= 0: the model's, capped at MODEL_MAX_CTX */
    int n_batch;   /* tokens per forward chunk; <= 0: 256 */
    int kv_exact;  /* 1: keep K/V/probabilities in F32 instead of rounding
                      them to F16 as llama.cpp's default F16 cache does */
    const char *load_type; /* NULL: keep the file's types; else the type
                      (quant_type_parse's names) a checkpoint directory's
                      matrices are converted to on load (hf.h) */
} model_opts;

#define MODEL_MAX_CTX 4096

typedef struct model_scratch model_scratch;

typedef struct model {
    gguf_file *gguf;          /* owned; weights point into its mapping */
    model_hparams hp;
    double n_params;          /* sum of the element counts of all tensors */
    const struct gguf_tensor *tok_embd, *pos_embd;
    model_mat output;         /* token_embd when the file has no output */
    float *out_norm, *out_norm_b;
    model_layer *layers;
    float *gelu_tab;          /* GELU of every F16 value (gpt2, gptneox) */
    pool *pool;
    int n_ctx, n_batch, kv_f16;
    ops_kernels ops;          /* the SIMD level's kernels (ops.h), as
                                 chosen when the model was built */
    int att_blocks;           /* prompt attention in row blocks through
                                 the AVX-512 float kernels */
    ggml_type k_type;         /* GGML_F16 (llama.cpp's cache) or F32 */
    void *k_cache;            /* [n_layer][n_head_kv][n_ctx][head_dim] */
    float *v_cache;           /* same layout, F32 (F16 values unless
                                 kv_exact) */
    int32_t *tokens;          /* the n_past tokens the cache holds */
    int n_past;
    uint64_t n_evaluated;     /* tokens run through the network, ever */
    model_scratch *s;
} model;

/* Reads path, checks every hyper-parameter and tensor it needs (shape and
 * type), maps the weights and allocates the cache. Errors name the file
 * and the key or tensor. */
int model_build(const char *path, const model_opts *opts, model **out,
                em_err *err);
void model_free(model *m);

/* Runs n tokens at positions n_past.. and appends them to the cache.
 * Writes the logits of the rows [r0, r1) of this call (0 <= r0 <= r1 <= n)
 * to logits, (r1-r0) rows of n_vocab floats; no other row's logits are
 * computed. Fails when the context would overflow or an id is out of
 * range (the cache is then unchanged). */
int model_forward(model *m, const int32_t *tokens, int n, int r0, int r1,
                  float *logits, em_err *err);

/* Runs n tokens (n <= n_batch) as independent branches that all continue
 * the cached prefix, in one pass: the tokens of a branch are consecutive,
 * branch[i] is the index (in this call) of the first token of i's branch,
 * and token i sits at position n_past + (i - branch[i]) and sees the cache
 * plus the earlier tokens of its own branch only. Writes the logits of all
 * n rows. The cache is left as it was: branches are for scoring several
 * continuations of one context (multiple choice) in a single pass. */
int model_forward_branches(model *m, const int32_t *tokens, int n,
                           const int *branch, float *logits, em_err *err);

/* Forgets cache entries past n_past (n_past <= m->n_past). */
void model_truncate(model *m, int n_past);

/* Length of the common prefix of the cache and toks[0..n). */
int model_common_prefix(const model *m, const int32_t *toks, int n);

#endif

/*
 * cuda_engine.h - the GPU forward pass of a model, written against a
 * table of device operations.
 *
 * Owns: the device copy of a model's weights (uploaded once), the
 * activation and KV buffers of a packed batch, the forward pass that
 * mirrors model.c's (llama, gpt2, gptneox), and the scoring of rows
 * (final norm, output projection, log-softmax on the device so only a
 * log-prob and a greedy flag per row come back).
 *
 * Why a table (cuda_ops): the engine is plain C and does not know whether
 * its "device" is a GPU. cuda_gpu.c fills the table with cudart, cuBLAS
 * and the kernels of cuda_kernels.cu; cuda_host.c fills it with the same
 * arithmetic (cuda_math.h) run on the CPU, which is how the host tests
 * check this file, the packing and the backend end to end against the
 * CPU engine on a machine without a GPU.
 */
#ifndef EMERGE_CUDA_ENGINE_H
#define EMERGE_CUDA_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "backends/engine/model.h"
#include "backends/engine/cuda/cuda_plan.h"

/* A weight matrix on the device: n_out rows of n_in elements of type. */
typedef struct cuda_wmat {
    int type;
    void *d;
    int64_t n_in, n_out;
} cuda_wmat;

typedef struct cuda_ops {
    const char *name;
    void *ctx;
    /* Device memory: NULL when it cannot be had. */
    void *(*alloc)(void *ctx, size_t n);
    void (*free)(void *ctx, void *p);
    void (*upload)(void *ctx, void *dst, const void *src, size_t n);
    void (*download)(void *ctx, void *dst, const void *src, size_t n);
    /* Waits for the queued work; -1 with the device's error. */
    int (*sync)(void *ctx, em_err *err);
    /* Bytes of device memory still free. */
    size_t (*mem_free)(void *ctx);
    /* out[t*n_out + i] = W[i] . x[t], x: T rows of n_in F32. */
    void (*matmul)(void *ctx, const cuda_wmat *w, const float *x, int T,
                   float *out);
    /* Scratch the matmul needs for a matrix (dequantised F16 copy and
     * rounded activations for T rows), reserved once by the engine. */
    int (*matmul_reserve)(void *ctx, int64_t max_w_elems, int64_t max_x_elems,
                          em_err *err);
    /* The kernels: see cuda_kernels.h for each one's contract. */
    void (*embed)(float *x, const int32_t *tok, const int32_t *pos, int T,
                  int E, int te_type, const void *te, int pe_type,
                  const void *pe);
    void (*norm)(float *out, const float *x, int T, int E, const float *w,
                 const float *b, float eps, int rms);
    void (*bias)(float *x, int T, int n, int ld, const float *b);
    void (*add)(float *x, const float *y, int64_t n);
    void (*rope)(float *x, int ld, const int32_t *pos, int T, int n_heads,
                 int hd, int n_rot, int neox, float theta_scale);
    void (*kv_store)(uint16_t *kc, uint16_t *vc, const float *k,
                     const float *v, int ld, int T, int kv_dim, int row0);
    void (*attention)(float *out, const float *q, int ld_q,
                      const uint16_t *kc, const uint16_t *vc,
                      const cuda_range *rng, int T, int n_head, int n_head_kv,
                      int hd, float scale);
    void (*gelu)(float *x, int64_t n, const float *tab);
    void (*swiglu)(float *g, const float *u, int64_t n);
    void (*gather)(float *out, const float *x, const int32_t *rows, int n,
                   int E);
    void (*logsoftmax)(const float *logits, int V, const int32_t *target,
                       int n, double *lp, int32_t *greedy);
} cuda_ops;

typedef struct cuda_engine cuda_engine;

/* Uploads m's weights through ops and sizes the batch buffers: max_tok
 * rows (0: as many as fit in 80% of the memory left after the weights,
 * at most 8192 and at least the context length). The model stays owned
 * by the caller and must outlive the engine. */
int cuda_engine_build(const model *m, const cuda_ops *ops, int max_tok,
                      cuda_engine **out, em_err *err);
void cuda_engine_free(cuda_engine *e);

/* Rows a batch may hold; KV rows (>= n_ctx) for a generation cache. */
int cuda_engine_max_tok(const cuda_engine *e);
/* Bytes of device memory the engine holds (weights, buffers). */
size_t cuda_engine_bytes(const cuda_engine *e);

/* Runs the rows of b, storing their K/V at flat rows row0.. (b's ranges
 * are absolute flat rows). Hidden states stay on the device. */
int cuda_engine_forward(cuda_engine *e, const cuda_batch *b, int row0,
                        em_err *err);

/* Scores b's score rows from the last forward: lp[i], greedy[i]. */
int cuda_engine_score(cuda_engine *e, const cuda_batch *b, double *lp,
                      int *greedy, em_err *err);

/* The full logits of batch row `row` of the last forward (n_vocab). */
int cuda_engine_logits(cuda_engine *e, int row, float *out, em_err *err);

/* The host emulation of the device (cuda_host.c): the same arithmetic on
 * the CPU, for tests. cuda_host_ops has no context; the built copy checks
 * that every product fits the GEMM scratch the engine reserved (as the
 * GPU's must). */
extern const cuda_ops cuda_host_ops;
cuda_ops *cuda_host_ops_build(void);
void cuda_host_ops_free(cuda_ops *o);

#endif

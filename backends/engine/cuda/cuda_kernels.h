/*
 * cuda_kernels.h - the C interface of the CUDA kernels (cuda_kernels.cu).
 *
 * Owns: one launcher per kernel of the forward pass. Every pointer is a
 * device pointer; launches go to the default stream, in order, so the
 * host side (cuda_engine.c) reads like model.c's forward pass. Launchers
 * only enqueue work: errors surface at the next cudaGetLastError /
 * synchronisation, which the engine checks once per batch.
 *
 * Layouts: activations are F32 rows of `ld` floats (a Q, K or V view may
 * be a column slice of a fused QKV row); the KV cache is F16 bits, one
 * row of n_head_kv*head_dim per flat position, per layer.
 */
#ifndef EMERGE_CUDA_KERNELS_H
#define EMERGE_CUDA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backends/engine/cuda/cuda_body.h"

#ifdef __cplusplus
extern "C" {
#endif

/* x[t] = token_embd[tok[t]] (+ pos_embd[pos[t]] when pe is not NULL). */
void cuda_k_embed(float *x, const int32_t *tok, const int32_t *pos, int T,
                  int E, int te_type, const void *te, int pe_type,
                  const void *pe);

/* out[t] = norm(x[t]) * w (+ b): RMSNorm when rms, else LayerNorm. */
void cuda_k_norm(float *out, const float *x, int T, int E, const float *w,
                 const float *b, float eps, int rms);

/* Rows of T x n F32 (row stride ld) to packed F16 or BF16 bits. */
void cuda_k_round(uint16_t *out, const float *x, int T, int n, int ld,
                  int type);

/* Whole weight matrix (n_out rows of n_in of `type`) to F16 bits. */
void cuda_k_dequant_f16(uint16_t *out, const void *w, int type, int64_t n_in,
                        int64_t n_out);

/* out[t*n_out + i] = W[i] . x[t] for T <= CUDA_GEMV_MAX rows, reading
 * the stored blocks directly (the decode path). */
void cuda_k_gemv(float *out, const void *w, int type, int64_t n_in,
                 int64_t n_out, const float *x, int T);

void cuda_k_bias(float *x, int T, int n, int ld, const float *b);
void cuda_k_add(float *x, const float *y, int64_t n);

/* Rotates the first n_rot dims of each head of T rows in place. */
void cuda_k_rope(float *x, int ld, const int32_t *pos, int T, int n_heads,
                 int hd, int n_rot, int neox, float theta_scale);

/* Stores T rows of K and V (row strides ld) as F16 at kc/vc rows
 * row0.. (kc/vc already point at the layer). */
void cuda_k_kv_store(uint16_t *kc, uint16_t *vc, const float *k,
                     const float *v, int ld, int T, int kv_dim, int row0);

/* Causal tree attention: token t, head h attends to the flat KV rows of
 * rng[t] with an online softmax; out is T x (n_head*hd). */
void cuda_k_attention(float *out, const float *q, int ld_q,
                      const uint16_t *kc, const uint16_t *vc,
                      const cuda_range *rng, int T, int n_head,
                      int n_head_kv, int hd, float scale);

void cuda_k_gelu(float *x, int64_t n, const float *tab);
void cuda_k_swiglu(float *g, const float *u, int64_t n);

/* out[i] = x[rows[i]] for n rows of E. */
void cuda_k_gather(float *out, const float *x, const int32_t *rows, int n,
                   int E);

/* For each of n logit rows: lp[i] = log_softmax(row)[target[i]] and
 * greedy[i] = (argmax == target[i]). */
void cuda_k_logsoftmax(const float *logits, int V, const int32_t *target,
                       int n, double *lp, int32_t *greedy);

#ifdef __cplusplus
}
#endif

#endif

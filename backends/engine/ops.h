/*
 * ops.h - the forward pass's kernels other than matrix products: SwiGLU,
 * RoPE's rotated pairs, the F16 KV cache store, the attention softmax and
 * the attention's V product, with a vector add and V's transposition.
 *
 * Each SIMD level has a table of them (ops_kernels), filled by quant.c's
 * dispatch together with the matmul kernels, so EMERGE_SIMD
 * (scalar|avx2|avx512) picks both, once per process (quant_set_simd
 * switches it for tests). model.c copies the active table when it builds
 * a model and calls the kernels through it; it has no intrinsics.
 *
 * What each level runs:
 *   scalar  ops.c: portable C that follows the AVX-512 order of sums and
 *           ggml's vector expf (one value at a time).
 *   avx2    ops_avx2.c: the scalar kernels' bits at every op - SwiGLU,
 *           softmax and RoPE's pairs are the scalar C compiled for AVX2
 *           and FMA (fmaf exact, nothing else contracted), the F16 cache
 *           store uses F16C (it rounds as fp16_f32_to_f16), the V product
 *           does the scalar sums 8 dims at a time (mul, then add). So the
 *           avx2 level gives the scalar level's results except where the
 *           float matmul kernels (quant_avx2.c) sum in another order.
 *   avx512  ops_avx512.c: all but rope_pairs and kv_store_f16 (avx2's),
 *           16 lanes wide with ggml's vector expf. Designed to give the scalar
 *           bits too, except attend_v with the F32 cache (kv_exact), where
 *           its FMAs round once per product and the scalar sums twice
 *           (with the F16 cache every product is exact).
 */
#ifndef EMERGE_OPS_H
#define EMERGE_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Attention of this many rows of one head and more transposes V once
 * for them all (contiguous loads for the V product); fewer rows - a
 * decoded token - read V's rows as they are, which costs less than
 * transposing the whole context for each token. */
#define OPS_VT_ROWS 16

/* The V product of T rows of one head: row t sees n = vis[t] + (p0 + t +
 * 1 - seg[t]) positions, the cache slots [0, vis[t]) then seg[t].. (see
 * ops_att_slot), and out row t = sum over them of P[t][k] * V[slot(k)]. */
typedef struct ops_attv {
    const float *P;      /* probabilities, row t at P + t * lds */
    int64_t lds;
    const float *V;      /* the head's cache rows, slot s at V + s * hd */
    int hd, T, p0;
    const int *vis, *seg;
    float *vt;           /* scratch: hd * (p0 + T rounded up to 16) */
    float *out;          /* row t at out + t * ldo */
    int64_t ldo;
} ops_attv;

typedef struct ops_kernels {
    const char *name;    /* the level: "scalar", "avx2", "avx512" */
    /* g = silu(g) * u */
    void (*swiglu)(float *g, const float *u, size_t n);
    /* one head's adjacent pairs (i, i+1) rotated by cos/sin pairs cs */
    void (*rope_pairs)(float *v, const float *cs, int nr);
    /* a row of K to F16 bits, a row of V rounded to F16 (kept as floats) */
    void (*kv_store_f16)(const float *k, const float *v, uint16_t *kr,
                         float *vr, int hd);
    /* softmax of sc[0..n) in place, probabilities rounded to F16 when
     * round_f16 (llama.cpp's attention product takes them as F16) */
    void (*softmax_probs)(float *sc, int n, int round_f16);
    void (*attend_v)(const ops_attv *a);
} ops_kernels;

/* The cache slot of the k-th position a row sees: [0, nv) then seg.. */
static inline int ops_att_slot(int k, int nv, int seg)
{
    return k < nv ? k : seg + (k - nv);
}

/* x += y (the same sums at every level). */
void ops_add(float *restrict x, const float *restrict y, size_t n);

/* vt[d * ldk + slot] = V[slot][d] for the n slots, zero up to ldk. */
void ops_transpose_v(const float *V, int n, int hd, int64_t ldk, float *vt);

#endif

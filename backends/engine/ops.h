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
 *           ggml's vector expf, so the results are the AVX-512 ones.
 *   avx2    ops_avx2.c: rope_pairs with FMA instructions (fmaf is exact,
 *           so the same bits), kv_store_f16 with F16C 8 at a time (rounds
 *           as fp16_f32_to_f16, the same bits); swiglu, softmax_probs and
 *           attend_v are the scalar ones (AVX2 versions of exp16's
 *           scalef and of the 16-lane V sums are not written). The avx2
 *           level therefore gives the scalar level's results except where
 *           the matmul kernels' float order differs (quant_avx2.c).
 *   avx512  ops_avx512.c: everything but rope_pairs (avx2's). The same
 *           bits as scalar, except attend_v with the F32 cache (kv_exact),
 *           where its FMAs round once per product and the scalar sums
 *           round twice (with the F16 cache every product is exact).
 */
#ifndef EMERGE_OPS_H
#define EMERGE_OPS_H

#include <math.h>
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

/* ---- for the kernel files and the dispatch (quant.c) only ---- */

extern const ops_kernels ops_scalar_kernels;
/* Fill in the kernels a level has (others stay as given). */
void ops_avx2_kernels(ops_kernels *o);
void ops_avx512_kernels(ops_kernels *o);

/* The scalar V product, for shapes a SIMD version does not take. */
void ops_attend_v_scalar(const ops_attv *a);

/* One head's rotated pairs (llama's adjacent layout). llama.cpp's compiled
 * RoPE (ggml-cpu's rotate_pairs: vmulps + vfmaddsub231ps) fuses each
 * pair: x0*c - x1*s as fma(x0, c, -(x1*s)) and x0*s + x1*c as
 * fma(x0, s, x1*c), the second product rounded first. The same here: a
 * last bit of Q or K can survive the F16 cache and an 8-bit activation
 * rounding to the logits (tiny-llama-q4_0 was 0.035 off the reference,
 * now 7.2e-7; backends/engine/PARITY.md). fmaf is exact everywhere;
 * ops_avx2.c's target("fma") copy lets the compiler emit the
 * instruction. */
static inline __attribute__((always_inline)) void
ops_rope_pairs_body(float *v, const float *cs, int nr)
{
    for (int i = 0; i < nr; i += 2) {
        float c = cs[i], s = cs[i + 1], x0 = v[i], x1 = v[i + 1];
        v[i] = fmaf(x0, c, -(x1 * s));
        v[i + 1] = fmaf(x0, s, x1 * c);
    }
}

#endif

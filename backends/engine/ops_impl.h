/*
 * ops_impl.h - private to the ops kernels (ops*.c) and the dispatch that
 * fills their table (quant.c): the tables of the levels, and the bodies
 * that ops.c compiles portably and ops_avx2.c for its target (the same C,
 * so the same bits: fmaf is exact, and ISO C mode contracts nothing else
 * into FMAs; the target lets the compiler emit the instructions).
 */
#ifndef EMERGE_OPS_IMPL_H
#define EMERGE_OPS_IMPL_H

#include <math.h>

#include "backends/engine/fp16.h"
#include "backends/engine/ops.h"

extern const ops_kernels ops_scalar_kernels;
/* Fill in the kernels a level has (others stay as given). */
void ops_avx2_kernels(ops_kernels *o);
void ops_avx512_kernels(ops_kernels *o);

/* How many positions row t of a sees. */
static inline int ops_attv_n(const ops_attv *a, int t)
{
    return a->vis[t] + (a->p0 + t + 1 - a->seg[t]);
}

/* The scalar V product, for shapes a SIMD version does not take. */
void ops_attend_v_scalar(const ops_attv *a);

/* One head's rotated pairs (llama's adjacent layout). llama.cpp's compiled
 * RoPE (ggml-cpu's rotate_pairs: vmulps + vfmaddsub231ps) fuses each
 * pair: x0*c - x1*s as fma(x0, c, -(x1*s)) and x0*s + x1*c as
 * fma(x0, s, x1*c), the second product rounded first. The same here: a
 * last bit of Q or K can survive the F16 cache and an 8-bit activation
 * rounding to the logits (tiny-llama-q4_0 was 0.035 off the reference,
 * now 7.2e-7; backends/engine/PARITY.md). */
static inline __attribute__((always_inline)) void
ops_rope_pairs_body(float *v, const float *cs, int nr)
{
    for (int i = 0; i < nr; i += 2) {
        float c = cs[i], s = cs[i + 1], x0 = v[i], x1 = v[i + 1];
        v[i] = fmaf(x0, c, -(x1 * s));
        v[i + 1] = fmaf(x0, s, x1 * c);
    }
}

/* e^x by the algorithm of ops_avx512.c's exp16 (ggml's AVX-512 expf), one
 * value at a time: the portable paths then give the reference's bits too. */
static inline __attribute__((always_inline)) float
ops_exp_ggml(float x)
{
    float z = fmaf(x, 0x1.715476p+0f, 0x1.8p23f), n = z - 0x1.8p23f;
    float r = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    float r2 = r * r;
    float hi = fmaf(0x1.0e4020p-7f, r, 0x1.573e2ep-5f);
    float mid = fmaf(0x1.555e66p-3f, r, 0x1.fffdb6p-2f);
    float lo = fmaf(0x1.ffffecp-1f, r, 1.0f);
    float p = fmaf(fmaf(hi, r2, mid), r2, lo);
    if (fabsf(n) > 192)
        return n <= 0 ? 0.0f : INFINITY;
    return ldexpf(p, (int)n);
}

/* g = silu(g) * u with ops_exp_ggml. */
static inline __attribute__((always_inline)) void
ops_swiglu_body(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + ops_exp_ggml(-g[i])) * u[i];
}

/* The softmax of ops_kernels.softmax_probs in the AVX-512 order. */
static inline __attribute__((always_inline)) void
ops_softmax_body(float *sc, int n, int round_f16)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++)
        mx = sc[j] > mx ? sc[j] : mx;
    double sum = 0; /* per block of 16 in float, as the AVX-512 path */
    for (int j0 = 0; j0 < n; j0 += 16) {
        float b[16] = {0};
        for (int j = j0; j < n && j < j0 + 16; j++)
            b[j - j0] = sc[j] = ops_exp_ggml(sc[j] - mx);
        for (int h = 8; h >= 1; h /= 2)
            for (int l = 0; l < h; l++)
                b[l] += b[l + h];
        sum += b[0];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++)
        sc[j] = round_f16 ? fp16_round(sc[j] * inv) : sc[j] * inv;
}

#endif

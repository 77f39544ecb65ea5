/*
 * ops_avx2.c - the forward-pass kernels of ops.h at the avx2 level (AVX2,
 * FMA, F16C), each giving the scalar kernel's bits: SwiGLU, softmax and
 * RoPE's pairs are ops_impl.h's scalar bodies compiled for the target
 * (fmaf becomes the instruction); the F16 cache store uses F16C; the V
 * product does the scalar sums 8 output dims at a time. Every function
 * carries a target attribute, so the file builds without -march; quant.c
 * calls ops_avx2_kernels only on a CPU that has the level.
 */
#include <immintrin.h>

#include "backends/engine/fp16.h"
#include "backends/engine/ops_impl.h"

#define T256 __attribute__((target("avx2,fma,f16c")))

/* ops_rope_pairs_body with fmaf compiled to the instruction (the AVX-512
 * level uses it too, as kv_store_f16_avx2: AVX-512 CPUs all have FMA and
 * F16C). */
T256 static void rope_pairs_fma(float *v, const float *cs, int nr)
{
    ops_rope_pairs_body(v, cs, nr);
}

T256 static void swiglu_avx2(float *g, const float *u, size_t n)
{
    ops_swiglu_body(g, u, n);
}

T256 static void softmax_probs_avx2(float *sc, int n, int round_f16)
{
    ops_softmax_body(sc, n, round_f16);
}

/* The F16C conversions round as fp16_f32_to_f16 does (test_quant checks
 * they agree to the bit), 8 values at a time; the tail one by one. */
T256 static void kv_store_f16_avx2(const float *k, const float *v,
                                   uint16_t *kr, float *vr, int hd)
{
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    int d = 0;
    for (; d + 8 <= hd; d += 8) {
        _mm_storeu_si128((__m128i *)(kr + d),
                         _mm256_cvtps_ph(_mm256_loadu_ps(k + d), rn));
        __m128i hv = _mm256_cvtps_ph(_mm256_loadu_ps(v + d), rn);
        _mm256_storeu_ps(vr + d, _mm256_cvtph_ps(hv));
    }
    for (; d < hd; d++) {
        kr[d] = fp16_f32_to_f16(k[d]);
        vr[d] = fp16_round(v[d]);
    }
}

/* ops.c's V sums for the 8 output dims at d0: lane j of S[l] is partial
 * sum l (positions k = l mod 16) of dim d0 + j, each product rounded
 * before it is added (no FMA, as the scalar code), the 16 added by halves
 * at the end: the scalar bits. */
T256 static void attend_v8_avx2(const float *p, const float *V, int n, int nv,
                                int seg, int hd, int d0, float *out)
{
    __m256 S[16];
    for (int l = 0; l < 16; l++)
        S[l] = _mm256_setzero_ps();
    for (int k = 0; k < n; k++) {
        const float *row = V + (size_t)ops_att_slot(k, nv, seg) * hd + d0;
        __m256 pv = _mm256_mul_ps(_mm256_set1_ps(p[k]), _mm256_loadu_ps(row));
        S[k & 15] = _mm256_add_ps(S[k & 15], pv);
    }
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            S[l] = _mm256_add_ps(S[l], S[l + h]);
    _mm256_storeu_ps(out + d0, S[0]);
}

/* Blocks of 8 dims outermost, so the part of V one block reads stays in
 * L1 from row to row; head sizes that are not a multiple of 8 by the
 * scalar sums. */
T256 static void attend_v_avx2(const ops_attv *a)
{
    if (a->hd % 8) {
        ops_attend_v_scalar(a);
        return;
    }
    for (int d0 = 0; d0 < a->hd; d0 += 8)
        for (int t = 0; t < a->T; t++) {
            attend_v8_avx2(a->P + (size_t)t * a->lds, a->V, ops_attv_n(a, t),
                           a->vis[t], a->seg[t], a->hd, d0,
                           a->out + (size_t)t * a->ldo);
        }
}

void ops_avx2_kernels(ops_kernels *o)
{
    o->name = "avx2";
    o->swiglu = swiglu_avx2;
    o->rope_pairs = rope_pairs_fma;
    o->kv_store_f16 = kv_store_f16_avx2;
    o->softmax_probs = softmax_probs_avx2;
    o->attend_v = attend_v_avx2;
}

/*
 * ops_avx2.c - the forward-pass kernels of ops.h that the avx2 level
 * (AVX2, FMA, F16C) runs differently from scalar: RoPE's pairs with FMA
 * instructions and the F16 cache store with F16C. Both give the scalar
 * results to the bit; the other kernels of the level are the scalar ones
 * (ops.h says why). Every function carries a target attribute, so the
 * file builds without -march; quant.c calls ops_avx2_kernels only on a
 * CPU that has the level.
 */
#include <immintrin.h>

#include "backends/engine/fp16.h"
#include "backends/engine/ops.h"

#define T256 __attribute__((target("avx2,fma,f16c")))

/* ops_rope_pairs_body with fmaf compiled to the instruction (the AVX-512
 * level uses it too: AVX-512 CPUs all have FMA). */
T256 static void rope_pairs_fma(float *v, const float *cs, int nr)
{
    ops_rope_pairs_body(v, cs, nr);
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

void ops_avx2_kernels(ops_kernels *o)
{
    o->name = "avx2";
    o->rope_pairs = rope_pairs_fma;
    o->kv_store_f16 = kv_store_f16_avx2;
}

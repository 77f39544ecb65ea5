/*
 * ops.c - the portable (scalar) forward-pass kernels of ops.h, and the
 * helpers every level shares (ops_add, ops_transpose_v).
 *
 * They follow llama.cpp's AVX-512 build where it matters for parity (the
 * reference logits were made with it): SiLU and softmax with ggml's vector
 * expf computed one value at a time (exp_ggml), softmax sums per block of
 * 16 in float then in double, the V product in 16 partial sums added by
 * halves. ops_avx512.c computes the same things 16 lanes at a time.
 */
#include "backends/engine/ops_impl.h"

#if defined(__x86_64__)
#include <immintrin.h> /* SSE2: part of x86-64 itself, not a SIMD level */
#endif

/* x += y, four at a time where SSE2 is there (gcc -O2 leaves this loop
 * scalar: its cheap vectoriser takes no loop of unknown length). Each sum
 * is one float addition at every width, so the results never differ. */
void ops_add(float *restrict x, const float *restrict y, size_t n)
{
    size_t i = 0;
#if defined(__x86_64__)
    for (; i + 4 <= n; i += 4)
        _mm_storeu_ps(x + i, _mm_add_ps(_mm_loadu_ps(x + i),
                                        _mm_loadu_ps(y + i)));
#endif
    for (; i < n; i++)
        x[i] += y[i];
}

static void swiglu_scalar(float *g, const float *u, size_t n)
{
    ops_swiglu_body(g, u, n);
}

static void softmax_probs_scalar(float *sc, int n, int round_f16)
{
    ops_softmax_body(sc, n, round_f16);
}

static void rope_pairs_scalar(float *v, const float *cs, int nr)
{
    ops_rope_pairs_body(v, cs, nr);
}

static void kv_store_f16_scalar(const float *k, const float *v, uint16_t *kr,
                                float *vr, int hd)
{
    for (int d = 0; d < hd; d++)
        kr[d] = fp16_f32_to_f16(k[d]);
    for (int d = 0; d < hd; d++)
        vr[d] = fp16_round(v[d]);
}

/* out = sum over the n visible positions k of p[k] * V[slot(k)], in the
 * order of llama.cpp's AVX-512 product of V^T with the probabilities
 * (which made the reference logits): per output dim, 16 partial sums
 * taking the positions k = lane mod 16, then added pairwise by halves
 * (lane i + i+8, i+4, i+2, i+1). With the F16 cache both factors are F16
 * values, so each product is exact and only this order matters. */
static void attend_v_row(const float *p, const float *V, int n, int nv,
                         int seg, int hd, float *out)
{
    for (int d = 0; d < hd; d++) {
        float s[16] = {0};
        for (int k = 0; k < n; k++)
            s[k & 15] += p[k] * V[(size_t)ops_att_slot(k, nv, seg) * hd + d];
        for (int h = 8; h >= 1; h /= 2)
            for (int l = 0; l < h; l++)
                s[l] += s[l + h];
        out[d] = s[0];
    }
}

void ops_attend_v_scalar(const ops_attv *a)
{
    for (int t = 0; t < a->T; t++) {
        attend_v_row(a->P + (size_t)t * a->lds, a->V, ops_attv_n(a, t),
                     a->vis[t], a->seg[t], a->hd, a->out + (size_t)t * a->ldo);
    }
}

/* For a prompt (many rows sharing one V) transposing V once per head and
 * call pays: vt[d * ldk + slot] = V[slot][d] for the n slots, zero up to
 * ldk (a multiple of 16). Into per-thread scratch. */
void ops_transpose_v(const float *V, int n, int hd, int64_t ldk, float *vt)
{
    /* slots outermost: V is read in order, and the hd rows of vt being
     * written (one float each per slot) stay in L1 */
    for (int s = 0; s < n; s++)
        for (int d = 0; d < hd; d++)
            vt[(size_t)d * ldk + s] = V[(size_t)s * hd + d];
    for (int d = 0; d < hd; d++)
        for (int64_t s = n; s < ldk; s++)
            vt[(size_t)d * ldk + s] = 0;
}

const ops_kernels ops_scalar_kernels = {
    "scalar", swiglu_scalar, rope_pairs_scalar, kv_store_f16_scalar,
    softmax_probs_scalar, ops_attend_v_scalar,
};

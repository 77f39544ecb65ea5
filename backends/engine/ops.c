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
#include "backends/engine/ops.h"

#include <math.h>
#include <string.h>

#include "backends/engine/fp16.h"

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

/* e^x by the algorithm of ops_avx512.c's exp16 (ggml's AVX-512 expf), one
 * value at a time: the portable paths then give the reference's bits too. */
static float exp_ggml(float x)
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

static void swiglu_scalar(float *g, const float *u, size_t n)
{
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + exp_ggml(-g[i])) * u[i];
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

static void softmax_probs_scalar(float *sc, int n, int round_f16)
{
    float mx = -INFINITY;
    for (int j = 0; j < n; j++)
        mx = sc[j] > mx ? sc[j] : mx;
    double sum = 0; /* per block of 16 in float, as the AVX-512 path */
    for (int j0 = 0; j0 < n; j0 += 16) {
        float b[16] = {0};
        for (int j = j0; j < n && j < j0 + 16; j++)
            b[j - j0] = sc[j] = exp_ggml(sc[j] - mx);
        for (int h = 8; h >= 1; h /= 2)
            for (int l = 0; l < h; l++)
                b[l] += b[l + h];
        sum += b[0];
    }
    float inv = (float)(1.0 / sum);
    for (int j = 0; j < n; j++)
        sc[j] = round_f16 ? fp16_round(sc[j] * inv) : sc[j] * inv;
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
        int nv = a->vis[t], seg = a->seg[t];
        int n = nv + (a->p0 + t + 1 - seg);
        attend_v_row(a->P + (size_t)t * a->lds, a->V, n, nv, seg, a->hd,
                     a->out + (size_t)t * a->ldo);
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

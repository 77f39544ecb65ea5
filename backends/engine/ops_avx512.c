/*
 * ops_avx512.c - the forward-pass kernels of ops.h with AVX-512 (moved
 * from model.c): SwiGLU and softmax with ggml's vector expf (exp16) and
 * the V product of attention in llama.cpp's order of sums, from V's rows
 * or from V transposed. RoPE's pairs and the F16 cache store are the
 * avx2 level's (ops_avx2.c: FMA, F16C 8 at a time; the same bits as the
 * 16-wide store this level had, at a cost too small to measure). Every
 * function carries a target attribute, so the file builds without -march;
 * quant.c calls ops_avx512_kernels only on a CPU that has the level.
 */
#include <immintrin.h>
#include <math.h>

#include "backends/engine/fp16.h"
#include "backends/engine/ops_impl.h"

/* e^x for 16 lanes (ops.c's exp_ggml is the same one at a time), the way
 * ggml's AVX-512 SiLU and softmax compute it (their results round to
 * F16 downstream, so a last-bit difference from llama.cpp can flip a
 * rounding): n = round(x / ln2) by adding and
 * subtracting 1.5 * 2^23, r = x - n ln2 with ln2 in two parts, e^r by a
 * degree-5 polynomial fitted to the interval (the Arm optimized-routines
 * expf coefficients ggml adapted), evaluated as ((c5 r + c4) r^2 +
 * (c3 r + c2)) r^2 + (c1 r + 1) with FMAs, scaled by 2^n.
 * |n| > 192 gives +inf or 0. */
__attribute__((target("avx512f"), always_inline))
static inline __m512 exp16(__m512 x)
{
    const __m512 shift = _mm512_set1_ps(0x1.8p23f);
    __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), shift);
    __m512 n = _mm512_sub_ps(z, shift);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f), r);
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 hi = _mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), r,
                                _mm512_set1_ps(0x1.573e2ep-5f));
    __m512 mid = _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), r,
                                 _mm512_set1_ps(0x1.fffdb6p-2f));
    __m512 lo = _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), r,
                                _mm512_set1_ps(1.0f));
    __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(hi, r2, mid), r2, lo);
    __m512 res = _mm512_scalef_ps(p, n);
    __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192),
                                       _CMP_GT_OQ);
    if (!big)
        return res;
    __mmask16 neg = _mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ);
    __m512 sat = _mm512_mask_blend_ps(neg, _mm512_set1_ps(INFINITY),
                                      _mm512_setzero_ps());
    return _mm512_mask_blend_ps(big, res, sat);
}

__attribute__((target("avx512f")))
static void swiglu_avx512(float *g, const float *u, size_t n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, g + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), x));
        __m512 y = _mm512_div_ps(x, _mm512_add_ps(one, e));
        _mm512_mask_storeu_ps(g + i, k,
                              _mm512_mul_ps(y, _mm512_maskz_loadu_ps(k, u + i)));
    }
}

__attribute__((target("avx512f")))
static void softmax_probs_avx512(float *sc, int n, int round_f16)
{
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        vmx = _mm512_mask_max_ps(vmx, k, vmx, _mm512_maskz_loadu_ps(k, sc + j));
    }
    __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmx));
    /* ggml sums each block of 16 in float, the block sums in double;
     * lanes past n are its masked (zero) positions */
    double sum = 0;
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sc + j), mx));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(sc + j, k, e);
        sum += (double)_mm512_reduce_add_ps(e);
    }
    __m512 inv = _mm512_set1_ps((float)(1.0 / sum));
    for (int j = 0; j < n; j += 16) {
        __mmask16 k = n - j >= 16 ? 0xffff : (__mmask16)((1u << (n - j)) - 1);
        __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, sc + j), inv);
        if (round_f16) /* to the nearest F16 and back */
            p = _mm512_cvtph_ps(_mm512_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT |
                                                   _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(sc + j, k, p);
    }
}


/* The same sums with AVX-512 for head sizes that are multiples of 16,
 * straight from the cache rows (no transposed copy), for the block of
 * 16 output dims at d0: accumulator R[l] collects, lane by lane, the products
 * of the positions k = l mod 16 - register R[l] lane dd is exactly lane
 * l of llama.cpp's accumulator for dim dd, the same FMAs in the same
 * order - and the 16 accumulators are then added by halves (l + l+8,
 * +4, +2, +1), which is _mm512_reduce_add_ps's order across lanes. Lanes
 * past n contributed +0 there; skipping them changes no bit, since an
 * accumulator that starts at +0 never holds -0. */
__attribute__((target("avx512f")))
static void attend_v16_avx512(const float *p, const float *V, int n, int nv,
                              int seg, int hd, int d0, float *out)
{
    __m512 R[16];
    for (int l = 0; l < 16; l++)
        R[l] = _mm512_setzero_ps();
    for (int k0 = 0; k0 < n; k0 += 16) {
        int cnt = n - k0 < 16 ? n - k0 : 16;
        if (cnt == 16 && k0 + 16 <= nv) { /* common case: slots k */
            const float *row = V + (size_t)k0 * hd + d0;
#pragma GCC unroll 16
            for (int l = 0; l < 16; l++)
                R[l] = _mm512_fmadd_ps(_mm512_loadu_ps(row + (size_t)l * hd),
                                       _mm512_set1_ps(p[k0 + l]), R[l]);
            continue;
        }
        for (int l = 0; l < cnt; l++) {
            const float *row = V + (size_t)ops_att_slot(k0 + l, nv, seg) * hd;
            R[l] = _mm512_fmadd_ps(_mm512_loadu_ps(row + d0),
                                   _mm512_set1_ps(p[k0 + l]), R[l]);
        }
    }
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            R[l] = _mm512_add_ps(R[l], R[l + h]);
    _mm512_storeu_ps(out + d0, R[0]);
}

/* All T rows of one head (probabilities in rows of P, lds apart; outputs
 * ldo apart) from V's rows as they are: for a few rows (decoding) this
 * beats transposing V, which costs as much as the product itself for
 * every token. Blocks of 16 dims outermost, so the part of V one block
 * reads stays in L1 from row to row. */
__attribute__((target("avx512f")))
static void attend_rows_avx512(const ops_attv *a)
{
    for (int d0 = 0; d0 < a->hd; d0 += 16)
        for (int t = 0; t < a->T; t++) {
            attend_v16_avx512(a->P + (size_t)t * a->lds, a->V,
                              ops_attv_n(a, t), a->vis[t], a->seg[t], a->hd,
                              d0, a->out + (size_t)t * a->ldo);
        }
}

/* The same sums for a row whose positions are the cache slots 0..n-1,
 * from vt: contiguous loads of 16 positions, eight output dims
 * accumulating in registers, then each reduced in _mm512_reduce_add_ps's
 * order - lane l of dim d's accumulator is lane d of R[l] above. */
__attribute__((target("avx512f")))
static void attend_vt_avx512(const float *p, const float *vt, int64_t ldk,
                             int n, int hd, float *out)
{
    for (int d0 = 0; d0 < hd; d0 += 8) {
        __m512 acc[8];
        int nd = hd - d0 < 8 ? hd - d0 : 8;
        for (int j = 0; j < 8; j++)
            acc[j] = _mm512_setzero_ps();
        for (int k0 = 0; k0 < n; k0 += 16) {
            __mmask16 km = n - k0 >= 16 ? 0xffff
                                        : (__mmask16)((1u << (n - k0)) - 1);
            __m512 pv = _mm512_maskz_loadu_ps(km, p + k0);
            for (int j = 0; j < nd; j++)
                acc[j] = _mm512_fmadd_ps(
                    _mm512_loadu_ps(vt + (size_t)(d0 + j) * ldk + k0), pv,
                    acc[j]);
        }
        for (int j = 0; j < nd; j++)
            out[d0 + j] = _mm512_reduce_add_ps(acc[j]);
    }
}


/* The V product of one head's rows: from V's rows for a few rows, from V
 * transposed once for a prompt's (the same sums either way); head sizes
 * that are not a multiple of 16 by the scalar sums. */
__attribute__((target("avx512f")))
static void attend_v_avx512(const ops_attv *a)
{
    int hd = a->hd;
    if (hd % 16) {
        ops_attend_v_scalar(a);
        return;
    }
    if (a->T < OPS_VT_ROWS) {
        attend_rows_avx512(a);
        return;
    }
    int n_keys = a->p0 + a->T;
    int64_t ldk = (n_keys + 15) / 16 * 16;
    ops_transpose_v(a->V, n_keys, hd, ldk, a->vt);
    for (int t = 0; t < a->T; t++) {
        int nv = a->vis[t], seg = a->seg[t], n = ops_attv_n(a, t);
        const float *sr = a->P + (size_t)t * a->lds;
        float *o = a->out + (size_t)t * a->ldo;
        if (seg == nv) /* positions are the slots 0..n-1 */
            attend_vt_avx512(sr, a->vt, ldk, n, hd, o);
        else
            for (int d0 = 0; d0 < hd; d0 += 16)
                attend_v16_avx512(sr, a->V, n, nv, seg, hd, d0, o);
    }
}

void ops_avx512_kernels(ops_kernels *o)
{
    o->name = "avx512";
    o->swiglu = swiglu_avx512;
    o->softmax_probs = softmax_probs_avx512;
    o->attend_v = attend_v_avx512;
}

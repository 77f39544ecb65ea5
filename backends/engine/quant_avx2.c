/*
 * quant_avx2.c - AVX2/FMA/F16C matmul kernels for CPUs without AVX-512
 * (run-time dispatched from quant.c; every function carries a target
 * attribute, so the file builds without -march).
 *
 * Simpler than the AVX-512 kernels. Float types: register tiles of 3
 * activation x 2 weight rows over blocks of weight rows (F16/BF16
 * converted once per block for prompts, in registers for decode).
 * Q8_0-family types: 8 weight rows at a time, one SIMD lane per row, read
 * as stored for decode and unpacked to signed bytes once per group for
 * prompts. K-quants: each weight row converted once into a scratch form
 * (unsigned bytes with plain scales), then dotted with every activation
 * row. AVX2 has no VNNI, so the integer dots use maddubs (u8 x s8 -> s16
 * pairs) followed by madd; operands are arranged so the 16-bit pair sums
 * cannot saturate. The quantised types add up their block products in
 * the scalar kernels' order (quant.c), so their results are the scalar
 * ones to the bit. Activation preparation stays the portable one.
 */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/fp16.h"
#include "backends/engine/quant_impl.h"

#define T256 __attribute__((target("avx2,fma,f16c")))

static void *scratch(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p)
        abort();
    return p;
}

static inline T256 float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#define ACT_ROW(a, r) ((const char *)(a)->data + (size_t)(r) * (a)->row_bytes)

/* ---- F32 / F16 / BF16 ---------------------------------------------- */

/* 8 weights from element k of a row of kind wk (0 F32, 1 F16, 2 BF16);
 * the conversions are exact, so a converted row gives the same products. */
enum { WK_F32, WK_F16, WK_BF16 };

static inline __attribute__((always_inline)) T256 __m256
load8(int wk, const void *row, int64_t k)
{
    if (wk == WK_F32)
        return _mm256_loadu_ps((const float *)row + k);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + k));
    if (wk == WK_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline T256 float load1(int wk, const void *row, int64_t k)
{
    if (wk == WK_F32)
        return ((const float *)row)[k];
    uint16_t h = ((const uint16_t *)row)[k];
    return wk == WK_F16 ? fp16_f16_to_f32(h) : fp16_bf16_to_f32(h);
}

/* Weight row i as floats: F32 in place, F16/BF16 converted into buf. */
static T256 const float *row_f32(int wk, const void *row, int64_t n,
                                 float *buf)
{
    if (wk == WK_F32)
        return row;
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(buf + k, load8(wk, row, k));
    for (; k < n; k++)
        buf[k] = load1(wk, row, k);
    return buf;
}

/* How far ahead (bytes) a single activation row's tiles prefetch the
 * weights they stream (decode). */
enum { PF_AHEAD = 4096 };

/* Dot products of ra activation rows x cw weight rows at once. Each
 * output is summed in one order whatever the tile: lanes of k..k+7 and
 * k+8..k+15 of each 16 in two accumulators, a last 8 into the first,
 * hsum8 of their sum, then the scalar tail; so a result does not depend
 * on how many rows a product has. One row pair at a time streamed 4
 * loads per 2 FMAs; a 3 x 2 tile needs 10 per 12. */
enum { FR = 3, FC = 2 };

static inline __attribute__((always_inline)) T256 void
tile_f32(int wk, int ra, int cw, const void *const *w, const float *const *x,
         int64_t n, float *out, int64_t ld)
{
    const int es = wk == WK_F32 ? 4 : 2; /* bytes per weight */
    __m256 lo[FR][FC], hi[FR][FC];
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
#pragma GCC unroll 4
        for (int c = 0; c < cw; c++)
            lo[r][c] = hi[r][c] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m256 wv[FC];
#pragma GCC unroll 4
        for (int c = 0; c < cw; c++) {
            if (ra == 1 && (k * es) % 64 == 0)
                _mm_prefetch((const char *)w[c] + k * es + PF_AHEAD, _MM_HINT_T0);
            wv[c] = load8(wk, w[c], k);
        }
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            __m256 xv = _mm256_loadu_ps(x[r] + k);
#pragma GCC unroll 4
            for (int c = 0; c < cw; c++)
                lo[r][c] = _mm256_fmadd_ps(wv[c], xv, lo[r][c]);
        }
#pragma GCC unroll 4
        for (int c = 0; c < cw; c++)
            wv[c] = load8(wk, w[c], k + 8);
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            __m256 xv = _mm256_loadu_ps(x[r] + k + 8);
#pragma GCC unroll 4
            for (int c = 0; c < cw; c++)
                hi[r][c] = _mm256_fmadd_ps(wv[c], xv, hi[r][c]);
        }
    }
    for (; k + 8 <= n; k += 8)
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++)
#pragma GCC unroll 4
            for (int c = 0; c < cw; c++)
                lo[r][c] = _mm256_fmadd_ps(load8(wk, w[c], k),
                                           _mm256_loadu_ps(x[r] + k), lo[r][c]);
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
#pragma GCC unroll 4
        for (int c = 0; c < cw; c++) {
            float sum = hsum8(_mm256_add_ps(lo[r][c], hi[r][c]));
            for (int64_t j = k; j < n; j++)
                sum += load1(wk, w[c], j) * x[r][j];
            out[r * ld + c] = sum;
        }
}

static T256 void tile_f32_any(int wk, int ra, int cw, const void *const *w,
                              const float *const *x, int64_t n, float *out,
                              int64_t ld)
{
#define TF(k)                                                            \
    do {                                                                 \
        if (cw == 2) {                                                   \
            if (ra == 3) tile_f32(k, 3, 2, w, x, n, out, ld);            \
            else if (ra == 2) tile_f32(k, 2, 2, w, x, n, out, ld);       \
            else tile_f32(k, 1, 2, w, x, n, out, ld);                    \
        } else {                                                         \
            if (ra == 3) tile_f32(k, 3, 1, w, x, n, out, ld);            \
            else if (ra == 2) tile_f32(k, 2, 1, w, x, n, out, ld);       \
            else tile_f32(k, 1, 1, w, x, n, out, ld);                    \
        }                                                                \
    } while (0)
    if (wk == WK_F32) TF(WK_F32);
    else if (wk == WK_F16) TF(WK_F16);
    else TF(WK_BF16);
#undef TF
}

/* Weight rows go in blocks of FB that stay in L2 while each tile of
 * activation rows (in L1) passes over all of them: the streamed operand
 * is then the weights, read 2 rows per 3 x 2 tile, rather than all the
 * activations once per pair of weight rows (which held prompts to the L2
 * bandwidth, ~52 GFLOP/s). F16/BF16 rows are converted to F32 once per
 * block when more than one tile of activation rows reuses them
 * (prompts); a single tile (decode) reads them as stored, which spares a
 * pass over memory. The tiles' sums do not depend on this order. */
enum { FB = 64 };

static T256 void gemm_float(ggml_type t, const void *w, size_t stride,
                            int64_t n, const quant_act *a, int64_t i0,
                            int64_t i1, float *out, int64_t ld)
{
    int wk = t == GGML_F32 ? WK_F32 : t == GGML_F16 ? WK_F16 : WK_BF16;
    int convert = wk != WK_F32 && a->rows > FR;
    float *buf = convert ? scratch((size_t)FB * n * sizeof(float)) : NULL;
    for (int64_t ib = i0; ib < i1; ib += FB) {
        int nbk = i1 - ib < FB ? (int)(i1 - ib) : FB;
        const void *wr[FB];
        for (int c = 0; c < nbk; c++) {
            wr[c] = (const char *)w + (size_t)(ib + c) * stride;
            if (convert)
                wr[c] = row_f32(wk, wr[c], n, buf + (size_t)c * n);
        }
        for (int64_t r = 0; r < a->rows; r += FR) {
            int ra = a->rows - r < FR ? (int)(a->rows - r) : FR;
            const float *xr[FR];
            for (int q = 0; q < ra; q++)
                xr[q] = (const float *)ACT_ROW(a, r + q);
            for (int c = 0; c < nbk; c += FC)
                tile_f32_any(convert ? WK_F32 : wk, ra,
                             nbk - c < FC ? nbk - c : FC, wr + c, xr, n,
                             out + r * ld + ib + c, ld);
        }
    }
    free(buf);
}

static T256 void gemm_f32(const void *w, size_t stride, int64_t n,
                          const quant_act *a, int64_t i0, int64_t i1,
                          float *out, int64_t ld)
{
    gemm_float(GGML_F32, w, stride, n, a, i0, i1, out, ld);
}

static T256 void gemm_f16(const void *w, size_t stride, int64_t n,
                          const quant_act *a, int64_t i0, int64_t i1,
                          float *out, int64_t ld)
{
    gemm_float(GGML_F16, w, stride, n, a, i0, i1, out, ld);
}

static T256 void gemm_bf16(const void *w, size_t stride, int64_t n,
                           const quant_act *a, int64_t i0, int64_t i1,
                           float *out, int64_t ld)
{
    gemm_float(GGML_BF16, w, stride, n, a, i0, i1, out, ld);
}

/* ---- Q8_0 family: signed bytes x Q8_0 activations -----------------
 * The weight row is made signed bytes (Q4_0: nibble - 8, Q5_0: q - 16,
 * Q4_1/Q5_1: q as is) plus one float scale and min per block; the
 * product uses maddubs(|w|, sign(a, w)), which stays within int16 for
 * |w| <= 128. The min term of Q4_1/Q5_1 is m * (the activation's sum s). */
/* Block b of a Q8_0-family row as 32 signed bytes, with its scale (and
 * min, 0 for types without one) as stored (F16). */
static inline __attribute__((always_inline)) T256 __m256i
block_q8(ggml_type t, const void *row, int64_t b, uint16_t *dh, uint16_t *mh)
{
    const uint8_t *qs;
    uint32_t h = 0;
    int off = 0;
    *mh = 0;
    if (t == GGML_Q8_0) {
        const blk_q8_0 *x = (const blk_q8_0 *)row + b;
        *dh = x->d;
        return _mm256_loadu_si256((const __m256i *)x->qs);
    } else if (t == GGML_Q4_0) {
        const blk_q4_0 *x = (const blk_q4_0 *)row + b;
        qs = x->qs, *dh = x->d, off = 8;
    } else if (t == GGML_Q4_1) {
        const blk_q4_1 *x = (const blk_q4_1 *)row + b;
        qs = x->qs, *dh = x->d, *mh = x->m;
    } else if (t == GGML_Q5_0) {
        const blk_q5_0 *x = (const blk_q5_0 *)row + b;
        qs = x->qs, *dh = x->d, off = 16;
        memcpy(&h, x->qh, 4);
    } else {
        const blk_q5_1 *x = (const blk_q5_1 *)row + b;
        qs = x->qs, *dh = x->d, *mh = x->m;
        memcpy(&h, x->qh, 4);
    }
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x0F));
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0F));
    __m256i s = _mm256_set_m128i(hi, lo);
    if (t == GGML_Q5_0 || t == GGML_Q5_1) {
        /* fifth bits: byte j takes bit j of h (bytes 0-7 from h's
         * first byte, ...), then 0x10 where it is set */
        __m256i hb = _mm256_shuffle_epi8(_mm256_set1_epi32((int)h),
            _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                              0x0101010101010101, 0x0000000000000000));
        __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
        hb = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit),
                              _mm256_set1_epi8(0x10));
        s = _mm256_or_si256(s, hb);
    }
    return _mm256_sub_epi8(s, _mm256_set1_epi8((char)off));
}

static T256 void unpack_q8_row(ggml_type t, const void *row, int64_t nb,
                               int8_t *q, float *d, float *m)
{
    for (int64_t b = 0; b < nb; b++) {
        uint16_t dh, mh;
        _mm256_storeu_si256((__m256i *)(q + 32 * b), block_q8(t, row, b, &dh, &mh));
        d[b] = _cvtsh_ss(dh);
        m[b] = _cvtsh_ss(mh);
    }
}

/* The exact integer dot product of 32 signed weight bytes and 32
 * activation bytes, as 8 int32 lanes (to be added up). */
static inline __attribute__((always_inline)) T256 __m256i
dot32(__m256i wv, __m256i av)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv),
                                                  _mm256_sign_epi8(av, wv)),
                             _mm256_set1_epi16(1));
}

/* Lane j: the sum of p[j]'s 8 lanes (integers: exact in any order). */
static inline __attribute__((always_inline)) T256 __m256i
sums8(const __m256i *p)
{
    __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]),
                                   _mm256_hadd_epi32(p[2], p[3]));
    __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]),
                                   _mm256_hadd_epi32(p[6], p[7]));
    /* h0 = [p0-3 lanes 0-3 | p0-3 lanes 4-7], h1 likewise */
    return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                            _mm256_permute2x128_si256(h0, h1, 0x31));
}

/* How a block is added, in the scalar kernels' order (quant.c):
 * sum + (dw * dx) * I (HM_PLAIN: Q8_0, Q5_0),
 * sum + ((dw * dx) * I + m * sx) (HM_MIN: Q4_1, Q5_1), or
 * fma(I, dw * dx, sum) (HM_FUSED: Q4_0, as llama.cpp's repacked Q4_0
 * kernels; see dot_q4_0 in quant.c). */
enum { HM_PLAIN, HM_MIN, HM_FUSED };

/* acc (8 weight rows, a lane each) plus one block in the HM_* order:
 * dd = dw * dx, is the exact block sums as floats, mw the mins (HM_MIN
 * only) and sx the activation's sum term. */
static inline __attribute__((always_inline)) T256 __m256
q8_step8(int hm, __m256 acc, __m256 is, __m256 dd, __m256 mw, float sx)
{
    if (hm == HM_FUSED)
        return _mm256_fmadd_ps(is, dd, acc);
    __m256 pv = _mm256_mul_ps(dd, is);
    if (hm == HM_MIN)
        pv = _mm256_add_ps(pv, _mm256_mul_ps(mw, _mm256_set1_ps(sx)));
    return _mm256_add_ps(acc, pv);
}

/* The first nr of 8 row sums to out (a plain copy: no masked store can
 * touch memory past the last row). */
static inline __attribute__((always_inline)) T256 void
store_rows8(__m256 acc, float *out, int nr)
{
    float o[8];
    _mm256_storeu_ps(o, acc);
    memcpy(out, o, sizeof(float) * (size_t)nr);
}

/* Decode (one or two activation rows): 8 weight rows at a time, read as
 * stored, no scratch pass. Lane j of every vector belongs to weight row
 * i + j: per block, the 8 rows' exact integer sums (sums8), then the
 * float step (HM_*) for all 8 at once, lane by lane the same IEEE
 * operations in the same block order as the scalar kernels, so each
 * output is theirs to the bit. Each row is prefetched 1 KiB ahead every
 * 4 blocks. */
enum { RG8 = 8, RG8_MAX_ROWS = 2, RG8_PF = 1024 };

static inline __attribute__((always_inline)) T256 void
rg8_q8(ggml_type t, int hm, const void *w, size_t stride, int64_t i, int nr,
       int64_t nb, const quant_act *a, int64_t r, float *out)
{
    qa_q8_row x = qa_q8_view(a, r);
    const char *rows[RG8];
    for (int j = 0; j < RG8; j++)
        rows[j] = (const char *)w + (size_t)(i + (j < nr ? j : 0)) * stride;
    size_t bs = stride / (size_t)nb;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i av = _mm256_loadu_si256((const __m256i *)(x.qs + 32 * b));
        __m256i p[RG8];
        uint16_t dh[RG8], mh[RG8];
#pragma GCC unroll 8
        for (int j = 0; j < RG8; j++) {
            if ((b & 3) == 0)
                _mm_prefetch(rows[j] + b * bs + RG8_PF, _MM_HINT_T0);
            if (t == GGML_Q4_0) {
                /* the nibbles as they are (0..15, so maddubs needs no sign
                 * trick); the -8 comes off the sum below, exactly */
                const blk_q4_0 *q = (const blk_q4_0 *)rows[j] + b;
                __m128i v = _mm_loadu_si128((const __m128i *)q->qs);
                __m128i m4 = _mm_set1_epi8(0x0F);
                __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m4),
                                             _mm_and_si128(v, m4));
                dh[j] = q->d;
                mh[j] = 0;
                p[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(u, av),
                                         _mm256_set1_epi16(1));
                continue;
            }
            p[j] = dot32(block_q8(t, rows[j], b, &dh[j], &mh[j]), av);
        }
        __m256i isum = sums8(p);
        if (t == GGML_Q4_0) {   /* sum (q - 8) a = sum q a - 8 sum a */
            __m256i sa = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_set1_epi8(1), av), _mm256_set1_epi16(1));
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(sa),
                                      _mm256_extracti128_si256(sa, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
            isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(8 * _mm_cvtsi128_si32(h)));
        }
        __m256 is = _mm256_cvtepi32_ps(isum);
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)dh));
        int64_t lane = (b / 2) * 16 + (b & 1) * 8;
        __m256 dd = _mm256_mul_ps(dw, _mm256_set1_ps(x.dv[lane]));
        __m256 mw = hm == HM_MIN ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)mh))
                                 : _mm256_setzero_ps();
        acc = q8_step8(hm, acc, is, dd, mw, x.sv[lane]);
    }
    store_rows8(acc, out, nr);
}

static T256 void gemm_q8_rg8(ggml_type t, int hm, const void *w,
                             size_t stride, int64_t n, const quant_act *a,
                             int64_t i0, int64_t i1, float *out, int64_t ld)
{
    int64_t nb = n / 32;
#define RG(tt)                                                           \
    for (int64_t i = i0; i < i1; i += RG8)                               \
        for (int64_t r = 0; r < a->rows; r++)                            \
            rg8_q8(tt, hm, w, stride, i, i1 - i < RG8 ? (int)(i1 - i) : RG8, \
                   nb, a, r, out + r * ld + i)
    switch (t) {
    case GGML_Q8_0: RG(GGML_Q8_0); break;
    case GGML_Q4_0: RG(GGML_Q4_0); break;
    case GGML_Q4_1: RG(GGML_Q4_1); break;
    case GGML_Q5_0: RG(GGML_Q5_0); break;
    default: RG(GGML_Q5_1); break;
    }
#undef RG
}

/* rg8_q8's sums for a group of 8 weight rows already unpacked (prompts:
 * each group is unpacked once and serves every activation row): q holds
 * row j's signed bytes at q + j * n, dT and mT the scales and mins of
 * block b for the 8 rows at [8 b .. 8 b + 8). The same float steps as
 * rg8_q8. */
static T256 void rg8_q8_unpacked(int hm, const int8_t *q, int64_t n,
                                 const float *dT, const float *mT,
                                 int64_t nb, qa_q8_row x, int nr, float *out)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i av = _mm256_loadu_si256((const __m256i *)(x.qs + 32 * b));
        __m256i p[RG8];
#pragma GCC unroll 8
        for (int j = 0; j < RG8; j++)
            p[j] = dot32(_mm256_loadu_si256((const __m256i *)(q + j * n + 32 * b)), av);
        __m256 is = _mm256_cvtepi32_ps(sums8(p));
        int64_t lane = (b / 2) * 16 + (b & 1) * 8;
        __m256 dd = _mm256_mul_ps(_mm256_loadu_ps(dT + 8 * b),
                                  _mm256_set1_ps(x.dv[lane]));
        acc = q8_step8(hm, acc, is, dd, _mm256_loadu_ps(mT + 8 * b), x.sv[lane]);
    }
    store_rows8(acc, out, nr);
}

static T256 void gemm_q8_family(ggml_type t, const void *w, size_t stride,
                                int64_t n, const quant_act *a, int64_t i0,
                                int64_t i1, float *out, int64_t ld)
{
    int64_t nb = n / 32;
    int hm = t == GGML_Q4_1 || t == GGML_Q5_1 ? HM_MIN
           : t == GGML_Q4_0 ? HM_FUSED : HM_PLAIN;
    if (a->rows <= RG8_MAX_ROWS) {
        gemm_q8_rg8(t, hm, w, stride, n, a, i0, i1, out, ld);
        return;
    }
    /* 8 rows' bytes, then their scales and mins by block (dT, mT), then
     * one row's scales and mins as unpack_q8_row writes them */
    int8_t *q = scratch((size_t)RG8 * n + (2 * RG8 + 2) * (size_t)nb * sizeof(float));
    float *dT = (float *)(q + RG8 * n), *mT = dT + RG8 * nb;
    float *d = mT + RG8 * nb, *m = d + nb;
    for (int64_t i = i0; i < i1; i += RG8) {
        int nr = i1 - i < RG8 ? (int)(i1 - i) : RG8;
        for (int j = 0; j < RG8; j++) {
            /* rows past the end repeat the last one; their sums are dropped */
            int64_t row = i + (j < nr ? j : nr - 1);
            unpack_q8_row(t, (const char *)w + (size_t)row * stride, nb,
                          q + j * n, d, m);
            for (int64_t b = 0; b < nb; b++) {
                dT[RG8 * b + j] = d[b];
                mT[RG8 * b + j] = m[b];
            }
        }
        for (int64_t r = 0; r < a->rows; r++)
            rg8_q8_unpacked(hm, q, n, dT, mT, nb, qa_q8_view(a, r), nr,
                            out + r * ld + i);
    }
    free(q);
}

#define Q8_FAMILY(name, type)                                            \
    static T256 void name(const void *w, size_t stride, int64_t n,       \
                          const quant_act *a, int64_t i0, int64_t i1,    \
                          float *out, int64_t ld)                        \
    {                                                                    \
        gemm_q8_family(type, w, stride, n, a, i0, i1, out, ld);          \
    }

Q8_FAMILY(gemm_q8_0, GGML_Q8_0)
Q8_FAMILY(gemm_q4_0, GGML_Q4_0)
Q8_FAMILY(gemm_q4_1, GGML_Q4_1)
Q8_FAMILY(gemm_q5_0, GGML_Q5_0)
Q8_FAMILY(gemm_q5_1, GGML_Q5_1)

/* ---- Q4_K / Q6_K: unsigned bytes x Q8_K activations -----------------
 * Per super-block: q[256] unsigned (0..15 / 0..63), one int16 scale per
 * 16 values (sc16), the bsums multipliers (coef: Q4_K mins per 16
 * values, Q6_K 32 * scale) and factors d and dm:
 *   dot = d*da*sum(q*a*sc) + dm*da*sum(coef*bsums). */
typedef struct {
    uint8_t q[256];
    int16_t sc16[16];
    int16_t coef[16];
    float d, dm;
} ksb2;

static T256 void unpack_k_row(int is_q6, const void *row, int64_t nsb,
                              ksb2 *o)
{
    const __m256i lo = _mm256_set1_epi8(0x0F);
    for (int64_t s = 0; s < nsb; s++, o++) {
        if (!is_q6) {
            const blk_q4_k *b = (const blk_q4_k *)row + s;
            for (int j = 0; j < 4; j++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * j));
                _mm256_storeu_si256((__m256i *)(o->q + 64 * j), _mm256_and_si256(v, lo));
                _mm256_storeu_si256((__m256i *)(o->q + 64 * j + 32),
                                    _mm256_and_si256(_mm256_srli_epi16(v, 4), lo));
            }
            for (int j = 0; j < 8; j++) {
                int sc, m;
                q4k_scale_min(b->scales, j, &sc, &m);
                o->sc16[2 * j] = o->sc16[2 * j + 1] = (int16_t)sc;
                o->coef[2 * j] = o->coef[2 * j + 1] = (int16_t)m;
            }
            o->d = _cvtsh_ss(b->d);
            o->dm = -_cvtsh_ss(b->dmin);
        } else {
            const blk_q6_k *b = (const blk_q6_k *)row + s;
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++) {
                    const uint8_t *ql = b->ql + 64 * h, qh = b->qh[32 * h + l];
                    uint8_t *q = o->q + 128 * h;
                    q[l] = (uint8_t)((ql[l] & 0xF) | (qh & 3) << 4);
                    q[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | ((qh >> 2) & 3) << 4);
                    q[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh >> 4) & 3) << 4);
                    q[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh >> 6) & 3) << 4);
                }
            for (int j = 0; j < 16; j++) {
                o->sc16[j] = b->scales[j];
                o->coef[j] = (int16_t)(32 * b->scales[j]);
            }
            o->d = _cvtsh_ss(b->d);
            o->dm = -o->d;
        }
    }
}

/* acc (8 weight rows, a lane each) plus one super-block in the scalar
 * kernels' order: im and ic the exact sums I and I_min, dw the rows' d,
 * dm their -dmin, xd the activation's scale:
 *   sum + ((d * dx) * I - (dmin * dx) * I_min)   (Q4_K)
 *   sum + (d * dx) * (I - I_min)                 (Q6_K: I_min is the
 *                                                  -32 offset's share) */
static inline __attribute__((always_inline)) T256 __m256
k_step8(int is_q6, __m256 acc, __m256i im, __m256i ic, __m256 dw, __m256 dm,
        float xd)
{
    __m256 dx = _mm256_set1_ps(xd), dd = _mm256_mul_ps(dw, dx);
    if (is_q6)
        return _mm256_add_ps(acc, _mm256_mul_ps(dd,
                   _mm256_cvtepi32_ps(_mm256_sub_epi32(im, ic))));
    /* -dm (= dmin) by flipping the sign bit, as C's unary minus */
    __m256 dmin = _mm256_xor_ps(dm, _mm256_set1_ps(-0.0f));
    return _mm256_add_ps(acc, _mm256_sub_ps(
        _mm256_mul_ps(dd, _mm256_cvtepi32_ps(im)),
        _mm256_mul_ps(_mm256_mul_ps(dmin, dx), _mm256_cvtepi32_ps(ic))));
}

/* A group of 8 weight rows, unpacked (row j's super-blocks at
 * w + j * nsb), times one activation row: lane j of each vector belongs
 * to row j. Per super-block the 8 rows' exact integer sums I and I_min
 * (one hadd tree each), then k_step8 for all 8 lanes at once, in
 * super-block order, so each output is the scalar one to the bit. dT and dmT hold d and dm
 * of super-block s for the 8 rows at [8 s .. 8 s + 8). */
static T256 void rg8_k(int is_q6, const ksb2 *w, int64_t nsb,
                       const float *dT, const float *dmT,
                       const blk_q8_k *x, int nr, float *out)
{
    __m256 acc = _mm256_setzero_ps();
    for (int64_t s = 0; s < nsb; s++) {
        __m256i pm[RG8], pc[RG8];
        __m256i bs = _mm256_loadu_si256((const __m256i *)x[s].bsums);
        for (int j = 0; j < RG8; j++) {
            const ksb2 *k = w + j * nsb + s;
            __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int m = 0; m < 8; m++) {
                __m256i p = _mm256_maddubs_epi16(
                    _mm256_loadu_si256((const __m256i *)(k->q + 32 * m)),
                    _mm256_loadu_si256((const __m256i *)(x[s].qs + 32 * m)));
                __m256i sc = _mm256_set_m128i(_mm_set1_epi16(k->sc16[2 * m + 1]),
                                              _mm_set1_epi16(k->sc16[2 * m]));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sc));
            }
            pm[j] = isum;
            pc[j] = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)k->coef), bs);
        }
        acc = k_step8(is_q6, acc, sums8(pm), sums8(pc),
                      _mm256_loadu_ps(dT + RG8 * s),
                      _mm256_loadu_ps(dmT + RG8 * s), x[s].d);
    }
    store_rows8(acc, out, nr);
}

/* Q4_K decode (one or two activation rows): rg8_k's sums from the
 * blocks as stored, no unpacking pass. The 6-bit scales and mins of the
 * 8 sub-blocks come out of the 12 scale bytes with word operations
 * (q4k_scale_min's arithmetic, 4 bytes at a time). Same integers and the
 * same float steps as rg8_k, so the same bits. */
static T256 void rg8_q4k_direct(const void *w, size_t stride, int64_t i,
                                int nr, int64_t nsb, const blk_q8_k *x,
                                float *out)
{
    const __m256i lo4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t s = 0; s < nsb; s++) {
        __m256i pm[RG8], pc[RG8];
        float dv[RG8], dmv[RG8];
        __m256i bs = _mm256_loadu_si256((const __m256i *)x[s].bsums);
        for (int j = 0; j < RG8; j++) {
            const blk_q4_k *b = (const blk_q4_k *)((const char *)w +
                (size_t)(i + (j < nr ? j : nr - 1)) * stride) + s;
            uint32_t a0, a1, a2, sc[2], mn[2];
            memcpy(&a0, b->scales, 4);
            memcpy(&a1, b->scales + 4, 4);
            memcpy(&a2, b->scales + 8, 4);
            sc[0] = a0 & 0x3f3f3f3f;
            mn[0] = a1 & 0x3f3f3f3f;
            sc[1] = (a2 & 0x0f0f0f0f) | ((a0 >> 2) & 0x30303030);
            mn[1] = ((a2 >> 4) & 0x0f0f0f0f) | ((a1 >> 2) & 0x30303030);
            const uint8_t *scb = (const uint8_t *)sc, *mnb = (const uint8_t *)mn;
            __m256i isum = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * c));
                __m256i ql = _mm256_and_si256(v, lo4);
                __m256i qh = _mm256_and_si256(_mm256_srli_epi16(v, 4), lo4);
                __m256i p0 = _mm256_maddubs_epi16(ql,
                    _mm256_loadu_si256((const __m256i *)(x[s].qs + 64 * c)));
                __m256i p1 = _mm256_maddubs_epi16(qh,
                    _mm256_loadu_si256((const __m256i *)(x[s].qs + 64 * c + 32)));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p0,
                           _mm256_set1_epi16((short)scb[2 * c])));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p1,
                           _mm256_set1_epi16((short)scb[2 * c + 1])));
            }
            __m128i m8 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mnb));
            __m256i coef = _mm256_set_m128i(_mm_unpackhi_epi16(m8, m8),
                                            _mm_unpacklo_epi16(m8, m8));
            pm[j] = isum;
            pc[j] = _mm256_madd_epi16(coef, bs);
            dv[j] = _cvtsh_ss(b->d);
            dmv[j] = -_cvtsh_ss(b->dmin);
        }
        acc = k_step8(0, acc, sums8(pm), sums8(pc), _mm256_loadu_ps(dv),
                      _mm256_loadu_ps(dmv), x[s].d);
    }
    store_rows8(acc, out, nr);
}

static T256 void gemm_k_family(int is_q6, const void *w, size_t stride,
                               int64_t n, const quant_act *a, int64_t i0,
                               int64_t i1, float *out, int64_t ld)
{
    int64_t nsb = n / QK_K;
    if (!is_q6 && a->rows <= RG8_MAX_ROWS) {
        for (int64_t i = i0; i < i1; i += RG8)
            for (int64_t r = 0; r < a->rows; r++)
                rg8_q4k_direct(w, stride, i, i1 - i < RG8 ? (int)(i1 - i) : RG8,
                               nsb, (const blk_q8_k *)ACT_ROW(a, r),
                               out + r * ld + i);
        return;
    }
    ksb2 *buf = scratch((size_t)RG8 * nsb * sizeof(ksb2));
    float *dT = scratch((size_t)2 * RG8 * nsb * sizeof(float)), *dmT = dT + RG8 * nsb;
    for (int64_t i = i0; i < i1; i += RG8) {
        int nr = i1 - i < RG8 ? (int)(i1 - i) : RG8;
        for (int j = 0; j < RG8; j++) {
            /* rows past the end repeat the last one; their sums are dropped */
            int64_t row = i + (j < nr ? j : nr - 1);
            ksb2 *k = buf + j * nsb;
            unpack_k_row(is_q6, (const char *)w + (size_t)row * stride, nsb, k);
            for (int64_t s = 0; s < nsb; s++) {
                dT[RG8 * s + j] = k[s].d;
                dmT[RG8 * s + j] = k[s].dm;
            }
        }
        for (int64_t r = 0; r < a->rows; r++)
            rg8_k(is_q6, buf, nsb, dT, dmT, (const blk_q8_k *)ACT_ROW(a, r), nr,
                  out + r * ld + i);
    }
    free(buf);
    free(dT);
}

static T256 void gemm_q4_k(const void *w, size_t stride, int64_t n,
                           const quant_act *a, int64_t i0, int64_t i1,
                           float *out, int64_t ld)
{
    gemm_k_family(0, w, stride, n, a, i0, i1, out, ld);
}

static T256 void gemm_q6_k(const void *w, size_t stride, int64_t n,
                           const quant_act *a, int64_t i0, int64_t i1,
                           float *out, int64_t ld)
{
    gemm_k_family(1, w, stride, n, a, i0, i1, out, ld);
}

void quant_avx2_kernels(quant_kernels *k)
{
    k->f32 = gemm_f32;
    k->f16 = gemm_f16;
    k->bf16 = gemm_bf16;
    k->q8_0 = gemm_q8_0;
    k->q4_0 = gemm_q4_0;
    k->q4_k = gemm_q4_k;
    k->q6_k = gemm_q6_k;
    k->q4_1 = gemm_q4_1;
    k->q5_0 = gemm_q5_0;
    k->q5_1 = gemm_q5_1;
}

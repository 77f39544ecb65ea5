/*
 * quant.c - tensor element types: F16/BF16 conversion, quantisation and
 * dequantisation of ggml's block types, activation preparation, the
 * portable (scalar) matmul kernels and the run-time choice of the SIMD
 * kernels (quant_avx512.c, quant_avx2.c).
 *
 * The scalar kernels are the reference: the SIMD ones must agree with
 * them exactly in every integer sum and to float rounding elsewhere
 * (tests/test_quant.c). Quantisation of activations follows llama.cpp
 * (Q8_0 per 32 values for Q4_0/Q8_0 weights, Q8_K per 256 for the
 * K-quants) so emerge's logits match llama.cpp's reference logits.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/engine/fp16.h"
#include "backends/engine/ops_impl.h"
#include "backends/engine/quant.h"
#include "backends/engine/quant_impl.h"
#include "base/common.h"

/* ---------------------------------------------------------------- */
/* F16 / BF16                                                        */
/* ---------------------------------------------------------------- */

/* The bodies are in fp16.h (inlined by the SIMD kernel files too). */
float quant_f16_to_f32(uint16_t h) { return fp16_f16_to_f32(h); }

uint16_t quant_f32_to_f16(float f) { return fp16_f32_to_f16(f); }

float quant_bf16_to_f32(uint16_t h) { return fp16_bf16_to_f32(h); }

uint16_t quant_f32_to_bf16(float f) { return fp16_f32_to_bf16(f); }

static inline float f16(uint16_t h) { return quant_f16_to_f32(h); }

/* The scalar F16 kernel converts every weight; a table of all 65536
 * halves (256 KiB, built on first use) makes that a load. */
static float f16_table[65536];
static pthread_once_t f16_table_once = PTHREAD_ONCE_INIT;

static void f16_table_init(void)
{
    for (uint32_t h = 0; h < 65536; h++)
        f16_table[h] = quant_f16_to_f32((uint16_t)h);
}

/* Round half to even, as ggml's nearest_int and the SIMD rounding. */
static inline int nearest_int(float x) { return (int)rintf(x); }

int quant_supported(ggml_type t)
{
    switch (t) {
    case GGML_F32: case GGML_F16: case GGML_BF16: case GGML_Q8_0:
    case GGML_Q4_0: case GGML_Q4_K: case GGML_Q6_K: case GGML_Q4_1:
    case GGML_Q5_0: case GGML_Q5_1:
        return 1;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- */
/* Dequantisation                                                    */
/* ---------------------------------------------------------------- */

static void deq_q8_0(const blk_q8_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        float d = f16(b[i].d);
        for (int j = 0; j < QK8_0; j++)
            y[j] = d * b[i].qs[j];
    }
}

static void deq_q4_0(const blk_q4_0 *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        float d = f16(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = d * ((b[i].qs[j] & 0xF) - 8);
            y[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
        }
    }
}

/* The 32 quants of a Q4_1/Q5_0/Q5_1 block, unsigned (0..15 / 0..31):
 * low nibbles are elements 0..15, high nibbles 16..31; for the 5-bit
 * types bit j of qh is the fifth bit of element j. */
static void q4_values(const uint8_t *qs, uint8_t *v)
{
    for (int j = 0; j < 16; j++) {
        v[j] = qs[j] & 0xF;
        v[j + 16] = qs[j] >> 4;
    }
}

static void q5_values(const uint8_t *qs, const uint8_t *qh, uint8_t *v)
{
    uint32_t h;
    memcpy(&h, qh, 4);
    q4_values(qs, v);
    for (int j = 0; j < 32; j++, h >>= 1)
        v[j] |= (uint8_t)((h & 1) << 4);
}

static void deq_q4_1(const blk_q4_1 *b, float *y, int64_t nb)
{
    uint8_t v[32];
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = f16(b[i].d), m = f16(b[i].m);
        q4_values(b[i].qs, v);
        for (int j = 0; j < 32; j++)
            y[j] = v[j] * d + m;
    }
}

static void deq_q5_0(const blk_q5_0 *b, float *y, int64_t nb)
{
    uint8_t v[32];
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = f16(b[i].d);
        q5_values(b[i].qs, b[i].qh, v);
        for (int j = 0; j < 32; j++)
            y[j] = (v[j] - 16) * d;
    }
}

static void deq_q5_1(const blk_q5_1 *b, float *y, int64_t nb)
{
    uint8_t v[32];
    for (int64_t i = 0; i < nb; i++, y += 32) {
        float d = f16(b[i].d), m = f16(b[i].m);
        q5_values(b[i].qs, b[i].qh, v);
        for (int j = 0; j < 32; j++)
            y[j] = v[j] * d + m;
    }
}

static void deq_q4_k(const blk_q4_k *b, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++) {
        float d = f16(b[i].d), dmin = f16(b[i].dmin);
        for (int j = 0; j < 8; j++, y += 32) {
            int sc, m;
            q4k_scale_min(b[i].scales, j, &sc, &m);
            const uint8_t *q = b[i].qs + 32 * (j / 2);
            int shift = (j & 1) * 4;
            for (int l = 0; l < 32; l++)
                y[l] = d * sc * ((q[l] >> shift) & 0xF) - dmin * m;
        }
    }
}

/* The 6-bit values of a Q6_K block (0..63) in element order: ql byte l of
 * each 128-element half holds elements l (low nibble) and l+64 (high),
 * byte l+32 elements l+32 and l+96; qh byte l their top two bits. */
static void q6k_values(const blk_q6_k *b, uint8_t *L)
{
    for (int h = 0; h < 2; h++, L += 128)
        for (int l = 0; l < 32; l++) {
            const uint8_t *ql = b->ql + 64 * h, qh = b->qh[32 * h + l];
            L[l] = (uint8_t)((ql[l] & 0xF) | (qh & 3) << 4);
            L[l + 32] = (uint8_t)((ql[l + 32] & 0xF) | ((qh >> 2) & 3) << 4);
            L[l + 64] = (uint8_t)((ql[l] >> 4) | ((qh >> 4) & 3) << 4);
            L[l + 96] = (uint8_t)((ql[l + 32] >> 4) | ((qh >> 6) & 3) << 4);
        }
}

static void deq_q6_k(const blk_q6_k *b, float *y, int64_t nb)
{
    uint8_t L[QK_K];
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        float d = f16(b[i].d);
        q6k_values(&b[i], L);
        for (int e = 0; e < QK_K; e++)
            y[e] = d * b[i].scales[e / 16] * (L[e] - 32);
    }
}

void quant_dequantize_row(ggml_type t, const void *row, float *out, int64_t n)
{
    switch (t) {
    case GGML_F32:
        memcpy(out, row, (size_t)n * sizeof(float));
        break;
    case GGML_F16:
        for (int64_t i = 0; i < n; i++)
            out[i] = f16(((const uint16_t *)row)[i]);
        break;
    case GGML_BF16:
        for (int64_t i = 0; i < n; i++)
            out[i] = quant_bf16_to_f32(((const uint16_t *)row)[i]);
        break;
    case GGML_Q8_0: deq_q8_0(row, out, n / QK8_0); break;
    case GGML_Q4_0: deq_q4_0(row, out, n / QK4_0); break;
    case GGML_Q4_K: deq_q4_k(row, out, n / QK_K); break;
    case GGML_Q6_K: deq_q6_k(row, out, n / QK_K); break;
    case GGML_Q4_1: deq_q4_1(row, out, n / 32); break;
    case GGML_Q5_0: deq_q5_0(row, out, n / 32); break;
    case GGML_Q5_1: deq_q5_1(row, out, n / 32); break;
    default:
        memset(out, 0, (size_t)n * sizeof(float));
        break;
    }
}

/* ---------------------------------------------------------------- */
/* Quantisation                                                      */
/* ---------------------------------------------------------------- */

static float amax_of(const float *x, int n, float *signed_max)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    if (signed_max)
        *signed_max = max;
    return amax;
}

/* Q8_0 as llama.cpp's x86 path quantises activations: d = amax/127,
 * values x*127/amax rounded half to even. */
static float quant_q8_0_block(const float *x, uint16_t *d, int8_t *qs)
{
    float amax = amax_of(x, QK8_0, NULL);
    float id = amax ? 127.0f / amax : 0.0f;
    *d = quant_f32_to_f16(amax / 127.0f);
    for (int j = 0; j < QK8_0; j++)
        qs[j] = (int8_t)nearest_int(x[j] * id);
    return amax / 127.0f;   /* the scale before F16 rounding */
}

static void quant_q8_0(const float *x, blk_q8_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK8_0)
        (void)quant_q8_0_block(x, &b[i].d, b[i].qs);
}

/* ggml's reference Q4_0: the value of largest magnitude maps to -8. */
static void quant_q4_0(const float *x, blk_q4_0 *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        float max;
        amax_of(x, QK4_0, &max);
        float d = max / -8, id = d ? 1.0f / d : 0.0f;
        b[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int q0 = (int)(int8_t)(x[j] * id + 8.5f);
            int q1 = (int)(int8_t)(x[j + 16] * id + 8.5f);
            q0 = q0 > 15 ? 15 : q0;
            q1 = q1 > 15 ? 15 : q1;
            b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* ggml's reference Q4_1/Q5_1: min and range per block, nmax = 15 / 31. */
static void quant_min_range(const float *x, int nmax, uint16_t *d16,
                            uint16_t *m16, uint8_t *v)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    float d = (hi - lo) / nmax, id = d ? 1.0f / d : 0.0f;
    *d16 = quant_f32_to_f16(d);
    *m16 = quant_f32_to_f16(lo);
    for (int j = 0; j < 32; j++) {
        int q = (int)((x[j] - lo) * id + 0.5f);
        v[j] = (uint8_t)(q < 0 ? 0 : q > nmax ? nmax : q);
    }
}

static void pack_nibbles(const uint8_t *v, uint8_t *qs, uint8_t *qh)
{
    uint32_t h = 0;
    for (int j = 0; j < 16; j++)
        qs[j] = (uint8_t)((v[j] & 0xF) | (v[j + 16] & 0xF) << 4);
    for (int j = 0; j < 32; j++)
        h |= (uint32_t)((v[j] >> 4) & 1) << j;
    if (qh)
        memcpy(qh, &h, 4);
}

static void quant_q4_1(const float *x, blk_q4_1 *b, int64_t nb)
{
    uint8_t v[32];
    for (int64_t i = 0; i < nb; i++, x += 32) {
        quant_min_range(x, 15, &b[i].d, &b[i].m, v);
        pack_nibbles(v, b[i].qs, NULL);
    }
}

static void quant_q5_1(const float *x, blk_q5_1 *b, int64_t nb)
{
    uint8_t v[32];
    for (int64_t i = 0; i < nb; i++, x += 32) {
        quant_min_range(x, 31, &b[i].d, &b[i].m, v);
        pack_nibbles(v, b[i].qs, b[i].qh);
    }
}

/* ggml's reference Q5_0: the value of largest magnitude maps to -16. */
static void quant_q5_0(const float *x, blk_q5_0 *b, int64_t nb)
{
    uint8_t v[32];
    for (int64_t i = 0; i < nb; i++, x += 32) {
        float max;
        amax_of(x, 32, &max);
        float d = max / -16, id = d ? 1.0f / d : 0.0f;
        b[i].d = quant_f32_to_f16(d);
        for (int j = 0; j < 32; j++) {
            int q = (int)(int8_t)(x[j] * id + 16.5f);
            v[j] = (uint8_t)(q > 31 ? 31 : q < 0 ? 0 : q);
        }
        pack_nibbles(v, b[i].qs, b[i].qh);
    }
}

/* Fits x ~ scale*L - min with L in 0..15 over 32 values: start from the
 * range, then alternate least-squares refits of (scale, min) and
 * re-rounding of L a few times. min is kept >= 0 (ggml stores it as an
 * unsigned 6-bit number), i.e. the fitted offset never exceeds 0. */
static void fit_q4_sub(const float *x, float *scale, float *min)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < 32; j++) {
        lo = x[j] < lo ? x[j] : lo;
        hi = x[j] > hi ? x[j] : hi;
    }
    if (lo > 0)
        lo = 0;
    float s = (hi - lo) / 15, m = -lo;
    for (int it = 0; it < 4 && s > 0; it++) {
        double sl = 0, sll = 0, sx = 0, sxl = 0;
        for (int j = 0; j < 32; j++) {
            int l = nearest_int((x[j] + m) / s);
            l = l < 0 ? 0 : l > 15 ? 15 : l;
            sl += l; sll += (double)l * l; sx += x[j]; sxl += (double)x[j] * l;
        }
        double det = 32 * sll - sl * sl;
        if (det <= 0)
            break;
        double ns = (32 * sxl - sl * sx) / det;
        double nm = (sl * sxl - sll * sx) / det;   /* -offset */
        if (ns <= 0 || nm < 0)
            break;
        s = (float)ns;
        m = (float)nm;
    }
    *scale = s;
    *min = m;
}

static void pack_q4k_scales(uint8_t *out, const uint8_t *ls, const uint8_t *lm)
{
    memset(out, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            out[j] |= ls[j];
            out[j + 4] |= lm[j];
        } else {
            out[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            out[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            out[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

static void quant_q4_k(const float *x, blk_q4_k *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float sc[8], mn[8], msc = 0, mmn = 0;
        for (int j = 0; j < 8; j++) {
            fit_q4_sub(x + 32 * j, &sc[j], &mn[j]);
            msc = sc[j] > msc ? sc[j] : msc;
            mmn = mn[j] > mmn ? mn[j] : mmn;
        }
        uint8_t ls[8], lm[8];
        for (int j = 0; j < 8; j++) {
            int a = msc > 0 ? nearest_int(63 * sc[j] / msc) : 0;
            int c = mmn > 0 ? nearest_int(63 * mn[j] / mmn) : 0;
            ls[j] = (uint8_t)(a > 63 ? 63 : a);
            lm[j] = (uint8_t)(c > 63 ? 63 : c);
        }
        pack_q4k_scales(b[i].scales, ls, lm);
        b[i].d = quant_f32_to_f16(msc / 63);
        b[i].dmin = quant_f32_to_f16(mmn / 63);
        /* Round the values against the scales as stored. */
        float d = f16(b[i].d), dmin = f16(b[i].dmin);
        memset(b[i].qs, 0, sizeof b[i].qs);
        for (int j = 0; j < 8; j++) {
            float s = d * ls[j], m = dmin * lm[j];
            for (int l = 0; l < 32; l++) {
                int q = s > 0 ? nearest_int((x[32 * j + l] + m) / s) : 0;
                q = q < 0 ? 0 : q > 15 ? 15 : q;
                b[i].qs[32 * (j / 2) + l] |= (uint8_t)(q << ((j & 1) * 4));
            }
        }
    }
}

static void pack_q6k(blk_q6_k *b, const uint8_t *L)
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *q = L + 128 * h + l;
            b->ql[64 * h + l] = (uint8_t)((q[0] & 0xF) | (q[64] & 0xF) << 4);
            b->ql[64 * h + l + 32] =
                (uint8_t)((q[32] & 0xF) | (q[96] & 0xF) << 4);
            b->qh[32 * h + l] = (uint8_t)((q[0] >> 4) | (q[32] >> 4) << 2 |
                                          (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
        }
}

/* Q6_K: per 16 values a scale mapping the largest magnitude to -32, the
 * 16 scales themselves quantised to int8 against the block scale d. */
static void quant_q6_k(const float *x, blk_q6_k *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float sc[16], msc = 0, amsc = 0;
        for (int j = 0; j < 16; j++) {
            float max;
            amax_of(x + 16 * j, 16, &max);
            sc[j] = max / -32;
            if (fabsf(sc[j]) > amsc) {
                amsc = fabsf(sc[j]);
                msc = sc[j];
            }
        }
        uint8_t L[QK_K];
        if (!amsc) {
            memset(b[i].scales, 0, 16);
            memset(L, 32, sizeof L);
            b[i].d = 0;
            pack_q6k(&b[i], L);
            continue;
        }
        float iscale = -128.0f / msc;
        b[i].d = quant_f32_to_f16(1 / iscale);
        float d = f16(b[i].d);
        for (int j = 0; j < 16; j++) {
            int s = nearest_int(iscale * sc[j]);
            b[i].scales[j] = (int8_t)(s > 127 ? 127 : s < -128 ? -128 : s);
            float ds = d * b[i].scales[j];
            for (int l = 0; l < 16; l++) {
                int q = ds ? nearest_int(x[16 * j + l] / ds) : 0;
                q = q < -32 ? -32 : q > 31 ? 31 : q;
                L[16 * j + l] = (uint8_t)(q + 32);
            }
        }
        pack_q6k(&b[i], L);
    }
}

/* ggml's Q8_K: the value of largest magnitude maps to -127. */
static void quant_q8_k(const float *x, blk_q8_k *b, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        float max;
        float amax = amax_of(x, QK_K, &max);
        memset(&b[i], 0, sizeof b[i]);
        if (!amax)
            continue;
        float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            b[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int j = 0; j < QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)s;
        }
        b[i].d = 1 / iscale;
    }
}

int quant_type_parse(const char *name, ggml_type *t)
{
    static const struct { const char *name; ggml_type t; } types[] = {
        {"f32", GGML_F32}, {"f16", GGML_F16}, {"bf16", GGML_BF16},
        {"q8_0", GGML_Q8_0}, {"q4_0", GGML_Q4_0}, {"q4_k", GGML_Q4_K},
        {"q6_k", GGML_Q6_K},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(name, types[i].name)) {
            *t = types[i].t;
            return 0;
        }
    return -1;
}

size_t quant_quantize_row(ggml_type t, const float *x, void *out, int64_t n)
{
    switch (t) {
    case GGML_F32:
        memcpy(out, x, (size_t)n * sizeof(float));
        break;
    case GGML_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)out)[i] = quant_f32_to_f16(x[i]);
        break;
    case GGML_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)out)[i] = quant_f32_to_bf16(x[i]);
        break;
    case GGML_Q8_0: quant_q8_0(x, out, n / QK8_0); break;
    case GGML_Q4_0: quant_q4_0(x, out, n / QK4_0); break;
    case GGML_Q4_K: quant_q4_k(x, out, n / QK_K); break;
    case GGML_Q6_K: quant_q6_k(x, out, n / QK_K); break;
    case GGML_Q8_K: quant_q8_k(x, out, n / QK_K); break;
    case GGML_Q4_1: quant_q4_1(x, out, n / 32); break;
    case GGML_Q5_0: quant_q5_0(x, out, n / 32); break;
    case GGML_Q5_1: quant_q5_1(x, out, n / 32); break;
    default:
        return 0;
    }
    return ggml_type_size(t, n);
}

/* ---------------------------------------------------------------- */
/* Activations                                                       */
/* ---------------------------------------------------------------- */

static int is_q8_0_family(ggml_type t)
{
    return t == GGML_Q8_0 || t == GGML_Q4_0 || t == GGML_Q4_1 ||
           t == GGML_Q5_0 || t == GGML_Q5_1;
}

static int is_k_family(ggml_type t)
{
    return t == GGML_Q4_K || t == GGML_Q6_K;
}

static size_t act_row_bytes(ggml_type t, int64_t n)
{
    if (is_q8_0_family(t))
        return (size_t)(4 * qa_npad(n));   /* qs + dv + cv + sv */
    if (is_k_family(t))
        return (size_t)(n / QK_K) * sizeof(blk_q8_k);
    return (size_t)n * sizeof(float);
}

/* One activation row for Q8_0-family weights (layout in quant_impl.h);
 * k is the cv correction factor (qa_q8_k: 128 for Q8_0, 8 Q4_0, 16 Q5_0). */
static void act_q8_0_scalar(const float *x, int64_t n, int k, qa_q8_row v)
{
    int64_t np = qa_npad(n), nb = n / QK8_0;
    memset(v.qs, 0, (size_t)np);
    memset(v.dv, 0, (size_t)np);
    memset(v.cv, 0, (size_t)np);
    memset(v.sv, 0, (size_t)np);
    for (int64_t b = 0; b < nb; b++) {
        uint16_t d;
        int8_t *qs = v.qs + b * QK8_0;
        float dexact = quant_q8_0_block(x + b * QK8_0, &d, qs);
        int64_t lane = (b / 2) * 16 + (b & 1) * 8;
        int sum = 0;
        for (int j = 0; j < QK8_0; j++)
            sum += qs[j];
        for (int j = 0; j < 8; j++)
            v.dv[lane + j] = f16(d);
        v.cv[lane] = -k * sum;
        /* as llama.cpp's Q8_1: the unrounded scale times the sum */
        v.sv[lane] = f16(quant_f32_to_f16(dexact * (float)sum));
    }
}

/* F16/BF16 weights: the activations rounded to the weights' precision. */
static void act_round_scalar(ggml_type t, const float *x, float *y, int64_t n)
{
    if (t == GGML_F16)
        for (int64_t i = 0; i < n; i++)
            y[i] = f16(quant_f32_to_f16(x[i]));
    else
        for (int64_t i = 0; i < n; i++)
            y[i] = quant_bf16_to_f32(quant_f32_to_bf16(x[i]));
}

static const quant_kernels *kernels(void);

static int is_float_type(ggml_type t)
{
    return t == GGML_F32 || t == GGML_F16 || t == GGML_BF16;
}

/* Row r of the packed layout (quant_impl.h): the row as the row layout
 * would hold it (rounded for F16/BF16), scattered into its row group 16
 * values at a time; the last segment's lanes past n are zero. */
static void act_fill_packed(const quant_act *a, const quant_kernels *k,
                            const float *xr, int64_t r, float *tmp)
{
    int64_t n = a->n, steps = qa_pack_steps(n);
    if (a->wtype != GGML_F32) {
        k->act_round(a->wtype, xr, tmp, n);
        xr = tmp;
    }
    float *g = (float *)a->data + (r / QA_PACK_ROWS) * steps * QA_PACK_ROWS * 16 +
               (r % QA_PACK_ROWS) * 16;
    int64_t full = n / 16;
    for (int64_t s = 0; s < full; s++)   /* a constant size: inlined */
        memcpy(g + s * QA_PACK_ROWS * 16, xr + s * 16, 16 * sizeof(float));
    if (full < steps) {
        float *d = g + full * QA_PACK_ROWS * 16;
        int64_t len = n - full * 16;
        memcpy(d, xr + full * 16, (size_t)len * sizeof(float));
        memset(d + len, 0, (size_t)(16 - len) * sizeof(float));
    }
}

/* Row r of the row layout. */
static void act_fill_row(const quant_act *a, const quant_kernels *k,
                         const float *xr, int64_t r)
{
    char *dst = (char *)a->data + (size_t)r * a->row_bytes;
    switch (a->wtype) {
    case GGML_F16: case GGML_BF16:
        k->act_round(a->wtype, xr, (float *)dst, a->n);
        break;
    case GGML_Q8_0: case GGML_Q4_0: case GGML_Q4_1: case GGML_Q5_0:
    case GGML_Q5_1:
        k->act_q8_0(xr, a->n, qa_q8_k(a->wtype), qa_q8_view(a, r));
        break;
    case GGML_Q4_K: case GGML_Q6_K:
        k->act_q8_k(xr, (blk_q8_k *)dst, a->n / QK_K);
        break;
    default:
        memcpy(dst, xr, (size_t)a->n * sizeof(float));
        break;
    }
}

void quant_act_init(quant_act *a, ggml_type wtype, int64_t rows, int64_t n)
{
    const quant_kernels *k = kernels();
    a->wtype = wtype;
    a->n = n;
    a->rows = rows;
    a->packed = is_float_type(wtype) && k->pack_min_rows &&
                rows >= k->pack_min_rows;
    if (a->packed) {
        int64_t steps = qa_pack_steps(n);
        int64_t groups = (rows + QA_PACK_ROWS - 1) / QA_PACK_ROWS;
        size_t group = (size_t)steps * QA_PACK_ROWS * 16 * sizeof(float);
        a->row_bytes = 0;
        a->data = aligned_alloc(64, group * (size_t)groups);
        if (!a->data)
            abort();
        /* the rows that pad the last group stay zero: zero that group
         * now, its real rows are filled over it later */
        memset((char *)a->data + group * (size_t)(groups - 1), 0, group);
        return;
    }
    /* Rows start on 64-byte boundaries so SIMD loads of a row never
     * straddle more cache lines than needed. */
    a->row_bytes = (act_row_bytes(wtype, n) + 63) / 64 * 64;
    a->data = aligned_alloc(64, a->row_bytes * (size_t)(rows ? rows : 1));
    if (!a->data)
        abort();
}

void quant_act_fill(quant_act *a, const float *x, int64_t r0, int64_t r1)
{
    const quant_kernels *k = kernels();
    float *tmp = NULL;
    if (a->packed && a->wtype != GGML_F32 && r0 < r1 &&
        !(tmp = malloc((size_t)a->n * sizeof(float))))
        abort();
    for (int64_t r = r0; r < r1; r++) {
        if (a->packed)
            act_fill_packed(a, k, x + r * a->n, r, tmp);
        else
            act_fill_row(a, k, x + r * a->n, r);
    }
    free(tmp);
}

void quant_act_prepare(quant_act *a, ggml_type wtype, const float *x,
                       int64_t rows, int64_t n)
{
    quant_act_init(a, wtype, rows, n);
    quant_act_fill(a, x, 0, rows);
}

void quant_act_free(quant_act *a)
{
    if (!a)
        return;
    free(a->data);
    a->data = NULL;
    a->rows = 0;
}

/* ---------------------------------------------------------------- */
/* Scalar dot products                                               */
/* ---------------------------------------------------------------- */

/* Eight partial sums, like the vector kernels' lanes, keep the rounding
 * error of long rows small without double arithmetic. */
static float dot_f32(const float *w, const float *x, int64_t n)
{
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += w[i + l] * x[i + l];
    for (; i < n; i++)
        s[0] += w[i] * x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* Sixteen lanes added in _mm512_reduce_add_ps's order (lane i + i+8,
 * then i+4, i+2, i+1), as llama.cpp's AVX-512 tiled F16 product that
 * produced the reference logits does. The activations are F16 values
 * here, so every product is exact and the result is bit for bit the
 * AVX-512 kernel's (and llama.cpp's): its F16 roundings downstream turn
 * any last-bit difference into visible steps. */
static float dot_f16(const uint16_t *w, const float *x, int64_t n)
{
    float s[16] = {0};
    pthread_once(&f16_table_once, f16_table_init);
    for (int64_t i = 0; i < n; i++)
        s[i & 15] += f16_table[w[i]] * x[i];
    for (int h = 8; h >= 1; h /= 2)
        for (int l = 0; l < h; l++)
            s[l] += s[l + h];
    return s[0];
}

static float dot_bf16(const uint16_t *w, const float *x, int64_t n)
{
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            s[l] += quant_bf16_to_f32(w[i + l]) * x[i + l];
    for (; i < n; i++)
        s[0] += quant_bf16_to_f32(w[i]) * x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static float dot_q8_0(const blk_q8_0 *w, qa_q8_row a, int64_t n)
{
    float sum = 0;
    for (int64_t b = 0; b < n / QK8_0; b++) {
        const int8_t *q = a.qs + b * QK8_0;
        int s = 0;
        for (int j = 0; j < QK8_0; j++)
            s += w[b].qs[j] * q[j];
        sum += f16(w[b].d) * a.dv[(b / 2) * 16 + (b & 1) * 8] * (float)s;
    }
    return sum;
}

/* Q4_0 sums as llama.cpp's x86 kernels for Q4_0 do (ggml-cpu repack.cpp:
 * the weights are repacked to block_q4_0x8 at load time on any AVX2
 * machine when the row count is a multiple of 8, and both
 * ggml_gemv_q4_0_8x8_q8_0 and ggml_gemm_q4_0_8x8_q8_0 accumulate
 * acc = fma((float)I, dw * dx, acc) block after block): one rounding per
 * block where Q8_0 has two. The product dw * dx of two F16 values is
 * exact in float. Matches llama.cpp's Q4_0 products to the bit for 1 to
 * 19 rows (backends/engine/PARITY.md). */
static float dot_q4_0(const blk_q4_0 *w, qa_q8_row a, int64_t n)
{
    float sum = 0;
    for (int64_t b = 0; b < n / QK4_0; b++) {
        const int8_t *q = a.qs + b * QK4_0;
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += ((w[b].qs[j] & 0xF) - 8) * q[j] +
                 ((w[b].qs[j] >> 4) - 8) * q[j + 16];
        float dd = f16(w[b].d) * a.dv[(b / 2) * 16 + (b & 1) * 8];
        sum = fmaf((float)s, dd, sum);
    }
    return sum;
}

/* Q4_1/Q5_0/Q5_1: sum over blocks of d*da*sum(q*a) (+ m*s, the min
 * term with the activation's F16 "s" as in ggml's Q8_1; Q5_0 instead
 * subtracts 16 from each quant). */
static float dot_q5_family(ggml_type t, const void *w, qa_q8_row a, int64_t n)
{
    float sum = 0;
    uint8_t v[32];
    for (int64_t b = 0; b < n / 32; b++) {
        const int8_t *q = a.qs + b * 32;
        float d, m = 0;
        int off = 0;
        if (t == GGML_Q4_1) {
            const blk_q4_1 *x = (const blk_q4_1 *)w + b;
            q4_values(x->qs, v);
            d = f16(x->d);
            m = f16(x->m);
        } else if (t == GGML_Q5_1) {
            const blk_q5_1 *x = (const blk_q5_1 *)w + b;
            q5_values(x->qs, x->qh, v);
            d = f16(x->d);
            m = f16(x->m);
        } else {
            const blk_q5_0 *x = (const blk_q5_0 *)w + b;
            q5_values(x->qs, x->qh, v);
            d = f16(x->d);
            off = 16;
        }
        int s = 0;
        for (int j = 0; j < 32; j++)
            s += (v[j] - off) * q[j];
        int64_t lane = (b / 2) * 16 + (b & 1) * 8;
        sum += d * a.dv[lane] * (float)s + m * a.sv[lane];
    }
    return sum;
}

static float dot_q4_k(const blk_q4_k *w, const blk_q8_k *a, int64_t n)
{
    float sum = 0;
    for (int64_t b = 0; b < n / QK_K; b++) {
        int isum = 0, imin = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m;
            q4k_scale_min(w[b].scales, j, &sc, &m);
            const uint8_t *q = w[b].qs + 32 * (j / 2);
            const int8_t *y = a[b].qs + 32 * j;
            int shift = (j & 1) * 4, s = 0;
            for (int l = 0; l < 32; l++)
                s += ((q[l] >> shift) & 0xF) * y[l];
            isum += sc * s;
            imin += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        sum += f16(w[b].d) * a[b].d * (float)isum -
               f16(w[b].dmin) * a[b].d * (float)imin;
    }
    return sum;
}

static float dot_q6_k(const blk_q6_k *w, const blk_q8_k *a, int64_t n)
{
    float sum = 0;
    uint8_t L[QK_K];
    for (int64_t b = 0; b < n / QK_K; b++) {
        q6k_values(&w[b], L);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++)
                s += (L[16 * j + l] - 32) * a[b].qs[16 * j + l];
            isum += w[b].scales[j] * s;
        }
        sum += f16(w[b].d) * a[b].d * (float)isum;
    }
    return sum;
}

/* One scalar kernel per type: the loops over rows around a dot. */
#define ROW(a, r) ((const char *)(a)->data + (size_t)(r) * (a)->row_bytes)
#define SCALAR_GEMM(name, call)                                          \
    static void name(const void *w, size_t stride, int64_t n,            \
                     const quant_act *a, int64_t i0, int64_t i1,         \
                     float *out, int64_t ld)                             \
    {                                                                    \
        for (int64_t r = 0; r < a->rows; r++)                            \
            for (int64_t i = i0; i < i1; i++) {                          \
                const void *wr = (const char *)w + (size_t)i * stride;   \
                out[r * ld + i] = call;                                  \
            }                                                            \
    }

SCALAR_GEMM(gemm_f32, dot_f32(wr, (const float *)ROW(a, r), n))
SCALAR_GEMM(gemm_f16, dot_f16(wr, (const float *)ROW(a, r), n))
SCALAR_GEMM(gemm_bf16, dot_bf16(wr, (const float *)ROW(a, r), n))
SCALAR_GEMM(gemm_q8_0, dot_q8_0(wr, qa_q8_view(a, r), n))
SCALAR_GEMM(gemm_q4_0, dot_q4_0(wr, qa_q8_view(a, r), n))
SCALAR_GEMM(gemm_q4_k, dot_q4_k(wr, (const blk_q8_k *)ROW(a, r), n))
SCALAR_GEMM(gemm_q6_k, dot_q6_k(wr, (const blk_q8_k *)ROW(a, r), n))
SCALAR_GEMM(gemm_q4_1, dot_q5_family(GGML_Q4_1, wr, qa_q8_view(a, r), n))
SCALAR_GEMM(gemm_q5_0, dot_q5_family(GGML_Q5_0, wr, qa_q8_view(a, r), n))
SCALAR_GEMM(gemm_q5_1, dot_q5_family(GGML_Q5_1, wr, qa_q8_view(a, r), n))

const quant_kernels quant_scalar_kernels = {
    "scalar", gemm_f32, gemm_f16, gemm_bf16, gemm_q8_0, gemm_q4_0,
    gemm_q4_k, gemm_q6_k, gemm_q4_1, gemm_q5_0, gemm_q5_1,
    act_q8_0_scalar, quant_q8_k, act_round_scalar, 0, /* no packed layout */
};

/* ---------------------------------------------------------------- */
/* Dispatch                                                          */
/* ---------------------------------------------------------------- */

static quant_kernels active;
static ops_kernels active_ops;
static pthread_once_t active_once = PTHREAD_ONCE_INIT;

static int cpu_has_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("f16c") && __builtin_cpu_supports("fma");
}

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
}

/* Fills *k (matmuls) and *o (the other forward-pass kernels, ops.h) for
 * the named level ("avx512", "avx2", "scalar"); -1 if the CPU lacks it.
 * Kernels a level lacks fall back to the level below. */
static int select_kernels(const char *name, quant_kernels *k, ops_kernels *o)
{
    *k = quant_scalar_kernels;
    *o = ops_scalar_kernels;
    if (!strcmp(name, "scalar"))
        return 0;
    if (!strcmp(name, "avx2") || !strcmp(name, "avx512")) {
        if (!cpu_has_avx2())
            return -1;
        quant_avx2_kernels(k);
        ops_avx2_kernels(o);
        k->name = "avx2";
    }
    if (!strcmp(name, "avx512")) {
        if (!cpu_has_avx512())
            return -1;
        quant_avx512_kernels(k);
        ops_avx512_kernels(o);
        k->name = "avx512";
    }
    return strcmp(k->name, name) ? -1 : 0;
}

static void init_active(void)
{
    const char *env = getenv("EMERGE_SIMD");
    if (env && *env && select_kernels(env, &active, &active_ops) == 0)
        return;
    if (select_kernels("avx512", &active, &active_ops) == 0)
        return;
    if (select_kernels("avx2", &active, &active_ops) == 0)
        return;
    select_kernels("scalar", &active, &active_ops);
}

static const quant_kernels *kernels(void)
{
    pthread_once(&active_once, init_active);
    return &active;
}

const char *quant_simd_name(void)
{
    return kernels()->name;
}

const struct ops_kernels *quant_ops(void)
{
    kernels();
    return &active_ops;
}

int quant_set_simd(const char *name)
{
    kernels();
    if (!name)
        name = cpu_has_avx512() ? "avx512" : cpu_has_avx2() ? "avx2" : "scalar";
    quant_kernels k;
    ops_kernels o;
    if (select_kernels(name, &k, &o))
        return -1;
    active = k;
    active_ops = o;
    return 0;
}

void quant_matmul_rows(ggml_type wtype, const void *w, int64_t n_in,
                       const quant_act *a, int64_t i0, int64_t i1,
                       float *out, int64_t ld_out)
{
    quant_matmul_rows_strided(wtype, w, n_in, ggml_type_size(wtype, n_in), a,
                              i0, i1, out, ld_out);
}

void quant_matmul_rows_strided(ggml_type wtype, const void *w, int64_t n_in,
                               size_t stride, const quant_act *a, int64_t i0,
                               int64_t i1, float *out, int64_t ld_out)
{
    const quant_kernels *k = kernels();
    quant_gemm_fn f = NULL;
    switch (wtype) {
    case GGML_F32: f = k->f32; break;
    case GGML_F16: f = k->f16; break;
    case GGML_BF16: f = k->bf16; break;
    case GGML_Q8_0: f = k->q8_0; break;
    case GGML_Q4_0: f = k->q4_0; break;
    case GGML_Q4_K: f = k->q4_k; break;
    case GGML_Q6_K: f = k->q6_k; break;
    case GGML_Q4_1: f = k->q4_1; break;
    case GGML_Q5_0: f = k->q5_0; break;
    case GGML_Q5_1: f = k->q5_1; break;
    default: break;
    }
    /* Misuse (activations prepared for another type or width, a row
     * length that is not whole blocks, rows that overlap) computes
     * nothing: callers check shapes when they load a model, so this is a
     * last guard, not an error path. */
    size_t row = ggml_type_size(wtype, n_in);
    if (!f || !row || stride < row || a->wtype != wtype || a->n != n_in ||
        i1 <= i0 || !a->rows)
        return;
    /* Packed activations prepared before quant_set_simd switched to a
     * level that cannot read them: a programming error, not bad input. */
    if (a->packed && !k->pack_min_rows)
        abort();
    f(w, stride, n_in, a, i0, i1, out, ld_out);
}

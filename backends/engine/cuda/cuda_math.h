/*
 * cuda_math.h - the arithmetic of the CUDA kernels, as functions that
 * compile both for the GPU (nvcc: __host__ __device__) and as plain C11.
 *
 * Owns: F16/BF16 conversion by bit manipulation (identical to quant.c's,
 * so the GPU rounds exactly where the CPU engine rounds), per-element
 * dequantisation of every stored type emerge runs (F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K, Q6_K, read byte by byte from ggml's block layouts), the
 * norm finalisation, RoPE angles and rotation in both pair layouts, the
 * GELU table lookup and SwiGLU, the online-softmax update used by the
 * attention kernel, the tree-attention ranges of a packed batch, and the
 * log-softmax reduction of a scored row.
 *
 * Why a header of small functions: the machine that builds and tests
 * emerge has nvcc but no GPU. Everything numerical lives here so that
 * tests/test_cuda_host.c runs it on the CPU against the CPU engine
 * (quant_dequantize_row, sample_logprob, the model's formulas); only the
 * launch glue in cuda_kernels.cu stays untested without a device.
 *
 * Kept C11 and C++17 compatible: no designated initialisers, no VLAs,
 * bit casts through memcpy on the host and intrinsics on the device.
 */
#ifndef EMERGE_CUDA_MATH_H
#define EMERGE_CUDA_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define CUDA_HD static inline __host__ __device__
#else
#define CUDA_HD static inline
#endif

/* ggml type ids (the values of ggml_type in gguf.h, repeated here so the
 * kernels need no C header with enums of their own). */
enum {
    CUDA_T_F32 = 0, CUDA_T_F16 = 1, CUDA_T_Q4_0 = 2, CUDA_T_Q8_0 = 8,
    CUDA_T_Q4_K = 12, CUDA_T_Q6_K = 14, CUDA_T_BF16 = 30,
};

/* ------------------------------------------------------------ bit casts */

CUDA_HD uint32_t cuda_f32_bits(float f)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
#endif
}

CUDA_HD float cuda_bits_f32(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

/* --------------------------------------------------------- F16 and BF16 */

/* IEEE half to float, NaNs made quiet as F16C does. On the device the
 * conversion instruction gives the same value for every non-NaN input
 * and costs one instruction instead of a dozen. */
CUDA_HD float cuda_f16_to_f32(uint16_t h)
{
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(h));
#endif
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 31)
        return cuda_bits_f32(sign | 0x7f800000u | (man ? 0x400000u : 0) |
                             man << 13);
    if (exp)
        return cuda_bits_f32(sign | (exp + 112) << 23 | man << 13);
    if (!man)
        return cuda_bits_f32(sign);
    uint32_t e = 113; /* subnormal: normalise the mantissa */
    while (!(man & 0x400)) {
        man <<= 1;
        e--;
    }
    return cuda_bits_f32(sign | e << 23 | (man & 0x3ff) << 13);
}

/* Float to half, round to nearest even (the F16C rule; on the device the
 * round-to-nearest-even instruction, equal for every non-NaN input). */
CUDA_HD uint16_t cuda_f32_to_f16(float f)
{
#ifdef __CUDA_ARCH__
    return __half_as_ushort(__float2half_rn(f));
#endif
    uint32_t x = cuda_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000u)
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00);
    if (ax >= 0x38800000u) {
        uint32_t r = ax - (112u << 23);
        r += 0xfff + ((r >> 13) & 1);
        return (uint16_t)(sign | (r >> 13));
    }
    if (ax <= 0x33000000u)
        return sign;
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    int s = 126 - (int)(ax >> 23);
    uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return (uint16_t)(sign | q);
}

CUDA_HD float cuda_round_f16(float x)
{
    return cuda_f16_to_f32(cuda_f32_to_f16(x));
}

CUDA_HD float cuda_bf16_to_f32(uint16_t h)
{
    return cuda_bits_f32((uint32_t)h << 16);
}

CUDA_HD uint16_t cuda_f32_to_bf16(float f)
{
    uint32_t u = cuda_f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

CUDA_HD float cuda_round_bf16(float x)
{
    return cuda_bf16_to_f32(cuda_f32_to_bf16(x));
}

/* ------------------------------------------------------ dequantisation */

/* Elements per block and bytes per block of a type (1 and the element
 * size for the float types); 0 for a type the kernels cannot read. */
CUDA_HD int cuda_block_elems(int t)
{
    switch (t) {
    case CUDA_T_F32: case CUDA_T_F16: case CUDA_T_BF16: return 1;
    case CUDA_T_Q8_0: case CUDA_T_Q4_0: return 32;
    case CUDA_T_Q4_K: case CUDA_T_Q6_K: return 256;
    default: return 0;
    }
}

CUDA_HD int cuda_block_bytes(int t)
{
    switch (t) {
    case CUDA_T_F32: return 4;
    case CUDA_T_F16: case CUDA_T_BF16: return 2;
    case CUDA_T_Q8_0: return 34;
    case CUDA_T_Q4_0: return 18;
    case CUDA_T_Q4_K: return 144;
    case CUDA_T_Q6_K: return 210;
    default: return 0;
    }
}

/* Bytes of a row of n elements (n a multiple of the block size). */
CUDA_HD int64_t cuda_row_bytes(int t, int64_t n)
{
    int be = cuda_block_elems(t);
    return be ? n / be * cuda_block_bytes(t) : 0;
}

/* Little-endian u16 at any byte address (blocks are not 2-aligned). */
CUDA_HD uint16_t cuda_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Q4_K's 6-bit scale and min of sub-block j (0..7) of 12 packed bytes. */
CUDA_HD void cuda_q4k_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

/* Element i (0..255) of a Q4_K block: d*sc*q - dmin*m, in quant.c's
 * order of operations so the host result is bit-identical. */
CUDA_HD float cuda_deq_q4_k(const uint8_t *b, int i)
{
    float d = cuda_f16_to_f32(cuda_u16(b)), dmin = cuda_f16_to_f32(cuda_u16(b + 2));
    int j = i / 32, l = i % 32, sc, m;
    cuda_q4k_scale_min(b + 4, j, &sc, &m);
    int q = (b[16 + 32 * (j / 2) + l] >> ((j & 1) * 4)) & 0xF;
    return d * (float)sc * (float)q - dmin * (float)m;
}

/* Element i (0..255) of a Q6_K block: ql (128 bytes), qh (64), int8
 * scales (16), f16 d. Each 128-element half uses 64 ql and 32 qh bytes:
 * ql byte l holds elements l (low nibble) and l+64 (high), byte l+32
 * elements l+32 and l+96; qh byte l their top two bits, two per quarter. */
CUDA_HD float cuda_deq_q6_k(const uint8_t *b, int i)
{
    int h = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
    const uint8_t *ql = b + 64 * h;
    int qh = b[128 + 32 * h + l];
    int lo = quarter & 1 ? ql[l + 32] : ql[l];
    lo = quarter >= 2 ? lo >> 4 : lo & 0xF;
    int q = lo | ((qh >> (2 * quarter)) & 3) << 4;
    float d = cuda_f16_to_f32(cuda_u16(b + 208));
    return d * (float)(int8_t)b[192 + i / 16] * (float)(q - 32);
}

/* Element e of a row of type t. */
CUDA_HD float cuda_deq(int t, const uint8_t *row, int64_t e)
{
    switch (t) {
    case CUDA_T_F32: {
        const uint8_t *p = row + 4 * e;
        return cuda_bits_f32((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                             (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    }
    case CUDA_T_F16: return cuda_f16_to_f32(cuda_u16(row + 2 * e));
    case CUDA_T_BF16: return cuda_bf16_to_f32(cuda_u16(row + 2 * e));
    case CUDA_T_Q8_0: {
        const uint8_t *b = row + 34 * (e / 32);
        return cuda_f16_to_f32(cuda_u16(b)) * (float)(int8_t)b[2 + e % 32];
    }
    case CUDA_T_Q4_0: {
        const uint8_t *b = row + 18 * (e / 32);
        int j = (int)(e % 32), byte = b[2 + j % 16];
        int q = j < 16 ? byte & 0xF : byte >> 4;
        return cuda_f16_to_f32(cuda_u16(b)) * (float)(q - 8);
    }
    case CUDA_T_Q4_K: return cuda_deq_q4_k(row + 144 * (e / 256), (int)(e % 256));
    case CUDA_T_Q6_K: return cuda_deq_q6_k(row + 210 * (e / 256), (int)(e % 256));
    default: return 0.0f;
    }
}

/* Elements e0..e0+7 of a row of a quantised type (e0 a multiple of 8, so
 * the eight share a block, a sub-block and a scale): the block header is
 * decoded once for the eight. Values equal cuda_deq's bit for bit. */
CUDA_HD void cuda_deq8(int t, const uint8_t *row, int64_t e0, float *out)
{
    switch (t) {
    case CUDA_T_Q8_0: {
        const uint8_t *b = row + 34 * (e0 / 32);
        float d = cuda_f16_to_f32(cuda_u16(b));
        for (int i = 0; i < 8; i++)
            out[i] = d * (float)(int8_t)b[2 + e0 % 32 + i];
        return;
    }
    case CUDA_T_Q4_0: {
        const uint8_t *b = row + 18 * (e0 / 32);
        int j0 = (int)(e0 % 32), hi = j0 >= 16;
        float d = cuda_f16_to_f32(cuda_u16(b));
        for (int i = 0; i < 8; i++) {
            int byte = b[2 + (j0 + i) % 16];
            out[i] = d * (float)((hi ? byte >> 4 : byte & 0xF) - 8);
        }
        return;
    }
    case CUDA_T_Q4_K: {
        const uint8_t *b = row + 144 * (e0 / 256);
        int i0 = (int)(e0 % 256), j = i0 / 32, sc, m;
        float d = cuda_f16_to_f32(cuda_u16(b));
        float dmin = cuda_f16_to_f32(cuda_u16(b + 2));
        cuda_q4k_scale_min(b + 4, j, &sc, &m);
        const uint8_t *q = b + 16 + 32 * (j / 2) + i0 % 32;
        for (int i = 0; i < 8; i++)
            out[i] = d * (float)sc * (float)((q[i] >> ((j & 1) * 4)) & 0xF) -
                     dmin * (float)m;
        return;
    }
    case CUDA_T_Q6_K: {
        const uint8_t *b = row + 210 * (e0 / 256);
        int i0 = (int)(e0 % 256), h = i0 / 128, quarter = i0 % 128 / 32;
        int l0 = i0 % 32;
        const uint8_t *ql = b + 64 * h + (quarter & 1 ? 32 : 0);
        const uint8_t *qh = b + 128 + 32 * h;
        float d = cuda_f16_to_f32(cuda_u16(b + 208));
        float sc = (float)(int8_t)b[192 + i0 / 16];
        for (int i = 0; i < 8; i++) {
            int l = l0 + i;
            int lo = quarter >= 2 ? ql[l] >> 4 : ql[l] & 0xF;
            int q = lo | ((qh[l] >> (2 * quarter)) & 3) << 4;
            out[i] = d * sc * (float)(q - 32);
        }
        return;
    }
    default:
        for (int i = 0; i < 8; i++)
            out[i] = cuda_deq(t, row, e0 + i);
    }
}

/* ---------------------------------------------------------------- norms */

/* 1/sqrt(mean square + eps) from a double sum of float squares: the CPU
 * engine's (and ggml's) rounding. */
CUDA_HD float cuda_norm_scale(double ss, int n, float eps)
{
    return 1.0f / sqrtf((float)(ss / n) + eps);
}

/* One normalised element: RMSNorm passes mean 0 and b NULL. */
CUDA_HD float cuda_norm_apply(float x, float mean, float scale, float w,
                              const float *b, int i)
{
    return (x - mean) * scale * w + (b ? b[i] : 0.0f);
}

/* ----------------------------------------------------------------- RoPE */

/* Angle of rotary pair i at position pos: pos * base^(-2i/n_rot), the
 * power built by repeated multiplication as ggml's cos/sin cache does. */
CUDA_HD float cuda_rope_theta(int pos, int i, float theta_scale)
{
    float theta = (float)pos;
    for (int k = 0; k < i; k++)
        theta *= theta_scale;
    return theta;
}

/* Which two dimensions pair i rotates: NEOX pairs (i, i+n_rot/2),
 * the original layout adjacent pairs (2i, 2i+1). */
CUDA_HD void cuda_rope_pair(int i, int n_rot, int neox, int *a, int *b)
{
    *a = neox ? i : 2 * i;
    *b = neox ? i + n_rot / 2 : 2 * i + 1;
}

CUDA_HD void cuda_rope_rotate(float *x0, float *x1, float c, float s)
{
    float a = *x0, b = *x1;
    *x0 = a * c - b * s;
    *x1 = a * s + b * c;
}

/* ------------------------------------------------------- activations */

/* ggml's GELU: the table of every F16 input (model.c's gelu_tab), zero
 * below -10 and identity above 10. */
CUDA_HD float cuda_gelu(const float *tab, float x)
{
    if (x <= -10.0f)
        return 0.0f;
    if (x >= 10.0f)
        return x;
    return tab[cuda_f32_to_f16(x)];
}

CUDA_HD float cuda_swiglu(float g, float u)
{
    return g / (1.0f + expf(-g)) * u;
}

/* -------------------------------------------------------- online softmax */

/* Running maximum and sum of exp(score - max) of the scores seen so far;
 * the attention accumulator is kept relative to the same maximum. */
typedef struct cuda_osm {
    float m;
    float l;
} cuda_osm;

CUDA_HD void cuda_osm_init(cuda_osm *st)
{
    st->m = -INFINITY;
    st->l = 0.0f;
}

/* Adds score s: returns the factor the accumulator must be scaled by and
 * the weight p of this position's value row. */
CUDA_HD void cuda_osm_update(cuda_osm *st, float s, float *corr, float *p)
{
    float m = s > st->m ? s : st->m;
    *corr = st->m == -INFINITY ? 0.0f : expf(st->m - m);
    *p = expf(s - m);
    st->l = st->l * *corr + *p;
    st->m = m;
}

/* The weight of score s once the maximum m and the sum l of expf(s - m)
 * over the row are known, rounded to F16 as the CPU engine (and
 * llama.cpp's F16 attention product) rounds its probabilities. */
CUDA_HD float cuda_att_prob(float s, float m, float l)
{
    float inv = (float)(1.0 / (double)l);
    return cuda_round_f16(expf(s - m) * inv);
}

/* Merges state b into a (two partial passes over disjoint positions):
 * the factors scale a's and b's accumulators before adding them. */
CUDA_HD void cuda_osm_merge(cuda_osm *a, const cuda_osm *b, float *ca,
                            float *cb)
{
    float m = a->m > b->m ? a->m : b->m;
    *ca = a->m == -INFINITY ? 0.0f : expf(a->m - m);
    *cb = b->m == -INFINITY ? 0.0f : expf(b->m - m);
    a->l = a->l * *ca + b->l * *cb;
    a->m = m;
}

/* ----------------------------------------------- packed-batch attention */

/* What one token of a packed batch may attend to, as up to three runs of
 * flat KV rows visited in order: a prefix shared with an earlier context
 * of the batch (a0, alen: the few-shot examples several questions start
 * with), the rest of its own context (b0, blen), and its own
 * continuation up to and including itself (c0, clen). Positions for RoPE
 * are stored separately; the visible rows are always in position order
 * 0, 1, ..., pos. */
typedef struct cuda_range {
    int32_t a0, alen, b0, blen, c0, clen;
} cuda_range;

CUDA_HD int cuda_range_len(const cuda_range *r)
{
    return r->alen + r->blen + r->clen;
}

/* Flat KV row of the k-th visible position (0 <= k < cuda_range_len). */
CUDA_HD int32_t cuda_range_row(const cuda_range *r, int k)
{
    if (k < r->alen)
        return r->a0 + k;
    k -= r->alen;
    return k < r->blen ? r->b0 + k : r->c0 + (k - r->blen);
}

/* ---------------------------------------------------------- log-softmax */

/* Per-thread partial of a scored row: its maximum with the lowest index
 * reaching it (the CPU's argmax tie rule), then the sum of exp(x - max).
 * Threads cover indices start, start+stride, ...; partials merge with
 * cuda_lsm_merge in any order. */
typedef struct cuda_lsm {
    float mx;
    int32_t arg;
    double sum; /* of expf(x - mx) */
} cuda_lsm;

CUDA_HD void cuda_lsm_max(const float *x, int n, int start, int stride,
                          cuda_lsm *p)
{
    p->mx = -INFINITY;
    p->arg = -1;
    p->sum = 0;
    for (int i = start; i < n; i += stride)
        if (p->arg < 0 || x[i] > p->mx) {
            p->mx = x[i];
            p->arg = i;
        }
}

CUDA_HD void cuda_lsm_max_merge(cuda_lsm *a, const cuda_lsm *b)
{
    if (b->arg < 0)
        return;
    if (a->arg < 0 || b->mx > a->mx || (b->mx == a->mx && b->arg < a->arg)) {
        a->mx = b->mx;
        a->arg = b->arg;
    }
}

/* Sum of expf(x - mx) over the thread's indices (mx: the row maximum). */
CUDA_HD double cuda_lsm_sum(const float *x, int n, int start, int stride,
                            float mx)
{
    double s = 0;
    for (int i = start; i < n; i += stride)
        s += expf(x[i] - mx);
    return s;
}

/* log_softmax(x)[target] from the row maximum and the summed exps. */
CUDA_HD double cuda_lsm_logprob(float x_target, float mx, double sum)
{
    return (double)x_target - ((double)mx + log(sum));
}

#endif

/*
 * test_quant.c - tensor types and matmul kernels: F16/BF16 conversions
 * (bit-exact against the F16C instruction and hand-picked edge cases),
 * quantise/dequantise error bounds per type, dequantisation of the shared
 * GGUF fixtures against their F32 source, SIMD kernels against the scalar
 * ones (quantised: to the bit), every row of a batch against the row
 * multiplied alone (to the bit, at every SIMD level and thread split),
 * and matmul against a dequantise-then-dot reference within the error
 * the 8-bit activations allow.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <immintrin.h>

#include "backends/engine/gguf.h"
#include "backends/engine/quant.h"
#include "base/common.h"
#include "tests/testlib.h"

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static float gauss(uint64_t *st)
{
    double u1 = em_rand01(st), u2 = em_rand01(st);
    if (u1 < 1e-12)
        u1 = 1e-12;
    return (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
}

static float *rand_vec(int64_t n, uint64_t seed, float scale)
{
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = scale * gauss(&seed);
    return x;
}

/* ---- F16 / BF16 -------------------------------------------------- */

TEST(f16_edge_cases)
{
    CHECK_INT(quant_f32_to_f16(1.0f), 0x3c00);
    CHECK_INT(quant_f32_to_f16(-2.0f), 0xc000);
    CHECK_INT(quant_f32_to_f16(0.0f), 0x0000);
    CHECK_INT(quant_f32_to_f16(-0.0f), 0x8000);
    CHECK_INT(quant_f32_to_f16(65504.0f), 0x7bff);
    CHECK_INT(quant_f32_to_f16(65519.99f), 0x7bff);
    CHECK_INT(quant_f32_to_f16(65520.0f), 0x7c00);    /* tie -> even = inf */
    CHECK_INT(quant_f32_to_f16(1e9f), 0x7c00);
    CHECK_INT(quant_f32_to_f16(-INFINITY), 0xfc00);
    CHECK_INT(quant_f32_to_f16(fbits(0x7fc00000)), 0x7e00);
    CHECK_INT(quant_f32_to_f16(fbits(0x7f800001)), 0x7e00); /* sNaN quieted */
    CHECK_INT(quant_f32_to_f16(ldexpf(1, -24)), 0x0001);    /* min subnormal */
    CHECK_INT(quant_f32_to_f16(ldexpf(1, -25)), 0x0000);    /* tie -> even 0 */
    CHECK_INT(quant_f32_to_f16(ldexpf(1.0001f, -25)), 0x0001);
    CHECK_INT(quant_f32_to_f16(ldexpf(3, -25)), 0x0002);    /* tie -> even 2 */
    CHECK_INT(quant_f32_to_f16(ldexpf(1023, -24)), 0x03ff); /* max subnormal */
    CHECK_INT(quant_f32_to_f16(ldexpf(1, -14)), 0x0400);    /* min normal */
    CHECK_INT(quant_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00);  /* tie even */
    CHECK_INT(quant_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    CHECK_INT(quant_f32_to_f16(fbits(0x00000001)), 0x0000);
    CHECK_NEAR(quant_f16_to_f32(0x0001), ldexp(1, -24), 0);
    CHECK_NEAR(quant_f16_to_f32(0x03ff), ldexp(1023, -24), 0);
    CHECK_NEAR(quant_f16_to_f32(0x7bff), 65504, 0);
    CHECK_NEAR(quant_f16_to_f32(0xc000), -2, 0);
    CHECK(isinf(quant_f16_to_f32(0x7c00)));
    CHECK(isnan(quant_f16_to_f32(0x7e00)));
    CHECK_INT(bits(quant_f16_to_f32(0x8000)), 0x80000000u);
    /* Every non-NaN half survives the round trip. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
            continue;
        bad += quant_f32_to_f16(quant_f16_to_f32((uint16_t)h)) != h;
    }
    CHECK_INT(bad, 0);
}

__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_cvtss_sh(f, 0);
}

__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h)
{
    return _cvtsh_ss(h);
}

TEST(f16_matches_f16c)
{
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("f16c")) {
        tl_skip("CPU lacks F16C");
        return;
    }
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++)
        bad += bits(quant_f16_to_f32((uint16_t)h)) !=
               bits(hw_f16_to_f32((uint16_t)h));
    CHECK_INT(bad, 0);
    uint64_t st = 42;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = (uint32_t)em_splitmix64(&st);
        /* Half the samples near the f16 range, where rounding happens. */
        if (i & 1)
            u = (u & 0x80000000u) | (0x33000000u + u % 0x14800000u);
        float f = fbits(u);
        if (quant_f32_to_f16(f) != hw_f32_to_f16(f)) {
            if (bad++ < 3)
                tl_fail(__FILE__, __LINE__, "f32 %08x: %04x vs f16c %04x", u,
                        quant_f32_to_f16(f), hw_f32_to_f16(f));
        }
    }
    CHECK_INT(bad, 0);
}

TEST(bf16_conversions)
{
    CHECK_INT(quant_f32_to_bf16(1.0f), 0x3f80);
    CHECK_INT(quant_f32_to_bf16(fbits(0x3f808000)), 0x3f80);   /* tie even */
    CHECK_INT(quant_f32_to_bf16(fbits(0x3f818000)), 0x3f82);   /* tie even */
    CHECK_INT(quant_f32_to_bf16(fbits(0x3f808001)), 0x3f81);
    CHECK_INT(quant_f32_to_bf16(INFINITY), 0x7f80);
    CHECK_INT(quant_f32_to_bf16(fbits(0x7f7fffff)), 0x7f80);   /* max -> inf */
    CHECK_INT(quant_f32_to_bf16(fbits(0x7f800001)), 0x7fc0);   /* quiet nan */
    CHECK_INT(quant_f32_to_bf16(fbits(0x00010000)), 0x0001);   /* subnormal */
    CHECK_INT(quant_f32_to_bf16(-0.0f), 0x8000);
    CHECK_INT(bits(quant_bf16_to_f32(0xbf80)), 0xbf800000u);
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f))
            continue;
        bad += quant_f32_to_bf16(quant_bf16_to_f32((uint16_t)h)) != h;
    }
    CHECK_INT(bad, 0);
}

/* ---- quantise / dequantise ---------------------------------------- */

static const ggml_type all_types[] = {GGML_F32, GGML_F16, GGML_BF16,
    GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_Q6_K, GGML_Q4_1, GGML_Q5_0,
    GGML_Q5_1};
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

/* Largest |error| allowed for one value of a block with largest
 * magnitude amax. */
static double max_err(ggml_type t, double amax)
{
    switch (t) {
    case GGML_F32: return 0;
    case GGML_F16: return fmax(amax * ldexp(1, -11), ldexp(1, -25)); /* subnormals */
    case GGML_BF16: return amax * ldexp(1, -8);
    /* half a step, plus 127 times the F16 rounding of the scale */
    case GGML_Q8_0: return amax / 127 * (0.5 + 127 * ldexp(1, -11));
    case GGML_Q4_0: return amax / 8 * 1.01;           /* one step: +max side */
    case GGML_Q5_0: return amax / 16 * 1.01;
    /* half a step of range/15 (range/31), the min's F16 rounding, and
     * the step's own F16 rounding times 15 (31) */
    case GGML_Q4_1: return 2 * amax / 15 * (0.5 + 15 * ldexp(1, -11)) + amax * ldexp(1, -11);
    case GGML_Q5_1: return 2 * amax / 31 * (0.5 + 31 * ldexp(1, -11)) + amax * ldexp(1, -11);
    case GGML_Q4_K: return amax / 15 * 2.0;           /* range/15 steps */
    case GGML_Q6_K: return amax / 32 * 1.1;
    default: return 0;
    }
}

TEST(roundtrip_bounds)
{
    const int64_t n = 4096;
    float *x = rand_vec(n, 7, 0.02f), *y = malloc(n * sizeof *y);
    x[5] = 0.3f;                  /* an outlier */
    void *q = malloc(ggml_type_size(GGML_F32, n));
    for (int ti = 0; ti < N_TYPES; ti++) {
        ggml_type t = all_types[ti];
        size_t sz = quant_quantize_row(t, x, q, n);
        CHECK_INT(sz, ggml_type_size(t, n));
        quant_dequantize_row(t, q, y, n);
        int bs = t == GGML_Q4_K || t == GGML_Q6_K ? 256 : 32;
        double se = 0, sx = 0;
        int bad = 0;
        for (int64_t b = 0; b < n; b += bs) {
            double amax = 0;
            for (int j = 0; j < bs; j++)
                amax = fmax(amax, fabs(x[b + j]));
            for (int j = 0; j < bs; j++) {
                double e = fabs(x[b + j] - y[b + j]);
                se += e * e;
                sx += (double)x[b + j] * x[b + j];
                bad += e > max_err(t, amax) + 1e-12;
            }
        }
        CHECK_MSG(bad == 0, "%s: %d values beyond the bound", ggml_type_name(t), bad);
        double rel = sqrt(se / sx);
        double lim = t == GGML_Q4_0 || t == GGML_Q4_K || t == GGML_Q4_1 ? 0.12 :
                     t == GGML_Q6_K || t == GGML_Q5_0 || t == GGML_Q5_1 ? 0.06 :
                     t == GGML_Q8_0 ? 0.01 : 0.005;
        CHECK_MSG(rel < lim, "%s: relative rms error %g >= %g", ggml_type_name(t), rel, lim);
    }
    /* All-zero input stays zero. */
    memset(x, 0, n * sizeof *x);
    for (int ti = 0; ti < N_TYPES; ti++) {
        quant_quantize_row(all_types[ti], x, q, 256);
        quant_dequantize_row(all_types[ti], q, y, 256);
        int nz = 0;
        for (int j = 0; j < 256; j++)
            nz += y[j] != 0;
        CHECK_INT(nz, 0);
    }
    free(x); free(y); free(q);
}

/* Hand-built blocks with known values. */
TEST(dequantize_hand_blocks)
{
    uint8_t b[210];
    float y[256];
    /* Q8_0: d = 0.5, qs = j - 16 */
    uint16_t h = quant_f32_to_f16(0.5f);
    memcpy(b, &h, 2);
    for (int j = 0; j < 32; j++)
        b[2 + j] = (uint8_t)(int8_t)(j - 16);
    quant_dequantize_row(GGML_Q8_0, b, y, 32);
    CHECK_NEAR(y[0], -8, 0);
    CHECK_NEAR(y[31], 7.5, 0);
    /* Q4_0: d = 2, byte j = (j) | (15-j)<<4 -> elem j = 2(j-8),
     * elem j+16 = 2(7-j) */
    h = quant_f32_to_f16(2.0f);
    memcpy(b, &h, 2);
    for (int j = 0; j < 16; j++)
        b[2 + j] = (uint8_t)(j | (15 - j) << 4);
    quant_dequantize_row(GGML_Q4_0, b, y, 32);
    CHECK_NEAR(y[0], -16, 0);
    CHECK_NEAR(y[15], 14, 0);
    CHECK_NEAR(y[16], 14, 0);
    CHECK_NEAR(y[31], -16, 0);
    /* Q4_1: d = 0.5, m = -1; byte 0 = 0xF3 -> elem 0: 3, elem 16: 15 */
    memset(b, 0, sizeof b);
    h = quant_f32_to_f16(0.5f); memcpy(b, &h, 2);
    h = quant_f32_to_f16(-1.0f); memcpy(b + 2, &h, 2);
    b[4] = 0xF3;
    quant_dequantize_row(GGML_Q4_1, b, y, 32);
    CHECK_NEAR(y[0], 0.5, 0);
    CHECK_NEAR(y[16], 6.5, 0);
    CHECK_NEAR(y[1], -1, 0);
    /* Q5_0: d = 1; qh bits 3 and 20 set; qs[3] = 0x21, qs[4] = 0x50:
     * elem 3 = (1|16)-16, elem 19 = 2-16, elem 4 = -16, elem 20 = (5|16)-16 */
    memset(b, 0, sizeof b);
    h = quant_f32_to_f16(1.0f); memcpy(b, &h, 2);
    uint32_t qh = 1u << 3 | 1u << 20;
    memcpy(b + 2, &qh, 4);
    b[6 + 3] = 0x21;
    b[6 + 4] = 0x50;
    quant_dequantize_row(GGML_Q5_0, b, y, 32);
    CHECK_NEAR(y[3], 1, 0);
    CHECK_NEAR(y[19], -14, 0);
    CHECK_NEAR(y[4], -16, 0);
    CHECK_NEAR(y[20], 5, 0);
    /* Q5_1: d = 2, m = 0.25, same quants: elem 3 = 17*2 + 0.25 */
    memset(b, 0, sizeof b);
    h = quant_f32_to_f16(2.0f); memcpy(b, &h, 2);
    h = quant_f32_to_f16(0.25f); memcpy(b + 2, &h, 2);
    memcpy(b + 4, &qh, 4);
    b[8 + 3] = 0x21;
    quant_dequantize_row(GGML_Q5_1, b, y, 32);
    CHECK_NEAR(y[3], 34.25, 0);
    CHECK_NEAR(y[19], 4.25, 0);
    /* Q4_K: d = 1, dmin = 0.5; sub-block 5's scale 37 = 0b100101 and min
     * 44 = 0b101100 are split across bytes 9, 1 (scale high bits) and 5
     * (min high bits); all quants 3 except byte 64+l (sub-blocks 4, 5). */
    memset(b, 0, sizeof b);
    h = quant_f32_to_f16(1.0f); memcpy(b, &h, 2);
    h = quant_f32_to_f16(0.5f); memcpy(b + 2, &h, 2);
    uint8_t *sc = b + 4, *qs = b + 16;
    sc[9] = (37 & 0xF) | (44 & 0xF) << 4;
    sc[1] = (uint8_t)((37 >> 4) << 6);
    sc[5] = (uint8_t)((44 >> 4) << 6);
    sc[0] = 2;                      /* sub-block 0: scale 2, min 0 */
    for (int l = 0; l < 128; l++)
        qs[l] = 0x33;
    qs[64] = 0x9A;                  /* elem 128 -> 10 (sub 4), elem 160 -> 9 */
    quant_dequantize_row(GGML_Q4_K, b, y, 256);
    CHECK_NEAR(y[0], 2 * 3, 0);
    CHECK_NEAR(y[160], 37 * 9 - 0.5 * 44, 1e-4);
    CHECK_NEAR(y[161], 37 * 3 - 0.5 * 44, 1e-4);
    CHECK_NEAR(y[128], 0, 0);       /* sub-block 4: scale 0, min 0 */
    /* Q6_K: element 200 = half 1, group 2, l 8 -> low nibble: high of
     * ql[64+8], bits 4-5 of qh[32+8]; scale index 12. */
    memset(b, 0, sizeof b);
    for (int j = 0; j < 16; j++)
        b[192 + j] = (uint8_t)(int8_t)(j - 8);
    h = quant_f32_to_f16(0.25f); memcpy(b + 208, &h, 2);
    b[64 + 8] = 0x70;               /* high nibble 7 */
    b[128 + 32 + 8] = 0x20;         /* bits 4-5 = 2 -> value 7 | 32 = 39 */
    quant_dequantize_row(GGML_Q6_K, b, y, 256);
    CHECK_NEAR(y[200], 0.25 * (12 - 8) * (39 - 32), 0);
    CHECK_NEAR(y[0], 0.25 * -8 * -32, 0);
    CHECK_NEAR(y[72], 0.25 * (4 - 8) * (0 - 32), 0);
}

/* ---- the shared fixtures ------------------------------------------ */

/* The shipped copies in tests/data/parity (their vocabulary rows are the
 * same subset in every tiny-llama file) where there is one, else ../shared. */
static gguf_file *open_path(char *path)
{
    if (!path)
        return NULL;
    gguf_file *g = NULL;
    em_err err;
    if (gguf_open(path, &g, &err)) {
        tl_fail(__FILE__, __LINE__, "%s", err.msg);
        g = NULL;
    }
    free(path);
    return g;
}

static gguf_file *open_shared_fixture(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/gguf/%s", name);
    return open_path(tl_shared(rel));
}

static gguf_file *open_fixture(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "%.*s", (int)(strlen(name) - 5), name);
    return open_path(tl_fixture(rel));
}

/* Every tensor of type t in file q, dequantised, lies within max_err of
 * the same tensor of the F32 file; returns how many tensors matched. */
static int compare_with_f32(gguf_file *q, gguf_file *f, ggml_type t)
{
    int checked = 0;
    for (uint64_t k = 0; k < q->n_tensors; k++) {
        const gguf_tensor *tq = &q->tensors[k];
        const gguf_tensor *tf = gguf_find_tensor(f, tq->name);
        if (tq->type != t || !tf || tf->type != GGML_F32)
            continue;
        int64_t n = tq->ne[0], rows = tq->nbytes / ggml_type_size(t, n);
        float *y = malloc((size_t)n * sizeof *y);
        size_t stride = ggml_type_size(t, n);
        int bad = 0, bs = ggml_block_size(t);
        for (int64_t r = 0; r < rows; r++) {
            const float *x = (const float *)tf->data + r * n;
            quant_dequantize_row(t, (const char *)tq->data + r * stride, y, n);
            for (int64_t b = 0; b < n; b += bs) {
                double amax = 0;
                for (int j = 0; j < bs; j++)
                    amax = fmax(amax, fabs(x[b + j]));
                for (int j = 0; j < bs; j++)
                    bad += fabs(x[b + j] - y[b + j]) > max_err(t, amax) + 1e-9;
            }
        }
        CHECK_MSG(bad == 0, "%s (%s): %d values off", tq->name,
                  ggml_type_name(t), bad);
        free(y);
        checked++;
    }
    return checked;
}

TEST(fixtures_against_f32)
{
    gguf_file *f = open_fixture("tiny-llama-f32.gguf");
    if (!f)
        return;
    static const struct { const char *file; ggml_type t; } cases[] = {
        {"tiny-llama-q8_0.gguf", GGML_Q8_0},
        {"tiny-llama-q4_0.gguf", GGML_Q4_0},
        {"tiny-llama-q4_0.gguf", GGML_Q6_K},
        {"tiny-llama-f16.gguf", GGML_F16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gguf_file *q = open_fixture(cases[i].file);
        if (!q)
            continue;
        int n = compare_with_f32(q, f, cases[i].t);
        if (cases[i].t != GGML_Q6_K)
            CHECK_MSG(n >= 7, "%s: only %d %s tensors", cases[i].file, n,
                      ggml_type_name(cases[i].t));
        gguf_close(q);
    }
    gguf_close(f);
}

/* The K-quant fixtures have no F32 source; their dequantised weights
 * must be finite, of plausible size, and the two files (same shape and
 * seed) must agree with each other to within the Q4_K step. */
TEST(fixtures_k_quants)
{
    /* both from ../shared: the shipped Q4_K copy has other vocabulary rows */
    gguf_file *a = open_shared_fixture("wide-llama-q4_k.gguf");
    gguf_file *b = open_shared_fixture("wide-llama-q6_k.gguf");
    if (!a || !b) {
        if (a) gguf_close(a);
        if (b) gguf_close(b);
        return;
    }
    int seen_k4 = 0, seen_k6 = 0;
    for (uint64_t k = 0; k < a->n_tensors; k++) {
        const gguf_tensor *ta = &a->tensors[k];
        const gguf_tensor *tb = gguf_find_tensor(b, ta->name);
        if (!tb || ta->n_dims != 2 || tb->type != GGML_Q6_K)
            continue;
        if (ta->type != GGML_Q4_K && ta->type != GGML_Q6_K)
            continue;
        seen_k4 += ta->type == GGML_Q4_K;
        seen_k6 += 1;
        int64_t n = ta->ne[0];
        float *ya = malloc(n * sizeof *ya), *yb = malloc(n * sizeof *yb);
        double se = 0, sb = 0;
        int nonfinite = 0;
        for (int64_t r = 0; r < ta->ne[1]; r++) {
            quant_dequantize_row(ta->type, (const char *)ta->data +
                                 r * ggml_type_size(ta->type, n), ya, n);
            quant_dequantize_row(GGML_Q6_K, (const char *)tb->data +
                                 r * ggml_type_size(GGML_Q6_K, n), yb, n);
            for (int64_t j = 0; j < n; j++) {
                nonfinite += !isfinite(ya[j]) || !isfinite(yb[j]);
                se += (ya[j] - yb[j]) * (double)(ya[j] - yb[j]);
                sb += yb[j] * (double)yb[j];
            }
        }
        CHECK_INT(nonfinite, 0);
        CHECK_MSG(sb > 0, "%s: all zero", ta->name);
        double rel = sqrt(se / sb);
        CHECK_MSG(rel < (ta->type == GGML_Q4_K ? 0.15 : 0.05),
                  "%s (%s vs Q6_K): relative rms difference %g", ta->name,
                  ggml_type_name(ta->type), rel);
        free(ya); free(yb);
    }
    CHECK(seen_k4 >= 4);
    CHECK(seen_k6 >= 7);
    gguf_close(a);
    gguf_close(b);
}

/* ---- matmul ------------------------------------------------------- */

typedef struct {
    ggml_type t;
    int64_t n;
} mm_case;

static const mm_case mm_cases[] = {
    {GGML_F32, 160}, {GGML_F32, 768}, {GGML_F16, 160}, {GGML_F16, 768},
    {GGML_BF16, 768}, {GGML_Q8_0, 160}, {GGML_Q8_0, 768},
    {GGML_Q4_0, 160}, {GGML_Q4_0, 768}, {GGML_Q4_0, 96},
    {GGML_Q4_K, 256}, {GGML_Q4_K, 768}, {GGML_Q6_K, 256}, {GGML_Q6_K, 768},
    {GGML_Q4_1, 160}, {GGML_Q4_1, 768}, {GGML_Q5_0, 160}, {GGML_Q5_0, 768},
    {GGML_Q5_1, 160}, {GGML_Q5_1, 768},
};
#define N_MM (int)(sizeof mm_cases / sizeof mm_cases[0])

/* Quantised weights of m rows; the dequantised copy into *deq. */
static void *make_weights(ggml_type t, int64_t m, int64_t n, uint64_t seed,
                          float **deq)
{
    float *x = rand_vec(m * n, seed, 0.05f);
    size_t stride = ggml_type_size(t, n);
    char *w = malloc(stride * m);
    *deq = malloc((size_t)(m * n) * sizeof(float));
    for (int64_t i = 0; i < m; i++) {
        quant_quantize_row(t, x + i * n, w + i * stride, n);
        quant_dequantize_row(t, w + i * stride, *deq + i * n, n);
    }
    free(x);
    return w;
}

static float *run_matmul(ggml_type t, const void *w, int64_t m, int64_t n,
                         const float *x, int64_t rows)
{
    quant_act a;
    quant_act_prepare(&a, t, x, rows, n);
    int64_t ld = m + 3;
    float *out = malloc((size_t)(rows * ld) * sizeof *out);
    for (int64_t i = 0; i < rows * ld; i++)
        out[i] = -12345;
    /* Two calls over a split of the rows, as the engine's threads do. */
    quant_matmul_rows(t, w, n, &a, 0, m / 3, out, ld);
    quant_matmul_rows(t, w, n, &a, m / 3, m, out, ld);
    quant_act_free(&a);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = m; i < ld; i++)
            CHECK_MSG(out[r * ld + i] == -12345, "wrote past row end");
    return out;
}

/* Every SIMD level the CPU has agrees with the scalar kernels (the
 * quantised kernels to the bit). */
TEST(simd_matches_scalar)
{
    static const char *levels[] = {"avx2", "avx512"};
    /* every kernel shape: decode, register tiles, panels (quantised from
     * 12 rows, float from 128) */
    static const int rows_list[] = {1, 2, 3, 8, 17, 130};
    const int64_t m = 37;
    int tried = 0;
    for (int c = 0; c < N_MM; c++) {
        ggml_type t = mm_cases[c].t;
        int64_t n = mm_cases[c].n;
        int quantised = t != GGML_F32 && t != GGML_F16 && t != GGML_BF16;
        float *deq;
        void *w = make_weights(t, m, n, 100 + c, &deq);
        for (int ri = 0; ri < 6; ri++) {
            int rows = rows_list[ri];
            float *x = rand_vec(rows * n, 200 + ri, 1.0f);
            CHECK_INT(quant_set_simd("scalar"), 0);
            float *ref = run_matmul(t, w, m, n, x, rows);
            for (int l = 0; l < 2; l++) {
                if (quant_set_simd(levels[l]))
                    continue;
                tried++;
                float *got = run_matmul(t, w, m, n, x, rows);
                int bad = 0;
                for (int r = 0; r < rows; r++)
                    for (int i = 0; i < m; i++) {
                        double s = 0;   /* scale of the sum: sum |w x| */
                        for (int j = 0; j < n; j++)
                            s += fabs(deq[i * n + j] * x[r * n + j]);
                        double e = fabs(got[r * (m + 3) + i] - ref[r * (m + 3) + i]);
                        /* the quantised kernels of every level sum in
                         * the scalar order: the same bits */
                        if (quantised && e != 0)
                            e = INFINITY;
                        if (e > 1e-5 * s + 1e-30 && bad++ < 3)
                            tl_fail(__FILE__, __LINE__,
                                    "%s %s n=%lld rows=%d [%d,%d]: %g vs %g",
                                    levels[l], ggml_type_name(t), (long long)n,
                                    rows, r, i, got[r * (m + 3) + i],
                                    ref[r * (m + 3) + i]);
                    }
                free(got);
            }
            free(ref);
            free(x);
        }
        free(w);
        free(deq);
    }
    quant_set_simd(NULL);
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2"))
        CHECK(tried > 0);
}

/* The kernels against sum(dequantised w * x) in double: the only error
 * allowed is the activations' rounding (half an 8-bit step per block, or
 * F16/BF16 rounding) plus float accumulation. */
TEST(matmul_vs_dequantised_reference)
{
    const int64_t m = 19;
    for (int c = 0; c < N_MM; c++) {
        ggml_type t = mm_cases[c].t;
        int64_t n = mm_cases[c].n, rows = 9;
        int bs = t == GGML_Q4_K || t == GGML_Q6_K ? 256 : 32;
        float *deq;
        void *w = make_weights(t, m, n, 300 + c, &deq);
        float *x = rand_vec(rows * n, 400 + c, 1.0f);
        float *got = run_matmul(t, w, m, n, x, rows);
        int bad = 0;
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < m; i++) {
                double ref = 0, bound = 0;
                for (int64_t b = 0; b < n; b += bs) {
                    double amax = 0, wmax = 0, xsum = 0;
                    for (int j = 0; j < bs; j++) {
                        amax = fmax(amax, fabs(x[r * n + b + j]));
                        wmax = fmax(wmax, fabs(deq[i * n + b + j]));
                        xsum += fabs(x[r * n + b + j]);
                    }
                    /* Q4_1/Q5_1 split w = q*d + m: the two parts can
                     * each be up to 2 wmax, and the activation sum "s"
                     * is rounded to F16. */
                    int split = t == GGML_Q4_1 || t == GGML_Q5_1;
                    if (split)
                        bound += wmax * xsum * ldexp(1, -11);
                    for (int j = 0; j < bs; j++) {
                        double wv = deq[i * n + b + j], xv = x[r * n + b + j];
                        ref += wv * xv;
                        double ex = t == GGML_F32 ? 0 :
                            t == GGML_F16 ? fabs(xv) * ldexp(1, -11) :
                            t == GGML_BF16 ? fabs(xv) * ldexp(1, -8) :
                            amax / 127 * (0.5 + 127 * ldexp(1, -11));
                        bound += (fabs(wv) + (split ? 3 * wmax : 0)) * ex +
                                 fabs(wv * xv) * 1e-5;
                    }
                }
                double e = fabs(got[r * (m + 3) + i] - ref);
                if (e > bound + 1e-12 && bad++ < 3)
                    tl_fail(__FILE__, __LINE__, "%s n=%lld [%d,%d]: %g vs %g (bound %g)",
                            ggml_type_name(t), (long long)n, r, i,
                            got[r * (m + 3) + i], ref, bound);
            }
        free(got);
        free(x);
        free(w);
        free(deq);
    }
}

/* out[r*m + i] for rows [r0, r0+rows) of x, the columns computed in the
 * given pieces (cuts: 0 = c[0] < c[1] < ... = m), as threads split them. */
static float *mm_pieces(ggml_type t, const void *w, int64_t m, int64_t n,
                        const float *x, int64_t rows, const int64_t *cuts,
                        int ncuts)
{
    quant_act a;
    quant_act_prepare(&a, t, x, rows, n);
    float *out = malloc((size_t)(rows * m) * sizeof *out);
    for (int k = 0; k + 1 < ncuts; k++)
        quant_matmul_rows(t, w, n, &a, cuts[k], cuts[k + 1], out, m);
    quant_act_free(&a);
    return out;
}

/* Issue 6: a row's result does not depend on how many activation rows are
 * multiplied with it, nor on how the weight rows are split between
 * threads: every row of a batch of n equals, to the bit, the row
 * multiplied alone (so prefix-shared scoring equals scoring alone). For
 * every type and SIMD level the CPU has; n crosses every kernel shape
 * (row groups of 1-2 rows, several groups, the panels from 12 rows). */
TEST(row_count_independent)
{
    static const char *levels[] = {"scalar", "avx2", "avx512"};
    static const int ns[] = {1, 2, 3, 7, 8, 9, 16, 33};
    const int64_t m = 37, maxr = 33;
    const int64_t whole[] = {0, m}, split3[] = {0, 5, 21, m}, split2[] = {0, 16, m};
    int levels_run = 0;
    for (int l = 0; l < 3; l++) {
        if (quant_set_simd(levels[l]))
            continue;
        levels_run++;
        for (int c = 0; c < N_MM; c++) {
            ggml_type t = mm_cases[c].t;
            int64_t n = mm_cases[c].n;
            float *deq;
            void *w = make_weights(t, m, n, 700 + c, &deq);
            float *x = rand_vec(maxr * n, 800 + c, 1.0f);
            /* each row alone, once whole and once split in three */
            float *alone = malloc((size_t)(maxr * m) * sizeof *alone);
            int bad = 0;
            for (int64_t r = 0; r < maxr; r++) {
                float *o1 = mm_pieces(t, w, m, n, x + r * n, 1, whole, 2);
                float *o3 = mm_pieces(t, w, m, n, x + r * n, 1, split3, 4);
                if (memcmp(o1, o3, (size_t)m * sizeof *o1) && bad++ < 3)
                    tl_fail(__FILE__, __LINE__, "%s %s n_in=%lld row %lld: thread split changes the result",
                            levels[l], ggml_type_name(t), (long long)n, (long long)r);
                memcpy(alone + r * m, o1, (size_t)m * sizeof *o1);
                free(o1);
                free(o3);
            }
            for (int k = 0; k < 8; k++) {
                int rows = ns[k];
                /* batches start at different rows of x */
                int64_t r0 = (k * 5) % (maxr - rows + 1);
                float *got = mm_pieces(t, w, m, n, x + r0 * n, rows,
                                       k & 1 ? split2 : whole, k & 1 ? 3 : 2);
                for (int r = 0; r < rows; r++)
                    for (int64_t i = 0; i < m; i++) {
                        float g = got[r * m + i], e = alone[(r0 + r) * m + i];
                        if (bits(g) != bits(e) && bad++ < 3)
                            tl_fail(__FILE__, __LINE__,
                                    "%s %s n_in=%lld: row %d of %d, column %lld: %.9g in the batch, %.9g alone",
                                    levels[l], ggml_type_name(t), (long long)n, r,
                                    rows, (long long)i, g, e);
                    }
                free(got);
            }
            free(alone);
            free(x);
            free(w);
            free(deq);
        }
    }
    quant_set_simd(NULL);
    CHECK(levels_run >= 1);
}

/* Issue 6 (parity): Q4_0 products sum as llama.cpp's x86 Q4_0 kernels
 * (ggml-cpu repack.cpp, ggml_gemv/gemm_q4_0_8x8_q8_0, used on every AVX2
 * machine for matrices of 8k rows): per block the exact integer dot
 * product I of the weight nibbles - 8 and the Q8_0 activations, then
 * acc = fma(I, dw * dx, acc) block after block, one rounding per block.
 * The expected value is built here from the raw blocks; every SIMD level
 * and kernel shape (1 row, row groups, panels from 12 rows) must give it
 * to the bit. The unfused order (acc + (dw * dx) * I) differs in some
 * outputs, so the check tells the two apart. */
static float q4_0_dot(const uint8_t *w, const uint8_t *x, int64_t n,
                      int fused)
{
    float acc = 0;
    for (int64_t b = 0; b < n / 32; b++, w += 18, x += 34) {
        uint16_t dw, dx;
        memcpy(&dw, w, 2);
        memcpy(&dx, x, 2);
        int I = 0;
        for (int j = 0; j < 16; j++)
            I += ((w[2 + j] & 0xF) - 8) * (int8_t)x[2 + j] +
                 ((w[2 + j] >> 4) - 8) * (int8_t)x[2 + 16 + j];
        float dd = quant_f16_to_f32(dw) * quant_f16_to_f32(dx);
        if (fused)
            acc = fmaf((float)I, dd, acc);
        else
            acc += dd * (float)I;
    }
    return acc;
}

TEST(q4_0_sums_as_llama_cpp)
{
    static const char *levels[] = {"scalar", "avx2", "avx512"};
    static const int64_t ns[] = {64, 160, 768};
    static const int rows_list[] = {1, 4, 13, 19};
    const int64_t m = 37;
    int levels_run = 0, unfused_differs = 0;
    for (int c = 0; c < 3; c++) {
        int64_t n = ns[c];
        float *deq;
        uint8_t *w = make_weights(GGML_Q4_0, m, n, 900 + c, &deq);
        size_t ws = ggml_type_size(GGML_Q4_0, n), xs = ggml_type_size(GGML_Q8_0, n);
        float *x = rand_vec(19 * n, 950 + c, 1.0f);
        /* the activations as the kernels quantise them (llama.cpp's
         * quantize_row_q8_0) */
        uint8_t *xq = malloc(xs * 19);
        for (int r = 0; r < 19; r++)
            quant_quantize_row(GGML_Q8_0, x + r * n, xq + r * xs, n);
        for (int l = 0; l < 3; l++) {
            if (quant_set_simd(levels[l]))
                continue;
            levels_run += c == 0;
            for (int k = 0; k < 4; k++) {
                int rows = rows_list[k], bad = 0;
                float *got = run_matmul(GGML_Q4_0, w, m, n, x, rows);
                for (int r = 0; r < rows; r++)
                    for (int64_t i = 0; i < m; i++) {
                        float e = q4_0_dot(w + i * ws, xq + r * xs, n, 1);
                        float g = got[r * (m + 3) + i];
                        unfused_differs +=
                            bits(e) != bits(q4_0_dot(w + i * ws, xq + r * xs, n, 0));
                        if (bits(g) != bits(e) && bad++ < 3)
                            tl_fail(__FILE__, __LINE__,
                                    "%s Q4_0 n=%lld rows=%d [%d,%lld]: %.9g, llama.cpp's order %.9g",
                                    levels[l], (long long)n, rows, r, (long long)i, g, e);
                    }
                free(got);
            }
        }
        free(xq);
        free(x);
        free(w);
        free(deq);
    }
    quant_set_simd(NULL);
    CHECK(levels_run >= 1);
    CHECK(unfused_differs > 0);
}

/* The packed float path (prompt-sized products at SIMD levels that have
 * one): rows of k over the k-block (1024) with a tail (n % 16 != 0), a
 * row count that is no multiple of the row group (4) and crosses a row
 * block (~1 MiB of packed rows, 124 rows at n = 2100), weight rows that
 * end in a part-filled panel of 6. Every row equals, to the bit, the row
 * multiplied alone (which never packs). */
TEST(packed_float_rows_match_alone)
{
    static const ggml_type types[] = {GGML_F32, GGML_F16, GGML_BF16};
    const int64_t m = 13, n = 2100, rows = 130;
    const int64_t whole[] = {0, m}, split[] = {0, 7, m};
    for (int ti = 0; ti < 3; ti++) {
        ggml_type t = types[ti];
        float *deq;
        void *w = make_weights(t, m, n, 900 + ti, &deq);
        float *x = rand_vec(rows * n, 910 + ti, 1.0f);
        float *got = mm_pieces(t, w, m, n, x, rows, ti == 1 ? split : whole,
                               ti == 1 ? 3 : 2);
        int bad = 0;
        for (int64_t r = 0; r < rows; r++) {
            float *one = mm_pieces(t, w, m, n, x + r * n, 1, whole, 2);
            for (int64_t i = 0; i < m; i++)
                if (bits(got[r * m + i]) != bits(one[i]) && bad++ < 3)
                    tl_fail(__FILE__, __LINE__,
                            "%s row %lld column %lld: %.9g in the batch, %.9g alone",
                            ggml_type_name(t), (long long)r, (long long)i,
                            got[r * m + i], one[i]);
            free(one);
        }
        CHECK_MSG(bad == 0, "%s: %d outputs differ", ggml_type_name(t), bad);
        free(got);
        free(x);
        free(w);
        free(deq);
    }
}

/* Outputs that end right before an unmapped page: the kernels' partial
 * stores (1 to 5 columns of a tile) must touch only the columns they
 * write. A 128-bit masked store (vextractf32x4 to memory) faulted here on
 * its masked-off lanes; this test crashed with it. */
TEST(partial_stores_stay_in_bounds)
{
    long page = sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, (size_t)page * 3, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(map != MAP_FAILED);
    if (map == MAP_FAILED)
        return;
    CHECK_INT(mprotect(map + 2 * page, (size_t)page, PROT_NONE), 0);
    static const ggml_type types[] = {GGML_F32, GGML_F16, GGML_Q8_0};
    static const int rows_cases[] = {1, 3, 17};
    const int64_t n = 256;
    for (int ti = 0; ti < 3; ti++)
        for (int64_t m = 1; m <= 5; m++)
            for (int rc = 0; rc < 3; rc++) {
                int64_t rows = rows_cases[rc];
                float *deq;
                void *w = make_weights(types[ti], m, n, 990 + m, &deq);
                float *x = rand_vec(rows * n, 991 + rows, 1.0f);
                float *out = (float *)(map + 2 * page) - rows * m;
                quant_act a;
                quant_act_prepare(&a, types[ti], x, rows, n);
                quant_matmul_rows(types[ti], w, n, &a, 0, m, out, m);
                float *ref = mm_pieces(types[ti], w, m, n, x, rows,
                                       (const int64_t[]){0, m}, 2);
                CHECK_MSG(!memcmp(out, ref, sizeof(float) * (size_t)(rows * m)),
                          "%s m=%lld rows=%lld: output differs",
                          ggml_type_name(types[ti]), (long long)m, (long long)rows);
                quant_act_free(&a);
                free(ref);
                free(x);
                free(w);
                free(deq);
            }
    munmap(map, (size_t)page * 3);
}

/* quant_act_init + quant_act_fill over disjoint row ranges, in any order
 * (as the engine's threads do), prepare what quant_act_prepare does, for
 * the row layout and the packed one alike. */
TEST(act_fill_in_parts)
{
    static const ggml_type types[] = {GGML_F32, GGML_F16, GGML_Q8_0,
                                      GGML_Q4_K};
    const int64_t n = 768;
    static const int64_t counts[] = {3, 37};
    float *x = rand_vec(37 * n, 55, 2.0f);
    for (int ti = 0; ti < 4; ti++)
        for (int ci = 0; ci < 2; ci++) {
            int64_t rows = counts[ci];
            quant_act ref, got;
            quant_act_prepare(&ref, types[ti], x, rows, n);
            quant_act_init(&got, types[ti], rows, n);
            int64_t cut1 = rows / 3, cut2 = rows - 1;
            quant_act_fill(&got, x, cut2, rows);
            quant_act_fill(&got, x, 0, cut1);
            quant_act_fill(&got, x, cut1, cut2);
            CHECK_INT(got.packed, ref.packed);
            size_t bytes = ref.packed
                ? (size_t)((rows + 3) / 4) * ((n + 15) / 16) * 4 * 16 * sizeof(float)
                : ref.row_bytes * (size_t)rows;
            CHECK_MSG(!memcmp(ref.data, got.data, bytes), "%s, %lld rows: fill in parts differs",
                      ggml_type_name(types[ti]), (long long)rows);
            quant_act_free(&ref);
            quant_act_free(&got);
        }
    free(x);
}

/* Activation preparation is bit-identical at every SIMD level: ties,
 * zero blocks, a negative extreme and values near F16/BF16 rounding. */
TEST(act_prepare_identical)
{
    static const char *levels[] = {"avx2", "avx512"};
    static const ggml_type types[] = {GGML_F16, GGML_BF16, GGML_Q8_0,
                                      GGML_Q4_0, GGML_Q4_K, GGML_Q6_K,
                                      GGML_Q4_1, GGML_Q5_0, GGML_Q5_1};
    const int64_t n = 768, rows = 3;
    float *x = rand_vec(rows * n, 77, 3.0f);
    for (int j = 0; j < 32; j++)
        x[j] = (float)j - 15.5f;           /* amax 15.5 -> ties at .5 */
    x[40] = 127; x[41] = 0.5f; x[42] = 1.5f; x[43] = -2.5f;
    for (int j = 256; j < 512; j++)
        x[j] = 0;                          /* an all-zero super-block */
    x[600] = -50; x[601] = 50;             /* equal magnitudes: first wins */
    x[n + 5] = fbits(0x3f808000);          /* BF16 tie */
    x[n + 6] = 1.0f + ldexpf(1, -11);      /* F16 tie */
    x[n + 7] = ldexpf(1, -25);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        ggml_type t = types[ti];
        size_t used = t == GGML_F16 || t == GGML_BF16 ? n * 4 :
                      t == GGML_Q4_K || t == GGML_Q6_K ? (n / 256) * 292 :
                      4 * ((n + 63) / 64 * 64);
        quant_act ref, got;
        CHECK_INT(quant_set_simd("scalar"), 0);
        quant_act_prepare(&ref, t, x, rows, n);
        for (int l = 0; l < 2; l++) {
            if (quant_set_simd(levels[l]))
                continue;
            quant_act_prepare(&got, t, x, rows, n);
            for (int64_t r = 0; r < rows; r++)
                CHECK_MSG(!memcmp((char *)ref.data + r * ref.row_bytes,
                                  (char *)got.data + r * got.row_bytes, used),
                          "%s %s row %lld differs", levels[l],
                          ggml_type_name(t), (long long)r);
            quant_act_free(&got);
        }
        quant_act_free(&ref);
    }
    quant_set_simd(NULL);
    free(x);
}

/* Threads splitting the weight rows (as the engine does) get exactly the
 * single-call result: the kernels share no state between calls. */
typedef struct {
    ggml_type t;
    const void *w;
    int64_t n, i0, i1, ld;
    const quant_act *a;
    float *out;
} mm_part;

static void *mm_thread(void *arg)
{
    mm_part *p = arg;
    quant_matmul_rows(p->t, p->w, p->n, p->a, p->i0, p->i1, p->out, p->ld);
    return NULL;
}

TEST(threads_split_rows)
{
    static const ggml_type types[] = {GGML_F16, GGML_Q8_0, GGML_Q4_K};
    const int64_t m = 100, n = 512;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        ggml_type t = types[ti];
        for (int rows = 1; rows <= 16; rows += 15) {
            float *deq;
            void *w = make_weights(t, m, n, 500 + ti, &deq);
            float *x = rand_vec(rows * n, 600 + rows, 1.0f);
            quant_act a;
            quant_act_prepare(&a, t, x, rows, n);
            float *one = calloc((size_t)(rows * m), sizeof *one);
            float *two = calloc((size_t)(rows * m), sizeof *two);
            quant_matmul_rows(t, w, n, &a, 0, m, one, m);
            pthread_t th[4];
            mm_part parts[4];
            for (int k = 0; k < 4; k++) {
                parts[k] = (mm_part){t, w, n, m * k / 4, m * (k + 1) / 4, m, &a, two};
                pthread_create(&th[k], NULL, mm_thread, &parts[k]);
            }
            for (int k = 0; k < 4; k++)
                pthread_join(th[k], NULL);
            CHECK_MSG(!memcmp(one, two, (size_t)(rows * m) * sizeof *one),
                      "%s rows=%d: threaded result differs", ggml_type_name(t), rows);
            quant_act_free(&a);
            free(one); free(two); free(x); free(w); free(deq);
        }
    }
}

TEST(simd_name)
{
    const char *s = quant_simd_name();
    CHECK(s && (!strcmp(s, "scalar") || !strcmp(s, "avx2") || !strcmp(s, "avx512")));
    CHECK_INT(quant_set_simd("scalar"), 0);
    CHECK_STR(quant_simd_name(), "scalar");
    CHECK(quant_set_simd("nonsense") == -1);
    CHECK_STR(quant_simd_name(), "scalar");
    CHECK_INT(quant_set_simd(NULL), 0);
    CHECK(quant_supported(GGML_Q4_K));
    CHECK(!quant_supported(GGML_Q2_K));
}

int main(void)
{
    RUN(f16_edge_cases);
    RUN(f16_matches_f16c);
    RUN(bf16_conversions);
    RUN(roundtrip_bounds);
    RUN(dequantize_hand_blocks);
    RUN(fixtures_against_f32);
    RUN(fixtures_k_quants);
    RUN(simd_matches_scalar);
    RUN(matmul_vs_dequantised_reference);
    RUN(row_count_independent);
    RUN(q4_0_sums_as_llama_cpp);
    RUN(packed_float_rows_match_alone);
    RUN(act_fill_in_parts);
    RUN(partial_stores_stay_in_bounds);
    RUN(act_prepare_identical);
    RUN(threads_split_rows);
    RUN(simd_name);
    return tl_summary();
}

/*
 * fp16.h - F16 and BF16 conversions, header-only: the bottom of the engine's
 * kernels. quant.c exports them (quant_f16_to_f32 and friends, quant.h),
 * and the SIMD kernel files (quant_avx2.c, ops*.c) inline them from here,
 * so no kernel file uses a symbol of the dispatcher that calls it.
 */
#ifndef EMERGE_FP16_H
#define EMERGE_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t fp16_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float fp16_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float fp16_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 31)            /* inf, or nan made quiet as F16C does */
        return fp16_bits_f32(sign | 0x7f800000 | (man ? 0x400000 : 0) |
                             man << 13);
    if (exp)
        return fp16_bits_f32(sign | (exp + 112) << 23 | man << 13);
    if (!man)
        return fp16_bits_f32(sign);
    /* Subnormal: man * 2^-24; normalise so bit 10 is the leading one. */
    uint32_t e = 113;
    while (!(man & 0x400)) {
        man <<= 1;
        e--;
    }
    return fp16_bits_f32(sign | e << 23 | (man & 0x3ff) << 13);
}

/* Round to nearest even, like the F16C instruction (vcvtps2ph, imm 0):
 * NaNs stay NaNs (quiet bit set, top payload bits kept), overflow gives
 * inf, values below the subnormal range round to signed zero. */
static inline uint16_t fp16_f32_to_f16(float f)
{
    uint32_t x = fp16_f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffff;
    if (ax > 0x7f800000)
        return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x3ff);
    if (ax >= 0x477ff000)                /* >= 65520 rounds to inf */
        return sign | 0x7c00;
    if (ax >= 0x38800000) {              /* normal in f16 */
        uint32_t r = ax - (112u << 23);
        r += 0xfff + ((r >> 13) & 1);
        return sign | (uint16_t)(r >> 13);
    }
    if (ax <= 0x33000000)                /* <= 2^-25: rounds to zero */
        return sign;
    uint32_t m = (ax & 0x7fffff) | 0x800000;
    int s = 126 - (int)(ax >> 23);       /* 14..24 */
    uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return sign | (uint16_t)q;
}

static inline float fp16_bf16_to_f32(uint16_t h)
{
    return fp16_bits_f32((uint32_t)h << 16);
}

/* As ggml: round to nearest even, NaNs forced quiet. */
static inline uint16_t fp16_f32_to_bf16(float f)
{
    uint32_t u = fp16_f32_bits(f);
    if ((u & 0x7fffffff) > 0x7f800000)
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* x rounded to the nearest F16 value (ties to even), kept as a float:
 * what storing into an F16 tensor and reading back gives. Normal F16
 * range inline (drop 13 mantissa bits); the rest by the conversions. */
static inline float fp16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t e = (u >> 23) & 0xff;
    if (e < 113 || e > 141) /* F16 subnormal, overflow, inf, NaN */
        return fp16_f16_to_f32(fp16_f32_to_f16(x));
    u += 0xfffu + ((u >> 13) & 1u);
    u &= ~0x1fffu;
    memcpy(&x, &u, sizeof x);
    return x;
}

#endif

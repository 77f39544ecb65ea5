/*
 * quant_impl.h - private to the quant module (quant.c and the SIMD kernel
 * files): ggml's block layouts, the layout of prepared activations, and
 * the kernel table the dispatcher fills.
 *
 * Nobody outside backends/quant*.c includes this; the public interface is
 * backends/engine/quant.h.
 */
#ifndef EMERGE_QUANT_IMPL_H
#define EMERGE_QUANT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "backends/engine/quant.h"

#define QK8_0 32
#define QK4_0 32
#define QK_K 256

/* Block layouts exactly as ggml writes them (no padding: every member is
 * a byte array or naturally aligned at its offset). f16 values are kept
 * as raw uint16_t bits. */
typedef struct {
    uint16_t d;
    int8_t qs[QK8_0];
} blk_q8_0;                          /* 34 bytes */

typedef struct {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];           /* elems j and j+16 share byte j */
} blk_q4_0;                          /* 18 bytes */

typedef struct {
    uint16_t d, m;                   /* value = q * d + m */
    uint8_t qs[16];
} blk_q4_1;                          /* 20 bytes */

typedef struct {
    uint16_t d;                      /* value = (q - 16) * d */
    uint8_t qh[4];                   /* bit j: 5th bit of element j */
    uint8_t qs[16];                  /* low nibbles as in Q4_0 */
} blk_q5_0;                          /* 22 bytes */

typedef struct {
    uint16_t d, m;                   /* value = q * d + m */
    uint8_t qh[4];
    uint8_t qs[16];
} blk_q5_1;                          /* 24 bytes */

typedef struct {
    uint16_t d;                      /* scale of the 6-bit scales */
    uint16_t dmin;                   /* scale of the 6-bit mins */
    uint8_t scales[12];              /* 8 scales + 8 mins, 6 bits each */
    uint8_t qs[QK_K / 2];
} blk_q4_k;                          /* 144 bytes */

typedef struct {
    uint8_t ql[QK_K / 2];            /* low 4 bits */
    uint8_t qh[QK_K / 4];            /* high 2 bits */
    int8_t scales[QK_K / 16];        /* one per 16 elements */
    uint16_t d;
} blk_q6_k;                          /* 210 bytes */

typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];        /* sum of each 16 qs */
} blk_q8_k;                          /* 292 bytes */

_Static_assert(sizeof(blk_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(blk_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(blk_q4_k) == 144, "q4_k layout");
_Static_assert(sizeof(blk_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(blk_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(blk_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(blk_q6_k) == 210, "q6_k layout");
_Static_assert(sizeof(blk_q8_k) == 292, "q8_k layout");

/*
 * Prepared activation rows (quant_act.data, one row every row_bytes):
 *
 *  F32 weights:  n floats.
 *  F16 weights:  n floats already rounded to F16 precision. llama.cpp
 *                converts activations to F16 and multiplies in F32; a
 *                float holding the rounded value gives the same products
 *                and spares the kernels a conversion per use.
 *  BF16 weights: n floats rounded to BF16 precision (same reasoning).
 *  Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 weights: the row quantised like ggml's Q8_0 (scale
 *                amax/127 per 32 values, stored as F16), laid out for
 *                SIMD, in chunks of 64 values (two blocks), npad = n
 *                rounded up to 64, the padding zero:
 *                  int8  qs[npad]
 *                  float dv[npad/4]: 16 per chunk, lanes 0-7 the first
 *                        block's scale, lanes 8-15 the second's
 *                  int32 cv[npad/4]: 16 per chunk, lane 0 and lane 8 hold
 *                        -K * (sum of the block's qs), other lanes 0, with
 *                        K = 128 for Q8_0 weights, 8 for Q4_0, 16 for
 *                        Q5_0 and 0 for Q4_1/Q5_1: the correction that
 *                        lets a u8 x s8 dot product (VNNI) stand for the
 *                        signed one. Scalar kernels do not read it.
 *                  float sv[npad/4]: lanes 0 and 8 hold d * sum(qs)
 *                        (d before its F16 rounding) rounded to F16, as
 *                        llama.cpp's Q8_1 "s", for the
 *                        min term m * s of Q4_1/Q5_1; other lanes 0.
 *  Q4_K/Q6_K weights: ggml's Q8_K blocks (scale 127/amax per 256).
 *
 * Packed float activations (quant_act.packed; F32/F16/BF16 weights with
 * at least quant_kernels.pack_min_rows rows, at SIMD levels whose float
 * kernels read it): the rows above (rounded for F16/BF16), in groups of
 * QA_PACK_ROWS, each group interleaved by k-steps of 16 values:
 *   float index ((g * steps + s) * QA_PACK_ROWS + q) * 16 + l
 * holds element 16 s + l of row g * QA_PACK_ROWS + q, steps = n / 16
 * rounded up; rows past the last and elements past n are zero. A tile of
 * QA_PACK_ROWS rows then reads one sequential stream.
 */
enum { QA_PACK_ROWS = 4 };

static inline int64_t qa_pack_steps(int64_t n) { return (n + 15) / 16; }
static inline int64_t qa_npad(int64_t n) { return (n + 63) / 64 * 64; }

/* K of the cv correction for a Q8_0-family weight type. */
static inline int qa_q8_k(ggml_type t)
{
    return t == GGML_Q8_0 ? 128 : t == GGML_Q4_0 ? 8 : t == GGML_Q5_0 ? 16 : 0;
}

typedef struct {
    int8_t *qs;
    float *dv;
    int32_t *cv;
    float *sv;
} qa_q8_row;

static inline qa_q8_row qa_q8_view(const quant_act *a, int64_t r)
{
    int64_t np = qa_npad(a->n);
    char *base = (char *)a->data + (size_t)r * a->row_bytes;
    qa_q8_row v = {(int8_t *)base, (float *)(base + np),
                   (int32_t *)(base + 2 * np), (float *)(base + 3 * np)};
    return v;
}

/* The kernel of one weight type: out[r*ld + i] for every activation row r
 * and weight rows i in [i0, i1); w points at row 0, rows are stride
 * bytes apart. */
typedef void (*quant_gemm_fn)(const void *w, size_t stride, int64_t n,
                              const quant_act *a, int64_t i0, int64_t i1,
                              float *out, int64_t ld);

/* Activation preparation of one row, in the layouts above; the SIMD
 * versions must give bit-identical rows (tests compare whole matmuls). */
typedef void (*quant_act_q8_0_fn)(const float *x, int64_t n, int k,
                                  qa_q8_row v);
typedef void (*quant_act_q8_k_fn)(const float *x, blk_q8_k *y, int64_t nb);
typedef void (*quant_act_round_fn)(ggml_type t, const float *x, float *y,
                                   int64_t n);

typedef struct {
    const char *name;
    quant_gemm_fn f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_1, q5_0, q5_1;
    quant_act_q8_0_fn act_q8_0;
    quant_act_q8_k_fn act_q8_k;
    quant_act_round_fn act_round;
    /* From this many rows on, float activations are prepared packed
     * (see above) for f32/f16/bf16; 0: this level reads rows only. */
    int64_t pack_min_rows;
} quant_kernels;

extern const quant_kernels quant_scalar_kernels;
/* Defined in quant_avx512.c / quant_avx2.c; fill in the kernels they
 * have (others stay as given). */
void quant_avx512_kernels(quant_kernels *k);
void quant_avx2_kernels(quant_kernels *k);

/* Q4_K's 6-bit scale and min of sub-block j (0..7). */
static inline void q4k_scale_min(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

#endif

/*
 * quant_avx512.c - AVX-512 (F, BW, VL, VNNI) matmul kernels, chosen at run
 * time by quant.c; every function carries a target attribute, so the file
 * builds without -march and runs only on CPUs that have the features.
 *
 * Quantised types, by the number of activation rows:
 *  - prompt processing (>= PANEL_MIN_ROWS_Q/K rows): weights repacked 32
 *    rows at a time into a panel whose vectors hold 16 rows' values at
 *    one k (see "Panel kernels" below); no horizontal sums, each weight
 *    vector used by 4 activation rows, one VNNI instruction = 64 MACs.
 *  - fewer rows (decode): "row groups", 16 weight rows read as stored,
 *    up to 4 activation rows at a time.
 * Both sum every output in the same order, the scalar kernels' (integer
 * block sums, then q8_step / k_step per block), so a result does not
 * depend on how many rows a call multiplies nor on the SIMD level.
 *
 * Float types (F32/F16/BF16): register tiles of dot products, 16 lanes
 * per output added up at the end in _mm512_reduce_add_ps's order
 * (llama.cpp's), the same for every tile shape: RA x CW tiles on rows as
 * stored for few activation rows, 4 x 6 tiles on packed operands
 * (quant_act.packed) for prompts.
 */
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/quant_impl.h"

#define T512 __attribute__((target( \
    "avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")))
#define INL static inline __attribute__((always_inline)) T512

enum { RA = 6, CW = 4 };

/* Scratch for unpacked weights, released at the end of each call. */
static void *scratch(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p)
        abort();
    return p;
}

/* The sums of v0..v3, each added in the order of _mm512_reduce_add_ps
 * (halves: lane i + lane i+8, then i+4, i+2, i+1), which llama.cpp's
 * tiled products use: a different order changes last bits that its F16
 * roundings can turn into visible steps. The four reductions share their
 * shuffles (a transpose-and-add), and each sum takes the same path
 * whatever its position. hsum4 stores the sums of v[0..cw) (cw <= 4). */
INL __m128 hsum4_v(__m512 v0, __m512 v1, __m512 v2, __m512 v3)
{
    /* 128-bit lanes [v0: L0+L2, L1+L3, v1: L0+L2, L1+L3], same for v2, v3 */
    __m512 a01 = _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44),
                               _mm512_shuffle_f32x4(v0, v1, 0xEE));
    __m512 a23 = _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44),
                               _mm512_shuffle_f32x4(v2, v3, 0xEE));
    /* lane q: the four partial sums of v[q] */
    __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(a01, a23, 0x88),
                             _mm512_shuffle_f32x4(a01, a23, 0xDD));
    s = _mm512_add_ps(s, _mm512_shuffle_ps(s, s, 0x4E)); /* y0+y2, y1+y3 */
    s = _mm512_add_ps(s, _mm512_shuffle_ps(s, s, 0xB1));
    __m512 idx = _mm512_castsi512_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0,
                                                      0, 0, 0, 0, 0, 0, 0, 0));
    s = _mm512_permutexvar_ps(_mm512_castps_si512(idx), s);
    return _mm512_castps512_ps128(s);
}

INL void hsum4(const __m512 *v, int cw, float *out)
{
    __m512 z = _mm512_setzero_ps();
    __m128 s = hsum4_v(v[0], cw > 1 ? v[1] : z, cw > 2 ? v[2] : z,
                       cw > 3 ? v[3] : z);
    /* a 512-bit masked store: the 128-bit one (gcc makes it a masked
     * vextractf32x4 to memory) faults on this machine when its masked-off
     * lanes reach an unmapped page, e.g. an output row ending 4 bytes
     * before one; the 512-bit form suppresses the fault as documented */
    _mm512_mask_storeu_ps(out, (__mmask16)((1u << cw) - 1),
                          _mm512_castps128_ps512(s));
}

INL float f16s(uint16_t h) { return _cvtsh_ss(h); }

/* One block's step of a quantised dot product, in the order of the
 * scalar kernels (quant.c), which is also llama.cpp's: with it the Q8_0
 * fixture's logits agree with the reference to 1e-6 (0.06 with an fma),
 * and every SIMD shape gives the scalar result to the bit:
 *   Q8_0 family: acc + ((dw * dx) * I + mw * sx)   (the min term: Q4_1/Q5_1)
 *   K-quants:    acc + ((d * dx) * I - (dmin * dx) * I_min)   (Q6_K: no min) */
INL __m512 q8_step(__m512 acc, __m512i isum, __m512 dw, __m512 dx, int hm,
                   __m512 mw, __m512 sx)
{
    if (hm == 2)   /* Q4_0: fma(I, dw * dx, acc), as quant.c's dot_q4_0 */
        return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, dx), acc);
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(isum));
    if (hm == 1)
        t = _mm512_add_ps(t, _mm512_mul_ps(mw, sx));
    return _mm512_add_ps(acc, t);
}

INL __m512 k_step(__m512 acc, __m512i isum, __m512 d, __m512 dx, int hm,
                  __m512i imin, __m512 dmin)
{
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(d, dx), _mm512_cvtepi32_ps(isum));
    if (hm)
        t = _mm512_sub_ps(t, _mm512_mul_ps(_mm512_mul_ps(dmin, dx),
                                           _mm512_cvtepi32_ps(imin)));
    return _mm512_add_ps(acc, t);
}

static inline __mmask16 lane_mask(int n)
{
    return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* ================================================================ */
/* F32 / F16 / BF16                                                  */
/* ================================================================ */

enum { WK_F32, WK_F16, WK_BF16 };

/* 16 weights from element k of a row of kind wk, masked for tails. */
INL __m512 load_w(int wk, const void *row, int64_t k, __mmask16 m)
{
    if (wk == WK_F32)
        return _mm512_maskz_loadu_ps(m, (const float *)row + k);
    __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k);
    if (wk == WK_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* How far ahead (bytes) the float decode tiles prefetch each row. */
enum { PF_AHEAD = 4096 };

/* out[r][c] = dot(w row c, x row r) for ra x cw rows. */
INL void tile_f(int wk, int ra, int cw, const void *const *w,
                const float *const *x, int64_t n, float *out, int64_t ld)
{
    __m512 acc[RA][CW];
#pragma GCC unroll 8
    for (int r = 0; r < ra; r++)
#pragma GCC unroll 8
        for (int c = 0; c < cw; c++)
            acc[r][c] = _mm512_setzero_ps();
    int64_t k = 0;
    const int es = wk == WK_F32 ? 4 : 2;   /* bytes per weight */
    for (; k + 16 <= n; k += 16) {
        __m512 wv[CW];
#pragma GCC unroll 8
        for (int c = 0; c < cw; c++) {
            /* decode streams the weights once: fetch ahead (F16 and BF16
             * reached ~60% of the streaming bandwidth without; F32 gains nothing) */
            if (ra == 1 && wk != WK_F32 && (k * es) % 64 == 0)
                _mm_prefetch((const char *)w[c] + k * es + PF_AHEAD, _MM_HINT_T0);
            wv[c] = load_w(wk, w[c], k, 0xFFFF);
        }
#pragma GCC unroll 8
        for (int r = 0; r < ra; r++) {
            __m512 xv = _mm512_loadu_ps(x[r] + k);
#pragma GCC unroll 8
            for (int c = 0; c < cw; c++)
                acc[r][c] = _mm512_fmadd_ps(wv[c], xv, acc[r][c]);
        }
    }
    if (k < n) {
        __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        __m512 wv[CW];
#pragma GCC unroll 8
        for (int c = 0; c < cw; c++)
            wv[c] = load_w(wk, w[c], k, m);
#pragma GCC unroll 8
        for (int r = 0; r < ra; r++) {
            __m512 xv = _mm512_maskz_loadu_ps(m, x[r] + k);
#pragma GCC unroll 8
            for (int c = 0; c < cw; c++)
                acc[r][c] = _mm512_fmadd_ps(wv[c], xv, acc[r][c]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < ra; r++)
        hsum4(acc[r], cw, out + r * ld);
}

/* Instantiates tile body F(ra, cw) for the run-time ra, cw in 1..4. */
#define TILE_SWITCH(ra, cw, F)                                           \
    switch ((ra) * 8 + (cw)) {                                           \
    case 9: F(1, 1); break;  case 10: F(1, 2); break;                    \
    case 11: F(1, 3); break; case 12: F(1, 4); break;                    \
    case 17: F(2, 1); break; case 18: F(2, 2); break;                    \
    case 19: F(2, 3); break; case 20: F(2, 4); break;                    \
    case 25: F(3, 1); break; case 26: F(3, 2); break;                    \
    case 27: F(3, 3); break; case 28: F(3, 4); break;                    \
    case 33: F(4, 1); break; case 34: F(4, 2); break;                    \
    case 35: F(4, 3); break; case 36: F(4, 4); break;                    \
    case 41: F(5, 1); break; case 42: F(5, 2); break;                    \
    case 43: F(5, 3); break; case 44: F(5, 4); break;                    \
    case 49: F(6, 1); break; case 50: F(6, 2); break;                    \
    case 51: F(6, 3); break; case 52: F(6, 4); break;                    \
    }

static T512 void tile_f_any(int wk, int ra, int cw, const void *const *w,
                            const float *const *x, int64_t n, float *out,
                            int64_t ld)
{
#define TF(a, b)                                                         \
    do {                                                                 \
        if (wk == WK_F32) tile_f(WK_F32, a, b, w, x, n, out, ld);        \
        else if (wk == WK_F16) tile_f(WK_F16, a, b, w, x, n, out, ld);   \
        else tile_f(WK_BF16, a, b, w, x, n, out, ld);                    \
    } while (0)
    TILE_SWITCH(ra, cw, TF)
#undef TF
}

#define ACT_ROW(a, r) ((const char *)(a)->data + (size_t)(r) * (a)->row_bytes)

/* From this many activation rows on, the integer panel kernels (below)
 * beat the row groups (measured with a 2048 x 768 matrix, one thread:
 * Q8_0/Q4_0 cross at 12-14 rows (Q5_1 at 10), Q4_K/Q6_K at 16-18).
 * Both give the same bits, so this is a speed choice only. The float
 * types have no such panel (their tiles' per-lane sums, which llama.cpp's
 * F32/F16 products share, would not survive one); they pack instead
 * (gemm_float_packed, below), keeping the lanes. */
enum { PANEL_MIN_ROWS_Q = 12, PANEL_MIN_ROWS_K = 16 };

static T512 void panel_q8(ggml_type t, const void *w, size_t stride,
                          int64_t n, const quant_act *a, int64_t i0,
                          int64_t i1, float *out, int64_t ld);
static T512 void panel_k(int is_q6, const void *w, size_t stride, int64_t n,
                         const quant_act *a, int64_t i0, int64_t i1,
                         float *out, int64_t ld);

/* Rows r0..r1 of the product. Converting F16/BF16 weights to F32 once per
 * weight group (and row block) pays off when several of these activation
 * rows reuse them. */
static T512 void gemm_float_rows(int wk, const void *w, size_t stride,
                                 int64_t n, const quant_act *a, int64_t r0,
                                 int64_t r1, int64_t i0, int64_t i1,
                                 float *out, int64_t ld)
{
    int unpack = wk != WK_F32 && r1 - r0 > RA;
    float *buf = unpack ? scratch((size_t)CW * n * sizeof(float)) : NULL;
    for (int64_t i = i0; i < i1; i += CW) {
        int cw = i1 - i < CW ? (int)(i1 - i) : CW;
        const void *wr[CW];
        for (int c = 0; c < cw; c++) {
            wr[c] = (const char *)w + (size_t)(i + c) * stride;
            if (unpack) {
                float *d = buf + (size_t)c * n;
                for (int64_t k = 0; k < n; k += 16) {
                    __mmask16 m = n - k >= 16 ? 0xFFFF
                                  : (__mmask16)((1u << (n - k)) - 1);
                    _mm512_mask_storeu_ps(d + k, m, load_w(wk, wr[c], k, m));
                }
                wr[c] = d;
            }
        }
        for (int64_t r = r0; r < r1; r += RA) {
            int ra = r1 - r < RA ? (int)(r1 - r) : RA;
            const float *xr[RA];
            for (int q = 0; q < ra; q++)
                xr[q] = (const float *)ACT_ROW(a, r + q);
            tile_f_any(unpack ? WK_F32 : wk, ra, cw, wr, xr, n,
                       out + r * ld + i, ld);
        }
    }
    free(buf);
}

/* Prompt-sized float products (>= PACK_MIN_ROWS activation rows) run on
 * packed operands: activation rows PA at a time and weight rows PW at a
 * time, each interleaved by k-step (16 floats), so a tile reads two
 * sequential streams instead of PA + PW rows a row-stride apart (at
 * n = 2048 that stride is a multiple of 4 KiB and every row falls into
 * the same L1 sets).
 *  - The packed weights stay in L1 while the activation tiles stream
 *    past them from L2; the tile is 4 activation x 6 weight rows because
 *    the streamed operand then costs 4 loads per 24 FMAs (6 x 4 with
 *    the activations streamed: 6, and ~12% slower).
 *  - k is cut into blocks of PACK_K floats (6 weight rows x 4 KiB = 24 KiB)
 *    so the weights still fit L1 at n = 2048; a tile's 24 accumulators
 *    are stored between blocks and reloaded exactly, so every lane still
 *    adds its products in k order.
 *  - Tails are zero-padded: a padded lane adds 0 * 0, as tile_f's masked
 *    loads do.
 * So each output is the same sum, in the same order, as tile_f gives:
 * the packing is a speed choice only (test_quant checks it to the bit). */
enum { PA = QA_PACK_ROWS, PW = 6, PACK_K = 1024, PACK_MIN_ROWS = 16,
       PART_TILES = 32, PACK_BLOCK_BYTES = 1024 * 1024 };

/* Weight rows i..i+cw (padded to PW with zero rows), k-steps s0..s1. */
INL void pack_w(int wk, const void *w, size_t stride, int64_t i, int cw,
                int64_t n, int64_t s0, int64_t s1, float *wp)
{
    for (int c = 0; c < PW; c++) {
        const void *row = (const char *)w + (size_t)(i + c) * stride;
        for (int64_t s = s0; s < s1; s++) {
            __m512 v = c < cw ? load_w(wk, row, s * 16,
                                       lane_mask((int)(n - s * 16)))
                              : _mm512_setzero_ps();
            _mm512_store_ps(wp + ((s - s0) * PW + c) * 16, v);
        }
    }
}

/* k-steps [0, ks) of one PA x PW tile. The accumulators start at zero
 * (first k-block) or from part; they go back to part unless this is the
 * last k-block, whose sums go to out (ra x cw). */
INL void tile_packed(const float *wp, const float *xp, int64_t ks,
                     float *part, int first, int last, int ra, int cw,
                     float *out, int64_t ld)
{
    /* The whole k loop in assembly: with intrinsics, gcc's register
     * allocation of these 31 vectors changes with the code around it (it
     * folded weight loads into the FMAs, or spilled an activation vector
     * to the stack every step: 10-15% slower), and an asm statement cannot
     * take 24 accumulators as operands. So the accumulators live in
     * zmm0-23 from their start (zero, or part) to their end (part, or
     * acc[] for the sums), the 6 weight vectors in zmm24-29 and the
     * activation in zmm31: 10 loads and 24 FMAs a k-step, each
     * acc[r][c] += w[c] * x[r] in k order, as tile_f does. */
    _Static_assert(PA == 4 && PW == 6, "the assembly below is for 4 x 6 tiles");
    _Alignas(64) __m512 acc[PA][PW];
    float *dst = last ? (float *)acc : part;
    __asm__ volatile(
        "test %[first], %[first]\n\t"
        "jz 2f\n\t"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23\n\t"
        "vpxord %%zmm\\i, %%zmm\\i, %%zmm\\i\n\t"
        ".endr\n\t"
        "jmp 3f\n\t"
        "2:\n\t"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23\n\t"
        "vmovaps \\i*64(%[src]), %%zmm\\i\n\t"
        ".endr\n\t"
        "3:\n\t"
        "test %[k], %[k]\n\t"
        "jle 5f\n\t"
        "4:\n\t"
        "vmovaps 0(%[w]), %%zmm24\n\t"
        "vmovaps 64(%[w]), %%zmm25\n\t"
        "vmovaps 128(%[w]), %%zmm26\n\t"
        "vmovaps 192(%[w]), %%zmm27\n\t"
        "vmovaps 256(%[w]), %%zmm28\n\t"
        "vmovaps 320(%[w]), %%zmm29\n\t"
        "vmovaps 0(%[x]), %%zmm31\n\t"
        "vfmadd231ps %%zmm24, %%zmm31, %%zmm0\n\t"
        "vfmadd231ps %%zmm25, %%zmm31, %%zmm1\n\t"
        "vfmadd231ps %%zmm26, %%zmm31, %%zmm2\n\t"
        "vfmadd231ps %%zmm27, %%zmm31, %%zmm3\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm4\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm5\n\t"
        "vmovaps 64(%[x]), %%zmm31\n\t"
        "vfmadd231ps %%zmm24, %%zmm31, %%zmm6\n\t"
        "vfmadd231ps %%zmm25, %%zmm31, %%zmm7\n\t"
        "vfmadd231ps %%zmm26, %%zmm31, %%zmm8\n\t"
        "vfmadd231ps %%zmm27, %%zmm31, %%zmm9\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm10\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm11\n\t"
        "vmovaps 128(%[x]), %%zmm31\n\t"
        "vfmadd231ps %%zmm24, %%zmm31, %%zmm12\n\t"
        "vfmadd231ps %%zmm25, %%zmm31, %%zmm13\n\t"
        "vfmadd231ps %%zmm26, %%zmm31, %%zmm14\n\t"
        "vfmadd231ps %%zmm27, %%zmm31, %%zmm15\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm16\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm17\n\t"
        "vmovaps 192(%[x]), %%zmm31\n\t"
        "vfmadd231ps %%zmm24, %%zmm31, %%zmm18\n\t"
        "vfmadd231ps %%zmm25, %%zmm31, %%zmm19\n\t"
        "vfmadd231ps %%zmm26, %%zmm31, %%zmm20\n\t"
        "vfmadd231ps %%zmm27, %%zmm31, %%zmm21\n\t"
        "vfmadd231ps %%zmm28, %%zmm31, %%zmm22\n\t"
        "vfmadd231ps %%zmm29, %%zmm31, %%zmm23\n\t"
        "add $384, %[w]\n\t"
        "add $256, %[x]\n\t"
        "dec %[k]\n\t"
        "jnz 4b\n\t"
        "5:\n\t"
        ".irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23\n\t"
        "vmovaps %%zmm\\i, \\i*64(%[dst])\n\t"
        ".endr\n\t"
        : [w] "+r"(wp), [x] "+r"(xp), [k] "+r"(ks)
        : [first] "r"(first), [src] "r"(part), [dst] "r"(dst)
        : "zmm0", "zmm1", "zmm2", "zmm3", "zmm4", "zmm5", "zmm6", "zmm7",
          "zmm8", "zmm9", "zmm10", "zmm11", "zmm12", "zmm13", "zmm14",
          "zmm15", "zmm16", "zmm17", "zmm18", "zmm19", "zmm20", "zmm21",
          "zmm22", "zmm23", "zmm24", "zmm25", "zmm26", "zmm27", "zmm28",
          "zmm29", "zmm31", "cc", "memory");
    if (!last)
        return;
    if (ra == PA && cw == PW) {
        /* a whole tile: its 24 sums in 6 reductions of 4 (rows 0-1 and
         * 2-3 each as c0-3 | c4-5 of one row with c0-1 of the next | c2-5),
         * instead of 8 half-empty ones */
#pragma GCC unroll 2
        for (int r = 0; r < PA; r += 2) {
            float *o0 = out + r * ld, *o1 = o0 + ld;
            _mm_storeu_ps(o0, hsum4_v(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
            __m128 m = hsum4_v(acc[r][4], acc[r][5], acc[r + 1][0], acc[r + 1][1]);
            _mm_storel_pi((__m64 *)(o0 + 4), m);
            _mm_storeh_pi((__m64 *)o1, m);
            _mm_storeu_ps(o1 + 2, hsum4_v(acc[r + 1][2], acc[r + 1][3],
                                          acc[r + 1][4], acc[r + 1][5]));
        }
        return;
    }
    for (int r = 0; r < ra; r++) {
        hsum4(acc[r], cw < 4 ? cw : 4, out + r * ld);
        if (cw > 4)
            hsum4(acc[r] + 4, cw - 4, out + r * ld + 4);
    }
}

/* Part `part` of `parts` of the weight rows i..i+cw, k-steps s0..s1, into
 * L2. Packing reads the weights from memory; without this those reads
 * wait in pack_w (a sixth of the product's time in a 134M model, whose
 * weights do not fit the cache), instead of overlapping the tiles of the
 * panel before. */
INL void prefetch_w(int wk, const void *w, size_t stride, int64_t i, int cw,
                    int64_t s0, int64_t s1, int64_t part, int64_t parts)
{
    int64_t es = wk == WK_F32 ? 4 : 2, b0 = s0 * 16 * es, b1 = s1 * 16 * es;
    int64_t lines = (b1 - b0 + 63) / 64, all = lines * cw;
    int64_t f = part * all / parts, end = (part + 1) * all / parts;
    int64_t c = f / lines, l = f % lines;   /* no division per line */
    for (; f < end; f++) {
        _mm_prefetch((const char *)w + (size_t)(i + c) * stride + b0 + l * 64,
                     _MM_HINT_T1);
        if (++l == lines) {
            l = 0;
            c++;
        }
    }
}

/* Rows r0..r1 of the product, their activations already packed at xp.
 * Weight panels (PW rows x up to PACK_K columns) go in order i, then k;
 * while one panel's tiles run, the next panel's weights are fetched. */
static T512 void gemm_packed_rows(int wk, const void *w, size_t stride,
                                  int64_t n, const float *xp, int64_t r0,
                                  int64_t r1, int64_t i0, int64_t i1,
                                  float *wp, float *part, float *out,
                                  int64_t ld)
{
    int64_t steps = qa_pack_steps(n), kstep = PACK_K / 16;
    int64_t tiles = (r1 - r0 + PA - 1) / PA;
    for (int64_t i = i0; i < i1; i += PW) {
        int cw = i1 - i < PW ? (int)(i1 - i) : PW;
        for (int64_t s0 = 0; s0 < steps; s0 += kstep) {
            int64_t s1 = steps - s0 < kstep ? steps : s0 + kstep;
            /* the panel after this one */
            int64_t ni = s1 < steps ? i : i + PW, ns0 = s1 < steps ? s1 : 0;
            int64_t ns1 = steps - ns0 < kstep ? steps : ns0 + kstep;
            int ncw = i1 - ni < PW ? (int)(i1 - ni) : PW;
            pack_w(wk, w, stride, i, cw, n, s0, s1, wp);
            for (int64_t t = 0; t < tiles; t++) {
                int64_t r = r0 + t * PA;
                if (ni < i1)
                    prefetch_w(wk, w, stride, ni, ncw, ns0, ns1, t, tiles);
                /* partial sums only when k has more than one block */
                float *pt = steps > kstep ? part + t * (PA * PW * 16) : part;
                tile_packed(wp, xp + ((r - r0) * steps + s0 * PA) * 16,
                            s1 - s0, pt, s0 == 0,
                            s1 == steps, r1 - r < PA ? (int)(r1 - r) : PA,
                            cw, out + r * ld + i, ld);
            }
        }
    }
}

/* Activation rows go in blocks of about 1 MiB (half of L2) that stay
 * there while the weights pass: each block packs the weights again, so
 * larger blocks pack less often. */
static T512 void gemm_float_packed(int wk, const void *w, size_t stride,
                                   int64_t n, const quant_act *a, int64_t i0,
                                   int64_t i1, float *out, int64_t ld)
{
    /* On the stack (72 KiB): the engine calls this once per chunk, and a
     * heap block this size can be handed back to the kernel at each free
     * and fault in again at the next call. */
    _Alignas(64) float wp[PW * (PACK_K / 16) * 16];
    _Alignas(64) float part[PART_TILES * PA * PW * 16];
    int64_t steps = qa_pack_steps(n), all = (a->rows + PA - 1) / PA * PA;
    int64_t blk = PACK_BLOCK_BYTES / (steps * 16 * (int64_t)sizeof(float));
    blk = blk < PA ? PA : blk / PA * PA;
    if (steps > PACK_K / 16 && blk > PART_TILES * PA)
        blk = PART_TILES * PA;
    blk = blk > all ? all : blk;
    for (int64_t r0 = 0; r0 < a->rows; r0 += blk) {
        int64_t r1 = a->rows - r0 < blk ? a->rows : r0 + blk;
        const float *xp = (const float *)a->data + r0 * steps * 16;
        gemm_packed_rows(wk, w, stride, n, xp, r0, r1, i0, i1, wp, part,
                         out, ld);
    }
}

/* Packed activations (prompts) go to gemm_float_packed. Rows as stored
 * (fewer than PACK_MIN_ROWS) are taken in blocks that stay in L2
 * (~256 KiB) while every weight group of the range passes over them;
 * with fewer than 16 rows there is more than one block only for rows
 * wider than 4096. Each tile still computes whole dot products, so the
 * blocking changes no sum. */
static T512 void gemm_float(int wk, const void *w, size_t stride, int64_t n,
                            const quant_act *a, int64_t i0, int64_t i1,
                            float *out, int64_t ld)
{
    if (a->packed) {
        gemm_float_packed(wk, w, stride, n, a, i0, i1, out, ld);
        return;
    }
    int64_t blk = (256 * 1024) / ((int64_t)n * (int64_t)sizeof(float));
    blk = blk < RA ? RA : blk / RA * RA;
    for (int64_t r0 = 0; r0 < a->rows; r0 += blk) {
        int64_t r1 = a->rows - r0 < blk ? a->rows : r0 + blk;
        gemm_float_rows(wk, w, stride, n, a, r0, r1, i0, i1, out, ld);
    }
}

static T512 void gemm_f32(const void *w, size_t stride, int64_t n,
                          const quant_act *a, int64_t i0, int64_t i1,
                          float *out, int64_t ld)
{
    gemm_float(WK_F32, w, stride, n, a, i0, i1, out, ld);
}

static T512 void gemm_f16(const void *w, size_t stride, int64_t n,
                          const quant_act *a, int64_t i0, int64_t i1,
                          float *out, int64_t ld)
{
    gemm_float(WK_F16, w, stride, n, a, i0, i1, out, ld);
}

static T512 void gemm_bf16(const void *w, size_t stride, int64_t n,
                           const quant_act *a, int64_t i0, int64_t i1,
                           float *out, int64_t ld)
{
    gemm_float(WK_BF16, w, stride, n, a, i0, i1, out, ld);
}

/* ================================================================ */
/* Q8_0 family (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) x Q8_0 activations (VNNI)  */
/* ================================================================ */

/* The 32 weights of block b of a Q8_0-family row (Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1) as unsigned bytes in element order (Q8_0: value + 128;
 * the others: their unsigned quants), with the block's scale and min
 * (0 for types without one). The activation's cv lanes hold the
 * matching -K*sum corrections, its sv lanes the sums for the min. */
INL __m256i blk_u8(ggml_type t, const void *row, int64_t b, float *d, float *m)
{
    const uint8_t *qs;
    uint32_t h = 0;
    *m = 0;
    if (t == GGML_Q8_0) {
        const blk_q8_0 *x = (const blk_q8_0 *)row + b;
        *d = f16s(x->d);
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)x->qs),
                                _mm256_set1_epi8((char)0x80));
    } else if (t == GGML_Q4_0) {
        const blk_q4_0 *x = (const blk_q4_0 *)row + b;
        *d = f16s(x->d);
        qs = x->qs;
    } else if (t == GGML_Q4_1) {
        const blk_q4_1 *x = (const blk_q4_1 *)row + b;
        *d = f16s(x->d);
        *m = f16s(x->m);
        qs = x->qs;
    } else if (t == GGML_Q5_0) {
        const blk_q5_0 *x = (const blk_q5_0 *)row + b;
        *d = f16s(x->d);
        memcpy(&h, x->qh, 4);
        qs = x->qs;
    } else {
        const blk_q5_1 *x = (const blk_q5_1 *)row + b;
        *d = f16s(x->d);
        *m = f16s(x->m);
        memcpy(&h, x->qh, 4);
        qs = x->qs;
    }
    __m128i v = _mm_loadu_si128((const __m128i *)qs);
    __m128i lo = _mm_set1_epi8(0x0F);
    __m256i q = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_and_si128(v, lo)),
        _mm_and_si128(_mm_srli_epi16(v, 4), lo), 1);
    if (t == GGML_Q5_0 || t == GGML_Q5_1)   /* bit j of qh: 16 into elem j */
        q = _mm256_or_si256(q, _mm256_maskz_mov_epi8((__mmask32)h,
                                                     _mm256_set1_epi8(0x10)));
    return q;
}

static inline int has_min(ggml_type t) { return t == GGML_Q4_1 || t == GGML_Q5_1; }

/* q8_step's mode: 1 with the min term (Q4_1/Q5_1), 2 fused (Q4_0), 0. */
static inline int q8_mode(ggml_type t) { return has_min(t) ? 1 : t == GGML_Q4_0 ? 2 : 0; }

/* Instantiated per type, so the type tests in the inline helpers fold
 * away. */
#define TYPE_SWITCH(t, F)                                                \
    switch (t) {                                                         \
    case GGML_Q8_0: F(GGML_Q8_0); break;                                 \
    case GGML_Q4_0: F(GGML_Q4_0); break;                                 \
    case GGML_Q4_1: F(GGML_Q4_1); break;                                 \
    case GGML_Q5_0: F(GGML_Q5_0); break;                                 \
    default: F(GGML_Q5_1); break;                                        \
    }

/* ---- Row groups: fewer activation rows than a panel (decode) ----
 *
 * Every output must be the panel kernel's to the bit, whatever the
 * number of activation rows in the call (prefix-shared scoring multiplies
 * a token with others and alone) and whichever thread computes it. The
 * panel's order is the one both can afford: per block (Q8_0 family) or
 * super-block (K-quants) an exact integer dot product, then one float
 * step (q8_step, k_step) into the output's accumulator, block after
 * block. Integer sums are exact, so only the float steps have to match;
 * they are the scalar kernels', so all three give the same bits.
 *
 * Here the weights are read as stored, 16 rows at a time: a row's two
 * blocks (64 values) make one vpdpbusd, whose 16 lanes hold 8 partial
 * sums of each block. A shuffle network (rg_l1..rg_l4) adds each row's
 * 8 lanes per block and transposes, so that one vector holds the block
 * sums of the 16 rows and the float work is the panel's: one conversion
 * and one fma per block for 16 outputs. The network costs 44 shuffles
 * and adds per 16 rows, under 3 per row and block pair; the block scales
 * of the 16 rows come with one gather per block. */
enum { RG = 16, RGA = 4 };   /* weight rows, activation rows at most */

/* The network leaves the sums of the vector fed s-th (its slot s) in
 * lane RG_ROW[s], so slot s is given row RG_ROW[s]. */
static const int RG_ROW[RG] = {0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15};

/* Slots a, b: 128-bit quarters [a's first block folded to 4 lanes, a's
 * second, b's first, b's second]. The blocks' lanes are 0-7 and 8-15 of
 * each input, or (il, the nibble types' interleaved layout) quarters 0, 2
 * and 1, 3. */
INL __m512i rg_l1(int il, __m512i a, __m512i b)
{
    if (il)
        return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x44),
                                _mm512_shuffle_i32x4(a, b, 0xEE));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, 0x88),
                            _mm512_shuffle_i32x4(a, b, 0xDD));
}

/* Two rg_l1 results (slots s..s+3): 2 partials of 2 slots per quarter. */
INL __m512i rg_l2(__m512i w, __m512i x)
{
    return _mm512_add_epi32(_mm512_unpacklo_epi32(w, x),
                            _mm512_unpackhi_epi32(w, x));
}

/* Two rg_l2 results (slots s..s+7): whole sums, 4 slots per quarter. */
INL __m512i rg_l3(__m512i y, __m512i z)
{
    return _mm512_add_epi32(_mm512_unpacklo_epi64(y, z),
                            _mm512_unpackhi_epi64(y, z));
}

/* Slots 0-7 and 8-15 into lane order: *lo lane c = sum of row c's lanes
 * 0-7, *hi lane c = sum of its lanes 8-15. */
INL void rg_l4(__m512i y0, __m512i y1, __m512i *lo, __m512i *hi)
{
    *lo = _mm512_shuffle_i32x4(y0, y1, 0x88);
    *hi = _mm512_shuffle_i32x4(y0, y1, 0xDD);
}

/* Feeds row-slot s's vector v (activation row r) into the network;
 * st holds the pending partial results of that activation row. */
typedef struct {
    __m512i a, w[2], u, y[2];
} rg_state;

INL void rg_feed(rg_state *st, int s, __m512i v, int il)
{
    if (!(s & 1)) {
        st->a = v;
        return;
    }
    st->w[(s >> 1) & 1] = rg_l1(il, st->a, v);
    if ((s & 3) != 3)
        return;
    __m512i u = rg_l2(st->w[0], st->w[1]);
    if ((s & 7) == 3) {
        st->u = u;
        return;
    }
    st->y[s >> 3] = rg_l3(st->u, u);
}

/* Blocks b and b+1 (if two) of a Q8_0-family row as 64 unsigned bytes:
 * Q8_0 in element order (as blk_u8 gives them); the nibble types in
 * quarters [b lo nibbles, b+1 lo, b hi, b+1 hi] (elements 0-15 of b, of
 * b+1, then 16-31 of each), which two broadcast loads, a shift and a mask
 * make with no shuffle (the activations are permuted to match, once per
 * call and block pair). A missing second block reads as the first (its
 * sums are not used). */
INL __m512i q8_pair_q(ggml_type t, const char *row, int64_t b, int two)
{
    if (t == GGML_Q8_0) {
        const blk_q8_0 *x = (const blk_q8_0 *)row + b;
        __m256i v0 = _mm256_loadu_si256((const __m256i *)x[0].qs);
        __m256i v1 = two ? _mm256_loadu_si256((const __m256i *)x[1].qs) : v0;
        __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v0), v1, 1);
        return _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
    }
    size_t bs = t == GGML_Q4_0 ? sizeof(blk_q4_0) : t == GGML_Q4_1 ? sizeof(blk_q4_1)
              : t == GGML_Q5_0 ? sizeof(blk_q5_0) : sizeof(blk_q5_1);
    /* offset of qs (and qh) in the block */
    size_t oq = t == GGML_Q4_0 ? 2 : t == GGML_Q4_1 ? 4 : t == GGML_Q5_0 ? 6 : 8;
    size_t oh = t == GGML_Q5_0 ? 2 : 4;
    const char *x0 = row + b * bs, *x1 = two ? x0 + bs : x0;
    const long long F4 = 0x0004000400040004;   /* shift the upper half by 4 */
    __m512i z = _mm512_mask_broadcast_i32x4(
        _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(x0 + oq))),
        0xF0F0, _mm_loadu_si128((const __m128i *)(x1 + oq)));
    __m512i q = _mm512_and_si512(
        _mm512_srlv_epi16(z, _mm512_set_epi64(F4, F4, F4, F4, 0, 0, 0, 0)),
        _mm512_set1_epi8(0x0F));
    if (t == GGML_Q5_0 || t == GGML_Q5_1) {   /* fifth bits, same order */
        uint32_t h0, h1;
        memcpy(&h0, x0 + oh, 4);
        memcpy(&h1, x1 + oh, 4);
        uint64_t bits = (h0 & 0xFFFFu) | (uint64_t)(h1 & 0xFFFFu) << 16 |
                        (uint64_t)(h0 >> 16) << 32 | (uint64_t)(h1 >> 16) << 48;
        q = _mm512_or_si512(q, _mm512_maskz_mov_epi8(bits, _mm512_set1_epi8(0x10)));
    }
    return q;
}

/* The 16 rows' F16 scale (and, for Q4_1/Q5_1, min) of block b: one
 * 32-bit gather at the block's start. */
INL void q8_scales(ggml_type t, const char *wg, __m512i gidx, int64_t b,
                   __m512 *d, __m512 *m)
{
    size_t bs = t == GGML_Q8_0 ? sizeof(blk_q8_0) : t == GGML_Q4_0 ? sizeof(blk_q4_0)
              : t == GGML_Q4_1 ? sizeof(blk_q4_1) : t == GGML_Q5_0 ? sizeof(blk_q5_0)
              : sizeof(blk_q5_1);
    __m512i g = _mm512_i32gather_epi32(gidx, wg + b * bs, 1);
    *d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
    if (has_min(t))
        *m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
}

/* A group of 16 weight rows: where they are (wg, rp: the rows, gidx:
 * their byte offsets from wg for gathers; rows past the end repeat the
 * first, their lanes computed and not stored: om), and the next group's
 * bytes (pf, pf_len), prefetched a slice per block step while this group
 * is computed. The loads of 16 rows at once are too scattered for the
 * hardware prefetchers: without this the kernels reached ~50% of the
 * streaming bandwidth on weights that are not in cache. */
enum { RG_PF = 1 };   /* prefetch the group this many groups ahead (2: no better) */

typedef struct {
    const char *wg, *rp[RG], *pf;
    size_t pf_len;
    __m512i gidx;
    __mmask16 om;
} rg_group;

static T512 void rg_group_at(const void *w, size_t stride, int64_t i,
                             int64_t i1, rg_group *g)
{
    int nr = i1 - i < RG ? (int)(i1 - i) : RG;
    int32_t off[RG];
    g->wg = (const char *)w + (size_t)i * stride;
    for (int c = 0; c < RG; c++) {
        off[c] = c < nr ? (int32_t)((size_t)c * stride) : 0;
        g->rp[c] = g->wg + off[c];
    }
    g->gidx = _mm512_loadu_si512((const void *)off);
    g->om = lane_mask(nr);
    int64_t next = i1 - (i + RG_PF * RG);
    g->pf = g->wg + (size_t)RG_PF * RG * stride;
    g->pf_len = next <= 0 ? 0 : (size_t)(next < RG ? next : RG) * stride;
}

/* Step it of nit of this group: prefetch its share of the next group. */
INL void rg_prefetch(const rg_group *g, int64_t it, int64_t nit)
{
    size_t step = (g->pf_len / (size_t)nit + 64) & ~(size_t)63;
    size_t lo = (size_t)it * step, hi = lo + step;
    if (hi > g->pf_len)
        hi = g->pf_len;
    for (size_t o = lo; o < hi; o += 64)
        _mm_prefetch(g->pf + o, _MM_HINT_T0);
}

/* out[r*ld + c] for the rows c of group g and ra (1 to RGA) activation
 * rows. */
INL void rg_q8(ggml_type t, int ra, const rg_group *g, int64_t nb,
               const qa_q8_row *x, float *out, int64_t ld)
{
    __m512 acc[RGA];
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
        acc[r] = _mm512_setzero_ps();
    const int il = t != GGML_Q8_0;
    for (int64_t b = 0; b < nb; b += 2) {
        int two = b + 1 < nb;
        int64_t k = b * 32, lane = k / 4;
        __m512i xq[RGA], xc[RGA];
        rg_state st[RGA];
        rg_prefetch(g, b / 2, (nb + 1) / 2);
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            xq[r] = _mm512_load_si512((const void *)(x[r].qs + k));
            xc[r] = _mm512_load_si512((const void *)(x[r].cv + lane));
            if (il) {   /* quarters 0 2 1 3, as q8_pair_q's nibbles */
                xq[r] = _mm512_shuffle_i64x2(xq[r], xq[r], _MM_SHUFFLE(3, 1, 2, 0));
                xc[r] = _mm512_shuffle_i64x2(xc[r], xc[r], _MM_SHUFFLE(3, 1, 2, 0));
            }
        }
#pragma GCC unroll 16
        for (int s = 0; s < RG; s++) {
            __m512i q = q8_pair_q(t, g->rp[RG_ROW[s]], b, two);
#pragma GCC unroll 4
            for (int r = 0; r < ra; r++)
                rg_feed(&st[r], s, _mm512_dpbusd_epi32(xc[r], q, xq[r]), il);
        }
        __m512 d, m = _mm512_setzero_ps();
        q8_scales(t, g->wg, g->gidx, b, &d, &m);
        __m512i lo[RGA], hi[RGA];
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            rg_l4(st[r].y[0], st[r].y[1], &lo[r], &hi[r]);
            acc[r] = q8_step(acc[r], lo[r], d, _mm512_set1_ps(x[r].dv[lane]),
                             q8_mode(t), m, _mm512_set1_ps(x[r].sv[lane]));
        }
        if (!two)
            break;
        q8_scales(t, g->wg, g->gidx, b + 1, &d, &m);
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            acc[r] = q8_step(acc[r], hi[r], d, _mm512_set1_ps(x[r].dv[lane + 8]),
                             q8_mode(t), m, _mm512_set1_ps(x[r].sv[lane + 8]));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
        _mm512_mask_storeu_ps(out + r * ld, g->om, acc[r]);
}

static T512 void rg_q8_any(ggml_type t, int ra, const rg_group *g,
                           int64_t nb, const qa_q8_row *x, float *out,
                           int64_t ld)
{
#define RQ(tt)                                                           \
    do {                                                                 \
        if (ra == 1) rg_q8(tt, 1, g, nb, x, out, ld);                    \
        else if (ra == 2) rg_q8(tt, 2, g, nb, x, out, ld);               \
        else if (ra == 3) rg_q8(tt, 3, g, nb, x, out, ld);               \
        else rg_q8(tt, 4, g, nb, x, out, ld);                            \
    } while (0)
    TYPE_SWITCH(t, RQ)
#undef RQ
}

static T512 void gemm_q8_family(ggml_type t, const void *w, size_t stride,
                                int64_t n, const quant_act *a, int64_t i0,
                                int64_t i1, float *out, int64_t ld)
{
    if (a->rows >= PANEL_MIN_ROWS_Q) {
        panel_q8(t, w, stride, n, a, i0, i1, out, ld);
        return;
    }
    int64_t nb = n / 32;
    for (int64_t i = i0; i < i1; i += RG) {
        rg_group g;
        rg_group_at(w, stride, i, i1, &g);
        for (int64_t r = 0; r < a->rows; r += RGA) {
            int ra = a->rows - r < RGA ? (int)(a->rows - r) : RGA;
            qa_q8_row xr[RGA];
            for (int q = 0; q < ra; q++)
                xr[q] = qa_q8_view(a, r + q);
            rg_q8_any(t, ra, &g, nb, xr, out + r * ld + i, ld);
            g.pf_len = 0;   /* prefetched by the first pass */
        }
    }
}

#define Q8_FAMILY(name, type)                                            \
    static T512 void name(const void *w, size_t stride, int64_t n,       \
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

/* ================================================================ */
/* Q4_K / Q6_K: unsigned bytes x Q8_K activations                     */
/* ================================================================ */

/* One unpacked super-block: q[256] unsigned (Q4_K 0..15, Q6_K 0..63),
 * sc[4] int16 vectors giving each maddubs lane pair its sub-block scale,
 * coef[16] int16 multipliers of the activation's bsums, and the float
 * factors of the main sum (d) and the bsums term (dm):
 *   dot = d*da*sum(q*a*scale) + dm*da*sum(coef*bsums).
 * Q4_K: coef = the mins, dm = -dmin; Q6_K: coef = 32*scale, dm = -d
 * (the -32 offset of the 6-bit values). */
typedef struct {
    uint8_t q[256];
    int16_t sc[4][32];
    int16_t coef[16];
    float d, dm;
    char pad[24];
} ksb;

_Static_assert(sizeof(ksb) % 64 == 0, "ksb keeps 64-byte alignment");

static T512 void unpack_q4_k(const blk_q4_k *b, int64_t nsb, ksb *o)
{
    const __m256i lo = _mm256_set1_epi8(0x0F);
    for (int64_t s = 0; s < nsb; s++, b++, o++) {
        for (int j = 0; j < 4; j++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * j));
            _mm256_store_si256((__m256i *)(o->q + 64 * j), _mm256_and_si256(v, lo));
            _mm256_store_si256((__m256i *)(o->q + 64 * j + 32),
                               _mm256_and_si256(_mm256_srli_epi16(v, 4), lo));
        }
        int sc[8], m[8];
        for (int j = 0; j < 8; j++)
            q4k_scale_min(b->scales, j, &sc[j], &m[j]);
        for (int j = 0; j < 4; j++)
            _mm512_store_si512((void *)o->sc[j], _mm512_mask_blend_epi16(
                0xFFFF0000u, _mm512_set1_epi16((short)sc[2 * j]),
                _mm512_set1_epi16((short)sc[2 * j + 1])));
        for (int k = 0; k < 16; k++)
            o->coef[k] = (int16_t)m[k / 2];
        o->d = f16s(b->d);
        o->dm = -f16s(b->dmin);
    }
}

static T512 void unpack_q6_k(const blk_q6_k *b, int64_t nsb, ksb *o)
{
    const __m512i lo4 = _mm512_set1_epi8(0x0F), lo2 = _mm512_set1_epi8(3);
    for (int64_t s = 0; s < nsb; s++, b++, o++) {
        for (int h = 0; h < 2; h++) {
            /* ql bytes: low nibbles are elems 0..63 of this half, high
             * nibbles 64..127; qh byte l holds bits 4-5 of elems l,
             * l+32, l+64, l+96 in its bit pairs 0, 2, 4, 6. */
            __m512i l = _mm512_loadu_si512((const void *)(b->ql + 64 * h));
            __m256i hb = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(hb),
                                            _mm256_srli_epi16(hb, 2), 1);
            __m512i h0 = _mm512_slli_epi16(_mm512_and_si512(hz, lo2), 4);
            __m512i h1 = _mm512_slli_epi16(
                _mm512_and_si512(_mm512_srli_epi16(hz, 4), lo2), 4);
            __m512i q0 = _mm512_or_si512(_mm512_and_si512(l, lo4), h0);
            __m512i q1 = _mm512_or_si512(
                _mm512_and_si512(_mm512_srli_epi16(l, 4), lo4), h1);
            _mm512_store_si512((void *)(o->q + 128 * h), q0);
            _mm512_store_si512((void *)(o->q + 128 * h + 64), q1);
        }
        __m256i s16 = _mm256_cvtepi8_epi16(
            _mm_loadu_si128((const __m128i *)b->scales));
        __m512i sz = _mm512_castsi256_si512(s16);
        for (int j = 0; j < 4; j++) {
            /* lane L of vector j: scale of elements 64j + 2L, i.e.
             * scales[4j + L/8] */
            __m512i idx = _mm512_add_epi16(
                _mm512_set1_epi16((short)(4 * j)),
                _mm512_srli_epi16(_mm512_set_epi16(
                    31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18,
                    17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
                    1, 0), 3));
            _mm512_store_si512((void *)o->sc[j], _mm512_permutexvar_epi16(idx, sz));
        }
        _mm256_storeu_si256((__m256i *)o->coef, _mm256_slli_epi16(s16, 5));
        o->d = f16s(b->d);
        o->dm = -o->d;
    }
}

/* ---- Row groups (decode) for the K-quants ----
 * Each super-block is built in registers straight from the blocks: the
 * int16 maddubs pair sums are scaled and accumulated by one dpwssd. */

/* The 4 vectors of 64 unsigned values of a Q4_K / Q6_K super-block, the
 * 4 int16 scale vectors that go with them, and the bsums term's int16
 * multipliers (16, as a 256-bit vector). */
typedef struct {
    __m512i q[4], sc[4];
    __m256i coef;
} kregs;

/* Q4_K's values, 128 nibbles per load: q[2h] the low nibbles of bytes
 * 64h..64h+63 (sub-blocks 4h and 4h+2), q[2h+1] the high ones (4h+1,
 * 4h+3); the activations are arranged to match (k_acts). */
INL void q4k_regs(const blk_q4_k *b, kregs *k, const __m512i *idx)
{
    const __m512i lo = _mm512_set1_epi8(0x0F);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m512i v = _mm512_loadu_si512((const void *)(b->qs + 64 * h));
        k->q[2 * h] = _mm512_and_si512(v, lo);
        k->q[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), lo);
    }
    /* The 6-bit scales and mins, unpacked 4 bytes at a time. */
    uint32_t u[3];
    memcpy(u, b->scales, 12);
    uint32_t sc_lo = u[0] & 0x3f3f3f3f, m_lo = u[1] & 0x3f3f3f3f;
    uint32_t sc_hi = (u[2] & 0x0f0f0f0f) | ((u[0] >> 2) & 0x30303030);
    uint32_t m_hi = ((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] >> 2) & 0x30303030);
    __m128i sc16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo));
    __m128i m16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)m_hi, (int)m_lo));
    __m512i scz = _mm512_broadcast_i32x4(sc16);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        k->sc[j] = _mm512_permutexvar_epi16(idx[j], scz);
    /* each min multiplies two bsums (16 values each) */
    k->coef = _mm256_permutexvar_epi16(
        _mm256_set_epi16(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
        _mm256_castsi128_si256(m16));
}

INL void q6k_regs(const blk_q6_k *b, kregs *k, const __m512i *idx)
{
    const __m512i lo4 = _mm512_set1_epi8(0x0F), lo2 = _mm512_set1_epi8(3);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m512i l = _mm512_loadu_si512((const void *)(b->ql + 64 * h));
        __m256i hb = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(hb),
                                        _mm256_srli_epi16(hb, 2), 1);
        k->q[2 * h] = _mm512_or_si512(_mm512_and_si512(l, lo4),
            _mm512_slli_epi16(_mm512_and_si512(hz, lo2), 4));
        k->q[2 * h + 1] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16(l, 4), lo4),
            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(hz, 4), lo2), 4));
    }
    __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
    __m512i sz = _mm512_castsi256_si512(s16);
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        k->sc[j] = _mm512_permutexvar_epi16(idx[j], sz);
    k->coef = _mm256_slli_epi16(s16, 5);
}

/* Permutation indices: Q4_K lane L of vector j takes the scale of
 * sub-block {0, 1, 4, 5}[j] + 2 (L/16) (q4k_regs' order); Q6_K takes
 * scale 4j + L/8. */
INL void k_idx(int is_q6, __m512i *idx)
{
    const __m512i lane = _mm512_set_epi16(
        31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16,
        15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int j = 0; j < 4; j++)
        idx[j] = is_q6
            ? _mm512_add_epi16(_mm512_set1_epi16((short)(4 * j)), _mm512_srli_epi16(lane, 3))
            : _mm512_add_epi16(_mm512_set1_epi16((short)((j & 1) + 4 * (j >> 1))),
                               _mm512_slli_epi16(_mm512_srli_epi16(lane, 4), 1));
}

/* The 16 lanes one row and one activation row give for a super-block,
 * for the network: Q4_K lanes 0-7 the scaled sums (I_main), lanes 8-15
 * the mins term (I_min); Q6_K all 16 lanes parts of the one sum with the
 * -32 offset folded in (the bsums term, 32 * scale * bsum, subtracted). */
/* A super-block's activations in the order of the weight vectors:
 * Q6_K element order; Q4_K sub-blocks [0 2] [1 3] [4 6] [5 7]. */
INL void k_acts(int is_q6, const blk_q8_k *xb, __m512i *xa)
{
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        xa[j] = _mm512_loadu_si512((const void *)(xb->qs + 64 * j));
    if (is_q6)
        return;
    __m512i a0 = xa[0], a1 = xa[1], a2 = xa[2], a3 = xa[3];
    xa[0] = _mm512_shuffle_i64x2(a0, a1, 0x44);
    xa[1] = _mm512_shuffle_i64x2(a0, a1, 0xEE);
    xa[2] = _mm512_shuffle_i64x2(a2, a3, 0x44);
    xa[3] = _mm512_shuffle_i64x2(a2, a3, 0xEE);
}

INL __m512i k_lanes(int is_q6, const kregs *k, const __m512i *xa,
                    const blk_q8_k *xb)
{
    __m512i isum = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(k->q[j], xa[j]),
                                   k->sc[j]);
    __m256i corr = _mm256_madd_epi16(k->coef,
        _mm256_loadu_si256((const __m256i *)xb->bsums));
    if (is_q6)
        return _mm512_sub_epi32(isum, _mm512_zextsi256_si512(corr));
    __m256i main8 = _mm256_add_epi32(_mm512_castsi512_si256(isum),
                                     _mm512_extracti64x4_epi64(isum, 1));
    return _mm512_inserti64x4(_mm512_castsi256_si512(main8), corr, 1);
}

/* Q4_K / Q6_K row group (see "Row groups" above): per super-block the
 * exact integer sums of 16 rows, then k_step as the panel. */
INL void rg_k(int is_q6, int ra, const rg_group *g, int64_t nsb,
              const blk_q8_k *const *x, float *out, int64_t ld,
              const __m512i *idx)
{
    __m512 acc[RGA];
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
        acc[r] = _mm512_setzero_ps();
    const size_t bs = is_q6 ? sizeof(blk_q6_k) : sizeof(blk_q4_k);
    for (int64_t s = 0; s < nsb; s++) {
        rg_state st[RGA];
        __m512i xa[RGA][4];
        rg_prefetch(g, s, nsb);
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++)
            k_acts(is_q6, x[r] + s, xa[r]);
#pragma GCC unroll 16
        for (int c = 0; c < RG; c++) {
            kregs k;
            const char *blk = g->rp[RG_ROW[c]] + s * bs;
            if (is_q6)
                q6k_regs((const blk_q6_k *)blk, &k, idx);
            else
                q4k_regs((const blk_q4_k *)blk, &k, idx);
#pragma GCC unroll 4
            for (int r = 0; r < ra; r++)
                rg_feed(&st[r], c, k_lanes(is_q6, &k, xa[r], x[r] + s), 0);
        }
        /* d (and dmin) of the 16 rows: Q4_K's d, dmin open the block;
         * Q6_K's d closes it (the gather reads the 4 bytes ending there) */
        __m512i gd = _mm512_i32gather_epi32(g->gidx, g->wg + s * bs + (is_q6 ? 206 : 0), 1);
        __m512 d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(
            is_q6 ? _mm512_srli_epi32(gd, 16) : gd));
        __m512 dmin = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(gd, 16)));
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            __m512i lo, hi;
            rg_l4(st[r].y[0], st[r].y[1], &lo, &hi);
            __m512 xd = _mm512_set1_ps(x[r][s].d);
            if (is_q6)
                acc[r] = k_step(acc[r], _mm512_add_epi32(lo, hi), d, xd, 0, hi, dmin);
            else
                acc[r] = k_step(acc[r], lo, d, xd, 1, hi, dmin);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
        _mm512_mask_storeu_ps(out + r * ld, g->om, acc[r]);
}

static T512 void rg_k_any(int is_q6, int ra, const rg_group *g, int64_t nsb,
                          const blk_q8_k *const *x, float *out, int64_t ld)
{
    __m512i idx[4];
    k_idx(is_q6, idx);
#define RK(q)                                                            \
    do {                                                                 \
        if (ra == 1) rg_k(q, 1, g, nsb, x, out, ld, idx);                \
        else if (ra == 2) rg_k(q, 2, g, nsb, x, out, ld, idx);           \
        else if (ra == 3) rg_k(q, 3, g, nsb, x, out, ld, idx);           \
        else rg_k(q, 4, g, nsb, x, out, ld, idx);                        \
    } while (0)
    if (is_q6)
        RK(1);
    else
        RK(0);
#undef RK
}

static T512 void gemm_k_family(int is_q6, const void *w, size_t stride,
                               int64_t n, const quant_act *a, int64_t i0,
                               int64_t i1, float *out, int64_t ld)
{
    if (a->rows >= PANEL_MIN_ROWS_K) {
        panel_k(is_q6, w, stride, n, a, i0, i1, out, ld);
        return;
    }
    int64_t nsb = n / QK_K;
    for (int64_t i = i0; i < i1; i += RG) {
        rg_group g;
        rg_group_at(w, stride, i, i1, &g);
        for (int64_t r = 0; r < a->rows; r += RGA) {
            int ra = a->rows - r < RGA ? (int)(a->rows - r) : RGA;
            const blk_q8_k *xr[RGA];
            for (int q = 0; q < ra; q++)
                xr[q] = (const blk_q8_k *)ACT_ROW(a, r + q);
            rg_k_any(is_q6, ra, &g, nsb, xr, out + r * ld + i, ld);
            g.pf_len = 0;   /* prefetched by the first pass */
        }
    }
}

static T512 void gemm_q4_k(const void *w, size_t stride, int64_t n,
                           const quant_act *a, int64_t i0, int64_t i1,
                           float *out, int64_t ld)
{
    gemm_k_family(0, w, stride, n, a, i0, i1, out, ld);
}

static T512 void gemm_q6_k(const void *w, size_t stride, int64_t n,
                           const quant_act *a, int64_t i0, int64_t i1,
                           float *out, int64_t ld)
{
    gemm_k_family(1, w, stride, n, a, i0, i1, out, ld);
}

/* ================================================================ */
/* Panel kernels for prompt processing (many activation rows)         */
/* ================================================================ */

/*
 * For GEMM the weights are repacked, NR = 32 rows at a time, into a
 * "panel" where one 64-byte vector holds the same k position(s) of 16
 * different weight rows. The inner loop then broadcasts one activation
 * value (or 4 bytes for the integer kernels) and multiplies it into two
 * such vectors: every vector lane is a different output, so there is no
 * horizontal reduction, each weight vector serves PRA activation rows
 * and each integer VNNI instruction does 64 multiply-adds for 16 outputs.
 * For the quantised types the per-block scales are applied once per
 * block (or K-quant sub-block) to int32 lane sums, so the float work per
 * 32 values is 3 instructions per 16 outputs instead of per output.
 */
enum { NR = 32, PRI = 4 };

/* ---- Q8_0 family: per block of 32, 8 groups of 4 bytes x 32 rows ----
 * Block b of the panel: bytes [g*128 + c*4 + t] = unsigned weight of row
 * c, element 32b + 4g + t; then 32 floats, the rows' block scales, and
 * 32 floats, their mins (Q4_1/Q5_1; zero otherwise). */
enum { QB_BYTES = 8 * 128 + NR * 4 + NR * 4 };

INL void pack_q8_t(ggml_type t, const void *w, size_t stride, int64_t nb,
                   int nrows, uint8_t *panel)
{
    uint8_t v[32] __attribute__((aligned(32)));
    for (int c = 0; c < NR; c++) {
        const void *row = (const char *)w + (size_t)c * stride;
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *pb = panel + b * QB_BYTES;
            float d = 0, m = 0;
            if (c < nrows)
                _mm256_store_si256((__m256i *)v, blk_u8(t, row, b, &d, &m));
            else
                memset(v, 0, 32);
            for (int g = 0; g < 8; g++)
                memcpy(pb + g * 128 + c * 4, v + 4 * g, 4);
            memcpy(pb + 1024 + c * 4, &d, 4);
            memcpy(pb + 1152 + c * 4, &m, 4);
        }
    }
}

static T512 void pack_q8(ggml_type t, const void *w, size_t stride,
                         int64_t nb, int nrows, uint8_t *panel)
{
#define PQT(tt) pack_q8_t(tt, w, stride, nb, nrows, panel)
    TYPE_SWITCH(t, PQT)
#undef PQT
}

INL __m512i bcast4(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

INL void ptile_q8(int hm, int ra, const uint8_t *panel, const qa_q8_row *x,
                  int64_t nb, float *out, int64_t ld, int nrows)
{
    __m512 acc[PRI][2];
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * QB_BYTES;
        int64_t lane = (b / 2) * 16 + (b & 1) * 8;
        __m512i ia[PRI][2];
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++)
            ia[r][0] = ia[r][1] = _mm512_set1_epi32(x[r].cv[lane]);
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m512i w0 = _mm512_load_si512((const void *)(pb + g * 128));
            __m512i w1 = _mm512_load_si512((const void *)(pb + g * 128 + 64));
#pragma GCC unroll 4
            for (int r = 0; r < ra; r++) {
                __m512i av = bcast4(x[r].qs + 32 * b + 4 * g);
                ia[r][0] = _mm512_dpbusd_epi32(ia[r][0], w0, av);
                ia[r][1] = _mm512_dpbusd_epi32(ia[r][1], w1, av);
            }
        }
        __m512 s0 = _mm512_load_ps((const float *)(pb + 1024));
        __m512 s1 = _mm512_load_ps((const float *)(pb + 1024 + 64));
        __m512 m0 = _mm512_setzero_ps(), m1 = m0;
        if (hm == 1) {
            m0 = _mm512_load_ps((const float *)(pb + 1152));
            m1 = _mm512_load_ps((const float *)(pb + 1152 + 64));
        }
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            __m512 xd = _mm512_set1_ps(x[r].dv[lane]);
            __m512 xs = _mm512_set1_ps(x[r].sv[lane]);
            acc[r][0] = q8_step(acc[r][0], ia[r][0], s0, xd, hm, m0, xs);
            acc[r][1] = q8_step(acc[r][1], ia[r][1], s1, xd, hm, m1, xs);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++) {
        _mm512_mask_storeu_ps(out + r * ld, lane_mask(nrows), acc[r][0]);
        _mm512_mask_storeu_ps(out + r * ld + 16, lane_mask(nrows - 16), acc[r][1]);
    }
}

#define RA_SWITCH4(ra, F)                                                \
    switch (ra) {                                                        \
    case 1: F(1); break; case 2: F(2); break; case 3: F(3); break;      \
    case 4: F(4); break;                                                 \
    }

static T512 void ptile_q8_any(int hm, int ra, const uint8_t *panel,
                              const qa_q8_row *x, int64_t nb, float *out,
                              int64_t ld, int nrows)
{
#define PQ(a)                                                            \
    do {                                                                 \
        if (hm == 1) ptile_q8(1, a, panel, x, nb, out, ld, nrows);       \
        else if (hm == 2) ptile_q8(2, a, panel, x, nb, out, ld, nrows);  \
        else ptile_q8(0, a, panel, x, nb, out, ld, nrows);               \
    } while (0)
    RA_SWITCH4(ra, PQ)
#undef PQ
}

static T512 void panel_q8(ggml_type t, const void *w, size_t stride,
                          int64_t n, const quant_act *a, int64_t i0,
                          int64_t i1, float *out, int64_t ld)
{
    int64_t nb = n / 32;
    uint8_t *panel = scratch((size_t)nb * QB_BYTES);
    for (int64_t i = i0; i < i1; i += NR) {
        int nrows = i1 - i < NR ? (int)(i1 - i) : NR;
        pack_q8(t, (const char *)w + (size_t)i * stride, stride, nb, nrows,
                panel);
        for (int64_t r = 0; r < a->rows; r += PRI) {
            int ra = a->rows - r < PRI ? (int)(a->rows - r) : PRI;
            qa_q8_row xr[PRI];
            for (int q = 0; q < ra; q++)
                xr[q] = qa_q8_view(a, r + q);
            ptile_q8_any(q8_mode(t), ra, panel, xr, nb, out + r * ld + i, ld,
                         nrows);
        }
    }
    free(panel);
}

/* ---- Q4_K / Q6_K: per super-block of 256 ----
 * q: 64 groups x 128 bytes (as above, values 0..15 / 0..63);
 * sc: nsub x 32 int32, the sub-block scales per row;
 * cw: 8 x 32 int32, each two int16 multipliers of an activation bsums
 *     pair (Q4_K: min_p, min_p; Q6_K: -32 scale_2p, -32 scale_2p+1);
 * dd: 32 floats, d per row; dm: 32 floats, dmin per row (Q4_K).
 * The sums follow the row-group kernels' order (see "Row groups"):
 * integer I_main = sum of scale * sub-block dot (Q6_K with the bsums
 * term folded in) and, for Q4_K, I_min, then k_step, super-block after
 * super-block. */
static inline size_t ksb_bytes(int nsub) { return 8192 + (size_t)nsub * 128 + 1024 + 256; }

static T512 void pack_k(int is_q6, const void *w, size_t stride, int64_t nsb,
                        int nrows, uint8_t *panel)
{
    int nsub = is_q6 ? 16 : 8;
    size_t sbb = ksb_bytes(nsub);
    ksb tmp __attribute__((aligned(64)));
    for (int c = 0; c < NR; c++) {
        for (int64_t s = 0; s < nsb; s++) {
            uint8_t *ps = panel + s * sbb;
            int32_t *sc = (int32_t *)(ps + 8192), *cw = sc + nsub * 32;
            float *dd = (float *)(cw + 256), *dm = dd + 32;
            int32_t isc[16] = {0};
            int16_t pr[16] = {0};
            float fd = 0, fdm = 0;
            if (c >= nrows) {
                memset(tmp.q, 0, sizeof tmp.q);
            } else if (is_q6) {
                const blk_q6_k *b = (const blk_q6_k *)((const char *)w +
                                                       (size_t)c * stride) + s;
                unpack_q6_k(b, 1, &tmp);
                for (int j = 0; j < 16; j++) {
                    isc[j] = b->scales[j];
                    pr[j] = (int16_t)(-32 * b->scales[j]);
                }
                fd = f16s(b->d);
            } else {
                const blk_q4_k *b = (const blk_q4_k *)((const char *)w +
                                                       (size_t)c * stride) + s;
                unpack_q4_k(b, 1, &tmp);
                for (int j = 0; j < 8; j++) {
                    int scv, m;
                    q4k_scale_min(b->scales, j, &scv, &m);
                    isc[j] = scv;
                    pr[2 * j] = pr[2 * j + 1] = (int16_t)m;
                }
                fd = f16s(b->d);
                fdm = f16s(b->dmin);
            }
            for (int g = 0; g < 64; g++)
                memcpy(ps + g * 128 + c * 4, tmp.q + 4 * g, 4);
            for (int j = 0; j < nsub; j++)
                sc[j * 32 + c] = isc[j];
            for (int p = 0; p < 8; p++)
                memcpy(cw + p * 32 + c, pr + 2 * p, 4);
            dd[c] = fd;
            dm[c] = fdm;
        }
    }
}

INL void ptile_k(int is_q6, int ra, const uint8_t *panel,
                 const blk_q8_k *const *x, int64_t nsb, float *out,
                 int64_t ld, int nrows)
{
    const int nsub = is_q6 ? 16 : 8, G = is_q6 ? 4 : 8;
    const size_t sbb = ksb_bytes(nsub);
    __m512 acc[PRI][2];
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++)
        acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *ps = panel + s * sbb;
        const int32_t *sc = (const int32_t *)(ps + 8192), *cw = sc + nsub * 32;
        const float *dd = (const float *)(cw + 256), *dm = dd + 32;
        __m512i im[PRI][2];
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++)
            im[r][0] = im[r][1] = _mm512_setzero_si512();
        for (int j = 0; j < nsub; j++) {
            __m512i ia[PRI][2];
#pragma GCC unroll 4
            for (int r = 0; r < ra; r++)
                ia[r][0] = ia[r][1] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int g = 0; g < G; g++) {
                int gg = j * G + g;
                __m512i w0 = _mm512_load_si512((const void *)(ps + gg * 128));
                __m512i w1 = _mm512_load_si512((const void *)(ps + gg * 128 + 64));
#pragma GCC unroll 4
                for (int r = 0; r < ra; r++) {
                    __m512i av = bcast4(x[r][s].qs + 4 * gg);
                    ia[r][0] = _mm512_dpbusd_epi32(ia[r][0], w0, av);
                    ia[r][1] = _mm512_dpbusd_epi32(ia[r][1], w1, av);
                }
            }
            __m512i s0 = _mm512_load_si512((const void *)(sc + j * 32));
            __m512i s1 = _mm512_load_si512((const void *)(sc + j * 32 + 16));
#pragma GCC unroll 4
            for (int r = 0; r < ra; r++) {
                im[r][0] = _mm512_add_epi32(im[r][0], _mm512_mullo_epi32(ia[r][0], s0));
                im[r][1] = _mm512_add_epi32(im[r][1], _mm512_mullo_epi32(ia[r][1], s1));
            }
        }
        /* The bsums term: mins (Q4_K, its own sum) or the -32 offset
         * (Q6_K, into the main sum). */
        __m512i in[PRI][2];
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++)
            in[r][0] = in[r][1] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int p = 0; p < 8; p++) {
            __m512i c0 = _mm512_load_si512((const void *)(cw + p * 32));
            __m512i c1 = _mm512_load_si512((const void *)(cw + p * 32 + 16));
#pragma GCC unroll 4
            for (int r = 0; r < ra; r++) {
                __m512i bv = bcast4(x[r][s].bsums + 2 * p);
                if (is_q6) {
                    im[r][0] = _mm512_dpwssd_epi32(im[r][0], c0, bv);
                    im[r][1] = _mm512_dpwssd_epi32(im[r][1], c1, bv);
                } else {
                    in[r][0] = _mm512_dpwssd_epi32(in[r][0], c0, bv);
                    in[r][1] = _mm512_dpwssd_epi32(in[r][1], c1, bv);
                }
            }
        }
        __m512 d0 = _mm512_load_ps(dd), d1 = _mm512_load_ps(dd + 16);
        __m512 m0 = _mm512_load_ps(dm), m1 = _mm512_load_ps(dm + 16);
#pragma GCC unroll 4
        for (int r = 0; r < ra; r++) {
            __m512 xd = _mm512_set1_ps(x[r][s].d);
            acc[r][0] = k_step(acc[r][0], im[r][0], d0, xd, !is_q6, in[r][0], m0);
            acc[r][1] = k_step(acc[r][1], im[r][1], d1, xd, !is_q6, in[r][1], m1);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < ra; r++) {
        _mm512_mask_storeu_ps(out + r * ld, lane_mask(nrows), acc[r][0]);
        _mm512_mask_storeu_ps(out + r * ld + 16, lane_mask(nrows - 16), acc[r][1]);
    }
}

static T512 void ptile_k_any(int is_q6, int ra, const uint8_t *panel,
                             const blk_q8_k *const *x, int64_t nsb,
                             float *out, int64_t ld, int nrows)
{
#define PK(a)                                                            \
    do {                                                                 \
        if (is_q6) ptile_k(1, a, panel, x, nsb, out, ld, nrows);         \
        else ptile_k(0, a, panel, x, nsb, out, ld, nrows);               \
    } while (0)
    RA_SWITCH4(ra, PK)
#undef PK
}

static T512 void panel_k(int is_q6, const void *w, size_t stride, int64_t n,
                         const quant_act *a, int64_t i0, int64_t i1,
                         float *out, int64_t ld)
{
    int64_t nsb = n / QK_K;
    uint8_t *panel = scratch((size_t)nsb * ksb_bytes(is_q6 ? 16 : 8));
    for (int64_t i = i0; i < i1; i += NR) {
        int nrows = i1 - i < NR ? (int)(i1 - i) : NR;
        pack_k(is_q6, (const char *)w + (size_t)i * stride, stride, nsb,
               nrows, panel);
        for (int64_t r = 0; r < a->rows; r += PRI) {
            int ra = a->rows - r < PRI ? (int)(a->rows - r) : PRI;
            const blk_q8_k *xr[PRI];
            for (int q = 0; q < ra; q++)
                xr[q] = (const blk_q8_k *)ACT_ROW(a, r + q);
            ptile_k_any(is_q6, ra, panel, xr, nsb, out + r * ld + i, ld, nrows);
        }
    }
    free(panel);
}

/* ================================================================ */
/* Activation preparation (bit-identical to the scalar versions)      */
/* ================================================================ */

static T512 void act_q8_0(const float *x, int64_t n, int k, qa_q8_row v)
{
    int64_t np = qa_npad(n), nb = n / 32;
    memset(v.qs, 0, (size_t)np);
    memset(v.dv, 0, (size_t)np);
    memset(v.cv, 0, (size_t)np);
    memset(v.sv, 0, (size_t)np);
    for (int64_t b = 0; b < nb; b++) {
        __m512 x0 = _mm512_loadu_ps(x + 32 * b);
        __m512 x1 = _mm512_loadu_ps(x + 32 * b + 16);
        float amax = _mm512_reduce_max_ps(
            _mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
        __m512 id = _mm512_set1_ps(amax ? 127.0f / amax : 0.0f);
        float dexact = amax / 127.0f;
        float d = _cvtsh_ss((unsigned short)_cvtss_sh(dexact, 0));
        /* cvtps_epi32 rounds half to even, as rintf does */
        __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, id));
        __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, id));
        _mm_storeu_si128((__m128i *)(v.qs + 32 * b), _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(v.qs + 32 * b + 16), _mm512_cvtepi32_epi8(q1));
        int64_t lane = (b / 2) * 16 + (b & 1) * 8;
        _mm256_storeu_ps(v.dv + lane, _mm256_set1_ps(d));
        int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
        v.cv[lane] = -k * sum;
        v.sv[lane] = _cvtsh_ss((unsigned short)_cvtss_sh(dexact * (float)sum, 0));
    }
}

static T512 void act_q8_k(const float *x, blk_q8_k *y, int64_t nb)
{
    for (int64_t b = 0; b < nb; b++, x += QK_K) {
        __m512 am = _mm512_setzero_ps();
        for (int j = 0; j < 16; j++)
            am = _mm512_max_ps(am, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * j)));
        float amax = _mm512_reduce_max_ps(am);
        memset(&y[b], 0, sizeof y[b]);
        if (!amax)
            continue;
        /* The first value of largest magnitude, with its sign. */
        float max = 0;
        for (int j = 0; j < 16; j++) {
            __mmask16 m = _mm512_cmp_ps_mask(
                _mm512_abs_ps(_mm512_loadu_ps(x + 16 * j)),
                _mm512_set1_ps(amax), _CMP_EQ_OQ);
            if (m) {
                max = x[16 * j + __builtin_ctz(m)];
                break;
            }
        }
        float iscale = -127.0f / max;
        for (int j = 0; j < 16; j++) {
            __m512i q = _mm512_cvtps_epi32(
                _mm512_mul_ps(_mm512_loadu_ps(x + 16 * j), _mm512_set1_ps(iscale)));
            q = _mm512_min_epi32(q, _mm512_set1_epi32(127));
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * j), _mm512_cvtepi32_epi8(q));
            y[b].bsums[j] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[b].d = 1 / iscale;
    }
}

static T512 void act_round(ggml_type t, const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = lane_mask((int)(n - i < 16 ? n - i : 16));
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        if (t == GGML_F16) {
            v = _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        } else {
            /* round to nearest even on the top 16 bits; NaNs made quiet */
            __m512i u = _mm512_castps_si512(v);
            __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16),
                                           _mm512_set1_epi32(1));
            __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(
                _mm512_set1_epi32(0x7fff), lsb));
            __mmask16 nan = _mm512_cmpgt_epu32_mask(
                _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                _mm512_set1_epi32(0x7f800000));
            r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
            v = _mm512_castsi512_ps(_mm512_and_si512(
                r, _mm512_set1_epi32((int)0xffff0000u)));
        }
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

void quant_avx512_kernels(quant_kernels *k)
{
    k->f32 = gemm_f32;
    k->pack_min_rows = PACK_MIN_ROWS;
    k->f16 = gemm_f16;
    k->bf16 = gemm_bf16;
    k->q8_0 = gemm_q8_0;
    k->q4_0 = gemm_q4_0;
    k->q4_k = gemm_q4_k;
    k->q6_k = gemm_q6_k;
    k->q4_1 = gemm_q4_1;
    k->q5_0 = gemm_q5_0;
    k->q5_1 = gemm_q5_1;
    k->act_q8_0 = act_q8_0;
    k->act_q8_k = act_q8_k;
    k->act_round = act_round;
}

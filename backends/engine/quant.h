/*
 * quant.h - tensor element types: conversion, dequantisation and dot
 * products for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K (and Q4_1, Q5_0,
 * Q5_1).
 *
 * Owns: the block layouts of ggml's quantised types (as GGUF stores them),
 * scalar reference kernels and SIMD kernels (AVX2/FMA, AVX-512) chosen at
 * run time from the CPU's features, with a portable C fallback.
 *
 * The hot operation of the engine is quant_matmul: y = W x for a weight
 * matrix W of a stored type and F32 activations. Quantised types follow
 * llama.cpp's scheme of quantising the activations to 8 bits (Q8_0 for
 * Q4_0/Q8_0/Q5_0, Q8_1-like for Q4_1/Q5_1, Q8_K for the K-quants) before
 * the integer dot product, and rounding them to F16/BF16 for F16/BF16
 * weights, so results match llama.cpp's reference logits closely.
 */
#ifndef EMERGE_QUANT_H
#define EMERGE_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "backends/engine/gguf.h"

float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

/* 1 when emerge can compute with this stored type. */
int quant_supported(ggml_type t);

/* Dequantises row (n elements, n a multiple of the block size) to F32. */
void quant_dequantize_row(ggml_type t, const void *row, float *out, int64_t n);

/* Quantises n F32 values to type t (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
 * Q6_K, Q8_K, F16, BF16, F32); used by writers and tests. Returns bytes
 * written (0 for a type it cannot write). */
size_t quant_quantize_row(ggml_type t, const float *x, void *out, int64_t n);
/* The types quant_quantize_row writes, by the names --type and a member's
 * `type:` use (f32 f16 bf16 q8_0 q4_0 q4_k q6_k, any case): 0, or -1 for
 * another name. */
int quant_type_parse(const char *name, ggml_type *t);

/* Activations prepared once per input row for a weight type: the 8-bit
 * quantised copy quantised types need (or the F32/F16 view). The layout
 * of data is private to the quant module (backends/engine/quant_impl.h); one
 * prepared quant_act may serve several matrices of the same type and
 * width, and several threads at once (it is only read). */
typedef struct quant_act {
    ggml_type wtype;  /* weight type it was prepared for */
    int64_t n;        /* elements per row */
    int64_t rows;     /* number of activation rows (tokens) */
    void *data;       /* prepared activations, rows × row_bytes */
    size_t row_bytes;
    int packed;       /* data holds the SIMD kernels' packed layout
                       * (prompt-sized float products), not rows */
} quant_act;

void quant_act_prepare(quant_act *a, ggml_type wtype, const float *x,
                       int64_t rows, int64_t n);
/* quant_act_prepare in two steps, so that threads can share the second:
 * init allocates for rows x n (the data is not yet valid), fill prepares
 * rows [r0, r1) from x (which points at row 0, n floats a row). Fills of
 * disjoint row ranges may run at the same time; every row must be filled
 * before the activations are used. */
void quant_act_init(quant_act *a, ggml_type wtype, int64_t rows, int64_t n);
void quant_act_fill(quant_act *a, const float *x, int64_t r0, int64_t r1);
void quant_act_free(quant_act *a);

/* out[r*ld_out + i] = dot(W row i, activation row r) for rows i in
 * [i0, i1) of W (n_in columns, row stride from the type) and every
 * activation row r. Single-threaded; the engine splits i0..i1 across
 * threads. Each result depends only on W row i and activation row r:
 * not on how many activation rows the call multiplies, nor on i0/i1
 * (prefix-shared scoring relies on it; tests/test_quant.c checks it to
 * the bit). For quantised types it is also the same at every SIMD level. */
void quant_matmul_rows(ggml_type wtype, const void *w, int64_t n_in,
                       const quant_act *a, int64_t i0, int64_t i1,
                       float *out, int64_t ld_out);

/* quant_matmul_rows with W's rows stride bytes apart (at least a row's
 * size): the first n_in columns of a wider matrix. Same sums. */
void quant_matmul_rows_strided(ggml_type wtype, const void *w, int64_t n_in,
                               size_t stride, const quant_act *a, int64_t i0,
                               int64_t i1, float *out, int64_t ld_out);

/* Which kernel family runs ("avx512", "avx2", "scalar"); forced by
 * EMERGE_SIMD=scalar (or avx2) when set (tests compare them). The level
 * holds for every kernel: matmuls here, the others in quant_ops(). */
const char *quant_simd_name(void);

/* The forward pass's other kernels (ops.h) at the same level: one
 * dispatch, one EMERGE_SIMD, for matmuls and the rest. */
struct ops_kernels;
const struct ops_kernels *quant_ops(void);

/* Addition (quant owner): switches the kernel family for the whole
 * process: "avx512", "avx2", "scalar", or NULL for the best the CPU has.
 * Returns -1 (and changes nothing) when the CPU lacks it. For tests and
 * benchmarks; not to be called while a matmul runs on another thread. */
int quant_set_simd(const char *name);

#endif

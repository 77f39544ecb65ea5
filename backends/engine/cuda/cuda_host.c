/*
 * cuda_host.c - the device operations of cuda_engine.h emulated on the
 * CPU, for the tests of a machine without a GPU.
 *
 * Owns: cuda_host_ops. "Device memory" is malloc'd; every kernel is the
 * loop its CUDA version runs per thread, calling the same cuda_math.h
 * functions in the same order where the order decides rounding (F16
 * rounding of the query, K/V and GEMM inputs; the per-type choice between
 * the F32 decode GEMV and the F16 dequantise-then-GEMM path). Sums run
 * sequentially where the GPU reduces across threads, so the emulation
 * equals the GPU to float summation order, not bit for bit.
 */
#include "backends/engine/cuda/cuda_engine.h"

#include <stdlib.h>
#include <string.h>

#include "backends/engine/cuda/cuda_kernels.h"
#include "backends/engine/quant.h"

static void *h_alloc(void *ctx, size_t n) { (void)ctx; return calloc(1, n); }
static void h_free(void *ctx, void *p) { (void)ctx; free(p); }

static void h_copy(void *ctx, void *dst, const void *src, size_t n)
{
    (void)ctx;
    memcpy(dst, src, n);
}

/* The scratch sizes the engine reserved: the GPU's matmul would write
 * past its buffers if a product needed more, so the emulation checks it
 * and reports it at the next sync. ctx may be NULL (no checks). */
typedef struct host_ctx {
    int64_t w_elems, x_elems;
    char err[200];
} host_ctx;

static int h_sync(void *ctx, em_err *err)
{
    host_ctx *h = ctx;
    if (h && h->err[0]) {
        em_errorf(err, "cuda-host: %s", h->err);
        h->err[0] = '\0';
        return -1;
    }
    return 0;
}

static size_t h_mem_free(void *ctx) { (void)ctx; return (size_t)1 << 30; }

static int h_reserve(void *ctx, int64_t w, int64_t x, em_err *err)
{
    (void)err;
    host_ctx *h = ctx;
    if (h) {
        h->w_elems = w;
        h->x_elems = x;
    }
    return 0;
}

static void check_scratch(host_ctx *h, const cuda_wmat *w, int T, int uses_x,
                          int uses_w)
{
    if (!h || h->err[0])
        return;
    if ((uses_x && (int64_t)T * w->n_in > h->x_elems) ||
        (uses_w && w->n_in * w->n_out > h->w_elems))
        snprintf(h->err, sizeof h->err, "matmul of %d x %lld by %lld x %lld "
                 "exceeds the reserved scratch (%lld, %lld)", T,
                 (long long)w->n_in, (long long)w->n_out, (long long)w->n_in,
                 (long long)h->x_elems, (long long)h->w_elems);
}

/* The weight x activation product as cuda_gpu.c computes it: the GEMV
 * kernel's 32 lane slices for a few rows of quantised weights; otherwise
 * cuBLAS on activations rounded to the weight type (F16 for quantised
 * weights, which are first dequantised to F16). */
static void h_gemv(const cuda_wmat *w, const float *x, int T, float *out)
{
    int64_t rb = cuda_row_bytes(w->type, w->n_in);
    for (int64_t i = 0; i < w->n_out; i++) {
        float acc[CUDA_GEMV_MAX], sum[CUDA_GEMV_MAX] = {0};
        for (int lane = 0; lane < CUDA_WARP; lane++) {
            cuda_lane_gemv((const uint8_t *)w->d + rb * i, w->type, w->n_in, x,
                           T, lane, acc);
            for (int t = 0; t < T; t++)
                sum[t] += acc[t];
        }
        for (int t = 0; t < T; t++)
            out[(int64_t)t * w->n_out + i] = sum[t];
    }
}

static void h_matmul(void *ctx, const cuda_wmat *w, const float *x, int T,
                     float *out)
{
    int64_t n = w->n_in, rb = cuda_row_bytes(w->type, n);
    int dense = w->type == CUDA_T_F32 || w->type == CUDA_T_F16 ||
                w->type == CUDA_T_BF16;
    check_scratch(ctx, w, T, w->type != CUDA_T_F32 && (dense || T > CUDA_GEMV_MAX),
                  !dense && T > CUDA_GEMV_MAX);
    if (!dense && T <= CUDA_GEMV_MAX) {
        h_gemv(w, x, T, out);
        return;
    }
    int xt = w->type == CUDA_T_BF16 ? CUDA_T_BF16 : CUDA_T_F16;
    uint16_t *x16 = NULL, *w16 = NULL;
    float *wr = em_malloc(sizeof(float) * (size_t)n);
    float *xr = em_malloc(sizeof(float) * (size_t)(n * T));
    if (w->type != CUDA_T_F32) { /* the rounded copy cuBLAS reads */
        x16 = em_malloc(sizeof(uint16_t) * (size_t)(n * T));
        for (int64_t i = 0; i < n * T; i++) {
            cuda_body_round(i, x16, x, (int)n, (int)n, xt);
            xr[i] = xt == CUDA_T_BF16 ? cuda_bf16_to_f32(x16[i])
                                      : cuda_f16_to_f32(x16[i]);
        }
    } else {
        memcpy(xr, x, sizeof(float) * (size_t)(n * T));
    }
    if (!dense) { /* the dequantised F16 scratch */
        w16 = em_malloc(sizeof(uint16_t) * (size_t)(n * w->n_out));
        for (int64_t i = 0; i < n * w->n_out; i++)
            cuda_body_dequant_f16(i, w16, w->d, w->type, n);
    }
    for (int64_t i = 0; i < w->n_out; i++) {
        if (w16)
            for (int64_t e = 0; e < n; e++)
                wr[e] = cuda_f16_to_f32(w16[i * n + e]);
        else /* bit for bit cuda_deq's values (test_cuda_host checks) */
            quant_dequantize_row((ggml_type)w->type,
                                 (const uint8_t *)w->d + rb * i, wr, n);
        for (int t = 0; t < T; t++) {
            float s = 0.0f;
            for (int64_t e = 0; e < n; e++)
                s += wr[e] * xr[t * n + e];
            out[(int64_t)t * w->n_out + i] = s;
        }
    }
    free(x16);
    free(w16);
    free(wr);
    free(xr);
}

/* Element-wise kernels: every index through its cuda_body.h function. */
static void h_embed(float *x, const int32_t *tok, const int32_t *pos, int T,
                    int E, int te_type, const void *te, int pe_type,
                    const void *pe)
{
    for (int64_t i = 0; i < (int64_t)T * E; i++)
        cuda_body_embed(i, x, tok, pos, E, te_type, te, pe_type, pe);
}

/* One block of CUDA_BLOCK threads per row: per-thread partial sums, then
 * the block's total (the GPU adds them as a tree; here in thread order). */
static double block_sum(const float *xr, int E, float mean, int mean_pass)
{
    double s = 0;
    for (int th = 0; th < CUDA_BLOCK; th++)
        s += cuda_thread_norm_sum(xr, E, th, mean, mean_pass);
    return s;
}

static void h_norm(float *out, const float *x, int T, int E, const float *w,
                   const float *b, float eps, int rms)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * E;
        float mean = rms ? 0.0f : (float)(block_sum(xr, E, 0.0f, 1) / E);
        float scale = cuda_norm_scale(block_sum(xr, E, mean, 0), E, eps);
        for (int i = 0; i < E; i++)
            out[(size_t)t * E + i] = cuda_norm_apply(xr[i], mean, scale, w[i], b, i);
    }
}

static void h_bias(float *x, int T, int n, int ld, const float *b)
{
    for (int64_t i = 0; b && i < (int64_t)T * n; i++)
        cuda_body_bias(i, x, n, ld, b);
}

static void h_add(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

static void h_rope(float *x, int ld, const int32_t *pos, int T, int n_heads,
                   int hd, int n_rot, int neox, float theta_scale)
{
    for (int64_t i = 0; i < (int64_t)T * n_heads * (n_rot / 2); i++)
        cuda_body_rope(i, x, ld, pos, n_heads, hd, n_rot, neox, theta_scale);
}

static void h_kv_store(uint16_t *kc, uint16_t *vc, const float *k,
                       const float *v, int ld, int T, int kv_dim, int row0)
{
    for (int64_t i = 0; i < (int64_t)T * kv_dim; i++)
        cuda_body_kv_store(i, kc, vc, k, v, ld, kv_dim, row0);
}

/* One warp per (token, head), its 32 lanes run one after the other. */
static void h_attention(float *out, const float *q, int ld_q,
                        const uint16_t *kc, const uint16_t *vc,
                        const cuda_range *rng, int T, int n_head,
                        int n_head_kv, int hd, float scale)
{
    float qv[CUDA_WARP][CUDA_ATT_PER_LANE], acc[CUDA_WARP][CUDA_ATT_PER_LANE];
    int kv_dim = n_head_kv * hd;
    for (int64_t w = 0; w < (int64_t)T * n_head; w++) {
        int t, h, kvh;
        cuda_att_head(w, n_head, n_head_kv, &t, &h, &kvh);
        for (int lane = 0; lane < CUDA_WARP; lane++) {
            cuda_lane_att_query(q + (size_t)t * ld_q + (size_t)h * hd, hd, lane,
                                qv[lane]);
            memset(acc[lane], 0, sizeof acc[lane]);
        }
        /* pass 1: the online maximum and sum; pass 2: rounded weights */
        cuda_osm st;
        cuda_osm_init(&st);
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < cuda_range_len(&rng[t]); k++) {
                size_t row = (size_t)cuda_range_row(&rng[t], k) * kv_dim +
                             (size_t)kvh * hd;
                float s = 0.0f, corr, p;
                for (int lane = 0; lane < CUDA_WARP; lane++)
                    s += cuda_lane_att_dot(qv[lane], kc + row, hd, lane);
                if (pass == 0) {
                    cuda_osm_update(&st, s * scale, &corr, &p);
                    continue;
                }
                p = cuda_att_prob(s * scale, st.m, st.l);
                for (int lane = 0; lane < CUDA_WARP; lane++)
                    cuda_lane_att_acc(acc[lane], vc + row, hd, lane, 1.0f, p);
            }
        for (int lane = 0; lane < CUDA_WARP; lane++)
            cuda_lane_att_out(out + (size_t)t * n_head * hd + (size_t)h * hd,
                              acc[lane], hd, lane, 1.0f);
    }
}

static void h_gelu(float *x, int64_t n, const float *tab)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = cuda_gelu(tab, x[i]);
}

static void h_swiglu(float *g, const float *u, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        g[i] = cuda_swiglu(g[i], u[i]);
}

static void h_gather(float *out, const float *x, const int32_t *rows, int n,
                     int E)
{
    for (int64_t i = 0; i < (int64_t)n * E; i++)
        cuda_body_gather(i, out, x, rows, E);
}

/* One block per row: CUDA_BLOCK threads' partials merged. */
static void h_logsoftmax(const float *logits, int V, const int32_t *target,
                         int n, double *lp, int32_t *greedy)
{
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * V;
        cuda_lsm best, p;
        cuda_lsm_max(x, V, 0, CUDA_BLOCK, &best);
        for (int th = 1; th < CUDA_BLOCK; th++) {
            cuda_lsm_max(x, V, th, CUDA_BLOCK, &p);
            cuda_lsm_max_merge(&best, &p);
        }
        double s = 0;
        for (int th = 0; th < CUDA_BLOCK; th++)
            s += cuda_lsm_sum(x, V, th, CUDA_BLOCK, best.mx);
        lp[i] = cuda_lsm_logprob(x[target[i]], best.mx, s);
        greedy[i] = best.arg == target[i];
    }
}

const cuda_ops cuda_host_ops = {
    "cuda-host", NULL, h_alloc, h_free, h_copy, h_copy, h_sync, h_mem_free,
    h_matmul, h_reserve, h_embed, h_norm, h_bias, h_add, h_rope, h_kv_store,
    h_attention, h_gelu, h_swiglu, h_gather, h_logsoftmax,
};

cuda_ops *cuda_host_ops_build(void)
{
    cuda_ops *o = em_malloc(sizeof *o);
    *o = cuda_host_ops;
    o->ctx = em_calloc(1, sizeof(host_ctx));
    return o;
}

void cuda_host_ops_free(cuda_ops *o)
{
    if (!o)
        return;
    free(o->ctx);
    free(o);
}

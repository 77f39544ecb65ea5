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
#include "backends/cuda/cuda_engine.h"

#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_kernels.h"
#include "backends/quant.h"

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

/* The activation value the GPU's GEMM sees for weights of type t with T
 * rows (cuda_gpu.c: cuBLAS on F16/BF16 inputs, the F32 GEMV for a few
 * quantised rows, F16 inputs after dequantisation otherwise). */
static float act_value(int t, int T, float x)
{
    switch (t) {
    case CUDA_T_F32: return x;
    case CUDA_T_F16: return cuda_round_f16(x);
    case CUDA_T_BF16: return cuda_round_bf16(x);
    default: return T <= CUDA_GEMV_MAX ? x : cuda_round_f16(x);
    }
}

static void h_matmul(void *ctx, const cuda_wmat *w, const float *x, int T,
                     float *out)
{
    int64_t n = w->n_in, rb = cuda_row_bytes(w->type, n);
    int gemv = w->type != CUDA_T_F32 && w->type != CUDA_T_F16 &&
               w->type != CUDA_T_BF16 && T <= CUDA_GEMV_MAX;
    int quant_f16 = w->type != CUDA_T_F32 && w->type != CUDA_T_F16 &&
                    w->type != CUDA_T_BF16 && !gemv;
    check_scratch(ctx, w, T, w->type != CUDA_T_F32 && !gemv, quant_f16);
    float *wr = em_malloc(sizeof(float) * (size_t)n);
    float *xr = em_malloc(sizeof(float) * (size_t)(n * T));
    for (int64_t i = 0; i < n * T; i++)
        xr[i] = act_value(w->type, T, x[i]);
    for (int64_t i = 0; i < w->n_out; i++) {
        /* quant_dequantize_row gives cuda_deq's values bit for bit
         * (test_cuda_host checks every type) and is much faster. */
        quant_dequantize_row((ggml_type)w->type, (const uint8_t *)w->d + rb * i,
                             wr, n);
        for (int64_t e = 0; quant_f16 && e < n; e++)
            wr[e] = cuda_round_f16(wr[e]);
        for (int t = 0; t < T; t++) {
            float s = 0.0f;
            for (int64_t e = 0; e < n; e++)
                s += wr[e] * xr[t * n + e];
            out[(int64_t)t * w->n_out + i] = s;
        }
    }
    free(wr);
    free(xr);
}

static void h_embed(float *x, const int32_t *tok, const int32_t *pos, int T,
                    int E, int te_type, const void *te, int pe_type,
                    const void *pe)
{
    for (int t = 0; t < T; t++) {
        const uint8_t *row = (const uint8_t *)te + cuda_row_bytes(te_type, E) * tok[t];
        const uint8_t *prow = pe ? (const uint8_t *)pe +
                                   cuda_row_bytes(pe_type, E) * pos[t] : NULL;
        for (int i = 0; i < E; i++) {
            float v = cuda_deq(te_type, row, i);
            if (prow)
                v += cuda_deq(pe_type, prow, i);
            x[(size_t)t * E + i] = v;
        }
    }
}

static void h_norm(float *out, const float *x, int T, int E, const float *w,
                   const float *b, float eps, int rms)
{
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * E;
        float mean = 0.0f;
        if (!rms) {
            double s = 0;
            for (int i = 0; i < E; i++)
                s += xr[i];
            mean = (float)(s / E);
        }
        double ss = 0;
        for (int i = 0; i < E; i++) {
            float d = xr[i] - mean;
            ss += (double)(d * d);
        }
        float scale = cuda_norm_scale(ss, E, eps);
        for (int i = 0; i < E; i++)
            out[(size_t)t * E + i] = cuda_norm_apply(xr[i], mean, scale, w[i], b, i);
    }
}

static void h_bias(float *x, int T, int n, int ld, const float *b)
{
    if (!b)
        return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            x[(size_t)t * ld + i] += b[i];
}

static void h_add(float *x, const float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        x[i] += y[i];
}

static void h_rope(float *x, int ld, const int32_t *pos, int T, int n_heads,
                   int hd, int n_rot, int neox, float theta_scale)
{
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_heads; h++)
            for (int i = 0; i < n_rot / 2; i++) {
                float theta = cuda_rope_theta(pos[t], i, theta_scale);
                float *v = x + (size_t)t * ld + (size_t)h * hd;
                int a, b;
                cuda_rope_pair(i, n_rot, neox, &a, &b);
                cuda_rope_rotate(&v[a], &v[b], cosf(theta), sinf(theta));
            }
}

static void h_kv_store(uint16_t *kc, uint16_t *vc, const float *k,
                       const float *v, int ld, int T, int kv_dim, int row0)
{
    for (int t = 0; t < T; t++)
        for (int d = 0; d < kv_dim; d++) {
            size_t dst = (size_t)(row0 + t) * kv_dim + d;
            kc[dst] = cuda_f32_to_f16(k[(size_t)t * ld + d]);
            vc[dst] = cuda_f32_to_f16(v[(size_t)t * ld + d]);
        }
}

static void h_attention(float *out, const float *q, int ld_q,
                        const uint16_t *kc, const uint16_t *vc,
                        const cuda_range *rng, int T, int n_head,
                        int n_head_kv, int hd, float scale)
{
    float *qv = em_malloc(sizeof(float) * (size_t)hd);
    float *acc = em_malloc(sizeof(float) * (size_t)hd);
    int kv_dim = n_head_kv * hd;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < n_head; h++) {
            int kvh = h / (n_head / n_head_kv);
            const float *qr = q + (size_t)t * ld_q + (size_t)h * hd;
            for (int d = 0; d < hd; d++) {
                qv[d] = cuda_round_f16(qr[d]);
                acc[d] = 0.0f;
            }
            cuda_osm st;
            cuda_osm_init(&st);
            for (int k = 0; k < cuda_range_len(&rng[t]); k++) {
                size_t row = (size_t)cuda_range_row(&rng[t], k) * kv_dim +
                             (size_t)kvh * hd;
                float s = 0.0f, corr, p;
                for (int d = 0; d < hd; d++)
                    s += qv[d] * cuda_f16_to_f32(kc[row + d]);
                cuda_osm_update(&st, s * scale, &corr, &p);
                for (int d = 0; d < hd; d++)
                    acc[d] = acc[d] * corr + p * cuda_f16_to_f32(vc[row + d]);
            }
            float *o = out + (size_t)t * n_head * hd + (size_t)h * hd;
            for (int d = 0; d < hd; d++)
                o[d] = st.l > 0.0f ? acc[d] / st.l : 0.0f;
        }
    free(qv);
    free(acc);
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
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * E, x + (size_t)rows[i] * E,
               sizeof(float) * (size_t)E);
}

static void h_logsoftmax(const float *logits, int V, const int32_t *target,
                         int n, double *lp, int32_t *greedy)
{
    for (int i = 0; i < n; i++) {
        const float *x = logits + (size_t)i * V;
        cuda_lsm p;
        cuda_lsm_max(x, V, 0, 1, &p);
        double s = cuda_lsm_sum(x, V, 0, 1, p.mx);
        lp[i] = cuda_lsm_logprob(x[target[i]], p.mx, s);
        greedy[i] = p.arg == target[i];
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

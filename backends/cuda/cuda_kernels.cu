/*
 * cuda_kernels.cu - the CUDA kernels of the forward pass and their
 * launchers (see cuda_kernels.h).
 *
 * The arithmetic comes from cuda_math.h, which the host tests run on the
 * CPU; what is here is indexing of threads and the reductions. Kernels
 * favour simplicity over the last factor of speed: element-wise
 * dequantisation (consecutive lanes read consecutive bytes, so loads
 * coalesce and the block header is an L1 hit), one warp per output row
 * in the decode GEMV, one warp per (token, head) in attention. Dense
 * products of prompt processing go to cuBLAS (cuda_engine.c).
 */
#include "backends/cuda/cuda_kernels.h"

#include <cuda_runtime.h>

#define WARP 32

static inline int cdiv(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

__device__ static inline float warp_sum(float v)
{
    for (int o = WARP / 2; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ static inline double warp_sum_d(double v)
{
    for (int o = WARP / 2; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Sum over a block of up to 1024 threads (blockDim a multiple of 32). */
__device__ static double block_sum_d(double v, double *sh)
{
    int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
    v = warp_sum_d(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    int nw = blockDim.x / WARP;
    v = threadIdx.x < nw ? sh[threadIdx.x] : 0.0;
    if (w == 0)
        v = warp_sum_d(v);
    if (threadIdx.x == 0)
        sh[0] = v;
    __syncthreads();
    return sh[0];
}

/* ---------------------------------------------------------------- embed */

__global__ static void k_embed(float *x, const int32_t *tok, const int32_t *pos,
                               int E, int te_type, const uint8_t *te,
                               int pe_type, const uint8_t *pe)
{
    int t = blockIdx.x;
    const uint8_t *row = te + cuda_row_bytes(te_type, E) * tok[t];
    const uint8_t *prow = pe ? pe + cuda_row_bytes(pe_type, E) * pos[t] : NULL;
    for (int i = threadIdx.x; i < E; i += blockDim.x) {
        float v = cuda_deq(te_type, row, i);
        if (prow)
            v += cuda_deq(pe_type, prow, i);
        x[(size_t)t * E + i] = v;
    }
}

extern "C" void cuda_k_embed(float *x, const int32_t *tok, const int32_t *pos,
                             int T, int E, int te_type, const void *te,
                             int pe_type, const void *pe)
{
    k_embed<<<T, 256>>>(x, tok, pos, E, te_type, (const uint8_t *)te, pe_type,
                        (const uint8_t *)pe);
}

/* ---------------------------------------------------------------- norms */

/* One block per row: sums in double as the CPU engine does. */
__global__ static void k_norm(float *out, const float *x, int E, const float *w,
                              const float *b, float eps, int rms)
{
    __shared__ double sh[32];
    const float *xr = x + (size_t)blockIdx.x * E;
    float *o = out + (size_t)blockIdx.x * E;
    float mean = 0.0f;
    if (!rms) {
        double s = 0;
        for (int i = threadIdx.x; i < E; i += blockDim.x)
            s += xr[i];
        mean = (float)(block_sum_d(s, sh) / E);
    }
    double ss = 0;
    for (int i = threadIdx.x; i < E; i += blockDim.x) {
        float d = xr[i] - mean;
        ss += (double)(d * d);
    }
    float scale = cuda_norm_scale(block_sum_d(ss, sh), E, eps);
    for (int i = threadIdx.x; i < E; i += blockDim.x)
        o[i] = cuda_norm_apply(xr[i], mean, scale, w[i], b, i);
}

extern "C" void cuda_k_norm(float *out, const float *x, int T, int E,
                            const float *w, const float *b, float eps, int rms)
{
    k_norm<<<T, 256>>>(out, x, E, w, b, eps, rms);
}

/* ------------------------------------------------ conversion, dequant */

__global__ static void k_round(uint16_t *out, const float *x, int T, int n,
                               int ld, int type)
{
    int64_t total = (int64_t)T * n;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[(i / n) * ld + i % n];
        out[i] = type == CUDA_T_BF16 ? cuda_f32_to_bf16(v) : cuda_f32_to_f16(v);
    }
}

extern "C" void cuda_k_round(uint16_t *out, const float *x, int T, int n,
                             int ld, int type)
{
    int64_t total = (int64_t)T * n;
    int blocks = cdiv(total, 256);
    k_round<<<blocks < 65535 ? blocks : 65535, 256>>>(out, x, T, n, ld, type);
}

__global__ static void k_dequant_f16(uint16_t *out, const uint8_t *w, int type,
                                     int64_t n_in, int64_t n_out)
{
    int64_t rb = cuda_row_bytes(type, n_in), total = n_in * n_out;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        out[i] = cuda_f32_to_f16(cuda_deq(type, w + rb * (i / n_in), i % n_in));
}

extern "C" void cuda_k_dequant_f16(uint16_t *out, const void *w, int type,
                                   int64_t n_in, int64_t n_out)
{
    int blocks = cdiv(n_in * n_out, 256);
    k_dequant_f16<<<blocks < 65535 ? blocks : 65535, 256>>>(
        out, (const uint8_t *)w, type, n_in, n_out);
}

/* ------------------------------------------------------------------ GEMV */

/* One warp per weight row: each lane dequantises elements lane, lane+32,
 * ... once and multiplies them into all T activation rows. */
__global__ static void k_gemv(float *out, const uint8_t *w, int type,
                              int64_t n_in, int64_t n_out, const float *x,
                              int T)
{
    int64_t i = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (i >= n_out)
        return;
    const uint8_t *row = w + cuda_row_bytes(type, n_in) * i;
    float acc[CUDA_GEMV_MAX];
    for (int t = 0; t < CUDA_GEMV_MAX; t++)
        acc[t] = 0.0f;
    for (int64_t e = lane; e < n_in; e += WARP) {
        float wv = cuda_deq(type, row, e);
        for (int t = 0; t < CUDA_GEMV_MAX; t++)
            if (t < T)
                acc[t] += wv * x[t * n_in + e];
    }
    for (int t = 0; t < T; t++) {
        float s = warp_sum(acc[t]);
        if (lane == 0)
            out[(int64_t)t * n_out + i] = s;
    }
}

extern "C" void cuda_k_gemv(float *out, const void *w, int type, int64_t n_in,
                            int64_t n_out, const float *x, int T)
{
    const int rows = 8; /* warps per block */
    k_gemv<<<cdiv(n_out, rows), rows * WARP>>>(out, (const uint8_t *)w, type,
                                               n_in, n_out, x, T);
}

/* ----------------------------------------------------- element-wise ops */

__global__ static void k_bias(float *x, int T, int n, int ld, const float *b)
{
    int64_t total = (int64_t)T * n;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        x[(i / n) * ld + i % n] += b[i % n];
}

extern "C" void cuda_k_bias(float *x, int T, int n, int ld, const float *b)
{
    if (!b)
        return;
    int blocks = cdiv((int64_t)T * n, 256);
    k_bias<<<blocks < 65535 ? blocks : 65535, 256>>>(x, T, n, ld, b);
}

__global__ static void k_add(float *x, const float *y, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] += y[i];
}

extern "C" void cuda_k_add(float *x, const float *y, int64_t n)
{
    int blocks = cdiv(n, 256);
    k_add<<<blocks < 65535 ? blocks : 65535, 256>>>(x, y, n);
}

__global__ static void k_gelu(float *x, int64_t n, const float *tab)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        x[i] = cuda_gelu(tab, x[i]);
}

extern "C" void cuda_k_gelu(float *x, int64_t n, const float *tab)
{
    int blocks = cdiv(n, 256);
    k_gelu<<<blocks < 65535 ? blocks : 65535, 256>>>(x, n, tab);
}

__global__ static void k_swiglu(float *g, const float *u, int64_t n)
{
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        g[i] = cuda_swiglu(g[i], u[i]);
}

extern "C" void cuda_k_swiglu(float *g, const float *u, int64_t n)
{
    int blocks = cdiv(n, 256);
    k_swiglu<<<blocks < 65535 ? blocks : 65535, 256>>>(g, u, n);
}

__global__ static void k_gather(float *out, const float *x, const int32_t *rows,
                                int E)
{
    const float *src = x + (size_t)rows[blockIdx.x] * E;
    for (int i = threadIdx.x; i < E; i += blockDim.x)
        out[(size_t)blockIdx.x * E + i] = src[i];
}

extern "C" void cuda_k_gather(float *out, const float *x, const int32_t *rows,
                              int n, int E)
{
    if (n > 0)
        k_gather<<<n, 256>>>(out, x, rows, E);
}

/* ----------------------------------------------------------------- RoPE */

/* One thread per (row, head, pair). */
__global__ static void k_rope(float *x, int ld, const int32_t *pos, int T,
                              int n_heads, int hd, int n_rot, int neox,
                              float theta_scale)
{
    int half = n_rot / 2;
    int64_t total = (int64_t)T * n_heads * half;
    for (int64_t idx = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
         idx < total; idx += (int64_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half), h = (int)(idx / half % n_heads);
        int t = (int)(idx / half / n_heads), a, b;
        float theta = cuda_rope_theta(pos[t], i, theta_scale);
        float *v = x + (int64_t)t * ld + (int64_t)h * hd;
        cuda_rope_pair(i, n_rot, neox, &a, &b);
        cuda_rope_rotate(&v[a], &v[b], cosf(theta), sinf(theta));
    }
}

extern "C" void cuda_k_rope(float *x, int ld, const int32_t *pos, int T,
                            int n_heads, int hd, int n_rot, int neox,
                            float theta_scale)
{
    int blocks = cdiv((int64_t)T * n_heads * (n_rot / 2), 256);
    if (blocks > 0)
        k_rope<<<blocks < 65535 ? blocks : 65535, 256>>>(
            x, ld, pos, T, n_heads, hd, n_rot, neox, theta_scale);
}

/* ------------------------------------------------------------- KV cache */

__global__ static void k_kv_store(uint16_t *kc, uint16_t *vc, const float *k,
                                  const float *v, int ld, int T, int kv_dim,
                                  int row0)
{
    int64_t total = (int64_t)T * kv_dim;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = i / kv_dim, d = i % kv_dim;
        int64_t dst = (row0 + t) * kv_dim + d;
        kc[dst] = cuda_f32_to_f16(k[t * ld + d]);
        vc[dst] = cuda_f32_to_f16(v[t * ld + d]);
    }
}

extern "C" void cuda_k_kv_store(uint16_t *kc, uint16_t *vc, const float *k,
                                const float *v, int ld, int T, int kv_dim,
                                int row0)
{
    int blocks = cdiv((int64_t)T * kv_dim, 256);
    k_kv_store<<<blocks < 65535 ? blocks : 65535, 256>>>(kc, vc, k, v, ld, T,
                                                         kv_dim, row0);
}

/* ------------------------------------------------------------ attention */

#define ATT_MAX_PER_LANE 8 /* head_dim <= 256 */

/* One warp per (token, head): lane l owns dims l, l+32, ... of the query
 * (rounded to F16 like the CPU's F16 attention product) and of the
 * output accumulator; each visible position costs one warp reduction. */
__global__ static void k_attention(float *out, const float *q, int ld_q,
                                   const uint16_t *kc, const uint16_t *vc,
                                   const cuda_range *rng, int T, int n_head,
                                   int n_head_kv, int hd, float scale)
{
    int64_t w = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (w >= (int64_t)T * n_head)
        return;
    int t = (int)(w / n_head), h = (int)(w % n_head);
    int kvh = h / (n_head / n_head_kv), kv_dim = n_head_kv * hd;
    const float *qr = q + (int64_t)t * ld_q + (int64_t)h * hd;
    float qv[ATT_MAX_PER_LANE], acc[ATT_MAX_PER_LANE];
    for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
        int d = lane + WARP * j;
        qv[j] = d < hd ? cuda_round_f16(qr[d]) : 0.0f;
        acc[j] = 0.0f;
    }
    cuda_range r = rng[t];
    cuda_osm st;
    cuda_osm_init(&st);
    int n = cuda_range_len(&r);
    for (int k = 0; k < n; k++) {
        int64_t row = (int64_t)cuda_range_row(&r, k) * kv_dim + (int64_t)kvh * hd;
        float s = 0.0f;
        for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
            int d = lane + WARP * j;
            if (d < hd)
                s += qv[j] * cuda_f16_to_f32(kc[row + d]);
        }
        s = warp_sum(s) * scale;
        float corr, p;
        cuda_osm_update(&st, s, &corr, &p);
        for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
            int d = lane + WARP * j;
            if (d < hd)
                acc[j] = acc[j] * corr + p * cuda_f16_to_f32(vc[row + d]);
        }
    }
    float *o = out + (int64_t)t * n_head * hd + (int64_t)h * hd;
    for (int j = 0; j < ATT_MAX_PER_LANE; j++) {
        int d = lane + WARP * j;
        if (d < hd)
            o[d] = st.l > 0.0f ? acc[j] / st.l : 0.0f;
    }
}

extern "C" void cuda_k_attention(float *out, const float *q, int ld_q,
                                 const uint16_t *kc, const uint16_t *vc,
                                 const cuda_range *rng, int T, int n_head,
                                 int n_head_kv, int hd, float scale)
{
    const int warps = 4;
    k_attention<<<cdiv((int64_t)T * n_head, warps), warps * WARP>>>(
        out, q, ld_q, kc, vc, rng, T, n_head, n_head_kv, hd, scale);
}

/* ---------------------------------------------------------- log-softmax */

__global__ static void k_logsoftmax(const float *logits, int V,
                                    const int32_t *target, double *lp,
                                    int32_t *greedy)
{
    __shared__ cuda_lsm sh[1024 / WARP];
    __shared__ double shd[32];
    const float *x = logits + (size_t)blockIdx.x * V;
    cuda_lsm p;
    cuda_lsm_max(x, V, threadIdx.x, blockDim.x, &p);
    for (int o = WARP / 2; o > 0; o /= 2) {
        cuda_lsm q;
        q.mx = __shfl_xor_sync(0xffffffffu, p.mx, o);
        q.arg = __shfl_xor_sync(0xffffffffu, p.arg, o);
        q.sum = 0;
        cuda_lsm_max_merge(&p, &q);
    }
    if (threadIdx.x % WARP == 0)
        sh[threadIdx.x / WARP] = p;
    __syncthreads();
    if (threadIdx.x == 0)
        for (int w = 1; w < (int)blockDim.x / WARP; w++)
            cuda_lsm_max_merge(&sh[0], &sh[w]);
    __syncthreads();
    cuda_lsm best = sh[0];
    double s = block_sum_d(cuda_lsm_sum(x, V, threadIdx.x, blockDim.x, best.mx),
                           shd);
    if (threadIdx.x == 0) {
        int32_t tg = target[blockIdx.x];
        lp[blockIdx.x] = cuda_lsm_logprob(x[tg], best.mx, s);
        greedy[blockIdx.x] = best.arg == tg;
    }
}

extern "C" void cuda_k_logsoftmax(const float *logits, int V,
                                  const int32_t *target, int n, double *lp,
                                  int32_t *greedy)
{
    if (n > 0)
        k_logsoftmax<<<n, 256>>>(logits, V, target, lp, greedy);
}

/*
 * cuda_kernels.cu - the CUDA kernels of the forward pass and their
 * launchers (see cuda_kernels.h).
 *
 * What each thread computes is in cuda_body.h and cuda_math.h, which the
 * host tests run on the CPU; what is here is the launch configuration,
 * grid-stride loops and the warp/block reductions. Kernels favour
 * simplicity over the last factor of speed: element-wise dequantisation
 * (consecutive lanes read consecutive bytes, so loads coalesce and the
 * block header is an L1 hit), one warp per output row in the decode GEMV,
 * one warp per (token, head) in attention. Dense products of prompt
 * processing go to cuBLAS (cuda_gpu.c).
 */
#include "backends/engine/cuda/cuda_kernels.h"

#include <cuda_runtime.h>

#define WARP CUDA_WARP
#define MAX_GRID 65535

static inline int cdiv(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

/* Blocks of 256 for a grid-stride loop over n elements. */
static inline int grid_for(int64_t n)
{
    int b = cdiv(n, 256);
    return b < MAX_GRID ? b : MAX_GRID;
}

#define GRID_STRIDE(i, n)                                                    \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)gridDim.x * blockDim.x)

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

/* Sum over a block (blockDim a multiple of 32, at most 1024). */
__device__ static double block_sum_d(double v, double *sh)
{
    int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
    v = warp_sum_d(v);
    __syncthreads(); /* sh may still be read by a previous call */
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    int nw = blockDim.x / WARP;
    v = (int)threadIdx.x < nw ? sh[threadIdx.x] : 0.0;
    if (w == 0)
        v = warp_sum_d(v);
    if (threadIdx.x == 0)
        sh[0] = v;
    __syncthreads();
    return sh[0];
}

/* ------------------------------------------------- element-wise kernels */

__global__ static void k_embed(int64_t n, float *x, const int32_t *tok,
                               const int32_t *pos, int E, int te_type,
                               const uint8_t *te, int pe_type, const uint8_t *pe)
{
    GRID_STRIDE(i, n)
        cuda_body_embed(i, x, tok, pos, E, te_type, te, pe_type, pe);
}

extern "C" void cuda_k_embed(float *x, const int32_t *tok, const int32_t *pos,
                             int T, int E, int te_type, const void *te,
                             int pe_type, const void *pe)
{
    int64_t n = (int64_t)T * E;
    k_embed<<<grid_for(n), 256>>>(n, x, tok, pos, E, te_type,
                                  (const uint8_t *)te, pe_type,
                                  (const uint8_t *)pe);
}

__global__ static void k_round(int64_t n, uint16_t *out, const float *x,
                               int cols, int ld, int type)
{
    GRID_STRIDE(i, n)
        cuda_body_round(i, out, x, cols, ld, type);
}

extern "C" void cuda_k_round(uint16_t *out, const float *x, int T, int n,
                             int ld, int type)
{
    int64_t total = (int64_t)T * n;
    k_round<<<grid_for(total), 256>>>(total, out, x, n, ld, type);
}

__global__ static void k_dequant_f16(int64_t n, uint16_t *out, const uint8_t *w,
                                     int type, int64_t n_in)
{
    GRID_STRIDE(i, n)
        cuda_body_dequant_f16(i, out, w, type, n_in);
}

extern "C" void cuda_k_dequant_f16(uint16_t *out, const void *w, int type,
                                   int64_t n_in, int64_t n_out)
{
    int64_t n = n_in * n_out;
    k_dequant_f16<<<grid_for(n), 256>>>(n, out, (const uint8_t *)w, type, n_in);
}

__global__ static void k_bias(int64_t n, float *x, int cols, int ld,
                              const float *b)
{
    GRID_STRIDE(i, n)
        cuda_body_bias(i, x, cols, ld, b);
}

extern "C" void cuda_k_bias(float *x, int T, int n, int ld, const float *b)
{
    if (!b)
        return;
    int64_t total = (int64_t)T * n;
    k_bias<<<grid_for(total), 256>>>(total, x, n, ld, b);
}

__global__ static void k_add(int64_t n, float *x, const float *y)
{
    GRID_STRIDE(i, n)
        x[i] += y[i];
}

extern "C" void cuda_k_add(float *x, const float *y, int64_t n)
{
    k_add<<<grid_for(n), 256>>>(n, x, y);
}

__global__ static void k_gelu(int64_t n, float *x, const float *tab)
{
    GRID_STRIDE(i, n)
        x[i] = cuda_gelu(tab, x[i]);
}

extern "C" void cuda_k_gelu(float *x, int64_t n, const float *tab)
{
    k_gelu<<<grid_for(n), 256>>>(n, x, tab);
}

__global__ static void k_swiglu(int64_t n, float *g, const float *u)
{
    GRID_STRIDE(i, n)
        g[i] = cuda_swiglu(g[i], u[i]);
}

extern "C" void cuda_k_swiglu(float *g, const float *u, int64_t n)
{
    k_swiglu<<<grid_for(n), 256>>>(n, g, u);
}

__global__ static void k_gather(int64_t n, float *out, const float *x,
                                const int32_t *rows, int E)
{
    GRID_STRIDE(i, n)
        cuda_body_gather(i, out, x, rows, E);
}

extern "C" void cuda_k_gather(float *out, const float *x, const int32_t *rows,
                              int n, int E)
{
    int64_t total = (int64_t)n * E;
    if (total > 0)
        k_gather<<<grid_for(total), 256>>>(total, out, x, rows, E);
}

__global__ static void k_rope(int64_t n, float *x, int ld, const int32_t *pos,
                              int n_heads, int hd, int n_rot, int neox,
                              float theta_scale)
{
    GRID_STRIDE(i, n)
        cuda_body_rope(i, x, ld, pos, n_heads, hd, n_rot, neox, theta_scale);
}

extern "C" void cuda_k_rope(float *x, int ld, const int32_t *pos, int T,
                            int n_heads, int hd, int n_rot, int neox,
                            float theta_scale)
{
    int64_t n = (int64_t)T * n_heads * (n_rot / 2);
    if (n > 0)
        k_rope<<<grid_for(n), 256>>>(n, x, ld, pos, n_heads, hd, n_rot, neox,
                                     theta_scale);
}

__global__ static void k_kv_store(int64_t n, uint16_t *kc, uint16_t *vc,
                                  const float *k, const float *v, int ld,
                                  int kv_dim, int row0)
{
    GRID_STRIDE(i, n)
        cuda_body_kv_store(i, kc, vc, k, v, ld, kv_dim, row0);
}

extern "C" void cuda_k_kv_store(uint16_t *kc, uint16_t *vc, const float *k,
                                const float *v, int ld, int T, int kv_dim,
                                int row0)
{
    int64_t n = (int64_t)T * kv_dim;
    k_kv_store<<<grid_for(n), 256>>>(n, kc, vc, k, v, ld, kv_dim, row0);
}

/* ---------------------------------------------------------------- norms */

/* One block of CUDA_BLOCK threads per row. */
__global__ static void k_norm(float *out, const float *x, int E, const float *w,
                              const float *b, float eps, int rms)
{
    __shared__ double sh[32];
    const float *xr = x + (size_t)blockIdx.x * E;
    float *o = out + (size_t)blockIdx.x * E;
    float mean = 0.0f;
    if (!rms)
        mean = (float)(block_sum_d(cuda_thread_norm_sum(xr, E, threadIdx.x,
                                                        0.0f, 1), sh) / E);
    double ss = block_sum_d(cuda_thread_norm_sum(xr, E, threadIdx.x, mean, 0),
                            sh);
    float scale = cuda_norm_scale(ss, E, eps);
    for (int i = threadIdx.x; i < E; i += blockDim.x)
        o[i] = cuda_norm_apply(xr[i], mean, scale, w[i], b, i);
}

extern "C" void cuda_k_norm(float *out, const float *x, int T, int E,
                            const float *w, const float *b, float eps, int rms)
{
    k_norm<<<T, CUDA_BLOCK>>>(out, x, E, w, b, eps, rms);
}

/* ------------------------------------------------------------------ GEMV */

/* One warp per weight row; each lane's slice in cuda_lane_gemv. */
__global__ static void k_gemv(float *out, const uint8_t *w, int type,
                              int64_t n_in, int64_t n_out, const float *x,
                              int T)
{
    int64_t i = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP;
    if (i >= n_out) /* the whole warp leaves together */
        return;
    float acc[CUDA_GEMV_MAX];
    cuda_lane_gemv(w + cuda_row_bytes(type, n_in) * i, type, n_in, x, T, lane,
                   acc);
    for (int t = 0; t < CUDA_GEMV_MAX; t++) { /* static indices: registers */
        if (t >= T)
            break;
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

/* ------------------------------------------------------------ attention */

/* One warp per (token, head) over the visible rows: an online-softmax
 * pass for the maximum and the normaliser, then a pass that weights V by
 * the F16-rounded probabilities (the CPU engine's numerics; the second
 * pass re-reads K, which costs about a third more than one pass). */
__global__ static void k_attention(float *out, const float *q, int ld_q,
                                   const uint16_t *kc, const uint16_t *vc,
                                   const cuda_range *rng, int T, int n_head,
                                   int n_head_kv, int hd, float scale)
{
    int64_t w = (int64_t)blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    int lane = threadIdx.x % WARP, t, h, kvh;
    if (w >= (int64_t)T * n_head) /* the whole warp leaves together */
        return;
    cuda_att_head(w, n_head, n_head_kv, &t, &h, &kvh);
    int kv_dim = n_head_kv * hd;
    float qv[CUDA_ATT_PER_LANE], acc[CUDA_ATT_PER_LANE];
    cuda_lane_att_query(q + (int64_t)t * ld_q + (int64_t)h * hd, hd, lane, qv);
    for (int j = 0; j < CUDA_ATT_PER_LANE; j++)
        acc[j] = 0.0f;
    cuda_range r = rng[t];
    cuda_osm st;
    cuda_osm_init(&st);
    int n = cuda_range_len(&r);
    /* pass 1: online maximum and sum (every lane gets the same sums) */
    for (int k = 0; k < n; k++) {
        int64_t row = (int64_t)cuda_range_row(&r, k) * kv_dim + (int64_t)kvh * hd;
        float s = warp_sum(cuda_lane_att_dot(qv, kc + row, hd, lane)) * scale;
        float corr, p;
        cuda_osm_update(&st, s, &corr, &p);
    }
    /* pass 2: weights rounded to F16 as the CPU engine rounds them */
    for (int k = 0; k < n; k++) {
        int64_t row = (int64_t)cuda_range_row(&r, k) * kv_dim + (int64_t)kvh * hd;
        float s = warp_sum(cuda_lane_att_dot(qv, kc + row, hd, lane)) * scale;
        cuda_lane_att_acc(acc, vc + row, hd, lane, 1.0f,
                          cuda_att_prob(s, st.m, st.l));
    }
    cuda_lane_att_out(out + (int64_t)t * n_head * hd + (int64_t)h * hd, acc, hd,
                      lane, 1.0f);
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

/* One block of CUDA_BLOCK threads per scored row. */
__global__ static void k_logsoftmax(const float *logits, int V,
                                    const int32_t *target, double *lp,
                                    int32_t *greedy)
{
    __shared__ cuda_lsm sh[CUDA_BLOCK / WARP];
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
        k_logsoftmax<<<n, CUDA_BLOCK>>>(logits, V, target, lp, greedy);
}

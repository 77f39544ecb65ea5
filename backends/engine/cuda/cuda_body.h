/*
 * cuda_body.h - what one GPU thread (or one lane) of each kernel does,
 * as __host__ __device__ functions of the thread's index.
 *
 * Owns: the index arithmetic of the kernels - which element a flat index
 * names, which strided slice a lane or thread sums - separate from the
 * launch configuration. cuda_kernels.cu calls these from grid-stride
 * loops and warp/block reductions; cuda_host.c calls the same functions
 * for every index (and every lane of a 32-lane warp, every thread of a
 * 256-thread block) on the CPU, so the host tests run the kernels'
 * indexing too and only the launch syntax and the shuffles are left
 * unexercised without a GPU.
 */
#ifndef EMERGE_CUDA_BODY_H
#define EMERGE_CUDA_BODY_H

#include "backends/engine/cuda/cuda_math.h"

#define CUDA_WARP 32        /* lanes that reduce together */
#define CUDA_BLOCK 256      /* threads of the row-reduction kernels */
#define CUDA_GEMV_MAX 8     /* rows the GEMV kernel takes (decode) */
#define CUDA_ATT_PER_LANE 8 /* head_dim <= 32 * 8 */

/* ------------------------------------------------- element-wise bodies */

/* Element idx of T x E embeddings: token row plus learned position. */
CUDA_HD void cuda_body_embed(int64_t idx, float *x, const int32_t *tok,
                             const int32_t *pos, int E, int te_type,
                             const uint8_t *te, int pe_type, const uint8_t *pe)
{
    int64_t t = idx / E, i = idx % E;
    float v = cuda_deq(te_type, te + cuda_row_bytes(te_type, E) * tok[t], i);
    if (pe)
        v += cuda_deq(pe_type, pe + cuda_row_bytes(pe_type, E) * pos[t], i);
    x[idx] = v;
}

/* Element idx of T x n rows (source stride ld) to packed F16/BF16. */
CUDA_HD void cuda_body_round(int64_t idx, uint16_t *out, const float *x,
                             int n, int ld, int type)
{
    float v = x[(idx / n) * ld + idx % n];
    out[idx] = type == CUDA_T_BF16 ? cuda_f32_to_bf16(v) : cuda_f32_to_f16(v);
}

/* Element idx of a weight matrix dequantised to F16. */
CUDA_HD void cuda_body_dequant_f16(int64_t idx, uint16_t *out,
                                   const uint8_t *w, int type, int64_t n_in)
{
    const uint8_t *row = w + cuda_row_bytes(type, n_in) * (idx / n_in);
    out[idx] = cuda_f32_to_f16(cuda_deq(type, row, idx % n_in));
}

CUDA_HD void cuda_body_bias(int64_t idx, float *x, int n, int ld,
                            const float *b)
{
    x[(idx / n) * ld + idx % n] += b[idx % n];
}

/* Pair idx of T rows x n_heads heads x n_rot/2 pairs. */
CUDA_HD void cuda_body_rope(int64_t idx, float *x, int ld, const int32_t *pos,
                            int n_heads, int hd, int n_rot, int neox,
                            float theta_scale)
{
    int half = n_rot / 2, a, b;
    int i = (int)(idx % half), h = (int)(idx / half % n_heads);
    int64_t t = idx / half / n_heads;
    float theta = cuda_rope_theta(pos[t], i, theta_scale);
    float *v = x + t * ld + (int64_t)h * hd;
    cuda_rope_pair(i, n_rot, neox, &a, &b);
    cuda_rope_rotate(&v[a], &v[b], cosf(theta), sinf(theta));
}

/* Element idx of T x kv_dim K and V rows into the F16 cache at row0.. */
CUDA_HD void cuda_body_kv_store(int64_t idx, uint16_t *kc, uint16_t *vc,
                                const float *k, const float *v, int ld,
                                int kv_dim, int row0)
{
    int64_t t = idx / kv_dim, d = idx % kv_dim;
    int64_t dst = (row0 + t) * kv_dim + d;
    kc[dst] = cuda_f32_to_f16(k[t * ld + d]);
    vc[dst] = cuda_f32_to_f16(v[t * ld + d]);
}

CUDA_HD void cuda_body_gather(int64_t idx, float *out, const float *x,
                              const int32_t *rows, int E)
{
    out[idx] = x[(int64_t)rows[idx / E] * E + idx % E];
}

/* ------------------------------------------------ per-lane partials */

/* Lane `lane` of the GEMV warp for weight row `row` of a quantised type
 * (n_in a multiple of 32): its share of the dot products with the T
 * activation rows (acc[0..T)), eight consecutive elements at a time so
 * a block header is decoded once per eight and the warp reads 256
 * consecutive elements per step. */
CUDA_HD void cuda_lane_gemv(const uint8_t *row, int type, int64_t n_in,
                            const float *x, int T, int lane, float *acc)
{
    for (int t = 0; t < CUDA_GEMV_MAX; t++)
        acc[t] = 0.0f;
    for (int64_t e0 = 8 * lane; e0 < n_in; e0 += 8 * CUDA_WARP) {
        float wv[8];
        cuda_deq8(type, row, e0, wv);
        for (int t = 0; t < CUDA_GEMV_MAX; t++)
            if (t < T)
                for (int i = 0; i < 8; i++)
                    acc[t] += wv[i] * x[t * n_in + e0 + i];
    }
}

/* Thread `th` of a norm block: its share of sum(x) (mean_pass) or of
 * sum((x - mean)^2), in double as the CPU engine sums. */
CUDA_HD double cuda_thread_norm_sum(const float *x, int E, int th,
                                    float mean, int mean_pass)
{
    double s = 0;
    for (int i = th; i < E; i += CUDA_BLOCK) {
        if (mean_pass) {
            s += x[i];
        } else {
            float d = x[i] - mean;
            s += (double)(d * d);
        }
    }
    return s;
}

/* Which (token, head) warp w of the attention kernel serves, and the
 * KV head it reads (grouped-query attention). */
CUDA_HD void cuda_att_head(int64_t w, int n_head, int n_head_kv, int *t,
                           int *h, int *kvh)
{
    *t = (int)(w / n_head);
    *h = (int)(w % n_head);
    *kvh = *h / (n_head / n_head_kv);
}

/* Lane `lane`'s query slice (F16-rounded), dims lane + 32 j. */
CUDA_HD void cuda_lane_att_query(const float *qr, int hd, int lane, float *qv)
{
    for (int j = 0; j < CUDA_ATT_PER_LANE; j++) {
        int d = lane + CUDA_WARP * j;
        qv[j] = d < hd ? cuda_round_f16(qr[d]) : 0.0f;
    }
}

/* Lane's share of q . K[row]. */
CUDA_HD float cuda_lane_att_dot(const float *qv, const uint16_t *kr, int hd,
                                int lane)
{
    float s = 0.0f;
    for (int j = 0; j < CUDA_ATT_PER_LANE; j++) {
        int d = lane + CUDA_WARP * j;
        if (d < hd)
            s += qv[j] * cuda_f16_to_f32(kr[d]);
    }
    return s;
}

/* acc = acc * corr + p * V[row] on the lane's dims. */
CUDA_HD void cuda_lane_att_acc(float *acc, const uint16_t *vr, int hd,
                               int lane, float corr, float p)
{
    for (int j = 0; j < CUDA_ATT_PER_LANE; j++) {
        int d = lane + CUDA_WARP * j;
        if (d < hd)
            acc[j] = acc[j] * corr + p * cuda_f16_to_f32(vr[d]);
    }
}

CUDA_HD void cuda_lane_att_out(float *o, const float *acc, int hd, int lane,
                               float l)
{
    for (int j = 0; j < CUDA_ATT_PER_LANE; j++) {
        int d = lane + CUDA_WARP * j;
        if (d < hd)
            o[d] = l > 0.0f ? acc[j] / l : 0.0f;
    }
}

#endif

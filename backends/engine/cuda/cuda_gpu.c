/*
 * cuda_gpu.c - the device operations of cuda_engine.h on an NVIDIA GPU
 * and the device list: the C part of the plugin libemerge_cuda.so.
 *
 * Owns: a device context (device index, cuBLAS handle, the scratch of
 * dequantised weights and rounded activations for cuBLAS), cuda_ops
 * filled with cudart copies and the kernels of cuda_kernels.cu, and the
 * choice of GEMM per weight type:
 *   F32        cublasGemmEx, F32 inputs, F32 compute (no TF32);
 *   F16/BF16   activations rounded to the weight type (as the CPU engine
 *              rounds them), cublasGemmEx with F32 accumulation;
 *   quantised  up to CUDA_GEMV_MAX rows (decode): the GEMV kernel reads
 *              the blocks directly; more rows (prompts, scoring batches):
 *              the matrix is dequantised to F16 scratch, then GEMM.
 * Built only into the plugin (with cuda_kernels.cu and a private copy of
 * base/common.c) when the Makefile finds nvcc; its one exported symbol
 * is emerge_cuda_plugin (cuda_plugin.h), everything else is hidden. The
 * registered "cuda" backend lives in cuda_load.c and reaches this file
 * only through that table.
 *
 * Errors: cudart calls that only enqueue work record the first failure;
 * sync() reports it with the device's error string, so one check per
 * batch covers every launch before it.
 */
#include "backends/engine/cuda/cuda_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "backends/engine/cuda/cuda_kernels.h"

typedef struct gpu_ctx {
    int device;
    cublasHandle_t blas;
    uint16_t *wscr, *xscr;
    char first_err[256];
} gpu_ctx;

static void note(gpu_ctx *g, const char *what, const char *msg)
{
    if (!g->first_err[0])
        snprintf(g->first_err, sizeof g->first_err, "%s: %s", what, msg);
}

static void check_rt(gpu_ctx *g, cudaError_t rc, const char *what)
{
    if (rc != cudaSuccess)
        note(g, what, cudaGetErrorString(rc));
}

static void check_blas(gpu_ctx *g, cublasStatus_t rc, const char *what)
{
    if (rc != CUBLAS_STATUS_SUCCESS)
        note(g, what, cublasGetStatusString(rc));
}

static void *g_alloc(void *ctx, size_t n)
{
    gpu_ctx *g = ctx;
    void *p = NULL;
    cudaSetDevice(g->device);
    if (cudaMalloc(&p, n) != cudaSuccess) {
        cudaGetLastError(); /* an allocation failure is not sticky */
        return NULL;
    }
    return p;
}

static void g_free(void *ctx, void *p)
{
    (void)ctx;
    cudaFree(p);
}

static void g_upload(void *ctx, void *dst, const void *src, size_t n)
{
    gpu_ctx *g = ctx;
    cudaSetDevice(g->device);
    check_rt(g, cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice), "upload");
}

static void g_download(void *ctx, void *dst, const void *src, size_t n)
{
    gpu_ctx *g = ctx;
    check_rt(g, cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost), "download");
}

static int g_sync(void *ctx, em_err *err)
{
    gpu_ctx *g = ctx;
    check_rt(g, cudaDeviceSynchronize(), "kernel");
    check_rt(g, cudaGetLastError(), "launch");
    if (g->first_err[0]) {
        em_errorf(err, "cuda:%d: %s", g->device, g->first_err);
        g->first_err[0] = '\0';
        return -1;
    }
    return 0;
}

static size_t g_mem_free(void *ctx)
{
    gpu_ctx *g = ctx;
    size_t fr = 0, total = 0;
    cudaSetDevice(g->device);
    if (cudaMemGetInfo(&fr, &total) != cudaSuccess)
        return 0;
    return fr;
}

static int g_reserve(void *ctx, int64_t w_elems, int64_t x_elems, em_err *err)
{
    gpu_ctx *g = ctx;
    cudaFree(g->wscr);
    cudaFree(g->xscr);
    g->wscr = g->xscr = NULL;
    if (!(g->wscr = g_alloc(g, 2 * (size_t)w_elems)) ||
        !(g->xscr = g_alloc(g, 2 * (size_t)x_elems)))
        return em_errorf(err, "cuda:%d: cannot allocate GEMM scratch of %lld "
                         "+ %lld halves", g->device, (long long)w_elems,
                         (long long)x_elems);
    return 0;
}

/* out (T x n_out, row-major) = x (T x n_in) W^T: in cuBLAS's column-major
 * terms out^T (n_out x T) = W' (n_out x n_in, stored as n_in x n_out) x'. */
static void gemm(gpu_ctx *g, cudaDataType t, const void *w, const void *x,
                 int64_t n_in, int64_t n_out, int T, float *out)
{
    const float one = 1.0f, zero = 0.0f;
    check_blas(g, cublasGemmEx(g->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_out,
                               T, (int)n_in, &one, w, t, (int)n_in, x, t,
                               (int)n_in, &zero, out, CUDA_R_32F, (int)n_out,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

static void g_matmul(void *ctx, const cuda_wmat *w, const float *x, int T,
                     float *out)
{
    gpu_ctx *g = ctx;
    int n = (int)w->n_in;
    switch (w->type) {
    case CUDA_T_F32:
        gemm(g, CUDA_R_32F, w->d, x, w->n_in, w->n_out, T, out);
        return;
    case CUDA_T_F16:
    case CUDA_T_BF16:
        cuda_k_round(g->xscr, x, T, n, n, w->type);
        gemm(g, w->type == CUDA_T_F16 ? CUDA_R_16F : CUDA_R_16BF, w->d,
             g->xscr, w->n_in, w->n_out, T, out);
        return;
    default:
        if (T <= CUDA_GEMV_MAX) {
            cuda_k_gemv(out, w->d, w->type, w->n_in, w->n_out, x, T);
            return;
        }
        cuda_k_dequant_f16(g->wscr, w->d, w->type, w->n_in, w->n_out);
        cuda_k_round(g->xscr, x, T, n, n, CUDA_T_F16);
        gemm(g, CUDA_R_16F, g->wscr, g->xscr, w->n_in, w->n_out, T, out);
    }
}

static void gpu_ops_free(cuda_ops *o)
{
    if (!o)
        return;
    gpu_ctx *g = o->ctx;
    if (g) {
        cudaSetDevice(g->device);
        cudaFree(g->wscr);
        cudaFree(g->xscr);
        if (g->blas)
            cublasDestroy(g->blas);
        free(g);
    }
    free(o);
}

/* ---------------------------------------------------------------- devices */

static int gpu_device_count(const char **why)
{
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        cudaGetLastError();
        if (why)
            *why = cudaGetErrorString(rc);
        return 0;
    }
    if (why)
        *why = n ? NULL : "no CUDA device";
    return n;
}

static int gpu_device_get(int i, cuda_device_info *info, em_err *err)
{
    struct cudaDeviceProp p;
    cudaError_t rc = cudaGetDeviceProperties(&p, i);
    if (rc != cudaSuccess)
        return em_errorf(err, "cuda:%d: %s", i, cudaGetErrorString(rc));
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->mem_total = p.totalGlobalMem;
    info->sms = p.multiProcessorCount;
    int clk = 0, bus = 0; /* kHz, bits; double data rate */
    if (cudaDeviceGetAttribute(&clk, cudaDevAttrMemoryClockRate, i) == cudaSuccess &&
        cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, i) == cudaSuccess)
        info->mem_bw = 2.0 * clk * 1e3 * bus / 8.0;
    int prev = 0;
    size_t fr = 0, total = 0;
    cudaGetDevice(&prev);
    if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&fr, &total) == cudaSuccess)
        info->mem_free = fr;
    cudaSetDevice(prev);
    cudaGetLastError();
    return 0;
}

static int gpu_ops_build(int dev, cuda_ops **out, em_err *err)
{
    const char *why = NULL;
    int n = gpu_device_count(&why);
    if (dev >= n)
        return n ? em_errorf(err, "device cuda:%d does not exist (%d CUDA "
                             "device%s)", dev, n, n == 1 ? "" : "s")
                 : em_errorf(err, "no CUDA device: %s", why);
    if (cudaSetDevice(dev) != cudaSuccess)
        return em_errorf(err, "cuda:%d: %s", dev,
                         cudaGetErrorString(cudaGetLastError()));
    gpu_ctx *g = em_calloc(1, sizeof *g);
    g->device = dev;
    cuda_ops *o = em_malloc(sizeof *o);
    *o = (cuda_ops){
        .name = "cuda", .ctx = g, .alloc = g_alloc, .free = g_free,
        .upload = g_upload, .download = g_download, .sync = g_sync,
        .mem_free = g_mem_free, .matmul = g_matmul,
        .matmul_reserve = g_reserve, .embed = cuda_k_embed,
        .norm = cuda_k_norm, .bias = cuda_k_bias, .add = cuda_k_add,
        .rope = cuda_k_rope, .kv_store = cuda_k_kv_store,
        .attention = cuda_k_attention, .gelu = cuda_k_gelu,
        .swiglu = cuda_k_swiglu, .gather = cuda_k_gather,
        .logsoftmax = cuda_k_logsoftmax,
    };
    cublasStatus_t bs = cublasCreate(&g->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        g->blas = NULL;
        gpu_ops_free(o);
        return em_errorf(err, "cuda:%d: cublasCreate: %s", dev,
                         cublasGetStatusString(bs));
    }
    *out = o;
    return 0;
}

/* ------------------------------------------------------------ benchmark */

static double gpu_gemm_seconds(cuda_ops *o, int f32, int64_t n_in,
                               int64_t n_out, int T)
{
    gpu_ctx *g = o->ctx;
    size_t es = f32 ? 4 : 2;
    void *w = g_alloc(g, es * (size_t)(n_in * n_out));
    void *x = g_alloc(g, es * (size_t)n_in * (size_t)T);
    void *y = g_alloc(g, 4 * (size_t)n_out * (size_t)T);
    double best = -1;
    if (w && x && y) {
        cudaMemset(w, 0, es * (size_t)(n_in * n_out));
        cudaMemset(x, 0, es * (size_t)n_in * (size_t)T);
        for (int rep = 0; rep < 6; rep++) {
            cudaDeviceSynchronize();
            double t0 = em_now();
            gemm(g, f32 ? CUDA_R_32F : CUDA_R_16F, w, x, n_in, n_out, T, y);
            cudaDeviceSynchronize();
            double dt = em_now() - t0;
            if (rep > 0 && (best < 0 || dt < best)) /* rep 0 warms cuBLAS */
                best = dt;
        }
    }
    cudaFree(w);
    cudaFree(x);
    cudaFree(y);
    if (g->first_err[0]) { /* a failed GEMM has no meaningful time */
        g->first_err[0] = '\0';
        return -1;
    }
    return best;
}

/* --------------------------------------------------------------- entry */

static const cuda_plugin plugin = {
    .abi = CUDA_PLUGIN_ABI,
    .ops_size = sizeof(cuda_ops),
    .err_size = sizeof(em_err),
    .info_size = sizeof(cuda_device_info),
    .device_count = gpu_device_count,
    .device_get = gpu_device_get,
    .ops_build = gpu_ops_build,
    .ops_free = gpu_ops_free,
    .gemm_seconds = gpu_gemm_seconds,
};

__attribute__((visibility("default")))
const cuda_plugin *emerge_cuda_plugin(int abi_version);

const cuda_plugin *emerge_cuda_plugin(int abi_version)
{
    return abi_version == CUDA_PLUGIN_ABI ? &plugin : NULL;
}

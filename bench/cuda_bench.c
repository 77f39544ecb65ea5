/*
 * cuda_bench.c - `make bench-cuda`: speed of the cuda backend's engine.
 *
 * For random-weight llama models written by `emerge mkmodel` (default
 * the 134M shape of tools/bench.sh: n_embd 768, 12 layers, n_ff 2048,
 * vocab 32000; --big: a 1.1B shape, n_embd 2048, 22 layers, n_ff 5632)
 * in F16, Q8_0, Q4_0 and Q4_K, prints:
 *   prompt   tokens/s of one 512-token sequence through the forward pass,
 *            achieved TFLOP/s of its matrix products, and that as a
 *            fraction of cuBLAS's own GEMM (F16 inputs, F32 accumulate;
 *            F32 for F32 models) timed alone at the same shapes;
 *   decode   tokens/s of 128 single-token steps (logits row to the host
 *            each step, as generation does) and the weight bytes read per
 *            second as a fraction of the GPU's peak memory bandwidth.
 * The GPU, cuBLAS included, is reached only through the plugin
 * libemerge_cuda.so (this program links nothing of CUDA). Without the
 * plugin or a device it says so and exits 0. --emulate runs
 * the same measurement code on the CPU emulation of the device (tiny
 * models; no cuBLAS or bandwidth figures) so the benchmark itself is
 * checked on machines without a GPU.
 *
 * usage: cuda_bench [--emulate] [--big] [--device N] [--emerge PATH]
 *                   [--dir DIR] [model.gguf ...]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

#include "backends/cuda_backend.h"
#include "backends/engine/cuda/cuda_engine.h"

typedef struct bench_opts {
    int big, device, emulate;
    const char *emerge, *dir;
} bench_opts;

/* cuBLAS time (through the plugin, on ops's device) and FLOPs of every
 * layer matrix of m at T rows; *secs 0 when a GEMM could not be timed. */
static void gemm_reference(cuda_ops *ops, const model *m, int T, double *secs,
                           double *flops)
{
    *secs = *flops = 0;
    const model_layer *l = &m->layers[0];
    const model_mat *w[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate,
                            &l->w_up, &l->w_down};
    int f32 = l->wq.type == GGML_F32;
    for (int k = 0; k < 7; k++) {
        if (!w[k]->data)
            continue;
        double t = cuda_gemm_seconds(ops, f32, w[k]->n_in, w[k]->n_out, T);
        if (t < 0) {
            *secs = 0;
            return;
        }
        *secs += t * m->hp.n_layer;
        *flops += 2.0 * (double)w[k]->n_in * (double)w[k]->n_out * T *
                  m->hp.n_layer;
    }
}

static double weight_bytes(const model *m)
{
    double b = (double)m->output.row_bytes * (double)m->output.n_out;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_mat *w[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate,
                                &l->w_up, &l->w_down};
        for (int k = 0; k < 7; k++)
            b += (double)w[k]->row_bytes * (double)w[k]->n_out;
    }
    return b;
}

/* The device operations to measure: the GPU, or its CPU emulation. */
static int bench_ops(const bench_opts *bo, cuda_ops **ops, em_err *err)
{
    if (bo->emulate) {
        *ops = cuda_host_ops_build();
        return 0;
    }
    return cuda_gpu_ops_build(bo->device, ops, err);
}

static void bench_ops_free(const bench_opts *bo, cuda_ops *ops)
{
    if (bo->emulate || !ops) {
        cuda_host_ops_free(ops);
        return;
    }
    cuda_gpu_ops_free(ops);
}

static int bench_model(const char *path, const bench_opts *bo, double peak_bw)
{
    em_err err;
    model_opts mo = {0};
    mo.n_threads = 1;
    mo.n_batch = 1;
    mo.n_ctx = 1024;
    model *m = NULL;
    cuda_ops *ops = NULL;
    cuda_engine *e = NULL;
    cuda_batch b = {0};
    int rc = -1;
    if (model_build(path, &mo, &m, &err) || bench_ops(bo, &ops, &err) ||
        cuda_engine_build(m, ops, 0, &e, &err)) {
        fprintf(stderr, "bench-cuda: %s: %s\n", path, err.msg);
        goto done;
    }
    int PP = bo->emulate ? 32 : 512, TG = bo->emulate ? 8 : 128;
    int32_t *toks = em_malloc(sizeof(int32_t) * (PP + TG + 16));
    for (int i = 0; i < PP + TG + 16; i++)
        toks[i] = 1 + (i * 7919) % (m->hp.n_vocab - 1);
    /* prompt: one 512-token sequence */
    double pp = 1e30;
    for (int rep = 0; rep < 4; rep++) {
        cuda_batch_reset(&b);
        cuda_plan_sequence(&b, toks, PP, 0);
        double t0 = em_now();
        if (cuda_engine_forward(e, &b, 0, &err))
            goto fail;
        double dt = em_now() - t0;
        if (rep > 0 && dt < pp)
            pp = dt;
    }
    /* decode: 16-token prompt, then single tokens with their logits */
    float *lg = em_malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    cuda_batch_reset(&b);
    cuda_plan_sequence(&b, toks, 16, 0);
    if (cuda_engine_forward(e, &b, 0, &err))
        goto fail_lg;
    double t0 = em_now();
    for (int i = 16; i < 16 + TG; i++) {
        cuda_batch_reset(&b);
        cuda_plan_sequence(&b, toks + i, 1, i);
        if (cuda_engine_forward(e, &b, i, &err) ||
            cuda_engine_logits(e, 0, lg, &err))
            goto fail_lg;
    }
    double tg = (em_now() - t0) / TG;
    double ref_s = 0, flops = 0;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_mat *w[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate,
                                &l->w_up, &l->w_down};
        for (int k = 0; k < 7; k++)
            flops += 2.0 * (double)w[k]->n_in * (double)w[k]->n_out * PP;
    }
    if (!bo->emulate)
        gemm_reference(ops, m, PP, &ref_s, &flops);
    double bw = weight_bytes(m) / tg;
    const char *slash = strrchr(path, '/');
    printf("%-24s prompt %8.0f tok/s  %7.2f TFLOP/s", slash ? slash + 1 : path,
           PP / pp, flops / pp / 1e12);
    if (ref_s > 0)
        printf(" = %4.0f%% of cuBLAS (%.1f)", 100 * ref_s / pp,
               flops / ref_s / 1e12);
    printf("   decode %7.1f tok/s  %7.2f GB/s", 1 / tg, bw / 1e9);
    if (peak_bw > 0)
        printf(" = %4.1f%% of peak", 100 * bw / peak_bw);
    printf("\n");
    rc = 0;
fail_lg:
    free(lg);
fail:
    if (rc)
        fprintf(stderr, "bench-cuda: %s: %s\n", path, err.msg);
    free(toks);
done:
    cuda_batch_free(&b);
    cuda_engine_free(e);
    bench_ops_free(bo, ops);
    model_free(m);
    return rc;
}

/* Writes dir/cuda-<shape>-<type>.gguf with emerge mkmodel if missing. */
static char *make_model(const bench_opts *bo, const char *type)
{
    em_buf p = {0}, cmd = {0};
    const char *shape = bo->emulate ? "tiny" : bo->big ? "1b" : "134m";
    em_buf_printf(&p, "%s/cuda-%s-%s.gguf", bo->dir, shape, type);
    FILE *f = fopen(p.s, "rb");
    if (f) {
        fclose(f);
        return em_buf_take(&p);
    }
    em_buf_printf(&cmd, "mkdir -p '%s' && '%s' mkmodel -o '%s' --type %s %s "
                  ">/dev/null", bo->dir, bo->emerge, p.s, type,
                  bo->emulate ? "--n-embd 256 --n-layer 2 --n-head 4 "
                                "--n-ff 512 --n-vocab 1000 --ctx 256" :
                  bo->big ? "--n-embd 2048 --n-layer 22 --n-head 32 "
                            "--n-head-kv 4 --n-ff 5632" : "");
    int rc = system(cmd.s);
    em_buf_free(&cmd);
    if (rc != 0) {
        fprintf(stderr, "bench-cuda: emerge mkmodel --type %s failed\n", type);
        em_buf_free(&p);
        return NULL;
    }
    return em_buf_take(&p);
}

/* The device's name and peak bandwidth line; 1 when there is nothing to
 * measure (said why), -1 on error. */
static int describe_device(const bench_opts *bo, double *peak_bw)
{
    *peak_bw = 0;
    if (bo->emulate) {
        printf("bench-cuda: CPU emulation of the device (checks the benchmark "
               "code; figures are not GPU figures)\n");
        return 0;
    }
    const char *why = NULL;
    int n = cuda_device_count(&why);
    if (bo->device >= n) {
        printf("bench-cuda: no CUDA device %d (%s); nothing to measure\n",
               bo->device, why ? why : "fewer devices");
        return 1;
    }
    cuda_device_info dev;
    em_err err;
    if (cuda_device_get(bo->device, &dev, &err)) {
        fprintf(stderr, "bench-cuda: %s\n", err.msg);
        return -1;
    }
    printf("bench-cuda: cuda:%d %s, sm_%d%d, %.0f GB/s peak memory bandwidth\n",
           bo->device, dev.name, dev.cc_major, dev.cc_minor, dev.mem_bw / 1e9);
    *peak_bw = dev.mem_bw;
    return 0;
}

int main(int argc, char **argv)
{
    bench_opts bo = {0, 0, 0, "./emerge", "build/bench"};
    int first_model = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--big"))
            bo.big = 1;
        else if (!strcmp(argv[i], "--emulate"))
            bo.emulate = 1;
        else if (!strcmp(argv[i], "--device") && i + 1 < argc)
            bo.device = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--emerge") && i + 1 < argc)
            bo.emerge = argv[++i];
        else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            bo.dir = argv[++i];
        else {
            first_model = i;
            break;
        }
    }
    double peak;
    int d = describe_device(&bo, &peak);
    if (d != 0)
        return d > 0 ? 0 : 1;
    int fails = 0;
    if (first_model < argc) {
        for (int i = first_model; i < argc; i++)
            fails += bench_model(argv[i], &bo, peak) != 0;
        return fails ? 1 : 0;
    }
    const char *types[] = {"f16", "q8_0", "q4_0", "q4_k"};
    for (int t = 0; t < 4; t++) {
        char *path = make_model(&bo, types[t]);
        fails += !path || bench_model(path, &bo, peak) != 0;
        free(path);
    }
    return fails ? 1 : 0;
}

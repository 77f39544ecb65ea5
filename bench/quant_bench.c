/*
 * quant_bench.c - single-thread speed of quant_matmul_rows per weight
 * type: GEMV (1 activation row, decode) and GEMM (256 rows, prompt
 * processing) for 768x768 and 2048x768 weight matrices, scalar against
 * the best SIMD level. Activation preparation (the 8-bit quantisation)
 * is inside the timed region, as it is in llama.cpp's mul_mat.
 *
 * Prints GFLOP/s (2 * rows * m * n per second) and, for GEMV, the weight
 * bytes streamed per second. Time is the thread's CPU time: the machines
 * this runs on are shared, and CPU time measures the kernel rather than
 * the neighbours (wall-clock figures are lower on a loaded machine).
 * Usage: quant_bench [min_seconds_per_case [type]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/gguf.h"
#include "backends/quant.h"
#include "harness/common.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    double gflops, gbs;
} result;

static result bench_case(ggml_type t, int64_t m, int64_t n, int64_t rows,
                         const float *wf, const float *x, double min_s)
{
    size_t stride = ggml_type_size(t, n);
    char *w = malloc(stride * m);
    for (int64_t i = 0; i < m; i++)
        quant_quantize_row(t, wf + i * n, w + i * stride, n);
    float *out = malloc((size_t)(rows * m) * sizeof *out);
    int iters = 0;
    double t0 = cpu_now(), el;
    do {
        quant_act a;
        quant_act_prepare(&a, t, x, rows, n);
        quant_matmul_rows(t, w, n, &a, 0, m, out, m);
        quant_act_free(&a);
        iters++;
        el = cpu_now() - t0;
    } while (el < min_s);
    result r;
    r.gflops = 2.0 * rows * m * n * iters / el / 1e9;
    r.gbs = (double)stride * m * iters / el / 1e9;
    free(w);
    free(out);
    return r;
}

int main(int argc, char **argv)
{
    double min_s = argc > 1 ? atof(argv[1]) : 0.3;
    const char *only = argc > 2 ? argv[2] : NULL;
    static const ggml_type types[] = {GGML_F32, GGML_F16, GGML_BF16,
        GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_Q6_K, GGML_Q4_1, GGML_Q5_0,
        GGML_Q5_1};
    static const int64_t shapes[][2] = {{768, 768}, {2048, 768}};
    static const int64_t rows_list[] = {1, 256};
    /* The best level, or the one EMERGE_SIMD names. */
    const char *best = quant_simd_name();
    printf("quant_bench: single thread (thread CPU time), SIMD level %s; act preparation included\n",
           best);
    printf("%-5s %-9s %5s %10s %10s %10s %10s %7s\n", "type", "m x n", "rows",
           "simd GF/s", "simd GB/s", "scal GF/s", "scal GB/s", "ratio");
    uint64_t st = 1;
    float *wf = malloc(2048 * 768 * sizeof *wf);
    float *x = malloc(256 * 2048 * sizeof *x);
    for (int i = 0; i < 2048 * 768; i++)
        wf[i] = (float)(em_rand01(&st) - 0.5) * 0.1f;
    for (int i = 0; i < 256 * 2048; i++)
        x[i] = (float)(em_rand01(&st) - 0.5);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (int s = 0; s < 2; s++)
            for (int ri = 0; ri < 2; ri++) {
                ggml_type t = types[ti];
                if (only && strcmp(only, ggml_type_name(t)))
                    continue;
                int64_t m = shapes[s][0], n = shapes[s][1], rows = rows_list[ri];
                quant_set_simd(best);
                result v = bench_case(t, m, n, rows, wf, x, min_s);
                quant_set_simd("scalar");
                /* The scalar GEMM is slow: one pass is enough for a ratio. */
                result sc = bench_case(t, m, n, rows, wf, x, rows > 1 ? 0 : min_s);
                printf("%-5s %4lldx%-4lld %5lld %10.1f %10.2f %10.2f %10.2f %6.1fx\n",
                       ggml_type_name(t), (long long)m, (long long)n,
                       (long long)rows, v.gflops, rows == 1 ? v.gbs : 0.0,
                       sc.gflops, rows == 1 ? sc.gbs : 0.0, v.gflops / sc.gflops);
                fflush(stdout);
            }
    quant_set_simd(NULL);
    free(wf);
    free(x);
    return 0;
}

/*
 * quant_bench.c - speed of quant_matmul_rows per weight type, at the best
 * SIMD level (or the one EMERGE_SIMD names):
 *
 *  1. ceiling: streaming-read bandwidth (an AVX-512 / AVX2 sum over a
 *     256 MiB float array, the size of the GEMV working set below) with
 *     1 and 2 threads: what a memory-bound kernel can reach on this
 *     machine, measured in the same run. (Machines with a large L3 hold
 *     part of it there: the ceiling and the GEMV figures alike.)
 *  2. GEMV (one activation row: decode) at the 134M llama's shapes
 *     (768x768, 2048x768, 768x2048, 32000x768; rows x columns of W) with
 *     1 and 2 threads: GB/s of weight bytes and the fraction of the
 *     ceiling. Each call reads a different copy of the matrix (copies
 *     filling 256 MiB), so the weights come from memory as in decode,
 *     not from a cache that holds one small matrix.
 *  3. GEMM (256 activation rows: prompt processing), 2048x768, single
 *     thread: GFLOP/s (2 * rows * m * n per second).
 *
 * Activation preparation (the 8-bit quantisation) is inside the timed
 * region, as in llama.cpp's mul_mat. Times are CPU time (with two
 * threads, the busier thread's CPU time inside the kernel): the machines
 * this runs on are shared and wall-clock time mostly measures the
 * neighbours. Still compare figures from one run only, and read `uptime`.
 * Usage: quant_bench [min_seconds_per_case [type]]
 */
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/engine/gguf.h"
#include "backends/engine/quant.h"
#include "base/common.h"

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- a second thread that runs one job per generation ---- */

typedef struct {
    void (*fn)(void *arg, int ith, int nth);
    void *arg;
    atomic_int gen, done, quit;
    double busy[2];   /* each thread's CPU time inside fn */
} helper;

static void timed(helper *h, int ith, int nth)
{
    double t0 = cpu_now();
    h->fn(h->arg, ith, nth);
    h->busy[ith] += cpu_now() - t0;
}

static void *helper_main(void *p)
{
    helper *h = p;
    int seen = 0;
    for (;;) {
        int g;
        while ((g = atomic_load(&h->gen)) == seen && !atomic_load(&h->quit))
            _mm_pause();
        if (atomic_load(&h->quit))
            return NULL;
        seen = g;
        timed(h, 1, 2);
        atomic_store(&h->done, g);
    }
}

/* fn(arg, ith, nth) on nth (1 or 2) threads; returns when all are done. */
static void run_on(helper *h, int nth, void (*fn)(void *, int, int), void *arg)
{
    h->fn = fn;
    h->arg = arg;
    if (nth == 1) {
        timed(h, 0, 1);
        return;
    }
    int g = atomic_load(&h->gen) + 1;
    atomic_store(&h->gen, g);
    timed(h, 0, 2);
    while (atomic_load(&h->done) != g)
        sched_yield();
}

/* The time a run took: the busier thread's CPU time (on a shared machine
 * wall-clock time mostly measures the neighbours). */
static double busy_time(const helper *h)
{
    return h->busy[0] > h->busy[1] ? h->busy[0] : h->busy[1];
}

/* ---- 1. streaming read ---- */

typedef struct {
    const float *a;
    size_t n;
    float sink[2];
} stream_job;

__attribute__((target("avx512f")))
static float sum512(const float *a, size_t n)
{
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 64 <= n; i += 64) {
        s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
        s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
        s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
        s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1),
                                              _mm512_add_ps(s2, s3)));
}

__attribute__((target("avx2")))
static float sum256(const float *a, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_load_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_load_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_load_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_load_ps(a + i + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}

static void stream_part(void *arg, int ith, int nth)
{
    stream_job *j = arg;
    size_t lo = j->n / nth * ith, hi = ith == nth - 1 ? j->n : j->n / nth * (ith + 1);
    j->sink[ith] = __builtin_cpu_supports("avx512f") ? sum512(j->a + lo, hi - lo)
                                                     : sum256(j->a + lo, hi - lo);
}

static double stream_gbs(helper *h, int nth, const float *a, size_t n, double min_s)
{
    stream_job j = {a, n, {0, 0}};
    run_on(h, nth, stream_part, &j);   /* warm: pages touched, clocks up */
    int iters = 0;
    double el;
    h->busy[0] = h->busy[1] = 0;
    do {
        run_on(h, nth, stream_part, &j);
        iters++;
        el = busy_time(h);
    } while (el < min_s);
    return (double)n * sizeof(float) * iters / el / 1e9;
}

/* ---- 2. GEMV ---- */

typedef struct {
    ggml_type t;
    const char *w;
    int64_t m, n;
    const quant_act *a;
    float *out;
} mm_job;

/* The engine's split: rows in multiples of 16 per thread. */
static void mm_part(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    int64_t units = (j->m + 15) / 16;
    int64_t lo = units * ith / nth * 16, hi = units * (ith + 1) / nth * 16;
    if (hi > j->m)
        hi = j->m;
    if (lo < hi)
        quant_matmul_rows(j->t, j->w, j->n, j->a, lo, hi, j->out, j->m);
}

/* copies of one quantised m x n matrix filling ~256 MiB */
typedef struct {
    char *mem;
    size_t bytes;
    int copies;
} wcopies;

static wcopies make_copies(ggml_type t, int64_t m, int64_t n, const float *wf,
                           int one)
{
    wcopies c;
    size_t stride = ggml_type_size(t, n);
    c.bytes = stride * m;
    c.copies = one ? 1 : (int)((256u << 20) / c.bytes) + 1;
    c.mem = malloc(c.bytes * c.copies);
    for (int64_t i = 0; i < m; i++)
        quant_quantize_row(t, wf + (i % (2048 * 2048 / n)) * n, c.mem + i * stride, n);
    for (int k = 1; k < c.copies; k++)
        memcpy(c.mem + k * c.bytes, c.mem, c.bytes);
    return c;
}

static double gemv_gbs(helper *h, int nth, ggml_type t, const wcopies *c,
                       int64_t m, int64_t n, const float *x, float *out,
                       double min_s)
{
    int iters = 0, k = 0;
    double el = 0;
    for (int warm = 1; warm >= 0; warm--) {
        iters = 0;
        h->busy[0] = h->busy[1] = 0;
        do {
            quant_act a;
            quant_act_prepare(&a, t, x, 1, n);
            mm_job j = {t, c->mem + (size_t)k * c->bytes, m, n, &a, out};
            run_on(h, nth, mm_part, &j);
            quant_act_free(&a);
            k = (k + 1) % c->copies;
            iters++;
            el = busy_time(h);
        } while (warm ? k != 0 && el < min_s : el < min_s);
    }
    return (double)c->bytes * iters / el / 1e9;
}

/* ---- 3. GEMM ---- */

static double gemm_gflops(ggml_type t, int64_t m, int64_t n, int64_t rows,
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
    free(w);
    free(out);
    return 2.0 * rows * m * n * iters / el / 1e9;
}

int main(int argc, char **argv)
{
    double min_s = argc > 1 ? atof(argv[1]) : 0.3;
    const char *only = argc > 2 ? argv[2] : NULL;
    static const ggml_type types[] = {GGML_F32, GGML_F16, GGML_BF16,
        GGML_Q8_0, GGML_Q4_0, GGML_Q4_K, GGML_Q6_K, GGML_Q4_1, GGML_Q5_0,
        GGML_Q5_1};
    static const int64_t shapes[][2] = {{768, 768}, {2048, 768}, {768, 2048},
                                        {32000, 768}};
    helper h = {0};
    pthread_t th;
    pthread_create(&th, NULL, helper_main, &h);

    printf("quant_bench: SIMD level %s; activation preparation included\n",
           quant_simd_name());
    size_t sn = (256u << 20) / sizeof(float);
    float *big = aligned_alloc(64, sn * sizeof(float));
    for (size_t i = 0; i < sn; i++)
        big[i] = (float)(i & 7);
    double ceil1 = stream_gbs(&h, 1, big, sn, 3 * min_s);
    double ceil2 = stream_gbs(&h, 2, big, sn, 3 * min_s);
    free(big);
    printf("ceiling: streaming read of 256 MiB (the GEMV copies' size): 1 thread %.1f GB/s, 2 threads %.1f GB/s\n\n",
           ceil1, ceil2);

    uint64_t st = 1;
    float *wf = malloc(2048 * 2048 * sizeof *wf);
    float *x = malloc(256 * 2048 * sizeof *x);
    float *out = malloc(32000 * sizeof *out);
    for (int i = 0; i < 2048 * 2048; i++)
        wf[i] = (float)(em_rand01(&st) - 0.5) * 0.1f;
    for (int i = 0; i < 256 * 2048; i++)
        x[i] = (float)(em_rand01(&st) - 0.5);

    printf("GEMV (1 activation row), GB/s of weights: one matrix read again and\n"
           "again (cached: the kernel's own speed, 1 thread), and from memory\n"
           "(fraction of the ceiling)\n");
    printf("%-5s %-11s %7s %8s %16s %16s\n", "type", "m x n", "MiB", "cached",
           "memory 1 thr", "memory 2 thr");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        ggml_type t = types[ti];
        if (only && strcmp(only, ggml_type_name(t)))
            continue;
        for (int s = 0; s < 4; s++) {
            int64_t m = shapes[s][0], n = shapes[s][1];
            wcopies c1 = make_copies(t, m, n, wf, 1);
            double gc = gemv_gbs(&h, 1, t, &c1, m, n, x, out, min_s);
            free(c1.mem);
            wcopies c = make_copies(t, m, n, wf, 0);
            double g1 = gemv_gbs(&h, 1, t, &c, m, n, x, out, min_s);
            double g2 = gemv_gbs(&h, 2, t, &c, m, n, x, out, min_s);
            printf("%-5s %5lldx%-5lld %7.2f %8.1f %9.1f (%3.0f%%) %9.1f (%3.0f%%)\n",
                   ggml_type_name(t), (long long)m, (long long)n,
                   c.bytes / 1048576.0, gc, g1, 100 * g1 / ceil1, g2, 100 * g2 / ceil2);
            fflush(stdout);
            free(c.mem);
        }
    }

    printf("\nGEMM (256 activation rows), 2048x768, single thread (CPU time)\n");
    printf("%-5s %10s\n", "type", "GFLOP/s");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        ggml_type t = types[ti];
        if (only && strcmp(only, ggml_type_name(t)))
            continue;
        printf("%-5s %10.1f\n", ggml_type_name(t),
               gemm_gflops(t, 2048, 768, 256, wf, x, min_s));
        fflush(stdout);
    }
    atomic_store(&h.quit, 1);
    pthread_join(th, NULL);
    free(wf);
    free(x);
    free(out);
    return 0;
}

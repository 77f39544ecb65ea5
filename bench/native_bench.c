/*
 * native_bench.c - speed of the native engine on one GGUF model, in the
 * terms llama-bench uses, plus multiple-choice scoring through the backend.
 *
 *   pp256  prompt processing: 256 random tokens in one forward pass from an
 *          empty cache (logits of the last token only), tokens/s;
 *   tg64   decoding: 64 single-token passes from an empty cache, tokens/s;
 *   rss    peak resident memory of this process (the model is mmap'd),
 *          and how much of it came after the start;
 *   mc     multiple-choice examples/s: 8 questions (~70-token contexts)
 *          with 4 choices each, scored through backend_loglikelihood with
 *          and without prefix sharing, and the tokens each evaluated.
 * pp and tg are the best of REPS runs after a warm-up (the machine is
 * shared; the best run is the least disturbed one); the multiple-choice
 * batch runs once per mode (it is long enough to average).
 *
 * Usage: native_bench MODEL.gguf [threads [ref_pp ref_tg]]
 * With reference figures (llama.cpp's), each is printed with the ratio.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/model.h"
#include "backends/native.h"
#include "backends/quant.h"
#include "harness/common.h"

#define REPS 2     /* pp and tg; multiple choice runs once */

/* Process CPU seconds: with the machine shared, wall-clock figures
 * depend on the neighbours; tokens per CPU-second times the threads is
 * what the engine would reach with the cores to itself (an estimate, and
 * a low one: waiting threads spin and count as busy). */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void print_fig(const char *what, double v, double v_cpu, double ref)
{
    printf("  %-6s %9.1f tok/s (cores to itself: %7.1f)", what, v, v_cpu);
    if (ref > 0)
        printf("   llama.cpp %7.1f   ratio %.2f (%.2f)\n", ref, v / ref,
               v_cpu / ref);
    else
        printf("   llama.cpp       -\n");
}

static int bench_pp_tg(model *m, double *pp, double *tg, double *pp_cpu,
                       double *tg_cpu, em_err *err)
{
    int nth = pool_size(m->pool);
    int n = 256 < m->n_ctx ? 256 : m->n_ctx;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n);
    float *lg = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    uint64_t rng = 42;
    for (int i = 0; i < n; i++)
        toks[i] = (int32_t)(em_splitmix64(&rng) % (uint64_t)m->hp.n_vocab);
    *pp = *tg = *pp_cpu = *tg_cpu = 0;
    for (int r = 0; r <= REPS; r++) { /* r == 0 is the warm-up */
        model_truncate(m, 0);
        double t0 = em_now(), c0 = cpu_now();
        if (model_forward(m, toks, n, n - 1, n, lg, err))
            goto fail;
        double s = n / (em_now() - t0), c = n * nth / (cpu_now() - c0);
        if (r && s > *pp)
            *pp = s;
        if (r && c > *pp_cpu)
            *pp_cpu = c;
    }
    int ng = 64 < m->n_ctx ? 64 : m->n_ctx;
    for (int r = 0; r <= REPS; r++) {
        model_truncate(m, 0);
        double t0 = em_now(), c0 = cpu_now();
        for (int i = 0; i < ng; i++)
            if (model_forward(m, &toks[i], 1, 0, 1, lg, err))
                goto fail;
        double s = ng / (em_now() - t0), c = ng * nth / (cpu_now() - c0);
        if (r && s > *tg)
            *tg = s;
        if (r && c > *tg_cpu)
            *tg_cpu = c;
    }
    free(toks);
    free(lg);
    return 0;
fail:
    free(toks);
    free(lg);
    return -1;
}

static const char *words[] = {
    "the", "river", "scientist", "quickly", "measured", "a", "small",
    "number", "of", "stones", "near", "old", "bridge", "while", "children",
    "watched", "from", "hill", "and", "counted", "birds", "in", "sky",
    "because", "it", "was", "warm", "afternoon", "after", "long", "rain",
};
#define N_WORDS (sizeof words / sizeof words[0])
#define N_Q 8 /* questions; 4 choices each */

/* N_Q questions x 4 choices; strings owned by the returned buffers. */
static void make_mc(backend_ll_req *req, char **ctx, char **cho)
{
    uint64_t rng = 7;
    for (int q = 0; q < N_Q; q++) {
        em_buf b = {0};
        em_buf_puts(&b, "Question:");
        for (int w = 0; w < 48; w++)
            em_buf_printf(&b, " %s", words[em_splitmix64(&rng) % N_WORDS]);
        em_buf_puts(&b, "?\nAnswer:");
        ctx[q] = em_buf_take(&b);
        for (int c = 0; c < 4; c++) {
            em_buf a = {0};
            for (int w = 0; w < 3; w++)
                em_buf_printf(&a, " %s", words[em_splitmix64(&rng) % N_WORDS]);
            cho[q * 4 + c] = em_buf_take(&a);
            req[q * 4 + c].context = ctx[q];
            req[q * 4 + c].continuation = cho[q * 4 + c];
        }
    }
}

static int bench_mc(const char *path, const char *threads, int share,
                    double *ex_s, uint64_t *tokens, em_err *err)
{
    backend_opt opts[2] = {{"threads", (char *)threads},
                           {"prefix_sharing", share ? "1" : "0"}};
    backend_spec spec = {.name = "bench", .backend = "native",
                         .path = (char *)path, .opts = opts, .n_opts = 2};
    backend *b;
    if (backend_open(&spec, &b, err))
        return -1;
    backend_ll_req req[4 * N_Q];
    backend_ll_res res[4 * N_Q];
    char *ctx[N_Q], *cho[4 * N_Q];
    make_mc(req, ctx, cho);
    uint64_t before = native_tokens_evaluated(b);
    double t0 = em_now();
    int rc = backend_loglikelihood(b, req, res, 4 * N_Q, err);
    *ex_s = N_Q / (em_now() - t0);
    *tokens = native_tokens_evaluated(b) - before;
    for (int i = 0; i < 4 * N_Q; i++)
        if (rc == 0 && !res[i].ok) {
            rc = em_errorf(err, "request %d failed: %s", i, res[i].error);
        }
    for (int i = 0; i < N_Q; i++)
        free(ctx[i]);
    for (int i = 0; i < 4 * N_Q; i++)
        free(cho[i]);
    backend_close(b);
    return rc;
}

static double rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv)
{
    /* What the process holds before any model (shared libraries: the
     * CUDA runtime alone is ~150 MiB when linked in). */
    double rss0 = rss_mib();
    if (argc < 2) {
        fprintf(stderr, "usage: native_bench MODEL.gguf [threads [ref_pp "
                "ref_tg]]\n");
        return 2;
    }
    const char *path = argv[1], *threads = argc > 2 ? argv[2] : "2";
    double ref_pp = argc > 4 ? atof(argv[3]) : 0;
    double ref_tg = argc > 4 ? atof(argv[4]) : 0;
    em_err err;
    model_opts o = {.n_threads = atoi(threads)};
    model *m;
    if (model_build(path, &o, &m, &err)) {
        fprintf(stderr, "native_bench: %s\n", err.msg);
        return 1;
    }
    const char *slash = strrchr(path, '/');
    printf("%s: %s, %.1f M params, %d threads, kernels %s\n",
           slash ? slash + 1 : path, m->hp.arch_name, m->n_params / 1e6,
           pool_size(m->pool), quant_simd_name());
    double pp, tg, pp_cpu, tg_cpu;
    int rc = bench_pp_tg(m, &pp, &tg, &pp_cpu, &tg_cpu, &err);
    model_free(m);
    if (rc) {
        fprintf(stderr, "native_bench: %s\n", err.msg);
        return 1;
    }
    print_fig("pp256", pp, pp_cpu, ref_pp);
    print_fig("tg64", tg, tg_cpu, ref_tg);
    double ex1, ex0;
    uint64_t t1 = 0, t0 = 0;
    if (bench_mc(path, threads, 1, &ex1, &t1, &err) ||
        bench_mc(path, threads, 0, &ex0, &t0, &err)) {
        fprintf(stderr, "native_bench: %s\n", err.msg);
        return 1;
    }
    printf("  mc     %9.2f ex/s shared (%llu tokens)   %.2f ex/s unshared "
           "(%llu tokens)   speed-up %.2f\n", ex1, (unsigned long long)t1,
           ex0, (unsigned long long)t0, ex1 / ex0);
    double rss = rss_mib();
    printf("  rss    %9.1f MiB peak, %.1f MiB above the %.1f MiB the process "
           "had before loading\n", rss, rss - rss0, rss0);
    return 0;
}

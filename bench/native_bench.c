/*
 * native_bench.c - speed of the native engine on one GGUF model, in the
 * terms llama-bench uses, plus multiple-choice scoring through the backend.
 *
 *   pp256  prompt processing: 256 random tokens in one forward pass from an
 *          empty cache (logits of the last token only), tokens/s;
 *   tg64   decoding: 64 single-token passes from an empty cache, tokens/s;
 *   rss    peak resident memory of this process (the model is mmap'd),
 *          and how much of it came after the start;
 *   mc     multiple-choice examples/s: 8 questions (contexts of up to 48
 *          words that fit the model's context) with 4 choices each,
 *          scored through backend_loglikelihood with and without prefix
 *          sharing, the tokens each evaluated, and how many times fewer
 *          tokens sharing evaluates (the target: at least 2).
 * pp and tg run REPS times after a warm-up; the figure printed is the best
 * run (the machine is shared; the best run is the least disturbed one),
 * with the mean and standard deviation over the runs, as llama-bench
 * reports them. The multiple-choice batch runs once per mode (it is long
 * enough to average).
 *
 * Usage: native_bench [-r REPS] [--no-mc] [--tsv] MODEL.gguf
 *                     [threads [ref_pp ref_tg]]
 * With reference figures (llama.cpp's), each is printed with the ratio.
 * --tsv prints only lines "pp256|tg64 <tab> mean <tab> sd <tab> best <tab>
 * tokens per CPU-second x threads", for scripts
 * (bench/llamacpp_side_by_side.sh).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backends/backend.h"
#include "backends/engine/model.h"
#include "backends/native.h"
#include "backends/engine/quant.h"
#include "base/common.h"

#define REPS_DEFAULT 2 /* pp and tg; multiple choice runs once */
#define REPS_MAX 100

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

/* One figure over its runs: tokens/s per run (wall clock), and the best
 * tokens per CPU-second times the threads. */
typedef struct fig {
    double ts[REPS_MAX];
    int n;
    double best, mean, sd, cpu;
} fig;

static void fig_add(fig *f, double ts, double cpu)
{
    if (f->n < REPS_MAX)
        f->ts[f->n++] = ts;
    f->best = ts > f->best ? ts : f->best;
    f->cpu = cpu > f->cpu ? cpu : f->cpu;
    double sum = 0, ss = 0;
    for (int i = 0; i < f->n; i++)
        sum += f->ts[i];
    f->mean = sum / f->n;
    for (int i = 0; i < f->n; i++)
        ss += (f->ts[i] - f->mean) * (f->ts[i] - f->mean);
    f->sd = f->n > 1 ? sqrt(ss / (f->n - 1)) : 0;
}

static void print_fig(const char *what, const fig *f, double ref, int tsv)
{
    if (tsv) {
        printf("%s\t%.2f\t%.2f\t%.2f\t%.2f\n", what, f->mean, f->sd, f->best,
               f->cpu);
        return;
    }
    printf("  %-6s %9.1f tok/s (mean %.1f \302\261 %.1f; cores to itself: "
           "%7.1f)", what, f->best, f->mean, f->sd, f->cpu);
    if (ref > 0)
        printf("   llama.cpp %7.1f   ratio %.2f (%.2f)\n", ref, f->best / ref,
               f->cpu / ref);
    else
        printf("   llama.cpp       -\n");
}

/* Runs pp (one forward of n tokens) or tg (n single-token forwards) from
 * an empty cache reps times after a warm-up run. */
static int bench_run(model *m, const int32_t *toks, int n, int decode,
                     int reps, float *lg, fig *f, em_err *err)
{
    int nth = pool_size(m->pool);
    for (int r = 0; r <= reps; r++) { /* r == 0 is the warm-up */
        model_truncate(m, 0);
        double t0 = em_now(), c0 = cpu_now();
        if (!decode && model_forward(m, toks, n, n - 1, n, lg, err))
            return -1;
        for (int i = 0; decode && i < n; i++)
            if (model_forward(m, &toks[i], 1, 0, 1, lg, err))
                return -1;
        double s = n / (em_now() - t0), c = n * nth / (cpu_now() - c0);
        if (r)
            fig_add(f, s, c);
    }
    return 0;
}

static int bench_pp_tg(model *m, int reps, fig *pp, fig *tg, em_err *err)
{
    int n = 256 < m->n_ctx ? 256 : m->n_ctx;
    int ng = 64 < m->n_ctx ? 64 : m->n_ctx;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n);
    float *lg = malloc(sizeof(float) * (size_t)m->hp.n_vocab);
    uint64_t rng = 42;
    for (int i = 0; i < n; i++)
        toks[i] = (int32_t)(em_splitmix64(&rng) % (uint64_t)m->hp.n_vocab);
    int rc = bench_run(m, toks, n, 0, reps, lg, pp, err);
    if (rc == 0)
        rc = bench_run(m, toks, ng, 1, reps, lg, tg, err);
    free(toks);
    free(lg);
    return rc;
}

static const char *words[] = {
    "the", "river", "scientist", "quickly", "measured", "a", "small",
    "number", "of", "stones", "near", "old", "bridge", "while", "children",
    "watched", "from", "hill", "and", "counted", "birds", "in", "sky",
    "because", "it", "was", "warm", "afternoon", "after", "long", "rain",
};
#define N_WORDS (sizeof words / sizeof words[0])
#define N_Q 8 /* questions; 4 choices each */

/* N_Q questions x 4 choices; strings owned by the returned buffers.
 * A context has up to 48 words but at most max_chars characters: at
 * worst a token per byte (the demo family's vocabulary is nearly that),
 * so a context of n_ctx / 2 characters and its choices fit the model.
 * Longer ones would be cut from the left by a different amount for each
 * choice, and the choices of a question would no longer share it. */
static void make_mc(backend_ll_req *req, char **ctx, char **cho,
                    size_t max_chars)
{
    uint64_t rng = 7;
    for (int q = 0; q < N_Q; q++) {
        em_buf b = {0};
        em_buf_puts(&b, "Question:");
        for (int w = 0; w < 48; w++) {
            const char *word = words[em_splitmix64(&rng) % N_WORDS];
            if (b.len + 1 + strlen(word) + 10 > max_chars && w >= 4)
                break;
            em_buf_printf(&b, " %s", word);
        }
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
    make_mc(req, ctx, cho, b->info.n_ctx > 0 ? (size_t)b->info.n_ctx / 2 : 400);
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

static int usage(void)
{
    fprintf(stderr, "usage: native_bench [-r REPS] [--no-mc] [--tsv] "
            "MODEL.gguf [threads [ref_pp ref_tg]]\n");
    return 2;
}

int main(int argc, char **argv)
{
    /* What the process holds before any model (shared libraries: the
     * CUDA runtime alone is ~150 MiB when linked in). */
    double rss0 = rss_mib();
    int reps = REPS_DEFAULT, mc = 1, tsv = 0, a = 1;
    for (; a < argc && argv[a][0] == '-'; a++) {
        if (!strcmp(argv[a], "-r") && a + 1 < argc) {
            reps = atoi(argv[++a]);
            if (reps < 1 || reps > REPS_MAX)
                return usage();
        } else if (!strcmp(argv[a], "--no-mc")) {
            mc = 0;
        } else if (!strcmp(argv[a], "--tsv")) {
            tsv = 1;
        } else {
            return usage();
        }
    }
    if (a >= argc)
        return usage();
    const char *path = argv[a], *threads = a + 1 < argc ? argv[a + 1] : "2";
    double ref_pp = a + 3 < argc ? atof(argv[a + 2]) : 0;
    double ref_tg = a + 3 < argc ? atof(argv[a + 3]) : 0;
    em_err err;
    model_opts o = {.n_threads = atoi(threads)};
    model *m;
    if (model_build(path, &o, &m, &err)) {
        fprintf(stderr, "native_bench: %s\n", err.msg);
        return 1;
    }
    const char *slash = strrchr(path, '/');
    if (!tsv)
        printf("%s: %s, %.1f M params, %d threads, kernels %s\n",
               slash ? slash + 1 : path, m->hp.arch_name, m->n_params / 1e6,
               pool_size(m->pool), quant_simd_name());
    fig pp = {0}, tg = {0};
    int rc = bench_pp_tg(m, reps, &pp, &tg, &err);
    model_free(m);
    if (rc) {
        fprintf(stderr, "native_bench: %s\n", err.msg);
        return 1;
    }
    print_fig("pp256", &pp, ref_pp, tsv);
    print_fig("tg64", &tg, ref_tg, tsv);
    if (mc) {
        double ex1, ex0;
        uint64_t t1 = 0, t0 = 0;
        if (bench_mc(path, threads, 1, &ex1, &t1, &err) ||
            bench_mc(path, threads, 0, &ex0, &t0, &err)) {
            fprintf(stderr, "native_bench: %s\n", err.msg);
            return 1;
        }
        printf("  mc     %9.2f ex/s shared (%llu tokens)   %.2f ex/s unshared "
               "(%llu tokens)   speed-up %.2f, %.2fx fewer tokens\n", ex1,
               (unsigned long long)t1, ex0, (unsigned long long)t0, ex1 / ex0,
               t1 ? (double)t0 / (double)t1 : 0.0);
    }
    double rss = rss_mib();
    if (!tsv)
        printf("  rss    %9.1f MiB peak, %.1f MiB above the %.1f MiB the "
               "process had before loading\n", rss, rss - rss0, rss0);
    return 0;
}

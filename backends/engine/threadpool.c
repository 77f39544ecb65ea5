/*
 * threadpool.c - the native engine's worker threads (see threadpool.h).
 *
 * A job has n_chunks chunks, and the chunks are claimed, not assigned:
 * `state` holds the job's generation (high 32 bits) and the next unclaimed
 * chunk (low 32 bits), and every thread - the caller included - claims
 * chunks with a compare-and-swap until none is left. On an idle machine
 * the threads take turns; on a busy one, where a worker may not run for
 * milliseconds, the others simply take its share instead of waiting for
 * it, so a job never waits for a thread that has not started it. A
 * claimed chunk pins its job (the job cannot finish, so no new job can
 * replace fn/arg) until it is done.
 *
 * Waits spin for a short while before sleeping, because a forward pass
 * issues a few jobs per layer (hundreds per token) and a futex wake-up
 * per job would cost more than many of the jobs themselves. A sleeper
 * first counts itself in sleep_work / sleep_done and then re-checks its
 * condition under the mutex; the other side first publishes its change
 * and then looks at the count, both sequentially consistent, so either
 * the sleeper sees the change or the publisher sees the sleeper and
 * signals it (under the mutex): no wake-up is lost, and when nobody
 * sleeps - the common case - publishing costs no lock at all.
 */
#include "backends/engine/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Spin iterations before a waiter goes to sleep (~tens of microseconds). */
#define POOL_SPIN 2000

typedef struct pool_worker {
    pool *p;
    int tid;
    pthread_t tid_os;
} pool_worker;

struct pool {
    int nth;
    pool_worker *workers;  /* nth-1 entries; the caller is thread 0 */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    _Atomic uint64_t state; /* generation << 32 | next unclaimed chunk */
    atomic_int n_chunks;    /* chunks of the current job */
    atomic_int n_done;      /* chunks of the current job finished */
    atomic_int sleep_work;  /* workers asleep on cv_work (or about to be) */
    atomic_int sleep_done;  /* 1 while the caller sleeps on cv_done */
    atomic_int stop;
    pool_chunk_fn cfn;      /* the job: cfn, or fn for a pool_run job */
    pool_fn fn;
    void *arg;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static inline uint32_t gen_of(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

/* Claims and runs chunks of job generation g until none is left. */
static void run_chunks(pool *p, uint32_t g, int tid)
{
    for (;;) {
        uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
        uint32_t c = (uint32_t)s;
        int n = atomic_load_explicit(&p->n_chunks, memory_order_relaxed);
        if (gen_of(s) != g || c >= (uint32_t)n)
            return;
        /* success means job g is still current, so n was its count */
        if (!atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        if (p->cfn)
            p->cfn(p->arg, (int)c, n, tid);
        else
            p->fn(p->arg, (int)c, n);
        if (atomic_fetch_add(&p->n_done, 1) + 1 == n &&
            atomic_load(&p->sleep_done)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static int job_changed(pool *p, uint32_t seen)
{
    return gen_of(atomic_load(&p->state)) != seen || atomic_load(&p->stop);
}

static void wait_for_job(pool *p, uint32_t seen)
{
    for (int i = 0; i < POOL_SPIN; i++) {
        if (job_changed(p, seen))
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleep_work, 1);
    while (!job_changed(p, seen))
        pthread_cond_wait(&p->cv_work, &p->mu);
    atomic_fetch_sub(&p->sleep_work, 1);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
    pool_worker *w = arg;
    pool *p = w->p;
    uint32_t seen = 0;
    for (;;) {
        wait_for_job(p, seen);
        if (atomic_load(&p->stop))
            break;
        seen = gen_of(atomic_load_explicit(&p->state, memory_order_acquire));
        run_chunks(p, seen, w->tid);
    }
    return NULL;
}

int pool_build(int n_threads, pool **out, em_err *err)
{
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 256)
        return em_errorf(err, "threads: %d is more than 256", n_threads);
    pool *p = em_calloc(1, sizeof *p);
    p->nth = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->state, 0);
    atomic_init(&p->n_chunks, 0);
    atomic_init(&p->n_done, 0);
    atomic_init(&p->sleep_work, 0);
    atomic_init(&p->sleep_done, 0);
    atomic_init(&p->stop, 0);
    p->workers = em_calloc((size_t)n_threads, sizeof *p->workers);
    for (int i = 1; i < n_threads; i++) {
        pool_worker *w = &p->workers[i - 1];
        w->p = p;
        w->tid = i;
        if (pthread_create(&w->tid_os, NULL, worker_main, w) != 0) {
            p->nth = i; /* only the threads created so far get joined */
            pool_free(p);
            return em_errorf(err, "cannot create worker thread %d of %d",
                             i, n_threads);
        }
    }
    *out = p;
    return 0;
}

void pool_free(pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nth; i++)
        pthread_join(p->workers[i - 1].tid_os, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p->workers);
    free(p);
}

int pool_size(const pool *p)
{
    return p->nth;
}

/* Publishes the job (cfn or fn over arg, n chunks), runs chunks on the
 * caller too and returns when every chunk is done. */
static void run_job(pool *p, pool_chunk_fn cfn, pool_fn fn, void *arg, int n)
{
    /* Close the previous job first: a thread that loaded its state before
     * it finished may still be about to compare-and-swap it, and it reads
     * n_chunks after the state, so if n_chunks grew while the old state
     * was still in place that swap would claim a chunk that does not
     * exist, run it with the new job's fn/arg and count it in the new
     * job's n_done (n_done = n + 1: the caller then waited forever; seen
     * in `make demo`). A generation of its own whose chunk index is past
     * any count makes every such swap fail. Then no chunk of the previous
     * job is claimable or running, so nobody reads cfn/fn/arg while they
     * change. */
    uint32_t g = gen_of(atomic_load(&p->state)) + 1;
    atomic_store(&p->state, (uint64_t)g << 32 | UINT32_MAX);
    p->cfn = cfn;
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->n_chunks, n, memory_order_relaxed);
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    g++;
    atomic_store(&p->state, (uint64_t)g << 32);
    if (atomic_load(&p->sleep_work)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv_work);
        pthread_mutex_unlock(&p->mu);
    }

    run_chunks(p, g, 0);

    for (int i = 0; i < POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->n_done, memory_order_acquire) == n)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->sleep_done, 1);
    while (atomic_load(&p->n_done) != n)
        pthread_cond_wait(&p->cv_done, &p->mu);
    atomic_store(&p->sleep_done, 0);
    pthread_mutex_unlock(&p->mu);
}

void pool_run(pool *p, pool_fn fn, void *arg)
{
    if (p->nth == 1) {
        fn(arg, 0, 1);
        return;
    }
    run_job(p, NULL, fn, arg, p->nth);
}

void pool_run_chunks(pool *p, pool_chunk_fn fn, void *arg, int n_chunks)
{
    if (n_chunks <= 0)
        return;
    if (p->nth == 1) {
        for (int c = 0; c < n_chunks; c++)
            fn(arg, c, n_chunks, 0);
        return;
    }
    run_job(p, fn, NULL, arg, n_chunks);
}

void pool_split(long n, int ith, int nth, long align, long *lo, long *hi)
{
    if (align < 1)
        align = 1;
    long chunk = (n + nth - 1) / nth;
    chunk = (chunk + align - 1) / align * align;
    long a = chunk * ith, b = a + chunk;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

/*
 * threadpool.c - the native engine's worker threads (see threadpool.h).
 *
 * A job is published by bumping the generation counter `gen`; workers wait
 * for it to change, run their share, and count themselves into `n_done`.
 * Both waits spin for a short while before sleeping, because a forward
 * pass issues a job per matrix product (hundreds per token) and a futex
 * wake-up per job would cost more than many of the jobs themselves.
 * Every wait re-checks its condition under the mutex before sleeping, so
 * a wake-up can never be lost between the check and the sleep.
 */
#include "backends/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Spin iterations before a waiter goes to sleep (~tens of microseconds). */
#define POOL_SPIN 2000

typedef struct pool_worker {
    pool *p;
    int ith;
    pthread_t tid;
} pool_worker;

struct pool {
    int nth;
    pool_worker *workers; /* nth-1 entries; thread 0 is the caller */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_uint gen;      /* job generation; bumped to publish a job */
    atomic_int n_done;    /* workers finished with the current job */
    int stop;
    pool_fn fn;
    void *arg;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void wait_for_job(pool *p, unsigned seen)
{
    for (int i = 0; i < POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen)
        pthread_cond_wait(&p->cv_work, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
    pool_worker *w = arg;
    pool *p = w->p;
    unsigned seen = 0;
    for (;;) {
        wait_for_job(p, seen);
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (p->stop)
            break;
        p->fn(p->arg, w->ith, p->nth);
        if (atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel) + 1
            == p->nth - 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
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
    atomic_init(&p->gen, 0);
    atomic_init(&p->n_done, 0);
    p->workers = em_calloc((size_t)n_threads, sizeof *p->workers);
    for (int i = 1; i < n_threads; i++) {
        pool_worker *w = &p->workers[i - 1];
        w->p = p;
        w->ith = i;
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
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
    p->stop = 1;
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->nth; i++)
        pthread_join(p->workers[i - 1].tid, NULL);
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

void pool_run(pool *p, pool_fn fn, void *arg)
{
    if (p->nth == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, p->nth);

    int want = p->nth - 1;
    for (int i = 0; i < POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->n_done, memory_order_acquire) == want)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->n_done, memory_order_acquire) != want)
        pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
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

/*
 * threadpool.c - the native engine's worker threads (see threadpool.h).
 *
 * A job has nth slots, one per thread of the pool, and the slots are
 * claimed, not assigned: `state` holds the job's generation (high 32 bits)
 * and the next unclaimed slot (low 32 bits), and every thread - the caller
 * included - claims slots with a compare-and-swap until none is left. On
 * an idle machine each thread takes one slot. On a busy one, where a worker
 * may not be scheduled for milliseconds, the caller simply runs that slot
 * itself instead of waiting for the worker to wake up, so a job never waits
 * for a thread that has not started it. A claimed slot pins its job (the
 * job cannot finish, so no new job can replace fn/arg) until it is done.
 *
 * Waits spin for a short while before sleeping, because a forward pass
 * issues a job per matrix product (hundreds per token) and a futex wake-up
 * per job would cost more than many of the jobs themselves. Every wait
 * re-checks its condition under the mutex before sleeping, so a wake-up
 * can never be lost between the check and the sleep.
 */
#include "backends/threadpool.h"

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
    pthread_t tid;
} pool_worker;

struct pool {
    int nth;
    pool_worker *workers;  /* nth-1 entries; the caller is the nth thread */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    _Atomic uint64_t state; /* generation << 32 | next unclaimed slot */
    atomic_int n_done;      /* slots of the current job finished */
    atomic_int stop;
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

/* Claims and runs slots of job generation g until none is left. */
static void run_slots(pool *p, uint32_t g)
{
    for (;;) {
        uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
        uint32_t slot = (uint32_t)s;
        if (gen_of(s) != g || slot >= (uint32_t)p->nth)
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1,
                                                   memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        p->fn(p->arg, (int)slot, p->nth);
        if (atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel) + 1
            == p->nth) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static int job_changed(pool *p, uint32_t seen)
{
    return gen_of(atomic_load_explicit(&p->state, memory_order_acquire))
           != seen || atomic_load(&p->stop);
}

static void wait_for_job(pool *p, uint32_t seen)
{
    for (int i = 0; i < POOL_SPIN; i++) {
        if (job_changed(p, seen))
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (!job_changed(p, seen))
        pthread_cond_wait(&p->cv_work, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
    pool *p = ((pool_worker *)arg)->p;
    uint32_t seen = 0;
    for (;;) {
        wait_for_job(p, seen);
        if (atomic_load(&p->stop))
            break;
        seen = gen_of(atomic_load_explicit(&p->state, memory_order_acquire));
        run_slots(p, seen);
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
    atomic_init(&p->n_done, 0);
    atomic_init(&p->stop, 0);
    p->workers = em_calloc((size_t)n_threads, sizeof *p->workers);
    for (int i = 1; i < n_threads; i++) {
        pool_worker *w = &p->workers[i - 1];
        w->p = p;
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
    atomic_store(&p->stop, 1);
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
    /* No slot of the previous job is claimable or running now, so no
     * thread reads fn/arg while they change. */
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->n_done, 0, memory_order_relaxed);
    uint32_t g = gen_of(atomic_load(&p->state)) + 1;
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->state, (uint64_t)g << 32, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);

    run_slots(p, g);

    for (int i = 0; i < POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->n_done, memory_order_acquire) == p->nth)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->n_done, memory_order_acquire) != p->nth)
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

/*
 * threadpool.h - one fixed pool of worker threads for the native engine.
 *
 * Owns: n-1 pthreads plus the calling thread, which together run one
 * parallel job at a time. A job is split into chunks that the threads
 * claim one at a time until none is left: pool_run_chunks(p, fn, arg, n)
 * calls fn(arg, c, n, tid) once for every chunk c in [0, n) and returns
 * when all calls have returned. tid in [0, pool_size) names the thread
 * running the call (the caller is 0), so per-thread scratch indexed by
 * tid is safe; which chunks a thread gets is not fixed, so fn must not
 * assume it. More chunks than threads keep both cores busy to the end of
 * a job when one of them is taken away for a while (the machine is
 * shared), at the price of one atomic claim per chunk.
 * pool_run(p, fn, arg) is the job of exactly pool_size chunks ("slots").
 * A pool of 1 creates no threads at all.
 *
 * There are no hidden globals: every model owns its pool. A job is a plain
 * function over a plain struct; the pool knows nothing about matrices.
 * Workers spin briefly between jobs (a forward pass issues hundreds of small
 * jobs back to back, and waking a sleeping thread costs more than a small
 * job), then sleep on a condition variable so an idle model costs no CPU.
 */
#ifndef EMERGE_THREADPOOL_H
#define EMERGE_THREADPOOL_H

#include "base/common.h"

typedef struct pool pool;

typedef void (*pool_fn)(void *arg, int ith, int nth);
typedef void (*pool_chunk_fn)(void *arg, int chunk, int n_chunks, int tid);

/* n_threads <= 0 means the number of online CPUs. */
int pool_build(int n_threads, pool **out, em_err *err);
void pool_free(pool *p);
int pool_size(const pool *p);
/* Runs fn(arg, ith, nth) for every slot ith of nth = pool_size(p); returns
 * when done. Not reentrant: one job at a time, from one caller thread. */
void pool_run(pool *p, pool_fn fn, void *arg);
/* Runs fn(arg, c, n_chunks, tid) for every c in [0, n_chunks) (see above);
 * n_chunks <= 0 does nothing. Same rules as pool_run. */
void pool_run_chunks(pool *p, pool_chunk_fn fn, void *arg, int n_chunks);

/* The range [*lo, *hi) of n items that thread ith of nth takes, with the
 * chunk boundaries rounded to multiples of align (align >= 1). */
void pool_split(long n, int ith, int nth, long align, long *lo, long *hi);

#endif

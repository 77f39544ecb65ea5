/*
 * threadpool.h - one fixed pool of worker threads for the native engine.
 *
 * Owns: n-1 pthreads plus the calling thread, which together run one
 * parallel job at a time: pool_run(p, fn, arg) calls fn(arg, ith, nth) once
 * for every slot ith in [0, nth) and returns when all calls have returned.
 * Slots go to whichever thread claims them first (the caller runs the
 * slots of a worker that is not scheduled yet), so fn must not assume
 * which thread runs a slot; per-slot scratch indexed by ith is safe, as
 * a slot runs once per job. A pool of 1 creates no threads at all.
 *
 * There are no hidden globals: every model owns its pool. A job is a plain
 * function over a plain struct; the pool knows nothing about matrices.
 * Workers spin briefly between jobs (a forward pass issues hundreds of small
 * jobs back to back, and waking a sleeping thread costs more than a small
 * job), then sleep on a condition variable so an idle model costs no CPU.
 */
#ifndef EMERGE_THREADPOOL_H
#define EMERGE_THREADPOOL_H

#include "harness/common.h"

typedef struct pool pool;

typedef void (*pool_fn)(void *arg, int ith, int nth);

/* n_threads <= 0 means the number of online CPUs. */
int pool_build(int n_threads, pool **out, em_err *err);
void pool_free(pool *p);
int pool_size(const pool *p);
/* Runs fn(arg, ith, nth) on every thread of the pool; returns when done.
 * Not reentrant: one job at a time, from one caller thread. */
void pool_run(pool *p, pool_fn fn, void *arg);

/* The range [*lo, *hi) of n items that thread ith of nth takes, with the
 * chunk boundaries rounded to multiples of align (align >= 1). */
void pool_split(long n, int ith, int nth, long align, long *lo, long *hi);

#endif

/*
 * test_threadpool.c - the native engine's thread pool (backends/engine/threadpool.c):
 * every chunk of every job runs exactly once, thread ids are in range and
 * never run two chunks at the same time, jobs of any chunk count (fewer or
 * more than the threads) complete, and waits that go to sleep (a pause
 * longer than the spin between jobs) still wake up.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "backends/engine/threadpool.h"
#include "tests/testlib.h"

#define MAX_CHUNKS 64

typedef struct chunk_job {
    atomic_int count[MAX_CHUNKS];
    atomic_int busy[8];   /* per tid: 1 while one of its calls runs */
    atomic_int bad_tid, overlap, bad_n;
    int n;
} chunk_job;

static void count_chunk(void *arg, int c, int n, int tid)
{
    chunk_job *j = arg;
    if (n != j->n)
        atomic_fetch_add(&j->bad_n, 1);
    if (tid < 0 || tid >= 8) {
        atomic_fetch_add(&j->bad_tid, 1);
        return;
    }
    if (atomic_exchange(&j->busy[tid], 1))
        atomic_fetch_add(&j->overlap, 1);
    atomic_fetch_add(&j->count[c], 1);
    for (volatile int i = 0; i < (c * 37) % 300; i++)
        ; /* uneven chunk lengths */
    atomic_store(&j->busy[tid], 0);
}

TEST(chunks_run_once_with_private_tids)
{
    int sizes[] = {1, 2, 3, 7, 64};
    for (int nth = 1; nth <= 4; nth++) {
        pool *p;
        em_err err;
        CHECK(pool_build(nth, &p, &err) == 0);
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            chunk_job *j = calloc(1, sizeof *j);
            j->n = sizes[si];
            int iters = 3000;
            for (int it = 1; it <= iters; it++) {
                pool_run_chunks(p, count_chunk, j, j->n);
                for (int c = 0; c < j->n; c++)
                    if (atomic_load(&j->count[c]) != it) {
                        CHECK_INT(atomic_load(&j->count[c]), it);
                        it = iters + 1;
                        break;
                    }
            }
            for (int c = j->n; c < MAX_CHUNKS; c++)
                CHECK_INT(atomic_load(&j->count[c]), 0);
            CHECK_INT(atomic_load(&j->bad_tid), 0);
            CHECK_INT(atomic_load(&j->overlap), 0);
            CHECK_INT(atomic_load(&j->bad_n), 0);
            free(j);
        }
        pool_run_chunks(p, count_chunk, NULL, 0); /* no chunk: no call */
        pool_free(p);
    }
}

/* Consecutive jobs whose chunk count grows (1 then 64, over and over): a
 * thread still holding the state of a finished 1-chunk job must not claim
 * "chunk 1" of it once the next job's count is published. That claim ran
 * the next job's function on a chunk it never had and counted it in the
 * next job's n_done, so the caller waited forever (found by `make demo`:
 * decode's 1-row matmuls follow each other with different chunk counts).
 * A regression shows as a wrong count, or as this test timing out. */
TEST(growing_jobs_never_claim_stale_chunks)
{
    pool *p;
    em_err err;
    CHECK(pool_build(2, &p, &err) == 0);
    chunk_job *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    a->n = 1;
    b->n = MAX_CHUNKS;
    int iters = 20000;
    for (int it = 0; it < iters; it++) {
        pool_run_chunks(p, count_chunk, a, a->n);
        pool_run_chunks(p, count_chunk, b, b->n);
    }
    CHECK_INT(atomic_load(&a->count[0]), iters);
    for (int c = 1; c < MAX_CHUNKS; c++)
        if (atomic_load(&a->count[c]) != 0 || atomic_load(&b->count[c]) != iters) {
            CHECK_INT(atomic_load(&a->count[c]), 0);
            CHECK_INT(atomic_load(&b->count[c]), iters);
            break;
        }
    CHECK_INT(atomic_load(&a->bad_n) + atomic_load(&b->bad_n), 0);
    free(a);
    free(b);
    pool_free(p);
}

/* Pauses longer than the spin put the workers and the caller to sleep;
 * the next jobs must still be picked up and finished. */
TEST(jobs_after_sleep)
{
    pool *p;
    em_err err;
    CHECK(pool_build(3, &p, &err) == 0);
    chunk_job *j = calloc(1, sizeof *j);
    j->n = 5;
    for (int it = 1; it <= 20; it++) {
        usleep(it % 2 ? 2000 : 0);
        pool_run_chunks(p, count_chunk, j, j->n);
    }
    for (int c = 0; c < j->n; c++)
        CHECK_INT(atomic_load(&j->count[c]), 20);
    free(j);
    pool_free(p);
}

static void slot_fn(void *arg, int ith, int nth)
{
    atomic_int *count = arg;
    if (nth == 3 && ith >= 0 && ith < 3)
        atomic_fetch_add(&count[ith], 1);
}

TEST(pool_run_is_one_chunk_per_thread)
{
    pool *p;
    em_err err;
    CHECK(pool_build(3, &p, &err) == 0);
    atomic_int count[3] = {0, 0, 0};
    for (int it = 0; it < 1000; it++)
        pool_run(p, slot_fn, count);
    for (int i = 0; i < 3; i++)
        CHECK_INT(atomic_load(&count[i]), 1000);
    CHECK_INT(pool_size(p), 3);
    pool_free(p);
}

TEST(split_covers_range)
{
    for (long n = 0; n < 200; n += 7)
        for (int nth = 1; nth <= 9; nth++) {
            long next = 0;
            for (int i = 0; i < nth; i++) {
                long lo, hi;
                pool_split(n, i, nth, 16, &lo, &hi);
                CHECK(lo == next || (lo == hi && lo == n));
                CHECK(lo % 16 == 0 || lo == n);
                if (hi > lo)
                    next = hi;
            }
            CHECK_INT(next, n);
        }
}

int main(void)
{
    RUN(chunks_run_once_with_private_tids);
    RUN(jobs_after_sleep);
    RUN(growing_jobs_never_claim_stale_chunks);
    RUN(pool_run_is_one_chunk_per_thread);
    RUN(split_covers_range);
    return tl_summary();
}

/*
 * shard.c - the shard assignment of a sweep's cells (see shard.h).
 */
#include "harness/shard.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Reads a decimal number that fills [s, end) exactly; -1 if it is not one. */
static long read_num(const char *s, const char *end)
{
    if (s == end || end - s > 9)
        return -1;
    long v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int shard_parse(const char *spec, int *index, int *count, em_err *err)
{
    const char *slash = spec ? strchr(spec, '/') : NULL;
    if (!slash)
        return em_errorf(err, "--shard: expected I/N (shard I of N, I from 1 to "
                         "N), got '%s'", spec ? spec : "");
    long i = read_num(spec, slash), n = read_num(slash + 1, slash + strlen(slash));
    if (i < 0 || n < 0)
        return em_errorf(err, "--shard: expected I/N with whole numbers (shard I "
                         "of N, I from 1 to N), got '%s'", spec);
    if (n < 1 || n > SHARD_MAX)
        return em_errorf(err, "--shard %s: N must be from 1 to %d", spec, SHARD_MAX);
    if (i < 1 || i > n)
        return em_errorf(err, "--shard %s: shards are numbered 1 to %ld, so I must "
                         "be from 1 to %ld (Kubernetes' JOB_COMPLETION_INDEX "
                         "counts from 0: pass index + 1)", spec, n, n);
    *index = (int)i;
    *count = (int)n;
    return 0;
}

uint64_t shard_cost(double params, long examples, long tokens)
{
    /* params in thousands up to 1e9 (a 1e12-parameter model), examples x
     * tokens up to 1e9: the product stays below 2^63. */
    double k = params > 0 ? ceil(params / 1000) : 1;
    uint64_t pk = k > 1e9 ? 1000000000u : (uint64_t)k;
    uint64_t work = (uint64_t)(examples > 0 ? examples : 0) *
                    (uint64_t)(tokens > 0 ? tokens : 1);
    if (work > 1000000000u)
        work = 1000000000u;
    return pk * work;
}

/* Largest cost first; equal costs in (member, pair, start) order, so the
 * order is total and the same on every host. */
static int by_cost(const void *a, const void *b)
{
    const shard_cell *x = *(const shard_cell *const *)a;
    const shard_cell *y = *(const shard_cell *const *)b;
    if (x->cost != y->cost)
        return x->cost > y->cost ? -1 : 1;
    if (x->member != y->member)
        return x->member < y->member ? -1 : 1;
    if (x->pair != y->pair)
        return x->pair < y->pair ? -1 : 1;
    return (x->start > y->start) - (x->start < y->start);
}

static int least_loaded(const uint64_t *loads, int count)
{
    int best = 0;
    for (int s = 1; s < count; s++)
        if (loads[s] < loads[best])
            best = s;
    return best;
}

void shard_assign(shard_cell *cells, int n, int count, uint64_t *loads)
{
    uint64_t *load = em_calloc((size_t)(count > 0 ? count : 1), sizeof *load);
    shard_cell **order = em_calloc((size_t)n + 1, sizeof *order);
    for (int i = 0; i < n; i++)
        order[i] = &cells[i];
    qsort(order, (size_t)n, sizeof *order, by_cost);
    for (int i = 0; i < n; i++) {
        int s = least_loaded(load, count);
        order[i]->shard = s;
        load[s] += order[i]->cost;
    }
    if (loads)
        memcpy(loads, load, sizeof *load * (size_t)count);
    free(order);
    free(load);
}

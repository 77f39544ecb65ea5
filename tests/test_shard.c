/* test_shard.c - the shard assignment (harness/shard.h): the I/N syntax
 * and its range, every cell in exactly one shard for N up to 7 (and more
 * shards than cells), the same assignment whatever order the cells come
 * in, and the greedy bound: the most loaded shard exceeds the least by
 * at most the largest cell's cost. */
#include <stdlib.h>
#include <string.h>

#include "harness/shard.h"
#include "tests/testlib.h"

TEST(test_parse)
{
    int i = 0, n = 0;
    em_err e;
    CHECK_INT(shard_parse("1/1", &i, &n, &e), 0);
    CHECK_INT(i, 1);
    CHECK_INT(n, 1);
    CHECK_INT(shard_parse("7/7", &i, &n, &e), 0);
    CHECK_INT(i, 7);
    CHECK_INT(shard_parse("3/10", &i, &n, &e), 0);
    CHECK_INT(n, 10);
    CHECK_INT(shard_parse("0/3", &i, &n, &e), -1);
    CHECK_HAS(e.msg, "numbered 1 to 3");
    CHECK_HAS(e.msg, "JOB_COMPLETION_INDEX");
    CHECK_INT(shard_parse("4/3", &i, &n, &e), -1);
    CHECK_HAS(e.msg, "--shard 4/3");
    CHECK_INT(shard_parse("1/0", &i, &n, &e), -1);
    CHECK_INT(shard_parse("3", &i, &n, &e), -1);
    CHECK_HAS(e.msg, "expected I/N");
    CHECK_INT(shard_parse("a/3", &i, &n, &e), -1);
    CHECK_INT(shard_parse("1/3x", &i, &n, &e), -1);
    CHECK_INT(shard_parse("-1/3", &i, &n, &e), -1);
    CHECK_INT(shard_parse("1/99999999999", &i, &n, &e), -1);
}

TEST(test_cost)
{
    CHECK(shard_cost(1e9, 4, 100) > shard_cost(1e6, 4, 100));
    CHECK(shard_cost(1e6, 8, 100) == 2 * shard_cost(1e6, 4, 100));
    CHECK(shard_cost(0, 4, 100) == shard_cost(1000, 4, 100));
    CHECK(shard_cost(1e15, 1000000, 1000000) > 0); /* clamped, no overflow */
}

/* A family-like grid: 6 members of rising size, 3 pairs, uneven batches. */
static shard_cell *grid(int *n)
{
    static const double params[] = {3.7e3, 1e4, 3e4, 1e5, 3.9e5, 1e6};
    shard_cell *c = calloc(6 * 3 * 5, sizeof *c);
    int k = 0;
    for (int m = 0; m < 6; m++)
        for (int p = 0; p < 3; p++)
            for (int b = 0; b < 5 - p; b++)
                c[k++] = (shard_cell){m, p, b * 4,
                                      shard_cost(params[m], b == 4 - p ? 2 : 4,
                                                 50 + 30 * p), -1};
    *n = k;
    return c;
}

TEST(test_every_cell_once_and_balanced)
{
    int n;
    shard_cell *c = grid(&n);
    for (int count = 1; count <= 7; count++) {
        uint64_t loads[7] = {0}, sum[7] = {0}, maxcost = 0;
        shard_assign(c, n, count, loads);
        for (int i = 0; i < n; i++) {
            CHECK(c[i].shard >= 0 && c[i].shard < count);
            sum[c[i].shard] += c[i].cost;
            if (c[i].cost > maxcost)
                maxcost = c[i].cost;
        }
        uint64_t lo = loads[0], hi = loads[0];
        for (int s = 0; s < count; s++) {
            CHECK_MSG(sum[s] == loads[s], "N=%d shard %d: loads disagree", count, s);
            lo = loads[s] < lo ? loads[s] : lo;
            hi = loads[s] > hi ? loads[s] : hi;
        }
        CHECK_MSG(hi - lo <= maxcost, "N=%d: spread %llu over the largest cell %llu",
                  count, (unsigned long long)(hi - lo), (unsigned long long)maxcost);
    }
    free(c);
}

TEST(test_deterministic)
{
    int n;
    shard_cell *a = grid(&n), *b = grid(&n);
    /* the same cells in reverse order get the same shards */
    for (int i = 0; i < n / 2; i++) {
        shard_cell t = b[i];
        b[i] = b[n - 1 - i];
        b[n - 1 - i] = t;
    }
    for (int count = 1; count <= 7; count++) {
        shard_assign(a, n, count, NULL);
        shard_assign(b, n, count, NULL);
        for (int i = 0; i < n; i++)
            CHECK_MSG(a[i].shard == b[n - 1 - i].shard, "N=%d cell %d", count, i);
    }
    free(a);
    free(b);
}

TEST(test_more_shards_than_cells)
{
    shard_cell c[3] = {{0, 0, 0, 10, -1}, {0, 0, 4, 10, -1}, {1, 0, 0, 5, -1}};
    uint64_t loads[7];
    shard_assign(c, 3, 7, loads);
    CHECK(c[0].shard != c[1].shard && c[1].shard != c[2].shard &&
          c[0].shard != c[2].shard);
    /* equal costs: the lower (member, pair, start) goes first, to shard 0 */
    CHECK_INT(c[0].shard, 0);
    CHECK_INT(c[1].shard, 1);
    CHECK_INT(c[2].shard, 2);
    CHECK_INT(loads[6], 0);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_cost);
    RUN(test_every_cell_once_and_balanced);
    RUN(test_deterministic);
    RUN(test_more_shards_than_cells);
    return tl_summary();
}

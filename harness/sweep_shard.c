/*
 * sweep_shard.c - `sweep --shard I/N`: which cells of the plan this run
 * evaluates. A cell is one family member x one task x variant pair x one
 * batch of consecutive examples (the chunks sweep.c cuts by --batch
 * alone, so they are the same in every shard). harness/shard.c deals the
 * cells out; this file builds them from the plan, remembers which are
 * ours and says what this shard got.
 */
#include <stdlib.h>
#include <string.h>

#include "harness/shard.h"
#include "harness/sweep_int.h"

long sweep_shard_tokens(const task *t, const task_request *r, int n)
{
    long bytes = 0, gen = 0;
    for (int i = 0; i < n; i++) {
        bytes += (long)strlen(r[i].prompt);
        if (r[i].continuation)
            bytes += (long)strlen(r[i].continuation);
        if (r[i].kind == TASK_REQ_GENERATE)
            gen += r[i].max_tokens > 0 ? r[i].max_tokens : t->max_tokens;
    }
    return bytes / 4 + gen + 1;
}

static int pair_batches(const pair *p)
{
    return p->n_ex > 0 ? (p->n_ex + p->chunk - 1) / p->chunk : 0;
}

/* Every cell of the plan, in (member, pair, batch) order: the order of
 * plan.mine. */
static shard_cell *make_cells(run_ctx *c, int *n)
{
    run_plan *pl = &c->plan;
    const family *fam = c->o->fam;
    pl->pair_off = em_calloc((size_t)pl->n_pairs + 1, sizeof *pl->pair_off);
    int per = 0;
    for (int p = 0; p < pl->n_pairs; p++) {
        pl->pair_off[p] = per;
        per += pair_batches(&pl->pairs[p]);
    }
    pl->cells_per_member = per;
    shard_cell *cells = em_calloc((size_t)per * (size_t)fam->n_members + 1,
                                  sizeof *cells);
    int k = 0;
    for (int m = 0; m < fam->n_members; m++)
        for (int p = 0; p < pl->n_pairs; p++) {
            const pair *pp = &pl->pairs[p];
            for (int s = 0; s < pp->n_ex; s += pp->chunk) {
                int ex = s + pp->chunk < pp->n_ex ? pp->chunk : pp->n_ex - s;
                cells[k++] = (shard_cell){m, p, s, shard_cost(
                    fam->members[m].spec.n_params, ex, pp->unit_tokens), 0};
            }
        }
    *n = k;
    return cells;
}

void sweep_shard_plan(run_ctx *c)
{
    const sweep_opts *o = c->o;
    if (o->n_shards <= 0)
        return;
    int n;
    shard_cell *cells = make_cells(c, &n);
    uint64_t *loads = em_calloc((size_t)o->n_shards, sizeof *loads);
    shard_assign(cells, n, o->n_shards, loads);
    c->plan.mine = em_calloc((size_t)n + 1, 1);
    long got = 0;
    double total = 0;
    for (int s = 0; s < o->n_shards; s++)
        total += (double)loads[s];
    for (int i = 0; i < n; i++) {
        c->plan.mine[i] = cells[i].shard == o->shard - 1;
        got += c->plan.mine[i];
    }
    int models = 0;
    for (int m = 0; m < o->fam->n_members; m++)
        models += sweep_shard_member_cells(c, m) > 0;
    fprintf(stderr, "emerge: shard %d/%d: %ld of %d cells (model x task x "
            "variant x batch of examples) on %d of %d models, %.1f%% of the "
            "estimated cost\n", o->shard, o->n_shards, got, n, models,
            o->fam->n_members,
            total > 0 ? 100.0 * (double)loads[o->shard - 1] / total : 0.0);
    free(loads);
    free(cells);
}

int sweep_shard_mine(const run_ctx *c, int m, int p, int start)
{
    const run_plan *pl = &c->plan;
    if (!pl->mine)
        return 1;
    return pl->mine[(size_t)m * (size_t)pl->cells_per_member +
                    (size_t)pl->pair_off[p] +
                    (size_t)(start / pl->pairs[p].chunk)];
}

long sweep_shard_member_cells(const run_ctx *c, int m)
{
    const run_plan *pl = &c->plan;
    if (!pl->mine)
        return 1;
    long n = 0;
    const unsigned char *row = pl->mine + (size_t)m * (size_t)pl->cells_per_member;
    for (int i = 0; i < pl->cells_per_member; i++)
        n += row[i];
    return n;
}

void sweep_shard_free(run_ctx *c)
{
    free(c->plan.mine);
    free(c->plan.pair_off);
    c->plan.mine = NULL;
    c->plan.pair_off = NULL;
}

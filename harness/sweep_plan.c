/*
 * sweep_plan.c - `sweep --plan`: what a sweep (or one shard of it) would
 * cost, before it is submitted: per member the requests, prompt tokens and
 * the generated tokens at most, and an estimated time from a short
 * calibration on the member itself.
 *
 * Nothing is stored (the sweep runs the plan against an in-memory store)
 * and no example is evaluated. The calibration opens each member's backend
 * and times two requests built from the plan's own first prompt, the
 * fastest of three runs each: a log-likelihood (prefill speed: its prompt
 * tokens over the time) and a greedy generation of up to 16 tokens (decode
 * speed: the tokens it made over the time beyond the prefill).
 * Prompt tokens come from the backend's tokenizer where it has one (a
 * sample of 32 prompts gives the tokens per byte for the rest), else from
 * bytes / 4. The estimate is the models' time: the sweep's own work per
 * request (prompts, storing, scoring) comes on top, and dominates for tiny
 * models; answers already in a store, shared prompt prefixes and batching
 * take some off.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/sweep_int.h"

#define PLAN_SAMPLE 32      /* prompts tokenized to learn tokens per byte */
#define PLAN_DECODE 16      /* tokens generated to time decoding */
#define PLAN_REPEAT 3       /* timed runs of each, the fastest kept */

/* What one member would send. */
typedef struct plan_count {
    long loglik, generate, samples;
    double prompt_bytes, gen_tokens;
    const char *first_prompt;   /* a prompt of the plan, for calibration */
    char *first_owned;
} plan_count;

static void count_requests(const pair *p, const task_request *r, int n,
                           plan_count *pc)
{
    for (int i = 0; i < n; i++) {
        pc->prompt_bytes += (double)strlen(r[i].prompt) +
                            (r[i].continuation ? strlen(r[i].continuation) : 0);
        if (r[i].kind == TASK_REQ_GENERATE) {
            int mt = r[i].max_tokens > 0 ? r[i].max_tokens : p->t->max_tokens;
            pc->generate++;
            pc->gen_tokens += mt;
            if (p->v->kind == VARIANT_ZERO_SHOT_COT) {
                /* the second pass: the first prompt, its rationale, the
                 * answer trigger, then up to max_tokens more */
                pc->generate++;
                pc->prompt_bytes += (double)strlen(r[i].prompt) + 4.0 * mt;
                pc->gen_tokens += p->t->max_tokens;
            }
        } else {
            pc->loglik++;
        }
        if (!pc->first_prompt) {
            pc->first_owned = em_strdup(r[i].prompt);
            pc->first_prompt = pc->first_owned;
        }
    }
    if (sweep_is_sc(p))
        pc->samples += n;
}

/* The member's requests over this run's cells. */
static int count_member(run_ctx *c, int m, plan_count *pc, em_err *err)
{
    for (int p = 0; p < c->plan.n_pairs; p++) {
        const pair *pp = &c->plan.pairs[p];
        for (int ex = 0; ex < pp->n_ex; ex++) {
            if (!sweep_shard_mine(c, m, p, ex - ex % pp->chunk))
                continue;
            task_request *r;
            int n;
            if (sweep_pair_requests(pp, ex, &r, &n, err))
                return -1;
            count_requests(pp, r, n, pc);
            task_requests_free(r, n);
        }
    }
    return 0;
}

/* Tokens per byte of the plan's prompts on this backend, from a sample;
 * 0.25 when it has no tokenizer. */
static double tokens_per_byte(run_ctx *c, backend *be)
{
    double bytes = 0, toks = 0;
    int k = 0;
    em_err err;
    for (int p = 0; p < c->plan.n_pairs && k < PLAN_SAMPLE; p++) {
        const pair *pp = &c->plan.pairs[p];
        for (int ex = 0; ex < pp->n_ex && k < PLAN_SAMPLE; ex += 1 + pp->n_ex / 8) {
            task_request *r;
            int n, nt;
            int32_t *ids;
            if (sweep_pair_requests(pp, ex, &r, &n, &err))
                continue;
            if (n && backend_tokenize(be, r[0].prompt, &ids, &nt, &err) == 0) {
                bytes += (double)strlen(r[0].prompt);
                toks += nt;
                free(ids);
                k++;
            }
            task_requests_free(r, n);
        }
    }
    return bytes > 0 && toks > 0 ? toks / bytes : 0.25;
}

/* Seconds of the fastest of PLAN_REPEAT runs of a log-likelihood (or a
 * generation when gen) of prompt; generated tokens in *n_gen; -1 when the
 * backend fails it. The fastest, because a first call pays for warm-up. */
static double time_request(backend *be, const char *prompt, int gen,
                           int *n_gen)
{
    double best = -1;
    em_err err;
    for (int r = 0; r < PLAN_REPEAT; r++) {
        double t0 = em_now(), t;
        int ok;
        if (gen) {
            backend_gen_req gr = {prompt, NULL, 0, PLAN_DECODE, 0, 1, 1};
            backend_gen_res res;
            memset(&res, 0, sizeof res);
            ok = backend_generate(be, &gr, &res, 1, &err) == 0 && res.ok;
            *n_gen = res.n_tokens;
            backend_gen_res_clear(&res);
        } else {
            backend_ll_req lr = {prompt, " the"};
            backend_ll_res res;
            ok = backend_loglikelihood(be, &lr, &res, 1, &err) == 0 && res.ok;
        }
        t = em_now() - t0;
        if (!ok)
            return -1;
        best = best < 0 || t < best ? t : best;
    }
    return best;
}

/* Prefill and decode speeds (tokens/s) from timed requests built on one
 * of the plan's prompts; 0 when the backend cannot do them. */
static void calibrate(backend *be, const char *prompt, double tpb,
                      double *prefill, double *decode)
{
    *prefill = *decode = 0;
    double pt = (double)strlen(prompt) * tpb + 1;
    double tp = be->info.caps & BACKEND_CAP_LOGLIK ?
                time_request(be, prompt, 0, NULL) : -1;
    if (tp > 0)
        *prefill = pt / tp;
    int n = 0;
    double tg = be->info.caps & BACKEND_CAP_GENERATE ?
                time_request(be, prompt, 1, &n) : -1;
    /* the generation's own prefill is the log-likelihood's time */
    if (tg > 0 && n > 0)
        *decode = n / (tg > tp && tp > 0 ? tg - tp : tg);
}

static double seconds_of(const plan_count *pc, double tpb, double prefill,
                         double decode)
{
    double s = 0;
    if (prefill > 0)
        s += pc->prompt_bytes * tpb / prefill;
    if (decode > 0)
        s += pc->gen_tokens / decode;
    return s;
}

static void fmt_time(char *buf, size_t n, double s)
{
    if (s < 120)
        snprintf(buf, n, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.1f min", s / 60);
    else
        snprintf(buf, n, "%.1f h", s / 3600);
}

int sweep_plan(run_ctx *c, em_err *err)
{
    const family *fam = c->o->fam;
    double all_s = 0, all_tok = 0, all_gen = 0;
    long all_req = 0;
    printf("%-24s %9s %9s %12s %11s %10s %10s %10s\n", "member", "loglik",
           "generate", "prompt tok", "gen tok<=", "prefill/s", "decode/s",
           "estimate");
    for (int m = 0; m < fam->n_members; m++) {
        if (sweep_shard_member_cells(c, m) == 0)
            continue;
        plan_count pc = {0};
        if (count_member(c, m, &pc, err)) {
            free(pc.first_owned);
            return -1;
        }
        backend *be = NULL;
        double tpb = 0.25, prefill = 0, decode = 0;
        em_err oerr;
        if (backend_open(&fam->members[m].spec, &be, &oerr) == 0) {
            tpb = tokens_per_byte(c, be);
            if (pc.first_prompt)
                calibrate(be, pc.first_prompt, tpb, &prefill, &decode);
            backend_close(be);
        } else {
            fprintf(stderr, "emerge: plan: %s: not calibrated: %s\n",
                    fam->members[m].spec.name, oerr.msg);
        }
        double s = seconds_of(&pc, tpb, prefill, decode);
        char t[32];
        fmt_time(t, sizeof t, s);
        printf("%-24s %9ld %9ld %12.0f %11.0f %10.0f %10.1f %10s\n",
               fam->members[m].spec.name, pc.loglik, pc.generate,
               pc.prompt_bytes * tpb, pc.gen_tokens, prefill, decode,
               prefill > 0 || decode > 0 ? t : "-");
        all_s += s;
        all_tok += pc.prompt_bytes * tpb;
        all_gen += pc.gen_tokens;
        all_req += pc.loglik + pc.generate;
        free(pc.first_owned);
    }
    char t[32];
    fmt_time(t, sizeof t, all_s);
    printf("total: %ld requests, %.0f prompt tokens, at most %.0f generated; "
           "about %s on this machine (%s)\n", all_req, all_tok, all_gen, t,
           c->o->n_shards > 0 ? "this shard" : "the whole sweep");
    printf("the models' time only: the sweep's own work per request "
           "(prompts, storing, scoring) comes on top, and dominates for tiny "
           "models; answers already stored, shared prompt prefixes and "
           "batching take some off\n");
    return 0;
}

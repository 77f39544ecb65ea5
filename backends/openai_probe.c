/*
 * openai_probe.c - `emerge models --probe URL`: whether a server's
 * log-probs can be trusted, before a sweep spends hours on it.
 *
 * Owns openai_probe (see openai.h). It opens the server as an openai
 * member and asks it a handful of questions, printing one verdict line
 * per check ("ok", "FAIL", or "note" for what is worth knowing but does
 * not make scores wrong):
 *   echo / prompt_logprobs  which way the server returns prompt
 *                           log-probs (one of them is enough);
 *   coverage     every prompt token after the first has a log-prob and
 *                the tokens spell the prompt (usage agrees);
 *   bos          whether a start token is shown, and so whether an
 *                empty context can be scored;
 *   offsets      text_offset consistent with the token texts (U+FFFD
 *                pieces and vLLM's sums of decoded lengths accepted);
 *   repeat       the same request twice gives the same log-prob (prefix
 *                caching must not change numbers);
 *   difference   a continuation scored in one pass equals full minus
 *                prefix of two passes that share the context.
 * The last two go through the backend's own log-likelihood path, so they
 * check what a sweep would store.
 */
#include "backends/openai.h"
#include "backends/openai_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A prompt with a two-byte and a three-byte character: split characters
 * show up as U+FFFD pieces in some servers' token texts. */
#define PROBE_PROMPT "The capital of France is Paris. Le caf\xC3\xA9 co\xC3\xBBte 3 \xE2\x82\xAC."

typedef struct probe {
    backend *b;
    FILE *out;
    int fails;
} probe;

static void verdict(probe *p, const char *tag, const char *check,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* One line: tag (ok, FAIL, note, no), the check, what was seen. */
static void verdict(probe *p, const char *tag, const char *check,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(p->out, "  %-5s %-16s ", tag, check);
    vfprintf(p->out, fmt, ap);
    fputc('\n', p->out);
    va_end(ap);
    p->fails += !strcmp(tag, "FAIL");
}

/* Asks with method; 0 and *answer, 1 when the server cannot (printed),
 * -1 with err when no answer came at all. */
static int probe_ask(probe *p, int method, cJSON **answer, em_err *err)
{
    const char *name = method == LP_ECHO ? "echo" : "prompt_logprobs";
    char msg[256];
    int rc = oa_ask(p->b->state, PROBE_PROMPT, method, answer, msg, sizeof msg);
    if (rc == OA_TRANSPORT && method == LP_ECHO)
        return em_errorf(err, "no answer from the server: %s", msg);
    if (rc == 0) {
        oa_toks t = {0};
        rc = method == LP_ECHO ? oa_echo_toks(*answer, &t, msg, sizeof msg)
                               : oa_plp_toks(*answer, PROBE_PROMPT, 1, &t, msg,
                                             sizeof msg);
        oa_toks_free(&t);
        if (rc == 0 || rc == -1) { /* -1: returned, but see coverage */
            verdict(p, "ok", name, "the server returns prompt log-probs this way");
            return 0;
        }
    }
    verdict(p, "no", name, "%s", msg);
    cJSON_Delete(*answer);
    *answer = NULL;
    return 1;
}

/* Which way the server returns prompt log-probs: echo first, as the
 * backend's auto mode. Returns the method, -2 when neither (a FAIL), -1
 * with err when the server did not answer. */
static int probe_methods(probe *p, cJSON **answer, em_err *err)
{
    int rc = probe_ask(p, LP_ECHO, answer, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return LP_ECHO;
    if (probe_ask(p, LP_PLP, answer, err) == 0)
        return LP_PLP;
    verdict(p, "FAIL", "prompt log-probs", "neither echo nor prompt_logprobs: "
            "log-likelihood tasks cannot be scored on this server (generation "
            "tasks can)");
    return -2;
}

static void probe_bos(probe *p, const oa_toks *t)
{
    const char *s = t->texts[0] ? t->texts[0] : "";
    if (!isnan(t->lp[0]))
        verdict(p, "note", "bos", "the first token \"%.20s\" has a log-prob: the "
                "server conditions on a start token it does not show", s);
    else if (oa_is_start_text(s))
        verdict(p, "ok", "bos", "a start token (\"%.20s\") comes first, unscored: "
                "an empty context can be scored", s);
    else
        verdict(p, "note", "bos", "no start token: the first token \"%.20s\" has "
                "no log-prob, so a request with an empty context fails "
                "(never scored wrong)", s);
}

/* Coverage, BOS and offsets from the one answer. */
static void probe_tokens(probe *p, int method, const cJSON *answer)
{
    char msg[256];
    oa_toks t = {0};
    int rc = method == LP_ECHO ? oa_echo_toks(answer, &t, msg, sizeof msg)
                               : oa_plp_toks(answer, PROBE_PROMPT, 1, &t, msg,
                                             sizeof msg);
    backend_ll_res r = {0};
    int np = 0;
    if (rc == 0) /* byte 0 is the first token's: from byte 1 on, all scored */
        rc = oa_ll_score(PROBE_PROMPT, 1, answer, &t, method == LP_ECHO ? 0 : -1,
                         &r, &np, msg, sizeof msg);
    if (rc == 0)
        verdict(p, "ok", "coverage", "%d prompt tokens spell the prompt, each "
                "after the first with a log-prob", np);
    else
        verdict(p, "FAIL", "coverage", "%s", msg);
    if (t.n > 0)
        probe_bos(p, &t);
    if (method != LP_ECHO)
        verdict(p, "ok", "offsets", "none to check (prompt_logprobs has no "
                "text_offset; tokens placed by their texts)");
    else if (oa_echo_offsets(answer, msg, sizeof msg) == 0)
        verdict(p, "ok", "offsets", "text_offset follows the token texts");
    else
        verdict(p, "FAIL", "offsets", "%s", msg);
    oa_toks_free(&t);
}

/* The scores a sweep would store: C twice (the second after a cached
 * prefix), then A and B whose difference C must equal. */
static void probe_numbers(probe *p, em_err *err)
{
    const char *ctx = "The capital of France is", *head = "The capital of";
    backend_ll_req rq[4] = {{ctx, " Paris"}, {ctx, " Paris"},
                            {head, " France is Paris"}, {head, " France is"}};
    backend_ll_res rs[4] = {{0}};
    if (backend_loglikelihood(p->b, rq, rs, 1, err) ||
        backend_loglikelihood(p->b, rq + 1, rs + 1, 3, err)) {
        verdict(p, "FAIL", "repeat", "%s", err->msg);
        return;
    }
    for (int i = 0; i < 4; i++)
        if (!rs[i].ok) {
            verdict(p, "FAIL", i < 2 ? "repeat" : "difference", "%s", rs[i].error);
            return;
        }
    double d = fabs(rs[0].logprob - rs[1].logprob);
    verdict(p, d <= 1e-4 ? "ok" : "FAIL", "repeat", "log P(\" Paris\" | \"%s\") "
            "= %.6f, then %.6f%s", ctx, rs[0].logprob, rs[1].logprob,
            d <= 1e-4 ? "" : ": the same request gives other numbers (prefix "
            "caching or batching changes scores)");
    double two = rs[2].logprob - rs[3].logprob, diff = fabs(two - rs[1].logprob);
    if (rs[2].n_tokens - rs[3].n_tokens != rs[1].n_tokens) {
        verdict(p, "note", "difference", "not comparable: \" Paris\" is %d "
                "tokens alone but %d after \" France is\"", rs[1].n_tokens,
                rs[2].n_tokens - rs[3].n_tokens);
        return;
    }
    verdict(p, diff <= 2e-3 ? "ok" : "FAIL", "difference", "%.6f in one pass, "
            "%.6f as full minus prefix (%d token%s)%s", rs[1].logprob, two,
            rs[1].n_tokens, rs[1].n_tokens == 1 ? "" : "s",
            diff <= 2e-3 ? "" : ": a token's log-prob depends on what follows it");
}

int openai_probe(const backend_spec *spec, FILE *out, em_err *err)
{
    backend *b;
    if (backend_open(spec, &b, err))
        return -1;
    if (b->ops != &backend_openai_ops) {
        backend_close(b);
        return em_errorf(err, "--probe checks openai servers, not '%s' members",
                         b->ops->name);
    }
    probe p = {b, out, 0};
    fprintf(out, "probe %s (model %s)\n", spec->path ? spec->path : "?",
            b->info.name);
    cJSON *answer = NULL;
    int m = probe_methods(&p, &answer, err);
    if (m == -1) {
        backend_close(b);
        return -1;
    }
    if (m >= 0) {
        probe_tokens(&p, m, answer);
        probe_numbers(&p, err);
    }
    cJSON_Delete(answer);
    backend_close(b);
    if (p.fails)
        fprintf(out, "verdict: %d check%s failed: this server's log-likelihoods "
                "would be wrong or missing\n", p.fails, p.fails == 1 ? "" : "s");
    else
        fprintf(out, "verdict: ok: this server's log-likelihoods can be "
                "trusted\n");
    return p.fails ? 1 : 0;
}

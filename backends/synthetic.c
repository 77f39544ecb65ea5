/*
 * synthetic.c - a test backend whose ability is a known function of size.
 *
 * Owns: backend_synthetic_ops. It exists so the harness and the scaling
 * metrics can be tested against a ground truth; it is never a demo model.
 *
 * The model reads an arithmetic question "A op B" (op one of + - * x) from
 * the prompt: the last such expression in the LAST line that holds one
 * (scanning lines from the end, so a zero-shot-CoT second pass, whose last
 * lines are the rationale and "Therefore, the answer is", still finds the
 * question). It knows the true answer T. A prompt without a question fails
 * that request ("no arithmetic question in the prompt").
 *
 * Options (family file keys, all optional except params):
 *   params    N, parameter count (the member's `params`), required
 *   shape     smooth | sharp | inverse | flat | ushape   (default smooth)
 *   midpoint  M, parameters at the middle of the transition (default 1e8)
 *   width     w, decades the transition takes (default: sharp 0.2,
 *             ushape 1, others 2)
 *   floor, ceil   lowest and highest probability (default 0 and 1)
 *   k         answers the model spreads its mass over (default 4)
 *   spread    decades by which examples' midpoints differ (default 0)
 *   seed      integer mixed into every draw (default 0)
 *   answer_tokens t (default 1): the answer is t tokens, each right with the
 *             shape's probability, so the whole answer's is p^t: a smooth
 *             per-token curve under a sharp exact-match one (the mirage
 *             test's metric-induced case, metrics/mirage.h)
 *   batch_jitter  j (default 0): adds j * (1000 n + i) to the log-prob of
 *             request i of a batch of n, imitating an engine whose numbers
 *             depend on how requests were batched; tests use it to check
 *             that a resumed sweep sends the same batches as a fresh one
 *
 * With x = log10 N, m = log10 M + spread*(u_q - 0.5) where u_q = U(seed+1, q)
 * is a per-question uniform, and L(z) = 1/(1+exp(-z)):
 *   s       = L(2 ln 9 (x - m) / w)      (goes 0.1 -> 0.9 over w decades)
 *   smooth, sharp:  p = floor + (ceil - floor) s
 *   inverse:        p = ceil - (ceil - floor) s
 *   flat:           p = (floor + ceil) / 2
 *   ushape:         p = ceil - (ceil - floor) exp(-2 ((x - m) / w)^2)
 * p is then raised to the power `answer_tokens` and clamped to [1e-6, 1 - 1e-6].
 *
 * The model's answer distribution: P(T) = p, and (1-p)/(k-1) on each of
 * k-1 wrong answers T+1 .. T+k-1.
 *   loglikelihood: a continuation whose number (after trimming spaces and a
 *     final '.') is T gets log p, any other continuation log((1-p)/(k-1));
 *     n_tokens = its length in bytes (one token per character), and
 *     is_greedy = its probability is the largest of the distribution
 *     (T when p >= (1-p)/(k-1), otherwise any wrong answer).
 *   generate: a deterministic SAMPLE from that distribution: with the
 *     question string q ("37+48") and u = U(seed, q), the output is T when
 *     u < p, else T + j with j = 1 + floor(U(seed+2, q) (k-1)). The text is
 *     the number, preceded by a space unless the prompt ends in whitespace,
 *     cut to max_tokens characters; token log-probs spread the answer's
 *     log-probability evenly over its characters.
 *   sampled generate (temperature > 0: self-consistency and --temperature
 *     runs): the same distribution, but drawn per request seed r: the
 *     output is T when U(seed ^ r, q) < p, else T + j with
 *     j = 1 + floor(U(seed ^ r ^ c, q) (k-1)) (c a fixed constant). So
 *     each sample is right with probability p and wrong answers spread
 *     over k-1 values: a majority of n samples beats one sample exactly
 *     when p > (1-p)/(k-1), the plurality threshold. The temperature's
 *     value does not change p.
 * U(s, q) = em_rand01 seeded by the FNV-1a hash of q with seed s, so the
 * same question gets the same draw in every prompt, run and variant.
 */
#include "backends/backend.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SHAPE_SMOOTH, SHAPE_SHARP, SHAPE_INVERSE, SHAPE_FLAT,
               SHAPE_USHAPE } syn_shape;

typedef struct syn {
    double x;        /* log10 params */
    syn_shape shape;
    double m, w, lo, hi, spread, jitter, tokens;
    int k;
    uint64_t seed;
} syn;

static const char *const shape_names[] = {"smooth", "sharp", "inverse", "flat",
                                          "ushape", NULL};

static int opt_num(const backend_spec *sp, const char *key, double def,
                   double *out, em_err *err)
{
    const char *v = backend_spec_opt(sp, key);
    *out = def;
    if (!v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !isfinite(d))
        return em_errorf(err, "synthetic: option '%s' must be a number, got '%s'",
                         key, v);
    *out = d;
    return 0;
}

static int syn_configure(const backend_spec *sp, syn *s, em_err *err)
{
    if (!(sp->n_params > 0))
        return em_errorf(err, "synthetic: 'params' (a positive parameter "
                         "count) is required");
    s->x = log10(sp->n_params);
    const char *shape = backend_spec_opt(sp, "shape");
    s->shape = SHAPE_SMOOTH;
    if (shape) {
        int i = 0;
        while (shape_names[i] && strcmp(shape_names[i], shape))
            i++;
        if (!shape_names[i])
            return em_errorf(err, "synthetic: unknown shape '%s' (smooth, sharp,"
                             " inverse, flat, ushape)", shape);
        s->shape = (syn_shape)i;
    }
    double defw = s->shape == SHAPE_SHARP ? 0.2 : s->shape == SHAPE_USHAPE ? 1 : 2;
    double mid, k, seed;
    if (opt_num(sp, "midpoint", 1e8, &mid, err) || opt_num(sp, "width", defw, &s->w, err) ||
        opt_num(sp, "floor", 0, &s->lo, err) || opt_num(sp, "ceil", 1, &s->hi, err) ||
        opt_num(sp, "k", 4, &k, err) || opt_num(sp, "spread", 0, &s->spread, err) ||
        opt_num(sp, "seed", 0, &seed, err) ||
        opt_num(sp, "batch_jitter", 0, &s->jitter, err) ||
        opt_num(sp, "answer_tokens", 1, &s->tokens, err))
        return -1;
    if (s->tokens < 1 || s->tokens > 1000)
        return em_errorf(err, "synthetic: 'answer_tokens' must be between 1 and 1000");
    if (mid <= 0 || s->w <= 0)
        return em_errorf(err, "synthetic: 'midpoint' and 'width' must be positive");
    if (k < 2 || k > 1000)
        return em_errorf(err, "synthetic: 'k' must be between 2 and 1000");
    if (s->lo < 0 || s->hi > 1 || s->lo > s->hi)
        return em_errorf(err, "synthetic: need 0 <= floor <= ceil <= 1");
    s->m = log10(mid);
    s->k = (int)k;
    s->seed = (uint64_t)seed;
    return 0;
}

static double draw(uint64_t seed, const char *q)
{
    uint64_t st = em_hash64(q, strlen(q), seed);
    return em_rand01(&st);
}

static double syn_p(const syn *s, const char *q)
{
    double m = s->m + s->spread * (draw(s->seed + 1, q) - 0.5);
    double z = 2 * log(9.0) * (s->x - m) / s->w;
    double sig = 1 / (1 + exp(-z)), p;
    switch (s->shape) {
    case SHAPE_INVERSE: p = s->hi - (s->hi - s->lo) * sig; break;
    case SHAPE_FLAT: p = (s->lo + s->hi) / 2; break;
    case SHAPE_USHAPE: {
        double d = (s->x - m) / s->w;
        p = s->hi - (s->hi - s->lo) * exp(-2 * d * d);
        break;
    }
    default: p = s->lo + (s->hi - s->lo) * sig; break;
    }
    p = pow(p, s->tokens);
    return p < 1e-6 ? 1e-6 : p > 1 - 1e-6 ? 1 - 1e-6 : p;
}

/* ---- question parsing --------------------------------------------------- */

typedef struct question {
    char text[64]; /* canonical "37+48" */
    long long answer;
} question;

static int parse_int(const char *s, const char **end, long long *v)
{
    int n = 0;
    *v = 0;
    while (isdigit((unsigned char)s[n]) && n < 10)
        *v = *v * 10 + (s[n++] - '0');
    if (n == 0 || isdigit((unsigned char)s[n]))
        return -1;
    *end = s + n;
    return 0;
}

/* The last "A op B" in [s, e); 0 when found. */
static int scan_line(const char *s, const char *e, question *q)
{
    int found = 0;
    for (const char *p = s; p < e; p++) {
        if (!isdigit((unsigned char)*p) || (p > s && isdigit((unsigned char)p[-1])))
            continue;
        long long a, b;
        const char *t;
        if (parse_int(p, &t, &a) != 0)
            continue;
        while (t < e && *t == ' ')
            t++;
        char op = t < e ? *t : 0;
        if (op != '+' && op != '-' && op != '*' && op != 'x')
            continue;
        t++;
        while (t < e && *t == ' ')
            t++;
        if (t >= e || parse_int(t, &t, &b) != 0 || t > e)
            continue;
        q->answer = op == '+' ? a + b : op == '-' ? a - b : a * b;
        snprintf(q->text, sizeof q->text, "%lld%c%lld", a, op == 'x' ? '*' : op, b);
        found = 1;
    }
    return found ? 0 : -1;
}

static int find_question(const char *prompt, question *q)
{
    const char *end = prompt + strlen(prompt);
    while (end > prompt) {
        const char *start = end;
        while (start > prompt && start[-1] != '\n')
            start--;
        if (scan_line(start, end, q) == 0)
            return 0;
        end = start > prompt ? start - 1 : prompt;
    }
    return -1;
}

/* The number a continuation states, if it is one. */
static int cont_number(const char *c, long long *v)
{
    while (*c == ' ' || *c == '\t' || *c == '\n')
        c++;
    int neg = *c == '-';
    c += neg;
    const char *t;
    if (parse_int(c, &t, v) != 0)
        return -1;
    if (*t == '.')
        t++;
    while (*t == ' ' || *t == '\t' || *t == '\n')
        t++;
    if (*t)
        return -1;
    if (neg)
        *v = -*v;
    return 0;
}

/* ---- ops ---------------------------------------------------------------- */

static int syn_open(const backend_spec *spec, void **state, backend_info *info,
                    em_err *err)
{
    syn *s = em_calloc(1, sizeof *s);
    if (syn_configure(spec, s, err) != 0) {
        free(s);
        return -1;
    }
    snprintf(info->name, sizeof info->name, "%s", spec->name ? spec->name : "synthetic");
    snprintf(info->arch, sizeof info->arch, "synthetic");
    info->n_params = spec->n_params;
    info->n_ctx = 0;
    info->caps = BACKEND_CAP_LOGLIK | BACKEND_CAP_GENERATE | BACKEND_CAP_GEN_LOGPROBS;
    *state = s;
    return 0;
}

static int syn_loglik(void *state, const backend_ll_req *req,
                      backend_ll_res *res, int n, em_err *err)
{
    (void)err;
    const syn *s = state;
    for (int i = 0; i < n; i++) {
        question q;
        if (find_question(req[i].context, &q) != 0) {
            snprintf(res[i].error, sizeof res[i].error,
                     "synthetic: no arithmetic question in the prompt");
            continue;
        }
        double p = syn_p(s, q.text), pw = (1 - p) / (s->k - 1);
        long long v;
        int right = cont_number(req[i].continuation, &v) == 0 && v == q.answer;
        size_t len = strlen(req[i].continuation);
        res[i].logprob = log(right ? p : pw) + s->jitter * (1000.0 * n + i);
        res[i].n_tokens = len ? (int)len : 1;
        res[i].is_greedy = right ? p >= pw : pw > p;
        res[i].ok = 1;
    }
    return 0;
}

static void gen_one(const syn *s, const backend_gen_req *r, backend_gen_res *res)
{
    question q;
    if (find_question(r->prompt, &q) != 0) {
        snprintf(res->error, sizeof res->error,
                 "synthetic: no arithmetic question in the prompt");
        return;
    }
    double p = syn_p(s, q.text);
    long long ans = q.answer;
    double lp = log(p);
    uint64_t s1 = s->seed, s2 = s->seed + 2;
    if (r->temperature > 0) {
        s1 = s->seed ^ r->seed;
        s2 = s1 ^ 0x5851f42d4c957f2dULL;
    }
    if (draw(s1, q.text) >= p) {
        ans += 1 + (long long)(draw(s2, q.text) * (s->k - 1));
        lp = log((1 - p) / (s->k - 1));
    }
    size_t plen = strlen(r->prompt);
    int space = plen == 0 || !isspace((unsigned char)r->prompt[plen - 1]);
    char text[64];
    int len = snprintf(text, sizeof text, "%s%lld", space ? " " : "", ans);
    if (r->max_tokens > 0 && len > r->max_tokens)
        len = r->max_tokens;
    for (int j = 0; j < r->n_stop; j++) {
        char *hit = r->stop[j][0] ? strstr(text, r->stop[j]) : NULL;
        if (hit && hit - text < len)
            len = (int)(hit - text);
    }
    res->text = em_strndup(text, (size_t)len);
    res->n_tokens = len;
    res->token_logprobs = em_malloc(sizeof(float) * (size_t)(len ? len : 1));
    for (int j = 0; j < len; j++)
        res->token_logprobs[j] = (float)(lp / len);
    res->sum_logprob = len ? lp : 0;
    res->ok = 1;
}

static int syn_generate(void *state, const backend_gen_req *req,
                        backend_gen_res *res, int n, em_err *err)
{
    (void)err;
    for (int i = 0; i < n; i++)
        gen_one(state, &req[i], &res[i]);
    return 0;
}

static void syn_close(void *state) { free(state); }

const backend_ops backend_synthetic_ops = {
    .name = "synthetic",
    .open = syn_open,
    .loglikelihood = syn_loglik,
    .generate = syn_generate,
    .close = syn_close,
};

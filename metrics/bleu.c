/*
 * bleu.c - BLEU as sacrebleu computes it by default, and its tokeniser.
 *
 * Owns: the 13a tokeniser (metric_tokenize_13a), the n-gram statistics of
 * one segment (metric_bleu_add), corpus BLEU from accumulated statistics
 * (metric_bleu_corpus) and sentence BLEU (metric_bleu_sentence).
 *
 * Definitions (sacrebleu 2.x defaults, see metrics/README.md):
 *  - each segment is right-stripped, then 13a-tokenised, then split on
 *    spaces; n-grams of order 1..4 are counted;
 *  - matches of order n: sum over distinct hypothesis n-grams of
 *    min(count in hyp, max over refs of count in that ref) ("clipping");
 *    totals of order n: max(0, hyp_len - n + 1);
 *  - the reference length of a segment is the reference length closest to
 *    the hypothesis length, ties broken by the shorter (as sacrebleu and
 *    NLTK's closest_ref_length);
 *  - BP = exp(1 - ref_len/hyp_len) when hyp_len < ref_len, else 1
 *    (0 when hyp_len = 0);
 *  - smoothing "exp" (mteval-v13a): the k-th order with zero matches gets
 *    precision 1/(2^k * total);
 *  - BLEU = BP * exp(mean of log precisions); a zero precision gives 0,
 *    and so does a hypothesis without a single matching n-gram.
 * Sentence BLEU uses sacrebleu's sentence_bleu default of effective order:
 * orders the hypothesis is too short to have are left out of the mean.
 */
#include "metrics/metric.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLEU_N 4

/* ---- 13a tokenisation -------------------------------------------------- */

/* Byte length of the whitespace character at p (as Python's str.split()
 * sees whitespace, which is what sacrebleu joins tokens with), else 0. */
static int ws_len(const unsigned char *p)
{
    if (*p == ' ' || (*p >= '\t' && *p <= '\r') || (*p >= 0x1c && *p <= 0x1f))
        return 1;
    if (p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
        return 2;
    if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
        return 3; /* U+1680 */
    if (p[0] == 0xe2 && p[1] == 0x80 &&
        ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 ||
         p[2] == 0xaf))
        return 3; /* U+2000..200A, 2028, 2029, 202F */
    if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
        return 3; /* U+205F */
    if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
        return 3; /* U+3000 */
    return 0;
}

/* Replaces every occurrence of `from` in b by `to`, left to right without
 * overlap, as Python's str.replace does. */
static void replace_all(em_buf *b, const char *from, const char *to)
{
    size_t nf = strlen(from);
    if (!b->s || !strstr(b->s, from))
        return;
    em_buf out = {0};
    const char *p = b->s, *q;
    while ((q = strstr(p, from))) {
        em_buf_put(&out, p, (size_t)(q - p));
        em_buf_puts(&out, to);
        p = q + nf;
    }
    em_buf_puts(&out, p);
    em_buf_free(b);
    *b = out;
}

/* The first regex of 13a: ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 ".
 * The class is { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
 * (note: not ' - . , which the later rules handle). */
static int is_13a_punct(unsigned char c)
{
    return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') ||
           (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
           (c >= ':' && c <= '@') || c == '/';
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_dot_comma(unsigned char c) { return c == '.' || c == ','; }

/* Each of the following passes is one re.sub over the whole line: matches
 * are found left to right and never overlap, so a character consumed by one
 * match cannot start the next. Working on bytes is equivalent to Python's
 * code points here because every character the patterns name is ASCII and
 * UTF-8 continuation bytes are never '.', ',', '-' or digits. */
static void pass_punct(const char *s, em_buf *o)
{
    for (; *s; s++) {
        if (is_13a_punct((unsigned char)*s)) {
            char t[3] = {' ', *s, ' '};
            em_buf_put(o, t, 3);
        } else {
            em_buf_putc(o, *s);
        }
    }
}

/* ([^0-9])([\.,]) -> "\1 \2 " : period/comma not preceded by a digit. */
static void pass_dot_after_nondigit(const char *s, em_buf *o)
{
    while (*s) {
        if (s[1] && !is_digit((unsigned char)s[0]) &&
            is_dot_comma((unsigned char)s[1])) {
            char t[4] = {s[0], ' ', s[1], ' '};
            em_buf_put(o, t, 4);
            s += 2;
        } else {
            em_buf_putc(o, *s++);
        }
    }
}

/* ([\.,])([^0-9]) -> " \1 \2" : period/comma not followed by a digit. */
static void pass_dot_before_nondigit(const char *s, em_buf *o)
{
    while (*s) {
        if (s[1] && is_dot_comma((unsigned char)s[0]) &&
            !is_digit((unsigned char)s[1])) {
            char t[4] = {' ', s[0], ' ', s[1]};
            em_buf_put(o, t, 4);
            s += 2;
        } else {
            em_buf_putc(o, *s++);
        }
    }
}

/* ([0-9])(-) -> "\1 \2 " : a dash after a digit. */
static void pass_dash_after_digit(const char *s, em_buf *o)
{
    while (*s) {
        if (is_digit((unsigned char)s[0]) && s[1] == '-') {
            char t[4] = {s[0], ' ', '-', ' '};
            em_buf_put(o, t, 4);
            s += 2;
        } else {
            em_buf_putc(o, *s++);
        }
    }
}

/* ' '.join(s.split()): single spaces, none at the ends. */
static char *squeeze_spaces(const char *s)
{
    em_buf o = {0};
    const unsigned char *p = (const unsigned char *)s;
    int pending = 0;
    em_buf_puts(&o, "");
    while (*p) {
        int w = ws_len(p);
        if (w) {
            pending = o.len > 0;
            p += w;
            continue;
        }
        if (pending)
            em_buf_putc(&o, ' ');
        pending = 0;
        em_buf_putc(&o, (char)*p++);
    }
    return em_buf_take(&o);
}

char *metric_tokenize_13a(const char *s)
{
    em_buf b = {0}, t = {0};
    em_buf_puts(&b, s ? s : "");
    replace_all(&b, "<skipped>", "");
    replace_all(&b, "-\n", "");
    replace_all(&b, "\n", " ");
    if (strchr(b.s, '&')) {
        replace_all(&b, "&quot;", "\"");
        replace_all(&b, "&amp;", "&");
        replace_all(&b, "&lt;", "<");
        replace_all(&b, "&gt;", ">");
    }
    /* sacrebleu pads with spaces before the regexes; the padding only
     * matters to the period rules, which need a neighbour character. */
    em_buf_printf(&t, " %s ", b.s);
    em_buf_reset(&b);
    pass_punct(t.s, &b);
    em_buf_reset(&t);
    pass_dot_after_nondigit(b.s, &t);
    em_buf_reset(&b);
    pass_dot_before_nondigit(t.s, &b);
    em_buf_reset(&t);
    pass_dash_after_digit(b.s, &t);
    char *out = squeeze_spaces(t.s);
    em_buf_free(&b);
    em_buf_free(&t);
    return out;
}

/* ---- n-gram statistics ------------------------------------------------- */

typedef struct tok {
    const char *s;
    int len;
} tok;

typedef struct seg {
    char *text; /* tokenised, owned */
    tok *t;
    int n;
} seg;

/* Python's str.rstrip(): drops trailing whitespace. */
static char *rstrip_dup(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t end = 0, i = 0;
    while (p[i]) {
        int w = ws_len(p + i);
        if (w) {
            i += (size_t)w;
        } else {
            i++;
            end = i;
        }
    }
    return em_strndup((const char *)p, end);
}

static void seg_build(seg *g, const char *line)
{
    char *r = rstrip_dup(line);
    g->text = metric_tokenize_13a(r);
    free(r);
    g->n = 0;
    g->t = NULL;
    int cap = 0;
    for (char *p = g->text; *p;) {
        char *e = strchr(p, ' ');
        int len = e ? (int)(e - p) : (int)strlen(p);
        if (g->n == cap) {
            cap = cap ? cap * 2 : 16;
            g->t = em_realloc(g->t, sizeof(tok) * (size_t)cap);
        }
        g->t[g->n].s = p;
        g->t[g->n].len = len;
        g->n++;
        p += len;
        if (*p == ' ')
            p++;
    }
}

static void seg_free(seg *g)
{
    free(g->text);
    free(g->t);
}

/* An n-gram is a run of n tokens starting at t. */
typedef struct gram {
    const tok *t;
    int n;
} gram;

static int gram_cmp(const void *a, const void *b)
{
    const gram *x = a, *y = b;
    for (int i = 0; i < x->n; i++) {
        int lx = x->t[i].len, ly = y->t[i].len;
        int c = memcmp(x->t[i].s, y->t[i].s, (size_t)(lx < ly ? lx : ly));
        if (c)
            return c;
        if (lx != ly)
            return lx < ly ? -1 : 1;
    }
    return 0;
}

/* Sorted n-grams of order n of g; *cnt set; malloc'd (NULL when none). */
static gram *grams_sorted(const seg *g, int n, int *cnt)
{
    *cnt = g->n - n + 1 > 0 ? g->n - n + 1 : 0;
    if (!*cnt)
        return NULL;
    gram *v = em_malloc(sizeof(gram) * (size_t)*cnt);
    for (int i = 0; i < *cnt; i++) {
        v[i].t = g->t + i;
        v[i].n = n;
    }
    qsort(v, (size_t)*cnt, sizeof(gram), gram_cmp);
    return v;
}

/* Occurrences of key in the sorted array v[0..n). */
static int gram_count(const gram *v, int n, const gram *key)
{
    int lo = 0, hi = n;
    while (lo < hi) { /* first element >= key */
        int mid = lo + (hi - lo) / 2;
        if (gram_cmp(&v[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int c = 0;
    while (lo + c < n && gram_cmp(&v[lo + c], key) == 0)
        c++;
    return c;
}

/* Clipped matches of order n of hyp against refs. */
static double clipped_matches(const seg *hyp, const seg *refs, int n_refs,
                              int n)
{
    int nh;
    gram *h = grams_sorted(hyp, n, &nh);
    gram **r = em_calloc((size_t)(n_refs ? n_refs : 1), sizeof(gram *));
    int *nr = em_calloc((size_t)(n_refs ? n_refs : 1), sizeof(int));
    for (int j = 0; j < n_refs; j++)
        r[j] = grams_sorted(&refs[j], n, &nr[j]);
    double matches = 0;
    for (int i = 0; i < nh;) {
        int c = 1;
        while (i + c < nh && gram_cmp(&h[i], &h[i + c]) == 0)
            c++;
        int best = 0;
        for (int j = 0; j < n_refs; j++) {
            int rc = gram_count(r[j], nr[j], &h[i]);
            if (rc > best)
                best = rc;
        }
        matches += c < best ? c : best;
        i += c;
    }
    for (int j = 0; j < n_refs; j++)
        free(r[j]);
    free(r);
    free(nr);
    free(h);
    return matches;
}

/* Closest reference length; ties go to the shorter reference. */
static int closest_ref_len(int hyp_len, const seg *refs, int n_refs)
{
    int best = -1, best_diff = -1;
    for (int j = 0; j < n_refs; j++) {
        int d = abs(hyp_len - refs[j].n);
        if (best_diff < 0 || d < best_diff ||
            (d == best_diff && refs[j].n < best)) {
            best_diff = d;
            best = refs[j].n;
        }
    }
    return best < 0 ? 0 : best;
}

void metric_bleu_add(metric_bleu_stats *st, const char *hyp,
                     const char *const *refs, int n_refs)
{
    seg h, *r = em_calloc((size_t)(n_refs > 0 ? n_refs : 1), sizeof(seg));
    seg_build(&h, hyp);
    for (int j = 0; j < n_refs; j++)
        seg_build(&r[j], refs[j]);
    for (int n = 1; n <= BLEU_N; n++) {
        st->matches[n - 1] += clipped_matches(&h, r, n_refs, n);
        st->totals[n - 1] += h.n - n + 1 > 0 ? h.n - n + 1 : 0;
    }
    st->hyp_len += h.n;
    st->ref_len += closest_ref_len(h.n, r, n_refs);
    for (int j = 0; j < n_refs; j++)
        seg_free(&r[j]);
    free(r);
    seg_free(&h);
}

/* sacrebleu's compute_bleu with smooth_method="exp". effective_order
 * drops the orders with no n-grams at all from the geometric mean. */
static void bleu_compute(const metric_bleu_stats *st, int effective_order,
                         metric_bleu *out)
{
    memset(out, 0, sizeof *out);
    out->hyp_len = st->hyp_len;
    out->ref_len = st->ref_len;
    if (st->hyp_len < st->ref_len)
        out->bp = st->hyp_len > 0 ? exp(1 - st->ref_len / st->hyp_len) : 0;
    else
        out->bp = 1;
    /* No match of any order: 0, with every precision 0 (sacrebleu #141),
     * rather than a smoothed score for a hypothesis sharing nothing. */
    int any = 0;
    for (int n = 0; n < BLEU_N; n++)
        any |= st->matches[n] > 0;
    if (!any)
        return;
    int eff = BLEU_N;
    double smooth = 1;
    for (int n = 0; n < BLEU_N; n++) {
        if (st->totals[n] == 0)
            break;
        if (effective_order)
            eff = n + 1;
        if (st->matches[n] == 0) {
            smooth *= 2;
            out->precisions[n] = 100.0 / (smooth * st->totals[n]);
        } else {
            out->precisions[n] = 100.0 * st->matches[n] / st->totals[n];
        }
    }
    double logsum = 0;
    for (int n = 0; n < eff; n++) {
        if (out->precisions[n] <= 0) {
            out->score = 0; /* sacrebleu's my_log(0) = -9999999999 */
            return;
        }
        logsum += log(out->precisions[n]);
    }
    out->score = out->bp * exp(logsum / eff);
}

void metric_bleu_corpus(const metric_bleu_stats *st, metric_bleu *out)
{
    bleu_compute(st, 0, out);
}

double metric_bleu_sentence(const char *hyp, const char *const *refs,
                            int n_refs)
{
    metric_bleu_stats st;
    metric_bleu b;
    memset(&st, 0, sizeof st);
    metric_bleu_add(&st, hyp, refs, n_refs);
    bleu_compute(&st, 1, &b);
    return b.score;
}

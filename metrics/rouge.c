/*
 * rouge.c - ROUGE-N and ROUGE-L F-measures as Google's rouge-score computes
 * them with its default tokenizer (no stemming).
 *
 * Owns: the rouge-score tokenisation (lower-case, every run of characters
 * outside [a-z0-9] becomes a separator) and the F-measures:
 *   ROUGE-N: overlap = sum over n-grams of min(count in pred, count in ref);
 *            P = overlap / max(#pred n-grams, 1), R = overlap / max(#ref, 1)
 *   ROUGE-L: LCS length of the token sequences; P = lcs/|pred|, R = lcs/|ref|
 *            (0 when either side is empty)
 *   F = 2PR/(P+R), 0 when P+R = 0.
 * Non-ASCII characters are separators, as in rouge-score after lower()
 * (except the two that Python lower-cases to ASCII letters).
 */
#include "metrics/metric.h"

#include <stdlib.h>
#include <string.h>

typedef struct words {
    char *buf;   /* lower-cased copy with separators turned into NULs */
    char **w;
    int n;
} words;

static int is_alnum_lower(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Python's lower() turns two non-ASCII letters into ASCII ones that then
 * survive [a-z0-9]: KELVIN SIGN (E2 84 AA) -> "k" and CAPITAL I WITH DOT
 * ABOVE (C4 B0) -> "i" + a combining dot (a separator). Returns the letter
 * and sets *len to the bytes consumed, or 0. */
static char ascii_lower_of(const unsigned char *p, size_t *len)
{
    if (p[0] == 0xe2 && p[1] == 0x84 && p[2] == 0xaa) {
        *len = 3;
        return 'k';
    }
    if (p[0] == 0xc4 && p[1] == 0xb0) {
        *len = 2;
        return 'i';
    }
    return 0;
}

static void words_build(words *ws, const char *s)
{
    size_t len = strlen(s), o = 0;
    ws->buf = em_malloc(len + 1);
    ws->w = em_malloc(sizeof(char *) * (len / 2 + 1));
    ws->n = 0;
    for (size_t i = 0; i <= len;) {
        size_t step = 1;
        char c = s[i], u = ascii_lower_of((const unsigned char *)s + i, &step);
        if (u)
            c = u;
        else if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        ws->buf[o] = is_alnum_lower(c) ? c : '\0';
        if (ws->buf[o] && (o == 0 || !ws->buf[o - 1]))
            ws->w[ws->n++] = ws->buf + o;
        o++;
        i += step;
    }
}

static void words_free(words *ws)
{
    free(ws->buf);
    free(ws->w);
}

/* n-gram i of ws equals n-gram j of vs. */
static int gram_eq(const words *ws, int i, const words *vs, int j, int n)
{
    for (int k = 0; k < n; k++)
        if (strcmp(ws->w[i + k], vs->w[j + k]))
            return 0;
    return 1;
}

static double fmeasure(double p, double r)
{
    return p + r > 0 ? 2 * p * r / (p + r) : 0;
}

/* Matched ref n-grams are marked used so that each counts once; this is
 * exactly sum over distinct n-grams of min(pred count, ref count). The
 * quadratic scan is fine for the sentence lengths metrics see. */
static double rouge_n_words(const words *pred, const words *ref, int n)
{
    int np = pred->n - n + 1 > 0 ? pred->n - n + 1 : 0;
    int nr = ref->n - n + 1 > 0 ? ref->n - n + 1 : 0;
    char *used = em_calloc((size_t)(nr ? nr : 1), 1);
    int overlap = 0;
    for (int i = 0; i < np; i++)
        for (int j = 0; j < nr; j++)
            if (!used[j] && gram_eq(pred, i, ref, j, n)) {
                used[j] = 1;
                overlap++;
                break;
            }
    free(used);
    double p = (double)overlap / (np > 1 ? np : 1);
    double r = (double)overlap / (nr > 1 ? nr : 1);
    return fmeasure(p, r);
}

static double rouge_l_words(const words *pred, const words *ref)
{
    if (!pred->n || !ref->n)
        return 0;
    /* Two rows of the LCS table. */
    int *prev = em_calloc((size_t)ref->n + 1, sizeof(int));
    int *cur = em_calloc((size_t)ref->n + 1, sizeof(int));
    for (int i = 1; i <= pred->n; i++) {
        for (int j = 1; j <= ref->n; j++) {
            if (!strcmp(pred->w[i - 1], ref->w[j - 1]))
                cur[j] = prev[j - 1] + 1;
            else
                cur[j] = prev[j] > cur[j - 1] ? prev[j] : cur[j - 1];
        }
        int *t = prev;
        prev = cur;
        cur = t;
    }
    int lcs = prev[ref->n];
    free(prev);
    free(cur);
    return fmeasure((double)lcs / pred->n, (double)lcs / ref->n);
}

double metric_rouge(const char *pred, const char *ref, int n)
{
    words p, r;
    words_build(&p, pred ? pred : "");
    words_build(&r, ref ? ref : "");
    double f = n > 0 ? rouge_n_words(&p, &r, n) : rouge_l_words(&p, &r);
    words_free(&p);
    words_free(&r);
    return f;
}

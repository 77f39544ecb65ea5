/*
 * tokenizer_spm.c - SentencePiece-style encoding ("llama" vocabularies),
 * as llama.cpp's llm_tokenizer_spm does it.
 *
 * Owns: the encoding of one raw-text fragment: optional "▁" prefix,
 * spaces escaped to "▁", the text cut into UTF-8 characters, then the
 * adjacent pair whose concatenation is the highest-scoring vocabulary
 * token is merged again and again (ties: leftmost pair), and the final
 * symbols become ids, with byte fallback (<0xXX>) for symbols that are
 * not tokens.
 *
 * Why the text is cut into chunks: llama.cpp runs one queue over the whole
 * text, so a long input means a queue of millions of pairs. No pair ever
 * forms across a boundary between characters a|b when no token contains
 * a directly followed by b, and pairs on the two sides never interact;
 * popping each side's pairs in the same order gives the same merges.
 * So the text is merged chunk by chunk between such boundaries (for
 * LLaMA's vocabulary: roughly word by word), with identical ids.
 *
 * Why no "resegment" step: llama.cpp resegments a final symbol that is
 * not a token through the pairs that built it. Every merge it performs
 * forms a vocabulary token, so a non-token symbol is always a single,
 * never-merged character, and its resegmentation is exactly the byte
 * fallback done here.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/engine/tokenizer_int.h"

/* A character (<= 4 bytes) packed with its right neighbour into one key,
 * zero-padded. Equal pairs give equal keys; the rare unequal pairs that
 * collide (a character clamped at a string's end) only keep two chunks
 * together, which is never wrong, just slower. */
static uint64_t pair_key(const char *a, size_t na, const char *b, size_t nb)
{
    uint32_t x = 0, y = 0;
    memcpy(&x, a, na > 4 ? 4 : na);
    memcpy(&y, b, nb > 4 ? 4 : nb);
    return (uint64_t)x | ((uint64_t)y << 32);
}

static uint32_t pair_slot(const tokenizer *t, uint64_t k)
{
    k ^= k >> 31;
    k *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32) & t->spm_pairs_mask;
}

static void pair_insert(uint64_t *slots, uint32_t mask, uint64_t k,
                        uint32_t i, uint32_t *used)
{
    while (slots[i] != UINT64_MAX && slots[i] != k)
        i = (i + 1) & mask;
    if (slots[i] == UINT64_MAX)
        (*used)++;
    slots[i] = k;
}

static void pair_add(tokenizer *t, uint64_t k)
{
    if (k == UINT64_MAX) {
        t->spm_pair_max = 1;
        return;
    }
    if (2 * (t->spm_pairs_used + 1) > t->spm_pairs_mask + 1) {   /* grow at 1/2 full */
        uint32_t cap = 2 * (t->spm_pairs_mask + 1), used = 0;
        uint64_t *old = t->spm_pairs;
        uint32_t old_cap = t->spm_pairs_mask + 1;
        t->spm_pairs = em_malloc(cap * sizeof *t->spm_pairs);
        memset(t->spm_pairs, 0xFF, cap * sizeof *t->spm_pairs);
        t->spm_pairs_mask = cap - 1;
        for (uint32_t i = 0; i < old_cap; i++)
            if (old[i] != UINT64_MAX)
                pair_insert(t->spm_pairs, cap - 1, old[i],
                            pair_slot(t, old[i]), &used);
        free(old);
        t->spm_pairs_used = used;
    }
    pair_insert(t->spm_pairs, t->spm_pairs_mask, k, pair_slot(t, k),
                &t->spm_pairs_used);
}

static int pair_has(const tokenizer *t, uint64_t k)
{
    if (k == UINT64_MAX)
        return t->spm_pair_max;
    uint32_t i = pair_slot(t, k);
    for (; t->spm_pairs[i] != UINT64_MAX; i = (i + 1) & t->spm_pairs_mask)
        if (t->spm_pairs[i] == k)
            return 1;
    return 0;
}

/* Every adjacent pair of characters inside every token, characters cut
 * as the text is (by lead byte, clamped at the end). */
void tok_spm_init(tokenizer *t)
{
    uint32_t cap = 1024;     /* grows as pairs come */
    t->spm_pairs = em_malloc(cap * sizeof *t->spm_pairs);
    memset(t->spm_pairs, 0xFF, cap * sizeof *t->spm_pairs);
    t->spm_pairs_mask = cap - 1;
    for (int id = 0; id < t->n_vocab; id++) {
        const char *s = t->text + t->text_off[id];
        size_t n = t->text_len[id], prev = 0, prev_len = 0;
        for (size_t off = 0; off < n;) {
            size_t cl = utf8_lead_len((unsigned char)s[off]);
            if (cl > n - off)
                cl = n - off;
            if (off)
                pair_add(t, pair_key(s + prev, prev_len, s + off, cl));
            prev = off, prev_len = cl;
            off += cl;
        }
    }
}

typedef struct spm {
    const tokenizer *t;
    char *s;               /* escaped text */
    tok_sym *sym;
    int n_sym;
    tok_heap heap;
} spm;

/* Queues (left, right) when their concatenation is a token. */
static void try_pair(spm *p, int left, int right)
{
    if (left < 0 || right < 0)
        return;
    uint32_t size = p->sym[left].n + p->sym[right].n;
    int32_t id = tok_lookup(p->t, p->s + p->sym[left].off, size);
    if (id < 0)
        return;
    tok_heap_push(&p->heap, (tok_pair){left, right, p->t->score[id], size});
}

/* Merges symbols [lo, hi), a chunk no pair crosses. */
static void merge_chunk(spm *p, int lo, int hi)
{
    p->sym[lo].prev = -1;
    p->sym[hi - 1].next = -1;
    p->heap.n = 0;
    for (int i = lo + 1; i < hi; i++)
        try_pair(p, i - 1, i);
    while (p->heap.n) {
        tok_pair q = tok_heap_pop(&p->heap);
        tok_sym *l = &p->sym[q.left], *r = &p->sym[q.right];
        /* A symbol that merged since the pair was queued changed size. */
        if (!l->n || !r->n || l->n + r->n != q.size)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            p->sym[r->next].prev = q.left;
        try_pair(p, l->prev, q.left);
        try_pair(p, q.left, l->next);
    }
}

/* Ids of the merged chunk starting at symbol lo. */
static int emit(spm *p, int lo, tok_ids *out, em_err *err)
{
    for (int i = lo; i >= 0; i = p->sym[i].next) {
        const char *s = p->s + p->sym[i].off;
        int32_t id = tok_lookup(p->t, s, p->sym[i].n);
        if (id >= 0) {
            tok_ids_push(out, id);
            continue;
        }
        for (uint32_t k = 0; k < p->sym[i].n; k++) {
            unsigned char c = (unsigned char)s[k];
            id = p->t->byte_tok[c];
            if (id < 0)
                id = p->t->unk;
            if (id < 0)
                return em_errorf(err, "tokenize: byte 0x%02X has no token "
                                 "and the vocabulary has no <unk>", c);
            tok_ids_push(out, id);
        }
    }
    return 0;
}

/* Whether some token could contain the characters of symbols i-1, i. */
static int joined(const spm *p, int i)
{
    const tok_sym *a = &p->sym[i - 1], *b = &p->sym[i];
    if (!p->t->spm_pairs)      /* no table: one chunk (tests compare) */
        return 1;
    return pair_has(p->t, pair_key(p->s + a->off, a->n, p->s + b->off, b->n));
}

/* "▁" prefix if asked, and every space as "▁" (llama_escape_whitespace). */
static char *escape(const char *s, size_t n, int prefix_space, size_t *len)
{
    char *e = em_malloc(3 * (n + 1) + 1);
    size_t k = 0;
    if (prefix_space) {
        memcpy(e, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            e[k++] = s[i];
        }
    }
    e[k] = 0;
    *len = k;
    return e;
}

int tok_spm_fragment(const tokenizer *t, const char *s, size_t n,
                     int prefix_space, tok_ids *out, em_err *err)
{
    spm p = {.t = t};
    size_t len;
    p.s = escape(s, n, prefix_space, &len);
    if (!len) {
        free(p.s);
        return 0;
    }
    p.sym = em_malloc(len * sizeof *p.sym);
    for (size_t off = 0; off < len;) {
        size_t cl = utf8_lead_len((unsigned char)p.s[off]);
        if (cl > len - off)
            cl = len - off;
        p.sym[p.n_sym] = (tok_sym){(uint32_t)off, (uint32_t)cl,
                                   p.n_sym - 1, p.n_sym + 1};
        off += cl;
        p.n_sym++;
    }
    int rc = 0;
    for (int lo = 0, i = 1; i <= p.n_sym && !rc; i++) {
        if (i < p.n_sym && joined(&p, i))
            continue;
        merge_chunk(&p, lo, i);
        rc = emit(&p, lo, out, err);
        lo = i;
    }
    free(p.heap.v);
    free(p.sym);
    free(p.s);
    return rc;
}

/*
 * tokenizer_vocab.c - the tables every part of the tokenizer uses
 * (tokenizer.c builds them, tokenizer_spm.c and tokenizer_bpe.c read
 * them): growable id lists, the merge priority queue, the hash maps from
 * a token's text to its id and from a pair of pieces to its merge rank,
 * and GPT-2's byte-level alphabet.
 *
 * Why apart from tokenizer.c: the loader dispatches to the SPM and BPE
 * halves, and the halves use these tables; kept in tokenizer.c, each half
 * and the loader would use each other.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/tokenizer_int.h"

/* ------------------------------------------------------------ id lists, heap */

void tok_ids_push(tok_ids *a, int32_t id)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = em_realloc(a->v, (size_t)a->cap * sizeof *a->v);
    }
    a->v[a->n++] = id;
}

/* Heap order: a before b when a has the higher key, or the same key and
 * the smaller left index (llama.cpp's comparators for both models). */
static int pair_before(const tok_pair *a, const tok_pair *b)
{
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

void tok_heap_push(tok_heap *h, tok_pair p)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = em_realloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(&p, &h->v[up]))
            break;
        h->v[i] = h->v[up];
        i = up;
    }
    h->v[i] = p;
}

tok_pair tok_heap_pop(tok_heap *h)
{
    tok_pair top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && pair_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!pair_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n)
        h->v[i] = last;
    return top;
}

/* ------------------------------------------------------------ hash maps */

static uint32_t map_cap_for(int n)
{
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2u)
        cap <<= 1;
    return cap;
}

void tok_map_init(tok_map *m, int n)
{
    uint32_t cap = map_cap_for(n);
    m->slot = em_malloc(cap * sizeof *m->slot);
    memset(m->slot, 0xFF, cap * sizeof *m->slot);   /* all -1 */
    m->mask = cap - 1;
}

static uint64_t str_hash(const char *s, size_t n)
{
    return em_hash64(s, n, 0x746f6b);
}

static uint64_t pair_hash(const char *a, size_t na, const char *b, size_t nb)
{
    return em_hash64(b, nb, em_hash64(a, na, 0x6d7267 + na));
}

int32_t tok_lookup(const tokenizer *t, const char *s, size_t n)
{
    uint32_t i = (uint32_t)str_hash(s, n) & t->vocab.mask;
    for (;; i = (i + 1) & t->vocab.mask) {
        int32_t id = t->vocab.slot[i];
        if (id < 0)
            return -1;
        if (t->text_len[id] == n && !memcmp(t->text + t->text_off[id], s, n))
            return id;
    }
}

/* Adds id under its text unless the text is already there: the first
 * of duplicate tokens wins, as with llama.cpp's token_to_id.emplace. */
void tok_vocab_add(tokenizer *t, int32_t id)
{
    const char *s = t->text + t->text_off[id];
    size_t n = t->text_len[id];
    uint32_t i = (uint32_t)str_hash(s, n) & t->vocab.mask;
    for (;; i = (i + 1) & t->vocab.mask) {
        int32_t o = t->vocab.slot[i];
        if (o < 0) {
            t->vocab.slot[i] = id;
            return;
        }
        if (t->text_len[o] == n && !memcmp(t->text + t->text_off[o], s, n))
            return;
    }
}

int32_t tok_merge_rank(const tokenizer *t, const char *a, size_t na,
                       const char *b, size_t nb)
{
    if (!t->n_merges)
        return -1;
    uint32_t i = (uint32_t)pair_hash(a, na, b, nb) & t->merges.mask;
    for (;; i = (i + 1) & t->merges.mask) {
        int32_t r = t->merges.slot[i];
        if (r < 0)
            return -1;
        const char *m = t->mtext + t->m_off[r];
        if (t->m_left[r] == na && t->m_right[r] == nb && !memcmp(m, a, na) &&
            !memcmp(m + na + 1, b, nb))
            return r;
    }
}

/* First rank wins on duplicate merges (llama.cpp's bpe_ranks.emplace). */
void tok_merge_add(tokenizer *t, int32_t r)
{
    const char *m = t->mtext + t->m_off[r];
    size_t na = t->m_left[r], nb = t->m_right[r];
    uint32_t i = (uint32_t)pair_hash(m, na, m + na + 1, nb) & t->merges.mask;
    for (;; i = (i + 1) & t->merges.mask) {
        int32_t o = t->merges.slot[i];
        if (o < 0) {
            t->merges.slot[i] = r;
            return;
        }
        const char *p = t->mtext + t->m_off[o];
        if (t->m_left[o] == na && t->m_right[o] == nb && !memcmp(p, m, na) &&
            !memcmp(p + na + 1, m + na + 1, nb))
            return;
    }
}

/* ------------------------------------------------------ byte alphabet */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
 * themselves, the other 68 bytes for U+0100 onwards, in byte order. */
static uint32_t byte_cpt[256];
static int16_t cpt_byte[324];
static pthread_once_t alphabet_once = PTHREAD_ONCE_INIT;

static void alphabet_init(void)
{
    uint32_t next = 256;
    for (int c = 0; c < 324; c++)
        cpt_byte[c] = -1;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) ||
                        (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_cpt[b] = printable ? (uint32_t)b : next++;
        cpt_byte[byte_cpt[b]] = (int16_t)b;
    }
}

uint32_t tok_byte_to_cpt(uint8_t b)
{
    pthread_once(&alphabet_once, alphabet_init);
    return byte_cpt[b];
}

int tok_cpt_to_byte(uint32_t cpt)
{
    pthread_once(&alphabet_once, alphabet_init);
    return cpt < 324 ? cpt_byte[cpt] : -1;
}

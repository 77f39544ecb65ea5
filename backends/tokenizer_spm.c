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
 * Why no "resegment" step: llama.cpp resegments a final symbol that is
 * not a token through the pairs that built it. Every merge it performs
 * forms a vocabulary token, so a non-token symbol is always a single,
 * never-merged character, and its resegmentation is exactly the byte
 * fallback done here.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/tokenizer_int.h"

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

static void merge_all(spm *p)
{
    for (int i = 1; i < p->n_sym; i++)
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

static int emit(spm *p, tok_ids *out, em_err *err)
{
    for (int i = 0; i >= 0; i = p->sym[i].next) {
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
        size_t cl = tok_utf8_len((unsigned char)p.s[off]);
        if (cl > len - off)
            cl = len - off;
        p.sym[p.n_sym] = (tok_sym){(uint32_t)off, (uint32_t)cl,
                                   p.n_sym - 1, p.n_sym + 1};
        off += cl;
        p.n_sym++;
    }
    p.sym[p.n_sym - 1].next = -1;
    merge_all(&p);
    int rc = emit(&p, out, err);
    free(p.heap.v);
    free(p.sym);
    free(p.s);
    return rc;
}

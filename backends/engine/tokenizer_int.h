/*
 * tokenizer_int.h - what tokenizer.c, tokenizer_spm.c, tokenizer_bpe.c and
 * tokenizer_vocab.c share: the tokenizer struct, the vocabulary hash, the
 * merge priority queue and the growable id list. Not for use outside the
 * tokenizer.
 */
#ifndef EMERGE_TOKENIZER_INT_H
#define EMERGE_TOKENIZER_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backends/engine/tokenizer.h"
#include "base/utf8.h"

/* tokenizer.ggml.token_type values (as llama.cpp's llama_token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4,
       TT_UNUSED = 5, TT_BYTE = 6 };

enum { TOK_SPM = 1, TOK_BPE = 2 };

/* Open-addressing hash from a byte string to an int32 (token id or merge
 * rank). Keys live elsewhere; the table keeps only ids, and the caller's
 * key function gives back the bytes of an id for comparison. */
typedef struct tok_map {
    int32_t *slot;       /* -1 empty */
    uint32_t mask;       /* capacity - 1, capacity a power of two */
} tok_map;

/* Growable list of token ids. */
typedef struct tok_ids {
    int32_t *v;
    int n, cap;
} tok_ids;

void tok_ids_push(tok_ids *a, int32_t id);

/* One candidate merge of two adjacent symbols. The queue pops the highest
 * key first and, on equal keys, the leftmost pair: SPM uses the token
 * score as key, BPE the negated merge rank. size is left.n + right.n when
 * the pair was queued; a pair whose symbols changed since is stale. */
typedef struct tok_pair {
    int left, right;
    double key;
    uint32_t size;
} tok_pair;

typedef struct tok_heap {
    tok_pair *v;
    size_t n, cap;
} tok_heap;

void tok_heap_push(tok_heap *h, tok_pair p);
tok_pair tok_heap_pop(tok_heap *h);

/* A symbol: a byte range of the text being merged, in a doubly linked
 * list (n == 0 once merged into its left neighbour). */
typedef struct tok_sym {
    uint32_t off, n;
    int prev, next;
} tok_sym;

/* Byte trie node: first child, next sibling, the byte on the edge into
 * it, and the index of the token ending here (-1 if none). */
typedef struct tok_trie_node {
    int32_t child, sibling, rank;
    unsigned char byte;
} tok_trie_node;

typedef struct bpe_cache bpe_cache;   /* tokenizer_bpe.c */
typedef struct bpe_pre bpe_pre;       /* tokenizer_bpe.c */

struct tokenizer {
    int type;                 /* TOK_SPM or TOK_BPE */
    char *model, *pre;        /* tokenizer.ggml.model / .pre ("" if absent) */
    int n_vocab;
    char *text;               /* all token texts, back to back */
    uint32_t *text_off, *text_len;
    float *score;
    int32_t *ttype;
    tok_map vocab;            /* text -> id (first id wins on duplicates) */
    char *piece;              /* decoded bytes of every token */
    uint32_t *piece_off, *piece_len;

    int32_t bos, eos, unk, pad;
    int add_bos, add_eos, add_space_prefix;
    int32_t byte_tok[256];    /* token for a raw byte, -1 if none */

    int32_t *user;            /* user-defined tokens, longest first */
    int n_user;
    tok_trie_node *utrie;     /* their texts; node rank = index in user */
    int n_utrie;

    /* SPM only: adjacent character pairs found inside some token */
    uint64_t *spm_pairs;      /* UINT64_MAX: empty slot */
    uint32_t spm_pairs_mask, spm_pairs_used;
    int spm_pair_max;         /* the key UINT64_MAX itself is present */

    /* BPE only */
    int ignore_merges;        /* a word that is a token is kept whole */
    int n_merges;
    char *mtext;              /* merge strings "a b", back to back */
    uint32_t *m_off, *m_left, *m_right;   /* left/right lengths */
    tok_map merges;           /* (left, right) -> rank */
    bpe_pre *pretok;
    bpe_cache *cache;
};

/* The hash maps (tokenizer_vocab.c): tok_map_init sizes one for n keys;
 * tok_vocab_add / tok_merge_add insert a token / merge (the first of
 * duplicates wins, as in llama.cpp). */
void tok_map_init(tok_map *m, int n);
void tok_vocab_add(tokenizer *t, int32_t id);
void tok_merge_add(tokenizer *t, int32_t r);
/* Vocabulary lookup: id of the token whose text is s[0..n), or -1. */
int32_t tok_lookup(const tokenizer *t, const char *s, size_t n);
/* Rank of the merge (a, b), or -1. */
int32_t tok_merge_rank(const tokenizer *t, const char *a, size_t na,
                       const char *b, size_t nb);

/* Per-model halves (tokenizer_spm.c / tokenizer_bpe.c). Each appends the
 * ids of one raw-text fragment (no special tokens inside) to out. */
int tok_spm_fragment(const tokenizer *t, const char *s, size_t n,
                     int prefix_space, tok_ids *out, em_err *err);
int tok_bpe_fragment(const tokenizer *t, const char *s, size_t n,
                     tok_ids *out, em_err *err);

/* SPM set-up: the table of character pairs that occur inside tokens. */
void tok_spm_init(tokenizer *t);

/* BPE set-up and tear-down: pre-tokenizer regexes for tokenizer.ggml.pre,
 * byte tables, the word cache. */
int tok_bpe_init(tokenizer *t, em_err *err);
void tok_bpe_free(tokenizer *t);
/* GPT-2's byte-level alphabet (tokenizer_vocab.c): the code point standing for byte b, and
 * the byte a code point stands for (-1 if none). */
uint32_t tok_byte_to_cpt(uint8_t b);
int tok_cpt_to_byte(uint32_t cpt);

#endif

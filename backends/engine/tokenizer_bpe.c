/*
 * tokenizer_bpe.c - byte-level BPE encoding ("gpt2" vocabularies), as
 * llama.cpp's llm_tokenizer_bpe does it.
 *
 * Owns: the pre-tokenizer (a list of PCRE2 regexes chosen by
 * tokenizer.ggml.pre, each splitting the pieces the previous one left,
 * matches and the gaps between them alike), the merge loop (lowest merge rank first, ties leftmost) and a
 * per-word cache.
 *
 * The regexes are llama.cpp's, written for PCRE2 so that they select
 * exactly what llama.cpp's code selects:
 *  - \s is spelled out as the Unicode White_Space set llama.cpp uses
 *    (PCRE2's \s misses U+0085);
 *  - GPT-2's word regex gets its final "|\s+" back: llama.cpp lists it
 *    without, but its hand-written matcher for that regex behaves as if
 *    it were there (and std::regex keeps unmatched gaps anyway);
 *  - each regex runs on one piece at a time, so a lookahead never sees
 *    past the piece, as in llama.cpp.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <pcre2.h>

#include "backends/engine/tokenizer_int.h"

/* ------------------------------------------------------ pre-tokenizers */

/* llama.cpp's whitespace: the Unicode White_Space property. */
#define WS "\\t-\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}" \
           "\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+" \
                "| ?[^" WS "\\p{L}\\p{N}]+|[" WS "]+(?![^" WS "])|[" WS "]+"

/* llama3's word regex; qwen2's is the same with single digits. */
#define RE_LLAMA3_A "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]" \
                    "|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_B "| ?[^" WS "\\p{L}\\p{N}]+[\\r\\n]*|[" WS "]*[\\r\\n]+" \
                    "|[" WS "]+(?![^" WS "])|[" WS "]+"

#define MAX_RE 4

typedef struct pre_type {
    const char *names;     /* tokenizer.ggml.pre values, '|'-separated */
    const char *re[MAX_RE];
    int ignore_merges, add_bos;
} pre_type;

/* From llama.cpp's llm_tokenizer_bpe (LLAMA_VOCAB_PRE_TYPE_*). A missing
 * tokenizer.ggml.pre means "default", as in llama.cpp. The shared test
 * vectors cover default (gpt-neox), gpt-2 and falcon; the others use the
 * same machinery with llama.cpp's regexes but have no vectors here. */
static const pre_type pre_types[] = {
    {"|default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+",
                  "[0-9][0-9][0-9]"}, 0, 0},
    {"gpt-2|phi-2|mpt|olmo|jais|jina-es|jina-de|jina-v2-es|jina-v2-de|"
     "gigachat|roberta-bpe|jina-v1-en|jina-v2-code", {RE_GPT2}, 0, 0},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"},
     0, 0},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva",
     {"\\p{N}", RE_GPT2}, 0, 0},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2",
     {RE_LLAMA3_A "\\p{N}{1,3}" RE_LLAMA3_B}, 1, 1},
    {"qwen2|deepseek-r1-qwen|stablelm2",
     {RE_LLAMA3_A "\\p{N}" RE_LLAMA3_B}, 0, 0},
};

struct bpe_pre {
    pcre2_code *re[MAX_RE];
    int n_re;
};

static int name_in(const char *name, const char *list)
{
    size_t n = strlen(name);
    for (const char *p = list;; p++) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, name, n))
            return 1;
        if (!bar)
            return 0;
        p = bar;
    }
}

static int compile_pre(bpe_pre *pre, const pre_type *pt, em_err *err)
{
    for (int i = 0; i < MAX_RE && pt->re[i]; i++) {
        int code;
        PCRE2_SIZE at;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pt->re[i],
                                       PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP, &code, &at,
                                       NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            return em_errorf(err, "tokenizer: pre-tokenizer regex %d, "
                             "offset %zu: %s", i, (size_t)at, (char *)msg);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);   /* optional speed-up */
        pre->re[pre->n_re++] = re;
    }
    return 0;
}

/* ---------------------------------------------------------- word cache */

/* Words repeat a lot in prompts ("the", " of", ...): remember the ids of
 * each word. Bounded: flushed whole when full. Encoding may run on
 * several threads, hence the lock. */
#define CACHE_SLOTS (1u << 16)
#define CACHE_MAX_ENTRIES (CACHE_SLOTS / 2)
#define CACHE_MAX_WORD 128

typedef struct cache_ent {
    char *key;            /* NULL: empty slot */
    uint32_t klen;
    int n;
    int32_t *ids;
} cache_ent;

struct bpe_cache {
    pthread_mutex_t mu;
    cache_ent *slot;
    uint32_t used;
};

static void cache_flush(bpe_cache *c)
{
    for (uint32_t i = 0; i < CACHE_SLOTS; i++) {
        free(c->slot[i].key);
        free(c->slot[i].ids);
        c->slot[i] = (cache_ent){0};
    }
    c->used = 0;
}

/* Appends the cached ids of word w to out; 0 if found, -1 if not. */
static int cache_get(bpe_cache *c, const char *w, size_t n, tok_ids *out)
{
    int found = -1;
    pthread_mutex_lock(&c->mu);
    uint32_t i = (uint32_t)em_hash64(w, n, 7) & (CACHE_SLOTS - 1);
    for (; c->slot[i].key; i = (i + 1) & (CACHE_SLOTS - 1)) {
        cache_ent *e = &c->slot[i];
        if (e->klen == n && !memcmp(e->key, w, n)) {
            for (int k = 0; k < e->n; k++)
                tok_ids_push(out, e->ids[k]);
            found = 0;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

static void cache_put(bpe_cache *c, const char *w, size_t n,
                      const int32_t *ids, int n_ids)
{
    pthread_mutex_lock(&c->mu);
    if (c->used >= CACHE_MAX_ENTRIES)
        cache_flush(c);
    uint32_t i = (uint32_t)em_hash64(w, n, 7) & (CACHE_SLOTS - 1);
    for (; c->slot[i].key; i = (i + 1) & (CACHE_SLOTS - 1))
        if (c->slot[i].klen == n && !memcmp(c->slot[i].key, w, n))
            break;
    if (!c->slot[i].key) {
        cache_ent *e = &c->slot[i];
        e->key = em_strndup(w, n);
        e->klen = (uint32_t)n;
        e->n = n_ids;
        e->ids = em_malloc(((size_t)n_ids + 1) * sizeof *e->ids);
        if (n_ids)
            memcpy(e->ids, ids, (size_t)n_ids * sizeof *ids);
        c->used++;
    }
    pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------ set-up */

int tok_bpe_init(tokenizer *t, em_err *err)
{
    const pre_type *pt = NULL;
    for (size_t i = 0; i < sizeof pre_types / sizeof *pre_types; i++)
        if (name_in(t->pre, pre_types[i].names))
            pt = &pre_types[i];
    if (!pt)
        return em_errorf(err, "tokenizer.ggml.pre '%s' is not a supported "
                         "pre-tokenizer (supported: default, gpt-2, falcon, "
                         "starcoder, llama3, qwen2 and aliases)", t->pre);
    t->ignore_merges = pt->ignore_merges;
    t->add_bos = pt->add_bos;
    t->pretok = em_calloc(1, sizeof *t->pretok);
    if (compile_pre(t->pretok, pt, err))
        return -1;
    t->cache = em_calloc(1, sizeof *t->cache);
    pthread_mutex_init(&t->cache->mu, NULL);
    t->cache->slot = em_calloc(CACHE_SLOTS, sizeof *t->cache->slot);
    return 0;
}

void tok_bpe_free(tokenizer *t)
{
    if (t->pretok) {
        for (int i = 0; i < t->pretok->n_re; i++)
            pcre2_code_free(t->pretok->re[i]);
        free(t->pretok);
        t->pretok = NULL;
    }
    if (t->cache) {
        cache_flush(t->cache);
        free(t->cache->slot);
        pthread_mutex_destroy(&t->cache->mu);
        free(t->cache);
        t->cache = NULL;
    }
}

/* ----------------------------------------------------- pre-tokenizing */

/* The fragment as code points (llama.cpp's lenient decoding), plus a
 * copy in valid UTF-8 for PCRE2 (surrogates and the like as U+FFFD, which
 * no regex here treats differently) and the maps between the two. */
typedef struct text_cp {
    uint32_t *cp;
    size_t n;
    char *s;              /* valid UTF-8 */
    size_t *off;          /* off[i]: byte offset of code point i; n + 1 */
    uint32_t *at;         /* at[byte offset]: code point index */
} text_cp;

static void text_cp_build(text_cp *tc, const char *s, size_t n)
{
    tc->cp = em_malloc((n + 1) * sizeof *tc->cp);
    tc->n = 0;
    for (size_t i = 0; i < n;)
        tc->cp[tc->n++] = utf8_next_lenient(s, n, &i);
    tc->s = em_malloc(4 * tc->n + 1);
    tc->off = em_malloc((tc->n + 1) * sizeof *tc->off);
    size_t k = 0;
    for (size_t i = 0; i < tc->n; i++) {
        uint32_t c = tc->cp[i];
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF)
            c = 0xFFFD;
        tc->off[i] = k;
        k += (size_t)utf8_put(c, tc->s + k);
    }
    tc->off[tc->n] = k;
    tc->at = em_malloc((k + 1) * sizeof *tc->at);
    for (size_t i = 0; i <= tc->n; i++)
        tc->at[tc->off[i]] = (uint32_t)i;
}

static void text_cp_free(text_cp *tc)
{
    free(tc->cp);
    free(tc->s);
    free(tc->off);
    free(tc->at);
}

/* Pieces as (start, length) in code points. */
typedef struct segs {
    uint32_t *v;          /* pairs */
    size_t n, cap;
} segs;

static void seg_push(segs *g, size_t start, size_t len)
{
    if (!len)
        return;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 64;
        g->v = em_realloc(g->v, 2 * g->cap * sizeof *g->v);
    }
    g->v[2 * g->n] = (uint32_t)start;
    g->v[2 * g->n + 1] = (uint32_t)len;
    g->n++;
}

/* Splits one piece by regex re: its matches and the gaps between them
 * all become pieces (llama.cpp's unicode_regex_split_stl). */
static int split_piece(const text_cp *tc, pcre2_code *re,
                       pcre2_match_data *md, size_t start, size_t len,
                       segs *out, em_err *err)
{
    size_t b0 = tc->off[start], b1 = tc->off[start + len];
    PCRE2_SPTR subj = (PCRE2_SPTR)(tc->s + b0);
    size_t pos = 0, last = 0;
    while (pos < b1 - b0) {
        int rc = pcre2_match(re, subj, b1 - b0, pos, PCRE2_NO_UTF_CHECK, md,
                             NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0)
            return em_errorf(err, "tokenize: pre-tokenizer regex failed "
                             "(PCRE2 error %d)", rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] == ov[0]) {       /* cannot happen with these regexes */
            pos = tc->off[tc->at[b0 + ov[0]] + 1] - b0;
            continue;
        }
        size_t ms = tc->at[b0 + ov[0]], me = tc->at[b0 + ov[1]];
        seg_push(out, start + last, ms - start - last);
        seg_push(out, ms, me - ms);
        last = me - start;
        pos = ov[1];
    }
    seg_push(out, start + last, len - last);
    return 0;
}

static int pre_tokenize(const bpe_pre *pre, const text_cp *tc, segs *g,
                        em_err *err)
{
    segs tmp = {0};
    seg_push(g, 0, tc->n);
    for (int r = 0; r < pre->n_re; r++) {
        pcre2_match_data *md =
            pcre2_match_data_create_from_pattern(pre->re[r], NULL);
        tmp.n = 0;
        int rc = 0;
        for (size_t i = 0; i < g->n && !rc; i++)
            rc = split_piece(tc, pre->re[r], md, g->v[2 * i],
                             g->v[2 * i + 1], &tmp, err);
        pcre2_match_data_free(md);
        segs swap = *g;
        *g = tmp;
        tmp = swap;
        if (rc) {
            free(tmp.v);
            return -1;
        }
    }
    free(tmp.v);
    return 0;
}

/* -------------------------------------------------------------- merges */

typedef struct bpe_word {
    const tokenizer *t;
    const char *w;
    tok_sym *sym;
    size_t cap;
    int n_sym;
    tok_heap heap;
} bpe_word;

static void add_pair(bpe_word *b, int left, int right)
{
    if (left < 0 || right < 0)
        return;
    const tok_sym *l = &b->sym[left], *r = &b->sym[right];
    int32_t rank = tok_merge_rank(b->t, b->w + l->off, l->n, b->w + r->off,
                                  r->n);
    if (rank < 0)
        return;
    tok_heap_push(&b->heap, (tok_pair){left, right, -(double)rank,
                                       l->n + r->n});
}

/* Appends the ids of one byte-encoded word w[0..n) (n > 0). */
static void bpe_merge_word(bpe_word *b, const char *w, size_t n,
                           tok_ids *out)
{
    b->w = w;
    b->n_sym = 0;
    b->heap.n = 0;
    if (b->t->ignore_merges) {
        int32_t id = tok_lookup(b->t, w, n);
        if (id >= 0) {
            tok_ids_push(out, id);
            return;
        }
    }
    if (n > b->cap) {
        b->cap = n;
        b->sym = em_realloc(b->sym, n * sizeof *b->sym);
    }
    for (size_t off = 0; off < n;) {
        size_t cl = utf8_lead_len((unsigned char)w[off]);
        if (cl > n - off)
            cl = n - off;
        b->sym[b->n_sym] = (tok_sym){(uint32_t)off, (uint32_t)cl,
                                     b->n_sym - 1, b->n_sym + 1};
        off += cl;
        b->n_sym++;
    }
    b->sym[b->n_sym - 1].next = -1;
    for (int i = 1; i < b->n_sym; i++)
        add_pair(b, i - 1, i);
    while (b->heap.n) {
        tok_pair q = tok_heap_pop(&b->heap);
        tok_sym *l = &b->sym[q.left], *r = &b->sym[q.right];
        if (!l->n || !r->n || l->n + r->n != q.size)
            continue;                       /* outdated pair */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            b->sym[r->next].prev = q.left;
        add_pair(b, l->prev, q.left);
        add_pair(b, q.left, l->next);
    }
    for (int i = 0; i >= 0; i = b->sym[i].next) {
        int32_t id = tok_lookup(b->t, w + b->sym[i].off, b->sym[i].n);
        if (id >= 0) {
            tok_ids_push(out, id);
            continue;
        }
        /* llama.cpp's fallback: each byte of the symbol as a one-byte
         * token, skipped when there is none. */
        for (uint32_t k = 0; k < b->sym[i].n; k++) {
            id = tok_lookup(b->t, w + b->sym[i].off + k, 1);
            if (id >= 0)
                tok_ids_push(out, id);
        }
    }
}

/* The word's bytes, each replaced by its code point in GPT-2's alphabet. */
static void encode_word(const text_cp *tc, size_t start, size_t len,
                        em_buf *w)
{
    em_buf_reset(w);
    for (size_t i = start; i < start + len; i++) {
        char u[4];
        int nu = utf8_put(tc->cp[i], u);
        for (int k = 0; k < nu; k++) {
            char e[4];
            int ne = utf8_put(tok_byte_to_cpt((uint8_t)u[k]), e);
            em_buf_put(w, e, (size_t)ne);
        }
    }
}

int tok_bpe_fragment(const tokenizer *t, const char *s, size_t n,
                     tok_ids *out, em_err *err)
{
    text_cp tc;
    segs g = {0};
    text_cp_build(&tc, s, n);
    if (pre_tokenize(t->pretok, &tc, &g, err)) {
        text_cp_free(&tc);
        free(g.v);
        return -1;
    }
    bpe_word b = {.t = t};
    em_buf w = {0};
    for (size_t i = 0; i < g.n; i++) {
        encode_word(&tc, g.v[2 * i], g.v[2 * i + 1], &w);
        int cacheable = w.len <= CACHE_MAX_WORD;
        if (cacheable && !cache_get(t->cache, w.s, w.len, out))
            continue;
        int before = out->n;
        bpe_merge_word(&b, w.s, w.len, out);
        if (cacheable)
            cache_put(t->cache, w.s, w.len, out->v + before,
                      out->n - before);
    }
    em_buf_free(&w);
    free(b.sym);
    free(b.heap.v);
    free(g.v);
    text_cp_free(&tc);
    return 0;
}

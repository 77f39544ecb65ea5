/*
 * tokenizer.c - building a tokenizer from GGUF metadata, splitting text
 * around user-defined tokens, and decoding ids. The tables the SPM and
 * BPE halves share are tokenizer_vocab.c; UTF-8 is base/utf8.c.
 *
 * Owns: struct tokenizer and its one free path (tok_free). The model-
 * specific encoders live in tokenizer_spm.c and tokenizer_bpe.c.
 *
 * The reference is llama.cpp's llama-vocab.cpp: the same defaults (BOS 1 /
 * EOS 2 / UNK 0 and add_bos for "llama", BOS = EOS = 11 and no add_bos
 * for "gpt2"), the same special-token partitioning (with parse_special
 * off, only user-defined tokens are matched in raw text, longest first,
 * leftmost occurrence) and the same decoded pieces, so that token ids
 * agree with llama.cpp's bit for bit.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/engine/tokenizer_int.h"

/* ------------------------------------------------------------- metadata */

static const char *gpath(const gguf_file *g)
{
    return g->path ? g->path : "(gguf)";
}

/* The array under key, checked to hold n_want elements of type ty
 * (n_want < 0: any count). NULL with err set when present but wrong;
 * NULL with err untouched when absent. */
static const gguf_kv *get_array(const gguf_file *g, const char *key,
                                gguf_type ty, int64_t n_want, int *bad,
                                em_err *err)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    *bad = 0;
    if (!kv)
        return NULL;
    if (kv->type != GGUF_ARRAY || kv->arr_type != ty) {
        *bad = 1;
        em_errorf(err, "%s: %s: expected an array of %s", gpath(g), key,
                  ty == GGUF_STRING ? "strings" :
                  ty == GGUF_FLOAT32 ? "float32" : "int32");
        return NULL;
    }
    if (n_want >= 0 && kv->n != (uint64_t)n_want) {
        *bad = 1;
        em_errorf(err, "%s: %s has %llu entries but tokenizer.ggml.tokens "
                  "has %lld", gpath(g), key, (unsigned long long)kv->n,
                  (long long)n_want);
        return NULL;
    }
    return kv;
}

static int load_tokens(tokenizer *t, const gguf_file *g, em_err *err)
{
    int bad;
    const gguf_kv *kv = get_array(g, "tokenizer.ggml.tokens", GGUF_STRING,
                                  -1, &bad, err);
    if (!kv)
        return bad ? -1 : em_errorf(err, "%s: no tokenizer.ggml.tokens",
                                    gpath(g));
    if (kv->n == 0 || kv->n > INT32_MAX / 2)
        return em_errorf(err, "%s: tokenizer.ggml.tokens: bad count %llu",
                         gpath(g), (unsigned long long)kv->n);
    t->n_vocab = (int)kv->n;
    em_buf b = {0};
    t->text_off = em_malloc(kv->n * sizeof *t->text_off);
    t->text_len = em_malloc(kv->n * sizeof *t->text_len);
    for (int i = 0; i < t->n_vocab; i++) {
        t->text_off[i] = (uint32_t)b.len;
        if (kv->strs[i].len == 0)      /* llama.cpp names empty tokens */
            em_buf_printf(&b, "[EMPTY_%d]", i);
        else
            em_buf_put(&b, kv->strs[i].s, (size_t)kv->strs[i].len);
        t->text_len[i] = (uint32_t)(b.len - t->text_off[i]);
        if (b.len > UINT32_MAX / 2) {
            em_buf_free(&b);
            return em_errorf(err, "%s: tokenizer.ggml.tokens too large",
                             gpath(g));
        }
    }
    t->text = b.s ? em_buf_take(&b) : em_strdup("");
    tok_map_init(&t->vocab, t->n_vocab);
    for (int i = 0; i < t->n_vocab; i++)
        tok_vocab_add(t, i);
    return 0;
}

static int load_scores_types(tokenizer *t, const gguf_file *g, em_err *err)
{
    int bad;
    t->score = em_calloc((size_t)t->n_vocab, sizeof *t->score);
    t->ttype = em_malloc((size_t)t->n_vocab * sizeof *t->ttype);
    for (int i = 0; i < t->n_vocab; i++)
        t->ttype[i] = TT_NORMAL;
    const gguf_kv *sc = gguf_find_kv(g, "tokenizer.ggml.scores");
    /* llama.cpp also takes int32 scores */
    int int_scores = sc && sc->type == GGUF_ARRAY &&
                     sc->arr_type == GGUF_INT32;
    const gguf_kv *kv = get_array(g, "tokenizer.ggml.scores",
                                  int_scores ? GGUF_INT32 : GGUF_FLOAT32,
                                  t->n_vocab, &bad, err);
    if (bad)
        return -1;
    for (int i = 0; kv && i < t->n_vocab; i++) {
        /* the raw elements may be unaligned in the mapping */
        if (int_scores) {
            int32_t v;
            memcpy(&v, (const char *)kv->data + 4 * (size_t)i, 4);
            t->score[i] = (float)v;
        } else {
            memcpy(&t->score[i], (const char *)kv->data + 4 * (size_t)i, 4);
        }
    }
    kv = get_array(g, "tokenizer.ggml.token_type", GGUF_INT32, t->n_vocab,
                   &bad, err);
    if (bad)
        return -1;
    if (kv)
        memcpy(t->ttype, kv->data, (size_t)t->n_vocab * sizeof(int32_t));
    return 0;
}

static int load_merges(tokenizer *t, const gguf_file *g, em_err *err)
{
    int bad;
    const gguf_kv *kv = get_array(g, "tokenizer.ggml.merges", GGUF_STRING,
                                  -1, &bad, err);
    if (!kv)
        return bad ? -1 : em_errorf(err, "%s: tokenizer.ggml.model is gpt2 "
                                    "but tokenizer.ggml.merges is missing",
                                    gpath(g));
    if (kv->n > INT32_MAX / 2)
        return em_errorf(err, "%s: tokenizer.ggml.merges: too many",
                         gpath(g));
    t->n_merges = (int)kv->n;
    size_t n = kv->n ? kv->n : 1;
    t->m_off = em_malloc(n * sizeof *t->m_off);
    t->m_left = em_malloc(n * sizeof *t->m_left);
    t->m_right = em_malloc(n * sizeof *t->m_right);
    em_buf b = {0};
    for (int i = 0; i < t->n_merges; i++) {
        const char *s = kv->strs[i].s;
        size_t len = (size_t)kv->strs[i].len;
        /* Split at the first space after the first byte; a merge with no
         * space becomes ("", "") as in llama.cpp, and never matches. */
        const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
        t->m_off[i] = (uint32_t)b.len;
        if (sp) {
            t->m_left[i] = (uint32_t)(sp - s);
            t->m_right[i] = (uint32_t)(len - (size_t)(sp - s) - 1);
            em_buf_put(&b, s, len);
        } else {
            t->m_left[i] = t->m_right[i] = 0;
            em_buf_putc(&b, ' ');
        }
        if (b.len > UINT32_MAX / 2) {
            em_buf_free(&b);
            return em_errorf(err, "%s: tokenizer.ggml.merges too large",
                             gpath(g));
        }
    }
    t->mtext = b.s ? em_buf_take(&b) : em_strdup("");
    tok_map_init(&t->merges, t->n_merges);
    for (int i = 0; i < t->n_merges; i++)
        tok_merge_add(t, i);
    return 0;
}

/* Special ids: defaults per model, out-of-range defaults disabled, file
 * values used when in range (llama.cpp warns and keeps the default). */
static void load_special_ids(tokenizer *t, const gguf_file *g)
{
    static const char *keys[4] = {
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id",
    };
    int32_t *ids[4] = {&t->bos, &t->eos, &t->unk, &t->pad};
    for (int k = 0; k < 4; k++) {
        if (*ids[k] >= t->n_vocab)
            *ids[k] = -1;
        int64_t v;
        if (!gguf_get_i64(g, keys[k], &v) && v >= 0 && v < t->n_vocab)
            *ids[k] = (int32_t)v;
    }
}

static int load_flags(tokenizer *t, const gguf_file *g, em_err *err)
{
    int v;
    if (!gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &v))
        t->add_bos = v;
    if (!gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &v))
        t->add_eos = v;
    if (!gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &v))
        t->add_space_prefix = v;
    if (t->add_bos && t->bos < 0)
        return em_errorf(err, "%s: tokenizer.ggml.add_bos_token is true but "
                         "there is no BOS token", gpath(g));
    if (t->add_eos && t->eos < 0)
        return em_errorf(err, "%s: tokenizer.ggml.add_eos_token is true but "
                         "there is no EOS token", gpath(g));
    return 0;
}

typedef struct len_id {
    uint32_t len;
    int32_t id;
} len_id;

static int by_len_desc(const void *a, const void *b)
{
    const len_id *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int32_t trie_child(const tokenizer *t, int32_t node, unsigned char c)
{
    for (int32_t k = t->utrie[node].child; k >= 0; k = t->utrie[k].sibling)
        if (t->utrie[k].byte == c)
            return k;
    return -1;
}

/* A trie of the user-defined tokens, so one pass over a text tells which
 * of them occur at all (most texts contain none, or a few). */
static void build_user_trie(tokenizer *t)
{
    size_t cap = 1;
    for (int r = 0; r < t->n_user; r++)
        cap += t->text_len[t->user[r]];
    t->utrie = em_malloc(cap * sizeof *t->utrie);
    t->utrie[0] = (tok_trie_node){-1, -1, -1, 0};
    t->n_utrie = 1;
    for (int r = 0; r < t->n_user; r++) {
        const char *s = t->text + t->text_off[t->user[r]];
        int32_t node = 0;
        for (uint32_t i = 0; i < t->text_len[t->user[r]]; i++) {
            unsigned char c = (unsigned char)s[i];
            int32_t k = trie_child(t, node, c);
            if (k < 0) {
                k = t->n_utrie++;
                t->utrie[k] = (tok_trie_node){-1, t->utrie[node].child, -1,
                                              c};
                t->utrie[node].child = k;
            }
            node = k;
        }
        if (t->utrie[node].rank < 0)   /* a duplicate text never matches */
            t->utrie[node].rank = r;
    }
}

/* User-defined tokens are cut out of raw text before the model sees it
 * (llama.cpp's tokenizer_st_partition with parse_special off: control and
 * unknown tokens are left as text). Longest first, as llama.cpp sorts. */
static void collect_user_tokens(tokenizer *t)
{
    len_id *v = em_malloc((size_t)t->n_vocab * sizeof *v);
    for (int i = 0; i < t->n_vocab; i++)
        if (t->ttype[i] == TT_USER)
            v[t->n_user++] = (len_id){t->text_len[i], i};
    qsort(v, (size_t)t->n_user, sizeof *v, by_len_desc);
    t->user = em_malloc(((size_t)t->n_user + 1) * sizeof *t->user);
    for (int i = 0; i < t->n_user; i++)
        t->user[i] = v[i].id;
    free(v);
    build_user_trie(t);
}

/* Writes the decoded bytes of token id into b (llama.cpp's token_to_piece
 * with special = false). */
static void piece_of(const tokenizer *t, int32_t id, em_buf *b)
{
    const char *s = t->text + t->text_off[id];
    size_t n = t->text_len[id];
    int ty = t->ttype[id];
    if (ty == TT_USER) {
        em_buf_put(b, s, n);
    } else if (ty == TT_BYTE) {
        if (n == 6 && !memcmp(s, "<0x", 3)) {
            char hex[3] = {s[3], s[4], 0};
            em_buf_putc(b, (char)strtol(hex, NULL, 16));
        }
    } else if (ty == TT_NORMAL && t->type == TOK_SPM) {
        for (size_t i = 0; i < n; i++) {
            if (i + 2 < n && !memcmp(s + i, "\xe2\x96\x81", 3)) {
                em_buf_putc(b, ' ');
                i += 2;
            } else {
                em_buf_putc(b, s[i]);
            }
        }
    } else if (ty == TT_NORMAL) {
        /* Byte-level BPE: each code point stands for one byte. A code
         * point outside the alphabet is kept as its UTF-8 (llama.cpp
         * prints an [UNK_BYTE_..] marker instead). */
        for (size_t i = 0; i < n;) {
            size_t at = i;
            uint32_t c = utf8_next_lenient(s, n, &i);
            int byte = tok_cpt_to_byte(c);
            if (byte >= 0)
                em_buf_putc(b, (char)byte);
            else
                em_buf_put(b, s + at, i - at);
        }
    }
    /* control, unknown, unused, undefined: nothing */
}

static void build_pieces(tokenizer *t)
{
    em_buf b = {0};
    t->piece_off = em_malloc((size_t)t->n_vocab * sizeof *t->piece_off);
    t->piece_len = em_malloc((size_t)t->n_vocab * sizeof *t->piece_len);
    for (int i = 0; i < t->n_vocab; i++) {
        t->piece_off[i] = (uint32_t)b.len;
        piece_of(t, i, &b);
        t->piece_len[i] = (uint32_t)(b.len - t->piece_off[i]);
    }
    t->piece = b.s ? em_buf_take(&b) : em_strdup("");
}

/* Byte fallback tokens. SPM: "<0xXX>", else the byte itself as a token.
 * BPE: the byte's code point in GPT-2's alphabet. */
static void build_byte_tokens(tokenizer *t)
{
    for (int c = 0; c < 256; c++) {
        char buf[8];
        int32_t id;
        if (t->type == TOK_SPM) {
            snprintf(buf, sizeof buf, "<0x%02X>", c);
            id = tok_lookup(t, buf, 6);
            if (id < 0) {
                buf[0] = (char)c;
                id = tok_lookup(t, buf, 1);
            }
        } else {
            int n = utf8_put(tok_byte_to_cpt((uint8_t)c), buf);
            id = tok_lookup(t, buf, (size_t)n);
        }
        t->byte_tok[c] = id;
    }
}

static int set_model(tokenizer *t, const gguf_file *g, em_err *err)
{
    t->model = gguf_get_str(g, "tokenizer.ggml.model");
    if (!t->model)
        return em_errorf(err, "%s: no tokenizer metadata "
                         "(tokenizer.ggml.model is missing)", gpath(g));
    t->pre = gguf_get_str(g, "tokenizer.ggml.pre");
    if (!t->pre)
        t->pre = em_strdup("");
    if (!strcmp(t->model, "llama")) {
        t->type = TOK_SPM;
        t->bos = 1, t->eos = 2, t->unk = 0, t->pad = -1;
        t->add_bos = 1, t->add_space_prefix = 1;
    } else if (!strcmp(t->model, "gpt2")) {
        t->type = TOK_BPE;
        t->bos = 11, t->eos = 11, t->unk = -1, t->pad = -1;
    } else {
        return em_errorf(err, "%s: tokenizer.ggml.model '%s' is not "
                         "supported (only 'llama' and 'gpt2')", gpath(g),
                         t->model);
    }
    return 0;
}

int tok_build(const gguf_file *g, tokenizer **out, em_err *err)
{
    tokenizer *t = em_calloc(1, sizeof *t);
    *out = NULL;
    if (set_model(t, g, err) || load_tokens(t, g, err) ||
        load_scores_types(t, g, err) ||
        (t->type == TOK_BPE && load_merges(t, g, err))) {
        tok_free(t);
        return -1;
    }
    load_special_ids(t, g);
    /* The pre-tokenizer type sets BPE defaults (add_bos for llama3) that
     * the file's flags then override. */
    if ((t->type == TOK_BPE && tok_bpe_init(t, err)) ||
        load_flags(t, g, err)) {
        tok_free(t);
        return -1;
    }
    if (t->type == TOK_SPM)
        tok_spm_init(t);
    collect_user_tokens(t);
    build_pieces(t);
    build_byte_tokens(t);
    *out = t;
    return 0;
}

void tok_free(tokenizer *t)
{
    if (!t)
        return;
    tok_bpe_free(t);
    free(t->model);
    free(t->pre);
    free(t->text);
    free(t->text_off);
    free(t->text_len);
    free(t->score);
    free(t->ttype);
    free(t->vocab.slot);
    free(t->piece);
    free(t->piece_off);
    free(t->piece_len);
    free(t->user);
    free(t->utrie);
    free(t->mtext);
    free(t->m_off);
    free(t->m_left);
    free(t->m_right);
    free(t->merges.slot);
    free(t->spm_pairs);
    free(t);
}

/* ------------------------------------------------------------- encoding */

/* A piece of the input: raw text [off, off+len) or a token (len == 0). */
typedef struct frag {
    size_t off, len;
    int32_t id;
} frag;

typedef struct frags {
    frag *v;
    size_t n, cap;
} frags;

static void frag_push(frags *f, size_t off, size_t len, int32_t id)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 16;
        f->v = em_realloc(f->v, f->cap * sizeof *f->v);
    }
    f->v[f->n++] = (frag){off, len, id};
}

/* Splits every raw fragment at each leftmost occurrence of token id. */
static void split_on(const tokenizer *t, const char *text, int32_t id,
                     frags *in, frags *out)
{
    const char *s = t->text + t->text_off[id];
    size_t n = t->text_len[id];
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        frag f = in->v[i];
        if (!f.len) {
            frag_push(out, 0, 0, f.id);
            continue;
        }
        size_t at = f.off, end = f.off + f.len;
        while (at < end) {
            const char *m = end - at >= n ? memmem(text + at, end - at, s, n)
                                          : NULL;
            if (!m) {
                frag_push(out, at, end - at, -1);
                break;
            }
            size_t mo = (size_t)(m - text);
            if (mo > at)
                frag_push(out, at, mo - at, -1);
            frag_push(out, 0, 0, id);
            at = mo + n;
        }
    }
}

/* Marks in occurs[] the user-defined tokens found anywhere in text. */
static void find_user_tokens(const tokenizer *t, const char *text,
                             size_t len, unsigned char *occurs)
{
    for (size_t i = 0; i < len; i++) {
        int32_t node = 0;
        for (size_t j = i; j < len; j++) {
            node = trie_child(t, node, (unsigned char)text[j]);
            if (node < 0)
                break;
            if (t->utrie[node].rank >= 0)
                occurs[t->utrie[node].rank] = 1;
        }
    }
}

/* Cuts the user-defined tokens out of text exactly as llama.cpp does:
 * token by token, longest first, each at its leftmost non-overlapping
 * occurrences within what earlier tokens left as text. */
static void partition(const tokenizer *t, const char *text, size_t len,
                      frags *f)
{
    frags tmp = {0};
    frag_push(f, 0, len, -1);
    if (!t->n_user)
        return;
    unsigned char *occurs = em_calloc((size_t)t->n_user, 1);
    find_user_tokens(t, text, len, occurs);
    for (int k = 0; k < t->n_user; k++) {
        if (!occurs[k])
            continue;
        split_on(t, text, t->user[k], f, &tmp);
        frags swap = *f;
        *f = tmp;
        tmp = swap;
    }
    free(occurs);
    free(tmp.v);
}

int tok_encode(const tokenizer *t, const char *text, size_t len,
               int add_special, int32_t **ids, int *n, em_err *err)
{
    tok_ids out = {0};
    frags f = {0};
    int rc = 0, prev_special = 1;
    *ids = NULL;
    *n = 0;
    if (len > (size_t)INT32_MAX / 2)
        return em_errorf(err, "tokenize: text of %zu bytes is too long", len);
    if (add_special && t->add_bos)
        tok_ids_push(&out, t->bos);
    if (len)
        partition(t, text, len, &f);
    for (size_t i = 0; i < f.n && !rc; i++) {
        if (!f.v[i].len) {
            tok_ids_push(&out, f.v[i].id);
            prev_special = 1;
        } else if (t->type == TOK_SPM) {
            rc = tok_spm_fragment(t, text + f.v[i].off, f.v[i].len,
                                  t->add_space_prefix && prev_special, &out,
                                  err);
            prev_special = 0;
        } else {
            rc = tok_bpe_fragment(t, text + f.v[i].off, f.v[i].len, &out,
                                  err);
        }
    }
    free(f.v);
    if (rc) {
        free(out.v);
        return -1;
    }
    if (add_special && t->add_eos)
        tok_ids_push(&out, t->eos);
    if (!out.v)
        out.v = em_malloc(sizeof *out.v);
    *ids = out.v;
    *n = out.n;
    return 0;
}

/* ------------------------------------------------------------- decoding */

int tok_decode(const tokenizer *t, int32_t id, char *buf, size_t cap)
{
    if (id < 0 || id >= t->n_vocab) {
        if (cap)
            buf[0] = 0;
        return 0;
    }
    size_t n = t->piece_len[id];
    if (n > cap)
        n = cap;
    memcpy(buf, t->piece + t->piece_off[id], n);
    if (n < cap)
        buf[n] = 0;
    return (int)n;
}

int tok_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const tokenizer *t) { return t->bos; }
int32_t tok_eos(const tokenizer *t) { return t->eos; }

int tok_is_control(const tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n_vocab && t->ttype[id] == TT_CONTROL;
}

const char *tok_text(const tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->text_len[id];
    return t->text + t->text_off[id];
}

const char *tok_model(const tokenizer *t) { return t->model; }
const char *tok_pre(const tokenizer *t) { return t->pre; }
int tok_adds_bos(const tokenizer *t) { return t->add_bos; }
int tok_adds_eos(const tokenizer *t) { return t->add_eos; }

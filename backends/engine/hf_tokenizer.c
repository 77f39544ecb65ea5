/*
 * hf_tokenizer.c - a Hugging Face tokenizer.json as GGUF tokenizer keys
 * (hf_tokenizer.h).
 *
 * Owns: the reading of tokenizer.json, tokenizer_config.json and
 * special_tokens_map.json (and config.json's bos/eos ids, when those
 * name no BOS/EOS token) into one table of tokens by id, and the keys
 * written from it. Nothing here tokenizes: tokenizer.c does, from the keys.
 *
 * How SentencePiece-style vocabularies get scores: Hugging Face's BPE
 * merges the adjacent pair of lowest merge rank; tokenizer_spm.c merges
 * the adjacent pair whose concatenation is the vocabulary token of
 * highest score. With score(piece) = -(rank of the first merge that
 * produces it), both pick the same pair whenever each piece's merges are
 * neighbours in rank order, as they are in every file Hugging Face's
 * SentencePiece converter writes (its merges are sorted by the score of
 * the merged piece). Pieces no merge produces (single characters, byte
 * and special tokens) get HF_SCORE_NEVER, below every merge.
 *
 * n_vocab <= 0 means the embedding's row count is not known: no padding,
 * no limit.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backends/engine/hf_tokenizer.h"

#define HF_SCORE_NEVER (-1e9f)

/* tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
enum { HT_NORMAL = 1, HT_UNKNOWN = 2, HT_CONTROL = 3, HT_USER = 4,
       HT_UNUSED = 5, HT_BYTE = 6 };

/* tokenizer.json, tokenizer_config.json, special_tokens_map.json and
 * the model's config.json (for bos/eos ids no other file names). */
enum { F_TOK = 0, F_CFG = 1, F_MAP = 2, F_HFC = 3, F_N = 4 };

/* Everything read so far. Token texts are owned (tok[id], NULL for an id
 * not given yet); slot/mask: an open-addressing hash from text to id over
 * the tokens of model.vocab and added_tokens (not the padding). */
typedef struct hf_tok {
    const char *dir;
    char path[F_N][1024];        /* the files, by F_* */
    cJSON *json[F_N];            /* NULL: an optional file not there */
    em_err *err;
    char **tok;
    int32_t *type;
    float *score;
    int64_t n;                   /* ids 0..n-1 given by the files */
    int64_t rows;                /* n, or n_vocab when padded */
    int32_t *slot;
    uint32_t mask;
    int spm;                     /* SentencePiece-style, else byte-level */
    em_buf mtext;                /* gpt2 merges "a b", NUL-separated */
    size_t n_merges;
    int32_t bos, eos, unk, pad;
} hf_tok;

static int key_err(hf_tok *h, int f, const char *key, const char *what)
{
    return em_errorf(h->err, "%s: key '%s': %s", h->path[f], key, what);
}

/* ----------------------------------------------------------- the files */

static int line_of(const char *s, const char *at)
{
    int line = 1;
    for (; s < at && *s; s++)
        line += *s == '\n';
    return line;
}

/* Reads and parses DIR/name into h->json[f]; a missing optional file
 * leaves it NULL. */
static int load_json(hf_tok *h, int f, const char *name, int required)
{
    char *text = NULL;
    size_t len;
    snprintf(h->path[f], sizeof h->path[f], "%s/%s", h->dir, name);
    if (em_read_file(h->path[f], &text, &len, h->err)) {
        FILE *fp = fopen(h->path[f], "rb");
        if (fp) {
            fclose(fp);
            return -1;                   /* em_read_file said why */
        }
        if (!required)
            return 0;
        return em_errorf(h->err, "%s: missing (a Hugging Face checkpoint "
                         "directory needs it for its tokenizer)", h->path[f]);
    }
    const char *end = NULL;
    h->json[f] = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!h->json[f]) {
        int line = line_of(text, end ? end : text);
        free(text);
        return em_errorf(h->err, "%s:%d: invalid JSON", h->path[f], line);
    }
    free(text);
    if (!cJSON_IsObject(h->json[f]))
        return em_errorf(h->err, "%s: not a JSON object", h->path[f]);
    return 0;
}

/* ----------------------------------------------------- the token table */

static uint32_t slot_of(const hf_tok *h, const char *s, size_t n)
{
    return (uint32_t)em_hash64(s, n, 0x6866) & h->mask;
}

/* Id of the token whose text is s[0..n), or -1. */
static int32_t hf_lookup(const hf_tok *h, const char *s, size_t n)
{
    for (uint32_t i = slot_of(h, s, n);; i = (i + 1) & h->mask) {
        int32_t id = h->slot[i];
        if (id < 0)
            return -1;
        if (strlen(h->tok[id]) == n && !memcmp(h->tok[id], s, n))
            return id;
    }
}

/* Files id under its text; -1 (and nothing filed) if the text has an
 * id already. */
static int map_add(hf_tok *h, int32_t id)
{
    size_t n = strlen(h->tok[id]);
    uint32_t i = slot_of(h, h->tok[id], n);
    for (; h->slot[i] >= 0; i = (i + 1) & h->mask)
        if (!strcmp(h->tok[h->slot[i]], h->tok[id]))
            return -1;
    h->slot[i] = id;
    return 0;
}

/* An integer id in [0, INT32_MAX / 2), or -1. */
static int64_t json_id(const cJSON *v)
{
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 ||
        v->valuedouble >= INT32_MAX / 2 ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return -1;
    return (int64_t)v->valuedouble;
}

static int gap_err(hf_tok *h, int64_t id)
{
    return em_errorf(h->err, "%s: key 'model.vocab': no token has id %lld "
                     "(ids run 0..%lld with gaps)", h->path[F_TOK],
                     (long long)id, (long long)h->n - 1);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The smallest id neither model.vocab nor added_tokens gives (ids known
 * valid), found without a table as large as the largest id. */
static int64_t first_gap(const cJSON *vocab, const cJSON *added)
{
    size_t n = 0, cap = (size_t)cJSON_GetArraySize(vocab) +
                        (size_t)cJSON_GetArraySize(added) + 1;
    int64_t *ids = em_malloc(cap * sizeof *ids), gap = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vocab)
        ids[n++] = json_id(v);
    cJSON_ArrayForEach(v, added)
        ids[n++] = json_id(cJSON_GetObjectItemCaseSensitive(v, "id"));
    qsort(ids, n, sizeof *ids, cmp_i64);
    for (size_t i = 0; i < n && ids[i] <= gap; i++)
        if (ids[i] == gap)
            gap++;
    free(ids);
    return gap;
}

/* The ids of model.vocab and added_tokens run 0..n-1: n. */
static int count_ids(hf_tok *h, const cJSON *vocab, const cJSON *added)
{
    const cJSON *v;
    h->n = 0;
    cJSON_ArrayForEach(v, vocab) {
        int64_t id = json_id(v);
        if (id < 0)
            return em_errorf(h->err, "%s: key 'model.vocab': token '%s' has "
                             "no valid id", h->path[F_TOK], v->string);
        if (id + 1 > h->n)
            h->n = id + 1;
    }
    cJSON_ArrayForEach(v, added) {
        int64_t id = json_id(cJSON_GetObjectItemCaseSensitive(v, "id"));
        if (id < 0 || !cJSON_GetStringValue(
                          cJSON_GetObjectItemCaseSensitive(v, "content")))
            return key_err(h, F_TOK, "added_tokens", "an entry lacks a "
                           "valid id or content");
        if (id + 1 > h->n)
            h->n = id + 1;
    }
    if (!h->n)
        return key_err(h, F_TOK, "model.vocab", "no tokens");
    if (h->n > cJSON_GetArraySize(vocab) + cJSON_GetArraySize(added))
        return gap_err(h, first_gap(vocab, added));
    return 0;
}

static void table_alloc(hf_tok *h, int64_t n_rows)
{
    uint32_t cap = 16;
    while (cap < 2 * (uint64_t)n_rows)
        cap <<= 1;
    h->tok = em_calloc((size_t)n_rows, sizeof *h->tok);
    h->type = em_malloc((size_t)n_rows * sizeof *h->type);
    h->score = em_malloc((size_t)n_rows * sizeof *h->score);
    for (int64_t i = 0; i < n_rows; i++) {
        h->type[i] = HT_NORMAL;
        h->score[i] = HF_SCORE_NEVER;
    }
    h->slot = em_malloc(cap * sizeof *h->slot);
    memset(h->slot, 0xFF, cap * sizeof *h->slot);
    h->mask = cap - 1;
}

static int read_vocab(hf_tok *h, const cJSON *vocab)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, vocab) {
        int64_t id = json_id(v);
        if (h->tok[id])
            return em_errorf(h->err, "%s: key 'model.vocab': id %lld is "
                             "given to both '%s' and '%s'", h->path[F_TOK],
                             (long long)id, h->tok[id], v->string);
        if (!*v->string)
            return key_err(h, F_TOK, "model.vocab", "a token is empty");
        h->tok[id] = em_strdup(v->string);
        if (map_add(h, (int32_t)id))
            return em_errorf(h->err, "%s: key 'model.vocab': token '%s' "
                             "appears twice", h->path[F_TOK], v->string);
    }
    return 0;
}

/* Added tokens: new ids, or ids of model.vocab with the same text. */
static int read_added(hf_tok *h, const cJSON *added)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, added) {
        int64_t id = json_id(cJSON_GetObjectItemCaseSensitive(v, "id"));
        const char *s = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(v, "content"));
        if (!*s)
            return key_err(h, F_TOK, "added_tokens", "a token is empty");
        if (h->tok[id] && strcmp(h->tok[id], s))
            return em_errorf(h->err, "%s: key 'added_tokens': id %lld is "
                             "'%s' there but '%s' in model.vocab",
                             h->path[F_TOK], (long long)id, s, h->tok[id]);
        if (!h->tok[id]) {
            h->tok[id] = em_strdup(s);
            map_add(h, (int32_t)id);   /* same text as a vocab token: ok */
        }
        h->type[id] = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
                          v, "special")) ? HT_CONTROL : HT_USER;
    }
    return 0;
}

static int check_gaps(hf_tok *h)
{
    for (int64_t id = 0; id < h->n; id++)
        if (!h->tok[id])
            return gap_err(h, id);
    return 0;
}

/* Tokens by id from model.vocab and added_tokens, padded to n_vocab. */
static int read_tokens(hf_tok *h, const cJSON *model, int64_t n_vocab)
{
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(h->json[F_TOK],
                                                          "added_tokens");
    if (!cJSON_IsObject(vocab))
        return key_err(h, F_TOK, "model.vocab", "missing or not an object "
                       "of token -> id");
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added))
        return key_err(h, F_TOK, "added_tokens", "not an array");
    if (count_ids(h, vocab, added))
        return -1;
    if (n_vocab > 0 && h->n > n_vocab)
        return em_errorf(h->err, "%s: key 'model.vocab': %lld tokens (with "
                         "added_tokens) but the model's embedding has %lld "
                         "rows", h->path[F_TOK], (long long)h->n,
                         (long long)n_vocab);
    h->rows = n_vocab > h->n ? n_vocab : h->n;
    table_alloc(h, h->rows);
    if (read_vocab(h, vocab) || read_added(h, added) || check_gaps(h))
        return -1;
    for (int64_t id = h->n; id < n_vocab; id++) {
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%lld]", (long long)id);
        h->tok[id] = em_strdup(buf);
        h->type[id] = HT_UNUSED;
    }
    return 0;
}

/* --------------------------------------------------------- the JSON tree */

static const cJSON *item(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static const char *type_of(const cJSON *o)
{
    return cJSON_GetStringValue(item(o, "type"));
}

/* The members of a Sequence node (pre-tokenizers, normalizers, decoders,
 * post-processors), or NULL. */
static const cJSON *seq_list(const cJSON *node)
{
    static const char *keys[] = {"pretokenizers", "normalizers", "decoders",
                                 "processors"};
    const char *ty = type_of(node);
    if (!ty || strcmp(ty, "Sequence"))
        return NULL;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (cJSON_IsArray(item(node, keys[i])))
            return item(node, keys[i]);
    return NULL;
}

/* node itself if of type ty, else its first Sequence member of type ty. */
static const cJSON *find_type(const cJSON *node, const char *ty)
{
    const char *t = type_of(node);
    const cJSON *v;
    if (t && !strcmp(t, ty))
        return node;
    cJSON_ArrayForEach(v, seq_list(node)) {
        const cJSON *r = find_type(v, ty);
        if (r)
            return r;
    }
    return NULL;
}

/* Whether the normalizer has a Replace of " " by "▁" (Llama-2's). */
static int replaces_space(const cJSON *norm)
{
    const cJSON *v;
    const char *t = type_of(norm);
    if (t && !strcmp(t, "Replace")) {
        const char *pat = cJSON_GetStringValue(item(item(norm, "pattern"),
                                                    "String"));
        const char *to = cJSON_GetStringValue(item(norm, "content"));
        return pat && to && !strcmp(pat, " ") &&
               !strcmp(to, "\xe2\x96\x81");
    }
    cJSON_ArrayForEach(v, seq_list(norm))
        if (replaces_space(v))
            return 1;
    return 0;
}

/* SentencePiece style: byte_fallback, a Metaspace pre-tokenizer or a
 * "▁" normalizer; byte-level: a ByteLevel pre-tokenizer or decoder. The
 * space prefix of SPM comes from Prepend "▁" or Metaspace. */
static int read_kind(hf_tok *h, const cJSON *model, int *space_prefix)
{
    const cJSON *root = h->json[F_TOK];
    const cJSON *pre = item(root, "pre_tokenizer");
    const cJSON *norm = item(root, "normalizer");
    const cJSON *meta = find_type(pre, "Metaspace");
    int byte_level = find_type(pre, "ByteLevel") ||
                     find_type(item(root, "decoder"), "ByteLevel");
    h->spm = !byte_level && (cJSON_IsTrue(item(model, "byte_fallback")) ||
                             meta || replaces_space(norm));
    if (!byte_level && !h->spm)
        return key_err(h, F_TOK, "pre_tokenizer", "neither byte-level BPE "
                       "(ByteLevel) nor SentencePiece-style BPE "
                       "(byte_fallback, Metaspace or a '\xe2\x96\x81' "
                       "normalizer): not supported");
    const char *scheme = cJSON_GetStringValue(item(meta, "prepend_scheme"));
    *space_prefix = find_type(norm, "Prepend") != NULL ||
                    (meta && (scheme ? strcmp(scheme, "never") != 0 :
                              !cJSON_IsFalse(item(meta, "add_prefix_space"))));
    return 0;
}

static int read_model(hf_tok *h, const cJSON **model)
{
    *model = item(h->json[F_TOK], "model");
    if (!cJSON_IsObject(*model))
        return key_err(h, F_TOK, "model", "missing or not an object");
    const char *ty = type_of(*model);
    if (ty && strcmp(ty, "BPE")) {
        char what[256];
        snprintf(what, sizeof what, "'%.100s' is not supported (only BPE: "
                 "byte-level or SentencePiece-style)", ty);
        return key_err(h, F_TOK, "model.type", what);
    }
    if (!ty && !item(*model, "merges"))
        return key_err(h, F_TOK, "model.type", "missing, and no merges");
    const char *pfx = cJSON_GetStringValue(item(*model,
                                                "continuing_subword_prefix"));
    const char *sfx = cJSON_GetStringValue(item(*model,
                                                "end_of_word_suffix"));
    if (pfx && *pfx)
        return key_err(h, F_TOK, "model.continuing_subword_prefix",
                       "subword prefixes are not supported");
    if (sfx && *sfx)
        return key_err(h, F_TOK, "model.end_of_word_suffix",
                       "word suffixes are not supported");
    return 0;
}

/* Whether node (and each member of a Sequence) is of a type in list
 * ('|'-separated); a Replace must be Llama-2's " " -> "▁". */
static int only_types(const cJSON *node, const char *list)
{
    const char *t = type_of(node);
    const cJSON *v;
    if (!node || cJSON_IsNull(node))
        return 1;
    if (t && !strcmp(t, "Sequence")) {
        cJSON_ArrayForEach(v, seq_list(node))
            if (!only_types(v, list))
                return 0;
        return seq_list(node) != NULL;
    }
    if (t && !strcmp(t, "Replace") && !replaces_space(node))
        return 0;
    size_t n = t ? strlen(t) : 0;
    for (const char *p = list; t && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, t, n))
            return 1;
        p += len + (bar != NULL);
    }
    return 0;
}

/* Normalizers and SPM pre-tokenizers tokenizer.c does the work of: the
 * "▁" ones of SentencePiece-style files; NFC (Qwen2), which llama.cpp
 * leaves out too. Anything else would change the ids unseen. */
static int check_text_steps(hf_tok *h)
{
    const cJSON *root = h->json[F_TOK];
    if (!only_types(item(root, "normalizer"),
                    h->spm ? "Prepend|Replace|NFC" : "NFC"))
        return key_err(h, F_TOK, "normalizer", h->spm ?
                       "only Prepend \"\xe2\x96\x81\", Replace \" \" -> "
                       "\"\xe2\x96\x81\" and NFC are supported" :
                       "only NFC is supported with a byte-level vocabulary");
    if (h->spm && !only_types(item(root, "pre_tokenizer"), "Metaspace"))
        return key_err(h, F_TOK, "pre_tokenizer", "a SentencePiece-style "
                       "vocabulary takes only Metaspace (or none)");
    return 0;
}

/* ---------------------------------------------------------------- merges */

/* The halves of merge r: "a b" or ["a", "b"]. */
static int merge_halves(hf_tok *h, const cJSON *m, size_t r, const char **a,
                        size_t *na, const char **b)
{
    const char *s = cJSON_GetStringValue(m);
    char what[128];
    if (s) {
        const char *sp = strchr(s, ' ');
        if (sp && !strchr(sp + 1, ' ')) {
            *a = s, *na = (size_t)(sp - s), *b = sp + 1;
            return 0;
        }
    } else if (cJSON_GetArraySize(m) == 2 &&
               cJSON_GetStringValue(cJSON_GetArrayItem(m, 0)) &&
               cJSON_GetStringValue(cJSON_GetArrayItem(m, 1))) {
        *a = cJSON_GetArrayItem(m, 0)->valuestring;
        *na = strlen(*a);
        *b = cJSON_GetArrayItem(m, 1)->valuestring;
        return 0;
    }
    snprintf(what, sizeof what, "merge %zu is neither \"a b\" nor "
             "[\"a\", \"b\"]", r);
    return key_err(h, F_TOK, "model.merges", what);
}

static int unknown_merge(hf_tok *h, size_t r, const char *piece, size_t n)
{
    return em_errorf(h->err, "%s: key 'model.merges': merge %zu names "
                     "'%.*s', which is not in the vocabulary",
                     h->path[F_TOK], r, (int)(n > 200 ? 200 : n), piece);
}

/* One merge: the halves and their concatenation must be tokens. gpt2
 * keeps "a b"; SPM scores the merged piece by its first rank. */
static int add_merge(hf_tok *h, size_t r, const char *a, size_t na,
                     const char *b, em_buf *cat)
{
    size_t nb = strlen(b);
    if (hf_lookup(h, a, na) < 0)
        return unknown_merge(h, r, a, na);
    if (hf_lookup(h, b, nb) < 0)
        return unknown_merge(h, r, b, nb);
    em_buf_reset(cat);
    em_buf_put(cat, a, na);
    em_buf_put(cat, b, nb);
    int32_t c = hf_lookup(h, cat->s, cat->len);
    if (c < 0)
        return unknown_merge(h, r, cat->s, cat->len);
    if (h->spm) {
        if (h->score[c] == HF_SCORE_NEVER)
            h->score[c] = -(float)r;
        return 0;
    }
    if (na && memchr(a + 1, ' ', na - 1))   /* "a b" would split wrong */
        return em_errorf(h->err, "%s: key 'model.merges': merge %zu: '%.*s' "
                         "holds a space, which tokenizer.ggml.merges cannot "
                         "hold in a merge's left half", h->path[F_TOK], r,
                         (int)(na > 200 ? 200 : na), a);
    em_buf_put(&h->mtext, a, na);
    em_buf_putc(&h->mtext, ' ');
    em_buf_put(&h->mtext, b, nb + 1);        /* with the NUL */
    h->n_merges++;
    return 0;
}

static int read_merges(hf_tok *h, const cJSON *model)
{
    const cJSON *merges = item(model, "merges"), *m;
    em_buf cat = {0};
    size_t r = 0;
    if (!cJSON_IsArray(merges))
        return key_err(h, F_TOK, "model.merges", "missing or not an array");
    cJSON_ArrayForEach(m, merges) {
        const char *a = NULL, *b = NULL;
        size_t na = 0;
        if (merge_halves(h, m, r, &a, &na, &b) ||
            add_merge(h, r, a, na, b, &cat)) {
            em_buf_free(&cat);
            return -1;
        }
        r++;
    }
    em_buf_free(&cat);
    return 0;
}

/* --------------------------------------------------------- pre-tokenizer */

/* Split regexes of Hugging Face files and the tokenizer.ggml.pre name
 * llama.cpp's converter gives them (tokenizer_bpe.c knows each). */
static const struct { const char *name, *regex; } split_regex[] = {
    {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+"
              "| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
    {"llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?"
                  "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    {"qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
              "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+"
              "|\\s+(?!\\S)|\\s+"},
};

/* One letter per pre-tokenizer of the sequence: B ByteLevel with its
 * regex, b without, S Split (regex in *re), D Digits one by one, d
 * Digits in runs, P Punctuation. */
static int pre_letter(hf_tok *h, const cJSON *p, char *c, const char **re)
{
    const char *ty = type_of(p);
    char what[160];
    if (ty && !strcmp(ty, "ByteLevel")) {
        if (cJSON_IsTrue(item(p, "add_prefix_space")))
            return key_err(h, F_TOK, "pre_tokenizer", "ByteLevel with "
                           "add_prefix_space true is not supported");
        *c = cJSON_IsFalse(item(p, "use_regex")) ? 'b' : 'B';
    } else if (ty && !strcmp(ty, "Split")) {
        *re = cJSON_GetStringValue(item(item(p, "pattern"), "Regex"));
        if (!*re || cJSON_IsTrue(item(p, "invert")))
            return key_err(h, F_TOK, "pre_tokenizer", "a Split without a "
                           "Regex pattern (or inverted) is not supported");
        *c = 'S';
    } else if (ty && !strcmp(ty, "Digits")) {
        *c = cJSON_IsTrue(item(p, "individual_digits")) ? 'D' : 'd';
    } else if (ty && !strcmp(ty, "Punctuation")) {
        *c = 'P';
    } else {
        snprintf(what, sizeof what, "pre-tokenizer type '%.80s' is not "
                 "supported", ty ? ty : "(none)");
        return key_err(h, F_TOK, "pre_tokenizer", what);
    }
    return 0;
}

static int regex_name(hf_tok *h, const char *re, const char **name)
{
    char what[512];
    for (size_t i = 0; i < sizeof split_regex / sizeof *split_regex; i++)
        if (!strcmp(re, split_regex[i].regex)) {
            *name = split_regex[i].name;
            return 0;
        }
    snprintf(what, sizeof what, "unknown Split regex '%.300s' (known: "
             "GPT-2's, Llama-3's, Qwen2's)", re);
    return key_err(h, F_TOK, "pre_tokenizer", what);
}

/* tokenizer.ggml.pre of a byte-level vocabulary. */
static int pre_name(hf_tok *h, const char **name)
{
    const cJSON *pre = item(h->json[F_TOK], "pre_tokenizer"), *p;
    const cJSON *list = seq_list(pre);
    char sig[8] = {0};
    const char *re = NULL;
    int k = 0;
    if (!list && cJSON_IsObject(pre) && pre_letter(h, pre, sig, &re))
        return -1;
    cJSON_ArrayForEach(p, list) {
        if (k == 7)
            return key_err(h, F_TOK, "pre_tokenizer", "too long a Sequence");
        if (pre_letter(h, p, &sig[k++], &re))
            return -1;
    }
    if (!strcmp(sig, "Sb"))
        return regex_name(h, re, name);
    if (!strcmp(sig, "B") || !strcmp(sig, "DB") ||
        (!strcmp(sig, "PBdS") && !strcmp(re, "[0-9][0-9][0-9]"))) {
        *name = sig[0] == 'B' ? "gpt-2" : sig[0] == 'D' ? "starcoder"
                                                        : "falcon";
        return 0;
    }
    return key_err(h, F_TOK, "pre_tokenizer", sig[0] ? "not one emerge "
                   "knows (GPT-2's ByteLevel, a Split regex then ByteLevel "
                   "without regex, StarCoder's or Falcon's Sequence)" :
                   "missing for a byte-level vocabulary");
}

/* ------------------------------------------------- special tokens, flags */

/* A special token as tokenizer_config.json / special_tokens_map.json
 * give it: "text" or an AddedToken object {"content": "text", ...}. */
static const char *token_str(const cJSON *v)
{
    return cJSON_IsString(v) ? v->valuestring
                             : cJSON_GetStringValue(item(v, "content"));
}

/* The id of the token the config files name under key; *id untouched
 * when none does. */
static int special_id(hf_tok *h, const char *key, int32_t *id)
{
    for (int f = F_CFG; f <= F_MAP; f++) {
        const cJSON *v = item(h->json[f], key);
        if (!v || cJSON_IsNull(v))
            continue;
        const char *s = token_str(v);
        if (!s)
            return key_err(h, f, key, "neither a string nor an object "
                           "with content");
        int32_t t = hf_lookup(h, s, strlen(s));
        if (t < 0) {
            char what[300];
            snprintf(what, sizeof what, "'%.200s' is not a token", s);
            return key_err(h, f, key, what);
        }
        *id = t;
        return 0;
    }
    return 0;
}

/* config.json's id under key (a number, or a list whose first entry
 * counts) when the tokenizer files named none: GPT-2's name no tokens,
 * and llama.cpp's converter reads config.json too. */
static int config_id(hf_tok *h, const char *key, int32_t *id)
{
    const cJSON *v = item(h->json[F_HFC], key);
    if (*id >= 0 || !v || cJSON_IsNull(v))
        return 0;
    if (cJSON_IsArray(v))
        v = cJSON_GetArrayItem(v, 0);
    int64_t x = json_id(v);
    if (x < 0 || x >= h->n)
        return key_err(h, F_HFC, key, "not an id of a token of "
                       "tokenizer.json");
    *id = (int32_t)x;
    return 0;
}

/* The post-processor's TemplateProcessing "single" template: whether a
 * special token comes before $A (and the first such, in *first) and
 * whether one comes after. 0 when there is no template. */
static int template_of(const hf_tok *h, int *before, int *after,
                       const char **first)
{
    const cJSON *tp = find_type(item(h->json[F_TOK], "post_processor"),
                                "TemplateProcessing"), *e;
    int seen_a = 0;
    *before = *after = 0;
    *first = NULL;
    if (!tp)
        return 0;
    cJSON_ArrayForEach(e, item(tp, "single")) {
        const cJSON *st = item(e, "SpecialToken");
        if (item(e, "Sequence")) {
            seen_a = 1;
        } else if (st && seen_a) {
            *after = 1;
        } else if (st) {
            *before = 1;
            if (!*first)
                *first = cJSON_GetStringValue(item(st, "id"));
        }
    }
    return 1;
}

/* A bool flag of tokenizer_config.json into *v; 1 if present. */
static int config_flag(const hf_tok *h, const char *key, int *v)
{
    const cJSON *b = item(h->json[F_CFG], key);
    if (!cJSON_IsBool(b))
        return 0;
    *v = cJSON_IsTrue(b);
    return 1;
}

/* bos/eos/unk/pad ids and add_bos/add_eos: tokenizer_config.json, then
 * special_tokens_map.json, then config.json (ids), then the
 * post-processor, then the defaults (SPM: <s>, </s>, add BOS). */
static int read_specials(hf_tok *h, const cJSON *model, int *add_bos,
                         int *add_eos)
{
    const char *unk = cJSON_GetStringValue(item(model, "unk_token"));
    if (unk)
        h->unk = hf_lookup(h, unk, strlen(unk));
    if (special_id(h, "bos_token", &h->bos) ||
        special_id(h, "eos_token", &h->eos) ||
        special_id(h, "unk_token", &h->unk) ||
        special_id(h, "pad_token", &h->pad))
        return -1;
    if (config_id(h, "bos_token_id", &h->bos) ||
        config_id(h, "eos_token_id", &h->eos))
        return -1;
    int before, after;
    const char *first;
    int has_tp = template_of(h, &before, &after, &first);
    if (h->bos < 0 && first)
        h->bos = hf_lookup(h, first, strlen(first));
    int f_bos = config_flag(h, "add_bos_token", add_bos) ? F_CFG : F_TOK;
    int f_eos = config_flag(h, "add_eos_token", add_eos) ? F_CFG : F_TOK;
    if (f_bos == F_TOK)
        *add_bos = has_tp ? before : h->spm;
    if (f_eos == F_TOK)
        *add_eos = has_tp ? after : 0;
    if (h->spm && h->bos < 0)             /* SentencePiece's own names */
        h->bos = hf_lookup(h, "<s>", 3);
    if (h->spm && h->eos < 0)
        h->eos = hf_lookup(h, "</s>", 4);
    if (*add_bos && h->bos < 0)
        return key_err(h, f_bos, f_bos == F_CFG ? "add_bos_token" :
                       "post_processor", "BOS is to be added but no file "
                       "names a BOS token (bos_token)");
    if (*add_eos && h->eos < 0)
        return key_err(h, f_eos, f_eos == F_CFG ? "add_eos_token" :
                       "post_processor", "EOS is to be added but no file "
                       "names an EOS token (eos_token)");
    return 0;
}

/* SPM token types: the unknown token, <0xXX> byte tokens. */
static void spm_types(hf_tok *h)
{
    for (int64_t id = 0; id < h->n; id++) {
        const char *s = h->tok[id];
        if (h->type[id] == HT_NORMAL && strlen(s) == 6 &&
            !strncmp(s, "<0x", 3) && s[5] == '>' &&
            strchr("0123456789ABCDEFabcdef", s[3]) && s[3] &&
            strchr("0123456789ABCDEFabcdef", s[4]) && s[4])
            h->type[id] = HT_BYTE;
    }
    if (h->unk >= 0)
        h->type[h->unk] = HT_UNKNOWN;
}

/* ------------------------------------------------------------- the keys */

static void set_id(gguf_writer *w, const char *key, int32_t id)
{
    if (id >= 0)
        gguf_writer_set_u32(w, key, (uint32_t)id);
}

static void write_merges(hf_tok *h, gguf_writer *w)
{
    const char **m = em_malloc((h->n_merges + 1) * sizeof *m);
    const char *p = h->mtext.s;
    for (size_t i = 0; i < h->n_merges; i++) {
        m[i] = p;
        p += strlen(p) + 1;
    }
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", m, h->n_merges);
    free(m);
}

static void write_keys(hf_tok *h, const char *pre, int add_bos, int add_eos,
                       int space_prefix, gguf_writer *w)
{
    gguf_writer_set_str(w, "tokenizer.ggml.model", h->spm ? "llama" : "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens",
                            (const char *const *)h->tok, (size_t)h->rows);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", h->type,
                            (size_t)h->rows);
    if (h->spm) {
        gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", h->score,
                                (size_t)h->rows);
        gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix",
                             space_prefix);
    } else {
        write_merges(h, w);
    }
    set_id(w, "tokenizer.ggml.bos_token_id", h->bos);
    set_id(w, "tokenizer.ggml.eos_token_id", h->eos);
    set_id(w, "tokenizer.ggml.unknown_token_id", h->unk);
    set_id(w, "tokenizer.ggml.padding_token_id", h->pad);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", add_eos);
}

static void hf_free(hf_tok *h)
{
    for (int f = 0; f < F_N; f++)
        cJSON_Delete(h->json[f]);
    for (int64_t i = 0; h->tok && i < h->rows; i++)
        free(h->tok[i]);
    free(h->tok);
    free(h->type);
    free(h->score);
    free(h->slot);
    em_buf_free(&h->mtext);
}

static int read_all(hf_tok *h, int64_t n_vocab, gguf_writer *w)
{
    const cJSON *model;
    const char *pre = "default";
    int space_prefix = 0, add_bos, add_eos;
    if (load_json(h, F_TOK, "tokenizer.json", 1) ||
        load_json(h, F_CFG, "tokenizer_config.json", 0) ||
        load_json(h, F_MAP, "special_tokens_map.json", 0) ||
        load_json(h, F_HFC, "config.json", 0) ||
        read_model(h, &model) || read_kind(h, model, &space_prefix) ||
        check_text_steps(h) ||
        (!h->spm && pre_name(h, &pre)) ||
        read_tokens(h, model, n_vocab) || read_merges(h, model) ||
        read_specials(h, model, &add_bos, &add_eos))
        return -1;
    if (h->spm)
        spm_types(h);
    write_keys(h, pre, add_bos, add_eos, space_prefix, w);
    return 0;
}

int hf_tokenizer_read(const char *dir, int64_t n_vocab, gguf_writer *w,
                      em_err *err)
{
    hf_tok h = {.dir = dir, .err = err, .bos = -1, .eos = -1, .unk = -1,
                .pad = -1};
    int rc = read_all(&h, n_vocab, w);
    hf_free(&h);
    return rc;
}

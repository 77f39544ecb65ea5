/*
 * hf_tok_write.c - a GGUF file's tokenizer as tokenizer.json and
 * tokenizer_config.json (tests/hf_tok_write.h). Test fixtures only.
 *
 * The vocabulary is read through tok_build, so the defaults llama.cpp
 * applies (BOS 1 and add_bos for llama, ...) are the ones written out;
 * tokenizer_int.h gives the types, scores and the text -> id lookup.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backends/engine/tokenizer_int.h"
#include "base/utf8.h"
#include "tests/hf_tok_write.h"

#define SPACE_MARK "\xe2\x96\x81"    /* "▁" */

/* Hugging Face's Split regexes for the tokenizer.ggml.pre names. */
#define HF_RE_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?" \
                     "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
                     "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define HF_RE_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?" \
                    "\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
                    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* The token's text, NUL-terminated (malloc'd). */
static char *text_of(const tokenizer *t, int32_t id)
{
    size_t n;
    const char *s = tok_text(t, id, &n);
    return em_strndup(s, n);
}

/* Tokens written: all but the trailing "[PADn]" ones. */
static int n_written(const tokenizer *t)
{
    int n = t->n_vocab;
    while (n > 1) {
        char want[32], *s = text_of(t, n - 1);
        snprintf(want, sizeof want, "[PAD%d]", n - 1);
        int pad = !strcmp(s, want);
        free(s);
        if (!pad)
            break;
        n--;
    }
    return n;
}

static cJSON *added_token(const tokenizer *t, int32_t id, int special)
{
    cJSON *a = cJSON_CreateObject();
    char *s = text_of(t, id);
    cJSON_AddNumberToObject(a, "id", id);
    cJSON_AddStringToObject(a, "content", s);
    cJSON_AddBoolToObject(a, "single_word", 0);
    cJSON_AddBoolToObject(a, "lstrip", 0);
    cJSON_AddBoolToObject(a, "rstrip", 0);
    cJSON_AddBoolToObject(a, "normalized", !special);
    cJSON_AddBoolToObject(a, "special", special);
    free(s);
    return a;
}

/* Control and unknown tokens as special added tokens, user-defined ones
 * as plain added tokens. */
static cJSON *added_tokens(const tokenizer *t, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int id = 0; id < n; id++) {
        int ty = t->ttype[id];
        if (ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_USER)
            cJSON_AddItemToArray(arr, added_token(t, id, ty != TT_USER));
    }
    return arr;
}

static cJSON *vocab_obj(const tokenizer *t, int n)
{
    cJSON *v = cJSON_CreateObject();
    for (int id = 0; id < n; id++) {
        char *s = text_of(t, id);
        cJSON_AddNumberToObject(v, s, id);
        free(s);
    }
    return v;
}

static cJSON *typed(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

static cJSON *byte_level(int prefix, int trim, int regex)
{
    cJSON *o = typed("ByteLevel");
    cJSON_AddBoolToObject(o, "add_prefix_space", prefix);
    cJSON_AddBoolToObject(o, "trim_offsets", trim);
    cJSON_AddBoolToObject(o, "use_regex", regex);
    return o;
}

static cJSON *split_regex(const char *re)
{
    cJSON *o = typed("Split"), *pat = cJSON_CreateObject();
    cJSON_AddStringToObject(pat, "Regex", re);
    cJSON_AddItemToObject(o, "pattern", pat);
    cJSON_AddStringToObject(o, "behavior", "Isolated");
    cJSON_AddBoolToObject(o, "invert", 0);
    return o;
}

static cJSON *digits(int one_by_one)
{
    cJSON *o = typed("Digits");
    cJSON_AddBoolToObject(o, "individual_digits", one_by_one);
    return o;
}

static cJSON *sequence(const char *key, cJSON *a, cJSON *b, cJSON *c,
                       cJSON *d)
{
    cJSON *o = typed("Sequence"), *arr = cJSON_CreateArray();
    cJSON *items[4] = {a, b, c, d};
    for (int i = 0; i < 4 && items[i]; i++)
        cJSON_AddItemToArray(arr, items[i]);
    cJSON_AddItemToObject(o, key, arr);
    return o;
}

/* The pre-tokenizer Hugging Face files have for tokenizer.ggml.pre. */
static cJSON *gpt2_pre(const char *pre, em_err *err)
{
    if (!*pre || !strcmp(pre, "default") || !strcmp(pre, "gpt-2"))
        return byte_level(0, 1, 1);
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3"))
        return sequence("pretokenizers", split_regex(HF_RE_LLAMA3),
                        byte_level(0, 1, 0), NULL, NULL);
    if (!strcmp(pre, "qwen2"))
        return sequence("pretokenizers", split_regex(HF_RE_QWEN2),
                        byte_level(0, 1, 0), NULL, NULL);
    if (!strcmp(pre, "starcoder"))
        return sequence("pretokenizers", digits(1), byte_level(0, 1, 1),
                        NULL, NULL);
    if (!strcmp(pre, "falcon")) {
        cJSON *p = typed("Punctuation");
        cJSON_AddStringToObject(p, "behavior", "Contiguous");
        return sequence("pretokenizers", p, byte_level(0, 1, 1), digits(0),
                        split_regex("[0-9][0-9][0-9]"));
    }
    em_errorf(err, "hf_tok_write: no Hugging Face pre-tokenizer for "
              "tokenizer.ggml.pre '%s'", pre);
    return NULL;
}

/* TemplateProcessing with BOS before $A (and EOS after it, if asked). */
static cJSON *template_proc(const tokenizer *t)
{
    cJSON *o = typed("TemplateProcessing"), *single = cJSON_CreateArray();
    cJSON *sp = cJSON_CreateObject();
    int32_t ends[2] = {tok_adds_bos(t) ? tok_bos(t) : -1,
                       tok_adds_eos(t) ? tok_eos(t) : -1};
    for (int k = 0; k < 3; k++) {
        cJSON *e = cJSON_CreateObject(), *in = cJSON_CreateObject();
        int32_t id = k == 0 ? ends[0] : k == 2 ? ends[1] : -1;
        if (k != 1 && id < 0) {
            cJSON_Delete(e);
            cJSON_Delete(in);
            continue;
        }
        char *s = k == 1 ? em_strdup("A") : text_of(t, id);
        cJSON_AddStringToObject(in, "id", s);
        cJSON_AddNumberToObject(in, "type_id", 0);
        cJSON_AddItemToObject(e, k == 1 ? "Sequence" : "SpecialToken", in);
        cJSON_AddItemToArray(single, e);
        if (k != 1 && !cJSON_GetObjectItem(sp, s)) {
            cJSON *d = cJSON_CreateObject();
            cJSON_AddStringToObject(d, "id", s);
            cJSON_AddItemToObject(d, "ids", cJSON_CreateIntArray(&id, 1));
            cJSON_AddItemToObject(d, "tokens",
                                  cJSON_CreateStringArray((const char *[]){s},
                                                          1));
            cJSON_AddItemToObject(sp, s, d);
        }
        free(s);
    }
    cJSON_AddItemToObject(o, "single", single);
    cJSON_AddItemToObject(o, "special_tokens", sp);
    return o;
}

/* --------------------------------------------------------------- merges */

/* gpt2 merges by rank: "a b" strings, or [a, b] pairs (newer files). A
 * merge without a space never applies and is left out. */
static cJSON *gpt2_merges(const tokenizer *t, int pairs)
{
    cJSON *arr = cJSON_CreateArray();
    for (int r = 0; r < t->n_merges; r++) {
        const char *m = t->mtext + t->m_off[r];
        size_t na = t->m_left[r], nb = t->m_right[r];
        if (!na)
            continue;
        char *a = em_strndup(m, na), *b = em_strndup(m + na + 1, nb);
        if (pairs) {
            cJSON *p = cJSON_CreateArray();
            cJSON_AddItemToArray(p, cJSON_CreateString(a));
            cJSON_AddItemToArray(p, cJSON_CreateString(b));
            cJSON_AddItemToArray(arr, p);
        } else {
            char *s = em_strndup(m, na + 1 + nb);
            cJSON_AddItemToArray(arr, cJSON_CreateString(s));
            free(s);
        }
        free(a);
        free(b);
    }
    return arr;
}

typedef struct spm_merge {
    float score;
    int32_t piece, left, right;
} spm_merge;

/* Merged piece's score, highest first; then ids, as the converter's
 * stable sorts leave them. */
static int by_score(const void *pa, const void *pb)
{
    const spm_merge *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->piece != b->piece)
        return a->piece < b->piece ? -1 : 1;
    if (a->left != b->left)
        return a->left < b->left ? -1 : 1;
    return (a->right > b->right) - (a->right < b->right);
}

static int normal(const tokenizer *t, int32_t id)
{
    return id >= 0 && t->ttype[id] == TT_NORMAL;
}

/* Every split of a normal piece into two normal pieces, at character
 * boundaries. */
static spm_merge *spm_splits(const tokenizer *t, int n, size_t *count)
{
    spm_merge *m = NULL;
    size_t nm = 0, cap = 0;
    for (int32_t id = 0; id < n; id++) {
        size_t len;
        const char *s = tok_text(t, id, &len);
        if (!normal(t, id) || !len)
            continue;
        for (size_t i = utf8_lead_len((unsigned char)s[0]); i < len;
             i += utf8_lead_len((unsigned char)s[i])) {
            int32_t l = tok_lookup(t, s, i), r = tok_lookup(t, s + i, len - i);
            if (!normal(t, l) || !normal(t, r))
                continue;
            if (nm == cap) {
                cap = cap ? 2 * cap : 4096;
                m = em_realloc(m, cap * sizeof *m);
            }
            m[nm++] = (spm_merge){t->score[id], id, l, r};
        }
    }
    *count = nm;
    return m;
}

static cJSON *spm_merges(const tokenizer *t, int n)
{
    size_t nm;
    spm_merge *m = spm_splits(t, n, &nm);
    cJSON *arr = cJSON_CreateArray();
    em_buf b = {0};
    if (nm)
        qsort(m, nm, sizeof *m, by_score);
    for (size_t i = 0; i < nm; i++) {
        size_t nl, nr;
        const char *l = tok_text(t, m[i].left, &nl);
        const char *r = tok_text(t, m[i].right, &nr);
        em_buf_reset(&b);
        em_buf_put(&b, l, nl);
        em_buf_putc(&b, ' ');
        em_buf_put(&b, r, nr);
        cJSON_AddItemToArray(arr, cJSON_CreateString(b.s));
    }
    em_buf_free(&b);
    free(m);
    return arr;
}

/* ------------------------------------------------------------ documents */

static cJSON *bpe_model(const tokenizer *t, int n, int spm, cJSON *merges)
{
    cJSON *m = typed("BPE");
    cJSON_AddNullToObject(m, "dropout");
    if (spm && t->unk >= 0) {
        char *u = text_of(t, t->unk);
        cJSON_AddStringToObject(m, "unk_token", u);
        free(u);
    } else {
        cJSON_AddNullToObject(m, "unk_token");
    }
    if (spm) {
        cJSON_AddNullToObject(m, "continuing_subword_prefix");
        cJSON_AddNullToObject(m, "end_of_word_suffix");
    } else {
        cJSON_AddStringToObject(m, "continuing_subword_prefix", "");
        cJSON_AddStringToObject(m, "end_of_word_suffix", "");
    }
    cJSON_AddBoolToObject(m, "fuse_unk", spm);
    cJSON_AddBoolToObject(m, "byte_fallback", spm);
    cJSON_AddBoolToObject(m, "ignore_merges", t->ignore_merges);
    cJSON_AddItemToObject(m, "vocab", vocab_obj(t, n));
    cJSON_AddItemToObject(m, "merges", merges);
    return m;
}

static cJSON *doc_head(const tokenizer *t, int n)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "version", "1.0");
    cJSON_AddNullToObject(d, "truncation");
    cJSON_AddNullToObject(d, "padding");
    cJSON_AddItemToObject(d, "added_tokens", added_tokens(t, n));
    return d;
}

/* GPT-2 / Pythia / Llama-3 / Qwen2 shape. */
static cJSON *gpt2_doc(const tokenizer *t, em_err *err)
{
    cJSON *pre = gpt2_pre(tok_pre(t), err);
    if (!pre)
        return NULL;
    int n = n_written(t), bos_eos = tok_adds_bos(t) || tok_adds_eos(t);
    int pairs = !strcmp(tok_pre(t), "llama-bpe") ||
                !strcmp(tok_pre(t), "llama3") || !strcmp(tok_pre(t), "qwen2");
    cJSON *d = doc_head(t, n);
    cJSON_AddNullToObject(d, "normalizer");
    cJSON_AddItemToObject(d, "pre_tokenizer", pre);
    cJSON_AddItemToObject(d, "post_processor", bos_eos ?
                          sequence("processors", byte_level(1, 0, 1),
                                   template_proc(t), NULL, NULL) :
                          byte_level(1, 0, 1));
    cJSON_AddItemToObject(d, "decoder", byte_level(1, 1, 1));
    cJSON_AddItemToObject(d, "model",
                          bpe_model(t, n, 0, gpt2_merges(t, pairs)));
    return d;
}

static cJSON *replace(const char *from, const char *to)
{
    cJSON *o = typed("Replace"), *pat = cJSON_CreateObject();
    cJSON_AddStringToObject(pat, "String", from);
    cJSON_AddItemToObject(o, "pattern", pat);
    cJSON_AddStringToObject(o, "content", to);
    return o;
}

/* Llama-2 shape. */
static cJSON *llama_doc(const tokenizer *t)
{
    int n = n_written(t);
    cJSON *d = doc_head(t, n), *prepend = NULL;
    if (t->add_space_prefix) {
        prepend = typed("Prepend");
        cJSON_AddStringToObject(prepend, "prepend", SPACE_MARK);
    }
    cJSON_AddItemToObject(d, "normalizer", prepend ?
                          sequence("normalizers", prepend,
                                   replace(" ", SPACE_MARK), NULL, NULL) :
                          sequence("normalizers", replace(" ", SPACE_MARK),
                                   NULL, NULL, NULL));
    cJSON_AddNullToObject(d, "pre_tokenizer");
    if (tok_adds_bos(t) || tok_adds_eos(t))
        cJSON_AddItemToObject(d, "post_processor", template_proc(t));
    else
        cJSON_AddNullToObject(d, "post_processor");
    cJSON *strip = typed("Strip");
    cJSON_AddStringToObject(strip, "content", " ");
    cJSON_AddNumberToObject(strip, "start", 1);
    cJSON_AddNumberToObject(strip, "stop", 0);
    cJSON_AddItemToObject(d, "decoder",
                          sequence("decoders", replace(SPACE_MARK, " "),
                                   typed("ByteFallback"), typed("Fuse"),
                                   strip));
    cJSON_AddItemToObject(d, "model",
                          bpe_model(t, n, 1, spm_merges(t, n)));
    return d;
}

static void add_token_str(cJSON *c, const tokenizer *t, const char *key,
                          int32_t id)
{
    if (id < 0 || id >= t->n_vocab) {
        cJSON_AddNullToObject(c, key);
        return;
    }
    char *s = text_of(t, id);
    cJSON_AddStringToObject(c, key, s);
    free(s);
}

static cJSON *config_doc(const tokenizer *t)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddBoolToObject(c, "add_bos_token", tok_adds_bos(t));
    cJSON_AddBoolToObject(c, "add_eos_token", tok_adds_eos(t));
    add_token_str(c, t, "bos_token", tok_bos(t));
    add_token_str(c, t, "eos_token", tok_eos(t));
    add_token_str(c, t, "unk_token", t->unk);
    add_token_str(c, t, "pad_token", t->pad);
    cJSON_AddStringToObject(c, "tokenizer_class", t->type == TOK_SPM ?
                            "LlamaTokenizer" : "PreTrainedTokenizerFast");
    return c;
}

/* ---------------------------------------------------------------- files */

static int write_json(const char *dir, const char *name, const cJSON *doc,
                      em_err *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = cJSON_PrintUnformatted(doc);
    FILE *f = fopen(path, "wb");
    int bad = !text || !f || fwrite(text, 1, strlen(text), f) != strlen(text);
    if (f && fclose(f))
        bad = 1;
    free(text);
    return bad ? em_errorf(err, "%s: cannot write it", path) : 0;
}

int hf_tok_write(const gguf_file *g, const char *dir, em_err *err)
{
    tokenizer *t;
    if (tok_build(g, &t, err))
        return em_error_prefix(err, "hf_tok_write");
    cJSON *doc = t->type == TOK_SPM ? llama_doc(t) : gpt2_doc(t, err);
    cJSON *cfg = config_doc(t);
    int rc = !doc || write_json(dir, "tokenizer.json", doc, err) ||
             write_json(dir, "tokenizer_config.json", cfg, err) ? -1 : 0;
    cJSON_Delete(doc);
    cJSON_Delete(cfg);
    tok_free(t);
    return rc;
}

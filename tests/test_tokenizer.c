/*
 * test_tokenizer.c - tokenizers against llama.cpp: every case of the
 * shared vocab test vectors (llama-spm, gpt-2, gpt-neox, falcon), the
 * token ids of the reference-logits prompts (BOS included), round trips,
 * hand-made vocabularies and the errors for broken metadata.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backends/engine/gguf.h"
#include "backends/engine/tokenizer.h"
#include "backends/engine/tokenizer_int.h"   /* spm_pairs: chunking on/off */
#include "base/common.h"
#include "tests/testlib.h"

#define SEP "\n__ggml_vocab_test__\n"

static tokenizer *open_tok(const char *path, gguf_file **g)
{
    em_err err;
    tokenizer *t = NULL;
    if (gguf_open(path, g, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return NULL;
    }
    if (tok_build(*g, &t, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        gguf_close(*g);
        return NULL;
    }
    return t;
}

/* Concatenated pieces of ids (length in *len if not NULL). */
static char *decode_all_n(const tokenizer *t, const int32_t *ids, int n,
                          size_t *len)
{
    em_buf b = {0};
    char piece[256];
    for (int i = 0; i < n; i++) {
        int len = tok_decode(t, ids[i], piece, sizeof piece);
        em_buf_put(&b, piece, (size_t)len);
    }
    if (len)
        *len = b.len;
    return b.s ? em_buf_take(&b) : em_strdup("");
}

static char *decode_all(const tokenizer *t, const int32_t *ids, int n)
{
    return decode_all_n(t, ids, n, NULL);
}

/* Parses one .out line of space-separated ids. */
static int parse_ids(const char *line, size_t len, int32_t *ids, int cap)
{
    int n = 0;
    char *copy = em_strndup(line, len), *p = copy, *end;
    for (;;) {
        long v = strtol(p, &end, 10);
        if (end == p || n == cap)
            break;
        ids[n++] = (int32_t)v;
        p = end;
    }
    free(copy);
    return n;
}

static void show_ids(em_buf *b, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        em_buf_printf(b, "%s%d", i ? " " : "", ids[i]);
}

/* llama.cpp's vocab test file ggml-vocab-NAME.gguf + suffix: shipped in
 * tests/data/tokenizer (llama-spm, gpt-2, gpt-neox; the GGUFs gzipped,
 * unpacked by tl_data), else ../shared/refs/tokenizer. */
static char *vocab_path(const char *name, const char *suffix)
{
    char d[160], s[160];
    snprintf(d, sizeof d, "tokenizer/ggml-vocab-%s.gguf%s", name, suffix);
    snprintf(s, sizeof s, "refs/tokenizer/ggml-vocab-%s.gguf%s", name, suffix);
    return tl_data_or_shared(d, s);
}

/* One vocab file: every case must give llama.cpp's ids exactly, and the
 * ids must decode back to the input. */
static void check_vocab(const char *name)
{
    char *path = vocab_path(name, "");
    if (!path)
        return;
    char *inp_path = NULL, *out_path = NULL, *inp = NULL, *outs = NULL;
    size_t inp_len, out_len;
    em_err err;
    gguf_file *g = NULL;
    tokenizer *t = open_tok(path, &g);
    inp_path = vocab_path(name, ".inp");
    out_path = vocab_path(name, ".out");
    if (!t || em_read_file(inp_path, &inp, &inp_len, &err) ||
        em_read_file(out_path, &outs, &out_len, &err)) {
        CHECK_MSG(t == NULL, "%s", err.msg);
        goto done;
    }
    int n_case = 0, n_pass = 0, n_round = 0;
    const char *ip = inp, *op = outs;
    static int32_t want[4096];
    for (const char *sep; (sep = strstr(ip, SEP)); ip = sep + strlen(SEP)) {
        size_t len = (size_t)(sep - ip);
        const char *nl = strchr(op, '\n');
        size_t ol = nl ? (size_t)(nl - op) : strlen(op);
        int n_want = parse_ids(op, ol, want, 4096);
        op = nl ? nl + 1 : op + ol;
        int32_t *ids;
        int n;
        n_case++;
        if (tok_encode(t, ip, len, 0, &ids, &n, &err)) {
            CHECK_MSG(0, "%s case %d: %s", name, n_case, err.msg);
            continue;
        }
        if (n == n_want && !memcmp(ids, want, (size_t)n * sizeof *ids)) {
            n_pass++;
        } else {
            em_buf b = {0};
            em_buf_printf(&b, "got ");
            show_ids(&b, ids, n);
            em_buf_printf(&b, " want ");
            show_ids(&b, want, n_want);
            CHECK_MSG(0, "%s case %d \"%.*s\": %s", name, n_case, (int)len,
                      ip, b.s);
            em_buf_free(&b);
        }
        char *back = decode_all(t, ids, n);
        /* SPM's space prefix decodes to a leading space. */
        const char *cmp = back;
        if (tok_bos(t) == 1 && len && back[0] == ' ')
            cmp++;
        if (strlen(cmp) == len && !memcmp(cmp, ip, len))
            n_round++;
        else
            CHECK_MSG(0, "%s case %d: round trip gave \"%s\"", name, n_case,
                      back);
        free(back);
        free(ids);
    }
    printf("  %s: %d/%d cases match llama.cpp, %d/%d round trips\n", name,
           n_pass, n_case, n_round, n_case);
    CHECK(n_case >= 40);
done:
    free(inp);
    free(outs);
    free(inp_path);
    free(out_path);
    tok_free(t);
    if (g)
        gguf_close(g);
    free(path);
}

TEST(vocab_llama_spm) { check_vocab("llama-spm"); }
TEST(vocab_gpt2) { check_vocab("gpt-2"); }
TEST(vocab_gpt_neox) { check_vocab("gpt-neox"); }
TEST(vocab_falcon) { check_vocab("falcon"); }

/* The prompts of a reference-logits file, tokenised with add_special=1
 * by the fixture model's own vocabulary. A fixture shipped in
 * tests/data/parity has a cut vocabulary: its prompts are tokenised with
 * the full vocab file of the same tokenizer (llama.cpp's vocab test
 * files, tests/data/tokenizer) and its ids mapped back through kept_ids.
 * shipped: 1 for the shipped fixtures, 0 for the others (../shared). */
static int check_logits(const char *model, int shipped)
{
    char rel[160];
    char *jpath, *gpath;
    snprintf(rel, sizeof rel, "parity/%s.json", model);
    jpath = tl_data(rel);
    if ((jpath != NULL) != shipped) {
        free(jpath);
        return 0;
    }
    if (shipped) {
        gpath = vocab_path(strstr(model, "gptneox") ? "gpt-neox"
                           : strstr(model, "gpt2") ? "gpt-2" : "llama-spm", "");
    } else {
        snprintf(rel, sizeof rel, "refs/logits/logits-%s.json", model);
        jpath = tl_shared(rel);
        snprintf(rel, sizeof rel, "fixtures/gguf/%s.gguf", model);
        gpath = jpath ? tl_shared(rel) : NULL;
    }
    char *js = NULL;
    size_t jl;
    em_err err;
    gguf_file *g = NULL;
    tokenizer *t = NULL;
    cJSON *root = NULL;
    if (!gpath || em_read_file(jpath, &js, &jl, &err))
        goto done;
    root = cJSON_Parse(js);
    CHECK(root != NULL);
    t = open_tok(gpath, &g);
    if (!root || !t)
        goto done;
    int n_ok = 0, n_all = 0;
    cJSON *pr, *prompts = cJSON_GetObjectItem(root, "prompts");
    cJSON_ArrayForEach(pr, prompts) {
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(pr, "text"));
        cJSON *tk = cJSON_GetObjectItem(pr, "tokens");
        int32_t *ids;
        int n;
        n_all++;
        if (!text || tok_encode(t, text, strlen(text), 1, &ids, &n, &err)) {
            CHECK_MSG(0, "%s: prompt %d", model, n_all);
            continue;
        }
        cJSON *kept = cJSON_GetObjectItem(root, "kept_ids");
        CHECK(!shipped || cJSON_GetArraySize(kept) > 256);
        int same = n == cJSON_GetArraySize(tk);
        for (int i = 0; same && i < n; i++) {
            int want = cJSON_GetArrayItem(tk, i)->valueint;
            if (shipped)
                want = cJSON_GetArrayItem(kept, want)->valueint;
            same = ids[i] == want;
        }
        CHECK_MSG(same, "%s: prompt %d \"%s\" tokenised differently", model,
                  n_all, text);
        n_ok += same;
        free(ids);
    }
    printf("  %s: %d/%d prompts match\n", model, n_ok, n_all);
    CHECK(n_all >= 2);
done:
    cJSON_Delete(root);
    tok_free(t);
    if (g)
        gguf_close(g);
    free(js);
    free(jpath);
    free(gpath);
    return 1;
}

TEST(logits_prompts)
{
    static const char *models[] = {
        "tiny-llama-f32", "tiny-llama-f16", "tiny-llama-q8_0",
        "tiny-llama-q4_0", "wide-llama-q4_k", "wide-llama-q6_k",
        "tiny-gpt2-f16", "tiny-gptneox-f16",
    };
    int n = 0;
    for (size_t i = 0; i < sizeof models / sizeof *models; i++)
        n += check_logits(models[i], 1);
    CHECK_INT(n, 7); /* the shipped ones */
}

/* The fixtures not shipped (wide-llama-q6_k), from ../shared. */
TEST(logits_prompts_unshipped)
{
    check_logits("wide-llama-q6_k", 0);
}

/* ------------------------------------------------- random inputs */

/* Code points that stress the pre-tokenizers and byte fallback: ASCII,
 * every kind of Unicode space, combining marks, CJK, emoji, digits of
 * other scripts, apostrophes. */
static const uint32_t pool[] = {
    'a', 'Z', '0', '7', ' ', ' ', ' ', '\n', '\t', '\r', '\'', 's', 't',
    '.', ',', '!', '?', '$', '+', '<', '=', '^', '~', '|', '`', '_', '-',
    0x85, 0xA0, 0x1680, 0x2003, 0x2028, 0x202F, 0x3000, 0x200B, 0xFEFF,
    0x0301, 0x00E9, 0x00DF, 0x0416, 0x05D0, 0x0627, 0x0663, 0x0967, 0x0E01,
    0x4E2D, 0x65E5, 0xAC00, 0x2014, 0x2026, 0x20AC, 0xFF01, 0xFFFD,
    0x1F642, 0x1F468, 0x200D, 0x10FFFF, 0xE000,
};

static size_t put_utf8(uint32_t c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Up to 200 random pool code points (valid) or random bytes. */
static size_t random_text(uint64_t *rng, char *buf, int valid)
{
    size_t n = 0, len = (size_t)(em_splitmix64(rng) % 200);
    for (size_t i = 0; i < len; i++) {
        uint64_t r = em_splitmix64(rng);
        if (valid)
            n += put_utf8(pool[r % (sizeof pool / sizeof *pool)], buf + n);
        else
            buf[n++] = (char)(r >> 8);
    }
    return n;
}

/* Random bytes (broken UTF-8, NULs) must never crash or give ids out of
 * range; random valid UTF-8 must decode back to itself. (Broken UTF-8
 * need not: SPM reads a stray lead byte as the start of a character and
 * may swallow the "▁" of an escaped space into it, exactly as llama.cpp
 * does; BPE turns broken sequences into U+FFFD.) */
static void check_random(const char *name, int is_spm)
{
    char *path = vocab_path(name, "");
    if (!path)
        return;
    gguf_file *g = NULL;
    tokenizer *t = open_tok(path, &g);
    uint64_t rng = 42;
    static char buf[1024];
    int bad_range = 0, bad_round = 0;
    em_err err;
    for (int k = 0; t && k < 600; k++) {
        int valid = k % 2;
        size_t len = random_text(&rng, buf, valid);
        int32_t *ids;
        int n;
        if (tok_encode(t, buf, len, 0, &ids, &n, &err)) {
            CHECK_MSG(0, "%s: %s", name, err.msg);
            break;
        }
        for (int i = 0; i < n; i++)
            bad_range += ids[i] < 0 || ids[i] >= tok_n_vocab(t);
        if (valid) {
            size_t bl;
            char *back = decode_all_n(t, ids, n, &bl);
            size_t skip = is_spm && len ? 1 : 0;   /* the space prefix */
            bad_round += bl != len + skip || memcmp(back + skip, buf, len);
            free(back);
        }
        free(ids);
    }
    CHECK_INT(bad_range, 0);
    CHECK_INT(bad_round, 0);
    tok_free(t);
    if (g)
        gguf_close(g);
    free(path);
}

TEST(random_llama_spm) { check_random("llama-spm", 1); }
TEST(random_gpt2) { check_random("gpt-2", 0); }
TEST(random_gpt_neox) { check_random("gpt-neox", 0); }
TEST(random_falcon) { check_random("falcon", 0); }

/* ------------------------------------------------- hand-made vocabularies */

/* Writes a GGUF with the given tokenizer keys and opens it. */
static gguf_file *write_open(gguf_writer *w, const char *name)
{
    char *dir = tl_tmpdir();
    em_buf p = {0};
    em_err err;
    gguf_file *g = NULL;
    em_buf_printf(&p, "%s/%s", dir, name);
    if (gguf_writer_write(w, p.s, &err) || gguf_open(p.s, &g, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        g = NULL;
    }
    gguf_writer_free(w);
    em_buf_free(&p);
    free(dir);
    return g;
}

/* A character-level SPM vocabulary like the demo family's: no space
 * prefix, no byte tokens (unknown characters become <unk>), merges only
 * where a longer token scores higher. */
TEST(spm_char_level)
{
    static const char *toks[] = {"<unk>", "<s>", "</s>", "a", "b", "c",
                                 "\xe2\x96\x81", "ab", "abc", "\xe2\x96\x81" "a"};
    static const float scores[] = {0, 0, 0, -1, -1, -1, -1, -0.5f, -2, -0.1f};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 1, 1};
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 10);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, 10);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 10);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    gguf_file *g = write_open(w, "spm.gguf");
    tokenizer *t = NULL;
    em_err err;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == 0);
    if (t) {
        int32_t *ids;
        int n;
        /* "abc a": ab (-0.5) beats bc (absent), abc scores -2 < ... but
         * is the only merge left of "ab"+"c", so it is taken. */
        CHECK(tok_encode(t, "abc ax", 6, 1, &ids, &n, &err) == 0);
        int32_t want[] = {1, 8, 9, 0};
        CHECK_INT(n, 4);
        if (n == 4)
            CHECK(!memcmp(ids, want, sizeof want));
        free(ids);
        char buf[8];
        CHECK_INT(tok_decode(t, 9, buf, sizeof buf), 2);
        CHECK_STR(buf, " a");
        CHECK_INT(tok_decode(t, 1, buf, sizeof buf), 0);
        CHECK(tok_is_control(t, 2));
        CHECK_INT(tok_bos(t), 1);
        CHECK_INT(tok_eos(t), 2);
        CHECK_INT(tok_n_vocab(t), 10);
    }
    tok_free(t);
    gguf_close(g);
}

/* User-defined tokens are cut out longest first, each wherever earlier
 * ones left text (not greedily left to right), and with a space prefix
 * the text after one starts a new "word", as in llama.cpp. */
static void check_user_tokens(int prefix)
{
    static const char *toks[] = {"<unk>", "<s>", "</s>", "a", "b", "c", "d",
                                 "ab", "bcd", "\xe2\x96\x81"};
    static const float scores[] = {0, 0, 0, -1, -1, -1, -1, 0, 0, -1};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 4, 4, 1};
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 10);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, 10);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 10);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", prefix);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 0);
    gguf_file *g = write_open(w, "user.gguf");
    tokenizer *t = NULL;
    em_err err;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == 0);
    int32_t *ids;
    int n;
    if (t && !tok_encode(t, "abcdabc", 7, 1, &ids, &n, &err)) {
        /* bcd first: a [bcd] abc; then ab: a [bcd] [ab] c */
        int32_t want0[] = {3, 8, 7, 5}, want1[] = {9, 3, 8, 7, 9, 5};
        int nw = prefix ? 6 : 4;
        CHECK_INT(n, nw);
        if (n == nw)
            CHECK(!memcmp(ids, prefix ? want1 : want0, (size_t)n * 4));
        char *back = decode_all(t, ids, n);
        CHECK_STR(back, prefix ? " abcdab c" : "abcdabc");
        free(back);
        free(ids);
    }
    tok_free(t);
    gguf_close(g);
}

TEST(user_tokens) { check_user_tokens(0); }
TEST(user_tokens_prefix) { check_user_tokens(1); }

/* The demo family's vocabulary (tools/family/vocab.py): <unk> <s> </s>,
 * 256 byte tokens, then one piece per printable ASCII character with the
 * space as "▁"; no space prefix. Every byte of valid UTF-8 is then
 * exactly one token: printable ASCII its piece, anything else its <0xXX>,
 * as vocab.py's encode() says. (Not so for broken UTF-8: a stray lead
 * byte takes the next bytes into one character, which then falls back
 * to <0xXX> for each, ASCII included - llama.cpp does the same.) */
TEST(demo_family_vocab)
{
    enum { BYTE0 = 3, CHAR0 = 259, NV = 259 + 95 };
    static char names[NV][8];
    const char *toks[NV];
    float scores[NV];
    int32_t types[NV];
    for (int i = 0; i < NV; i++) {
        if (i < 3)
            strcpy(names[i], i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < CHAR0)
            snprintf(names[i], sizeof names[i], "<0x%02X>", i - BYTE0);
        else if (i == CHAR0)
            strcpy(names[i], "\xe2\x96\x81");
        else
            names[i][0] = (char)(0x20 + i - CHAR0), names[i][1] = 0;
        toks[i] = names[i];
        scores[i] = i < CHAR0 ? 0.0f : -(float)(i + 1);
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < CHAR0 ? 6 : 1;
    }
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, NV);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, NV);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, NV);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", 0);
    gguf_file *g = write_open(w, "demo.gguf");
    tokenizer *t = NULL;
    em_err err;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == 0);
    uint64_t rng = 3;
    static char buf[1024];
    int bad = 0;
    for (int k = 0; t && k < 300; k++) {
        size_t len = random_text(&rng, buf, 1);
        int32_t *ids;
        int n;
        if (tok_encode(t, buf, len, 1, &ids, &n, &err)) {
            CHECK_MSG(0, "%s", err.msg);
            break;
        }
        int ok = n == (int)len + 1 && ids[0] == 1;
        for (size_t i = 0; ok && i < len; i++) {
            unsigned char c = (unsigned char)buf[i];
            ok = ids[i + 1] == (c >= 0x20 && c <= 0x7E ? CHAR0 + c - 0x20
                                                       : BYTE0 + c);
        }
        bad += !ok;
        free(ids);
    }
    CHECK_INT(bad, 0);
    tok_free(t);
    gguf_close(g);
}

/* The llama3 and qwen2 pre-tokenizers (no shared vectors for them):
 * llama3 keeps a word that is a token whole (ignore_merges), splits
 * digits in threes and adds BOS by default; qwen2 merges and splits
 * single digits. */
static void check_bpe_pre(const char *pre, const int32_t *want, int n_want)
{
    static const char *toks[] = {"a", "b", "c", "ab", "abc", "\xc4\xa0", "1",
                                 "2", "3", "12", "123", "<|begin_of_text|>",
                                 "4", "5"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 1, 1};
    static const char *merges[] = {"a b", "1 2"};
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 14);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, 14);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 2);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 11);
    gguf_file *g = write_open(w, "pre.gguf");
    tokenizer *t = NULL;
    em_err err;
    int32_t *ids;
    int n;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == 0);
    if (t && !tok_encode(t, "abc 12345", 9, 1, &ids, &n, &err)) {
        CHECK_INT(n, n_want);
        if (n == n_want)
            CHECK_MSG(!memcmp(ids, want, (size_t)n * 4), "%s ids differ", pre);
        free(ids);
    }
    tok_free(t);
    gguf_close(g);
}

TEST(bpe_pre_llama3)
{
    static const int32_t want[] = {11, 4, 5, 10, 12, 13};
    check_bpe_pre("llama-bpe", want, 6);
}

TEST(bpe_pre_qwen2)
{
    static const int32_t want[] = {3, 2, 5, 6, 7, 8, 12, 13};
    check_bpe_pre("qwen2", want, 8);
}

TEST(error_no_metadata)
{
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_file *g = write_open(w, "none.gguf");
    tokenizer *t = (tokenizer *)1;
    em_err err;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == -1);
    CHECK(t == NULL);
    CHECK_HAS(err.msg, "tokenizer.ggml.model");
    CHECK_HAS(err.msg, "none.gguf");
    gguf_close(g);
}

TEST(error_mismatched_lengths)
{
    static const char *toks[] = {"<unk>", "<s>", "</s>", "a"};
    static const float scores[] = {0, 0, 0};
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, 3);
    gguf_file *g = write_open(w, "short.gguf");
    tokenizer *t = NULL;
    em_err err;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == -1);
    CHECK_HAS(err.msg, "tokenizer.ggml.scores has 3 entries");
    CHECK_HAS(err.msg, "short.gguf");
    gguf_close(g);
}

TEST(error_bpe_without_merges)
{
    static const char *toks[] = {"a", "b"};
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 2);
    gguf_file *g = write_open(w, "nomerge.gguf");
    tokenizer *t = NULL;
    em_err err;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == -1);
    CHECK_HAS(err.msg, "tokenizer.ggml.merges");
    gguf_close(g);
}

TEST(error_unknown_pre)
{
    static const char *toks[] = {"a", "b", "ab"};
    static const char *merges[] = {"a b"};
    gguf_writer *w = gguf_writer_new();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "no-such-pre");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 3);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, 1);
    gguf_file *g = write_open(w, "pre.gguf");
    tokenizer *t = NULL;
    em_err err;
    if (!g)
        return;
    CHECK(tok_build(g, &t, &err) == -1);
    CHECK_HAS(err.msg, "no-such-pre");
    gguf_close(g);
}

/* SPM merges chunk by chunk; it must give exactly what one queue over
 * the whole text gives (the table of joinable pairs switched off). */
TEST(spm_chunks_exact)
{
    char *path = vocab_path("llama-spm", "");
    if (!path)
        return;
    gguf_file *g = NULL;
    tokenizer *t = open_tok(path, &g);
    uint64_t rng = 7;
    static char buf[1024];
    static const char *words[] = {"the ", "  ", "ing", "\n\n", "Hello",
        " world", "12345", "▁", "don't", "  \t", "日本語", "🙂", "<s>",
        "</s>", "<0x0A>", "a", "."};
    int differ = 0, cases = 0;
    em_err err;
    for (int k = 0; t && k < 1500; k++) {
        size_t len = 0;
        if (k % 3 == 2) {
            len = random_text(&rng, buf, k % 2);
        } else {
            int nw = (int)(em_splitmix64(&rng) % 40);
            for (int i = 0; i < nw; i++) {
                const char *w = words[em_splitmix64(&rng) %
                                      (sizeof words / sizeof *words)];
                memcpy(buf + len, w, strlen(w));
                len += strlen(w);
            }
        }
        int32_t *a, *b;
        int na, nb;
        uint64_t *saved = t->spm_pairs;
        int ra = tok_encode(t, buf, len, 1, &a, &na, &err);
        t->spm_pairs = NULL;
        int rb = tok_encode(t, buf, len, 1, &b, &nb, &err);
        t->spm_pairs = saved;
        CHECK(ra == 0 && rb == 0);
        if (ra || rb)
            break;
        cases++;
        differ += na != nb || memcmp(a, b, (size_t)na * sizeof *a);
        free(a);
        free(b);
    }
    CHECK_INT(differ, 0);
    CHECK_INT(cases, 1500);
    tok_free(t);
    if (g)
        gguf_close(g);
    free(path);
}

/* Several threads encoding at once (the BPE word cache is shared) get
 * the same ids as one thread. */
typedef struct enc_job {
    const tokenizer *t;
    uint64_t seed;
    int mismatches;
} enc_job;

static void *encode_many(void *arg)
{
    enc_job *j = arg;
    static const char *texts[] = {
        "Once upon a time, there was a little girl named Lily.",
        "H\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 na\xc3\xafve caf\xc3\xa9",
        "  def f(x):\n      return x * 2  # doubled\n", "3333 + 4444 = 7777",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e text, emoji \xf0\x9f\x99\x82",
    };
    enum { NT = sizeof texts / sizeof *texts };
    int32_t *ref[NT];
    int nref[NT];
    em_err err;
    for (int i = 0; i < NT; i++)
        if (tok_encode(j->t, texts[i], strlen(texts[i]), 1, &ref[i], &nref[i],
                       &err))
            return NULL;
    for (int k = 0; k < 400; k++) {
        int i = (int)(em_splitmix64(&j->seed) % NT);
        int32_t *ids;
        int n;
        if (tok_encode(j->t, texts[i], strlen(texts[i]), 1, &ids, &n, &err)) {
            j->mismatches++;
            continue;
        }
        j->mismatches += n != nref[i] ||
                         memcmp(ids, ref[i], (size_t)n * sizeof *ids);
        free(ids);
    }
    for (int i = 0; i < NT; i++)
        free(ref[i]);
    return NULL;
}

TEST(threads)
{
    char *path = vocab_path("gpt-2", "");
    if (!path)
        return;
    gguf_file *g = NULL;
    tokenizer *t = open_tok(path, &g);
    if (t) {
        pthread_t th[4];
        enc_job jobs[4];
        for (int i = 0; i < 4; i++) {
            jobs[i] = (enc_job){t, (uint64_t)i + 1, 0};
            pthread_create(&th[i], NULL, encode_many, &jobs[i]);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            CHECK_INT(jobs[i].mismatches, 0);
        }
    }
    tok_free(t);
    if (g)
        gguf_close(g);
    free(path);
}

/* tok_decode writes at most cap bytes and NUL-terminates when room. */
TEST(decode_cap)
{
    char *path = vocab_path("llama-spm", "");
    if (!path)
        return;
    gguf_file *g = NULL;
    tokenizer *t = open_tok(path, &g);
    if (t) {
        char buf[8] = "xxxxxxx";
        /* 15043 is "▁Hello" -> " Hello" (6 bytes) */
        CHECK_INT(tok_decode(t, 15043, buf, sizeof buf), 6);
        CHECK_STR(buf, " Hello");
        memset(buf, 'x', sizeof buf);
        CHECK_INT(tok_decode(t, 15043, buf, 3), 3);
        CHECK(!memcmp(buf, " Hexxx", 6));
        CHECK_INT(tok_decode(t, 13, buf, sizeof buf), 1);   /* <0x0A> */
        CHECK_STR(buf, "\n");
        CHECK_INT(tok_decode(t, -1, buf, sizeof buf), 0);
        CHECK_INT(tok_decode(t, 32000, buf, sizeof buf), 0);
        CHECK_INT(tok_decode(t, 0, buf, sizeof buf), 0);     /* <unk> */
        CHECK(!tok_is_control(t, 0));
        CHECK(tok_is_control(t, 1));
    }
    tok_free(t);
    if (g)
        gguf_close(g);
    free(path);
}

/* The CLI, when the test runner says where the binary is. */
TEST(cli_tokenize)
{
    const char *bin = getenv("EMERGE_BIN");
    char *path = vocab_path("llama-spm", "");
    if (!path)
        return;
    if (!bin) {
        tl_skip("EMERGE_BIN not set");
        free(path);
        return;
    }
    char *out = NULL;
    CHECK_INT(tl_sh(&out, "%s tokenize --ids --no-special %s 'Hello world'",
                    bin, path), 0);
    CHECK_STR(out, "15043 3186\n");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tokenize -e %s 'a\\nb'", bin, path), 0);
    CHECK_HAS(out, "\"<0x0A>\"  \"\\n\"");
    CHECK_HAS(out, "(control)");
    CHECK_HAS(out, "tokens");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tokenize /nonexistent.gguf x 2>&1", bin), 2);
    CHECK_HAS(out, "nonexistent.gguf");
    free(out);
    CHECK_INT(tl_sh(&out, "%s tokenize %s 2>&1", bin, path), 2);
    CHECK_HAS(out, "usage");
    free(out);
    free(path);
}

int main(void)
{
    RUN(vocab_llama_spm);
    RUN(vocab_gpt2);
    RUN(vocab_gpt_neox);
    RUN(vocab_falcon);
    RUN(logits_prompts);
    RUN(logits_prompts_unshipped);
    RUN(random_llama_spm);
    RUN(random_gpt2);
    RUN(random_gpt_neox);
    RUN(random_falcon);
    RUN(spm_chunks_exact);
    RUN(threads);
    RUN(decode_cap);
    RUN(cli_tokenize);
    RUN(spm_char_level);
    RUN(user_tokens);
    RUN(user_tokens_prefix);
    RUN(demo_family_vocab);
    RUN(bpe_pre_llama3);
    RUN(bpe_pre_qwen2);
    RUN(error_no_metadata);
    RUN(error_mismatched_lengths);
    RUN(error_bpe_without_merges);
    RUN(error_unknown_pre);
    return tl_summary();
}

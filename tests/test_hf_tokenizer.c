/*
 * test_hf_tokenizer.c - Hugging Face tokenizer.json as GGUF tokenizer keys
 * (hf_tokenizer.c): llama.cpp's vocab test files written as Hugging Face
 * files (tests/hf_tok_write.c), read back and compared case by case with
 * the vectors' ids and the GGUF tokenizer's; BOS rules; padding to the
 * embedding's rows; and the errors for broken files.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/engine/gguf.h"
#include "backends/engine/hf_tokenizer.h"
#include "backends/engine/tokenizer.h"
#include "backends/engine/tokenizer_int.h"   /* token types */
#include "base/common.h"
#include "tests/hf_tok_write.h"
#include "tests/testlib.h"

#define SEP "\n__ggml_vocab_test__\n"

/* A tokenizer built from the keys hf_tokenizer_read sets for dir. */
typedef struct hf_built {
    void *mem;
    gguf_file *g;
    tokenizer *t;
} hf_built;

static void built_free(hf_built *b)
{
    tok_free(b->t);
    if (b->g)
        gguf_close(b->g);
    free(b->mem);
    *b = (hf_built){0};
}

static int build_from_dir(const char *dir, int64_t n_vocab, hf_built *b,
                          em_err *err)
{
    gguf_writer *w = gguf_writer_new();
    size_t size;
    *b = (hf_built){0};
    int rc = hf_tokenizer_read(dir, n_vocab, w, err) ||
             gguf_writer_write_mem(w, &b->mem, &size, err) ||
             gguf_open_mem(b->mem, size, "hf", &b->g, err) ||
             tok_build(b->g, &b->t, err) ? -1 : 0;
    gguf_writer_free(w);
    if (rc)
        built_free(b);
    return rc;
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
}

static void rm_dir(char *dir)
{
    tl_sh(NULL, "rm -rf '%s'", dir);
    free(dir);
}

static int encode(const tokenizer *t, const char *s, size_t n, int special,
                  int32_t **ids, int *n_ids)
{
    em_err err;
    if (tok_encode(t, s, n, special, ids, n_ids, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return -1;
    }
    return 0;
}

/* -------------------------------------------------- the vocab test files */

static char *vocab_path(const char *name, const char *suffix)
{
    char d[160], s[160];
    snprintf(d, sizeof d, "tokenizer/ggml-vocab-%s.gguf%s", name, suffix);
    snprintf(s, sizeof s, "refs/tokenizer/ggml-vocab-%s.gguf%s", name,
             suffix);
    return tl_data_or_shared(d, s);
}

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

static int same_ids(const int32_t *a, int na, const int32_t *b, int nb)
{
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

/* Every case: the tokenizer read from the Hugging Face files (hf) gives
 * the GGUF tokenizer's ids (ref: the GGUF file under the pre-tokenizer
 * the Hugging Face file names) and the vectors' ids. The GGUF file as
 * is (orig) may name another pre-tokenizer (gpt-neox's has none, so
 * llama.cpp's "default", with which its .out were made): a case may
 * then miss the .out only where orig and ref differ too. outs NULL:
 * inputs without ids. Returns the cases compared. */
static int compare_cases(const char *name, const tokenizer *hf,
                         const tokenizer *ref, const tokenizer *orig,
                         const char *inp, const char *outs)
{
    static int32_t want[4096];
    int n_case = 0, n_ref = 0, n_out = 0;
    const char *ip = inp, *op = outs;
    for (const char *sep; (sep = strstr(ip, SEP)); ip = sep + strlen(SEP)) {
        size_t len = (size_t)(sep - ip);
        const char *nl = op ? strchr(op, '\n') : NULL;
        size_t ol = nl ? (size_t)(nl - op) : op ? strlen(op) : 0;
        int n_want = op ? parse_ids(op, ol, want, 4096) : 0, n1, n2, n3;
        int32_t *a = NULL, *b = NULL, *c = NULL;
        op = nl ? nl + 1 : op ? op + ol : NULL;
        n_case++;
        if (!encode(hf, ip, len, 0, &a, &n1) &&
            !encode(ref, ip, len, 0, &b, &n2) &&
            !encode(orig, ip, len, 0, &c, &n3)) {
            int same_ref = same_ids(a, n1, b, n2);
            int same_out = same_ids(a, n1, want, n_want);
            CHECK_MSG(same_ref, "%s case %d \"%.*s\": %d ids, the GGUF "
                      "tokenizer %d", name, n_case, (int)len, ip, n1, n2);
            CHECK_MSG(!outs || same_out || !same_ids(b, n2, c, n3),
                      "%s case %d \"%.*s\": %d ids, want %d", name, n_case,
                      (int)len, ip, n1, n_want);
            n_ref += same_ref;
            n_out += same_out;
        }
        free(a);
        free(b);
        free(c);
    }
    printf("  %s: %d/%d cases match the GGUF tokenizer%s", name, n_ref,
           n_case, ref == orig ? "" : " (under the file's pre-tokenizer)");
    if (outs)
        printf(", %d/%d the vectors", n_out, n_case);
    printf("\n");
    return n_case;
}

/* The GGUF file g with tokenizer.ggml.pre set to pre, built. */
static int with_pre(const gguf_file *g, const char *pre, hf_built *b,
                    em_err *err)
{
    gguf_writer *w = gguf_writer_new();
    size_t size;
    *b = (hf_built){0};
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (strcmp(g->kv[i].key, "tokenizer.ggml.pre"))
            gguf_writer_copy_kv(w, &g->kv[i]);
    gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    int rc = gguf_writer_write_mem(w, &b->mem, &size, err) ||
             gguf_open_mem(b->mem, size, "ref", &b->g, err) ||
             tok_build(b->g, &b->t, err) ? -1 : 0;
    gguf_writer_free(w);
    if (rc)
        built_free(b);
    return rc;
}

/* What the GGUF says and the Hugging Face copy says agree. */
static void compare_meta_but(const char *name, const tokenizer *hf,
                             const tokenizer *orig, int except)
{
    CHECK_STR(tok_model(hf), tok_model(orig));
    CHECK_INT(tok_n_vocab(hf), tok_n_vocab(orig));
    CHECK_INT(tok_bos(hf), tok_bos(orig));
    CHECK_INT(tok_eos(hf), tok_eos(orig));
    CHECK_INT(tok_adds_bos(hf), tok_adds_bos(orig));
    CHECK_INT(tok_adds_eos(hf), tok_adds_eos(orig));
    int diff = 0;
    for (int i = 0; i < tok_n_vocab(orig); i++) {
        size_t n1, n2;
        const char *a = tok_text(hf, i, &n1), *b = tok_text(orig, i, &n2);
        int pad = hf->ttype[i] == TT_UNUSED;
        if (i != except && !pad && (n1 != n2 || memcmp(a, b, n1) ||
                     hf->ttype[i] != orig->ttype[i])) {
            if (diff++ < 3)
                printf("  %s: id %d: '%.*s' type %d, the GGUF '%.*s' type "
                       "%d\n", name, i, (int)n1, a, hf->ttype[i], (int)n2,
                       b, orig->ttype[i]);
        }
    }
    CHECK_MSG(!diff, "%s: %d tokens differ in text or type", name, diff);
}

static void compare_meta(const char *name, const tokenizer *hf,
                         const tokenizer *orig)
{
    compare_meta_but(name, hf, orig, -1);
}

/* Trailing "[PADn]" tokens of the GGUF (Pythia's) come back as padding. */
static void check_padding(const tokenizer *hf, const tokenizer *orig)
{
    int n_pad = 0;
    for (int i = 0; i < tok_n_vocab(orig); i++) {
        size_t n;
        const char *s = tok_text(orig, i, &n);
        char want[32];
        snprintf(want, sizeof want, "[PAD%d]", i);
        if (n != strlen(want) || memcmp(s, want, n))
            continue;
        n_pad++;
        s = tok_text(hf, i, &n);
        CHECK(n == strlen(want) && !memcmp(s, want, n));
        CHECK_INT(hf->ttype[i], TT_UNUSED);
    }
    if (n_pad)
        printf("  %d [PADn] tokens padded back to %d rows\n", n_pad,
               tok_n_vocab(orig));
}

/* Longer texts than the vectors: every line of the README, and the
 * whole README at once, give the same ids both ways. */
static void compare_readme(const char *name, const tokenizer *hf,
                           const tokenizer *ref)
{
    char *text;
    size_t len;
    em_err err;
    if (em_read_file("README.md", &text, &len, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return;
    }
    int n_line = 0, n_same = 0, n1, n2;
    int32_t *a, *b;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (!encode(hf, p, n, 0, &a, &n1) && !encode(ref, p, n, 0, &b, &n2)) {
            n_same += same_ids(a, n1, b, n2);
            free(a);
            free(b);
        }
        n_line++;
        p += n + (nl != NULL);
    }
    CHECK_MSG(n_same == n_line, "%s: %d/%d README lines differ", name,
              n_line - n_same, n_line);
    if (!encode(hf, text, len, 0, &a, &n1) &&
        !encode(ref, text, len, 0, &b, &n2)) {
        CHECK_MSG(same_ids(a, n1, b, n2), "%s: the whole README differs",
                  name);
        printf("  %s: %d/%d README lines and the whole README (%d ids) "
               "the same\n", name, n_same, n_line, n1);
        free(a);
        free(b);
    }
    free(text);
}

/* pre: the tokenizer.ggml.pre the Hugging Face file gives (NULL: the
 * GGUF file's own). */
static void check_roundtrip(const char *name, const char *pre)
{
    char *path = vocab_path(name, ""), *inp_path = NULL, *out_path = NULL;
    char *inp = NULL, *outs = NULL, *dir = NULL;
    gguf_file *g = NULL;
    tokenizer *orig = NULL;
    hf_built hf = {0}, ref = {0};
    em_err err;
    size_t len;
    if (!path)
        return;
    inp_path = vocab_path(name, ".inp");
    out_path = vocab_path(name, ".out");
    dir = tl_tmpdir();
    int rc = !inp_path || !out_path ||
             em_read_file(inp_path, &inp, &len, &err) ||
             em_read_file(out_path, &outs, &len, &err) ||
             gguf_open(path, &g, &err) || tok_build(g, &orig, &err) ||
             (pre && with_pre(g, pre, &ref, &err)) ||
             hf_tok_write(g, dir, &err) ||
             build_from_dir(dir, tok_n_vocab(orig), &hf, &err);
    CHECK_MSG(!rc, "%s: %s", name, err.msg);
    if (!rc) {
        compare_meta(name, hf.t, orig);
        check_padding(hf.t, orig);
        if (pre)
            CHECK_STR(tok_pre(hf.t), pre);
        CHECK(compare_cases(name, hf.t, pre ? ref.t : orig, orig, inp,
                            outs) >= 40);
        compare_readme(name, hf.t, pre ? ref.t : orig);
    }
    built_free(&hf);
    built_free(&ref);
    tok_free(orig);
    if (g)
        gguf_close(g);
    free(inp);
    free(outs);
    free(inp_path);
    free(out_path);
    free(path);
    rm_dir(dir);
}

TEST(roundtrip_gpt2) { check_roundtrip("gpt-2", NULL); }
/* Pythia's tokenizer.json has GPT-2's plain ByteLevel pre-tokenizer; the
 * llama.cpp file has no tokenizer.ggml.pre ("default": digits in threes,
 * punctuation apart), and its .out were made with that. */
TEST(roundtrip_gpt_neox) { check_roundtrip("gpt-neox", "gpt-2"); }
TEST(roundtrip_llama_spm) { check_roundtrip("llama-spm", NULL); }
TEST(roundtrip_falcon) { check_roundtrip("falcon", NULL); }

/* The other pre-tokenizers Hugging Face files name (Llama-3's and
 * Qwen2's Split regexes with [a, b] merges, StarCoder's digits), on
 * GPT-2's vocabulary: the GGUF file with that tokenizer.ggml.pre and its
 * Hugging Face copy give the same ids for every vector input and README
 * line (no vectors exist for them here). */
static void check_pre(const char *pre)
{
    char *path = vocab_path("gpt-2", ""), *inp_path = NULL, *inp = NULL;
    char *dir = tl_tmpdir();
    gguf_file *g = NULL;
    hf_built ref = {0}, hf = {0};
    em_err err;
    size_t len;
    inp_path = path ? vocab_path("gpt-2", ".inp") : NULL;
    int rc = !inp_path || em_read_file(inp_path, &inp, &len, &err) ||
             gguf_open(path, &g, &err) || with_pre(g, pre, &ref, &err) ||
             hf_tok_write(ref.g, dir, &err) ||
             build_from_dir(dir, tok_n_vocab(ref.t), &hf, &err);
    CHECK_MSG(!rc || !path, "%s: %s", pre, err.msg);
    if (!rc) {
        CHECK_STR(tok_pre(hf.t), !strcmp(pre, "llama3") ? "llama-bpe" : pre);
        compare_meta(pre, hf.t, ref.t);
        CHECK(compare_cases(pre, hf.t, ref.t, ref.t, inp, NULL) >= 40);
        compare_readme(pre, hf.t, ref.t);
    }
    built_free(&hf);
    built_free(&ref);
    if (g)
        gguf_close(g);
    free(inp);
    free(inp_path);
    free(path);
    rm_dir(dir);
}

TEST(pre_llama3) { check_pre("llama3"); }
TEST(pre_qwen2) { check_pre("qwen2"); }
TEST(pre_starcoder) { check_pre("starcoder"); }

/* ------------------------------------------------- hand-made tokenizers */

/* A byte-level vocabulary: a b ab <s> Ġ c, merge "a b". */
#define BL_VOCAB "{\"a\":0,\"b\":1,\"ab\":2,\"<s>\":3,\"\\u0120\":4,\"c\":5}"
#define BL_ADDED "[{\"id\":3,\"content\":\"<s>\",\"special\":true}]"
#define BL_PRE "{\"type\":\"ByteLevel\",\"add_prefix_space\":false," \
               "\"trim_offsets\":true,\"use_regex\":true}"
#define LLAMA3_RE "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}" \
    "\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+" \
    "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"
#define LLAMA3_PRE "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":" \
    "\"Split\",\"pattern\":{\"Regex\":\"" LLAMA3_RE "\"},\"behavior\":" \
    "\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\"," \
    "\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]}"
#define BOS_TEMPLATE "{\"type\":\"Sequence\",\"processors\":[{\"type\":" \
    "\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":false," \
    "\"use_regex\":true},{\"type\":\"TemplateProcessing\",\"single\":[" \
    "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":" \
    "{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"<s>\":{\"id\":" \
    "\"<s>\",\"ids\":[3],\"tokens\":[\"<s>\"]}}}]}"

/* A SentencePiece-style vocabulary (Llama-2's shape). */
#define SPM_VOCAB "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"\\u2581\":3," \
    "\"a\":4,\"b\":5,\"\\u2581a\":6,\"ab\":7,\"\\u2581ab\":8,\"<0x63>\":9}"
#define SPM_ADDED "[{\"id\":0,\"content\":\"<unk>\",\"special\":true}," \
    "{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2," \
    "\"content\":\"</s>\",\"special\":true}]"
#define SPM_NORM "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":" \
    "\"Prepend\",\"prepend\":\"\\u2581\"},{\"type\":\"Replace\"," \
    "\"pattern\":{\"String\":\" \"},\"content\":\"\\u2581\"}]}"
#define SPM_MODEL "{\"type\":\"BPE\",\"unk_token\":\"<unk>\"," \
    "\"byte_fallback\":true,\"fuse_unk\":true,\"vocab\":" SPM_VOCAB \
    ",\"merges\":[\"\\u2581 a\",\"a b\",\"\\u2581a b\"]}"

/* A tokenizer.json from its parts (JSON texts). */
static char *doc(const char *added, const char *norm, const char *pre,
                 const char *post, const char *model)
{
    em_buf b = {0};
    em_buf_printf(&b, "{\"version\":\"1.0\",\"added_tokens\":%s,"
                  "\"normalizer\":%s,\"pre_tokenizer\":%s,"
                  "\"post_processor\":%s,\"decoder\":null,\"model\":%s}",
                  added, norm, pre, post, model);
    return em_buf_take(&b);
}

static char *bl_doc(const char *pre, const char *post, const char *merges)
{
    char model[512];
    snprintf(model, sizeof model, "{\"type\":\"BPE\",\"vocab\":" BL_VOCAB
             ",\"merges\":%s}", merges);
    return doc(BL_ADDED, "null", pre, post, model);
}

/* dir with tokenizer.json (and tokenizer_config.json unless NULL). */
static char *make_dir(char *json, const char *config)
{
    char *dir = tl_tmpdir();
    put_file(dir, "tokenizer.json", json);
    if (config)
        put_file(dir, "tokenizer_config.json", config);
    free(json);
    return dir;
}

/* The ids of text with add_special on, as "1 2 3". */
static char *ids_of(const char *json_owned, const char *config,
                    const char *text)
{
    char *dir = make_dir((char *)json_owned, config), *s = NULL;
    hf_built b;
    em_err err;
    if (build_from_dir(dir, 0, &b, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        rm_dir(dir);
        return em_strdup("(error)");
    }
    int32_t *ids;
    int n;
    if (!encode(b.t, text, strlen(text), 1, &ids, &n)) {
        em_buf out = {0};
        for (int i = 0; i < n; i++)
            em_buf_printf(&out, "%s%d", i ? " " : "", ids[i]);
        s = out.s ? em_buf_take(&out) : em_strdup("");
        free(ids);
    }
    built_free(&b);
    rm_dir(dir);
    return s ? s : em_strdup("(error)");
}

static void check_ids(char *got, const char *want)
{
    CHECK_STR(got, want);
    free(got);
}

TEST(bos_rules)
{
    /* byte-level, no post-processor template, no config: no BOS */
    check_ids(ids_of(bl_doc(BL_PRE, "null", "[\"a b\"]"), NULL, "ab"), "2");
    check_ids(ids_of(bl_doc(BL_PRE, "null", "[\"a b\"]"),
                     "{\"add_bos_token\":true,\"bos_token\":\"<s>\"}", "ab"),
              "3 2");
    /* Llama-3: Split + ByteLevel, [a, b] merges, BOS from the template */
    check_ids(ids_of(bl_doc(LLAMA3_PRE, BOS_TEMPLATE, "[[\"a\",\"b\"]]"),
                     NULL, "ab"), "3 2");
    check_ids(ids_of(bl_doc(LLAMA3_PRE, BOS_TEMPLATE, "[[\"a\",\"b\"]]"),
                     "{\"add_bos_token\":false}", "ab"), "2");
    /* SentencePiece-style: BOS by default, merges by rank, byte fallback */
    check_ids(ids_of(doc(SPM_ADDED, SPM_NORM, "null", "null", SPM_MODEL),
                     NULL, "ab c"), "1 8 3 9");
    check_ids(ids_of(doc(SPM_ADDED, SPM_NORM, "null", "null", SPM_MODEL),
                     "{\"add_bos_token\":false,\"add_eos_token\":true,"
                     "\"eos_token\":{\"content\":\"</s>\"}}", "ab"), "8 2");
}

/* GPT-2's tokenizer files name no BOS/EOS; config.json's ids count,
 * after special_tokens_map.json's. */
TEST(config_json_ids)
{
    char *dir = make_dir(bl_doc(BL_PRE, "null", "[\"a b\"]"), NULL);
    hf_built b;
    em_err err;
    put_file(dir, "config.json", "{\"bos_token_id\":3,"
             "\"eos_token_id\":[3,5]}");
    if (!build_from_dir(dir, 0, &b, &err)) {
        CHECK_INT(tok_bos(b.t), 3);
        CHECK_INT(tok_eos(b.t), 3);
        built_free(&b);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    /* special_tokens_map.json comes before config.json */
    put_file(dir, "special_tokens_map.json",
             "{\"bos_token\":{\"content\":\"c\",\"lstrip\":false}}");
    if (!build_from_dir(dir, 0, &b, &err)) {
        CHECK_INT(tok_bos(b.t), 5);
        built_free(&b);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    put_file(dir, "special_tokens_map.json", "{}");
    put_file(dir, "config.json", "{\"bos_token_id\":99}");
    gguf_writer *w = gguf_writer_new();
    CHECK(hf_tokenizer_read(dir, 0, w, &err) == -1);
    CHECK_HAS(err.msg, "config.json: key 'bos_token_id'");
    gguf_writer_free(w);
    rm_dir(dir);
}

TEST(pre_and_types)
{
    char *dir = make_dir(bl_doc(LLAMA3_PRE, BOS_TEMPLATE, "[[\"a\",\"b\"]]"),
                         NULL);
    hf_built b;
    em_err err;
    if (!build_from_dir(dir, 0, &b, &err)) {
        CHECK_STR(tok_pre(b.t), "llama-bpe");
        CHECK_INT(tok_bos(b.t), 3);
        CHECK_INT(b.t->ttype[3], TT_CONTROL);
        CHECK_INT(b.t->ttype[2], TT_NORMAL);
        built_free(&b);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    rm_dir(dir);
    dir = make_dir(doc(SPM_ADDED, SPM_NORM, "null", "null", SPM_MODEL), NULL);
    if (!build_from_dir(dir, 0, &b, &err)) {
        CHECK_STR(tok_model(b.t), "llama");
        CHECK_INT(b.t->ttype[0], TT_UNKNOWN);
        CHECK_INT(b.t->ttype[1], TT_CONTROL);
        CHECK_INT(b.t->ttype[9], TT_BYTE);
        CHECK_INT(b.t->ttype[8], TT_NORMAL);
        CHECK(b.t->score[6] > b.t->score[7] && b.t->score[7] > b.t->score[8]);
        CHECK(b.t->score[4] < b.t->score[8]);
        built_free(&b);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    rm_dir(dir);
}

TEST(padding)
{
    char *dir = make_dir(bl_doc(BL_PRE, "null", "[\"a b\"]"), NULL);
    hf_built b;
    em_err err;
    if (!build_from_dir(dir, 9, &b, &err)) {
        size_t n;
        const char *s = tok_text(b.t, 8, &n);
        CHECK_INT(tok_n_vocab(b.t), 9);
        CHECK(n == 6 && !memcmp(s, "[PAD8]", 6));
        for (int i = 6; i < 9; i++)
            CHECK_INT(b.t->ttype[i], TT_UNUSED);
        CHECK_INT(b.t->ttype[5], TT_NORMAL);
        built_free(&b);
    } else {
        CHECK_MSG(0, "%s", err.msg);
    }
    gguf_writer *w = gguf_writer_new();
    CHECK(hf_tokenizer_read(dir, 5, w, &err) == -1);
    CHECK_HAS(err.msg, "tokenizer.json: key 'model.vocab': 6 tokens");
    CHECK_HAS(err.msg, "5 rows");
    gguf_writer_free(w);
    rm_dir(dir);
}

/* The error reading tokenizer.json (json) and tokenizer_config.json
 * (config, unless NULL) gives, checked to contain want. */
static void check_error(char *json, const char *config, const char *want)
{
    char *dir = json ? make_dir(json, config) : tl_tmpdir();
    gguf_writer *w = gguf_writer_new();
    em_err err;
    CHECK(hf_tokenizer_read(dir, 0, w, &err) == -1);
    CHECK_HAS(err.msg, want);
    CHECK_HAS(err.msg, dir);
    printf("  %s\n", strstr(err.msg, dir) + strlen(dir) + 1);
    gguf_writer_free(w);
    rm_dir(dir);
}

TEST(errors)
{
    check_error(NULL, NULL, "tokenizer.json: missing");
    check_error(em_strdup("{\n  \"model\": {\n    \"type\": \"BPE\",,\n}}"),
                NULL, "tokenizer.json:3: invalid JSON");
    check_error(em_strdup("{\"version\":\"1.0\"}"), NULL,
                "tokenizer.json: key 'model': missing");
    check_error(doc("[]", "null", BL_PRE, "null", "{\"type\":\"BPE\","
                    "\"merges\":[]}"), NULL,
                "tokenizer.json: key 'model.vocab': missing");
    check_error(doc("[]", "null", BL_PRE, "null", "{\"type\":\"BPE\","
                    "\"vocab\":" BL_VOCAB "}"), NULL,
                "tokenizer.json: key 'model.merges': missing");
    check_error(doc("[]", "null", "null", "null",
                    "{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}}"), NULL,
                "tokenizer.json: key 'model.type': 'WordPiece'");
    check_error(doc("[]", "null", "null", "null",
                    "{\"type\":\"Unigram\",\"vocab\":[]}"), NULL,
                "key 'model.type': 'Unigram'");
    check_error(bl_doc("{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":"
                       "\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"}},{\"type\""
                       ":\"ByteLevel\",\"use_regex\":false}]}", "null",
                       "[\"a b\"]"), NULL,
                "tokenizer.json: key 'pre_tokenizer': unknown Split regex "
                "'\\w+'");
    check_error(doc(BL_ADDED, "{\"type\":\"Lowercase\"}", BL_PRE, "null",
                    "{\"type\":\"BPE\",\"vocab\":" BL_VOCAB ",\"merges\":[]}"),
                NULL, "tokenizer.json: key 'normalizer': only NFC");
    check_error(doc(SPM_ADDED, SPM_NORM, "{\"type\":\"Digits\"}", "null",
                    SPM_MODEL), NULL,
                "tokenizer.json: key 'pre_tokenizer': a SentencePiece-style");
    check_error(doc("[]", "null", BL_PRE, "null", "{\"type\":\"BPE\","
                    "\"vocab\":{\"a\":0,\"b\":1,\"c\":3},\"merges\":[]}"),
                NULL, "key 'model.vocab': no token has id 2");
    check_error(doc("[]", "null", BL_PRE, "null", "{\"type\":\"BPE\","
                    "\"vocab\":{\"a\":0,\"b\":0},\"merges\":[]}"),
                NULL, "key 'model.vocab': id 0 is given to both");
    check_error(doc("[]", "null", BL_PRE, "null", "{\"type\":\"BPE\","
                    "\"vocab\":{\"a\":0,\"b\":1000000000},\"merges\":[]}"),
                NULL, "key 'model.vocab': no token has id 1 (ids run "
                "0..1000000000");
    check_error(bl_doc(BL_PRE, "null", "[\"a b\",\"a x\"]"), NULL,
                "key 'model.merges': merge 1 names 'x'");
    check_error(bl_doc(BL_PRE, "null", "[\"a c\"]"), NULL,
                "key 'model.merges': merge 0 names 'ac'");
    check_error(bl_doc(BL_PRE, "null", "[\"a b\"]"), "{\"bos_token\":\"<x>\"}",
                "tokenizer_config.json: key 'bos_token': '<x>' is not a "
                "token");
    check_error(bl_doc(BL_PRE, "null", "[\"a b\"]"), "{\"add_bos_token\":true}",
                "tokenizer_config.json: key 'add_bos_token': BOS is to be "
                "added but no file names a BOS token");
    check_error(bl_doc(BL_PRE, "null", "[\"a b\"]"), "{\"bos_token\":",
                "tokenizer_config.json:1: invalid JSON");
    check_error(doc(BL_ADDED, "null", "null", "null", "{\"type\":\"BPE\","
                    "\"vocab\":" BL_VOCAB ",\"merges\":[]}"), NULL,
                "key 'pre_tokenizer': neither byte-level");
}

/* A real tokenizer.json: GPT-NeoX-20B's (tests/data/tokenizer/gpt-neox-
 * 20b-tokenizer.json.gz), which Pythia's is but for id 1 ("<|unk|>" here,
 * "<|padding|>" in Pythia's files and in llama.cpp's gpt-neox vocabulary),
 * with the tokenizer_config.json Pythia ships beside it: the same
 * vocabulary, types and BOS/EOS as llama.cpp's gpt-neox vocabulary, and
 * the same ids as it under the file's pre-tokenizer on every vector case
 * and README line. */
TEST(real_neox_tokenizer_json)
{
    char *json = tl_data("tokenizer/gpt-neox-20b-tokenizer.json");
    char *path = vocab_path("gpt-neox", ""), *inp_path = vocab_path("gpt-neox", ".inp");
    CHECK_MSG(json, "tests/data/tokenizer/gpt-neox-20b-tokenizer.json.gz missing");
    if (!json || !path || !inp_path) {
        free(json);
        free(path);
        free(inp_path);
        return;
    }
    char *dir = tl_tmpdir(), link[1200], *inp = NULL;
    char *abs = realpath(json, NULL);
    snprintf(link, sizeof link, "%s/tokenizer.json", dir);
    CHECK(abs && symlink(abs, link) == 0);
    free(abs);
    put_file(dir, "tokenizer_config.json", "{\"add_prefix_space\": false, "
             "\"bos_token\": \"<|endoftext|>\", \"eos_token\": "
             "\"<|endoftext|>\", \"unk_token\": \"<|endoftext|>\", "
             "\"tokenizer_class\": \"GPTNeoXTokenizer\"}");
    gguf_file *g = NULL;
    tokenizer *orig = NULL;
    hf_built hf = {0}, ref = {0};
    em_err err;
    size_t len;
    int rc = em_read_file(inp_path, &inp, &len, &err) ||
             gguf_open(path, &g, &err) || tok_build(g, &orig, &err) ||
             with_pre(g, "gpt-2", &ref, &err) ||
             build_from_dir(dir, tok_n_vocab(orig), &hf, &err);
    CHECK_MSG(!rc, "%s", err.msg);
    if (!rc) {
        size_t n1;
        const char *t1 = tok_text(hf.t, 1, &n1);
        CHECK(n1 == 7 && !memcmp(t1, "<|unk|>", 7));
        compare_meta_but("neox-20b tokenizer.json", hf.t, orig, 1);
        CHECK_STR(tok_pre(hf.t), "gpt-2");
        CHECK_INT(hf.t->ttype[50276], TT_USER); /* "  " added */
        CHECK(compare_cases("neox-20b tokenizer.json", hf.t, ref.t, ref.t, inp,
                            NULL) >= 40);
        compare_readme("neox-20b tokenizer.json", hf.t, ref.t);
    }
    built_free(&hf);
    built_free(&ref);
    tok_free(orig);
    if (g)
        gguf_close(g);
    free(inp);
    free(inp_path);
    free(path);
    free(json);
    rm_dir(dir);
}

int main(void)
{
    RUN(roundtrip_gpt2);
    RUN(roundtrip_gpt_neox);
    RUN(roundtrip_llama_spm);
    RUN(roundtrip_falcon);
    RUN(pre_llama3);
    RUN(pre_qwen2);
    RUN(pre_starcoder);
    RUN(bos_rules);
    RUN(config_json_ids);
    RUN(pre_and_types);
    RUN(padding);
    RUN(errors);
    RUN(real_neox_tokenizer_json);
    return tl_summary();
}

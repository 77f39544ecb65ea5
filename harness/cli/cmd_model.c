/*
 * cmd_model.c - model file subcommands:
 *   emerge inspect FILE.gguf...        what a GGUF file holds
 *   emerge convert llama2c M.bin T.bin -o OUT.gguf
 *   emerge mkmodel -o OUT.gguf [shape] random-weight llama for benchmarks
 *
 * Owns: only the command lines and printing; the container is
 * backends/engine/gguf.c, the conversion backends/engine/llama2c.c, quantisation
 * backends/engine/quant.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/gguf.h"
#include "backends/engine/hf.h"
#include "backends/engine/llama2c.h"
#include "backends/engine/quant.h"
#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"
#include "base/common.h"

int cmd_inspect(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);

/* ------------------------------------------------------------- inspect */

static const char *kv_type_str(gguf_type t)
{
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32",
        "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* A string value, quoted, control bytes escaped, cut at max bytes. */
static void print_str(const char *s, uint64_t n, size_t max)
{
    putchar('"');
    for (uint64_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
    if (n > max)
        printf("...(%llu bytes)", (unsigned long long)n);
}

/* Element i of a numeric array (raw little-endian data, maybe unaligned). */
static void print_elem(gguf_type t, const unsigned char *p)
{
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32;
            int32_t i32; float f; uint64_t u64; int64_t i64; double d; } v;
    static const size_t size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    memcpy(&v, p, size[t]);
    switch (t) {
    case GGUF_UINT8: printf("%u", v.u8); break;
    case GGUF_INT8: printf("%d", v.i8); break;
    case GGUF_UINT16: printf("%u", v.u16); break;
    case GGUF_INT16: printf("%d", v.i16); break;
    case GGUF_UINT32: printf("%u", v.u32); break;
    case GGUF_INT32: printf("%d", v.i32); break;
    case GGUF_FLOAT32: printf("%g", v.f); break;
    case GGUF_BOOL: printf("%s", v.u8 ? "true" : "false"); break;
    case GGUF_UINT64: printf("%llu", (unsigned long long)v.u64); break;
    case GGUF_INT64: printf("%lld", (long long)v.i64); break;
    case GGUF_FLOAT64: printf("%g", v.d); break;
    default: break;
    }
}

static void print_kv(const gguf_kv *kv, size_t items)
{
    printf("  %-44s ", kv->key);
    if (kv->type == GGUF_ARRAY) {
        static const size_t size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        printf("[%s x %llu]", kv_type_str(kv->arr_type),
               (unsigned long long)kv->n);
        for (uint64_t i = 0; i < kv->n && i < items; i++) {
            fputs(i ? ", " : " ", stdout);
            if (kv->arr_type == GGUF_STRING)
                print_str(kv->strs[i].s, kv->strs[i].len, 40);
            else
                print_elem(kv->arr_type, (const unsigned char *)kv->data +
                           i * size[kv->arr_type]);
        }
        if (kv->n > items)
            fputs(", ...", stdout);
    } else {
        printf("%-7s ", kv_type_str(kv->type));
        if (kv->type == GGUF_STRING)
            print_str(kv->v.str.s, kv->v.str.len, 200);
        else if (kv->type == GGUF_BOOL)
            printf("%s", kv->v.b ? "true" : "false");
        else if (kv->type == GGUF_FLOAT32 || kv->type == GGUF_FLOAT64)
            printf("%g", kv->v.f64);
        else if (kv->type == GGUF_INT8 || kv->type == GGUF_INT16 ||
                 kv->type == GGUF_INT32 || kv->type == GGUF_INT64)
            printf("%lld", (long long)kv->v.i64);
        else
            printf("%llu", (unsigned long long)kv->v.u64);
    }
    putchar('\n');
}

/* dir: a checkpoint directory, whose tensors have no file offsets. */
static void print_tensors(const gguf_file *g, int dir)
{
    printf("tensors:\n  %-32s %-5s %-22s %12s %12s\n", "name", "type",
           "shape", "offset", "bytes");
    uint64_t params = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char shape[96] = "[";
        int64_t nel = 1;
        for (int d = 0; d < t->n_dims; d++) {
            size_t n = strlen(shape);
            snprintf(shape + n, sizeof shape - n, "%s%lld", d ? ", " : "",
                     (long long)t->ne[d]);
            nel *= t->ne[d];
        }
        strcat(shape, "]");
        params += (uint64_t)nel;
        char off[24] = "-";
        if (!dir)
            snprintf(off, sizeof off, "%llu", (unsigned long long)t->offset);
        printf("  %-32s %-5s %-22s %12s %12zu\n", t->name,
               ggml_type_name(t->type), shape, off, t->nbytes);
    }
    printf("total parameters: %llu (%.2f M)\n", (unsigned long long)params,
           (double)params / 1e6);
}

static int inspect_one(const char *path, size_t items)
{
    gguf_file *g;
    em_err err;
    if (hf_open_path(path, NULL, &g, &err)) {
        fprintf(stderr, "emerge inspect: %s\n", err.msg);
        return -1;
    }
    int dir = hf_is_dir(path);
    if (dir)
        printf("%s: Hugging Face checkpoint, read as GGUF: %llu keys, %llu "
               "tensors (GGUF names and layouts, as `convert hf` writes "
               "them)\n", path, (unsigned long long)g->n_kv,
               (unsigned long long)g->n_tensors);
    else
        printf("%s: GGUF v%u, %llu keys, %llu tensors, alignment %zu, data "
               "at byte %zu, %zu bytes\n", path, g->version,
               (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors,
               g->alignment, g->data_offset, g->size);
    printf("metadata:\n");
    for (uint64_t i = 0; i < g->n_kv; i++)
        print_kv(&g->kv[i], items);
    print_tensors(g, dir);
    gguf_close(g);
    return 0;
}

static const char inspect_help[] =
    "usage: emerge inspect [--items N] MODEL...\n"
    "Prints the GGUF version, every metadata key (arrays: type, length,\n"
    "first N items, default 5), every tensor and the parameter count.\n"
    "MODEL is a GGUF file or a Hugging Face checkpoint directory, shown as\n"
    "emerge reads it: GGUF keys and tensor names.\n";

enum { OPT_ITEMS = 256, OPT_TYPE, OPT_VOCAB, OPT_SEED, OPT_NUM };

static int inspect_opt(void *ctx, int key, const char *v)
{
    long n;
    (void)key;
    if (cli_long(v, &n) || n < 0) {
        fprintf(stderr, "emerge inspect: --items wants an integer >= 0, got "
                "'%s'\n", v);
        return -1;
    }
    *(size_t *)ctx = (size_t)n;
    return 0;
}

int cmd_inspect(int argc, char **argv)
{
    const cli_cmd cmd = {"inspect", inspect_help, (const struct option[]){
        {"items", required_argument, NULL, OPT_ITEMS}, {0}}, 0};
    size_t items = 5;
    int i, rc = 0, p = cli_parse(&cmd, argc, argv, inspect_opt, &items, &i);
    if (p)
        return cli_exit(p);
    if (i == argc)
        return cli_usage_error(&cmd, 1, "no file given");
    for (; i < argc; i++) {
        if (inspect_one(argv[i], items))
            rc = 2;
        if (i + 1 < argc)
            putchar('\n');
    }
    return rc;
}

/* ------------------------------------------------------------- convert */

static const char convert_help[] =
    "usage: emerge convert llama2c MODEL.bin TOKENIZER.bin -o OUT.gguf "
    "[--type T]\n"
    "       emerge convert hf DIR -o OUT.gguf [--type T]\n\n"
    "llama2c: converts a llama2.c checkpoint (legacy format) and its\n"
    "tokenizer.bin to a llama-architecture GGUF file.\n"
    "hf: writes a Hugging Face checkpoint directory (config.json,\n"
    "*.safetensors, tokenizer.json: GPT-NeoX/Pythia, Llama, Mistral, Qwen2,\n"
    "GPT-2) as the GGUF file emerge reads it as, for llama.cpp and other\n"
    "tools.\n\n"
    "--type stores the weight matrices as f32, f16, bf16, q8_0, q4_0, q4_k\n"
    "or q6_k (llama2c default f32, exact; hf default: as the checkpoint);\n"
    "norms stay F32.\n";

static const cli_cmd convert_cmd = {"convert", convert_help, (const struct option[]){
    {"output", required_argument, NULL, 'o'},
    {"type", required_argument, NULL, OPT_TYPE}, {0}}, 0};

typedef struct convert_args {
    const char *out;
    ggml_type type;
    const char *type_name; /* NULL: not given */
} convert_args;

static int convert_opt(void *ctx, int key, const char *v)
{
    convert_args *a = ctx;
    if (key == 'o')
        a->out = v;
    else if (quant_type_parse(v, &a->type)) {
        fprintf(stderr, "emerge convert: unknown --type '%s'\n", v);
        return -1;
    } else {
        a->type_name = v;
    }
    return 0;
}

/* convert hf DIR: the directory as hf.c reads it, saved. */
static int convert_hf(const convert_args *a, const char *dir)
{
    hf_opts o = {a->type_name, 0, 0};
    gguf_file *g;
    em_err err;
    if (hf_open(dir, &o, &g, &err) || gguf_save(g, a->out, &err)) {
        fprintf(stderr, "emerge convert: %s\n", err.msg);
        return 2;
    }
    char *arch = gguf_get_str(g, "general.architecture");
    printf("%s: %s, %llu tensors, from %s\n", a->out, arch ? arch : "?",
           (unsigned long long)g->n_tensors, dir);
    free(arch);
    gguf_close(g);
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    convert_args a = {NULL, GGML_F32, NULL};
    int i, p = cli_parse(&convert_cmd, argc, argv, convert_opt, &a, &i);
    if (p)
        return cli_exit(p);
    char **pos = argv + i;
    int n = argc - i;
    if (n >= 1 && !strcmp(pos[0], "hf")) {
        if (n != 2 || !a.out)
            return cli_usage_error(&convert_cmd, 1, n != 2 ? "hf wants one "
                                   "checkpoint directory" : "-o OUT.gguf is "
                                   "required");
        return convert_hf(&a, pos[1]);
    }
    if (n >= 1 && strcmp(pos[0], "llama2c"))
        return cli_usage_error(&convert_cmd, 1, "unknown source format '%s' "
                               "(known: llama2c, hf)", pos[0]);
    if (n != 3 || !a.out)
        return cli_usage_error(&convert_cmd, 1, n != 3 ? "llama2c wants "
                               "MODEL.bin and TOKENIZER.bin" : "-o OUT.gguf "
                               "is required");
    const char *out = a.out;
    ggml_type type = a.type;
    llama2c_config c;
    em_err err;
    if (llama2c_convert(pos[1], pos[2], out, type, &c, &err)) {
        fprintf(stderr, "emerge convert: %s\n", err.msg);
        return 2;
    }
    printf("%s: llama %s, dim %d, hidden %d, %d layers, %d heads (%d kv), "
           "vocab %d (%s classifier), context %d\n", out,
           ggml_type_name(type), c.dim,
           c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.vocab_size,
           c.shared_classifier ? "shared" : "separate", c.seq_len);
    return 0;
}

/* ------------------------------------------------------------- mkmodel */

typedef struct mk_opts {
    const char *out, *vocab_path, *type_name;
    long n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx, n_vocab;
    uint64_t seed;
    ggml_type type;
} mk_opts;

static const char mkmodel_help[] =
        "usage: emerge mkmodel -o OUT.gguf [options]\n"
        "\n"
        "Writes a llama-architecture GGUF with random weights (std 0.02,\n"
        "norms 1), for benchmarks and tests: its outputs are noise.\n"
        "\n"
        "options (defaults in brackets):\n"
        "  --type T        f32 f16 bf16 q8_0 q4_0 q4_k q6_k [f32]; norms stay F32\n"
        "  --n-embd N      [768]      --n-layer N   [12]\n"
        "  --n-head N      [12]       --n-head-kv N [= n-head]\n"
        "  --n-ff N        [2048]     --ctx N       [2048]\n"
        "  --vocab F.gguf  copy the tokenizer from F\n"
        "                  [$EMERGE_SHARED/refs/tokenizer/ggml-vocab-llama-spm.gguf]\n"
        "  --n-vocab N     instead, a synthetic SentencePiece vocabulary of N\n"
        "                  tokens (>= 259: <unk> <s> </s>, 256 bytes, words)\n"
        "  --seed S        [1]\n";

static int parse_long(const char *opt, const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v <= 0 || v > (1L << 30)) {
        fprintf(stderr, "emerge mkmodel: %s wants a positive integer, got "
                "'%s'\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* The numeric shape options: their val is OPT_NUM + index in mk_nums. */
static const char *const mk_nums[] = {"n-embd", "n-layer", "n-head",
    "n-head-kv", "n-ff", "ctx", "n-vocab"};

static long *mk_num(mk_opts *o, int k)
{
    long *const v[] = {&o->n_embd, &o->n_layer, &o->n_head, &o->n_head_kv,
                       &o->n_ff, &o->n_ctx, &o->n_vocab};
    return v[k];
}

static int mk_opt(void *ctx, int key, const char *v)
{
    mk_opts *o = ctx;
    char flag[32];
    if (key == 'o')
        o->out = v;
    else if (key == OPT_VOCAB)
        o->vocab_path = v;
    else if (key == OPT_SEED)
        o->seed = strtoull(v, NULL, 10);
    else if (key == OPT_TYPE && !quant_type_parse(v, &o->type))
        o->type_name = v;
    else if (key == OPT_TYPE) {
        fprintf(stderr, "emerge mkmodel: bad option --type %s\n", v);
        return -1;
    } else {
        snprintf(flag, sizeof flag, "--%s", mk_nums[key - OPT_NUM]);
        return parse_long(flag, v, mk_num(o, key - OPT_NUM));
    }
    return 0;
}

/* CLI_OK, CLI_HELP or CLI_BAD. */
static int mk_parse(int argc, char **argv, mk_opts *o)
{
    struct option opts[8 + sizeof mk_nums / sizeof mk_nums[0]] = {
        {"output", required_argument, NULL, 'o'},
        {"vocab", required_argument, NULL, OPT_VOCAB},
        {"seed", required_argument, NULL, OPT_SEED},
        {"type", required_argument, NULL, OPT_TYPE}};
    for (size_t k = 0; k < sizeof mk_nums / sizeof mk_nums[0]; k++)
        opts[4 + k] = (struct option){mk_nums[k], required_argument, NULL,
                                      OPT_NUM + (int)k};
    const cli_cmd cmd = {"mkmodel", mkmodel_help, opts, 0};
    int first, p = cli_parse(&cmd, argc, argv, mk_opt, o, &first);
    if (p)
        return p;
    if (first < argc)
        return cli_usage_error(&cmd, 0, "unexpected argument '%s'", argv[first]);
    if (!o->out)
        return cli_usage_error(&cmd, 1, "-o OUT.gguf is required");
    return CLI_OK;
}

static int mk_check_shape(const mk_opts *o, em_err *err)
{
    if (!o->n_head_kv || o->n_embd % o->n_head ||
        o->n_head % o->n_head_kv || (o->n_embd / o->n_head) % 2)
        return em_errorf(err, "n_embd %ld, n_head %ld, n_head_kv %ld: n_embd "
                         "must split into n_head even-sized heads, n_head "
                         "into n_head_kv groups", o->n_embd, o->n_head,
                         o->n_head_kv);
    int bs = ggml_block_size(o->type);
    if (o->n_embd % bs || o->n_ff % bs)
        return em_errorf(err, "--type %s needs n_embd (%ld) and n_ff (%ld) "
                         "to be multiples of %d", o->type_name, o->n_embd,
                         o->n_ff, bs);
    return 0;
}

/* A small SentencePiece-style vocabulary: ids 0-2 special, 3..258 the
 * byte tokens, then "▁w<i>" words, so tokenizers have something real. */
static void mk_synthetic_vocab(gguf_writer *w, long n)
{
    char **tok = em_calloc((size_t)n, sizeof *tok);
    float *score = em_calloc((size_t)n, sizeof *score);
    int32_t *type = em_calloc((size_t)n, sizeof *type);
    for (long i = 0; i < n; i++) {
        char buf[32];
        if (i < 3)
            snprintf(buf, sizeof buf, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 259)
            snprintf(buf, sizeof buf, "<0x%02X>", (unsigned)(i - 3));
        else
            snprintf(buf, sizeof buf, "\xe2\x96\x81w%ld", i - 259);
        tok[i] = em_strdup(buf);
        type[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        score[i] = i < 259 ? 0.0f : -(float)(i - 259);
    }
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens",
                            (const char *const *)tok, (size_t)n);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", score, (size_t)n);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", type, (size_t)n);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
    for (long i = 0; i < n; i++)
        free(tok[i]);
    free(tok);
    free(score);
    free(type);
}

/* Copies every tokenizer.* key of a vocabulary file; returns its size. */
static int mk_copy_vocab(gguf_writer *w, const char *path, long *n_vocab,
                         em_err *err)
{
    gguf_file *v;
    if (gguf_open(path, &v, err))
        return -1;
    const gguf_kv *tok = gguf_find_kv(v, "tokenizer.ggml.tokens");
    if (!tok || tok->type != GGUF_ARRAY || tok->arr_type != GGUF_STRING) {
        gguf_close(v);
        return em_errorf(err, "%s: no tokenizer.ggml.tokens string array",
                         path);
    }
    *n_vocab = (long)tok->n;
    for (uint64_t i = 0; i < v->n_kv; i++)
        if (!strncmp(v->kv[i].key, "tokenizer.", 10))
            gguf_writer_copy_kv(w, &v->kv[i]);
    gguf_close(v);
    return 0;
}

static void mk_metadata(gguf_writer *w, const mk_opts *o)
{
    char name[96];
    snprintf(name, sizeof name, "random-llama-%ldx%ld", o->n_embd, o->n_layer);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_u32(w, "llama.context_length", (uint32_t)o->n_ctx);
    gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)o->n_embd);
    gguf_writer_set_u32(w, "llama.block_count", (uint32_t)o->n_layer);
    gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)o->n_ff);
    gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)o->n_head);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv",
                        (uint32_t)o->n_head_kv);
    gguf_writer_set_u32(w, "llama.rope.dimension_count",
                        (uint32_t)(o->n_embd / o->n_head));
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
}

/* A random matrix of ne0 x ne1 (std 0.02), stored as o->type; or a norm
 * vector of ones (ne1 == 0), always F32 as llama.cpp keeps them. */
static void mk_tensor(gguf_writer *w, const mk_opts *o, const char *name,
                      int64_t ne0, int64_t ne1, uint64_t *rng)
{
    if (!ne1) {
        float *one = em_malloc((size_t)ne0 * sizeof *one);
        for (int64_t i = 0; i < ne0; i++)
            one[i] = 1.0f;
        gguf_writer_add_tensor(w, name, GGML_F32, 1, &ne0, one,
                               (size_t)ne0 * sizeof *one);
        free(one);
        return;
    }
    size_t row_bytes = ggml_type_size(o->type, ne0);
    unsigned char *data = em_malloc(row_bytes * (size_t)ne1);
    float *row = em_malloc((size_t)ne0 * sizeof *row);
    const double a = 0.02 * sqrt(3.0);   /* uniform [-a, a]: std 0.02 */
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t i = 0; i < ne0; i++)
            row[i] = (float)((2.0 * em_rand01(rng) - 1.0) * a);
        quant_quantize_row(o->type, row, data + (size_t)r * row_bytes, ne0);
    }
    int64_t ne[2] = {ne0, ne1};
    gguf_writer_add_tensor(w, name, o->type, 2, ne, data,
                           row_bytes * (size_t)ne1);
    free(row);
    free(data);
}

static void mk_tensors(gguf_writer *w, const mk_opts *o, long n_vocab)
{
    uint64_t rng = o->seed;
    int64_t E = o->n_embd, F = o->n_ff,
            KV = o->n_embd / o->n_head * o->n_head_kv;
    mk_tensor(w, o, "token_embd.weight", E, n_vocab, &rng);
    for (long l = 0; l < o->n_layer; l++) {
        static const char *names[] = {"attn_norm", "attn_q", "attn_k",
            "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down",
            "ffn_up"};
        int64_t shape[9][2] = {{E, 0}, {E, E}, {E, KV}, {E, KV}, {E, E},
                               {E, 0}, {E, F}, {F, E}, {E, F}};
        for (int k = 0; k < 9; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%ld.%s.weight", l, names[k]);
            mk_tensor(w, o, name, shape[k][0], shape[k][1], &rng);
        }
    }
    mk_tensor(w, o, "output_norm.weight", E, 0, &rng);
    mk_tensor(w, o, "output.weight", E, n_vocab, &rng);
}

static int mkmodel(mk_opts *o, em_err *err)
{
    if (!o->n_head_kv)
        o->n_head_kv = o->n_head;
    if (mk_check_shape(o, err))
        return -1;
    gguf_writer *w = gguf_writer_new();
    mk_metadata(w, o);
    long n_vocab = o->n_vocab;
    if (n_vocab && n_vocab < 259) {
        gguf_writer_free(w);
        return em_errorf(err, "--n-vocab %ld: at least 259 (3 special and "
                         "256 byte tokens)", n_vocab);
    }
    if (n_vocab) {
        mk_synthetic_vocab(w, n_vocab);
    } else {
        char *path = o->vocab_path ? em_strdup(o->vocab_path)
                   : em_shared_path("refs/tokenizer/ggml-vocab-llama-spm.gguf");
        int rc = mk_copy_vocab(w, path, &n_vocab, err);
        free(path);
        if (rc) {
            gguf_writer_free(w);
            return -1;
        }
    }
    gguf_writer_set_u32(w, "general.file_type", gguf_file_type(o->type));
    if (ggml_block_size(o->type) > 1)
        gguf_writer_set_u32(w, "general.quantization_version", 2);
    mk_tensors(w, o, n_vocab);
    int rc = gguf_writer_write(w, o->out, err);
    gguf_writer_free(w);
    return rc;
}

int cmd_mkmodel(int argc, char **argv)
{
    mk_opts o = {NULL, NULL, "f32", 768, 12, 12, 0, 2048, 2048, 0, 1,
                 GGML_F32};
    int p = mk_parse(argc, argv, &o);
    if (p)
        return cli_exit(p);
    em_err err;
    double t0 = em_now();
    if (mkmodel(&o, &err)) {
        fprintf(stderr, "emerge mkmodel: %s: %s\n", o.out, err.msg);
        return 2;
    }
    printf("%s: llama %s, n_embd %ld, %ld layers, %ld heads (%ld kv), n_ff "
           "%ld (%.1f s)\n", o.out, ggml_type_name(o.type), o.n_embd,
           o.n_layer, o.n_head, o.n_head_kv, o.n_ff, em_now() - t0);
    return 0;
}

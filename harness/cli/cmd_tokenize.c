/*
 * cmd_tokenize.c - `emerge tokenize MODEL.gguf "text"`: shows how a
 * model's own vocabulary splits a text, for task authors checking
 * prompts, and times encoding (--bench).
 *
 * Owns: only the command line; tokenizing is backends/engine/tokenizer.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/gguf.h"
#include "backends/engine/hf.h"
#include "backends/engine/tokenizer.h"
#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"
#include "base/common.h"

int cmd_tokenize(int argc, char **argv);

static const char tokenize_help[] =
        "usage: emerge tokenize [options] MODEL [TEXT]\n"
        "\n"
        "Tokenises TEXT (or --file) with the model's vocabulary, exactly as\n"
        "llama.cpp would, and prints one line per token: id, the token as\n"
        "stored in the vocabulary, and the text it stands for. MODEL is a\n"
        "GGUF file or a Hugging Face checkpoint directory (tokenizer.json).\n"
        "\n"
        "options:\n"
        "  --file F      read the text from file F ('-' for stdin)\n"
        "  -e, --escapes interpret \\n \\t \\\\ escapes in TEXT\n"
        "  --no-special  do not add BOS/EOS even if the vocabulary asks\n"
        "  --ids         print only the ids, on one line\n"
        "  --bench       time encoding: the text as given, then repeated to 4 MB\n";

enum { OPT_FILE = 256, OPT_NO_SPECIAL, OPT_IDS, OPT_BENCH };

static const cli_cmd tokenize_cmd = {"tokenize", tokenize_help, (const struct option[]){
    {"file", required_argument, NULL, OPT_FILE},
    {"escapes", no_argument, NULL, 'e'},
    {"no-special", no_argument, NULL, OPT_NO_SPECIAL},
    {"ids", no_argument, NULL, OPT_IDS},
    {"bench", no_argument, NULL, OPT_BENCH}, {0}}, 0};

/* Prints s[0..n) in double quotes with control bytes escaped; UTF-8 is
 * printed as is. */
static void print_quoted(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static char *unescape(const char *s, size_t *len)
{
    em_buf b = {0};
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) {
            em_buf_putc(&b, *s);
            continue;
        }
        s++;
        em_buf_putc(&b, *s == 'n' ? '\n' : *s == 't' ? '\t' :
                        *s == 'r' ? '\r' : *s);
    }
    *len = b.len;
    return b.s ? em_buf_take(&b) : em_strdup("");
}

static int read_stdin(char **out, size_t *len)
{
    em_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
        em_buf_put(&b, chunk, n);
    *len = b.len;
    *out = b.s ? em_buf_take(&b) : em_strdup("");
    return ferror(stdin) ? -1 : 0;
}

static void show(const tokenizer *t, const int32_t *ids, int n, int only_ids)
{
    if (only_ids) {
        for (int i = 0; i < n; i++)
            printf("%s%d", i ? " " : "", ids[i]);
        putchar('\n');
        return;
    }
    char piece[1024];
    for (int i = 0; i < n; i++) {
        size_t tl;
        const char *tx = tok_text(t, ids[i], &tl);
        int pl = tok_decode(t, ids[i], piece, sizeof piece);
        printf("%7d  ", ids[i]);
        print_quoted(tx ? tx : "", tl);
        fputs("  ", stdout);
        if (tok_is_control(t, ids[i]))
            fputs("(control)", stdout);
        else
            print_quoted(piece, (size_t)pl);
        putchar('\n');
    }
    printf("%d tokens\n", n);
}

/* Encodes text again and again for about a second; returns the seconds
 * per encode, or -1 on error. */
static double time_encode(const tokenizer *t, const char *text, size_t len,
                          int special, int *n_tokens)
{
    em_err err;
    int32_t *ids;
    int reps = 0;
    double t0 = em_now(), t1;
    do {
        if (tok_encode(t, text, len, special, &ids, n_tokens, &err)) {
            fprintf(stderr, "emerge tokenize: %s\n", err.msg);
            return -1;
        }
        free(ids);
        reps++;
        t1 = em_now();
    } while (t1 - t0 < 1.0);
    return (t1 - t0) / reps;
}

/* Throughput on the text as given (a prompt-sized call), then on the text
 * repeated to 4 MB in one call (long inputs must stay n log n). */
static int bench(const tokenizer *t, const char *text, size_t len,
                 int special)
{
    em_buf big = {0};
    int n;
    if (!len)
        len = 1, text = " ";
    while (big.len < ((size_t)4 << 20))
        em_buf_put(&big, text, len);
    const char *name[2] = {"as given", "repeated"};
    const char *s[2] = {text, big.s};
    size_t l[2] = {len, big.len};
    for (int k = 0; k < 2; k++) {
        double sec = time_encode(t, s[k], l[k], special, &n);
        if (sec < 0) {
            em_buf_free(&big);
            return 2;
        }
        printf("encode %s: %zu bytes -> %d tokens in %.3f ms: %.1f MB/s\n",
               name[k], l[k], n, sec * 1e3, l[k] / 1e6 / sec);
    }
    em_buf_free(&big);
    return 0;
}

typedef struct opts {
    const char *model, *text, *file;
    int escapes, special, only_ids, bench;
} opts;

static int tokenize_opt(void *ctx, int key, const char *v)
{
    opts *o = ctx;
    switch (key) {
    case OPT_FILE: o->file = v; break;
    case 'e': o->escapes = 1; break;
    case OPT_NO_SPECIAL: o->special = 0; break;
    case OPT_IDS: o->only_ids = 1; break;
    default: o->bench = 1; break;
    }
    return 0;
}

/* CLI_OK, CLI_HELP or CLI_BAD. */
static int parse(int argc, char **argv, opts *o)
{
    *o = (opts){.special = 1};
    int i, p = cli_parse(&tokenize_cmd, argc, argv, tokenize_opt, o, &i);
    if (p)
        return p;
    if (argc - i > 2)
        return cli_usage_error(&tokenize_cmd, 0, "unexpected argument '%s'",
                               argv[i + 2]);
    o->model = i < argc ? argv[i] : NULL;
    o->text = i + 1 < argc ? argv[i + 1] : NULL;
    if (!o->model || (!o->text == !o->file))
        return cli_usage_error(&tokenize_cmd, 1, !o->model ? "no model given"
                               : o->file ? "TEXT and --file: give one"
                               : "no text given (TEXT or --file)");
    return CLI_OK;
}

static int load_text(const opts *o, char **text, size_t *len, em_err *err)
{
    if (o->file && !strcmp(o->file, "-"))
        return read_stdin(text, len) ? em_errorf(err, "reading stdin failed")
                                     : 0;
    if (o->file)
        return em_read_file(o->file, text, len, err);
    if (o->escapes) {
        *text = unescape(o->text, len);
    } else {
        *text = em_strdup(o->text);
        *len = strlen(o->text);
    }
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return cli_exit(rc);
    em_err err;
    gguf_file *g = NULL;
    tokenizer *t = NULL;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int n = 0;
    rc = 2;
    if (load_text(&o, &text, &len, &err) || hf_open_path(o.model, NULL, &g, &err) ||
        tok_build(g, &t, &err)) {
        fprintf(stderr, "emerge tokenize: %s\n", err.msg);
        goto done;
    }
    if (o.bench) {
        rc = bench(t, text, len, o.special);
        goto done;
    }
    if (tok_encode(t, text, len, o.special, &ids, &n, &err)) {
        fprintf(stderr, "emerge tokenize: %s\n", err.msg);
        goto done;
    }
    show(t, ids, n, o.only_ids);
    rc = 0;
done:
    free(ids);
    free(text);
    tok_free(t);
    if (g)
        gguf_close(g);
    return rc;
}

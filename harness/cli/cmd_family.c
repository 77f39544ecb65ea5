/*
 * cmd_family.c - `emerge family scan`: a family file written from the
 * checkpoint directories on disk.
 *
 *   emerge family scan DIR... -o FAMILY.yaml [--tokens-per-step N]
 *                      [--name NAME]
 *
 * Owns: reading a tree of checkpoints (one DIR per model size, holding
 * stepN directories or stepN.gguf files, the way Pythia's revisions are
 * downloaded) into a family file with one `series:` per size, and a DIR
 * that is itself a model (a .gguf file, or a directory with config.json)
 * into one member. Paths in the file are relative to its directory, so
 * the tree and the file move together.
 *
 * Why params are written as values, not comments: the sweep orders the
 * models by size and the flops axis multiplies by it before any model is
 * opened; with the value in the file that needs no reading of weights,
 * and the user sees and may correct what the sweep will use. It is
 * counted from the tensor shapes of each series' last step (every step
 * of a size has the same shapes); where that cannot be read the value is
 * left out, said on stderr, and the loader or the backend counts later.
 *
 * Nothing is skipped silently: entries of a DIR that are not checkpoints
 * are counted and named on stderr. A DIR with no model is an error.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/engine/model_params.h"
#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"
#include "harness/family.h"

int cmd_family(int argc, char **argv);

static const char family_help[] =
    "usage: emerge family scan DIR... -o FAMILY.yaml [--tokens-per-step N]\n"
    "                          [--name NAME]\n"
    "\n"
    "scan  writes a family file from checkpoints on disk. Each DIR is one\n"
    "      model size: its stepN directories or stepN.gguf files become a\n"
    "      series (named after DIR, steps in numeric order); a DIR that is\n"
    "      a model itself (a .gguf file, or a directory with config.json)\n"
    "      becomes one member. Parameters are counted from the weights of\n"
    "      each series' last step (params and params_nonembed). Other\n"
    "      entries are skipped and named on stderr; a DIR without a model\n"
    "      is an error. Paths are written relative to FAMILY.yaml.\n"
    "  -o, --output FILE      the family file to write\n"
    "  --tokens-per-step N    training tokens per step (tokens = step x N,\n"
    "                         for --axis flops), e.g. 2097152 for Pythia\n"
    "  --name NAME            the family's name (default: FILE's name)\n";

static const cli_cmd family_cmd = {"family", family_help, NULL, 1};
enum { OPT_TPS = 256, OPT_NAME };
static const cli_cmd scan_cmd = {"family scan", family_help, (const struct option[]){
    {"output", required_argument, NULL, 'o'},
    {"tokens-per-step", required_argument, NULL, OPT_TPS},
    {"name", required_argument, NULL, OPT_NAME}, {0}}, 0};

typedef struct scan_args {
    const char *out, *name;
    double tokens_per_step;  /* 0: not given */
} scan_args;

static int scan_opt(void *ctx, int key, const char *v)
{
    scan_args *a = ctx;
    if (key == 'o') {
        a->out = v;
    } else if (key == OPT_NAME) {
        a->name = v;
    } else if (family_parse_number(v, &a->tokens_per_step) != 0 ||
               !(a->tokens_per_step > 0)) {
        fprintf(stderr, "emerge family scan: --tokens-per-step: '%s' is not a "
                "positive number\n", v);
        return -1;
    }
    return 0;
}

/* ---- one DIR ------------------------------------------------------------ */

/* What one DIR holds: a series of steps, or one model. */
typedef struct scan_dir {
    char *dir;          /* as given, without trailing slashes */
    char *name;         /* its basename (a model file: without .gguf) */
    int is_model;       /* 1: DIR is a model, 0: a series */
    int gguf;           /* the series' steps are stepN.gguf files */
    double *steps;      /* sorted */
    int n_steps;
    char **skipped;     /* entries that are not checkpoints, sorted */
    int n_skipped;
} scan_dir;

static void scan_dir_free(scan_dir *d)
{
    free(d->dir);
    free(d->name);
    free(d->steps);
    for (int i = 0; i < d->n_skipped; i++)
        free(d->skipped[i]);
    free(d->skipped);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A DIR that is a model itself: a .gguf file, or a checkpoint directory. */
static int is_model(const char *path)
{
    if (ends_with(path, ".gguf"))
        return is_file(path);
    em_buf b = {0};
    em_buf_printf(&b, "%s/config.json", path);
    int yes = is_file(b.s);
    em_buf_free(&b);
    return yes;
}

/* The step of an entry named stepN (directory) or stepN.gguf (file), with
 * N written as the path template will write it (no leading zeros); -1
 * otherwise. *gguf: which of the two. */
static double entry_step(const char *dir, const char *name, int *gguf)
{
    if (strncmp(name, "step", 4) || name[4] < '0' || name[4] > '9' ||
        (name[4] == '0' && name[5] >= '0' && name[5] <= '9'))
        return -1;
    const char *end = name + 4;
    double v = 0;
    for (; *end >= '0' && *end <= '9'; end++)
        v = v * 10 + (*end - '0');
    if (end - name > 4 + 15)
        return -1;
    em_buf path = {0};
    em_buf_printf(&path, "%s/%s", dir, name);
    double step = -1;
    if (!*end && is_dir(path.s)) {
        *gguf = 0;
        step = v;
    } else if (!strcmp(end, ".gguf") && is_file(path.s)) {
        *gguf = 1;
        step = v;
    }
    em_buf_free(&path);
    return step;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_skipped(scan_dir *d, const char *name)
{
    d->skipped = em_realloc(d->skipped, sizeof *d->skipped *
                            (size_t)(d->n_skipped + 1));
    d->skipped[d->n_skipped++] = em_strdup(name);
}

/* Reads the stepN entries of d->dir; both kinds at once is an error. */
static int read_steps(scan_dir *d, em_err *err)
{
    DIR *h = opendir(d->dir);
    if (!h)
        return em_errorf(err, "%s: cannot read the directory", d->dir);
    int kinds[2] = {0, 0};
    for (struct dirent *e; (e = readdir(h));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        int gguf = 0;
        double step = entry_step(d->dir, e->d_name, &gguf);
        if (step < 0) {
            add_skipped(d, e->d_name);
            continue;
        }
        kinds[gguf]++;
        d->gguf = gguf;
        d->steps = em_realloc(d->steps, sizeof *d->steps *
                              (size_t)(d->n_steps + 1));
        d->steps[d->n_steps++] = step;
    }
    closedir(h);
    if (d->n_steps > 1)
        qsort(d->steps, (size_t)d->n_steps, sizeof *d->steps, em_cmp_double);
    if (d->n_skipped > 1)
        qsort(d->skipped, (size_t)d->n_skipped, sizeof *d->skipped, cmp_str);
    if (kinds[0] && kinds[1])
        return em_errorf(err, "%s: holds both stepN directories (%d) and "
                         "stepN.gguf files (%d); a series is one or the other",
                         d->dir, kinds[0], kinds[1]);
    if (d->n_steps == 0)
        return em_errorf(err, "%s: no model here (no stepN directory or "
                         "stepN.gguf file, and it is neither a .gguf file nor "
                         "a directory with config.json)", d->dir);
    return 0;
}

static int scan_one(const char *arg, scan_dir *d, em_err *err)
{
    size_t n = strlen(arg);
    while (n > 1 && arg[n - 1] == '/')
        n--;
    d->dir = em_strndup(arg, n);
    const char *slash = strrchr(d->dir, '/');
    d->name = em_strdup(slash && slash[1] ? slash + 1 : d->dir);
    if (is_model(d->dir)) {
        d->is_model = 1;
        if (ends_with(d->name, ".gguf"))
            d->name[strlen(d->name) - 5] = '\0';
        return 0;
    }
    if (!is_dir(d->dir))
        return em_errorf(err, "%s: no such directory or model file", d->dir);
    return read_steps(d, err);
}

/* ---- paths ---------------------------------------------------------------- */

/* The directory of the output file, made absolute. */
static char *out_dir(const char *out, em_err *err)
{
    const char *slash = strrchr(out, '/');
    char *d = slash ? em_strndup(out, (size_t)(slash - out) + (slash == out))
                    : em_strdup(".");
    char *abs = realpath(d, NULL);
    if (!abs)
        em_errorf(err, "%s: the directory of the output file does not exist",
                  d);
    free(d);
    return abs;
}

/* The components of an absolute path, in place ("/a/b" -> a, b). */
static int split_path(char *p, char **parts, int cap)
{
    int n = 0;
    char *save = NULL;
    for (char *c = strtok_r(p, "/", &save); c && n < cap;
         c = strtok_r(NULL, "/", &save))
        parts[n++] = c;
    return n;
}

/* target relative to the directory base (both absolute and canonical);
 * a path deeper than MAX_PARTS stays absolute. */
static char *relative_to(const char *base, const char *target)
{
    enum { MAX_PARTS = 256 };
    char *b = em_strdup(base), *t = em_strdup(target);
    char *bp[MAX_PARTS], *tp[MAX_PARTS];
    int nb = split_path(b, bp, MAX_PARTS), nt = split_path(t, tp, MAX_PARTS);
    if (nb == MAX_PARTS || nt == MAX_PARTS) {
        free(b);
        free(t);
        return em_strdup(target);
    }
    int k = 0;
    while (k < nb && k < nt && !strcmp(bp[k], tp[k]))
        k++;
    em_buf out = {0};
    for (int i = k; i < nb; i++)
        em_buf_puts(&out, "../");
    for (int i = k; i < nt; i++)
        em_buf_printf(&out, "%s%s", i > k ? "/" : "", tp[i]);
    if (!out.len)
        em_buf_puts(&out, ".");
    else if (out.s[out.len - 1] == '/')
        out.s[--out.len] = '\0';
    free(b);
    free(t);
    return em_buf_take(&out);
}

/* d->dir relative to base. */
static char *rel_path(const char *base, const scan_dir *d, em_err *err)
{
    char *abs = realpath(d->dir, NULL);
    if (!abs) {
        em_errorf(err, "%s: cannot resolve the path", d->dir);
        return NULL;
    }
    char *rel = relative_to(base, abs);
    free(abs);
    return rel;
}

/* ---- writing ---------------------------------------------------------------- */

/* s as a double-quoted YAML scalar (spaces, quotes and all). */
static void put_quoted(em_buf *b, const char *s)
{
    em_buf_putc(b, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            em_buf_printf(b, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7F)
            em_buf_printf(b, "\\x%02X", *c);
        else
            em_buf_putc(b, (char)*c);
    }
    em_buf_putc(b, '"');
}

/* The weights the counts come from: the model, or the last step. */
static char *count_path(const scan_dir *d)
{
    em_buf b = {0};
    if (d->is_model)
        em_buf_puts(&b, d->dir);
    else
        em_buf_printf(&b, "%s/step%.0f%s", d->dir, d->steps[d->n_steps - 1],
                      d->gguf ? ".gguf" : "");
    return em_buf_take(&b);
}

/* params and params_nonembed lines, or a note saying why there are none. */
static void put_params(em_buf *b, const scan_dir *d, const char *indent)
{
    char *path = count_path(d);
    double total, non_embd;
    em_err err;
    if (model_count_params(path, &total, &non_embd, &err) == 0) {
        em_buf_printf(b, "%sparams: %.0f\n", indent, total);
        em_buf_printf(b, "%sparams_nonembed: %.0f\n", indent, non_embd);
    } else {
        fprintf(stderr, "emerge family scan: note: no parameter count for "
                "%s (%s): the backend counts them when it opens the model\n",
                d->name, err.msg);
    }
    free(path);
}

static void put_series(em_buf *b, const scan_dir *d, const char *rel,
                       const scan_args *a)
{
    em_buf path = {0};
    if (strcmp(rel, "."))
        em_buf_printf(&path, "%s/", rel);
    em_buf_printf(&path, "step{step}%s", d->gguf ? ".gguf" : "");
    em_buf_puts(b, "  - name: ");
    put_quoted(b, d->name);
    em_buf_puts(b, "\n    path: ");
    put_quoted(b, path.s);
    em_buf_puts(b, "\n    steps: [");
    for (int i = 0; i < d->n_steps; i++)
        em_buf_printf(b, "%s%.0f", i ? ", " : "", d->steps[i]);
    em_buf_puts(b, "]\n");
    if (a->tokens_per_step > 0)
        em_buf_printf(b, "    tokens_per_step: %.17g\n", a->tokens_per_step);
    put_params(b, d, "    ");
    em_buf_free(&path);
}

static void put_member(em_buf *b, const scan_dir *d, const char *rel)
{
    em_buf_puts(b, "  - name: ");
    put_quoted(b, d->name);
    em_buf_puts(b, "\n    backend: native\n    path: ");
    put_quoted(b, rel);
    em_buf_putc(b, '\n');
    put_params(b, d, "    ");
}

/* The family's name: --name, else the output file's name less .yaml. */
static char *family_name(const scan_args *a)
{
    if (a->name)
        return em_strdup(a->name);
    const char *slash = strrchr(a->out, '/');
    char *n = em_strdup(slash ? slash + 1 : a->out);
    char *dot = strrchr(n, '.');
    if (dot && dot != n && (!strcmp(dot, ".yaml") || !strcmp(dot, ".yml")))
        *dot = '\0';
    return n;
}

/* The whole file: series first, then the models that are single. */
static int build_text(const scan_dir *d, int n, const scan_args *a,
                      em_buf *b, em_err *err)
{
    char *base = out_dir(a->out, err);
    if (!base)
        return -1;
    char *name = family_name(a);
    em_buf_puts(b, "# Written by `emerge family scan`; params and "
                "params_nonembed are counted\n# from the weights (of each "
                "series' last step).\nname: ");
    put_quoted(b, name);
    em_buf_putc(b, '\n');
    free(name);
    int rc = 0;
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        int first = 1;
        for (int i = 0; rc == 0 && i < n; i++) {
            if (d[i].is_model != pass)
                continue;
            char *rel = rel_path(base, &d[i], err);
            if (!rel) {
                rc = -1;
                break;
            }
            if (first)
                em_buf_puts(b, pass ? "members:\n" : "series:\n");
            first = 0;
            if (pass)
                put_member(b, &d[i], rel);
            else
                put_series(b, &d[i], rel, a);
            free(rel);
        }
    }
    free(base);
    return rc;
}

static int write_text(const char *path, const em_buf *b, em_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return em_errorf(err, "%s: cannot write the file", path);
    size_t w = fwrite(b->s, 1, b->len, f);
    if (fclose(f) != 0 || w != b->len)
        return em_errorf(err, "%s: writing failed", path);
    return 0;
}

/* ---- the command ------------------------------------------------------------ */

static void note_skipped(const scan_dir *d)
{
    if (!d->n_skipped)
        return;
    fprintf(stderr, "emerge family scan: skipped %d entr%s in %s: ",
            d->n_skipped, d->n_skipped == 1 ? "y" : "ies", d->dir);
    for (int i = 0; i < d->n_skipped; i++)
        fprintf(stderr, "%s%s", i ? ", " : "", d->skipped[i]);
    fputc('\n', stderr);
}

/* Two DIRs of one name would give members of one name. */
static int check_names(const scan_dir *d, int n, em_err *err)
{
    for (int i = 1; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(d[i].name, d[j].name))
                return em_errorf(err, "%s and %s would both be named '%s' "
                                 "(scan them into two files, or rename one)",
                                 d[j].dir, d[i].dir, d[i].name);
    return 0;
}

/* Scans, writes, then loads the file as a sweep would. */
static int scan_all(char **dirs, int n, const scan_args *a, int *n_ckpt,
                    em_err *err)
{
    scan_dir *d = em_calloc((size_t)n, sizeof *d);
    int rc = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = scan_one(dirs[i], &d[i], err);
        note_skipped(&d[i]);
        *n_ckpt += d[i].is_model ? 1 : d[i].n_steps;
    }
    em_buf text = {0};
    if (rc == 0)
        rc = check_names(d, n, err);
    if (rc == 0)
        rc = build_text(d, n, a, &text, err);
    if (rc == 0)
        rc = write_text(a->out, &text, err);
    em_buf_free(&text);
    for (int i = 0; i < n; i++)
        scan_dir_free(&d[i]);
    free(d);
    family *f = NULL;
    if (rc == 0 && family_load(a->out, &f, err) != 0)
        rc = em_error_prefix(err, "the written file does not load");
    family_free(f);
    return rc;
}

static int family_scan(int argc, char **argv)
{
    scan_args a = {0};
    int i, p = cli_parse(&scan_cmd, argc, argv, scan_opt, &a, &i);
    if (p)
        return cli_exit(p);
    if (i == argc)
        return cli_usage_error(&scan_cmd, 1, "no DIR given");
    if (!a.out)
        return cli_usage_error(&scan_cmd, 1, "-o FAMILY.yaml is required");
    em_err err;
    int n_ckpt = 0;
    if (scan_all(argv + i, argc - i, &a, &n_ckpt, &err) != 0) {
        fprintf(stderr, "emerge family scan: %s\n", err.msg);
        return 2;
    }
    printf("wrote %s: %d director%s, %d model%s\n", a.out, argc - i,
           argc - i == 1 ? "y" : "ies", n_ckpt, n_ckpt == 1 ? "" : "s");
    return 0;
}

int cmd_family(int argc, char **argv)
{
    int i, p = cli_parse(&family_cmd, argc, argv, NULL, NULL, &i);
    if (p)
        return cli_exit(p);
    if (i == argc)
        return cli_usage_error(&family_cmd, 1, "no action given");
    if (!strcmp(argv[i], "scan"))
        return family_scan(argc - i, argv + i);
    return cli_usage_error(&family_cmd, 1, "unknown action '%s'", argv[i]);
}

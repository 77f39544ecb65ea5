/* testlib.c - see testlib.h. */
#include "tests/testlib.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"

static int n_pass, n_fail, n_skip;
static int cur_failed, cur_skipped;
static const char *cur_name = "?";
static char cur_msg[1024];

void tl_fail(const char *file, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Report every failed check; the test's line comes at the end. */
    printf("  %s:%d: %s\n", file, line, msg);
    if (!cur_failed)
        snprintf(cur_msg, sizeof cur_msg, "%s:%d: %s", file, line, msg);
    cur_failed++;
}

void tl_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cur_msg, sizeof cur_msg, fmt, ap);
    va_end(ap);
    cur_skipped = 1;
}

void tl_run(const char *name, void (*fn)(void))
{
    cur_name = name;
    cur_failed = cur_skipped = 0;
    cur_msg[0] = '\0';
    fn();
    if (cur_failed) {
        n_fail++;
        printf("FAIL %s: %s\n", name, cur_msg);
    } else if (cur_skipped) {
        n_skip++;
        printf("SKIP %s: %s\n", name, cur_msg);
    } else {
        n_pass++;
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}

int tl_summary(void)
{
    printf("# %d passed, %d failed, %d skipped\n", n_pass, n_fail, n_skip);
    return n_fail ? 1 : 0;
}

char *tl_shared(const char *rel)
{
    char *p = em_shared_path(rel);
    struct stat st;
    if (stat(p, &st) == 0)
        return p;
    if (em_is_ci())
        tl_fail(__FILE__, __LINE__, "shared file missing under CI: %s", p);
    else
        tl_skip("needs ../shared: %s missing (set EMERGE_SHARED)", p);
    free(p);
    return NULL;
}

/* One directory per process for unpacked and generated files, removed at
 * exit. */
static char *gz_dir;

static void gz_dir_remove(void)
{
    if (gz_dir) {
        tl_sh(NULL, "rm -rf '%s'", gz_dir);
        free(gz_dir);
    }
}

static const char *data_dir(void)
{
    if (!gz_dir) {
        const char *base = getenv("TMPDIR");
        char tmpl[4096];
        snprintf(tmpl, sizeof tmpl, "%s/emerge-test-data-XXXXXX",
                 base && *base ? base : "/tmp");
        if (!mkdtemp(tmpl))
            return NULL;
        gz_dir = em_strdup(tmpl);
        atexit(gz_dir_remove);
    }
    return gz_dir;
}

char *tl_data(const char *rel)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "tests/data/%s", rel);
    if (stat(p, &st) == 0)
        return em_strdup(p);
    snprintf(p, sizeof p, "tests/data/%s.gz", rel);
    if (stat(p, &st) != 0)
        return NULL;
    if (!data_dir())
        return NULL;
    const char *slash = strrchr(rel, '/');
    char out[4096];
    snprintf(out, sizeof out, "%s/%s", gz_dir, slash ? slash + 1 : rel);
    if (stat(out, &st) != 0 &&
        tl_sh(NULL, "gzip -dc '%s' > '%s'", p, out) != 0) {
        tl_fail(__FILE__, __LINE__, "cannot unpack %s", p);
        return NULL;
    }
    return em_strdup(out);
}

char *tl_data_or_shared(const char *data_rel, const char *shared_rel)
{
    char *p = tl_data(data_rel);
    return p ? p : tl_shared(shared_rel);
}

char *tl_fixture(const char *name)
{
    char d[512], s[512];
    snprintf(d, sizeof d, "parity/%s.gguf", name);
    snprintf(s, sizeof s, "fixtures/gguf/%s.gguf", name);
    return tl_data_or_shared(d, s);
}

char *tl_engine_fixture(const char *name)
{
    if (!strcmp(name, "wide-llama-q6_k"))
        return tl_mkmodel("wide-q6_k.gguf", "--type q6_k --n-embd 256 "
                          "--n-layer 2 --n-head 4 --n-head-kv 1 --n-ff 768 "
                          "--ctx 512 --n-vocab 512");
    return tl_fixture(name);
}

char *tl_mkmodel(const char *file, const char *args)
{
    const char *dir = data_dir();
    if (!dir)
        return NULL;
    char out[4096];
    struct stat st;
    snprintf(out, sizeof out, "%s/%s", dir, file);
    if (stat(out, &st) == 0)
        return em_strdup(out);
    const char *bin = getenv("EMERGE_BIN");
    char *log = NULL;
    int rc = tl_sh(&log, "%s mkmodel -o '%s' %s",
                   bin && *bin ? bin : "build/asan/emerge", out, args);
    if (rc != 0) {
        tl_fail(__FILE__, __LINE__, "emerge mkmodel %s: status %d: %s", args,
                rc, log ? log : "");
        free(log);
        return NULL;
    }
    free(log);
    return em_strdup(out);
}

char *tl_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/emerge-test-%s-XXXXXX",
             base && *base ? base : "/tmp", cur_name);
    char *d = mkdtemp(tmpl);
    if (!d) {
        tl_fail(__FILE__, __LINE__, "mkdtemp failed");
        return em_strdup("/nonexistent");
    }
    return em_strdup(d);
}

int tl_sh(char **out, const char *fmt, ...)
{
    em_buf cmd = {0};
    va_list ap;
    va_start(ap, fmt);
    char tmp[8192];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    em_buf_printf(&cmd, "%s 2>&1", tmp);
    FILE *p = popen(cmd.s, "r");
    em_buf_free(&cmd);
    if (!p)
        return -1;
    em_buf o = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        em_buf_put(&o, chunk, n);
    int st = pclose(p);
    if (out)
        *out = em_buf_take(&o);
    else
        em_buf_free(&o);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

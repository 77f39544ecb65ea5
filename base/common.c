/*
 * common.c - error messages, allocation, buffers, files, hashing.
 * See common.h for the conventions these implement.
 */
#include "base/common.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

int em_errorf(em_err *e, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int em_error_prefix(em_err *e, const char *fmt, ...)
{
    if (!e)
        return -1;
    char prefix[EM_ERR_MAX], old[EM_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t np = strlen(prefix), no = strlen(old);
    em_buf b = {0};
    em_buf_put(&b, prefix, np);
    em_buf_put(&b, ": ", 2);
    em_buf_put(&b, old, no);
    size_t n = b.len < EM_ERR_MAX - 1 ? b.len : EM_ERR_MAX - 1;
    memcpy(e->msg, b.s, n);
    e->msg[n] = '\0';
    em_buf_free(&b);
    return -1;
}

static void *oom(size_t n)
{
    fprintf(stderr, "emerge: out of memory (%zu bytes)\n", n);
    abort();
}

void *em_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *em_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *em_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *em_strdup(const char *s)
{
    return s ? em_strndup(s, strlen(s)) : NULL;
}

char *em_strndup(const char *s, size_t n)
{
    char *d = em_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static void buf_reserve(em_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->s = em_realloc(b->s, cap);
    b->cap = cap;
}

void em_buf_put(em_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void em_buf_puts(em_buf *b, const char *s) { em_buf_put(b, s, strlen(s)); }

void em_buf_putc(em_buf *b, char c) { em_buf_put(b, &c, 1); }

void em_buf_printf(em_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    buf_reserve(b, (size_t)n);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void em_buf_reset(em_buf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

char *em_buf_take(em_buf *b)
{
    char *s = b->s ? b->s : em_strdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void em_buf_free(em_buf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

int em_map_file(const char *path, void **map, size_t *size, em_err *err)
{
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return em_errorf(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return em_errorf(err, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return em_errorf(err, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            return em_errorf(err, "%s: mmap: %s", path, strerror(e));
        }
        *map = m;
        *size = (size_t)st.st_size;
    }
    close(fd); /* the mapping stays valid */
    return 0;
}

void em_unmap_file(void *map, size_t size)
{
    if (map)
        munmap(map, size);
}

int em_read_file(const char *path, char **out, size_t *len, em_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return em_errorf(err, "%s: cannot open: %s", path, strerror(errno));
    em_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        em_buf_put(&b, chunk, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        em_buf_free(&b);
        return em_errorf(err, "%s: read error", path);
    }
    if (len)
        *len = b.len;
    *out = em_buf_take(&b);
    return 0;
}

char *em_shared_path(const char *rel)
{
    const char *base = getenv("EMERGE_SHARED");
    if (!base || !*base)
        base = "../shared";
    em_buf b = {0};
    em_buf_printf(&b, "%s/%s", base, rel);
    return em_buf_take(&b);
}

int em_is_ci(void)
{
    const char *ci = getenv("CI");
    return ci && (!strcmp(ci, "true") || !strcmp(ci, "1"));
}

uint64_t em_hash64(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

uint64_t em_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double em_rand01(uint64_t *state)
{
    return (double)(em_splitmix64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* SHA-256 through libcrypto's EVP interface: its assembly runs several
 * times faster than portable C (SHA-NI where the CPU has it), which
 * matters when a model of many gigabytes is hashed at start-up. The
 * digest itself is the standard one, so cache keys and task hashes made
 * by the hand-written version this replaced are unchanged. libcrypto
 * fails here only without memory (or with a broken install, where no
 * digest can be trusted), so a failure is fatal, as em_malloc's is. */
struct em_sha256 {
    EVP_MD_CTX *ctx;
};

static void sha_fail(const char *what)
{
    fprintf(stderr, "emerge: libcrypto SHA-256 failed (%s)\n", what);
    abort();
}

em_sha256 *em_sha256_new(void)
{
    em_sha256 *h = em_malloc(sizeof *h);
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1)
        sha_fail("init");
    return h;
}

void em_sha256_update(em_sha256 *h, const void *data, size_t n)
{
    if (n && EVP_DigestUpdate(h->ctx, data, n) != 1)
        sha_fail("update");
}

void em_sha256_final(em_sha256 *h, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &len) != 1 || len != 32)
        sha_fail("final");
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    out[64] = '\0';
    EVP_MD_CTX_free(h->ctx);
    free(h);
}

void em_sha256_hex(const void *data, size_t n, char out[65])
{
    em_sha256 *h = em_sha256_new();
    em_sha256_update(h, data, n);
    em_sha256_final(h, out);
}

double em_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const char *em_trim(const char *s, size_t *len)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    *len = n;
    return s;
}

int em_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

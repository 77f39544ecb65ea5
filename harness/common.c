/*
 * common.c - error messages, allocation, buffers, files, hashing.
 * See common.h for the conventions these implement.
 */
#include "harness/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* SHA-256 (FIPS 180-4). Used for model-file checksums and task hashes. */
static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR32(w[i - 15], 7) ^ ROR32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR32(w[i - 2], 17) ^ ROR32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ROR32(e, 6) ^ ROR32(e, 11) ^ ROR32(e, 25)) +
                      ((e & f) ^ (~e & g)) + sha_k[i] + w[i];
        uint32_t t2 = (ROR32(a, 2) ^ ROR32(a, 13) ^ ROR32(a, 22)) +
                      ((a & b) ^ (a & c) ^ (b & c));
        hh = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d;
    h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void em_sha256_hex(const void *data, size_t n, char out[65])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        sha_block(h, p + i);
    unsigned char tail[128] = {0};
    size_t rem = n - i;
    memcpy(tail, p + i, rem);
    tail[rem] = 0x80;
    size_t tl = rem + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int k = 0; k < 8; k++)
        tail[tl - 1 - k] = (unsigned char)(bits >> (8 * k));
    sha_block(h, tail);
    if (tl == 128)
        sha_block(h, tail + 64);
    for (int k = 0; k < 8; k++)
        snprintf(out + 8 * k, 9, "%08x", h[k]);
}

double em_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

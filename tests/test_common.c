/* test_common.c - buffers, errors, hashing, SHA-256. */
#include <stdlib.h>

#include "base/common.h"
#include "tests/testlib.h"

TEST(test_buf)
{
    em_buf b = {0};
    em_buf_puts(&b, "abc");
    em_buf_printf(&b, "-%d-", 42);
    em_buf_putc(&b, 'x');
    CHECK_STR(b.s, "abc-42-x");
    CHECK_INT(b.len, 8);
    char *s = em_buf_take(&b);
    CHECK_STR(s, "abc-42-x");
    CHECK(b.s == NULL);
    free(s);
}

TEST(test_errors)
{
    em_err e;
    CHECK_INT(em_errorf(&e, "%s:%d: bad", "f.yaml", 3), -1);
    CHECK_STR(e.msg, "f.yaml:3: bad");
    em_error_prefix(&e, "loading");
    CHECK_STR(e.msg, "loading: f.yaml:3: bad");
}

TEST(test_sha256)
{
    char h[65];
    em_sha256_hex("", 0, h);
    CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    em_sha256_hex("abc", 3, h);
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    em_sha256_hex(m, strlen(m), h);
    CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" );
    /* 112 bytes: the padding spills into a third block. */
    const char *m2 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
                     "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    em_sha256_hex(m2, strlen(m2), h);
    CHECK_STR(h, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* FIPS 180-2's million 'a's, in one piece and streamed in pieces of
 * awkward sizes (as model files are streamed): the same digest. */
TEST(test_sha256_streamed)
{
    const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    size_t n = 1000000;
    char *a = malloc(n);
    memset(a, 'a', n);
    char h[65];
    em_sha256_hex(a, n, h);
    CHECK_STR(h, want);
    em_sha256 *s = em_sha256_new();
    size_t piece[] = {0, 1, 63, 64, 65, 4095, 100003};
    size_t off = 0;
    for (int i = 0; off < n; i = (i + 1) % 7) {
        size_t k = piece[i] < n - off ? piece[i] : n - off;
        em_sha256_update(s, a + off, k);
        off += k;
    }
    em_sha256_final(s, h);
    CHECK_STR(h, want);
    free(a);
}

TEST(test_trim)
{
    size_t n;
    const char *t = em_trim(" \t ab c\n ", &n);
    CHECK_INT((int)n, 4);
    CHECK(!strncmp(t, "ab c", 4));
    t = em_trim(" \n", &n);
    CHECK_INT((int)n, 0);
    t = em_trim("x", &n);
    CHECK(n == 1 && *t == 'x');
}

TEST(test_rand)
{
    uint64_t a = 7, b = 7;
    for (int i = 0; i < 100; i++)
        CHECK(em_splitmix64(&a) == em_splitmix64(&b));
    double r = em_rand01(&a);
    CHECK(r >= 0 && r < 1);
}

int main(void)
{
    RUN(test_buf);
    RUN(test_errors);
    RUN(test_sha256);
    RUN(test_sha256_streamed);
    RUN(test_rand);
    RUN(test_trim);
    return tl_summary();
}

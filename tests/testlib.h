/*
 * testlib.h - the tiny test framework every tests/test_*.c uses.
 *
 * A test program defines TEST(fn) functions and calls RUN(fn) for each in
 * main(), then returns tl_summary(). Each test prints one line:
 *   PASS name | FAIL name: file:line: what | SKIP name: why
 * tests/run.sh adds the lines of every program into the final
 * "N passed, N failed" line. A test passes when none of its checks failed.
 *
 * Shared reference files: tl_shared("refs/...") returns the path, or NULL
 * after marking the test skipped - or failed when CI=true, where a missing
 * shared file is an error, never a skip. The skip reads "needs ../shared:
 * PATH missing", which tests/run.sh counts and explains at the end.
 * References small enough to ship live in tests/data (tl_data; see
 * tests/data/README.md): tests prefer them and fall back to ../shared.
 */
#ifndef EMERGE_TESTLIB_H
#define EMERGE_TESTLIB_H

#include <math.h>
#include <string.h>

#define TEST(fn) static void fn(void)
#define RUN(fn) tl_run(#fn, fn)

void tl_run(const char *name, void (*fn)(void));
int tl_summary(void);
void tl_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tl_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Path under $EMERGE_SHARED (malloc'd) if the file exists; else NULL and
 * the running test is skipped (failed under CI=true). */
char *tl_shared(const char *rel);
/* A file shipped in tests/data (path relative to the repository root,
 * where the tests run): tests/data/REL, or tests/data/REL.gz unpacked into
 * a temporary directory; NULL if neither exists (no skip). */
char *tl_data(const char *rel);
/* tl_data(data_rel) if shipped, else tl_shared(shared_rel). */
char *tl_data_or_shared(const char *data_rel, const char *shared_rel);
/* A parity fixture by name ("tiny-llama-f32"): the small-vocabulary copy
 * in tests/data/parity if shipped, else ../shared/fixtures/gguf/NAME.gguf. */
char *tl_fixture(const char *name);
/* For tests of engine behaviour (not parity): tl_fixture(name), but for
 * "wide-llama-q6_k", which is not shipped, a model of the same shape and
 * type made by `emerge mkmodel` (random weights, 512-token vocabulary). */
char *tl_engine_fixture(const char *name);
/* `$EMERGE_BIN mkmodel -o DIR/FILE ARGS` once per process (a temporary
 * DIR removed at exit): a random-weight model made at test time. */
char *tl_mkmodel(const char *file, const char *args);
/* A fresh empty directory under $TMPDIR for this test (malloc'd). */
char *tl_tmpdir(void);
/* Runs a shell command, returns its exit status; output into *out if not
 * NULL (malloc'd). */
int tl_sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CHECK(c) \
    do { if (!(c)) tl_fail(__FILE__, __LINE__, "%s", #c); } while (0)
#define CHECK_MSG(c, ...) \
    do { if (!(c)) tl_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_INT(a, b) \
    do { long long a_ = (long long)(a), b_ = (long long)(b); \
         if (a_ != b_) tl_fail(__FILE__, __LINE__, "%s == %lld, expected %lld", #a, a_, b_); } while (0)
#define CHECK_NEAR(a, b, tol) \
    do { double a_ = (double)(a), b_ = (double)(b); \
         if (!(fabs(a_ - b_) <= (tol))) \
             tl_fail(__FILE__, __LINE__, "%s == %.10g, expected %.10g (tol %g)", #a, a_, b_, (double)(tol)); } while (0)
#define CHECK_STR(a, b) \
    do { const char *a_ = (a), *b_ = (b); \
         if (!a_ || !b_ || strcmp(a_, b_)) \
             tl_fail(__FILE__, __LINE__, "%s == \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } while (0)
/* s contains sub. */
#define CHECK_HAS(s, sub) \
    do { const char *s_ = (s), *u_ = (sub); \
         if (!s_ || !strstr(s_, u_)) \
             tl_fail(__FILE__, __LINE__, "\"%s\" does not contain \"%s\"", s_ ? s_ : "(null)", u_); } while (0)

#endif

/*
 * emerge_bin.h - for the tests that run the emerge CLI (test_report.c,
 * test_check.c): which binary to run, and a private copy of it.
 *
 * A header of static functions (tests are single-file programs). The
 * copy matters because other engineers rebuild build/asan/emerge while
 * a test runs; a test that has copied it keeps one binary throughout.
 */
#ifndef EMERGE_TESTS_EMERGE_BIN_H
#define EMERGE_TESTS_EMERGE_BIN_H

#include <stdlib.h>

#include "base/common.h"
#include "tests/testlib.h"

static char *private_bin;   /* a copy: a rebuild mid-test must not break us */

/* The private copy once made, else $EMERGE_BIN, else build/asan/emerge. */
static const char *bin(void)
{
    if (private_bin)
        return private_bin;
    const char *b = getenv("EMERGE_BIN");
    return b && *b ? b : "build/asan/emerge";
}

/* Copies the emerge binary into d and uses the copy from then on. */
static void use_private_bin(const char *d)
{
    em_buf p = {0};
    em_buf_printf(&p, "%s/emerge", d);
    if (tl_sh(NULL, "cp %s %s", bin(), p.s) == 0)
        private_bin = em_buf_take(&p);
    em_buf_free(&p);
}

#endif

/*
 * version.c - the version string (see version.h).
 *
 * The Makefile compiles this one file with -DEMERGE_COMMIT="..." (git
 * describe --always --dirty, or a VERSION file in a source tree without
 * git) and rebuilds it when that changes, so the rest of emerge does not
 * recompile on every commit.
 */
#include "base/version.h"

#ifndef EMERGE_COMMIT
#define EMERGE_COMMIT "unknown"     /* built without the Makefile */
#endif

const char *em_version(void)
{
    return "emerge " EMERGE_RELEASE " (commit " EMERGE_COMMIT ")";
}

const char *em_version_commit(void)
{
    return EMERGE_COMMIT;
}

/*
 * version.h - which emerge this is: the release number and the source
 * commit it was built from.
 *
 * Owns: the version string that `emerge --version` prints and every run
 * records in the store (runs.version), so results from different builds
 * can be told apart.
 */
#ifndef EMERGE_VERSION_H
#define EMERGE_VERSION_H

#define EMERGE_RELEASE "0.2"

/* "emerge 0.2 (commit 0123456789ab)", with "-dirty" after the commit when
 * the build had uncommitted changes and "unknown" when it was not built
 * from a git checkout (nor from a tree with a VERSION file). */
const char *em_version(void);

/* The commit alone, as the build saw it ("unknown" when not known). */
const char *em_version_commit(void);

#endif

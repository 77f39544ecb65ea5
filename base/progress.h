/*
 * progress.h - a one-line progress bar on stderr.
 *
 * Owns: drawing "label [#####.....] done/total  rate/s  ETA" when stderr
 * is a terminal, and nothing at all otherwise (logs and pipes stay clean).
 * Redraws at most ten times a second.
 */
#ifndef EMERGE_PROGRESS_H
#define EMERGE_PROGRESS_H

typedef struct progress progress;

/* NULL (and every call below a no-op) when stderr is not a TTY. */
progress *progress_new(const char *label, long total);
void progress_set_total(progress *p, long total);
void progress_update(progress *p, long done);
/* Clears the line and frees. */
void progress_free(progress *p);

#endif

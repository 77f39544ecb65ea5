/*
 * progress.c - the stderr progress bar (see progress.h).
 *
 * The rate is measured since the bar started, which after a resume counts
 * cached work too; it is a guide, not a benchmark.
 */
#include "base/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"

struct progress {
    char label[64];
    long total, done;
    double start, last_draw;
};

progress *progress_new(const char *label, long total)
{
    if (!isatty(STDERR_FILENO))
        return NULL;
    progress *p = em_calloc(1, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->start = em_now();
    p->last_draw = 0;
    return p;
}

void progress_set_total(progress *p, long total)
{
    if (p)
        p->total = total;
}

static void fmt_time(char *out, size_t cap, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(out, cap, "--:--");
    else if (s >= 3600)
        snprintf(out, cap, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(out, cap, "%02d:%02d", (int)s / 60, (int)s % 60);
}

static void draw(progress *p, double now)
{
    enum { WIDTH = 24 };
    long total = p->total > 0 ? p->total : 1;
    long done = p->done < total ? p->done : total;
    int fill = (int)(WIDTH * done / total);
    char bar[WIDTH + 1];
    memset(bar, '#', (size_t)fill);
    memset(bar + fill, '.', (size_t)(WIDTH - fill));
    bar[WIDTH] = '\0';
    double el = now - p->start, rate = el > 0 ? (double)p->done / el : 0;
    char eta[32];
    fmt_time(eta, sizeof eta, rate > 0 ? (double)(total - done) / rate : -1);
    fprintf(stderr, "\r%-24s [%s] %ld/%ld  %.1f/s  ETA %s\033[K", p->label, bar,
            p->done, p->total, rate, eta);
    fflush(stderr);
    p->last_draw = now;
}

void progress_update(progress *p, long done)
{
    if (!p)
        return;
    p->done = done;
    double now = em_now();
    if (now - p->last_draw >= 0.1 || done >= p->total)
        draw(p, now);
}

void progress_free(progress *p)
{
    if (!p)
        return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    free(p);
}

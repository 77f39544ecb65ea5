/*
 * csv.c - reading and writing CSV (RFC 4180), for every file emerge reads
 * (the scores CSV of `emerge scaling --scores`) or writes (`emerge
 * results --format csv`, the scaling table, figure data).
 *
 * Why strict on reading: a scores file usually comes from a spreadsheet
 * or a script; text after a closing quote or a lone carriage return means
 * the file is not what its writer thought, and reading on would shift a
 * number into the wrong column without a word.
 */
#include "base/csv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void row_clear(csv_row *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->f[i]);
    r->n = 0;
}

void csv_row_free(csv_row *r)
{
    row_clear(r);
    free(r->f);
    free(r->col);
    memset(r, 0, sizeof *r);
}

static void row_push(csv_row *r, em_buf *b, int col)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->f = em_realloc(r->f, sizeof(char *) * (size_t)r->cap);
        r->col = em_realloc(r->col, sizeof(int) * (size_t)r->cap);
    }
    r->f[r->n] = em_buf_take(b);
    r->col[r->n++] = col;
}

/* The quoted field at *pp (on its opening quote) into b; *line and
 * *line_start follow the line breaks inside. 0, or -1 when unterminated. */
static int read_quoted(const char **pp, int *line, const char **line_start,
                       em_buf *b)
{
    const char *p = *pp + 1;
    for (;; p++) {
        if (!*p)
            return -1;
        if (*p == '"' && p[1] == '"') {
            em_buf_putc(b, '"');
            p++;
        } else if (*p == '"') {
            *pp = p + 1;
            return 0;
        } else {
            if (*p == '\n') {
                (*line)++;
                *line_start = p + 1;
            }
            em_buf_putc(b, *p);
        }
    }
}

int csv_next(const char **pp, int *line, csv_row *r, const char *path,
             em_err *err)
{
    const char *p = *pp;
    while (*p == '\n' || (*p == '\r' && p[1] == '\n')) /* blank lines */
        *line += *p++ == '\n';
    row_clear(r);
    if (!*p) {
        *pp = p;
        return 0;
    }
    r->line = *line;
    const char *line_start = p;
    for (;;) {
        em_buf b = {0};
        em_buf_puts(&b, "");
        int col = (int)(p - line_start) + 1, qline = *line;
        int quoted = *p == '"';
        if (quoted && read_quoted(&p, line, &line_start, &b) != 0) {
            em_buf_free(&b);
            return em_errorf(err, "%s:%d:%d: unterminated quoted field", path,
                             qline, col);
        }
        while (!quoted && *p && *p != ',' && *p != '\n' && *p != '\r')
            em_buf_putc(&b, *p++);
        row_push(r, &b, col);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\r' && p[1] == '\n')
            p++;
        if (*p && *p != '\n')
            return em_errorf(err, "%s:%d:%d: %s", path, *line,
                             (int)(p - line_start) + 1,
                             *p == '\r' ? "carriage return without a line feed"
                                        : "text after a quoted field");
        if (*p == '\n') {
            p++;
            (*line)++;
        }
        *pp = p;
        return 1;
    }
}

void csv_field(em_buf *b, const char *s)
{
    s = s ? s : "";
    if (!strpbrk(s, ",\"\r\n")) {
        em_buf_puts(b, s);
        return;
    }
    em_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"')
            em_buf_putc(b, '"');
        em_buf_putc(b, *s);
    }
    em_buf_putc(b, '"');
}

void csv_num(em_buf *b, double v, int digits)
{
    em_buf_putc(b, ',');
    if (isinf(v))
        em_buf_puts(b, v < 0 ? "-inf" : "inf");
    else if (!isnan(v))
        em_buf_printf(b, "%.*g", digits, v);
}

/* The FILE versions format into a buffer first: one writer of the rules. */
void csv_field_file(FILE *f, const char *s)
{
    em_buf b = {0};
    csv_field(&b, s);
    fputs(b.s ? b.s : "", f);
    em_buf_free(&b);
}

void csv_num_file(FILE *f, double v, int digits)
{
    em_buf b = {0};
    csv_num(&b, v, digits);
    fputs(b.s, f);
    em_buf_free(&b);
}

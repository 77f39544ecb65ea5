/*
 * template.c - `{{name}}` substitution (see template.h for the language).
 */
#include "harness/template.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* 1-based line and column of offset off in text, for messages. */
static void where(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Parses the placeholder starting at text+off ("{{"). Sets the name span
 * and the offset just past "}}". */
static int placeholder(const char *text, size_t off, size_t *name_at,
                       size_t *name_len, size_t *end, em_err *err)
{
    size_t i = off + 2;
    int line, col;
    while (text[i] == ' ')
        i++;
    size_t s = i;
    if (isalpha((unsigned char)text[i]) || text[i] == '_')
        for (i++; isalnum((unsigned char)text[i]) || text[i] == '_' || text[i] == '-'; i++)
            ;
    size_t e = i;
    while (text[i] == ' ')
        i++;
    if (e == s || text[i] != '}' || text[i + 1] != '}') {
        where(text, off, &line, &col);
        const char *close = strstr(text + off + 2, "}}");
        if (!close)
            return em_errorf(err, "template line %d col %d: unterminated '{{'", line, col);
        return em_errorf(err, "template line %d col %d: malformed placeholder '%.*s' "
                         "(expected {{name}} with name made of letters, digits, '_' or '-')",
                         line, col, (int)(close + 2 - (text + off)), text + off);
    }
    *name_at = s;
    *name_len = e - s;
    *end = i + 2;
    return 0;
}

int tmpl_render(const char *text, tmpl_lookup fn, void *ctx, em_buf *out,
                em_err *err)
{
    size_t i = 0;
    for (;;) {
        const char *open = strstr(text + i, "{{");
        if (!open) {
            em_buf_puts(out, text + i);
            return 0;
        }
        size_t off = (size_t)(open - text), at, len, end;
        em_buf_put(out, text + i, off - i);
        if (placeholder(text, off, &at, &len, &end, err))
            return -1;
        char name[256];
        if (len >= sizeof name)
            return em_errorf(err, "template: placeholder name too long");
        memcpy(name, text + at, len);
        name[len] = '\0';
        const char *val = fn(ctx, name);
        if (!val) {
            int line, col;
            where(text, off, &line, &col);
            return em_errorf(err, "template line %d col %d: unknown field '%s'",
                             line, col, name);
        }
        em_buf_puts(out, val);
        i = end;
    }
}

int tmpl_names(const char *text, char ***names, int *n, em_err *err)
{
    *names = NULL;
    *n = 0;
    const char *open;
    size_t i = 0;
    while ((open = strstr(text + i, "{{"))) {
        size_t at, len, end;
        if (placeholder(text, (size_t)(open - text), &at, &len, &end, err)) {
            tmpl_names_free(*names, *n);
            *names = NULL;
            *n = 0;
            return -1;
        }
        *names = em_realloc(*names, (size_t)(*n + 1) * sizeof **names);
        (*names)[(*n)++] = em_strndup(text + at, len);
        i = end;
    }
    return 0;
}

void tmpl_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

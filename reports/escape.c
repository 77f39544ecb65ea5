/*
 * escape.c - escaping database text for HTML/XML, Markdown, CSV and file
 * names (see escape.h).
 *
 * Why U+FFFD for control bytes and bad UTF-8 rather than numeric entities:
 * XML 1.0 forbids most C0 characters even as &#x1; references, so the only
 * well-formed choice is to replace them; a model's raw output may hold
 * anything.
 */
#include "reports/escape.h"

#include <ctype.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s, or 0. */
static int utf8_len(const unsigned char *s)
{
    int n = s[0] < 0x80 ? 1 : (s[0] & 0xE0) == 0xC0 ? 2
          : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 2 && s[0] < 0xC2)
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0)))
        return 0;
    if (n == 4 && ((s[0] == 0xF0 && s[1] < 0x90) || s[0] > 0xF4 ||
                   (s[0] == 0xF4 && s[1] >= 0x90)))
        return 0;
    return n;
}

void report_xml_escape(em_buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p) {
        switch (*p) {
        case '&': em_buf_puts(b, "&amp;"); p++; continue;
        case '<': em_buf_puts(b, "&lt;"); p++; continue;
        case '>': em_buf_puts(b, "&gt;"); p++; continue;
        case '"': em_buf_puts(b, "&quot;"); p++; continue;
        case '\'': em_buf_puts(b, "&#39;"); p++; continue;
        default: break;
        }
        if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7F) {
            em_buf_puts(b, "\xEF\xBF\xBD");
            p++;
            continue;
        }
        int n = utf8_len(p);
        if (!n) {
            em_buf_puts(b, "\xEF\xBF\xBD");
            p++;
            continue;
        }
        em_buf_put(b, (const char *)p, (size_t)n);
        p += n;
    }
}

void report_md_escape(em_buf *b, const char *s, size_t max)
{
    const char *p = s ? s : "";
    size_t start = b->len;
    for (; *p; p++) {
        if (max && b->len - start >= max) {
            em_buf_puts(b, "...");
            return;
        }
        if (*p == '|' || *p == '`' || *p == '\\' || *p == '*' || *p == '_' ||
            *p == '[' || *p == ']') {
            em_buf_putc(b, '\\');
            em_buf_putc(b, *p);
        } else if (*p == '<') {
            em_buf_puts(b, "&lt;");
        } else if (*p == '>') {
            em_buf_puts(b, "&gt;");
        } else if (*p == '&') {
            em_buf_puts(b, "&amp;");
        } else if (*p == '\n' || *p == '\r' || *p == '\t') {
            em_buf_putc(b, ' ');
        } else if ((unsigned char)*p < 0x20) {
            em_buf_putc(b, '?');
        } else {
            em_buf_putc(b, *p);
        }
    }
}

void report_csv_field(em_buf *b, const char *s)
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

char *report_file_name(const char *s)
{
    char *o = em_strdup(s && *s ? s : "_");
    for (char *p = o; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
            *p = '_';
    if (o[0] == '.')
        o[0] = '_';
    return o;
}

size_t report_utf8_cut(const char *s, size_t max)
{
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

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
#include <stdint.h>
#include <string.h>

#include "base/utf8.h"

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
        size_t n = utf8_valid_len((const char *)p, SIZE_MAX);
        if (!n) {
            em_buf_puts(b, "\xEF\xBF\xBD");
            p++;
            continue;
        }
        em_buf_put(b, (const char *)p, n);
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

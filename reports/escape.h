/*
 * escape.h - escaping text from the database for HTML, XML, Markdown
 * tables and CSV.
 *
 * Owns: the one place that decides how untrusted text (task names, model
 * names, model outputs) is made inert in each output format. Everything a
 * report writes that came from a database goes through one of these.
 */
#ifndef EMERGE_REPORT_ESCAPE_H
#define EMERGE_REPORT_ESCAPE_H

#include <stddef.h>

#include "base/common.h"

/* & < > " ' as entities; C0 controls other than tab/newline, DEL and
 * invalid UTF-8 become U+FFFD (they are not allowed in XML 1.0, and a
 * browser would render them inconsistently). Text and attributes alike. */
void report_xml_escape(em_buf *b, const char *s);
/* Markdown table cell: | and ` and \ and <,> escaped, newlines as spaces,
 * at most max bytes (then "..."), 0 = no limit. */
void report_md_escape(em_buf *b, const char *s, size_t max);
/* CSV field, RFC 4180: quoted when it holds , " CR or LF. */
void report_csv_field(em_buf *b, const char *s);
/* Where to cut s, which is longer than max bytes, to keep at most max
 * bytes without splitting a UTF-8 sequence: max, moved back over
 * continuation bytes. */
size_t report_utf8_cut(const char *s, size_t max);
/* A name safe as a file name: [A-Za-z0-9._-], others as '_'; malloc'd. */
char *report_file_name(const char *s);

#endif

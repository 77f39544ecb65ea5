/*
 * csv.h - CSV as RFC 4180 has it, once for every reader and writer:
 * records with quoted fields ("" for a quote, line breaks inside quotes),
 * LF or CRLF line ends, and errors that name file:line:column.
 */
#ifndef EMERGE_CSV_H
#define EMERGE_CSV_H

#include <stdio.h>

#include "base/common.h"

/* One record: its fields (owned) and where each starts. */
typedef struct csv_row {
    char **f;    /* field texts, quotes removed */
    int *col;    /* 1-based column of each field's first character */
    int n, cap;
    int line;    /* line where the record starts */
} csv_row;

/* Reads the record at *pp (advancing *pp and *line) into r, replacing
 * what r held. Returns 1 for a record, 0 at the end of the text, -1 on a
 * malformed record (an unterminated quote, text after a closing quote, a
 * carriage return not followed by a line feed), with the error naming
 * path:line:column. Blank lines are skipped. */
int csv_next(const char **pp, int *line, csv_row *r, const char *path,
             em_err *err);
void csv_row_free(csv_row *r);

/* Appends s as one field: quoted when it holds , " CR or LF. NULL is "". */
void csv_field(em_buf *b, const char *s);
/* The same, written to f. */
void csv_field_file(FILE *f, const char *s);
/* Appends "," and v: nothing for NaN (a missing value), inf or -inf, else
 * %.*g with the given significant digits (17 round-trips a double). */
void csv_num(em_buf *b, double v, int digits);
void csv_num_file(FILE *f, double v, int digits);

#endif

/*
 * retrieval.h - passage retrieval for the `retrieval` prompt variant
 * (RETRO/Atlas-style evaluation: does retrieval let a small model match
 * a large one?).
 *
 * Owns: reading a passage corpus (.txt: one passage per non-blank line;
 * .jsonl: one object per line with a "text" field and optional "title"),
 * indexing it in an in-memory SQLite FTS5 table (porter-stemmed unicode61
 * tokens, BM25 ranking), and the top-k search. A task builds its index
 * once at load (harness/task_yaml.c), so every prompt of a sweep reuses it.
 *
 * Queries are free text: the words (letters and digits) are quoted and
 * OR-ed, so nothing in an input can be read as FTS5 query syntax; single
 * letters and Lucene's English stop words are left out. Ties in
 * BM25 are broken by corpus order, so prompts are byte-identical on every
 * run and machine.
 */
#ifndef EMERGE_RETRIEVAL_H
#define EMERGE_RETRIEVAL_H

#include "base/common.h"

typedef struct retr_index retr_index;

/* Indexes the corpus text of path (its contents, already read; path is
 * for messages and picks the format by suffix: .jsonl, else lines). */
int retr_build(const char *path, const char *text, size_t len,
               retr_index **out, em_err *err);
/* retr_build on the file's contents. */
int retr_open(const char *path, retr_index **out, em_err *err);
void retr_free(retr_index *ix);

int retr_count(const retr_index *ix);
/* Passage i (0-based, corpus order) and where it came from ("file:line"). */
const char *retr_passage(const retr_index *ix, int i);
const char *retr_where(const retr_index *ix, int i);

/* The (at most) k best passages for query, best first: their indices and
 * BM25 scores (higher is better) in malloc'd arrays (NULL when *n is 0).
 * A query without any word finds nothing. */
int retr_search(retr_index *ix, const char *query, int k, int **idx,
                double **score, int *n, em_err *err);

/* The k best passages joined by sep, malloc'd ("" when none). */
int retr_passages(retr_index *ix, const char *query, int k, const char *sep,
                  char **out, em_err *err);

/* What a task's `retrieval:` mapping says, and its index. */
typedef struct retr_spec {
    char *corpus;      /* path as resolved against the task file */
    int k;             /* passages per prompt, default 3 */
    char *template;    /* the prompt; {{passages}} plus record fields */
    char *query;       /* template of the search text, default {{input}} */
    char *separator;   /* between passages, default "\n" */
    retr_index *index;
} retr_spec;

void retr_spec_free(retr_spec *s);

#endif

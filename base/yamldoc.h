/*
 * yamldoc.h - a YAML document as a small tree that remembers where every
 * node came from.
 *
 * Owns: turning libyaml's event stream into scalar/sequence/mapping nodes
 * with 1-based line:column positions, rejecting duplicate mapping keys,
 * non-scalar keys, aliases and multi-document streams, and the typed
 * accessors the task loader uses to produce "file:line:col: ..." errors.
 *
 * Why a tree of our own instead of libyaml's document API: we want
 * duplicate-key detection with both positions, and one free path.
 */
#ifndef EMERGE_YAMLDOC_H
#define EMERGE_YAMLDOC_H

#include "base/common.h"

typedef enum ydoc_kind { YDOC_SCALAR, YDOC_SEQ, YDOC_MAP } ydoc_kind;

typedef struct ydoc_node {
    ydoc_kind kind;
    int line, col;            /* 1-based */
    char *str;                /* scalar text (NUL-terminated) */
    size_t len;
    int plain;                /* scalar written without quotes or block */
    struct ydoc_node **items; /* sequence items, or mapping values */
    struct ydoc_node **keys;  /* mapping keys (scalars), parallel to items */
    int n;
} ydoc_node;

/* Parses text (the contents of path, used in messages). An empty document
 * gives *out = NULL and returns 0. */
int ydoc_parse(const char *path, const char *text, size_t len,
               ydoc_node **out, em_err *err);
void ydoc_free(ydoc_node *n);

/* A canonical serialisation of n for hashing: what the document says, not
 * how it is written. Comments, indentation, flow vs block style and the
 * order of mapping keys leave it unchanged; any scalar's text (and whether
 * it was quoted: `~` and "~" differ), a sequence's order or a key does
 * change it. Appended to out. */
void ydoc_canon(const ydoc_node *n, em_buf *out);

/* The value under key in a mapping, or NULL. */
ydoc_node *ydoc_get(const ydoc_node *map, const char *key);
/* The key node of key in a mapping, or NULL (for positions). */
ydoc_node *ydoc_key(const ydoc_node *map, const char *key);

/* Name of a kind for messages: "a string", "a list", "a mapping". */
const char *ydoc_kind_name(ydoc_kind k);

/* 1 for a plain scalar spelling YAML null ("", "~", "null"). */
int ydoc_is_null(const ydoc_node *n);

/* Levenshtein distance, for "did you mean" suggestions. */
int ydoc_edit_distance(const char *a, const char *b);
/* The closest of the NULL-terminated names to s, or NULL when none is
 * close enough to be a plausible typo. */
const char *ydoc_suggest(const char *s, const char *const *names);

/* Every key of map must be in the NULL-terminated list allowed; otherwise
 * "path:line:col: unknown key 'k' in WHAT (did you mean 'x'?)". */
int ydoc_check_keys(const char *path, const ydoc_node *map,
                    const char *const *allowed, const char *what, em_err *err);

/* Typed reads of map[key]. Absent keys leave *out unchanged and return 0;
 * a present value of the wrong type is an error naming position and key. */
int ydoc_get_str(const char *path, const ydoc_node *map, const char *key,
                 char **out, em_err *err);
int ydoc_get_int(const char *path, const ydoc_node *map, const char *key,
                 int min, long long *out, em_err *err);
int ydoc_get_u64(const char *path, const ydoc_node *map, const char *key,
                 uint64_t *out, em_err *err);
int ydoc_get_num(const char *path, const ydoc_node *map, const char *key,
                 double *out, em_err *err);
/* A list of strings; a single string is accepted as a one-item list when
 * one_ok is set. */
int ydoc_get_strs(const char *path, const ydoc_node *map, const char *key,
                  int one_ok, char ***out, int *n, em_err *err);

/* Parses a plain scalar as an integer / number; 0 on success. */
int ydoc_parse_int(const char *s, long long *out);
int ydoc_parse_num(const char *s, double *out);

#endif

/*
 * common.h - the few things every emerge module shares.
 *
 * Owns: the error convention (int status + em_err message), a growable
 * string buffer, checked allocation, whole-file reading, SHA-256 and the
 * lookup of the shared reference directory ($EMERGE_SHARED, default
 * ../shared).
 *
 * Error convention (as in SQLite/Redis): functions that can fail return
 * 0 on success and -1 on failure, and write a human-readable message into
 * the caller's em_err. Messages about input name the file, line and field:
 * "tasks/x.yaml:12:3: unknown key 'templat' (did you mean 'template'?)".
 * Nothing below main() calls exit().
 */
#ifndef EMERGE_COMMON_H
#define EMERGE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EM_ERR_MAX 1024

typedef struct em_err {
    char msg[EM_ERR_MAX];
} em_err;

/* Formats a message into e (if e is not NULL) and returns -1, so that
 * error paths read `return em_errorf(err, "...", ...);`. */
int em_errorf(em_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes an existing message: "context: old message". Returns -1. */
int em_error_prefix(em_err *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Allocation that aborts on out-of-memory: emerge cannot do anything
 * sensible without memory, and checking every small allocation would
 * bury the logic. Large, input-sized allocations use plain malloc and
 * report failure through em_err instead. */
void *em_malloc(size_t n);
void *em_calloc(size_t n, size_t size);
void *em_realloc(void *p, size_t n);
char *em_strdup(const char *s);
char *em_strndup(const char *s, size_t n);

/* Growable NUL-terminated string. Zero-initialise ({0}) before use. */
typedef struct em_buf {
    char *s;
    size_t len;
    size_t cap;
} em_buf;

void em_buf_put(em_buf *b, const char *s, size_t n);
void em_buf_puts(em_buf *b, const char *s);
void em_buf_putc(em_buf *b, char c);
void em_buf_printf(em_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void em_buf_reset(em_buf *b);
/* Hands the string to the caller (who frees it) and empties b. */
char *em_buf_take(em_buf *b);
void em_buf_free(em_buf *b);

/* Reads a whole file; *out is NUL-terminated and malloc'd. */
int em_read_file(const char *path, char **out, size_t *len, em_err *err);

/* Maps a whole regular file read-only (the model readers: weights are
 * used in place). An empty file gives *map NULL and *size 0. Undo with
 * em_unmap_file. Errors name the file. */
int em_map_file(const char *path, void **map, size_t *size, em_err *err);
void em_unmap_file(void *map, size_t size);

/* Path of a file under the shared reference directory, in a malloc'd
 * string: $EMERGE_SHARED/rel, default ../shared/rel. */
char *em_shared_path(const char *rel);

/* 1 when the environment variable CI is "true" or "1". */
int em_is_ci(void);

/* FNV-1a 64-bit hash, and SplitMix64 for seeded determinism. */
uint64_t em_hash64(const void *data, size_t n, uint64_t seed);
uint64_t em_splitmix64(uint64_t *state);
/* Uniform double in [0,1) from a SplitMix64 state. */
double em_rand01(uint64_t *state);

/* s without leading and trailing white space (isspace): where it starts
 * in s, and *len, its length. Nothing is copied. */
const char *em_trim(const char *s, size_t *len);

/* qsort comparator for doubles, ascending (NaN compares equal to all). */
int em_cmp_double(const void *a, const void *b);

/* SHA-256 (libcrypto) of a buffer as 64 lowercase hex digits plus NUL. */
void em_sha256_hex(const void *data, size_t n, char out[65]);
/* The same digest over input given in pieces (files too big for memory):
 * new, any number of updates, then final, which writes the hex digest and
 * frees h. */
typedef struct em_sha256 em_sha256;
em_sha256 *em_sha256_new(void);
void em_sha256_update(em_sha256 *h, const void *data, size_t n);
void em_sha256_final(em_sha256 *h, char out[65]);

/* Monotonic seconds, for progress bars and benchmarks. */
double em_now(void);

#endif

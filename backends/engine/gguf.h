/*
 * gguf.h - reading (and writing) GGUF v2/v3 model files.
 *
 * Owns: the GGUF container: header, metadata key/values of every type,
 * tensor infos, alignment, and the mmap'd tensor data. Every offset, size,
 * count and string length is checked against the file before it is used,
 * so a truncated or hostile file gives an error, never a crash.
 * It knows nothing about architectures or tokenizers.
 *
 * Layout (little-endian): magic "GGUF", u32 version, u64 n_tensors,
 * u64 n_kv, then n_kv × (string key, u32 type, value), then n_tensors ×
 * (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset),
 * padding to general.alignment (default 32), then tensor data.
 * Strings are u64 length + bytes (no NUL).
 */
#ifndef EMERGE_GGUF_H
#define EMERGE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef enum gguf_type {
    GGUF_UINT8 = 0, GGUF_INT8 = 1, GGUF_UINT16 = 2, GGUF_INT16 = 3,
    GGUF_UINT32 = 4, GGUF_INT32 = 5, GGUF_FLOAT32 = 6, GGUF_BOOL = 7,
    GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_UINT64 = 10, GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
} gguf_type;

/* ggml tensor types emerge knows (values as in ggml). */
typedef enum ggml_type {
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q4_1 = 3,
    GGML_Q5_0 = 6, GGML_Q5_1 = 7, GGML_Q8_0 = 8, GGML_Q8_1 = 9,
    GGML_Q2_K = 10, GGML_Q3_K = 11, GGML_Q4_K = 12, GGML_Q5_K = 13,
    GGML_Q6_K = 14, GGML_Q8_K = 15, GGML_BF16 = 30,
} ggml_type;

/* A string inside the mapped file: not NUL-terminated. */
typedef struct gguf_str {
    const char *s;
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    char *key;            /* NUL-terminated copy */
    gguf_type type;
    gguf_type arr_type;   /* element type when type == GGUF_ARRAY */
    uint64_t n;           /* element count (1 for scalars) */
    union {
        uint64_t u64; int64_t i64; double f64; int b; gguf_str str;
    } v;                  /* scalar value, widened */
    const void *data;     /* arrays of numbers: the raw elements in the file */
    gguf_str *strs;       /* arrays of strings: n entries (malloc'd table) */
} gguf_kv;

typedef struct gguf_tensor {
    char *name;
    int n_dims;
    int64_t ne[4];        /* ne[0] is the contiguous (row) dimension */
    ggml_type type;
    uint64_t offset;      /* relative to the data section */
    size_t nbytes;
    const void *data;     /* into the mapping */
} gguf_tensor;

typedef struct gguf_file {
    char *path;
    void *map;            /* whole file, read-only mmap (or caller memory) */
    size_t size;
    int owns_map;
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    size_t alignment;
    size_t data_offset;
    struct gguf_kept *kept; /* gguf_keep: freed by gguf_close, last first */
    size_t n_kept;
} gguf_file;

int gguf_open(const char *path, gguf_file **out, em_err *err);
/* Parses a buffer the caller keeps alive (fuzzing, tests). */
int gguf_open_mem(const void *data, size_t size, const char *name,
                  gguf_file **out, em_err *err);
void gguf_close(gguf_file *g);

const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name);

/* Typed getters: 0 when key exists with a compatible type (any integer
 * type for u64/i64, f32/f64 for f64), -1 otherwise. */
int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out);
int gguf_get_i64(const gguf_file *g, const char *key, int64_t *out);
int gguf_get_f64(const gguf_file *g, const char *key, double *out);
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
/* malloc'd NUL-terminated copy, or NULL. */
char *gguf_get_str(const gguf_file *g, const char *key);

/* Size in bytes of n elements of a ggml type (n a multiple of the block
 * size); 0 for unknown types. Block size in elements. */
size_t ggml_type_size(ggml_type t, int64_t n);
int ggml_block_size(ggml_type t);
const char *ggml_type_name(ggml_type t);
/* llama.cpp's general.file_type code for a model whose matrices are of
 * type t (0 F32, 1 F16, 2 Q4_0, 7 Q8_0, 15 Q4_K_M, 18 Q6_K, 32 BF16...). */
uint32_t gguf_file_type(ggml_type t);

/* Writer: builds a GGUF v3 file in memory, then writes it. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, int v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_arr_str(gguf_writer *w, const char *key,
                             const char *const *v, size_t n);
void gguf_writer_set_arr_f32(gguf_writer *w, const char *key,
                             const float *v, size_t n);
void gguf_writer_set_arr_i32(gguf_writer *w, const char *key,
                             const int32_t *v, size_t n);
/* Tensor data is copied. ne[0] is the row length. */
void gguf_writer_add_tensor(gguf_writer *w, const char *name, ggml_type type,
                            int n_dims, const int64_t *ne, const void *data,
                            size_t nbytes);
int gguf_writer_write(gguf_writer *w, const char *path, em_err *err);

/* Notes on reading (gguf owner): a kv's `data` (numeric arrays) points
 * into the file and may be unaligned for its element type: read elements
 * with memcpy. Tensor data is aligned to `alignment` within the mapping.
 * Tensor dimensions of 0 are accepted (empty tensors); n_dims is 0..4. */

/* Additions (gguf owner): every value type, and copying from a reader. */
/* v points to one value of the C type for t (uint8_t for GGUF_BOOL). */
void gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_type t,
                            const void *v);
void gguf_writer_set_strn(gguf_writer *w, const char *key, const char *v,
                          size_t n);
/* Numeric arrays: n elements of the C type for elem. */
void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem,
                         const void *data, size_t n);
void gguf_writer_set_arr_strn(gguf_writer *w, const char *key,
                              const gguf_str *v, size_t n);
/* Copies a key/value as read (e.g. a vocabulary into a new model). */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
/* The whole file in a malloc'd buffer (tests, fuzz seeds). */
int gguf_writer_write_mem(gguf_writer *w, void **out, size_t *size,
                          em_err *err);

/* Assembling a file in memory (hf.c reads a checkpoint directory this
 * way, so every reader downstream sees one format). */
/* A file whose metadata is the writer's (its tensors too, if any): the
 * writer is serialised into a buffer the file keeps. */
int gguf_from_writer(gguf_writer *w, const char *path, gguf_file **out,
                     em_err *err);
/* Adds a tensor whose data lies in memory the file does not own (keep it
 * alive with gguf_keep). Errors for a bad shape or a duplicate name. */
int gguf_add_view(gguf_file *g, const char *name, ggml_type type,
                  int n_dims, const int64_t *ne, const void *data,
                  em_err *err);
/* Writes g (every key, every tensor) as a GGUF file, without copying the
 * tensors (an assembled file of a large checkpoint fits memory once). */
int gguf_save(const gguf_file *g, const char *path, em_err *err);
/* Hands p to the file: free_fn(p) runs at gguf_close. */
void gguf_keep(gguf_file *g, void *p, void (*free_fn)(void *));
/* Like gguf_writer_add_tensor without the copy: data must stay alive and
 * unchanged until the writer is written (convert hf of a large model). */
void gguf_writer_add_tensor_ref(gguf_writer *w, const char *name,
                                ggml_type type, int n_dims, const int64_t *ne,
                                const void *data, size_t nbytes);

#endif

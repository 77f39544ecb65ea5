/*
 * safetensors.h - reading safetensors files (Hugging Face's weight format).
 *
 * Owns: the container: an 8-byte little-endian header length N, N bytes of
 * JSON ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {...}}), then the data section that the offsets index.
 * The header is untrusted input, checked like the GGUF reader's: its
 * length against the file and a 100 MiB cap, every dtype, shape and
 * offset pair (integers, no overflow, end within the data, end - begin =
 * the shape's byte size, no two tensors overlapping, no name twice), so a
 * truncated or hostile file gives an error naming the file and tensor,
 * never a crash. It knows nothing about models; hf.c maps names.
 */
#ifndef EMERGE_SAFETENSORS_H
#define EMERGE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    char *name;
    char dtype[8];        /* "F32", "F16", "BF16", "I64", "BOOL", ... */
    int n_dims;
    int64_t shape[ST_MAX_DIMS]; /* outermost first, as torch writes it */
    int64_t n_elem;
    const void *data;     /* into the mapping; may be unaligned */
    size_t nbytes;
} st_tensor;

typedef struct st_file {
    char *path;
    void *map;
    size_t size;
    int owns_map;
    int n_tensors;
    st_tensor *tensors;   /* in the order of their data offsets */
} st_file;

int st_open(const char *path, st_file **out, em_err *err);
/* Parses a buffer the caller keeps alive (tests, fuzzing). */
int st_open_mem(const void *data, size_t size, const char *name,
                st_file **out, em_err *err);
void st_close(st_file *f);

const st_tensor *st_find(const st_file *f, const char *name);

/* Bytes per element of a dtype name; 0 for one safetensors does not
 * define. */
size_t st_dtype_size(const char *dtype);

#endif

/*
 * hf_write.h - test fixtures: a GGUF model written out as a Hugging Face
 * checkpoint directory (config.json, *.safetensors, tokenizer.json).
 *
 * The inverse of backends/engine/hf.c, so tests can check that a model
 * read from the directory is the model in the GGUF file. Tests only: it
 * writes what the fixtures need, not every option a real export has.
 */
#ifndef EMERGE_TEST_HF_WRITE_H
#define EMERGE_TEST_HF_WRITE_H

#include "base/common.h"

typedef struct hf_write_opts {
    const char *dtype; /* "F32", "F16", "BF16": every tensor in it; NULL:
                          each tensor in its GGUF type (F32 or F16) */
    int shards;        /* > 1: that many files + model.safetensors.index.json */
} hf_write_opts;

int hf_write(const char *gguf_path, const char *dir, const hf_write_opts *o,
             em_err *err);

/* Writes one safetensors file from n tensors given as names, dtypes,
 * shapes (n_dims each, outermost first) and data; used by hf_write and by
 * the hostile-header tests to make a valid file to damage. */
typedef struct hf_wtensor {
    const char *name, *dtype;
    int n_dims;
    int64_t shape[4];
    const void *data;
    size_t nbytes;
} hf_wtensor;
int hf_write_safetensors(const char *path, const hf_wtensor *t, int n,
                         em_err *err);

#endif

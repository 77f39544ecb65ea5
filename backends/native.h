/*
 * native.h - what the native GGUF backend exposes beyond the vtable.
 *
 * Owns: backend_native_ops (name "native", registered in backend.c) and a
 * counter for benchmarks. Spec: `path` is the .gguf file; options
 *   threads         worker threads (default: online CPUs)
 *   n_ctx           context length (default: the model's, capped at 4096)
 *   prefix_sharing  1 (default) evaluates a context shared by several
 *                   requests once; 0 evaluates every request from scratch
 *   kv_exact        1 keeps K/V in F32 precision (default 0: F16 values,
 *                   as llama.cpp's default cache)
 */
#ifndef EMERGE_NATIVE_H
#define EMERGE_NATIVE_H

#include <stdint.h>

#include "backends/backend.h"

extern const backend_ops backend_native_ops;

/* Tokens run through the network since the model was opened; 0 when b is
 * not a native backend. */
uint64_t native_tokens_evaluated(const backend *b);

#endif

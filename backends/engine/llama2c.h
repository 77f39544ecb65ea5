/*
 * llama2c.h - converting llama2.c checkpoints to llama-architecture GGUF.
 *
 * Owns: reading Karpathy's llama2.c "legacy" checkpoint (model.bin: a
 * Config of 7 int32 then float32 weights) and tokenizer.bin (int32
 * max_token_length, then per token: float32 score, int32 length, bytes),
 * and writing one GGUF file that llama.cpp (and emerge's engine) loads as
 * `llama`: the usual metadata, a SentencePiece (`llama`) vocabulary and
 * tensors under llama.cpp's names (F32, or F16/quantised on request).
 */
#ifndef EMERGE_LLAMA2C_H
#define EMERGE_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>

#include "backends/engine/gguf.h"
#include "base/common.h"

typedef struct llama2c_config {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
        seq_len;
    int shared_classifier;   /* vocab_size > 0 in the file: wcls = embedding */
    int has_freq_cis;        /* legacy files carry two seq_len*head_size/2
                                RoPE tables after rms_final: skipped */
} llama2c_config;

/* Converts MODEL.bin + TOKENIZER.bin to a GGUF file at out_path, with
 * the weight matrices stored as `type` (GGML_F32 keeps the checkpoint's
 * values exactly; F16, BF16 and the types quant_quantize_row writes
 * round them; norms stay F32). The config read is returned in *cfg when
 * cfg is not NULL. */
int llama2c_convert(const char *model_path, const char *tok_path,
                    const char *out_path, ggml_type type,
                    llama2c_config *cfg, em_err *err);

#endif

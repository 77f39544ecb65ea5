/*
 * hf.h - a Hugging Face checkpoint directory read as a GGUF model.
 *
 * Owns: turning a directory of config.json + *.safetensors (single, or
 * sharded with model.safetensors.index.json) + tokenizer.json into the
 * same gguf_file the GGUF reader gives, so that model.c, tokenizer.c,
 * `inspect` and `convert hf` see one format. Metadata keys are the ones
 * llama.cpp's converter writes (general.architecture, <arch>.*,
 * tokenizer.ggml.*); tensors carry GGUF names and layouts. A tensor whose
 * bytes the engine can use as they are points into the safetensors
 * mapping; the few that need rearranging (llama's Q/K rows for adjacent-
 * pair RoPE, GPT-NeoX's per-head fused QKV, GPT-2's transposed Conv1D
 * matrices) or converting (an on-load --type) are copied into buffers the
 * gguf_file owns. Nothing is written to disk.
 *
 * Architectures (config.json "architectures"[0]): GPTNeoXForCausalLM,
 * LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel.
 * Anything else, or an option emerge does not implement (rope_scaling,
 * a sliding window shorter than the context...), is an error naming the
 * file and key.
 */
#ifndef EMERGE_HF_H
#define EMERGE_HF_H

#include "base/common.h"
#include "backends/engine/gguf.h"

typedef struct hf_opts {
    const char *type; /* NULL: keep the checkpoint's types; else the type
                       (quant_type_parse's names: f16, q8_0...) the
                       matrices are converted to on load; norms and
                       biases stay F32 */
    int n_ctx;      /* the context the caller will use (<= 0: the
                       model's): Mistral's sliding_window must cover it */
    int shapes_only; /* 1: names, types and shapes for counting only; the
                       data stays in the checkpoint's layout (nothing is
                       rearranged or converted), so never compute with it */
} hf_opts;

/* 1 when path is a directory (a checkpoint), 0 otherwise. */
int hf_is_dir(const char *path);

/* Opens a model: a GGUF file, or a checkpoint directory read as one.
 * opts may be NULL (keep types, the model's context); opts->type on a GGUF
 * file is an error (it would do nothing). */
int hf_open_path(const char *path, const hf_opts *opts, gguf_file **out,
                 em_err *err);

/* Opens a checkpoint directory (hf_open_path's directory case). */
int hf_open(const char *dir, const hf_opts *opts, gguf_file **out,
            em_err *err);

#endif

/*
 * hf_tokenizer.h - a Hugging Face tokenizer.json as GGUF tokenizer keys.
 *
 * Owns: reading tokenizer.json (+ tokenizer_config.json and
 * special_tokens_map.json when present) in a checkpoint directory and
 * writing the tokenizer.ggml.* keys llama.cpp's converter would write, so
 * tokenizer.c builds the same tokenizer it builds from a GGUF file:
 *   - byte-level BPE (model.type "BPE", a ByteLevel pre-tokenizer, alone
 *     or after a Split regex): tokenizer.ggml.model "gpt2", tokens by id,
 *     merges by rank, tokenizer.ggml.pre named from the pre-tokenizer
 *     (GPT-2 / GPT-NeoX, Llama-3, Qwen2; an unknown regex is an error);
 *   - SentencePiece-style BPE (byte_fallback, the Prepend/Replace "▁"
 *     normalizer of Llama-2, Mistral, TinyLlama): tokenizer.ggml.model
 *     "llama", scores from merge ranks, <0xXX> byte tokens;
 *   - added tokens (special -> control, else user-defined), bos/eos/unk/
 *     pad ids, add_bos_token / add_eos_token as the checkpoint's files
 *     say (tokenizer_config.json, else the post-processor; GPT-2/NeoX add
 *     none, Llama adds BOS).
 * n_vocab is the model's embedding row count: a vocabulary shorter than
 * it (Pythia pads 50277 tokens to 50304 rows) is padded with "[PADn]"
 * tokens of type unused; a longer one is an error. Errors name the file
 * and the key.
 */
#ifndef EMERGE_HF_TOKENIZER_H
#define EMERGE_HF_TOKENIZER_H

#include <stdint.h>

#include "base/common.h"
#include "backends/engine/gguf.h"

int hf_tokenizer_read(const char *dir, int64_t n_vocab, gguf_writer *w,
                      em_err *err);

#endif

/*
 * hf_tok_write.h - test fixtures only: a GGUF file's tokenizer as a
 * Hugging Face checkpoint's tokenizer files.
 *
 * Owns: writing DIR/tokenizer.json and DIR/tokenizer_config.json from
 * the tokenizer.ggml.* keys of a GGUF file, shaped like the files real
 * checkpoints ship:
 *   - gpt2 vocabularies as GPT-2 / Pythia / Llama-3 / Qwen2 files:
 *     ByteLevel pre-tokenizer (alone, or after the Split regex of the
 *     tokenizer.ggml.pre named), merges by rank ("a b" strings, or
 *     [a, b] pairs for llama-bpe and qwen2), added tokens for control and
 *     user-defined tokens, trailing "[PADn]" tokens left out (the reader
 *     pads to the model's n_vocab again);
 *   - llama vocabularies as Llama-2's: the Prepend/Replace "▁"
 *     normalizer, BPE with byte_fallback, merges made from the vocabulary
 *     and scores as Hugging Face's SentencePiece converter makes them
 *     (every split of a piece into two pieces, by the merged piece's
 *     score), added tokens for control and unknown tokens.
 * tokenizer_config.json holds add_bos_token / add_eos_token and the
 * bos/eos/unk/pad token texts. Not part of the library.
 */
#ifndef EMERGE_TESTS_HF_TOK_WRITE_H
#define EMERGE_TESTS_HF_TOK_WRITE_H

#include "base/common.h"
#include "backends/engine/gguf.h"

int hf_tok_write(const gguf_file *g, const char *dir, em_err *err);

#endif

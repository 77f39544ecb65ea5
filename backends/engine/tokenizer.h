/*
 * tokenizer.h - text <-> token ids from a GGUF file's tokenizer metadata.
 *
 * Owns: building a tokenizer from tokenizer.ggml.* keys and encoding /
 * decoding with it, bit-for-bit as llama.cpp does. Two models:
 *   "llama" - SentencePiece-style: highest-score pair merges over UTF-8
 *             characters, byte fallback through <0xXX> tokens;
 *   "gpt2"  - byte-level BPE: a pre-tokenizer regex (chosen by
 *             tokenizer.ggml.pre), GPT-2's byte->unicode mapping, then
 *             merges by rank (tokenizer.ggml.merges index = rank).
 */
#ifndef EMERGE_TOKENIZER_H
#define EMERGE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "backends/engine/gguf.h"

typedef struct tokenizer tokenizer;

int  tok_build(const gguf_file *g, tokenizer **out, em_err *err);
void tok_free(tokenizer *t);
/* Encodes UTF-8 text (len bytes). add_special: prepend BOS (and append
 * EOS) when the vocabulary asks for it (tokenizer.ggml.add_bos_token;
 * default true for llama/SPM, false for gpt2 BPE), as llama.cpp's
 * llama_tokenize(add_special=true) does. ids is malloc'd. */
int  tok_encode(const tokenizer *t, const char *text, size_t len,
                int add_special, int32_t **ids, int *n, em_err *err);
/* The bytes token id stands for in text: SPM "▁" -> " ", byte tokens
 * "<0x0A>" -> "\n", BPE byte-level unicode -> raw bytes; control tokens
 * -> "". Returns the length written (at most cap, NUL not counted,
 * NUL-terminated when room). */
int  tok_decode(const tokenizer *t, int32_t id, char *buf, size_t cap);
int  tok_n_vocab(const tokenizer *t);
int32_t tok_bos(const tokenizer *t);   /* -1 if none */
int32_t tok_eos(const tokenizer *t);
int  tok_is_control(const tokenizer *t, int32_t id);

/* Additions beyond the first interface. */
/* The token's text as stored in the vocabulary (not NUL-terminated; NULL
 * for an id out of range), e.g. "\xe2\x96\x81Hello" or "<s>". */
const char *tok_text(const tokenizer *t, int32_t id, size_t *len);
/* tokenizer.ggml.model ("llama" or "gpt2") and tokenizer.ggml.pre ("" if
 * absent). */
const char *tok_model(const tokenizer *t);
const char *tok_pre(const tokenizer *t);
/* Whether add_special prepends BOS / appends EOS for this vocabulary. */
int  tok_adds_bos(const tokenizer *t);
int  tok_adds_eos(const tokenizer *t);

#endif

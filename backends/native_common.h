/*
 * native_common.h - what every backend over emerge's own engine shares:
 * the native (CPU) backend, the cuda backend and `emerge serve`.
 *
 * Owns: integer options of a backend spec, the backend_info of a GGUF
 * model, lm-evaluation-harness's split of (context, continuation) into
 * tokens, and finding stop strings in generated text. One copy of each, so
 * that the CPU and GPU backends and the server tokenise and stop alike.
 */
#ifndef EMERGE_NATIVE_COMMON_H
#define EMERGE_NATIVE_COMMON_H

#include <stdint.h>

#include "backends/backend.h"
#include "backends/engine/model.h"
#include "backends/engine/tokenizer.h"

/* *out = option key of sp as an integer in [lo, hi], or def when absent. */
int native_opt_int(const backend_spec *sp, const char *key, int def, int lo,
                   int hi, int *out, em_err *err);

/* Name (spec name, else general.name, else the file name), architecture,
 * parameters, context and capabilities of model m. */
void native_fill_info(const backend_spec *spec, const model *m,
                      backend_info *info);

/* The token that stands in for an empty context: BOS, else EOS, else -1. */
int32_t native_start_token(const tokenizer *t);

/* lm-evaluation-harness's split: whole = encode(context + continuation),
 * context tokens = encode(context without its trailing whitespace), the
 * continuation = whole after them (so trailing whitespace of the context
 * moves to the continuation); an empty (or whitespace-only, BOS-less)
 * context is the start token. No truncation. On error nothing is left
 * allocated and *ctx, *cont are NULL. */
int native_encode_pair(const tokenizer *t, const char *context,
                       const char *continuation, int32_t **ctx, int *nctx,
                       int32_t **cont, int *ncont, em_err *err);

/* Appends the text of token id to text (generation) and cuts text before
 * the earliest stop string: 1 when one was found (generation ends), else 0. */
int native_append_token(const tokenizer *t, int32_t id, em_buf *text,
                        const char *const *stop, int n_stop);

/* How many of a prompt's n tokens a generation keeps (its last ones) to
 * fit n_ctx: all of them when they leave room for one generated token;
 * else n_ctx - room, room = min(max_tokens, n_ctx / 2) but at least 1, so
 * that a prompt that overflows still leaves its answer room (a prompt
 * that fits is never cut to make room: its generation may then end at
 * the context, BACKEND_FINISH_CONTEXT). The caller reports n - keep as
 * backend_gen_res.truncated. */
int native_prompt_keep(int n, int n_ctx, int max_tokens);

/* Marks one request failed with msg. */
void native_fail_req(backend_ll_res *r, const char *msg);

#endif

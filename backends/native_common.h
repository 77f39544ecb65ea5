/*
 * native_common.h - what every backend over emerge's own engine shares:
 * the native (CPU) backend, the cuda backend and `emerge serve`.
 *
 * Owns: integer options of a backend spec, the backend_info of a GGUF
 * model, lm-evaluation-harness's split of (context, continuation) into
 * tokens, finding stop strings in generated text, and the generation loop
 * itself. One copy of each, so that the CPU and GPU backends and the
 * server tokenise, sample and stop alike.
 */
#ifndef EMERGE_NATIVE_COMMON_H
#define EMERGE_NATIVE_COMMON_H

#include <stdint.h>

#include "backends/backend.h"
#include "backends/engine/model.h"
#include "backends/engine/sample.h"
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

/* What the generation loop needs of an engine: its prompt run and
 * one-token step (each leaves the next token's logits in logits), and
 * whether the context is full. */
typedef struct native_gen {
    void *eng;
    const tokenizer *tok;
    sampler *smp;
    const float *logits;      /* n_vocab floats, rewritten by each step */
    int n_vocab;
    /* Runs the prompt (its last tokens that fit with max to generate);
     * *truncated: prompt tokens left out. */
    int (*prompt)(void *eng, const char *text, int max, int *truncated,
                  em_err *err);
    int (*step)(void *eng, int32_t token, em_err *err);
    int (*full)(void *eng);
} native_gen;

/* One generation of rq with g: sampling (temperature, top_p, seed), EOS,
 * stop strings, max_tokens (default 256, at most the context) and a full
 * context end it, r->finish says which. r's text and token log-probs are
 * malloc'd. 0, or -1 when the engine failed (err). */
int native_generate_one(const native_gen *g, int n_ctx, const backend_gen_req *rq,
                        backend_gen_res *r, em_err *err);

/* Marks one request failed with msg. */
void native_fail_req(backend_ll_res *r, const char *msg);

#endif

/*
 * serve.h - an OpenAI-compatible HTTP server over one model, opened and
 * run through the backend interface (backends/backend.h) like any client.
 *
 * Owns: the HTTP side of `emerge serve` (libmicrohttpd, one thread per
 * connection), request validation with JSON error bodies, the queue that
 * hands requests to the single model worker, and the answers:
 *   POST /v1/completions       prompt (string, strings, token ids, lists
 *                              of token ids), echo, logprobs (0..5),
 *                              max_tokens (0 allowed), stop, temperature,
 *                              top_p, seed; n must be 1
 *   POST /v1/chat/completions  the messages' contents joined by newlines
 *                              as a plain prompt (no chat template)
 *   GET  /v1/models, GET /health
 *   POST /tokenize, POST /detokenize, GET /tokenizer_info (also under
 *                              /v1): vLLM's shapes, which lm-eval's
 *                              RemoteTokenizer reads
 * Limits: request body (max_body), request head (16 KiB), prompts per
 * request, prompt tokens (the context), max_tokens; connections (in all
 * and per client address) and the time a request may take to arrive, so
 * that silent or slow clients cannot take the server from others.
 *
 * The model worker takes every request waiting at once and hands their
 * prompts to the backend's token-level completion (backend_complete) as
 * one batch. The native backend sorts them by token ids, so prompts
 * sharing a prefix (the choices of one question) reuse the KV cache
 * instead of recomputing it; prompts that are only scored (echo,
 * max_tokens 0) and share a prefix run their tails as branches of one
 * forward pass (backends/native_complete.c). A backend without the
 * token-level ops (every other one today) can be opened, and its
 * completion routes answer 501.
 */
#ifndef EMERGE_SERVE_H
#define EMERGE_SERVE_H

#include <stddef.h>

#include "base/common.h"

typedef struct serve_opts {
    const char *model_path; /* the spec's path: a .gguf file for native */
    const char *backend;    /* the backend's name, NULL: "native" */
    const char *model_name; /* the id /v1/models shows; NULL: file name */
    const char *host;       /* NULL: 127.0.0.1 */
    int port;               /* 0: any free port (see serve_port) */
    int threads;            /* model threads, 0: online CPUs */
    int n_ctx;              /* 0: the model's (capped as model.h does) */
    size_t max_body;        /* bytes, 0: 1 MiB */
    int max_tokens;         /* largest max_tokens accepted, 0: 1024 */
    int max_prompts;        /* prompts per request, 0: 64 */
    int max_conns;          /* concurrent connections, 0: 512 */
    int max_per_ip;         /* concurrent connections from one address, 0: 64 */
    int timeout;            /* seconds, 0: 10: idle connections are closed,
                             * and a request must arrive whole (headers and
                             * body) within it; waiting for the model is
                             * not counted */
    int log;                /* 1: one line per request on stderr */
    int hide_bos;           /* 1: prompts get the start token emerge's
                             * scorer conditions on (token ids too, when
                             * they lack it) and the echo leaves it out, so
                             * that lm-eval's [ctxlen:-1] slice gives
                             * emerge's log-likelihoods (serve_tok.c) */
    const char *api_key;    /* NULL: no authentication; else every route
                             * but /health needs "Authorization: Bearer
                             * KEY" (only its SHA-256 is kept, compared in
                             * constant time, never logged) */
} serve_opts;

typedef struct serve_stats {
    long requests;          /* HTTP requests answered */
    long errors;            /* of which 4xx/5xx */
    long prompts;           /* prompts run by the worker */
    long batches;           /* worker wake-ups (prompts / batches = batching) */
    long branched;          /* prompts scored as branches of a shared prefix */
    long prompt_tokens;
    long completion_tokens;
} serve_stats;

typedef struct serve serve;

/* Loads the model, starts the worker and listens. */
int serve_start(const serve_opts *o, serve **out, em_err *err);
int serve_port(const serve *s);
void serve_get_stats(serve *s, serve_stats *out);
/* Stops listening, finishes the requests in flight, frees everything. */
void serve_stop(serve *s);

#endif

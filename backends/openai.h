/*
 * openai.h - the "openai" backend: a model behind an OpenAI-compatible
 * HTTP server (emerge serve, llama.cpp's server, vLLM, ...).
 *
 * Owns: backend_openai_ops (name "openai", registered in backend.c).
 * Spec (family file member or `openai:URL,key=value,...`):
 *   path / base_url   e.g. http://127.0.0.1:8080/v1 (endpoints are
 *                     appended: /completions, /chat/completions)
 *   model             the server-side model name (default: member name)
 *   api_key_env       NAME of the environment variable holding the key;
 *                     the key itself is never stored or logged
 *   concurrency       requests in flight at once (default 8)
 *   timeout           seconds per attempt (default 300)
 *   max_retries       retries after the first attempt (default 5)
 *   backoff           first retry delay in seconds (default 0.5), doubled
 *                     per retry up to 30 s, with jitter; Retry-After wins
 *   chat              1: generate through /chat/completions
 *   loglik_max_tokens 0 (default) or 1, for servers that refuse
 *                     max_tokens 0 with echo
 *   logprobs_mode     echo, prompt_logprobs (vLLM's) or auto (default:
 *                     echo first, then prompt_logprobs)
 *   params            parameter count (a server cannot tell)
 *
 * Log-likelihoods need a server that returns prompt log-probs: echoed
 * (echo=true, logprobs=1) or vLLM's prompt_logprobs. One that cannot (an
 * HTTP error naming the parameter, as llama.cpp's 500 "Unsupported param:
 * echo"; no, short or null token_logprobs) is a server limitation: the
 * first request of a member finds out (one per method), none is retried,
 * and the member's other log-likelihood requests fail at once with
 * "server limitation, not retried: ...", never a made-up number (counted
 * in openai_counts.limited). An echo is scored only when its token
 * texts spell the whole prompt we sent (a "<s>"-like start token first,
 * and U+FFFD pieces of a split character, as vLLM and emerge serve show
 * them, are accepted), text_offset never decreases nor runs ahead of the
 * token texts, and usage's token counts (when sent) agree; anything else
 * fails the request with what the server's answer lacked.
 *
 * Generations: log-probs (logprobs.token_logprobs or logprobs.content[])
 * must cover usage.completion_tokens; none at all is accepted as absent
 * (token_logprobs NULL). finish_reason fills res.finish; res.truncated is
 * 0, a server does not say.
 */
#ifndef EMERGE_OPENAI_H
#define EMERGE_OPENAI_H

#include "backends/backend.h"

extern const backend_ops backend_openai_ops;

/* Attempts made by every openai backend in this process, and how many of
 * them were retries (tests and benchmarks). */
typedef struct openai_counts {
    long attempts;
    long retries;
    long in_flight;  /* HTTP requests open right now (for a progress line) */
    long limited;    /* log-likelihood requests failed because the server
                        cannot return prompt log-probs (none retried) */
} openai_counts;

void openai_get_counts(openai_counts *out);

/* Forgets what servers were found unable to do (the process remembers it
 * per completions URL, so that a limitation costs one request per server,
 * not per member). Tests whose fake servers come and go on recycled
 * ports call it when one stops. */
void openai_forget_servers(void);

/* openai_probe.c: checks the log-prob semantics of the server spec
 * names (an openai member) and prints a verdict per check to out:
 * prompt log-probs by echo or prompt_logprobs, every prompt token
 * covered, BOS handling, text offsets, the same request twice, and a
 * continuation's log-prob against full minus prefix. 0: all good; 1: the
 * server would give wrong scores (or none); -1: err says why the probe
 * could not run (the member does not open, no answer from the server). */
int openai_probe(const backend_spec *spec, FILE *out, em_err *err);

#endif

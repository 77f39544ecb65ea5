/*
 * openai_int.h - what the openai backend's files share (openai.c: the
 * backend and its HTTP engine; openai_logprobs.c: reading log-probs out
 * of answers; openai_probe.c: `emerge models --probe`). Not for use
 * outside backends/openai*.c.
 */
#ifndef EMERGE_OPENAI_INT_H
#define EMERGE_OPENAI_INT_H

#include <cjson/cJSON.h>

#include "backends/backend.h"

/* Results besides 0 and -1 (a final failure of this one request): */
#define OA_LIMIT (-2)     /* the server cannot do what was asked, for any
                             request of this kind */
#define OA_TRANSPORT (-3) /* no usable answer: connection, HTTP status */

/* How prompt log-probs are asked for (option logprobs_mode). */
enum { LP_ECHO, LP_PLP, LP_AUTO };

const cJSON *oa_get(const cJSON *o, const char *k);
/* choices[0].field, or NULL. */
const cJSON *oa_choice0(const cJSON *json, const char *field);
/* usage.name when the server sent a count, else -1. */
int oa_usage_count(const cJSON *json, const char *name);
/* Whether a token text is a start token rather than text ("", "<s>"). */
int oa_is_start_text(const char *s);

/* The prompt's tokens as the server scored them, however it was asked:
 * each token's text, its log-prob and the best log-prob at its position
 * (NAN: none sent). */
typedef struct oa_toks {
    int n;
    const char **texts;  /* point into the answer (or first) */
    double *lp, *best;
    char *first;         /* malloc'd text of token 0 when worked out */
} oa_toks;

void oa_toks_init(oa_toks *t, int n);
void oa_toks_free(oa_toks *t); /* also of a {0} one */

/* The tokens of an echo=true, logprobs=1 answer (shape checked; missing
 * or short arrays: OA_LIMIT). */
int oa_echo_toks(const cJSON *json, oa_toks *t, char *msg, size_t cap);
/* Its text_offset: integers, never decreasing, never ahead of the text
 * the tokens before spell. 0 or -1 with msg. */
int oa_echo_offsets(const cJSON *json, char *msg, size_t cap);
/* The tokens of vLLM's choices[0].prompt_logprobs for prompt; the first
 * token's text (null there) is what the others leave of the prompt. */
int oa_plp_toks(const cJSON *json, const char *prompt, size_t bound,
                oa_toks *t, char *msg, size_t cap);
/* Aligns t with prompt and fills r with the sum over the tokens that
 * start at or after byte bound. gen: tokens the server may have added
 * after the prompt's (-1: t is the prompt's alone). n_prompt (may be
 * NULL): the prompt's tokens. 0, -1 or OA_LIMIT with msg. */
int oa_ll_score(const char *prompt, size_t bound, const cJSON *json,
                const oa_toks *t, int gen, backend_ll_res *r, int *n_prompt,
                char *msg, size_t cap);
/* Generation log-probs from lp (choices[0].logprobs, either shape) into
 * r (n_tokens, token_logprobs, sum_logprob) when the server sent any;
 * they must cover the generated text. 0 or -1 with msg. */
int oa_gen_logprobs(const cJSON *json, const cJSON *lp, const char *text,
                    int finish, backend_gen_res *r, char *msg, size_t cap);

/* openai.c: one request for prompt's log-probs asked with method
 * (LP_ECHO or LP_PLP) on an open openai backend's state, retried as any;
 * *answer (caller frees) is the parsed answer. 0; OA_LIMIT when the
 * server refused the parameter; OA_TRANSPORT when no answer came. */
int oa_ask(void *state, const char *prompt, int method, cJSON **answer,
           char *msg, size_t cap);

#endif

/*
 * serve_int.h - what the server's files share (not for other modules).
 *
 * Owns: the request and server structs. serve.c (HTTP, limits, the
 * request deadline, the model worker, the lifecycle) uses the two files
 * below it, which know nothing of each other or of serve.c:
 *   serve_request.c  the OpenAI request body -> sv_req (checked, tokenised)
 *   serve_answer.c   sv_req with the backend's results -> the JSON answer
 *   serve_tok.c      the server's own copy of the model's vocabulary:
 *                    /tokenize, /detokenize, /tokenizer_info and prompts
 *                    with add_special_tokens or --hide-bos
 */
#ifndef EMERGE_SERVE_INT_H
#define EMERGE_SERVE_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>

#include "backends/backend.h"
#include "backends/engine/gguf.h"
#include "backends/engine/tokenizer.h"
#include "harness/serve/serve.h"

#define SV_MAX_STOP 16

typedef struct sv_item {
    int32_t *toks;
    int n;
    const char *prompt;          /* string prompts: the text (in req's JSON) */
    int hidden;                  /* leading tokens (a BOS --hide-bos added)
                                    left out of the echo and usage */
    backend_cmpl_res res;        /* what the backend answered */
} sv_item;

typedef struct sv_req {
    int chat;
    int echo;
    int logprobs;                /* -1: none; else top entries (0..5) */
    int special;                 /* add_special_tokens: -1 not given, 0, 1 */
    int max_tokens;
    double temperature, top_p;
    uint64_t seed;
    const char *stop[SV_MAX_STOP];
    int n_stop;
    cJSON *json;                 /* owns the strings above */
    sv_item *items;
    int n_items;
    int done;
    struct sv_req *next;
} sv_req;

struct serve {
    serve_opts o;             /* o.api_key is not kept: key_sha256 is */
    char key_sha256[65];      /* hex SHA-256 of the API key; "" = none */
    char *name;
    backend *b;
    /* The vocabulary, read again from o.model_path (serve_tok.c); NULL
     * when the path is not a local model (tok_why says why). */
    gguf_file *tok_g;
    tokenizer *tok;
    char tok_why[256];
    int32_t *ctrl;            /* control tokens with a text, longest first */
    int n_ctrl;
    unsigned char ctrl_first[256]; /* 1: some control text starts so */
    struct MHD_Daemon *d;
    pthread_t worker;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    sv_req *head, *tail;
    int stopping;
    serve_stats st;
    int port;
    long next_id;
    /* The request deadline (see sv_sock): open connections, guarded by
     * sock_mu, and the thread that enforces it. */
    pthread_mutex_t sock_mu;
    pthread_cond_t reap_cv;
    struct sv_sock *socks;
    int reaper_stop;
    pthread_t reaper;
};

/* serve_request.c: the body of a completion (chat: 1 for the chat
 * route) as a request, prompts tokenised by s's backend; NULL with msg
 * (for a 400) when it is not a valid one. build/free pair. */
sv_req *sv_parse_request(serve *s, const char *body, size_t len, int chat,
                         char *msg, size_t cap);
void sv_req_free(sv_req *r);

/* serve_tok.c. open/close pair: open never fails (a server over a
 * remote backend has no vocabulary; the routes below then answer 501). */
void sv_tok_open(serve *s);
void sv_tok_close(serve *s);
/* One string prompt as tokens: the backend's rule (special < 0), with
 * (1) or without (0) the vocabulary's BOS/EOS. */
int sv_tok_prompt(serve *s, const char *text, int special, int32_t **ids,
                  int *n, em_err *err);
/* --hide-bos: how many leading tokens of a prompt the echo hides (0 or
 * 1): token ids that lack the BOS the vocabulary asks for get it; a
 * text's (from_text) BOS, put there by the vocabulary's rule, is hidden. */
int sv_tok_hide_bos(serve *s, int from_text, int32_t **ids, int *n);
/* The routes: the JSON answer (malloc'd) and its HTTP status. */
char *sv_tokenize_json(serve *s, const char *body, size_t len, unsigned *status);
char *sv_detokenize_json(serve *s, const char *body, size_t len, unsigned *status);
char *sv_tokenizer_info_json(serve *s, unsigned *status);

/* serve_answer.c: JSON texts, malloc'd. id numbers the answer. */
char *sv_answer_json(serve *s, const sv_req *r, long id);
char *sv_models_json(const serve *s);
char *sv_error_json(unsigned status, const char *msg);
/* s[0..n) as valid UTF-8: bytes that start no valid sequence -> U+FFFD. */
char *sv_utf8_clean(const char *s, size_t n);

#endif

/*
 * serve_int.h - what the server's files share (not for other modules).
 *
 * Owns: the request and server structs. serve.c (HTTP, limits, the
 * request deadline, the model worker, the lifecycle) uses the two files
 * below it, which know nothing of each other or of serve.c:
 *   serve_request.c  the OpenAI request body -> sv_req (checked, tokenised)
 *   serve_answer.c   sv_req with the backend's results -> the JSON answer
 */
#ifndef EMERGE_SERVE_INT_H
#define EMERGE_SERVE_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>

#include "backends/backend.h"
#include "harness/serve/serve.h"

#define SV_MAX_STOP 16

typedef struct sv_item {
    int32_t *toks;
    int n;
    const char *prompt;          /* string prompts: the text (in req's JSON) */
    backend_cmpl_res res;        /* what the backend answered */
} sv_item;

typedef struct sv_req {
    int chat;
    int echo;
    int logprobs;                /* -1: none; else top entries (0..5) */
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

/* serve_answer.c: JSON texts, malloc'd. id numbers the answer. */
char *sv_answer_json(serve *s, const sv_req *r, long id);
char *sv_models_json(const serve *s);
char *sv_error_json(unsigned status, const char *msg);

#endif

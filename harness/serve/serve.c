/*
 * serve.c - the OpenAI-compatible server (see serve.h).
 *
 * Why libmicrohttpd rather than hand-written HTTP: it parses requests
 * robustly (chunked bodies, pipelining, slow clients, header limits),
 * and its thread-per-connection mode lets a handler simply block until
 * the model worker has answered, which keeps this file about requests and
 * models instead of sockets.
 *
 * Flow: a connection thread reads the body (bounded), parses and checks
 * it, tokenises the prompts (backend_tokenize may be called from any
 * thread) and queues one sv_req. The single worker thread owns the model:
 * it takes the whole queue and hands every prompt in it to the backend as
 * one backend_complete batch (the backend shares prefixes), and wakes the
 * waiting handlers, which build their JSON answers.
 *
 * Errors come back as {"error": {"message", "type", "code"}} with 400 for
 * bad requests (naming the field), 404/405 for wrong routes, 408 for a
 * request that did not arrive in time, 413 for a body over the limit, 431
 * for a head over SV_MAX_HEAD, 500 when the model failed and 501 when the
 * backend has no token-level completion (backend_can_complete). What MHD
 * refuses before calling us keeps MHD's own body (README lists it).
 *
 * Against clients that hold connections without finishing a request:
 * limits in all and per address (MHD), MHD's idle timeout, and a deadline
 * per request enforced by a reaper thread (see sv_sock). A connection
 * thread waiting for the model is not subject to either.
 *
 * Parsing a request body is serve_request.c's, writing the JSON answers
 * serve_answer.c's, the vocabulary routes serve_tok.c's (serve_int.h);
 * this file is the HTTP side, the limits, the model worker and the
 * lifecycle.
 */
#include "harness/serve/serve.h"

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "harness/serve/serve_int.h"

#define SV_MAX_HEAD 16384         /* request line + headers, bytes */

/* Per-request state: the body read so far. */
typedef struct sv_conn {
    em_buf body;
    int seen;                    /* the handler has had its first call */
    int too_big;
    int replied;
} sv_conn;

/* One open socket (MHD's socket context). MHD's idle timeout cannot stop
 * a client that sends one byte a second, so each socket also has a
 * deadline: --timeout seconds from being opened, or from its previous
 * answer, to deliver a whole request. The reaper thread closes sockets
 * past it: with a JSON 408 when a request line has arrived, silently when
 * nothing has (an idle keep-alive connection, which is what MHD's idle
 * timeout does too). */
typedef struct sv_sock {
    int fd;
    uint64_t deadline_ms;        /* monotonic; 0: none (being answered) */
    int partial;                 /* a request line has arrived */
    struct sv_sock *prev, *next;
} sv_sock;

/* ------------------------------------------------------------- the worker */

/* Runs every prompt of a list of requests in one backend batch: the
 * backend may reorder them and share prefixes (native_complete.c). */
static void run_batch(serve *s, sv_req *list)
{
    int n = 0, k = 0;
    long ptok = 0, ctok = 0, branched = 0;
    for (sv_req *r = list; r; r = r->next)
        n += r->n_items;
    backend_cmpl_req *req = em_calloc((size_t)(n ? n : 1), sizeof *req);
    backend_cmpl_res *res = em_calloc((size_t)(n ? n : 1), sizeof *res);
    for (sv_req *r = list; r; r = r->next)
        for (int i = 0; i < r->n_items; i++)
            req[k++] = (backend_cmpl_req){
                .toks = r->items[i].toks, .n_toks = r->items[i].n,
                .score_prompt = r->echo && r->logprobs >= 0,
                .max_tokens = r->max_tokens, .temperature = r->temperature,
                .top_p = r->top_p, .seed = r->seed, .stop = r->stop,
                .n_stop = r->n_stop};
    em_err err;
    if (backend_complete(s->b, req, res, n, &err))
        for (int i = 0; i < n; i++)
            snprintf(res[i].error, sizeof res[i].error, "%.255s", err.msg);
    k = 0;
    for (sv_req *r = list; r; r = r->next)
        for (int i = 0; i < r->n_items; i++, k++) {
            r->items[i].res = res[k];
            ptok += r->items[i].n;
            ctok += res[k].n_gen;
            branched += res[k].shared;
        }
    free(req);
    free(res);
    pthread_mutex_lock(&s->mu);
    s->st.batches++;
    s->st.prompts += n;
    s->st.branched += branched;
    s->st.prompt_tokens += ptok;
    s->st.completion_tokens += ctok;
    for (sv_req *r = list; r; r = r->next)
        r->done = 1;
    pthread_cond_broadcast(&s->done_cv);
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    serve *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->work_cv, &s->mu);
        if (!s->head)
            break;
        sv_req *list = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        run_batch(s, list); /* takes the lock itself at the end */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Queues r and waits until the worker has run it. */
static void submit(serve *s, sv_req *r)
{
    pthread_mutex_lock(&s->mu);
    r->next = NULL;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    pthread_cond_signal(&s->work_cv);
    while (!r->done)
        pthread_cond_wait(&s->done_cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------- the request deadline */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static sv_sock *sock_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Sets the deadline of c's socket (0: none); partial as sock says. */
static void sock_set(serve *s, struct MHD_Connection *c, uint64_t deadline_ms,
                     int partial)
{
    sv_sock *k = sock_of(c);
    if (!k)
        return;
    pthread_mutex_lock(&s->sock_mu);
    k->deadline_ms = deadline_ms;
    k->partial = partial;
    pthread_mutex_unlock(&s->sock_mu);
}

static uint64_t sock_deadline(const serve *s)
{
    return now_ms() + (uint64_t)s->o.timeout * 1000;
}

/* MHD_OPTION_NOTIFY_CONNECTION: keeps the list of open sockets. MHD calls
 * CLOSED before it closes the descriptor, so the reaper, under sock_mu,
 * never touches a descriptor that has been closed (or reused). */
static void on_connection(void *cls, struct MHD_Connection *c, void **ctx,
                          enum MHD_ConnectionNotificationCode code)
{
    serve *s = cls;
    sv_sock *k = *ctx;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k = em_calloc(1, sizeof *k);
        k->fd = ci ? ci->connect_fd : -1;
        k->deadline_ms = k->fd >= 0 ? sock_deadline(s) : 0;
        pthread_mutex_lock(&s->sock_mu);
        k->next = s->socks;
        if (s->socks)
            s->socks->prev = k;
        s->socks = k;
        pthread_mutex_unlock(&s->sock_mu);
        *ctx = k;
    } else if (k) {
        pthread_mutex_lock(&s->sock_mu);
        if (k->prev)
            k->prev->next = k->next;
        else
            s->socks = k->next;
        if (k->next)
            k->next->prev = k->prev;
        pthread_mutex_unlock(&s->sock_mu);
        free(k);
        *ctx = NULL;
    }
}

/* Closes a socket past its deadline; called with sock_mu held. The
 * connection's thread is only reading (a socket being answered has no
 * deadline), so the 408 cannot mix with another answer; shutdown() wakes
 * that thread, which sees the end of the stream and closes as usual. */
static void sock_expire(serve *s, sv_sock *k)
{
    k->deadline_ms = 0;
    if (k->partial) {
        char msg[128], head[256];
        snprintf(msg, sizeof msg, "the request did not arrive whole within "
                 "%d s (--timeout)", s->o.timeout);
        char *json = sv_error_json(408, msg);
        int n = snprintf(head, sizeof head, "HTTP/1.1 408 Request Timeout\r\n"
                         "Content-Type: application/json\r\nContent-Length: "
                         "%zu\r\nConnection: close\r\n\r\n", strlen(json));
        if (send(k->fd, head, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) == n)
            (void)!send(k->fd, json, strlen(json), MSG_DONTWAIT | MSG_NOSIGNAL);
        free(json);
        if (s->o.log)
            fprintf(stderr, "emerge serve: 408 %s\n", msg);
    }
    shutdown(k->fd, SHUT_RDWR);
}

static void *reaper_main(void *arg)
{
    serve *s = arg;
    pthread_mutex_lock(&s->sock_mu);
    while (!s->reaper_stop) {
        uint64_t now = now_ms();
        long expired = 0;
        for (sv_sock *k = s->socks; k; k = k->next)
            if (k->deadline_ms && k->deadline_ms <= now) {
                expired += k->partial;
                sock_expire(s, k);
            }
        if (expired) {
            pthread_mutex_lock(&s->mu);
            s->st.requests += expired;
            s->st.errors += expired;
            pthread_mutex_unlock(&s->mu);
        }
        /* A quarter second: the deadline is a bound, not a timer. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 250000000;
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&s->reap_cv, &s->sock_mu, &ts);
    }
    pthread_mutex_unlock(&s->sock_mu);
    return NULL;
}

static int reaper_start(serve *s)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->reap_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->sock_mu, NULL);
    if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0)
        return 0;
    pthread_cond_destroy(&s->reap_cv);
    pthread_mutex_destroy(&s->sock_mu);
    return -1;
}

/* After the daemon has stopped: every socket is closed by then. */
static void reaper_stop(serve *s)
{
    pthread_mutex_lock(&s->sock_mu);
    s->reaper_stop = 1;
    pthread_cond_signal(&s->reap_cv);
    pthread_mutex_unlock(&s->sock_mu);
    pthread_join(s->reaper, NULL);
    pthread_cond_destroy(&s->reap_cv);
    pthread_mutex_destroy(&s->sock_mu);
}

/* ---------------------------------------------------------------- HTTP */

static enum MHD_Result reply(serve *s, struct MHD_Connection *c, unsigned status,
                             char *json)
{
    sock_set(s, c, 0, 0); /* answering: the reaper must not write too */
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(json), json, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    pthread_mutex_lock(&s->mu);
    s->st.requests++;
    s->st.errors += status >= 400;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static enum MHD_Result reply_error(serve *s, struct MHD_Connection *c,
                                   unsigned status, const char *msg)
{
    if (s->o.log)
        fprintf(stderr, "emerge serve: %u %s\n", status, msg);
    return reply(s, c, status, sv_error_json(status, msg));
}

static enum MHD_Result do_completion(serve *s, struct MHD_Connection *c,
                                     sv_conn *cn, int chat)
{
    char msg[512];
    if (!backend_can_complete(s->b)) {
        snprintf(msg, sizeof msg, "the '%s' backend cannot answer completions "
                 "(it has no tokenize, token_text and complete ops)",
                 s->b->ops->name);
        return reply_error(s, c, 501, msg);
    }
    sv_req *r = sv_parse_request(s, cn->body.s ? cn->body.s : "", cn->body.len,
                              chat, msg, sizeof msg);
    if (!r)
        return reply_error(s, c, 400, msg);
    /* Waiting for the model is not idleness: MHD would close the
     * connection once the answer is queued if the wait took longer than
     * its timeout. Switching the timeout off and on restarts its clock. */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    submit(s, r);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT,
                              (unsigned)s->o.timeout);
    for (int i = 0; i < r->n_items; i++)
        if (!r->items[i].res.ok) {
            snprintf(msg, sizeof msg, "prompt %d: %s", i, r->items[i].res.error);
            sv_req_free(r);
            return reply_error(s, c, 500, msg);
        }
    pthread_mutex_lock(&s->mu);
    long id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    char *json = sv_answer_json(s, r, id);
    sv_req_free(r);
    return reply(s, c, 200, json);
}

static int route_is(const char *url, const char *path)
{
    /* "/v1/x" or "/x": clients disagree on whether the base has /v1. */
    return !strcmp(url, path) || (!strncmp(url, "/v1", 3) && !strcmp(url + 3, path));
}

/* /tokenize and /detokenize (POST), /tokenizer_info (GET): serve_tok.c.
 * They need no model time, so they are answered on the connection. */
static enum MHD_Result do_tokenizer(serve *s, struct MHD_Connection *c,
                                    sv_conn *cn, const char *url, int post)
{
    int info = route_is(url, "/tokenizer_info");
    if (info == post)
        return reply_error(s, c, 405, info ? "use GET" : "use POST");
    unsigned status = 200;
    const char *body = cn->body.s ? cn->body.s : "";
    char *json = info ? sv_tokenizer_info_json(s, &status)
               : route_is(url, "/tokenize")
                   ? sv_tokenize_json(s, body, cn->body.len, &status)
                   : sv_detokenize_json(s, body, cn->body.len, &status);
    if (status != 200 && s->o.log)
        fprintf(stderr, "emerge serve: %u %s\n", status, json);
    return reply(s, c, status, json);
}

static enum MHD_Result add_len(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value)
{
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* Whether the request carries the API key as "Authorization: Bearer
 * KEY". The digests are compared, in constant time: neither the key's
 * bytes nor its length show in how long a wrong guess takes. */
static int authorized(const serve *s, struct MHD_Connection *c)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7))
        return 0;
    char got[65];
    em_sha256_hex(h + 7, strlen(h + 7), got);
    return CRYPTO_memcmp(got, s->key_sha256, 64) == 0;
}

/* The first call of a request: checks that need only the head. */
static enum MHD_Result on_head(serve *s, struct MHD_Connection *c,
                               const char *url, sv_conn *cn)
{
    if (s->key_sha256[0] && strcmp(url, "/health") && !authorized(s, c)) {
        cn->replied = 1;
        return reply_error(s, c, 401, "missing or wrong API key (send "
                           "\"Authorization: Bearer KEY\")");
    }
    size_t head = strlen(url);
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_len, &head);
    if (head > SV_MAX_HEAD) {
        cn->replied = 1;
        char msg[128];
        snprintf(msg, sizeof msg, "the request line and headers are over %d "
                 "bytes", SV_MAX_HEAD);
        return reply_error(s, c, 431, msg);
    }
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > s->o.max_body) {
        cn->replied = 1;
        return reply_error(s, c, 413, "request body over the server's "
                           "--max-body limit");
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *up,
                                  size_t *up_size, void **con_cls)
{
    (void)version;
    serve *s = cls;
    sv_conn *cn = *con_cls;
    if (!cn->seen) {
        cn->seen = 1;
        return on_head(s, c, url, cn);
    }
    if (*up_size) {
        if (!cn->replied && cn->body.len + *up_size <= s->o.max_body)
            em_buf_put(&cn->body, up, *up_size);
        else
            cn->too_big = 1;
        *up_size = 0;
        return MHD_YES;
    }
    if (cn->replied)
        return MHD_YES;
    cn->replied = 1;
    sock_set(s, c, 0, 0); /* all here: no deadline while it is answered */
    if (cn->too_big)
        return reply_error(s, c, 413, "request body over the server's "
                           "--max-body limit");
    int post = !strcmp(method, "POST"), getm = !strcmp(method, "GET");
    if (route_is(url, "/completions") || route_is(url, "/chat/completions")) {
        if (!post)
            return reply_error(s, c, 405, "use POST");
        return do_completion(s, c, cn, route_is(url, "/chat/completions"));
    }
    if (route_is(url, "/tokenize") || route_is(url, "/detokenize") ||
        route_is(url, "/tokenizer_info"))
        return do_tokenizer(s, c, cn, url, post);
    if (!strcmp(url, "/health") || route_is(url, "/models")) {
        if (!getm)
            return reply_error(s, c, 405, "use GET");
        return reply(s, c, 200, url[1] == 'h' ? em_strdup("{\"status\":\"ok\"}")
                                              : sv_models_json(s));
    }
    char msg[400];
    snprintf(msg, sizeof msg, "no route %.200s (try /v1/completions, "
             "/v1/chat/completions, /v1/models, /tokenize, /detokenize, "
             "/tokenizer_info, /health)", url);
    return reply_error(s, c, 404, msg);
}

/* MHD_OPTION_URI_LOG_CALLBACK: a request line has arrived. Its state is
 * made here (the handler's *con_cls), so that on_completed frees it
 * whether or not MHD ever calls the handler. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    serve *s = cls;
    (void)uri;
    sv_sock *k = sock_of(c);
    if (k) {
        pthread_mutex_lock(&s->sock_mu);
        k->partial = k->deadline_ms != 0;
        pthread_mutex_unlock(&s->sock_mu);
    }
    return em_calloc(1, sizeof(sv_conn));
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    serve *s = cls;
    (void)toe;
    sv_conn *cn = *con_cls;
    /* Keep-alive: the next request has --timeout seconds from now. */
    sock_set(s, c, sock_deadline(s), 0);
    if (!cn)
        return;
    em_buf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
}

/* ------------------------------------------------------------ lifecycle */

static int listen_addr(const char *host, int port, struct sockaddr_storage *ss,
                       int *ipv6, em_err *err)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res)
        return em_errorf(err, "--host '%s': %s", host, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *ipv6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    if (*ipv6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

static int start_http(serve *s, em_err *err)
{
    struct sockaddr_storage ss;
    int ipv6 = 0;
    const char *host = s->o.host ? s->o.host : "127.0.0.1";
    if (listen_addr(host, s->o.port, &ss, &ipv6, err))
        return -1;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_AUTO | (ipv6 ? MHD_USE_IPv6 : 0);
    /* The per-address limit keeps one client from taking every slot; the
     * memory limit leaves room above SV_MAX_HEAD, so that a head a little
     * too large gets emerge's JSON 431 rather than MHD's own page. */
    s->d = MHD_start_daemon(flags, (uint16_t)s->o.port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_conns,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)s->o.max_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->o.timeout,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)SV_MAX_HEAD * 4,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_END);
    if (!s->d)
        return em_errorf(err, "cannot listen on %s:%d (address in use or not "
                         "local?)", host, s->o.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    return 0;
}

static void model_name(serve *s)
{
    const char *n = s->o.model_name, *p = s->o.model_path;
    if (!n) {
        const char *slash = strrchr(p, '/');
        n = slash ? slash + 1 : p;
    }
    s->name = em_strdup(n);
}

static void set_defaults(serve_opts *o)
{
    if (!o->max_body)
        o->max_body = 1 << 20;
    if (o->max_tokens <= 0)
        o->max_tokens = 1024;
    if (o->max_prompts <= 0)
        o->max_prompts = 64;
    if (o->max_conns <= 0)
        o->max_conns = 512;
    if (o->max_per_ip <= 0)
        o->max_per_ip = 64;
    if (o->timeout <= 0)
        o->timeout = 10;
}

/* Each connection holds a descriptor: past the process's limit, accept()
 * would fail and the listen queue stall instead of the limit holding. */
static int check_fds(const serve_opts *o, em_err *err)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)o->max_conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < need)
        return em_errorf(err, "--max-conns %d needs about %llu open files; this "
                         "process may open %llu (raise it with ulimit -n, or "
                         "lower --max-conns)", o->max_conns,
                         (unsigned long long)need, (unsigned long long)rl.rlim_cur);
    return 0;
}

static void stop_worker(serve *s)
{
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->worker, NULL);
}

/* The model as a backend spec: o's backend (native unless named) with
 * the server's threads and context as the spec's options. */
static int open_backend(serve *s, em_err *err)
{
    char threads[16], n_ctx[16];
    snprintf(threads, sizeof threads, "%d", s->o.threads);
    snprintf(n_ctx, sizeof n_ctx, "%d", s->o.n_ctx);
    backend_opt opts[] = {{"threads", threads}, {"n_ctx", n_ctx}};
    backend_spec spec = {.name = s->name,
                         .backend = (char *)(s->o.backend ? s->o.backend : "native"),
                         .path = (char *)s->o.model_path, .opts = opts,
                         .n_opts = 2};
    return backend_open(&spec, &s->b, err);
}

int serve_start(const serve_opts *o, serve **out, em_err *err)
{
    if (o->api_key && !*o->api_key)
        return em_errorf(err, "the API key is empty");
    serve *s = em_calloc(1, sizeof *s);
    s->o = *o;
    if (o->api_key)
        em_sha256_hex(o->api_key, strlen(o->api_key), s->key_sha256);
    s->o.api_key = NULL;
    set_defaults(&s->o);
    model_name(s);
    if (check_fds(&s->o, err) || open_backend(s, err)) {
        free(s->name);
        free(s);
        return -1;
    }
    sv_tok_open(s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
        em_errorf(err, "cannot start the model worker thread");
        goto fail_worker;
    }
    if (reaper_start(s) != 0) {
        em_errorf(err, "cannot start the request deadline thread");
        goto fail_reaper;
    }
    if (start_http(s, err) == 0) {
        *out = s;
        return 0;
    }
    reaper_stop(s);
fail_reaper:
    stop_worker(s);
fail_worker:
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    sv_tok_close(s);
    backend_close(s->b);
    free(s->name);
    free(s);
    return -1;
}

int serve_port(const serve *s)
{
    return s->port;
}

void serve_get_stats(serve *s, serve_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
}

void serve_stop(serve *s)
{
    if (!s)
        return;
    /* Connection threads wait on the worker, so the worker runs until
     * the daemon (and every connection) is gone. */
    MHD_stop_daemon(s->d);
    reaper_stop(s);
    stop_worker(s);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
    sv_tok_close(s);
    backend_close(s->b);
    free(s->name);
    free(s);
}


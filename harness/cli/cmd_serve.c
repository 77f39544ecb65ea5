/*
 * cmd_serve.c - `emerge serve MODEL.gguf`: an OpenAI-compatible server
 * over one model, until SIGINT or SIGTERM.
 *
 * Owns: only the command line; the server is harness/serve/serve.c. Once it
 * listens it prints "emerge serve: listening on http://HOST:PORT/v1" on
 * stderr (with --port 0 that is how a script learns the port).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"
#include "base/common.h"
#include "harness/serve/serve.h"

int cmd_serve(int argc, char **argv);

static const char serve_help[] =
        "usage: emerge serve MODEL [options]\n"
        "\n"
        "MODEL: a GGUF file or a Hugging Face checkpoint directory.\n"
        "Serves the model over HTTP with OpenAI's API: POST /v1/completions\n"
        "(echo + logprobs for scoring), POST /v1/chat/completions, GET\n"
        "/v1/models, GET /health, and vLLM's POST /tokenize, POST /detokenize\n"
        "and GET /tokenizer_info (lm-eval's tokenizer_backend=remote). Runs\n"
        "until SIGINT/SIGTERM.\n"
        "\n"
        "options:\n"
        "  --host H        address to bind (default 127.0.0.1: this machine only);\n"
        "                  any other address needs --api-key-file or --no-auth\n"
        "  --api-key-file FILE\n"
        "                  every route but /health needs \"Authorization: Bearer\n"
        "                  KEY\", KEY the file's first line (compared in constant\n"
        "                  time, never logged; emerge's openai backend sends it\n"
        "                  with api_key_env=VAR)\n"
        "  --no-auth       serve a non-loopback --host without a key\n"
        "  --port N        port (default 8080; 0 picks a free one)\n"
        "  --threads N     model threads (default: online CPUs)\n"
        "  --ctx N         context length (default: the model's, at most 4096)\n"
        "  --max-body B    largest request body in bytes (default 1048576)\n"
        "  --max-tokens N  largest max_tokens a request may ask (default 1024)\n"
        "  --max-prompts N prompts per request (default 64)\n"
        "  --max-conns N   concurrent connections (default 512)\n"
        "  --max-per-ip N  concurrent connections from one client address\n"
        "                  (default 64; over it a connection is closed at once)\n"
        "  --timeout S     seconds a connection may sit idle and a request may take\n"
        "                  to arrive whole, headers and body; a late request gets\n"
        "                  a 408; the model's time is not counted (default 10)\n"
        "  --name NAME     model id shown by /v1/models (default: file name)\n"
        "  --hide-bos      prompts get the BOS emerge's scorer conditions on\n"
        "                  (token ids too, when they lack it) and the echo leaves\n"
        "                  it out: lm-eval's [ctxlen:-1] slice then gives emerge's\n"
        "                  log-likelihoods (a request's add_special_tokens: false\n"
        "                  still means no BOS)\n"
        "  --log           one line per failed request on stderr\n"
        "  --stats         print request and token counts when stopping\n";

enum { OPT_HOST = 256, OPT_NAME, OPT_PORT, OPT_THREADS, OPT_CTX, OPT_MAX_BODY,
       OPT_MAX_TOKENS, OPT_MAX_PROMPTS, OPT_MAX_CONNS, OPT_MAX_PER_IP,
       OPT_TIMEOUT, OPT_LOG, OPT_STATS, OPT_KEY_FILE, OPT_NO_AUTH, OPT_HIDE_BOS };

static const cli_cmd serve_cmd = {"serve", serve_help, (const struct option[]){
    {"host", required_argument, NULL, OPT_HOST},
    {"name", required_argument, NULL, OPT_NAME},
    {"port", required_argument, NULL, OPT_PORT},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"ctx", required_argument, NULL, OPT_CTX},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"max-prompts", required_argument, NULL, OPT_MAX_PROMPTS},
    {"max-conns", required_argument, NULL, OPT_MAX_CONNS},
    {"max-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"log", no_argument, NULL, OPT_LOG},
    {"stats", no_argument, NULL, OPT_STATS},
    {"api-key-file", required_argument, NULL, OPT_KEY_FILE},
    {"no-auth", no_argument, NULL, OPT_NO_AUTH},
    {"hide-bos", no_argument, NULL, OPT_HIDE_BOS}, {0}}, 0};

/* The integer options: their range and where the value goes. */
typedef struct int_opt {
    int key;
    const char *flag;
    long lo, hi;
} int_opt;

static const int_opt int_opts[] = {
    {OPT_PORT, "--port", 0, 65535}, {OPT_THREADS, "--threads", 0, 256},
    {OPT_CTX, "--ctx", 0, 1 << 20}, {OPT_MAX_BODY, "--max-body", 64, 1L << 30},
    {OPT_MAX_TOKENS, "--max-tokens", 1, 1 << 20},
    {OPT_MAX_PROMPTS, "--max-prompts", 1, 1 << 16},
    {OPT_MAX_CONNS, "--max-conns", 1, 1 << 16},
    {OPT_MAX_PER_IP, "--max-per-ip", 1, 1 << 16},
    {OPT_TIMEOUT, "--timeout", 1, 3600},
};

typedef struct serve_args {
    serve_opts *o;
    int *stats;
    const char *key_file;
    int no_auth;
} serve_args;

static void set_int(serve_opts *o, int key, long n)
{
    switch (key) {
    case OPT_PORT: o->port = (int)n; break;
    case OPT_THREADS: o->threads = (int)n; break;
    case OPT_CTX: o->n_ctx = (int)n; break;
    case OPT_MAX_BODY: o->max_body = (size_t)n; break;
    case OPT_MAX_TOKENS: o->max_tokens = (int)n; break;
    case OPT_MAX_PROMPTS: o->max_prompts = (int)n; break;
    case OPT_MAX_CONNS: o->max_conns = (int)n; break;
    case OPT_MAX_PER_IP: o->max_per_ip = (int)n; break;
    default: o->timeout = (int)n; break;
    }
}

static int serve_opt(void *ctx, int key, const char *v)
{
    serve_args *a = ctx;
    if (key == OPT_HOST || key == OPT_NAME)
        *(key == OPT_HOST ? &a->o->host : &a->o->model_name) = v;
    else if (key == OPT_LOG)
        a->o->log = 1;
    else if (key == OPT_STATS)
        *a->stats = 1;
    else if (key == OPT_KEY_FILE)
        a->key_file = v;
    else if (key == OPT_NO_AUTH)
        a->no_auth = 1;
    else if (key == OPT_HIDE_BOS)
        a->o->hide_bos = 1;
    for (size_t k = 0; k < sizeof int_opts / sizeof int_opts[0]; k++) {
        const int_opt *io = &int_opts[k];
        long n;
        if (io->key != key)
            continue;
        if (cli_long(v, &n) || n < io->lo || n > io->hi) {
            fprintf(stderr, "emerge serve: %s needs an integer in [%ld, %ld], "
                    "got '%s'\n", io->flag, io->lo, io->hi, v);
            return -1;
        }
        set_int(a->o, key, n);
    }
    return 0;
}

/* Addresses only this machine can reach. */
static int is_loopback(const char *host)
{
    return !host || !strncmp(host, "127.", 4) || !strcmp(host, "::1") ||
           !strcmp(host, "localhost");
}

/* The key: the file's first line without its line end (malloc'd in
 * *key). The key itself never appears in a message. */
static int read_key(const char *path, char **key)
{
    em_err err;
    size_t len;
    if (em_read_file(path, key, &len, &err)) {
        fprintf(stderr, "emerge serve: --api-key-file: %s\n", err.msg);
        return -1;
    }
    (*key)[strcspn(*key, "\r\n")] = '\0';
    if (!**key) {
        fprintf(stderr, "emerge serve: --api-key-file %s: the first line is "
                "empty (it must hold the key)\n", path);
        free(*key);
        *key = NULL;
        return -1;
    }
    return 0;
}

/* Binding beyond loopback without a key opens the model to the network:
 * refused unless asked for by name. */
static int check_auth(serve_args *a, char **key)
{
    if (a->key_file && a->no_auth)
        return cli_usage_error(&serve_cmd, 0, "--api-key-file and --no-auth "
                               "exclude each other");
    if (!a->key_file && !a->no_auth && !is_loopback(a->o->host))
        return cli_usage_error(&serve_cmd, 0, "--host %s is reachable from "
                               "other machines: give --api-key-file FILE "
                               "(clients send \"Authorization: Bearer KEY\") "
                               "or --no-auth", a->o->host);
    if (a->key_file && read_key(a->key_file, key))
        return CLI_BAD;
    a->o->api_key = *key;
    return CLI_OK;
}

/* CLI_OK with o filled in (o->api_key malloc'd in *key), else what
 * cli_parse ended in. */
static int parse_args(int argc, char **argv, serve_opts *o, int *stats,
                      char **key)
{
    serve_args a = {o, stats, NULL, 0};
    int first;
    o->port = 8080;
    int p = cli_parse(&serve_cmd, argc, argv, serve_opt, &a, &first);
    if (p)
        return p;
    if (first == argc)
        return cli_usage_error(&serve_cmd, 1, "no model given");
    if (first + 1 < argc)
        return cli_usage_error(&serve_cmd, 0, "one model only ('%s' and '%s')",
                               argv[first], argv[first + 1]);
    o->model_path = argv[first];
    return check_auth(&a, key);
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {0};
    char *key = NULL;
    int stats = 0, p = parse_args(argc, argv, &o, &stats, &key);
    if (p)
        return cli_exit(p);
    /* Blocked before any thread starts, so every thread inherits the mask
     * and the signals wait for sigwait() below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    serve *s;
    em_err err;
    int rc = serve_start(&o, &s, &err);
    free(key); /* the server keeps only its digest */
    if (rc) {
        fprintf(stderr, "emerge serve: %s\n", err.msg);
        return 2;
    }
    const char *host = o.host ? o.host : "127.0.0.1";
    fprintf(stderr, "emerge serve: listening on http://%s%s%s:%d/v1\n",
            strchr(host, ':') ? "[" : "", host, strchr(host, ':') ? "]" : "",
            serve_port(s));
    fflush(stderr);
    int sig = 0;
    sigwait(&set, &sig);
    serve_stats st;
    serve_get_stats(s, &st);
    serve_stop(s);
    if (stats)
        fprintf(stderr, "emerge serve: %ld requests (%ld errors), %ld prompts in "
                "%ld batches (%ld as shared-prefix branches), %ld prompt tokens, "
                "%ld completion tokens\n", st.requests, st.errors, st.prompts,
                st.batches, st.branched, st.prompt_tokens, st.completion_tokens);
    return 0;
}

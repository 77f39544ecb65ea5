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
#include "base/common.h"
#include "harness/serve/serve.h"

int cmd_serve(int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(f,
        "usage: emerge serve MODEL.gguf [options]\n"
        "\n"
        "Serves the model over HTTP with OpenAI's API: POST /v1/completions\n"
        "(echo + logprobs for scoring), POST /v1/chat/completions, GET\n"
        "/v1/models and GET /health. Runs until SIGINT/SIGTERM.\n"
        "\n"
        "options:\n"
        "  --host H        address to bind (default 127.0.0.1: this machine only)\n"
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
        "  --log           one line per failed request on stderr\n"
        "  --stats         print request and token counts when stopping\n");
}

static int int_arg(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end;
    long n = v ? strtol(v, &end, 10) : 0;
    if (!v || end == v || *end || n < lo || n > hi) {
        fprintf(stderr, "emerge serve: %s needs an integer in [%ld, %ld], got "
                "'%s'\n", flag, lo, hi, v ? v : "");
        return -1;
    }
    *out = n;
    return 0;
}

static int parse_args(int argc, char **argv, serve_opts *o, int *stats)
{
    o->port = 8080;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--log")) {
            o->log = 1;
            continue;
        }
        if (!strcmp(a, "--stats")) {
            *stats = 1;
            continue;
        }
        if (a[0] != '-') {
            if (o->model_path) {
                fprintf(stderr, "emerge serve: one model only ('%s' and '%s')\n",
                        o->model_path, a);
                return -1;
            }
            o->model_path = a;
            continue;
        }
        i++;
        if (!strcmp(a, "--host") || !strcmp(a, "--name")) {
            if (!v) {
                fprintf(stderr, "emerge serve: %s needs a value\n", a);
                return -1;
            }
            *(a[2] == 'h' ? &o->host : &o->model_name) = v;
        } else if (!strcmp(a, "--port")) {
            if (int_arg(a, v, 0, 65535, &n)) return -1;
            o->port = (int)n;
        } else if (!strcmp(a, "--threads")) {
            if (int_arg(a, v, 0, 256, &n)) return -1;
            o->threads = (int)n;
        } else if (!strcmp(a, "--ctx")) {
            if (int_arg(a, v, 0, 1 << 20, &n)) return -1;
            o->n_ctx = (int)n;
        } else if (!strcmp(a, "--max-body")) {
            if (int_arg(a, v, 64, 1L << 30, &n)) return -1;
            o->max_body = (size_t)n;
        } else if (!strcmp(a, "--max-tokens")) {
            if (int_arg(a, v, 1, 1 << 20, &n)) return -1;
            o->max_tokens = (int)n;
        } else if (!strcmp(a, "--max-prompts")) {
            if (int_arg(a, v, 1, 1 << 16, &n)) return -1;
            o->max_prompts = (int)n;
        } else if (!strcmp(a, "--max-conns")) {
            if (int_arg(a, v, 1, 1 << 16, &n)) return -1;
            o->max_conns = (int)n;
        } else if (!strcmp(a, "--max-per-ip")) {
            if (int_arg(a, v, 1, 1 << 16, &n)) return -1;
            o->max_per_ip = (int)n;
        } else if (!strcmp(a, "--timeout")) {
            if (int_arg(a, v, 1, 3600, &n)) return -1;
            o->timeout = (int)n;
        } else {
            fprintf(stderr, "emerge serve: unknown option '%s'\n", a);
            usage(stderr);
            return -1;
        }
    }
    if (!o->model_path) {
        usage(stderr);
        return -1;
    }
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    serve_opts o = {0};
    int stats = 0;
    if (parse_args(argc, argv, &o, &stats))
        return 2;
    /* Blocked before any thread starts, so every thread inherits the mask
     * and the signals wait for sigwait() below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    serve *s;
    em_err err;
    if (serve_start(&o, &s, &err)) {
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

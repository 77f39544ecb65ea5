/*
 * cmd_models.c - `emerge models`: what a family file can run models on.
 *
 * Owns the `models` subcommand. `emerge models --devices` lists the CUDA
 * devices a family member may name with `device: cuda:N` (backend: cuda),
 * or says in one line why there are none: no plugin (libemerge_cuda.so,
 * built when the Makefile finds nvcc), no CUDA runtime, driver or device.
 * That is an answer, not a failure: it exits 0. `emerge models --plugin`
 * prints the path of the CUDA plugin this emerge loads (exit 0) or why it
 * cannot (exit 1). `emerge models --backends` lists the registered
 * backend names. `emerge models --probe URL[,key=value...]` checks an
 * OpenAI-compatible server's log-prob semantics before a sweep relies on
 * them (backends/openai_probe.c): exit 0 all good, 1 the server would
 * give wrong (or no) log-likelihoods, 2 usage or connection errors.
 */
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cuda_backend.h"
#include "backends/openai.h"
#include "harness/family.h"
#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"

static const char models_help[] =
    "usage: emerge models --devices | --plugin | --backends\n"
    "       emerge models --probe URL[,model=NAME][,api_key_env=VAR][,...]\n"
    "  --devices   list CUDA devices (for `backend: cuda` with "
    "`device: cuda:N`)\n"
    "  --plugin    the CUDA plugin this emerge loads "
    "(EMERGE_CUDA_PLUGIN overrides the search)\n"
    "  --backends  list the backends this build registers\n"
    "  --probe URL check an OpenAI-compatible server (e.g.\n"
    "              http://127.0.0.1:8080/v1) before a sweep: prompt log-probs\n"
    "              by echo or prompt_logprobs, every prompt token covered, BOS,\n"
    "              text offsets, the same request twice, one pass against full\n"
    "              minus prefix; one verdict line per check. Options as for an\n"
    "              openai member (model=, api_key_env=, logprobs_mode=, ...).\n"
    "              Exit 0: all good; 1: its log-likelihoods would be wrong or\n"
    "              missing; 2: usage or connection error\n";

enum { OPT_DEVICES = 256, OPT_PLUGIN, OPT_BACKENDS, OPT_PROBE };

typedef struct models_ask {
    int what;
    const char *probe;   /* --probe's URL[,options] */
} models_ask;

static const cli_cmd models_cmd = {"models", models_help, (const struct option[]){
    {"devices", no_argument, NULL, OPT_DEVICES},
    {"plugin", no_argument, NULL, OPT_PLUGIN},
    {"backends", no_argument, NULL, OPT_BACKENDS},
    {"probe", required_argument, NULL, OPT_PROBE}, {0}}, 0};

/* The one question asked; a second is a usage error. */
static int pick(void *ctx, int key, const char *v)
{
    models_ask *a = ctx;
    if (a->what) {
        fprintf(stderr, "emerge models: one of --devices, --plugin, "
                "--backends and --probe at a time\n");
        return -1;
    }
    a->what = key;
    if (key == OPT_PROBE)
        a->probe = v;
    return 0;
}

static int list_devices(void)
{
    const char *why = NULL;
    int n = cuda_device_count(&why);
    if (n == 0) {
        printf("no CUDA devices: %s\n", why ? why : "none found");
        return 0;
    }
    for (int i = 0; i < n; i++) {
        cuda_device_info d;
        em_err err;
        if (cuda_device_get(i, &d, &err)) {
            fprintf(stderr, "emerge models: %s\n", err.msg);
            return 2;
        }
        printf("cuda:%d  %s  sm_%d%d  %d SMs  %.1f GiB (%.1f GiB free)",
               i, d.name, d.cc_major, d.cc_minor, d.sms,
               (double)d.mem_total / (1 << 30), (double)d.mem_free / (1 << 30));
        if (d.mem_bw > 0)
            printf("  %.0f GB/s peak", d.mem_bw / 1e9);
        printf("\n");
    }
    return 0;
}

static int show_plugin(void)
{
    const cuda_plugin *p;
    const char *path;
    em_err err;
    if (cuda_plugin_load(&p, &path, &err)) {
        fprintf(stderr, "emerge models: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", path);
    return 0;
}

static int list_backends(void)
{
    for (const char *const *n = backend_names(); *n; n++)
        printf("%s\n", *n);
    return 0;
}

/* --probe URL[,options]: a one-member openai family; retries kept short
 * (a probe should answer in seconds) unless the options say otherwise. */
static int probe_server(const char *arg)
{
    em_buf spec = {0};
    em_buf_printf(&spec, "openai:%s", arg);
    if (!strstr(arg, "max_retries="))
        em_buf_puts(&spec, ",max_retries=1");
    if (!strstr(arg, "backoff="))
        em_buf_puts(&spec, ",backoff=0.2");
    family *f = NULL;
    em_err err = {{0}};
    int rc = strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8)
                 ? em_errorf(&err, "--probe wants an http:// or https:// URL, "
                             "got '%s'", arg)
                 : family_from_spec(spec.s, &f, &err);
    if (rc == 0)
        rc = openai_probe(&f->members[0].spec, stdout, &err);
    if (rc < 0)
        fprintf(stderr, "emerge models: %s\n", err.msg);
    family_free(f);
    em_buf_free(&spec);
    return rc < 0 ? 2 : rc;
}

int cmd_models(int argc, char **argv)
{
    models_ask a = {0};
    int first, p = cli_parse(&models_cmd, argc, argv, pick, &a, &first);
    int what = a.what;
    if (p)
        return cli_exit(p);
    if (first < argc)
        return cli_usage_error(&models_cmd, 1, "unexpected argument '%s'",
                               argv[first]);
    if (what == OPT_DEVICES)
        return list_devices();
    if (what == OPT_PLUGIN)
        return show_plugin();
    if (what == OPT_BACKENDS)
        return list_backends();
    if (what == OPT_PROBE)
        return probe_server(a.probe);
    return cli_usage_error(&models_cmd, 1, "say what to list");
}

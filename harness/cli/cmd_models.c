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
 * backend names.
 */
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cuda_backend.h"
#include "harness/cli/cli.h"
#include "harness/cli/cliargs.h"

static const char models_help[] =
    "usage: emerge models --devices | --plugin | --backends\n"
    "  --devices   list CUDA devices (for `backend: cuda` with "
    "`device: cuda:N`)\n"
    "  --plugin    the CUDA plugin this emerge loads "
    "(EMERGE_CUDA_PLUGIN overrides the search)\n"
    "  --backends  list the backends this build registers\n";

enum { OPT_DEVICES = 256, OPT_PLUGIN, OPT_BACKENDS };

static const cli_cmd models_cmd = {"models", models_help, (const struct option[]){
    {"devices", no_argument, NULL, OPT_DEVICES},
    {"plugin", no_argument, NULL, OPT_PLUGIN},
    {"backends", no_argument, NULL, OPT_BACKENDS}, {0}}, 0};

/* The one question asked; a second is a usage error. */
static int pick(void *ctx, int key, const char *v)
{
    (void)v;
    int *what = ctx;
    if (*what) {
        fprintf(stderr, "emerge models: one of --devices, --plugin and "
                "--backends at a time\n");
        return -1;
    }
    *what = key;
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

int cmd_models(int argc, char **argv)
{
    int what = 0, first, p = cli_parse(&models_cmd, argc, argv, pick, &what, &first);
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
    return cli_usage_error(&models_cmd, 1, "say what to list");
}

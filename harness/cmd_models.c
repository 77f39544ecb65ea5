/*
 * cmd_models.c - `emerge models`: what a family file can run models on.
 *
 * Owns the `models` subcommand. `emerge models --devices` lists the CUDA
 * devices a family member may name with `device: cuda:N` (backend: cuda),
 * or says why there are none: no device or driver, or a build without
 * CUDA (the Makefile builds the cuda backend when it finds nvcc).
 * `emerge models --backends` lists the registered backend names.
 */
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "harness/cli.h"
#ifdef EMERGE_CUDA
#include "backends/cuda/cuda_backend.h"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: emerge models --devices | --backends\n"
               "  --devices   list CUDA devices (for `backend: cuda` with "
               "`device: cuda:N`)\n"
               "  --backends  list the backends this build registers\n");
}

static int list_devices(void)
{
#ifdef EMERGE_CUDA
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
#else
    printf("no CUDA devices: this emerge was built without CUDA "
           "(make CUDA=1 with nvcc installed)\n");
    return 0;
#endif
}

int cmd_models(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "--devices"))
        return list_devices();
    if (argc == 2 && !strcmp(argv[1], "--backends")) {
        for (const char *const *n = backend_names(); *n; n++)
            printf("%s\n", *n);
        return 0;
    }
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}

/*
 * cuda_plugin.h - the boundary between emerge and libemerge_cuda.so, the
 * shared object that holds everything calling the CUDA runtime.
 *
 * Owns: the plugin's one entry point and the table of functions it
 * returns (device list, building and freeing the cuda_ops of a GPU, the
 * cuBLAS reference timing of the benchmark), and the loader's interface.
 *
 * Why a plugin: linking cudart and cuBLAS into every program cost every
 * CPU-only run ~160 MiB of resident memory at start and made the binary
 * refuse to start where those libraries are missing. Now emerge, its
 * library and its tests link none of them; the first use of the cuda
 * backend dlopens the plugin (cuda_load.c), which pulls in cudart and
 * cuBLAS through its own rpath.
 *
 * Both sides compile this header, cuda_engine.h (cuda_ops) and
 * base/common.h (em_err); the table carries the ABI version and the
 * sizes of the structs that cross the boundary, so a plugin left over
 * from an older build is refused with a message instead of crashing.
 * Bump CUDA_PLUGIN_ABI whenever a struct here or cuda_ops changes.
 */
#ifndef EMERGE_CUDA_PLUGIN_H
#define EMERGE_CUDA_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "backends/engine/cuda/cuda_engine.h"
#include "base/common.h"

#define CUDA_PLUGIN_ABI 1
#define CUDA_PLUGIN_FILE "libemerge_cuda.so"
#define CUDA_PLUGIN_ENTRY "emerge_cuda_plugin"

typedef struct cuda_device_info {
    char name[256];
    int cc_major, cc_minor;
    size_t mem_total, mem_free;
    int sms;
    double mem_bw;      /* peak memory bandwidth, bytes/s (0: unknown) */
} cuda_device_info;

typedef struct cuda_plugin {
    int abi;            /* CUDA_PLUGIN_ABI the plugin was built with */
    size_t ops_size, err_size, info_size;   /* sizeof on the plugin's side */
    /* Visible devices; 0 with *why (a static string) when none. */
    int (*device_count)(const char **why);
    int (*device_get)(int i, cuda_device_info *info, em_err *err);
    /* The device operations of GPU `device`; build/free pair. */
    int (*ops_build)(int device, cuda_ops **out, em_err *err);
    void (*ops_free)(cuda_ops *o);
    /* Benchmark reference: best seconds of one cuBLAS GEMM of
     * (T x n_in) x (n_in x n_out) on o's device, F32 or F16 inputs with
     * F32 accumulation; -1 when the buffers cannot be had. */
    double (*gemm_seconds)(cuda_ops *o, int f32, int64_t n_in, int64_t n_out,
                           int T);
} cuda_plugin;

/* The entry point: the table, or NULL when abi_version is not the one the
 * plugin was built for. */
typedef const cuda_plugin *(*cuda_plugin_entry_fn)(int abi_version);

/* Loads the plugin once per process (cuda_load.c); later calls return the
 * same table. Search order, first hit wins:
 *   1. $EMERGE_CUDA_PLUGIN (a file path; when set, nothing else is tried);
 *   2. D/libemerge_cuda.so        D = directory of /proc/self/exe
 *   3. D/build/rel/libemerge_cuda.so   (./emerge in the repository root)
 *   4. D/../rel/libemerge_cuda.so      (build/asan/emerge)
 *   5. D/../../rel/libemerge_cuda.so   (programs in build/<v>/tests, build/rel/bench)
 *   6. D/../lib/emerge/libemerge_cuda.so  (installed: PREFIX/bin/emerge)
 * A failure is not remembered, so a later call searches again. *path (if
 * not NULL) gets the file that was loaded. */
int cuda_plugin_load(const cuda_plugin **out, const char **path, em_err *err);

#endif

/*
 * cuda_load.c - finding and loading the CUDA plugin (libemerge_cuda.so),
 * and the registered "cuda" backend on top of it.
 *
 * Owns: the search for the plugin (order in cuda_plugin.h), the one
 * dlopen per process, the checks that the plugin was built against this
 * emerge (ABI version and struct sizes), and the functions of
 * cuda_backend.h that reach a GPU (device list, cuda_ops of a GPU,
 * benchmark GEMM), each of which fails with the loader's message when
 * there is no plugin.
 *
 * Why dlopen: this file is in every build, with or without nvcc, and
 * links nothing of CUDA; only a program that opens the cuda backend or
 * lists devices pays for cudart and cuBLAS. A loaded plugin is never
 * closed: the CUDA runtime tears itself down at process exit, and
 * unloading it earlier would run that teardown against live contexts.
 */
#include "backends/cuda_backend.h"
#include "backends/engine/cuda/cuda_plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static const cuda_plugin *loaded;       /* set once, never cleared */
static char loaded_path[PATH_MAX];
static char load_why[EM_ERR_MAX];       /* cuda_device_count's *why */

/* Opens one candidate: 0 loaded, 1 no file there, -1 error in err. */
static int try_open(const char *path, em_err *err)
{
    if (access(path, F_OK) != 0)
        return 1;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return em_errorf(err, "cuda backend: cannot load %s: %s", path,
                         dlerror());
    cuda_plugin_entry_fn entry;
    /* POSIX guarantees a dlsym result converts to a function pointer. */
    *(void **)&entry = dlsym(h, CUDA_PLUGIN_ENTRY);
    if (!entry) {
        dlclose(h);
        return em_errorf(err, "cuda backend: %s has no symbol %s: not an "
                         "emerge CUDA plugin", path, CUDA_PLUGIN_ENTRY);
    }
    const cuda_plugin *p = entry(CUDA_PLUGIN_ABI);
    if (!p || p->abi != CUDA_PLUGIN_ABI || p->ops_size != sizeof(cuda_ops) ||
        p->err_size != sizeof(em_err) ||
        p->info_size != sizeof(cuda_device_info)) {
        dlclose(h);
        return em_errorf(err, "cuda backend: %s was built for another "
                         "version of emerge (plugin ABI %d expected); "
                         "rebuild it with make", path, CUDA_PLUGIN_ABI);
    }
    loaded = p;
    snprintf(loaded_path, sizeof loaded_path, "%s", path);
    return 0;
}

/* The directory of the running program, without the trailing slash. */
static int exe_dir(char *dir, size_t n, em_err *err)
{
    ssize_t k = readlink("/proc/self/exe", dir, n - 1);
    char *slash;
    if (k <= 0 || (dir[k] = '\0', !(slash = strrchr(dir, '/'))))
        return em_errorf(err, "cuda backend: cannot read /proc/self/exe to "
                         "find %s; set EMERGE_CUDA_PLUGIN to its path",
                         CUDA_PLUGIN_FILE);
    *slash = '\0';
    return 0;
}

static int search(em_err *err)
{
    const char *env = getenv("EMERGE_CUDA_PLUGIN");
    if (env && *env) {
        /* dlopen searches the library path for a name without a slash;
         * the variable names a file, so a bare name is in the cwd. */
        char rel[PATH_MAX];
        if (!strchr(env, '/')) {
            snprintf(rel, sizeof rel, "./%s", env);
            env = rel;
        }
        int rc = try_open(env, err);
        if (rc > 0)
            return em_errorf(err, "cuda backend: %s not found (searched %s, "
                             "from EMERGE_CUDA_PLUGIN)", CUDA_PLUGIN_FILE, env);
        return rc;
    }
    /* Where the Makefile puts it relative to the programs it builds:
     * ./emerge, build/asan/emerge, build/<v>/tests/ and build/rel/bench/,
     * and where `make install` puts it: PREFIX/bin/emerge finds
     * PREFIX/lib/emerge/ (levels up from the program's directory, then a
     * subdirectory). */
    static const struct { int up; const char *sub; } where[] = {
        {0, ""}, {0, "/build/rel"}, {1, "/rel"}, {2, "/rel"},
        {1, "/lib/emerge"},
    };
    char dir[PATH_MAX], path[PATH_MAX + 64];
    if (exe_dir(dir, sizeof dir, err))
        return -1;
    em_buf searched = {0};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        size_t len = strlen(dir);
        for (int u = 0; u < where[i].up; u++) /* "/a/b" -> "/a" -> "" */
            while (len > 0 && dir[--len] != '/')
                ;
        snprintf(path, sizeof path, "%.*s%s/%s", (int)len, dir, where[i].sub,
                 CUDA_PLUGIN_FILE);
        int rc = try_open(path, err);
        if (rc <= 0) {
            em_buf_free(&searched);
            return rc;
        }
        em_buf_printf(&searched, "%s%s", i ? ", " : "", path);
    }
    em_errorf(err, "cuda backend: %s not found (searched %s; build with "
              "nvcc: make CUDA=1, or set EMERGE_CUDA_PLUGIN)",
              CUDA_PLUGIN_FILE, searched.s);
    em_buf_free(&searched);
    return -1;
}

int cuda_plugin_load(const cuda_plugin **out, const char **path, em_err *err)
{
    pthread_mutex_lock(&load_lock);
    int rc = loaded ? 0 : search(err);
    if (rc == 0) {
        *out = loaded;
        if (path)
            *path = loaded_path;
    }
    pthread_mutex_unlock(&load_lock);
    return rc;
}

/* The table of an already loaded plugin (only called with objects that
 * came from it). */
static const cuda_plugin *plugin_now(void)
{
    pthread_mutex_lock(&load_lock);
    const cuda_plugin *p = loaded;
    pthread_mutex_unlock(&load_lock);
    return p;
}

/* ------------------------------------------------- cuda_backend.h API */

int cuda_device_count(const char **why)
{
    const cuda_plugin *p;
    em_err err;
    if (cuda_plugin_load(&p, NULL, &err)) {
        pthread_mutex_lock(&load_lock);
        snprintf(load_why, sizeof load_why, "%s", err.msg);
        pthread_mutex_unlock(&load_lock);
        if (why)
            *why = load_why;
        return 0;
    }
    return p->device_count(why);
}

int cuda_device_get(int i, cuda_device_info *info, em_err *err)
{
    const cuda_plugin *p;
    if (cuda_plugin_load(&p, NULL, err))
        return -1;
    return p->device_get(i, info, err);
}

int cuda_gpu_ops_build(int device, cuda_ops **out, em_err *err)
{
    const cuda_plugin *p;
    if (cuda_plugin_load(&p, NULL, err))
        return -1;
    return p->ops_build(device, out, err);
}

void cuda_gpu_ops_free(cuda_ops *o)
{
    if (o)
        plugin_now()->ops_free(o);
}

double cuda_gemm_seconds(cuda_ops *o, int f32, int64_t n_in, int64_t n_out,
                         int T)
{
    return plugin_now()->gemm_seconds(o, f32, n_in, n_out, T);
}

/* ------------------------------------------------------------- backend */

/* "cuda:N" or "N" (default 0). */
static int parse_device(const char *v, int *dev, em_err *err)
{
    *dev = 0;
    if (!v)
        return 0;
    const char *d = !strncmp(v, "cuda:", 5) ? v + 5 : v;
    char *end;
    long n = strtol(d, &end, 10);
    if (end == d || *end || n < 0 || n > 1024)
        return em_errorf(err, "option 'device': '%s' is not cuda:N", v);
    *dev = (int)n;
    return 0;
}

static int gpu_open(const backend_spec *spec, void **state, backend_info *info,
                    em_err *err)
{
    int dev;
    const cuda_plugin *p;
    cuda_ops *o;
    if (parse_device(backend_spec_opt(spec, "device"), &dev, err) ||
        cuda_plugin_load(&p, NULL, err) || p->ops_build(dev, &o, err))
        return -1;
    return cuda_backend_open(spec, o, p->ops_free, state, info, err);
}

const backend_ops backend_cuda_ops = {
    .name = "cuda",
    .open = gpu_open,
    .loglikelihood = cuda_backend_loglikelihood,
    .generate = cuda_backend_generate,
    .close = cuda_backend_close,
};

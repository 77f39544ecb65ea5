/*
 * identity.c - model identity: content hashes of model files and
 * directories (see identity.h for the definition).
 */
#include "harness/identity.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Reads of 8 MiB: the per-call cost vanishes against hashing, and the
 * buffer is small next to any model. Measured on a 1 GB file in the page
 * cache, 4-16 MiB reads were equally fast and mmap about half as fast
 * (page faults). */
#define IDENTITY_CHUNK (8u << 20)
/* A hash that takes longer than this gets a note on stderr, so a user
 * knows why start-up waits. */
#define IDENTITY_NOTE_AFTER_S 1.0
/* A file whose ctime is this recent is hashed but not cached: filesystem
 * timestamps are coarse (a clock tick, a second on some), so a rewrite
 * right after our read could leave every stat field as it was. Git calls
 * this the racy-clean problem. */
#define IDENTITY_RACY_NS 1000000000LL
/* Directory models nest a level or two; a symbolic link loop would not
 * end. */
#define IDENTITY_MAX_DEPTH 8

/* ---- one file ------------------------------------------------------------ */

static long long ns_of(struct timespec t)
{
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int same_file_state(const struct stat *a, const struct stat *b)
{
    return a->st_size == b->st_size && a->st_ino == b->st_ino &&
           a->st_dev == b->st_dev && ns_of(a->st_mtim) == ns_of(b->st_mtim) &&
           ns_of(a->st_ctim) == ns_of(b->st_ctim);
}

static int is_racy(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return ns_of(now) - ns_of(st->st_ctim) < IDENTITY_RACY_NS;
}

static void size_text(char *buf, size_t n, long long bytes)
{
    if (bytes >= 1000000000LL)
        snprintf(buf, n, "%.1f GB", (double)bytes / 1e9);
    else
        snprintf(buf, n, "%.0f MB", (double)bytes / 1e6);
}

/* Streams fd through SHA-256. st is the file's state when opened; if it
 * differs afterwards, the bytes read may be a mix of two versions. */
static int hash_fd(int fd, const char *path, const struct stat *st,
                   char hex[65], em_err *err)
{
    unsigned char *buf = malloc(IDENTITY_CHUNK);
    if (!buf)
        return em_errorf(err, "%s: out of memory for hashing", path);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    em_sha256 *h = em_sha256_new();
    double t0 = em_now();
    int noted = 0, rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, IDENTITY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = em_errorf(err, "%s: read: %s", path, strerror(errno));
            break;
        }
        if (n == 0)
            break;
        em_sha256_update(h, buf, (size_t)n);
        if (!noted && em_now() - t0 > IDENTITY_NOTE_AFTER_S) {
            char sz[32];
            size_text(sz, sizeof sz, (long long)st->st_size);
            const char *base = strrchr(path, '/');
            fprintf(stderr, "emerge: hashing %s (%s) to identify the model "
                    "...\n", base ? base + 1 : path, sz);
            noted = 1;
        }
    }
    em_sha256_final(h, hex);
    free(buf);
    struct stat after;
    if (rc == 0 && (fstat(fd, &after) != 0 || !same_file_state(st, &after)))
        rc = em_errorf(err, "%s: changed while it was being hashed; run "
                       "again once it is written", path);
    return rc;
}

/* The key a file's hash is cached under: its real path, so that two
 * spellings of one path share the row. */
static int cache_key(const char *path, char **key, em_err *err)
{
    *key = realpath(path, NULL);
    if (!*key)
        return em_errorf(err, "%s: %s", path, strerror(errno));
    return 0;
}

int identity_file_sha256(const char *path, store *cache, char hex[65],
                         em_err *err)
{
    /* O_NONBLOCK: a FIFO given as a model must fail below, not hang
     * here; reads of a regular file ignore the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return em_errorf(err, "%s: cannot open model: %s", path, strerror(errno));
    struct stat st;
    char *key = NULL;
    int found = 0, rc = 0;
    if (fstat(fd, &st) != 0)
        rc = em_errorf(err, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = em_errorf(err, "%s: not a regular file", path);
    if (rc == 0 && cache)
        rc = cache_key(path, &key, err);
    if (rc == 0 && cache)
        rc = store_file_hash_get(cache, key, &st, hex, &found, err);
    if (rc == 0 && !found)
        rc = hash_fd(fd, path, &st, hex, err);
    if (rc == 0 && !found && cache && !is_racy(&st))
        rc = store_file_hash_put(cache, key, &st, hex, err);
    close(fd);
    free(key);
    return rc;
}

/* ---- a directory ---------------------------------------------------------- */

typedef struct name_list {
    char **v;
    int n;
} name_list;

static void names_push(name_list *l, char *s)
{
    l->v = em_realloc(l->v, sizeof *l->v * (size_t)(l->n + 1));
    l->v[l->n++] = s;
}

static void names_free(name_list *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_prefix_ci(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

/* Entries that do not define the model (identity.h says which). */
static int left_out(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || has_prefix_ci(name, "readme") ||
           has_prefix_ci(name, "license") || has_prefix_ci(name, "licence") ||
           has_prefix_ci(name, "notice") ||
           (n >= 3 && strcasecmp(name + n - 3, ".md") == 0);
}

static int walk(const char *root, const char *rel, int depth, name_list *files,
                name_list *skipped, em_err *err);

/* One directory entry: a file is listed, a directory walked. */
static int walk_entry(const char *root, const char *rel, int depth,
                      name_list *files, name_list *skipped, em_err *err)
{
    char *full = em_malloc(strlen(root) + strlen(rel) + 2);
    sprintf(full, "%s/%s", root, rel);
    struct stat st;
    int rc = 0;
    if (strchr(rel, '\n'))
        rc = em_errorf(err, "%s: a newline in a model file's name", full);
    else if (stat(full, &st) != 0)
        rc = em_errorf(err, "%s: %s", full, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        rc = walk(root, rel, depth + 1, files, skipped, err);
    else if (S_ISREG(st.st_mode))
        names_push(files, em_strdup(rel));
    else
        rc = em_errorf(err, "%s: neither a regular file nor a directory, "
                       "cannot be part of a model", full);
    free(full);
    return rc;
}

static int walk(const char *root, const char *rel, int depth, name_list *files,
                name_list *skipped, em_err *err)
{
    if (depth > IDENTITY_MAX_DEPTH)
        return em_errorf(err, "%s/%s: model directories nest deeper than %d "
                         "(a symbolic link loop?)", root, rel, IDENTITY_MAX_DEPTH);
    em_buf path = {0};
    em_buf_printf(&path, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(path.s);
    int rc = d ? 0 : em_errorf(err, "%s: %s", path.s, strerror(errno));
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        em_buf sub = {0};
        em_buf_printf(&sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        if (left_out(e->d_name))
            names_push(skipped, em_buf_take(&sub));
        else
            rc = walk_entry(root, sub.s, depth, files, skipped, err);
        em_buf_free(&sub);
    }
    if (d)
        closedir(d);
    em_buf_free(&path);
    return rc;
}

static void note_skipped(const char *dir, name_list *skipped)
{
    if (skipped->n == 0)
        return;
    qsort(skipped->v, (size_t)skipped->n, sizeof *skipped->v, by_name);
    em_buf b = {0};
    for (int i = 0; i < skipped->n; i++)
        em_buf_printf(&b, "%s%s", i ? ", " : "", skipped->v[i]);
    fprintf(stderr, "emerge: note: %s: not part of the model's identity "
            "(hidden or documentation): %s\n", dir, b.s);
    em_buf_free(&b);
}

/* Hashes the manifest "<sha256>  <relative path>\n" of files (sorted). */
static int hash_manifest(const char *dir, name_list *files, store *cache,
                         char hex[65], em_err *err)
{
    qsort(files->v, (size_t)files->n, sizeof *files->v, by_name);
    em_sha256 *h = em_sha256_new();
    int rc = 0;
    for (int i = 0; rc == 0 && i < files->n; i++) {
        char *full = em_malloc(strlen(dir) + strlen(files->v[i]) + 2);
        sprintf(full, "%s/%s", dir, files->v[i]);
        char fh[65];
        rc = identity_file_sha256(full, cache, fh, err);
        free(full);
        if (rc != 0)
            break;
        em_sha256_update(h, fh, 64);
        em_sha256_update(h, "  ", 2);
        em_sha256_update(h, files->v[i], strlen(files->v[i]));
        em_sha256_update(h, "\n", 1);
    }
    em_sha256_final(h, hex);
    return rc;
}

int identity_dir_sha256(const char *dir, store *cache, char hex[65], em_err *err)
{
    name_list files = {0}, skipped = {0};
    int rc = walk(dir, "", 0, &files, &skipped, err);
    if (rc == 0 && files.n == 0)
        rc = em_errorf(err, "%s: no model files in the directory", dir);
    if (rc == 0) {
        note_skipped(dir, &skipped);
        rc = hash_manifest(dir, &files, cache, hex, err);
    }
    names_free(&files);
    names_free(&skipped);
    return rc;
}

/* ---- the identity string -------------------------------------------------- */

/* Backends whose path names a local model file or directory: their
 * identity is the content. A new backend that reads local weights
 * belongs here. */
static const char *const content_backends[] = {"native", "cuda", "cuda-host"};

static int reads_local_model(const char *backend)
{
    for (size_t i = 0; i < sizeof content_backends / sizeof *content_backends; i++)
        if (!strcmp(backend, content_backends[i]))
            return 1;
    return 0;
}

static int add_content(cJSON *o, const backend_spec *spec, store *cache,
                       em_err *err)
{
    struct stat st;
    char hex[65];
    if (!spec->path || !*spec->path)
        return em_errorf(err, "the %s backend needs 'path' to a model file",
                         spec->backend);
    if (stat(spec->path, &st) != 0)
        return em_errorf(err, "%s: %s", spec->path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (identity_dir_sha256(spec->path, cache, hex, err) != 0)
            return -1;
        cJSON_AddStringToObject(o, "dir_sha256", hex);
        return 0;
    }
    if (identity_file_sha256(spec->path, cache, hex, err) != 0)
        return -1;
    cJSON_AddStringToObject(o, "sha256", hex);
    return 0;
}

/* Options of a remote model (the openai backend) that say where and how
 * patiently it is asked, never what it answers; model and revision are
 * keys of their own. */
static const char *const remote_transport_opts[] = {
    "base_url", "api_key_env", "concurrency", "timeout", "max_retries",
    "backoff", "model", "revision"};

static int opt_left_out(const backend_spec *spec, const char *key)
{
    if (!strcmp(key, "threads"))
        return 1;
    if (strcmp(spec->backend, "openai"))
        return 0;
    for (size_t i = 0; i < sizeof remote_transport_opts /
                               sizeof *remote_transport_opts; i++)
        if (!strcmp(key, remote_transport_opts[i]))
            return 1;
    return 0;
}

/* An openai member is the model the server names (option model, else the
 * member's name, as the backend sends it) at an optional revision: the
 * same model behind another URL, on another node, is the same model. */
static void add_remote(cJSON *o, const backend_spec *spec)
{
    const char *model = backend_spec_opt(spec, "model");
    const char *rev = backend_spec_opt(spec, "revision");
    cJSON_AddStringToObject(o, "model", model ? model
                                       : spec->name ? spec->name : "default");
    if (rev)
        cJSON_AddStringToObject(o, "revision", rev);
}

/* Options sorted by key, so their order in the family file does not
 * matter; `threads` changes speed, not outputs, and so do an openai
 * member's transport options. */
static void add_opts(cJSON *o, const backend_spec *spec)
{
    int *idx = em_malloc(sizeof *idx * (size_t)(spec->n_opts + 1));
    for (int i = 0; i < spec->n_opts; i++) {
        int j = i;
        while (j > 0 && strcmp(spec->opts[idx[j - 1]].key, spec->opts[i].key) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    cJSON *opts = cJSON_AddObjectToObject(o, "opts");
    for (int i = 0; i < spec->n_opts; i++)
        if (!opt_left_out(spec, spec->opts[idx[i]].key))
            cJSON_AddStringToObject(opts, spec->opts[idx[i]].key,
                                    spec->opts[idx[i]].value);
    free(idx);
}

int identity_of_model(const backend_spec *spec, store *cache, char **out,
                      em_err *err)
{
    *out = NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "backend", spec->backend);
    if (spec->n_params > 0)
        cJSON_AddNumberToObject(o, "params", spec->n_params);
    int rc = 0;
    if (reads_local_model(spec->backend))
        rc = add_content(o, spec, cache, err);
    else if (!strcmp(spec->backend, "openai"))
        add_remote(o, spec);
    else if (spec->path)
        cJSON_AddStringToObject(o, "path", spec->path);
    if (rc == 0) {
        add_opts(o, spec);
        *out = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    return rc != 0 ? em_error_prefix(err, "identity") : 0;
}

/*
 * safetensors.c - reading safetensors files (safetensors.h).
 *
 * Every number in the header is a JSON number (a double to cJSON), so an
 * offset or dimension is accepted only when it is a whole number in
 * [0, 2^53): beyond that a double cannot hold every integer and two
 * different offsets could read as one.
 */
#include "backends/engine/safetensors.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* The reference implementation refuses headers above 100 MB; the
 * largest real ones (thousands of tensors) are a few hundred KB. */
#define ST_HEADER_MAX (100u << 20)
#define ST_INT_MAX 9007199254740992.0 /* 2^53 */

size_t st_dtype_size(const char *dtype)
{
    static const struct { const char *name; size_t size; } types[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
        {"I32", 4}, {"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4},
        {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dtype, types[i].name))
            return types[i].size;
    return 0;
}

/* A whole number in [0, 2^53), or -1. */
static int64_t json_uint(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d < ST_INT_MAX) || d != (double)(int64_t)d)
        return -1;
    return (int64_t)d;
}

static int bad(st_file *f, const char *name, em_err *err, const char *what)
{
    return em_errorf(err, "%s: tensor '%s': %s", f->path, name, what);
}

static int read_shape(st_file *f, st_tensor *t, const cJSON *shape,
                      em_err *err)
{
    if (!cJSON_IsArray(shape))
        return bad(f, t->name, err, "'shape' is not an array");
    int n = cJSON_GetArraySize(shape);
    if (n > ST_MAX_DIMS)
        return bad(f, t->name, err, "'shape' has more than 8 dimensions");
    t->n_dims = n;
    t->n_elem = 1;
    for (int d = 0; d < n; d++) {
        int64_t v = json_uint(cJSON_GetArrayItem(shape, d));
        if (v < 0)
            return bad(f, t->name, err, "'shape' holds a value that is not "
                       "a non-negative integer");
        t->shape[d] = v;
        if (v && t->n_elem > INT64_MAX / 16 / v)
            return bad(f, t->name, err, "'shape' overflows");
        t->n_elem *= v;
    }
    return 0;
}

static int read_offsets(st_file *f, st_tensor *t, const cJSON *off,
                        size_t data_size, em_err *err)
{
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return bad(f, t->name, err, "'data_offsets' is not [begin, end]");
    int64_t b = json_uint(cJSON_GetArrayItem(off, 0));
    int64_t e = json_uint(cJSON_GetArrayItem(off, 1));
    if (b < 0 || e < 0 || b > e)
        return bad(f, t->name, err, "'data_offsets' are not integers "
                   "0 <= begin <= end");
    if ((uint64_t)e > data_size)
        return em_errorf(err, "%s: tensor '%s': data_offsets end %lld is "
                         "past the end of the data (%zu bytes; the file is "
                         "truncated or the header wrong)", f->path, t->name,
                         (long long)e, data_size);
    size_t want = st_dtype_size(t->dtype) * (size_t)t->n_elem;
    if ((uint64_t)(e - b) != want)
        return em_errorf(err, "%s: tensor '%s': data_offsets span %lld "
                         "bytes, but %s x %lld elements is %zu", f->path,
                         t->name, (long long)(e - b), t->dtype,
                         (long long)t->n_elem, want);
    t->nbytes = want;
    t->data = (const char *)f->map + (f->size - data_size) + b;
    return 0;
}

static int read_tensor(st_file *f, st_tensor *t, const cJSON *item,
                       size_t data_size, em_err *err)
{
    t->name = em_strdup(item->string);
    if (!cJSON_IsObject(item))
        return bad(f, t->name, err, "entry is not an object");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    if (!cJSON_IsString(dt) || !st_dtype_size(dt->valuestring))
        return bad(f, t->name, err, "'dtype' is missing or not a "
                   "safetensors type (F64 F32 F16 BF16 I64 I32 I16 I8 U8 "
                   "BOOL ...)");
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
    return read_shape(f, t, cJSON_GetObjectItemCaseSensitive(item, "shape"),
                      err) ||
           read_offsets(f, t, cJSON_GetObjectItemCaseSensitive(item,
                        "data_offsets"), data_size, err);
}

static int by_offset(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const st_tensor *const *)a)->name,
                  (*(const st_tensor *const *)b)->name);
}

/* Sorted by offset, each tensor must end where or before the next starts
 * (empty tensors take no room); sorted by name, no two neighbours may be
 * equal. Sorting keeps both checks O(n log n) on a hostile header with
 * millions of entries. */
static int check_layout(st_file *f, em_err *err)
{
    size_t n = (size_t)f->n_tensors;
    qsort(f->tensors, n, sizeof *f->tensors, by_offset);
    for (size_t i = 1; i < n; i++) {
        const st_tensor *p = &f->tensors[i - 1], *t = &f->tensors[i];
        if (p->nbytes && t->nbytes &&
            (const char *)p->data + p->nbytes > (const char *)t->data)
            return em_errorf(err, "%s: tensors '%s' and '%s' overlap in "
                             "the data section", f->path, p->name, t->name);
    }
    const st_tensor **names = em_malloc((n ? n : 1) * sizeof *names);
    for (size_t i = 0; i < n; i++)
        names[i] = &f->tensors[i];
    qsort(names, n, sizeof *names, by_name);
    int rc = 0;
    for (size_t i = 1; i < n && !rc; i++)
        if (!strcmp(names[i - 1]->name, names[i]->name))
            rc = em_errorf(err, "%s: the header names tensor '%s' twice",
                           f->path, names[i]->name);
    free(names);
    return rc;
}

static int parse_header(st_file *f, const char *json, size_t len,
                        size_t data_size, em_err *err)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return em_errorf(err, "%s: the header is not a JSON object", f->path);
    }
    for (; end && end < json + len; end++)
        if (*end != ' ' && *end != '\0' && *end != '\n' && *end != '\t') {
            cJSON_Delete(root);
            return em_errorf(err, "%s: bytes after the header's JSON object",
                             f->path);
        }
    int n = 0, rc = 0;
    for (const cJSON *it = root->child; it; it = it->next)
        n += strcmp(it->string, "__metadata__") != 0;
    f->tensors = em_calloc(n ? (size_t)n : 1, sizeof *f->tensors);
    for (const cJSON *it = root->child; it && !rc; it = it->next) {
        if (!strcmp(it->string, "__metadata__"))
            continue;
        rc = read_tensor(f, &f->tensors[f->n_tensors++], it, data_size, err);
    }
    cJSON_Delete(root);
    return rc ? rc : check_layout(f, err);
}

static int parse(st_file *f, em_err *err)
{
    if (f->size < 8)
        return em_errorf(err, "%s: %zu bytes: too short for a safetensors "
                         "header", f->path, f->size);
    const unsigned char *p = f->map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | p[i];
    if (n > f->size - 8)
        return em_errorf(err, "%s: header length %llu is past the end of "
                         "the file (%zu bytes)", f->path,
                         (unsigned long long)n, f->size);
    if (n > ST_HEADER_MAX)
        return em_errorf(err, "%s: header length %llu is above the 100 MiB "
                         "limit", f->path, (unsigned long long)n);
    if (n < 2 || p[8] != '{')
        return em_errorf(err, "%s: not a safetensors file (the header does "
                         "not start with '{')", f->path);
    return parse_header(f, (const char *)p + 8, (size_t)n,
                        f->size - 8 - (size_t)n, err);
}

int st_open_mem(const void *data, size_t size, const char *name,
                st_file **out, em_err *err)
{
    st_file *f = em_calloc(1, sizeof *f);
    f->path = em_strdup(name ? name : "(memory)");
    f->map = (void *)data;
    f->size = data ? size : 0;
    if (parse(f, err)) {
        st_close(f);
        *out = NULL;
        return -1;
    }
    *out = f;
    return 0;
}

int st_open(const char *path, st_file **out, em_err *err)
{
    void *map;
    size_t size;
    *out = NULL;
    if (em_map_file(path, &map, &size, err))
        return -1;
    if (st_open_mem(map, size, path, out, err)) {
        em_unmap_file(map, size);
        return -1;
    }
    (*out)->owns_map = map != NULL;
    return 0;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    if (f->owns_map)
        em_unmap_file(f->map, f->size);
    free(f->path);
    free(f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].name && !strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

/*
 * gguf.c - the GGUF v2/v3 container: a bounds-checked reader over a
 * read-only mapping, and an in-memory writer.
 *
 * Owns: parsing of the header, metadata key/values, tensor infos and the
 * data section; the table of ggml type sizes; serialising a new file.
 *
 * The reader never trusts a number from the file. Every count is compared
 * with the bytes that remain before anything is allocated for it (an
 * array of n strings needs at least 8n bytes, so a claimed n of 2^60 is
 * rejected at once instead of becoming a huge malloc), every length is
 * checked before the bytes are touched, and tensor shapes are multiplied
 * with overflow checks. Errors say which file, where (byte offset) and
 * which key or tensor, because a user staring at a broken 4 GB download
 * needs to know more than "invalid file".
 *
 * Values point into the mapping (strings are not NUL-terminated; numeric
 * array data may be unaligned, so read it with memcpy). Only keys and
 * tensor names are copied, so that lookups can use strcmp.
 */
#include "backends/engine/gguf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4

/* ---------------------------------------------------------------- types */

typedef struct type_info {
    const char *name;
    int block;      /* elements per block */
    size_t bytes;   /* bytes per block */
} type_info;

/* Block layouts as in ggml: e.g. Q4_0 = f16 scale + 32 4-bit values (18
 * bytes); the K-quants use 256-element super-blocks. */
static const type_info *type_lookup(ggml_type t)
{
    static const type_info f32 = {"F32", 1, 4}, f16 = {"F16", 1, 2},
        bf16 = {"BF16", 1, 2}, q4_0 = {"Q4_0", 32, 18},
        q4_1 = {"Q4_1", 32, 20}, q5_0 = {"Q5_0", 32, 22},
        q5_1 = {"Q5_1", 32, 24}, q8_0 = {"Q8_0", 32, 34},
        q8_1 = {"Q8_1", 32, 36}, q2_k = {"Q2_K", 256, 84},
        q3_k = {"Q3_K", 256, 110}, q4_k = {"Q4_K", 256, 144},
        q5_k = {"Q5_K", 256, 176}, q6_k = {"Q6_K", 256, 210},
        q8_k = {"Q8_K", 256, 292};
    switch (t) {
    case GGML_F32: return &f32;
    case GGML_F16: return &f16;
    case GGML_BF16: return &bf16;
    case GGML_Q4_0: return &q4_0;
    case GGML_Q4_1: return &q4_1;
    case GGML_Q5_0: return &q5_0;
    case GGML_Q5_1: return &q5_1;
    case GGML_Q8_0: return &q8_0;
    case GGML_Q8_1: return &q8_1;
    case GGML_Q2_K: return &q2_k;
    case GGML_Q3_K: return &q3_k;
    case GGML_Q4_K: return &q4_k;
    case GGML_Q5_K: return &q5_k;
    case GGML_Q6_K: return &q6_k;
    case GGML_Q8_K: return &q8_k;
    }
    return NULL;
}

size_t ggml_type_size(ggml_type t, int64_t n)
{
    const type_info *ti = type_lookup(t);
    if (!ti || n < 0 || n % ti->block)
        return 0;
    uint64_t blocks = (uint64_t)(n / ti->block);
    if (blocks > SIZE_MAX / ti->bytes)
        return 0;
    return (size_t)blocks * ti->bytes;
}

int ggml_block_size(ggml_type t)
{
    const type_info *ti = type_lookup(t);
    return ti ? ti->block : 0;
}

const char *ggml_type_name(ggml_type t)
{
    const type_info *ti = type_lookup(t);
    return ti ? ti->name : "unknown";
}

uint32_t gguf_file_type(ggml_type t)
{
    switch (t) {
    case GGML_F32: return 0;
    case GGML_F16: return 1;
    case GGML_Q4_0: return 2;
    case GGML_Q4_1: return 3;
    case GGML_Q8_0: return 7;
    case GGML_Q5_0: return 8;
    case GGML_Q5_1: return 9;
    case GGML_Q2_K: return 10;
    case GGML_Q3_K: return 12;   /* Q3_K_M */
    case GGML_Q4_K: return 15;   /* Q4_K_M */
    case GGML_Q5_K: return 17;   /* Q5_K_M */
    case GGML_Q6_K: return 18;
    case GGML_BF16: return 32;
    default: return 0;
    }
}

/* Bytes of one element of a fixed-size metadata type; 0 for string,
 * array and unknown types. */
static size_t kv_elem_size(uint32_t t)
{
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* --------------------------------------------------------------- reader */

/* A cursor over the file with the context every error message needs. */
typedef struct reader {
    const uint8_t *p;
    size_t size;
    size_t pos;
    const char *name;   /* file name for messages */
    em_err *err;
} reader;

static size_t remaining(const reader *r) { return r->size - r->pos; }

/* Fails with "FILE: at byte N: <what> needs K bytes, only M remain". */
static int need(reader *r, size_t n, const char *what)
{
    if (n > remaining(r))
        return em_errorf(r->err, "%s: at byte %zu: %s needs %zu bytes but "
                         "only %zu remain (file size %zu)", r->name, r->pos,
                         what, n, remaining(r), r->size);
    return 0;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int rd_u32(reader *r, uint32_t *v, const char *what)
{
    if (need(r, 4, what))
        return -1;
    *v = le32(r->p + r->pos);
    r->pos += 4;
    return 0;
}

static int rd_u64(reader *r, uint64_t *v, const char *what)
{
    if (need(r, 8, what))
        return -1;
    *v = le64(r->p + r->pos);
    r->pos += 8;
    return 0;
}

static int rd_str(reader *r, gguf_str *s, const char *what)
{
    uint64_t len;
    size_t at = r->pos;
    if (rd_u64(r, &len, what))
        return -1;
    if (len > remaining(r))
        return em_errorf(r->err, "%s: at byte %zu: %s: string length %llu "
                         "runs past end of file (size %zu)", r->name, at,
                         what, (unsigned long long)len, r->size);
    s->s = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += (size_t)len;
    return 0;
}

/* Keys and tensor names become C strings, so an embedded NUL would make
 * two different names compare equal: reject it. */
static int rd_name(reader *r, char **out, const char *what)
{
    gguf_str s;
    size_t at = r->pos;
    if (rd_str(r, &s, what))
        return -1;
    if (s.len == 0)
        return em_errorf(r->err, "%s: at byte %zu: %s is empty", r->name,
                         at, what);
    if (memchr(s.s, 0, (size_t)s.len))
        return em_errorf(r->err, "%s: at byte %zu: %s contains a NUL byte",
                         r->name, at, what);
    *out = em_strndup(s.s, (size_t)s.len);
    return 0;
}

static const char *kv_type_name(uint32_t t)
{
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32",
        "f32", "bool", "string", "array", "u64", "i64", "f64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* Tables grow with what has actually been parsed, never with what a
 * header claims: a count is only bounded by the bytes left, which for a
 * multi-GB file would still allow a multi-GB table before one entry is
 * read. Each parsed entry consumed at least a few bytes of input, so
 * memory stays proportional to the input really present. */
static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    p = em_realloc(p, c * elem);
    *cap = c;
    return p;
}

/* Reads one fixed-size scalar into the widened union of kv. */
static int rd_scalar(reader *r, gguf_kv *kv, const char *what)
{
    size_t at = r->pos, n = kv_elem_size(kv->type);
    if (need(r, n, what))
        return -1;
    const uint8_t *p = r->p + r->pos;
    uint32_t u32 = n >= 4 ? le32(p) : 0;
    switch (kv->type) {
    case GGUF_UINT8: kv->v.u64 = p[0]; break;
    case GGUF_INT8: kv->v.i64 = (int8_t)p[0]; break;
    case GGUF_UINT16: kv->v.u64 = (uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_INT16: kv->v.i64 = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
    case GGUF_UINT32: kv->v.u64 = u32; break;
    case GGUF_INT32: kv->v.i64 = (int32_t)u32; break;
    case GGUF_FLOAT32: { float f; memcpy(&f, &u32, 4); kv->v.f64 = f; break; }
    case GGUF_UINT64: kv->v.u64 = le64(p); break;
    case GGUF_INT64: kv->v.i64 = (int64_t)le64(p); break;
    case GGUF_FLOAT64: { uint64_t u = le64(p); memcpy(&kv->v.f64, &u, 8); break; }
    case GGUF_BOOL:
        if (p[0] > 1)
            return em_errorf(r->err, "%s: at byte %zu: key '%s': bool value "
                             "%u is not 0 or 1", r->name, at, kv->key, p[0]);
        kv->v.b = p[0];
        break;
    default:
        return em_errorf(r->err, "%s: at byte %zu: key '%s': not a scalar",
                         r->name, at, kv->key);
    }
    r->pos += n;
    return 0;
}

static int rd_array(reader *r, gguf_kv *kv, const char *what)
{
    uint32_t et;
    uint64_t n;
    size_t at = r->pos;
    if (rd_u32(r, &et, what) || rd_u64(r, &n, what))
        return -1;
    kv->arr_type = (gguf_type)et;
    kv->n = n;
    if (et == GGUF_ARRAY)
        return em_errorf(r->err, "%s: at byte %zu: key '%s': nested arrays "
                         "(arrays of arrays) are not supported", r->name, at,
                         kv->key);
    if (et == GGUF_STRING) {
        /* Each string has at least its 8-byte length. */
        if (n > remaining(r) / 8)
            return em_errorf(r->err, "%s: at byte %zu: key '%s': array of "
                             "%llu strings cannot fit in the %zu bytes left",
                             r->name, at, kv->key, (unsigned long long)n,
                             remaining(r));
        size_t cap = 0;
        kv->strs = grow(NULL, &cap, 1, sizeof *kv->strs);
        for (uint64_t i = 0; i < n; i++) {
            size_t el = r->pos;
            kv->strs = grow(kv->strs, &cap, (size_t)i + 1, sizeof *kv->strs);
            if (rd_str(r, &kv->strs[i], what))
                return em_errorf(r->err, "%s: at byte %zu: key '%s': string "
                                 "#%llu of %llu runs past end of file (size "
                                 "%zu)", r->name, el, kv->key,
                                 (unsigned long long)i,
                                 (unsigned long long)n, r->size);
        }
        return 0;
    }
    size_t es = kv_elem_size(et);
    if (!es)
        return em_errorf(r->err, "%s: at byte %zu: key '%s': unknown array "
                         "element type %u", r->name, at, kv->key, et);
    if (n > remaining(r) / es)
        return em_errorf(r->err, "%s: at byte %zu: key '%s': array of %llu "
                         "%s needs %llu bytes, only %zu remain", r->name, at,
                         kv->key, (unsigned long long)n, kv_type_name(et),
                         (unsigned long long)n * es, remaining(r));
    kv->data = r->p + r->pos;
    r->pos += (size_t)n * es;
    return 0;
}

/* Open-addressing set of names, to reject duplicates in O(n): a hostile
 * file can hold a million keys, and O(n^2) strcmp would hang the fuzzer. */
typedef struct name_set {
    const char **slot;
    size_t cap, n;
} name_set;

static void set_insert(name_set *s, const char *name)
{
    size_t i = em_hash64(name, strlen(name), 0) & (s->cap - 1);
    while (s->slot[i])
        i = (i + 1) & (s->cap - 1);
    s->slot[i] = name;
    s->n++;
}

/* 0 if added, -1 if already present. Keeps the load under one half. */
static int set_add(name_set *s, const char *name)
{
    if (2 * (s->n + 1) > s->cap) {
        name_set t = {em_calloc(s->cap ? 2 * s->cap : 64, sizeof *t.slot),
                      s->cap ? 2 * s->cap : 64, 0};
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i])
                set_insert(&t, s->slot[i]);
        free(s->slot);
        *s = t;
    }
    size_t i = em_hash64(name, strlen(name), 0) & (s->cap - 1);
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (!strcmp(s->slot[i], name))
            return -1;
    s->slot[i] = name;
    s->n++;
    return 0;
}

/* The value of one pair, after its key and type. */
static int rd_value(reader *r, gguf_kv *kv, size_t at)
{
    char what[128];
    snprintf(what, sizeof what, "key '%s'", kv->key);
    if (kv->type == GGUF_STRING)
        return rd_str(r, &kv->v.str, what);
    if (kv->type == GGUF_ARRAY)
        return rd_array(r, kv, what);
    if (kv_elem_size(kv->type))
        return rd_scalar(r, kv, what);
    return em_errorf(r->err, "%s: at byte %zu: key '%s': unknown value type "
                     "%u", r->name, at, kv->key, (unsigned)kv->type);
}

static int rd_kvs(reader *r, gguf_file *g)
{
    /* Smallest pair: 8-byte key length + 1 byte key + u32 type + 1 byte. */
    if (g->n_kv > remaining(r) / 14)
        return em_errorf(r->err, "%s: header claims %llu metadata keys, "
                         "more than the %zu bytes left can hold", r->name,
                         (unsigned long long)g->n_kv, remaining(r));
    /* g->n_kv counts the entries parsed so far, so that gguf_close frees
     * exactly those when parsing stops early. */
    uint64_t claimed = g->n_kv;
    size_t cap = 0;
    g->n_kv = 0;
    name_set seen = {NULL, 0, 0};
    int rc = 0;
    for (uint64_t i = 0; i < claimed && !rc; i++) {
        g->kv = grow(g->kv, &cap, (size_t)i + 1, sizeof *g->kv);
        gguf_kv *kv = &g->kv[i];
        memset(kv, 0, sizeof *kv);
        g->n_kv = i + 1;
        size_t at = r->pos;
        uint32_t t;
        char what[64];
        snprintf(what, sizeof what, "key #%llu", (unsigned long long)i);
        if (rd_name(r, &kv->key, what) || rd_u32(r, &t, what)) {
            rc = -1;
            break;
        }
        kv->type = (gguf_type)t;
        kv->n = 1;
        if (set_add(&seen, kv->key))
            rc = em_errorf(r->err, "%s: at byte %zu: duplicate key '%s'",
                           r->name, at, kv->key);
        else
            rc = rd_value(r, kv, at);
    }
    free(seen.slot);
    return rc;
}

/* general.alignment must be a u32 power of two (ggml pads with it). */
static int rd_alignment(reader *r, gguf_file *g)
{
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *kv = gguf_find_kv(g, "general.alignment");
    if (!kv)
        return 0;
    if (kv->type != GGUF_UINT32)
        return em_errorf(r->err, "%s: key 'general.alignment' has type %s, "
                         "expected u32", r->name, kv_type_name(kv->type));
    if (kv->v.u64 == 0 || (kv->v.u64 & (kv->v.u64 - 1)))
        return em_errorf(r->err, "%s: key 'general.alignment' is %llu, not a "
                         "non-zero power of two", r->name,
                         (unsigned long long)kv->v.u64);
    g->alignment = (size_t)kv->v.u64;
    return 0;
}

/* Shape and size of one tensor, with every multiplication checked. A
 * dimension of 0 is allowed (an empty tensor, as ggml permits); negative
 * ones are not. */
static int tensor_shape(reader *r, gguf_tensor *t, size_t at)
{
    const type_info *ti = type_lookup(t->type);
    if (!ti)
        return em_errorf(r->err, "%s: at byte %zu: tensor '%s': unknown "
                         "ggml type %d", r->name, at, t->name, (int)t->type);
    int64_t nel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        int64_t ne = t->ne[d];
        if (ne < 0)
            return em_errorf(r->err, "%s: at byte %zu: tensor '%s': ne[%d] = "
                             "%lld is negative", r->name, at, t->name, d,
                             (long long)ne);
        if (ne && nel > INT64_MAX / ne)
            return em_errorf(r->err, "%s: at byte %zu: tensor '%s': shape "
                             "overflows (element count past 2^63)", r->name,
                             at, t->name);
        nel *= ne;
    }
    if (t->ne[0] % ti->block)
        return em_errorf(r->err, "%s: at byte %zu: tensor '%s': row length "
                         "%lld is not a multiple of the %s block size %d",
                         r->name, at, t->name, (long long)t->ne[0], ti->name,
                         ti->block);
    if ((uint64_t)(nel / ti->block) > SIZE_MAX / ti->bytes)
        return em_errorf(r->err, "%s: at byte %zu: tensor '%s': byte size "
                         "overflows", r->name, at, t->name);
    t->nbytes = (size_t)(nel / ti->block) * ti->bytes;
    return 0;
}

static int rd_tensor_info(reader *r, gguf_tensor *t, uint64_t i)
{
    size_t at = r->pos;
    char what[64];
    uint32_t nd, type;
    snprintf(what, sizeof what, "tensor #%llu", (unsigned long long)i);
    if (rd_name(r, &t->name, what) || rd_u32(r, &nd, t->name))
        return -1;
    if (nd > GGUF_MAX_DIMS)
        return em_errorf(r->err, "%s: at byte %zu: tensor '%s': %u "
                         "dimensions, at most %d supported", r->name, at,
                         t->name, nd, GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        uint64_t ne = 1;
        if ((uint32_t)d < nd && rd_u64(r, &ne, t->name))
            return -1;
        t->ne[d] = (int64_t)ne;
    }
    if (rd_u32(r, &type, t->name) || rd_u64(r, &t->offset, t->name))
        return -1;
    t->type = (ggml_type)type;
    return tensor_shape(r, t, at);
}

static int rd_tensors(reader *r, gguf_file *g)
{
    /* Smallest info: name length + 1 byte + n_dims + type + offset. */
    if (g->n_tensors > remaining(r) / 25)
        return em_errorf(r->err, "%s: header claims %llu tensors, more than "
                         "the %zu bytes left can hold", r->name,
                         (unsigned long long)g->n_tensors, remaining(r));
    uint64_t claimed = g->n_tensors;
    size_t cap = 0;
    g->n_tensors = 0;
    name_set seen = {NULL, 0, 0};
    int rc = 0;
    for (uint64_t i = 0; i < claimed && !rc; i++) {
        size_t at = r->pos;
        g->tensors = grow(g->tensors, &cap, (size_t)i + 1, sizeof *g->tensors);
        memset(&g->tensors[i], 0, sizeof g->tensors[i]);
        g->n_tensors = i + 1;
        rc = rd_tensor_info(r, &g->tensors[i], i);
        if (!rc && set_add(&seen, g->tensors[i].name))
            rc = em_errorf(r->err, "%s: at byte %zu: duplicate tensor '%s'",
                           r->name, at, g->tensors[i].name);
    }
    free(seen.slot);
    return rc;
}

/* Places tensor data: the data section starts at the next multiple of the
 * alignment, and each tensor must be aligned and lie inside the file. */
static int place_data(reader *r, gguf_file *g)
{
    size_t a = g->alignment, pos = r->pos;
    size_t pad = (a - pos % a) % a;
    g->data_offset = pos + pad;
    if (g->n_tensors && g->data_offset > r->size)
        return em_errorf(r->err, "%s: data section would start at byte %zu, "
                         "past end of file (size %zu)", r->name,
                         g->data_offset, r->size);
    size_t avail = g->data_offset <= r->size ? r->size - g->data_offset : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset % a)
            return em_errorf(r->err, "%s: tensor '%s': offset %llu is not a "
                             "multiple of the alignment %zu", r->name,
                             t->name, (unsigned long long)t->offset, a);
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return em_errorf(r->err, "%s: tensor '%s': data [offset %llu, "
                             "%zu bytes] runs past end of file (size %zu)",
                             r->name, t->name,
                             (unsigned long long)(g->data_offset + t->offset),
                             t->nbytes, r->size);
        t->data = r->p + g->data_offset + t->offset;
    }
    return 0;
}

static int rd_header(reader *r, gguf_file *g)
{
    if (r->size < 4 || memcmp(r->p, GGUF_MAGIC, 4))
        return em_errorf(r->err, "%s: not a GGUF file (bad magic; expected "
                         "\"GGUF\")", r->name);
    r->pos = 4;
    if (rd_u32(r, &g->version, "version"))
        return -1;
    /* A big-endian writer stores version 3 as 0x03000000 when read LE. */
    if (g->version && !(g->version & 0xffff))
        return em_errorf(r->err, "%s: big-endian GGUF files are not "
                         "supported (version field reads %#x)", r->name,
                         g->version);
    if (g->version == 1)
        return em_errorf(r->err, "%s: GGUF version 1 (32-bit counts) is not "
                         "supported; re-convert the model to v3", r->name);
    if (g->version != 2 && g->version != 3)
        return em_errorf(r->err, "%s: unsupported GGUF version %u (expected "
                         "2 or 3)", r->name, g->version);
    if (rd_u64(r, &g->n_tensors, "tensor count") ||
        rd_u64(r, &g->n_kv, "metadata key count"))
        return -1;
    return 0;
}

static int parse(gguf_file *g, em_err *err)
{
    reader r = {g->map, g->size, 0, g->path, err};
    if (rd_header(&r, g) || rd_kvs(&r, g) || rd_alignment(&r, g) ||
        rd_tensors(&r, g) || place_data(&r, g))
        return -1;
    return 0;
}

/* What gguf_keep handed to a file. */
struct gguf_kept {
    void *p;
    void (*free_fn)(void *);
};

int gguf_open_mem(const void *data, size_t size, const char *name,
                  gguf_file **out, em_err *err)
{
    gguf_file *g = em_calloc(1, sizeof *g);
    g->path = em_strdup(name ? name : "(memory)");
    g->map = (void *)data;
    g->size = size;
    if (!data && size)
        g->size = 0;
    if (parse(g, err)) {
        gguf_close(g);
        *out = NULL;
        return -1;
    }
    *out = g;
    return 0;
}

int gguf_open(const char *path, gguf_file **out, em_err *err)
{
    void *map;
    size_t size;
    *out = NULL;
    if (em_map_file(path, &map, &size, err))
        return -1;
    gguf_file *g;
    if (gguf_open_mem(map, size, path, &g, err)) {
        em_unmap_file(map, size);
        return -1;
    }
    g->owns_map = map != NULL;
    *out = g;
    return 0;
}

void gguf_close(gguf_file *g)
{
    if (!g)
        return;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].strs);
        }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++)
            free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    if (g->owns_map)
        em_unmap_file(g->map, g->size);
    for (size_t i = g->n_kept; i-- > 0;)
        g->kept[i].free_fn(g->kept[i].p);
    free(g->kept);
    free(g->path);
    free(g);
}

/* ------------------------------------------------- assembled in memory */

void gguf_keep(gguf_file *g, void *p, void (*free_fn)(void *))
{
    g->kept = em_realloc(g->kept, (g->n_kept + 1) * sizeof *g->kept);
    g->kept[g->n_kept++] = (struct gguf_kept){p, free_fn};
}

int gguf_from_writer(gguf_writer *w, const char *path, gguf_file **out,
                     em_err *err)
{
    void *buf;
    size_t size;
    *out = NULL;
    if (gguf_writer_write_mem(w, &buf, &size, err))
        return em_error_prefix(err, "%s", path);
    if (gguf_open_mem(buf, size, path, out, err)) {
        free(buf);
        return -1;
    }
    gguf_keep(*out, buf, free);
    return 0;
}

int gguf_save(const gguf_file *g, const char *path, em_err *err)
{
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++)
        gguf_writer_copy_kv(w, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        gguf_writer_add_tensor_ref(w, t->name, t->type, t->n_dims, t->ne,
                                   t->data, t->nbytes);
    }
    int rc = gguf_writer_write(w, path, err);
    gguf_writer_free(w);
    return rc;
}

int gguf_add_view(gguf_file *g, const char *name, ggml_type type,
                  int n_dims, const int64_t *ne, const void *data,
                  em_err *err)
{
    if (gguf_find_tensor(g, name))
        return em_errorf(err, "%s: tensor '%s' twice", g->path, name);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
        return em_errorf(err, "%s: tensor '%s': %d dimensions", g->path,
                         name, n_dims);
    gguf_tensor t = {0};
    t.name = (char *)name;
    t.n_dims = n_dims;
    t.type = type;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    reader r = {NULL, 0, 0, g->path, err};
    if (tensor_shape(&r, &t, 0))
        return -1;
    t.name = em_strdup(name);
    t.data = data;
    g->tensors = em_realloc(g->tensors, (g->n_tensors + 1) * sizeof *g->tensors);
    g->tensors[g->n_tensors++] = t;
    return 0;
}

/* -------------------------------------------------------------- lookups */

/* Linear scans: files have tens to a few thousand entries, looked up a
 * handful of times at load. Entries not yet parsed have NULL names. */
const gguf_kv *gguf_find_kv(const gguf_file *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && !strcmp(g->kv[i].key, key))
            return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && !strcmp(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

static int is_unsigned(gguf_type t)
{
    return t == GGUF_UINT8 || t == GGUF_UINT16 || t == GGUF_UINT32 ||
           t == GGUF_UINT64;
}

static int is_signed(gguf_type t)
{
    return t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 ||
           t == GGUF_INT64;
}

int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv)
        return -1;
    if (is_unsigned(kv->type)) {
        *out = kv->v.u64;
        return 0;
    }
    if (is_signed(kv->type) && kv->v.i64 >= 0) {
        *out = (uint64_t)kv->v.i64;
        return 0;
    }
    return -1;
}

int gguf_get_i64(const gguf_file *g, const char *key, int64_t *out)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv)
        return -1;
    if (is_signed(kv->type)) {
        *out = kv->v.i64;
        return 0;
    }
    if (is_unsigned(kv->type) && kv->v.u64 <= INT64_MAX) {
        *out = (int64_t)kv->v.u64;
        return 0;
    }
    return -1;
}

int gguf_get_f64(const gguf_file *g, const char *key, double *out)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || (kv->type != GGUF_FLOAT32 && kv->type != GGUF_FLOAT64))
        return -1;
    *out = kv->v.f64;
    return 0;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_BOOL)
        return -1;
    *out = kv->v.b;
    return 0;
}

char *gguf_get_str(const gguf_file *g, const char *key)
{
    const gguf_kv *kv = gguf_find_kv(g, key);
    if (!kv || kv->type != GGUF_STRING)
        return NULL;
    return em_strndup(kv->v.str.s, (size_t)kv->v.str.len);
}

/* --------------------------------------------------------------- writer */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF writer copies host values verbatim: little-endian hosts only"
#endif

/* One metadata pair, with its value already serialised as it will appear
 * in the file after the type field. */
typedef struct wkv {
    char *key;
    uint32_t type;
    em_buf val;
} wkv;

typedef struct wtensor {
    char *name;
    ggml_type type;
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    void *data;
    size_t nbytes;
    int borrowed;   /* data is the caller's (gguf_writer_add_tensor_ref) */
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    size_t alignment;
    em_err err;     /* first misuse, reported by gguf_writer_write */
    int failed;
};

gguf_writer *gguf_writer_new(void)
{
    gguf_writer *w = em_calloc(1, sizeof *w);
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        em_buf_free(&w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (!w->t[i].borrowed)
            free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* Setting a key twice replaces the value in place: callers copying a
 * vocabulary and then overriding one field should not get duplicates. */
static em_buf *wkv_slot(gguf_writer *w, const char *key, uint32_t type)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            em_buf_reset(&w->kv[i].val);
            w->kv[i].type = type;
            return &w->kv[i].val;
        }
    if (w->n_kv == w->cap_kv) {
        w->cap_kv = w->cap_kv ? 2 * w->cap_kv : 16;
        w->kv = em_realloc(w->kv, w->cap_kv * sizeof *w->kv);
    }
    wkv *kv = &w->kv[w->n_kv++];
    memset(kv, 0, sizeof *kv);
    kv->key = em_strdup(key);
    kv->type = type;
    return &kv->val;
}

static void put_u32(em_buf *b, uint32_t v) { em_buf_put(b, (const char *)&v, 4); }
static void put_u64(em_buf *b, uint64_t v) { em_buf_put(b, (const char *)&v, 8); }

static void put_str(em_buf *b, const char *s, size_t n)
{
    put_u64(b, n);
    em_buf_put(b, s, n);
}

void gguf_writer_set_scalar(gguf_writer *w, const char *key, gguf_type t,
                            const void *v)
{
    size_t n = kv_elem_size(t);
    if (!n) {
        if (!w->failed++)
            em_errorf(&w->err, "key '%s': %s is not a scalar type", key,
                      kv_type_name(t));
        return;
    }
    em_buf_put(wkv_slot(w, key, t), v, n);
    if (t == GGUF_UINT32 && !strcmp(key, "general.alignment")) {
        uint32_t a;
        memcpy(&a, v, 4);
        w->alignment = a;
    }
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    gguf_writer_set_scalar(w, key, GGUF_UINT32, &v);
}

void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    gguf_writer_set_scalar(w, key, GGUF_INT32, &v);
}

void gguf_writer_set_f32(gguf_writer *w, const char *key, float v)
{
    gguf_writer_set_scalar(w, key, GGUF_FLOAT32, &v);
}

void gguf_writer_set_bool(gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    gguf_writer_set_scalar(w, key, GGUF_BOOL, &b);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v)
{
    put_str(wkv_slot(w, key, GGUF_STRING), v, strlen(v));
}

void gguf_writer_set_strn(gguf_writer *w, const char *key, const char *v,
                          size_t n)
{
    put_str(wkv_slot(w, key, GGUF_STRING), v, n);
}

void gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem,
                         const void *data, size_t n)
{
    size_t es = kv_elem_size(elem);
    if (!es) {
        if (!w->failed++)
            em_errorf(&w->err, "key '%s': arrays of %s need "
                      "gguf_writer_set_arr_str", key, kv_type_name(elem));
        return;
    }
    em_buf *b = wkv_slot(w, key, GGUF_ARRAY);
    put_u32(b, elem);
    put_u64(b, n);
    em_buf_put(b, data, n * es);
}

void gguf_writer_set_arr_strn(gguf_writer *w, const char *key,
                              const gguf_str *v, size_t n)
{
    em_buf *b = wkv_slot(w, key, GGUF_ARRAY);
    put_u32(b, GGUF_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++)
        put_str(b, v[i].s, (size_t)v[i].len);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key,
                             const char *const *v, size_t n)
{
    em_buf *b = wkv_slot(w, key, GGUF_ARRAY);
    put_u32(b, GGUF_STRING);
    put_u64(b, n);
    for (size_t i = 0; i < n; i++)
        put_str(b, v[i], strlen(v[i]));
}

void gguf_writer_set_arr_f32(gguf_writer *w, const char *key,
                             const float *v, size_t n)
{
    gguf_writer_set_arr(w, key, GGUF_FLOAT32, v, n);
}

void gguf_writer_set_arr_i32(gguf_writer *w, const char *key,
                             const int32_t *v, size_t n)
{
    gguf_writer_set_arr(w, key, GGUF_INT32, v, n);
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv)
{
    if (kv->type == GGUF_STRING)
        gguf_writer_set_strn(w, kv->key, kv->v.str.s, (size_t)kv->v.str.len);
    else if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING)
        gguf_writer_set_arr_strn(w, kv->key, kv->strs, (size_t)kv->n);
    else if (kv->type == GGUF_ARRAY)
        gguf_writer_set_arr(w, kv->key, kv->arr_type, kv->data, (size_t)kv->n);
    else {
        /* The reader widened the value; narrow it back to the file type
         * (little-endian: the low bytes come first). */
        float f = (float)kv->v.f64;
        uint8_t b = (uint8_t)kv->v.b;
        const void *p = kv->type == GGUF_FLOAT32 ? (const void *)&f
                      : kv->type == GGUF_FLOAT64 ? (const void *)&kv->v.f64
                      : kv->type == GGUF_BOOL ? (const void *)&b
                      : (const void *)&kv->v.u64;
        gguf_writer_set_scalar(w, kv->key, kv->type, p);
    }
}

static int check_tensor(gguf_writer *w, const char *name, ggml_type type,
                        int n_dims, const int64_t *ne, size_t nbytes)
{
    if (!name[0])
        return em_errorf(&w->err, "tensor with an empty name");
    /* 0 dimensions is a scalar, as the reader accepts. */
    if (n_dims < 0 || n_dims > GGUF_MAX_DIMS)
        return em_errorf(&w->err, "tensor '%s': %d dimensions (0..%d)",
                         name, n_dims, GGUF_MAX_DIMS);
    if (!type_lookup(type))
        return em_errorf(&w->err, "tensor '%s': unknown ggml type %d", name,
                         (int)type);
    int64_t nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || (ne[d] && nel > INT64_MAX / ne[d]))
            return em_errorf(&w->err, "tensor '%s': bad shape", name);
        nel *= ne[d];
    }
    int64_t row = n_dims ? ne[0] : 1;
    if (row % ggml_block_size(type))
        return em_errorf(&w->err, "tensor '%s': row length %lld is not a "
                         "multiple of the %s block size", name,
                         (long long)row, ggml_type_name(type));
    if (ggml_type_size(type, nel) != nbytes)
        return em_errorf(&w->err, "tensor '%s': %zu bytes given, %s %lld "
                         "elements take %zu", name, nbytes,
                         ggml_type_name(type), (long long)nel,
                         ggml_type_size(type, nel));
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return em_errorf(&w->err, "duplicate tensor '%s'", name);
    return 0;
}

static wtensor *add_wtensor(gguf_writer *w, const char *name,
                            ggml_type type, int n_dims, const int64_t *ne,
                            size_t nbytes)
{
    if (w->failed)
        return NULL;
    if (check_tensor(w, name, type, n_dims, ne, nbytes)) {
        w->failed = 1;
        return NULL;
    }
    if (w->n_t == w->cap_t) {
        w->cap_t = w->cap_t ? 2 * w->cap_t : 64;
        w->t = em_realloc(w->t, w->cap_t * sizeof *w->t);
    }
    wtensor *t = &w->t[w->n_t++];
    t->name = em_strdup(name);
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    t->borrowed = 0;
    return t;
}

void gguf_writer_add_tensor(gguf_writer *w, const char *name, ggml_type type,
                            int n_dims, const int64_t *ne, const void *data,
                            size_t nbytes)
{
    wtensor *t = add_wtensor(w, name, type, n_dims, ne, nbytes);
    if (!t)
        return;
    t->data = em_malloc(nbytes ? nbytes : 1);
    memcpy(t->data, data, nbytes);
}

void gguf_writer_add_tensor_ref(gguf_writer *w, const char *name,
                                ggml_type type, int n_dims, const int64_t *ne,
                                const void *data, size_t nbytes)
{
    wtensor *t = add_wtensor(w, name, type, n_dims, ne, nbytes);
    if (!t)
        return;
    t->data = (void *)data;
    t->borrowed = 1;
}

static size_t pad_to(size_t n, size_t a) { return (a - n % a) % a; }

/* Header, metadata and tensor infos, padded to the data section. */
static void build_meta(const gguf_writer *w, em_buf *b)
{
    em_buf_put(b, GGUF_MAGIC, 4);
    put_u32(b, 3);
    put_u64(b, w->n_t);
    put_u64(b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        put_str(b, w->kv[i].key, strlen(w->kv[i].key));
        put_u32(b, w->kv[i].type);
        em_buf_put(b, w->kv[i].val.s, w->kv[i].val.len);
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        put_str(b, t->name, strlen(t->name));
        put_u32(b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            put_u64(b, (uint64_t)t->ne[d]);
        put_u32(b, (uint32_t)t->type);
        put_u64(b, off);
        off += t->nbytes + pad_to(t->nbytes, w->alignment);
    }
    static const char zeros[256];
    for (size_t p = pad_to(b->len, w->alignment); p; ) {
        size_t k = p < sizeof zeros ? p : sizeof zeros;
        em_buf_put(b, zeros, k);
        p -= k;
    }
}

static int writer_ready(gguf_writer *w, em_err *err)
{
    if (w->failed)
        return em_errorf(err, "gguf writer: %s", w->err.msg);
    for (size_t i = 0; i < w->n_kv; i++)
        if (!w->kv[i].key[0])
            return em_errorf(err, "gguf writer: empty key");
    if (!w->alignment || (w->alignment & (w->alignment - 1)) ||
        w->alignment > 65536)
        return em_errorf(err, "gguf writer: general.alignment %zu is not a "
                         "power of two up to 65536", w->alignment);
    return 0;
}

int gguf_writer_write_mem(gguf_writer *w, void **out, size_t *size,
                          em_err *err)
{
    if (writer_ready(w, err))
        return -1;
    em_buf b = {0};
    build_meta(w, &b);
    static const char zeros[65536];
    for (size_t i = 0; i < w->n_t; i++) {
        em_buf_put(&b, w->t[i].data, w->t[i].nbytes);
        em_buf_put(&b, zeros, pad_to(w->t[i].nbytes, w->alignment));
    }
    *size = b.len;
    *out = b.s ? (void *)em_buf_take(&b) : em_calloc(1, 1);
    return 0;
}

/* Streams to PATH.tmp and renames, so a crash never leaves a half-written
 * model under the real name. */
int gguf_writer_write(gguf_writer *w, const char *path, em_err *err)
{
    if (writer_ready(w, err))
        return -1;
    size_t n = strlen(path);
    char *tmp = em_malloc(n + 5);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        em_errorf(err, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    em_buf b = {0};
    build_meta(w, &b);
    static const char zeros[65536];
    int ok = fwrite(b.s, 1, b.len, f) == b.len;
    em_buf_free(&b);
    for (size_t i = 0; ok && i < w->n_t; i++) {
        size_t p = pad_to(w->t[i].nbytes, w->alignment);
        ok = fwrite(w->t[i].data, 1, w->t[i].nbytes, f) == w->t[i].nbytes &&
             fwrite(zeros, 1, p, f) == p;
    }
    int e = errno;
    if (fclose(f))
        ok = 0, e = errno;
    if (ok && rename(tmp, path))
        ok = 0, e = errno;
    if (!ok) {
        em_errorf(err, "%s: write failed: %s", path, strerror(e));
        remove(tmp);
    }
    free(tmp);
    return ok ? 0 : -1;
}

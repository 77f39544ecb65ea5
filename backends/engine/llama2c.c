/*
 * llama2c.c - llama2.c checkpoint + tokenizer.bin -> llama GGUF.
 *
 * Owns: the llama2.c file layouts and their mapping onto llama.cpp's
 * tensor names and metadata keys.
 *
 * Weight layout. run.c computes y = W x with W stored row-major as
 * (out, in), like PyTorch's nn.Linear; GGUF's ne[0] is the contiguous
 * dimension, so W becomes a tensor of ne = {in, out} with the same bytes.
 * No transposition or copying per element is needed.
 *
 * Why wq/wk are not permuted. llama.cpp's HF converter permutes the rows
 * of wq/wk because Hugging Face checkpoints rotate the two halves of each
 * head (rotate_half), while llama.cpp's LLAMA rope mode (like Meta's
 * original code) rotates adjacent pairs (x[2i], x[2i+1]) by
 * pos * base^(-2i/head_size). llama2.c's run.c rotates the same adjacent
 * pairs, (vec[i], vec[i+1]) for even i, by pos * 10000^(-(i % head_size) /
 * head_size), i.e. the same angle for the same pair; its export.py undoes
 * the HF permutation when it reads HF weights. So a llama2.c checkpoint is
 * already in the layout llama.cpp expects, and the rows are copied as is
 * (llama.cpp's own convert-llama2c example does not permute either).
 *
 * Vocabulary. llama2.c's tokenizer export replaces SentencePiece's
 * U+2581 ("▁") word marker with a plain space and writes BOS/EOS as
 * "\n<s>\n" and "\n</s>\n"; GGUF's llama vocabulary wants the original
 * pieces, so spaces go back to U+2581, ids 0/1/2 become <unk>/<s>/</s>,
 * and "<0xXX>" pieces are byte tokens (type 6). The token count is the
 * model's vocab_size (tokenizer.bin does not store one).
 */
#include "backends/engine/llama2c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/engine/gguf.h"
#include "backends/engine/quant.h"

/* SentencePiece token types as GGUF stores them. */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

typedef struct mapped {
    const uint8_t *p;
    size_t size;
} mapped;

static int map_file(const char *path, mapped *m, em_err *err)
{
    m->p = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return em_errorf(err, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || st.st_size == 0) {
        int e = errno;
        close(fd);
        return st.st_size == 0 ? em_errorf(err, "%s: empty file", path)
                               : em_errorf(err, "%s: %s", path, strerror(e));
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED)
        return em_errorf(err, "%s: mmap: %s", path, strerror(e));
    m->p = p;
    m->size = (size_t)st.st_size;
    return 0;
}

static void unmap_file(mapped *m)
{
    if (m->p)
        munmap((void *)m->p, m->size);
    m->p = NULL;
}

static int32_t rd_i32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                 (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

/* Float counts of each weight group, in file order. */
typedef struct layout {
    uint64_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final,
        freq, wcls, total;
} layout;

static int mul(uint64_t *out, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t ab;
    return __builtin_mul_overflow(a, b, &ab) ||
           __builtin_mul_overflow(ab, c, out) ? -1 : 0;
}

static int compute_layout(const llama2c_config *c, layout *l)
{
    uint64_t D = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim,
             L = (uint64_t)c->n_layers, V = (uint64_t)c->vocab_size,
             hs = D / (uint64_t)c->n_heads,
             KV = hs * (uint64_t)c->n_kv_heads;
    memset(l, 0, sizeof *l);
    if (mul(&l->emb, V, D, 1) || mul(&l->rms_att, L, D, 1) ||
        mul(&l->wq, L, D, D) || mul(&l->wk, L, D, KV) ||
        mul(&l->wv, L, D, KV) || mul(&l->wo, L, D, D) ||
        mul(&l->rms_ffn, L, D, 1) || mul(&l->w1, L, D, H) ||
        mul(&l->w2, L, H, D) || mul(&l->w3, L, D, H))
        return -1;
    l->rms_final = D;
    l->freq = c->has_freq_cis ? 2 * ((uint64_t)c->seq_len * hs / 2) : 0;
    l->wcls = c->shared_classifier ? 0 : l->emb;
    uint64_t parts[] = {l->emb, l->rms_att, l->wq, l->wk, l->wv, l->wo,
        l->rms_ffn, l->w1, l->w2, l->w3, l->rms_final, l->freq, l->wcls};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (__builtin_add_overflow(l->total, parts[i], &l->total))
            return -1;
    return l->total > (UINT64_MAX - 28) / 4 ? -1 : 0;
}

static int check_config(const char *path, llama2c_config *c, em_err *err)
{
    static const char *names[] = {"dim", "hidden_dim", "n_layers",
        "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    int32_t v[7] = {c->dim, c->hidden_dim, c->n_layers, c->n_heads,
                    c->n_kv_heads, c->vocab_size, c->seq_len};
    for (int i = 0; i < 7; i++)
        if (v[i] <= 0)
            return em_errorf(err, "%s: config field %s = %d must be positive",
                             path, names[i], v[i]);
    if (c->dim % c->n_heads)
        return em_errorf(err, "%s: dim %d is not a multiple of n_heads %d",
                         path, c->dim, c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return em_errorf(err, "%s: n_heads %d is not a multiple of "
                         "n_kv_heads %d", path, c->n_heads, c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2)
        return em_errorf(err, "%s: head size %d is odd (RoPE rotates pairs)",
                         path, c->dim / c->n_heads);
    return 0;
}

/* Reads the Config and decides, from the file size, whether the legacy
 * RoPE tables are present. */
static int read_config(const char *path, const mapped *m, llama2c_config *c,
                       layout *l, em_err *err)
{
    if (m->size < 28)
        return em_errorf(err, "%s: %zu bytes, too small for the 28-byte "
                         "llama2.c config header", path, m->size);
    if (!memcmp(m->p, "24ka", 4))
        return em_errorf(err, "%s: llama2.c export version %d (\"ak42\" "
                         "header) is not supported; export with "
                         "--version 0 (legacy)", path, rd_i32(m->p + 4));
    int32_t f[7];
    for (int i = 0; i < 7; i++)
        f[i] = rd_i32(m->p + 4 * i);
    memset(c, 0, sizeof *c);
    c->dim = f[0]; c->hidden_dim = f[1]; c->n_layers = f[2];
    c->n_heads = f[3]; c->n_kv_heads = f[4]; c->seq_len = f[6];
    c->shared_classifier = f[5] > 0;
    c->vocab_size = f[5] == INT32_MIN ? 0 : (f[5] < 0 ? -f[5] : f[5]);
    if (check_config(path, c, err))
        return -1;
    layout without, with;
    c->has_freq_cis = 0;
    int bad = compute_layout(c, &without);
    c->has_freq_cis = 1;
    bad |= compute_layout(c, &with);
    if (bad)
        return em_errorf(err, "%s: config (dim %d, hidden_dim %d, n_layers "
                         "%d, vocab %d) implies an impossibly large model",
                         path, c->dim, c->hidden_dim, c->n_layers,
                         c->vocab_size);
    uint64_t sz = m->size - 28;
    if (sz == with.total * 4) {
        *l = with;
    } else if (sz == without.total * 4) {
        c->has_freq_cis = 0;
        *l = without;
    } else {
        return em_errorf(err, "%s: %zu bytes, but its config (dim %d, "
                         "hidden_dim %d, n_layers %d, n_heads %d, n_kv_heads "
                         "%d, vocab %d %s, seq_len %d) needs %llu bytes (or "
                         "%llu with the legacy RoPE tables)", path, m->size,
                         c->dim, c->hidden_dim, c->n_layers, c->n_heads,
                         c->n_kv_heads, c->vocab_size,
                         c->shared_classifier ? "shared" : "unshared",
                         c->seq_len,
                         (unsigned long long)(28 + without.total * 4),
                         (unsigned long long)(28 + with.total * 4));
    }
    return 0;
}

static int is_byte_piece(const uint8_t *s, int32_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' &&
           strchr(hex, s[3]) && strchr(hex, s[4]) && s[3] && s[4];
}

/* One piece as GGUF stores it: spaces back to U+2581. */
static char *restore_piece(const uint8_t *s, int32_t n)
{
    em_buf b = {0};
    for (int32_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            em_buf_put(&b, "\xe2\x96\x81", 3);
        else
            em_buf_putc(&b, (char)s[i]);
    }
    return b.s ? em_buf_take(&b) : em_strdup("");
}

typedef struct vocab {
    char **tokens;
    float *scores;
    int32_t *types;
    int32_t n;
} vocab;

static void vocab_free(vocab *v)
{
    for (int32_t i = 0; v->tokens && i < v->n; i++)
        free(v->tokens[i]);
    free(v->tokens);
    free(v->scores);
    free(v->types);
}

static int read_vocab(const char *path, const mapped *m, int32_t n_vocab,
                      vocab *v, em_err *err)
{
    size_t pos = 4;
    if (m->size < 4)
        return em_errorf(err, "%s: too small for a llama2.c tokenizer", path);
    v->n = n_vocab;
    v->tokens = em_calloc((size_t)n_vocab, sizeof *v->tokens);
    v->scores = em_calloc((size_t)n_vocab, sizeof *v->scores);
    v->types = em_calloc((size_t)n_vocab, sizeof *v->types);
    for (int32_t i = 0; i < n_vocab; i++) {
        if (m->size - pos < 8)
            return em_errorf(err, "%s: at byte %zu: token %d of %d is "
                             "missing (file ends; the model's vocab_size is "
                             "%d)", path, pos, i, n_vocab, n_vocab);
        memcpy(&v->scores[i], m->p + pos, 4);
        int32_t len = rd_i32(m->p + pos + 4);
        if (len < 0 || (size_t)len > m->size - pos - 8)
            return em_errorf(err, "%s: at byte %zu: token %d: length %d runs "
                             "past end of file (size %zu)", path, pos + 4, i,
                             len, m->size);
        const uint8_t *s = m->p + pos + 8;
        pos += 8 + (size_t)len;
        static const char *special[] = {"<unk>", "<s>", "</s>"};
        static const int special_type[] = {TT_UNKNOWN, TT_CONTROL, TT_CONTROL};
        if (i < 3) {
            v->tokens[i] = em_strdup(special[i]);
            v->types[i] = special_type[i];
        } else {
            v->tokens[i] = restore_piece(s, len);
            v->types[i] = len == 0 ? TT_CONTROL
                        : is_byte_piece(s, len) ? TT_BYTE : TT_NORMAL;
        }
    }
    return 0;
}

static void set_metadata(gguf_writer *w, const llama2c_config *c,
                         ggml_type type, const char *model_path,
                         const vocab *v)
{
    const char *base = strrchr(model_path, '/');
    base = base ? base + 1 : model_path;
    size_t n = strlen(base);
    if (n > 4 && !strcmp(base + n - 4, ".bin"))
        n -= 4;
    char name[256];
    snprintf(name, sizeof name, "llama2.c %.*s", (int)(n < 200 ? n : 200), base);
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "general.name", name);
    gguf_writer_set_u32(w, "general.file_type", gguf_file_type(type));
    if (ggml_block_size(type) > 1)
        gguf_writer_set_u32(w, "general.quantization_version", 2);
    gguf_writer_set_u32(w, "llama.context_length", (uint32_t)c->seq_len);
    gguf_writer_set_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    gguf_writer_set_u32(w, "llama.feed_forward_length", (uint32_t)c->hidden_dim);
    gguf_writer_set_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    gguf_writer_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv",
                        (uint32_t)c->n_kv_heads);
    gguf_writer_set_u32(w, "llama.rope.dimension_count",
                        (uint32_t)(c->dim / c->n_heads));
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    gguf_writer_set_u32(w, "llama.vocab_size", (uint32_t)c->vocab_size);
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.pre", "default");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens",
                            (const char *const *)v->tokens, (size_t)v->n);
    gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", v->scores, (size_t)v->n);
    gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", v->types,
                            (size_t)v->n);
    gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", 0);
}

/* Adds one tensor of ne = {ne0, ne1} (ne1 = 0: a vector). Matrices are
 * stored as `type` (row by row through quant.c); vectors (the norms)
 * stay F32, as llama.cpp keeps them. */
static void add(gguf_writer *w, ggml_type type, const char *name,
                const float *p, int64_t ne0, int64_t ne1)
{
    int64_t ne[2] = {ne0, ne1};
    if (!ne1 || type == GGML_F32) {
        size_t n = (size_t)ne0 * (size_t)(ne1 ? ne1 : 1);
        gguf_writer_add_tensor(w, name, GGML_F32, ne1 ? 2 : 1, ne, p,
                               n * sizeof(float));
        return;
    }
    size_t row = ggml_type_size(type, ne0);
    unsigned char *q = em_malloc(row * (size_t)ne1);
    for (int64_t r = 0; r < ne1; r++)
        quant_quantize_row(type, p + r * ne0, q + (size_t)r * row, ne0);
    gguf_writer_add_tensor(w, name, type, 2, ne, q, row * (size_t)ne1);
    free(q);
}

static void add_layer(gguf_writer *w, ggml_type type,
                      const llama2c_config *c, const float *base,
                      const layout *l, int64_t i)
{
    int64_t D = c->dim, H = c->hidden_dim,
            KV = (int64_t)(c->dim / c->n_heads) * c->n_kv_heads;
    uint64_t off = l->emb;
    const float *rms_att = base + off, *wq = rms_att + l->rms_att,
        *wk = wq + l->wq, *wv = wk + l->wk, *wo = wv + l->wv,
        *rms_ffn = wo + l->wo, *w1 = rms_ffn + l->rms_ffn, *w2 = w1 + l->w1,
        *w3 = w2 + l->w2;
    char name[64];
#define ADD(suffix, p, a, b) \
    (snprintf(name, sizeof name, "blk.%lld." suffix, (long long)i), \
     add(w, type, name, (p), (a), (b)))
    ADD("attn_norm.weight", rms_att + i * D, D, 0);
    ADD("attn_q.weight", wq + i * D * D, D, D);
    ADD("attn_k.weight", wk + i * D * KV, D, KV);
    ADD("attn_v.weight", wv + i * D * KV, D, KV);
    ADD("attn_output.weight", wo + i * D * D, D, D);
    ADD("ffn_norm.weight", rms_ffn + i * D, D, 0);
    ADD("ffn_gate.weight", w1 + i * D * H, D, H);
    ADD("ffn_down.weight", w2 + i * H * D, H, D);
    ADD("ffn_up.weight", w3 + i * D * H, D, H);
#undef ADD
}

/* The tensors, in llama.cpp's order. A shared classifier is written out
 * as output.weight too, so that loaders need not know about tying. */
static void add_tensors(gguf_writer *w, ggml_type type,
                        const llama2c_config *c, const float *base,
                        const layout *l)
{
    int64_t D = c->dim, V = c->vocab_size;
    add(w, type, "token_embd.weight", base, D, V);
    for (int64_t i = 0; i < c->n_layers; i++)
        add_layer(w, type, c, base, l, i);
    uint64_t off = l->emb + l->rms_att + l->wq + l->wk + l->wv + l->wo +
                   l->rms_ffn + l->w1 + l->w2 + l->w3;
    add(w, type, "output_norm.weight", base + off, D, 0);
    off += l->rms_final + l->freq;
    add(w, type, "output.weight", c->shared_classifier ? base : base + off,
        D, V);
}

/* The matrices' row lengths (dim, hidden_dim) must be whole blocks. */
static int check_type(const char *path, const llama2c_config *c,
                      ggml_type type, em_err *err)
{
    if (type != GGML_F32 && !quant_supported(type))
        return em_errorf(err, "cannot write tensors of type %s",
                         ggml_type_name(type));
    int bs = ggml_block_size(type);
    if (c->dim % bs || c->hidden_dim % bs)
        return em_errorf(err, "%s: dim %d and hidden_dim %d must be "
                         "multiples of %d to store %s", path, c->dim,
                         c->hidden_dim, bs, ggml_type_name(type));
    return 0;
}

int llama2c_convert(const char *model_path, const char *tok_path,
                    const char *out_path, ggml_type type,
                    llama2c_config *cfg, em_err *err)
{
    mapped model, tok = {0};
    llama2c_config c = {0};
    layout l = {0};
    vocab v = {0};
    gguf_writer *w = NULL;
    int rc = -1;
    if (map_file(model_path, &model, err))
        return -1;
    if (read_config(model_path, &model, &c, &l, err) ||
        check_type(model_path, &c, type, err) ||
        map_file(tok_path, &tok, err) ||
        read_vocab(tok_path, &tok, c.vocab_size, &v, err))
        goto done;
    w = gguf_writer_new();
    set_metadata(w, &c, type, model_path, &v);
    /* Floats start at byte 28: 4-byte aligned in the page-aligned map. */
    add_tensors(w, type, &c, (const float *)(const void *)(model.p + 28), &l);
    if (gguf_writer_write(w, out_path, err))
        goto done;
    if (cfg)
        *cfg = c;
    rc = 0;
done:
    gguf_writer_free(w);
    vocab_free(&v);
    unmap_file(&tok);
    unmap_file(&model);
    return rc;
}

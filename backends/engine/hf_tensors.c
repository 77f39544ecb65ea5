/*
 * hf_tensors.c - a checkpoint's tensors under GGUF names and layouts.
 *
 * Owns: the name maps of the three architecture families (Hugging Face
 * name -> GGUF name, the shape config.json implies, the rearranging it
 * needs), the check of every tensor's dtype and shape against config.json,
 * and the rearranging itself:
 *   - llama Q/K rows: Hugging Face rotates pairs (i, i + d/2) of each head
 *     ("rotate_half"); llama.cpp's llama graph, and emerge's, rotate
 *     adjacent pairs (2i, 2i+1), so the rows are permuted as llama.cpp's
 *     converter permutes them. Permuting instead of switching the rotation
 *     keeps the attention's sums in the GGUF file's order: the same model
 *     read either way gives bit-identical logits.
 *   - GPT-NeoX's fused QKV rows are grouped per head ([q_h; k_h; v_h]);
 *     the GGUF layout is [Q; K; V].
 *   - GPT-2's Conv1D matrices are stored [in, out]; GGUF rows are outputs.
 * A tensor needing none of that, of a type the engine computes with, at an
 * address aligned for its elements, is a view into the mapping; the rest
 * are copied into buffers the gguf_file keeps. Real checkpoints carry
 * buffers a model does not use (the causal mask `attn.bias`,
 * `masked_bias`, `rotary_emb.inv_freq`): those are skipped by name, and
 * any other tensor the map does not know is an error, so weights that
 * disagree with config.json never load as a silently different model.
 */
#include "backends/engine/hf_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/quant.h"

/* Dimensions a map entry names, resolved from config.json. */
enum { D_NONE, D_E, D_KV, D_QKV, D_3E, D_F, D_V, D_POS };
/* Rearranging (hf_int.h's HF_X_*). */
enum { X_NONE = HF_X_NONE, X_PERM_Q = HF_X_PERM_Q, X_PERM_K = HF_X_PERM_K,
       X_QKV_HEADS = HF_X_QKV_HEADS, X_TRANSPOSE = HF_X_TRANSPOSE };
/* When an entry must be there. */
enum { REQ, QKV_BIAS, OUTPUT };

typedef struct tmap {
    const char *hf, *gguf;
    int rows, cols;           /* the Hugging Face shape; cols D_NONE: 1-D */
    int x, when;
} tmap;

/* Per layer: names after the layer prefix. */
static const tmap neox_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", D_E, D_NONE, 0, REQ},
    {"input_layernorm.bias", "attn_norm.bias", D_E, D_NONE, 0, REQ},
    {"post_attention_layernorm.weight", "ffn_norm.weight", D_E, D_NONE, 0, REQ},
    {"post_attention_layernorm.bias", "ffn_norm.bias", D_E, D_NONE, 0, REQ},
    {"attention.query_key_value.weight", "attn_qkv.weight", D_QKV, D_E,
     X_QKV_HEADS, REQ},
    {"attention.query_key_value.bias", "attn_qkv.bias", D_QKV, D_NONE,
     X_QKV_HEADS, REQ},
    {"attention.dense.weight", "attn_output.weight", D_E, D_E, 0, REQ},
    {"attention.dense.bias", "attn_output.bias", D_E, D_NONE, 0, REQ},
    {"mlp.dense_h_to_4h.weight", "ffn_up.weight", D_F, D_E, 0, REQ},
    {"mlp.dense_h_to_4h.bias", "ffn_up.bias", D_F, D_NONE, 0, REQ},
    {"mlp.dense_4h_to_h.weight", "ffn_down.weight", D_E, D_F, 0, REQ},
    {"mlp.dense_4h_to_h.bias", "ffn_down.bias", D_E, D_NONE, 0, REQ},
    {0},
};
static const tmap neox_global[] = {
    {"gpt_neox.embed_in.weight", "token_embd.weight", D_V, D_E, 0, REQ},
    {"gpt_neox.final_layer_norm.weight", "output_norm.weight", D_E, D_NONE,
     0, REQ},
    {"gpt_neox.final_layer_norm.bias", "output_norm.bias", D_E, D_NONE, 0,
     REQ},
    {"embed_out.weight", "output.weight", D_V, D_E, 0, OUTPUT},
    {0},
};
static const char *const neox_skip[] = {".attention.bias",
    ".attention.masked_bias", ".attention.rotary_emb.inv_freq", NULL};

static const tmap llama_layer[] = {
    {"input_layernorm.weight", "attn_norm.weight", D_E, D_NONE, 0, REQ},
    {"post_attention_layernorm.weight", "ffn_norm.weight", D_E, D_NONE, 0, REQ},
    {"self_attn.q_proj.weight", "attn_q.weight", D_E, D_E, X_PERM_Q, REQ},
    {"self_attn.k_proj.weight", "attn_k.weight", D_KV, D_E, X_PERM_K, REQ},
    {"self_attn.v_proj.weight", "attn_v.weight", D_KV, D_E, 0, REQ},
    {"self_attn.o_proj.weight", "attn_output.weight", D_E, D_E, 0, REQ},
    {"self_attn.q_proj.bias", "attn_q.bias", D_E, D_NONE, X_PERM_Q, QKV_BIAS},
    {"self_attn.k_proj.bias", "attn_k.bias", D_KV, D_NONE, X_PERM_K, QKV_BIAS},
    {"self_attn.v_proj.bias", "attn_v.bias", D_KV, D_NONE, 0, QKV_BIAS},
    {"mlp.gate_proj.weight", "ffn_gate.weight", D_F, D_E, 0, REQ},
    {"mlp.up_proj.weight", "ffn_up.weight", D_F, D_E, 0, REQ},
    {"mlp.down_proj.weight", "ffn_down.weight", D_E, D_F, 0, REQ},
    {0},
};
static const tmap llama_global[] = {
    {"model.embed_tokens.weight", "token_embd.weight", D_V, D_E, 0, REQ},
    {"model.norm.weight", "output_norm.weight", D_E, D_NONE, 0, REQ},
    {"lm_head.weight", "output.weight", D_V, D_E, 0, OUTPUT},
    {0},
};
static const char *const llama_skip[] = {".self_attn.rotary_emb.inv_freq",
    NULL};

static const tmap gpt2_layer[] = {
    {"ln_1.weight", "attn_norm.weight", D_E, D_NONE, 0, REQ},
    {"ln_1.bias", "attn_norm.bias", D_E, D_NONE, 0, REQ},
    {"ln_2.weight", "ffn_norm.weight", D_E, D_NONE, 0, REQ},
    {"ln_2.bias", "ffn_norm.bias", D_E, D_NONE, 0, REQ},
    {"attn.c_attn.weight", "attn_qkv.weight", D_E, D_3E, X_TRANSPOSE, REQ},
    {"attn.c_attn.bias", "attn_qkv.bias", D_3E, D_NONE, 0, REQ},
    {"attn.c_proj.weight", "attn_output.weight", D_E, D_E, X_TRANSPOSE, REQ},
    {"attn.c_proj.bias", "attn_output.bias", D_E, D_NONE, 0, REQ},
    {"mlp.c_fc.weight", "ffn_up.weight", D_E, D_F, X_TRANSPOSE, REQ},
    {"mlp.c_fc.bias", "ffn_up.bias", D_F, D_NONE, 0, REQ},
    {"mlp.c_proj.weight", "ffn_down.weight", D_F, D_E, X_TRANSPOSE, REQ},
    {"mlp.c_proj.bias", "ffn_down.bias", D_E, D_NONE, 0, REQ},
    {0},
};
static const tmap gpt2_global[] = {
    {"wte.weight", "token_embd.weight", D_V, D_E, 0, REQ},
    {"wpe.weight", "position_embd.weight", D_POS, D_E, 0, REQ},
    {"ln_f.weight", "output_norm.weight", D_E, D_NONE, 0, REQ},
    {"ln_f.bias", "output_norm.bias", D_E, D_NONE, 0, REQ},
    {"lm_head.weight", "output.weight", D_V, D_E, 0, OUTPUT},
    {0},
};
static const char *const gpt2_skip[] = {".attn.bias", ".attn.masked_bias",
    NULL};

typedef struct arch_map {
    const char *layer_prefix;  /* with %d */
    const tmap *layer, *global;
    const char *const *skip;   /* suffixes of buffers to skip */
} arch_map;

static const arch_map *map_of(model_arch a)
{
    static const arch_map llama = {"model.layers.%d.", llama_layer,
                                   llama_global, llama_skip};
    static const arch_map gpt2 = {"h.%d.", gpt2_layer, gpt2_global,
                                  gpt2_skip};
    static const arch_map neox = {"gpt_neox.layers.%d.", neox_layer,
                                  neox_global, neox_skip};
    return a == MODEL_LLAMA ? &llama : a == MODEL_GPT2 ? &gpt2 : &neox;
}

/* ------------------------------------------------------------- lookup */

typedef struct found {
    const st_file *file;
    const st_tensor *t;
    int shard, index;
} found;

/* GPT-2 files are saved both from GPT2Model ("h.0...") and from
 * GPT2LMHeadModel ("transformer.h.0..."): try both. */
static int find(const hf_dir *d, const char *name, found *f)
{
    char alt[256];
    snprintf(alt, sizeof alt, "transformer.%s", name);
    for (int pass = 0; pass < 2; pass++) {
        if (pass && d->arch != MODEL_GPT2)
            break;
        for (int s = 0; s < d->n_shards; s++) {
            const st_tensor *t = st_find(d->shards[s], pass ? alt : name);
            if (t) {
                *f = (found){d->shards[s], t, s,
                             (int)(t - d->shards[s]->tensors)};
                return 1;
            }
        }
    }
    return 0;
}

int64_t hf_embedding_rows(const hf_dir *d, em_err *err)
{
    const tmap *e = &map_of(d->arch)->global[0];
    found f;
    if (!find(d, e->hf, &f))
        return em_errorf(err, "%s: no tensor '%s' (the token embedding) in "
                         "any shard", d->dir, e->hf);
    if (f.t->n_dims != 2 || f.t->shape[0] <= 0 || f.t->shape[0] > 1 << 30)
        return em_errorf(err, "%s: tensor '%s' is not a [n_vocab, %d] "
                         "matrix", f.file->path, e->hf, d->n_embd);
    return f.t->shape[0];
}

/* ---------------------------------------------------------- checking */

static int64_t dim_of(const hf_dir *d, int k)
{
    int64_t kv = (int64_t)d->n_head_kv * (d->n_embd / d->n_head);
    switch (k) {
    case D_E: return d->n_embd;
    case D_KV: return kv;
    case D_QKV: return d->n_embd + 2 * kv;
    case D_3E: return 3 * (int64_t)d->n_embd;
    case D_F: return d->n_ff;
    case D_V: return d->n_vocab;
    case D_POS: return d->n_ctx;
    }
    return 1;
}

static int dtype_type(const char *dtype, ggml_type *t)
{
    if (!strcmp(dtype, "F32"))
        *t = GGML_F32;
    else if (!strcmp(dtype, "F16"))
        *t = GGML_F16;
    else if (!strcmp(dtype, "BF16"))
        *t = GGML_BF16;
    else
        return -1;
    return 0;
}

static int check(const hf_dir *d, const tmap *m, const found *f,
                 const char *name, ggml_type *type, em_err *err)
{
    if (dtype_type(f->t->dtype, type))
        return em_errorf(err, "%s: tensor '%s' has dtype %s; emerge reads "
                         "F32, F16 and BF16 weights", f->file->path, name,
                         f->t->dtype);
    int64_t r = dim_of(d, m->rows), c = m->cols == D_NONE ? 0 : dim_of(d, m->cols);
    int dims = m->cols == D_NONE ? 1 : 2;
    int ok = f->t->n_dims == dims && f->t->shape[0] == r &&
             (dims == 1 || f->t->shape[1] == c);
    if (!ok) {
        char got[96] = "[", want[64];
        for (int i = 0; i < f->t->n_dims && i < 4; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld",
                     i ? ", " : "", (long long)f->t->shape[i]);
        strcat(got, f->t->n_dims > 4 ? ", ...]" : "]");
        if (dims == 1)
            snprintf(want, sizeof want, "[%lld]", (long long)r);
        else
            snprintf(want, sizeof want, "[%lld, %lld]", (long long)r,
                     (long long)c);
        return em_errorf(err, "%s: tensor '%s' has shape %s, but %s "
                         "(hidden_size %d, %d heads, %d kv heads, "
                         "intermediate %d, vocab %d) makes it %s",
                         f->file->path, name, got, d->config_path, d->n_embd,
                         d->n_head, d->n_head_kv, d->n_ff, d->n_vocab, want);
    }
    return 0;
}

/* -------------------------------------------------------- rearranging */

int64_t hf_src_row(const hf_dir *d, int x, int64_t r)
{
    int64_t hd = d->n_embd / d->n_head;
    if (x == X_PERM_Q || x == X_PERM_K) {
        /* destination (head h, pair i, member s) <- source (h, s, i) */
        int64_t h = r / hd, i = r % hd / 2, s = r % 2;
        return h * hd + s * (hd / 2) + i;
    }
    if (x == X_QKV_HEADS) {
        /* destination [Q; K; V] (j, head h, d) <- source (h, j, d) */
        int64_t E = d->n_embd, j = r / E, h = r % E / hd, k = r % hd;
        return h * 3 * hd + j * hd + k;
    }
    return r;
}

/* The tensor in GGUF row order, in a new buffer: rows x cols elements of
 * es bytes (cols 1 for a vector). */
static void *rearrange(const hf_dir *d, int x, const void *src, int64_t rows,
                       int64_t cols, size_t es)
{
    char *dst = malloc((size_t)(rows * cols) * es);
    if (!dst)
        return NULL;
    const char *s = src;
    if (x == X_TRANSPOSE) { /* source [rows, cols] -> [cols, rows] */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                memcpy(dst + (size_t)(c * rows + r) * es,
                       s + (size_t)(r * cols + c) * es, es);
        return dst;
    }
    size_t row = (size_t)cols * es;
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * row, s + (size_t)hf_src_row(d, x, r) * row, row);
    return dst;
}

/* An n_in x n_out matrix of type t converted to the on-load type. */
static void *convert(const hf_dir *d, const char *name, const void *src,
                     ggml_type t, int64_t n_in, int64_t n_out,
                     size_t *nbytes, em_err *err)
{
    int bs = ggml_block_size(d->type);
    if (n_in % bs) {
        em_errorf(err, "%s: tensor '%s': rows of %lld are not a multiple of "
                  "the %s block of %d; load it as f16, bf16 or f32", d->dir,
                  name, (long long)n_in, ggml_type_name(d->type), bs);
        return NULL;
    }
    size_t in_row = ggml_type_size(t, n_in), out_row = ggml_type_size(d->type, n_in);
    char *out = malloc(out_row * (size_t)n_out);
    float *tmp = malloc(sizeof(float) * (size_t)n_in);
    if (!out || !tmp) {
        free(out);
        free(tmp);
        em_errorf(err, "%s: out of memory converting '%s'", d->dir, name);
        return NULL;
    }
    for (int64_t r = 0; r < n_out; r++) {
        quant_dequantize_row(t, (const char *)src + (size_t)r * in_row, tmp, n_in);
        quant_quantize_row(d->type, tmp, out + (size_t)r * out_row, n_in);
    }
    free(tmp);
    *nbytes = out_row * (size_t)n_out;
    return out;
}

/* ------------------------------------------------------------ mapping */

static int add_one(hf_dir *d, gguf_file *g, const tmap *m, const found *f,
                   const char *name, const char *gname, em_err *err)
{
    ggml_type t = GGML_F32;
    if (check(d, m, f, name, &t, err))
        return -1;
    size_t es = ggml_type_size(t, 1);
    int two = m->cols != D_NONE;
    int64_t rows = f->t->shape[0], cols = two ? f->t->shape[1] : 1;
    const void *data = f->t->data;
    void *own = NULL;
    if (!d->shapes_only && (m->x != X_NONE || (uintptr_t)data % es)) {
        own = rearrange(d, m->x, data, rows, cols, es);
        if (!own)
            return em_errorf(err, "%s: out of memory for '%s'", d->dir, name);
        data = own;
    }
    /* GGUF's ne[0] is the row length: the Hugging Face shape reversed. */
    int64_t ne[2] = {two ? cols : rows, rows};
    if (m->x == X_TRANSPOSE)
        ne[0] = rows, ne[1] = cols;
    if (two && d->has_type && d->type != t && !d->shapes_only) {
        size_t nb;
        void *q = convert(d, name, data, t, ne[0], ne[1], &nb, err);
        free(own);
        if (!q)
            return -1;
        data = own = q;
        t = d->type;
    }
    if (own)
        gguf_keep(g, own, free);
    d->used[f->shard][f->index] = 1;
    return gguf_add_view(g, gname, t, two ? 2 : 1, ne, data, err);
}

/* Whether entry m must be present; OUTPUT entries are skipped when tied. */
static int required(const hf_dir *d, const tmap *m)
{
    return m->when == REQ || (m->when == QKV_BIAS && d->qkv_bias) ||
           (m->when == OUTPUT && !d->tied);
}

static int map_entry(hf_dir *d, gguf_file *g, const tmap *m, int il,
                     em_err *err)
{
    char name[256], gname[128];
    const arch_map *a = map_of(d->arch);
    if (il >= 0) {
        int n = snprintf(name, sizeof name, a->layer_prefix, il);
        snprintf(name + n, sizeof name - (size_t)n, "%s", m->hf);
        snprintf(gname, sizeof gname, "blk.%d.%s", il, m->gguf);
    } else {
        snprintf(name, sizeof name, "%s", m->hf);
        snprintf(gname, sizeof gname, "%s", m->gguf);
    }
    found f;
    if (!find(d, name, &f)) {
        if (!required(d, m))
            return 0;
        return em_errorf(err, "%s: no tensor '%s' in any shard%s", d->dir,
                         name, m->when == OUTPUT ? " (config.json: "
                         "tie_word_embeddings is false)" : m->when == QKV_BIAS
                         ? " (Qwen2 has q/k/v biases)" : "");
    }
    if (m->when == OUTPUT && d->tied) {
        /* Hugging Face ties the head to the embedding and ignores a stored
         * copy; so does emerge (the copy is equal when saved tied). */
        d->used[f.shard][f.index] = 1;
        return 0;
    }
    if (m->when == QKV_BIAS && !d->qkv_bias)
        return em_errorf(err, "%s: tensor '%s' is a bias %s does not declare "
                         "(%s)", f.file->path, name, d->config_path,
                         d->hf_arch);
    return add_one(d, g, m, &f, name, gname, err);
}

static int is_skipped(const hf_dir *d, const char *name)
{
    size_t n = strlen(name);
    for (const char *const *s = map_of(d->arch)->skip; *s; s++) {
        size_t k = strlen(*s);
        if (n > k && !strcmp(name + n - k, *s))
            return 1;
    }
    return 0;
}

/* Every tensor the shards hold is mapped or a known buffer: anything else
 * means the weights are not the model config.json describes. */
static int check_all_used(const hf_dir *d, em_err *err)
{
    for (int s = 0; s < d->n_shards; s++)
        for (int i = 0; i < d->shards[s]->n_tensors; i++) {
            const char *name = d->shards[s]->tensors[i].name;
            if (!d->used[s][i] && !is_skipped(d, name))
                return em_errorf(err, "%s: tensor '%s' is not part of the "
                                 "%s model %s describes (%d layers)",
                                 d->shards[s]->path, name, d->hf_arch,
                                 d->config_path, d->n_layer);
        }
    return 0;
}

int hf_map_tensors(hf_dir *d, gguf_file *g, em_err *err)
{
    const arch_map *a = map_of(d->arch);
    for (const tmap *m = a->global; m->hf; m++)
        if (map_entry(d, g, m, -1, err))
            return -1;
    for (int il = 0; il < d->n_layer; il++)
        for (const tmap *m = a->layer; m->hf; m++)
            if (map_entry(d, g, m, il, err))
                return -1;
    return check_all_used(d, err);
}

int hf_name_of(model_arch arch, const char *gguf, char *hf, size_t cap,
               int *x)
{
    const arch_map *a = map_of(arch);
    int il, n = -1;
    if (sscanf(gguf, "blk.%d.%n", &il, &n) == 1 && n > 0) {
        for (const tmap *m = a->layer; m->hf; m++)
            if (!strcmp(gguf + n, m->gguf)) {
                int k = snprintf(hf, cap, a->layer_prefix, il);
                snprintf(hf + k, cap - (size_t)k, "%s", m->hf);
                *x = m->x;
                return 0;
            }
        return -1;
    }
    for (const tmap *m = a->global; m->hf; m++)
        if (!strcmp(gguf, m->gguf)) {
            snprintf(hf, cap, "%s", m->hf);
            *x = m->x;
            return 0;
        }
    return -1;
}

/*
 * model.c - hyper-parameters, weights and the forward pass (see model.h).
 *
 * Layout of the file: loading (hyper-parameters, then tensors, each check
 * naming the file and the key or tensor), the small kernels (norms, RoPE,
 * GELU, attention, the threaded matrix product; the SIMD-level ones -
 * SwiGLU, RoPE pairs, KV store, softmax, the V product - are ops.h's,
 * called through the table m->ops), then one forward function
 * per architecture that reads top to bottom like the graph llama.cpp
 * builds for it, and the public forward/truncate entry points.
 *
 * Numerics follow llama.cpp's CPU path where it matters for parity:
 *   - norms sum in double and scale by 1/sqrtf(mean + eps);
 *   - RoPE angles come from repeated multiplication by base^(-2/n_rot),
 *     as ggml computes its cos/sin cache;
 *   - the KV cache holds F16 values (llama.cpp's default cache type), so
 *     K, V, the query and the attention probabilities are rounded to F16
 *     where ggml's F16 matrix products round them (opts.kv_exact turns
 *     this off); the cache itself is F32 so attention needs no conversion;
 *   - GELU is the tanh approximation looked up by the F16 value of the
 *     input and rounded to F16, exactly like ggml's GELU table.
 *   - a last-bit difference before one of those roundings can flip it,
 *     so the order of sums and the exp follow the AVX-512 build that made
 *     the reference logits: dot products in 16 lanes reduced by halves
 *     (the kernels), the V product the same way over positions, softmax
 *     and SiLU with ggml's vector expf (ops.c, ops_avx512.c), softmax sums
 *     per block of 16 in float then in double. The F16 fixtures then agree
 *     bit for bit or nearly; test_model.c measures them.
 * All matrix products go through quant_act_init/fill (activations
 * prepared by all threads for prompts) + quant_matmul_rows, split by
 * weight rows into chunks that the pool's threads claim. A layer
 * is four pool jobs (a decoded token waits for the slowest thread four
 * times per layer, so each job does as much as it can without a wait;
 * a prompt has one more before each, to prepare the activations):
 * Q/K/V + RoPE + cache append + attention, one chunk per KV head; the
 * output projection with its bias and residual add; gate and up with
 * SwiGLU (or up with GELU); down with its residual add. The elementwise
 * steps run on the rows the chunk computed, with the same operations in
 * the same order as separate passes, so the numbers do not depend on the
 * thread count or on which thread ran what.
 */
#include "backends/engine/model.h"
#include "backends/engine/hf.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/ops.h"
#include "backends/engine/quant.h"

struct model_scratch {
    float *x;      /* residual stream, [n_batch][n_embd] */
    float *xb;     /* normalised input of a block */
    float *xb2;    /* second normalised input (parallel residual) */
    float *qkv;    /* fused projection output */
    float *q, *k, *v;
    float *att;    /* attention output before the output projection */
    float *tmp, *tmp2;
    float *ff1, *ff2;
    float *scores; /* [nth][n_batch][n_ctx] attention scores per thread */
    float *qh;     /* [nth][n_batch][head_dim] one head's queries */
    float *vt;     /* [nth][head_dim][n_ctx rounded up to 16] V transposed */
    float *rope;   /* [n_batch][n_rot] cos/sin pairs */
    /* Per row of a chunk: its position (RoPE, learned positions) and the
     * cache slots it attends to: [0, vis) and [seg, its own slot]. A plain
     * sequence sees everything up to itself; a branch (model_forward_
     * branches) sees the shared prefix and its own branch. */
    int *pos, *vis, *seg;
};

/* A job's chunks per thread: more than one, so that when a thread is
 * taken off its core for a while (the machine is shared) the others take
 * its remaining chunks instead of waiting for it at the end of the job. */
#define CHUNKS_PER_THREAD 4

/* Fewer rows than this (a decoded token) are not worth the transposed V
 * of the blocked prompt attention nor, with many KV heads, a separate
 * pool job for the attention (ops.h: OPS_VT_ROWS). */
#define ATT_VT_ROWS OPS_VT_ROWS

/* Prompts from this many rows on normalise their rows in a pool job;
 * fewer rows cost less than the job's wake-up and wait. */
#define NORM_PAR_ROWS 16

/* ---------------------------------------------------------------- loading */

static const char *arch_names[] = {"llama", "gpt2", "gptneox"};

static int hp_int(const model *m, const char *key, int required, int def,
                  int *out, em_err *err)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", m->hp.arch_name, key);
    uint64_t v;
    if (!gguf_find_kv(m->gguf, full)) {
        if (required)
            return em_errorf(err, "%s: missing key '%s'", m->gguf->path, full);
        *out = def;
        return 0;
    }
    if (gguf_get_u64(m->gguf, full, &v) != 0)
        return em_errorf(err, "%s: key '%s' is not an integer",
                         m->gguf->path, full);
    if (v > (1u << 30))
        return em_errorf(err, "%s: key '%s' = %llu is out of range",
                         m->gguf->path, full, (unsigned long long)v);
    *out = (int)v;
    return 0;
}

static int hp_float(const model *m, const char *key, double def, float *out,
                    em_err *err)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", m->hp.arch_name, key);
    double v = def;
    if (gguf_find_kv(m->gguf, full) && gguf_get_f64(m->gguf, full, &v) != 0)
        return em_errorf(err, "%s: key '%s' is not a number",
                         m->gguf->path, full);
    *out = (float)v;
    return 0;
}

static int load_arch(model *m, em_err *err)
{
    char *a = gguf_get_str(m->gguf, "general.architecture");
    if (!a)
        return em_errorf(err, "%s: missing key 'general.architecture'",
                         m->gguf->path);
    int found = -1;
    for (int i = 0; i < 3; i++)
        if (!strcmp(a, arch_names[i]))
            found = i;
    if (found < 0) {
        em_errorf(err, "%s: unknown architecture '%s' (emerge runs llama, "
                  "gpt2, gptneox)", m->gguf->path, a);
        free(a);
        return -1;
    }
    free(a);
    m->hp.arch = (model_arch)found;
    snprintf(m->hp.arch_name, sizeof m->hp.arch_name, "%s", arch_names[found]);
    return 0;
}

/* emerge.gelu: "erf" or "tanh" (hf.c, from config.json); absent: ggml's
 * table, as llama.cpp computes GGUF files. */
static int load_gelu(model *m, em_err *err)
{
    char *g = gguf_get_str(m->gguf, "emerge.gelu");
    m->hp.gelu = MODEL_GELU_GGML;
    if (!g)
        return 0;
    int rc = 0;
    if (!strcmp(g, "erf"))
        m->hp.gelu = MODEL_GELU_ERF;
    else if (!strcmp(g, "tanh"))
        m->hp.gelu = MODEL_GELU_TANH;
    else
        rc = em_errorf(err, "%s: key 'emerge.gelu' = '%s' (erf or tanh)",
                       m->gguf->path, g);
    free(g);
    return rc;
}

static int load_hparams(model *m, em_err *err)
{
    model_hparams *h = &m->hp;
    int n_rot_def;
    if (hp_int(m, "embedding_length", 1, 0, &h->n_embd, err) ||
        hp_int(m, "block_count", 1, 0, &h->n_layer, err) ||
        hp_int(m, "feed_forward_length", 1, 0, &h->n_ff, err) ||
        hp_int(m, "attention.head_count", 1, 0, &h->n_head, err) ||
        hp_int(m, "context_length", 1, 0, &h->n_ctx_train, err))
        return -1;
    if (h->n_embd <= 0 || h->n_head <= 0 || h->n_layer <= 0 || h->n_ff <= 0 ||
        h->n_ctx_train <= 0 || h->n_embd % h->n_head)
        return em_errorf(err, "%s: inconsistent hyper-parameters (n_embd %d, "
                         "n_head %d, n_layer %d, n_ff %d, context %d)",
                         m->gguf->path, h->n_embd, h->n_head, h->n_layer,
                         h->n_ff, h->n_ctx_train);
    h->head_dim = h->n_embd / h->n_head;
    if (hp_int(m, "attention.head_count_kv", 0, h->n_head, &h->n_head_kv, err))
        return -1;
    if (h->n_head_kv <= 0 || h->n_head % h->n_head_kv)
        return em_errorf(err, "%s: key '%s.attention.head_count_kv' = %d "
                         "does not divide head_count %d", m->gguf->path,
                         h->arch_name, h->n_head_kv, h->n_head);
    n_rot_def = h->arch == MODEL_GPT2 ? 0 : h->head_dim;
    if (hp_int(m, "rope.dimension_count", 0, n_rot_def, &h->n_rot, err) ||
        hp_float(m, "rope.freq_base", 10000.0, &h->rope_base, err))
        return -1;
    if (h->arch == MODEL_GPT2)
        h->n_rot = 0;
    if (h->n_rot < 0 || h->n_rot > h->head_dim || h->n_rot % 2)
        return em_errorf(err, "%s: key '%s.rope.dimension_count' = %d does "
                         "not fit head size %d", m->gguf->path, h->arch_name,
                         h->n_rot, h->head_dim);
    h->rope_neox = h->arch == MODEL_GPTNEOX;
    if (h->arch == MODEL_LLAMA) {
        if (hp_float(m, "attention.layer_norm_rms_epsilon", 1e-5,
                     &h->norm_eps, err))
            return -1;
    } else if (hp_float(m, "attention.layer_norm_epsilon", 1e-5,
                        &h->norm_eps, err)) {
        return -1;
    }
    if (load_gelu(m, err))
        return -1;
    h->par_res = 0;
    if (h->arch == MODEL_GPTNEOX) {
        h->par_res = 1; /* llama.cpp's default when the key is absent */
        const char *k = "gptneox.use_parallel_residual";
        if (gguf_find_kv(m->gguf, k) && gguf_get_bool(m->gguf, k, &h->par_res))
            return em_errorf(err, "%s: key '%s' is not a bool",
                             m->gguf->path, k);
    }
    return 0;
}

/* "F32, F16, ..." for the types quant.h computes with. */
static void supported_types(char *buf, size_t cap)
{
    static const ggml_type all[] = {
        GGML_F32, GGML_F16, GGML_BF16, GGML_Q4_0, GGML_Q4_1, GGML_Q5_0,
        GGML_Q5_1, GGML_Q8_0, GGML_Q8_1, GGML_Q2_K, GGML_Q3_K, GGML_Q4_K,
        GGML_Q5_K, GGML_Q6_K, GGML_Q8_K,
    };
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof all / sizeof all[0] && len < cap; i++)
        if (quant_supported(all[i]))
            len += (size_t)snprintf(buf + len, cap - len, "%s%s",
                                    len ? ", " : "", ggml_type_name(all[i]));
}

static int check_type(const model *m, const gguf_tensor *t, int64_t n_in,
                      em_err *err)
{
    if (!quant_supported(t->type)) {
        char types[160];
        supported_types(types, sizeof types);
        return em_errorf(err, "%s: tensor '%s' has type %s, which emerge "
                         "cannot compute with (%s)", m->gguf->path, t->name,
                         ggml_type_name(t->type), types);
    }
    if (n_in % ggml_block_size(t->type))
        return em_errorf(err, "%s: tensor '%s': row of %lld is not a "
                         "multiple of the %s block size", m->gguf->path,
                         t->name, (long long)n_in, ggml_type_name(t->type));
    return 0;
}

static int check_shape(const model *m, const gguf_tensor *t, int64_t n0,
                       int64_t n1, em_err *err)
{
    int64_t ne1 = t->n_dims >= 2 ? t->ne[1] : 1;
    int extra = (t->n_dims >= 3 && t->ne[2] != 1) ||
                (t->n_dims >= 4 && t->ne[3] != 1);
    if (t->ne[0] != n0 || ne1 != n1 || extra)
        return em_errorf(err, "%s: tensor '%s' has shape [%lld, %lld], "
                         "expected [%lld, %lld]", m->gguf->path, t->name,
                         (long long)t->ne[0], (long long)ne1, (long long)n0,
                         (long long)n1);
    return 0;
}

/* A weight matrix of n_out rows of n_in, in place in the mapping. */
static int load_mat(model *m, const char *name, int64_t n_in, int64_t n_out,
                    int required, model_mat *out, em_err *err)
{
    memset(out, 0, sizeof *out);
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t)
        return required ? em_errorf(err, "%s: missing tensor '%s'",
                                    m->gguf->path, name) : 0;
    if (check_shape(m, t, n_in, n_out, err) || check_type(m, t, n_in, err))
        return -1;
    out->type = t->type;
    out->data = t->data;
    out->n_in = n_in;
    out->n_out = n_out;
    out->row_bytes = ggml_type_size(t->type, n_in);
    return 0;
}

/* A norm weight or bias vector of n, copied to F32. */
static int load_vec(model *m, const char *name, int64_t n, int required,
                    float **out, em_err *err)
{
    *out = NULL;
    const gguf_tensor *t = gguf_find_tensor(m->gguf, name);
    if (!t)
        return required ? em_errorf(err, "%s: missing tensor '%s'",
                                    m->gguf->path, name) : 0;
    if (check_shape(m, t, n, 1, err) || check_type(m, t, n, err))
        return -1;
    *out = em_malloc(sizeof(float) * (size_t)n);
    quant_dequantize_row(t->type, t->data, *out, n);
    return 0;
}

static int load_layer(model *m, int il, em_err *err)
{
    const model_hparams *h = &m->hp;
    model_layer *l = &m->layers[il];
    int64_t E = h->n_embd, KV = (int64_t)h->n_head_kv * h->head_dim;
    int64_t F = h->n_ff;
    int bias = h->arch != MODEL_LLAMA; /* gpt2/gptneox carry biases */
    char nm[96];
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), nm)
    if (load_vec(m, NAME("attn_norm.weight"), E, 1, &l->attn_norm, err) ||
        load_vec(m, NAME("attn_norm.bias"), E, bias, &l->attn_norm_b, err) ||
        load_vec(m, NAME("ffn_norm.weight"), E, 1, &l->ffn_norm, err) ||
        load_vec(m, NAME("ffn_norm.bias"), E, bias, &l->ffn_norm_b, err) ||
        load_mat(m, NAME("attn_output.weight"), E, E, 1, &l->wo, err) ||
        load_vec(m, NAME("attn_output.bias"), E, bias, &l->bo, err) ||
        load_mat(m, NAME("ffn_up.weight"), E, F, 1, &l->w_up, err) ||
        load_vec(m, NAME("ffn_up.bias"), F, bias, &l->b_up, err) ||
        load_mat(m, NAME("ffn_down.weight"), F, E, 1, &l->w_down, err) ||
        load_vec(m, NAME("ffn_down.bias"), E, bias, &l->b_down, err) ||
        load_mat(m, NAME("ffn_gate.weight"), E, F, h->arch == MODEL_LLAMA,
                 &l->w_gate, err))
        return -1;
    if (h->arch == MODEL_LLAMA) {
        if (load_mat(m, NAME("attn_q.weight"), E, E, 1, &l->wq, err) ||
            load_mat(m, NAME("attn_k.weight"), E, KV, 1, &l->wk, err) ||
            load_mat(m, NAME("attn_v.weight"), E, KV, 1, &l->wv, err) ||
            load_vec(m, NAME("attn_q.bias"), E, 0, &l->bq, err) ||
            load_vec(m, NAME("attn_k.bias"), KV, 0, &l->bk, err) ||
            load_vec(m, NAME("attn_v.bias"), KV, 0, &l->bv, err))
            return -1;
    } else if (load_mat(m, NAME("attn_qkv.weight"), E, E + 2 * KV, 1,
                        &l->wqkv, err) ||
               load_vec(m, NAME("attn_qkv.bias"), E + 2 * KV, 1, &l->bqkv,
                        err)) {
        return -1;
    }
#undef NAME
    return 0;
}

static int load_tensors(model *m, em_err *err)
{
    const model_hparams *h = &m->hp;
    const char *path = m->gguf->path;
    const gguf_tensor *te = gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!te)
        return em_errorf(err, "%s: missing tensor 'token_embd.weight'", path);
    if (te->n_dims != 2 || te->ne[0] != h->n_embd || te->ne[1] <= 0 ||
        te->ne[1] > INT_MAX)
        return em_errorf(err, "%s: tensor 'token_embd.weight' has shape "
                         "[%lld, %lld], expected [%d, n_vocab]", path,
                         (long long)te->ne[0], (long long)te->ne[1], h->n_embd);
    if (check_type(m, te, h->n_embd, err))
        return -1;
    m->tok_embd = te;
    m->hp.n_vocab = (int)te->ne[1];
    if (h->arch == MODEL_GPT2) {
        const gguf_tensor *tp = gguf_find_tensor(m->gguf, "position_embd.weight");
        if (!tp)
            return em_errorf(err, "%s: missing tensor 'position_embd.weight'",
                             path);
        if (check_shape(m, tp, h->n_embd, tp->ne[1], err) ||
            check_type(m, tp, h->n_embd, err))
            return -1;
        m->pos_embd = tp;
        if (tp->ne[1] < m->hp.n_ctx_train)
            m->hp.n_ctx_train = (int)tp->ne[1];
    }
    int bias = h->arch != MODEL_LLAMA;
    if (load_vec(m, "output_norm.weight", h->n_embd, 1, &m->out_norm, err) ||
        load_vec(m, "output_norm.bias", h->n_embd, bias, &m->out_norm_b, err) ||
        load_mat(m, "output.weight", h->n_embd, h->n_vocab, 0, &m->output, err))
        return -1;
    if (!m->output.data) /* tied: the output projection is token_embd */
        load_mat(m, "token_embd.weight", h->n_embd, h->n_vocab, 1, &m->output,
                 err);
    m->layers = em_calloc((size_t)h->n_layer, sizeof *m->layers);
    for (int il = 0; il < h->n_layer; il++)
        if (load_layer(m, il, err))
            return -1;
    return 0;
}

static void count_params(model *m)
{
    double n = 0;
    for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
        const gguf_tensor *t = &m->gguf->tensors[i];
        double e = 1;
        for (int d = 0; d < t->n_dims; d++)
            e *= (double)t->ne[d];
        n += e;
    }
    m->n_params = n;
}

/* ggml's GELU: tanh approximation of the F16 value, rounded to F16. */
static float gelu_ref(float x)
{
    const float c = 0.79788456080286535587989211986876f; /* sqrt(2/pi) */
    /* 1 + a*x*x as fma(a*x, x, 1): ggml-cpu.c's table init is compiled
     * with that contraction (vmulss, vfmadd213ss); rounded to F16, some
     * table entries then land on the other side of a midpoint */
    return 0.5f * x * (1.0f + tanhf(c * x * fmaf(0.044715f * x, x, 1.0f)));
}

static void build_gelu_table(model *m)
{
    m->gelu_tab = em_malloc(sizeof(float) * 65536);
    for (int i = 0; i < 65536; i++) {
        float x = quant_f16_to_f32((uint16_t)i);
        m->gelu_tab[i] = quant_f16_to_f32(quant_f32_to_f16(gelu_ref(x)));
    }
}

static void alloc_scratch(model *m)
{
    const model_hparams *h = &m->hp;
    size_t B = (size_t)m->n_batch, E = (size_t)h->n_embd;
    size_t KV = (size_t)h->n_head_kv * h->head_dim, F = (size_t)h->n_ff;
    size_t nth = (size_t)pool_size(m->pool);
    model_scratch *s = em_calloc(1, sizeof *s);
    s->x = em_malloc(sizeof(float) * B * E);
    s->xb = em_malloc(sizeof(float) * B * E);
    s->xb2 = em_malloc(sizeof(float) * B * E);
    s->qkv = em_malloc(sizeof(float) * B * (E + 2 * KV));
    s->q = em_malloc(sizeof(float) * B * E);
    s->k = em_malloc(sizeof(float) * B * KV);
    s->v = em_malloc(sizeof(float) * B * KV);
    s->att = em_malloc(sizeof(float) * B * E);
    s->tmp = em_malloc(sizeof(float) * B * E);
    s->tmp2 = em_malloc(sizeof(float) * B * E);
    s->ff1 = em_malloc(sizeof(float) * B * F);
    s->ff2 = em_malloc(sizeof(float) * B * F);
    s->scores = em_malloc(sizeof(float) * nth * B * (size_t)m->n_ctx);
    s->qh = em_malloc(sizeof(float) * nth * B * (size_t)h->head_dim);
    s->vt = em_malloc(sizeof(float) * nth * (size_t)h->head_dim *
                      (size_t)((m->n_ctx + 15) / 16 * 16));
    s->rope = em_malloc(sizeof(float) * B * (size_t)(h->n_rot ? h->n_rot : 1));
    s->pos = em_malloc(sizeof(int) * B);
    s->vis = em_malloc(sizeof(int) * B);
    s->seg = em_malloc(sizeof(int) * B);
    m->s = s;
}

static void free_scratch(model_scratch *s)
{
    if (!s)
        return;
    float *all[] = {s->x, s->xb, s->xb2, s->qkv, s->q, s->k, s->v, s->att,
                    s->tmp, s->tmp2, s->ff1, s->ff2, s->scores, s->qh, s->rope,
                    s->vt};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
    free(s->pos);
    free(s->vis);
    free(s->seg);
    free(s);
}

static int alloc_cache(model *m, em_err *err)
{
    size_t KV = (size_t)m->hp.n_head_kv * m->hp.head_dim;
    size_t n = (size_t)m->hp.n_layer * (size_t)m->n_ctx * KV;
    /* calloc: pages of an unused context are never touched, so a long
     * n_ctx costs address space, not memory. */
    m->k_type = m->kv_f16 ? GGML_F16 : GGML_F32;
    m->k_cache = calloc(n, m->kv_f16 ? sizeof(uint16_t) : sizeof(float));
    m->v_cache = calloc(n, sizeof(float));
    m->tokens = calloc((size_t)m->n_ctx, sizeof(int32_t));
    if (!m->k_cache || !m->v_cache || !m->tokens)
        return em_errorf(err, "%s: cannot allocate a KV cache of %d tokens",
                         m->gguf->path, m->n_ctx);
    return 0;
}

int model_build(const char *path, const model_opts *opts, model **out,
                em_err *err)
{
    model_opts def = {0};
    if (!opts)
        opts = &def;
    model *m = em_calloc(1, sizeof *m);
    hf_opts ho = {opts->load_type, opts->n_ctx, 0};
    if (hf_open_path(path, &ho, &m->gguf, err) != 0) {
        free(m);
        return -1;
    }
    if (load_arch(m, err) || load_hparams(m, err) || load_tensors(m, err))
        goto fail;
    count_params(m);
    m->n_ctx = m->hp.n_ctx_train < MODEL_MAX_CTX ? m->hp.n_ctx_train
                                                  : MODEL_MAX_CTX;
    if (opts->n_ctx > 0)
        m->n_ctx = opts->n_ctx < m->hp.n_ctx_train ? opts->n_ctx
                                                    : m->hp.n_ctx_train;
    m->n_batch = opts->n_batch > 0 ? opts->n_batch : 256;
    if (m->n_batch > m->n_ctx)
        m->n_batch = m->n_ctx;
    m->kv_f16 = !opts->kv_exact;
    m->ops = *quant_ops(); /* the level EMERGE_SIMD (or the CPU) chose */
    /* the blocked prompt attention gives ops_avx512.c's V sums only with
     * the AVX-512 float kernels' reduction order */
    m->att_blocks = strcmp(m->ops.name, "avx512") == 0;
    if (m->hp.arch != MODEL_LLAMA)
        build_gelu_table(m);
    if (pool_build(opts->n_threads, &m->pool, err) || alloc_cache(m, err))
        goto fail;
    alloc_scratch(m);
    *out = m;
    return 0;
fail:
    model_free(m);
    return -1;
}

void model_free(model *m)
{
    if (!m)
        return;
    for (int il = 0; m->layers && il < m->hp.n_layer; il++) {
        model_layer *l = &m->layers[il];
        float *v[] = {l->attn_norm, l->attn_norm_b, l->ffn_norm, l->ffn_norm_b,
                      l->bq, l->bk, l->bv, l->bqkv, l->bo, l->b_up, l->b_down};
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            free(v[i]);
    }
    free(m->layers);
    free(m->out_norm);
    free(m->out_norm_b);
    free(m->gelu_tab);
    free(m->k_cache);
    free(m->v_cache);
    free(m->tokens);
    free_scratch(m->s);
    pool_free(m->pool);
    gguf_close(m->gguf);
    free(m);
}

/* ---------------------------------------------------------------- kernels */

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)(x[i] * x[i]); /* float square, double sum: as ggml */
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        o[i] = x[i] * scale * w[i];
}

static void layernorm(float *o, const float *x, const float *w,
                      const float *b, int n, float eps)
{
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    float mean = (float)(sum / n);
    for (int i = 0; i < n; i++) {
        o[i] = x[i] - mean;
        ss += (double)(o[i] * o[i]);
    }
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++)
        o[i] = o[i] * scale * w[i] + (b ? b[i] : 0.0f);
}

typedef struct norm_job {
    const model *m;
    float *o;
    const float *x, *w, *b;
    int T;
} norm_job;

static void norm_range(const norm_job *j, long t0, long t1)
{
    int E = j->m->hp.n_embd;
    for (long t = t0; t < t1; t++) {
        if (j->m->hp.arch == MODEL_LLAMA)
            rmsnorm(j->o + (size_t)t * E, j->x + (size_t)t * E, j->w, E,
                    j->m->hp.norm_eps);
        else
            layernorm(j->o + (size_t)t * E, j->x + (size_t)t * E, j->w, j->b,
                      E, j->m->hp.norm_eps);
    }
}

static void norm_chunk(void *arg, int c, int nc, int tid)
{
    norm_job *j = arg;
    long lo, hi;
    (void)tid;
    pool_split(j->T, c, nc, 1, &lo, &hi);
    norm_range(j, lo, hi);
}

/* The block's input normalisation over T rows (rows are independent). */
static void norm_rows(const model *m, float *o, const float *x, int T,
                      const float *w, const float *b)
{
    norm_job j = {m, o, x, w, b, T};
    int nth = pool_size(m->pool);
    if (T < NORM_PAR_ROWS || nth == 1)
        norm_range(&j, 0, T);
    else
        pool_run_chunks(m->pool, norm_chunk, &j, nth * CHUNKS_PER_THREAD);
}

static void add_bias(float *x, int T, int n, const float *b)
{
    if (!b)
        return;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i++)
            x[(size_t)t * n + i] += b[i];
}

static void gelu(const model *m, float *x, size_t n)
{
    if (m->hp.gelu == MODEL_GELU_ERF) {
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        return;
    }
    if (m->hp.gelu == MODEL_GELU_TANH) {
        const float c = 0.79788456080286535588f; /* sqrt(2/pi) */
        for (size_t i = 0; i < n; i++)
            x[i] = 0.5f * x[i] * (1.0f + tanhf(c * (x[i] + 0.044715f *
                                                    x[i] * x[i] * x[i])));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (x[i] <= -10.0f)
            x[i] = 0.0f;
        else if (x[i] < 10.0f)
            x[i] = m->gelu_tab[quant_f32_to_f16(x[i])];
    }
}

/* cos/sin of the rotary angles of the T rows' positions: pair i turns by
 * pos * base^(-2i/n_rot), the power built by repeated multiplication. */
static void rope_table(const model *m, int T)
{
    int nr = m->hp.n_rot;
    float theta_scale = powf(m->hp.rope_base, -2.0f / (float)nr);
    for (int t = 0; t < T; t++) {
        float theta = (float)m->s->pos[t], *cs = m->s->rope + (size_t)t * nr;
        for (int i = 0; i < nr; i += 2) {
            cs[i] = cosf(theta);
            cs[i + 1] = sinf(theta);
            theta *= theta_scale;
        }
    }
}

/* Rotates the first n_rot dims of heads [h0, h1) of T rows of n_heads:
 * pairs (i, i + n_rot/2) for NEOX (no FMA contraction in ISO C mode, so
 * every value is as before; the gptneox fixture matches llama.cpp
 * exactly), else adjacent pairs with ops.h's fused steps. */
static void rope_apply(const model *m, float *x, int T, int n_heads, int h0,
                       int h1)
{
    int hd = m->hp.head_dim, nr = m->hp.n_rot, half = nr / 2;
    for (int t = 0; t < T; t++) {
        const float *cs = m->s->rope + (size_t)t * nr;
        for (int h = h0; h < h1; h++) {
            float *v = x + ((size_t)t * n_heads + h) * hd;
            if (m->hp.rope_neox) {
                for (int i = 0; i < half; i++) {
                    float c = cs[2 * i], s = cs[2 * i + 1];
                    float x0 = v[i], x1 = v[i + half];
                    v[i] = x0 * c - x1 * s;
                    v[i + half] = x0 * s + x1 * c;
                }
            } else {
                m->ops.rope_pairs(v, cs, nr);
            }
        }
    }
}

/* Chunks for a product of n_out weight rows: CHUNKS_PER_THREAD per
 * thread, but at least 16 rows (one kernel tile) each. */
static int mm_chunks(const model *m, int64_t n_out)
{
    int64_t nth = pool_size(m->pool), tiles = (n_out + 15) / 16;
    int64_t c = nth == 1 ? 1 : nth * CHUNKS_PER_THREAD;
    return (int)(c < tiles ? c : tiles > 0 ? tiles : 1);
}

/* The activations of x prepared once per distinct (type, width) among
 * n matrices: a[k] serves w[k]. */
typedef struct mm_acts {
    quant_act act[3];
    quant_act *a[3];
    int own[3];
    int n;
} mm_acts;

/* Filling prepared activations (quantising, or packing for the float
 * kernels) costs about as much as 2-3% of a prompt's products; from this
 * many rows on, the pool's threads share it instead of one thread doing
 * it while the others wait. */
#define ACTS_PARALLEL_ROWS 32

typedef struct acts_fill_job {
    mm_acts *A;
    const float *x;
    int T;
} acts_fill_job;

static void acts_fill_chunk(void *arg, int c, int nc, int tid)
{
    acts_fill_job *j = arg;
    long lo, hi;
    (void)tid;
    pool_split(j->T, c, nc, 1, &lo, &hi);
    for (int k = 0; k < j->A->n; k++)
        if (j->A->own[k])
            quant_act_fill(j->A->a[k], j->x, lo, hi);
}

static void acts_prepare(model *m, mm_acts *A, const model_mat *const *w,
                         int n, const float *x, int T)
{
    A->n = n;
    for (int k = 0; k < n; k++) {
        A->a[k] = NULL;
        A->own[k] = 0;
        for (int p = 0; p < k; p++)
            if (w[p]->type == w[k]->type && w[p]->n_in == w[k]->n_in)
                A->a[k] = A->a[p];
        if (!A->a[k]) {
            quant_act_init(&A->act[k], w[k]->type, T, w[k]->n_in);
            A->own[k] = 1;
            A->a[k] = &A->act[k];
        }
    }
    acts_fill_job j = {A, x, T};
    int nth = pool_size(m->pool);
    if (nth > 1 && T >= ACTS_PARALLEL_ROWS)
        pool_run_chunks(m->pool, acts_fill_chunk, &j, nth * CHUNKS_PER_THREAD);
    else
        acts_fill_chunk(&j, 0, 1, 0);
}

static void acts_free(mm_acts *A)
{
    for (int k = 0; k < A->n; k++)
        if (A->own[k])
            quant_act_free(&A->act[k]);
}

/* Rows [lo, hi) of W times the prepared activations into out (row
 * stride ld, element i of a row at out[i]). */
static void mat_rows(const model_mat *w, const quant_act *a, int64_t lo,
                     int64_t hi, float *out, int64_t ld)
{
    if (lo < hi)
        quant_matmul_rows(w->type, w->data, w->n_in, a, lo, hi, out, ld);
}

/* What a product job does to each chunk of its first output once the
 * chunk is computed, all elementwise, so a thread finishes its own rows
 * without waiting for the others: add a bias, then an activation
 * (SwiGLU with the second output, or GELU), then add the result into a
 * residual stream. The same per-element operations in the same order as
 * separate passes over the whole matrix would do. */
enum { POST_NONE, POST_SWIGLU, POST_GELU };

typedef struct mm_job {
    const model *m;
    const model_mat *w[3];
    mm_acts acts;
    float *out[3];
    int n, T, n_chunks;
    int act;             /* POST_* */
    const float *bias;   /* added to out[0] first, or NULL */
    float *resid;        /* resid += out[0] last, or NULL */
} mm_job;

static void mm_post(const mm_job *j, int64_t lo, int64_t hi)
{
    size_t n0 = (size_t)j->w[0]->n_out, len = (size_t)(hi - lo);
    for (int t = 0; t < j->T; t++) {
        float *o = j->out[0] + (size_t)t * n0 + lo;
        if (j->bias)
            ops_add(o, j->bias + lo, len);
        if (j->act == POST_SWIGLU)
            j->m->ops.swiglu(o, j->out[1] + (size_t)t * n0 + lo, len);
        else if (j->act == POST_GELU)
            gelu(j->m, o, len);
        if (j->resid)
            ops_add(j->resid + (size_t)t * n0 + lo, o, len);
    }
}

static void mm_chunk(void *arg, int c, int nc, int tid)
{
    mm_job *j = arg;
    long lo, hi;
    (void)tid;
    for (int k = 0; k < j->n; k++) {
        pool_split((long)j->w[k]->n_out, c, nc, 16, &lo, &hi);
        mat_rows(j->w[k], j->acts.a[k], lo, hi, j->out[k], j->w[k]->n_out);
    }
    pool_split((long)j->w[0]->n_out, c, nc, 16, &lo, &hi);
    if (lo < hi && (j->bias || j->act != POST_NONE || j->resid))
        mm_post(j, lo, hi);
}

/* out[k] = W[k] x for T rows (up to three matrices sharing the input),
 * then the post-processing of j (act, bias, resid; see mm_job) on out[0].
 * One pool job. */
static void matmul_post(model *m, const float *x, int T, int n,
                        const model_mat *const *w, float *const *out,
                        int act, const float *bias, float *resid)
{
    mm_job j = {.m = m, .n = n, .T = T, .act = act, .bias = bias,
                .resid = resid};
    int64_t rows = 0;
    for (int k = 0; k < n; k++) {
        j.w[k] = w[k];
        j.out[k] = out[k];
        rows = w[k]->n_out > rows ? w[k]->n_out : rows;
    }
    acts_prepare(m, &j.acts, w, n, x, T);
    pool_run_chunks(m->pool, mm_chunk, &j, mm_chunks(m, rows));
    acts_free(&j.acts);
}

static void matmul_n(model *m, const float *x, int T, int n,
                     const model_mat *const *w, float *const *out)
{
    matmul_post(m, x, T, n, w, out, POST_NONE, NULL, NULL);
}

static void matmul(model *m, const model_mat *w, const float *x, int T,
                   float *out)
{
    matmul_n(m, x, T, 1, &w, &out);
}

/* Both caches are [n_layer][n_head_kv][n_ctx][head_dim]: the keys of one
 * head form a matrix of n_ctx rows, so the scores of a head are one
 * matrix product (quant_matmul_rows) as in llama.cpp, where K is an F16
 * tensor and the queries are rounded to F16 for the product. V holds
 * F32 copies of F16 values (its product is done here, row by row). */
static size_t kv_row(const model *m, int il, int hk, int slot)
{
    return (((size_t)il * m->hp.n_head_kv + (size_t)hk) * (size_t)m->n_ctx +
            (size_t)slot) * (size_t)m->hp.head_dim;
}

/* Appends T rows of K and V of KV heads [hk0, hk1) at slots p0.. of
 * layer il. */
static void kv_store(model *m, int il, int T, int p0, int hk0, int hk1)
{
    int hd = m->hp.head_dim, HK = m->hp.n_head_kv;
    size_t KV = (size_t)HK * hd;
    for (int t = 0; t < T; t++)
        for (int hk = hk0; hk < hk1; hk++) {
            const float *k = m->s->k + (size_t)t * KV + (size_t)hk * hd;
            const float *v = m->s->v + (size_t)t * KV + (size_t)hk * hd;
            size_t r = kv_row(m, il, hk, p0 + t);
            if (m->kv_f16) {
                m->ops.kv_store_f16(k, v, (uint16_t *)m->k_cache + r,
                                    m->v_cache + r, hd);
                continue;
            }
            memcpy((float *)m->k_cache + r, k, sizeof(float) * (size_t)hd);
            memcpy(m->v_cache + r, v, sizeof(float) * (size_t)hd);
        }
}

/* Rows of a prompt in a plain sequence (row t sees slots 0..p0+t) go in
 * blocks of this many: a block's scores need only the keys its last row
 * sees (with 64, a 256-token prompt computes 1.25x the causal triangle
 * instead of the whole 2x square), and its probabilities times V are one
 * product with the packed float kernels. */
#define ATT_BLOCK 64

static int att_rows_plain(const model *m, int T, int p0)
{
    for (int t = 0; t < T; t++)
        if (m->s->vis[t] != p0 + t + 1 || m->s->seg[t] != p0 + t + 1)
            return 0;
    return 1;
}

/* attend_head for plain rows, block by block. Each output is the same sum
 * as ops_avx512.c's from V transposed: lanes over the slots 16 at a time
 * from slot 0, reduced in _mm512_reduce_add_ps's order (the AVX-512 float kernels'
 * order); the slots past a row's own are multiplied by probabilities set
 * to zero, which adds nothing. The scores of a row do not depend on the
 * other rows in the product (quant_matmul_rows). */
static void attend_head_blocks(model *m, int T, int p0, const char *K,
                               const float *V, float scale, float *S,
                               const float *qb, float *vt, float *out)
{
    int hd = m->hp.head_dim, E = m->hp.n_embd;
    int64_t ldk = (p0 + T + 15) / 16 * 16;
    ops_transpose_v(V, p0 + T, hd, ldk, vt); /* once: each block uses a prefix */
    for (int t0 = 0; t0 < T; t0 += ATT_BLOCK) {
        int t1 = T - t0 < ATT_BLOCK ? T : t0 + ATT_BLOCK, rows = t1 - t0;
        int nk = p0 + t1, kb = (nk + 15) / 16 * 16;
        quant_act a;
        quant_act_prepare(&a, m->k_type, qb + (size_t)t0 * hd, rows, hd);
        quant_matmul_rows(m->k_type, K, hd, &a, 0, nk, S, kb);
        quant_act_free(&a);
        for (int t = t0; t < t1; t++) {
            float *sr = S + (size_t)(t - t0) * kb;
            int n = p0 + t + 1;
            for (int k = 0; k < n; k++)
                sr[k] *= scale;
            m->ops.softmax_probs(sr, n, m->kv_f16);
            memset(sr + n, 0, sizeof(float) * (size_t)(kb - n));
        }
        quant_act_prepare(&a, GGML_F32, S, rows, kb);
        quant_matmul_rows_strided(GGML_F32, vt, kb, (size_t)ldk * sizeof(float),
                                  &a, 0, hd, out + (size_t)t0 * E, E);
        quant_act_free(&a);
    }
}

/* All T rows of head h: scores for every key slot below p0+T in one
 * product, then per row the visible ones, softmax and the V sum. */
static void attend_head(model *m, int il, int T, int p0, int h, float *S,
                        float *qb, float *vt)
{
    int hd = m->hp.head_dim, E = m->hp.n_embd;
    int hk = h / (m->hp.n_head / m->hp.n_head_kv), n_keys = p0 + T;
    size_t ks = m->kv_f16 ? sizeof(uint16_t) : sizeof(float);
    const char *K = (const char *)m->k_cache + kv_row(m, il, hk, 0) * ks;
    const float *V = m->v_cache + kv_row(m, il, hk, 0);
    float scale = 1.0f / sqrtf((float)hd);
    for (int t = 0; t < T; t++)
        memcpy(qb + (size_t)t * hd, m->s->q + (size_t)t * E + (size_t)h * hd,
               sizeof(float) * (size_t)hd);
    if (m->att_blocks && T >= ATT_VT_ROWS && hd % 16 == 0 &&
        att_rows_plain(m, T, p0)) {
        attend_head_blocks(m, T, p0, K, V, scale, S, qb, vt,
                           m->s->att + (size_t)h * hd);
        return;
    }
    quant_act a;
    quant_act_prepare(&a, m->k_type, qb, T, hd);
    quant_matmul_rows(m->k_type, K, hd, &a, 0, n_keys, S, n_keys);
    quant_act_free(&a);
    for (int t = 0; t < T; t++) {
        float *sr = S + (size_t)t * n_keys;
        int nv = m->s->vis[t], seg = m->s->seg[t];
        int n = nv + (p0 + t + 1 - seg);
        for (int k = 0; k < n; k++) /* slot(k) >= k: in place is safe */
            sr[k] = sr[ops_att_slot(k, nv, seg)] * scale;
        m->ops.softmax_probs(sr, n, m->kv_f16);
    }
    ops_attv av = {S, n_keys, V, hd, T, p0, m->s->vis, m->s->seg, vt,
                   m->s->att + (size_t)h * hd, E};
    m->ops.attend_v(&av);
}

/* Splits fused Q|K|V rows (contiguous blocks, as llama.cpp views them). */
static void split_qkv(model *m, int T)
{
    size_t E = (size_t)m->hp.n_embd;
    size_t KV = (size_t)m->hp.n_head_kv * m->hp.head_dim, W = E + 2 * KV;
    model_scratch *s = m->s;
    for (int t = 0; t < T; t++) {
        const float *r = s->qkv + (size_t)t * W;
        memcpy(s->q + (size_t)t * E, r, E * sizeof(float));
        memcpy(s->k + (size_t)t * KV, r + E, KV * sizeof(float));
        memcpy(s->v + (size_t)t * KV, r + E + KV, KV * sizeof(float));
    }
}

static void bias_range(float *x, const float *b, int64_t lo, int64_t hi)
{
    if (b)
        for (int64_t i = lo; i < hi; i++)
            x[i] += b[i];
}

/* The attention block of layer il, from its normalised input s->xb to
 * s->att: Q, K and V (separate or fused weights, with biases), RoPE, the
 * cache append and causal attention. For a decoded token (fewer than
 * ATT_VT_ROWS rows) with at least as many KV heads as threads it is one
 * job of a chunk per KV head: the chunk's rows of Q, K and V, then the
 * attention of the heads that share that KV head, so no thread waits
 * between the products and the attention. Otherwise - prompts, where the
 * per-head pieces cost more in cache misses (pp256 Q4_0: 8% more CPU)
 * than the extra wait - the products are one job split by rows and the
 * attention another, split by heads. Either way every number is computed
 * by the same operations. */
typedef struct att_job {
    model *m;
    const model_layer *l;
    int il, T, p0;
    mm_acts acts; /* s->xb prepared for the Q/K/V weights (chunk per KV) */
} att_job;

/* Per-thread attention scratch: scores and one head's queries. */
static float *att_scores(const model *m, int tid)
{
    return m->s->scores + (size_t)tid * (size_t)m->n_batch * (size_t)m->n_ctx;
}

static float *att_qbuf(const model *m, int tid)
{
    return m->s->qh + (size_t)tid * (size_t)m->n_batch *
                          (size_t)m->hp.head_dim;
}

static float *att_vt(const model *m, int tid)
{
    return m->s->vt + (size_t)tid * (size_t)m->hp.head_dim *
                          (size_t)((m->n_ctx + 15) / 16 * 16);
}

/* Q, K, V of KV head g (and its query heads) for the T rows, biased and
 * rotated, K and V appended to the cache. */
static void qkv_group(att_job *j, int g)
{
    model *m = j->m;
    const model_hparams *h = &m->hp;
    const model_layer *l = j->l;
    model_scratch *s = m->s;
    int T = j->T, hd = h->head_dim, G = h->n_head / h->n_head_kv;
    int64_t E = h->n_embd, KV = (int64_t)h->n_head_kv * hd;
    int64_t q0 = (int64_t)g * G * hd, q1 = q0 + (int64_t)G * hd;
    int64_t k0 = (int64_t)g * hd, k1 = k0 + hd;
    size_t fs = sizeof(float);
    if (l->wqkv.data) {
        int64_t W = E + 2 * KV;
        const quant_act *a = j->acts.a[0];
        mat_rows(&l->wqkv, a, q0, q1, s->qkv, W);
        mat_rows(&l->wqkv, a, E + k0, E + k1, s->qkv, W);
        mat_rows(&l->wqkv, a, E + KV + k0, E + KV + k1, s->qkv, W);
        for (int t = 0; t < T; t++) {
            float *r = s->qkv + (size_t)t * W;
            bias_range(r, l->bqkv, q0, q1);
            bias_range(r, l->bqkv, E + k0, E + k1);
            bias_range(r, l->bqkv, E + KV + k0, E + KV + k1);
            memcpy(s->q + t * E + q0, r + q0, (size_t)(q1 - q0) * fs);
            memcpy(s->k + t * KV + k0, r + E + k0, (size_t)hd * fs);
            memcpy(s->v + t * KV + k0, r + E + KV + k0, (size_t)hd * fs);
        }
    } else {
        mat_rows(&l->wq, j->acts.a[0], q0, q1, s->q, E);
        mat_rows(&l->wk, j->acts.a[1], k0, k1, s->k, KV);
        mat_rows(&l->wv, j->acts.a[2], k0, k1, s->v, KV);
        for (int t = 0; t < T; t++) {
            bias_range(s->q + t * E, l->bq, q0, q1);
            bias_range(s->k + t * KV, l->bk, k0, k1);
            bias_range(s->v + t * KV, l->bv, k0, k1);
        }
    }
    if (h->n_rot) {
        rope_apply(m, s->q, T, h->n_head, g * G, (g + 1) * G);
        rope_apply(m, s->k, T, h->n_head_kv, g, g + 1);
    }
    kv_store(m, j->il, T, j->p0, g, g + 1);
}

static void att_group_chunk(void *arg, int g, int ng, int tid)
{
    att_job *j = arg;
    model *m = j->m;
    int G = m->hp.n_head / m->hp.n_head_kv;
    (void)ng;
    qkv_group(j, g);
    for (int h = g * G; h < (g + 1) * G; h++)
        attend_head(m, j->il, j->T, j->p0, h, att_scores(m, tid),
                    att_qbuf(m, tid), att_vt(m, tid));
}

static void att_head_chunk(void *arg, int h, int nh, int tid)
{
    att_job *j = arg;
    (void)nh;
    attend_head(j->m, j->il, j->T, j->p0, h, att_scores(j->m, tid),
                att_qbuf(j->m, tid), att_vt(j->m, tid));
}

static void attention_block(model *m, const model_layer *l, int il, int T,
                            int p0)
{
    const model_hparams *h = &m->hp;
    model_scratch *s = m->s;
    const model_mat *sep[3] = {&l->wq, &l->wk, &l->wv};
    const model_mat *fused[1] = {&l->wqkv};
    int is_fused = l->wqkv.data != NULL;
    att_job j = {.m = m, .l = l, .il = il, .T = T, .p0 = p0};
    if (h->n_head_kv >= pool_size(m->pool) && T < ATT_VT_ROWS) {
        acts_prepare(m, &j.acts, is_fused ? fused : sep, is_fused ? 1 : 3,
                     s->xb, T);
        pool_run_chunks(m->pool, att_group_chunk, &j, h->n_head_kv);
        acts_free(&j.acts);
        return;
    }
    int KV = h->n_head_kv * h->head_dim;
    if (is_fused) {
        matmul(m, &l->wqkv, s->xb, T, s->qkv);
        add_bias(s->qkv, T, h->n_embd + 2 * KV, l->bqkv);
        split_qkv(m, T);
    } else {
        float *o[3] = {s->q, s->k, s->v};
        matmul_n(m, s->xb, T, 3, sep, o);
        add_bias(s->q, T, h->n_embd, l->bq);
        add_bias(s->k, T, KV, l->bk);
        add_bias(s->v, T, KV, l->bv);
    }
    if (h->n_rot) {
        rope_apply(m, s->q, T, h->n_head, 0, h->n_head);
        rope_apply(m, s->k, T, h->n_head_kv, 0, h->n_head_kv);
    }
    kv_store(m, il, T, p0, 0, h->n_head_kv);
    pool_run_chunks(m->pool, att_head_chunk, &j, h->n_head);
}

static void embed(model *m, const int32_t *tok, int T)
{
    size_t E = (size_t)m->hp.n_embd;
    const gguf_tensor *te = m->tok_embd;
    size_t rb = ggml_type_size(te->type, (int64_t)E);
    for (int t = 0; t < T; t++) {
        float *x = m->s->x + (size_t)t * E;
        quant_dequantize_row(te->type, (const char *)te->data + rb * (size_t)tok[t],
                             x, (int64_t)E);
        if (m->pos_embd) {
            const gguf_tensor *tp = m->pos_embd;
            size_t pb = ggml_type_size(tp->type, (int64_t)E);
            quant_dequantize_row(tp->type,
                                 (const char *)tp->data + pb * (size_t)m->s->pos[t],
                                 m->s->tmp, (int64_t)E);
            ops_add(x, m->s->tmp, E);
        }
    }
}

/* Final norm and output projection of rows [r0, r1) of the chunk. */
static void output_logits(model *m, int r0, int r1, float *logits)
{
    size_t E = (size_t)m->hp.n_embd;
    norm_rows(m, m->s->xb, m->s->x + (size_t)r0 * E, r1 - r0, m->out_norm,
              m->out_norm_b);
    matmul(m, &m->output, m->s->xb, r1 - r0, logits);
}

/* ---------------------------------------------------------- architectures */

/* llama: pre-RMSNorm, RoPE (adjacent pairs), GQA, SwiGLU FFN. Four
 * jobs per layer: attention (with Q, K, V), the output projection added
 * into the residual, gate and up with SwiGLU, down added into the
 * residual. */
static void forward_llama(model *m, int T, int p0)
{
    const model_hparams *h = &m->hp;
    model_scratch *s = m->s;
    if (h->n_rot)
        rope_table(m, T);
    for (int il = 0; il < h->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        norm_rows(m, s->xb, s->x, T, l->attn_norm, NULL);
        attention_block(m, l, il, T, p0);
        const model_mat *wo = &l->wo, *wd = &l->w_down;
        matmul_post(m, s->att, T, 1, &wo, &s->tmp, POST_NONE, l->bo, s->x);

        norm_rows(m, s->xb, s->x, T, l->ffn_norm, NULL);
        const model_mat *wgu[2] = {&l->w_gate, &l->w_up};
        float *ogu[2] = {s->ff1, s->ff2};
        matmul_post(m, s->xb, T, 2, wgu, ogu, POST_SWIGLU, NULL, NULL);
        matmul_post(m, s->ff1, T, 1, &wd, &s->tmp, POST_NONE, NULL, s->x);
    }
}

/* Fused-QKV attention block shared by gpt2 and gptneox: LayerNorm'd input
 * in s->xb, output projection (with bias) in s->tmp, also added into
 * resid unless that is NULL. */
static void attn_block_fused(model *m, const model_layer *l, int il, int T,
                             int p0, float *resid)
{
    const model_mat *wo = &l->wo;
    attention_block(m, l, il, T, p0);
    matmul_post(m, m->s->att, T, 1, &wo, &m->s->tmp, POST_NONE, l->bo, resid);
}

/* GELU FFN with biases: out = W_down gelu(W_up in + b_up) + b_down, also
 * added into resid. */
static void ffn_gelu(model *m, const model_layer *l, const float *in, int T,
                     float *out, float *resid)
{
    const model_mat *wu = &l->w_up, *wd = &l->w_down;
    matmul_post(m, in, T, 1, &wu, &m->s->ff1, POST_GELU, l->b_up, NULL);
    matmul_post(m, m->s->ff1, T, 1, &wd, &out, POST_NONE, l->b_down, resid);
}

/* gpt2: learned positions (added in embed), pre-LayerNorm blocks. */
static void forward_gpt2(model *m, int T, int p0)
{
    model_scratch *s = m->s;
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        norm_rows(m, s->xb, s->x, T, l->attn_norm, l->attn_norm_b);
        attn_block_fused(m, l, il, T, p0, s->x);
        norm_rows(m, s->xb, s->x, T, l->ffn_norm, l->ffn_norm_b);
        ffn_gelu(m, l, s->xb, T, s->tmp, s->x);
    }
}

/* gptneox: partial NEOX RoPE; with the parallel residual both branches
 * read the block input: x = x + ffn(norm2(x)) + attn(norm1(x)), added in
 * that order. */
static void forward_gptneox(model *m, int T, int p0)
{
    model_scratch *s = m->s;
    size_t E = (size_t)m->hp.n_embd, n = (size_t)T * E;
    if (m->hp.n_rot)
        rope_table(m, T);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        norm_rows(m, s->xb, s->x, T, l->attn_norm, l->attn_norm_b);
        if (m->hp.par_res) {
            attn_block_fused(m, l, il, T, p0, NULL);
            norm_rows(m, s->xb2, s->x, T, l->ffn_norm, l->ffn_norm_b);
            ffn_gelu(m, l, s->xb2, T, s->tmp2, s->x);
            ops_add(s->x, s->tmp, n);
        } else {
            attn_block_fused(m, l, il, T, p0, s->x);
            norm_rows(m, s->xb, s->x, T, l->ffn_norm, l->ffn_norm_b);
            ffn_gelu(m, l, s->xb, T, s->tmp2, s->x);
        }
    }
}

/* ---------------------------------------------------------------- public */

/* Runs T tokens into cache slots n_past..; s->pos/vis/seg are set. */
static void forward_chunk(model *m, const int32_t *tok, int T, int r0, int r1,
                          float *logits)
{
    int p0 = m->n_past;
    embed(m, tok, T);
    switch (m->hp.arch) {
    case MODEL_LLAMA: forward_llama(m, T, p0); break;
    case MODEL_GPT2: forward_gpt2(m, T, p0); break;
    case MODEL_GPTNEOX: forward_gptneox(m, T, p0); break;
    }
    memcpy(m->tokens + p0, tok, sizeof(int32_t) * (size_t)T);
    m->n_past += T;
    m->n_evaluated += (uint64_t)T;
    if (r1 > r0)
        output_logits(m, r0, r1, logits);
}

static int check_tokens(const model *m, const int32_t *tokens, int n,
                        em_err *err)
{
    if (n > m->n_ctx - m->n_past)
        return em_errorf(err, "context full: %d cached + %d new tokens "
                         "exceed n_ctx %d", m->n_past, n, m->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->hp.n_vocab)
            return em_errorf(err, "token id %d out of range (n_vocab %d)",
                             (int)tokens[i], m->hp.n_vocab);
    return 0;
}

int model_forward(model *m, const int32_t *tokens, int n, int r0, int r1,
                  float *logits, em_err *err)
{
    if (n < 0 || r0 < 0 || r1 < r0 || r1 > n)
        return em_errorf(err, "model_forward: bad rows [%d, %d) of %d",
                         r0, r1, n);
    if (check_tokens(m, tokens, n, err))
        return -1;
    for (int c0 = 0; c0 < n; c0 += m->n_batch) {
        int T = n - c0 < m->n_batch ? n - c0 : m->n_batch;
        int a = r0 > c0 ? r0 : c0, b = r1 < c0 + T ? r1 : c0 + T;
        float *out = a < b ? logits + (size_t)(a - r0) * m->hp.n_vocab : NULL;
        for (int t = 0; t < T; t++) { /* a plain sequence sees all before */
            m->s->pos[t] = m->n_past + t;
            m->s->vis[t] = m->s->seg[t] = m->n_past + t + 1;
        }
        forward_chunk(m, tokens + c0, T, a < b ? a - c0 : 0,
                      a < b ? b - c0 : 0, out);
    }
    return 0;
}

int model_forward_branches(model *m, const int32_t *tokens, int n,
                           const int *branch, float *logits, em_err *err)
{
    if (n < 1 || n > m->n_batch)
        return em_errorf(err, "model_forward_branches: %d tokens, at most "
                         "n_batch %d", n, m->n_batch);
    if (check_tokens(m, tokens, n, err))
        return -1;
    int base = m->n_past;
    for (int t = 0; t < n; t++) {
        int b = branch[t];
        if (b != t && (t == 0 || b != branch[t - 1]))
            return em_errorf(err, "model_forward_branches: bad branch start "
                             "%d for token %d", b, t);
        m->s->pos[t] = base + (t - b);
        m->s->vis[t] = base;
        m->s->seg[t] = base + b;
    }
    forward_chunk(m, tokens, n, 0, n, logits);
    model_truncate(m, base); /* branches never stay in the cache */
    return 0;
}

void model_truncate(model *m, int n_past)
{
    if (n_past >= 0 && n_past < m->n_past)
        m->n_past = n_past;
}

int model_common_prefix(const model *m, const int32_t *toks, int n)
{
    int i = 0;
    while (i < n && i < m->n_past && m->tokens[i] == toks[i])
        i++;
    return i;
}

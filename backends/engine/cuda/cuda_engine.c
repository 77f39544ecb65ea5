/*
 * cuda_engine.c - the device forward pass (see cuda_engine.h).
 *
 * Reads top to bottom like model.c: upload, buffers, then one function
 * per architecture. Numerics follow the CPU engine where it rounds: the
 * KV cache holds F16 values and the query is rounded to F16 before the
 * attention product; F16/BF16 weights multiply activations rounded to
 * their type (as the CPU's prepared activations); quantised weights are
 * dequantised exactly and multiplied with F32 (decode) or F16 (prompt)
 * activations, where the CPU uses 8-bit activations - so quantised models
 * agree with the CPU engine to llama.cpp's quantisation noise, not to the
 * last bit.
 */
#include "backends/engine/cuda/cuda_engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backends/engine/quant.h"

typedef struct cuda_layer {
    float *attn_norm, *attn_norm_b, *ffn_norm, *ffn_norm_b;
    float *bq, *bk, *bv, *bqkv, *bo, *b_up, *b_down;
    cuda_wmat wq, wk, wv, wqkv, wo, w_gate, w_up, w_down;
} cuda_layer;

#define SCORE_CHUNK 256 /* logits rows computed at once */

struct cuda_engine {
    const cuda_ops *ops;
    const model *m;
    model_hparams hp;
    cuda_layer *layers;
    void *tok_embd, *pos_embd;
    int te_type, pe_type;
    cuda_wmat output;
    float *out_norm, *out_norm_b, *gelu_tab;
    int max_tok, kv_rows, chunk;
    size_t bytes;
    /* batch buffers */
    float *x, *xb, *xb2, *qkv, *q, *k, *v, *att, *tmp, *tmp2, *ff1, *ff2;
    float *xo, *xo2, *logits;
    uint16_t *kc, *vc;
    int32_t *tok, *pos, *rows, *target, *greedy;
    cuda_range *rng;
    double *lp;
    void **allocs; /* every device allocation, for one free path */
    int n_allocs;
};

/* ---------------------------------------------------------------- upload */

static void *dev_alloc(cuda_engine *e, size_t n, em_err *err)
{
    void *p = e->ops->alloc(e->ops->ctx, n ? n : 1);
    if (!p) {
        em_errorf(err, "%s: cannot allocate %zu bytes of device memory",
                  e->ops->name, n);
        return NULL;
    }
    e->allocs = em_realloc(e->allocs, sizeof *e->allocs * (size_t)(e->n_allocs + 1));
    e->allocs[e->n_allocs++] = p;
    e->bytes += n;
    return p;
}

static int put(cuda_engine *e, void **dst, const void *src, size_t n,
               em_err *err)
{
    *dst = NULL;
    if (!src)
        return 0;
    if (!(*dst = dev_alloc(e, n, err)))
        return -1;
    e->ops->upload(e->ops->ctx, *dst, src, n);
    return 0;
}

static int put_vec(cuda_engine *e, float **dst, const float *src, int64_t n,
                   em_err *err)
{
    return put(e, (void **)dst, src, sizeof(float) * (size_t)n, err);
}

static int put_mat(cuda_engine *e, cuda_wmat *dst, const model_mat *src,
                   em_err *err)
{
    dst->type = (int)src->type;
    dst->n_in = src->n_in;
    dst->n_out = src->n_out;
    return put(e, &dst->d, src->data, src->row_bytes * (size_t)src->n_out, err);
}

static int upload_layer(cuda_engine *e, int il, em_err *err)
{
    const model_layer *l = &e->m->layers[il];
    cuda_layer *d = &e->layers[il];
    int64_t E = e->hp.n_embd, KV = (int64_t)e->hp.n_head_kv * e->hp.head_dim;
    int64_t F = e->hp.n_ff;
    return put_vec(e, &d->attn_norm, l->attn_norm, E, err) ||
           put_vec(e, &d->attn_norm_b, l->attn_norm_b, E, err) ||
           put_vec(e, &d->ffn_norm, l->ffn_norm, E, err) ||
           put_vec(e, &d->ffn_norm_b, l->ffn_norm_b, E, err) ||
           put_vec(e, &d->bq, l->bq, E, err) ||
           put_vec(e, &d->bk, l->bk, KV, err) ||
           put_vec(e, &d->bv, l->bv, KV, err) ||
           put_vec(e, &d->bqkv, l->bqkv, E + 2 * KV, err) ||
           put_vec(e, &d->bo, l->bo, E, err) ||
           put_vec(e, &d->b_up, l->b_up, F, err) ||
           put_vec(e, &d->b_down, l->b_down, E, err) ||
           put_mat(e, &d->wq, &l->wq, err) || put_mat(e, &d->wk, &l->wk, err) ||
           put_mat(e, &d->wv, &l->wv, err) ||
           put_mat(e, &d->wqkv, &l->wqkv, err) ||
           put_mat(e, &d->wo, &l->wo, err) ||
           put_mat(e, &d->w_gate, &l->w_gate, err) ||
           put_mat(e, &d->w_up, &l->w_up, err) ||
           put_mat(e, &d->w_down, &l->w_down, err);
}

static size_t tensor_bytes(const gguf_tensor *t)
{
    return (size_t)ggml_type_size(t->type, t->ne[0]) *
           (size_t)(t->n_dims >= 2 ? t->ne[1] : 1);
}

static int upload_model(cuda_engine *e, em_err *err)
{
    const model *m = e->m;
    e->te_type = (int)m->tok_embd->type;
    if (put(e, &e->tok_embd, m->tok_embd->data, tensor_bytes(m->tok_embd), err))
        return -1;
    if (m->pos_embd) {
        e->pe_type = (int)m->pos_embd->type;
        if (put(e, &e->pos_embd, m->pos_embd->data, tensor_bytes(m->pos_embd),
                err))
            return -1;
    }
    if (m->output.data == m->tok_embd->data) { /* tied: one copy */
        e->output.type = (int)m->output.type;
        e->output.n_in = m->output.n_in;
        e->output.n_out = m->output.n_out;
        e->output.d = e->tok_embd;
    } else if (put_mat(e, &e->output, &m->output, err)) {
        return -1;
    }
    if (put_vec(e, &e->out_norm, m->out_norm, e->hp.n_embd, err) ||
        put_vec(e, &e->out_norm_b, m->out_norm_b, e->hp.n_embd, err) ||
        put_vec(e, &e->gelu_tab, m->gelu_tab, 65536, err))
        return -1;
    e->layers = em_calloc((size_t)e->hp.n_layer, sizeof *e->layers);
    for (int il = 0; il < e->hp.n_layer; il++)
        if (upload_layer(e, il, err))
            return -1;
    return 0;
}

/* ---------------------------------------------------------------- buffers */

/* Device bytes one batch row costs: activations, the KV rows of every
 * layer and the per-row index arrays. */
static size_t row_bytes(const model_hparams *h)
{
    size_t E = (size_t)h->n_embd, KV = (size_t)h->n_head_kv * h->head_dim;
    size_t F = (size_t)h->n_ff;
    size_t acts = 9 * E + (E + 2 * KV) + 2 * KV + 2 * F;
    return sizeof(float) * acts + 2 * 2 * KV * (size_t)h->n_layer +
           sizeof(cuda_range) + 4 * sizeof(int32_t) + sizeof(double) +
           2 * (E > F ? E : F) /* rounded activations for the GEMM */;
}

static int64_t max_matrix(const cuda_engine *e)
{
    int64_t mx = e->output.n_in * e->output.n_out;
    for (int il = 0; il < e->hp.n_layer; il++) {
        const cuda_layer *l = &e->layers[il];
        const cuda_wmat *w[] = {&l->wq, &l->wk, &l->wv, &l->wqkv, &l->wo,
                                &l->w_gate, &l->w_up, &l->w_down};
        for (int k = 0; k < 8; k++)
            if (w[k]->d && w[k]->n_in * w[k]->n_out > mx)
                mx = w[k]->n_in * w[k]->n_out;
    }
    return mx;
}

static int size_batch(cuda_engine *e, int max_tok, em_err *err)
{
    int n_ctx = e->m->n_ctx;
    if (max_tok <= 0) {
        size_t avail = e->ops->mem_free(e->ops->ctx);
        size_t fixed = (size_t)max_matrix(e) * 2 + /* dequantised weights */
                       (size_t)SCORE_CHUNK * ((size_t)e->hp.n_vocab * 4 +
                                              (size_t)e->hp.n_embd * 8);
        size_t use = avail / 10 * 8;
        long fit = use > fixed ? (long)((use - fixed) / row_bytes(&e->hp)) : 0;
        max_tok = fit > 8192 ? 8192 : (int)fit;
        if (max_tok < n_ctx)
            return em_errorf(err, "%s: %zu MiB of device memory left after "
                             "the weights hold %d batch rows, fewer than the "
                             "context of %d", e->ops->name, avail >> 20,
                             max_tok, n_ctx);
    }
    if (max_tok < n_ctx)
        max_tok = n_ctx;
    e->max_tok = max_tok;
    e->kv_rows = max_tok;
    e->chunk = SCORE_CHUNK;
    return 0;
}

static int alloc_buffers(cuda_engine *e, em_err *err)
{
    size_t B = (size_t)e->max_tok, E = (size_t)e->hp.n_embd;
    size_t KV = (size_t)e->hp.n_head_kv * e->hp.head_dim, F = (size_t)e->hp.n_ff;
    size_t C = (size_t)e->chunk, fl = sizeof(float);
    size_t kv = (size_t)e->hp.n_layer * (size_t)e->kv_rows * KV * 2;
    float **f[] = {&e->x, &e->xb, &e->xb2, &e->q, &e->att, &e->tmp, &e->tmp2};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!(*f[i] = dev_alloc(e, fl * B * E, err)))
            return -1;
    if (!(e->qkv = dev_alloc(e, fl * B * (E + 2 * KV), err)) ||
        !(e->k = dev_alloc(e, fl * B * KV, err)) ||
        !(e->v = dev_alloc(e, fl * B * KV, err)) ||
        !(e->ff1 = dev_alloc(e, fl * B * F, err)) ||
        !(e->ff2 = dev_alloc(e, fl * B * F, err)) ||
        !(e->xo = dev_alloc(e, fl * C * E, err)) ||
        !(e->xo2 = dev_alloc(e, fl * C * E, err)) ||
        !(e->logits = dev_alloc(e, fl * C * (size_t)e->hp.n_vocab, err)) ||
        !(e->kc = dev_alloc(e, kv, err)) || !(e->vc = dev_alloc(e, kv, err)) ||
        !(e->tok = dev_alloc(e, 4 * B, err)) ||
        !(e->pos = dev_alloc(e, 4 * B, err)) ||
        !(e->rng = dev_alloc(e, sizeof(cuda_range) * B, err)) ||
        !(e->rows = dev_alloc(e, 4 * C, err)) ||
        !(e->target = dev_alloc(e, 4 * C, err)) ||
        !(e->greedy = dev_alloc(e, 4 * C, err)) ||
        !(e->lp = dev_alloc(e, sizeof(double) * C, err)))
        return -1;
    /* rounded GEMM inputs: a batch, or a chunk of scored rows */
    size_t xmax = (B > C ? B : C) * (E > F ? E : F);
    return e->ops->matmul_reserve(e->ops->ctx, max_matrix(e), (int64_t)xmax,
                                  err);
}

int cuda_engine_build(const model *m, const cuda_ops *ops, int max_tok,
                      cuda_engine **out, em_err *err)
{
    if (m->hp.head_dim > 256)
        return em_errorf(err, "%s: head size %d exceeds the attention "
                         "kernel's 256", ops->name, m->hp.head_dim);
    if (m->hp.arch != MODEL_LLAMA && m->hp.gelu != MODEL_GELU_GGML)
        return em_errorf(err, "%s: the CUDA engine computes GELU through "
                         "ggml's F16 table only, and this model asks for the "
                         "%s form (a checkpoint directory's config.json): "
                         "run it on the native backend", ops->name,
                         m->hp.gelu == MODEL_GELU_ERF ? "erf" : "F32 tanh");
    cuda_engine *e = em_calloc(1, sizeof *e);
    e->ops = ops;
    e->m = m;
    e->hp = m->hp;
    if (upload_model(e, err) || size_batch(e, max_tok, err) ||
        alloc_buffers(e, err) || ops->sync(ops->ctx, err)) {
        cuda_engine_free(e);
        return -1;
    }
    *out = e;
    return 0;
}

void cuda_engine_free(cuda_engine *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->n_allocs; i++)
        e->ops->free(e->ops->ctx, e->allocs[i]);
    free(e->allocs);
    free(e->layers);
    free(e);
}

int cuda_engine_max_tok(const cuda_engine *e) { return e->max_tok; }
size_t cuda_engine_bytes(const cuda_engine *e) { return e->bytes; }

/* ---------------------------------------------------------------- forward */

typedef struct fwd {
    cuda_engine *e;
    const cuda_ops *o;
    int T, row0;
    size_t E, KV;
} fwd;

static void mm(const fwd *f, const cuda_wmat *w, const float *x, float *out)
{
    f->o->matmul(f->o->ctx, w, x, f->T, out);
}

static void norm(const fwd *f, float *out, const float *x, const float *w,
                 const float *b)
{
    f->o->norm(out, x, f->T, (int)f->E, w, b, f->e->hp.norm_eps,
               f->e->hp.arch == MODEL_LLAMA);
}

/* RoPE, K/V store and attention of q (row stride ld_q) and k/v (row
 * stride ld) into e->att. */
static void attend(const fwd *f, int il, float *q, int ld_q, float *k,
                   float *v, int ld)
{
    cuda_engine *e = f->e;
    const model_hparams *h = &e->hp;
    if (h->n_rot) {
        float ts = powf(h->rope_base, -2.0f / (float)h->n_rot);
        f->o->rope(q, ld_q, e->pos, f->T, h->n_head, h->head_dim, h->n_rot,
                   h->rope_neox, ts);
        f->o->rope(k, ld, e->pos, f->T, h->n_head_kv, h->head_dim, h->n_rot,
                   h->rope_neox, ts);
    }
    size_t off = (size_t)il * (size_t)e->kv_rows * f->KV;
    f->o->kv_store(e->kc + off, e->vc + off, k, v, ld, f->T, (int)f->KV,
                   f->row0);
    f->o->attention(e->att, q, ld_q, e->kc + off, e->vc + off, e->rng, f->T,
                    h->n_head, h->n_head_kv, h->head_dim,
                    1.0f / sqrtf((float)h->head_dim));
}

static void forward_llama(const fwd *f)
{
    cuda_engine *e = f->e;
    const cuda_ops *o = f->o;
    int T = f->T, E = (int)f->E, KV = (int)f->KV;
    for (int il = 0; il < e->hp.n_layer; il++) {
        const cuda_layer *l = &e->layers[il];
        norm(f, e->xb, e->x, l->attn_norm, NULL);
        mm(f, &l->wq, e->xb, e->q);
        mm(f, &l->wk, e->xb, e->k);
        mm(f, &l->wv, e->xb, e->v);
        o->bias(e->q, T, E, E, l->bq);
        o->bias(e->k, T, KV, KV, l->bk);
        o->bias(e->v, T, KV, KV, l->bv);
        attend(f, il, e->q, E, e->k, e->v, KV);
        mm(f, &l->wo, e->att, e->tmp);
        o->bias(e->tmp, T, E, E, l->bo);
        o->add(e->x, e->tmp, (int64_t)T * E);

        norm(f, e->xb, e->x, l->ffn_norm, NULL);
        mm(f, &l->w_gate, e->xb, e->ff1);
        mm(f, &l->w_up, e->xb, e->ff2);
        o->swiglu(e->ff1, e->ff2, (int64_t)T * e->hp.n_ff);
        mm(f, &l->w_down, e->ff1, e->tmp);
        o->add(e->x, e->tmp, (int64_t)T * E);
    }
}

/* Fused-QKV attention block of gpt2/gptneox: input e->xb, out e->tmp. */
static void attn_fused(const fwd *f, const cuda_layer *l, int il)
{
    cuda_engine *e = f->e;
    int W = (int)(f->E + 2 * f->KV);
    mm(f, &l->wqkv, e->xb, e->qkv);
    f->o->bias(e->qkv, f->T, W, W, l->bqkv);
    attend(f, il, e->qkv, W, e->qkv + f->E, e->qkv + f->E + f->KV, W);
    mm(f, &l->wo, e->att, e->tmp);
    f->o->bias(e->tmp, f->T, (int)f->E, (int)f->E, l->bo);
}

static void ffn_gelu(const fwd *f, const cuda_layer *l, const float *in,
                     float *out)
{
    cuda_engine *e = f->e;
    mm(f, &l->w_up, in, e->ff1);
    f->o->bias(e->ff1, f->T, e->hp.n_ff, e->hp.n_ff, l->b_up);
    f->o->gelu(e->ff1, (int64_t)f->T * e->hp.n_ff, e->gelu_tab);
    mm(f, &l->w_down, e->ff1, out);
    f->o->bias(out, f->T, (int)f->E, (int)f->E, l->b_down);
}

static void forward_gpt(const fwd *f)
{
    cuda_engine *e = f->e;
    int64_t n = (int64_t)f->T * (int64_t)f->E;
    for (int il = 0; il < e->hp.n_layer; il++) {
        const cuda_layer *l = &e->layers[il];
        norm(f, e->xb, e->x, l->attn_norm, l->attn_norm_b);
        attn_fused(f, l, il);
        if (e->hp.arch == MODEL_GPTNEOX && e->hp.par_res) {
            norm(f, e->xb2, e->x, l->ffn_norm, l->ffn_norm_b);
            ffn_gelu(f, l, e->xb2, e->tmp2);
            f->o->add(e->x, e->tmp2, n);
            f->o->add(e->x, e->tmp, n);
        } else {
            f->o->add(e->x, e->tmp, n);
            norm(f, e->xb, e->x, l->ffn_norm, l->ffn_norm_b);
            ffn_gelu(f, l, e->xb, e->tmp2);
            f->o->add(e->x, e->tmp2, n);
        }
    }
}

int cuda_engine_forward(cuda_engine *e, const cuda_batch *b, int row0,
                        em_err *err)
{
    const cuda_ops *o = e->ops;
    int T = b->n_tok;
    if (T <= 0 || T > e->max_tok || row0 < 0 || row0 + T > e->kv_rows)
        return em_errorf(err, "%s: batch of %d rows at %d does not fit %d "
                         "rows", o->name, T, row0, e->max_tok);
    for (int t = 0; t < T; t++)
        if (b->tok[t] < 0 || b->tok[t] >= e->hp.n_vocab)
            return em_errorf(err, "token id %d out of range (n_vocab %d)",
                             (int)b->tok[t], e->hp.n_vocab);
    o->upload(o->ctx, e->tok, b->tok, 4 * (size_t)T);
    o->upload(o->ctx, e->pos, b->pos, 4 * (size_t)T);
    o->upload(o->ctx, e->rng, b->rng, sizeof(cuda_range) * (size_t)T);
    fwd f = {e, o, T, row0, (size_t)e->hp.n_embd,
             (size_t)e->hp.n_head_kv * e->hp.head_dim};
    o->embed(e->x, e->tok, e->pos, T, e->hp.n_embd, e->te_type, e->tok_embd,
             e->pe_type, e->pos_embd);
    if (e->hp.arch == MODEL_LLAMA)
        forward_llama(&f);
    else
        forward_gpt(&f);
    return o->sync(o->ctx, err);
}

/* Final norm and output projection of n rows listed in e->rows. */
static void project(cuda_engine *e, int n)
{
    const cuda_ops *o = e->ops;
    o->gather(e->xo, e->x, e->rows, n, e->hp.n_embd);
    o->norm(e->xo2, e->xo, n, e->hp.n_embd, e->out_norm, e->out_norm_b,
            e->hp.norm_eps, e->hp.arch == MODEL_LLAMA);
    o->matmul(o->ctx, &e->output, e->xo2, n, e->logits);
}

int cuda_engine_score(cuda_engine *e, const cuda_batch *b, double *lp,
                      int *greedy, em_err *err)
{
    const cuda_ops *o = e->ops;
    int32_t rows[SCORE_CHUNK], tg[SCORE_CHUNK], gr[SCORE_CHUNK];
    for (int s0 = 0; s0 < b->n_score; s0 += e->chunk) {
        int n = b->n_score - s0 < e->chunk ? b->n_score - s0 : e->chunk;
        for (int i = 0; i < n; i++) {
            rows[i] = b->score[s0 + i].row;
            tg[i] = b->score[s0 + i].target;
            if (tg[i] < 0 || tg[i] >= e->hp.n_vocab || rows[i] < 0 ||
                rows[i] >= b->n_tok)
                return em_errorf(err, "score row %d: token %d / row %d out of "
                                 "range", s0 + i, (int)tg[i], (int)rows[i]);
        }
        o->upload(o->ctx, e->rows, rows, 4 * (size_t)n);
        o->upload(o->ctx, e->target, tg, 4 * (size_t)n);
        project(e, n);
        o->logsoftmax(e->logits, e->hp.n_vocab, e->target, n, e->lp, e->greedy);
        o->download(o->ctx, lp + s0, e->lp, sizeof(double) * (size_t)n);
        o->download(o->ctx, gr, e->greedy, 4 * (size_t)n);
        if (o->sync(o->ctx, err))
            return -1;
        for (int i = 0; i < n; i++)
            greedy[s0 + i] = gr[i];
    }
    return 0;
}

int cuda_engine_logits(cuda_engine *e, int row, float *out, em_err *err)
{
    const cuda_ops *o = e->ops;
    int32_t r = row;
    o->upload(o->ctx, e->rows, &r, 4);
    project(e, 1);
    o->download(o->ctx, out, e->logits, sizeof(float) * (size_t)e->hp.n_vocab);
    return o->sync(o->ctx, err);
}

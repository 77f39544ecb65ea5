/*
 * hf_write.c - a GGUF model written out as a Hugging Face checkpoint
 * directory, for tests (hf_write.h).
 *
 * Tensor names and layouts come from the engine's own maps (hf_int.h:
 * hf_name_of, hf_src_row), run backwards; config.json from the GGUF keys;
 * tokenizer.json from tests/hf_tok_write.c.
 */
#include "tests/hf_write.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/engine/gguf.h"
#include "backends/engine/hf_int.h"
#include "backends/engine/quant.h"
#include "tests/hf_tok_write.h"

/* ------------------------------------------------------- safetensors */

static size_t dtype_size(const char *dt)
{
    return !strcmp(dt, "F32") ? 4 : 2;
}

int hf_write_safetensors(const char *path, const hf_wtensor *t, int n,
                         em_err *err)
{
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(h, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_AddObjectToObject(h, t[i].name);
        cJSON_AddStringToObject(e, "dtype", t[i].dtype);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t[i].n_dims; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t[i].shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + t[i].nbytes)));
        off += t[i].nbytes;
    }
    char *json = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    size_t len = strlen(json), pad = (8 - len % 8) % 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(json);
        return em_errorf(err, "%s: cannot create", path);
    }
    uint64_t hl = len + pad;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(hl >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(json, 1, len, f);
    for (size_t i = 0; i < pad; i++)
        fputc(' ', f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 1, t[i].nbytes, f);
    free(json);
    return fclose(f) ? em_errorf(err, "%s: write failed", path) : 0;
}

/* ------------------------------------------------------------ config */

static uint64_t key_u(const gguf_file *g, const char *arch, const char *k,
                      uint64_t def)
{
    char full[128];
    uint64_t v = def;
    snprintf(full, sizeof full, "%s.%s", arch, k);
    gguf_get_u64(g, full, &v);
    return v;
}

static double key_f(const gguf_file *g, const char *arch, const char *k,
                    double def)
{
    char full[128];
    double v = def;
    snprintf(full, sizeof full, "%s.%s", arch, k);
    gguf_get_f64(g, full, &v);
    return v;
}

static cJSON *config_of(const gguf_file *g, const char *arch, int64_t n_vocab,
                        int tied, const char *dtype)
{
    cJSON *c = cJSON_CreateObject();
    uint64_t E = key_u(g, arch, "embedding_length", 0),
        L = key_u(g, arch, "block_count", 0),
        H = key_u(g, arch, "attention.head_count", 1),
        F = key_u(g, arch, "feed_forward_length", 0),
        C = key_u(g, arch, "context_length", 0);
    cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
    const char *torch = !strcmp(dtype, "F16") ? "float16" :
                        !strcmp(dtype, "BF16") ? "bfloat16" : "float32";
    if (!strcmp(arch, "llama")) {
        cJSON_AddItemToArray(archs, cJSON_CreateString("LlamaForCausalLM"));
        cJSON_AddStringToObject(c, "model_type", "llama");
        cJSON_AddNumberToObject(c, "hidden_size", (double)E);
        cJSON_AddNumberToObject(c, "num_hidden_layers", (double)L);
        cJSON_AddNumberToObject(c, "num_attention_heads", (double)H);
        cJSON_AddNumberToObject(c, "num_key_value_heads",
                                (double)key_u(g, arch, "attention.head_count_kv", H));
        cJSON_AddNumberToObject(c, "intermediate_size", (double)F);
        cJSON_AddNumberToObject(c, "max_position_embeddings", (double)C);
        cJSON_AddNumberToObject(c, "rope_theta", key_f(g, arch, "rope.freq_base", 10000));
        cJSON_AddNumberToObject(c, "rms_norm_eps", key_f(g, arch,
                                "attention.layer_norm_rms_epsilon", 1e-5));
        cJSON_AddStringToObject(c, "hidden_act", "silu");
        cJSON_AddNullToObject(c, "rope_scaling");
    } else if (!strcmp(arch, "gptneox")) {
        cJSON_AddItemToArray(archs, cJSON_CreateString("GPTNeoXForCausalLM"));
        cJSON_AddStringToObject(c, "model_type", "gpt_neox");
        cJSON_AddNumberToObject(c, "hidden_size", (double)E);
        cJSON_AddNumberToObject(c, "num_hidden_layers", (double)L);
        cJSON_AddNumberToObject(c, "num_attention_heads", (double)H);
        cJSON_AddNumberToObject(c, "intermediate_size", (double)F);
        cJSON_AddNumberToObject(c, "max_position_embeddings", (double)C);
        cJSON_AddNumberToObject(c, "rotary_pct", (double)key_u(g, arch,
                                "rope.dimension_count", E / H) / (double)(E / H));
        cJSON_AddNumberToObject(c, "rotary_emb_base", key_f(g, arch, "rope.freq_base", 10000));
        cJSON_AddNumberToObject(c, "layer_norm_eps", key_f(g, arch,
                                "attention.layer_norm_epsilon", 1e-5));
        int par = 1;
        gguf_get_bool(g, "gptneox.use_parallel_residual", &par);
        cJSON_AddBoolToObject(c, "use_parallel_residual", par);
        cJSON_AddStringToObject(c, "hidden_act", "gelu");
    } else {
        cJSON_AddItemToArray(archs, cJSON_CreateString("GPT2LMHeadModel"));
        cJSON_AddStringToObject(c, "model_type", "gpt2");
        cJSON_AddNumberToObject(c, "n_embd", (double)E);
        cJSON_AddNumberToObject(c, "n_layer", (double)L);
        cJSON_AddNumberToObject(c, "n_head", (double)H);
        cJSON_AddNumberToObject(c, "n_inner", (double)F);
        cJSON_AddNumberToObject(c, "layer_norm_epsilon", key_f(g, arch,
                                "attention.layer_norm_epsilon", 1e-5));
        cJSON_AddStringToObject(c, "activation_function", "gelu_new");
        const gguf_tensor *p = gguf_find_tensor(g, "position_embd.weight");
        cJSON_AddNumberToObject(c, "n_positions", p ? (double)p->ne[1] : (double)C);
    }
    cJSON_AddNumberToObject(c, "vocab_size", (double)n_vocab);
    cJSON_AddBoolToObject(c, "tie_word_embeddings", tied);
    cJSON_AddStringToObject(c, "torch_dtype", torch);
    return c;
}

static int write_json(const char *dir, const char *name, cJSON *j, em_err *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = cJSON_PrintUnformatted(j);
    FILE *f = fopen(path, "w");
    int ok = f && fputs(s, f) >= 0;
    if (f && fclose(f))
        ok = 0;
    free(s);
    return ok ? 0 : em_errorf(err, "%s: cannot write", path);
}

/* ------------------------------------------------------------ tensors */

/* One GGUF tensor in Hugging Face name, layout and dtype. */
static int tensor_out(const gguf_file *g, const gguf_tensor *t,
                      const char *arch, const hf_dir *d, const char *want,
                      hf_wtensor *o, em_err *err)
{
    model_arch a = !strcmp(arch, "llama") ? MODEL_LLAMA :
                   !strcmp(arch, "gpt2") ? MODEL_GPT2 : MODEL_GPTNEOX;
    char name[256];
    int x;
    if (hf_name_of(a, t->name, name, sizeof name, &x))
        return em_errorf(err, "%s: no Hugging Face name for '%s'", g->path,
                         t->name);
    if (t->type != GGML_F32 && t->type != GGML_F16)
        return em_errorf(err, "%s: '%s' is %s; fixtures are F32/F16",
                         g->path, t->name, ggml_type_name(t->type));
    const char *dt = want ? want : t->type == GGML_F32 ? "F32" : "F16";
    ggml_type ot = !strcmp(dt, "F32") ? GGML_F32 : !strcmp(dt, "F16") ?
                   GGML_F16 : GGML_BF16;
    int64_t cols = t->ne[0], rows = t->n_dims > 1 ? t->ne[1] : 1;
    size_t es = dtype_size(dt);
    char *out = em_malloc((size_t)(rows * cols) * es);
    float *row = em_malloc(sizeof(float) * (size_t)cols);
    size_t in_row = ggml_type_size(t->type, cols);
    for (int64_t r = 0; r < rows; r++) {
        quant_dequantize_row(t->type, (const char *)t->data + (size_t)r * in_row,
                             row, cols);
        if (x == HF_X_TRANSPOSE) { /* GGUF row r = HF column r */
            for (int64_t c = 0; c < cols; c++)
                quant_quantize_row(ot, &row[c], out + (size_t)(c * rows + r) * es, 1);
        } else if (t->n_dims == 1) { /* a vector: elements are the rows */
            for (int64_t c = 0; c < cols; c++)
                quant_quantize_row(ot, &row[c], out + (size_t)hf_src_row(d, x, c) * es, 1);
        } else {
            quant_quantize_row(ot, row, out + (size_t)hf_src_row(d, x, r) *
                               (size_t)cols * es, cols);
        }
    }
    free(row);
    *o = (hf_wtensor){em_strdup(name), dt, t->n_dims, {0}, out,
                      (size_t)(rows * cols) * es};
    if (t->n_dims == 1)
        o->shape[0] = cols;
    else if (x == HF_X_TRANSPOSE)
        o->shape[0] = cols, o->shape[1] = rows;
    else
        o->shape[0] = rows, o->shape[1] = cols;
    return 0;
}

static int by_size(const void *a, const void *b)
{
    const hf_wtensor *x = a, *y = b;
    return (int)dtype_size(y->dtype) - (int)dtype_size(x->dtype);
}

static int write_shards(const char *dir, hf_wtensor *t, int n, int shards,
                        em_err *err)
{
    char path[1024], name[64];
    /* wider types first keep every tensor aligned for its elements */
    qsort(t, (size_t)n, sizeof *t, by_size);
    if (shards <= 1) {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        return hf_write_safetensors(path, t, n, err);
    }
    cJSON *idx = cJSON_CreateObject();
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += t[i].nbytes;
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(idx, "metadata"),
                            "total_size", (double)total);
    cJSON *map = cJSON_AddObjectToObject(idx, "weight_map");
    int rc = 0, per = (n + shards - 1) / shards;
    for (int s = 0; s < shards && !rc; s++) {
        int lo = s * per, hi = lo + per < n ? lo + per : n;
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1,
                 shards);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        for (int i = lo; i < hi; i++)
            cJSON_AddStringToObject(map, t[i].name, name);
        rc = hf_write_safetensors(path, t + lo, hi > lo ? hi - lo : 0, err);
    }
    if (!rc)
        rc = write_json(dir, "model.safetensors.index.json", idx, err);
    cJSON_Delete(idx);
    return rc;
}

int hf_write(const char *gguf_path, const char *dir, const hf_write_opts *o,
             em_err *err)
{
    gguf_file *g;
    if (gguf_open(gguf_path, &g, err))
        return -1;
    mkdir(dir, 0755);
    char *arch = gguf_get_str(g, "general.architecture");
    hf_dir d = {0};
    d.n_embd = (int)key_u(g, arch, "embedding_length", 0);
    d.n_head = (int)key_u(g, arch, "attention.head_count", 1);
    hf_wtensor *t = em_calloc(g->n_tensors + 1, sizeof *t);
    int n = 0, rc = 0;
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++)
        rc = tensor_out(g, &g->tensors[i], arch, &d, o ? o->dtype : NULL,
                        &t[n++], err);
    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    int tied = !gguf_find_tensor(g, "output.weight");
    if (!rc)
        rc = write_shards(dir, t, n, o && o->shards > 1 ? o->shards : 1, err);
    if (!rc) {
        cJSON *c = config_of(g, arch, te ? te->ne[1] : 0, tied,
                             o && o->dtype ? o->dtype : "F32");
        rc = write_json(dir, "config.json", c, err);
        cJSON_Delete(c);
    }
    if (!rc)
        rc = hf_tok_write(g, dir, err);
    for (int i = 0; i < n; i++) {
        free((char *)t[i].name);
        free((void *)t[i].data);
    }
    free(t);
    free(arch);
    gguf_close(g);
    return rc;
}

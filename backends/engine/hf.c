/*
 * hf.c - a Hugging Face checkpoint directory read as a GGUF model (hf.h).
 *
 * Reads config.json into the <arch>.* keys llama.cpp's converter writes,
 * maps the safetensors shards (model.safetensors, or the files
 * model.safetensors.index.json names), asks hf_tokenizer.c for the
 * tokenizer keys and hf_tensors.c for the tensors, and hands back one
 * gguf_file that owns all of it. config.json is checked key by key: an
 * option the engine does not implement is an error naming the key, since
 * ignoring it would evaluate a different model than the one published.
 */
#include "backends/engine/hf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/engine/hf_int.h"
#include "backends/engine/hf_tokenizer.h"
#include "backends/engine/quant.h"

int hf_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = em_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------ JSON */

static int read_json(const char *path, cJSON **out, em_err *err)
{
    char *text;
    size_t len;
    if (em_read_file(path, &text, &len, err))
        return -1;
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!*out || !cJSON_IsObject(*out)) {
        int line = 1;
        for (const char *p = text; end && p < end; p++)
            line += *p == '\n';
        cJSON_Delete(*out);
        *out = NULL;
        free(text);
        return em_errorf(err, "%s:%d: not a JSON object", path, line);
    }
    free(text);
    return 0;
}

/* config.json getters: a present key of the wrong type is an error;
 * a missing one takes def, or is an error when required. */
static int cfg_num(const hf_dir *d, const char *key, int required, double def,
                   double *out, em_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d->config, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return em_errorf(err, "%s: missing key '%s'", d->config_path, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return em_errorf(err, "%s: key '%s' is not a number", d->config_path,
                         key);
    *out = v->valuedouble;
    return 0;
}

static int cfg_int(const hf_dir *d, const char *key, int required, int def,
                   int *out, em_err *err)
{
    double v;
    if (cfg_num(d, key, required, def, &v, err))
        return -1;
    if (v != (double)(int)v || v < 0 || v > (1 << 30))
        return em_errorf(err, "%s: key '%s' = %g is not a count",
                         d->config_path, key, v);
    *out = (int)v;
    return 0;
}

static int cfg_bool(const hf_dir *d, const char *key, int def, int *out,
                    em_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d->config, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return em_errorf(err, "%s: key '%s' is not true or false",
                         d->config_path, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

static const char *cfg_str(const hf_dir *d, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d->config, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A key that, set, asks for something the engine does not compute. */
static int cfg_unsupported(const hf_dir *d, const char *key, const char *why,
                           em_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d->config, key);
    if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
        return 0;
    return em_errorf(err, "%s: key '%s' is set: %s, which emerge does not "
                     "implement", d->config_path, key, why);
}

static int cfg_act(const hf_dir *d, const char *key, const char *const *ok,
                   em_err *err)
{
    const char *a = cfg_str(d, key);
    if (!a)
        return 0;
    for (; *ok; ok++)
        if (!strcmp(a, *ok))
            return 0;
    return em_errorf(err, "%s: key '%s' = \"%s\": emerge computes this "
                     "architecture with %s only", d->config_path, key, a,
                     d->arch == MODEL_LLAMA ? "silu" : "GELU");
}

/* The GELU form config.json names, for model.c (emerge.gelu): "gelu" is
 * the exact erf form in transformers, the others the tanh approximation.
 * def: the transformers default when the key is absent. */
static void set_gelu(const hf_dir *d, const char *key, const char *def,
                     gguf_writer *w)
{
    const char *a = cfg_str(d, key);
    gguf_writer_set_str(w, "emerge.gelu", !strcmp(a ? a : def, "gelu") ?
                        "erf" : "tanh");
}

/* ------------------------------------------------------ architectures */

static int arch_of(hf_dir *d, em_err *err)
{
    static const struct { const char *hf; model_arch a; const char *name; }
    archs[] = {
        {"LlamaForCausalLM", MODEL_LLAMA, "llama"},
        {"MistralForCausalLM", MODEL_LLAMA, "llama"},
        {"Qwen2ForCausalLM", MODEL_LLAMA, "llama"},
        {"GPTNeoXForCausalLM", MODEL_GPTNEOX, "gptneox"},
        {"GPT2LMHeadModel", MODEL_GPT2, "gpt2"},
    };
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(d->config,
                                                      "architectures");
    const cJSON *a0 = cJSON_IsArray(a) ? cJSON_GetArrayItem(a, 0) : NULL;
    if (!cJSON_IsString(a0))
        return em_errorf(err, "%s: key 'architectures' is not a list of "
                         "names", d->config_path);
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(a0->valuestring, archs[i].hf)) {
            d->hf_arch = archs[i].hf;
            d->arch = archs[i].a;
            d->arch_name = archs[i].name;
            return 0;
        }
    return em_errorf(err, "%s: key 'architectures': unknown architecture "
                     "'%s' (emerge reads LlamaForCausalLM, "
                     "MistralForCausalLM, Qwen2ForCausalLM, "
                     "GPTNeoXForCausalLM, GPT2LMHeadModel)", d->config_path,
                     a0->valuestring);
}

static int check_shape(const hf_dir *d, em_err *err)
{
    if (d->n_embd <= 0 || d->n_head <= 0 || d->n_layer <= 0 || d->n_ff <= 0 ||
        d->n_ctx <= 0 || d->n_embd % d->n_head || (d->n_embd / d->n_head) % 2)
        return em_errorf(err, "%s: inconsistent shape: hidden size %d, %d "
                         "heads, %d layers, intermediate %d, context %d",
                         d->config_path, d->n_embd, d->n_head, d->n_layer,
                         d->n_ff, d->n_ctx);
    if (d->n_head_kv <= 0 || d->n_head % d->n_head_kv)
        return em_errorf(err, "%s: key 'num_key_value_heads' = %d does not "
                         "divide num_attention_heads %d", d->config_path,
                         d->n_head_kv, d->n_head);
    return 0;
}

static void set_common(const hf_dir *d, gguf_writer *w)
{
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s." s, d->arch_name), k)
    gguf_writer_set_str(w, "general.architecture", d->arch_name);
    gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)d->n_ctx);
    gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)d->n_embd);
    gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)d->n_layer);
    gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)d->n_ff);
    gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)d->n_head);
#undef KEY
}

/* Mistral and Qwen2 can attend within a sliding window only: exact when
 * the window covers every context emerge will use. */
static int check_window(const hf_dir *d, const hf_opts *o, em_err *err)
{
    int use = 1, win;
    if (cfg_bool(d, "use_sliding_window", 1, &use, err) ||
        cfg_int(d, "sliding_window", 0, 0, &win, err))
        return -1;
    int ctx = o && o->n_ctx > 0 && o->n_ctx < d->n_ctx ? o->n_ctx : d->n_ctx;
    if (use && win > 0 && win < ctx)
        return em_errorf(err, "%s: key 'sliding_window' = %d is shorter "
                         "than the context %d; emerge attends to the whole "
                         "context (run with n_ctx <= %d)", d->config_path,
                         win, ctx, win);
    return 0;
}

static int read_llama(hf_dir *d, const hf_opts *o, gguf_writer *w,
                      em_err *err)
{
    static const char *const acts[] = {"silu", NULL};
    double theta, eps;
    int head_dim = 0, bias = 0, mlp_bias = 0;
    if (cfg_int(d, "hidden_size", 1, 0, &d->n_embd, err) ||
        cfg_int(d, "num_hidden_layers", 1, 0, &d->n_layer, err) ||
        cfg_int(d, "num_attention_heads", 1, 0, &d->n_head, err) ||
        cfg_int(d, "num_key_value_heads", 0, d->n_head, &d->n_head_kv, err) ||
        cfg_int(d, "intermediate_size", 1, 0, &d->n_ff, err) ||
        cfg_int(d, "max_position_embeddings", 1, 0, &d->n_ctx, err) ||
        cfg_int(d, "head_dim", 0, 0, &head_dim, err) ||
        cfg_num(d, "rope_theta", 0, 10000.0, &theta, err) ||
        cfg_num(d, "rms_norm_eps", 0, 1e-6, &eps, err) ||
        cfg_bool(d, "tie_word_embeddings", 0, &d->tied, err) ||
        cfg_bool(d, "attention_bias", 0, &bias, err) ||
        cfg_bool(d, "mlp_bias", 0, &mlp_bias, err) ||
        cfg_act(d, "hidden_act", acts, err) ||
        cfg_unsupported(d, "rope_scaling", "RoPE scaling", err) ||
        check_shape(d, err) || check_window(d, o, err))
        return -1;
    if (head_dim && head_dim != d->n_embd / d->n_head)
        return em_errorf(err, "%s: key 'head_dim' = %d differs from "
                         "hidden_size / num_attention_heads = %d",
                         d->config_path, head_dim, d->n_embd / d->n_head);
    if (bias || mlp_bias)
        return em_errorf(err, "%s: key '%s' is true: biases on every "
                         "projection, which emerge does not implement",
                         d->config_path, bias ? "attention_bias" : "mlp_bias");
    d->qkv_bias = !strcmp(d->hf_arch, "Qwen2ForCausalLM");
    set_common(d, w);
    gguf_writer_set_u32(w, "llama.attention.head_count_kv",
                        (uint32_t)d->n_head_kv);
    gguf_writer_set_u32(w, "llama.rope.dimension_count",
                        (uint32_t)(d->n_embd / d->n_head));
    gguf_writer_set_f32(w, "llama.rope.freq_base", (float)theta);
    gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon",
                        (float)eps);
    return 0;
}

static int read_neox(hf_dir *d, gguf_writer *w, em_err *err)
{
    static const char *const acts[] = {"gelu", "gelu_new", "gelu_fast",
        "gelu_pytorch_tanh", NULL};
    double pct, base, eps;
    int par, bias;
    if (cfg_int(d, "hidden_size", 1, 0, &d->n_embd, err) ||
        cfg_int(d, "num_hidden_layers", 1, 0, &d->n_layer, err) ||
        cfg_int(d, "num_attention_heads", 1, 0, &d->n_head, err) ||
        cfg_int(d, "intermediate_size", 1, 0, &d->n_ff, err) ||
        cfg_int(d, "max_position_embeddings", 1, 0, &d->n_ctx, err) ||
        cfg_num(d, "rotary_pct", 0, 1.0, &pct, err) ||
        cfg_num(d, "rotary_emb_base", 0, 10000.0, &base, err) ||
        cfg_num(d, "layer_norm_eps", 0, 1e-5, &eps, err) ||
        cfg_bool(d, "use_parallel_residual", 1, &par, err) ||
        cfg_bool(d, "attention_bias", 1, &bias, err) ||
        cfg_bool(d, "tie_word_embeddings", 0, &d->tied, err) ||
        cfg_act(d, "hidden_act", acts, err) ||
        cfg_unsupported(d, "rope_scaling", "RoPE scaling", err))
        return -1;
    d->n_head_kv = d->n_head;
    if (check_shape(d, err))
        return -1;
    if (!bias)
        return em_errorf(err, "%s: key 'attention_bias' is false; emerge's "
                         "GPT-NeoX has QKV and output biases", d->config_path);
    int hd = d->n_embd / d->n_head, n_rot = (int)(hd * pct);
    if (pct <= 0 || pct > 1 || n_rot % 2)
        return em_errorf(err, "%s: key 'rotary_pct' = %g gives %d rotary "
                         "dimensions of %d, not an even count", d->config_path,
                         pct, n_rot, hd);
    set_common(d, w);
    gguf_writer_set_u32(w, "gptneox.rope.dimension_count", (uint32_t)n_rot);
    gguf_writer_set_f32(w, "gptneox.rope.freq_base", (float)base);
    gguf_writer_set_f32(w, "gptneox.attention.layer_norm_epsilon", (float)eps);
    gguf_writer_set_bool(w, "gptneox.use_parallel_residual", par);
    set_gelu(d, "hidden_act", "gelu", w);
    return 0;
}

static int read_gpt2(hf_dir *d, gguf_writer *w, em_err *err)
{
    static const char *const acts[] = {"gelu_new", "gelu", "gelu_fast",
        "gelu_pytorch_tanh", NULL};
    double eps;
    int inner;
    if (cfg_int(d, "n_embd", 1, 0, &d->n_embd, err) ||
        cfg_int(d, "n_layer", 1, 0, &d->n_layer, err) ||
        cfg_int(d, "n_head", 1, 0, &d->n_head, err) ||
        cfg_int(d, "n_positions", 1, 0, &d->n_ctx, err) ||
        cfg_int(d, "n_inner", 0, 0, &inner, err) ||
        cfg_num(d, "layer_norm_epsilon", 0, 1e-5, &eps, err) ||
        cfg_bool(d, "tie_word_embeddings", 1, &d->tied, err) ||
        cfg_act(d, "activation_function", acts, err) ||
        cfg_unsupported(d, "scale_attn_by_inverse_layer_idx", "attention "
                        "scaled by 1/layer", err) ||
        cfg_unsupported(d, "add_cross_attention", "cross-attention", err))
        return -1;
    d->n_ff = inner ? inner : 4 * d->n_embd;
    d->n_head_kv = d->n_head;
    if (check_shape(d, err))
        return -1;
    set_common(d, w);
    gguf_writer_set_f32(w, "gpt2.attention.layer_norm_epsilon", (float)eps);
    set_gelu(d, "activation_function", "gelu_new", w);
    return 0;
}

/* ------------------------------------------------------------- shards */

static void add_shard(hf_dir *d, st_file *f)
{
    d->shards = em_realloc(d->shards, (size_t)(d->n_shards + 1) *
                           sizeof *d->shards);
    d->shards[d->n_shards++] = f;
}

static int has_shard(const hf_dir *d, const char *path)
{
    for (int i = 0; i < d->n_shards; i++)
        if (!strcmp(d->shards[i]->path, path))
            return 1;
    return 0;
}

/* The files model.safetensors.index.json's weight_map names, each once,
 * and every tensor it lists found in its file. */
static int open_index(hf_dir *d, const char *index, em_err *err)
{
    cJSON *j;
    if (read_json(index, &j, err))
        return -1;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
    int rc = cJSON_IsObject(map) && map->child ? 0 :
        em_errorf(err, "%s: key 'weight_map' is not an object naming the "
                  "shards", index);
    for (const cJSON *e = map ? map->child : NULL; e && !rc; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) {
            rc = em_errorf(err, "%s: key 'weight_map.%s' is not a file name "
                           "in the directory", index, e->string);
            break;
        }
        char *path = join(d->dir, e->valuestring);
        st_file *f = NULL;
        if (!has_shard(d, path)) {
            if (!exists(path))
                rc = em_errorf(err, "%s: key 'weight_map.%s' names shard "
                               "'%s', which is missing", index, e->string,
                               e->valuestring);
            else if (!(rc = st_open(path, &f, err)))
                add_shard(d, f);
        }
        if (!rc) {
            int k = 0;
            while (k < d->n_shards && strcmp(d->shards[k]->path, path))
                k++;
            if (!st_find(d->shards[k], e->string))
                rc = em_errorf(err, "%s: key 'weight_map.%s' says shard "
                               "'%s', which has no such tensor", index,
                               e->string, e->valuestring);
        }
        free(path);
    }
    cJSON_Delete(j);
    return rc;
}

/* A tensor name in two shards would make the model depend on the order
 * files are opened in. */
static int check_unique(const hf_dir *d, em_err *err)
{
    for (int a = 0; a < d->n_shards; a++)
        for (int b = a + 1; b < d->n_shards; b++)
            for (int i = 0; i < d->shards[a]->n_tensors; i++) {
                const char *n = d->shards[a]->tensors[i].name;
                if (st_find(d->shards[b], n))
                    return em_errorf(err, "%s: tensor '%s' is in both '%s' "
                                     "and '%s'", d->dir, n,
                                     d->shards[a]->path, d->shards[b]->path);
            }
    return 0;
}

static int open_shards(hf_dir *d, em_err *err)
{
    char *index = join(d->dir, "model.safetensors.index.json");
    char *single = join(d->dir, "model.safetensors");
    int rc;
    if (exists(index))
        rc = open_index(d, index, err);
    else if (exists(single)) {
        st_file *f;
        rc = st_open(single, &f, err);
        if (!rc)
            add_shard(d, f);
    } else {
        char *bin = join(d->dir, "pytorch_model.bin");
        rc = em_errorf(err, "%s: no model.safetensors or "
                       "model.safetensors.index.json%s", d->dir,
                       exists(bin) ? " (pytorch_model.bin is a Python pickle, "
                       "which emerge does not read: save the model with "
                       "safe_serialization=True)" : "");
        free(bin);
    }
    free(index);
    free(single);
    if (!rc)
        rc = check_unique(d, err);
    if (!rc) {
        d->used = em_calloc((size_t)d->n_shards, sizeof *d->used);
        for (int i = 0; i < d->n_shards; i++)
            d->used[i] = em_calloc((size_t)d->shards[i]->n_tensors + 1, 1);
    }
    return rc;
}

static void st_close_void(void *p) { st_close(p); }

/* ------------------------------------------------------------- open */

static void dir_free(hf_dir *d)
{
    cJSON_Delete(d->config);
    free(d->config_path);
    for (int i = 0; d->used && i < d->n_shards; i++)
        free(d->used[i]);
    free(d->used);
    for (int i = 0; i < d->n_shards; i++)
        if (d->shards[i])
            st_close(d->shards[i]);
    free(d->shards);
}

static int read_config(hf_dir *d, const hf_opts *o, gguf_writer *w,
                       em_err *err)
{
    int vocab;
    if (read_json(d->config_path, &d->config, err) || arch_of(d, err))
        return -1;
    int rc = d->arch == MODEL_LLAMA ? read_llama(d, o, w, err)
           : d->arch == MODEL_GPT2 ? read_gpt2(d, w, err)
           : read_neox(d, w, err);
    if (rc || cfg_int(d, "vocab_size", 1, 0, &vocab, err))
        return -1;
    d->n_vocab = vocab;
    return 0;
}

static const char *base_name(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    const char *s = dir + n;
    while (s > dir && s[-1] != '/')
        s--;
    return s;
}

/* The metadata: config, the tokenizer (padded to the embedding's rows),
 * the general.* keys. */
static int build_meta(hf_dir *d, const hf_opts *o, gguf_writer *w,
                      em_err *err)
{
    if (read_config(d, o, w, err) || open_shards(d, err))
        return -1;
    int64_t rows = hf_embedding_rows(d, err);
    if (rows < 0)
        return -1;
    if (rows != d->n_vocab)
        return em_errorf(err, "%s: key 'vocab_size' = %d, but the embedding "
                         "has %lld rows", d->config_path, d->n_vocab,
                         (long long)rows);
    char name[256];
    snprintf(name, sizeof name, "%s", base_name(d->dir));
    name[strcspn(name, "/")] = 0;
    gguf_writer_set_str(w, "general.name", name);
    return hf_tokenizer_read(d->dir, rows, w, err);
}

int hf_open(const char *dir, const hf_opts *opts, gguf_file **out,
            em_err *err)
{
    hf_dir d = {0};
    *out = NULL;
    d.dir = dir;
    d.config_path = join(dir, "config.json");
    if (opts && opts->type) {
        if (quant_type_parse(opts->type, &d.type)) {
            free(d.config_path);
            return em_errorf(err, "%s: unknown type '%s' (f32, f16, bf16, "
                             "q8_0, q4_0, q4_k, q6_k)", dir, opts->type);
        }
        d.has_type = 1;
    }
    d.shapes_only = opts && opts->shapes_only;
    gguf_writer *w = gguf_writer_new();
    gguf_file *g = NULL;
    int rc = build_meta(&d, opts, w, err);
    if (!rc)
        rc = gguf_from_writer(w, dir, &g, err);
    gguf_writer_free(w);
    if (!rc)
        rc = hf_map_tensors(&d, g, err);
    if (!rc) {
        /* the file owns the shards' mappings from here on */
        for (int i = 0; i < d.n_shards; i++) {
            gguf_keep(g, d.shards[i], st_close_void);
            d.shards[i] = NULL;
        }
        *out = g;
    } else {
        gguf_close(g);
    }
    dir_free(&d);
    return rc;
}

int hf_open_path(const char *path, const hf_opts *opts, gguf_file **out,
                 em_err *err)
{
    if (hf_is_dir(path))
        return hf_open(path, opts, out, err);
    /* an on-load type on a GGUF file would be ignored: say so instead */
    if (opts && opts->type && !opts->shapes_only) {
        *out = NULL;
        return em_errorf(err, "%s: option type '%s' converts a checkpoint "
                         "directory on load; a GGUF file keeps the types it "
                         "was written with (write another with `emerge "
                         "convert`, or drop the option)", path, opts->type);
    }
    return gguf_open(path, out, err);
}

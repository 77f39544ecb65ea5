/*
 * hf_int.h - what hf.c (the directory, config.json, metadata) and
 * hf_tensors.c (the tensor maps and their rearranging) share.
 */
#ifndef EMERGE_HF_INT_H
#define EMERGE_HF_INT_H

#include <cjson/cJSON.h>

#include "backends/engine/gguf.h"
#include "backends/engine/hf.h"
#include "backends/engine/model.h"
#include "backends/engine/safetensors.h"

/* The directory being read: its config, its shards, what was used. */
typedef struct hf_dir {
    const char *dir;
    char *config_path;
    cJSON *config;
    model_arch arch;
    const char *arch_name;    /* "llama", "gpt2", "gptneox" */
    const char *hf_arch;      /* config.json's architectures[0] */
    /* shape from config.json */
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    int tied;                 /* tie_word_embeddings */
    int qkv_bias;             /* Qwen2: q/k/v biases */
    st_file **shards;
    int n_shards;
    char **used;              /* per shard, per tensor: mapped or skipped */
    int has_type;             /* opts->type given */
    int shapes_only;          /* opts->shapes_only */
    ggml_type type;           /* the on-load type */
} hf_dir;

/* Maps every tensor of the shards to GGUF names and layouts and adds it
 * to g (hf_tensors.c); an unknown tensor is an error. */
int hf_map_tensors(hf_dir *d, gguf_file *g, em_err *err);

/* The embedding's row count (the model's n_vocab), read from the shards
 * before anything is mapped; -1 with an error when it is missing. */
int64_t hf_embedding_rows(const hf_dir *d, em_err *err);

/* For writers of checkpoint directories (tests/hf_write.c): the Hugging
 * Face name of a GGUF tensor of architecture a ("blk.3.attn_q.weight" ->
 * "model.layers.3.self_attn.q_proj.weight"), and how it is rearranged
 * (HF_X_* below); -1 for a name the maps do not have. */
enum { HF_X_NONE, HF_X_PERM_Q, HF_X_PERM_K, HF_X_QKV_HEADS, HF_X_TRANSPOSE };
int hf_name_of(model_arch a, const char *gguf, char *hf, size_t cap,
               int *x);
/* The Hugging Face row that GGUF row r of a tensor rearranged by x comes
 * from (d needs n_embd and n_head only). */
int64_t hf_src_row(const hf_dir *d, int x, int64_t r);

#endif

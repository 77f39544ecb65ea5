/*
 * model_params.h - a model's parameter counts, read from its tensor
 * shapes alone.
 *
 * Owns: the two counts the scaling axes use. total: every element of
 * every tensor (a tied output is no tensor of its own, so it is counted
 * once, as token_embd). non-embedding: total less token_embd,
 * position_embd and a separate output matrix, Kaplan et al.'s N (2020).
 * Names are GGUF's; a checkpoint directory is read through hf_open_path,
 * which gives its tensors those names.
 */
#ifndef EMERGE_MODEL_PARAMS_H
#define EMERGE_MODEL_PARAMS_H

#include "base/common.h"
#include "backends/engine/gguf.h"

/* Both counts of an open file. */
void model_params_of(const gguf_file *g, double *total, double *non_embd);

/* Opens path (a GGUF file or a checkpoint directory), counts, closes.
 * Reads the header only; no tensor data is touched. */
int model_count_params(const char *path, double *total, double *non_embd,
                       em_err *err);

#endif

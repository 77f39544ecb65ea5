/*
 * cuda_backend.h - the "cuda" backend: the native engine's model on a
 * device reached through cuda_ops (a GPU, or the CPU emulation in tests).
 *
 * Owns: the translation of harness requests into packed batches
 * (cuda_plan.h), the scoring loop and generation over a cuda_engine, and
 * the spec options:
 *   path            the .gguf file (as for the native backend)
 *   device          cuda:N (default cuda:0), read by cuda_load.c
 *   n_ctx           context length (default: the model's, capped at 4096)
 *   prefix_sharing  1 (default): requests with the same context share one
 *                   copy of it in a batch; 0: every request runs its own
 *   batch_tokens    rows per batch (default: sized from free device memory)
 *   kv_exact        only 0: the KV cache is F16 (llama.cpp's default)
 *
 * Tokenisation is lm-evaluation-harness's, as in native.c, so the two
 * backends score the same token sequences.
 */
#ifndef EMERGE_CUDA_BACKEND_H
#define EMERGE_CUDA_BACKEND_H

#include "backends/backend.h"
#include "backends/engine/cuda/cuda_engine.h"
#include "backends/engine/cuda/cuda_plugin.h"

/* Opens spec's model on the device of ops. ops is taken over: ops_free
 * (if not NULL) is called with it when the backend closes, or at once
 * when opening fails. */
int cuda_backend_open(const backend_spec *spec, cuda_ops *ops,
                      void (*ops_free)(cuda_ops *), void **state,
                      backend_info *info, em_err *err);
int cuda_backend_loglikelihood(void *state, const backend_ll_req *req,
                               backend_ll_res *res, int n, em_err *err);
int cuda_backend_generate(void *state, const backend_gen_req *req,
                          backend_gen_res *res, int n, em_err *err);
void cuda_backend_close(void *state);

/* Rows in the batches of the last loglikelihood call, and how many
 * batches it ran (tests and benchmarks). */
void cuda_backend_stats(void *state, long *rows, int *batches);

/* The same backend on cuda_host_ops (name "cuda-host"): the GPU's
 * arithmetic on the CPU. Not in the registry; tests open it directly. */
extern const backend_ops backend_cuda_host_ops;

/* cuda_load.c: the registered backend (name "cuda"), always built; it
 * dlopens libemerge_cuda.so (cuda_plugin.h) on first use, and fails with
 * the loader's message when the plugin or the CUDA runtime is missing. */
extern const backend_ops backend_cuda_ops;

/* Number of visible devices: 0 when there is no plugin, driver or device,
 * with *why saying which (valid until the next call). */
int cuda_device_count(const char **why);
int cuda_device_get(int i, cuda_device_info *info, em_err *err);

/* The device operations of GPU `device` (for tests and benchmarks: the
 * backend builds its own); build/free pair. */
int cuda_gpu_ops_build(int device, cuda_ops **out, em_err *err);
void cuda_gpu_ops_free(cuda_ops *o);

/* The benchmark's reference: best seconds of one cuBLAS GEMM at these
 * shapes on the device of o (from cuda_gpu_ops_build); -1 on failure. */
double cuda_gemm_seconds(cuda_ops *o, int f32, int64_t n_in, int64_t n_out,
                         int T);

#endif

/*
 * native_complete.h - token-level completion (backend_ops.complete) over
 * emerge's own engine: the native backend answers `emerge serve` with it.
 *
 * Owns: running a batch of backend_cmpl_req on a native_scorer. Prompts
 * are sorted by token ids so that those sharing a prefix (the choices of
 * one question) follow each other and reuse the KV cache; prompts that
 * are only scored (score_prompt, max_tokens 0) and share a prefix run
 * their tails as branches of one forward pass. Generation is the native
 * backend's: the same text for the same prompt, settings and seed.
 */
#ifndef EMERGE_NATIVE_COMPLETE_H
#define EMERGE_NATIVE_COMPLETE_H

#include "backends/backend.h"
#include "backends/engine/native_score.h"

/* Runs req[0..n) into res[0..n) (zeroed by the caller). A request that
 * fails has res.ok 0 and its error; the others still run. */
void native_complete_batch(native_scorer *s, const backend_cmpl_req *req,
                           backend_cmpl_res *res, int n);

#endif

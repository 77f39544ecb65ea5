/*
 * identity.h - what a model IS, for the response cache.
 *
 * Owns: the model identity string. This is the one place identity is
 * defined: the store keys every cached response by it (store_cache_key),
 * so two models with the same identity share answers and a model whose
 * identity changed gets none of the old ones. Work that needs to know
 * whether two models are the same (checkpoint directories, merging
 * sharded sweeps run on several nodes) asks this module.
 *
 * The identity is compact JSON, keys in this order:
 *   backend     the backend name
 *   params      the family file's parameter count, when it gives one
 *   sha256      for a backend that reads a local model FILE (native, cuda,
 *               cuda-host): SHA-256 of the whole file, any size
 *   dir_sha256  for such a backend given a DIRECTORY: see below
 *   model       for the openai backend: the model the server is asked
 *               for (option `model`, else the member's name)
 *   revision    for the openai backend, when the member gives one
 *               (option `revision`: which weights the server has loaded
 *               under that name, e.g. a checkpoint step)
 *   path        for other backends (replay, synthetic): the path as the
 *               family file gives it
 *   opts        the backend options sorted by key, without `threads`
 *               (it changes speed, not outputs); for openai also without
 *               the transport options (base_url, api_key_env,
 *               concurrency, timeout, max_retries, backoff)
 * e.g. {"backend":"native","params":1000000,"sha256":"9f86...","opts":{}}.
 * A local model's path is not part of it: the same bytes at two paths
 * (or on two nodes) are one model, and a file rewritten in place - even
 * with its size and mtime restored (cp -p, rsync -t) - is a new one. The
 * shape for files is the one emerge has always used for files it hashed,
 * so databases made before keep their caches. An openai member is
 * likewise not its URL: the same served model reached through another
 * host or port (each node of a sharded sweep its own server) is one
 * model. Before, its identity held the URL (the `path` key) and every
 * option: such stores' cached openai answers are not reused.
 *
 * A directory model (e.g. a Hugging Face checkpoint: *.safetensors
 * shards, config and tokenizer *.json, tokenizer.model, merges.txt,
 * *.gguf) is identified by dir_sha256, the SHA-256 of the manifest
 *   "<sha256 of file>  <path relative to the directory>\n"
 * over EVERY regular file under it, whatever its extension
 * (subdirectories included, symbolic links followed), sorted bytewise by
 * relative path: what `LC_ALL=C sort`ed relative names fed to
 * `xargs sha256sum` print, piped to sha256sum (tests/test_identity.c
 * checks this against coreutils). Left out, and named in a note on
 * stderr each time: entries whose name begins with '.' (.git/, the hub's
 * .cache/, .gitattributes) and documentation (README*, LICENSE*,
 * LICENCE*, NOTICE*, *.md), which do not change what the model
 * computes. Anything that is neither a regular file nor a directory is
 * an error, never skipped; so is a directory with no files.
 *
 * Hashing streams each file through libcrypto's SHA-256 in 8 MiB reads,
 * so no file has to fit in memory; one that takes over a second says so
 * on stderr, and one that changes while being read is an error. Digests
 * are cached in the results database (store_file_hash_get/put) under the
 * file's real path, size, mtime and ctime (nanoseconds), inode and
 * device, so a re-run does not hash again; a rewrite changes ctime, which
 * nothing can set back, so it always misses. A file changed less than a
 * second before it was hashed is not cached (a rewrite within the same
 * coarse timestamp tick could leave every field as it was).
 *
 * Before this module, only files up to 512 MiB were hashed (larger ones
 * were path + size + mtime) and the cuda backends used the path: those
 * models get new identities, and their old cached answers are not used.
 */
#ifndef EMERGE_IDENTITY_H
#define EMERGE_IDENTITY_H

#include "backends/backend.h"
#include "base/common.h"
#include "harness/store.h"

/* The identity of a model (malloc'd into *out). cache may be NULL: then
 * every file is hashed. Fails when a model file or directory cannot be
 * read, or changes while it is being hashed. */
int identity_of_model(const backend_spec *spec, store *cache, char **out,
                      em_err *err);

/* SHA-256 of a regular file's bytes, from the cache when the file is
 * unchanged, else streamed (and then recorded in the cache). */
int identity_file_sha256(const char *path, store *cache, char hex[65],
                         em_err *err);

/* dir_sha256 of a model directory, as defined above. */
int identity_dir_sha256(const char *dir, store *cache, char hex[65],
                        em_err *err);

#endif

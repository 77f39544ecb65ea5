/* test_identity.c - a model's identity is its content: whole files of any
 * size (sparse files over 512 MiB keep this fast), the same bytes at two
 * paths are one model, a rewrite with size and mtime restored is a new
 * one, directory models, and the file hash cache in the store. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness/identity.h"
#include "harness/store.h"
#include "tests/testlib.h"

/* Over the 512 MiB up to which emerge used to hash at all. */
#define BIG_SIZE (520LL << 20)

static char *path_in(const char *dir, const char *name)
{
    em_buf b = {0};
    em_buf_printf(&b, "%s/%s", dir, name);
    return em_buf_take(&b);
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* Writes bytes at off without changing the size (the file must be at
 * least off + strlen(bytes) long), then sets the mtime back to what it
 * was: a checkpoint rewritten in place the way cp -p or rsync -t leave
 * it. Only ctime, which user space cannot set, tells. */
static void rewrite_in_place(const char *path, long long off, const char *bytes)
{
    struct stat before, after;
    CHECK(stat(path, &before) == 0);
    int fd = open(path, O_WRONLY);
    CHECK(fd >= 0);
    CHECK(pwrite(fd, bytes, strlen(bytes), off) == (ssize_t)strlen(bytes));
    close(fd);
    struct timespec t[2] = {before.st_atim, before.st_mtim};
    CHECK(utimensat(AT_FDCWD, path, t, 0) == 0);
    CHECK(stat(path, &after) == 0);
    CHECK(after.st_size == before.st_size);
    CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
          after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
}

/* A sparse BIG_SIZE file with a few real bytes at both ends. */
static void make_big(const char *path, const char *head)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    CHECK(ftruncate(fd, BIG_SIZE) == 0);
    CHECK(pwrite(fd, head, strlen(head), 0) == (ssize_t)strlen(head));
    CHECK(pwrite(fd, "tail", 4, BIG_SIZE - 4) == 4);
    close(fd);
}

static char *identity(const char *backend, const char *path, store *cache)
{
    backend_spec spec = {"m", (char *)backend, (char *)path, 0, 0, NULL, 0, 0};
    char *id = NULL;
    em_err err;
    if (identity_of_model(&spec, cache, &id, &err) != 0)
        tl_fail(__FILE__, __LINE__, "identity of %s: %s", path, err.msg);
    return id ? id : em_strdup("(failed)");
}

static void remove_dir(char *dir)
{
    tl_sh(NULL, "rm -rf '%s'", dir);
    free(dir);
}

/* A file emerge always hashed keeps its identity string byte for byte,
 * so the caches of existing databases stay valid. */
TEST(test_small_file_identity_unchanged)
{
    char *dir = tl_tmpdir(), *p = path_in(dir, "m.gguf");
    put_file(p, "abc");
    backend_opt o[2] = {{"threads", "4"}, {"ctx", "512"}};
    backend_spec spec = {"m", "native", p, 1e6, 0, o, 2, 0};
    char *id = NULL;
    em_err err;
    CHECK_INT(identity_of_model(&spec, NULL, &id, &err), 0);
    CHECK_STR(id, "{\"backend\":\"native\",\"params\":1000000,\"sha256\":"
                  "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\","
                  "\"opts\":{\"ctx\":\"512\"}}");
    free(id);
    /* The cuda backends read the same files: content, not path, too. */
    spec.backend = "cuda";
    CHECK_INT(identity_of_model(&spec, NULL, &id, &err), 0);
    CHECK_HAS(id, "\"sha256\":\"ba7816bf");
    CHECK(strstr(id, dir) == NULL);
    free(id);
    free(p);
    remove_dir(dir);
}

/* The bug: over 512 MiB, path + size + mtime stood in for the content,
 * so a checkpoint rewritten in place kept the old model's answers. */
TEST(test_big_file_rewritten_is_new_model)
{
    char *dir = tl_tmpdir(), *p = path_in(dir, "big.gguf");
    make_big(p, "weights-A");
    char *i1 = identity("native", p, NULL);
    CHECK_HAS(i1, "\"sha256\"");
    CHECK(strstr(i1, dir) == NULL); /* no path in it */
    rewrite_in_place(p, 0, "weights-B");
    char *i2 = identity("native", p, NULL);
    CHECK_MSG(strcmp(i1, i2) != 0, "rewritten in place, same identity %s", i1);
    free(i1);
    free(i2);
    free(p);
    remove_dir(dir);
}

/* The same model at two paths (or on two nodes) is one model. */
TEST(test_copy_elsewhere_is_same_model)
{
    char *d1 = tl_tmpdir(), *d2 = tl_tmpdir();
    char *p1 = path_in(d1, "big.gguf"), *p2 = path_in(d2, "copy.gguf");
    make_big(p1, "weights-A");
    CHECK_INT(tl_sh(NULL, "cp --sparse=always '%s' '%s'", p1, p2), 0);
    char *i1 = identity("native", p1, NULL), *i2 = identity("native", p2, NULL);
    CHECK_STR(i1, i2);
    free(i1);
    free(i2);
    free(p1);
    free(p2);
    remove_dir(d1);
    remove_dir(d2);
}

/* Streaming in chunks gives SHA-256 of the file, as sha256sum has it:
 * 20 MiB of varied bytes spans several reads. */
TEST(test_file_hash_matches_sha256sum)
{
    char *dir = tl_tmpdir(), *p = path_in(dir, "w.bin");
    size_t n = 20u << 20;
    unsigned char *buf = malloc(n);
    uint64_t st = 42;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(em_splitmix64(&st) >> 56);
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(buf, 1, n, f) == n);
    if (f)
        fclose(f);
    char want[65], got[65] = "";
    em_sha256_hex(buf, n, want);
    free(buf);
    em_err err;
    CHECK_INT(identity_file_sha256(p, NULL, got, &err), 0);
    CHECK_STR(got, want);
    char *out = NULL;
    CHECK_INT(tl_sh(&out, "sha256sum '%s' | cut -c1-64", p), 0);
    if (out)
        out[strcspn(out, "\n")] = '\0';
    CHECK_STR(out, want);
    free(out);
    free(p);
    remove_dir(dir);
}

static const char zeros[] = "0000000000000000000000000000000000000000000000000000000000000000";

/* The cache is used for an unchanged file - proven by a planted digest
 * coming back - and missed once the file was rewritten, size and mtime
 * restored, because the ctime moved. */
TEST(test_cache_hit_and_miss)
{
    char *dir = tl_tmpdir(), *p = path_in(dir, "m.gguf"), *db = path_in(dir, "r.sqlite");
    put_file(p, "weights-A");
    /* Files changed within the last second are not cached (racy). */
    struct timespec wait = {1, 200000000};
    nanosleep(&wait, NULL);
    store *s;
    em_err err;
    CHECK_INT(store_open(db, &s, &err), 0);
    char *i1 = identity("native", p, s);
    char real[65];
    em_sha256_hex("weights-A", 9, real);
    CHECK_HAS(i1, real);
    struct stat st;
    CHECK(stat(p, &st) == 0);
    char hex[65] = "";
    int found = 0;
    char *key = realpath(p, NULL);
    CHECK_INT(store_file_hash_get(s, key, &st, hex, &found, &err), 0);
    CHECK_INT(found, 1);
    CHECK_STR(hex, real);
    CHECK_INT(store_file_hash_put(s, key, &st, zeros, &err), 0);
    char *i2 = identity("native", p, s);
    CHECK_HAS(i2, zeros); /* served from the cache, not hashed */
    rewrite_in_place(p, 0, "weights-B");
    char *i3 = identity("native", p, s);
    em_sha256_hex("weights-B", 9, real);
    CHECK_HAS(i3, real);
    CHECK(stat(p, &st) == 0);
    CHECK_INT(store_file_hash_get(s, key, &st, hex, &found, &err), 0);
    CHECK_INT(found, 0); /* just rewritten: hashed, not cached */
    int64_t rows = 0;
    CHECK_INT(store_count(s, "file_hashes", &rows, &err), 0);
    CHECK_INT(rows, 1);
    store_close(s);
    free(key);
    free(i1);
    free(i2);
    free(i3);
    free(p);
    free(db);
    remove_dir(dir);
}

/* The store's cache matches on every field of the key and nothing else:
 * a change in any one (ctime or mtime by a nanosecond, inode, device,
 * size, path) is a miss; a put for the same path replaces the row. */
TEST(test_store_file_hash_key)
{
    char *dir = tl_tmpdir(), *db = path_in(dir, "r.sqlite");
    store *s;
    em_err err;
    CHECK_INT(store_open(db, &s, &err), 0);
    struct stat st;
    CHECK(stat(db, &st) == 0);
    char hex[65] = "", want[65];
    int found = 1;
    em_sha256_hex("x", 1, want);
    CHECK_INT(store_file_hash_get(s, "/m/a.gguf", &st, hex, &found, &err), 0);
    CHECK_INT(found, 0);
    CHECK_INT(store_file_hash_put(s, "/m/a.gguf", &st, want, &err), 0);
    CHECK_INT(store_file_hash_get(s, "/m/a.gguf", &st, hex, &found, &err), 0);
    CHECK_INT(found, 1);
    CHECK_STR(hex, want);
    struct stat v[6] = {st, st, st, st, st, st};
    v[0].st_ctim.tv_nsec ^= 1;
    v[1].st_mtim.tv_nsec ^= 1;
    v[2].st_ino++;
    v[3].st_dev++;
    v[4].st_size++;
    for (int i = 0; i < 6; i++) {
        found = 1;
        CHECK_INT(store_file_hash_get(s, i == 5 ? "/m/b.gguf" : "/m/a.gguf",
                                      &v[i], hex, &found, &err), 0);
        CHECK_MSG(found == 0, "variant %d of the key still found", i);
    }
    CHECK_INT(store_file_hash_put(s, "/m/a.gguf", &v[0], zeros, &err), 0);
    int64_t rows = 0;
    CHECK_INT(store_count(s, "file_hashes", &rows, &err), 0);
    CHECK_INT(rows, 1);
    CHECK_INT(store_file_hash_get(s, "/m/a.gguf", &st, hex, &found, &err), 0);
    CHECK_INT(found, 0);
    store_close(s);
    /* Kept across runs. */
    CHECK_INT(store_open(db, &s, &err), 0);
    CHECK_INT(store_file_hash_get(s, "/m/a.gguf", &v[0], hex, &found, &err), 0);
    CHECK_INT(found, 1);
    CHECK_STR(hex, zeros);
    store_close(s);
    free(db);
    remove_dir(dir);
}

/* A Hugging Face style checkpoint directory. */
static void make_checkpoint(const char *dir)
{
    const char *files[][2] = {
        {"config.json", "{\"hidden_size\": 64}"},
        {"model-00001-of-00002.safetensors", "shard-1"},
        {"model-00002-of-00002.safetensors", "shard-2"},
        {"tokenizer.json", "{\"model\": {}}"},
        {"tokenizer.model", "spm"},
        {"README.md", "# a model card"},
        {".gitattributes", "*.safetensors filter=lfs"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *p = path_in(dir, files[i][0]);
        put_file(p, files[i][1]);
        free(p);
    }
    char *sub = path_in(dir, "original");
    CHECK(mkdir(sub, 0755) == 0);
    char *p = path_in(sub, "params.json");
    put_file(p, "{\"dim\": 64}");
    free(p);
    free(sub);
}

static char *dir_digest(const char *dir)
{
    char hex[65] = "";
    em_err err;
    if (identity_dir_sha256(dir, NULL, hex, &err) != 0)
        tl_fail(__FILE__, __LINE__, "%s", err.msg);
    return em_strdup(hex);
}

TEST(test_directory_model)
{
    char *d1 = tl_tmpdir(), *d2 = tl_tmpdir();
    make_checkpoint(d1);
    char *i1 = identity("native", d1, NULL), *h1 = dir_digest(d1);
    CHECK_HAS(i1, "\"dir_sha256\"");
    CHECK_HAS(i1, h1);
    CHECK(strstr(i1, d1) == NULL);
    /* The definition in identity.h, computed by coreutils. */
    char *out = NULL;
    CHECK_INT(tl_sh(&out, "cd '%s' && find -L . -type f ! -path './.*' ! -name "
                    "README.md | sed 's|^\\./||' | LC_ALL=C sort | xargs "
                    "sha256sum | sha256sum | cut -c1-64", d1), 0);
    if (out)
        out[strcspn(out, "\n")] = '\0';
    CHECK_STR(out, h1);
    free(out);
    /* Copied elsewhere: the same model. */
    char *copy = path_in(d2, "ckpt");
    CHECK_INT(tl_sh(NULL, "cp -rp '%s' '%s'", d1, copy), 0);
    char *i2 = identity("native", copy, NULL);
    CHECK_STR(i1, i2);
    /* Documentation and hidden files do not define the model. */
    char *readme = path_in(copy, "README.md");
    put_file(readme, "# edited card");
    char *h2 = dir_digest(copy);
    CHECK_STR(h2, h1);
    /* One shard rewritten in place, size and mtime kept: a new model. */
    char *shard = path_in(copy, "model-00002-of-00002.safetensors");
    rewrite_in_place(shard, 0, "SHARD");
    char *h3 = dir_digest(copy);
    CHECK(strcmp(h3, h1) != 0);
    /* A file renamed: a new model (names are part of the manifest). */
    char *renamed = path_in(d1, "tokenizer2.model"), *tok = path_in(d1, "tokenizer.model");
    CHECK(rename(tok, renamed) == 0);
    char *h4 = dir_digest(d1);
    CHECK(strcmp(h4, h1) != 0);
    free(renamed);
    free(tok);
    free(h4);
    free(h3);
    free(shard);
    free(h2);
    free(readme);
    free(i2);
    free(copy);
    free(i1);
    free(h1);
    remove_dir(d1);
    remove_dir(d2);
}

/* Nothing unreadable is skipped silently: errors name the file. */
TEST(test_errors)
{
    char *dir = tl_tmpdir(), *missing = path_in(dir, "missing.gguf");
    backend_spec spec = {"m", "native", missing, 0, 0, NULL, 0, 0};
    char *id = NULL;
    em_err err;
    CHECK_INT(identity_of_model(&spec, NULL, &id, &err), -1);
    CHECK(id == NULL);
    CHECK_HAS(err.msg, "missing.gguf");
    char *ckpt = path_in(dir, "ckpt"), *fifo = path_in(ckpt, "weights.pipe");
    CHECK(mkdir(ckpt, 0755) == 0);
    spec.path = ckpt;
    CHECK_INT(identity_of_model(&spec, NULL, &id, &err), -1);
    CHECK_HAS(err.msg, "no model files");
    CHECK(mkfifo(fifo, 0644) == 0);
    CHECK_INT(identity_of_model(&spec, NULL, &id, &err), -1);
    CHECK_HAS(err.msg, "weights.pipe");
    spec.path = fifo; /* not opened for reading, which would wait */
    CHECK_INT(identity_of_model(&spec, NULL, &id, &err), -1);
    CHECK_HAS(err.msg, "not a regular file");
    /* Other backends that do not read local files keep their path. */
    backend_spec rep = {"r", "replay", "rec.jsonl", 0, 0, NULL, 0, 0};
    CHECK_INT(identity_of_model(&rep, NULL, &id, &err), 0);
    CHECK_STR(id, "{\"backend\":\"replay\",\"path\":\"rec.jsonl\",\"opts\":{}}");
    free(id);
    free(fifo);
    free(ckpt);
    free(missing);
    remove_dir(dir);
}

/* An openai member is its model name and revision, not the URL it is
 * reached at nor how patiently: two nodes' servers of one model are one
 * model; another revision or chat mode is another. */
TEST(test_openai_identity_not_url)
{
    backend_opt a_opts[] = {{"model", "demo-1m"}, {"concurrency", "8"},
                            {"api_key_env", "KEY"}, {"timeout", "30"}};
    backend_opt b_opts[] = {{"timeout", "300"}, {"model", "demo-1m"},
                            {"base_url", "http://10.0.0.7:9000/v1"}};
    backend_spec a = {"n1", "openai", "http://node1:8080/v1", 1.2e6, 0, a_opts, 4, 0};
    backend_spec b = {"n2", "openai", NULL, 1.2e6, 0, b_opts, 3, 0};
    char *ia = NULL, *ib = NULL;
    em_err err;
    CHECK_INT(identity_of_model(&a, NULL, &ia, &err), 0);
    CHECK_INT(identity_of_model(&b, NULL, &ib, &err), 0);
    CHECK_STR(ia, "{\"backend\":\"openai\",\"params\":1200000,\"model\":"
                  "\"demo-1m\",\"opts\":{}}");
    CHECK_STR(ib, ia);
    free(ib);
    backend_opt c_opts[] = {{"model", "demo-1m"}, {"revision", "step1000"},
                            {"chat", "1"}};
    backend_spec c = {"n3", "openai", "http://node1:8080/v1", 1.2e6, 0, c_opts, 3, 0};
    CHECK_INT(identity_of_model(&c, NULL, &ib, &err), 0);
    CHECK_STR(ib, "{\"backend\":\"openai\",\"params\":1200000,\"model\":"
                  "\"demo-1m\",\"revision\":\"step1000\",\"opts\":{\"chat\":\"1\"}}");
    free(ib);
    backend_spec d = {"served", "openai", "http://x/v1", 0, 0, NULL, 0, 0};
    CHECK_INT(identity_of_model(&d, NULL, &ib, &err), 0);
    CHECK_STR(ib, "{\"backend\":\"openai\",\"model\":\"served\",\"opts\":{}}");
    free(ib);
    free(ia);
}

int main(void)
{
    RUN(test_small_file_identity_unchanged);
    RUN(test_big_file_rewritten_is_new_model);
    RUN(test_copy_elsewhere_is_same_model);
    RUN(test_file_hash_matches_sha256sum);
    RUN(test_store_file_hash_key);
    RUN(test_cache_hit_and_miss);
    RUN(test_directory_model);
    RUN(test_errors);
    RUN(test_openai_identity_not_url);
    return tl_summary();
}

# emerge - Makefile
#
#   make            build ./emerge (release, -O2); never installs packages:
#                   when one is missing it names it and says `make deps`
#   make test       install missing packages, build the ASan+UBSan variant,
#                   run every test; last line "N passed, N failed"
#   make bench      benchmarks (figures and ratios against a reference)
#   make deps       install missing Debian packages (apt-get)
#   make man        build/emerge.1 from the help texts (help2man)
#   make install    PREFIX (/usr/local) and DESTDIR: bin/emerge, the CUDA
#                   plugin (when built) in lib/emerge/, the man page and
#                   the bash completion; `make uninstall` removes them
#
# CFLAGS, CPPFLAGS and LDFLAGS from the command line or the environment are
# added after the release build's own (a packager's hardening flags); the
# ASan build used by the tests keeps its own. ./emerge --version names the
# source commit (git describe, else a VERSION file, else "unknown").
#
# Every .c in the LAYERS folders goes into libemerge.a (harness/cli/main.c
# is the program). Each tests/test_*.c is its own test program linked
# against the ASan library; tests/test_*.sh are shell tests run against the
# ASan ./emerge.
#
# LAYERS is the floor plan, bottom first. A file may include headers from
# its own folder and from folders listed before it, never after it, and no
# two files use each other (tests/test_layers.sh checks both, on the
# includes and on the symbols each object file defines and uses). bench/
# and tests/ stand above every layer.
#   base                 utilities every layer uses: errors, strings, files,
#                        hashing, YAML helpers, UTF-8, CSV, progress line
#   backends/engine      the native inference engine: GGUF, tokenizers, the
#                        forward pass, quantised kernels, sampler, scoring
#   backends/engine/cuda the same engine on NVIDIA GPUs (the plugin's side)
#   backends             the backend interface and its adapters: native,
#                        cuda, openai (HTTP), replay, synthetic
#   metrics              scores of one response, statistics over stored
#                        results (read-only store queries), scaling metrics
#   reports              plots, report.md/index.html, regression checks
#   harness              the evaluation domain: tasks, templates, families,
#                        retrieval, sweeps, the SQLite store, model identity
#   harness/serve        the HTTP server (a client of the backend interface)
#   harness/cli          the command line: main and one cmd_*.c per command

CC      ?= cc
BUILD   ?= build
WARN     = -Wall -Wextra -Werror
EM_CPPFLAGS = -I. -D_GNU_SOURCE -DPCRE2_CODE_UNIT_WIDTH=8
CSTD     = -std=c11
REL_CFLAGS  = $(CSTD) -O2 -g $(WARN) -fno-strict-aliasing
ASAN_CFLAGS = $(CSTD) -O1 -g $(WARN) -fno-strict-aliasing \
              -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
ASAN_LDFLAGS = -fsanitize=address,undefined
LDLIBS   = -lcjson -lyaml -lpcre2-8 -lsqlite3 -lcurl -lmicrohttpd -lcrypto -lm \
           -lpthread

LAYERS   := base backends/engine backends/engine/cuda backends metrics \
            reports harness harness/serve harness/cli
# cuda_gpu.c calls cudart: it goes only into the plugin.
LIB_SRC  := $(filter-out harness/cli/main.c backends/engine/cuda/cuda_gpu.c, \
            $(foreach d,$(LAYERS),$(wildcard $(d)/*.c)))
TEST_SRC := $(wildcard tests/test_*.c)

REL_OBJ  := $(LIB_SRC:%.c=$(BUILD)/rel/%.o)
ASAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/asan/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/asan/tests/%)
DEPS_OK  := $(BUILD)/.deps-ok

.PHONY: all test tests bench deps clean asan
.SECONDARY:
all: emerge

deps:
	sh tools/deps.sh install

# Only checks: installing is `make deps` (or `make test`/`make demo`).
$(DEPS_OK): tools/deps.sh
	@sh tools/deps.sh check
	@mkdir -p $(BUILD) && touch $@

# $(call em_stamp,FILE,TEXT): FILE holds TEXT, rewritten only when TEXT
# changes, so what depends on FILE rebuilds exactly then.
em_stamp = @mkdir -p $(dir $1); printf '%s\n' '$2' >$1.tmp; \
           if cmp -s $1.tmp $1; then rm -f $1.tmp; else mv $1.tmp $1; fi
.PHONY: FORCE
FORCE:

# The release objects rebuild when the flags a packager adds change.
REL_FLAGS = $(EM_CPPFLAGS) $(CPPFLAGS) $(REL_CFLAGS) $(CFLAGS)
$(BUILD)/rel/flags: FORCE
	$(call em_stamp,$@,$(REL_FLAGS))

$(BUILD)/rel/%.o: %.c $(BUILD)/rel/flags | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(EM_CPPFLAGS) $(ASAN_CFLAGS) -MMD -MP -c $< -o $@

# The source commit, for base/version.c only (em_version(): --version and
# runs.version). Outside a git checkout: a VERSION file, else "unknown".
EMERGE_COMMIT := $(shell [ -e .git ] && git describe --always --dirty \
                   --abbrev=12 2>/dev/null | tr -cd '0-9A-Za-z._+-')
EMERGE_COMMIT := $(or $(EMERGE_COMMIT),$(shell [ -f VERSION ] && \
                   tr -cd '0-9A-Za-z._+-' <VERSION),unknown)
$(BUILD)/commit: FORCE
	$(call em_stamp,$@,$(EMERGE_COMMIT))
VERSION_OBJ := $(BUILD)/rel/base/version.o $(BUILD)/asan/base/version.o
$(VERSION_OBJ): $(BUILD)/commit
$(VERSION_OBJ): private EM_CPPFLAGS += -DEMERGE_COMMIT='"$(EMERGE_COMMIT)"'

# The Makefile is a prerequisite: a file moved between layers changes the
# member list without making any object newer than the archive.
$(BUILD)/rel/libemerge.a: $(REL_OBJ) Makefile
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

$(BUILD)/asan/libemerge.a: $(ASAN_OBJ) Makefile
	rm -f $@ && ar rcs $@ $(filter %.o,$^)

emerge: $(BUILD)/rel/harness/cli/main.o $(BUILD)/rel/libemerge.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/emerge: $(BUILD)/asan/harness/cli/main.o $(BUILD)/asan/libemerge.a
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(LDLIBS)

# Helpers every test program links: the fixture writers (a GGUF model as
# a Hugging Face checkpoint directory: tests/hf_write.c, hf_tok_write.c).
TEST_HELPERS := $(BUILD)/asan/tests/hf_write.o $(BUILD)/asan/tests/hf_tok_write.o
$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/%.o $(BUILD)/asan/tests/testlib.o $(TEST_HELPERS) $(BUILD)/asan/libemerge.a
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(LDLIBS)

# tests/mkhf.c: the fixture writer as a command, for the shell tests.
asan: $(BUILD)/asan/emerge $(TESTS) $(BUILD)/asan/tests/mkhf
tests: asan

test:
	sh tools/deps.sh check && sh tools/deps.sh check-test || \
	    sh tools/deps.sh install
	$(MAKE) asan
	EMERGE_BIN=$(BUILD)/asan/emerge sh tests/run.sh $(BUILD)/asan/tests

bench: emerge
	sh tools/bench.sh

clean:
	rm -rf $(BUILD) emerge

# ---- man page, install (owner: cli) -----------------------------------
#   EMERGE is the program documented and installed (tests/test_cli.sh
#   points it at the ASan build so that it never compiles a release build);
#   MANPAGE where its man page goes.
EMERGE  ?= emerge
MANPAGE ?= $(BUILD)/emerge.1
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR   = $(PREFIX)/bin
LIBDIR   = $(PREFIX)/lib/emerge
MANDIR   = $(PREFIX)/share/man/man1
COMPDIR  = $(PREFIX)/share/bash-completion/completions
COMPLETION = harness/cli/emerge.bash

.PHONY: man install uninstall
man: $(MANPAGE)

# help2man reads `emerge --help` and `--version`; the COMMANDS section is
# every command's own --help (tools/man-include.sh).
$(MANPAGE): $(EMERGE) tools/man-include.sh
	@command -v help2man >/dev/null || { echo "emerge: missing package: \
	    help2man (run 'make deps')" >&2; exit 1; }
	@mkdir -p $(dir $@)
	sh tools/man-include.sh $(abspath $(EMERGE)) >$@.h2m
	help2man --no-info --no-discard-stderr --include=$@.h2m \
	    --name="evaluate language-model task suites across model scales" \
	    --output=$@.tmp $(abspath $(EMERGE)) && mv $@.tmp $@

install: $(EMERGE) $(MANPAGE) $(if $(filter 1,$(CUDA_ON)),$(CUDA_PLUGIN))
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(COMPDIR)
	install -m 755 $(EMERGE) $(DESTDIR)$(BINDIR)/emerge
	install -m 644 $(MANPAGE) $(DESTDIR)$(MANDIR)/emerge.1
	install -m 644 $(COMPLETION) $(DESTDIR)$(COMPDIR)/emerge
	if [ -f $(CUDA_PLUGIN) ]; then install -d $(DESTDIR)$(LIBDIR) && \
	    install -m 755 $(CUDA_PLUGIN) $(DESTDIR)$(LIBDIR)/; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/emerge $(DESTDIR)$(MANDIR)/emerge.1 \
	    $(DESTDIR)$(COMPDIR)/emerge $(DESTDIR)$(LIBDIR)/libemerge_cuda.so
	-rmdir $(DESTDIR)$(LIBDIR) 2>/dev/null

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(BUILD)/asan/tests/*.d $(BUILD)/rel/harness/cli/main.d $(BUILD)/asan/harness/cli/main.d

# ---- fuzzing the GGUF reader (owner: gguf) ---------------------------
#   make fuzz          libFuzzer on the reader for FUZZ_TIME seconds
#                      (tests/test_fuzz_gguf.sh does a 30 s run in `make test`)
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 600
FUZZ_CFLAGS  = $(CSTD) -O1 -g $(WARN) -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_SRC     = tests/fuzz_gguf.c backends/engine/gguf.c base/common.c

$(BUILD)/fuzz/fuzz_gguf: $(FUZZ_SRC) backends/engine/gguf.h base/common.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(EM_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRC) -lcrypto -lm

# the safetensors reader (owner: safetensors; tests/test_fuzz_safetensors.sh)
FUZZ_ST_SRC  = tests/fuzz_safetensors.c backends/engine/safetensors.c base/common.c
$(BUILD)/fuzz/fuzz_safetensors: $(FUZZ_ST_SRC) backends/engine/safetensors.h base/common.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(EM_CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_ST_SRC) -lcjson -lcrypto -lm

.PHONY: fuzz
fuzz: $(BUILD)/fuzz/fuzz_gguf emerge
	sh tests/fuzz_seed.sh $(BUILD)/fuzz/corpus ./emerge
	$(BUILD)/fuzz/fuzz_gguf -max_total_time=$(FUZZ_TIME) -max_len=65536 \
	    -timeout=10 -rss_limit_mb=2048 -artifact_prefix=$(BUILD)/fuzz/ \
	    $(BUILD)/fuzz/corpus

# quant kernels: GFLOP/s and GB/s per type, scalar vs SIMD (single thread)
$(BUILD)/rel/bench/quant_bench: $(BUILD)/rel/bench/quant_bench.o $(BUILD)/rel/libemerge.a
	$(CC) -o $@ $^ $(LDLIBS)

bench-quant: $(BUILD)/rel/bench/quant_bench
	$(BUILD)/rel/bench/quant_bench

# native engine: pp256/tg64/RSS/multiple-choice per model (tools/bench.sh)
$(BUILD)/rel/bench/native_bench: $(BUILD)/rel/bench/native_bench.o $(BUILD)/rel/libemerge.a
	$(CC) -o $@ $^ $(LDLIBS)

# demo model family (tools/family/README.md): installs python3-torch,
# python3-numpy and libopenblas0-pthread if missing, regenerates the data,
# trains (resumable), exports GGUF, checks, evaluates, writes the card.
.PHONY: family
family:
	sh tools/family/build.sh

# ---- CUDA backend (owner: cuda) ---------------------------------------
#   CUDA ?= auto    on when $(CUDA_HOME)/bin/nvcc or `nvcc` on PATH exists;
#                   `make CUDA=1` forces it on, `make CUDA=0` builds without.
#   Nothing that emerge, libemerge.a or a test links needs CUDA: the
#   backend's C code (packing, engine, backend, the CPU emulation of the
#   device, and cuda_load.c, which registers "cuda" and dlopens the plugin)
#   is built either way, and tests/test_cuda_host.c checks it without a
#   GPU. When on, everything that calls cudart/cuBLAS (backends/engine/cuda/*.cu
#   by nvcc, sm_90 code plus compute_80 PTX; cuda_gpu.c; a private copy of
#   base/common.c; all -fPIC, symbols hidden but the entry point) goes
#   into the plugin $(BUILD)/rel/libemerge_cuda.so, linked against cudart
#   and cuBLAS with an rpath. `make`/`make emerge`, `make asan` and the
#   programs that use it build the plugin first; `make CUDA=0` removes it.
#   How programs find it: backends/engine/cuda/cuda_plugin.h, backends/engine/cuda/README.md.
#   make bench-cuda  GPU prompt/decode tokens/s, bandwidth, cuBLAS ratio
#                    (prints why and exits 0 without a GPU or plugin)
CUDA      ?= auto
CUDA_HOME ?= /usr/local/cuda
CUDA_NVCC := $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) \
                         $(shell command -v nvcc 2>/dev/null))
ifeq ($(CUDA),auto)
  CUDA_ON := $(if $(CUDA_NVCC),1,0)
else ifeq ($(CUDA),0)
  CUDA_ON := 0
else
  CUDA_ON := 1
  CUDA_NVCC := $(or $(CUDA_NVCC),nvcc)
endif
CUDA_ARCH  ?= -gencode arch=compute_90,code=sm_90 \
              -gencode arch=compute_80,code=compute_80
NVCC_FLAGS  = -std=c++17 -O2 -I. $(CUDA_ARCH) \
              -Xcompiler -Wall,-Wextra,-Werror,-fPIC,-fvisibility=hidden
CUDA_PLUGIN := $(BUILD)/rel/libemerge_cuda.so


ifeq ($(CUDA_ON),1)
CUDA_PLUGIN_OBJ := $(patsubst backends/engine/cuda/%.cu,$(BUILD)/cuda-plugin/%.o,\
                     $(wildcard backends/engine/cuda/*.cu)) \
                   $(BUILD)/cuda-plugin/cuda_gpu.o $(BUILD)/cuda-plugin/common.o
CUDA_PLUGIN_CFLAGS = $(EM_CPPFLAGS) $(CPPFLAGS) -I$(CUDA_HOME)/include $(REL_CFLAGS) $(CFLAGS) \
                     -fPIC -fvisibility=hidden -MMD -MP

$(BUILD)/cuda-plugin/%.o: backends/engine/cuda/%.cu $(wildcard backends/engine/cuda/*.h) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CUDA_NVCC) $(NVCC_FLAGS) -c $< -o $@

$(BUILD)/cuda-plugin/cuda_gpu.o: backends/engine/cuda/cuda_gpu.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_PLUGIN_CFLAGS) -c $< -o $@

$(BUILD)/cuda-plugin/common.o: base/common.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_PLUGIN_CFLAGS) -c $< -o $@

# -z defs: the plugin must resolve everything itself (cudart, cuBLAS,
# libc; libcrypto for common.c's SHA-256), never against the program that
# loads it.
$(CUDA_PLUGIN): $(CUDA_PLUGIN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -shared -Wl,-z,defs -o $@ $^ -L$(CUDA_HOME)/lib64 \
	    -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++ -lcrypto -lm

# Order-only: the programs do not link the plugin, they load it.
emerge $(BUILD)/asan/emerge $(BUILD)/asan/tests/test_cuda \
  $(BUILD)/rel/bench/cuda_bench: | $(CUDA_PLUGIN)
asan: $(CUDA_PLUGIN)
-include $(BUILD)/cuda-plugin/cuda_gpu.d $(BUILD)/cuda-plugin/common.d
else
# A plugin left from a CUDA build would still be found and loaded.
$(shell rm -f $(CUDA_PLUGIN))
endif

$(BUILD)/rel/bench/cuda_bench: $(BUILD)/rel/bench/cuda_bench.o $(BUILD)/rel/libemerge.a
	$(CC) -o $@ $^ $(LDLIBS)

.PHONY: bench-cuda cuda-plugin
cuda-plugin: $(if $(filter 1,$(CUDA_ON)),$(CUDA_PLUGIN))
bench-cuda: $(BUILD)/rel/bench/cuda_bench emerge
	$(BUILD)/rel/bench/cuda_bench --emerge ./emerge --dir $(BUILD)/bench

# ---- demo (owner: suite) -----------------------------------------------
#   make demo     the bundled suite (tasks/suite) over the demo family with
#                 the native backend into runs/demo.sqlite, then `emerge
#                 scaling`, the retrieval/cot matching scale, plots and the
#                 report under runs/demo/. DEMO_LIMIT examples per task
#                 (default 60; 0 = all), see tasks/suite/demo.sh.
DEMO_LIMIT ?= 60
.PHONY: demo
demo:
	@sh tools/deps.sh check || sh tools/deps.sh install
	@command -v gnuplot >/dev/null 2>&1 || sh tools/deps.sh install
	$(MAKE) emerge
	DEMO_LIMIT=$(DEMO_LIMIT) sh tasks/suite/demo.sh

# the floor plan, for tests/test_layers.sh
.PHONY: layers
layers:
	@echo $(LAYERS)

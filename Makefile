# emerge - Makefile
#
#   make            build ./emerge (release, -O2)
#   make test       install missing packages, build the ASan+UBSan variant,
#                   run every test; last line "N passed, N failed"
#   make bench      benchmarks (figures and ratios against a reference)
#   make deps       install missing Debian packages (apt-get)
#
# Every .c under harness/ metrics/ backends/ reports/ goes into
# libemerge.a (harness/main.c is the CLI). Each tests/test_*.c is its own
# test program linked against the ASan library; tests/test_*.sh are shell
# tests run against the ASan ./emerge.

CC      ?= cc
BUILD   ?= build
WARN     = -Wall -Wextra -Werror
CPPFLAGS = -I. -D_GNU_SOURCE -DPCRE2_CODE_UNIT_WIDTH=8
CSTD     = -std=c11
REL_CFLAGS  = $(CSTD) -O2 -g $(WARN) -fno-strict-aliasing
ASAN_CFLAGS = $(CSTD) -O1 -g $(WARN) -fno-strict-aliasing \
              -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
ASAN_LDFLAGS = -fsanitize=address,undefined
LDLIBS   = -lcjson -lyaml -lpcre2-8 -lsqlite3 -lcurl -lmicrohttpd -lm -lpthread

LIB_SRC  := $(filter-out harness/main.c, \
            $(wildcard harness/*.c metrics/*.c backends/*.c reports/*.c))
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

$(DEPS_OK): tools/deps.sh
	@sh tools/deps.sh check || sh tools/deps.sh install
	@mkdir -p $(BUILD) && touch $@

$(BUILD)/rel/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(REL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(ASAN_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/rel/libemerge.a: $(REL_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/asan/libemerge.a: $(ASAN_OBJ)
	rm -f $@ && ar rcs $@ $^

emerge: $(BUILD)/rel/harness/main.o $(BUILD)/rel/libemerge.a
	$(CC) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/emerge: $(BUILD)/asan/harness/main.o $(BUILD)/asan/libemerge.a
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/asan/tests/%: $(BUILD)/asan/tests/%.o $(BUILD)/asan/tests/testlib.o $(BUILD)/asan/libemerge.a
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(LDLIBS)

asan: $(BUILD)/asan/emerge $(TESTS)
tests: asan

test: $(DEPS_OK)
	sh tools/deps.sh check-test || sh tools/deps.sh install
	$(MAKE) asan
	EMERGE_BIN=$(BUILD)/asan/emerge sh tests/run.sh $(BUILD)/asan/tests

bench: emerge
	sh tools/bench.sh

clean:
	rm -rf $(BUILD) emerge

-include $(REL_OBJ:.o=.d) $(ASAN_OBJ:.o=.d) $(BUILD)/asan/tests/*.d $(BUILD)/rel/harness/main.d $(BUILD)/asan/harness/main.d

# ---- fuzzing the GGUF reader (owner: gguf) ---------------------------
#   make fuzz          libFuzzer on the reader for FUZZ_TIME seconds
#                      (tests/test_fuzz_gguf.sh does a 30 s run in `make test`)
FUZZ_CC     ?= clang
FUZZ_TIME   ?= 600
FUZZ_CFLAGS  = $(CSTD) -O1 -g $(WARN) -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_SRC     = tests/fuzz_gguf.c backends/gguf.c harness/common.c

$(BUILD)/fuzz/fuzz_gguf: $(FUZZ_SRC) backends/gguf.h harness/common.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRC) -lm

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
#   When on: backends/cuda/*.cu are compiled once by nvcc (sm_90 code plus
#   compute_80 PTX, no sanitizers) and go into both the rel and the asan
#   library; cuda_gpu.c is compiled with the CUDA headers;
#   EMERGE_CUDA=1 is defined (backend.c registers "cuda"); programs link
#   cudart and cuBLAS with an rpath. The other backends/cuda/*.c are plain
#   C (packing, engine, backend, the CPU emulation of the device) and are
#   built either way: tests/test_cuda_host.c checks them without a GPU.
#   Only cuda_gpu.c (cudart/cuBLAS) and the .cu files need CUDA.
#   make bench-cuda  GPU prompt/decode tokens/s, bandwidth, cuBLAS ratio
#                    (prints why and exits 0 without a GPU or CUDA build)
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
NVCC_FLAGS  = -std=c++17 -O2 -I. -Xcompiler -Wall,-Wextra,-Werror $(CUDA_ARCH)

# Objects whose code changes with EMERGE_CUDA rebuild when CUDA_ON flips.
CUDA_FLAG := $(BUILD)/cuda-flag
$(shell mkdir -p $(BUILD) && \
  (echo $(CUDA_ON) | cmp -s - $(CUDA_FLAG) || echo $(CUDA_ON) > $(CUDA_FLAG)))
$(foreach v,rel asan,$(BUILD)/$(v)/backends/backend.o \
  $(BUILD)/$(v)/harness/cmd_models.o $(BUILD)/$(v)/tests/test_cuda.o \
  $(BUILD)/$(v)/bench/cuda_bench.o): $(CUDA_FLAG)

CUDA_ALWAYS := $(filter-out backends/cuda/cuda_gpu.c,$(wildcard backends/cuda/*.c))
$(BUILD)/rel/libemerge.a: $(CUDA_ALWAYS:%.c=$(BUILD)/rel/%.o)
$(BUILD)/asan/libemerge.a: $(CUDA_ALWAYS:%.c=$(BUILD)/asan/%.o)

ifeq ($(CUDA_ON),1)
CUDA_CU_OBJ := $(patsubst backends/cuda/%.cu,$(BUILD)/cuda/%.o,\
                 $(wildcard backends/cuda/*.cu))
CUDA_C_SRC  := $(filter-out $(CUDA_ALWAYS),$(wildcard backends/cuda/*.c))
CUDA_C_OBJ  := $(foreach v,rel asan,$(CUDA_C_SRC:%.c=$(BUILD)/$(v)/%.o)) \
               $(foreach v,rel asan,$(BUILD)/$(v)/bench/cuda_bench.o \
                 $(BUILD)/$(v)/tests/test_cuda.o)
CPPFLAGS    += -DEMERGE_CUDA=1
$(CUDA_C_OBJ): CPPFLAGS += -I$(CUDA_HOME)/include
LDLIBS      += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 \
               -lcublas -lcudart -lstdc++

$(BUILD)/cuda/%.o: backends/cuda/%.cu $(wildcard backends/cuda/*.h) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CUDA_NVCC) $(NVCC_FLAGS) -c $< -o $@

$(BUILD)/rel/libemerge.a: $(CUDA_CU_OBJ) $(CUDA_C_SRC:%.c=$(BUILD)/rel/%.o)
$(BUILD)/asan/libemerge.a: $(CUDA_CU_OBJ) $(CUDA_C_SRC:%.c=$(BUILD)/asan/%.o)
-include $(foreach v,rel asan,$(CUDA_C_SRC:%.c=$(BUILD)/$(v)/%.d))
endif
-include $(foreach v,rel asan,$(CUDA_ALWAYS:%.c=$(BUILD)/$(v)/%.d))

$(BUILD)/rel/bench/cuda_bench: $(BUILD)/rel/bench/cuda_bench.o $(BUILD)/rel/libemerge.a
	$(CC) -o $@ $^ $(LDLIBS)

.PHONY: bench-cuda
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
demo: emerge
	@command -v gnuplot >/dev/null 2>&1 || sh tools/deps.sh install
	DEMO_LIMIT=$(DEMO_LIMIT) sh tasks/suite/demo.sh

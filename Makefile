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

#!/bin/sh
# test_fuzz_gguf.sh - a short libFuzzer run of the GGUF reader (default
# 30 s, EMERGE_FUZZ_SECONDS to change). `make fuzz` is the long run.
# SKIP when clang's fuzzer runtime is missing, except under CI=true.
set -u
secs=${EMERGE_FUZZ_SECONDS:-30}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ci=0
case "${CI:-}" in true|1) ci=1 ;; esac

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! clang -fsanitize=fuzzer "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1; then
    if [ $ci -eq 1 ]; then
        echo "FAIL fuzz_gguf: clang with libFuzzer runtime not available"
    else
        echo "SKIP fuzz_gguf: clang with libFuzzer runtime not available"
    fi
    exit 0
fi
if ! make -s build/fuzz/fuzz_gguf >"$tmp/build.log" 2>&1; then
    echo "FAIL fuzz_gguf: build failed: $(tail -5 "$tmp/build.log" | tr '\n' ' ')"
    exit 0
fi
sh tests/fuzz_seed.sh "$tmp/corpus" "${EMERGE_BIN:-build/asan/emerge}" >/dev/null
# The seed corpus is read-only to the fuzzer; new inputs go to $tmp/new.
mkdir -p "$tmp/new"
if build/fuzz/fuzz_gguf -max_total_time="$secs" -max_len=65536 -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$tmp/" "$tmp/new" "$tmp/corpus" \
        >"$tmp/fuzz.log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$tmp/fuzz.log" | tr -dc 0-9)
    echo "PASS fuzz_gguf (${runs:-?} inputs in ${secs}s)"
else
    mkdir -p build/fuzz
    cp "$tmp"/crash-* "$tmp"/timeout-* "$tmp"/oom-* build/fuzz/ 2>/dev/null
    echo "FAIL fuzz_gguf: $(grep -m1 -E 'ERROR|invariant|SUMMARY' "$tmp/fuzz.log") (inputs saved in build/fuzz/)"
fi

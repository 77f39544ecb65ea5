#!/bin/sh
# test_fuzz_safetensors.sh - a short libFuzzer run of the safetensors
# reader (default 15 s, EMERGE_FUZZ_SECONDS to change), seeded with small
# valid files. SKIP when clang's fuzzer runtime is missing, except under
# CI=true.
set -u
secs=${EMERGE_FUZZ_SECONDS:-15}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ci=0
case "${CI:-}" in true|1) ci=1 ;; esac

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n)\n{ (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
if ! clang -fsanitize=fuzzer "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1; then
    word=SKIP; [ $ci -eq 1 ] && word=FAIL
    echo "$word fuzz_safetensors: clang with libFuzzer runtime not available"
    exit 0
fi
if ! make -s build/fuzz/fuzz_safetensors >"$tmp/build.log" 2>&1; then
    echo "FAIL fuzz_safetensors: build failed: $(tail -5 "$tmp/build.log" | tr '\n' ' ')"
    exit 0
fi
# Seeds: a header length, the JSON header, then the data.
mkdir -p "$tmp/corpus" "$tmp/new"
seed() { # NAME HEADER DATA_BYTES
    n=$(printf '%s' "$2" | wc -c)
    {
        printf "$(printf '\\%03o' $((n & 255)) $((n >> 8 & 255)))"
        printf '\000\000\000\000\000\000'
        printf '%s' "$2"
        head -c "$3" /dev/zero
    } >"$tmp/corpus/$1"
}
seed one '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}' 16
seed two '{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}' 16
seed empty '{}' 0
for f in tests/data/hf/gpt2-small-f16/model.safetensors; do
    [ -f "$f" ] && head -c 4096 "$f" >"$tmp/corpus/real"
done
if build/fuzz/fuzz_safetensors -max_total_time="$secs" -max_len=8192 \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$tmp/" \
        "$tmp/new" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1; then
    runs=$(grep -o 'Done [0-9]* runs' "$tmp/fuzz.log" | tr -dc 0-9)
    echo "PASS fuzz_safetensors (${runs:-?} inputs in ${secs}s)"
else
    mkdir -p build/fuzz
    cp "$tmp"/crash-* "$tmp"/timeout-* "$tmp"/oom-* build/fuzz/ 2>/dev/null
    echo "FAIL fuzz_safetensors: $(grep -m1 -E 'ERROR|invariant|SUMMARY' "$tmp/fuzz.log") (inputs saved in build/fuzz/)"
fi

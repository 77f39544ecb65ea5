#!/bin/sh
# tools/bench.sh - `make bench`: speed of the native engine against
# llama.cpp's figures in $EMERGE_SHARED/refs/llama-bench.md.
#
# For every shared fixture and for a 134M-parameter llama of the shape in
# llama-bench.md (n_embd 768, 12 layers, 12 heads, n_ff 2048, vocab 32000,
# random weights written by `emerge mkmodel` into build/bench/, never
# committed) in F32, F16, Q8_0, Q4_0 and Q4_K, bench/native_bench prints
# pp256 and tg64 tokens/s (with llama.cpp's figure and the ratio where
# there is one), multiple-choice examples/s with and without prefix
# sharing with the tokens each evaluated, and peak RSS. Then, when
# LLAMA_BENCH names a llama-bench binary, llama.cpp and emerge side by side
# on the same 134M files (bench/llamacpp_side_by_side.sh).
# Threads: all online CPUs (EMERGE_BENCH_THREADS overrides).
# The machine is shared: the load average is printed with the figures.
set -u
BUILD=${BUILD:-build}
SHARED=${EMERGE_SHARED:-../shared}
THREADS=${EMERGE_BENCH_THREADS:-$(getconf _NPROCESSORS_ONLN)}
BENCH=$BUILD/rel/bench/native_bench
REF=$SHARED/refs/llama-bench.md
OUT=$BUILD/bench

make -s "$BENCH" emerge || exit 1
mkdir -p "$OUT"

# "pp tg" for a row of llama-bench.md's table ("| Q4_0 | ... | 1835 ± 22 | 416 ± 8 |").
ref_figures() {
    [ -f "$REF" ] || { echo "0 0"; return; }
    awk -F'|' -v t="$1" '{ g = $2; gsub(/ /, "", g) }
        g == t { split($4, p, " "); split($5, d, " "); print p[1], d[1]; f = 1 }
        END { if (!f) print "0 0" }' "$REF"
}

echo "== native engine benchmark: $THREADS threads, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "-- shared fixtures (no llama.cpp figures)"
for f in "$SHARED"/fixtures/gguf/*.gguf; do
    [ -f "$f" ] || { echo "SKIP: no fixtures under $SHARED"; break; }
    "$BENCH" "$f" "$THREADS" || echo "FAIL: $f"
done

echo "-- 134M llama (llama-bench.md shape), against llama.cpp"
for t in f32:F32 f16:F16 q8_0:Q8_0 q4_0:Q4_0 q4_k:Q4_K_M; do
    type=${t%%:*} row=${t#*:}
    model=$OUT/llama134m-$type.gguf
    if [ ! -f "$model" ]; then
        ./emerge mkmodel -o "$model" --type "$type" >/dev/null || {
            echo "FAIL: emerge mkmodel --type $type"; continue; }
    fi
    set -- $(ref_figures "$row")
    case $type in q4_*) echo "(llama.cpp's $row keeps some tensors at higher precision; emerge's file is all $type)" ;; esac
    "$BENCH" "$model" "$THREADS" "$1" "$2" || echo "FAIL: $model"
done
echo "-- demo family (models/family/)"
for f in models/family/*.gguf; do
    [ -f "$f" ] || { echo "SKIP: no demo family GGUF files"; break; }
    "$BENCH" "$f" "$THREADS" || echo "FAIL: $f"
done

echo "-- emerge serve under concurrent clients (bench/serve_bench.sh)"
EMERGE_BIN=./emerge DURATION=${EMERGE_BENCH_SERVE_S:-5} sh bench/serve_bench.sh \
    "$SHARED/fixtures/gguf/tiny-llama-f32.gguf" || echo "FAIL: serve bench"

echo "-- llama.cpp side by side on the 134M files (bench/llamacpp_side_by_side.sh; needs LLAMA_BENCH)"
sh bench/llamacpp_side_by_side.sh || echo "FAIL: side by side"

echo "== load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"

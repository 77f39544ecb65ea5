#!/bin/sh
# bench/llamacpp_side_by_side.sh - emerge's native engine and llama.cpp's
# llama-bench on the same GGUF files, with the same thread count, on the
# same machine at the same time.
#
# For each 134M-parameter llama file that `make bench` generates
# (build/bench/llama134m-{f32,f16,q8_0,q4_0,q4_k}.gguf, written by
# `emerge mkmodel` when missing) it runs
#     llama-bench -m FILE -t THREADS -p 256 -n 64 -r REPS -o json
# and then bench/native_bench on the same file with the same REPS, file
# after file (llama.cpp, emerge, llama.cpp, emerge, ...), so both see the
# same machine state; with ROUNDS > 1 the whole sequence repeats and each
# side keeps its best round (the least disturbed one, on a shared machine).
# Figures are means of the REPS runs in tokens/s, llama-bench's avg_ts and
# native_bench's mean. Prints one Markdown table: type, pp256 llama.cpp /
# emerge / ratio, tg64 llama.cpp / emerge / ratio (ratio = emerge/llama.cpp).
#
# llama.cpp is not part of emerge and is never built here: point
# LLAMA_BENCH at a llama-bench binary built elsewhere. Without it the
# script prints one "skipped" line and exits 0.
#
# Environment: LLAMA_BENCH (required), SIDE_THREADS (default 2),
# SIDE_REPS (3), SIDE_ROUNDS (1), SIDE_TYPES ("f32 f16 q8_0 q4_0 q4_k"),
# BUILD (build), SIDE_DIR (where the llama134m-TYPE.gguf files are;
# $BUILD/bench), NATIVE_BENCH (emerge's bench program; default
# $BUILD/rel/bench/native_bench, built with make when not given).
set -u
if [ -z "${LLAMA_BENCH:-}" ]; then
    echo "side-by-side: skipped (set LLAMA_BENCH to a llama-bench binary)"
    exit 0
fi
if [ ! -x "$LLAMA_BENCH" ]; then
    echo "side-by-side: FAIL: LLAMA_BENCH=$LLAMA_BENCH is not an executable"
    exit 1
fi
BUILD=${BUILD:-build}
THREADS=${SIDE_THREADS:-2}
REPS=${SIDE_REPS:-3}
ROUNDS=${SIDE_ROUNDS:-1}
TYPES=${SIDE_TYPES:-"f32 f16 q8_0 q4_0 q4_k"}
BENCH=${NATIVE_BENCH:-$BUILD/rel/bench/native_bench}
OUT=${SIDE_DIR:-$BUILD/bench}
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM

if [ -z "${NATIVE_BENCH:-}" ]; then
    make -s "$BENCH" emerge || exit 1
fi
mkdir -p "$OUT"

# "pp tg" (avg_ts of the pp256 and tg64 tests) from llama-bench's JSON on
# stdin. Splitting at commas puts every "key": value on its own line
# (string values that contain commas only make lines that match no key).
llama_parse() {
    tr ',' '\n' | awk '
        function val(s) { sub(/^[^:]*:[ ]*/, "", s); gsub(/[" ]/, "", s); return s }
        /"n_prompt":/ { np = val($0) + 0 }
        /"n_gen":/    { ng = val($0) + 0 }
        /"avg_ts":/   { v = val($0) + 0
                        if (np > 0 && ng == 0) pp = v
                        if (ng > 0 && np == 0) tg = v }
        /"build_commit":/ { bc = val($0) }
        END { if (pp == "" || tg == "") exit 1
              printf "%.2f %.2f %s\n", pp, tg, bc == "" ? "unknown" : bc }'
}

# native_bench --tsv lines "pp256|tg64 mean sd best cpu" -> "pp tg" means.
emerge_parse() {
    awk -F'\t' '$1 == "pp256" { pp = $2 } $1 == "tg64" { tg = $2 }
        END { if (pp == "" || tg == "") exit 1; printf "%.2f %.2f\n", pp, tg }'
}

max() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 > a + 0) ? b : a }'; }

echo "== llama.cpp side by side: $THREADS threads, pp256/tg64, $REPS runs each, $ROUNDS round(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
commit=unknown
round=1
while [ "$round" -le "$ROUNDS" ]; do
    for type in $TYPES; do
        model=$OUT/llama134m-$type.gguf
        if [ ! -f "$model" ]; then
            ./emerge mkmodel -o "$model" --type "$type" >/dev/null || {
                echo "FAIL: emerge mkmodel --type $type"; continue; }
        fi
        if "$LLAMA_BENCH" -m "$model" -t "$THREADS" -p 256 -n 64 -r "$REPS" \
               -o json >"$TMP/l.json" 2>"$TMP/l.err" &&
           set -- $(llama_parse <"$TMP/l.json"); then
            commit=$3
            echo "$(max "$(cat "$TMP/$type.lpp" 2>/dev/null)" "$1")" >"$TMP/$type.lpp"
            echo "$(max "$(cat "$TMP/$type.ltg" 2>/dev/null)" "$2")" >"$TMP/$type.ltg"
        else
            echo "FAIL: llama-bench cannot run $model: $(grep -v '^$' "$TMP/l.err" | tail -n 1)"
        fi
        if "$BENCH" -r "$REPS" --no-mc --tsv "$model" "$THREADS" >"$TMP/e.tsv" &&
           set -- $(emerge_parse <"$TMP/e.tsv"); then
            echo "$(max "$(cat "$TMP/$type.epp" 2>/dev/null)" "$1")" >"$TMP/$type.epp"
            echo "$(max "$(cat "$TMP/$type.etg" 2>/dev/null)" "$2")" >"$TMP/$type.etg"
        else
            echo "FAIL: native_bench on $model"
        fi
    done
    echo "-- round $round done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    round=$((round + 1))
done

fig() { cat "$TMP/$1" 2>/dev/null || echo "-"; }
ratio() { awk -v e="$1" -v l="$2" 'BEGIN { if (e == "-" || l == "-" || l + 0 == 0) print "-"; else printf "%.2f", e / l }'; }

echo "llama.cpp build $commit; tokens/s, mean of $REPS runs (best round); ratio = emerge / llama.cpp"
echo "| type | pp256 llama.cpp | pp256 emerge | ratio | tg64 llama.cpp | tg64 emerge | ratio |"
echo "|---|---|---|---|---|---|---|"
for type in $TYPES; do
    lpp=$(fig "$type.lpp") epp=$(fig "$type.epp") ltg=$(fig "$type.ltg") etg=$(fig "$type.etg")
    echo "| $(echo "$type" | tr 'a-z' 'A-Z') | $lpp | $epp | $(ratio "$epp" "$lpp") | $ltg | $etg | $(ratio "$etg" "$ltg") |"
done
echo "== side by side done, load average $(cut -d' ' -f1-3 /proc/loadavg)"

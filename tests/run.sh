#!/bin/sh
# tests/run.sh DIR - runs every test program in DIR and every tests/test_*.sh,
# prints their PASS/FAIL/SKIP lines and ends with "N passed, N failed".
# A program that crashes or exits non-zero without a FAIL line counts as one
# failure, so a sanitizer abort is never lost. Before that last line it
# says how many tests were skipped because ../shared (EMERGE_SHARED) is not
# there, and what of it they need: everything that can be shipped is in
# tests/data (tests/data/README.md).
set -u
dir=${1:-build/asan/tests}
log=$(mktemp)
needs=$(mktemp)
pass=0 fail=0 skip=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export EMERGE_BIN=${EMERGE_BIN:-build/asan/emerge}

run_one() {
    name=$1; shift
    echo "== $name"
    timeout "${EMERGE_TEST_TIMEOUT:-900}" "$@" >"$log" 2>&1
    rc=$?
    cat "$log"
    grep '^SKIP .*: needs \.\./shared: ' "$log" | sed "s|^SKIP |$name: |" >>"$needs"
    p=$(grep -c '^PASS ' "$log"); f=$(grep -c '^FAIL ' "$log"); s=$(grep -c '^SKIP ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc"
        f=1
    fi
    pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

for t in "$dir"/test_*; do
    case "$t" in *.o|*.d) continue ;; esac
    [ -x "$t" ] || continue
    run_one "$(basename "$t")" "$t"
done
for t in tests/test_*.sh; do
    [ -f "$t" ] || continue
    run_one "$(basename "$t")" sh "$t"
done
# Why the skipped tests need ../shared, by what they miss.
why() {
    case $1 in
    */fixtures/gguf/wide-llama-q6_k*|*/refs/logits/logits-wide-llama-q6_k*)
        echo "the Q6_K fixture and its llama.cpp logits (not shipped)" ;;
    */fixtures/gguf/*|*/refs/logits/*)
        echo "the fixtures with their full vocabularies, as llama.cpp wrote them, and llama.cpp's logits over all of it (tests/data has ~440-token copies)" ;;
    */refs/tokenizer/*falcon*)
        echo "the falcon tokenizer vectors (not shipped)" ;;
    */tasks/bbh*)
        echo "all nine BBH tasks (three are shipped)" ;;
    *) echo "other shared files" ;;
    esac
}
n_needs=$(wc -l <"$needs")
if [ "$n_needs" -gt 0 ]; then
    echo "$n_needs skipped: need ../shared (EMERGE_SHARED=${EMERGE_SHARED:-../shared}), for:"
    sed 's|.*needs \.\./shared: \([^ ]*\) missing.*|\1|' "$needs" | while read -r f; do
        why "$f"
    done | sort | uniq -c | sort -rn | sed 's/^ *\([0-9]*\) /  \1: /'
    echo "  tests: $(sed 's/^\([^:]*: [^:]*\):.*/\1/' "$needs" | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
fi
[ "$skip" -gt "$n_needs" ] && echo "$((skip - n_needs)) skipped for other reasons (their SKIP lines say why)"
rm -f "$log" "$needs"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]

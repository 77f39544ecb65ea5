#!/bin/sh
# tests/run.sh DIR - runs every test program in DIR and every tests/test_*.sh,
# prints their PASS/FAIL/SKIP lines and ends with "N passed, N failed".
# A program that crashes or exits non-zero without a FAIL line counts as one
# failure, so a sanitizer abort is never lost.
set -u
dir=${1:-build/asan/tests}
log=$(mktemp)
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
rm -f "$log"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]

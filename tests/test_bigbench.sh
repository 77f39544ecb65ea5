#!/bin/sh
# test_bigbench.sh - BIG-bench and BBH JSON tasks through the CLI: `tasks
# validate` accepts them unmodified, `tasks show` prints BBH's published
# chain-of-thought prompt byte for byte, and a sweep over the synthetic
# family (whose arithmetic skill switches on at 3e8 parameters) scores a
# generative output_regex task and a target_scores task with the ground
# truth: 0 for the smallest model, 1 for the largest.
# Prints PASS/FAIL/SKIP lines for tests/run.sh. Run from the repository root.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
if [ ! -x "$BIN" ]; then
    echo "FAIL bigbench_cli: no emerge binary at $BIN"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
D=tests/data/bigbench

if "$BIN" tasks validate $D/*.json $D/*/task.json >"$tmp/v.out" 2>&1; then
    echo "PASS bigbench_validate ($(grep -c ': ok' "$tmp/v.out") files)"
else
    echo "FAIL bigbench_validate: $(grep -v ': ok' "$tmp/v.out" | head -3)"
fi

# BBH: three tasks shipped in tests/data/bbh (with their canaries; see
# tests/data/README.md), all nine in ../shared
shared=${EMERGE_SHARED:-../shared}
bbh=tests/data/bbh
ok=1
"$BIN" tasks validate "$bbh"/bbh/*.json >"$tmp/b.out" 2>&1 || ok=0
[ "$(grep -c ': ok' "$tmp/b.out")" -eq 3 ] || ok=0
# the published prompt: the cot file without its first two lines, then
# "\n\nQ: " + input + "\nA: Let's think step by step."
"$BIN" tasks show "$bbh/bbh/navigate.json" --variant cot --example 0 \
    >"$tmp/show.out" 2>&1 || ok=0
sed -n '3,$p' "$tmp/show.out" | sed '$d' >"$tmp/got.txt"
input=$(sed -n 's/^{"canary": "[^"]*", "examples": \[{"input": "\([^"]*\)".*/\1/p' \
    "$bbh/bbh/navigate.json")
{ tail -n +3 "$bbh/cot-prompts/navigate.txt"; printf '\n\nQ: %b\nA: Let'"'"'s think step by step.\n' "$input"; } >"$tmp/want.txt"
if [ -z "$input" ]; then
    ok=0
    echo "  (could not read example 0's input)"
fi
cmp -s "$tmp/got.txt" "$tmp/want.txt" || { ok=0; diff "$tmp/want.txt" "$tmp/got.txt" | head -5; }
if [ $ok -eq 1 ]; then
    echo "PASS bigbench_bbh_cli (3 shipped BBH tasks validate; navigate's cot prompt is byte-identical)"
else
    echo "FAIL bigbench_bbh_cli: $(grep -v ': ok' "$tmp/b.out" | head -3)"
fi
if [ ! -d "$shared/tasks/bbh/bbh" ]; then
    if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
        echo "FAIL bigbench_bbh_cli_all: $shared/tasks/bbh missing under CI"
    else
        echo "SKIP bigbench_bbh_cli_all: needs ../shared: $shared/tasks/bbh missing (set EMERGE_SHARED)"
    fi
elif "$BIN" tasks validate "$shared"/tasks/bbh/bbh/*.json >"$tmp/b.out" 2>&1 &&
     [ "$(grep -c ': ok' "$tmp/b.out")" -eq 9 ]; then
    echo "PASS bigbench_bbh_cli_all (9 BBH tasks validate)"
else
    echo "FAIL bigbench_bbh_cli_all: $(grep -v ': ok' "$tmp/b.out" | head -3)"
fi

# A sweep with the synthetic family: ground truth by size.
if ! "$BIN" sweep --tasks $D/arith_regex/task.json,$D/mc_arith.json \
        --models tests/data/families/synthetic.yaml --variants standard,shots1 \
        --db "$tmp/s.sqlite" --quiet >"$tmp/s.out" 2>&1; then
    echo "FAIL bigbench_sweep: $(tail -3 "$tmp/s.out")"
    exit 1
fi
"$BIN" results --db "$tmp/s.sqlite" --format csv >"$tmp/r.csv"
check() { # task variant model metric want
    got=$(awk -F, -v t="$1" -v v="$2" -v m="$3" -v k="$4" \
        '$1 == t && $2 == v && $3 == m && $6 == k { print $7 }' "$tmp/r.csv")
    if [ "$got" != "$5" ]; then
        echo "FAIL bigbench_sweep: $1/$2/$3 $4 = '$got', expected $5"
        return 1
    fi
}
fail=0
for v in standard shots1; do
    check arith_regex $v syn-1m exact_match 0.000000 || fail=1
    check arith_regex $v syn-100b exact_match 1.000000 || fail=1
    check mc_arith $v syn-1m multiple_choice_grade 0.000000 || fail=1
    check mc_arith $v syn-100b multiple_choice_grade 1.000000 || fail=1
done
[ $fail -eq 0 ] && echo "PASS bigbench_sweep (exact_str_match and multiple_choice_grade follow the synthetic ground truth)"
exit 0

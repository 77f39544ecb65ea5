#!/bin/sh
# test_suite.sh - the bundled suite and its commands through the CLI:
# `tasks validate` on every bundled task, `scaling --compare` on two
# synthetic families whose abilities are the same curve 10x apart in
# parameters (the ground truth: B needs 10x the parameters of A),
# `--compare-variants` and its errors, and `make demo`'s script end to end
# on two tiny random-weight models (the demo family is too slow for a test).
# Prints PASS/FAIL/SKIP lines for tests/run.sh. Run from the repository root.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
if [ ! -x "$BIN" ]; then
    echo "FAIL suite_cli: no emerge binary at $BIN"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if "$BIN" tasks validate tasks/suite/*.yaml tasks/suite/large/*.yaml >"$tmp/v.out" 2>&1 &&
   [ "$(grep -c ': ok' "$tmp/v.out")" -eq 15 ]; then
    echo "PASS suite_validate (15 tasks)"
else
    echo "FAIL suite_validate: $(grep -v ': ok' "$tmp/v.out" | head -3)"
fi

# Two synthetic families: the same smooth curve, midpoints 1e8 and 1e9.
{
    echo "name: two"
    echo "defaults: {backend: synthetic, shape: smooth, width: 2, seed: 1}"
    echo "members:"
    for f in a b; do
        mid=1e8; [ $f = b ] && mid=1e9
        for p in 1e6 1e7 1e8 1e9 1e10; do
            echo "  - {name: f$f-$p, params: $p, midpoint: $mid}"
        done
    done
} >"$tmp/two.yaml"
if "$BIN" sweep --tasks examples/synthetic-arith.yaml --models "$tmp/two.yaml" \
        --db "$tmp/two.sqlite" --limit 60 --quiet >"$tmp/s.out" 2>&1; then
    "$BIN" scaling --db "$tmp/two.sqlite" --compare fa fb --metric exact_match \
        >"$tmp/c.out" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -q '^  fb needs 10x \[' "$tmp/c.out" &&
       grep -q 'fb-1e9 .* 100M \[' "$tmp/c.out"; then
        echo "PASS suite_compare_families"
    else
        echo "FAIL suite_compare_families: rc $rc: $(head -c 600 "$tmp/c.out")"
    fi
    "$BIN" scaling --db "$tmp/two.sqlite" --compare fa fb --metric exact_match \
        --format csv --replicates 0 >"$tmp/c.csv" 2>&1
    if head -1 "$tmp/c.csv" | grep -q '^task,variant,metric,a,b,b_model,b_params' &&
       grep -q '^synthetic-arith,standard,exact_match,fa,fb,\*,,,,,,0,10,10,10$' "$tmp/c.csv"; then
        echo "PASS suite_compare_csv"
    else
        echo "FAIL suite_compare_csv: $(tail -2 "$tmp/c.csv")"
    fi
    # Errors: unknown family, malformed variant pair, both modes at once.
    ok=1
    "$BIN" scaling --db "$tmp/two.sqlite" --compare fa nobody >"$tmp/e1" 2>&1 && ok=0
    grep -q 'no (task, metric) has scores of both fa and nobody' "$tmp/e1" || ok=0
    "$BIN" scaling --db "$tmp/two.sqlite" --compare-variants standard >"$tmp/e2" 2>&1 && ok=0
    grep -q 'wants A,B' "$tmp/e2" || ok=0
    "$BIN" scaling --db "$tmp/two.sqlite" --compare fa fb --compare-variants a,b \
        >"$tmp/e3" 2>&1 && ok=0
    grep -q 'give one of --compare and --compare-variants' "$tmp/e3" || ok=0
    "$BIN" scaling --db "$tmp/two.sqlite" --compare fa >"$tmp/e4" 2>&1 && ok=0
    grep -q 'needs two family names' "$tmp/e4" || ok=0
    if [ $ok = 1 ]; then
        echo "PASS suite_compare_errors"
    else
        echo "FAIL suite_compare_errors: $(cat "$tmp/e1" "$tmp/e2" "$tmp/e3" "$tmp/e4" | head -c 600)"
    fi
else
    echo "FAIL suite_compare_families: sweep failed: $(head -c 400 "$tmp/s.out")"
fi

# The demo script: a clear error without the family, and a full run.
if DEMO_FAMILY="$tmp/none.yaml" EMERGE="$BIN" sh tasks/suite/demo.sh >"$tmp/d0" 2>&1; then
    echo "FAIL suite_demo_missing_family: exited 0"
elif grep -q "none.yaml is missing" "$tmp/d0"; then
    echo "PASS suite_demo_missing_family"
else
    echo "FAIL suite_demo_missing_family: $(head -c 300 "$tmp/d0")"
fi
# Two random-weight models in the family's shape and vocabulary size (the
# synthetic backend answers arithmetic only); their outputs are noise, but
# every sweep, table, comparison, plot and report step must run.
for s in 1 2; do
    "$BIN" mkmodel -o "$tmp/m$s.gguf" --n-embd $((8 * s)) --n-layer 1 --n-head 1 \
        --n-ff $((24 * s)) --ctx 256 --n-vocab 354 --seed $s >/dev/null 2>&1
done
{
    echo "name: small"
    echo "defaults: {backend: native, threads: 1}"
    echo "members:"
    echo "  - {name: m-1, path: m1.gguf}"
    echo "  - {name: m-2, path: m2.gguf}"
} >"$tmp/small.yaml"
if DEMO_FAMILY="$tmp/small.yaml" DEMO_DB="$tmp/demo.sqlite" DEMO_OUT="$tmp/demo" \
   DEMO_LIMIT=1 EMERGE="$BIN" sh tasks/suite/demo.sh >"$tmp/d1" 2>&1 &&
   grep -q '^task add_3d  variant zero_shot_cot  metric exact_match' "$tmp/d1" &&
   grep -q '^task kb_recall  variant retrieval' "$tmp/d1" &&
   grep -q '^task story_gen  variant standard  metric bleu' "$tmp/d1" &&
   grep -q 'A = retrieval  B = standard' "$tmp/d1"; then
    echo "PASS suite_demo_script"
else
    echo "FAIL suite_demo_script: $(tail -c 600 "$tmp/d1")"
fi

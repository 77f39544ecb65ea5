#!/bin/sh
# test_overlay.sh - `emerge plot/report --scores FILE.csv`: published (or
# another family's) numbers drawn dashed over a task's variants figure, one
# line per family column value; series naming no task of the database are
# named on stderr, not drawn; the non-embedding axis refuses an overlay.
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$EMERGE" sweep --tasks tests/data/tasks/sweep-arith.yaml \
        --models tests/data/families/synthetic-smooth.yaml --db "$tmp/r.sqlite" \
        --variants standard --limit 20 --quiet >"$tmp/log" 2>&1; then
    echo "FAIL overlay_sweep: $(tail -3 "$tmp/log")"
    exit 0
fi
cat >"$tmp/pub.csv" <<'C'
task,model,params,score,variant,family
sweep-arith,p-1m,1e6,0.1,standard,paper-a
sweep-arith,p-1b,1e9,0.5,standard,paper-a
sweep-arith,p-1t,1e12,0.9,standard,paper-a
sweep-arith,q-1b,1e9,0.4,standard,paper-b
elsewhere,q-1b,1e9,0.4,standard,paper-b
C
if "$EMERGE" plot --db "$tmp/r.sqlite" --out "$tmp/p" --scores "$tmp/pub.csv" \
        >"$tmp/plot.log" 2>"$tmp/plot.err" &&
    [ "$(grep -c ',paper-a: standard,' "$tmp/p/sweep-arith-variants.csv")" -eq 3 ] &&
    [ "$(grep -c ',paper-b: standard,' "$tmp/p/sweep-arith-variants.csv")" -eq 1 ] &&
    grep -q "task elsewhere.*no such task in the database" "$tmp/plot.err" &&
    grep -q 'title "paper-a: standard"' "$tmp/p/sweep-arith-variants.gp"; then
    echo "PASS overlay_plot"
else
    echo "FAIL overlay_plot: $(cat "$tmp/plot.err"; grep -c paper "$tmp/p/sweep-arith-variants.csv" 2>&1)"
fi
if "$EMERGE" report --db "$tmp/r.sqlite" --out "$tmp/rep" --scores "$tmp/pub.csv" \
        >/dev/null 2>&1 && grep -q "paper-a" "$tmp/rep/figures/sweep-arith-variants.csv"; then
    echo "PASS overlay_report"
else
    echo "FAIL overlay_report"
fi
if "$EMERGE" plot --db "$tmp/r.sqlite" --out "$tmp/q" --scores "$tmp/pub.csv" \
        --axis nonembed >/dev/null 2>"$tmp/ne.err"; then
    echo "FAIL overlay_nonembed_refused: accepted"
elif grep -q "params or flops" "$tmp/ne.err"; then
    echo "PASS overlay_nonembed_refused"
else
    echo "FAIL overlay_nonembed_refused: $(cat "$tmp/ne.err")"
fi

#!/bin/sh
# test_plan.sh - `emerge sweep|run --plan`: the requests it counts are the
# ones the sweep then sends (standard and zero_shot_cot, generation and
# multiple choice), nothing is stored (--db is never created), each member
# is calibrated (speeds printed), and with --shard the shards' requests add
# up to the whole sweep's.
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
M=models/family/demo-d8l1-step512.gguf
T=tasks/suite/add_1d.yaml,tasks/suite/kb_recall_mc.yaml
args="--tasks $T --variants standard,zero_shot_cot --limit 4"
"$EMERGE" run --model "$M" $args --db "$tmp/p.sqlite" --plan >"$tmp/plan.out" 2>&1
rc=$?
"$EMERGE" run --model "$M" $args --db "$tmp/r.sqlite" >"$tmp/run.out" 2>&1
planned=$(sed -n 's/^total: \([0-9]*\) requests.*/\1/p' "$tmp/plan.out")
sent=$(sed -n 's/^emerge: done: \([0-9]*\) requests.*/\1/p' "$tmp/run.out")
if [ $rc -eq 0 ] && [ -n "$planned" ] && [ "$planned" = "$sent" ] && [ ! -e "$tmp/p.sqlite" ] &&
    awk '$1 == "demo-d8l1-step512.gguf" { exit !($6 > 0 && $7 > 0) }' "$tmp/plan.out"; then
    echo "PASS plan_counts_what_the_run_sends ($planned requests; nothing stored; calibrated)"
else
    echo "FAIL plan_counts_what_the_run_sends: rc $rc, planned '$planned', sent '$sent': $(cat "$tmp/plan.out" "$tmp/run.out" | head -8)"
fi
# shards: each shard's plan covers its cells; together the whole sweep
F=models/family/family.yaml
"$EMERGE" sweep --models "$F" $args --db "$tmp/all.sqlite" --plan >"$tmp/all.out" 2>&1
whole=$(sed -n 's/^total: \([0-9]*\) requests.*/\1/p' "$tmp/all.out")
sum=0
for i in 1 2 3; do
    "$EMERGE" sweep --models "$F" $args --db "$tmp/s$i.sqlite" --plan --shard $i/3 \
        >"$tmp/s$i.out" 2>&1
    n=$(sed -n 's/^total: \([0-9]*\) requests.*/\1/p' "$tmp/s$i.out")
    sum=$((sum + ${n:-0}))
done
if [ -n "$whole" ] && [ "$whole" -gt 0 ] && [ "$sum" -eq "$whole" ] &&
    [ "$(grep -c '^d[0-9]*l[0-9]*-step' "$tmp/all.out")" -eq 16 ]; then
    echo "PASS plan_shards_add_up ($whole requests over 16 members = the 3 shards' sum)"
else
    echo "FAIL plan_shards_add_up: whole '$whole', shards $sum: $(head -3 "$tmp/s1.out")"
fi
# the whole sweep's ETA (scaled by each member's estimated cost) follows
# every member's summary line but the last
"$EMERGE" sweep --models "$F" --tasks tasks/suite/add_1d.yaml --limit 2 \
    --db "$tmp/eta.sqlite" >"$tmp/eta.out" 2>&1
n=$(grep -c '^emerge: d[0-9]*l[0-9]*-step[0-9]*: .*, sweep ETA [0-9.]* \(s\|min\|h\)$' "$tmp/eta.out")
if [ "$n" -eq 15 ]; then
    echo "PASS sweep_eta_per_member (15 of 16 member lines carry it)"
else
    echo "FAIL sweep_eta_per_member: $n lines: $(grep '^emerge: d' "$tmp/eta.out" | tail -2)"
fi

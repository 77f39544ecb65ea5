#!/bin/sh
# test_resume.sh - a sweep killed with SIGKILL at random moments and re-run
# until it completes ends with byte-identical scores to an uninterrupted
# run (per-example dump and the aggregated CSV), and a re-run of a
# finished sweep sends nothing.
#
# Uses the ASan emerge binary ($EMERGE_BIN) and the synthetic family, so it
# needs no shared files. The random kill points come from a seed printed
# on failure (EMERGE_RESUME_SEED reproduces a run).
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
if [ ! -x "$BIN" ]; then
    echo "FAIL resume: no emerge binary at $BIN"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A private copy: a rebuild of the binary mid-test must not break a run.
cp "$BIN" "$tmp/emerge" && BIN="$tmp/emerge"
seed=${EMERGE_RESUME_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
# The synthetic family, with log-probs that depend on batch composition
# (batch_jitter): identical scores then also prove that a resumed run sends
# the same batches as an uninterrupted one.
sed 's/^defaults: {/defaults: {batch_jitter: 1e-9, /' \
    tests/data/families/synthetic.yaml >"$tmp/family.yaml"
args="--tasks tests/data/tasks/sweep-arith.yaml,tests/data/tasks/sweep-mc.yaml
      --models $tmp/family.yaml
      --variants standard,cot,zero_shot_cot --batch 4 --quiet"

# The reference: one uninterrupted run.
# The task list holds one pair that cannot be built (sweep-mc, variant cot): it is
# named and the sweep says it is incomplete, exit 1, every time.
complete_rc=1
start=$(date +%s.%N)
# shellcheck disable=SC2086
"$BIN" sweep $args --db "$tmp/ref.sqlite" 2>"$tmp/ref.err"
rc=$?
took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
if [ $rc -ne "$complete_rc" ]; then
    echo "FAIL resume_reference: exit $rc: $(tail -3 "$tmp/ref.err")"
    exit 1
fi
"$BIN" results --db "$tmp/ref.sqlite" --per-example >"$tmp/ref.dump"
"$BIN" results --db "$tmp/ref.sqlite" --format csv >"$tmp/ref.csv"
n=$(wc -l <"$tmp/ref.dump")
if [ "$n" -lt 1000 ]; then
    echo "FAIL resume_reference: only $n score lines"
    exit 1
fi
echo "PASS resume_reference ($n scores in ${took}s)"

# Kill points: uniform in (0, 0.9 x reference time), from the seed, so most
# attempts die mid-way and a trial usually takes a few kills to finish.
delays=$(awk -v s="$seed" -v t="$took" 'BEGIN { srand(s);
    for (i = 0; i < 200; i++) printf "%.3f\n", 0.02 + rand() * t * 0.9 }')

fail=0
trial=1
kills_total=0
set -- $delays
while [ $trial -le 4 ]; do
    db="$tmp/t$trial.sqlite"
    done_ok=0
    kills=0
    attempts=0
    while [ $done_ok -eq 0 ] && [ $attempts -lt 40 ]; do
        attempts=$((attempts + 1))
        d=${1:-0.3}
        [ $# -gt 0 ] && shift
        # shellcheck disable=SC2086
        "$BIN" sweep $args --db "$db" 2>>"$tmp/t$trial.err" &
        pid=$!
        sleep "$d"
        if kill -9 "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null
            kills=$((kills + 1))
        else
            wait "$pid"
            rc=$?
            if [ $rc -ne "$complete_rc" ]; then
                echo "FAIL resume_trial_$trial: sweep exited $rc (seed $seed): $(tail -3 "$tmp/t$trial.err")"
                fail=1
                break
            fi
            done_ok=1
        fi
    done
    kills_total=$((kills_total + kills))
    if [ $done_ok -eq 1 ]; then
        "$BIN" results --db "$db" --per-example >"$tmp/t$trial.dump"
        "$BIN" results --db "$db" --format csv >"$tmp/t$trial.csv"
        if ! cmp -s "$tmp/ref.dump" "$tmp/t$trial.dump"; then
            echo "FAIL resume_trial_$trial: per-example scores differ after $kills kills (seed $seed)"
            diff "$tmp/ref.dump" "$tmp/t$trial.dump" | head -5
            fail=1
        elif ! cmp -s "$tmp/ref.csv" "$tmp/t$trial.csv"; then
            echo "FAIL resume_trial_$trial: results csv differs after $kills kills (seed $seed)"
            fail=1
        else
            echo "PASS resume_trial_$trial (killed $kills times, identical scores)"
        fi
    elif [ $fail -eq 0 ]; then
        echo "FAIL resume_trial_$trial: did not finish in $attempts attempts (seed $seed)"
        fail=1
    fi
    trial=$((trial + 1))
done
if [ $kills_total -eq 0 ]; then
    echo "SKIP resume_kills: no run was killed mid-way (machine too fast?)"
fi

# A finished sweep re-run sends nothing.
# shellcheck disable=SC2086
"$BIN" sweep $args --db "$tmp/ref.sqlite" 2>/dev/null
"$BIN" sweep --tasks tests/data/tasks/sweep-arith.yaml,tests/data/tasks/sweep-mc.yaml \
    --models "$tmp/family.yaml" --variants standard,cot,zero_shot_cot \
    --db "$tmp/ref.sqlite" 2>"$tmp/rerun.err"
if grep -q "0 sent, 0 failed" "$tmp/rerun.err" && grep -q "done: .*(.* cached, 0 sent" "$tmp/rerun.err"; then
    echo "PASS resume_rerun_all_cached"
else
    echo "FAIL resume_rerun_all_cached: $(tail -2 "$tmp/rerun.err")"
    fail=1
fi
# results: filters, ECE rows for multiple choice, JSON that parses.
ece=$("$BIN" results --db "$tmp/ref.sqlite" --format csv --task sweep-mc --metric ece | wc -l)
if [ "$ece" -eq 7 ]; then
    echo "PASS results_filter_ece"
else
    echo "FAIL results_filter_ece: $ece lines, expected a header and 6 models"
    fail=1
fi
if "$BIN" results --db "$tmp/ref.sqlite" --format json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r) > 50 and all("mean" in x for x in r)'; then
    echo "PASS results_json"
else
    echo "FAIL results_json: output is not the expected JSON"
    fail=1
fi
exit $fail

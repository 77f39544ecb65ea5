#!/bin/sh
# parallel.sh [N] - a sharded emerge sweep with GNU parallel: N shard
# processes (here, or on other machines with -S), each into its own SQLite
# file, then one `emerge merge`. Without GNU parallel (or with
# NO_PARALLEL=1) the same N commands run as background jobs.
#
#   sh examples/cluster/parallel.sh 4
#   RESULTS=runs/p MODELS=pythia.yaml SWEEP_ARGS="--limit 100" sh examples/cluster/parallel.sh 8
#
# The one-liner, by hand (add -S host1,host2 --return shard-{}.sqlite
# --cleanup to spread it over machines that share the checkout's paths):
#
#   seq 1 4 | parallel emerge sweep --tasks tasks/suite --models models/family/family.yaml \
#       --shard {}/4 --db shard-{}.sqlite; emerge merge --db merged.sqlite shard-*.sqlite
#
# A shard that exits 1 (an incomplete sweep: failed requests, say) is
# merged, and `emerge merge` names it; one that exits otherwise (an error,
# or stopped by a signal: its file may hold part of its work with nothing
# to show it) is named here and nothing is merged. Run that shard again
# (it resumes) and this script again.
set -u
N=${1:-4}
EMERGE=${EMERGE:-emerge}
TASKS=${TASKS:-tasks/suite}
MODELS=${MODELS:-models/family/family.yaml}
SWEEP_ARGS=${SWEEP_ARGS:-}
RESULTS=${RESULTS:-runs/cluster}
mkdir -p "$RESULTS"
: >"$RESULTS/status-of-$N"

# shellcheck disable=SC2086
if command -v parallel >/dev/null 2>&1 && [ -z "${NO_PARALLEL:-}" ]; then
    seq 1 "$N" | parallel -q -j "$N" --joblog "$RESULTS/joblog-of-$N" \
        "$EMERGE" sweep --tasks "$TASKS" --models "$MODELS" $SWEEP_ARGS \
        --shard {}/"$N" --db "$RESULTS/shard-{}-of-$N.sqlite"
    # joblog columns: Seq Host Starttime JobRuntime Send Receive Exitval Signal
    awk 'NR > 1 { print $1, ($8 != 0 ? 128 + $8 : $7) }' \
        "$RESULTS/joblog-of-$N" >"$RESULTS/status-of-$N"
else
    i=1 pids=""
    while [ "$i" -le "$N" ]; do
        "$EMERGE" sweep --tasks "$TASKS" --models "$MODELS" $SWEEP_ARGS \
            --shard "$i/$N" --db "$RESULTS/shard-$i-of-$N.sqlite" &
        pids="$pids $!"
        i=$((i + 1))
    done
    i=1
    for p in $pids; do
        wait "$p"
        echo "$i $?" >>"$RESULTS/status-of-$N"
        i=$((i + 1))
    done
fi
failed=$(awk '$2 > 1 { printf " %d/'"$N"' (exit %d)", $1, $2 }' "$RESULTS/status-of-$N")
if [ -n "$failed" ]; then
    echo "parallel.sh: shards that did not run to their end:$failed; nothing merged" >&2
    exit 2
fi
rm -f "$RESULTS/merged.sqlite"
"$EMERGE" merge --db "$RESULTS/merged.sqlite" "$RESULTS"/shard-*-of-"$N".sqlite

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
set -u
N=${1:-4}
EMERGE=${EMERGE:-emerge}
TASKS=${TASKS:-tasks/suite}
MODELS=${MODELS:-models/family/family.yaml}
SWEEP_ARGS=${SWEEP_ARGS:-}
RESULTS=${RESULTS:-runs/cluster}
mkdir -p "$RESULTS"
rm -f "$RESULTS"/shard-*-of-"$N".sqlite

# An exit 1 (an incomplete shard) still goes to the merge, which names it.
# shellcheck disable=SC2086
if command -v parallel >/dev/null 2>&1 && [ -z "${NO_PARALLEL:-}" ]; then
    seq 1 "$N" | parallel -q -j "$N" "$EMERGE" sweep --tasks "$TASKS" \
        --models "$MODELS" $SWEEP_ARGS --shard {}/"$N" \
        --db "$RESULTS/shard-{}-of-$N.sqlite"
else
    i=1
    while [ "$i" -le "$N" ]; do
        "$EMERGE" sweep --tasks "$TASKS" --models "$MODELS" $SWEEP_ARGS \
            --shard "$i/$N" --db "$RESULTS/shard-$i-of-$N.sqlite" &
        i=$((i + 1))
    done
    wait
fi
rm -f "$RESULTS/merged.sqlite"
"$EMERGE" merge --db "$RESULTS/merged.sqlite" "$RESULTS"/shard-*-of-"$N".sqlite

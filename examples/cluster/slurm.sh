#!/bin/bash
# slurm.sh - a sharded emerge sweep as a Slurm job array. Each array task
# evaluates its shard into SQLite on the node's local disk, copies the
# finished file to $RESULTS (a filesystem every node sees), and the task
# that completes the set merges them into $RESULTS/merged.sqlite.
#
#   sbatch examples/cluster/slurm.sh                # 8 shards
#   sbatch --array=1-32 examples/cluster/slurm.sh   # 32 shards
#   sbatch --export=ALL,MODELS=pythia.yaml,SWEEP_ARGS="--variants standard,cot" \
#          examples/cluster/slurm.sh
#
# Shards are numbered 1..N, as --array=1-N numbers the array tasks.
#SBATCH --job-name=emerge-sweep
#SBATCH --array=1-8
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=emerge-shard-%a.log
set -eu

EMERGE=${EMERGE:-emerge}
TASKS=${TASKS:-tasks/suite}
MODELS=${MODELS:-models/family/family.yaml}
SWEEP_ARGS=${SWEEP_ARGS:-}
RESULTS=${RESULTS:-runs/cluster}
I=${SLURM_ARRAY_TASK_ID:?submit with sbatch --array=1-N}
N=${SLURM_ARRAY_TASK_COUNT:?submit with sbatch --array=1-N}
LOCAL=${TMPDIR:-/tmp}/emerge-shard-$I-of-$N.sqlite
mkdir -p "$RESULTS" "$(dirname "$LOCAL")"

# Node-local SQLite: WAL needs a local filesystem (NFS locking is not
# reliable). Exit 1 is an incomplete shard: it is kept, and merge names it.
rc=0
# shellcheck disable=SC2086
"$EMERGE" sweep --tasks "$TASKS" --models "$MODELS" $SWEEP_ARGS \
    --shard "$I/$N" --db "$LOCAL" || rc=$?
[ "$rc" -le 1 ] || exit "$rc"
# The sweep has closed the file (its WAL checkpointed): copy it whole,
# under a temporary name, so a reader never sees half of it.
cp "$LOCAL" "$RESULTS/shard-$I-of-$N.sqlite.part"
mv "$RESULTS/shard-$I-of-$N.sqlite.part" "$RESULTS/shard-$I-of-$N.sqlite"

# The task that completes the set merges (mkdir: one winner, also on NFS),
# locally again, then copies the result out.
have=$(find "$RESULTS" -maxdepth 1 -name "shard-*-of-$N.sqlite" | wc -l)
if [ "$have" -eq "$N" ] && mkdir "$RESULTS/merge-$N.lock" 2>/dev/null; then
    rm -f "${LOCAL%.sqlite}-merged.sqlite"
    "$EMERGE" merge --db "${LOCAL%.sqlite}-merged.sqlite" \
        "$RESULTS"/shard-*-of-"$N".sqlite || [ $? -eq 1 ]
    cp "${LOCAL%.sqlite}-merged.sqlite" "$RESULTS/merged.sqlite.part"
    mv "$RESULTS/merged.sqlite.part" "$RESULTS/merged.sqlite"
fi

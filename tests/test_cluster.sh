#!/bin/sh
# test_cluster.sh - the examples in examples/cluster/ run here, their
# shards as local processes: parallel.sh (with GNU parallel when it is
# installed, else its background-job fallback), slurm.sh run once per
# array task with SLURM_ARRAY_TASK_ID set, and the shell script of
# job.yaml's container run once per pod with JOB_COMPLETION_INDEX set.
# Each must end with a merged database whose `emerge results --format csv`
# is byte-identical to one unsharded sweep of the same command. The
# Slurm and Kubernetes files must also say what makes them what they are
# (#SBATCH --array, completionMode: Indexed with completions, parallelism
# and SHARDS equal).
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
if [ ! -x "$BIN" ]; then
    echo "FAIL cluster: no emerge binary at $BIN"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$BIN" "$tmp/emerge" && BIN="$tmp/emerge"
D=examples/cluster
N=3
export EMERGE="$BIN" TASKS=tasks/suite/add_2d.yaml,tasks/suite/kb_recall_mc.yaml
export MODELS=models/family/family.yaml SWEEP_ARGS="--limit 4 --batch 4 --quiet"
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1: $2"; }

# shellcheck disable=SC2086
"$BIN" sweep --tasks "$TASKS" --models "$MODELS" $SWEEP_ARGS \
    --db "$tmp/ref.sqlite" 2>"$tmp/ref.err" ||
    { bad cluster_reference "$(tail -2 "$tmp/ref.err")"; exit 1; }
"$BIN" results --db "$tmp/ref.sqlite" --format csv >"$tmp/ref.csv" 2>/dev/null

same_as_ref() { # NAME MERGED.sqlite LOG
    if [ -f "$2" ] && "$BIN" results --db "$2" --format csv >"$2.csv" 2>/dev/null &&
        cmp -s "$tmp/ref.csv" "$2.csv"; then
        ok "$1"
    else
        bad "$1" "no merged database or other results: $(tail -4 "$3")"
    fi
}

# ---- GNU parallel (or its fallback) ----------------------------------------
how="GNU parallel"
command -v parallel >/dev/null 2>&1 || how="background jobs (no GNU parallel)"
RESULTS=$tmp/par sh "$D/parallel.sh" "$N" >"$tmp/par.log" 2>&1
same_as_ref "cluster_parallel_sh ($how, $N shards)" "$tmp/par/merged.sqlite" "$tmp/par.log"

# A shard that ends in an error (exit 3 here, from a wrapper) is named and
# nothing is merged; exit 1 (incomplete) would be merged and named by merge.
cat >"$tmp/flaky" <<WRAP
#!/bin/sh
case "\$*" in *"--shard 2/$N"*) exit 3 ;; esac
exec "$BIN" "\$@"
WRAP
chmod +x "$tmp/flaky"
EMERGE=$tmp/flaky RESULTS=$tmp/flaky.d sh "$D/parallel.sh" "$N" >"$tmp/flaky.log" 2>&1
rc=$?
if [ $rc -eq 2 ] && [ ! -e "$tmp/flaky.d/merged.sqlite" ] &&
    grep -q "shards that did not run to their end: 2/$N (exit 3); nothing merged" "$tmp/flaky.log"; then
    ok cluster_parallel_sh_failed_shard_named
else
    bad cluster_parallel_sh_failed_shard_named "exit $rc: $(tail -2 "$tmp/flaky.log")"
fi

# ---- Slurm: one process per array task, each with its own node-local TMPDIR --
if grep -q '^#SBATCH --array=1-[0-9]' "$D/slurm.sh" &&
    grep -q 'SLURM_ARRAY_TASK_ID' "$D/slurm.sh" && grep -q 'emerge merge\|EMERGE" merge' "$D/slurm.sh"; then
    i=1
    while [ $i -le $N ]; do
        mkdir -p "$tmp/node$i"
        SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=$N TMPDIR=$tmp/node$i \
            RESULTS=$tmp/slurm bash "$D/slurm.sh" >>"$tmp/slurm.log" 2>&1 &
        i=$((i + 1))
    done
    wait
    same_as_ref "cluster_slurm_array ($N array tasks, merged by the last)" \
        "$tmp/slurm/merged.sqlite" "$tmp/slurm.log"
else
    bad cluster_slurm_array "slurm.sh lacks #SBATCH --array=1-N, SLURM_ARRAY_TASK_ID or the merge"
fi

# ---- Kubernetes: the container's script, once per completion index ---------
y=$D/job.yaml
comp=$(awk '$1 == "completions:" {print $2}' "$y")
par=$(awk '$1 == "parallelism:" {print $2}' "$y")
shards=$(sed -n 's/.*{name: SHARDS, value: "\([0-9]*\)"}.*/\1/p' "$y")
sed -n '/# shard script begin/,/# shard script end/p' "$y" | sed 's/^ *//' >"$tmp/pod.sh"
if grep -q '^  completionMode: Indexed' "$y" && [ -n "$comp" ] &&
    [ "$comp" = "$par" ] && [ "$comp" = "$shards" ] &&
    grep -q 'JOB_COMPLETION_INDEX' "$tmp/pod.sh" && grep -q '"$EMERGE" merge' "$tmp/pod.sh"; then
    k=0
    while [ $k -lt $N ]; do
        JOB_COMPLETION_INDEX=$k SHARDS=$N SCRATCH=$tmp/pod$k RESULTS=$tmp/k8s \
            sh "$tmp/pod.sh" >>"$tmp/k8s.log" 2>&1 &
        k=$((k + 1))
    done
    wait
    same_as_ref "cluster_k8s_indexed_job ($N pods, indexes 0..$((N - 1)) as shards 1..$N)" \
        "$tmp/k8s/merged.sqlite" "$tmp/k8s.log"
else
    bad cluster_k8s_indexed_job "job.yaml: completionMode Indexed, completions ($comp) = parallelism ($par) = SHARDS ($shards), the script's JOB_COMPLETION_INDEX and merge"
fi

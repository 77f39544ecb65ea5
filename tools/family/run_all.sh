#!/bin/sh
# run_all.sh - trains the whole family (resumable: rerun to continue).
# Two single-threaded lanes, niced: on 2 shared cores one thread per process
# measured as fast as two, so the lanes use both cores. The largest member
# gets a lane of its own; the small ones finish (and are usable) first.
# Measured here: d96l3 4-8K tokens/s, d48l3 ~6-14K, d24l2 ~25K, d8l1
# ~80-150K, depending on what else the 2 cores run; the whole family
# (4096 steps, 16.8M tokens per size) took 39 minutes of wall time here
# with other jobs on the machine (lane A: d96l3 37 min; lane B: 35 min).
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-/usr/bin/python3}
W=${FAMILY_WORK:-work}
STEPS=${STEPS:-4096}
train() { nice -n 10 "$PY" train.py "$W" "$1" --steps "$STEPS" --threads 1; }
( train d96l3 ) > "$W/laneA.out" 2>&1 &
A=$!
( train d8l1 && train d24l2 && train d48l3 ) > "$W/laneB.out" 2>&1 &
B=$!
wait $A
wait $B

#!/bin/sh
# test_models_cli.sh - `emerge models` and a family member on the cuda
# backend through the CLI. The cuda backend is always registered; its GPU
# code is the plugin libemerge_cuda.so (tests/test_cuda_plugin.sh checks
# the loading itself). With a GPU the sweep must run; with the plugin and
# no GPU (this machine, CI) the member must fail with a clear "no CUDA
# device" error; without the plugin (make CUDA=0) with "not found".
set -u
emerge=${EMERGE_BIN:-build/asan/emerge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$emerge" models --devices >"$tmp/dev" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -qE '^(cuda:[0-9]+  |no CUDA devices: )' "$tmp/dev"; then
    echo "PASS models_devices"
else
    echo "FAIL models_devices: rc $rc: $(head -c 300 "$tmp/dev")"
fi
built=0
"$emerge" models --plugin >/dev/null 2>&1 && built=1
gpu=0
grep -q '^cuda:[0-9]' "$tmp/dev" && gpu=1

"$emerge" models --backends >"$tmp/be" 2>&1
has_cuda=0
grep -qx cuda "$tmp/be" && has_cuda=1
if grep -qx native "$tmp/be" && [ $has_cuda -eq 1 ]; then
    echo "PASS models_backends"
else
    echo "FAIL models_backends: native and cuda expected: $(tr '\n' ' ' <"$tmp/be")"
fi

"$emerge" models >"$tmp/u" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q 'usage: emerge models' "$tmp/u"; then
    echo "PASS models_usage"
else
    echo "FAIL models_usage: rc $rc"
fi

"$emerge" mkmodel -o "$tmp/m.gguf" --n-embd 16 --n-layer 1 --n-head 2 \
    --n-ff 32 --ctx 128 --n-vocab 354 >/dev/null 2>&1
printf 'name: g\nmembers:\n  - {name: m-1, backend: cuda, path: m.gguf, device: "cuda:0"}\n' \
    >"$tmp/fam.yaml"
# The CUDA driver maps memory where ASan keeps its shadow gap (test_cuda.c
# sets the same); without a GPU nothing is mapped and nothing changes.
[ $gpu -eq 1 ] && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}protect_shadow_gap=0"
"$emerge" sweep --tasks tasks/example-arith.yaml --models "$tmp/fam.yaml" \
    --db "$tmp/x.db" --limit 2 --quiet >"$tmp/sw" 2>&1
rc=$?
if [ $gpu -eq 1 ]; then
    ok=$([ $rc -eq 0 ] && echo 1 || echo 0)
    why="with a GPU the sweep should run"
elif [ $built -eq 1 ]; then
    ok=$([ $rc -ne 0 ] && [ $rc -lt 128 ] &&
         grep -q "no CUDA device" "$tmp/sw" && echo 1 || echo 0)
    why="expected a 'no CUDA device' error"
else
    ok=$([ $rc -ne 0 ] && [ $rc -lt 128 ] &&
         grep -q "libemerge_cuda.so not found" "$tmp/sw" && echo 1 || echo 0)
    why="expected a 'libemerge_cuda.so not found' error"
fi
if [ "$ok" = 1 ]; then
    echo "PASS models_cuda_family_member"
else
    echo "FAIL models_cuda_family_member: rc $rc, $why: $(head -c 300 "$tmp/sw")"
fi

#!/bin/sh
# test_side_by_side.sh - bench/llamacpp_side_by_side.sh with stand-ins for
# llama-bench and native_bench (shell scripts that log how they were
# called and print figures in the real programs' formats): the one-line
# skip without LLAMA_BENCH, the arguments each side gets, the interleaved
# order (llama.cpp, emerge, per file, per round), the best round kept per
# side, the ratios, and a file llama-bench cannot load reported as a FAIL
# line with its error and a "-" in the table.
set -u
script=bench/llamacpp_side_by_side.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

out=$(env -u LLAMA_BENCH sh "$script" 2>&1)
rc=$?
if [ $rc -eq 0 ] && [ "$out" = "side-by-side: skipped (set LLAMA_BENCH to a llama-bench binary)" ]; then
    echo "PASS side_by_side_skip"
else
    echo "FAIL side_by_side_skip: rc $rc: $out"
fi

out=$(LLAMA_BENCH=$tmp/none sh "$script" 2>&1)
rc=$?
if [ $rc -eq 1 ] && echo "$out" | grep -q "is not an executable"; then
    echo "PASS side_by_side_bad_binary"
else
    echo "FAIL side_by_side_bad_binary: rc $rc: $out"
fi

# Stand-ins. Each call appends "llama|emerge ARGS" to calls.log; the
# figures grow with the call number n, so round 2 is the best round.
cat >"$tmp/llama-bench" <<EOF
#!/bin/sh
echo "llama \$*" >>"$tmp/calls.log"
n=\$(wc -l <"$tmp/calls.log")
case "\$2" in *q4_0*)
    echo "llama_model_load: error loading model: unknown tensor type" >&2
    exit 1 ;;
esac
cat <<J
[
  {
    "build_commit": "abc1234",
    "cpu_info": "Some CPU, 2 cores, AVX-512",
    "n_prompt": 256,
    "n_gen": 0,
    "avg_ts": \$((1000 + n)).5,
    "stddev_ts": 6.1,
    "samples_ts": [ 1000, 1001 ]
  },
  {
    "build_commit": "abc1234",
    "n_prompt": 0,
    "n_gen": 64,
    "avg_ts": \$((100 + n)),
    "stddev_ts": 3.0,
    "samples_ts": [ 100, 101 ]
  }
]
J
EOF
cat >"$tmp/native_bench" <<EOF
#!/bin/sh
echo "emerge \$*" >>"$tmp/calls.log"
n=\$(wc -l <"$tmp/calls.log")
printf 'pp256\t%d.00\t1.00\t%d.00\t900.00\n' \$((500 + n)) \$((510 + n))
printf 'tg64\t%d.00\t1.00\t%d.00\t90.00\n' \$((50 + n)) \$((60 + n))
EOF
chmod +x "$tmp/llama-bench" "$tmp/native_bench"
: >"$tmp/llama134m-q8_0.gguf"
: >"$tmp/llama134m-q4_0.gguf"

LLAMA_BENCH=$tmp/llama-bench NATIVE_BENCH=$tmp/native_bench SIDE_DIR=$tmp \
    SIDE_TYPES="q8_0 q4_0" SIDE_ROUNDS=2 sh "$script" >"$tmp/out" 2>&1
rc=$?

d=$tmp
cat >"$tmp/calls.want" <<EOF
llama -m $d/llama134m-q8_0.gguf -t 2 -p 256 -n 64 -r 3 -o json
emerge -r 3 --no-mc --tsv $d/llama134m-q8_0.gguf 2
llama -m $d/llama134m-q4_0.gguf -t 2 -p 256 -n 64 -r 3 -o json
emerge -r 3 --no-mc --tsv $d/llama134m-q4_0.gguf 2
llama -m $d/llama134m-q8_0.gguf -t 2 -p 256 -n 64 -r 3 -o json
emerge -r 3 --no-mc --tsv $d/llama134m-q8_0.gguf 2
llama -m $d/llama134m-q4_0.gguf -t 2 -p 256 -n 64 -r 3 -o json
emerge -r 3 --no-mc --tsv $d/llama134m-q4_0.gguf 2
EOF
if [ $rc -eq 0 ] && cmp -s "$tmp/calls.log" "$tmp/calls.want"; then
    echo "PASS side_by_side_interleaved"
else
    echo "FAIL side_by_side_interleaved: rc $rc: $(tr '\n' ';' <"$tmp/calls.log")"
fi

# q8_0: best round is round 2 (calls 5 and 6): llama.cpp pp 1005.5 tg 105,
# emerge means pp 506 tg 56 (the mean column, not the best).
row='| Q8_0 | 1005.50 | 506.00 | 0.50 | 105.00 | 56.00 | 0.53 |'
if grep -qF "$row" "$tmp/out" && grep -q "llama.cpp build abc1234" "$tmp/out"; then
    echo "PASS side_by_side_table"
else
    echo "FAIL side_by_side_table: $(tr '\n' ';' <"$tmp/out")"
fi

row='| Q4_0 | - | 508.00 | - | - | 58.00 | - |'
if grep -qF "$row" "$tmp/out" &&
   grep -q "FAIL: llama-bench cannot run $d/llama134m-q4_0.gguf: llama_model_load: error loading model: unknown tensor type" "$tmp/out"; then
    echo "PASS side_by_side_llama_failure"
else
    echo "FAIL side_by_side_llama_failure: $(tr '\n' ';' <"$tmp/out")"
fi

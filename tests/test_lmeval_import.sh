#!/bin/sh
# test_lmeval_import.sh - `emerge scaling --scores` reading
# lm-evaluation-harness results JSON (tests/data/lmeval/, shapes of lm-eval
# 0.4.13.dev0's results_*.json; see tests/data/README.md):
#   lmeval_series        three files (two hf runs that record
#                        config.model_num_parameters, one local-completions
#                        run against emerge serve that does not, given by
#                        --params) become one series per task, metric and
#                        filter, sorted by size, with CIs from the stderrs
#   lmeval_lower_better  perplexity (higher_is_better false) is left out
#   lmeval_mixed_csv     a CSV and JSON files together, and a JSON file
#                        named .csv (told apart by content, not extension)
#   lmeval_revision      revision=stepN: MODEL@stepN, its own point
#   lmeval_params_file   --params FILE (MODEL,N lines, 405M suffixes)
#   lmeval_local_count   a model named by a local GGUF path is counted
#   lmeval_errors        no results, a stderr of "N/A", no stderr key, no
#                        parameter count, a model twice, bad --params: exit
#                        2 and a message naming the file and the key
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
D=tests/data/lmeval
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # name, status (0 = ok), detail
    if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fails=$((fails + 1)); fi
}

"$BIN" scaling --scores "$D/results_pythia-410m_served.json" "$D/results_pythia-70m.json" \
    "$D/results_pythia-160m.json" --params pythia-410m=405M --format csv >"$tmp/out" 2>"$tmp/err"
rc=$?
# model, params, score, lo, hi (score -+ 1.96 stderr) to 6 places
acc=$(grep '^arc_easy,,acc,' "$tmp/out" | awk -F, '{ printf "%s %s %.6f %.6f %.6f; ", $4, $5, $7, $8, $9 }')
want="EleutherAI/pythia-70m 70426624 0.377525 0.358029 0.397021; EleutherAI/pythia-160m 162322944 0.437290 0.417339 0.457240; pythia-410m 405000000 0.517256 0.497159 0.537353; "
check lmeval_series "$([ $rc -eq 0 ] && [ "$acc" = "$want" ] &&
    [ "$(grep -c '^gsm8k,strict-match,exact_match,' "$tmp/out")" = 3 ] &&
    [ "$(grep -c '^gsm8k,flexible-extract,exact_match,' "$tmp/out")" = 3 ] &&
    grep -q '^lambada_openai,,acc,pythia-410m,405000000,0,0.51620415292062882,.*,5153,' "$tmp/out"; echo $?)" \
    "rc $rc, arc_easy acc: $acc; $(cat "$tmp/err")"
check lmeval_lower_better "$(! grep -q perplexity "$tmp/out"; echo $?)" "$(grep perplexity "$tmp/out")"

printf 'task,model,params,score,metric\narc_easy,EleutherAI/pythia-1b,1011781632,0.569,acc\n' >"$tmp/more.csv"
sed 's/x/x/' "$D/results_pythia-70m.json" >"$tmp/named-like.csv"
"$BIN" scaling --scores "$tmp/named-like.csv" --scores "$D/results_pythia-160m.json" \
    "$tmp/more.csv" --task arc_easy --metric acc --format csv >"$tmp/out" 2>"$tmp/err"
rc=$?
check lmeval_mixed_csv "$([ $rc -eq 0 ] && [ "$(cut -d, -f4 "$tmp/out" | tail -n +2 | tr '\n' ' ')" = \
    "EleutherAI/pythia-70m EleutherAI/pythia-160m EleutherAI/pythia-1b " ]; echo $?)" \
    "rc $rc: $(cat "$tmp/out" "$tmp/err")"

"$BIN" scaling --scores "$D/results_pythia-160m.json" "$D/results_pythia-160m_step1000.json" \
    --task arc_easy --metric acc --format csv >"$tmp/out" 2>"$tmp/err"
rc=$?
check lmeval_revision "$([ $rc -eq 0 ] && grep -q ',EleutherAI/pythia-160m@step1000,162322944,0,0.30050505050505' "$tmp/out" &&
    grep -q ',EleutherAI/pythia-160m,162322944,' "$tmp/out"; echo $?)" "rc $rc: $(cat "$tmp/out" "$tmp/err")"

printf 'model,params\n# served by emerge serve\npythia-410m,405M\n' >"$tmp/params.csv"
"$BIN" scaling --scores "$D/results_pythia-410m_served.json" --params "$tmp/params.csv" \
    --task arc_easy --metric acc --format csv >"$tmp/out" 2>"$tmp/err"
rc=$?
check lmeval_params_file "$([ $rc -eq 0 ] && grep -q ',pythia-410m,405000000,' "$tmp/out"; echo $?)" \
    "rc $rc: $(cat "$tmp/out" "$tmp/err")"

# a model named by a local path (pretrained=DIR or a .gguf): counted
sed 's|"model_name": "pythia-410m"|"model_name": "tests/data/parity/tiny-llama-f32.gguf"|' \
    "$D/results_pythia-410m_served.json" >"$tmp/local.json"
"$BIN" scaling --scores "$tmp/local.json" --task arc_easy --metric acc --format csv >"$tmp/out" 2>"$tmp/err"
rc=$?
check lmeval_local_count "$([ $rc -eq 0 ] && grep -q ',tests/data/parity/tiny-llama-f32.gguf,142272,' "$tmp/out"; echo $?)" \
    "rc $rc: $(cat "$tmp/out" "$tmp/err")"

# file arguments | what the message must say
err_case() { # name, expected text, args...
    name=$1 want=$2
    shift 2
    "$BIN" scaling "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check "lmeval_errors_$name" "$([ $rc -eq 2 ] && grep -qF -- "$want" "$tmp/err"; echo $?)" \
        "rc $rc: $(cat "$tmp/err")"
}
err_case no_results "$D/bad_no_results.json: no 'results' object" --scores "$D/bad_no_results.json"
err_case stderr_na "$D/bad_stderr_na.json: results.arc_easy.'acc_stderr,none' is \"N/A\"" \
    --scores "$D/bad_stderr_na.json"
err_case stderr_missing "$D/bad_stderr_missing.json: results.arc_easy: 'acc_norm,none' has no 'acc_norm_stderr,none'" \
    --scores "$D/bad_stderr_missing.json"
err_case no_params "$D/results_pythia-410m_served.json: no parameter count for model 'pythia-410m'" \
    --scores "$D/results_pythia-410m_served.json"
err_case model_twice "$D/results_pythia-70m.json: model 'EleutherAI/pythia-70m' already has a score" \
    --scores "$D/results_pythia-70m.json" "$D/results_pythia-70m.json"
err_case bad_params "--params: parameter count of 'pythia-410m': '4O5M' is not a positive number" \
    --scores "$D/results_pythia-410m_served.json" --params pythia-410m=4O5M
printf '{"results": {"arc_easy": ' >"$tmp/cut.json"
err_case truncated "$tmp/cut.json: not valid JSON" --scores "$tmp/cut.json"
# a metric filtered out is not read: its missing stderr is no error
"$BIN" scaling --scores "$D/bad_stderr_na.json" --metric acc_norm >/dev/null 2>"$tmp/err"
check lmeval_errors_filtered_out "$?" "$(cat "$tmp/err")"
exit $fails

#!/bin/sh
# test_serve.sh - `emerge serve` as a process: it listens on loopback
# (--port 0 prints the port it got), answers /health, /v1/models and
# completions, rejects malformed JSON, trailing bytes and out-of-range
# seeds with a 400 and a JSON error body, refuses bad command lines
# (--timeout, --max-per-ip included), stops cleanly on SIGTERM, and with
# --api-key-file answers 401 without the key (on /tokenize, /detokenize
# and /tokenizer_info too; a non-loopback --host without a key or
# --no-auth is refused), and with --hide-bos echoes lm-eval's token ids
# without a BOS entry. lm-eval's requests are tests/test_serve_lmeval.c's.
# Hostile clients (idle, slow, many per address) are tests/test_serve.c's.
#
# Uses the ASan emerge binary ($EMERGE_BIN), curl and the tiny-llama
# fixture shipped in tests/data/parity (a small-vocabulary copy of
# ../shared's); every server started here is stopped by the EXIT trap.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
MODEL=tests/data/parity/tiny-llama-f32.gguf
missing() {
    if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then echo "FAIL serve_cli: $1"; exit 1; fi
    echo "SKIP serve_cli: $1"; exit 0
}
[ -x "$BIN" ] || { echo "FAIL serve_cli: no emerge binary at $BIN"; exit 1; }
[ -f "$MODEL" ] || missing "no $MODEL"
command -v curl >/dev/null || missing "no curl"

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fail=0
check() { # name, condition result (0 = ok), detail
    if [ "$2" -eq 0 ]; then echo "PASS $1"; else echo "FAIL $1: $3"; fail=1; fi
}

# Bad command lines: exit 2 with a message, nothing left running.
"$BIN" serve >"$tmp/o" 2>&1; rc=$?
check serve_cli_no_model "$([ $rc -eq 2 ] && grep -q usage "$tmp/o"; echo $?)" "rc $rc"
"$BIN" serve "$MODEL" --port 70000 >"$tmp/o" 2>&1; rc=$?
check serve_cli_bad_port "$([ $rc -eq 2 ] && grep -q -- "--port" "$tmp/o"; echo $?)" "rc $rc"
"$BIN" serve "$MODEL" --timeout 0 >"$tmp/o" 2>&1; rc=$?
check serve_cli_bad_timeout "$([ $rc -eq 2 ] && grep -q -- "--timeout needs an integer in \[1, 3600\]" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
"$BIN" serve "$MODEL" --max-per-ip x >"$tmp/o" 2>&1; rc=$?
check serve_cli_bad_per_ip "$([ $rc -eq 2 ] && grep -q -- "--max-per-ip" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
"$BIN" serve --help >"$tmp/o" 2>&1; rc=$?
check serve_cli_help "$([ $rc -eq 0 ] && grep -q -- "--timeout S" "$tmp/o" && grep -q -- "--max-per-ip N" "$tmp/o"; echo $?)" "rc $rc"
"$BIN" serve "$tmp/none.gguf" --port 0 >"$tmp/o" 2>&1; rc=$?
check serve_cli_no_file "$([ $rc -eq 2 ] && grep -q none.gguf "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"

# Starts a server with the given options on a free port: $pid, $port
# ("" when it printed no 'listening' line within 30 s).
start() {
    "$BIN" serve "$MODEL" --port 0 "$@" 2>"$tmp/err" &
    pid=$!
    port=
    i=0
    while [ $i -lt 300 ] && [ -z "$port" ]; do
        port=$(sed -n 's/^emerge serve: listening on http:\/\/127\.0\.0\.1:\([0-9]*\)\/v1$/\1/p' "$tmp/err" 2>/dev/null)
        kill -0 "$pid" 2>/dev/null || break
        [ -n "$port" ] || sleep 0.1
        i=$((i + 1))
    done
}
start --threads 1 --max-body 2000 --timeout 5 --max-per-ip 8 --stats
if [ -z "$port" ]; then
    echo "FAIL serve_cli_listen: no 'listening' line: $(cat "$tmp/err")"
    exit 1
fi
echo "PASS serve_cli_listen (port $port)"
url=http://127.0.0.1:$port

out=$(curl -s "$url/health")
check serve_cli_health "$(echo "$out" | grep -q '"status":"ok"'; echo $?)" "$out"
out=$(curl -s "$url/v1/models")
check serve_cli_models "$(echo "$out" | grep -q '"id":"tiny-llama-f32.gguf"'; echo $?)" "$out"
out=$(curl -s -d '{"prompt":"Hello world","max_tokens":4,"temperature":0,"seed":1}' "$url/v1/completions")
check serve_cli_completion "$(echo "$out" | grep -q '"completion_tokens":4'; echo $?)" "$out"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -d '{"prompt": "x",' "$url/v1/completions")
check serve_cli_malformed "$([ "$code" = 400 ] && grep -q '"type":"invalid_request_error"' "$tmp/body"; echo $?)" "$code $(cat "$tmp/body")"
big=$(head -c 3000 /dev/zero | tr '\0' a)
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -d "{\"prompt\":\"$big\"}" "$url/v1/completions")
check serve_cli_max_body "$([ "$code" = 413 ] && grep -q '"code":413' "$tmp/body"; echo $?)" "$code $(cat "$tmp/body")"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -d '{"prompt":"x","seed":18446744073709551616}' "$url/v1/completions")
check serve_cli_seed_range "$([ "$code" = 400 ] && grep -q "'seed' must be an integer" "$tmp/body"; echo $?)" "$code $(cat "$tmp/body")"
code=$(curl -s -o "$tmp/body" -w '%{http_code}' -d '{"prompt":"x"} trailing' "$url/v1/completions")
check serve_cli_trailing "$([ "$code" = 400 ] && grep -q "bytes after its JSON value" "$tmp/body"; echo $?)" "$code $(cat "$tmp/body")"

kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$pid" 2>/dev/null; then
    check serve_cli_sigterm 1 "still running 10 s after SIGTERM"
else
    wait "$pid"; rc=$?
    pid=
    check serve_cli_sigterm "$([ $rc -eq 0 ] && grep -q "7 requests (4 errors)" "$tmp/err"; echo $?)" "rc $rc: $(tail -2 "$tmp/err")"
fi

# API keys: a non-loopback --host needs one (or --no-auth); with one,
# every route but /health needs "Authorization: Bearer KEY".
"$BIN" serve "$MODEL" --host 0.0.0.0 --port 0 >"$tmp/o" 2>&1; rc=$?
check serve_cli_open_host_needs_key "$([ $rc -eq 2 ] && grep -q -- "--api-key-file FILE" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
printf 'k3y-%s\n' "$$" >"$tmp/key"
: >"$tmp/empty"
"$BIN" serve "$MODEL" --port 0 --api-key-file "$tmp/empty" >"$tmp/o" 2>&1; rc=$?
check serve_cli_empty_key "$([ $rc -eq 2 ] && grep -q "first line is empty" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
"$BIN" serve "$MODEL" --port 0 --api-key-file "$tmp/key" --no-auth >"$tmp/o" 2>&1; rc=$?
check serve_cli_key_or_no_auth "$([ $rc -eq 2 ] && grep -q "exclude each other" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
start --threads 1 --api-key-file "$tmp/key" --log
if [ -z "$port" ]; then
    check serve_cli_api_key 1 "no 'listening' line: $(cat "$tmp/err")"
else
    url=http://127.0.0.1:$port
    key="k3y-$$"
    h=$(curl -s -o /dev/null -w '%{http_code}' "$url/health")
    none=$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/models")
    wrong=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${key}x" "$url/v1/models")
    short=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer k3y" "$url/v1/models")
    right=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $key" \
            -d '{"prompt":"Hello","max_tokens":2,"temperature":0}' "$url/v1/completions")
    check serve_cli_api_key "$([ "$h $none $wrong $short $right" = "200 401 401 401 200" ] && ! grep -q "$key" "$tmp/err"; echo $?)" "health/none/wrong/short/right: $h $none $wrong $short $right; log: $(cat "$tmp/err")"
    # the vocabulary routes (lm-eval's RemoteTokenizer) need the key too
    codes=
    for r in "GET /tokenizer_info" "POST /tokenize" "POST /detokenize" "POST /v1/tokenize"; do
        set -- $r
        b='{"prompt":"Hi","tokens":[1],"add_special_tokens":false}'
        c0=$(curl -s -o /dev/null -w '%{http_code}' -X "$1" -d "$b" "$url$2")
        c1=$(curl -s -o /dev/null -w '%{http_code}' -X "$1" -H "Authorization: Bearer $key" -d "$b" "$url$2")
        codes="$codes $c0/$c1"
    done
    check serve_cli_tokenizer_routes_need_key "$([ "$codes" = " 401/200 401/200 401/200 401/200" ]; echo $?)" "without/with key:$codes"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=
fi

# --hide-bos: an echo of token ids as lm-eval sends them (no BOS) has
# exactly those tokens, the first one scored (conditioned on the BOS)
start --threads 1 --hide-bos
if [ -z "$port" ]; then
    check serve_cli_hide_bos 1 "no 'listening' line: $(cat "$tmp/err")"
else
    url=http://127.0.0.1:$port
    ids=$(curl -s -d '{"prompt":"Hello world","add_special_tokens":false}' "$url/tokenize" |
          sed -n 's/.*"tokens":\(\[[0-9,]*\]\).*/\1/p')
    out=$(curl -s -d "{\"prompt\":$ids,\"max_tokens\":0,\"echo\":true,\"logprobs\":1}" "$url/v1/completions")
    n=$(echo "$ids" | tr ',' '\n' | wc -l)
    check serve_cli_hide_bos "$(echo "$out" | grep -q "\"token_logprobs\":\[-[0-9]" &&
        echo "$out" | grep -q "\"prompt_tokens\":$n,"; echo $?)" "ids $ids ($n): $out"
    kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=
fi
exit $fail

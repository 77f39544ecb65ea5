#!/bin/sh
# test_probe.sh - `emerge models --probe` against a real `emerge serve`
# on loopback (the tiny-llama fixture, port 0): every check passes and it
# exits 0; a URL that is not http(s) and a port where nothing listens
# exit 2 with a message. Servers that break one property each are
# tests/test_openai.c's (test_probe_verdicts).
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
MODEL=tests/data/parity/tiny-llama-f32.gguf
missing() {
    if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then echo "FAIL probe: $1"; exit 1; fi
    echo "SKIP probe: $1"; exit 0
}
[ -x "$BIN" ] || { echo "FAIL probe: no emerge binary at $BIN"; exit 1; }
[ -f "$MODEL" ] || missing "no $MODEL"

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

"$BIN" models --probe ftp://x >"$tmp/o" 2>&1; rc=$?
check probe_bad_url "$([ $rc -eq 2 ] && grep -q "http:// or https://" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
"$BIN" models --help >"$tmp/o" 2>&1; rc=$?
check probe_help "$([ $rc -eq 0 ] && grep -q -- "--probe URL" "$tmp/o"; echo $?)" "rc $rc"

"$BIN" serve "$MODEL" --port 0 --threads 1 2>"$tmp/err" &
pid=$!
port=
i=0
while [ $i -lt 300 ] && [ -z "$port" ]; do
    port=$(sed -n 's/^emerge serve: listening on http:\/\/127\.0\.0\.1:\([0-9]*\)\/v1$/\1/p' "$tmp/err" 2>/dev/null)
    kill -0 "$pid" 2>/dev/null || break
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || { echo "FAIL probe_serve: no 'listening' line: $(cat "$tmp/err")"; exit 1; }

"$BIN" models --probe "http://127.0.0.1:$port/v1,model=tiny-llama-f32.gguf" >"$tmp/o" 2>&1; rc=$?
check probe_serve "$([ $rc -eq 0 ] && grep -q "^verdict: ok" "$tmp/o" && ! grep -q FAIL "$tmp/o" &&
    grep -q "ok    echo" "$tmp/o" && grep -q "ok    difference" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
sed 's/^/    /' "$tmp/o"

kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=
"$BIN" models --probe "http://127.0.0.1:$port/v1" >"$tmp/o" 2>&1; rc=$?
check probe_no_server "$([ $rc -eq 2 ] && grep -q "no answer from the server" "$tmp/o"; echo $?)" "rc $rc: $(cat "$tmp/o")"
exit $fail

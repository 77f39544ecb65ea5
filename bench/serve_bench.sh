#!/bin/sh
# bench/serve_bench.sh [MODEL.gguf] - load on `emerge serve`: CLIENTS
# concurrent curl loops for DURATION seconds per phase, then requests/s and
# tokens/s. Phases: "generate" (max_tokens GEN_TOKENS, greedy) and "score"
# (echo + logprobs, max_tokens 0: what log-likelihood scoring sends).
# Any non-200 answer is counted as an error and makes the script exit 1.
#
#   env: EMERGE_BIN (./emerge), CLIENTS (8), DURATION (10), GEN_TOKENS (16),
#        THREADS (model threads, default: online CPUs)
# Model default: $EMERGE_SHARED/fixtures/gguf/tiny-llama-f32.gguf.
set -u
BIN=${EMERGE_BIN:-./emerge}
SHARED=${EMERGE_SHARED:-../shared}
MODEL=${1:-$SHARED/fixtures/gguf/tiny-llama-f32.gguf}
CLIENTS=${CLIENTS:-8}
DURATION=${DURATION:-10}
GEN_TOKENS=${GEN_TOKENS:-16}
THREADS=${THREADS:-0}
[ -x "$BIN" ] || { echo "serve_bench: no emerge binary at $BIN (make emerge)" >&2; exit 2; }
[ -f "$MODEL" ] || { echo "serve_bench: no model $MODEL" >&2; exit 2; }
command -v curl >/dev/null || { echo "serve_bench: needs curl" >&2; exit 2; }

tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

"$BIN" serve "$MODEL" --port 0 --threads "$THREADS" --stats 2>"$tmp/server.err" &
pid=$!
port=
i=0
while [ $i -lt 600 ] && [ -z "$port" ] && kill -0 "$pid" 2>/dev/null; do
    port=$(sed -n 's/^emerge serve: listening on http:\/\/127\.0\.0\.1:\([0-9]*\)\/v1$/\1/p' "$tmp/server.err" 2>/dev/null)
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || { echo "serve_bench: server did not start: $(cat "$tmp/server.err")" >&2; exit 2; }
url=http://127.0.0.1:$port/v1/completions

# One client: requests until the deadline; prints "ok errors ptok ctok".
client() { # id phase deadline
    ok=0 err=0 ptok=0 ctok=0 n=0
    while [ "$(date +%s)" -lt "$3" ]; do
        n=$((n + 1))
        q="Question $1.$n: what is $((n % 97)) plus $(($1 * 7 % 89))? Answer:"
        if [ "$2" = generate ]; then
            body="{\"prompt\":\"$q\",\"max_tokens\":$GEN_TOKENS,\"temperature\":0,\"seed\":$n}"
        else
            body="{\"prompt\":\"$q $((n % 97 + $1 * 7 % 89))\",\"max_tokens\":0,\"echo\":true,\"logprobs\":1}"
        fi
        code=$(curl -s -o "$tmp/c$1.json" -w '%{http_code}' -d "$body" "$url")
        if [ "$code" = 200 ]; then
            ok=$((ok + 1))
            p=$(LC_ALL=C sed -n 's/.*"prompt_tokens":\([0-9]*\).*/\1/p' "$tmp/c$1.json")
            c=$(LC_ALL=C sed -n 's/.*"completion_tokens":\([0-9]*\).*/\1/p' "$tmp/c$1.json")
            ptok=$((ptok + ${p:-0}))
            ctok=$((ctok + ${c:-0}))
        else
            err=$((err + 1))
        fi
    done
    echo "$ok $err $ptok $ctok"
}

status=0
for phase in generate score; do
    start=$(date +%s.%N)
    deadline=$(($(date +%s) + DURATION))
    c=1
    pids=
    while [ $c -le "$CLIENTS" ]; do
        client "$c" "$phase" "$deadline" >"$tmp/r$c" &
        pids="$pids $!"
        c=$((c + 1))
    done
    for j in $pids; do wait "$j"; done
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
    cat "$tmp"/r* | awk -v t="$took" -v ph="$phase" -v n="$CLIENTS" '
        { ok += $1; err += $2; p += $3; c += $4 }
        END { printf "serve_bench: %-8s %d clients %6.2f s: %d requests (%d errors)  %.1f req/s  %.1f prompt tok/s  %.1f completion tok/s\n",
                     ph, n, t, ok, err, ok / t, p / t, c / t
              exit err > 0 }' || status=1
    rm -f "$tmp"/r*
done
kill -TERM "$pid" && wait "$pid"
pid=
grep "requests (" "$tmp/server.err" | sed 's/^/serve_bench: server: /'
exit $status

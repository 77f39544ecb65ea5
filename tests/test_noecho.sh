#!/bin/sh
# test_noecho.sh - a sweep against a server that cannot echo prompt
# log-probs (llama.cpp's server answers echo with HTTP 500 "Unsupported
# param: echo"): its log-likelihood requests fail once each without
# retries, generation tasks still run, the sweep exits 1 (incomplete) and
# its summary says why and what to do.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
tmp=$(mktemp -d)
srv_pid=
trap '[ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
cat >"$tmp/srv.py" <<'P'
import http.server, json, sys
ECHOS = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        req = json.loads(self.rfile.read(n) or b"{}")
        if req.get("echo"):
            with open(ECHOS, "a") as f:
                f.write("x\n")
            code, body = 500, {"error": {"code": 500, "message": "Unsupported param: echo",
                                         "type": "server_error"}}
        else:
            code, body = 200, {"choices": [{"index": 0, "text": " 47",
                                            "finish_reason": "stop"}]}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers(); self.wfile.write(data)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
P
# a generation-only copy of sweep-arith (its target_logprob would need
# prompt log-probs too, and an example with a failed request is unscored)
sed -e 's/^name: sweep-arith/name: gen-arith/' -e 's/^metrics: .*/metrics: [exact_match]/' \
    -e "s|^data: |data: $(pwd)/tests/data/tasks/|" tests/data/tasks/sweep-arith.yaml >"$tmp/gen.yaml"
python3 "$tmp/srv.py" "$tmp/echos" >"$tmp/port" 2>/dev/null &
srv_pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$tmp/port")
"$BIN" run --model "openai:http://127.0.0.1:$port/v1,model=noecho,max_retries=2,logprobs_mode=echo" \
    --tasks "$tmp/gen.yaml",tests/data/tasks/sweep-mc.yaml --limit 4 \
    --db "$tmp/r.sqlite" >"$tmp/out" 2>&1
rc=$?
gen=$(python3 -c "import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(c.execute(\"SELECT count(*) FROM scores WHERE metric = 'exact_match'\").fetchone()[0])" "$tmp/r.sqlite")
if [ $rc -eq 1 ] && [ "$gen" = 4 ] &&
    grep -q "log-likelihood requests failed because the server cannot return prompt log-probs" "$tmp/out"; then
    echo "PASS noecho_sweep_says_why (exit 1; 4 generation scores; $(grep -o '[0-9]* log-likelihood requests failed' "$tmp/out"))"
else
    echo "FAIL noecho_sweep_says_why: rc $rc, exact_match scores '$gen': $(tail -4 "$tmp/out")"
fi

# two members on that server: the limitation costs one request for both
# (the process remembers what each server cannot do)
: >"$tmp/echos"
cat >"$tmp/fam.yaml" <<Y
name: two
defaults: {backend: openai, path: "http://127.0.0.1:$port/v1", max_retries: 2, logprobs_mode: echo}
members:
  - {name: a, model: a, params: 1e9}
  - {name: b, model: b, params: 2e9}
Y
"$BIN" sweep --models "$tmp/fam.yaml" --tasks tests/data/tasks/sweep-mc.yaml --limit 4 \
    --db "$tmp/two.sqlite" >"$tmp/two.out" 2>&1
rc=$?
n=$(wc -l <"$tmp/echos")
if [ $rc -eq 1 ] && [ "$n" -eq 1 ] &&
    grep -q "^emerge: 32 log-likelihood requests failed because" "$tmp/two.out"; then
    echo "PASS noecho_once_per_server (2 members, 32 requests refused, 1 echo asked)"
else
    echo "FAIL noecho_once_per_server: rc $rc, $n echo requests: $(tail -3 "$tmp/two.out")"
fi

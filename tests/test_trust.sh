#!/bin/sh
# test_trust.sh - ordinary actions that used to lose or hide results
# without a word (issue "Trust: nothing lost, nothing silent"), each one
# now impossible or loud:
#   task_comment_edit      a comment-only edit of a task file keeps every result
#   task_template_edit     a real edit is a new version; the old scores stay,
#                          --task-version shows them, gc removes them by name
#   context_overflow       prompts longer than the context are counted per
#                          model and task, marked in results and the report;
#                          skip/error
#   unbuildable_variant    a requested variant that cannot be built: exit 1,
#                          nothing buildable at all: exit 2
#   notes_only_when_true   the target_logprob note names the real cause
#   readonly_readers       results/scaling/plot/report/check on a 0444 file in
#                          a 0555 directory (as another user) and on a
#                          rollback-journal store: no -wal/-shm, same bytes,
#                          same mtime, same journal mode
#   sigterm_mid_sweep      SIGTERM: summary line, exit 143, clean store, and
#                          the resumed sweep ends identical to a whole one
#   concurrent_sweeps      a second sweep into one database finishes while
#                          the first waits on a slow server
# Uses the ASan emerge ($EMERGE_BIN), the synthetic family and the demo
# family in models/family/ (both in the repository), python3 for the slow
# loopback server.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
if [ ! -x "$BIN" ]; then
    echo "FAIL trust: no emerge binary at $BIN"
    exit 1
fi
tmp=$(mktemp -d)
chmod 755 "$tmp"
srv_pid=
trap 'chmod -R u+w "$tmp" 2>/dev/null; [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
cp "$BIN" "$tmp/emerge" && BIN="$tmp/emerge"
chmod 755 "$BIN"
fails=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }

# ---- task versions ---------------------------------------------------------
cp tests/data/tasks/sweep-arith.yaml tests/data/tasks/sweep-arith.jsonl "$tmp/"
fam=tests/data/families/synthetic.yaml
# One member of that family on its own (the same model: same identity).
awk '/^members:/ { print; getline; print; exit } { print }' $fam >"$tmp/one.yaml"
"$BIN" sweep --tasks "$tmp/sweep-arith.yaml" --models $fam --db "$tmp/v.sqlite" \
    --limit 10 --quiet 2>"$tmp/v.err"
"$BIN" results --db "$tmp/v.sqlite" --format csv >"$tmp/v1.csv" 2>/dev/null
rows1=$(wc -l <"$tmp/v1.csv")
printf '# a comment only\n' >>"$tmp/sweep-arith.yaml"
sed -i 's/^max_tokens: 8$/max_tokens:   8   # same value, other layout/' "$tmp/sweep-arith.yaml"
"$BIN" sweep --models "$tmp/one.yaml" --tasks "$tmp/sweep-arith.yaml" \
    --db "$tmp/v.sqlite" --limit 10 --quiet 2>"$tmp/v.err"
"$BIN" results --db "$tmp/v.sqlite" --format csv >"$tmp/v2.csv" 2>"$tmp/v2.err"
if [ "$rows1" -gt 10 ] && cmp -s "$tmp/v1.csv" "$tmp/v2.csv" && [ ! -s "$tmp/v2.err" ]; then
    pass "task_comment_edit ($rows1 result lines kept)"
else
    fail task_comment_edit "results changed after a comment edit: $(diff "$tmp/v1.csv" "$tmp/v2.csv" | head -3) $(head -2 "$tmp/v2.err")"
fi

sed -i 's/^template: "Q: What is {{input}}?\\nA:"$/template: "Question: What is {{input}}?\\nA:"/' \
    "$tmp/sweep-arith.yaml"
"$BIN" sweep --models "$tmp/one.yaml" --tasks "$tmp/sweep-arith.yaml" \
    --db "$tmp/v.sqlite" --limit 10 --quiet 2>"$tmp/v3run.err"
"$BIN" results --db "$tmp/v.sqlite" --format csv >"$tmp/v3.csv" 2>"$tmp/v3.err"
"$BIN" results --db "$tmp/v.sqlite" --format csv --task-version sweep-arith=1 \
    >"$tmp/v3old.csv" 2>/dev/null
"$BIN" gc --db "$tmp/v.sqlite" >"$tmp/gc.out" 2>&1
gc_rc=$?
"$BIN" results --db "$tmp/v.sqlite" --task-version sweep-arith=1 >/dev/null 2>"$tmp/gone.err"
gone_rc=$?
if grep -q "stored as version 2" "$tmp/v3run.err" &&
   grep -q "showing version 2 (the current one) of 2" "$tmp/v3.err" &&
   [ "$(wc -l <"$tmp/v3.csv")" -lt "$rows1" ] &&
   cmp -s "$tmp/v1.csv" "$tmp/v3old.csv" &&
   [ $gc_rc -eq 0 ] && grep -q "removing task sweep-arith version 1" "$tmp/gc.out" &&
   [ $gone_rc -eq 2 ] && grep -q "has no version 1" "$tmp/gone.err"; then
    pass task_template_edit
else
    fail task_template_edit "run: $(head -2 "$tmp/v3run.err") results: $(head -2 "$tmp/v3.err") gc: $gc_rc $(head -2 "$tmp/gc.out") after gc: $gone_rc"
fi

# ---- context overflow --------------------------------------------------------
model=models/family/demo-d8l1-step512.gguf
long=$(awk 'BEGIN { for (i = 0; i < 300; i++) printf "word%d ", i }')
cat >"$tmp/long.yaml" <<EOF
name: long-prompts
type: generate
examples:
  - {input: "$long", target: "a"}
  - {input: "$long and more", target: "b"}
  - {input: "short", target: "c"}
template: "{{input}}\\nA:"
stop: ["\\n"]
max_tokens: 4
metrics: [exact_match]
EOF
"$BIN" run --model "$model" --tasks "$tmp/long.yaml" --db "$tmp/o.sqlite" 2>"$tmp/o.err"
o_rc=$?
"$BIN" results --db "$tmp/o.sqlite" >"$tmp/o.table" 2>&1
"$BIN" results --db "$tmp/o.sqlite" --format csv >"$tmp/o.csv" 2>&1
"$BIN" report --db "$tmp/o.sqlite" --out "$tmp/orep" >/dev/null 2>&1
"$BIN" run --model "$model" --tasks "$tmp/long.yaml" --db "$tmp/o2.sqlite" \
    --on-overflow skip --quiet 2>"$tmp/o2.err"
skip_rc=$?
"$BIN" run --model "$model" --tasks "$tmp/long.yaml" --db "$tmp/o3.sqlite" \
    --on-overflow error --quiet 2>"$tmp/o3.err"
err_rc=$?
if [ $o_rc -eq 0 ] &&
   grep -q "long-prompts, variant standard: 2 prompts did not fit the model's context" "$tmp/o.err" &&
   grep -q " 3\*+ " "$tmp/o.table" && grep -q ",2,3$" "$tmp/o.csv" &&
   grep -q '\] \* |' "$tmp/orep/report.md" && grep -q 'cut to fit' "$tmp/orep/index.html" &&
   [ $skip_rc -eq 1 ] && grep -q "2 examples left unscored" "$tmp/o2.err" &&
   [ $err_rc -eq 2 ] && grep -q "does not fit the model's context" "$tmp/o3.err"; then
    pass context_overflow
else
    fail context_overflow "rc $o_rc/$skip_rc/$err_rc: $(grep -v '^$' "$tmp/o.err" | head -3) | $(tail -2 "$tmp/o.table") | $(tail -1 "$tmp/o.csv") | $(head -2 "$tmp/o2.err") | $(head -2 "$tmp/o3.err")"
fi

# ---- unbuildable variants -------------------------------------------------------
"$BIN" sweep --tasks tests/data/tasks/sweep-mc.yaml,tests/data/tasks/sweep-arith.yaml \
    --models $fam --db "$tmp/u.sqlite" --variants standard,cot --limit 3 \
    --quiet 2>"$tmp/u.err"
u_rc=$?
"$BIN" sweep --tasks tests/data/tasks/sweep-mc.yaml --models $fam \
    --db "$tmp/u2.sqlite" --variants cot,standard+sc3 --limit 3 --quiet 2>"$tmp/u2.err"
u2_rc=$?
if [ $u_rc -eq 1 ] && grep -q "task sweep-mc, variant cot cannot be run" "$tmp/u.err" &&
   grep -q "1 requested task/variant pairs could not be built" "$tmp/u.err" &&
   [ $u2_rc -eq 2 ] && grep -q "nothing to run" "$tmp/u2.err"; then
    pass unbuildable_variant
else
    fail unbuildable_variant "rc $u_rc/$u2_rc: $(head -3 "$tmp/u.err") | $(tail -2 "$tmp/u2.err")"
fi

# ---- notes say what is true -----------------------------------------------------
# target_logprob on a native model: scored for standard and cot (no note),
# and for zero_shot_cot the note names the variant, not the backend.
"$BIN" run --model models/family/demo-d8l1-step512.gguf \
    --tasks tests/data/tasks/sweep-arith.yaml --limit 2 --variants standard,cot \
    --db "$tmp/n.sqlite" 2>"$tmp/n1.err"
"$BIN" run --model models/family/demo-d8l1-step512.gguf \
    --tasks tests/data/tasks/sweep-arith.yaml --limit 2 --variants zero_shot_cot \
    --db "$tmp/n.sqlite" 2>"$tmp/n2.err"
if ! grep -q "not computed" "$tmp/n1.err" &&
   grep -q "metric target_logprob not computed: zero_shot_cot reads its answer from a second pass" "$tmp/n2.err" &&
   ! grep -q "scoring backend" "$tmp/n2.err"; then
    pass notes_only_when_true
else
    fail notes_only_when_true "$(grep note "$tmp/n1.err" "$tmp/n2.err" | head -3)"
fi

# ---- read-only readers --------------------------------------------------------
# The finished store of the template-edit case, frozen: 0444 in a 0555
# directory, read as nobody (setpriv), and a rollback-journal copy.
ro="$tmp/ro"
mkdir "$ro"
cp "$tmp/u.sqlite" "$ro/r.sqlite"
cp "$tmp/u.sqlite" "$tmp/j.sqlite"
python3 -c "import sqlite3; c=sqlite3.connect('$tmp/j.sqlite'); c.execute('PRAGMA journal_mode=DELETE'); c.close()"
chmod 444 "$ro/r.sqlite"
chmod 555 "$ro"
as_nobody=
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    as_nobody="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
mkdir -p "$tmp/out" && chmod 777 "$tmp/out"
ro_bad=
for db in "$ro/r.sqlite" "$tmp/j.sqlite"; do
    before=$(sha256sum "$db" | cut -c1-64)$(stat -c %Y "$db")
    for cmd in "results" "results --per-example" "scaling" \
               "plot --out $tmp/out/p" "report --out $tmp/out/r"; do
        # shellcheck disable=SC2086
        $as_nobody "$BIN" $cmd --db "$db" >/dev/null 2>"$tmp/ro.err" ||
            ro_bad="$ro_bad [$cmd on $db: $(head -1 "$tmp/ro.err")]"
    done
    $as_nobody "$BIN" check --baseline "$db" --db "$db" >/dev/null 2>"$tmp/ro.err" ||
        ro_bad="$ro_bad [check on $db: $(head -1 "$tmp/ro.err")]"
    after=$(sha256sum "$db" | cut -c1-64)$(stat -c %Y "$db")
    [ "$before" = "$after" ] || ro_bad="$ro_bad [$db changed]"
    ls "$db"-* >/dev/null 2>&1 && ro_bad="$ro_bad [$(ls "$db"-*) left]"
done
mode=$(python3 -c "import sqlite3; print(sqlite3.connect('file:$tmp/j.sqlite?mode=ro', uri=True).execute('PRAGMA journal_mode').fetchone()[0])")
[ "$mode" = delete ] || ro_bad="$ro_bad [journal mode now $mode]"
if [ -z "$ro_bad" ]; then
    pass "readonly_readers${as_nobody:+ (as nobody)}"
else
    fail readonly_readers "$ro_bad"
fi
chmod 755 "$ro"

# ---- SIGTERM mid-sweep -----------------------------------------------------------
sargs="--tasks tests/data/tasks/sweep-arith.yaml,tests/data/tasks/sweep-mc.yaml
       --models $fam --variants standard,zero_shot_cot --batch 1"
# shellcheck disable=SC2086
"$BIN" sweep $sargs --db "$tmp/s_ref.sqlite" --quiet 2>/dev/null
"$BIN" results --db "$tmp/s_ref.sqlite" --per-example >"$tmp/s_ref.dump" 2>/dev/null
# shellcheck disable=SC2086
"$BIN" sweep $sargs --db "$tmp/s.sqlite" 2>"$tmp/s.err" &
pid=$!
sleep 1.5
kill -TERM $pid
wait $pid
s_rc=$?
left=$(ls "$tmp"/s.sqlite-* 2>/dev/null)
# shellcheck disable=SC2086
"$BIN" sweep $sargs --db "$tmp/s.sqlite" --quiet 2>/dev/null
"$BIN" results --db "$tmp/s.sqlite" --per-example >"$tmp/s.dump" 2>/dev/null
if [ $s_rc -eq 143 ] && grep -q "stopped by SIGTERM after storing the batch" "$tmp/s.err" &&
   [ -z "$left" ] && cmp -s "$tmp/s_ref.dump" "$tmp/s.dump"; then
    pass "sigterm_mid_sweep ($(wc -l <"$tmp/s.dump") scores)"
elif [ $s_rc -eq 0 ]; then
    fail sigterm_mid_sweep "the sweep finished before the signal (make it longer)"
else
    fail sigterm_mid_sweep "exit $s_rc, left: $left, $(tail -2 "$tmp/s.err" | tr '\r' ' ')"
fi

# ---- two sweeps, one slow server ---------------------------------------------------
cat >"$tmp/slow.py" <<'EOF'
# A loopback OpenAI-compatible server that answers after 8 s.
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); self.rfile.read(n)
        time.sleep(8)
        body = json.dumps({"choices": [{"index": 0, "text": " 1",
                           "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
python3 "$tmp/slow.py" >"$tmp/port" 2>/dev/null &
srv_pid=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
port=$(cat "$tmp/port")
"$BIN" run --model "openai:http://127.0.0.1:$port/v1,model=slow,max_retries=0" \
    --tasks tests/data/tasks/sweep-arith.yaml --limit 2 --db "$tmp/c.sqlite" \
    --quiet 2>"$tmp/c1.err" &
slow_pid=$!
sleep 2
t0=$(date +%s.%N)
"$BIN" run --model synthetic,params=1e9 --tasks tests/data/tasks/sweep-arith.yaml \
    --limit 5 --db "$tmp/c.sqlite" --quiet 2>"$tmp/c2.err"
c2_rc=$?
took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
slow_alive=0
kill -0 $slow_pid 2>/dev/null && slow_alive=1
wait $slow_pid
kill "$srv_pid" 2>/dev/null
srv_pid=
if [ $c2_rc -eq 0 ] && [ $slow_alive -eq 1 ]; then
    pass "concurrent_sweeps (second sweep done in ${took}s while the first waited)"
else
    fail concurrent_sweeps "second sweep exit $c2_rc after ${took}s (first still waiting: $slow_alive): $(head -2 "$tmp/c2.err")"
fi

[ $fails -eq 0 ]

#!/bin/sh
# test_shard.sh - `emerge sweep --shard I/N` and `emerge merge`: a small
# real sweep (the demo family's 16 members on two generation tasks and a
# multiple-choice task, --limit 6) run in one
# process and as N = 1, 2, 3 and 7 shards merged gives byte-identical
# `emerge results --format csv`, per-example scores and a dump of every
# score column; merging a shard again changes nothing; a shard whose score
# or answer was edited is refused naming the key, model, task and example,
# and the output is left as it was; an older or newer schema is refused;
# an incomplete shard is merged, named, and reads as it would have; a
# missing shard is named; --shard out of range is refused.
#
# Uses the ASan binary ($EMERGE_BIN) and python3's sqlite3 module (as
# test_sc_resume.sh does) for dumps and edits.
set -u
BIN=${EMERGE_BIN:-build/asan/emerge}
if [ ! -x "$BIN" ]; then
    echo "FAIL shard: no emerge binary at $BIN"
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$BIN" "$tmp/emerge" && BIN="$tmp/emerge"
args="--tasks tasks/suite/add_2d.yaml,tasks/suite/kb_recall.yaml,tasks/suite/kb_recall_mc.yaml
      --models models/family/family.yaml --limit 6 --batch 4 --quiet"
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1: $2"; }

# Every score, every column, by names (ids differ between stores).
dump_scores() {
    python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for r in db.execute("""SELECT m.name, m.identity, t.name, t.hash, t.version,
        s.variant, s.example_id, s.metric, printf('%.17g', s.value), s.answer,
        s.config, s.truncated, s.cut FROM scores s JOIN models m ON m.id = s.model_id
        JOIN tasks t ON t.id = s.task_id ORDER BY 1, 3, 6, 7, 8"""):
    print("|".join("" if v is None else str(v) for v in r))
PY
}

# Every row of the tables a merge writes, by content: what "changes
# nothing" is checked against.
dump_all() {
    python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for t in ("runs", "models", "tasks", "examples", "requests", "responses", "scores"):
    for r in db.execute("SELECT * FROM %s ORDER BY 1, 2" % t):
        print(t, "|".join("" if v is None else str(v) for v in r))
PY
}

sql() {
    python3 - "$@" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript(sys.argv[2])
db.commit()
PY
}

views() { # DB PREFIX: the csv, the per-example dump and the score dump
    "$BIN" results --db "$1" --format csv >"$2.csv" 2>"$2.err" &&
        "$BIN" results --db "$1" --per-example >"$2.pe" 2>>"$2.err" &&
        dump_scores "$1" >"$2.scores"
}

start=$(date +%s)
# shellcheck disable=SC2086
if ! "$BIN" sweep $args --db "$tmp/ref.sqlite" 2>"$tmp/ref.err"; then
    bad shard_reference "unsharded sweep failed: $(tail -3 "$tmp/ref.err")"
    exit 1
fi
views "$tmp/ref.sqlite" "$tmp/ref"
n_scores=$(wc -l <"$tmp/ref.scores")
if [ "$n_scores" -lt 500 ]; then
    bad shard_reference "only $n_scores scores"
    exit 1
fi
ok "shard_reference ($n_scores scores, $(wc -l <"$tmp/ref.csv") csv lines)"

# ---- N shards, merged, read as one sweep ----------------------------------
for n in 1 2 3 7; do
    i=1 fail=""
    while [ $i -le "$n" ]; do
        # shellcheck disable=SC2086
        "$BIN" sweep $args --shard "$i/$n" --db "$tmp/s$n-$i.sqlite" \
            2>"$tmp/s$n-$i.err" || fail="$fail shard $i/$n exit $?"
        grep -q "^emerge: shard $i/$n: [0-9]* of [0-9]* cells" "$tmp/s$n-$i.err" ||
            fail="$fail shard $i/$n printed no share"
        i=$((i + 1))
    done
    "$BIN" merge --db "$tmp/m$n.sqlite" "$tmp/s$n"-*.sqlite >"$tmp/m$n.out" \
        2>&1 || fail="$fail merge exit $?"
    views "$tmp/m$n.sqlite" "$tmp/m$n" || fail="$fail results failed"
    for v in csv pe scores; do
        cmp -s "$tmp/ref.$v" "$tmp/m$n.$v" || fail="$fail $v differs"
    done
    if [ -z "$fail" ]; then
        ok "shard_merge_identical_n$n ($(grep -h 'cells' "$tmp/s$n"-*.err |
            sed 's/.*: \([0-9]* of [0-9]*\) cells.*, \([0-9.]*%\).*/\1 \2/' |
            tr '\n' ';'))"
    else
        bad "shard_merge_identical_n$n" "$fail; $(tail -3 "$tmp/m$n.out")"
    fi
done

# ---- merging again changes nothing --------------------------------------------
dump_all "$tmp/m3.sqlite" >"$tmp/before"
"$BIN" merge --db "$tmp/m3.sqlite" "$tmp/s3-2.sqlite" "$tmp/s3-1.sqlite" \
    >"$tmp/again.out" 2>&1
rc=$?
dump_all "$tmp/m3.sqlite" >"$tmp/after"
if [ $rc -eq 0 ] && cmp -s "$tmp/before" "$tmp/after" &&
    ! grep -q '^  [a-z]* *[1-9][0-9]* added' "$tmp/again.out" &&
    grep -q 'scores       0 added, [1-9][0-9]* identical' "$tmp/again.out"; then
    ok shard_merge_twice_no_change
else
    bad shard_merge_twice_no_change "exit $rc: $(diff "$tmp/before" "$tmp/after" | head -3) $(head -9 "$tmp/again.out")"
fi

# ---- conflicts are refused, by name, and leave the output as it was -------------
cp "$tmp/s2-1.sqlite" "$tmp/edit.sqlite"
sql "$tmp/edit.sqlite" "UPDATE scores SET value = value + 0.5 WHERE rowid =
    (SELECT min(s.rowid) FROM scores s JOIN models m ON m.id = s.model_id
     WHERE m.name = 'd96l3-step4096' AND s.metric = 'exact_match');"
ex=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT s.example_id FROM scores s JOIN models m ON m.id = s.model_id WHERE m.name = ? AND s.metric = ? ORDER BY s.rowid LIMIT 1", ("d96l3-step4096", "exact_match")).fetchone()[0])' "$tmp/edit.sqlite")
dump_all "$tmp/m2.sqlite" >"$tmp/before"
"$BIN" merge --db "$tmp/m2.sqlite" "$tmp/edit.sqlite" >"$tmp/conf.out" 2>"$tmp/conf.err"
rc=$?
dump_all "$tmp/m2.sqlite" >"$tmp/after"
if [ $rc -eq 2 ] && cmp -s "$tmp/before" "$tmp/after" &&
    grep -q "edit.sqlite: conflicting score (model d96l3-step4096, task .*, example $ex, metric exact_match)" "$tmp/conf.err"; then
    ok "shard_conflicting_score_refused ($(cut -c1-150 "$tmp/conf.err"))"
else
    bad shard_conflicting_score_refused "exit $rc: $(cat "$tmp/conf.err")"
fi

cp "$tmp/s2-2.sqlite" "$tmp/edit2.sqlite"
sql "$tmp/edit2.sqlite" "UPDATE responses SET output = 'x' || coalesce(output, '')
    WHERE request_id = (SELECT min(request_id) FROM responses WHERE ok = 1);"
key=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT q.key FROM requests q WHERE q.id = (SELECT min(request_id) FROM responses WHERE ok = 1)").fetchone()[0])' "$tmp/edit2.sqlite")
"$BIN" merge --db "$tmp/m2.sqlite" "$tmp/edit2.sqlite" >/dev/null 2>"$tmp/conf2.err"
rc=$?
dump_all "$tmp/m2.sqlite" >"$tmp/after"
if [ $rc -eq 2 ] && cmp -s "$tmp/before" "$tmp/after" &&
    grep -q "conflicting answer for cache key $key (model .*, task .*, variant .*, example .*)" "$tmp/conf2.err"; then
    ok shard_conflicting_answer_refused
else
    bad shard_conflicting_answer_refused "exit $rc: $(cat "$tmp/conf2.err")"
fi

# ---- one name, another identity (a file that differs between nodes): warned ---------
cp "$tmp/s2-1.sqlite" "$tmp/other.sqlite"
sql "$tmp/other.sqlite" "UPDATE models SET identity = identity || ' (another file)'
    WHERE name = 'd8l1-step512';"
cp "$tmp/m2.sqlite" "$tmp/m2w.sqlite"
"$BIN" merge --db "$tmp/m2w.sqlite" "$tmp/other.sqlite" >"$tmp/other.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "warning: model d8l1-step512: another model than the output's of that name" "$tmp/other.out"; then
    ok shard_same_name_other_identity_warned
else
    bad shard_same_name_other_identity_warned "exit $rc: $(head -4 "$tmp/other.out")"
fi

# ---- schema versions: refused as readers refuse them ---------------------------------
cp "$tmp/s2-1.sqlite" "$tmp/old.sqlite"
sql "$tmp/old.sqlite" "PRAGMA user_version = 3;"
cp "$tmp/s2-1.sqlite" "$tmp/new.sqlite"
sql "$tmp/new.sqlite" "PRAGMA user_version = 99;"
"$BIN" merge --db "$tmp/v.sqlite" "$tmp/old.sqlite" >/dev/null 2>"$tmp/old.err"
rc1=$?
"$BIN" merge --db "$tmp/v.sqlite" "$tmp/new.sqlite" >/dev/null 2>"$tmp/new.err"
rc2=$?
if [ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] &&
    grep -q "old.sqlite: schema version 3, this emerge reads version 4 (.emerge migrate" "$tmp/old.err" &&
    grep -q "new.sqlite: schema version 99" "$tmp/new.err"; then
    ok shard_schema_mismatch_refused
else
    bad shard_schema_mismatch_refused "exits $rc1 $rc2: $(cat "$tmp/old.err" "$tmp/new.err")"
fi

# ---- an incomplete shard: merged, named, and read as it would have been ------------
# A sweep stopped mid-example: one example's scores missing, one failed
# request. The same damage to the unsharded store is what results must show.
pick="SELECT s.example_id FROM scores s JOIN models m ON m.id = s.model_id
      JOIN tasks t ON t.id = s.task_id WHERE m.name = 'd24l2-step2048' AND
      t.name = 'add_2d' AND s.variant = 'standard' ORDER BY s.example_id LIMIT 1"
first() {
    python3 -c 'import sqlite3, sys
r = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()
print(r[0] if r else "")' "$1" "$2"
}
owner=""
for f in "$tmp"/s2-*.sqlite; do
    [ -n "$(first "$f" "$pick")" ] && owner=$f
done
ex=$(first "$owner" "$pick")
unit="DELETE FROM scores WHERE model_id = (SELECT id FROM models WHERE name =
      'd24l2-step2048') AND task_id = (SELECT id FROM tasks WHERE name =
      'add_2d') AND variant = 'standard' AND example_id = '$ex';"
cp "$owner" "$tmp/part.sqlite"
sql "$tmp/part.sqlite" "$unit UPDATE responses SET ok = 0, error = 'test: failed'
    WHERE request_id = (SELECT max(request_id) FROM responses);"
cp "$tmp/ref.sqlite" "$tmp/refpart.sqlite"
sql "$tmp/refpart.sqlite" "$unit"
other=$(ls "$tmp"/s2-*.sqlite | grep -v "$owner")
"$BIN" merge --db "$tmp/mpart.sqlite" "$tmp/part.sqlite" $other >"$tmp/part.out" 2>&1
rc=$?
"$BIN" results --db "$tmp/mpart.sqlite" --format csv >"$tmp/mpart.csv" 2>/dev/null
"$BIN" results --db "$tmp/refpart.sqlite" --format csv >"$tmp/refpart.csv" 2>/dev/null
if [ $rc -eq 1 ] && [ -n "$ex" ] &&
    grep -q "incomplete: [0-9]* failed requests without an answer, [1-9][0-9]* examples with answers but no scores: the sweep that wrote .*part.sqlite did not finish" "$tmp/part.out" &&
    cmp -s "$tmp/mpart.csv" "$tmp/refpart.csv" && ! cmp -s "$tmp/mpart.csv" "$tmp/ref.csv"; then
    ok "shard_incomplete_named ($(grep -o 'incomplete: [^:]*' "$tmp/part.out"))"
else
    bad shard_incomplete_named "exit $rc: $(grep incomplete "$tmp/part.out") $(diff "$tmp/mpart.csv" "$tmp/refpart.csv" | head -4)"
fi

# The shard run again to completion (here: its finished copy) and merged
# again fills the gap: the failed attempt is replaced by the answer, and the
# output reads as the unsharded sweep.
"$BIN" merge --db "$tmp/mpart.sqlite" "$owner" >"$tmp/fill.out" 2>&1
rc=$?
"$BIN" results --db "$tmp/mpart.sqlite" --format csv >"$tmp/fill.csv" 2>/dev/null
if [ $rc -eq 0 ] && cmp -s "$tmp/fill.csv" "$tmp/ref.csv" &&
    grep -q " 1 failed attempts replaced by an answer" "$tmp/fill.out" &&
    grep -q "scores       [1-9][0-9]* added" "$tmp/fill.out"; then
    ok shard_incomplete_filled_by_rerun
else
    bad shard_incomplete_filled_by_rerun "exit $rc: $(grep -E 'responses|scores' "$tmp/fill.out")"
fi

# ---- a missing shard is named; out-of-range shards are refused --------------------
"$BIN" merge --db "$tmp/m3part.sqlite" "$tmp/s3-1.sqlite" "$tmp/s3-3.sqlite" \
    >"$tmp/miss.out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "incomplete: shard 2/3 is missing" "$tmp/miss.out"; then
    ok shard_missing_named
else
    bad shard_missing_named "exit $rc: $(tail -2 "$tmp/miss.out")"
fi
fail=""
for s in 0/3 4/3 3 1/0 a/2; do
    # shellcheck disable=SC2086
    "$BIN" sweep $args --shard "$s" --db "$tmp/x.sqlite" 2>"$tmp/x.err"
    rc=$?
    [ $rc -eq 2 ] && grep -q -- "--shard" "$tmp/x.err" || fail="$fail $s(exit $rc)"
done
[ ! -e "$tmp/x.sqlite" ] || fail="$fail a database was created"
if [ -z "$fail" ]; then
    ok "shard_out_of_range_refused ($(cat "$tmp/x.err"))"
else
    bad shard_out_of_range_refused "$fail"
fi
echo "# test_shard.sh took $(($(date +%s) - start)) s"

#!/bin/sh
# test_mc_norm.sh - acc_norm and acc_bytes (lm-evaluation-harness's
# length-normalised accuracies) end to end: a multiple-choice task whose
# choices differ in length ("5", "50", "500", "5000"; one with a 2-byte
# character), swept over the synthetic family; every stored acc_norm and
# acc_bytes equals lm-eval's formula recomputed from the stored choice
# log-probs (argmax of log-prob / length in characters or UTF-8 bytes),
# and on the middle models, whose right answer is likely but not sure,
# length normalisation picks a longer wrong choice where the plain grade
# picks the right one.
set -u
EMERGE=${EMERGE_BIN:-build/asan/emerge}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/mc.yaml" <<'Y'
name: mc-len
type: multiple_choice
data: mc.jsonl
template: "Q: What is {{input}}?\nA:"
metrics: [multiple_choice_grade, acc_norm, acc_bytes]
Y
i=0
for ab in "2 3" "4 1" "1 4" "3 2" "6 3" "7 2" "8 1" "1 8"; do
    set -- $ab
    t=$(($1 + $2))
    printf '{"id": "q%d", "input": "%d + %d", "choices": ["%d", "%d0", "%d00", "%d\\u00e9"], "target": "%d"}\n' \
        $i "$1" "$2" $t $t $t $t $t
    i=$((i + 1))
done >"$tmp/mc.jsonl"
if ! "$EMERGE" sweep --tasks "$tmp/mc.yaml" --models tests/data/families/synthetic-smooth.yaml \
        --db "$tmp/r.sqlite" --quiet >"$tmp/log" 2>&1; then
    echo "FAIL mc_norm_sweep: $(tail -3 "$tmp/log")"
    exit 0
fi
out=$(python3 - "$tmp/r.sqlite" <<'P'
import sqlite3, sys, json
c = sqlite3.connect(sys.argv[1])
bad = n = flips = 0
rows = c.execute("""SELECT m.name, r.example_id, r.choice, p.logprob, e.targets
    FROM requests r JOIN responses p ON p.request_id = r.id
    JOIN models m ON m.id = r.model_id
    JOIN examples e ON e.task_id = r.task_id AND e.example_id = r.example_id
    WHERE r.kind = 'loglik' AND r.choice >= 0""").fetchall()
ex = {}
for model, eid, ch, lp, targets in rows:
    ex.setdefault((model, eid), {})[ch] = lp
for (model, eid), lps in ex.items():
    doc = json.loads(open(sys.argv[1].replace("r.sqlite", "mc.jsonl")).read().splitlines()[int(eid[1:])])
    choices = doc["choices"]
    target = choices.index(doc["target"])
    ll = [lps[i] for i in range(len(choices))]
    want = {
        "multiple_choice_grade": float(max(range(len(ll)), key=lambda i: (ll[i], -i)) == target),
        "acc_norm": float(max(range(len(ll)), key=lambda i: (ll[i] / len(choices[i]), -i)) == target),
        "acc_bytes": float(max(range(len(ll)), key=lambda i: (ll[i] / len(choices[i].encode()), -i)) == target),
    }
    for metric, w in want.items():
        got = c.execute("""SELECT s.value FROM scores s JOIN models m ON m.id = s.model_id
            WHERE m.name = ? AND s.example_id = ? AND s.metric = ?""", (model, eid, metric)).fetchone()
        n += 1
        if got is None or got[0] != w:
            bad += 1
    flips += want["acc_norm"] != want["multiple_choice_grade"]
print(n, bad, flips)
P
)
set -- $out
if [ "${2:-1}" -eq 0 ] && [ "${1:-0}" -ge 96 ] && [ "${3:-0}" -gt 0 ]; then
    echo "PASS mc_norm_matches_lm_eval ($1 scores recomputed, $3 examples where length normalisation changes the pick)"
else
    echo "FAIL mc_norm_matches_lm_eval: scores/mismatches/flips: $out"
fi

# acc_mutual_info on a real model (the demo family's smallest, whose
# vocabulary adds BOS, so an unconditional prefix may even be empty): each
# choice is scored again after the task's unconditional_prefix; those
# requests are shared by every example with that choice (one cached
# request each); the stored values equal lm-eval's argmax of conditional
# minus unconditional log-prob.
model=models/family/demo-d8l1-step4096.gguf
cat >"$tmp/mi.yaml" <<'Y'
name: mc-mi
type: multiple_choice
examples:
  - {input: "Fenwarr is a", choices: [city, river, king], target: river}
  - {input: "The capital is", choices: [city, river, king], target: city}
  - {input: "He was crowned", choices: [city, river, king, queen], target: king}
template: "{{input}}"
unconditional_prefix: "Answer:"
metrics: [multiple_choice_grade, acc_mutual_info]
Y
if ! "$EMERGE" run --model "$model" --tasks "$tmp/mi.yaml" --db "$tmp/mi.sqlite" \
        --quiet >"$tmp/mi.log" 2>&1; then
    echo "FAIL mc_mutual_info: $(tail -3 "$tmp/mi.log")"
    exit 0
fi
out=$(python3 - "$tmp/mi.sqlite" <<'P'
import sqlite3, sys, json
c = sqlite3.connect(sys.argv[1])
lp = {}
for prompt, cont, choice, v in c.execute("""SELECT r.prompt, r.continuation,
        r.choice, p.logprob FROM requests r JOIN responses p ON p.request_id = r.id
        WHERE r.kind = 'loglik'"""):
    lp[(prompt, cont)] = v
uncond = sum(1 for (p, _) in lp if p == "Answer:")
docs = {"0": ("Fenwarr is a", ["city", "river", "king"], 1),
        "1": ("The capital is", ["city", "river", "king"], 0),
        "2": ("He was crowned", ["city", "river", "king", "queen"], 2)}
bad = 0
for eid, got in c.execute("SELECT example_id, value FROM scores WHERE metric = 'acc_mutual_info'"):
    q, ch, gold = docs[eid[-1]]
    mi = [lp[(q, " " + x)] - lp[("Answer:", " " + x)] for x in ch]
    want = float(max(range(len(mi)), key=lambda i: (mi[i], -i)) == gold)
    bad += got != want
n = c.execute("SELECT count(*) FROM scores WHERE metric = 'acc_mutual_info'").fetchone()[0]
print(n, bad, uncond)
P
)
set -- $out
if [ "${1:-0}" -eq 3 ] && [ "${2:-1}" -eq 0 ] && [ "${3:-0}" -eq 4 ]; then
    echo "PASS mc_mutual_info (3 examples as lm-eval computes them; 4 unconditional requests for 10 choices)"
else
    echo "FAIL mc_mutual_info: scores/mismatches/unconditional requests: $out"
fi

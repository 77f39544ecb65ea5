"""make_card.py - writes models/family/MODEL_CARD.md from the evaluation.

Owns the card's layout. The measured tables come from eval_family.py's JSON
and the training logs; the prose judging them (what each size learns, what
to change next time) is kept by hand in card_notes.md and appended, so a
rebuild refreshes the numbers without losing the reading of them.

Usage: make_card.py WORK EVAL.json > MODEL_CARD.md
"""
import json
import os
import sys

from model import SIZES, ORDER, n_params
from vocab import N_VOCAB

SPLITS = ["add_1d", "add_2d", "add_3d", "kb_recall", "kb_two_hop",
          "story_moral", "story_gen", "memo_trap", "nonsense"]


def members(ev):
    rows = sorted(ev.values(), key=lambda r: (ORDER.index(r["size"]),
                                              r["step"]))
    return [r for r in rows if r["size"] in SIZES]


def head(work, used):
    st = json.load(open(os.path.join(work, "train_stats.json")))
    n = sum(st["docs"].values())
    mix = ", ".join("%s %.1f%%" % (k, 100.0 * v / n)
                    for k, v in sorted(st["docs"].items(),
                                       key=lambda kv: -kv[1]))
    return """# emerge demo family — model card

Tiny `llama`-architecture character-level language models trained from scratch on one
synthetic curriculum, as a family for emergence studies with emerge (`models/family/
family.yaml`). Made by tools/family (see its README for every data format).

- **Licence**: the weights, the generated data and the held-out splits are released under
  CC0-1.0 (public domain dedication). The GGUF metadata says so (`general.license`).
- **Rebuild**: `make family` (installs python3-torch, python3-numpy, libopenblas0-pthread
  if missing; regenerates the data with seed %d, retrains, exports, checks, evaluates and
  rewrites this card). Training is resumable: rerunning continues from the last state.
- **Data**: %d training tokens generated (the first %s are used), %d documents.
  Mix by documents: %s.
- **Vocabulary**: %d tokens, one per character (SentencePiece-style `llama` vocabulary with
  byte fallback; `add_space_prefix` false, BOS prepended).
- **Format**: GGUF v3, all tensors F32, tied embeddings (no `output.weight`), context 256.

""" % (st["seed"], st["tokens"], format(used, ","), n, mix, N_VOCAB)


def shapes():
    out = ["## Sizes\n",
           "| size | n_embd | layers | heads | head_dim | n_ff | parameters |"
           " non-embedding |",
           "|---|---|---|---|---|---|---|---|"]
    for s in ORDER:
        d, L, H, ff = SIZES[s]
        out.append("| %s | %d | %d | %d | %d | %d | %s | %s |" % (
            s, d, L, H, d // H, ff, format(n_params(s), ","),
            format(n_params(s) - N_VOCAB * d, ",")))
    return "\n".join(out) + "\n\n"


def losses(rows):
    out = ["## Checkpoints: loss (nats per token)\n",
           "Train loss: mean over the last logged training steps (at most 10) up to the "
           "checkpoint. Held-out loss: over all held-out documents "
           "(eval_family.py).\n",
           "| member | step | tokens | train loss | held-out loss |",
           "|---|---|---|---|---|"]
    for r in rows:
        tl = r["train_loss"]
        out.append("| %s-step%d | %d | %s | %s | %.4f |" % (
            r["size"], r["step"], r["step"], format(r["tokens"], ","),
            "—" if tl is None else "%.4f" % tl, r["heldout_loss"]))
    return "\n".join(out) + "\n\n"


def em_table(rows):
    out = ["## Held-out results per checkpoint\n",
           "Greedy exact match (EM) on every row: greedy decoding gives "
           "exactly the target then a newline (checked in one teacher-forced "
           "pass). CoT = from the chain-of-thought prompt, greedy decoding "
           "reproduces the reference scratchpad and answer exactly; "
           "logp = mean summed log-prob of the target given the input; "
           "memo = share of memo-trap rows where the memorised ending is "
           "likelier than the instructed one.\n",
           "| member | add1 EM/CoT | add2 EM/CoT | add3 EM/CoT | add3 logp "
           "| kb recall EM | kb logp | two-hop EM | moral EM | story EM "
           "| memo EM | memo | nonsense EM |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["splits"]

        def em(n):
            return "%.2f" % s[n]["em"]

        def emc(n):
            return "%.2f / %.2f" % (s[n]["em"], s[n]["cot_em"])
        out.append("| %s-step%d | %s | %s | %s | %.2f | %s | %.2f | %s | %s "
                   "| %s | %s | %.2f | %s |" % (
                       r["size"], r["step"], emc("add_1d"), emc("add_2d"),
                       emc("add_3d"), s["add_3d"]["target_logprob"],
                       em("kb_recall"), s["kb_recall"]["target_logprob"],
                       em("kb_two_hop"), em("story_moral"), em("story_gen"),
                       em("memo_trap"), s["memo_trap"]["memorised_preferred"],
                       em("nonsense")))
    return "\n".join(out) + "\n\n"


def main():
    work, evp = sys.argv[1], sys.argv[2]
    rows = members(json.load(open(evp)))
    used = max(r["tokens"] for r in rows)
    sys.stdout.write(head(work, used) + shapes() + losses(rows) + em_table(rows))
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "card_notes.md")
    if os.path.exists(notes):
        sys.stdout.write(open(notes).read())


if __name__ == "__main__":
    main()

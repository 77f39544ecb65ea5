"""eval_family.py - quick torch evaluation of every family checkpoint.

Owns the numbers in MODEL_CARD.md. For each checkpoint WORK/<size>/step<N>.pt
and each held-out split it measures:
  * held-out loss: mean next-token loss (nats) over the split's documents
    (input + target, and for arithmetic also the chain-of-thought form);
  * target log-prob: mean over rows of the summed log-probability of the
    target characters given the input (teacher forcing; a smooth metric);
  * greedy exact match: whether greedy decoding from the input yields
    exactly target + '\\n' (checked in one teacher-forced pass);
  * for arithmetic, CoT exact match: whether greedy decoding from cot_input
    reproduces the reference scratchpad and answer exactly;
  * for the memo trap, the share of rows whose memorised ending
    outscores the instructed one.
Also the train loss at the checkpoint from the training log.

Usage: eval_family.py WORK HELDOUT OUT.json
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import vocab
from model import LM, ORDER



def load_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def by_length(seqs):
    groups = {}
    for i, s in enumerate(seqs):
        groups.setdefault(len(s), []).append(i)
    return groups.values()


@torch.no_grad()
def score(m, pairs):
    """Per pair (prompt ids, continuation ids): summed log-prob of the
    continuation, summed token loss over the whole doc, its token count,
    and whether every continuation token is the argmax (greedy match)."""
    res = [None] * len(pairs)
    seqs = [p + c for p, c in pairs]
    for idx in by_length(seqs):
        for c in range(0, len(idx), 64):
            chunk = idx[c:c + 64]
            x = torch.tensor([seqs[i] for i in chunk])
            lp = F.log_softmax(m(x[:, :-1]), -1)
            tok = lp.gather(-1, x[:, 1:, None])[..., 0]
            hit = (lp.argmax(-1) == x[:, 1:])
            for j, i in enumerate(chunk):
                n_p = len(pairs[i][0])
                res[i] = (float(tok[j, n_p - 1:].sum()), float(-tok[j].sum()),
                          tok.shape[1], bool(hit[j, n_p - 1:].all()))
    return res


def eval_split(m, name, rows):
    r = {}
    enc = vocab.encode
    direct = [(enc(x["input"]), enc(x["target"] + "\n", bos=False))
              for x in rows]
    cot = [(enc(x["cot_input"]), enc(x["rationale"] + "\n", bos=False))
           for x in rows if "cot_input" in x]
    sc = score(m, direct + cot)
    r["heldout_tokens"] = sum(s[2] for s in sc)
    r["heldout_loss"] = sum(s[1] for s in sc) / r["heldout_tokens"]
    # Greedy exact match in one teacher-forced pass: greedy decoding yields
    # exactly target + "\n" iff every argmax along it is the next token.
    r["em"] = float(np.mean([s[3] for s in sc[:len(direct)]]))
    if cot:
        # CoT: greedy decoding reproduces the reference scratchpad and
        # answer exactly (the format is deterministic, so a right answer
        # reached by another chain is not counted).
        r["cot_em"] = float(np.mean([s[3] for s in sc[len(direct):]]))
    tgt = score(m, [(enc(x["input"]), enc(x["target"], bos=False))
                    for x in rows])
    r["target_logprob"] = float(np.mean([s[0] for s in tgt]))
    if name == "memo_trap":
        b = score(m, [(enc(x["input"]), enc(x["memorised"], bos=False))
                      for x in rows])
        r["memorised_preferred"] = float(np.mean(
            [bb[0] > aa[0] for aa, bb in zip(tgt, b)]))
    return r


def train_loss(work, size, step):
    best = None
    for line in open(os.path.join(work, size + ".log")):
        f = line.split()
        if f and f[0] == "step" and int(f[1]) <= step:
            best = float(f[3])
    return best


def main():
    work, held, out = sys.argv[1:4]
    torch.set_num_threads(1)
    splits = {f[:-6]: load_rows(os.path.join(held, f))
              for f in sorted(os.listdir(held)) if f.endswith(".jsonl")}
    results = json.load(open(out)) if os.path.exists(out) else {}
    for size in ORDER:
        d = os.path.join(work, size)
        if not os.path.isdir(d):
            continue
        for f in sorted(os.listdir(d), key=lambda s: (len(s), s)):
            if not (f.startswith("step") and f.endswith(".pt")):
                continue
            key = "%s/%s" % (size, f[:-3])
            if key in results:
                continue
            ck = torch.load(os.path.join(d, f))
            m = LM(size)
            m.load_state_dict(ck["model"])
            m.eval()
            r = {"size": size, "step": ck["step"], "tokens": ck["tokens"],
                 "train_loss": train_loss(work, size, ck["step"]),
                 "splits": {n: eval_split(m, n, rows)
                            for n, rows in splits.items()}}
            sp = r["splits"].values()
            r["heldout_loss"] = (sum(v["heldout_loss"] * v["heldout_tokens"]
                                     for v in sp) /
                                 sum(v["heldout_tokens"] for v in sp))
            results[key] = r
            json.dump(results, open(out, "w"), indent=1, sort_keys=True)
            print(key, json.dumps({n: round(v["em"], 2)
                                   for n, v in r["splits"].items()}),
                  flush=True)


if __name__ == "__main__":
    main()

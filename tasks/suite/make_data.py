"""make_data.py - derived data of the bundled suite (tasks/suite/data/).

kb_recall_mc.jsonl: the rows of the family's held-out kb_recall split
whose attribute has a choice list (city, colour, pet); `friend` rows carry
only their target as a choice, so they are asked by generation only
(kb_recall.yaml). Rows are copied unchanged, in order.

Run from the repository root after the family's held-out splits change
(models/family/heldout/, written by tools/family/gen_data.py):
    python3 tasks/suite/make_data.py
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
HELDOUT = os.path.join(HERE, "..", "..", "models", "family", "heldout")


def main():
    out = os.path.join(HERE, "data", "kb_recall_mc.jsonl")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(os.path.join(HELDOUT, "kb_recall.jsonl")) as f, open(out, "w") as g:
        for line in f:
            if line.strip() and len(json.loads(line)["choices"]) >= 2:
                g.write(line if line.endswith("\n") else line + "\n")


if __name__ == "__main__":
    main()

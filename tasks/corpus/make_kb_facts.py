"""make_kb_facts.py - writes kb_facts.txt, the retrieval corpus of the
bundled knowledge-base tasks (tasks/suite/kb_*.yaml).

One fact per line, four per person (city, colour, pet, friend), in the
first of the two phrasings the demo family was trained on, for all 120
people of the family's knowledge base. The people come from the family's
own generator (tools/family/gen_data.py, fixed seed), so the corpus states
exactly the facts the family saw as statements; nothing is copied by hand.

Usage (from the repository root): python3 tasks/corpus/make_kb_facts.py
"""
import os
import random
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "family"))
# gen_data imports numpy for the training stream only; the corpus needs
# none of it, so a placeholder module keeps this script dependency-free.
sys.modules.setdefault("numpy", types.ModuleType("numpy"))
import gen_data  # noqa: E402


def main():
    c = gen_data.Curriculum(random.Random(gen_data.SEED))
    lines = []
    for p in c.people:
        for attr in ("city", "colour", "pet", "friend"):
            lines.append(gen_data.FACT_TEMPLATES[attr][0] % (p["name"], p[attr]))
    with open(os.path.join(HERE, "kb_facts.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

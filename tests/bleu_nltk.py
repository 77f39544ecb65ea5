#!/usr/bin/env python3
"""bleu_nltk.py FILE - corpus BLEU of NLTK, for tests/test_bleu.c.

FILE holds one segment per line, already 13a-tokenised by emerge's C
tokenizer: the hypothesis, then its references, separated by tabs; tokens
are separated by single spaces. Prints NLTK's corpus_bleu (default weights
0.25 x 4, no smoothing) as a fraction 0..1 with 15 decimals.

NLTK is the independent implementation the C code is checked against; it
uses the closest reference length with ties to the shorter reference, as
sacrebleu does.
"""
import sys

from nltk.translate.bleu_score import corpus_bleu


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: bleu_nltk.py FILE\n")
        return 2
    hyps, refs = [], []
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            hyps.append(fields[0].split(" "))
            refs.append([r.split(" ") for r in fields[1:]])
    print("%.15f" % corpus_bleu(refs, hyps))
    return 0


if __name__ == "__main__":
    sys.exit(main())

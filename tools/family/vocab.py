"""vocab.py - the demo family's character-level SentencePiece-style vocabulary.

Owns the one mapping between text and token ids that training, export
(tokenizer.ggml.* keys) and evaluation share. The layout is what llama.cpp's
SPM tokenizer accepts without any merges:

    0 "<unk>" (type 2)   1 "<s>" (type 3)   2 "</s>" (type 3)
    3..258   "<0x00>".."<0xFF>" byte-fallback tokens (type 6)
    259..353 one token per printable ASCII character 0x20..0x7E (type 1),
             the space stored as U+2581 ("\u2581") as SentencePiece does.

Because no piece is longer than one character, SentencePiece's bigram merge
loop never fires, so tokenisation is exactly one token per character; any
other byte (e.g. '\\n') goes through byte fallback: '\\n' -> "<0x0A>" = id 13.
"""

UNK, BOS, EOS = 0, 1, 2
BYTE0 = 3                      # id of "<0x00>"
CHAR0 = BYTE0 + 256            # id of the first character piece (' ')
FIRST_CHAR, LAST_CHAR = 0x20, 0x7E
N_VOCAB = CHAR0 + (LAST_CHAR - FIRST_CHAR + 1)

TYPE_NORMAL, TYPE_UNKNOWN, TYPE_CONTROL, TYPE_BYTE = 1, 2, 3, 6


def pieces():
    """Return (tokens, scores, types) lists in id order, for the GGUF."""
    toks, scores, types = ["<unk>", "<s>", "</s>"], [0.0, 0.0, 0.0], \
        [TYPE_UNKNOWN, TYPE_CONTROL, TYPE_CONTROL]
    for b in range(256):
        toks.append("<0x%02X>" % b)
        scores.append(0.0)
        types.append(TYPE_BYTE)
    for c in range(FIRST_CHAR, LAST_CHAR + 1):
        toks.append("\u2581" if c == 0x20 else chr(c))
        # Scores only order merges; with single-character pieces there are
        # none, so any distinct values do. -(index) as SentencePiece would.
        scores.append(-float(len(toks)))
        types.append(TYPE_NORMAL)
    assert len(toks) == N_VOCAB
    return toks, scores, types


def _table():
    t = [0] * 256
    for b in range(256):
        t[b] = BYTE0 + b
    for c in range(FIRST_CHAR, LAST_CHAR + 1):
        t[c] = CHAR0 + (c - FIRST_CHAR)
    return t


BYTE_TO_ID = _table()


def encode(text, bos=True):
    """Token ids of text (UTF-8 bytes; non-ASCII goes through byte fallback)."""
    ids = [BOS] if bos else []
    ids.extend(BYTE_TO_ID[b] for b in text.encode("utf-8"))
    return ids


def decode(ids):
    out = bytearray()
    for i in ids:
        if i >= CHAR0:
            out.append(FIRST_CHAR + i - CHAR0)
        elif i >= BYTE0:
            out.append(i - BYTE0)
    return out.decode("utf-8", errors="replace")

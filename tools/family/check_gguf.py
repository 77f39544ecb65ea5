"""check_gguf.py - verifies an exported member against its torch checkpoint.

Owns the independent numpy forward pass: it reads ONLY the GGUF (hyper-
parameters from the llama.* keys, weights from the tensors, vocabulary from
tokenizer.ggml.tokens) and computes logits the way llama.cpp's llama graph
does, then compares them with model.py's logits for the same tokens.
A mismatch in tensor naming, ne order, RoPE pairing or tying shows up as a
large difference. Exit status 1 when max |diff| >= 1e-3.

Usage: check_gguf.py FILE.gguf CKPT.pt [FILE.gguf CKPT.pt ...]
"""
import sys

import numpy as np
import torch

import gguf_io as g
import vocab
from model import LM

PROMPTS = ["Q: What is 47+85?\nA: Let's think step by step.",
           "Proverb: Actions speak louder than words.",
           "Title: The kind fox and the key\nStory: The fox shared"]


def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, pos, base):
    """x: (T, H, hd); adjacent pairs (llama.cpp NORMAL mode)."""
    hd = x.shape[-1]
    inv = base ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    ang = pos[:, None] * inv[None, :]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    y = np.empty_like(x)
    y[..., 0::2] = x0 * c - x1 * s
    y[..., 1::2] = x0 * s + x1 * c
    return y


def forward(r, ids):
    kv, t = r.kv, {k: v.astype(np.float64) for k, v in r.tensors.items()}
    n_layer = kv["llama.block_count"]
    H = kv["llama.attention.head_count"]
    eps = kv["llama.attention.layer_norm_rms_epsilon"]
    base = kv["llama.rope.freq_base"]
    T = len(ids)
    x = t["token_embd.weight"][ids]
    D = x.shape[1]
    hd = D // H
    pos = np.arange(T, dtype=np.float64)
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for i in range(n_layer):
        p = "blk.%d." % i
        h = rms(x, t[p + "attn_norm.weight"], eps)
        q = rope((h @ t[p + "attn_q.weight"].T).reshape(T, H, hd), pos, base)
        k = rope((h @ t[p + "attn_k.weight"].T).reshape(T, H, hd), pos, base)
        v = (h @ t[p + "attn_v.weight"].T).reshape(T, H, hd)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        y = np.einsum("hts,shd->thd", att, v).reshape(T, D)
        x = x + y @ t[p + "attn_output.weight"].T
        h = rms(x, t[p + "ffn_norm.weight"], eps)
        gate = h @ t[p + "ffn_gate.weight"].T
        up = h @ t[p + "ffn_up.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ t[p + "ffn_down.weight"].T
    out = t.get("output.weight", t["token_embd.weight"])
    return rms(x, t["output_norm.weight"], eps) @ out.T


def check_vocab(r):
    toks, _, types = vocab.pieces()
    if r.kv["tokenizer.ggml.tokens"] != toks:
        raise SystemExit("tokenizer.ggml.tokens differ from vocab.py")
    if r.kv["tokenizer.ggml.token_type"] != types:
        raise SystemExit("tokenizer.ggml.token_type differ from vocab.py")


def check(path, ckpt):
    r = g.Reader(path)
    check_vocab(r)
    ck = torch.load(ckpt)
    m = LM(ck["size"])
    m.load_state_dict(ck["model"])
    m.eval()
    worst = 0.0
    for p in PROMPTS:
        ids = vocab.encode(p)
        want = m(torch.tensor([ids]))[0].detach().double().numpy()
        got = forward(r, ids)
        worst = max(worst, float(np.abs(got - want).max()))
    print("%s: max |logit diff| %.2e over %d prompts" % (path, worst,
                                                         len(PROMPTS)))
    return worst


def main():
    a = sys.argv[1:]
    if not a or len(a) % 2:
        sys.exit(__doc__)
    worst = max(check(a[i], a[i + 1]) for i in range(0, len(a), 2))
    sys.exit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()

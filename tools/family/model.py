"""model.py - the demo family's llama-architecture transformer in torch.

Owns the network definition and the family's size table. It is written so
that its parameters map one-to-one onto llama.cpp's GGUF tensors with no
permutation at export:

  * RMSNorm, eps 1e-5, weight only (attn_norm, ffn_norm, output_norm);
  * RoPE in llama.cpp's NORMAL mode: ADJACENT pairs (x[2i], x[2i+1]) are
    rotated by pos * base^(-2i/head_dim). HF's "rotate half" layout would
    need llama.cpp's Q/K row permutation at export; this one needs none;
  * multi-head attention, scale 1/sqrt(head_dim), no biases;
  * SwiGLU FFN: w_down(silu(w_gate x) * w_up x);
  * tied input/output embeddings (the GGUF omits output.weight, llama.cpp
    then reuses token_embd.weight).

torch 1.13 has no scaled_dot_product_attention, so attention is a plain
batched matmul with one precomputed causal mask; at these widths the cost
is in the matmuls and softmax, not in Python.
"""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from vocab import N_VOCAB

RMS_EPS = 1e-5
ROPE_BASE = 10000.0
CTX = 256

# name: (n_embd, n_layer, n_head, n_ff). n_ff = 3 * n_embd keeps SwiGLU
# near a 4x MLP's size. Few, wide heads: on 2 cores the many small batched
# attention matmuls of 16-wide heads cost more than the projections.
# Sized from throughput measured here (see tools/family/README.md).
SIZES = {
    "d8l1":  (8, 1, 1, 24),
    "d24l2": (24, 2, 2, 72),
    "d48l3": (48, 3, 3, 144),
    "d96l3": (96, 3, 3, 288),
}
ORDER = ["d8l1", "d24l2", "d48l3", "d96l3"]


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS)
        return x * r * self.weight


def rope_tables(head_dim, n_ctx):
    i = torch.arange(0, head_dim, 2, dtype=torch.float64)
    inv = ROPE_BASE ** (-i / head_dim)
    ang = torch.arange(n_ctx, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope(x, cos, sin):
    """x: (B, H, T, hd); rotate adjacent pairs (NORMAL mode)."""
    T = x.shape[2]
    c, s = cos[:T], sin[:T]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    y0 = x0 * c - x1 * s
    y1 = x0 * s + x1 * c
    return torch.stack((y0, y1), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, d, n_head, n_ff):
        super().__init__()
        self.n_head, self.hd = n_head, d // n_head
        self.attn_norm = RMSNorm(d)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, d, bias=False)
        self.wv = nn.Linear(d, d, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.ffn_norm = RMSNorm(d)
        self.w_gate = nn.Linear(d, n_ff, bias=False)
        self.w_up = nn.Linear(d, n_ff, bias=False)
        self.w_down = nn.Linear(n_ff, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, D = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.n_head, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.n_head, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.n_head, self.hd).transpose(1, 2)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
        att = att + mask[:T, :T]
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)
        x = x + self.wo(y)
        h = self.ffn_norm(x)
        return x + self.w_down(F.silu(self.w_gate(h)) * self.w_up(h))


class LM(nn.Module):
    def __init__(self, size):
        super().__init__()
        d, n_layer, n_head, n_ff = SIZES[size]
        self.size, self.d, self.n_layer = size, d, n_layer
        self.n_head, self.n_ff = n_head, n_ff
        self.tok = nn.Embedding(N_VOCAB, d)
        self.blocks = nn.ModuleList(Block(d, n_head, n_ff)
                                    for _ in range(n_layer))
        self.norm = RMSNorm(d)
        cos, sin = rope_tables(d // n_head, CTX)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        m = torch.full((CTX, CTX), float("-inf")).triu(1)
        self.register_buffer("mask", m, persistent=False)
        self._init()

    def _init(self):
        std = 0.02 if self.d >= 64 else 1.0 / math.sqrt(self.d) / 2
        for n, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, std)
                if n.endswith("wo.weight") or n.endswith("w_down.weight"):
                    p.data /= math.sqrt(2 * self.n_layer)

    def forward(self, idx):
        x = self.tok(idx)
        for b in self.blocks:
            x = b(x, self.cos, self.sin, self.mask)
        return self.norm(x) @ self.tok.weight.t()


def n_params(size):
    d, L, _, ff = SIZES[size]
    return N_VOCAB * d + L * (4 * d * d + 3 * d * ff + 2 * d) + d

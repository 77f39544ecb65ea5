"""export_gguf.py - turns trained checkpoints into the family's GGUF members.

Owns the mapping from the torch model (model.py) to llama.cpp's `llama`
GGUF names, and the family manifest (family.yaml, SHA256SUMS).

  token_embd.weight          tok.weight            (n_vocab, n_embd)
  blk.N.attn_norm.weight     blocks.N.attn_norm.weight
  blk.N.attn_q/k/v.weight    blocks.N.wq/wk/wv.weight   (no permutation:
                             model.py's RoPE already rotates adjacent pairs,
                             llama.cpp's NORMAL mode)
  blk.N.attn_output.weight   blocks.N.wo.weight
  blk.N.ffn_norm.weight      blocks.N.ffn_norm.weight
  blk.N.ffn_gate/up/down     blocks.N.w_gate/w_up/w_down.weight
  output_norm.weight         norm.weight
  (no output.weight: the embeddings are tied, llama.cpp reuses token_embd)

Everything is F32: the whole family stays far below the 40 MB budget.

Usage:
  export_gguf.py CKPT.pt OUT.gguf            one checkpoint
  export_gguf.py --all WORK OUTDIR           every finished size's milestones
                                             + family.yaml + SHA256SUMS
"""
import hashlib
import os
import sys

import numpy as np
import torch

import gguf_io as g
import vocab
from model import CTX, RMS_EPS, ROPE_BASE, SIZES, ORDER, n_params


def metadata(size, name):
    d, n_layer, n_head, n_ff = SIZES[size]
    toks, scores, types = vocab.pieces()
    return [
        ("general.architecture", g.T_STR, "llama"),
        ("general.name", g.T_STR, name),
        ("general.file_type", g.T_U32, 0),
        ("general.alignment", g.T_U32, g.ALIGN),
        ("general.license", g.T_STR, "CC0-1.0"),
        ("llama.context_length", g.T_U32, CTX),
        ("llama.embedding_length", g.T_U32, d),
        ("llama.block_count", g.T_U32, n_layer),
        ("llama.feed_forward_length", g.T_U32, n_ff),
        ("llama.attention.head_count", g.T_U32, n_head),
        ("llama.attention.head_count_kv", g.T_U32, n_head),
        ("llama.rope.dimension_count", g.T_U32, d // n_head),
        ("llama.rope.freq_base", g.T_F32, ROPE_BASE),
        ("llama.attention.layer_norm_rms_epsilon", g.T_F32, RMS_EPS),
        ("tokenizer.ggml.model", g.T_STR, "llama"),
        ("tokenizer.ggml.tokens", g.T_ARR, (g.T_STR, toks)),
        ("tokenizer.ggml.scores", g.T_ARR, (g.T_F32, scores)),
        ("tokenizer.ggml.token_type", g.T_ARR, (g.T_I32, types)),
        ("tokenizer.ggml.bos_token_id", g.T_U32, vocab.BOS),
        ("tokenizer.ggml.eos_token_id", g.T_U32, vocab.EOS),
        ("tokenizer.ggml.unknown_token_id", g.T_U32, vocab.UNK),
        ("tokenizer.ggml.add_bos_token", g.T_BOOL, True),
        ("tokenizer.ggml.add_eos_token", g.T_BOOL, False),
        ("tokenizer.ggml.add_space_prefix", g.T_BOOL, False),
    ]


def tensors(sd, n_layer):
    def f(k):
        return sd[k].detach().cpu().float().numpy()
    out = [("token_embd.weight", f("tok.weight"))]
    names = [("attn_norm", "attn_norm"), ("attn_q", "wq"), ("attn_k", "wk"),
             ("attn_v", "wv"), ("attn_output", "wo"), ("ffn_norm", "ffn_norm"),
             ("ffn_gate", "w_gate"), ("ffn_up", "w_up"), ("ffn_down", "w_down")]
    for i in range(n_layer):
        for gn, tn in names:
            out.append(("blk.%d.%s.weight" % (i, gn),
                        f("blocks.%d.%s.weight" % (i, tn))))
    out.append(("output_norm.weight", f("norm.weight")))
    return out


def export(ckpt_path, out_path):
    ck = torch.load(ckpt_path)
    size = ck["size"]
    name = "emerge-demo-%s-step%d" % (size, ck["step"])
    g.write(out_path, metadata(size, name),
            tensors(ck["model"], SIZES[size][1]))
    return ck


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def finished(work, size):
    log = os.path.join(work, size + ".log")
    return os.path.exists(log) and "# done" in open(log).read()


def export_all(work, outdir):
    members = []
    for size in ORDER:
        if not finished(work, size):
            print("skip %s: training not finished" % size)
            continue
        d = os.path.join(work, size)
        steps = sorted(int(f[4:-3]) for f in os.listdir(d)
                       if f.startswith("step") and f.endswith(".pt"))
        for s in steps:
            fn = "demo-%s-step%d.gguf" % (size, s)
            ck = export(os.path.join(d, "step%d.pt" % s),
                        os.path.join(outdir, fn))
            members.append((size, s, ck["tokens"], fn))
            print("wrote", fn)
    with open(os.path.join(outdir, "family.yaml"), "w") as f:
        f.write("# The emerge demo family: tools/family/ rebuilds it "
                "(make family).\n# params: all parameters, tied embeddings "
                "counted once; tokens: training tokens seen.\n")
        f.write("name: demo\nmembers:\n")
        for size, s, tok, fn in members:
            f.write("  - name: %s-step%d\n    backend: native\n"
                    "    path: %s\n    params: %d\n    tokens: %d\n"
                    "    step: %d\n" % (size, s, fn, n_params(size), tok, s))
    with open(os.path.join(outdir, "SHA256SUMS"), "w") as f:
        for _, _, _, fn in members:
            f.write("%s  %s\n" % (sha256(os.path.join(outdir, fn)), fn))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--all":
        export_all(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3:
        export(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

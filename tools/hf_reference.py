#!/usr/bin/python3
"""hf_reference.py - float64 reference log-probabilities for Hugging Face
checkpoint directories, independent of emerge's engine.

Two uses:

  tools/hf_reference.py generate [--out tests/data/hf]
      Writes small random-weight checkpoint directories in the formats real
      Hugging Face checkpoints have (config.json, model.safetensors or a
      sharded model-0000N-of-0000M.safetensors + model.safetensors.index.json,
      tokenizer.json, tokenizer_config.json) for four shapes (pythia-like,
      llama-gqa-tied, qwen2-bias, gpt2-small), each in F32, F16 and BF16, plus
      a 2-shard copy of pythia-like F32; then reads every directory back and
      writes OUT/<model>/reference.json with, per copy and per fixed token
      sequence, log_softmax(logits[i])[t[i+1]] for every position and the
      whole log_softmax row of the last position, and OUT/tokenizer-cases.json
      (texts and their ids under the tokenizer). Deterministic: the same
      bytes on every run (numpy's legacy RandomState stream, which numpy
      keeps frozen; references rounded to 10 significant digits).

  tools/hf_reference.py reference DIR [--tokens 1,2,3 ...] [-o FILE]
      The same reference for any checkpoint directory (GPTNeoXForCausalLM,
      LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
      GPT2LMHeadModel), e.g. a downloaded Pythia: JSON to FILE or stdout.
      Without --tokens, three pseudo-random sequences (12, 20, 33 ids below
      min(vocab_size, 256)) are used.

The forward pass is written here from each architecture's definition, in
float64 with torch, from the stored weights upcast to float64 (an F16/BF16
checkpoint's reference is that of its rounded weights): embeddings,
LayerNorm/RMSNorm, rotate_half RoPE (pairs (i, i + n_rot/2), on the first
rotary_pct of each head for GPT-NeoX), causal softmax attention with grouped
KV heads, GELU as the config says (GPT-NeoX "gelu" is the exact erf GELU in
transformers; GPT-2 "gelu_new" is the tanh approximation), SwiGLU,
sequential or parallel residual, tied or untied output. It does not import
transformers. Python and torch are needed by this tool only, never by emerge
or its tests.
"""
import argparse
import json
import math
import os
import re
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# --------------------------------------------------------------------------
# safetensors, written and read by hand (the safetensors package may be
# absent): u64 little-endian header length, a JSON header
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"},
# padded with spaces to a multiple of 8, then the raw little-endian bytes.

NP_OF = {"F64": np.float64, "F32": np.float32, "F16": np.float16,
         "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
         "U8": np.uint8, "BOOL": np.uint8}


def f32_to_bf16_bits(a):
    """float32 array -> uint16 bfloat16 bits, round to nearest even (as
    torch's .to(torch.bfloat16)); inputs are finite."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def tensor_bytes(arr, dtype):
    """(bytes) of a float64/bool numpy array stored as dtype."""
    if dtype == "BF16":
        return f32_to_bf16_bits(arr.astype(np.float32)).astype("<u2").tobytes()
    if dtype == "BOOL":
        return arr.astype(np.uint8).tobytes()
    return arr.astype(np.dtype(NP_OF[dtype]).newbyteorder("<")).tobytes()


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype, shape, bytes), written in that order."""
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in tensors:
            f.write(data)


def read_safetensors(path):
    """{name: (dtype, float64 or integer numpy array)}"""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = blob[base + b:base + e]
        dt = t["dtype"]
        if dt == "BF16":
            a = bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2")).astype(np.float64)
        elif dt in NP_OF:
            a = np.frombuffer(raw, dtype=np.dtype(NP_OF[dt]).newbyteorder("<"))
            if dt in ("F64", "F32", "F16"):
                a = a.astype(np.float64)
        else:
            raise SystemExit("%s: tensor %s: dtype %s not handled" % (path, name, dt))
        out[name] = (dt, a.reshape(t["shape"]))
    return out


def read_checkpoint(d):
    idx = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for fn in files:
        w.update(read_safetensors(os.path.join(d, fn)))
    return w

# --------------------------------------------------------------------------
# The tokenizer: GPT-2 style byte-level BPE, 256 byte symbols + merges
# learned from a fixed text + "<|endoftext|>".


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return bs, [chr(c) for c in cs]


BPE_TEXT = (
    "The quick brown fox jumps over the lazy dog. The question is whether the "
    "answer is the one that the model gives, and whether it is the same in "
    "the other engine. There is a cat on the mat, and the cat is there to "
    "stay. In the beginning there was the word, and then there were the "
    "tokens. This is a test of the tokenizer, and it is only a test: 1234 "
    "5678 90. The theory of the thing is that there are three of them.")
N_MERGES = 43  # 256 bytes + 43 merges + <|endoftext|> = 300 tokens
PRETOK = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def make_tokenizer():
    bs, cs = bytes_to_unicode()
    byte_char = dict(zip(bs, cs))
    vocab = {c: i for i, c in enumerate(cs)}  # GPT-2's order: ids 0..255
    words = {}
    for w in PRETOK.findall(BPE_TEXT):
        key = tuple(byte_char[b] for b in w.encode())
        words[key] = words.get(key, 0) + 1
    merges = []
    for _ in range(N_MERGES):
        counts = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + c
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        vocab[best[0] + best[1]] = len(vocab)
        new = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new[tuple(out)] = new.get(tuple(out), 0) + c
        words = new
    eot = len(vocab)
    vocab["<|endoftext|>"] = eot
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
          "use_regex": True}
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False,
                          "special": True}],
        "normalizer": None,
        "pre_tokenizer": bl,
        "post_processor": dict(bl, trim_offsets=False),
        "decoder": bl,
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": "", "end_of_word_suffix": "",
                  "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [a + " " + b for a, b in merges]},
    }
    tcfg = {"add_bos_token": False, "add_eos_token": False,
            "add_prefix_space": False, "bos_token": "<|endoftext|>",
            "clean_up_tokenization_spaces": False, "eos_token": "<|endoftext|>",
            "model_max_length": 128, "tokenizer_class": "GPT2Tokenizer",
            "unk_token": "<|endoftext|>"}
    return tok, tcfg, eot

def bpe_encode(tok, text):
    """Ids of text under a byte-level BPE tokenizer.json (GPT-2's
    algorithm: split by the pre-tokenizer's regex - ASCII classes here,
    enough for ASCII text - then in each piece merge the pair of lowest
    rank until none is left). No special tokens are matched."""
    bs, cs = bytes_to_unicode()
    byte_char = dict(zip(bs, cs))
    vocab = tok["model"]["vocab"]
    rank = {tuple(m.split(" ")): i for i, m in enumerate(tok["model"]["merges"])}
    ids = []
    for piece in PRETOK.findall(text):
        w = [byte_char[b] for b in piece.encode()]
        while len(w) > 1:
            pairs = [(rank.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(w, w[1:]))]
            r, i = min(pairs)
            if r == 1 << 30:
                break
            w[i:i + 2] = [w[i] + w[i + 1]]
        ids += [vocab[p] for p in w]
    return ids


TOKENIZER_CASES = [
    "The quick brown fox jumps over the lazy dog.",
    "there is the theory of the thing: 1234 cats, 5678 dogs",
    "  leading spaces, and trailing ones  ",
    "It's a test; isn't it? Yes -- they'll see.\nNew line\ttab",
]


# --------------------------------------------------------------------------
# The random-weight models.

TORCH_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
N_TOK = 300  # tokenizer size (make_tokenizer)
EOT = 299
SEEDS = {"pythia-like": 1001, "llama-gqa-tied": 1002, "qwen2-bias": 1003,
         "gpt2-small": 1004}
TOKEN_SEED = 7
SEQ_LENS = (12, 20, 33)


def model_spec(name):
    """(config without torch_dtype, [(tensor name, shape, kind)]) where kind
    says how it is drawn (see draw()) and, for buffers, what it is."""
    E, L, H = 64, 2, 4
    T = []
    if name == "pythia-like":
        V, F, P = 320, 256, 128
        cfg = {"architectures": ["GPTNeoXForCausalLM"], "bos_token_id": EOT,
               "eos_token_id": EOT, "hidden_act": "gelu", "hidden_size": E,
               "initializer_range": 0.02, "intermediate_size": F,
               "layer_norm_eps": 1e-05, "max_position_embeddings": P,
               "model_type": "gpt_neox", "num_attention_heads": H,
               "num_hidden_layers": L, "rotary_emb_base": 10000,
               "rotary_pct": 0.25, "tie_word_embeddings": False,
               "transformers_version": "4.24.0", "use_cache": True,
               "use_parallel_residual": True, "vocab_size": V}
        T.append(("gpt_neox.embed_in.weight", (V, E), "embed"))
        for i in range(L):
            p = "gpt_neox.layers.%d." % i
            T += [(p + "input_layernorm.weight", (E,), "norm"),
                  (p + "input_layernorm.bias", (E,), "bias"),
                  (p + "post_attention_layernorm.weight", (E,), "norm"),
                  (p + "post_attention_layernorm.bias", (E,), "bias"),
                  (p + "attention.bias", (1, 1, P, P), "causal_bool"),
                  (p + "attention.masked_bias", (), "masked_bias"),
                  (p + "attention.rotary_emb.inv_freq", (E // H // 4 // 2,), "inv_freq"),
                  (p + "attention.query_key_value.weight", (3 * E, E), "linear"),
                  (p + "attention.query_key_value.bias", (3 * E,), "bias"),
                  (p + "attention.dense.weight", (E, E), "linear"),
                  (p + "attention.dense.bias", (E,), "bias"),
                  (p + "mlp.dense_h_to_4h.weight", (F, E), "linear"),
                  (p + "mlp.dense_h_to_4h.bias", (F,), "bias"),
                  (p + "mlp.dense_4h_to_h.weight", (E, F), "linear"),
                  (p + "mlp.dense_4h_to_h.bias", (E,), "bias")]
        T += [("gpt_neox.final_layer_norm.weight", (E,), "norm"),
              ("gpt_neox.final_layer_norm.bias", (E,), "bias"),
              ("embed_out.weight", (V, E), "output")]
    elif name in ("llama-gqa-tied", "qwen2-bias"):
        KV, F, P, D = 2, 160, 128, E // H
        qwen = name == "qwen2-bias"
        V = 320 if qwen else N_TOK
        cfg = {"architectures": ["Qwen2ForCausalLM" if qwen else "LlamaForCausalLM"],
               "attention_dropout": 0.0, "bos_token_id": EOT, "eos_token_id": EOT,
               "hidden_act": "silu", "hidden_size": E, "initializer_range": 0.02,
               "intermediate_size": F, "max_position_embeddings": P,
               "model_type": "qwen2" if qwen else "llama",
               "num_attention_heads": H, "num_hidden_layers": L,
               "num_key_value_heads": KV, "rms_norm_eps": 1e-05,
               "rope_scaling": None, "rope_theta": 1000000.0 if qwen else 10000.0,
               "tie_word_embeddings": not qwen, "transformers_version": "4.40.0",
               "use_cache": True, "vocab_size": V}
        if qwen:
            cfg.update({"max_window_layers": L, "sliding_window": P,
                        "use_sliding_window": False})
        else:
            cfg.update({"attention_bias": False, "mlp_bias": False,
                        "pretraining_tp": 1})
        T.append(("model.embed_tokens.weight", (V, E), "output" if not qwen else "embed"))
        for i in range(L):
            p = "model.layers.%d." % i
            T += [(p + "input_layernorm.weight", (E,), "norm"),
                  (p + "self_attn.q_proj.weight", (H * D, E), "linear"),
                  (p + "self_attn.k_proj.weight", (KV * D, E), "linear"),
                  (p + "self_attn.v_proj.weight", (KV * D, E), "linear")]
            if qwen:
                T += [(p + "self_attn.q_proj.bias", (H * D,), "bias"),
                      (p + "self_attn.k_proj.bias", (KV * D,), "bias"),
                      (p + "self_attn.v_proj.bias", (KV * D,), "bias")]
            T += [(p + "self_attn.o_proj.weight", (E, H * D), "linear"),
                  (p + "post_attention_layernorm.weight", (E,), "norm"),
                  (p + "mlp.gate_proj.weight", (F, E), "linear"),
                  (p + "mlp.up_proj.weight", (F, E), "linear"),
                  (p + "mlp.down_proj.weight", (E, F), "linear")]
        T.append(("model.norm.weight", (E,), "norm"))
        if qwen:
            T.append(("lm_head.weight", (V, E), "output"))
    elif name == "gpt2-small":
        V, P = N_TOK, 128
        cfg = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
               "attn_pdrop": 0.1, "bos_token_id": EOT, "embd_pdrop": 0.1,
               "eos_token_id": EOT, "initializer_range": 0.02,
               "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": P,
               "n_embd": E, "n_head": H, "n_inner": None, "n_layer": L,
               "n_positions": P, "resid_pdrop": 0.1, "scale_attn_weights": True,
               "transformers_version": "4.24.0", "use_cache": True, "vocab_size": V}
        T += [("wte.weight", (V, E), "output"), ("wpe.weight", (P, E), "pos")]
        for i in range(L):
            p = "h.%d." % i
            T += [(p + "ln_1.weight", (E,), "norm"), (p + "ln_1.bias", (E,), "bias"),
                  (p + "attn.bias", (1, 1, P, P), "causal_float"),
                  (p + "attn.c_attn.weight", (E, 3 * E), "conv1d"),
                  (p + "attn.c_attn.bias", (3 * E,), "bias"),
                  (p + "attn.c_proj.weight", (E, E), "conv1d"),
                  (p + "attn.c_proj.bias", (E,), "bias"),
                  (p + "ln_2.weight", (E,), "norm"), (p + "ln_2.bias", (E,), "bias"),
                  (p + "mlp.c_fc.weight", (E, 4 * E), "conv1d"),
                  (p + "mlp.c_fc.bias", (4 * E,), "bias"),
                  (p + "mlp.c_proj.weight", (4 * E, E), "conv1d"),
                  (p + "mlp.c_proj.bias", (E,), "bias")]
        T += [("ln_f.weight", (E,), "norm"), ("ln_f.bias", (E,), "bias")]
    else:
        raise SystemExit("unknown model " + name)
    return cfg, T


# Weight scales: N(0, 0.02^2) with a gain per kind, so that attention is not
# uniform and the next-token distribution not flat: linear layers
# std 1/sqrt(fan_in) (0.125 at 64 inputs, 0.0625 at 256), input embeddings
# 0.5, output (and tied) embeddings 0.25, GPT-2 positions 0.1; norm weights
# 1 + N(0, 0.1^2); biases N(0, 0.05^2).
def draw(rs, shape, kind):
    if kind == "linear":       # torch Linear: [out, in]
        return rs.normal(0.0, 1.0 / math.sqrt(shape[1]), shape)
    if kind == "conv1d":       # GPT-2 Conv1D: [in, out]
        return rs.normal(0.0, 1.0 / math.sqrt(shape[0]), shape)
    if kind == "embed":
        return rs.normal(0.0, 0.5, shape)
    if kind == "output":
        return rs.normal(0.0, 0.25, shape)
    if kind == "pos":
        return rs.normal(0.0, 0.1, shape)
    if kind == "norm":
        return 1.0 + rs.normal(0.0, 0.1, shape)
    if kind == "bias":
        return rs.normal(0.0, 0.05, shape)
    raise ValueError(kind)


def buffer_tensor(name, shape, kind, dtype, cfg):
    """(dtype, bytes) of the non-weight buffers real checkpoints carry."""
    if kind == "causal_bool":    # GPT-NeoX attention.bias: BOOL tril
        return "BOOL", tensor_bytes(np.tril(np.ones(shape, dtype=bool)), "BOOL")
    if kind == "causal_float":   # GPT-2 attn.bias: a float tril in the model's dtype
        return dtype, tensor_bytes(np.tril(np.ones(shape)), dtype)
    if kind == "masked_bias":    # scalar -1e9, kept F32 (F16 has no -1e9)
        return "F32", tensor_bytes(np.array(-1e9), "F32")
    if kind == "inv_freq":       # F32 as in Pythia's files
        rot = shape[0] * 2
        base = cfg["rotary_emb_base"]
        inv = 1.0 / (base ** (np.arange(0, rot, 2, dtype=np.float64) / rot))
        return "F32", tensor_bytes(inv, "F32")
    return None


def write_model(out, name, dtype, shards=1):
    cfg, spec = model_spec(name)
    cfg = dict(cfg, torch_dtype=TORCH_DTYPE[dtype])
    rs = np.random.RandomState(SEEDS[name])
    tensors = []
    for tname, shape, kind in spec:
        buf = buffer_tensor(tname, shape, kind, dtype, cfg)
        if buf:
            tensors.append((tname, buf[0], shape, buf[1]))
            continue
        w = draw(rs, shape, kind).astype(np.float32)  # the F32 master weights
        tensors.append((tname, dtype, shape, tensor_bytes(w, dtype)))
    d = os.path.join(out, "%s-%s%s" % (name, dtype.lower(),
                                       "-sharded" if shards > 1 else ""))
    os.makedirs(d, exist_ok=True)
    for fn in os.listdir(d):
        os.remove(os.path.join(d, fn))
    tensors.sort(key=lambda t: t[0])
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors)
    else:
        per = (len(tensors) + shards - 1) // shards
        wmap = {}
        for s in range(shards):
            fn = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
            part = tensors[s * per:(s + 1) * per]
            write_safetensors(os.path.join(d, fn), part)
            for t in part:
                wmap[t[0]] = fn
        index = {"metadata": {"total_size": sum(len(t[3]) for t in tensors)},
                 "weight_map": dict(sorted(wmap.items()))}
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=2)
        f.write("\n")
    tok, tcfg, _ = make_tokenizer()
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2)
        f.write("\n")
    return d

# --------------------------------------------------------------------------
# The float64 forward pass, from the architectures' definitions.


def forward(cfg, w, tokens, gelu_override=None):
    """logits [T, vocab_size] (float64 torch tensor) of token ids."""
    import torch
    W = {k: torch.from_numpy(np.ascontiguousarray(v[1])).to(torch.float64)
         for k, v in w.items() if v[0] in ("F64", "F32", "F16", "BF16")}
    arch = cfg["architectures"][0]
    ids = torch.tensor(tokens, dtype=torch.long)
    T = len(tokens)
    pos = torch.arange(T, dtype=torch.float64)

    def layer_norm(x, g, b, eps):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + eps) * g + b

    def rms_norm(x, g, eps):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g

    def gelu(x, kind):
        if kind == "gelu":  # transformers' "gelu": exact, erf
            return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
        if kind in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) *
                                               (x + 0.044715 * x ** 3)))
        raise SystemExit("activation %r not handled" % kind)

    def rope(x, n_rot, base):
        """x [T, heads, D]: rotate_half on the first n_rot dims."""
        if n_rot == 0:
            return x
        inv = 1.0 / (base ** (torch.arange(0, n_rot, 2, dtype=torch.float64) / n_rot))
        ang = pos[:, None] * inv[None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)[:, None, :]
        sin = torch.cat([ang.sin(), ang.sin()], -1)[:, None, :]
        xr, xp = x[..., :n_rot], x[..., n_rot:]
        half = n_rot // 2
        rot = torch.cat([-xr[..., half:], xr[..., :half]], -1)
        return torch.cat([xr * cos + rot * sin, xp], -1)

    def attention(q, k, v):
        """q [T, H, D], k/v [T, KV, D] -> [T, H*D], causal."""
        H, KV, D = q.shape[1], k.shape[1], q.shape[2]
        k = k.repeat_interleave(H // KV, dim=1)
        v = v.repeat_interleave(H // KV, dim=1)
        s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        s = s.masked_fill(~mask, float("-inf"))
        p = torch.softmax(s, -1)
        return torch.einsum("hts,shd->thd", p, v).reshape(T, H * D)

    def lin(x, name, bias=True):
        y = x @ W[name + ".weight"].T
        if bias and (name + ".bias") in W:
            y = y + W[name + ".bias"]
        return y

    if arch == "GPTNeoXForCausalLM":
        E, H = cfg["hidden_size"], cfg["num_attention_heads"]
        D = E // H
        n_rot = int(D * cfg.get("rotary_pct", cfg.get("partial_rotary_factor", 1.0)))
        base = cfg.get("rotary_emb_base", cfg.get("rope_theta", 10000))
        eps = cfg.get("layer_norm_eps", 1e-5)
        act = gelu_override or cfg.get("hidden_act", "gelu")
        x = W["gpt_neox.embed_in.weight"][ids]
        for i in range(cfg["num_hidden_layers"]):
            p = "gpt_neox.layers.%d." % i
            a_in = layer_norm(x, W[p + "input_layernorm.weight"],
                              W[p + "input_layernorm.bias"], eps)
            qkv = lin(a_in, p + "attention.query_key_value").view(T, H, 3 * D)
            q, k, v = qkv[..., :D], qkv[..., D:2 * D], qkv[..., 2 * D:]
            att = lin(attention(rope(q, n_rot, base), rope(k, n_rot, base), v),
                      p + "attention.dense")

            def mlp(h):
                return lin(gelu(lin(h, p + "mlp.dense_h_to_4h"), act), p + "mlp.dense_4h_to_h")
            if cfg.get("use_parallel_residual", True):
                m_in = layer_norm(x, W[p + "post_attention_layernorm.weight"],
                                  W[p + "post_attention_layernorm.bias"], eps)
                x = x + att + mlp(m_in)
            else:
                x = x + att
                x = x + mlp(layer_norm(x, W[p + "post_attention_layernorm.weight"],
                                       W[p + "post_attention_layernorm.bias"], eps))
        x = layer_norm(x, W["gpt_neox.final_layer_norm.weight"],
                       W["gpt_neox.final_layer_norm.bias"], eps)
        out = W.get("embed_out.weight")
        if out is None or cfg.get("tie_word_embeddings", False):
            out = W["gpt_neox.embed_in.weight"]
        return x @ out.T
    if arch in ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"):
        if cfg.get("rope_scaling"):
            raise SystemExit("rope_scaling not handled")
        E, H = cfg["hidden_size"], cfg["num_attention_heads"]
        KV = cfg.get("num_key_value_heads", H)
        D = cfg.get("head_dim") or E // H
        base = cfg.get("rope_theta", 10000.0)
        eps = cfg.get("rms_norm_eps", 1e-6)
        if cfg.get("hidden_act", "silu") != "silu":
            raise SystemExit("hidden_act %r not handled" % cfg["hidden_act"])
        x = W["model.embed_tokens.weight"][ids]
        for i in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % i
            h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
            q = lin(h, p + "self_attn.q_proj").view(T, H, D)
            k = lin(h, p + "self_attn.k_proj").view(T, KV, D)
            v = lin(h, p + "self_attn.v_proj").view(T, KV, D)
            x = x + lin(attention(rope(q, D, base), rope(k, D, base), v),
                        p + "self_attn.o_proj")
            h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
            g = lin(h, p + "mlp.gate_proj")
            x = x + lin(g * torch.sigmoid(g) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        x = rms_norm(x, W["model.norm.weight"], eps)
        out = W.get("lm_head.weight")
        if out is None or cfg.get("tie_word_embeddings", False):
            out = W["model.embed_tokens.weight"]
        return x @ out.T
    if arch == "GPT2LMHeadModel":
        pre = "transformer." if "transformer.wte.weight" in W else ""
        E, H = cfg["n_embd"], cfg["n_head"]
        D = E // H
        eps = cfg.get("layer_norm_epsilon", 1e-5)
        act = gelu_override or cfg.get("activation_function", "gelu_new")
        x = W[pre + "wte.weight"][ids] + W[pre + "wpe.weight"][:T]

        def conv(h, name):  # Conv1D: weight [in, out]
            return h @ W[name + ".weight"] + W[name + ".bias"]
        for i in range(cfg["n_layer"]):
            p = pre + "h.%d." % i
            h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
            qkv = conv(h, p + "attn.c_attn")
            q, k, v = (qkv[:, j * E:(j + 1) * E].reshape(T, H, D) for j in range(3))
            x = x + conv(attention(q, k, v), p + "attn.c_proj")
            h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
            x = x + conv(gelu(conv(h, p + "mlp.c_fc"), act), p + "mlp.c_proj")
        x = layer_norm(x, W[pre + "ln_f.weight"], W[pre + "ln_f.bias"], eps)
        return x @ W[pre + "wte.weight"].T
    raise SystemExit("architecture %s not handled" % arch)


def r10(x):
    """10 significant digits: far below any tolerance, and the same from
    another torch build, whose float64 sums may differ in the last bits."""
    return float("%.10g" % x)


def reference(d, seqs):
    """The reference of checkpoint directory d for the token sequences."""
    import torch
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    w = read_checkpoint(d)
    dtypes = sorted({v[0] for k, v in w.items()
                     if k.endswith(".weight") and v[0] in ("F32", "F16", "BF16", "F64")})
    res = {"dir": os.path.basename(os.path.normpath(d)),
           "architecture": cfg["architectures"][0],
           "weights_dtype": "/".join(dtypes),
           "vocab_size": cfg["vocab_size"], "sequences": []}
    arch = cfg["architectures"][0]
    act = cfg.get("hidden_act") if arch == "GPTNeoXForCausalLM" else \
        cfg.get("activation_function") if arch == "GPT2LMHeadModel" else None
    if act is not None:
        res["gelu"] = act
    worst_tanh = 0.0
    for toks in seqs:
        lp = torch.log_softmax(forward(cfg, w, toks), -1)
        nxt = [lp[i, toks[i + 1]].item() for i in range(len(toks) - 1)]
        res["sequences"].append({"tokens": list(toks),
                                 "next_logprobs": [r10(v) for v in nxt],
                                 "last_logprobs": [r10(v) for v in lp[-1].tolist()]})
        if act == "gelu":  # what the tanh approximation would change
            lpt = torch.log_softmax(forward(cfg, w, toks, gelu_override="gelu_new"), -1)
            for i in range(len(toks) - 1):
                worst_tanh = max(worst_tanh, abs(lpt[i, toks[i + 1]].item() - nxt[i]))
    if act == "gelu":
        res["next_logprob_change_with_tanh_gelu"] = float("%.3g" % worst_tanh)
    return res


def default_seqs(n_tok, seed=TOKEN_SEED):
    rs = np.random.RandomState(seed)
    return [[int(t) for t in rs.randint(0, n_tok, n)] for n in SEQ_LENS]


def header(argv):
    import torch
    return {"tool": "tools/hf_reference.py",
            "command": " ".join(["tools/hf_reference.py"] + argv),
            "torch": torch.__version__, "numpy": np.__version__,
            "precision": "float64"}


def cmd_generate(args, argv):
    out = args.out
    os.makedirs(out, exist_ok=True)
    seqs = default_seqs(EOT)  # ids < 299: no <|endoftext|>
    for name in SEEDS:
        ref = dict(header(argv), model=name, seed=SEEDS[name],
                   token_seed=TOKEN_SEED, variants={})
        variants = [("F32", 1), ("F16", 1), ("BF16", 1)]
        if name == "pythia-like":
            variants.append(("F32", 2))
        for dtype, shards in variants:
            d = write_model(out, name, dtype, shards)
            r = reference(d, seqs)
            ref["variants"][r["dir"]] = r
            print("%-28s %s" % (r["dir"], " ".join(
                "%.4f" % (-sum(s["next_logprobs"]) / len(s["next_logprobs"]))
                for s in r["sequences"])), file=sys.stderr)
        os.makedirs(os.path.join(out, name), exist_ok=True)
        with open(os.path.join(out, name, "reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
            f.write("\n")
    tok, _, _ = make_tokenizer()
    cases = dict(header(argv), note="ids of each text under tokenizer.json "
                 "(the same in every directory), no special tokens, by the "
                 "tool's own GPT-2 BPE", cases=[
                     {"text": t, "ids": bpe_encode(tok, t)} for t in TOKENIZER_CASES])
    del cases["torch"], cases["precision"]
    with open(os.path.join(out, "tokenizer-cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


def cmd_reference(args, argv):
    with open(os.path.join(args.dir, "config.json")) as f:
        cfg = json.load(f)
    if args.tokens:
        seqs = [[int(t) for t in s.split(",")] for s in args.tokens]
    else:
        seqs = default_seqs(min(cfg["vocab_size"], 256))
    r = dict(header(argv), **reference(args.dir, seqs))
    text = json.dumps(r, indent=1) + "\n"
    if args.o:
        with open(args.o, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="write the test checkpoints and references")
    g.add_argument("--out", default="tests/data/hf")
    r = sub.add_parser("reference", help="the reference of any checkpoint directory")
    r.add_argument("dir")
    r.add_argument("--tokens", nargs="*", help="sequences of comma-separated ids")
    r.add_argument("-o", help="output file (default stdout)")
    args = ap.parse_args(argv)
    if args.cmd == "generate":
        cmd_generate(args, argv)
    else:
        cmd_reference(args, argv)


if __name__ == "__main__":
    main(sys.argv[1:])

"""train.py - trains one member size of the demo family, resumably.

Owns the optimisation loop and the checkpoint files under WORK/<size>/:
  state.pt      model + optimiser + step, rewritten every SAVE_EVERY steps
                (rerunning the same command continues from it)
  step<N>.pt    model weights at the log-spaced milestones N = S/8, S/4,
                S/2, S (what export_gguf.py turns into family members)

Every size reads the same token stream (WORK/train.bin from gen_data.py) in
the same order: step s uses the s-th block of BATCH windows of CTX+1 tokens,
so "tokens seen" is step * BATCH * CTX for every member.

Usage: train.py WORK SIZE [--steps S] [--batch B] [--threads N]
"""
import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from model import LM, CTX, n_params
from vocab import N_VOCAB

SAVE_EVERY = 25
# d96l3 ran at 2.5e-3 in the first family and ended no better than d48l3
# (held-out loss 0.253 vs 0.242): under-trained, so it now shares d48l3's peak.
PEAK_LR = {"d8l1": 1e-2, "d24l2": 6e-3, "d48l3": 4e-3, "d96l3": 4e-3}


def milestones(steps):
    return sorted({steps // 8, steps // 4, steps // 2, steps})


def lr_at(step, steps, peak):
    warm = max(1, steps // 20)
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def batch_at(data, step, B):
    n = CTX + 1
    start = step * B * CTX
    idx = start + np.arange(B)[:, None] * CTX + np.arange(n)[None, :]
    x = torch.from_numpy(data[idx].astype(np.int64))
    return x[:, :-1], x[:, 1:]


def make_opt(model, lr):
    decay = [p for p in model.parameters() if p.dim() == 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                              {"params": other, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.95), eps=1e-8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("size")
    ap.add_argument("--steps", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    data = np.fromfile(os.path.join(a.work, "train.bin"), dtype=np.uint16)
    need = a.steps * a.batch * CTX + 1
    if data.size < need:
        raise SystemExit("train.bin has %d tokens, %d steps need %d"
                         % (data.size, a.steps, need))
    out = os.path.join(a.work, a.size)
    os.makedirs(out, exist_ok=True)
    model = LM(a.size)
    peak = PEAK_LR[a.size]
    opt = make_opt(model, peak)
    step = 0
    state_path = os.path.join(out, "state.pt")
    if os.path.exists(state_path):
        st = torch.load(state_path)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        torch.set_rng_state(st["rng"])
    log = open(os.path.join(a.work, a.size + ".log"), "a")
    log.write("# size %s params %d steps %d batch %d ctx %d start %d\n"
              % (a.size, n_params(a.size), a.steps, a.batch, CTX, step))
    marks = milestones(a.steps)
    t0, tok0, acc, last = time.time(), step, 0.0, step
    while step < a.steps:
        lr = lr_at(step, a.steps, peak)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch_at(data, step, a.batch)
        loss = F.cross_entropy(model(x).view(-1, N_VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc += loss.item()
        if step % 10 == 0 or step in marks or step == a.steps:
            dt = time.time() - t0
            tps = (step - tok0) * a.batch * CTX / max(dt, 1e-9)
            log.write("step %d loss %.4f lr %.2e tok/s %.0f time %.0f\n"
                      % (step, acc / (step - last), lr, tps, time.time()))
            log.flush()
            acc, last = 0.0, step
        if step in marks:
            torch.save({"model": model.state_dict(), "step": step,
                        "tokens": step * a.batch * CTX, "size": a.size},
                       os.path.join(out, "step%d.pt" % step))
        if step % SAVE_EVERY == 0 or step == a.steps:
            tmp = state_path + ".tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                        "step": step, "rng": torch.get_rng_state()}, tmp)
            os.replace(tmp, state_path)
    log.write("# done %s at step %d\n" % (a.size, step))
    log.close()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Float64 training reference for the trainer's golden test (llm.c's pattern).

Usage:  /usr/bin/python3 reference_training.py FIXTURES_DIR OUT_JSON [--check COMMITTED_JSON]

With --check it also verifies that the committed golden file still equals
what this script computes (ctest runs that where python3-torch is installed).

For the `tiny` fixture model and a fixed batch it computes, with torch
autograd in float64 on Hugging Face's GPT-2 math (eval mode: no dropout;
tied LM head): the mean cross-entropy loss, every parameter's gradient (all
values of small tensors, a fixed sample of large ones, plus L2 norm and max
|g|), and the losses of 10 AdamW steps on that batch with torch.optim.AdamW
(decoupled weight decay on matrices only, not on biases or LayerNorm), global
gradient-norm clipping as torch.nn.utils.clip_grad_norm_, constant lr.
Needs Debian's python3-torch and python3-numpy (no `transformers`).
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "model_runtime", "golden"))
from reference_gpt2 import load_model  # noqa: E402  (safetensors by hand, canonical names)

MODEL = "tiny"
B, T = 2, 16
ADAMW = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "grad_clip": 1.0, "steps": 10}
FULL_LIMIT = 1024
SAMPLE_STRIDED = 256
SAMPLE_TOP = 64


def batch(vocab):
    rows = [[(1000 * b + 37 * t * t + 11 * t + 5) % vocab for t in range(T + 1)] for b in range(B)]
    return [r[:-1] for r in rows], [r[1:] for r in rows]


class Gpt2:
    def __init__(self, cfg, weights):
        self.cfg = cfg
        self.p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in weights.items()}
        self.H = cfg["n_head"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)

    def ln(self, x, name):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + self.eps) * self.p[name + ".weight"] + self.p[name + ".bias"]

    def conv1d(self, x, name):
        return x @ self.p[name + ".weight"] + self.p[name + ".bias"]

    def logits(self, ids):
        # ids is (B, T) -> (B, T, V)
        Bn, Tn = ids.shape
        C = self.cfg["n_embd"]
        H, D = self.H, C // self.H
        x = self.p["wte.weight"][ids] + self.p["wpe.weight"][:Tn]
        mask = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
        for i in range(self.cfg["n_layer"]):
            h = self.ln(x, "h.%d.ln_1" % i)
            q, k, v = self.conv1d(h, "h.%d.attn.c_attn" % i).split(C, dim=-1)
            q, k, v = (t.view(Bn, Tn, H, D).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
            if self.cfg.get("scale_attn_by_inverse_layer_idx", False):
                s = s / float(i + 1)
            a = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
            y = (a @ v).transpose(1, 2).reshape(Bn, Tn, C)
            x = x + self.conv1d(y, "h.%d.attn.c_proj" % i)
            h = self.ln(x, "h.%d.ln_2" % i)
            g = self.conv1d(h, "h.%d.mlp.c_fc" % i)
            g = 0.5 * g * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (g + 0.044715 * g ** 3)))
            x = x + self.conv1d(g, "h.%d.mlp.c_proj" % i)
        x = self.ln(x, "ln_f")
        return x @ self.p["wte.weight"].T

    def loss(self, inputs, targets):
        lg = self.logits(inputs)
        return torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), targets.reshape(-1))


def grad_record(g):
    flat = g.reshape(-1).numpy()
    n = flat.size
    if n <= FULL_LIMIT:
        idx = list(range(n))
    else:
        step = n // SAMPLE_STRIDED
        idx = set(range(3, n, step))
        idx.update(int(i) for i in np.argsort(-np.abs(flat), kind="stable")[:SAMPLE_TOP])
        idx = sorted(idx)
    return {"numel": int(n), "norm": float(np.linalg.norm(flat)), "max_abs": float(np.abs(flat).max()),
            "index": idx, "values": [float(flat[i]) for i in idx]}


def main():
    fixtures, out = sys.argv[1], sys.argv[2]
    cfg, weights = load_model(os.path.join(fixtures, MODEL))
    inputs, targets = batch(cfg["vocab_size"])
    ids = torch.tensor(inputs, dtype=torch.long)
    tg = torch.tensor(targets, dtype=torch.long)

    model = Gpt2(cfg, weights)
    loss = model.loss(ids, tg)
    loss.backward()
    grads = {k: grad_record(p.grad.detach()) for k, p in sorted(model.p.items())}

    model = Gpt2(cfg, weights)
    decay = [p for k, p in sorted(model.p.items()) if p.dim() >= 2]
    no_decay = [p for k, p in sorted(model.p.items()) if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    losses = []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad()
        l = model.loss(ids, tg)
        l.backward()
        torch.nn.utils.clip_grad_norm_(list(model.p.values()), ADAMW["grad_clip"])
        opt.step()
        losses.append(float(l))

    result = {"model": MODEL, "inputs": inputs, "targets": targets, "loss": float(loss), "grads": grads,
              "adamw": ADAMW, "adamw_losses": losses, "torch_version": torch.__version__}
    with open(out, "w") as f:
        json.dump(result, f)
        f.write("\n")
    print("loss %.6f, 10 AdamW losses %s" % (float(loss), ["%.5f" % x for x in losses]), file=sys.stderr)
    if len(sys.argv) > 4 and sys.argv[3] == "--check":
        with open(sys.argv[4]) as f:
            committed = json.load(f)
        close = lambda a, b: abs(a - b) <= 1e-9 * max(1.0, abs(b))
        ok = close(committed["loss"], result["loss"]) and all(
            close(a, b) for a, b in zip(committed["adamw_losses"], result["adamw_losses"]))
        for k, g in result["grads"].items():
            c = committed["grads"].get(k)
            ok = ok and c is not None and c["index"] == g["index"] and all(
                abs(a - b) <= 1e-9 * max(g["max_abs"], 1e-30) for a, b in zip(c["values"], g["values"]))
        if not ok:
            print("the committed golden file differs from what the reference computes now", file=sys.stderr)
            sys.exit(1)
        print("committed golden file is current", file=sys.stderr)


if __name__ == "__main__":
    main()

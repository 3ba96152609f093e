#!/usr/bin/env python3
"""The baseline inkstream is compared against: a plain Python/PyTorch
Hugging-Face-style GPT-2 generation loop (Conv1D as addmm, KV cache grown by
torch.cat, top-k/top-p sampling with torch.multinomial), on the same
checkpoint, measuring the same figures as generation_bench.

Usage: /usr/bin/python3 bench/pytorch_gpt2_bench.py --model DIR --dtype bf16|fp32
       [--threads 2] [--prompt 256] [--decode 64] [--n 1,4] [--repeats 3]
Prints one JSON object.
"""
import argparse
import json
import math
import os
import resource
import struct
import time

import numpy as np
import torch


def load(folder, dtype):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(folder, "model.safetensors"), "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    w = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        buf = raw[base + b:base + e]
        if info["dtype"] == "BF16":
            t = torch.frombuffer(bytearray(buf), dtype=torch.bfloat16)
        else:
            t = torch.frombuffer(bytearray(buf), dtype={"F32": torch.float32, "F16": torch.float16}[info["dtype"]])
        w[name.removeprefix("transformer.")] = t.reshape(info["shape"]).to(dtype)
    return cfg, w


class GPT2:
    def __init__(self, cfg, w):
        self.cfg, self.w = cfg, w
        self.H = cfg["n_head"]
        self.L = cfg["n_layer"]

    def conv1d(self, x, name):
        # x is (B, T, IN) -> (B, T, OUT), Hugging Face Conv1D
        shape = x.shape[:-1] + (self.w[name + ".weight"].shape[1],)
        return torch.addmm(self.w[name + ".bias"], x.reshape(-1, x.shape[-1]), self.w[name + ".weight"]).view(shape)

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.w[name + ".weight"], self.w[name + ".bias"], 1e-5)

    def forward(self, ids, past):
        # ids is (B, T); past is a list of (k, v) per layer, each (B, H, P, D), or None
        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        x = self.w["wte.weight"][ids] + self.w["wpe.weight"][P:P + T]
        C = x.shape[-1]
        D = C // self.H
        new_past = []
        for i in range(self.L):
            p = "h.%d." % i
            q, k, v = self.conv1d(self.ln(x, p + "ln_1"), p + "attn.c_attn").split(C, dim=2)
            q, k, v = (t.view(B, T, self.H, D).transpose(1, 2) for t in (q, k, v))
            if past is not None:
                k = torch.cat([past[i][0], k], dim=2)
                v = torch.cat([past[i][1], v], dim=2)
            new_past.append((k, v))
            att = (q @ k.transpose(-2, -1)) / math.sqrt(D)
            if T > 1:
                mask = torch.ones(T, P + T, dtype=torch.bool).tril(P)
                att = att.masked_fill(~mask, float("-inf"))
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C)
            x = x + self.conv1d(y, p + "attn.c_proj")
            h = torch.nn.functional.gelu(self.conv1d(self.ln(x, p + "ln_2"), p + "mlp.c_fc"), approximate="tanh")
            x = x + self.conv1d(h, p + "mlp.c_proj")
        x = self.ln(x, "ln_f")
        return x[:, -1] @ self.w["wte.weight"].t(), new_past


def sample(logits, top_k=40, top_p=0.95, temperature=0.8):
    logits = logits.float() / temperature
    v, i = logits.topk(top_k, dim=-1)
    probs = v.softmax(-1)
    cum = probs.cumsum(-1)
    probs[(cum - probs) > top_p] = 0
    choice = torch.multinomial(probs / probs.sum(-1, keepdim=True), 1)
    return i.gather(-1, choice)  # (B, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=256)
    ap.add_argument("--decode", type=int, default=64)
    ap.add_argument("--n", default="1,4")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    t0 = time.perf_counter()
    cfg, w = load(a.model, dtype)
    model = GPT2(cfg, w)
    load_ms = (time.perf_counter() - t0) * 1000
    prompt = torch.tensor([[(i * 7919 + 13) % 50000 for i in range(a.prompt)]])
    out = {"model": a.model, "dtype": a.dtype, "threads": a.threads, "load_ms": load_ms,
           "prompt_tokens": a.prompt, "decode_tokens": a.decode, "implementation": "pytorch " + torch.__version__}
    with torch.inference_mode():
        times = []
        for r in range(a.repeats + 1):
            t0 = time.perf_counter()
            model.forward(prompt, None)
            if r:
                times.append((time.perf_counter() - t0) * 1000)
        out["prefill_ms"] = sorted(times)[len(times) // 2]
        for n in [int(s) for s in a.n.split(",")]:
            rates = []
            for _ in range(a.repeats):
                logits, past = model.forward(prompt[:, -32:], None)
                past = [(k.expand(n, -1, -1, -1).contiguous(), v.expand(n, -1, -1, -1).contiguous()) for k, v in past]
                logits = logits.expand(n, -1)
                t0 = time.perf_counter()
                for _ in range(a.decode):
                    nxt = sample(logits)
                    logits, past = model.forward(nxt, past)
                rates.append(n * a.decode / (time.perf_counter() - t0))
            out["decode_tok_s_n%d" % n] = sorted(rates)[len(rates) // 2]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


if __name__ == "__main__":
    main()

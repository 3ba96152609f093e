#!/usr/bin/env python3
"""Float64 reference GPT-2 forward pass for the inkstream golden tests.

Usage:  /usr/bin/python3 reference_gpt2.py FIXTURES_DIR OUT_JSON [--no-float32-check]

FIXTURES_DIR is the output of tests/fixtures/make_fixtures.py.  This is a
faithful re-implementation of Hugging Face's GPT2LMHeadModel forward in eval
mode (no dropout, no KV cache), written against torch + numpy only (the
`transformers` package is not required):

  h   = wte[ids] + wpe[0..T-1]
  for each block i:  h = h + attn_i(ln_1(h));  h = h + mlp_i(ln_2(h))
  logits = ln_f(h) @ wte.T                        (tied LM head)

  Conv1D:     y = x @ W + b, W stored (in, out)
  LayerNorm:  biased variance, eps = config.layer_norm_epsilon
  gelu_new:   0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3)))
  attention:  scores = q k^T / sqrt(head_dim) [/ (i+1) if scale_attn_by_inverse_layer_idx],
              causal mask, softmax, @ v, merge heads, c_proj.

Weights are read by parsing the safetensors files by hand with numpy
(F32/F16/BF16; keys with or without the `transformer.` prefix; attn.bias /
attn.masked_bias buffers and lm_head.weight are ignored -- the head is tied)
and cast to float64: the golden values are float64 results computed from the
weights exactly as stored (so `tiny-bf16` uses the bf16-rounded weights).

For every model and prompt the output records a sample of the last position's
logits (`logit_ids` / `logits_sample`: the 256 top ids plus 256 ids at a fixed
stride, sorted), `logits_max_abs` over the full row, the top-5, 20 greedy
tokens (full forward recomputed every step, argmax ties -> lowest id) and the
top1-top2 margin at each greedy step.
"""

import argparse
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

MODELS = ["tiny", "tiny-bf16", "deep-scaled", "wide"]

PROMPTS = [
    [15496, 995],                                                   # "Hello world"
    [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13],     # "The quick brown fox jumps over the lazy dog."
    [50256],                                                        # <|endoftext|>
    # 40 fixed ids spread over the vocabulary
    [0, 1212, 2893, 4711, 6180, 7919, 9001, 10453, 12007, 13337,
     14999, 16384, 17711, 19283, 20480, 22222, 23456, 24999, 26600, 28113,
     29715, 31337, 32768, 34001, 35813, 37200, 38911, 40404, 41999, 43210,
     44777, 45999, 47123, 48000, 48765, 49327, 49900, 50100, 50255, 50256],
]

N_GREEDY = 20
N_TOP_SAMPLE = 256
N_STRIDE_SAMPLE = 256

ST_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": None, "F64": "<f8"}


# --------------------------------------------------------------------------
# safetensors loading (by hand)
# --------------------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        shape = tuple(info["shape"])
        buf = data[b:e]
        dt = info["dtype"]
        if dt == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view("<f4")
        else:
            arr = np.frombuffer(buf, dtype=ST_DTYPES[dt])
        count = int(np.prod(shape)) if shape else 1
        if arr.size != count:
            raise ValueError("%s: %s: size mismatch" % (path, name))
        out[name] = arr.reshape(shape).astype(np.float64)
    return out


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for fn in files:
        tensors.update(read_safetensors(os.path.join(folder, fn)))
    w = {}
    for k, v in tensors.items():
        if k.startswith("transformer."):
            k = k[len("transformer."):]
        if k.endswith(".attn.bias") or k.endswith(".attn.masked_bias") or k == "lm_head.weight":
            continue
        w[k] = v
    return cfg, w


# --------------------------------------------------------------------------
# forward
# --------------------------------------------------------------------------

class GPT2Ref:
    def __init__(self, cfg, w, dtype=torch.float64):
        self.cfg = cfg
        self.dtype = dtype
        self.t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dtype) for k, v in w.items()}
        self.n_layer = cfg["n_layer"]
        self.n_head = cfg["n_head"]
        self.n_embd = cfg["n_embd"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.scale_inv_layer = bool(cfg.get("scale_attn_by_inverse_layer_idx", False))
        assert cfg.get("activation_function", "gelu_new") == "gelu_new"

    def ln(self, x, p):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)          # biased variance
        return (x - mu) / torch.sqrt(var + self.eps) * self.t[p + ".weight"] + self.t[p + ".bias"]

    def conv1d(self, x, p):
        return x @ self.t[p + ".weight"] + self.t[p + ".bias"]

    @staticmethod
    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))

    def attn(self, x, i):
        T, C = x.shape
        H = self.n_head
        D = C // H
        qkv = self.conv1d(x, "h.%d.attn.c_attn" % i)
        q, k, v = qkv.split(C, dim=-1)
        q = q.view(T, H, D).transpose(0, 1)          # (H, T, D)
        k = k.view(T, H, D).transpose(0, 1)
        v = v.view(T, H, D).transpose(0, 1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        if self.scale_inv_layer:
            s = s / float(i + 1)
        mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
        s = s.masked_fill(~mask, float("-inf"))
        p = torch.softmax(s, dim=-1)
        y = (p @ v).transpose(0, 1).reshape(T, C)
        return self.conv1d(y, "h.%d.attn.c_proj" % i)

    def mlp(self, x, i):
        h = self.gelu_new(self.conv1d(x, "h.%d.mlp.c_fc" % i))
        return self.conv1d(h, "h.%d.mlp.c_proj" % i)

    def last_logits(self, ids):
        ids_t = torch.tensor(ids, dtype=torch.long)
        T = len(ids)
        x = self.t["wte.weight"][ids_t] + self.t["wpe.weight"][:T]
        for i in range(self.n_layer):
            x = x + self.attn(self.ln(x, "h.%d.ln_1" % i), i)
            x = x + self.mlp(self.ln(x, "h.%d.ln_2" % i), i)
        x = self.ln(x, "ln_f")
        return (x[-1] @ self.t["wte.weight"].T).numpy().astype(np.float64)


# --------------------------------------------------------------------------
# golden cases
# --------------------------------------------------------------------------

def stride_ids(vocab):
    step = vocab // N_STRIDE_SAMPLE
    return [(7 + j * step) % vocab for j in range(N_STRIDE_SAMPLE)]


def top_order(row):
    """Indices sorted by logit descending, ties -> lowest id first."""
    return np.lexsort((np.arange(row.size), -row))


def run_case(model, prompt):
    row = model.last_logits(prompt)
    vocab = row.size
    order = top_order(row)
    ids = set(stride_ids(vocab))
    want = N_TOP_SAMPLE + N_STRIDE_SAMPLE
    for t in order:
        if len(ids) >= want:
            break
        ids.add(int(t))
    logit_ids = sorted(ids)
    case = {
        "prompt_ids": list(prompt),
        "logit_ids": logit_ids,
        "logits_sample": [float(row[i]) for i in logit_ids],
        "logits_max_abs": float(np.abs(row).max()),
        "top5": [[int(i), float(row[i])] for i in order[:5]],
    }
    seq = list(prompt)
    greedy, margins = [], []
    r = row
    for step in range(N_GREEDY):
        if step > 0:
            r = model.last_logits(seq)
        best = int(np.argmax(r))                 # first max == lowest id
        second = np.max(np.delete(r, best))
        greedy.append(best)
        margins.append(float(r[best] - second))
        seq.append(best)
    case["greedy_20"] = greedy
    case["greedy_margins"] = margins
    return case, row


def main():
    ap = argparse.ArgumentParser(description="float64 GPT-2 reference for golden tests")
    ap.add_argument("fixtures_dir")
    ap.add_argument("out_json")
    ap.add_argument("--no-float32-check", action="store_true",
                    help="skip the float32-vs-float64 sanity figure for `tiny`")
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()

    result = {
        "generator": "tests/model_runtime/golden/reference_gpt2.py",
        "description": "float64 reference GPT2LMHeadModel forward (eval) on random fixtures "
                       "from tests/fixtures/make_fixtures.py; logits are for the last prompt position",
        "sample_rule": "logit_ids = sorted(union(256 stride ids (7 + j*(V//256)) % V, "
                       "top ids by logit until 512 total))",
        "greedy_rule": "20 steps, full forward recomputed each step, argmax ties -> lowest id",
        "models": {},
    }
    rows_f64 = {}
    for name in MODELS:
        cfg, w = load_model(os.path.join(args.fixtures_dir, name))
        model = GPT2Ref(cfg, w)
        cases = []
        for prompt in PROMPTS:
            case, row = run_case(model, prompt)
            cases.append(case)
            rows_f64[(name, tuple(prompt))] = (row, case["greedy_20"])
        result["models"][name] = {
            "config": {k: cfg[k] for k in ("n_layer", "n_head", "n_embd", "n_positions",
                                           "vocab_size", "layer_norm_epsilon",
                                           "scale_attn_by_inverse_layer_idx", "torch_dtype")},
            "min_greedy_margin": min(m for c in cases for m in c["greedy_margins"]),
            "cases": cases,
        }

    with open(args.out_json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")

    summary = ", ".join("%s %.4g" % (n, result["models"][n]["min_greedy_margin"]) for n in MODELS)
    print("reference_gpt2: min greedy margin per model: " + summary)
    low = [n for n in MODELS if result["models"][n]["min_greedy_margin"] < 1e-3]
    if low:
        print("WARNING: greedy margin < 1e-3 for %s: ties possible" % ", ".join(low))

    if not args.no_float32_check:
        cfg, w = load_model(os.path.join(args.fixtures_dir, "tiny"))
        m32 = GPT2Ref(cfg, w, dtype=torch.float32)
        worst, same = 0.0, True
        for prompt in PROMPTS:
            ref, greedy64 = rows_f64[("tiny", tuple(prompt))]
            r32 = m32.last_logits(prompt)
            worst = max(worst, float(np.abs(r32 - ref).max() / np.abs(ref).max()))
            seq, g32 = list(prompt), []
            for _ in range(N_GREEDY):
                t = int(np.argmax(m32.last_logits(seq)))
                g32.append(t)
                seq.append(t)
            same = same and g32 == greedy64
        print("reference_gpt2: tiny float32 torch vs float64: max |diff|/max|logit| = %.3g, "
              "greedy_20 identical: %s" % (worst, same))
    print("reference_gpt2: wrote %s (%.1f s)" % (args.out_json, time.time() - t0))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Peak resident memory of a real `inkstream complete` per CPU weight format,
against issue 11's bound: 1.25 x (the weights as stored + the KV cache the
request used). What a process holds without a model's weights (libtorch's
code and pools, the tokenizer) is the peak of the same request on the tiny
test fixture, subtracted from each run.

  bench/rss_bench.py BUILD_DIR MODEL_DIR [FORMAT ...]   (default: int8 fp16 bf16 fp32)
"""
import json
import os
import subprocess
import sys

build, model = sys.argv[1], sys.argv[2]
formats = sys.argv[3:] or ["int8", "fp16", "bf16", "fp32"]
inkstream = os.path.join(build, "cli", "inkstream")
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "..", "README.md"), encoding="utf-8") as f:
    prompt = f.read()[:1400]  # ~330 tokens of prose
N, MAX_TOKENS = 4, 64


def complete(model_dir, dtype):
    """(peak RSS MB, the --json result) of one run."""
    p = subprocess.Popen([inkstream, "complete", "--model", model_dir, "--dtype", dtype, "--prompt", prompt, "--n", str(N),
                          "--max-tokens", str(MAX_TOKENS), "--temperature", "0", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"inkstream complete --dtype {dtype} failed ({status})")
    return usage.ru_maxrss / 1024, json.loads(out)


def weights_mb(dtype):
    out = subprocess.run([os.path.join(build, "bench", "generation_bench"), "--model", model, "--dtype", dtype, "--prompt", "32",
                          "--decode", "2", "--n", "1", "--repeats", "1"], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["weights_mb"]


with open(os.path.join(model, "config.json"), encoding="utf-8") as f:
    cfg = json.load(f)
floor, _ = complete(os.path.join(build, "fixtures", "tiny"), "fp32")
print(f"model {model}; prompt {len(prompt)} chars, n {N}, max_tokens {MAX_TOKENS}; a process without the weights: {floor:.0f} MB\n")
print("| format | weights MB | KV MB | peak RSS MB | over the no-weights run | bound 1.25 x (weights + KV) | ratio |")
print("|---|---|---|---|---|---|---|")
for dtype in formats:
    peak, result = complete(model, dtype)
    t = result["timings"]
    kv_bytes = 4 if result["dtype"] == "fp32" else 2  # the CPU's KV caches: bf16 except for fp32 models
    tokens = t["prompt_n"] + t["cache_n"] + N * MAX_TOKENS
    kv = tokens * cfg["n_layer"] * 2 * cfg["n_embd"] * kv_bytes / 2**20
    w = weights_mb(dtype)
    over = peak - floor
    print(f"| {result['dtype']} | {w:.0f} | {kv:.0f} | {peak:.0f} | {over:.0f} | {1.25 * (w + kv):.0f} | {over / (w + kv):.2f}x |")

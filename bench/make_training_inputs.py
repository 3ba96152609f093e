#!/usr/bin/env python3
"""Inputs of bench/training_bench.sh (random, generated, never committed).

Usage: /usr/bin/python3 bench/make_training_inputs.py OUT_DIR [--medium]
  OUT_DIR/tokens        a token dataset (inkstream shard format, 2M random ids)
  OUT_DIR/gpt2-medium   with --medium: a random GPT-2-medium-shaped (355M) fp32 checkpoint
Training speed and memory do not depend on the values.
"""
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import make_fixtures as mf  # noqa: E402


def write_shard(path, ids):
    with open(path, "wb") as f:
        f.write(b"INKTOKS\0" + struct.pack("<IIQQ", 1, 2, ids.size, 0))
        f.write(ids.astype("<u2").tobytes())


def main():
    out = sys.argv[1]
    tok_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizer", "gpt2")
    ds = os.path.join(out, "tokens")
    os.makedirs(ds, exist_ok=True)
    rs = np.random.RandomState(7)
    write_shard(os.path.join(ds, "train_000.bin"), rs.randint(0, 50257, size=2_000_000))
    write_shard(os.path.join(ds, "val_000.bin"), rs.randint(0, 50257, size=100_000))
    meta = {"format": "inkstream-tokens", "version": 1, "tokenizer": os.path.abspath(tok_dir), "vocab_size": 50257,
            "end_of_text": 50256, "token_bytes": 2,
            "train": {"documents": 1, "tokens": 2_000_000, "shards": ["train_000.bin"]},
            "val": {"documents": 1, "tokens": 100_000, "shards": ["val_000.bin"]}}
    with open(os.path.join(ds, "dataset.json"), "w") as f:
        json.dump(meta, f, indent=2)
    if "--medium" in sys.argv:
        folder = os.path.join(out, "gpt2-medium")
        os.makedirs(folder, exist_ok=True)
        mf.SCALES.update({"wte": 0.02, "wpe": 0.01, "matrix": 0.02, "bias": 0.0, "ln_weight_jitter": 0.0, "ln_bias": 0.0})
        master = mf.make_master(24, 1024, 1024, seed=355)
        mf.write_bytes(os.path.join(folder, "model.safetensors"), mf.safetensors_bytes(mf.master_tensors(master, "F32")))
        mf.write_config(folder, 24, 16, 1024, 1024, False, "F32")
        mf.copy_tokenizer(tok_dir, folder)
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes random GPT-2-small-shaped checkpoints (124M parameters) for benchmarks.

Usage: /usr/bin/python3 bench/make_gpt2_small.py OUT_DIR
Creates OUT_DIR/gpt2-small-f32 and OUT_DIR/gpt2-small-bf16 (Hugging Face
folders: config.json, model.safetensors, vocab.json, merges.txt). The weights
are random (no pretrained weights can be downloaded here) with GPT-2's
initialisation scale; speed does not depend on the values. ~750 MB in all,
so it is generated, never committed.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures"))
import make_fixtures as mf  # noqa: E402


def main():
    out = sys.argv[1]
    tok_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "tokenizer", "gpt2")
    mf.SCALES.update({"wte": 0.02, "wpe": 0.01, "matrix": 0.02, "bias": 0.0, "ln_weight_jitter": 0.0, "ln_bias": 0.0})
    master = mf.make_master(12, 768, 1024, seed=124)
    for dtype in ("F32", "BF16"):
        folder = os.path.join(out, "gpt2-small-" + dtype.lower())
        os.makedirs(folder, exist_ok=True)
        mf.write_bytes(os.path.join(folder, "model.safetensors"), mf.safetensors_bytes(mf.master_tensors(master, dtype)))
        mf.write_config(folder, 12, 12, 768, 1024, False, dtype)
        mf.copy_tokenizer(tok_dir, folder)
    print("wrote", out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes N random ingredients of the built-in MLP (fc1: HIDDEN x 784, fc2: 10 x HIDDEN, float32) and a held-out set of
EXAMPLES rows of 784 inputs with labels 0-9, for the soup fan-out benchmark. Standard library only. The held-out rows
repeat one block of 500 random rows: an evaluation does the same work whatever the values, and generating millions of
random floats in pure Python is slow."""
import os, random, sys
from array import array

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from safetensors_file import write  # noqa: E402  (bench/safetensors_file.py)

out_dir, n_models, hidden, examples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
os.makedirs(out_dir, exist_ok=True)


def floats(rng, n, scale):
    return array("f", (rng.gauss(0, scale) for _ in range(n))).tobytes()


for m in range(n_models):
    rng = random.Random(100 + m)
    write(os.path.join(out_dir, f"ingredient{m}.safetensors"), {
        "fc1.weight": ("F32", [hidden, 784], floats(rng, hidden * 784, 0.05)),
        "fc1.bias": ("F32", [hidden], floats(rng, hidden, 0.01)),
        "fc2.weight": ("F32", [10, hidden], floats(rng, 10 * hidden, 0.05)),
        "fc2.bias": ("F32", [10], floats(rng, 10, 0.01)),
    })
rng = random.Random(7)
block_rows = 500
block = floats(rng, block_rows * 784, 1.0)
labels = array("q", (rng.randrange(10) for _ in range(block_rows))).tobytes()
reps = examples // block_rows
write(os.path.join(out_dir, "heldout.safetensors"), {
    "inputs": ("F32", [reps * block_rows, 784], block * reps),
    "labels": ("I64", [reps * block_rows], labels * reps),
})

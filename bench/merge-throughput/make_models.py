#!/usr/bin/env python3
"""Writes N random float32 safetensors models of about SIZE_MB each (50 tensors per model) for the merge
throughput benchmark. Standard library only. Each model repeats one random 1/50 block per tensor: the merge
does the same work whatever the values, and generating 200 MB of random floats in pure Python is slow."""
import os, random, sys
from array import array

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import safetensors_file  # noqa: E402  (bench/safetensors_file.py)

out_dir, n_models, size_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n_tensors = 50
numel = size_mb * 1_000_000 // 4 // n_tensors
rows = 1000
numel -= numel % rows
os.makedirs(out_dir, exist_ok=True)
for m in range(n_models):
    rng = random.Random(m)
    block = array("f", (rng.uniform(-1, 1) for _ in range(numel))).tobytes()
    safetensors_file.write(os.path.join(out_dir, f"m{m}.safetensors"),
                           {f"layers.{t}.weight": ("F32", [rows, numel // rows], block) for t in range(n_tensors)})

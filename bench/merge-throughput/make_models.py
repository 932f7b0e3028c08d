#!/usr/bin/env python3
"""Writes N random float32 safetensors models of about SIZE_MB each (TENSORS tensors per model, 50 unless given:
make_models.py DIR N SIZE_MB [TENSORS]) for the merge throughput benchmark. Standard library only. Each model
repeats one random block per tensor (the tensor itself, or a quarter of it or less for tensors over 2^24 entries):
the merge does the same work whatever the values, and generating 200 MB of random floats in pure Python is slow."""
import os, random, sys
from array import array

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import safetensors_file  # noqa: E402  (bench/safetensors_file.py)

out_dir, n_models, size_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n_tensors = int(sys.argv[4]) if len(sys.argv) > 4 else 50
numel = size_mb * 1_000_000 // 4 // n_tensors
rows = 1000
repeats = max(1, numel // (1 << 24) + (numel % (1 << 24) > 0)) if numel > 1 << 24 else 1
numel -= numel % (rows * repeats)
os.makedirs(out_dir, exist_ok=True)
for m in range(n_models):
    rng = random.Random(m)
    block = array("f", (rng.uniform(-1, 1) for _ in range(numel // repeats))).tobytes() * repeats
    safetensors_file.write(os.path.join(out_dir, f"m{m}.safetensors"),
                           {f"layers.{t}.weight": ("F32", [rows, numel // rows], block) for t in range(n_tensors)})

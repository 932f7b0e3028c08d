#!/usr/bin/env python3
"""Writes N random float32 safetensors models of about SIZE_MB each (50 tensors per model) for the merge
throughput benchmark. Standard library only. Each model repeats one random 1/50 block per tensor: the merge
does the same work whatever the values, and generating 200 MB of random floats in pure Python is slow."""
import json, os, random, struct, sys
from array import array

out_dir, n_models, size_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n_tensors = 50
numel = size_mb * 1_000_000 // 4 // n_tensors
rows = 1000
numel -= numel % rows
os.makedirs(out_dir, exist_ok=True)
for m in range(n_models):
    rng = random.Random(m)
    block = array("f", (rng.uniform(-1, 1) for _ in range(numel))).tobytes()
    header, offset = {}, 0
    for t in range(n_tensors):
        header[f"layers.{t}.weight"] = {"dtype": "F32", "shape": [rows, numel // rows], "data_offsets": [offset, offset + len(block)]}
        offset += len(block)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(out_dir, f"m{m}.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _ in range(n_tensors):
            f.write(block)

#!/usr/bin/env python3
"""The hand-written soup script CloudSoup replaces, as a baseline for the throughput benchmark.

What such scripts usually do (safetensors.torch.load_file on every ingredient, then a dict comprehension
averaging them, then save_file): every model is held in memory at once. The safetensors package is not on
this machine, so load_file/save_file are re-implemented here with the same behaviour (read the whole file,
one tensor per header entry, F32 only since the benchmark's models are F32).

Usage: /usr/bin/python3 script_baseline.py OUT.safetensors IN1.safetensors IN2.safetensors ...
Needs Debian's python3-torch.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import safetensors_file  # noqa: E402  (bench/safetensors_file.py)


def load_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info["dtype"]
        start, end = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[start:end]), dtype=torch.float32).reshape(info["shape"])
    return out


def save_file(tensors, path):
    safetensors_file.write(path, {name: ("F32", t.shape, t.contiguous().numpy().tobytes()) for name, t in tensors.items()})


def main():
    out, paths = sys.argv[1], sys.argv[2:]
    models = [load_file(p) for p in paths]
    soup = {k: sum(m[k] for m in models) / len(models) for k in models[0]}
    save_file(soup, out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A lazy, mergekit-like uniform average in ~30 lines of NumPy: every input is memory-mapped, each output tensor is
computed from views of the mapped files (nothing is copied in first) and appended to the output file.
F32 only, like the benchmark's models. Usage: /usr/bin/python3 memmap_merge.py OUT IN1 IN2 ...
"""
import json
import struct
import sys

import numpy as np


def open_mapped(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)


out, paths = sys.argv[1], sys.argv[2:]
models = [open_mapped(p) for p in paths]
names = list(models[0][0])
offsets, layout = 0, {}
for name in names:
    info = models[0][0][name]
    size = info["data_offsets"][1] - info["data_offsets"][0]
    layout[name] = {"dtype": "F32", "shape": info["shape"], "data_offsets": [offsets, offsets + size]}
    offsets += size
h = json.dumps(layout).encode()
h += b" " * (-len(h) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for name in names:
        acc = None
        for header, body in models:
            a, b = header[name]["data_offsets"]
            x = body[a:b].view(np.float32)
            acc = x.copy() if acc is None else np.add(acc, x, out=acc)
        acc /= np.float32(len(models))
        f.write(acc.tobytes())

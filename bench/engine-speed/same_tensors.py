#!/usr/bin/env python3
"""Exits 0 when two safetensors files hold the same tensors (names, dtypes, shapes, bytes), whatever their header
layout or metadata. Standard library only. Usage: same_tensors.py A.safetensors B.safetensors"""
import json
import mmap
import struct
import sys


def tensors(path):
    f = open(path, "rb")
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), 8 + n


(ha, ma, oa), (hb, mb, ob) = tensors(sys.argv[1]), tensors(sys.argv[2])
assert ha.keys() == hb.keys(), "different tensor names"
for name, a in ha.items():
    b = hb[name]
    assert (a["dtype"], a["shape"]) == (b["dtype"], b["shape"]), f"{name}: different dtype or shape"
    (a0, a1), (b0, b1) = a["data_offsets"], b["data_offsets"]
    assert ma[oa + a0:oa + a1] == mb[ob + b0:ob + b1], f"{name}: different bytes"
print(f"same tensors, byte for byte ({len(ha)} tensors)")

"""Writes a safetensors file (https://huggingface.co/docs/safetensors: an 8-byte little-endian header length, the JSON
header padded with spaces to a multiple of 8 bytes, then every tensor's bytes in header order) for the benchmarks'
model makers and the baseline script. Standard library only."""
import json
import struct


def write(path, tensors):
    """tensors: name -> (dtype, shape, data bytes), written in this order."""
    header, offset = {}, 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, data in tensors.values():
            f.write(data)

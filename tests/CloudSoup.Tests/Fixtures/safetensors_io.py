"""Safetensors writers for the Python scripts (fixture scripts in pickle/ and torchscript/, tools/crosscheck), since
Debian has no safetensors package. write_raw needs only the standard library; write_safetensors takes torch
tensors (F32, F16, BF16, I64). Header padded to 8 bytes."""
import json, struct


def write_raw(path, entries):
    """entries: (name, dtype string, shape, little-endian bytes) in file order."""
    header, offset, blobs = {}, 0, []
    for name, dtype, shape, data in entries:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_safetensors(path, tensors):
    import torch
    dtypes = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}

    def entry(name, t):
        t = t.contiguous()
        # numpy has no bfloat16: write its bits through int16.
        data = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        return name, dtypes[t.dtype], t.shape, data

    write_raw(path, [entry(name, t) for name, t in tensors.items()])

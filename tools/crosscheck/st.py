"""Tiny safetensors reader/writer (F32 only for writing)."""
import json, struct, numpy as np, os, glob

_DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}

def load(path):
    if os.path.isdir(path):
        files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
        out = {}
        for f in files:
            out.update(load(f))
        return out
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[base + a: base + b], dtype=np.dtype(_DT[v["dtype"]]).newbyteorder("<"))
        out[k] = arr.reshape(v["shape"]).copy()
    return out

def save(path, tensors):
    hdr = {}
    off = 0
    blobs = []
    for k in sorted(tensors):
        a = np.ascontiguousarray(np.asarray(tensors[k], dtype="<f4"))
        b = a.tobytes()
        hdr[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)

"""Tiny safetensors reader/writer (F32 only for writing)."""
import json, struct, numpy as np, os, glob, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "CloudSoup.Tests", "Fixtures"))
import safetensors_io  # noqa: E402

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
    """Writes float32 tensors, sorted by name, through the fixtures' writer."""
    safetensors_io.write_raw(path, [(k, "F32", np.shape(tensors[k]), np.ascontiguousarray(np.asarray(tensors[k], dtype="<f4")).tobytes())
                                    for k in sorted(tensors)])

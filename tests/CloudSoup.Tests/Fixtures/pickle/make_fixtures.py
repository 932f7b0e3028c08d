#!/usr/bin/python3
"""Makes the PyTorch pickle fixtures (run with Debian's python3-torch 1.13; tests never run this).

  /usr/bin/python3 make_fixtures.py

Good checkpoints (torch.save zip format) each with the expected tensors as <name>.expected.safetensors:
  mlp_f32.pt, mlp_f16.pt, mlp_bf16.pt   a small MLP state_dict in three dtypes
  shared.pt                             two tensors viewing one storage (contiguous slices)
  wrapped.pt                            {"state_dict": ..., "epoch": 3}
  pytorch_model.bin                     the same MLP under HF's file name
  many_storages.pt                      48 tensors, each its own storage (so 48 zip local headers to read at open)
Bad ones: hostile_system.pt (a pickle whose global is os.system), hostile_eval.pt (builtins.eval),
noncontiguous.pt (a transposed view), compressed.pt (members deflated), truncated.pt, legacy.pt
(the pre-1.6 non-zip format). Hostile pickles are written by hand, so generating them runs nothing."""
import io, json, os, pickle, struct, zipfile
import torch
import sys
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.chdir(HERE)  # every fixture is written next to this script, wherever it is run from
from safetensors_io import write_safetensors  # noqa: E402

torch.manual_seed(0)

mlp = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
sd = mlp.state_dict()
for name, dtype in [("mlp_f32", torch.float32), ("mlp_f16", torch.float16), ("mlp_bf16", torch.bfloat16)]:
    d = {k: v.to(dtype) for k, v in sd.items()}
    torch.save(d, f"{name}.pt")
    write_safetensors(f"{name}.expected.safetensors", d)
torch.save(sd, "pytorch_model.bin")

base = torch.arange(12, dtype=torch.float32)
shared = {"first": base[:4], "second": base[4:10].view(2, 3), "steps": torch.tensor(7)}
torch.save(shared, "shared.pt")
write_safetensors("shared.expected.safetensors", {k: v.clone() for k, v in shared.items()})

many = {f"layers.{i}.weight": torch.randn(2, 3 + i % 5).to(torch.float16 if i % 3 == 0 else torch.float32) for i in range(48)}
torch.save(many, "many_storages.pt")
write_safetensors("many_storages.expected.safetensors", many)

torch.save({"state_dict": sd, "epoch": 3}, "wrapped.pt")
write_safetensors("wrapped.expected.safetensors", dict(sd))

torch.save({"t": torch.arange(6, dtype=torch.float32).view(2, 3).t()}, "noncontiguous.pt")

def repack(src, dst, compression):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item.filename))

repack("mlp_f32.pt", "compressed.pt", zipfile.ZIP_DEFLATED)

data = open("mlp_f32.pt", "rb").read()
open("truncated.pt", "wb").write(data[: len(data) // 2])

torch.save(sd, "legacy.pt", _use_new_zipfile_serialization=False)

def hostile(path, module, name, arg):
    # A protocol-2 pickle that would call module.name(arg) on load: PROTO 2, GLOBAL, arg tuple, REDUCE, STOP.
    body = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + b"X" + struct.pack("<I", len(arg)) + arg.encode() + b"\x85R."
    with zipfile.ZipFile("mlp_f32.pt") as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, body if item.filename.endswith("data.pkl") else zin.read(item.filename))

hostile("hostile_system.pt", "os", "system", "touch cloudsoup-pwned")
hostile("hostile_eval.pt", "builtins", "eval", "__import__('os').system('touch cloudsoup-pwned')")
print(sorted(os.listdir(".")))

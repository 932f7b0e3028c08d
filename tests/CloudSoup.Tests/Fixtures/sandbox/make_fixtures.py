#!/usr/bin/python3
"""Makes hostile TorchScript evaluation models (run with Debian's python3-torch 1.13; tests never run this).

  /usr/bin/python3 make_fixtures.py

Each module takes the 8-feature inputs of ../torchscript/data8.safetensors and has the parameters of that folder's
mlp.pt (fc1 8->6, fc2 6->3), so weights load into it and only its forward pass is hostile:
  write_file.pt   forward opens VICTIM with torch.from_file(shared=True): read and write access to a file outside the
                  sandbox's scratch folder (shared=True maps the file writable, so writing the tensor writes the file)
  read_file.pt    forward reads SECRET with torch.from_file(shared=False) and returns its bytes as logits, which would
                  carry the file's content out through the job's results
  loop.pt         forward never returns
  memory.pt       forward allocates 1.5e9 float32 (6 GB) and touches all of it
  huge.pt         forward asks for 2**42 float32 (16 TiB) at once
  crash_pickle.pt mlp.pt with its data.pkl replaced by a list nested 300,000 deep: loading it exhausts the stack and
                  the loading process dies (SIGABRT with libtorch 2.x as TorchSharp 0.107 ships it)
  huge_storage.pt a torch.save checkpoint (a merge input, not a model) whose tensor claims a storage of 2**62 elements
The hostile pickles are written by hand, so generating them runs nothing."""
import collections, io, os, pickle, zipfile
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # every fixture is written next to this script, wherever it is run from
MLP = os.path.join(HERE, "..", "torchscript", "mlp.pt")

# Fixed paths the tests prepare (a TorchScript module cannot take a file name from its input).
VICTIM = "/tmp/cloudsoup-sandbox-test/victim.bin"
SECRET = "/tmp/cloudsoup-sandbox-test/secret.bin"


class Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 6)
        self.fc2 = nn.Linear(6, 3)

    def logits(self, x):
        return self.fc2(F.relu(self.fc1(x)))


class WriteFile(Base):
    def __init__(self):
        super().__init__()
        self.path = VICTIM

    def forward(self, x):
        t = torch.from_file(self.path, shared=True, size=16, dtype=torch.uint8)
        t.fill_(0x58)  # 'X': with write access this lands in the file
        return self.logits(x) + t[0].float() * 0


class ReadFile(Base):
    def __init__(self):
        super().__init__()
        self.path = SECRET

    def forward(self, x):
        t = torch.from_file(self.path, shared=False, size=16, dtype=torch.uint8)
        out = self.logits(x)
        return out + t[:3].float().unsqueeze(0)  # the secret's bytes ride out in the logits


class Loop(Base):
    def forward(self, x):
        y = self.logits(x)
        i = 0
        while i >= 0:          # never false
            y = y * 1.0
            i = i + 1
            if i > 1000000:
                i = 0
        return y


class Memory(Base):
    def forward(self, x):
        big = torch.ones(1500000000, dtype=torch.float32)   # 6 GB, every page written
        return self.logits(x) + big[0] * 0


class Huge(Base):
    def forward(self, x):
        big = torch.empty(4398046511104, dtype=torch.float32)   # 2**42 floats: 16 TiB
        return self.logits(x) + big[0] * 0


def script(cls, path):
    torch.manual_seed(0)
    torch.jit.script(cls().eval()).save(path)


script(WriteFile, "write_file.pt")
script(ReadFile, "read_file.pt")
script(Loop, "loop.pt")
script(Memory, "memory.pt")
script(Huge, "huge.pt")


def replace_pickle(src, dst, body):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            if item.filename.endswith("/data.pkl"):
                zout.writestr(item.filename, body, compress_type=zipfile.ZIP_DEFLATED)
            else:
                zout.writestr(item, zin.read(item.filename))


# PROTO 2, a list nested 300,000 deep (EMPTY_LIST × n, APPEND × n-1), STOP: libtorch's unpickler builds it, and freeing
# it recurses once per level until the loading thread's stack runs out. Stored deflated (libtorch reads that), so the
# fixture stays small.
depth = 300000
replace_pickle(MLP, "crash_pickle.pt", b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")

# A torch.save checkpoint (what `models:` reads, not TorchScript) whose one tensor claims a storage of 2**62 float32
# elements while the storage member is empty: 2**62 * 4 bytes wraps to 0 in 64-bit arithmetic.
class FakeStorage:
    pass


class HugeTensor:
    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (FakeStorage(), 0, (2 ** 62,), (1,), False, collections.OrderedDict()))


class StoragePickler(pickle.Pickler):
    def persistent_id(self, obj):
        return ("storage", torch.FloatStorage, "0", "cpu", 2 ** 62) if isinstance(obj, FakeStorage) else None


buffer = io.BytesIO()
StoragePickler(buffer, protocol=2).dump(collections.OrderedDict([("w", HugeTensor())]))
with zipfile.ZipFile("huge_storage.pt", "w", zipfile.ZIP_STORED) as z:
    z.writestr("huge_storage/data.pkl", buffer.getvalue())
    z.writestr("huge_storage/byteorder", "little")
    z.writestr("huge_storage/data/0", b"")
    z.writestr("huge_storage/version", "3\n")
print(sorted(f for f in os.listdir(".") if f.endswith(".pt")))

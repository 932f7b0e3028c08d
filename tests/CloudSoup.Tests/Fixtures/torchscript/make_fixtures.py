#!/usr/bin/python3
"""Makes the TorchScript evaluation fixtures (run with Debian's python3-torch 1.13; tests never run this).

  /usr/bin/python3 make_fixtures.py

Writes: mlp.pt (scripted MLP 8-6-3), cnn.pt (scripted conv+BatchNorm+linear), the weights to load into
each (*.weights.safetensors, deliberately different from the weights saved inside the .pt files, so a
test only passes if CloudSoup overwrote them), data.safetensors (inputs/labels) and expected.json
(PyTorch's accuracy, mean cross-entropy and first logits for each)."""
import json, os, struct
import torch
import sys
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.chdir(HERE)  # every fixture is written next to this script, wherever it is run from
from safetensors_io import write_safetensors  # noqa: E402
import torch.nn as nn
import torch.nn.functional as F


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 6)
        self.fc2 = nn.Linear(6, 3)
    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.fc1 = nn.Linear(4 * 2 * 2, 3)
    def forward(self, x):
        x = x.view(x.shape[0], 1, 4, 4)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        return self.fc1(x.flatten(1))

def state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}

torch.manual_seed(0)
inputs = torch.randn(24, 16)
labels = torch.randint(0, 3, (24,))
write_safetensors("data.safetensors", {"inputs": inputs, "labels": labels})
expected = {}
for name, make, x in [("mlp", Mlp, inputs[:, :8].contiguous()), ("cnn", Cnn, inputs)]:
    saved = make().eval()
    torch.jit.script(saved).save(f"{name}.pt")
    trained = make().eval()                       # other random weights: these are the ones to evaluate
    with torch.no_grad():
        for k, v in trained.state_dict().items():
            if not v.is_floating_point():
                continue
            v.copy_(torch.randn_like(v) * 0.5)
            if "running_var" in k:
                v.abs_().add_(0.5)                # a variance must stay positive
    weights = {k: v for k, v in state(trained).items() if k != "bn1.num_batches_tracked"}
    write_safetensors(f"{name}.weights.safetensors", weights)
    with torch.no_grad():
        logits = trained(x)
    expected[name] = {
        "accuracy": (logits.argmax(1) == labels).double().mean().item(),
        "loss": F.cross_entropy(logits.double(), labels).item(),
        "first_logits": logits[:2].tolist(),
    }
write_safetensors("data8.safetensors", {"inputs": inputs[:, :8].contiguous(), "labels": labels})
json.dump(expected, open("expected.json", "w"), indent=2)
print(json.dumps(expected, indent=2))

#!/usr/bin/python3
"""Makes the sharded PyTorch fixtures (run with Debian's python3-torch 1.13; tests never run this).

  /usr/bin/python3 make_fixtures.py

Two small Llama-shaped state dicts (4 layers, hidden 8, vocabulary 16; names as transformers' LlamaForCausalLM
writes them), each saved three ways:
  <m>-sharded/   pytorch_model-0000k-of-0000N.bin (N = 4 here) + pytorch_model.bin.index.json, split the way
                 transformers' save_pretrained splits a state dict (tensors in order, a new shard when the next one
                 would pass the size limit), torch.save zip format
  <m>-single/    pytorch_model.bin, the whole state dict in one file
  <m>.expected.safetensors   the same tensors, for comparison
for m in a (float32) and b (bfloat16, so one shard format test covers a 2-byte dtype)."""
import json, os, sys
import torch
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
os.chdir(HERE)  # every fixture is written next to this script, wherever it is run from
from safetensors_io import write_safetensors  # noqa: E402

HIDDEN, VOCAB, LAYERS, SHARDS = 8, 16, 4, 3   # a size limit of a third of the total makes 4 shards


def llama_state_dict(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g).to(dtype)
    sd = {"model.embed_tokens.weight": r(VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            sd[p + f"self_attn.{proj}.weight"] = r(HIDDEN, HIDDEN)
        sd[p + "mlp.gate_proj.weight"] = r(2 * HIDDEN, HIDDEN)
        sd[p + "mlp.up_proj.weight"] = r(2 * HIDDEN, HIDDEN)
        sd[p + "mlp.down_proj.weight"] = r(HIDDEN, 2 * HIDDEN)
        sd[p + "input_layernorm.weight"] = r(HIDDEN)
        sd[p + "post_attention_layernorm.weight"] = r(HIDDEN)
    sd["model.norm.weight"] = r(HIDDEN)
    sd["lm_head.weight"] = r(VOCAB, HIDDEN)
    return sd


def save_sharded(sd, folder):
    os.makedirs(folder, exist_ok=True)
    total = sum(t.numel() * t.element_size() for t in sd.values())
    limit = total // SHARDS + 1
    shards, current, size = [], {}, 0
    for name, t in sd.items():
        n = t.numel() * t.element_size()
        if current and size + n > limit:
            shards.append(current)
            current, size = {}, 0
        current[name] = t.clone()
        size += n
    shards.append(current)
    weight_map = {}
    for i, shard in enumerate(shards):
        file = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save(shard, os.path.join(folder, file))
        weight_map.update({name: file for name in shard})
    with open(os.path.join(folder, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return len(shards)


for name, seed, dtype in [("a", 1, torch.float32), ("b", 2, torch.bfloat16)]:
    sd = llama_state_dict(seed, dtype)
    n = save_sharded(sd, f"{name}-sharded")
    os.makedirs(f"{name}-single", exist_ok=True)
    torch.save(sd, os.path.join(f"{name}-single", "pytorch_model.bin"))
    write_safetensors(f"{name}.expected.safetensors", sd)
    print(name, n, "shards")

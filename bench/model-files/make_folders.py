#!/usr/bin/python3
"""Model folders for bench/model-files/run.sh: a, b, c share one synthetic 256,000-token BPE tokenizer.json (about
15 MB, the size class of large-vocabulary models), byte for byte; d has the same vocabulary written with other
formatting, so comparing it means parsing. The weights are one tiny safetensors file: the tokenizer is what is timed.
Usage: make_folders.py WORKDIR WEIGHTS.safetensors"""
import json, os, shutil, sys

work, weights = sys.argv[1], sys.argv[2]
N = 256000
tokens = ["<unk>", "<s>", "</s>"] + [f"\u2581tok{i}" for i in range(N - 3)]
tokenizer = {"version": "1.0", "added_tokens": [{"id": i, "content": tokens[i], "special": True} for i in range(3)],
             "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(tokens)},
                       "merges": [f"\u2581tok{i} \u2581tok{i + 1}" for i in range(N - 4)]}}
for m in "abcd":
    folder = os.path.join(work, m)
    os.makedirs(folder, exist_ok=True)
    shutil.copy(weights, os.path.join(folder, "model.safetensors"))
    with open(os.path.join(folder, "tokenizer.json"), "w") as f:
        json.dump(tokenizer, f, indent=1 if m == "d" else None)
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast"}, open(os.path.join(folder, "tokenizer_config.json"), "w"))
    json.dump({"model_type": "llama", "num_hidden_layers": 4, "torch_dtype": "float32"}, open(os.path.join(folder, "config.json"), "w"))
for name, models, source in [("copy", "abc", False), ("same-bytes", "abc", True), ("reformatted", "abd", True)]:
    with open(os.path.join(work, name + ".yaml"), "w") as f:
        f.write("merge_method: linear\nmodels: [" + ", ".join("{model: %s}" % m for m in models) + "]\n")
        if source:
            f.write("tokenizer_source: base\n")

import numpy as np, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st
D = os.path.join(os.environ.get("CROSSCHECK_DIR", "/tmp/cloudsoup-crosscheck"), "ckpt")
os.makedirs(D, exist_ok=True)
rng = np.random.default_rng(1234)
shapes = {"model.embed_tokens.weight": (50, 16), "lm_head.weight": (50, 16), "model.norm.weight": (16,),
          # a 4-D convolution kernel, for filter-wise Model Stock (one angle per last-dim vector)
          "model.vision.patch_embedding.weight": (6, 3, 2, 2)}
for i in range(4):
    shapes[f"model.layers.{i}.self_attn.q_proj.weight"] = (16, 16)
    shapes[f"model.layers.{i}.mlp.up_proj.weight"] = (24, 16)
    shapes[f"model.layers.{i}.input_layernorm.weight"] = (16,)
base = {k: rng.standard_normal(s).astype(np.float32) * 0.5 for k, s in shapes.items()}
for k in base:
    if "norm" in k:
        base[k] = (1 + 0.1 * rng.standard_normal(shapes[k])).astype(np.float32)
st.save(f"{D}/base.safetensors", base)
for m in range(1, 4):
    ft = {k: (v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in base.items()}
    st.save(f"{D}/m{m}.safetensors", ft)
    # fisher: positive, some exact zeros
    fi = {k: (rng.random(v.shape) ** 2 * (rng.random(v.shape) > 0.2)).astype(np.float32) for k, v in base.items()}
    st.save(f"{D}/f{m}.safetensors", fi)
fb = {k: (rng.random(v.shape) ** 2).astype(np.float32) for k, v in base.items()}
st.save(f"{D}/fbase.safetensors", fb)
# independent random model (not a fine-tune) for slerp
ind = {k: rng.standard_normal(v.shape).astype(np.float32) * 0.5 for k, v in base.items()}
st.save(f"{D}/indep.safetensors", ind)
# copies of base (identical models)
st.save(f"{D}/base_copy.safetensors", base)
# model with an extra tensor and missing one (for union/intersection)
ex = dict(st.load(f"{D}/m1.safetensors"))
ex["extra.bias"] = rng.standard_normal(8).astype(np.float32)
st.save(f"{D}/m1_extra.safetensors", ex)
# model with mostly-sparse deltas (for ram): half the entries equal to base
sp = {k: np.where(rng.random(v.shape) < 0.5, v, v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in base.items()}
st.save(f"{D}/sp1.safetensors", sp)
sp = {k: np.where(rng.random(v.shape) < 0.5, v, v + 0.1 * rng.standard_normal(v.shape)).astype(np.float32) for k, v in base.items()}
st.save(f"{D}/sp2.safetensors", sp)
# models whose task vectors have many exactly equal magnitudes (values on a 1/64 grid, deltas multiples of 1/4),
# for the tie rule of TIES, Breadcrumbs and SCE (docs/methods.md "Ties between equal magnitudes")
qbase = {k: (np.round(v * 64) / 64).astype(np.float32) for k, v in base.items()}
st.save(f"{D}/qbase.safetensors", qbase)
for m in range(1, 3):
    q = {k: (v + 0.25 * rng.integers(-2, 3, v.shape)).astype(np.float32) for k, v in qbase.items()}
    st.save(f"{D}/q{m}.safetensors", q)
print("ok", len(base))

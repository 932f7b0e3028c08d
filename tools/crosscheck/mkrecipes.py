import yaml, os
R = os.path.join(os.environ.get("CROSSCHECK_DIR", "/tmp/cloudsoup-crosscheck"), "r")
os.makedirs(R, exist_ok=True)
C = "../ckpt/"
def M(name, **params):
    d = {"model": C + name + ".safetensors"}
    if params: d["parameters"] = params
    return d
recipes = {}
def add(name, method, models, base=None, params=None, **extra):
    r = {"merge_method": method}
    if base: r["base_model"] = C + base + ".safetensors"
    r["models"] = models
    if params: r["parameters"] = params
    r["dtype"] = "float32"
    r.update(extra)
    recipes[name] = r
FT = ["m1", "m2", "m3"]
# linear
add("linear_basic", "linear", [M("m1", weight=1.0), M("m2", weight=0.3), M("m3", weight=0.5)])
add("linear_nonorm", "linear", [M("m1", weight=1.0), M("m2", weight=0.3), M("m3", weight=0.5)], params={"normalize": False})
add("linear_filter_grad", "linear", [M("m1", weight=[{"filter": "mlp", "value": 2.0}, {"filter": "embed", "value": [0.1, 5]}, {"value": 1.0}]),
                                       M("m2", weight=[0.0, 0.5, 1.0]), M("m3", weight=[{"filter": "self_attn", "value": 3.0}])],
    params={"weight": [1.0, 0.2]})
add("linear_zero_sum", "linear", [M("m1", weight=1.0), M("m2", weight=-1.0)])
add("linear_zero_sum_filter", "linear", [M("m1", weight=1.0), M("m2", weight=[{"filter": "norm", "value": -1.0}, {"value": 1.0}])])
add("linear_union", "linear", [M("m1_extra", weight=1.0), M("m2", weight=0.5)], tensors="union")
add("linear_intersection", "linear", [M("m1_extra", weight=1.0), M("m2", weight=0.5)], tensors="intersection")
# task arithmetic family
add("ta_basic", "task_arithmetic", [M("m1", weight=1.0), M("m2", weight=0.5), M("m3", weight=-0.3)], "base", {"lambda": 0.7})
add("ta_normalize", "task_arithmetic", [M("m1", weight=1.0), M("m2", weight=0.5), M("m3", weight=0.3)], "base", {"normalize": True})
add("ta_density_ignored", "task_arithmetic", [M("m1", weight=1.0, density=0.3), M("m2", weight=0.5, density=0.5)], "base")
add("ta_base_in_models", "task_arithmetic", [M("base"), M("m1", weight=1.0), M("m2", weight=0.5)], "base")
add("ta_zero_sum_norm", "task_arithmetic", [M("m1", weight=1.0), M("m2", weight=-1.0)], "base", {"normalize": True})
add("ta_global_weight_grad", "task_arithmetic", [M("m1"), M("m2"), M("m3", weight=0.2)], "base", {"weight": [1.0, 0.0, 2.0], "lambda": [0.5, 1.5]})
add("ties_basic", "ties", [M("m1", weight=1.0, density=0.5), M("m2", weight=0.5, density=0.3), M("m3", weight=0.8, density=0.7)], "base")
add("ties_grad_filter", "ties", [M("m1", weight=1.0, density=[1, 0.7, 0.1]), M("m2", weight=[0, 0.3, 0.7, 1], density=0.5),
                                 M("m3", weight=[{"filter": "mlp", "value": 0.5}, {"value": 0}], density=0.33)], "base", {"normalize": True, "int8_mask": True})
add("ties_dissum", "ties", [M("m1", weight=1.0, density=0.4), M("m2", weight=1.0, density=0.4), M("m3", weight=1.0, density=0.4)], "base", {"normalize": False, "lambda": 0.3})
add("ties_rescale", "ties", [M("m1", weight=1.0, density=0.4), M("m2", weight=0.7, density=0.2)], "base", {"rescale": True})
add("ties_density1", "ties", [M("m1", weight=1.0), M("m2", weight=0.7), M("m3", weight=0.4)], "base")
add("ties_zero_weights", "ties", [M("m1", weight=1.0, density=0.5), M("m2", weight=-1.0, density=0.5)], "base")
add("ties_model_scope", "ties", [M("m1", weight=1.0, density=0.3), M("m2", weight=0.5, density=0.6), M("m3", weight=1.0, density=0.1)], "base", {"topk_scope": "model"})
add("breadcrumbs_basic", "breadcrumbs", [M("m1", weight=1.0, density=0.6, gamma=0.05), M("m2", weight=0.5, density=0.5, gamma=0.1)], "base")
add("breadcrumbs_default_gamma", "breadcrumbs", [M("m1", weight=1.0, density=0.5), M("m2", weight=0.5, density=0.8)], "base", {"lambda": 0.9})
add("breadcrumbs_density1", "breadcrumbs", [M("m1", weight=1.0, density=1.0, gamma=0.1), M("m2", weight=0.5)], "base")
add("breadcrumbs_ties", "breadcrumbs_ties", [M("m1", weight=1.0, density=0.6, gamma=0.05), M("m2", weight=0.5, density=0.5, gamma=0.1), M("m3", weight=0.7, density=0.4)], "base")
add("breadcrumbs_ties_norm", "breadcrumbs_ties", [M("m1", weight=1.0, density=0.6, gamma=0.05), M("m2", weight=0.5, density=0.5, gamma=0.1)], "base", {"normalize": True, "rescale": True})
add("dare_ties_d1", "dare_ties", [M("m1", weight=1.0, density=1.0), M("m2", weight=0.5, density=1.0), M("m3", weight=0.7)], "base")
add("dare_linear_d1", "dare_linear", [M("m1", weight=1.0), M("m2", weight=0.5)], "base", {"lambda": 0.8})
add("della_d1", "della", [M("m1", weight=1.0, density=1.0), M("m2", weight=0.5, density=1.0)], "base")
add("della_linear_d1", "della_linear", [M("m1", weight=1.0, density=1.0), M("m2", weight=0.5, density=1.0)], "base")
add("breadcrumbs_defaults", "breadcrumbs", [M("m1", weight=0.6), M("m2", weight=0.4)], "base")
add("breadcrumbs_over1", "breadcrumbs", [M("m1", weight=1.0, density=0.5, gamma=0.6), M("m2", weight=0.5, density=0.9, gamma=0.2)], "base")
# equal magnitudes (docs/methods.md "Ties between equal magnitudes")
add("ties_tied", "ties", [M("q1", weight=1.0, density=0.3), M("q2", weight=0.5, density=0.5)], "qbase")
add("breadcrumbs_tied", "breadcrumbs", [M("q1", weight=1.0, density=0.5, gamma=0.1), M("q2", weight=0.5, density=0.3, gamma=0.3)], "qbase")
add("sce_tied", "sce", [M("q1"), M("q2")], "qbase", {"select_topk": 0.3})
# geometric
add("slerp_scalar", "slerp", [M("base"), M("indep")], "base", {"t": 0.3})
add("slerp_gradient", "slerp", [M("base"), M("indep")], "base", {"t": [0, 0.5, 1]})
add("slerp_filter_grad", "slerp", [M("base"), M("indep")], "base",
    {"t": [{"filter": "self_attn", "value": [0, 0.5, 0.3, 0.7, 1]}, {"filter": "mlp", "value": [1, 0.5, 0.7, 0.3, 0]}, {"value": 0.5}]})
add("slerp_ft", "slerp", [M("m1")], "base", {"t": 0.6})
add("slerp_identical", "slerp", [M("base_copy")], "base", {"t": 0.4})
add("slerp_extrapolate", "slerp", [M("base"), M("indep")], "base", {"t": 1.3})
add("slerp_negative", "slerp", [M("base"), M("m1", weight=0.5)], "base", {"t": [-0.25, 0.5]})
add("nuslerp_base", "nuslerp", [M("m1", weight=0.3), M("m2", weight=0.7)], "base")
add("nuslerp_nobase", "nuslerp", [M("m1", weight=1.0), M("indep", weight=2.0)])
add("nuslerp_rows", "nuslerp", [M("m1", weight=1.0), M("indep", weight=2.0)], params={"nuslerp_flatten": False})
add("nuslerp_rowwise", "nuslerp", [M("m1", weight=1.0), M("indep", weight=2.0)], params={"nuslerp_flatten": False, "nuslerp_row_wise": True})
add("nuslerp_zero_sum", "nuslerp", [M("m1", weight=-0.5), M("indep", weight=0.5)])
add("multislerp_base", "multislerp", [M("m1", weight=1.0), M("m2", weight=0.5), M("m3", weight=0.2)], "base")
add("multislerp_nobase", "multislerp", [M("m1", weight=0.7), M("indep", weight=0.3)])
add("multislerp_nonorm", "multislerp", [M("m1", weight=0.7), M("m2", weight=0.6)], params={"normalize_weights": False})
add("karcher_3", "karcher", [M("m1"), M("m2"), M("indep")])
add("karcher_base", "karcher", [M("m1"), M("indep")], "base", {"max_iter": 20, "tol": 1e-7})
add("karcher_identical", "karcher", [M("base"), M("base_copy")])
add("model_stock", "model_stock", [M("m1"), M("m2"), M("m3")], "base")
add("model_stock_fw", "model_stock", [M("m1"), M("m2"), M("m3")], "base", {"filter_wise": True})
add("model_stock_2", "model_stock", [M("m1"), M("indep")], "base")
add("nearswap", "nearswap", [M("m1")], "base", {"t": 0.05})
add("nearswap_grad", "nearswap", [M("indep")], "base", {"t": [0.01, 0.5]})
# statistics
add("sce_1", "sce", [M("m1", weight=5.0), M("m2"), M("m3")], "base")
add("sce_half", "sce", [M("m1"), M("m2"), M("m3")], "base", {"select_topk": 0.5})
add("ram", "ram", [M("sp1"), M("sp2"), M("m1")], "base")
add("ramplus_tl", "ramplus_tl", [M("sp1"), M("sp2"), M("m1")], "base", {"r": 0.5, "alpha": 0.4})
add("ramplus_tl_default", "ramplus_tl", [M("sp1"), M("sp2")], "base")
add("passthrough", "passthrough", [M("m1", scale=[{"filter": "up_proj", "value": 0}, {"filter": "layers", "value": [1, 2]}, {"value": 0.5}])])
# slices: parameters per slice (source, slice, top level), per-model filters on the source tensor's name
def S(*sources, **params):
    d = {"sources": [dict(model=C + m + ".safetensors", layer_range=list(r), **({"parameters": p} if p else {})) for m, r, p in sources]}
    if params: d["parameters"] = params
    return d
def add_sliced(name, method, slices, base=None, params=None):
    r = {"merge_method": method}
    if base: r["base_model"] = C + base + ".safetensors"
    r["slices"] = slices
    if params: r["parameters"] = params
    r["dtype"] = "float32"
    recipes[name] = r
add_sliced("passthrough_slices_scale", "passthrough", [S(("m1", (0, 2), None)), S(("m2", (2, 4), {"scale": 2.0}))])
add_sliced("passthrough_slices_filter", "passthrough", [
    S(("m1", (1, 3), {"scale": [{"filter": "layers.2.", "value": 0.0}, {"value": 1.0}]})),
    S(("m2", (0, 3), {"scale": [{"filter": "mlp", "value": [0.5, 1.5]}, {"filter": "lm_head", "value": 3.0}]})),
    S(("m1", (3, 4), None))])
add_sliced("linear_slices", "linear", [
    S(("m1", (0, 2), {"weight": 3.0}), ("m2", (0, 2), None)),
    S(("m1", (2, 4), None), ("m2", (0, 2), {"weight": [{"filter": "layers.1.", "value": 0.0}]}), weight=[{"filter": "self_attn", "value": 2.0}]),
], params={"weight": [1.0, 0.5]})
add_sliced("slerp_slices", "slerp", [
    S(("base", (0, 3), None), ("indep", (1, 4), None), t=[0.0, 1.0]),
    S(("base", (3, 4), None), ("indep", (0, 1), None)),
], "base", {"t": [{"filter": "mlp", "value": 0.8}, {"value": 0.3}]})
add_sliced("ties_slices", "ties", [
    S(("base", (0, 2), None), ("m1", (0, 2), {"weight": 1.0, "density": 0.3}), ("m2", (0, 2), {"weight": 0.5, "density": 0.6})),
    S(("base", (2, 4), None), ("m1", (2, 4), {"weight": 0.4, "density": 0.8}), ("m2", (2, 4), {"weight": 1.0}), density=0.2),
], "base")
# papers
F = lambda i: C + f"f{i}.safetensors"
add("fisher_default", "fisher", [M("m1", fisher=F(1)), M("m2", fisher=F(2)), M("m3", fisher=F(3))])
add("fisher_plain", "fisher", [M("m1", fisher=F(1), weight=0.5), M("m2", fisher=F(2), weight=1.5)], params={"normalize_fishers": False, "favor_target": False, "floor": 1e-3})
add("fisher_weights", "fisher", [M("m1", fisher=F(1), weight=0.2), M("m2", fisher=F(2), weight=[{"filter": "mlp", "value": 3.0}, {"value": 1.0}]), M("m3", fisher=F(3))], params={"floor": 0.0001})
add("gm_basic", "gradient_matching", [M("m1", fisher=F(1), scale=10.0), M("m2", fisher=F(2), scale=3.0, weight=0.5)], "base",
    {"base_fisher": C + "fbase.safetensors", "base_scale": 2.0, "delta_0": 0.01, "lambda": 0.8})
add("gm_nobase", "gradient_matching", [M("m1", fisher=F(1)), M("m2", fisher=F(2)), M("m3", fisher=F(3))], "base")
for mode in ["sequential_mean", "sequential_pair", "order_free"]:
    for thr in [1.0, 0.3, 2.0]:
        add(f"agree_{mode}_{thr}", "agreement", [M("m1"), M("indep"), M("m2"), M("m3")], "base", {"mode": mode, "threshold": thr, "lambda": 0.9})
    add(f"agree_model_{mode}", "agreement", [M("m1"), M("indep"), M("m2"), M("m3")], "base", {"mode": mode, "threshold": 0.9, "granularity": "model"})
for n, r in recipes.items():
    with open(f"{R}/{n}.yaml", "w") as f:
        yaml.safe_dump(r, f, sort_keys=False)
print(len(recipes))

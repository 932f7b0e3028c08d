"""Independent reference implementation of CloudSoup's deterministic merge methods,
written from the papers' formulas and mergekit's semantics as docs/methods.md states and cites them.

Usage: ref.py RECIPE.yaml OUT.safetensors
All arithmetic in float64; inputs are float32.
"""
import math, os, re, sys
import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st

# ----------------------------------------------------------------------------------------------
# parameter resolution (mergekit/config.py; docs/methods.md "Parameter values")

LAYER_RE = re.compile(r"(?:^|\.)layers\.(\d+)\.")


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def evaluate(setting, name, t):
    """Return (found, value)."""
    if setting is None:
        return False, None
    if isinstance(setting, (int, float, bool, str)):
        return True, setting
    if isinstance(setting, list):
        if all(is_num(e) for e in setting):
            s = t * (len(setting) - 1)
            i0 = int(math.floor(s))
            i1 = min(len(setting) - 1, i0 + 1)
            frac = s - i0
            return True, (1 - frac) * setting[i0] + frac * setting[i1]
        if all(isinstance(e, (int, float, bool, str)) for e in setting):
            return True, setting[int(t * (len(setting) - 1))]
        for cond in setting:
            f = cond.get("filter")
            if f is None or f == "*" or f in name:
                return evaluate(cond["value"], name, t)
        return False, None
    raise ValueError(f"bad setting {setting!r}")


class Params:
    def __init__(self, recipe, names):
        self.glob = recipe.get("parameters") or {}
        self.per_model = {}
        for m in recipe.get("models") or []:
            if isinstance(m, dict):
                self.per_model[m["model"]] = m.get("parameters") or {}
        layers = sorted({int(LAYER_RE.search(n).group(1)) for n in names if LAYER_RE.search(n)})
        self.nlayers = (max(layers) + 1) if layers else 0

    def t_of(self, name):
        m = LAYER_RE.search(name)
        if not m:
            return 0.0
        idx = int(m.group(1))
        if self.nlayers > 1:
            return idx / (self.nlayers - 1)
        return 1.0

    def get(self, key, name, model=None, default=None):
        t = self.t_of(name)
        if model is not None:
            pm = self.per_model.get(model, {})
            if key in pm:
                ok, v = evaluate(pm[key], name, t)
                if ok:
                    return v
        if key in self.glob:
            ok, v = evaluate(self.glob[key], name, t)
            if ok:
                return v
        return default


class SliceParams:
    """mergekit's per-slice lookup (docs/methods.md "Slices"): a per-model value from the slice source's
    parameters, then the slice's, then the top level's, its filters matched on the source tensor's name; a
    method-wide value from the slice's, then the top level's, on the output name. t is the position inside
    the slice (0 outside the layer stack)."""

    def __init__(self, recipe, where):
        self.glob = recipe.get("parameters") or {}
        self.slices = recipe["slices"]
        self.where = where  # output name -> (slice index, {model: source tensor name}, t)
        self.per_model = {}

    def get(self, key, name, model=None, default=None):
        if name not in self.where:  # a whole-model setting (e.g. topk_scope): the top level only
            ok, v = evaluate(self.glob.get(key), name, 0.0)
            return v if ok else default
        s, src, t = self.where[name]
        sl = self.slices[s]
        match = src[model] if model is not None else name
        blocks = []
        if model is not None:
            blocks += [so.get("parameters") or {} for so in sl["sources"] if so["model"] == model]
        blocks += [sl.get("parameters") or {}, self.glob]
        for b in blocks:
            if key in b:
                ok, v = evaluate(b[key], match, t)
                if ok:
                    return v
        return default


def slice_plan(recipe, load):
    """Output tensor -> (slice, {model: source name}, t): layers a+i of each slice's sources become output layer
    offset+i; embeddings come from the first slice's models, the other non-layer tensors from the last slice's."""
    slices = recipe["slices"]
    where = {}
    first = [so["model"] for so in slices[0]["sources"]]
    last = [so["model"] for so in slices[-1]["sources"]]
    for n in load(first[0]):
        if not LAYER_RE.search(n) and "embed" in n:
            where[n] = (0, {m: n for m in first}, 0.0)
    offset = 0
    for s, sl in enumerate(slices):
        a, b = sl["sources"][0]["layer_range"]
        L = b - a
        for i in range(L):
            t = i / (L - 1) if L > 1 else 1.0
            m0 = sl["sources"][0]["model"]
            start0 = sl["sources"][0]["layer_range"][0]
            for n in load(m0):
                mt = re.match(r"^model\.layers\.(\d+)\.(.+)$", n)
                if not mt or int(mt.group(1)) != start0 + i:
                    continue
                src = {so["model"]: f"model.layers.{so['layer_range'][0] + i}.{mt.group(2)}" for so in sl["sources"]}
                where[f"model.layers.{offset + i}.{mt.group(2)}"] = (s, src, t)
        offset += L
    for n in load(last[0]):
        if not LAYER_RE.search(n) and "embed" not in n:
            where[n] = (len(slices) - 1, {m: n for m in last}, 0.0)
    return where


# ----------------------------------------------------------------------------------------------
# sparsifiers (mergekit/sparsify.py, CloudSoup docs/methods.md for the Breadcrumbs fix)

def order_abs_desc(d):
    """indices by |d| descending, stable (lower index wins ties); ranking in float32."""
    a = np.abs(d.astype(np.float32)).reshape(-1)
    return np.argsort(-a, kind="stable")


def magnitude(d, density):
    if density >= 1:
        return d.copy()
    n = d.size
    k = int(density * n)
    mask = np.zeros(n)
    if k > 0:
        mask[order_abs_desc(d)[:k]] = 1
    return mask.reshape(d.shape)


def magnitude_outliers(d, density, gamma):
    """mergekit's n_top/n_bot arithmetic (density + gamma > 1 lowers n_top); CloudSoup keeps ranks
    [n_top, n - n_bot) of the descending order (its fix of the empty [n_bot:-0] slice; equal magnitudes:
    lower index ranks larger, docs/methods.md "Ties between equal magnitudes")."""
    if density >= 1:
        return None  # unchanged (mergekit: density >= 1 returns the tensor)
    n = d.size
    target = int(density * n)
    n_top = int(gamma * n)
    n_bot = n - target - n_top
    if n_bot < 0:
        n_top += n_bot
        n_bot = 0
    mask = np.zeros(n)
    mask[order_abs_desc(d)[n_top:n - n_bot]] = 1
    return mask.reshape(d.shape)


def l1_rescale(d, mask):
    masked = d * mask
    before = np.abs(d).sum()
    after = np.abs(masked).sum()
    if before < 1e-7 or after < 1e-7:
        return masked
    return masked * (before / after)


# ----------------------------------------------------------------------------------------------
# methods

GTA = {
    # name: (sparsifier, consensus, normalize default, rescale default)
    "task_arithmetic": (None, False, False, False),
    "ties": ("magnitude", True, True, False),
    "dare_ties": ("random", True, False, True),
    "dare_linear": ("random", False, False, True),
    "breadcrumbs": ("outliers", False, False, False),
    "breadcrumbs_ties": ("outliers", True, False, False),
    "della": ("della", True, True, True),
    "della_linear": ("della", False, False, True),
}


def as_bool(v):
    if isinstance(v, str):
        return v.lower() == "true"
    return bool(v)


def gta(method, name, base, xs, models, P, global_masks=None):
    spars, consensus, norm_def, resc_def = GTA[method]
    normalize = as_bool(P.get("normalize", name, default=norm_def))
    rescale = as_bool(P.get("rescale", name, default=resc_def))
    lam = float(P.get("lambda", name, default=1.0))
    deltas, weights = [], []
    for m, x in zip(models, xs):
        d = x - base
        density = float(P.get("density", name, m, default=1.0))
        w = float(P.get("weight", name, m))
        mask = None
        if global_masks is not None:
            mask = global_masks[m][name]
        elif spars == "magnitude":
            if density < 1:
                mask = magnitude(d, density)
        elif spars == "outliers":
            gamma = float(P.get("gamma", name, m, default=0.01))
            mask = magnitude_outliers(d, density, gamma)
        elif spars in ("random", "della"):
            if density < 1:
                raise NotImplementedError("random sparsifier with density < 1")
        if mask is not None:
            d = l1_rescale(d, mask) if rescale else d * mask
        deltas.append(d)
        weights.append(w)
    D = np.stack(deltas)
    W = np.array(weights).reshape((-1,) + (1,) * base.ndim)
    WD = D * W
    if consensus:
        s = np.where(WD.sum(0) >= 0, 1.0, -1.0)
        mask = (np.sign(WD) == s).astype(np.float64)
        mixed = (WD * mask).sum(0)
        div = (W * mask).sum(0)
        div[div == 0] = 1
    else:
        mixed = WD.sum(0)
        div = np.broadcast_to(W.sum(0), base.shape).copy()
        div[np.abs(div) < 1e-8] = 1
    if normalize:
        mixed = mixed / div
    mixed = mixed * lam
    return base + mixed


def ties_model_masks(models, tensors_of, base_of, names, P):
    """topk_scope: model -- per model keep |delta| >= k-th largest |delta| over the whole model,
    k = int(density * n_total) (official TIES >= threshold rule)."""
    masks = {}
    for m in models:
        density = float(P.get("density", names[0], m, default=1.0))
        allabs = np.concatenate([np.abs((tensors_of[m][n] - base_of[n]).astype(np.float32)).reshape(-1) for n in names])
        k = int(density * allabs.size)
        if density >= 1:
            masks[m] = {n: np.ones(base_of[n].shape) for n in names}
            continue
        thr = np.sort(allabs)[::-1][k - 1] if k > 0 else np.inf
        masks[m] = {n: (np.abs((tensors_of[m][n] - base_of[n]).astype(np.float32)) >= thr).astype(np.float64) for n in names}
    return masks


def linear(name, xs, models, P):
    ws = np.array([float(P.get("weight", name, m, default=1.0)) for m in models])
    normalize = as_bool(P.get("normalize", name, default=True))
    W = ws.reshape((-1,) + (1,) * xs[0].ndim)
    res = (W * np.stack(xs)).sum(0)
    if normalize:
        with np.errstate(divide="ignore", invalid="ignore"):
            res = res / ws.sum()
    return res


def slerp_vec(t, v0, v1, thr=0.9995, eps=1e-8):
    a0, a1 = v0.reshape(-1), v1.reshape(-1)
    n0, n1 = np.linalg.norm(a0), np.linalg.norm(a1)
    u0 = a0 / n0 if n0 > eps else a0
    u1 = a1 / n1 if n1 > eps else a1
    d = float(np.sum(u0 * u1))
    if abs(d) > thr:
        return (1 - t) * v0 + t * v1
    d = max(-1.0, min(1.0, d))
    om = math.acos(d)
    so = math.sin(om)
    return math.sin((1 - t) * om) / so * v0 + math.sin(t * om) / so * v1


def nuslerp_rows(t, v0, v1, flatten, row_wise, eps=1e-8):
    shape = v0.shape
    if flatten:
        a, b = v0.reshape(1, -1), v1.reshape(1, -1)
    else:
        a, b = (v0, v1)
        if a.ndim == 1:
            a, b = a.reshape(1, -1), b.reshape(1, -1)
        elif row_wise:
            a, b = np.swapaxes(a, 0, -1), np.swapaxes(b, 0, -1)
    out = np.empty_like(a)
    it = np.ndindex(a.shape[:-1])
    for idx in it:
        x, y = a[idx], b[idx]
        ux = x / max(np.linalg.norm(x), 1e-7)
        uy = y / max(np.linalg.norm(y), 1e-7)
        c = max(-1.0, min(1.0, float(np.sum(ux * uy))))
        th = math.acos(c)
        s = math.sin(th)
        if abs(s) < eps:
            out[idx] = (1 - t) * x + t * y
        else:
            out[idx] = (math.sin((1 - t) * th) * x + math.sin(t * th) * y) / s
    if not flatten and v0.ndim > 1 and row_wise:
        out = np.swapaxes(out, 0, -1)
    return out.reshape(shape)


def multislerp(xs, ws, base, normalize_weights, eps):
    X = np.stack(xs)
    if base is not None:
        X = X - base
    F = X.reshape(len(xs), -1)
    w = np.array(ws, dtype=np.float64)
    if normalize_weights:
        w = w / w.sum()
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    U = F / (norms + eps)
    mean = (U * w[:, None]).sum(0)
    mn = np.linalg.norm(mean)
    if mn < eps:
        if len(xs) == 2:
            r = (X[0] * w[0] + X[1] * w[1])
            return r + base if base is not None else r
        raise ValueError("antipodal")
    mean = mean / mn
    dots = (U * mean).sum(-1, keepdims=True)
    T = U - dots * mean
    tr = (T * w[:, None]).sum(0)
    tn = np.linalg.norm(tr) + eps
    res = mean * math.cos(tn) + tr * (math.sin(tn) / tn)
    res = res * float((norms[:, 0] * w).sum())
    res = res.reshape(xs[0].shape)
    return res + base if base is not None else res


def karcher(xs, max_iter, tol):
    n = len(xs)
    alphas = [1.0 / n] * n
    norms, units = [], []
    for x in xs:
        nv = float(np.linalg.norm(x))
        norms.append(nv)
        units.append(x / nv if nv != 0 else np.zeros_like(x))
    valid = [i for i, v in enumerate(norms) if v > tol]
    if not valid:
        return np.zeros_like(xs[0])
    va = [alphas[i] for i in valid]
    va = [a / sum(va) for a in va]
    vu = [units[i] for i in valid]
    u = sum(a * ui for a, ui in zip(va, vu))
    nu = float(np.linalg.norm(u))
    u = vu[0].copy() if nu < tol else u / nu
    for _ in range(int(max_iter)):
        T = np.zeros_like(u)
        for a, ui in zip(va, vu):
            d = max(-1.0, min(1.0, float(np.sum(u * ui))))
            th = math.acos(d)
            if th < tol:
                continue
            T += a * (th / math.sin(th)) * (ui - d * u)
        nT = float(np.linalg.norm(T))
        if nT < tol:
            break
        u = math.cos(nT) * u + math.sin(nT) * (T / nT)
        un = float(np.linalg.norm(u))
        if un > tol:
            u = u / un
    s = sum(a * nv for a, nv in zip(alphas, norms))
    return s * u


def model_stock(base, xs, filter_wise):
    shape = base.shape
    if filter_wise:
        w0 = base.reshape(1, -1) if base.ndim == 1 else base
        ws = [x.reshape(1, -1) if x.ndim == 1 else x for x in xs]
    else:
        w0 = base.reshape(-1)
        ws = [x.reshape(-1) for x in xs]
    off = [w - w0 for w in ws]
    cs = []
    for i in range(len(off)):
        for j in range(i + 1, len(off)):
            npd = np.linalg.norm(off[i], axis=-1) * np.linalg.norm(off[j], axis=-1)
            c = (off[i] * off[j]).sum(-1) / np.maximum(npd, 1e-6)
            cs.append(np.clip(c, -1, 1))
    c = np.mean(np.stack(cs), axis=0)
    c = np.expand_dims(c, -1)
    N = len(ws)
    t = N * c / (1 + (N - 1) * c)
    avg = sum(ws) / N
    return (t * avg + (1 - t) * w0).reshape(shape)


def nearswap(t, b, x):
    diff = np.abs(b - x)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = t / np.maximum(diff, 1e-6)
    w = np.clip(np.nan_to_num(w, nan=1.0, posinf=1.0, neginf=1.0), 0, 1)
    return w * x + (1 - w) * b


def sce(base, xs, select_topk):
    TV = np.stack([x - base for x in xs])
    if select_topk < 1:
        var = TV.var(axis=0)
        nz = int(np.count_nonzero(var))
        k = int(nz * select_topk)
        m = np.zeros(var.size)
        if k > 0:
            m[np.argsort(-np.abs(var.reshape(-1)), kind="stable")[:k]] = 1
        TV = TV * m.reshape(var.shape)[None]
    s = np.where(TV.sum(0) >= 0, 1.0, -1.0)
    erase = (np.sign(TV) == s).astype(np.float64)
    w = np.array([np.mean(tv ** 2) for tv in TV])
    ws = w.sum()
    w = np.ones_like(w) / len(w) if abs(ws) < 1e-6 else w / ws
    EW = w.reshape((-1,) + (1,) * base.ndim) * erase
    merged = (TV * EW).sum(0)
    return base + merged / np.maximum(EW.sum(0), 1e-6)


def ram(base, xs, eps, plus=False, r=0.1, alpha=0.2):
    TV = np.stack([(x - base).reshape(-1) for x in xs])
    # activity decided in float32, like the inputs
    TV32 = np.stack([(x.astype(np.float32) - base.astype(np.float32)).reshape(-1) for x in xs])
    act = np.abs(TV32) > eps
    c = act.sum(0)
    uniq = c == 1
    shared = c > 1
    tz = TV * act
    if plus:
        sc = (act & shared).sum(1)
        uc = (act & uniq).sum(1)
        rho = sc / np.maximum(uc, eps)
        lam = 1 + r * np.clip(rho, 0, alpha)
        res = (tz * uniq * lam[:, None] + tz * shared / np.maximum(c, 1)).sum(0)
    else:
        res = (tz * uniq + tz * shared / np.maximum(c, 1)).sum(0)
    return base + res.reshape(base.shape)


def fisher_merge(xs, fs, ws, floor, normalize_fishers, favor_target):
    num = 0
    den = 0
    for i, (x, f, w) in enumerate(zip(xs, fs, ws)):
        c = w / np.linalg.norm(f) if normalize_fishers else w
        ft = np.maximum(f, floor) if (not favor_target or i == 0) else f
        num = num + c * ft * x
        den = den + c * ft
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den


def gradient_matching(base, xs, fs, scales, alphas, f0, base_scale, delta0):
    H0 = base_scale * f0 + delta0
    Hs = [s * f for s, f in zip(scales, fs)]
    Hbar = H0 + sum(a * h for a, h in zip(alphas, Hs))
    acc = np.zeros_like(base)
    for a, h, x in zip(alphas, Hs, xs):
        acc = acc + a * (H0 + h) * (x - base)
    with np.errstate(divide="ignore", invalid="ignore"):
        upd = np.where(Hbar == 0, 0.0, acc / np.where(Hbar == 0, 1, Hbar))
    return base + upd


def agreement_decide(G, threshold, mode):
    """G: Gram matrix of task vectors (T x T). Returns coefficient vector c (m = sum c_i tau_i)."""
    T = G.shape[0]

    def cos_dist(c, i):
        # 1 - cos(m, tau_i), m = sum c tau
        mm = float(c @ G @ c)
        ti = float(G[i, i])
        if mm <= 0 or ti <= 0:
            return 2.0
        return 1 - float(c @ G[:, i]) / math.sqrt(mm * ti)

    if mode == "order_free":
        cbar = np.ones(T) / T
        acc = [i for i in range(T) if cos_dist(cbar, i) <= threshold]
        if not acc:
            return np.zeros(T), acc
        c = np.zeros(T)
        c[acc] = 1.0 / len(acc)
        return c, acc
    c = np.zeros(T)
    c[0] = 1
    n = 1
    acc = [0]
    for k in range(1, T):
        if cos_dist(c, k) <= threshold:
            e = np.zeros(T)
            e[k] = 1
            if mode == "sequential_pair":
                c = (c + e) / 2
            else:
                c = c + (e - c) / (n + 1)
            n += 1
            acc.append(k)
    return c, acc


# ----------------------------------------------------------------------------------------------

NEEDS_BASE_IN_INPUTS = {"karcher"}


def run(recipe_path):
    rdir = os.path.dirname(os.path.abspath(recipe_path))
    R = yaml.safe_load(open(recipe_path))
    method = R["merge_method"]
    mlist = R.get("models") or []
    models = [m["model"] if isinstance(m, dict) else m for m in mlist]
    base_ref = R.get("base_model")

    def path(m):
        return m if os.path.isabs(m) else os.path.join(rdir, m)

    cache = {}

    def load(m):
        if m not in cache:
            cache[m] = {k: v.astype(np.float64) for k, v in st.load(path(m)).items()}
        return cache[m]

    if R.get("slices"):
        for sl in R["slices"]:
            for so in sl["sources"]:
                if so["model"] not in models:
                    models.append(so["model"])
    others = [m for m in models if m != base_ref]
    inputs = list(models)
    if base_ref is not None and base_ref not in inputs:
        inputs.append(base_ref)
    mode = R.get("tensors", "strict")
    if R.get("slices"):
        where = slice_plan(R, load)
        P = SliceParams(R, where)
        names = list(where)

        def get(m, n):
            src = where[n][1]
            return load(m)[src[m]] if m in src else None
    else:
        allnames = set()
        for m in inputs:
            allnames |= set(load(m))
        P = Params(R, allnames)
        names = sorted(allnames)

        def get(m, n):
            return load(m).get(n)
    out = {}
    global_masks = None
    if method == "ties" and P.get("topk_scope", "", default="tensor") == "model":
        global_masks = ties_model_masks(others, {m: load(m) for m in others}, load(base_ref), names, P)
    agree_global = None
    if method == "agreement" and P.get("granularity", "", default="tensor") == "model":
        Tn = len(others)
        G = np.zeros((Tn, Tn))
        for n in names:
            taus = [(load(m)[n] - load(base_ref)[n]).reshape(-1) for m in others]
            for i in range(Tn):
                for j in range(Tn):
                    G[i, j] += taus[i] @ taus[j]
        agree_global = agreement_decide(G, float(P.get("threshold", "", default=1.0)), P.get("mode", "", default="sequential_mean"))

    for n in names:
        have = [m for m in inputs if get(m, n) is not None]
        if len(have) < len(inputs) and not R.get("slices"):
            if mode == "intersection":
                continue
            if mode != "union":
                raise RuntimeError(f"missing tensor {n}")
        ms = [m for m in models if get(m, n) is not None]
        xs = [get(m, n) for m in ms]
        oth = [m for m in others if get(m, n) is not None]
        xo = [get(m, n) for m in oth]
        base = get(base_ref, n) if base_ref is not None else None
        if method == "linear":
            r = linear(n, xs, ms, P)
        elif method in GTA:
            r = gta(method, n, base, xo, oth, P, global_masks)
        elif method == "slerp":
            t = float(P.get("t", n))
            r = slerp_vec(t, base, xo[0])
        elif method == "nuslerp":
            w1 = float(P.get("weight", n, oth[0]))
            w2 = float(P.get("weight", n, oth[1]))
            t = 0.5 if abs(w1 + w2) < 1e-6 else w2 / (w1 + w2)
            fl = as_bool(P.get("nuslerp_flatten", n, default=True))
            rw = as_bool(P.get("nuslerp_row_wise", n, default=False))
            if base is not None:
                r = base + nuslerp_rows(t, xo[0] - base, xo[1] - base, fl, rw)
            else:
                r = nuslerp_rows(t, xo[0], xo[1], fl, rw)
        elif method == "multislerp":
            ws = [float(P.get("weight", n, m)) for m in oth]
            r = multislerp(xo, ws, base, as_bool(P.get("normalize_weights", n, default=True)), float(P.get("eps", n, default=1e-8)))
        elif method == "karcher":
            allx = [get(m, n) for m in inputs if get(m, n) is not None]
            r = karcher(allx, int(P.get("max_iter", n, default=10)), float(P.get("tol", n, default=1e-5)))
        elif method == "model_stock":
            r = model_stock(base, xo, as_bool(P.get("filter_wise", n, default=False)))
        elif method == "nearswap":
            r = nearswap(float(P.get("t", n)), base, xo[0])
        elif method == "sce":
            r = sce(base, xo, float(P.get("select_topk", n, default=1.0)))
        elif method == "ram":
            r = ram(base, xo, float(P.get("epsilon", n, default=1e-5)))
        elif method == "ramplus_tl":
            r = ram(base, xo, float(P.get("epsilon", n, default=1e-5)), True,
                    float(P.get("r", n, default=0.1)), float(P.get("alpha", n, default=0.2)))
        elif method == "passthrough":
            r = xs[0] * float(P.get("scale", n, ms[0], default=1.0))
        elif method == "fisher":
            fs = [st.load(path(P.per_model[m]["fisher"]))[n].astype(np.float64) for m in ms]
            ws = [float(P.get("weight", n, m, default=1.0)) for m in ms]
            r = fisher_merge(xs, fs, ws, float(P.get("floor", n, default=1e-6)),
                             as_bool(P.get("normalize_fishers", n, default=True)),
                             as_bool(P.get("favor_target", n, default=True)))
        elif method == "gradient_matching":
            fs = [st.load(path(P.per_model[m]["fisher"]))[n].astype(np.float64) for m in oth]
            lam = float(P.get("lambda", n, default=1.0))
            alphas = [lam * float(P.get("weight", n, m, default=1.0)) for m in oth]
            scales = [float(P.get("scale", n, m, default=1.0)) for m in oth]
            bf = P.glob.get("base_fisher")
            f0 = st.load(path(bf))[n].astype(np.float64) if bf else np.zeros_like(base)
            r = gradient_matching(base, xo, fs, scales, alphas, f0,
                                  float(P.get("base_scale", n, default=1.0)),
                                  float(P.get("delta_0", n, default=1e-12)))
        elif method == "agreement":
            lam = float(P.get("lambda", n, default=1.0))
            taus = [x - base for x in xo]
            if agree_global is not None:
                c, acc = agree_global
            else:
                F = np.stack([t.reshape(-1) for t in taus])
                c, acc = agreement_decide(F @ F.T, float(P.get("threshold", n, default=1.0)),
                                          P.get("mode", n, default="sequential_mean"))
            r = base + lam * sum(ci * t for ci, t in zip(c, taus))
        else:
            raise NotImplementedError(method)
        out[n] = r
    return out


if __name__ == "__main__":
    res = run(sys.argv[1])
    st.save(sys.argv[2], res)

"""cmp.py RECIPE... : run CloudSoup and ref.py on each recipe; report max abs diff per recipe (and worst tensors)."""
import subprocess, sys, os, json, numpy as np, traceback
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
WORK = os.environ.get("CROSSCHECK_DIR", "/tmp/cloudsoup-crosscheck")
import st, ref
CS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "cloudsoup")
verbose = "-v" in sys.argv
for rp in [a for a in sys.argv[1:] if a != "-v"]:
    name = os.path.splitext(os.path.basename(rp))[0]
    out = f"{WORK}/out/{name}"
    subprocess.run(["rm", "-rf", out])
    p = subprocess.run([CS, "merge", rp, "--out", out], capture_output=True, text=True)
    cs_err = None
    if p.returncode != 0:
        cs_err = (p.stderr.strip().splitlines() or ["?"])[-1]
    try:
        R = ref.run(rp); ref_err = None
    except Exception as e:
        R = None; ref_err = f"{type(e).__name__}: {e}"
    if cs_err or ref_err:
        print(f"{name:32s} CS: {cs_err or 'ok'} | REF: {ref_err or 'ok'}")
        continue
    C = st.load(out)
    only_c = set(C) - set(R); only_r = set(R) - set(C)
    worst = []
    for k in sorted(set(C) & set(R)):
        c = C[k].astype(np.float64); r = R[k]
        if c.shape != r.shape:
            worst.append((np.inf, k, "shape")); continue
        bothnan = np.isnan(c) & np.isnan(r)
        bothinf = np.isinf(c) & np.isinf(r) & (np.sign(c) == np.sign(r))
        d = np.abs(c - r); d[bothnan | bothinf] = 0; d = np.nan_to_num(d, nan=np.inf)
        scale = max(1.0, float(np.nanmax(np.abs(np.nan_to_num(r, nan=0, posinf=0, neginf=0)))))
        worst.append((float(d.max()), k, f"argmax={np.unravel_index(d.argmax(), d.shape)} cs={c.flat[d.argmax()]:.7g} ref={r.flat[d.argmax()]:.7g}"))
    worst.sort(reverse=True)
    mx = worst[0][0] if worst else 0
    flag = "OK " if mx < 1e-5 and not only_c and not only_r else "BAD"
    print(f"{name:32s} {flag} maxdiff={mx:.3g} n={len(worst)}" + (f" only_cs={sorted(only_c)}" if only_c else "") + (f" only_ref={sorted(only_r)}" if only_r else ""))
    if flag == "BAD" or verbose:
        for w in worst[:6]:
            if w[0] > 1e-5 or verbose:
                print(f"     {w[0]:.3g} {w[1]} {w[2]}")
    warns = json.load(open(f"{out}/report.json")).get("warnings")
    if warns: print("     warnings:", warns[:3])

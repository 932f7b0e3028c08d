import numpy as np, sys
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref import *
b = np.array([1.0, -1.0, 0.5, 0.0])
t1 = np.array([0.5, -0.2, 0.0, 0.1]); t2 = np.array([-0.3, 0.4, 0.2, 0.1]); t3 = np.array([0.4, 0.1, -0.6, 0.0])
xs = [b + t1, b + t2, b + t3]
class FP:
    def __init__(s, d): s.d = d
    def get(s, k, name, model=None, default=None): return s.d.get(k, default)
print("ties", gta("ties", "x", b, xs, [0,1,2], FP({"weight":1.0, "density":0.5})), "exp [1.45,-0.6,-0.1,0]")
print("ties dis-sum l=.3", gta("ties", "x", b, xs, [0,1,2], FP({"weight":1.0, "density":0.5, "normalize":False, "lambda":0.3})), "exp [1.27,-0.88,0.32,0]")
print("ta .5", gta("task_arithmetic", "x", b, xs, [0,1,2], FP({"weight":1.0, "lambda":0.5})), "exp [1.3,-.85,.3,.1]")
print("ties .75", gta("ties", "x", b, xs, [0,1,2], FP({"weight":1.0, "density":0.75})), "exp [1.45,-0.75,-0.1,0.1]")
for v0, v1, t in [([1,0,0,0],[0,1,0,0],.25), ([2,0,0,0],[0,1,0,0],.5), ([1,0,0,0],[1,.01,0,0],.5), ([1,2,3,4],[0,0,0,0],.5)]:
    print("slerp", slerp_vec(t, np.array(v0,float), np.array(v1,float)))
print("slerp fixture", slerp_vec(0.3, xs[0], xs[1]), "exp [1.279342, -1.035765, 0.5698467, 0.101678]")
F = [np.array([1,0,2,0.]), np.array([1,1,0,0.]), np.array([2,1,2,0.])]
print("fisher norm all", fisher_merge(xs, F, [1,1,1], 1e-6, True, False), "exp [1.152742, -0.6961134, 0.2437696, 0.07759335]")
print("fisher norm fav", fisher_merge(xs, F, [1,1,1], 1e-6, True, True), "exp [1.152742, -0.6961134, 0.2437694, 0.1]")
print("gm a=1", gradient_matching(b, xs, F, [1,1,1], [1,1,1], np.ones(4), 1.0, 0.0), "exp [1.32,-0.7333333,0.18,0.2]")
print("gm a=.5", gradient_matching(b, xs, F, [1,1,1], [.5,.5,.5], np.ones(4), 1.0, 0.0), "exp [1.266667,-0.8,0.2333333,0.1]")
print("ms", model_stock(b, [xs[0], xs[2]], False), "exp [1.279915, -1.031102, 0.3133903, 0.03110162]")
T = np.stack([t1,t2,t3]); G = T @ T.T
for thr, mode in [(2,"sequential_mean"),(2,"sequential_pair"),(1,"sequential_mean"),(.5,"sequential_mean"),(1,"order_free")]:
    c, acc = agreement_decide(G, thr, mode); print("agree", thr, mode, acc, b + c @ T)

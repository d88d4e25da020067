"""Full-batch gradient descent steps of a Dense/Erf/Relu network in NumPy, timed (bench/train.sh).

The same step as `ntk train --optimizer gd` (dev.ntk.kernels.train.Trainer): NTK parameterization
(z = W_std / sqrt(fan_in) x W + b_std b with N(0, 1) draws W, b), MSE |f - y|^2 / (2 y.size), the
gradient in the N(0, 1) draws, p -= lr g. With --params DIR the initial parameters are read from
DIR/p0_<i>.npy (written by TrainBench --save, in W, b order per layer) and the test outputs after
--steps steps are compared with DIR/test_after.npy.

  python3 bench/train_numpy.py --model M.json --x-train X.npy --y-train Y.npy --x-test XT.npy \
      [--steps 50] [--repeats 3] [--lr 0.1] [--params DIR]
"""
import argparse
import json
import pathlib
import time

import numpy as np
from scipy.special import erf


def layers(model):
    out = []
    for entry in model["serial"]:
        (name, args), = entry.items()
        if name not in ("Dense", "Erf", "Relu"):
            raise SystemExit(f"train_numpy.py handles Dense, Erf and Relu, not {name}")
        out.append((name, args))
    return out


def init(spec, d, rng):
    params = []
    for name, args in spec:
        if name == "Dense":
            params.append(rng.standard_normal((d, args["out_dim"])))
            params.append(rng.standard_normal(args["out_dim"]))
            d = args["out_dim"]
    return params


def step(spec, params, x, y, lr, grads=None):
    """One gradient step, in place: the parameters, and the weight gradients in `grads` (reused
    buffers, as a tuned NumPy loop would: on the loaded test machine each fresh 2 MiB array cost
    about 100 ms of page faults, more than the step's arithmetic). Returns the parameters."""
    acts = []
    h = x
    i = 0
    for name, args in spec:
        acts.append(h)
        if name == "Dense":
            s = args.get("W_std", 1.0) / np.sqrt(h.shape[1])
            h = s * (h @ params[i]) + args["b_std"] * params[i + 1]
            i += 2
        elif name == "Erf":
            h = erf(h)
        else:
            h = np.maximum(h, 0)
    g = (h - y) / y.size
    if grads is None:
        grads = [np.empty_like(p) for p in params]
    i = len(params)
    for (name, args), a in zip(reversed(spec), reversed(acts)):
        if name == "Dense":
            i -= 2
            s = args.get("W_std", 1.0) / np.sqrt(a.shape[1])
            gz = s * g
            np.matmul(a.T, gz, out=grads[i])
            np.multiply(g.sum(0), args["b_std"], out=grads[i + 1])
            g = gz @ params[i].T
        elif name == "Erf":
            g = g * (2 / np.sqrt(np.pi)) * np.exp(-a * a)
        else:
            g = g * (a > 0)
    for p, q in zip(params, grads):
        np.multiply(q, lr, out=q)
        p -= q
    return params


def apply(spec, params, x):
    h = x
    i = 0
    for name, args in spec:
        if name == "Dense":
            h = args.get("W_std", 1.0) / np.sqrt(h.shape[1]) * (h @ params[i]) + args["b_std"] * params[i + 1]
            i += 2
        elif name == "Erf":
            h = erf(h)
        else:
            h = np.maximum(h, 0)
    return h


def main():
    ap = argparse.ArgumentParser()
    for a in ("--model", "--x-train", "--y-train", "--x-test"):
        ap.add_argument(a, required=True)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--params")
    o = ap.parse_args()
    spec = layers(json.loads(pathlib.Path(o.model).read_text()))
    x, y, xt = np.load(o.x_train), np.load(o.y_train), np.load(o.x_test)
    y = y.reshape(len(x), -1)
    if o.params:
        d = pathlib.Path(o.params)
        params0 = [np.load(d / f"p0_{i}.npy") for i in range(2 * sum(n == "Dense" for n, _ in spec))]
    else:
        params0 = init(spec, x.shape[1], np.random.default_rng(0))
    grads = [np.empty_like(q) for q in params0]
    p = [q.copy() for q in params0]
    for _ in range(5):  # warm-up
        step(spec, p, x, y, o.lr, grads)
    best = float("inf")
    for _ in range(o.repeats):
        p = [q.copy() for q in params0]
        start = time.perf_counter()
        for _ in range(o.steps):
            step(spec, p, x, y, o.lr, grads)
        best = min(best, time.perf_counter() - start)
    line = f"RESULT numpy steps={o.steps} best_seconds={best:.3f} steps_per_s={o.steps / best:.1f}"
    if o.params:
        want = np.load(pathlib.Path(o.params) / "test_after.npy")
        got = apply(spec, p, xt)
        line += f" max_abs_diff_vs_java={np.abs(got - want.reshape(got.shape)).max():.3g}"
    print(line)


if __name__ == "__main__":
    main()

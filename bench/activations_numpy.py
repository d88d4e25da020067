#!/usr/bin/env python3
"""Vectorised NumPy NNGP and NTK of a serial Dense/activation network, for bench/activations.sh.

The same formulas as the library (neural-tangents' conventions, NTK parameterization), x1 = x2:

* Dense:  nngp' = W^2 nngp + b^2 (var likewise), ntk' = nngp' + W^2 ntk
* Relu:   the arc-cosine kernel (as bench/numpy_reference.py)
* Erf:    (2/pi) arcsin(2k / sqrt((1 + 2 q1)(1 + 2 q2))), factor (4/pi) / sqrt((1 + 2 q1)(1 + 2 q2) - 4 k^2)
* Gelu:   the closed form of docs/MODEL_SPEC.md (neural-tangents' Gelu)
* ElementwiseNumerical tanh, deg: neural-tangents' Gauss-Hermite rule, sum over i of
          w_i f(u_i) / pi * sum over j of w_j f(k / sqrt(q1 / 2) x_i + sqrt(2 (q2 - k^2 / q1)) x_j),
          one (n, n) array pass per node pair (deg^2 per layer)

Prints a RESULT line with the best of --repeats timings of the kernel computation.
"""

import argparse
import json
import math
import time

import numpy as np
from numpy.polynomial.hermite import hermgauss


def read_layers(path):
    with open(path, encoding="utf-8") as f:
        model = json.load(f)
    steps = []
    for i, layer in enumerate(model["serial"]):
        (name, args), = layer.items()
        if name == "Dense":
            w = float(args.get("W_std", 1.0))
            b = args.get("b_std", 0.0)
            b = 0.0 if b is None else float(b)
            steps.append(("Dense", w * w, b * b))
        elif name in ("Relu", "Erf", "Gelu"):
            steps.append((name, None, None))
        elif name == "ElementwiseNumerical" and args.get("fn") == "tanh":
            steps.append((name, int(args.get("deg", 25)), None))
        else:
            raise SystemExit(f"serial[{i}]: {name} {args} is not implemented here")
    return steps


def kernels(x, steps):
    d = x.shape[1]
    nngp = x @ x.T
    nngp /= d
    var = np.einsum("ij,ij->i", x, x) / d
    ntk = np.zeros_like(nngp)
    for kind, a, b in steps:
        if kind == "Dense":
            nngp *= a
            nngp += b
            var = var * a + b
            ntk *= a
            ntk += nngp
            continue
        q1 = var[:, None]
        q2 = var[None, :]
        k = nngp
        if kind == "Relu":
            scale = np.sqrt(q1 * q2)
            c = np.clip(k / scale, -1.0, 1.0)
            angle = math.pi - np.arccos(c)
            nngp = scale / (2 * math.pi) * (np.sqrt(1 - c * c) + angle * c)
            factor = angle / (2 * math.pi)
            var = var / 2
        elif kind == "Erf":
            s = (1 + 2 * q1) * (1 + 2 * q2)
            root = np.sqrt(np.maximum(s - 4 * k * k, 0))
            nngp = (2 / math.pi) * np.arctan2(2 * k, root)
            factor = (4 / math.pi) / root
            var = (2 / math.pi) * np.arctan2(2 * var, np.sqrt(1 + 4 * var))
        elif kind == "Gelu":
            s12 = (q1 + 1) * (q2 + 1)
            d2 = np.maximum(s12 - k * k, 0)
            dd = np.sqrt(d2)
            angle = np.arctan2(k, dd)
            p = q1 * q2
            nngp = k / 4 + ((k * k + p * d2) / (s12 * dd) + k * angle) / (2 * math.pi)
            factor = 0.25 + angle / (2 * math.pi) + k / (2 * math.pi * dd) * (1 / d2 + (1 - p) / s12 + 1)
            root = np.sqrt(2 * var + 1)
            var = var * (0.25 + (var / ((var + 1) * root) + 0.5 * np.arctan2(var, root)) / math.pi)
        else:  # ElementwiseNumerical tanh, NT's arrangement
            xs, ws = hermgauss(a)
            xs = xs.astype(x.dtype)
            ws = ws.astype(x.dtype)
            scale = np.sqrt(np.maximum(2 * q1, 0))
            slope = k / np.sqrt(np.maximum(q1 / 2, 1e-30))
            rest = np.sqrt(np.maximum(2 * (q2 - k * k / q1), 0))
            nngp_new = np.zeros_like(k)
            factor = np.zeros_like(k)
            for i in range(a):
                fu = np.tanh(scale * xs[i])
                dfu = 1 - fu * fu
                inner = np.zeros_like(k)
                dinner = np.zeros_like(k)
                shift = slope * xs[i]
                for j in range(a):
                    fv = np.tanh(shift + rest * xs[j])
                    inner += ws[j] * fv
                    dinner += ws[j] * (1 - fv * fv)
                nngp_new += (ws[i] / math.pi) * fu * inner
                factor += (ws[i] / math.pi) * dfu * dinner
            nngp = nngp_new
            v = np.zeros_like(var)
            for i in range(a):
                f = np.tanh(np.sqrt(2 * var) * xs[i])
                v += ws[i] * f * f / math.sqrt(math.pi)
            var = v
        ntk = ntk * factor
    return nngp.astype(x.dtype), ntk.astype(x.dtype)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--x", required=True)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    steps = read_layers(a.model)
    x = np.load(a.x).astype(a.dtype)
    x = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    best = math.inf
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        nngp, ntk = kernels(x, steps)
        best = min(best, time.perf_counter() - t0)
    n = x.shape[0]
    print(f"RESULT numpy dtype={a.dtype} n={n} seconds={best:.6f} nngp_sum={float(nngp.sum()):.6g} "
          f"ntk_sum={float(ntk.sum()):.6g} numpy={np.__version__}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Vectorised NumPy reference for the benchmark: NNGP and NTK of a serial Dense/Relu network.

The recursion follows neural-tangents' conventions with the NTK parameterization:

* inputs:  nngp = x1 x2^T / d, var = |x|^2 / d (the diagonal), ntk = 0
* Dense:   nngp' = W_std^2 nngp + b_std^2 (var likewise), ntk' = nngp' + W_std^2 ntk
* Relu:    with c = nngp / sqrt(var1 var2) clipped to [-1, 1],
           nngp' = sqrt(var1 var2) / (2 pi) * (sqrt(1 - c^2) + (pi - arccos c) c),
           ntk'  = ntk (pi - arccos c) / (2 pi),  var' = var / 2

Only x1 = x2 is computed (one input set), as in the benchmark. The kernel computation (not the
data generation or loading) is timed with time.perf_counter, best of --repeats, and printed as a
line starting with RESULT. With --check DIR the float64 NTK and NNGP of the same inputs are
compared with DIR/ntk.npy and DIR/nngp.npy (written by `bin/ntk kernel`), printing CHECK lines
(max_rel_diff = max |got - reference| / max |reference|; for a float32 file also the same measure
for NumPy's own float32 computation, numpy_float32_rel_diff, for scale: near the diagonal the
correlation is close to 1, where arccos is ill-conditioned, and float32 loses digits there).

Examples:
    python3 bench/numpy_reference.py --n 4096 --d 784 --dtype float32 --seed 0
    python3 bench/numpy_reference.py --x X.npy --dtype float64 --check out/kernel
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np


def read_layers(model_path):
    """The model as a list of ("Dense", W_std^2, b_std^2) and ("Relu", None, None) steps."""
    with open(model_path, encoding="utf-8") as f:
        model = json.load(f)
    if not (isinstance(model, dict) and list(model) == ["serial"]):
        raise SystemExit(f"{model_path}: expected {{\"serial\": [...]}} at the top")
    steps = []
    for i, layer in enumerate(model["serial"]):
        (name, args), = layer.items()
        if name == "Dense":
            if args.get("parameterization", "ntk") != "ntk":
                raise SystemExit(f"serial[{i}].Dense: only the ntk parameterization is supported")
            w_std = float(args.get("W_std", 1.0))
            b_std = args.get("b_std", 0.0)
            b_std = 0.0 if b_std is None else float(b_std)
            steps.append(("Dense", w_std * w_std, b_std * b_std))
        elif name == "Relu":
            steps.append(("Relu", None, None))
        else:
            raise SystemExit(f"serial[{i}]: only Dense and Relu are supported, got {name}")
    return steps


def kernels(x, steps):
    """NNGP and NTK of the rows of x with themselves; the result has x's dtype."""
    d = x.shape[1]
    nngp = x @ x.T
    nngp /= d
    var = np.einsum("ij,ij->i", x, x) / d
    ntk = np.zeros_like(nngp)
    two_pi = 2.0 * math.pi
    for kind, w2, b2 in steps:
        if kind == "Dense":
            nngp *= w2
            nngp += b2
            var = var * w2 + b2
            ntk *= w2
            ntk += nngp
        else:
            std = np.sqrt(var)
            scale = np.outer(std, std)          # sqrt(var1 var2)
            c = nngp                            # reuse the buffer: nngp is rebuilt below
            c /= scale
            np.clip(c, -1.0, 1.0, out=c)
            angle = np.arccos(c)
            np.subtract(math.pi, angle, out=angle)  # pi - arccos c
            sine = np.square(c)
            np.subtract(1.0, sine, out=sine)
            np.sqrt(sine, out=sine)                 # sqrt(1 - c^2)
            c *= angle
            c += sine
            c *= scale
            c /= two_pi
            nngp = c
            angle /= two_pi
            ntk *= angle
            var = var / 2.0
            del std, scale, angle, sine
    return nngp, ntk


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.path.join(here, "relu21.json"))
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--d", type=int, default=784)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--x", help="read the inputs from this .npy instead of drawing them")
    p.add_argument("--repeats", type=int, default=3, help="timed runs, best reported; 0: no timing")
    p.add_argument("--check", metavar="DIR", action="append", default=[],
                   help="compare with DIR/ntk.npy and DIR/nngp.npy (needs --x: the same inputs);"
                        " may be repeated")
    p.add_argument("--save", metavar="DIR",
                   help="compute the kernels once and save DIR/nngp.npy and DIR/ntk.npy (the peer of"
                        " `bin/ntk kernel`, timed as a whole process by bench/run.sh)")
    a = p.parse_args()

    steps = read_layers(a.model)
    dtype = np.dtype(a.dtype)
    if a.x:
        x64 = np.load(a.x).astype(np.float64)
        x64 = x64.reshape(x64.shape[0], -1)
    else:
        x64 = np.random.default_rng(a.seed).standard_normal((a.n, a.d))
    x = np.ascontiguousarray(x64.astype(dtype))
    n, d = x.shape

    if a.repeats > 0:
        best = math.inf
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            nngp, ntk = kernels(x, steps)
            best = min(best, time.perf_counter() - t0)
            del nngp, ntk
        print(f"RESULT numpy dtype={a.dtype} n={n} d={d} seconds={best:.6f} "
              f"entries_per_s={n * n / best:.6g} repeats={a.repeats} numpy={np.__version__}")

    if a.save:
        os.makedirs(a.save, exist_ok=True)
        nngp, ntk = kernels(x, steps)
        np.save(os.path.join(a.save, "nngp.npy"), nngp)
        np.save(os.path.join(a.save, "ntk.npy"), ntk)
        del nngp, ntk

    if a.check:
        if not a.x:
            print("CHECK skipped: --check needs --x (the inputs bin/ntk was given)", file=sys.stderr)
            return 2
        ref = dict(zip(("nngp", "ntk"), kernels(x64, steps)))
        ref32 = None
        status = 0
        for directory in a.check:
            for name in ("nngp", "ntk"):
                path = os.path.join(directory, name + ".npy")
                if not os.path.exists(path):
                    print(f"CHECK kernel={name} file={path} missing")
                    status = 1
                    continue
                raw = np.load(path)
                got = raw.astype(np.float64)
                want = ref[name]
                if got.shape != want.shape:
                    print(f"CHECK kernel={name} file={path} shape {got.shape} != {want.shape}")
                    status = 1
                    continue
                diff = np.abs(got - want)
                scale = np.max(np.abs(want))
                elementwise = diff / np.maximum(np.abs(want), 1e-12 * scale)
                extra = ""
                if raw.dtype == np.float32:
                    # For context: how far NumPy itself is off in float32 on these inputs.
                    if ref32 is None:
                        ref32 = dict(zip(("nngp", "ntk"), kernels(x64.astype(np.float32), steps)))
                    own = np.max(np.abs(ref32[name].astype(np.float64) - want)) / scale
                    extra = f" numpy_float32_rel_diff={own:.3e}"
                print(f"CHECK kernel={name} file={path} dtype={raw.dtype} "
                      f"max_abs_diff={diff.max():.3e} max_rel_diff={diff.max() / scale:.3e} "
                      f"max_elementwise_rel_diff={elementwise.max():.3e}{extra}")
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""NumPy + SciPy reference for the prediction benchmark (bench/predict.sh).

    make  --n N --m M --k K --d D --seed S --out DIR   writes DIR/x_train.npy (N, D),
          DIR/y_train.npy (N, K), DIR/x_test.npy (M, D): standard normal, seeded
    solve --dir DIR --model M.json --diag-reg R [--check MEAN.npy]
          exact NNGP inference as `bin/ntk predict --get nngp --diag-reg R` does it: the
          NNGP of the Dense/Relu model (float64) between train-train and test-train inputs, then
          scipy.linalg.cho_factor/cho_solve of K_dd + R * trace(K_dd) / N * I against y, and
          mean = K_td alpha. Prints RESULT lines with the kernel time and the factor + solve time
          (time.perf_counter) and, with --check, the largest difference from MEAN.npy relative
          to the largest |mean|.
    ensemble --dir DIR --model M.json --diag-reg R --times T
          the NTK ensemble mean at T log-spaced times through numpy.linalg.eigh, timed.
    fashion --n N --m M --out DIR [--data /usr/share/datasets/fashion-mnist]
          Fashion-MNIST (Debian's dataset-fashion-mnist): the first N training and first M test
          images as DIR/x_train.npy (N, 784) and DIR/x_test.npy (M, 784), each image standardized
          (pixels minus the image's mean, over their standard deviation), DIR/y_train.npy the
          one-hot labels minus 0.1 (N, 10) and DIR/labels_test.npy the test labels (M,).

solve also takes --get nngp|ntk (the kernel inverted: the NNGP posterior mean or the NTK ensemble
trained to convergence, `bin/ntk predict --t inf`), --dtype float32|float64 (the kernels and the
factorization in that precision) and --labels LABELS.npy (prints accuracy= of argmax(mean) and,
with --check, of MEAN.npy).

The kernel recursion is numpy_reference.py's (neural-tangents' conventions), for two input sets.
"""

import argparse
import math
import os
import sys
import time

import numpy as np
import scipy
import scipy.linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_reference import read_layers  # noqa: E402


def cross_kernels(x1, x2, steps, with_ntk=True):
    """NNGP and NTK between the rows of x1 and x2 (NTK None unless with_ntk), in x1's dtype.

    Each ReLU step works in place on three kernel-sized arrays (the kernel, the variances' outer
    product, the angle), so that 30,000 x 30,000 float32 kernels fit a 24 GB machine.
    """
    d = x1.shape[1]
    nngp = x1 @ x2.T / d
    var1 = np.einsum("ij,ij->i", x1, x1) / d
    var2 = np.einsum("ij,ij->i", x2, x2) / d
    ntk = np.zeros_like(nngp) if with_ntk else None
    for kind, w2, b2 in steps:
        if kind == "Dense":
            nngp *= w2
            nngp += b2
            var1, var2 = var1 * w2 + b2, var2 * w2 + b2
            if with_ntk:
                ntk *= w2
                ntk += nngp
        else:
            scale = np.outer(np.sqrt(var1), np.sqrt(var2)).astype(nngp.dtype, copy=False)
            c = nngp
            c /= scale
            np.clip(c, -1.0, 1.0, out=c)
            angle = np.arccos(c)
            np.subtract(math.pi, angle, out=angle)
            if with_ntk:
                ntk *= angle
                ntk /= 2 * math.pi
            angle *= c
            np.multiply(c, c, out=c)
            np.subtract(1.0, c, out=c)
            np.sqrt(c, out=c)
            c += angle
            del angle
            c *= scale
            del scale
            c /= 2 * math.pi
            nngp = c
            var1, var2 = var1 / 2.0, var2 / 2.0
    return nngp, ntk


def fashion(data, n, m, out):
    """Writes the first n training and m test images of Fashion-MNIST as the benchmark's inputs."""
    import gzip

    def images(name, count):
        with gzip.open(os.path.join(data, name), "rb") as f:
            raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:count].astype(np.float64)
        raw -= raw.mean(axis=1, keepdims=True)
        return raw / raw.std(axis=1, keepdims=True)

    def labels(name, count):
        with gzip.open(os.path.join(data, name), "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=8)[:count].astype(np.int64)

    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "x_train.npy"), images("train-images-idx3-ubyte.gz", n))
    np.save(os.path.join(out, "y_train.npy"), np.eye(10)[labels("train-labels-idx1-ubyte.gz", n)] - 0.1)
    np.save(os.path.join(out, "x_test.npy"), images("t10k-images-idx3-ubyte.gz", m))
    np.save(os.path.join(out, "labels_test.npy"), labels("t10k-labels-idx1-ubyte.gz", m))


def regularized(k, diag_reg, copy=True):
    if copy:
        k = k.copy()
    k[np.diag_indices_from(k)] += diag_reg * np.trace(k) / k.shape[0]
    return k


def check(path, want):
    """Prints the largest difference of the means in path from want, relative to max |want|."""
    if path:
        got = np.load(path)
        rel = np.max(np.abs(got - want)) / np.max(np.abs(want))
        print(f"CHECK mean={path} max_rel_diff={rel:.3e}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["make", "solve", "ensemble", "fashion"])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--m", type=int, default=500)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--d", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    p.add_argument("--dir")
    p.add_argument("--model")
    p.add_argument("--diag-reg", type=float, default=1e-4)
    p.add_argument("--times", type=int, default=100)
    p.add_argument("--check")
    p.add_argument("--get", choices=["nngp", "ntk"], default="nngp")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--labels")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = p.parse_args()

    if a.command == "make":
        rng = np.random.default_rng(a.seed)
        os.makedirs(a.out, exist_ok=True)
        np.save(os.path.join(a.out, "x_train.npy"), rng.standard_normal((a.n, a.d)))
        np.save(os.path.join(a.out, "y_train.npy"), rng.standard_normal((a.n, a.k)))
        np.save(os.path.join(a.out, "x_test.npy"), rng.standard_normal((a.m, a.d)))
        return 0

    if a.command == "fashion":
        fashion(a.data, a.n, a.m, a.out)
        return 0

    steps = read_layers(a.model)
    dtype = np.dtype(a.dtype)
    x = np.load(os.path.join(a.dir, "x_train.npy")).astype(dtype)
    y = np.load(os.path.join(a.dir, "y_train.npy")).astype(dtype)
    xt = np.load(os.path.join(a.dir, "x_test.npy")).astype(dtype)
    n = x.shape[0]
    t0 = time.perf_counter()
    # solve --get nngp needs no NTK: it is not computed (as bin/ntk predict --get nngp does not)
    with_ntk = a.command != "solve" or a.get == "ntk"
    kdd, ntk_dd = cross_kernels(x, x, steps, with_ntk)
    ktd, ntk_td = cross_kernels(xt, x, steps, with_ntk)
    t_kernel = time.perf_counter() - t0
    if a.command == "solve":
        t0 = time.perf_counter()
        train, cross = (kdd, ktd) if a.get == "nngp" else (ntk_dd, ntk_td)
        del kdd, ntk_dd
        factor = scipy.linalg.cho_factor(regularized(train, a.diag_reg, copy=False), lower=True, overwrite_a=True)
        alpha = scipy.linalg.cho_solve(factor, y)
        mean = cross @ alpha
        t_solve = time.perf_counter() - t0
        print(f"RESULT reference=numpy_scipy get={a.get} dtype={a.dtype} n={n} m={xt.shape[0]} k={y.shape[1]} "
              f"kernel_s={t_kernel:.3f} factor_solve_s={t_solve:.3f} numpy={np.__version__} scipy={scipy.__version__}")
        if a.labels:
            labels = np.load(a.labels)
            print(f"RESULT accuracy={np.mean(np.argmax(mean, 1) == labels):.4f}")
            if a.check:
                print(f"RESULT tool_accuracy={np.mean(np.argmax(np.load(a.check), 1) == labels):.4f}")
        check(a.check, mean)
    else:
        times = np.logspace(-1, 4, a.times)
        t0 = time.perf_counter()
        w, v = np.linalg.eigh(regularized(ntk_dd, a.diag_reg))
        rotated = ntk_td @ v
        projected = v.T @ y
        tau = times[:, None] * 1.0 / y.size
        coeff = -np.expm1(-w[None, :] * tau) / w[None, :]
        means = np.einsum("mn,tn,nk->tmk", rotated, coeff, projected)
        t_ens = time.perf_counter() - t0
        print(f"RESULT reference=numpy_ensemble n={n} times={a.times} kernel_s={t_kernel:.3f} "
              f"eigh_predict_s={t_ens:.3f}")
        check(a.check, means)
    return 0


if __name__ == "__main__":
    sys.exit(main())

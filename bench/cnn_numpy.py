#!/usr/bin/env python3
"""Vectorised NumPy reference for the convolutional benchmark (a benchmark aid, not the library).

The network is neural-tangents' README performance benchmark: 21 x [Conv(out_chan=1, filter
(3, 3), strides (1, 1), 'SAME'), Relu], on 32x32x3 inputs. Its README builds `stax.Conv(1, (3,
3), (1, 1), 'SAME')` with the defaults W_std = 1.0 and b_std = None (no bias), and so does this
script (--w-std, --b-std to change them). The readout is Flatten or GlobalAvgPool, followed here
by Dense(1) (W_std = 1, no bias; neural-tangents' table stops at the readout, which changes the
NTK by adding the NNGP and costs nothing measurable). NTK parameterization throughout.

The NNGP and NTK recursion, with neural-tangents' conventions, for one input set x (N, H, W, C)
against itself (x1 = x2, so the variances are the diagonal of the kernel itself):

* input:  K[i, j, p, q] = sum_c x[i, p, c] x[j, q, c] / C,  Theta = 0
* Conv (SAME, stride 1, filter f): K'[p, q] = W^2 mean_a Kpad[p + a, q + a] + b^2 over the f*f
  joint shifts a of both pixel indices, zero padding counted in the mean (the total pad f - 1
  split with the smaller half first); Theta' = K' + W^2 mean_a Thetapad[p + a, q + a]
* Relu:   with v_i[p] = K[i, i, p, p], s = sqrt(max(v_i[p] v_j[q] - K^2, 0)), angle =
  atan2(s, K) (accurate near the diagonal, as the library's Elementwise.ABRelu):
  K' = s / (2 pi) + (pi - angle) / (2 pi) K,  Theta' = Theta (pi - angle) / (2 pi)
* Flatten: the mean over pixels of the diagonal K[i, j, p, p]; GlobalAvgPool: the mean over all
  pixel pairs (p, q); then Dense(1): K' = W^2 K + b^2, Theta' = K' + W^2 Theta.

With --readout flatten no layer needs pixel pairs p != q, so only the per-pixel kernels K[i, j, p]
are kept: O(N^2 P) per layer, P = H W. With --readout gap the full covariance is kept: O(N^2 P^2)
per layer, processed in chunks of (i, j) pairs in place, so memory is two N^2 P^2 arrays (NNGP and
NTK) plus a chunk's temporaries.

Prints the kernel computation time (best of --repeat, excluding data generation and loading) and
ms per kernel entry, N^2 entries. --save DIR writes x.npy, nngp.npy and ntk.npy ((N, N)).
--self-check compares the two modes on a small model (the Flatten readout from the full covariance
against the diagonal-only path) and exits; --mc-check compares the recursion, on a small model with
a bias, with Monte Carlo estimates over finite networks of the same layers (NNGP from the outputs,
NTK from central-difference Jacobian-vector products along random directions) and exits.

Examples:
    python3 bench/cnn_numpy.py --readout flatten --n 64 --dtype float32
    python3 bench/cnn_numpy.py --readout gap --n 8 --dtype float32 --save out/cnn_gap
"""

import argparse
import math
import os
import sys
import time

import numpy as np


def input_kernel(x, diagonal):
    """The input kernel, (N*N, H, W) per pixel or (N*N, H, W, H, W) for all pixel pairs."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    if diagonal:
        k = np.einsum("ipc,jpc->ijp", flat, flat, optimize=True)
        k /= c
        return k.reshape(n * n, h, w)
    rows = flat.reshape(n * h * w, c)
    k = (rows @ rows.T).reshape(n, h * w, n, h * w)
    k = np.ascontiguousarray(k.transpose(0, 2, 1, 3))
    k /= c
    return k.reshape(n * n, h, w, h, w)


def conv_chunk(k, f, w2, b2):
    """In place: W^2 mean over the f*f joint shifts of zero-padded k (pairs first), + b^2."""
    spatial = k.ndim - 1
    h, w = k.shape[1], k.shape[2]
    lo = (f - 1) // 2
    hi = f - 1 - lo
    padded = np.pad(k, [(0, 0)] + [(lo, hi)] * spatial)
    k[...] = 0
    for dh in range(f):
        for dw in range(f):
            if spatial == 2:
                k += padded[:, dh:dh + h, dw:dw + w]
            else:
                k += padded[:, dh:dh + h, dw:dw + w, dh:dh + h, dw:dw + w]
    k *= w2 / (f * f)
    if b2:
        k += b2


def relu_chunk(k, theta, vi, vj):
    """In place: the ReLU rule on a chunk, with the pairs' variances vi, vj (chunk, H, W)."""
    if k.ndim == 3:
        prod = vi * vj
    else:
        c, h, w = vi.shape
        prod = (vi.reshape(c, h * w, 1) * vj.reshape(c, 1, h * w)).reshape(k.shape)
    sine = prod                                   # reuse: prod is not needed afterwards
    sine -= k * k
    np.maximum(sine, 0, out=sine)
    np.sqrt(sine, out=sine)
    angle = np.arctan2(sine, k)
    # dot = (pi - angle) / (2 pi), in place of angle
    angle *= -1.0 / (2 * math.pi)
    angle += 0.5
    theta *= angle
    k *= angle
    sine *= 1.0 / (2 * math.pi)
    k += sine


def kernels(x, depth, f, w_std, b_std, readout, chunk_bytes=64 << 20):
    """NNGP and NTK (N, N) of the benchmark network on x against itself."""
    n = x.shape[0]
    diagonal = readout == "flatten"
    w2 = w_std * w_std
    b2 = b_std * b_std
    nngp = input_kernel(x, diagonal)
    ntk = np.zeros_like(nngp)
    pair_size = nngp[0].size
    chunk = max(1, chunk_bytes // (pair_size * nngp.itemsize))
    diag_pairs = np.arange(n) * (n + 1)
    pair_i = np.arange(n * n) // n
    pair_j = np.arange(n * n) % n
    hw = nngp.shape[1:3]
    for _ in range(depth):
        for s in range(0, n * n, chunk):
            part = slice(s, min(s + chunk, n * n))
            conv_chunk(nngp[part], f, w2, b2)
            conv_chunk(ntk[part], f, w2, 0.0)
            ntk[part] += nngp[part]
        if diagonal:
            var = nngp[diag_pairs]                               # (N, H, W)
        else:
            p = hw[0] * hw[1]
            var = np.stack([nngp[t].reshape(p, p).diagonal() for t in diag_pairs]).reshape((n,) + hw)
        for s in range(0, n * n, chunk):
            part = slice(s, min(s + chunk, n * n))
            relu_chunk(nngp[part], ntk[part], var[pair_i[part]], var[pair_j[part]])
    axes = tuple(range(1, nngp.ndim))
    k = nngp.mean(axis=axes).reshape(n, n)
    t = ntk.mean(axis=axes).reshape(n, n)
    # Dense(1), W_std = 1, no bias.
    return k, k + t


def self_check():
    """Flatten from the full covariance equals the diagonal-only path (small model)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 5, 2))
    worst = 0.0
    for f in (2, 3):
        # Full covariance, then the Flatten readout by hand from its pixel diagonal.
        n = x.shape[0]
        nngp = input_kernel(x, False)
        ntk = np.zeros_like(nngp)
        var_idx = np.arange(n) * (n + 1)
        for _ in range(4):
            conv_chunk(nngp, f, 1.7, 0.09)
            conv_chunk(ntk, f, 1.7, 0.0)
            ntk += nngp
            p = 30
            var = np.stack([nngp[t].reshape(p, p).diagonal() for t in var_idx]).reshape(n, 6, 5)
            idx = np.arange(n * n)
            relu_chunk(nngp, ntk, var[idx // n], var[idx % n])
        diag = lambda a: np.stack([a[t].reshape(30, 30).diagonal() for t in range(n * n)])
        full_nngp = diag(nngp).mean(axis=1).reshape(n, n)
        full_ntk = diag(ntk).mean(axis=1).reshape(n, n)
        full_ntk = full_nngp + full_ntk
        # Diagonal path with the same layers.
        nngp = input_kernel(x, True)
        ntk = np.zeros_like(nngp)
        for _ in range(4):
            conv_chunk(nngp, f, 1.7, 0.09)
            conv_chunk(ntk, f, 1.7, 0.0)
            ntk += nngp
            var = nngp[var_idx]
            idx = np.arange(n * n)
            relu_chunk(nngp, ntk, var[idx // n], var[idx % n])
        d_nngp = nngp.mean(axis=(1, 2)).reshape(n, n)
        d_ntk = d_nngp + ntk.mean(axis=(1, 2)).reshape(n, n)
        for a, b in ((full_nngp, d_nngp), (full_ntk, d_ntk)):
            worst = max(worst, float(np.max(np.abs(a - b)) / np.max(np.abs(b))))
    print(f"SELF-CHECK flatten from full covariance vs diagonal path: max rel diff {worst:.3e}")
    return worst < 1e-12


def finite_network(params, x, readout, w_std, b_std, f):
    """The finite network of the same layers, NTK parameterization: outputs (N, width)."""
    lo = (f - 1) // 2
    z = x
    for w, b in params[:-1]:
        n, h, wd, c = z.shape
        zp = np.pad(z, [(0, 0), (lo, f - 1 - lo), (lo, f - 1 - lo), (0, 0)])
        patches = np.stack([zp[:, dh:dh + h, dw:dw + wd] for dh in range(f) for dw in range(f)],
                           axis=3).reshape(n, h, wd, f * f * c)
        z = w_std / math.sqrt(f * f * c) * (patches @ w) + b_std * b
        z = np.maximum(z, 0)
    z = z.reshape(z.shape[0], -1) if readout == "flatten" else z.mean(axis=(1, 2))
    v, = params[-1]
    return z @ v / math.sqrt(z.shape[1])


def mc_check(samples=100, width=256, depth=2, w_std=1.4, b_std=0.1, f=3):
    """The recursion against Monte Carlo over finite networks: NNGP of the outputs and NTK from
    central-difference Jacobian-vector products along random directions. Accepts an error of 4
    standard errors (measured over the draws) plus 2/width of the kernel's norm."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 6, 5, 2))
    ok = True
    for readout in ("flatten", "gap"):
        k_nngp, k_ntk = kernels(x, depth, f, w_std, b_std, readout)
        # The recursion's final Dense(1) has W_std = 1, no bias; so has the finite readout.
        draws_nngp, draws_ntk = [], []
        for _ in range(samples):
            params, c = [], x.shape[3]
            for _ in range(depth):
                params.append((rng.standard_normal((f * f * c, width)), rng.standard_normal(width)))
                c = width
            fan_in = c * (x.shape[1] * x.shape[2] if readout == "flatten" else 1)
            params.append((rng.standard_normal((fan_in, width)),))
            out = finite_network(params, x, readout, w_std, b_std, f)
            draws_nngp.append(out @ out.T / width)
            direction = [tuple(rng.standard_normal(a.shape) for a in layer) for layer in params]
            h = 1e-6
            step = lambda sign: [tuple(a + sign * h * d for a, d in zip(layer, dl))
                                 for layer, dl in zip(params, direction)]
            jv = (finite_network(step(1), x, readout, w_std, b_std, f)
                  - finite_network(step(-1), x, readout, w_std, b_std, f)) / (2 * h)
            draws_ntk.append(jv @ jv.T / width)
        for name, exact, draws in (("nngp", k_nngp, draws_nngp), ("ntk", k_ntk, draws_ntk)):
            draws = np.array(draws)
            mean = draws.mean(axis=0)
            se = draws.std(axis=0, ddof=1) / math.sqrt(samples)
            norm = np.linalg.norm(exact)
            bound = 4 * np.linalg.norm(se) + 2 * norm / width
            error = np.linalg.norm(mean - exact)
            passed = error <= bound and bound < 0.15 * norm
            ok = ok and passed
            print(f"MC-CHECK {readout} {name}: relative error {error / norm:.4f}, "
                  f"bound {bound / norm:.4f} {'ok' if passed else 'FAILED'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readout", choices=["flatten", "gap"], default="flatten")
    ap.add_argument("--n", type=int, default=8, help="kernel size N (N x N)")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--repeat", type=int, default=1, help="timed repeats; the best is reported")
    ap.add_argument("--depth", type=int, default=21)
    ap.add_argument("--filter", type=int, default=3)
    ap.add_argument("--w-std", type=float, default=1.0)
    ap.add_argument("--b-std", type=float, default=0.0)
    ap.add_argument("--size", type=int, default=32, help="image height and width")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--load-x", help="inputs (N, H, W, C) from this .npy instead of random ones")
    ap.add_argument("--save", metavar="DIR", help="write x.npy, nngp.npy, ntk.npy into DIR")
    ap.add_argument("--self-check", action="store_true")
    ap.add_argument("--mc-check", action="store_true",
                    help="compare the recursion with Monte Carlo over finite networks and exit")
    args = ap.parse_args()

    if args.self_check:
        sys.exit(0 if self_check() else 1)
    if args.mc_check:
        sys.exit(0 if mc_check() else 1)

    dtype = np.dtype(args.dtype)
    if args.load_x:
        x = np.load(args.load_x).astype(dtype, copy=False)
        if x.ndim != 4:
            raise SystemExit(f"{args.load_x}: expected (N, H, W, C), got shape {x.shape}")
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.standard_normal((args.n, args.size, args.size, args.channels)).astype(dtype)
    n = x.shape[0]

    best = math.inf
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        nngp, ntk = kernels(x, args.depth, args.filter, args.w_std, args.b_std, args.readout)
        best = min(best, time.perf_counter() - start)
    entries = n * n
    print(f"RESULT readout={args.readout} n={n} shape={x.shape[1:]} depth={args.depth} "
          f"dtype={args.dtype} seconds={best:.3f} ms_per_entry={1e3 * best / entries:.4f} "
          f"threads={os.environ.get('OMP_NUM_THREADS', 'default')}")
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        np.save(os.path.join(args.save, "x.npy"), x)
        np.save(os.path.join(args.save, "nngp.npy"), nngp)
        np.save(os.path.join(args.save, "ntk.npy"), ntk)


if __name__ == "__main__":
    main()

"""NumPy + SciPy's side of dev.ntk.bench.CholeskyBench: scipy.linalg.cho_factor (lower) of a random SPD
matrix G G^T / 64 + I / 10 (G Gaussian, N x 64), in float64 and in float32 (a fresh copy each time), best of
REPEATS after one untimed round. Usage: python3 bench/cholesky_numpy.py N REPEATS"""
import sys
import time

import numpy as np
import scipy.linalg


def main():
    n, repeats = int(sys.argv[1]), int(sys.argv[2])
    g = np.random.default_rng(1).standard_normal((n, 64))
    a = g @ g.T / 64
    a[np.diag_indices(n)] += 0.1
    a32 = a.astype(np.float32)
    best = {}
    for k in range(repeats + 1):
        for name, m in (("float64", a), ("float32", a32)):
            c = m.copy()
            t0 = time.perf_counter()
            scipy.linalg.cho_factor(c, lower=True, overwrite_a=True, check_finite=False)
            t = time.perf_counter() - t0
            if k > 0:
                best[name] = min(best.get(name, t), t)
    print(f"RESULT n={n} cho_factor float64 {best['float64']:.3f} s; float32 {best['float32']:.3f} s")


if __name__ == "__main__":
    main()

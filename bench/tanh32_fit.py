#!/usr/bin/env python3
"""The float32 tanh of VectorMath.tanh(FloatVector): tanh x = x P(x^2) / Q(x^2) on [0, 9], P of degree 6
and Q of degree 3 in x^2, Q(0) = 1, minimising the largest error in float32 ulps of tanh.

Differential-correction iterations (each a linear program: |P - f Q| / (f Q_prev), weighted to float32
ulps, at most delta) on 6,000 points of [0, 9] against a 30-digit tanh (mpmath); then each coefficient in
turn is rounded to float32 and the rest are refitted, so the rounding of the coefficients is in the fit.
Prints the largest error after each step (0.11 ulp free, 0.52 ulp with all rounded) and the
coefficients as Java float literals. Takes a few minutes.

    python3 bench/tanh32_fit.py
"""
import numpy as np
import mpmath as mp
from scipy.optimize import linprog

mp.mp.dps = 30
C, M, N = 9.0, 6, 3


def points(count=3000):
    th = np.cos(np.linspace(0, np.pi, count))
    x = C * np.sqrt((th + 1) / 2)
    x = np.unique(np.concatenate([x[x > 1e-7], np.linspace(1e-6, C, count)]))
    f = np.array([float(mp.tanh(mp.mpf(v)) / mp.mpf(v)) for v in x])
    return x, f


def fit(x, f, fixed, iterations=10):
    """Coefficients [p0..pM, q1..qN] in powers of x^2, those in `fixed` held; (error in ulps, coefficients)."""
    c2 = x.max() ** 2
    t = x * x / c2
    vp = np.vander(t, M + 1, increasing=True)
    vq = np.vander(t, N + 1, increasing=True)
    sp = c2 ** -np.arange(M + 1.0)
    sq = c2 ** -np.arange(N + 1.0)
    ulps = x / np.spacing((f * x).astype(np.float32)).astype(np.float64)
    previous = np.ones_like(t)
    best = None
    for _ in range(iterations):
        w = ulps / previous
        n = M + 1 + N
        a = np.hstack([vp * w[:, None], -(f * w)[:, None] * vq[:, 1:], -np.ones((len(t), 1))])
        b = -a
        b[:, -1] = -1
        bounds = [(None, None)] * n + [(0, None)]
        for k, v in fixed.items():
            s = sp[k] if k <= M else sq[k - M]
            bounds[k] = (v / s, v / s)
        r = linprog(np.r_[np.zeros(n), 1], A_ub=np.vstack([a, b]), b_ub=np.r_[f * w, -f * w], bounds=bounds,
                    method="highs")
        if r.x is None:
            break
        p = r.x[:M + 1]
        q = np.r_[1, r.x[M + 1:n]]
        previous = vq @ q
        err = np.max(np.abs((vp @ p) / previous - f) * ulps)
        if best is None or err < best[0]:
            best = (err, np.r_[p * sp, q[1:] * sq[1:]])
    return best


def main():
    x, f = points()
    fixed = {}
    err, c = fit(x, f, fixed)
    print("free: %.3f ulps" % err, flush=True)
    for k in range(M + N + 1):
        fixed[k] = float(np.float32(c[k]))
        err, c = fit(x, f, fixed)
        print("coefficient %d rounded: %.3f ulps" % (k, err), flush=True)
    print("TANH_P = {" + ", ".join(str(np.float32(v)) + "f" for v in c[:M + 1]) + "}")
    print("TANH_Q = {1.0f, " + ", ".join(str(np.float32(v)) + "f" for v in c[M + 1:]) + "}")


if __name__ == "__main__":
    main()

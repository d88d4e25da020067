"""neural-tangents as the peer of the cuda engine, on the same GPU and the same inputs.

Run by bench/gpu/check.sh after GpuCheck wrote OUT/x-<case>-<dtype>.npy and our kernels
OUT/{nngp,ntk}-<case>-<dtype>.npy. neural-tangents' source is taken from --nt-src (a checkout of
its public repository, brought along, never committed) on the machine's JAX; if it does not import
or run there, OUT/nt-<dtype>.md says what broke. Writes OUT/nt-<dtype>.md: per case, the first call
(jit compilation included), the best of --repeats, milliseconds per NTK entry, and the relative
Frobenius difference of its NTK from ours.
"""
import argparse
import os
import sys
import time
import traceback


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nt-src", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--flatten-n", type=int, default=256)
    p.add_argument("--gap-n", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    report = os.path.join(a.out, "nt-%s.md" % a.dtype)
    lines = []
    try:
        import jax
        if a.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        import numpy as np
        sys.path.insert(0, os.path.abspath(a.nt_src))
        import neural_tangents as nt
        from neural_tangents import stax
        lines.append("neural-tangents %s (from %s) on JAX %s, %s, %s:" % (
            getattr(nt, "__version__", "?"), a.nt_src, jax.__version__, jax.devices()[0].device_kind, a.dtype))
        lines.append("")
        lines.append("| readout | N | dtype | first call (s, jit included) | best (s) | ms per NTK entry "
                     "| NTK vs cuda engine (relative Frobenius) |")
        lines.append("|---|---|---|---|---|---|---|")
        for case, n in (("flatten", a.flatten_n), ("gap", a.gap_n)):
            layers = []
            for _ in range(21):
                try:
                    layers += [stax.Conv(1, (3, 3), (1, 1), "SAME", W_std=1.0, b_std=None), stax.Relu()]
                except TypeError:
                    layers += [stax.Conv(1, (3, 3), (1, 1), "SAME", W_std=1.0, b_std=0.0), stax.Relu()]
            readout = stax.Flatten() if case == "flatten" else stax.GlobalAvgPool()
            _, _, kernel_fn = stax.serial(*layers, readout, stax.Dense(1, W_std=1.0))
            kernel_fn = jax.jit(kernel_fn, static_argnames="get")
            x = np.load(os.path.join(a.out, "x-%s-%s.npy" % (case, a.dtype)))
            x = jax.numpy.asarray(x)
            t = time.perf_counter()
            k = kernel_fn(x, None, get=("nngp", "ntk"))
            k[1].block_until_ready()
            first = time.perf_counter() - t
            best = float("inf")
            for _ in range(a.repeats):
                t = time.perf_counter()
                k = kernel_fn(x, None, get=("nngp", "ntk"))
                k[1].block_until_ready()
                best = min(best, time.perf_counter() - t)
            ours = np.load(os.path.join(a.out, "ntk-%s-%s.npy" % (case, a.dtype))).astype(np.float64)
            theirs = np.asarray(k[1], dtype=np.float64).reshape(ours.shape)
            diff = np.linalg.norm(theirs - ours) / np.linalg.norm(theirs)
            lines.append("| %s | %d | %s | %.3f | %.6f | %.6g | %.2g |" % (
                case, n, a.dtype, first, best, best * 1000 / (n * n), diff))
            print(lines[-1], flush=True)
    except Exception:  # the note says what broke: an import, a JAX API, memory
        lines.append("")
        lines.append("neural-tangents did not run (%s):" % a.dtype)
        lines.append("")
        lines.append("```")
        lines.extend(traceback.format_exc().strip().splitlines()[-12:])
        lines.append("```")
    with open(report, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

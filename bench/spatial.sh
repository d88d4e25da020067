#!/usr/bin/env bash
# The engine's cost of kernels that keep the last layer's pixels: the neural-tangents README CNN body
# (21 x [Conv(1, (3, 3), SAME), Relu], no readout; bench/cnn21_body.json) on N x N float64 kernels of
# x with itself, reduced (N, N), per pixel (diagonal_spatial=true, (N, N, H, W)) and for every two
# pixels (false, (N, N, H, H', W, W')). Prints one RESULT line per mode (best of REPEATS after a warm-up).
#
#   N=8 SHAPE=16,16,3 REPEATS=2 OUT=bench/out/spatial
# Needs the jars: mvn -B -ntp -o -q -pl bench,pipelines -am package -DskipTests
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-8}; SHAPE=${SHAPE:-16,16,3}; REPEATS=${REPEATS:-2}; OUT=${OUT:-bench/out/spatial}
mkdir -p "$OUT"
CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"
bench() { TF_CPP_MIN_LOG_LEVEL=3 java --add-modules=jdk.incubator.vector -cp "$CP" dev.ntk.bench.Bench "$@" 2>>"$OUT/stderr.log" | grep RESULT; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
bench data --n "$N" --shape "$SHAPE" --seed 0 --dtype float64 --out "$OUT/x.npy"
for s in reduced diagonal full; do
  bench engine --model bench/cnn21_body.json --x "$OUT/x.npy" --dtype float64 --repeats "$REPEATS" --spatial "$s"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

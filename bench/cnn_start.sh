#!/usr/bin/env bash
# The CNN benchmark of bench/cnn.sh as whole processes: `ntk kernel --verbose` of two builds (BEFORE
# and AFTER, run alternately so that both see the same load) on the Flatten and GlobalAvgPool
# readouts, float32, x with itself, and NumPy (bench/cnn_numpy.py, one repeat) on the same inputs in
# the same minutes. Prints one line per run: wall seconds, CPU seconds (user + sys, all threads),
# the load average, and the command's own split (--verbose: JVM start to command, model and inputs
# read, kernels computed, written); then each build's best wall time over NumPy's.
#
#   BEFORE="bin/ntk" AFTER="bin/ntk"   the two commands (e.g. another checkout's launcher)
#   ROUNDS=2  FLATTEN_N=256  GAP_N=8  OUT=bench/out/cnn-start  PYTHON=python3
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BEFORE=${BEFORE:-bin/ntk}; AFTER=${AFTER:-bin/ntk}; ROUNDS=${ROUNDS:-2}
FLATTEN_N=${FLATTEN_N:-256}; GAP_N=${GAP_N:-8}; OUT=${OUT:-bench/out/cnn-start}; PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"
declare -A N=([flatten]=$FLATTEN_N [gap]=$GAP_N)
for ro in flatten gap; do
  java --add-modules=jdk.incubator.vector -cp "$CP" dev.ntk.bench.Bench data --n "${N[$ro]}" --shape 32,32,3 --seed 0 \
    --dtype float32 --out "$OUT/x-$ro.npy" 2>/dev/null >/dev/null
done
# Each build once before the timings: bin/ntk writes its class data archive on its first run.
for which in BEFORE AFTER; do
  rm -rf "$OUT/warm"
  ${!which} kernel --model examples/cnn21/gap.json --x1 "$OUT/x-gap.npy" --dtype float32 --out "$OUT/warm" >/dev/null 2>&1
done
load() { cut -d' ' -f1 /proc/loadavg; }
run() {  # run LABEL CASE COMMAND...
  local label=$1 ro=$2; shift 2
  rm -rf "$OUT/out"
  local s e
  s=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$OUT/time" "$@" > "$OUT/log" 2>&1
  e=$(date +%s.%N)
  local split
  split=$({ grep -E "^ntk: (JVM start|kernels computed)" "$OUT/log" || true; } | sed 's/^ntk: //' | tr '\n' ';')
  printf 'RUN %s %s wall=%.2f cpu=%.2f load=%s %s\n' "$label" "$ro" "$(echo "$e - $s" | bc)" \
    "$(awk '{print $1 + $2}' "$OUT/time")" "$(load)" "$split"
}
{
for r in $(seq "$ROUNDS"); do
  for ro in flatten gap; do
    for which in BEFORE AFTER; do
      run "$which" "$ro" ${!which} kernel --model "examples/cnn21/$ro.json" --x1 "$OUT/x-$ro.npy" --dtype float32 \
        --out "$OUT/out" --verbose
    done
    if [[ $r == 1 ]]; then
      run NUMPY "$ro" "$PYTHON" bench/cnn_numpy.py --readout "$ro" --n "${N[$ro]}" --dtype float32 --repeat 1 \
        --load-x "$OUT/x-$ro.npy"
    fi
  done
done
} | tee "$OUT/runs.txt"
awk '/^RUN/ { split($4, w, "="); k = $2 " " $3; if (!(k in best) || w[2] < best[k]) best[k] = w[2] }
  END { split("flatten gap", cases, " ");
    for (i = 1; i <= 2; i++) { c = cases[i]; np = best["NUMPY " c];
      printf "RATIO %s: before %.2f s, after %.2f s, NumPy %.2f s: %.3fx -> %.3fx\n", c, best["BEFORE " c],
        best["AFTER " c], np, best["BEFORE " c] / np, best["AFTER " c] / np } }' "$OUT/runs.txt"

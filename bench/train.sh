#!/usr/bin/env bash
# Training steps per second of the sine network (examples/sine, full-batch gradient descent on MSE,
# float64, learning rate 0.1): ntk train's Trainer (TrainBench) against the same step in NumPy
# (bench/train_numpy.py), which also checks its outputs against Java's from the same initial
# parameters; then an ensemble of ENSEMBLE networks one at a time (on all cores) and one per core.
#
#   WIDTHS="512 2048"  hidden widths (2048 is the example's)    STEPS=50  REPEATS=3  ENSEMBLE=4
#   OUT=bench/out/train   scratch (git-ignored)
#   CP  the class path of TrainBench (default: this checkout's bench and pipelines jars and target/classpath.txt)
#
# Prints one RESULT line per measurement. Timings on a shared machine are noisy.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WIDTHS=${WIDTHS:-"512 2048"}; STEPS=${STEPS:-50}; REPEATS=${REPEATS:-3}; ENSEMBLE=${ENSEMBLE:-4}
OUT=${OUT:-bench/out/train}
PYTHON=${PYTHON:-python3}
CP=${CP:-"bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt 2>/dev/null || true)"}
JAVA=(java --add-modules=jdk.incubator.vector -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$CP")
SINE=examples/sine
DATA=(--x-train $SINE/x_train.npy --y-train $SINE/y_train.npy --x-test $SINE/x_test.npy)
mkdir -p "$OUT"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "NumPy $($PYTHON -c 'import numpy; print(numpy.__version__)')"
for W in $WIDTHS; do
  MODEL="$OUT/sine-$W.json"
  $PYTHON - "$SINE/model.json" "$MODEL" "$W" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
dense = [l for l in m["serial"] if "Dense" in l]
for l in dense[:-1]:
    l["Dense"]["out_dim"] = int(sys.argv[3])
json.dump(m, open(sys.argv[2], "w"))
PY
  echo "width $W:"
  "${JAVA[@]}" dev.ntk.bench.TrainBench --model "$MODEL" "${DATA[@]}" --steps "$STEPS" \
    --repeats "$REPEATS" --save "$OUT/w$W" 2>/dev/null | grep RESULT
  $PYTHON bench/train_numpy.py --model "$MODEL" "${DATA[@]}" --steps "$STEPS" --repeats "$REPEATS" \
    --params "$OUT/w$W"
  echo "  (NumPy again with OPENBLAS_NUM_THREADS=1, which avoids oversubscribing a loaded machine:)"
  OPENBLAS_NUM_THREADS=1 $PYTHON bench/train_numpy.py --model "$MODEL" "${DATA[@]}" --steps "$STEPS" \
    --repeats "$REPEATS" --params "$OUT/w$W"
  CORES=$(nproc)
  "${JAVA[@]}" -Dai.djl.tensorflow.num_intraop_threads="$CORES" dev.ntk.bench.TrainBench \
    --model "$MODEL" "${DATA[@]}" --steps "$STEPS" --ensemble "$ENSEMBLE" --at-once 1 2>/dev/null | grep RESULT
  "${JAVA[@]}" -Dai.djl.tensorflow.num_intraop_threads=1 dev.ntk.bench.TrainBench \
    --model "$MODEL" "${DATA[@]}" --steps "$STEPS" --ensemble "$ENSEMBLE" --at-once "$CORES" 2>/dev/null | grep RESULT
done

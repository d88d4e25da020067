#!/usr/bin/env bash
# Prediction benchmark: writes the "Prediction" section of bench/RESULTS.md (between the
# predict:begin/end markers) from one run. See bench/README.md.
#
#   NS="2000 5000 10000"  training set sizes for exact inference (M=500 test points, K=10 targets,
#                         D=64 inputs, bench/predict_relu3.json, float64, --diag-reg 1e-4)
#   ENSEMBLE_N=5000 ENSEMBLE_TIMES=100   gradientDescentMseEnsemble (NTK) at log-spaced times
#   ODE_N=1000 ODE_K=10    the cross-entropy ODE (one-hot targets), --t 1,10,100
#   REPEATS=2              timed repeats for the in-process solver comparison (best reported)
#   EIGH_MAX_N=2000        largest N for the eigendecomposition comparison (TensorFlow's
#                          SelfAdjointEigV2 took over 10 minutes for 4 runs at N = 5000 here)
#   OUT=bench/out/predict  scratch (git-ignored)   RESULTS=bench/RESULTS.md
#   NTK=bin/ntk            the ntk command (e.g. a script running another build's classes, so that no
#                          `mvn install` runs); CP: the class path of PredictBench (default: this
#                          checkout's bench and pipelines jars and pipelines/target/classpath.txt)
#
# Smoke test: NS=300 ENSEMBLE_N=300 ODE_N=100 OUT=/tmp/pb RESULTS=/tmp/pb/R.md bash bench/predict.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NS=${NS:-"2000 5000 10000"}
M=${M:-500}; K=${K:-10}; D=${D:-64}
ENSEMBLE_N=${ENSEMBLE_N:-5000}; ENSEMBLE_TIMES=${ENSEMBLE_TIMES:-100}
ODE_N=${ODE_N:-1000}; ODE_K=${ODE_K:-10}
REPEATS=${REPEATS:-2}
EIGH_MAX_N=${EIGH_MAX_N:-2000}
OUT=${OUT:-bench/out/predict}; RESULTS=${RESULTS:-bench/RESULTS.md}
MODEL=bench/predict_relu3.json
PYTHON=${PYTHON:-python3}
NTK=${NTK:-bin/ntk}
mkdir -p "$OUT"
$NTK --help >/dev/null   # bin/ntk builds if needed, outside the timings
CP=${CP:-"bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"}
wall() { local s e; s=$(date +%s.%N); "$@" > "$OUT/last.log" 2>&1; e=$(date +%s.%N); printf '%.2f\n' "$(echo "$e - $s" | bc)"; }
field() { grep -o "$1=[^ ]*" | head -1 | cut -d= -f2; }
# The line a run printed about where it ran: "in-process (...): 1.2 s" or "DirectRunner: ... pipeline 5.2 s".
ran() { grep -m1 -E "^(in-process|[A-Za-z]+Runner)" "$OUT/last.log" || true; }
REPORT="$OUT/section.md"
rm -f "$OUT/ran.log" "$OUT/failed.log"
{
echo "<!-- predict:begin -->"
echo "## Prediction (bench/predict.sh)"
echo
echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores,"
echo "shared with other builds (timings are noisy). NumPy $($PYTHON -c 'import numpy; print(numpy.__version__)'),"
echo "SciPy $($PYTHON -c 'import scipy; print(scipy.__version__)'). Inputs: standard normal, D = $D, M = $M test points,"
echo "K = $K targets, model \`$MODEL\` (3-layer ReLU), float64, \`--diag-reg 1e-4\`, NNGP posterior."
echo
echo "| N | factor+solve OpenBLAS (s) | factor+solve TF via DJL (s) | SciPy cho_factor/cho_solve (s) | NumPy kernel (s) | \`bin/ntk predict\` whole (s) | NumPy+SciPy whole process (s) | ratio | max rel diff of means | \`--runner DirectRunner\` whole (s) | ratio |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$REPORT"
for N in $NS; do
  DIR="$OUT/n$N"
  $PYTHON bench/predict_reference.py make --n "$N" --m "$M" --k "$K" --d "$D" --out "$DIR"
  rm -rf "$DIR/out"
  EXACT=(--model $MODEL --x-train "$DIR/x_train.npy" --y-train "$DIR/y_train.npy" --x-test "$DIR/x_test.npy"
    --get nngp --diag-reg 1e-4)
  NTK_S=$(wall $NTK predict "${EXACT[@]}" --out "$DIR/out")
  echo "N=$N: $(ran)" >> "$OUT/ran.log"
  PY_S=$(wall $PYTHON bench/predict_reference.py solve --dir "$DIR" --model $MODEL --diag-reg 1e-4 --check "$DIR/out/mean.npy")
  PY=$(cat "$OUT/last.log")
  # The pipeline, as every job larger than one tile ran before it could run in-process.
  rm -rf "$DIR/beam"
  BEAM_S=$(wall $NTK predict "${EXACT[@]}" --runner DirectRunner --out "$DIR/beam")
  EIGH=false; [[ "$N" -le "$EIGH_MAX_N" ]] && EIGH=true
  # A failure here (TensorFlow's side of the comparison) leaves its columns empty, not the run.
  java -cp "$CP" dev.ntk.bench.PredictBench "$DIR" $MODEL 1e-4 "$REPEATS" $EIGH > "$OUT/jbench-$N.log" \
    2>"$OUT/jbench-$N.err" || echo "N=$N: PredictBench failed: $(grep -m1 Exception "$OUT/jbench-$N.err" | cut -c1-160)" >> "$OUT/failed.log"
  JB=$(cat "$OUT/jbench-$N.log")
  echo "$JB" | grep eigh= >> "$OUT/eigh.log" || true
  echo "| $N | $(echo "$JB" | grep solver=openblas | field factor_solve_s) | $(echo "$JB" | grep solver=tensorflow | field factor_solve_s) | $(echo "$PY" | field factor_solve_s) | $(echo "$PY" | field kernel_s) | $NTK_S | $PY_S | $(printf "%.2f" "$(echo "scale=4; $NTK_S / $PY_S" | bc)") | $(echo "$PY" | field max_rel_diff) | $BEAM_S | $(printf "%.2f" "$(echo "scale=4; $BEAM_S / $PY_S" | bc)") |" >> "$REPORT"
done
{
echo
echo "Where the default runs ran (\`--runner DirectRunner\` ran the pipeline, the only path before for N > 256):"
sed 's/^/- /' "$OUT/ran.log"
if [[ -f "$OUT/failed.log" ]]; then echo; sed 's/^/- /' "$OUT/failed.log"; fi
echo
echo "Symmetric eigendecomposition of the train NTK (best of $REPEATS):"
echo
echo "| N | OpenBLAS dsyevd (s) | TF SelfAdjointEigV2 via DJL (s) |"
echo "|---|---|---|"
} >> "$REPORT"
for N in $NS; do
  [[ "$N" -le "$EIGH_MAX_N" ]] || continue
  echo "| $N | $(grep "eigh=openblas n=$N " "$OUT/eigh.log" | field seconds) | $(grep "eigh=tensorflow n=$N " "$OUT/eigh.log" | field seconds) |" >> "$REPORT"
done
rm -f "$OUT/eigh.log"
# The ensemble at many times.
DIR="$OUT/ens$ENSEMBLE_N"
$PYTHON bench/predict_reference.py make --n "$ENSEMBLE_N" --m "$M" --k "$K" --d "$D" --out "$DIR"
TIMES=$($PYTHON -c "import numpy as np; print(','.join(repr(float(t)) for t in np.logspace(-1, 4, $ENSEMBLE_TIMES)))")
rm -rf "$DIR/out"
ENS_S=$(wall $NTK predict --model $MODEL --x-train "$DIR/x_train.npy" --y-train "$DIR/y_train.npy" \
  --x-test "$DIR/x_test.npy" --get ntk --t "$TIMES" --diag-reg 1e-4 --out "$DIR/out")
ENS_PIPE=$(ran)
ENS_PY_S=$(wall $PYTHON bench/predict_reference.py ensemble --dir "$DIR" --model $MODEL --diag-reg 1e-4 \
  --times "$ENSEMBLE_TIMES" --check "$DIR/out/mean.npy")
EPY=$(cat "$OUT/last.log")
{
echo
echo "gradientDescentMseEnsemble (NTK mean) at $ENSEMBLE_TIMES log-spaced times on N = $ENSEMBLE_N:"
echo "\`bin/ntk predict --t <$ENSEMBLE_TIMES times>\` whole process $ENS_S s ($ENS_PIPE);"
echo "NumPy (kernel $(echo "$EPY" | field kernel_s) s + eigh and predictions $(echo "$EPY" | field eigh_predict_s) s) whole process $ENS_PY_S s;"
echo "max rel diff of the means $(echo "$EPY" | field max_rel_diff)."
} >> "$REPORT"
# The cross-entropy ODE.
DIR="$OUT/ode$ODE_N"
$PYTHON bench/predict_reference.py make --n "$ODE_N" --m "$M" --k "$ODE_K" --d "$D" --out "$DIR"
$PYTHON -c "import numpy as np; y=np.load('$DIR/y_train.npy'); np.save('$DIR/y_train.npy', np.eye($ODE_K)[np.argmax(y, 1)])"
rm -rf "$DIR/out"
ODE_S=$(wall $NTK predict --model $MODEL --x-train "$DIR/x_train.npy" --y-train "$DIR/y_train.npy" \
  --x-test "$DIR/x_test.npy" --loss cross-entropy --t 1,10,100 --out "$DIR/out")
ODE_PIPE=$(ran)
{
echo
echo "Cross-entropy ODE (one-hot targets, $ODE_K classes) on N = $ODE_N, M = $M, \`--t 1,10,100\`:"
echo "\`bin/ntk predict --loss cross-entropy\` whole process $ODE_S s ($ODE_PIPE)."
} >> "$REPORT"
# The README's sine example, through Beam's DirectRunner as before and by default.
SINE=(--model examples/sine/model.json --x-train examples/sine/x_train.npy --y-train examples/sine/y_train.npy
  --x-test examples/sine/x_test.npy --get ntk --compute-cov)
$NTK predict "${SINE[@]}" --out "$OUT/sine-warm" > /dev/null 2>&1   # warm the page cache
BEFORE=$(for i in 1 2 3; do rm -rf "$OUT/sine"; wall $NTK predict "${SINE[@]}" --runner DirectRunner --out "$OUT/sine"; done | sort -n | head -1)
AFTER=$(for i in 1 2 3; do rm -rf "$OUT/sine"; wall $NTK predict "${SINE[@]}" --out "$OUT/sine"; done | sort -n | head -1)
AFTER_LINE=$(ran)
{
echo
echo "The README's sine example end to end (best of 3, warm): through Beam's DirectRunner"
echo "(\`--runner DirectRunner\`, the only path before) $BEFORE s; by default $AFTER s (\`$AFTER_LINE\`)."
echo "<!-- predict:end -->"
} >> "$REPORT"
$PYTHON bench/section.py predict "$RESULTS" "$REPORT"
cat "$REPORT"

#!/usr/bin/env bash
# Fashion-MNIST benchmark: writes the "fashion" section of bench/RESULTS.md (between the
# fashion:begin/end markers). Exact inference with the FC ReLU network bench/predict_relu3.json
# (three Dense layers) on real images, `bin/ntk predict` against NumPy + SciPy (the same kernel
# recursion, cho_factor/cho_solve) in the same run, each a whole process, with test accuracy.
#
#   SIZES="5000:2000:float64 30000:10000:float32"   training:test:dtype runs (NNGP and NTK for float64,
#                         NNGP only for float32, as the issue's aims)
#   DATA=/usr/share/datasets/fashion-mnist   Debian's dataset-fashion-mnist (`apt-get install dataset-fashion-mnist`)
#   OUT=bench/out/fashion  scratch (git-ignored)   RESULTS=bench/RESULTS.md   NTK=bin/ntk
#   JAVA_OPTS              passed to bin/ntk (the default heap unless set)
#
# Smoke test: SIZES="300:100:float64" OUT=/tmp/fb RESULTS=/tmp/fb/R.md bash bench/fashion.sh
set -euo pipefail
SIZES=${SIZES:-"5000:2000:float64 30000:10000:float32"}
OUT=${OUT:-bench/out/fashion}; RESULTS=${RESULTS:-bench/RESULTS.md}
source "$(dirname "${BASH_SOURCE[0]}")/fashion_common.sh"
field() { grep -o "$1=[^ ]*" | head -1 | cut -d= -f2; }
REPORT="$OUT/section.md"
{
echo "<!-- fashion:begin -->"
echo "## Fashion-MNIST exact inference (bench/fashion.sh)"
echo
echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores."
echo "NumPy $($PYTHON -c 'import numpy; print(numpy.__version__)'), SciPy $($PYTHON -c 'import scipy; print(scipy.__version__)')."
echo "Model \`$MODEL\` (Dense-Relu-Dense-Relu-Dense, NTK parameterization), images standardized per image,"
echo "targets one-hot minus 0.1, \`--diag-reg 1e-4\`; \`bin/ntk predict --get G --dtype D\` (default heap"
echo "unless JAVA_OPTS says otherwise: \`${JAVA_OPTS:-}\`) against \`bench/predict_reference.py solve\`, both whole processes."
echo
echo "| train / test | dtype | kernel | \`bin/ntk predict\` (s) | NumPy + SciPy (s) | ratio | accuracy ntk / NumPy | max rel diff of means | where it ran |"
echo "|---|---|---|---|---|---|---|---|---|"
} > "$REPORT"
for size in $SIZES; do
  IFS=: read -r N M DTYPE <<< "$size"
  DIR="$OUT/n$N"
  $PYTHON bench/predict_reference.py fashion --n "$N" --m "$M" --data "$DATA" --out "$DIR"
  GETS="nngp ntk"; [[ "$DTYPE" == float32 ]] && GETS=nngp
  for G in $GETS; do
    rm -rf "$DIR/out-$G"
    NTK_S=$(wall $NTK predict --model $MODEL --x-train "$DIR/x_train.npy" --y-train "$DIR/y_train.npy" \
      --x-test "$DIR/x_test.npy" --get "$G" --dtype "$DTYPE" --diag-reg 1e-4 --out "$DIR/out-$G") \
      || { echo "| $N / $M | $DTYPE | $G | failed: $(tail -1 "$OUT/last.log" | cut -c1-120) | | | | | |" >> "$REPORT"; continue; }
    WHERE=$(ran)
    PY_S=$(wall $PYTHON bench/predict_reference.py solve --dir "$DIR" --model $MODEL --get "$G" --dtype "$DTYPE" \
      --diag-reg 1e-4 --labels "$DIR/labels_test.npy" --check "$DIR/out-$G/mean.npy")
    PY=$(cat "$OUT/last.log")
    echo "| $N / $M | $DTYPE | $G | $NTK_S | $PY_S | $(printf "%.2f" "$(echo "scale=4; $NTK_S / $PY_S" | bc)") | $(echo "$PY" | field tool_accuracy) / $(echo "$PY" | field accuracy) | $(echo "$PY" | field max_rel_diff) | $WHERE |" >> "$REPORT"
  done
done
echo "<!-- fashion:end -->" >> "$REPORT"
$PYTHON bench/section.py fashion "$RESULTS" "$REPORT"
cat "$REPORT"

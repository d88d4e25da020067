#!/usr/bin/env bash
# Fashion-MNIST by conjugate gradients: writes the "fashion-cg" section of bench/RESULTS.md (between
# the fashion-cg:begin/end markers). Exact inference with bench/predict_relu3.json on real images,
# `bin/ntk predict --solver cholesky` (in-process: the train kernel factored in memory) against
# `--solver cg` in-process (the kernel in memory, only multiplied) and `--solver cg --runner
# DirectRunner` (the train kernel's tiles on disk, read once per iteration), each a whole process:
# time, iterations, final relative residual, test accuracy and the largest difference of the means.
#
#   SIZES="10000:2000:float64"  training:test:dtype[:kernels[:solvers]] runs, kernels nngp,ntk (default GETS) and
#                         solvers cholesky,cg,cg-tiles (default: all; cg-tiles is --solver cg on the DirectRunner,
#                         and the differences are against an earlier entry's cholesky run of the same size)
#   GETS="nngp ntk"   TILE=1024 (the pipeline's tiles)
#   CG="--cg-tol 1e-6 --cg-rank 1024"  conjugate gradients' options   DIAG_REG=1e-4
#   DATA=/usr/share/datasets/fashion-mnist   Debian's dataset-fashion-mnist
#   OUT=bench/out/fashion-cg  scratch (git-ignored)   RESULTS=bench/RESULTS.md   NTK=bin/ntk
#
# Smoke test: SIZES="500:200:float64" OUT=/tmp/fcg RESULTS=/tmp/fcg/R.md bash bench/fashion_cg.sh
set -euo pipefail
SIZES=${SIZES:-"10000:2000:float64"}
GETS=${GETS:-"nngp ntk"}
TILE=${TILE:-1024}
CG=${CG:-"--cg-tol 1e-6 --cg-rank 1024"}
DIAG_REG=${DIAG_REG:-1e-4}
OUT=${OUT:-bench/out/fashion-cg}; RESULTS=${RESULTS:-bench/RESULTS.md}
source "$(dirname "${BASH_SOURCE[0]}")/fashion_common.sh"
iterations() { grep -o "conjugate gradients: [0-9]* iterations, relative residual [^ ]*" "$OUT/last.log" \
  | sed 's/conjugate gradients: //' || echo "-"; }
# accuracy of argmax(mean) against the labels, and the largest |mean - reference| over the largest |reference|
compare() {
  $PYTHON - "$1" "$2" "$3" <<'PY'
import sys
import numpy as np
mean, labels, ref = (np.load(p) for p in sys.argv[1:4])
print("%.4f %.2e" % ((mean.argmax(1) == labels).mean(), np.abs(mean - ref).max() / np.abs(ref).max()))
PY
}
REPORT="$OUT/section.md"
{
echo "<!-- fashion-cg:begin -->"
echo "## Fashion-MNIST by conjugate gradients (bench/fashion_cg.sh)"
echo
echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load average"
echo "$(cut -d' ' -f1-3 /proc/loadavg) at the start (the machine is shared: the times are not quiet-machine times)."
echo "Model \`$MODEL\`, images standardized per image, targets one-hot minus 0.1, \`--diag-reg $DIAG_REG\`;"
echo "\`bin/ntk predict --get G --dtype D --solver S\`, CG with \`$CG\`, the pipeline with \`--runner DirectRunner"
echo "--tile $TILE\` (its time includes computing the tiles), each a whole process. Differences are the largest"
echo "|mean - Cholesky's mean| over the largest |Cholesky's mean|."
echo
echo "| train / test | dtype | kernel | solver | where | time (s) | iterations, final residual | accuracy | max rel diff |"
echo "|---|---|---|---|---|---|---|---|---|"
} > "$REPORT"
for size in $SIZES; do
  IFS=: read -r N M DTYPE KERNELS SOLVERS <<< "$size"
  KERNELS=${KERNELS:-${GETS// /,}}; SOLVERS=${SOLVERS:-cholesky,cg,cg-tiles}
  DIR="$OUT/n$N"
  [[ -f "$DIR/x_train.npy" ]] || $PYTHON bench/predict_reference.py fashion --n "$N" --m "$M" --data "$DATA" --out "$DIR"
  for G in ${KERNELS//,/ }; do
    COMMON=(predict --model $MODEL --x-train "$DIR/x_train.npy" --y-train "$DIR/y_train.npy" --x-test "$DIR/x_test.npy"
      --get "$G" --dtype "$DTYPE" --diag-reg "$DIAG_REG")
    for solver in ${SOLVERS//,/ }; do
      case $solver in
        cholesky) run="cholesky:chol-$G:--solver cholesky" ;;
        cg) run="cg:cg-$G:--solver cg $CG" ;;
        cg-tiles) run="cg:cgtiles-$G:--solver cg $CG --runner DirectRunner --tile $TILE" ;;
        *) echo "fashion_cg.sh: unknown solver $solver (cholesky, cg or cg-tiles)" >&2; exit 2 ;;
      esac
      IFS=: read -r SOLVER NAME OPTS <<< "$run"
      rm -rf "${DIR:?}/$NAME"
      # shellcheck disable=SC2086
      S=$(wall $NTK "${COMMON[@]}" $OPTS --out "$DIR/$NAME") \
        || { echo "| $N / $M | $DTYPE | $G | $SOLVER | | failed: $(tail -1 "$OUT/last.log" | cut -c1-150) | | | |" >> "$REPORT"; continue; }
      WHERE=$(ran | grep -oE "^(in-process|[A-Za-z]+Runner)" || true)
      IT=$([[ $SOLVER == cg ]] && iterations || echo "-")
      read -r ACC DIFF <<< "$(compare "$DIR/$NAME/mean.npy" "$DIR/labels_test.npy" "$DIR/chol-$G/mean.npy")"
      echo "| $N / $M | $DTYPE | $G | $SOLVER | $WHERE | $S | $IT | $ACC | $DIFF |" >> "$REPORT"
    done
  done
done
echo "<!-- fashion-cg:end -->" >> "$REPORT"
$PYTHON bench/section.py fashion-cg "$RESULTS" "$REPORT"
cat "$REPORT"

#!/usr/bin/env bash
# The cost of one conjugate-gradient iteration on the train kernel's tiles (issue 26): runs
# `ntk predict --solver cg --runner DirectRunner --tile TILE` on the first N Fashion-MNIST images as a
# whole process under /usr/bin/time -v, and prints one table row per run: the wall and CPU time, the peak RSS,
# the solve's iterations, residual, preconditioner time and the seconds of one product with the kernel
# with its parts (tiles read, widened, multiplied; `ConjugateGradients.Status`). Nothing is written to
# bench/RESULTS.md: the rows are printed for the report.
#
#   RUNS="10000:2000:float32:2048"  training:test:dtype:tile[:rank] runs (rank: --cg-rank, default 1024)
#   GET=nngp   CG="--cg-tol 1e-6"   DIAG_REG=1e-4   DATA=/usr/share/datasets/fashion-mnist
#   OUT=bench/out/cg-iteration (scratch, git-ignored)   NTK=bin/ntk (or a java command on built classes)
#   JAVA_OPTS (read by bin/ntk)
#
# Smoke test: RUNS="500:100:float32:128:64" OUT=/tmp/cgi bash bench/cg_iteration.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-"10000:2000:float32:2048"}
GET=${GET:-nngp}
CG=${CG:-"--cg-tol 1e-6"}
DIAG_REG=${DIAG_REG:-1e-4}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
OUT=${OUT:-bench/out/cg-iteration}
PYTHON=${PYTHON:-python3}
NTK=${NTK:-bin/ntk}
MODEL=bench/predict_relu3.json
if [[ ! -f "$DATA/train-images-idx3-ubyte.gz" ]]; then
  echo "cg_iteration.sh: $DATA/train-images-idx3-ubyte.gz not found: apt-get install dataset-fashion-mnist (or set DATA)" >&2
  exit 2
fi
mkdir -p "$OUT"
echo "$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg) at $(date -u +%H:%MZ)"
echo
echo "| train / test | dtype | tile | rank | wall (s) | CPU (s) | peak RSS (GB) | solve (\`ntk: conjugate gradients:\`) |"
echo "|---|---|---|---|---|---|---|---|"
for run in $RUNS; do
  IFS=: read -r N M DTYPE TILE RANK <<< "$run"
  RANK=${RANK:-1024}
  DIR="$OUT/n$N"
  [[ -f "$DIR/x_train.npy" ]] || $PYTHON bench/predict_reference.py fashion --n "$N" --m "$M" --data "$DATA" --out "$DIR" >&2
  RUN="$DIR/cg-$DTYPE-t$TILE-r$RANK"
  # the tiles of an earlier run of the same size, dtype and tile are reused (FRESH=1 computes them again)
  if [[ ${FRESH:-0} == 1 ]]; then rm -rf "$RUN"; else find "$RUN" -mindepth 1 -maxdepth 1 ! -name tiles -exec rm -rf {} + 2>/dev/null || true; fi
  LOG="$RUN.log"
  s=$(date +%s.%N)
  # shellcheck disable=SC2086
  /usr/bin/time -v $NTK predict --model $MODEL --x-train "$DIR/x_train.npy" --y-train "$DIR/y_train.npy" \
    --x-test "$DIR/x_test.npy" --get "$GET" --dtype "$DTYPE" --diag-reg "$DIAG_REG" --solver cg $CG \
    --cg-rank "$RANK" --runner DirectRunner --tile "$TILE" --out "$RUN" > "$LOG" 2>&1 \
    || { echo "| $N / $M | $DTYPE | $TILE | $RANK | failed: $(grep -m1 '^ntk:' "$LOG" | cut -c1-150) | | | |"; continue; }
  e=$(date +%s.%N)
  RSS=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$LOG")
  CPU=$(echo "$(sed -n 's/.*User time (seconds): //p' "$LOG") + $(sed -n 's/.*System time (seconds): //p' "$LOG")" | bc)
  SOLVE=$(sed -n 's/^ntk: conjugate gradients: //p' "$LOG" | tail -1)
  printf '| %s / %s | %s | %s | %s | %.1f | %.1f | %.2f | %s |\n' "$N" "$M" "$DTYPE" "$TILE" "$RANK" \
    "$(echo "$e - $s" | bc)" "$CPU" "$(echo "$RSS / 1048576" | bc -l)" "$SOLVE"
done

#!/usr/bin/env bash
# All of Fashion-MNIST through `bin/ntk predict` in bounded memory (issue 26's aim: 60,000 train / 10,000 test,
# FC ReLU depth 3, NNGP, float32, peak resident memory <= 8 GB, <= 45 minutes): the train kernel does not fit
# --max-memory, so it is factored out of core (`--solver auto`: panels of columns in a scratch file). One whole
# process under /usr/bin/time -v: wall time, max resident memory, test accuracy (argmax of the mean against the
# labels), and optionally the largest difference of the means from another run's (CHECK=mean.npy, relative to
# the largest |mean|). Writes the "fashion-full" section of bench/RESULTS.md (one row per run: RESULTS keeps
# earlier rows of that section).
#
#   N=60000 M=10000 DTYPE=float32 GET=nngp MAX_MEMORY=5g   the run (training, test images; --max-memory)
#   JAVA_OPTS="-Xmx2g"     the JVM heap (inputs, as arrays); native memory is --max-memory's
#   DATA=/usr/share/datasets/fashion-mnist   Debian's dataset-fashion-mnist
#   OUT=bench/out/fashion-full  (git-ignored; inputs in $OUT/n$N, reused when there)   NTK=bin/ntk
#   CHECK=path/mean.npy   compare the means with another run's (e.g. the in-memory 30k run of bench/fashion.sh)
#
# Smoke test: N=3000 M=500 MAX_MEMORY=20m OUT=/tmp/ff RESULTS=/tmp/ff/R.md bash bench/fashion_full.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-60000}; M=${M:-10000}; DTYPE=${DTYPE:-float32}; GET=${GET:-nngp}; MAX_MEMORY=${MAX_MEMORY:-5g}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
OUT=${OUT:-bench/out/fashion-full}; RESULTS=${RESULTS:-bench/RESULTS.md}
MODEL=bench/predict_relu3.json
PYTHON=${PYTHON:-python3}
NTK=${NTK:-bin/ntk}
export JAVA_OPTS=${JAVA_OPTS:--Xmx2g}
DIR="$OUT/n$N"
if [[ ! -f "$DIR/labels_test.npy" || $($PYTHON -c "import numpy; print(numpy.load('$DIR/x_test.npy').shape[0])") != "$M" ]]; then
  $PYTHON bench/predict_reference.py fashion --n "$N" --m "$M" --data "$DATA" --out "$DIR"
fi
$NTK --help >/dev/null   # bin/ntk builds if needed, outside the timings
LOAD_BEFORE=$(uptime | sed 's/.*load average: //')
rm -rf "$DIR/out-$GET"
LOG="$DIR/predict-$GET.log"
rc=0
/usr/bin/time -v $NTK predict --model $MODEL --x-train "$DIR/x_train.npy" --y-train "$DIR/y_train.npy" \
  --x-test "$DIR/x_test.npy" --get "$GET" --dtype "$DTYPE" --diag-reg 1e-4 --max-memory "$MAX_MEMORY" --verbose \
  --out "$DIR/out-$GET" > "$LOG" 2>&1 || rc=$?
LOAD_AFTER=$(uptime | sed 's/.*load average: //')
cat "$LOG"
WALL=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): *//p' "$LOG")
RSS_KB=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$LOG")
RAN=$(grep -m1 -E "^(in-process|[A-Za-z]+Runner)" "$LOG" | sed 's/: [0-9.]* s$//' || true)
if [[ $rc != 0 ]]; then
  ROW="| $N / $M | $DTYPE | $GET | $MAX_MEMORY | failed: $(grep -m1 '^ntk:' "$LOG" | cut -c1-100) | $WALL | | | | $LOAD_BEFORE / $LOAD_AFTER |"
else
  STATS=$($PYTHON - "$DIR/out-$GET/mean.npy" "$DIR/labels_test.npy" "${CHECK:-}" <<'PY'
import sys
import numpy as np
mean = np.load(sys.argv[1])
acc = np.mean(np.argmax(mean, 1) == np.load(sys.argv[2]))
diff = ""
if sys.argv[3]:
    want = np.load(sys.argv[3])
    diff = f"{np.max(np.abs(mean - want)) / np.max(np.abs(want)):.2e}"
print(f"{acc:.4f} | {diff}")
PY
)
  ROW="| $N / $M | $DTYPE | $GET | $MAX_MEMORY | $RAN | $WALL | $(printf '%.2f' "$(echo "$RSS_KB / 1048576" | bc -l)") | $STATS | $LOAD_BEFORE / $LOAD_AFTER |"
fi
REPORT="$OUT/section.md"
PREVIOUS=$(sed -n '/<!-- fashion-full:begin -->/,/<!-- fashion-full:end -->/p' "$RESULTS" 2>/dev/null | grep '^| [0-9]' || true)
{
echo "<!-- fashion-full:begin -->"
echo "## All of Fashion-MNIST out of core (bench/fashion_full.sh)"
echo
echo "Last run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, shared with other"
echo "processes (load averages from \`uptime\` before / after). \`bin/ntk predict --model $MODEL --get G --dtype D"
echo "--diag-reg 1e-4 --max-memory MEM --verbose\`, \`JAVA_OPTS=$JAVA_OPTS\`, one process under \`/usr/bin/time -v\`."
echo "Max RSS in GiB; accuracy of argmax(mean) on the test labels; \"max rel diff\" of the means from \`CHECK\`'s."
echo
echo "| train / test | dtype | kernel | --max-memory | solver | wall (h:mm:ss) | max RSS (GiB) | accuracy | max rel diff | load before / after |"
echo "|---|---|---|---|---|---|---|---|---|---|"
[[ -n "$PREVIOUS" ]] && echo "$PREVIOUS"
echo "$ROW"
echo "<!-- fashion-full:end -->"
} > "$REPORT"
$PYTHON bench/section.py fashion-full "$RESULTS" "$REPORT"
cat "$REPORT"
exit $rc

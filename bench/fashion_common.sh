# Sourced by bench/fashion.sh and bench/fashion_cg.sh after each has set OUT: the defaults both
# take (DATA, PYTHON, NTK; MODEL), the dataset check, the scratch directory, bin/ntk built outside
# the timings, and the helpers that time a command and say where it ran. Not a script of its own.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
MODEL=bench/predict_relu3.json
PYTHON=${PYTHON:-python3}
NTK=${NTK:-bin/ntk}
if [[ ! -f "$DATA/train-images-idx3-ubyte.gz" ]]; then
  echo "$(basename "$0"): $DATA/train-images-idx3-ubyte.gz not found: apt-get install dataset-fashion-mnist" \
    "(or set DATA)" >&2
  exit 2
fi
mkdir -p "$OUT"
$NTK --help >/dev/null   # bin/ntk builds if needed, outside the timings
# The seconds a command took; its exit status is the command's (its output in $OUT/last.log).
wall() {
  local s e rc=0
  s=$(date +%s.%N); "$@" > "$OUT/last.log" 2>&1 || rc=$?; e=$(date +%s.%N)
  printf '%.2f\n' "$(echo "$e - $s" | bc)"
  return $rc
}
# The line of the last command's output that says where it ran (in-process, or a runner, with its detail).
ran() { grep -m1 -E "^(in-process|[A-Za-z]+Runner)" "$OUT/last.log" || true; }

#!/usr/bin/env bash
# NNGP + NTK of depth-21 networks (20 blocks of Dense(512, W_std = sqrt 2, b_std = 0.1) and an
# activation, then Dense(1)) for Relu, Gelu, Erf, Elementwise tanh and ElementwiseNumerical tanh
# (deg 25): the engine alone (`Bench engine`, fused loops compiled and warmed first, best of
# REPEATS) against bench/activations_numpy.py (the same formulas in NumPy), in one run, on the
# same inputs. Prints one table row per model (Markdown) on stdout; logs under OUT. The engine's
# process CPU time and its ratio to ReLU's are printed beside the wall times: on a shared machine
# they move less with the load.
#
#   N=4096 D=784 DTYPE=float32 REPEATS=2
#   MODELS="relu gelu erf numerical_tanh exact_tanh"
#   NUMPY_MODELS="relu gelu erf numerical_tanh"   (NumPy has no exact tanh quadrature here)
#   N_EXACT=                N for the exact tanh row (9,216 quadrature points per entry; default N)
#   OUT=bench/out/activations  NTK=bin/ntk (built through it when the jar is missing)
#   CP=                     class path to use instead of the jar's (e.g. target/classes directories)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-4096}
D=${D:-784}
DTYPE=${DTYPE:-float32}
REPEATS=${REPEATS:-2}
MODELS=${MODELS:-"relu gelu erf numerical_tanh exact_tanh"}
NUMPY_MODELS=${NUMPY_MODELS:-"relu gelu erf numerical_tanh"}
N_EXACT=${N_EXACT:-$N}
OUT=${OUT:-bench/out/activations}
PYTHON=${PYTHON:-python3}
JAVA=${JAVA:-java}
NTK=${NTK:-bin/ntk}
JAR=pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar
if [[ -z "${CP:-}" ]]; then
  if [[ ! -f $JAR ]]; then "$NTK" --help >/dev/null; fi
  CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:$JAR:$(cat pipelines/target/classpath.txt)"
fi
JVM_FLAGS=(--add-modules=jdk.incubator.vector --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dntk.cpu.fused=now)
mkdir -p "$OUT"
bench() { TF_CPP_MIN_LOG_LEVEL=2 "$JAVA" "${JVM_FLAGS[@]}" ${JAVA_OPTS:-} -cp "$CP" dev.ntk.bench.Bench "$@"; }
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

model() {  # model NAME: writes OUT/NAME.json
  local act
  case $1 in
    relu) act='{"Relu": {}}' ;;
    gelu) act='{"Gelu": {}}' ;;
    erf) act='{"Erf": {}}' ;;
    numerical_tanh) act='{"ElementwiseNumerical": {"fn": "tanh", "deg": 25}}' ;;
    exact_tanh) act='{"Elementwise": {"fn": "tanh"}}' ;;
  esac
  {
    echo '{"serial": ['
    for _ in $(seq 20); do
      echo "  {\"Dense\": {\"out_dim\": 512, \"W_std\": 1.4142135623730951, \"b_std\": 0.1}}, $act,"
    done
    echo '  {"Dense": {"out_dim": 1, "W_std": 1.4142135623730951, "b_std": 0.1}}]}'
  } >"$OUT/$1.json"
}

echo "| model | N | engine s (Java, fused) | x ReLU | engine CPU s | x ReLU (CPU) | NumPy s | NumPy / engine |"
echo "|---|---|---|---|---|---|---|---|"
RELU=
RELU_CPU=
for m in $MODELS; do
  n=$N
  if [[ $m == exact_tanh ]]; then n=$N_EXACT; fi
  X=$OUT/x-n$n-d$D.npy
  [[ -f $X ]] || bench data --n "$n" --d "$D" --seed 0 --dtype "$DTYPE" --out "$X" >/dev/null
  model "$m"
  line=$(bench engine --model "$OUT/$m.json" --x "$X" --dtype "$DTYPE" --repeats "$REPEATS" 2>"$OUT/$m-engine.log" \
    | grep '^RESULT') || { echo "| $m | $n | FAILED ($OUT/$m-engine.log) | | | | | |"; continue; }
  secs=$(field "$line" seconds)
  cpu=$(field "$line" cpu_seconds)
  if [[ $m == relu && $n == "$N" ]]; then RELU=$secs; RELU_CPU=$cpu; fi
  ratio=$(if [[ -n $RELU && $n == "$N" ]]; then awk -v a="$secs" -v b="$RELU" 'BEGIN{printf "%.1f", a/b}'; fi)
  cpu_ratio=$(if [[ -n $RELU_CPU && $n == "$N" ]]; then awk -v a="$cpu" -v b="$RELU_CPU" 'BEGIN{printf "%.1f", a/b}'; fi)
  np_secs=
  if [[ " $NUMPY_MODELS " == *" $m "* ]]; then
    np_line=$("$PYTHON" bench/activations_numpy.py --model "$OUT/$m.json" --x "$X" --dtype "$DTYPE" --repeats 1 \
      2>"$OUT/$m-numpy.log" | grep '^RESULT') && np_secs=$(field "$np_line" seconds)
  fi
  np_ratio=$(if [[ -n $np_secs ]]; then awk -v a="$np_secs" -v b="$secs" 'BEGIN{printf "%.1f", a/b}'; fi)
  echo "| $m | $n | $secs | $ratio | $cpu | $cpu_ratio | ${np_secs:--} | ${np_ratio:--} |"
done

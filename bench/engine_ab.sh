#!/usr/bin/env bash
# `Bench engine` (the cpu engine alone, warm, in one JVM) with two builds of the kernels module, run
# alternately so that both see the same load: BEFORE and AFTER each name a kernels classes folder or
# jar (say a copy of kernels/target/classes taken before a change); the rest of the class path is this
# checkout's built jars (`mvn -B -ntp -o -q -pl bench -am package -DskipTests`). Prints, per run, the
# CPU seconds of the timed repeats (median and least, from the engine's own lines), which hold better
# than wall seconds on a shared machine, and the load average.
#
#   BEFORE=/tmp/before-classes AFTER=kernels/target/classes bench/engine_ab.sh
#   MODEL=examples/cnn21/gap.json N=8 REPEATS=2 ROUNDS=3 THREADS=1 DTYPE=float32 OUT=bench/out/engine-ab
#   JAVA_OPTS="-XX:StartFlightRecording=filename=/tmp/e.jfr,settings=profile"   flags for both JVMs
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BEFORE=${BEFORE:?set BEFORE to a kernels classes folder or jar}; AFTER=${AFTER:?set AFTER likewise}
MODEL=${MODEL:-examples/cnn21/gap.json}; N=${N:-8}; REPEATS=${REPEATS:-2}; ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-1}; DTYPE=${DTYPE:-float32}; OUT=${OUT:-bench/out/engine-ab}
mkdir -p "$OUT"
kernels="$ROOT/kernels/target/ntk-kernels-0.1.0-SNAPSHOT.jar"
classpath() {  # the checkout's class path with the kernels jar replaced by $1
  echo "bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(
    sed "s#$kernels#$1#" pipelines/target/classpath.txt)"
}
JVM=(--add-modules=jdk.incubator.vector -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
x="$OUT/x-$N-$DTYPE.npy"
java "${JVM[@]}" -cp "$(classpath "$kernels")" dev.ntk.bench.Bench data --n "$N" --shape 32,32,3 --seed 0 \
  --dtype "$DTYPE" --out "$x" > /dev/null 2>&1
for r in $(seq "$ROUNDS"); do
  for which in BEFORE AFTER; do
    # shellcheck disable=SC2086 # JAVA_OPTS is a list of flags
    TF_CPP_MIN_LOG_LEVEL=3 java "${JVM[@]}" ${JAVA_OPTS:-} -cp "$(classpath "${!which}")" dev.ntk.bench.Bench engine \
      --model "$MODEL" --x "$x" --dtype "$DTYPE" --repeats "$REPEATS" --threads "$THREADS" \
      2> "$OUT/stderr.log" > "$OUT/stdout.log"
    cpu=$(sed -n 's/^repeat [0-9]*: .* (cpu \([0-9.]*\) s)$/\1/p' "$OUT/stderr.log" | sort -n |
      awk '{ a[NR] = $1 } END { printf "median %s least %s", a[int((NR + 1) / 2)], a[1] }')
    echo "RUN $which round=$r load=$(cut -d' ' -f1 /proc/loadavg) cpu_per_repeat: $cpu"
  done
done

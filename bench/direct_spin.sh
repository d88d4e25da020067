#!/usr/bin/env bash
# Where a DirectRunner job's CPU goes while one tile computes: `ntk kernel --runner DirectRunner`
# (relu21, N x N x 784, float32, one tile) at --parallelism 1 (the default) and 2, each under JFR's
# sampling profiler. Prints per run: wall and CPU seconds, the tile's kernel seconds (--verbose), the
# Java execution samples in all and those inside Beam's WatermarkManager (the DirectRunner's monitor,
# which Beam re-submits without pause while fewer bundles than its threads are running).
#
#   N=4096  ROUNDS=2  NTK=bin/ntk  OUT=bench/out/direct-spin
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-4096}; ROUNDS=${ROUNDS:-2}; NTK=${NTK:-bin/ntk}; OUT=${OUT:-bench/out/direct-spin}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
"$NTK" --help >/dev/null
CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"
java --add-modules=jdk.incubator.vector -cp "$CP" dev.ntk.bench.Bench data --n "$N" --d 784 --seed 0 \
  --dtype float32 --out "$OUT/x.npy" >/dev/null 2>&1
echo "lscpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
for round in $(seq "$ROUNDS"); do
  for p in 1 2; do
    rm -rf "$OUT/out" "$OUT/p$p.jfr"
    s=$(date +%s.%N)
    JAVA_OPTS="-XX:StartFlightRecording=filename=$OUT/p$p.jfr,settings=profile" /usr/bin/time -f "%U %S" \
      -o "$OUT/time" "$NTK" kernel --model bench/relu21.json --x1 "$OUT/x.npy" --dtype float32 --verbose \
      --out "$OUT/out" --runner DirectRunner --parallelism "$p" >"$OUT/log" 2>&1
    e=$(date +%s.%N)
    jfr print --events jdk.ExecutionSample "$OUT/p$p.jfr" >"$OUT/samples.txt"
    counts=$(python3 - "$OUT/samples.txt" <<'EOF'
import sys
events = open(sys.argv[1]).read().split('jdk.ExecutionSample')[1:]
print(len(events), sum('WatermarkManager' in e for e in events))
EOF
)
    read -r all spin <<<"$counts"
    kernels=$(sed -n 's/.*kernels \([0-9.]*\) s (the longest.*/\1/p' "$OUT/log")
    printf 'RUN round=%s parallelism=%s wall=%.2f cpu=%.2f load=%s tile_kernels_s=%s samples=%s watermark_samples=%s (%.0f%%)\n' \
      "$round" "$p" "$(echo "$e - $s" | bc)" "$(awk '{print $1 + $2}' "$OUT/time")" "$(cut -d' ' -f1 /proc/loadavg)" \
      "$kernels" "$all" "$spin" "$(echo "100 * $spin / $all" | bc -l)"
  done
done

#!/usr/bin/env bash
# Issue 21's first aim: `bin/ntk kernel --runner DirectRunner` against the default (in-process) run, whole
# processes, depth-21 ReLU (bench/relu21.json), N x N x 784 float32, x with itself, alternating so that
# both see the same load. Prints one line per run (wall, CPU = user + sys of all threads, the load
# average, the command's own summary) and the ratio of the best walls.
#
#   N=8192  ROUNDS=2  DTYPE=float32  NTK=bin/ntk  OUT=bench/out/direct-vs-inprocess
#   EXTRA="--parallelism 2"   more flags for the DirectRunner run
#   MAX_TILE_BYTES=           --max-tile-bytes for both (e.g. 4294967296 so that N = 16384 runs in-process)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-8192}; ROUNDS=${ROUNDS:-2}; DTYPE=${DTYPE:-float32}; NTK=${NTK:-bin/ntk}
OUT=${OUT:-bench/out/direct-vs-inprocess}; EXTRA=${EXTRA:-}; MAX_TILE_BYTES=${MAX_TILE_BYTES:-}
mkdir -p "$OUT"
"$NTK" --help >/dev/null
CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"
X=$OUT/x-$N-$DTYPE.npy
[[ -f $X ]] || java --add-modules=jdk.incubator.vector -cp "$CP" dev.ntk.bench.Bench data --n "$N" --d 784 --seed 0 \
  --dtype "$DTYPE" --out "$X" >/dev/null 2>&1
echo "lscpu: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; N=$N $DTYPE; commit $(git rev-parse --short HEAD)"
sizing=()
[[ -n $MAX_TILE_BYTES ]] && sizing=(--max-tile-bytes "$MAX_TILE_BYTES")
best_in=""; best_dr=""
for round in $(seq "$ROUNDS"); do
  for which in inprocess direct; do
    rm -rf "$OUT/out"
    flags=()
    # shellcheck disable=SC2206 # EXTRA is a list of flags
    [[ $which == direct ]] && flags=(--runner DirectRunner $EXTRA)
    s=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$OUT/time" "$NTK" kernel --model bench/relu21.json --x1 "$X" --dtype "$DTYPE" \
      --verbose --out "$OUT/out" "${sizing[@]}" "${flags[@]}" >"$OUT/log-$which" 2>&1
    e=$(date +%s.%N)
    wall=$(echo "$e - $s" | bc)
    summary=$(grep -E "^(DirectRunner: |in-process)" "$OUT/log-$which" | tr '\n' ' ')
    printf 'RUN round=%s %s wall=%.2f cpu=%.2f load=%s %s\n' "$round" "$which" "$wall" \
      "$(awk '{print $1 + $2}' "$OUT/time")" "$(cut -d' ' -f1 /proc/loadavg)" "$summary"
    if [[ $which == inprocess ]]; then
      [[ -z $best_in ]] || (( $(echo "$wall < $best_in" | bc) )) && best_in=$wall
    else
      [[ -z $best_dr ]] || (( $(echo "$wall < $best_dr" | bc) )) && best_dr=$wall
    fi
  done
done
rm -rf "$OUT/out"
printf 'best wall: in-process %.2f s, DirectRunner %.2f s, ratio %.2fx\n' "$best_in" "$best_dr" \
  "$(echo "$best_dr / $best_in" | bc -l)"

#!/usr/bin/env bash
# Does a kernel job scale over workers? Starts a standalone Flink 1.19 session cluster (as
# runners/flink-cluster-check.sh does) whose two TaskManagers have one slot each and are pinned to
# one core each with taskset (each JVM, its tile loops and OpenBLAS see one core, so a tile is
# computed single-threaded), runs the same work-dominated kernel job at parallelism 1 and 2, and
# compares both kernels with the DirectRunner's. Prints the times and, last,
#   scaling: p1 <seconds> s, p2 <seconds> s, speedup <x>
# where the seconds are the pipelines' own (submission to completion, from the job report), and
# exits 0 only if both kernels equal the DirectRunner's (1e-12 of the largest entry, float64).
# bench/README.md says what the fixed and per-tile costs it measures imply for more workers.
#
# Knobs (environment): N=2400 D=128 (or SHAPE=H,W,C for images) TILE=200 MODEL=bench/relu21.json
# REST_PORT=18091 RPC_PORT=16133
# CPUS="0 1" (the cores the two TaskManagers are pinned to) OUT=/tmp/ntk-flink-scaling NTK=bin/ntk
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-2400}
D=${D:-128}
SHAPE=${SHAPE:-}
TILE=${TILE:-200}
MODEL=${MODEL:-bench/relu21.json}
REST_PORT=${REST_PORT:-18091}
RPC_PORT=${RPC_PORT:-16133}
read -r -a CPUS <<< "${CPUS:-0 1}"
OUT=${OUT:-/tmp/ntk-flink-scaling}
NTK=${NTK:-bin/ntk}

# shellcheck source=runners/flink-cluster.sh
source "$ROOT/runners/flink-cluster.sh"
if (( $(nproc) < ${#CPUS[@]} )); then
  flink_log "needs ${#CPUS[@]} cores to pin the TaskManagers to, this machine has $(nproc)"
  exit 1
fi
flink_cluster_start "$OUT" 1 "${CPUS[@]}"

features=(--d "$D")
[[ -n "$SHAPE" ]] && features=(--shape "$SHAPE")
java -cp "$BENCH_CP" dev.ntk.bench.Bench data --n "$N" "${features[@]}" --seed 0 --dtype float64 \
  --out "$OUT/x.npy" > /dev/null
blocks=$(( (N + TILE - 1) / TILE ))
total=$(( blocks * (blocks + 1) / 2 ))
common=(kernel --model "$MODEL" --x1 "$OUT/x.npy" --tile "$TILE")
cluster=(--runner FlinkRunner --flink-master "localhost:$REST_PORT" --filesToStage="$JAR")

run() { # name, then the arguments; prints the pipeline's seconds from its report
  local name=$1; shift
  "$NTK" "$@" --out "$OUT/$name" > "$OUT/logs/$name.out" 2> "$OUT/logs/$name.err" \
    || { flink_log "$name failed:"; cat "$OUT/logs/$name.err" >&2; exit 1; }
  sed -n 's/.*pipeline \([0-9.]*\) s.*/\1/p' "$OUT/logs/$name.out" | head -1
}

flink_log "$total tiles of $TILE rows ($N x $N, inputs ${SHAPE:-$D}, float64, $MODEL)"
s_direct=$(run direct "${common[@]}" --runner DirectRunner --parallelism 2)
flink_log "DirectRunner: $(head -1 "$OUT/logs/direct.out")"
s1=$(run p1 "${common[@]}" "${cluster[@]}" --parallelism 1)
flink_log "parallelism 1: $(head -1 "$OUT/logs/p1.out")"
s2=$(run p2 "${common[@]}" "${cluster[@]}" --parallelism 2)
flink_log "parallelism 2: $(head -1 "$OUT/logs/p2.out")"

ok=1
for k in nngp ntk; do
  for p in p1 p2; do
    java -cp "$CP" "$ROOT/runners/CompareKernels.java" "$OUT/direct/$k.npy" "$OUT/$p/$k.npy" || ok=0
  done
done
echo "DirectRunner (parallelism 2, unpinned): pipeline $s_direct s"
printf 'scaling: p1 %s s, p2 %s s, speedup %.2f\n' "$s1" "$s2" "$(echo "$s1 / $s2" | bc -l)"
(( ok )) || { echo "RESULT: FAIL (kernels differ)"; exit 1; }

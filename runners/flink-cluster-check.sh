#!/usr/bin/env bash
# A real Flink cluster that loses a worker: starts a standalone Flink 1.19 session cluster from the
# project's Maven artifacts (a JobManager and two TaskManagers, each a JVM of its own, on loopback),
# submits `bin/ntk kernel --runner FlinkRunner --flink-master localhost:PORT` to it twice (once as
# is, once killing a TaskManager with SIGKILL while the tiles are being computed), and compares both
# kernels with the DirectRunner's. Prints the times and the tiles computed and reused; exits 0 only
# if all three kernels are equal (to 1e-12 of the largest entry, float64) and the killed run reused
# the tiles written before the kill. See README.md, "On a Flink cluster".
#
# Knobs (environment): N=6000 D=128 TILE=200 MODEL=bench/relu21.json KILL_AT=0.3 (fraction of the
# tiles on disk when the TaskManager is killed) REST_PORT=18081 RPC_PORT=16123
# OUT=/tmp/ntk-flink-check NTK=bin/ntk
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-6000}
D=${D:-128}
TILE=${TILE:-200}
MODEL=${MODEL:-bench/relu21.json}
KILL_AT=${KILL_AT:-0.3}
REST_PORT=${REST_PORT:-18081}
RPC_PORT=${RPC_PORT:-16123}
OUT=${OUT:-/tmp/ntk-flink-check}
NTK=${NTK:-bin/ntk}

# shellcheck source=runners/flink-cluster.sh
source "$ROOT/runners/flink-cluster.sh"
log() { flink_log "$@"; }

# Two TaskManagers of two slots each, unpinned: the job restarts on the survivor of a kill.
flink_cluster_start "$OUT" 2 - -
tm1=${TM_PIDS[0]}

java -cp "$BENCH_CP" dev.ntk.bench.Bench data --n "$N" --d "$D" --seed 0 --dtype float64 \
  --out "$OUT/x.npy" > /dev/null
blocks=$(( (N + TILE - 1) / TILE ))
total=$(( blocks * (blocks + 1) / 2 ))
common=(kernel --model "$MODEL" --x1 "$OUT/x.npy" --tile "$TILE" --parallelism 2)
cluster=(--runner FlinkRunner --flink-master "localhost:$REST_PORT" --filesToStage="$JAR")

timed() { # name, then the command; prints the seconds
  local name=$1; shift
  local t0; t0=$(date +%s.%N)
  "$@" > "$OUT/logs/$name.out" 2> "$OUT/logs/$name.err" || { log "$name failed:"; cat "$OUT/logs/$name.err" >&2; exit 1; }
  echo "$(date +%s.%N) - $t0" | bc
}

log "$total tiles of $TILE rows ($N x $N, float64, $MODEL)"
s_direct=$(timed direct "$NTK" "${common[@]}" --out "$OUT/direct")
log "DirectRunner: $s_direct s: $(head -1 "$OUT/logs/direct.out")"
s_cluster=$(timed cluster "$NTK" "${common[@]}" "${cluster[@]}" --out "$OUT/cluster")
log "cluster: $s_cluster s: $(head -1 "$OUT/logs/cluster.out")"

# The same job again into a fresh directory; SIGKILL the first TaskManager once KILL_AT of the
# tiles are on disk.
t0=$(date +%s.%N)
"$NTK" "${common[@]}" "${cluster[@]}" --out "$OUT/killed" > "$OUT/logs/killed.out" 2> "$OUT/logs/killed.err" &
job=$!
threshold=$(echo "$total * $KILL_AT / 1" | bc)
on_disk=0
while kill -0 "$job" 2>/dev/null; do
  on_disk=$({ find "$OUT/killed/tiles" -name 'tile-*.arrow' 2>/dev/null || true; } | wc -l)
  if (( on_disk >= threshold )); then
    kill -9 "$tm1"
    wait "$tm1" 2>/dev/null || true
    log "killed TaskManager $tm1 (SIGKILL) with $on_disk of $total tiles on disk"
    break
  fi
  sleep 0.1
done
if ! wait "$job"; then
  log "the job with the killed TaskManager failed:"
  cat "$OUT/logs/killed.err" >&2
  exit 1
fi
s_killed=$(echo "$(date +%s.%N) - $t0" | bc)
if kill -0 "$tm1" 2>/dev/null; then
  log "the job ended before $threshold tiles were on disk: nothing was killed (raise N or lower KILL_AT)"
  exit 1
fi
log "cluster, a TaskManager killed: $s_killed s: $(head -1 "$OUT/logs/killed.out")"
restarts=$(grep -c "switched from state RUNNING to RESTARTING\|to RESTARTING" "$OUT/logs/jobmanager.log" || true)

read -r computed reused < <(sed -n 's/.*: \([0-9]*\) tiles computed, \([0-9]*\) reused.*/\1 \2/p' "$OUT/logs/killed.out" | head -1)
ok=1
echo "| run | seconds | tiles computed | tiles reused |"
echo "|---|---:|---:|---:|"
printf '| DirectRunner | %.1f | %s | %s |\n' "$s_direct" $(sed -n 's/.*: \([0-9]*\) tiles computed, \([0-9]*\) reused.*/\1 \2/p' "$OUT/logs/direct.out")
printf '| cluster | %.1f | %s | %s |\n' "$s_cluster" $(sed -n 's/.*: \([0-9]*\) tiles computed, \([0-9]*\) reused.*/\1 \2/p' "$OUT/logs/cluster.out")
printf '| cluster, one TaskManager killed | %.1f | %s | %s |\n' "$s_killed" "${computed:-?}" "${reused:-?}"
echo
for k in nngp ntk; do
  for run in cluster killed; do
    java -cp "$CP" "$ROOT/runners/CompareKernels.java" "$OUT/direct/$k.npy" "$OUT/$run/$k.npy" || ok=0
  done
done
echo "killed run: $on_disk of $total tiles on disk at the kill; the attempt that finished computed ${computed:-?} and reused ${reused:-?}; restarts in the JobManager's log: $restarts"
if [[ -z "${reused:-}" || "$reused" -eq 0 || $(( computed + reused )) -ne $total ]]; then
  ok=0
fi
if (( ok )); then
  echo "RESULT: PASS"
else
  echo "RESULT: FAIL"
  exit 1
fi

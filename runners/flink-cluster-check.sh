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

log() { echo "flink-cluster-check: $*" >&2; }

"$NTK" --help > /dev/null   # builds the project on first use
NTK_ROOT=$(cd "$(dirname "$NTK")/.." && pwd)
JAR="$NTK_ROOT/pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar"
CP="$JAR:$(cat "$NTK_ROOT/pipelines/target/classpath.txt")"
JVM=(--add-modules=jdk.incubator.vector --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true)

rm -rf "$OUT"
mkdir -p "$OUT/conf" "$OUT/logs" "$OUT/tmp"
# The cluster's configuration. The workers load the job's classes from their own class path (the
# project's, parent-first), so the job ships only the pipelines jar (--filesToStage). Heartbeats are
# short so that the lost TaskManager is noticed in seconds; two slots per TaskManager let the job
# restart on the survivor.
cat > "$OUT/conf/flink-conf.yaml" <<CONF
jobmanager.rpc.address: localhost
jobmanager.rpc.port: $RPC_PORT
jobmanager.bind-host: localhost
rest.address: localhost
rest.bind-address: localhost
rest.port: $REST_PORT
taskmanager.host: localhost
taskmanager.bind-host: localhost
taskmanager.numberOfTaskSlots: 2
# A TaskManager started without Flink's scripts needs its resources spelled out.
taskmanager.cpu.cores: 2
taskmanager.memory.framework.heap.size: 128m
taskmanager.memory.task.heap.size: 640m
taskmanager.memory.framework.off-heap.size: 128m
taskmanager.memory.task.off-heap.size: 0m
taskmanager.memory.network.min: 64m
taskmanager.memory.network.max: 64m
taskmanager.memory.managed.size: 64m
taskmanager.memory.jvm-metaspace.size: 256m
taskmanager.memory.jvm-overhead.min: 192m
taskmanager.memory.jvm-overhead.max: 192m
jobmanager.memory.process.size: 1024m
cluster.evenly-spread-out-slots: true
classloader.resolve-order: parent-first
classloader.check-leaked-classloader: false
restart-strategy.type: fixed-delay
restart-strategy.fixed-delay.attempts: 5
restart-strategy.fixed-delay.delay: 1 s
heartbeat.interval: 1000
heartbeat.timeout: 5000
io.tmp.dirs: $OUT/tmp
CONF

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
trap cleanup EXIT

java "${JVM[@]}" -Xmx768m -cp "$CP" \
  org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint --configDir "$OUT/conf" \
  > "$OUT/logs/jobmanager.log" 2>&1 &
pids+=($!)
start_taskmanager() {
  java "${JVM[@]}" -Xmx768m -XX:MaxDirectMemorySize=512m -cp "$CP" \
    org.apache.flink.runtime.taskexecutor.TaskManagerRunner --configDir "$OUT/conf" \
    > "$OUT/logs/taskmanager-$1.log" 2>&1 &
  pids+=($!)
}
start_taskmanager 1
tm1=$!
start_taskmanager 2
tm2=$!

# Wait for the REST endpoint and both TaskManagers.
rest() { # path, key: one number from a JSON reply of the REST API
  curl -s --max-time 2 "http://localhost:$REST_PORT$1" | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}
for _ in $(seq 1 60); do
  tms=$(rest /overview taskmanagers || true)
  [[ "$tms" == 2 ]] && break
  sleep 0.5
done
if [[ "${tms:-}" != 2 ]]; then
  log "the cluster did not start (logs in $OUT/logs)"
  tail -n 5 "$OUT"/logs/*.log >&2
  exit 1
fi
log "cluster up: JobManager pid ${pids[0]} (REST localhost:$REST_PORT), TaskManagers pids $tm1 $tm2, $(rest /overview slots-total) slots"

java -cp "$CP" dev.ntk.pipelines.bench.Bench data --n "$N" --d "$D" --seed 0 --dtype float64 \
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

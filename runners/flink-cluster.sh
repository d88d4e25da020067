#!/usr/bin/env bash
# Sourced by runners/flink-*-check.sh: a standalone Flink 1.19 session cluster from the project's
# Maven artifacts, a JobManager and TaskManagers each a JVM of its own, on loopback.
#
#   flink_cluster_start OUT SLOTS TM_CPUS...   writes OUT/conf, starts the JobManager and one
#       TaskManager per TM_CPUS entry (SLOTS task slots each; an entry "-" runs unpinned, a CPU
#       list such as 0 or 1 pins the TaskManager to it with taskset and gives it one core), waits
#       until all are registered. Sets JAR, CP, JVM, REST_PORT and TM_PIDS; the EXIT trap stops them.
#   rest PATH KEY                               one number from a JSON reply of the REST API.
#
# Needs: NTK (bin/ntk), REST_PORT, RPC_PORT.

flink_log() { echo "$(basename "$0" .sh): $*" >&2; }

rest() {
  curl -s --max-time 2 "http://localhost:$REST_PORT$1" | grep -o "\"$2\":[0-9]*" | cut -d: -f2
}

flink_cluster_start() {
  local out=$1 slots=$2; shift 2
  local cpus=("$@")
  "$NTK" --help > /dev/null   # builds the project on first use
  local ntk_root; ntk_root=$(cd "$(dirname "$NTK")/.." && pwd)
  JAR="$ntk_root/pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar"
  CP="$JAR:$(cat "$ntk_root/pipelines/target/classpath.txt")"
  # the benchmark programs (module bench: Bench data writes the inputs) on top of the command line's
  BENCH_CP="$ntk_root/bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:$CP"
  JVM=(--add-modules=jdk.incubator.vector --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
    --add-opens=java.base/java.lang.invoke=ALL-UNNAMED --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true)
  rm -rf "$out"
  mkdir -p "$out/conf" "$out/logs" "$out/tmp"
  # The workers load the job's classes from their own class path (the project's, parent-first), so
  # the job ships only the pipelines jar (--filesToStage). Heartbeats are short so that a lost
  # TaskManager is noticed in seconds.
  cat > "$out/conf/flink-conf.yaml" <<CONF
jobmanager.rpc.address: localhost
jobmanager.rpc.port: $RPC_PORT
jobmanager.bind-host: localhost
rest.address: localhost
rest.bind-address: localhost
rest.port: $REST_PORT
taskmanager.host: localhost
taskmanager.bind-host: localhost
taskmanager.numberOfTaskSlots: $slots
# A TaskManager started without Flink's scripts needs its resources spelled out.
taskmanager.cpu.cores: $slots
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
io.tmp.dirs: $out/tmp
CONF
  FLINK_PIDS=()
  TM_PIDS=()
  trap flink_cluster_stop EXIT
  java "${JVM[@]}" -Xmx768m -cp "$CP" \
    org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint --configDir "$out/conf" \
    > "$out/logs/jobmanager.log" 2>&1 &
  FLINK_PIDS+=($!)
  local i=0 pin
  for cpu in "${cpus[@]}"; do
    i=$((i + 1))
    pin=()
    # A pinned TaskManager sees one core: the JVM, the engine's threads and OpenBLAS size to it.
    [[ "$cpu" != "-" ]] && pin=(env OPENBLAS_NUM_THREADS=1 taskset -c "$cpu")
    "${pin[@]}" java "${JVM[@]}" -Xmx768m -XX:MaxDirectMemorySize=512m -cp "$CP" \
      org.apache.flink.runtime.taskexecutor.TaskManagerRunner --configDir "$out/conf" \
      > "$out/logs/taskmanager-$i.log" 2>&1 &
    FLINK_PIDS+=($!)
    TM_PIDS+=($!)
  done
  local tms=
  for _ in $(seq 1 60); do
    tms=$(rest /overview taskmanagers || true)
    [[ "$tms" == "${#cpus[@]}" ]] && break
    sleep 0.5
  done
  if [[ "${tms:-}" != "${#cpus[@]}" ]]; then
    flink_log "the cluster did not start (logs in $out/logs)"
    tail -n 5 "$out"/logs/*.log >&2
    exit 1
  fi
  flink_log "cluster up: JobManager pid ${FLINK_PIDS[0]} (REST localhost:$REST_PORT), TaskManagers pids ${TM_PIDS[*]}, $(rest /overview slots-total) slots"
}

flink_cluster_stop() {
  for pid in "${FLINK_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}

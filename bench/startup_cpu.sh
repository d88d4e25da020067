#!/usr/bin/env bash
# CPU seconds by thread of a small `ntk kernel` run (the CNN benchmark's Flatten model on 2 inputs:
# start-up, almost no kernel work), sampled every 10 ms of each thread's CPU time by async-profiler
# (its jar is on the project's class path; the agent is extracted from it). CPU time, unlike wall
# time, holds on a loaded machine. Prints one line per run: the main thread's CPU up to the kernel
# computation (the start-up on the critical path) and in it, the preload thread's, the JIT
# compilers', and the rest; then the main thread's start-up split by what it was doing.
#
#   NTK="bin/ntk" (the command; bench/ntk-checkout.sh runs another build)  RUNS=3  OUT=bench/out/startup
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
NTK=${NTK:-bin/ntk}; RUNS=${RUNS:-3}; OUT=${OUT:-bench/out/startup}; PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
profiler_jar=$(tr ':' '\n' < pipelines/target/classpath.txt | grep -m1 '/async-profiler-[^/]*\.jar$')
unzip -o -q "$profiler_jar" linux-x64/libasyncProfiler.so -d "$OUT"
CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"
java --add-modules=jdk.incubator.vector -cp "$CP" dev.ntk.bench.Bench data --n 2 --shape 32,32,3 --seed 0 \
  --dtype float32 --out "$OUT/x.npy" >/dev/null 2>&1
rm -rf "$OUT/out"
$NTK kernel --model examples/cnn21/flatten.json --x1 "$OUT/x.npy" --dtype float32 --out "$OUT/out" >/dev/null 2>&1
for r in $(seq "$RUNS"); do
  rm -rf "$OUT/out"
  JAVA_OPTS="${JAVA_OPTS:-} -agentpath:$ROOT/$OUT/linux-x64/libasyncProfiler.so=start,event=itimer,interval=10ms,threads,collapsed,file=$ROOT/$OUT/cpu-$r.txt" \
    $NTK kernel --model examples/cnn21/flatten.json --x1 "$OUT/x.npy" --dtype float32 --out "$OUT/out" >/dev/null 2>&1
  "$PYTHON" - "$OUT/cpu-$r.txt" <<'PY'
import collections, sys
threads, start = collections.Counter(), collections.Counter()
parts = ["Ntk.commandLine", "CommandLine.<init>", "LauncherHelper", "ModelSpec", "KernelInputs.read", "Plan.compile",
         "CudaDevice", "Outputs"]
for line in open(sys.argv[1]):
    stack, n = line.rsplit(" ", 1)
    n = int(n) / 100
    thread = stack.split(";")[0]
    if thread.startswith("[main"):
        if "InProcessKernel.run" in stack:
            threads["main, kernels"] += n
        else:
            threads["main, start-up"] += n
            start[next((p for p in parts if p in stack), "other")] += n
    elif "ntk-preload" in thread:
        threads["preload"] += n
    elif "Compiler" in thread:
        threads["JIT"] += n
    else:
        threads["other threads"] += n
print("CPU " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(threads.items())))
print("    main start-up: " + ", ".join(f"{k} {v:.2f} s" for k, v in start.most_common()))
PY
done

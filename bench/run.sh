#!/usr/bin/env bash
# Measures the ntk benchmark and writes a Markdown report (bench/RESULTS.md by default).
# See bench/README.md. Every knob is an environment variable:
#
#   N=4096 D=784          kernel size (x1 = x2: N rows of dimension D, standard normal, SEED)
#   DTYPES="float32 float64"
#   RUNS="plan numpy engine engine_fused inprocess inprocess_tf direct direct_tf direct_c1 direct_tile512 flink1 flink2 big native rss"
#                         the parts to run (big: BIG_N x BIG_N in BIG_DTYPE through bin/ntk against
#                         a NumPy script that computes and saves the same, both whole processes)
#   BIG_N=8192 BIG_DTYPE=float32 BIG_REPEATS=3  (best of BIG_REPEATS for the NumPy script and in-process bin/ntk)
#   REPEATS=3             timed repeats (best reported) for numpy and in-process
#   TILE=                 --tile for the bin/ntk kernel runs (empty: bin/ntk's default)
#   CHECK=1               cross-check every bin/ntk kernel against the NumPy reference
#   NATIVE_REPEATS=3      cold/warm pairs for the native library load
#   RSS_ROWS=1600 RSS_TILE=16 RSS_RUNNER=DirectRunner RSS_PARALLELISM=2 RSS_DTYPE=float64
#   RSS_EVERY=1           seconds between VmRSS samples
#   RSS_JAVA_OPTS=-Xmx1g  JVM flags of the rss run (a bounded heap, so that the heap's growth
#                         towards its default maximum, a quarter of the RAM, is not read as a leak)
#   OUT=bench/out         scratch (inputs, kernels, logs; git-ignored)
#   RESULTS=bench/RESULTS.md   where the report goes
#   SEED=0  NTK=bin/ntk  PYTHON=python3  JAVA=java  MVN_ARGS="-B -q -DskipTests"
#   JAVA_OPTS=            extra JVM flags (bin/ntk reads it too when exported)
#
# Smoke test (seconds, not the real measurement):
#   N=256 D=32 RSS_ROWS=160 OUT=/tmp/ntk-bench RESULTS=/tmp/ntk-bench/RESULTS.md bash bench/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=${N:-4096}
D=${D:-784}
DTYPES=${DTYPES:-"float32 float64"}
RUNS=${RUNS:-"plan numpy engine engine_fused inprocess inprocess_tf direct direct_tf direct_c1 direct_tile512 flink1 flink2 big native rss"}
BIG_N=${BIG_N:-8192}
BIG_REPEATS=${BIG_REPEATS:-3}
BIG_DTYPE=${BIG_DTYPE:-float32}
REPEATS=${REPEATS:-3}
TILE=${TILE:-}
CHECK=${CHECK:-1}
NATIVE_REPEATS=${NATIVE_REPEATS:-3}
RSS_ROWS=${RSS_ROWS:-1600}
RSS_TILE=${RSS_TILE:-16}
RSS_RUNNER=${RSS_RUNNER:-DirectRunner}
RSS_PARALLELISM=${RSS_PARALLELISM:-2}
RSS_DTYPE=${RSS_DTYPE:-float64}
RSS_EVERY=${RSS_EVERY:-1}
RSS_JAVA_OPTS=${RSS_JAVA_OPTS--Xmx1g}
OUT=${OUT:-bench/out}
RESULTS=${RESULTS:-bench/RESULTS.md}
SEED=${SEED:-0}
NTK=${NTK:-bin/ntk}
PYTHON=${PYTHON:-python3}
JAVA=${JAVA:-java}
JAVA_OPTS=${JAVA_OPTS:-}
MVN_ARGS=${MVN_ARGS:-"-B -q -DskipTests"}

MODEL=bench/relu21.json
JAR=pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar
BENCH_JAR=bench/target/ntk-bench-0.1.0-SNAPSHOT.jar   # the benchmark programs (module bench)
CLASSPATH_FILE=pipelines/target/classpath.txt
JVM_FLAGS=(--add-modules=jdk.incubator.vector --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.log.ai.djl.util.cuda=error)
# TensorFlow's own log level for the Bench JVMs (bin/ntk picks its own unless it is set).
BENCH_TF_LOG=${TF_CPP_MIN_LOG_LEVEL:-2}

COMMAND="N=$N D=$D DTYPES=\"$DTYPES\" RUNS=\"$RUNS\" REPEATS=$REPEATS TILE=$TILE CHECK=$CHECK"
COMMAND+=" NATIVE_REPEATS=$NATIVE_REPEATS RSS_ROWS=$RSS_ROWS RSS_TILE=$RSS_TILE"
COMMAND+=" RSS_RUNNER=$RSS_RUNNER RSS_PARALLELISM=$RSS_PARALLELISM RSS_DTYPE=$RSS_DTYPE RSS_EVERY=$RSS_EVERY"
COMMAND+=" RSS_JAVA_OPTS=\"$RSS_JAVA_OPTS\" SEED=$SEED BIG_N=$BIG_N BIG_DTYPE=$BIG_DTYPE BIG_REPEATS=$BIG_REPEATS"
COMMAND+=" OUT=$OUT RESULTS=$RESULTS bash bench/run.sh"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOGS=$OUT/logs
mkdir -p "$LOGS"

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
wants() { [[ " $RUNS " == *" $1 "* ]]; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }          # calc FORMAT EXPRESSION
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1" | head -n 1; }   # field LINE KEY
entries_m() { calc '%.3f' "$N * $N / $1 / 1e6"; }       # million kernel entries per second

# ---------------------------------------------------------------- build
build() {
  if [[ -x $NTK ]]; then
    log "$NTK --help (builds the project on first use)"
    "$NTK" --help >"$LOGS/ntk-help.log" 2>&1 || { cat "$LOGS/ntk-help.log" >&2; exit 1; }
  fi
  local stamp=$OUT/.built newer=""
  if [[ -f $JAR && -f $BENCH_JAR && -f $CLASSPATH_FILE ]]; then
    local ref=$JAR
    [[ -f $stamp && $stamp -nt $JAR ]] && ref=$stamp
    newer=$(find pom.xml kernels io transforms runners pipelines bench -type f \
      \( -name pom.xml -o -path '*/src/main/*' \) -newer "$ref" -print -quit)
  else
    newer="(no jar yet)"
  fi
  if [[ -n $newer ]]; then
    log "building: mvn $MVN_ARGS package (changed: $newer)"
    # shellcheck disable=SC2086
    mvn $MVN_ARGS package >"$LOGS/build.log" 2>&1 || { tail -n 40 "$LOGS/build.log" >&2; exit 1; }
    touch "$stamp"
  fi
}
build
CP=$BENCH_JAR:$JAR:$(cat "$CLASSPATH_FILE")
BENCH_ENV=()
bench() {  # bench MODE ARGS... : runs dev.ntk.bench.Bench (with the settings in BENCH_ENV)
  # shellcheck disable=SC2086
  env -u MALLOC_MMAP_THRESHOLD_ -u MALLOC_TRIM_THRESHOLD_ "${BENCH_ENV[@]}" \
    TF_CPP_MIN_LOG_LEVEL=$BENCH_TF_LOG "$JAVA" "${JVM_FLAGS[@]}" $JAVA_OPTS -cp "$CP" \
    dev.ntk.bench.Bench "$@"
}

TIME_V=()
if [[ -x /usr/bin/time ]] && /usr/bin/time -v true >/dev/null 2>&1; then
  TIME_V=(/usr/bin/time -v -o)
fi
HAVE_NUMPY=0
if "$PYTHON" -c 'import numpy' >/dev/null 2>&1; then HAVE_NUMPY=1; fi

# ---------------------------------------------------------------- inputs
declare -A X SECS NOTE MAXRSS CHECKS PIPE WORKERS
for dt in $DTYPES; do
  X[$dt]=$OUT/x-n$N-d$D-s$SEED-$dt.npy
  if [[ ! -f ${X[$dt]} ]]; then
    log "writing ${X[$dt]}"
    bench data --n "$N" --d "$D" --seed "$SEED" --dtype "$dt" --out "${X[$dt]}" >/dev/null
  fi
done
# bin/ntk writes its class-data archive at the exit of the first run that computes after a build
# (seconds): a small kernel first, so that no measured run pays for it.
if [[ -x $NTK && $(basename "$NTK") == ntk ]]; then
  log "$NTK kernel on 64 rows (writes bin/ntk's class-data archive if it is missing)"
  XS=$OUT/x-n64-d$D-s$SEED-float32.npy
  [[ -f $XS ]] || bench data --n 64 --d "$D" --seed "$SEED" --dtype float32 --out "$XS" >/dev/null
  rm -rf "$OUT/kernel-archive"
  "$NTK" kernel --model "$MODEL" --x1 "$XS" --dtype float32 --out "$OUT/kernel-archive" >"$LOGS/ntk-archive.log" 2>&1 \
    || { cat "$LOGS/ntk-archive.log" >&2; exit 1; }
  rm -rf "$OUT/kernel-archive"
fi

# ---------------------------------------------------------------- numpy
if wants numpy; then
  for dt in $DTYPES; do
    if [[ $HAVE_NUMPY == 1 ]]; then
      log "numpy $dt"
      if line=$("$PYTHON" bench/numpy_reference.py --model "$MODEL" --x "${X[$dt]}" --dtype "$dt" \
          --repeats "$REPEATS" 2>"$LOGS/numpy-$dt.log" | grep '^RESULT'); then
        SECS[numpy,$dt]=$(field "$line" seconds)
      else
        NOTE[numpy,$dt]="FAILED (see $LOGS/numpy-$dt.log)"
        tail -n 20 "$LOGS/numpy-$dt.log" >&2
      fi
    else
      NOTE[numpy,$dt]="skipped: \`$PYTHON -c 'import numpy'\` failed"
      log "numpy $dt skipped (no numpy)"
    fi
  done
fi

# ---------------------------------------------------------------- in-process
# glibc malloc settings that keep freed large blocks in the process instead of unmapping them
# after every TensorFlow op (see bench/README.md); the in-process path runs with and without them.
MALLOC_ENV=(MALLOC_MMAP_THRESHOLD_=17179869184 MALLOC_TRIM_THRESHOLD_=17179869184)
for dt in $DTYPES; do
  for key in engine engine_fused; do
    wants "$key" || continue
    log "$key $dt"
    fused=false
    if [[ $key == engine_fused ]]; then fused=now; fi
    if line=$(JAVA_OPTS="$JAVA_OPTS -Dntk.cpu.fused=$fused" bench engine --model "$MODEL" --x "${X[$dt]}" \
        --dtype "$dt" --repeats "$REPEATS" 2>"$LOGS/$key-$dt.log" | grep '^RESULT'); then
      SECS[$key,$dt]=$(field "$line" seconds)
      if [[ $key == engine_fused ]]; then
        NOTE[$key,$dt]="compiled and warmed before the timed runs: $(field "$line" first_seconds) s for the first run"
      fi
    else
      NOTE[$key,$dt]="FAILED (see $LOGS/$key-$dt.log)"
    fi
  done
  for key in inprocess inprocess_tf; do
      wants "$key" || continue
      BENCH_ENV=()
      backend=cpu
      if [[ $key == inprocess_tf ]]; then BENCH_ENV=("${MALLOC_ENV[@]}"); backend=tensorflow; fi
      log "$key $dt"
      if line=$(bench \
          inprocess --model "$MODEL" --x "${X[$dt]}" --dtype "$dt" --repeats "$REPEATS" --backend "$backend" \
          2>"$LOGS/$key-$dt.log" | grep '^RESULT'); then
        SECS[$key,$dt]=$(field "$line" seconds)
        NOTE[$key,$dt]="compute $(calc '%.3f' "$(field "$line" compute_seconds)") s + copy-out $(calc '%.3f' "$(field "$line" copy_seconds)") s"
      else
        NOTE[$key,$dt]="FAILED (see $LOGS/$key-$dt.log)"
        tail -n 20 "$LOGS/$key-$dt.log" >&2
      fi
      BENCH_ENV=()
  done
done

# ---------------------------------------------------------------- bin/ntk kernel
run_ntk() {  # run_ntk KEY DTYPE RUNNER-ARGS... (RUN_TILE, RUN_JAVA_OPTS: this run's --tile and extra JVM flags)
  local key=$1 dt=$2; shift 2
  local tile=${RUN_TILE:-$TILE} java_opts="$JAVA_OPTS ${RUN_JAVA_OPTS:-}"
  local dir=$OUT/kernel-$key-$dt logf=$LOGS/kernel-$key-$dt.log timef=$LOGS/kernel-$key-$dt.time
  if [[ ! -x $NTK ]]; then
    NOTE[$key,$dt]="skipped: $NTK not found"
    return 0
  fi
  local tile_args=()
  if [[ -n $tile ]]; then tile_args=(--tile "$tile"); fi
  rm -rf "$dir"
  log "$NTK kernel $dt $*"
  local timer=()
  if [[ ${#TIME_V[@]} -gt 0 ]]; then timer=("${TIME_V[@]}" "$timef"); fi
  local t0 t1 ok=1
  t0=$(now)
  JAVA_OPTS=$java_opts "${timer[@]}" "$NTK" kernel --model "$MODEL" --x1 "${X[$dt]}" --dtype "${RUN_DTYPE:-$dt}" \
    "${tile_args[@]}" --verbose --out "$dir" "$@" >"$logf" 2>&1 || ok=0
  t1=$(now)
  if [[ $ok == 0 ]]; then
    NOTE[$key,$dt]="FAILED (see $logf)"
    tail -n 20 "$logf" >&2
    return 0
  fi
  SECS[$key,$dt]=$(calc '%.3f' "$t1 - $t0")
  # bin/ntk prints "<Runner>: N tiles computed, M reused, pipeline S s".
  PIPE[$key,$dt]=$(sed -n 's/.*tiles computed.*pipeline \([0-9.]*\) s.*/\1/p' "$logf" | head -n 1)
  # and with --verbose "ntk: N tiles computed in S s of worker time: input rows ..., kernels ..., check and write ...".
  WORKERS[$key,$dt]=$(sed -n 's/^ntk: \([0-9]* tiles computed in .* of worker time: .*\)/\1/p' "$logf" | head -n 1)
  if [[ -f $timef ]]; then
    local kb
    kb=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$timef")
    [[ -n $kb ]] && MAXRSS[$key,$dt]=$(calc '%.0f' "$kb / 1024")
  fi
  if [[ $CHECK == 1 && $HAVE_NUMPY == 1 ]]; then
    local out
    out=$("$PYTHON" bench/numpy_reference.py --model "$MODEL" --x "${X[$dt]}" --repeats 0 \
      --check "$dir" 2>&1 | tee "$LOGS/check-$key-$dt.log" | grep '^CHECK' || true)
    local k summary="" line own
    for k in nngp ntk; do
      line=$(grep "kernel=$k " <<<"$out" || true)
      if [[ -z $line || $line != *max_rel_diff=* ]]; then
        summary+="${summary:+, }$k: check failed (see $LOGS/check-$key-$dt.log)"
        continue
      fi
      summary+="${summary:+, }$k $(field "$line" max_rel_diff)"
      own=$(field "$line" numpy_float32_rel_diff)
      if [[ -n $own ]]; then summary+=" (NumPy float32: $own)"; fi
    done
    CHECKS[$key,$dt]=$summary
  fi
  rm -rf "$dir/tiles"   # the tiles of a 4096 x 4096 run take as much room as the kernels
}
for dt in $DTYPES; do
  if wants direct; then run_ntk direct "$dt" --runner DirectRunner --parallelism 2; fi
  if wants direct_tf; then run_ntk direct_tf "$dt" --runner DirectRunner --parallelism 2 --backend tensorflow; fi
  if wants direct_c1; then
    RUN_JAVA_OPTS=-XX:TieredStopAtLevel=1 run_ntk direct_c1 "$dt" --runner DirectRunner --parallelism 2
  fi
  if wants direct_tile512; then
    RUN_TILE=512 run_ntk direct_tile512 "$dt" --runner DirectRunner --parallelism 2
  fi
  if wants flink1; then run_ntk flink1 "$dt" --runner FlinkRunner --flink-master '[local]' --parallelism 1; fi
  if wants flink2; then run_ntk flink2 "$dt" --runner FlinkRunner --flink-master '[local]' --parallelism 2; fi
done

# ---------------------------------------------------------------- plan: work per entry
if wants plan; then
  log "plan"
  PLAN_LINE=$(bench plan --model "$MODEL" --d "$D" 2>"$LOGS/plan.log" | grep '^RESULT' || echo "RESULT FAILED")
fi

# ---------------------------------------------------------------- big: whole processes at BIG_N
if wants big; then
  XB=$OUT/x-n$BIG_N-d$D-s$SEED-$BIG_DTYPE.npy
  [[ -f $XB ]] || bench data --n "$BIG_N" --d "$D" --seed "$SEED" --dtype "$BIG_DTYPE" --out "$XB" >/dev/null
  if [[ $HAVE_NUMPY == 1 ]]; then
    for ((r = 1; r <= BIG_REPEATS; r++)); do
      log "big: numpy script $BIG_N $BIG_DTYPE ($r/$BIG_REPEATS)"
      rm -rf "$OUT/big-numpy"
      t0=$(now)
      if "$PYTHON" bench/numpy_reference.py --model "$MODEL" --x "$XB" --dtype "$BIG_DTYPE" --repeats 0 \
          --save "$OUT/big-numpy" >"$LOGS/big-numpy.log" 2>&1; then
        t=$(calc '%.3f' "$(now) - $t0")
        if [[ ! ${BIG_NUMPY:-x} =~ ^[0-9.]+$ ]] || (( $(calc '%d' "$t < $BIG_NUMPY") )); then
          BIG_NUMPY=$t
        fi
      else
        BIG_NUMPY="FAILED (see $LOGS/big-numpy.log)"
        break
      fi
    done
    rm -rf "$OUT/big-numpy"
  fi
  X[big]=$XB
  CHECK_SAVED=$CHECK; CHECK=0
  # bin/ntk's default: no runner, so kernels that fit one tile of --max-tile-bytes run in-process.
  BEST_LOCAL=""
  for ((r = 1; r <= BIG_REPEATS; r++)); do
    RUN_DTYPE=$BIG_DTYPE run_ntk big_local big
    t=${SECS[big_local,big]:-}
    if [[ -n $t ]] && { [[ -z $BEST_LOCAL ]] || (( $(calc '%d' "$t < $BEST_LOCAL") )); }; then
      BEST_LOCAL=$t; BEST_LOCAL_RSS=${MAXRSS[big_local,big]:-}
    fi
  done
  SECS[big_local,big]=$BEST_LOCAL; MAXRSS[big_local,big]=${BEST_LOCAL_RSS:-}
  RUN_DTYPE=$BIG_DTYPE run_ntk big big --runner DirectRunner --parallelism 2
  CHECK=$CHECK_SAVED
  rm -rf "$OUT/kernel-big-big" "$OUT/kernel-big_local-big"
fi

# ---------------------------------------------------------------- native library load
NATIVE_ROWS=()
if wants native; then
  cache=$OUT/native-cache
  for ((i = 1; i <= NATIVE_REPEATS; i++)); do
    for state in cold warm; do
      [[ $state == cold ]] && rm -rf "$cache"
      mkdir -p "$cache"
      log "native load $state $i"
      t0=$(now)
      line=$(env -u NTK_CACHE -u TENSORFLOW_LIBRARY_PATH TF_CPP_MIN_LOG_LEVEL="$BENCH_TF_LOG" \
        "$JAVA" "${JVM_FLAGS[@]}" $JAVA_OPTS \
        -Dntk.cache="$cache" -cp "$CP" dev.ntk.bench.Bench native-load \
        2>"$LOGS/native-$state-$i.log" | grep '^RESULT') || { NATIVE_ROWS+=("| $state | $i | FAILED | | | | | |"); continue; }
      t1=$(now)
      NATIVE_LIB=$(basename "$(field "$line" library)")
      NATIVE_ROWS+=("| $state | $i | $(field "$line" jvm_start_to_result_ms) | $(calc '%.0f' "($t1 - $t0) * 1000") | $(field "$line" configure_ms) | $(field "$line" engine_ms) | $(field "$line" first_op_ms) | $(field "$line" cache_was_empty) |")
    done
  done
  NATIVE_SIZE=$(du -sh "$cache" 2>/dev/null | cut -f1)
  rm -rf "$cache"
fi

# ---------------------------------------------------------------- resident memory over tiles
java_pid() {  # the first java process at or under PID
  local p=$1 c
  if [[ $(cat "/proc/$p/comm" 2>/dev/null) == java ]]; then echo "$p"; return 0; fi
  for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
    java_pid "$c" && return 0
  done
  return 1
}
count_tiles() {  # finished tiles in a tile store (one folder per set; in-flight ones are hidden .tmp files)
  if [[ -d $1 ]]; then find "$1" -maxdepth 2 -name 'tile-*.arrow' | wc -l; else echo 0; fi
}
RSS_ROWS_MD=()
if wants rss && [[ ! -x $NTK ]]; then
  log "rss skipped: $NTK not found"
  RSS_SKIPPED=1
elif wants rss; then
  r1=$OUT/rss-x1-n$RSS_ROWS-d$D.npy r2=$OUT/rss-x2-n$RSS_ROWS-d$D.npy
  [[ -f $r1 ]] || bench data --n "$RSS_ROWS" --d "$D" --seed $((SEED + 1)) --dtype "$RSS_DTYPE" --out "$r1" >/dev/null
  [[ -f $r2 ]] || bench data --n "$RSS_ROWS" --d "$D" --seed $((SEED + 2)) --dtype "$RSS_DTYPE" --out "$r2" >/dev/null
  blocks=$(( (RSS_ROWS + RSS_TILE - 1) / RSS_TILE ))
  RSS_TOTAL=$(( blocks * blocks ))
  dir=$OUT/rss-kernel csv=$OUT/rss.csv
  rm -rf "$dir"
  log "rss: $RSS_TOTAL tiles of $RSS_TILE x $RSS_TILE on $RSS_RUNNER (parallelism $RSS_PARALLELISM)"
  t0=$(now)
  JAVA_OPTS="$JAVA_OPTS $RSS_JAVA_OPTS" "$NTK" kernel --model "$MODEL" --x1 "$r1" --x2 "$r2" --tile "$RSS_TILE" --dtype "$RSS_DTYPE" \
    --out "$dir" --runner "$RSS_RUNNER" --parallelism "$RSS_PARALLELISM" >"$LOGS/rss.log" 2>&1 &
  pid=$!
  jpid=""
  trap 'for p in ${jpid:-} ${pid:-}; do kill "$p" 2>/dev/null || true; done' EXIT
  echo "elapsed_s,tiles,rss_kb" >"$csv"
  while kill -0 "$pid" 2>/dev/null; do
    [[ -z $jpid ]] && jpid=$(java_pid "$pid" || true)
    if [[ -n $jpid ]]; then
      kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$jpid/status" 2>/dev/null || true)
      tiles=$(count_tiles "$dir/tiles")
      [[ -n $kb ]] && echo "$(calc '%.1f' "$(now) - $t0"),$tiles,$kb" >>"$csv"
    fi
    sleep "$RSS_EVERY"
  done
  RSS_OK=1
  wait "$pid" || RSS_OK=0
  trap - EXIT
  RSS_SECS=$(calc '%.1f' "$(now) - $t0")
  [[ $RSS_OK == 1 ]] || { log "rss run FAILED (see $LOGS/rss.log)"; tail -n 20 "$LOGS/rss.log" >&2; }
  RSS_DONE=$(count_tiles "$dir/tiles")
  # For k = 1..10: the first sample with at least k/10 of the tiles written.
  mapfile -t RSS_ROWS_MD < <(awk -F, -v total="$RSS_TOTAL" 'NR > 1 {
      for (k = 1; k <= 10; k++) {
        if (!(k in mib) && $2 >= int(total * k / 10)) {
          mib[k] = $3 / 1024
          row[k] = sprintf("| %d | %d | %.1f | %.0f |", int(total * k / 10), $2, $1, mib[k])
        }
      }
      if ($3 > peak) peak = $3
      last = sprintf("| last sample | %d | %.1f | %.0f |", $2, $1, $3 / 1024)
    } END {
      for (k = 1; k <= 10; k++) {
        if (k in row) print row[k]
        else printf "| %d | (no sample: the run ended first) | | |\n", int(total * k / 10)
      }
      if (last != "") print last
      summary = sprintf("SUMMARY %.0f", peak / 1024)
      if ((1 in mib) && (10 in mib)) summary = summary sprintf(" %+.0f", mib[10] - mib[1]); else summary = summary " ?"
      if ((2 in mib) && (10 in mib)) summary = summary sprintf(" %+.0f", mib[10] - mib[2]); else summary = summary " ?"
      print summary
    }' "$csv")
  read -r _ RSS_PEAK RSS_GROWTH1 RSS_GROWTH2 <<<"${RSS_ROWS_MD[-1]}"
  unset 'RSS_ROWS_MD[-1]'
  rm -rf "$dir/tiles"
fi

# ---------------------------------------------------------------- report
cell() { [[ -n ${SECS[$1,$2]:-} ]] && printf '%s' "${SECS[$1,$2]}" || printf '%s' "${NOTE[$1,$2]:-not run}"; }
kernel_report() {
  echo "## Kernel throughput: \`bench/relu21.json\`, NNGP + NTK, $N x $N, inputs of dimension $D"
  echo
  echo "Model: 20 x (Dense(512, W_std = sqrt 2, b_std = 0.1), Relu) then Dense(1, W_std = sqrt 2, b_std = 0.1)."
  echo "Inputs: one set of $N standard normal rows (seed $SEED), so x1 = x2. Entries/s = $N x $N / seconds"
  echo "(every entry of both kernels counts once, though a symmetric kernel computes only the tiles on and"
  echo "above the diagonal)."
  echo
  echo "| path | dtype | seconds | M entries/s | seconds / in-process seconds | pipeline seconds | pipeline M entries/s | max RSS (MiB) | notes |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---|"
  local key dt label s ratio notes
  for key in numpy engine engine_fused inprocess inprocess_tf direct direct_tf direct_c1 direct_tile512 flink1 flink2; do
    wants "$key" || continue
    case $key in
      numpy) label="NumPy reference (\`bench/numpy_reference.py\`)" ;;
      engine) label="engine alone (\`Plan.run\`, \`cpu\` backend, Java arrays in and out), steps interpreted" ;;
      engine_fused) label="engine alone, fused generated loops (\`-Dntk.cpu.fused=now\`)" ;;
      inprocess) label="in-process (\`KernelFn.apply\`), \`cpu\` backend" ;;
      inprocess_tf) label="in-process, \`tensorflow\` backend (glibc \`MALLOC_MMAP_THRESHOLD_\`/\`MALLOC_TRIM_THRESHOLD_\` = 16 GiB)" ;;
      direct) label="\`bin/ntk kernel\`, DirectRunner, parallelism 2" ;;
      direct_tf) label="\`bin/ntk kernel --backend tensorflow\`, DirectRunner, parallelism 2" ;;
      direct_c1) label="\`bin/ntk kernel\`, DirectRunner, parallelism 2, C1 JIT only (\`JAVA_OPTS=-XX:TieredStopAtLevel=1\`)" ;;
      direct_tile512) label="\`bin/ntk kernel\`, DirectRunner, parallelism 2, \`--tile 512\`" ;;
      flink1) label="\`bin/ntk kernel\`, FlinkRunner [local], parallelism 1" ;;
      flink2) label="\`bin/ntk kernel\`, FlinkRunner [local], parallelism 2" ;;
    esac
    for dt in $DTYPES; do
      s=${SECS[$key,$dt]:-}
      if [[ -z $s ]]; then
        echo "| $label | $dt | $(cell "$key" "$dt") | | | | | | |"
        continue
      fi
      local pipe=${PIPE[$key,$dt]:-} pipe_m=""
      if [[ -n $pipe ]]; then pipe_m=$(entries_m "$pipe"); fi
      ratio=""
      if [[ -n ${SECS[inprocess,$dt]:-} ]]; then ratio=$(calc '%.2f' "$s / ${SECS[inprocess,$dt]}"); fi
      notes=${NOTE[$key,$dt]:-}
      if [[ -n ${CHECKS[$key,$dt]:-} ]]; then notes="max rel. diff vs NumPy float64: ${CHECKS[$key,$dt]}"; fi
      if [[ -n ${WORKERS[$key,$dt]:-} ]]; then notes+="${notes:+; }${WORKERS[$key,$dt]}"; fi
      echo "| $label | $dt | $(calc '%.3f' "$s") | $(entries_m "$s") | $ratio | $pipe | $pipe_m | ${MAXRSS[$key,$dt]:-} | $notes |"
    done
  done
  echo
  echo "Seconds: NumPy and in-process are the best of $REPEATS runs of the kernel computation alone"
  echo "(inputs already in memory). In-process runs after a warm-up on the first 256 rows and counts"
  echo "\`apply\` (ops run synchronously; one sum of each kernel is read to be sure) and the copy of both kernels to Java arrays"
  echo "(split in the notes). \`bin/ntk\` is wall-clock end to end, one run each: JVM start, native"
  echo "library load, pipeline, Arrow tile files and the assembled \`nngp.npy\`/\`ntk.npy\`"
  echo "(\`--tile ${TILE:-default}\` and \`bin/ntk\`'s JIT setting, C1 only, unless the row says otherwise); \"pipeline seconds\" is the part that \`bin/ntk\` reports for the Beam pipeline"
  echo "alone (submission to completion: tiles, Arrow files, assembly), without JVM start-up, option parsing"
  echo "and input checks; max RSS of the \`bin/ntk\` process from \`/usr/bin/time -v\`. The"
  echo "check compares \`nngp.npy\`/\`ntk.npy\` with \`bench/numpy_reference.py\` in float64 on the same"
  echo "inputs: max |difference| / max |reference| (NumPy's own float32 error in brackets, for scale)."
  echo
  local lines=()
  for dt in $DTYPES; do
    if [[ -n ${SECS[flink1,$dt]:-} && -n ${SECS[flink2,$dt]:-} ]]; then
      lines+=("- Flink parallelism 1 -> 2 speedup, $dt: $(calc '%.2f' "${SECS[flink1,$dt]} / ${SECS[flink2,$dt]}")x")
    fi
    if [[ -n ${PIPE[flink1,$dt]:-} && -n ${PIPE[flink2,$dt]:-} ]]; then
      lines+=("- Flink parallelism 1 -> 2 speedup of the pipeline alone, $dt: $(calc '%.2f' "${PIPE[flink1,$dt]} / ${PIPE[flink2,$dt]}")x")
    fi
    for key in direct direct_tf direct_c1 direct_tile512 flink1 flink2; do
      if [[ -n ${SECS[$key,$dt]:-} && -n ${SECS[inprocess,$dt]:-} ]]; then
        lines+=("- $key / in-process seconds, $dt: $(calc '%.2f' "${SECS[$key,$dt]} / ${SECS[inprocess,$dt]}") end to end, $( [[ -n ${PIPE[$key,$dt]:-} ]] && calc '%.2f' "${PIPE[$key,$dt]} / ${SECS[inprocess,$dt]}" || echo '?') pipeline alone")
      fi
    done
    for key in engine engine_fused; do
      if [[ -n ${SECS[numpy,$dt]:-} && -n ${SECS[$key,$dt]:-} ]]; then
        lines+=("- $key / NumPy time, $dt: $(calc '%.3f' "${SECS[$key,$dt]} / ${SECS[numpy,$dt]}")")
      fi
    done
    if [[ -n ${SECS[numpy,$dt]:-} && -n ${SECS[inprocess,$dt]:-} ]]; then
      lines+=("- in-process speedup over NumPy, $dt: $(calc '%.2f' "${SECS[numpy,$dt]} / ${SECS[inprocess,$dt]}")x (in-process / NumPy time: $(calc '%.3f' "${SECS[inprocess,$dt]} / ${SECS[numpy,$dt]}"))")
    fi
  done
  if [[ ${#lines[@]} -gt 0 ]]; then
    printf '%s\n' "${lines[@]}"
    echo
  fi
}
report() {
  echo "# Benchmark results"
  echo
  echo "Written by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); see \`bench/README.md\` for what is measured."
  echo
  echo "## Machine"
  echo
  echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) ($(nproc) cores available to this process)"
  echo "- Memory: $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "- OS: $(uname -srm)"
  echo "- Java: $("$JAVA" -version 2>&1 | tr '\n' ' ' | sed 's/ *$//')"
  if [[ $HAVE_NUMPY == 1 ]]; then
    echo "- Python: $("$PYTHON" -c 'import sys, numpy; print(sys.version.split()[0], "numpy", numpy.__version__)')"
  else
    echo "- Python/NumPy: not available"
  fi
  echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$( [[ -n $(git status --porcelain -- . ':!bench/RESULTS.md*' 2>/dev/null | head -n 1) ]] && echo ' (with uncommitted changes)')"
  echo
  echo "## Command"
  echo
  echo '```'
  echo "$COMMAND"
  echo '```'
  echo
  if wants numpy || wants engine || wants inprocess || wants inprocess_tf || wants direct || wants flink1 || wants flink2; then
    kernel_report
  fi
  if wants plan; then
    echo "## Work per kernel entry (\`Bench plan\`)"
    echo
    echo "\`$PLAN_LINE\`"
    echo
    echo "gemm_flops: multiply-adds of the input gram, 2 d per entry; steps: the fused per-pair steps of the"
    echo "plan (one pass over the tile), by operation; registers: chunk buffers they need."
    echo
  fi
  if wants big; then
    echo "## Whole process at $BIG_N x $BIG_N, $BIG_DTYPE"
    echo
    echo "\`bin/ntk kernel\` (JVM start to \`nngp.npy\` and \`ntk.npy\` written) against"
    echo "\`bench/numpy_reference.py --save\` (Python start, inputs read, kernels computed and saved); wall seconds,"
    echo "best of $BIG_REPEATS for the NumPy script and for \`bin/ntk kernel\` as it runs by default (no runner: the"
    echo "kernels fit one tile of the default \`--max-tile-bytes\`, so they are computed in-process on all cores,"
    echo "without a pipeline or tiles); one run through the DirectRunner."
    echo
    echo "| path | seconds | max RSS (MiB) |"
    echo "|---|---:|---:|"
    echo "| NumPy script | ${BIG_NUMPY:-not run} | |"
    echo "| \`bin/ntk kernel\` (in-process) | ${SECS[big_local,big]:-${NOTE[big_local,big]:-not run}} | ${MAXRSS[big_local,big]:-} |"
    echo "| \`bin/ntk kernel --runner DirectRunner --parallelism 2\` | $(cell big big) | ${MAXRSS[big,big]:-} |"
    if [[ ${BIG_NUMPY:-x} =~ ^[0-9.]+$ ]]; then
      echo
      [[ -n ${SECS[big_local,big]:-} ]] && echo "- bin/ntk (in-process) / NumPy: $(calc '%.3f' "${SECS[big_local,big]} / $BIG_NUMPY")"
      [[ -n ${SECS[big,big]:-} ]] && echo "- bin/ntk (DirectRunner) / NumPy: $(calc '%.3f' "${SECS[big,big]} / $BIG_NUMPY") (pipeline ${PIPE[big,big]:-?} s)"
    fi
    echo
  fi
  if wants native; then
    echo "## Native library first load"
    echo
    echo "A fresh JVM per row (\`Bench native-load\`): \`TensorFlowNative.ensureConfigured()\`, \`Tensors.newManager()\`,"
    echo "one 2 x 2 matMul and sum read back. Cold: the cache folder (\`-Dntk.cache\`) deleted first, so the"
    echo "native libraries (\`${NATIVE_LIB:-?}\`, ${NATIVE_SIZE:-?}) are extracted from the jar again; warm: the same folder reused."
    echo "JVM start = \`RuntimeMXBean.getStartTime()\`; process wall includes JVM start-up and exit."
    echo
    echo "| cache | run | JVM start -> first op result (ms) | process wall (ms) | extract/configure (ms) | engine load (ms) | first op (ms) | cache was empty |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${NATIVE_ROWS[@]}"
    echo
  fi
  if wants rss && [[ -n ${RSS_SKIPPED:-} ]]; then
    echo "## Resident memory over tiles"
    echo
    echo "Skipped: \`$NTK\` not found."
    echo
  elif wants rss; then
    echo "## Resident memory over $RSS_TOTAL tiles"
    echo
    echo "\`bin/ntk kernel\` with x1 and x2 two different files of $RSS_ROWS rows (dimension $D, $RSS_DTYPE), \`--tile $RSS_TILE\`:"
    echo "$blocks x $blocks = $RSS_TOTAL tiles, $RSS_RUNNER, parallelism $RSS_PARALLELISM, JVM flags \`${RSS_JAVA_OPTS:-none}\`. VmRSS of the java process"
    echo "(\`/proc/<pid>/status\`) and the number of \`tile-*.arrow\` files, sampled every $RSS_EVERY s; each row is the"
    echo "first sample with at least that many tiles written. Run: $( [[ ${RSS_OK:-0} == 1 ]] && echo "${RSS_SECS} s, $RSS_DONE tiles" || echo "FAILED, see $LOGS/rss.log"); peak VmRSS ${RSS_PEAK:-?} MiB; all samples: \`$csv\`."
    echo
    echo "| tiles | tiles written at sample | elapsed (s) | VmRSS (MiB) |"
    echo "|---:|---:|---:|---:|"
    printf '%s\n' "${RSS_ROWS_MD[@]}"
    echo
    echo "VmRSS change from 1/10 to 10/10 of the tiles: $RSS_GROWTH1 MiB; from 2/10 to 10/10: $RSS_GROWTH2 MiB"
    echo "(the last sample may fall in the final phase that assembles \`nngp.npy\` and \`ntk.npy\`)."
    echo
  fi
  echo "Logs and raw outputs: \`$OUT\`."
}
mkdir -p "$(dirname "$RESULTS")"
{
  report
  # The sections of the other scripts (bench/predict.sh, bench/cnn.sh, bench/large.sh, ...), each between its
  # <!-- name:begin --> and <!-- name:end --> markers, are kept as they were.
  if [[ -f $RESULTS ]]; then
    python3 - "$RESULTS" <<'PY'
import re, sys
for m in re.finditer(r"<!-- (\w+):begin -->.*?<!-- \1:end -->", open(sys.argv[1]).read(), flags=re.S):
    print()
    print(m.group(0))
PY
  fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
log "wrote $RESULTS"
cat "$RESULTS"

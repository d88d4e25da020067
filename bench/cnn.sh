#!/usr/bin/env bash
# The convolutional benchmark of neural-tangents' README: 21 x [Conv(1, (3, 3), (1, 1), SAME), Relu],
# inputs 32x32x3, NNGP and NTK, readouts Flatten (examples/cnn21/flatten.json) and GlobalAvgPool
# (examples/cnn21/gap.json). Writes the "Convolutions" section of bench/RESULTS.md (between the
# cnn:begin/end markers) from one run; see bench/README.md.
#
#   FLATTEN_N=64  GAP_N=8    kernel sizes (x with itself, N x N)
#   REPEATS=3                timed repeats of NumPy (best reported)
#   FLATTEN_REPEATS=12 GAP_REPEATS=4  timed repeats of the engine and in-process runs (best reported:
#                            a short run keeps getting faster for a dozen repeats as the JIT compiles)
#   NUMPY_GAP=1              also time bench/cnn_numpy.py on the GlobalAvgPool readout (slow)
#   FLINK_N=32 FLINK_TILE=4  the GlobalAvgPool kernel on Flink [local], parallelism 1 and 2 (about 2.5 min)
#   OUT=bench/out/cnn  RESULTS=bench/RESULTS.md  NTK=bin/ntk (the command timed as a whole process;
#                            bench/ntk-checkout.sh runs another checkout's build without building it)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FLATTEN_N=${FLATTEN_N:-64}; GAP_N=${GAP_N:-8}; REPEATS=${REPEATS:-3}; NUMPY_GAP=${NUMPY_GAP:-1}
FLATTEN_REPEATS=${FLATTEN_REPEATS:-12}; GAP_REPEATS=${GAP_REPEATS:-4}; FLINK_N=${FLINK_N:-32}; FLINK_TILE=${FLINK_TILE:-4}
OUT=${OUT:-bench/out/cnn}; RESULTS=${RESULTS:-bench/RESULTS.md}
PYTHON=${PYTHON:-python3}; NTK=${NTK:-bin/ntk}
mkdir -p "$OUT"
$NTK --help >/dev/null   # bin/ntk builds if needed, outside the timings
CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"
JVM=(--add-modules=jdk.incubator.vector -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
bench() { TF_CPP_MIN_LOG_LEVEL=3 java "${JVM[@]}" -cp "$CP" dev.ntk.bench.Bench "$@" 2>>"$OUT/stderr.log" | grep RESULT; }
field() { grep -o " $1=[^ ]*" | head -1 | cut -d= -f2; }
wall() { local s e; s=$(date +%s.%N); "$@" > "$OUT/last.log" 2>&1; e=$(date +%s.%N); printf '%.2f\n' "$(echo "$e - $s" | bc)"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
declare -A N=([flatten]=$FLATTEN_N [gap]=$GAP_N) JR=([flatten]=$FLATTEN_REPEATS [gap]=$GAP_REPEATS)
REPORT="$OUT/section.md"
{
echo "<!-- cnn:begin -->"
echo "## Convolutions (bench/cnn.sh)"
echo
echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores"
echo "(load average before the run: $(cut -d' ' -f1-3 /proc/loadavg); other builds may have been running)."
echo "NumPy $($PYTHON -c 'import numpy; print(numpy.__version__)'). The neural-tangents README network:"
echo "21 x [Conv(1, (3, 3), (1, 1), SAME), Relu] on 32x32x3 standard normal inputs, W_std 1, no bias, then the"
echo "readout and Dense(1); NNGP and NTK of x with itself (N x N). ms per entry = seconds / N^2. Engine and"
echo "in-process: best of $FLATTEN_REPEATS (flatten) or $GAP_REPEATS (gap) repeats after a warm-up run; NumPy: best of $REPEATS."
echo
echo "| readout | N | dtype | NumPy (bench/cnn_numpy.py) | engine alone | in-process KernelFn | bin/ntk kernel, whole process | engine / NumPy |"
echo "|---|---|---|---|---|---|---|---|"
} > "$REPORT"
for ro in flatten gap; do
  n=${N[$ro]}
  for dt in float32 float64; do
    x="$OUT/x-$ro-$n-$dt.npy"
    bench data --n "$n" --shape 32,32,3 --seed 0 --dtype "$dt" --out "$x" > /dev/null
    np_ms="-"
    if [[ $ro == flatten || ($NUMPY_GAP == 1 && $dt == float32) ]]; then
      np_ms=$($PYTHON bench/cnn_numpy.py --readout "$ro" --n "$n" --dtype "$dt" --repeat "$( [[ $ro == gap ]] && echo 1 || echo "$REPEATS")" \
        --load-x "$x" --save "$OUT/numpy-$ro-$dt" | field ms_per_entry)
    fi
    eng=$(bench engine --model "examples/cnn21/$ro.json" --x "$x" --dtype "$dt" --repeats "${JR[$ro]}")
    eng_ms=$(field ms_per_entry <<<"$eng")
    inp=$(bench inprocess --model "examples/cnn21/$ro.json" --x "$x" --dtype "$dt" --repeats "${JR[$ro]}" --warmup-rows 2)
    inp_ms=$(calc '%.4g' "$(field seconds <<<"$inp") * 1000 / ($n * $n)")
    rm -rf "$OUT/ntk-$ro-$dt"
    s=$(wall $NTK kernel --model "examples/cnn21/$ro.json" --x1 "$x" --dtype "$dt" --out "$OUT/ntk-$ro-$dt")
    ntk_ms=$(calc '%.4g' "$s * 1000 / ($n * $n)")
    ratio="-"
    [[ $np_ms != "-" ]] && ratio=$(calc '%.3f' "$eng_ms / $np_ms")
    echo "| $ro | $n | $dt | $np_ms | $eng_ms | $inp_ms | $ntk_ms ($s s) | $ratio |" >> "$REPORT"
    if [[ -f "$OUT/numpy-$ro-$dt/ntk.npy" ]]; then
      err=$($PYTHON -c "import numpy as np; a=np.load('$OUT/numpy-$ro-$dt/ntk.npy').astype(np.float64); b=np.load('$OUT/ntk-$ro-$dt/ntk.npy').astype(np.float64); print('%.2g' % (np.linalg.norm(a-b)/np.linalg.norm(a)))")
      echo "$ro $dt $err" >> "$OUT/checks.txt"
    fi
  done
done
{
echo
echo "Relative Frobenius difference between bin/ntk's NTK and NumPy's on the same inputs (readout, dtype, difference):"
echo "$(sed 's/$/;/' "$OUT/checks.txt" 2>/dev/null | tr '\n' ' ')"
rm -f "$OUT/checks.txt"
echo
echo "Work per kernel entry of the cpu backend (\`Bench plan\`, float32; flops count an entry-wise operation"
echo "as one per entry, a pixel map as two per multiply-add; bytes are what a step-by-step evaluation reads"
echo "and writes, an upper bound on the traffic since runs of entry-wise steps are fused in cache-sized chunks):"
echo
echo "| readout | covariance | flops per pair | bytes per pair | per input (row pass) flops | largest tile in 4 GiB, cpu / tensorflow |"
echo "|---|---|---|---|---|---|"
for ro in flatten gap; do
  p=$(bench plan --model "examples/cnn21/$ro.json" --shape 32,32,3)
  echo "| $ro | $(field layout <<<"$p") | $(field pair_flops <<<"$p") | $(field pair_bytes <<<"$p") | $(field row_flops <<<"$p") | $(field largest_tile_cpu <<<"$p") / $(field largest_tile_tensorflow <<<"$p") |"
done
echo
# Flink [local], GlobalAvgPool readout (compute-bound enough for the start-up of Flink, about 5 s,
# not to hide the workers), parallelism 1 and 2 (pipeline seconds from the command's report line).
x="$OUT/x-gap-$FLINK_N-float32.npy"
bench data --n "$FLINK_N" --shape 32,32,3 --seed 0 --dtype float32 --out "$x" > /dev/null
declare -A PIPE
for p in 1 2; do
  rm -rf "$OUT/flink$p"
  s=$(wall $NTK kernel --model examples/cnn21/gap.json --x1 "$x" --dtype float32 --tile "$FLINK_TILE" --runner FlinkRunner --parallelism $p --out "$OUT/flink$p")
  line=$(grep -m1 'tiles computed' "$OUT/last.log")
  PIPE[$p]=$(sed -n 's/.*pipeline \([0-9.]*\) s.*/\1/p' <<<"$line")
  echo "Flink [local], GlobalAvgPool readout, N = $FLINK_N, float32, tiles of $FLINK_TILE rows, parallelism $p: $s s whole process (\`$line\`)."
  echo
  rm -rf "$OUT/flink$p"
done
echo "Flink parallelism 1 -> 2 speedup of the pipeline: $(calc '%.2f' "${PIPE[1]} / ${PIPE[2]}")x."
echo
echo "<!-- cnn:end -->"
} >> "$REPORT"
$PYTHON bench/section.py cnn "$RESULTS" "$REPORT"
cat "$REPORT"

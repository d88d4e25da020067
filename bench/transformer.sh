#!/usr/bin/env bash
# The transformer of examples/transformer/model.json (Dense embedding, 2 x [LayerNorm, GlobalSelfAttention
# with SUM positional embeddings, residual; LayerNorm, Dense-Relu-Dense, residual], LayerNorm, GlobalAvgPool,
# Dense): its work per kernel entry from `Bench plan` at several sequence lengths, and the wall time of the
# in-process KernelFn (`Bench inprocess`, cpu backend) on N sequences. Writes the "Transformer" section of
# bench/RESULTS.md (between the transformer:begin/end markers) from one run; see bench/README.md.
#
#   LENGTHS="16 32 64 128"   sequence lengths for Bench plan (channels CHANNELS)
#   N=32 L=16 CHANNELS=8     the timed kernel: N sequences of L positions and CHANNELS channels, with themselves
#   REPEATS=5                timed repeats of Bench inprocess (best reported), after a warm-up on 4 rows
#   BUILD=1                  build first with bin/ntk --help; BUILD=0 uses the jars already in */target
#   OUT=bench/out/transformer  RESULTS=bench/RESULTS.md
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
LENGTHS=${LENGTHS:-16 32 64 128}; N=${N:-32}; L=${L:-16}; CHANNELS=${CHANNELS:-8}; REPEATS=${REPEATS:-5}
BUILD=${BUILD:-1}; OUT=${OUT:-bench/out/transformer}; RESULTS=${RESULTS:-bench/RESULTS.md}
MODEL=examples/transformer/model.json
mkdir -p "$OUT"
[[ $BUILD == 1 ]] && bin/ntk --help >/dev/null   # builds if needed, outside the timings
CP="bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar:$(cat pipelines/target/classpath.txt)"
JVM=(--add-modules=jdk.incubator.vector -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
bench() { TF_CPP_MIN_LOG_LEVEL=3 java "${JVM[@]}" -cp "$CP" dev.ntk.bench.Bench "$@" 2>>"$OUT/stderr.log" | grep RESULT; }
field() { grep -o " $1=[^ ]*" | head -1 | cut -d= -f2; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
REPORT="$OUT/section.md"
load_before=$(uptime | sed 's/.*load average: //')
{
echo "<!-- transformer:begin -->"
echo "## Transformer (bench/transformer.sh)"
echo
echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, shared with other"
echo "builds (\`uptime\` load average before the run: $load_before). The model is \`$MODEL\`: a Dense embedding,"
echo "2 x [LayerNorm, GlobalSelfAttention (4 heads, softmax, SUM positional embeddings), residual FanInSum;"
echo "LayerNorm, Dense-Relu-Dense, residual FanInSum] under \`repeat\`, LayerNorm, GlobalAvgPool and Dense(1)."
echo "Attention needs each pair's covariance of every two positions (layout \`full[L]\`), and mixes it by both"
echo "inputs' L x L attention matrices, so the work per pair grows as L^3."
echo
echo "Work per kernel entry of the cpu backend (\`Bench plan --shape L,$CHANNELS\`, float32; flops count an"
echo "entry-wise operation as one per entry, a pixel map as two per multiply-add; bytes are what a step-by-step"
echo "evaluation reads and writes, an upper bound on the traffic):"
echo
echo "| L | covariance | flops per pair | bytes per pair | per input (row pass) flops | largest tile in 4 GiB, cpu / tensorflow |"
echo "|---|---|---|---|---|---|"
for l in $LENGTHS; do
  p=$(bench plan --model "$MODEL" --shape "$l,$CHANNELS")
  echo "| $l | $(field layout <<<"$p") | $(field pair_flops <<<"$p") | $(field pair_bytes <<<"$p") | $(field row_flops <<<"$p") | $(field largest_tile_cpu <<<"$p") / $(field largest_tile_tensorflow <<<"$p") |"
done
echo
echo "In-process KernelFn (\`Bench inprocess --backend cpu\`, all cores), NNGP and NTK of $N standard normal"
echo "sequences ($N, $L, $CHANNELS) with themselves, best of $REPEATS repeats after a warm-up on 4 rows; ms per entry ="
echo "seconds / N^2 (only the tiles on and above the diagonal are computed, every entry counts):"
echo
echo "| N | L | dtype | seconds (best) | ms per entry | every repeat (s) |"
echo "|---|---|---|---|---|---|"
for dt in float64 float32; do
  x="$OUT/x-$N-$L-$CHANNELS-$dt.npy"
  bench data --n "$N" --shape "$L,$CHANNELS" --seed 0 --dtype "$dt" --out "$x" > /dev/null
  r=$(TF_CPP_MIN_LOG_LEVEL=3 java "${JVM[@]}" -cp "$CP" dev.ntk.bench.Bench inprocess --model "$MODEL" --x "$x" \
    --dtype "$dt" --repeats "$REPEATS" --warmup-rows 4 --backend cpu 2>"$OUT/inprocess-$dt.log" | grep RESULT)
  s=$(field seconds <<<"$r")
  # Every repeat's seconds (compute + copy-out), from the first, which still warms the JIT, to the last.
  all=$(sed -n 's/^repeat [0-9]*: compute \([0-9.]*\) s, copy-out \([0-9.]*\) s$/\1 \2/p' "$OUT/inprocess-$dt.log" \
    | awk '{ printf "%s%.3f", (NR > 1 ? ", " : ""), $1 + $2 }')
  echo "| $N | $L | $dt | $s | $(calc '%.4g' "$s * 1000 / ($N * $N)") | $all |"
done
echo
echo "\`uptime\` load average after the run: $(uptime | sed 's/.*load average: //')."
echo
echo "<!-- transformer:end -->"
} > "$REPORT"
python3 bench/section.py transformer "$RESULTS" "$REPORT"
cat "$REPORT"

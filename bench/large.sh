#!/usr/bin/env bash
# A kernel larger than the JVM's heap through `bin/ntk kernel` (bench/README.md, "Kernels larger
# than memory"): N x N in DTYPE with JAVA_OPTS=-Xmx2g. Prints the wall time, the peak RSS, the bytes
# on disk (kernels and tiles) and a check of the result, and appends them as a Markdown table to
# RESULTS if set. Knobs (environment):
#
#   N=50000 D=64 DTYPE=float32 TILE=512 HEAP=-Xmx2g PARALLELISM=2
#   MODEL=bench/predict_relu3.json   (a 3-layer ReLU network: the cost is the tiles' I/O, not the rules)
#   CHECK_ROWS=1000                  rows of the check: the kernel of x[idx] for CHECK_ROWS random rows
#                                    (with the first and the last), run on its own, must equal
#                                    K[idx][:, idx] of the large kernel to 1e-5 (float32) or 1e-12
#                                    (float64) of its largest entry: other tiles sum the input gram in
#                                    another order
#   OUT=bench/out/large RESULTS=     (empty: print only; else the file whose section between
#                                    <!-- large:begin --> and <!-- large:end --> is replaced)
#
# It needs about 12 * N^2 bytes of disk in float32 (two kernels and the tiles of the upper triangle).
# Smoke test: N=3000 OUT=/tmp/ntk-large bash bench/large.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-50000}
D=${D:-64}
DTYPE=${DTYPE:-float32}
TILE=${TILE:-512}
HEAP=${HEAP:--Xmx2g}
PARALLELISM=${PARALLELISM:-2}
MODEL=${MODEL:-bench/predict_relu3.json}
CHECK_ROWS=${CHECK_ROWS:-1000}
OUT=${OUT:-bench/out/large}
RESULTS=${RESULTS:-}
PYTHON=${PYTHON:-python3}
NTK=${NTK:-bin/ntk}
JAR=pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar
CP=pipelines/target/classpath.txt

mkdir -p "$OUT"
"$NTK" --help > /dev/null   # builds on first use
java -cp "bench/target/ntk-bench-0.1.0-SNAPSHOT.jar:$JAR:$(cat "$CP")" dev.ntk.bench.Bench data --n "$N" --d "$D" --seed 0 \
  --dtype "$DTYPE" --out "$OUT/x.npy" > /dev/null
rm -rf "$OUT/k"

need=$(( 12 * N * N ))
free=$(df -B1 --output=avail "$OUT" | tail -1)
if (( free < need )); then
  echo "large.sh: $OUT has $free bytes free, the run needs about $need" >&2
  exit 2
fi

cmd=(env "JAVA_OPTS=$HEAP" /usr/bin/time -v "$NTK" kernel --model "$MODEL" --x1 "$OUT/x.npy"
  --dtype "$DTYPE" --tile "$TILE" --parallelism "$PARALLELISM" --out "$OUT/k")
echo "+ ${cmd[*]}" >&2
"${cmd[@]}" > "$OUT/run.log" 2> "$OUT/time.log"
cat "$OUT/run.log"

wall=$(grep 'Elapsed (wall clock)' "$OUT/time.log" | awk '{print $NF}')
rss_kb=$(grep 'Maximum resident set size' "$OUT/time.log" | awk '{print $NF}')
kernels=$(du -cb "$OUT"/k/nngp.npy "$OUT"/k/ntk.npy | tail -1 | cut -f1)
tiles=$(du -sb "$OUT/k/tiles" | cut -f1)

# The check: the kernel of CHECK_ROWS random rows, computed on its own, against the same entries of
# the large kernel (read through numpy.load(mmap_mode='r'), which reads only those rows).
"$PYTHON" - "$OUT" "$CHECK_ROWS" <<'PY'
import sys, numpy as np
out, m = sys.argv[1], int(sys.argv[2])
x = np.load(out + "/x.npy")
idx = np.sort(np.random.default_rng(1).choice(x.shape[0], size=min(m, x.shape[0]), replace=False))
idx[0] = 0; idx[-1] = x.shape[0] - 1
np.save(out + "/x_check.npy", x[idx]); np.save(out + "/idx.npy", idx)
PY
rm -rf "$OUT/check"
JAVA_OPTS="$HEAP" "$NTK" kernel --model "$MODEL" --x1 "$OUT/x_check.npy" --dtype "$DTYPE" \
  --tile "$TILE" --parallelism "$PARALLELISM" --out "$OUT/check" > /dev/null
check=$("$PYTHON" - "$OUT" <<'PY'
import sys, numpy as np
out = sys.argv[1]
idx = np.load(out + "/idx.npy")
parts = []
for name in ("nngp", "ntk"):
    big = np.load(out + "/k/" + name + ".npy", mmap_mode="r")
    small = np.load(out + "/check/" + name + ".npy")
    sub = np.stack([np.asarray(big[i])[idx] for i in idx])
    assert big.shape == (len(np.load(out + "/x.npy", mmap_mode="r")),) * 2, big.shape
    assert np.isfinite(sub).all()
    rel = np.abs(sub - small).max() / np.abs(small).max()
    parts.append("%s %.2g" % (name, rel))
    # The same entries from other tiles: equal up to the order of the input gram's sums.
    if not rel <= (1e-5 if small.dtype == np.float32 else 1e-12):
        print("FAILED: max abs difference / max abs entry: " + ", ".join(parts)); sys.exit(1)
print("max abs difference / max abs entry: " + ", ".join(parts))
PY
)

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
report=$(cat <<MD
<!-- large:begin -->
## A kernel larger than the heap (\`bench/large.sh\`)

| $N x $N $DTYPE, \`$HEAP\`, tile $TILE, parallelism $PARALLELISM | |
|---|---:|
| wall time, whole \`bin/ntk kernel\` process | $wall |
| peak RSS (\`/usr/bin/time -v\`) | $(( rss_kb / 1024 )) MiB |
| disk written: \`nngp.npy\` + \`ntk.npy\` | $kernels bytes |
| disk written: the tiles (\`tiles/<set>/\`) | $tiles bytes |
| check: $CHECK_ROWS random rows on their own vs the same entries | $check |

Command: \`$(echo "${cmd[*]}" | sed "s|$OUT|OUT|g")\` (\`N=$N D=$D DTYPE=$DTYPE TILE=$TILE bash bench/large.sh\`), on a $(nproc)-core $cpu, $(date -u +%Y-%m-%d).
<!-- large:end -->
MD
)
echo "$report"
# The section between the markers of RESULTS is replaced (appended if there is none).
if [[ -n "$RESULTS" ]]; then
  printf '%s\n' "$report" > "$OUT/section.md"
  "$PYTHON" bench/section.py large "$RESULTS" "$OUT/section.md"
fi

#!/usr/bin/env bash
# The device check's generated kernels through the CUDA compiler, on a machine that has nvcc but no
# GPU: GpuCheck writes the source of each case and dtype (the CNN benchmark with Flatten and
# GlobalAvgPool on 32x32x3, the depth-21 fully connected network), nvcc compiles each to SASS for
# ARCH (sm_90: an H100) with CudaDevice's NVRTC options (--fmad=false, C++17), and ptxas reports
# every kernel's registers, spills, stack and shared memory. Needs bench/gpu/build (prepare.sh).
#
#   bash bench/gpu/ptxas.sh        # OUT=bench/out/ptxas ARCH=sm_90 NVCC=nvcc; prints summary.md
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=bench/gpu/build
OUT=${OUT:-bench/out/ptxas}
ARCH=${ARCH:-sm_90}
NVCC=${NVCC:-nvcc}
if [[ ! -x $BUILD/jre/bin/java ]]; then
  echo "ptxas.sh: no $BUILD/jre: run bash bench/gpu/prepare.sh first" >&2
  exit 2
fi
command -v "$NVCC" > /dev/null || { echo "ptxas.sh: no $NVCC on this machine" >&2; exit 2; }
rm -rf "$OUT"
mkdir -p "$OUT"
"$BUILD/jre/bin/java" --add-modules jdk.incubator.vector -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$BUILD/classes:$BUILD/lib/*" GpuCheck --root . --sources "$OUT" 2>&1 | grep -v "incubator modules"
max() { grep -o "$1" "$2" | grep -o '^[0-9]*\|[0-9][0-9]*' | sort -n | tail -1; }
{
  echo "nvcc: $("$NVCC" --version | tail -2 | head -1); $ARCH; $(lscpu | sed -n 's/^Model name: *//p')"
  echo
  echo "| source | bytes | kernels | nvcc s | registers, max | spill stores, max bytes | stack frame, max bytes | shared, max bytes |"
  echo "|---|---|---|---|---|---|---|---|"
  for cu in "$OUT"/*.cu; do
    log=${cu%.cu}.log
    start=$(date +%s.%N)
    "$NVCC" -cubin -arch="$ARCH" --fmad=false -std=c++17 -Xptxas -v -o "${cu%.cu}.cubin" "$cu" > "$log" 2>&1
    secs=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }")
    echo "| $(basename "$cu") | $(stat -c %s "$cu") | $(grep -c 'Compiling entry' "$log") | $secs |" \
      "$(max 'Used [0-9]* registers' "$log") | $(max '[0-9]* bytes spill stores' "$log") |" \
      "$(max '[0-9]* bytes stack frame' "$log") | $(max '[0-9]* bytes smem' "$log" || echo 0) |"
  done
} > "$OUT/summary.md"
cat "$OUT/summary.md"

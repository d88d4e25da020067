#!/usr/bin/env bash
# The device check, run ON the GPU machine (no JDK, no network; CUDA, nvcc, JAX, PyTorch) from the
# repository root, after bench/gpu/prepare.sh built bench/gpu/build here and it was carried along:
#   - the cuda engine on the CNN benchmark (21 x [Conv(1, (3, 3), SAME), Relu] on 32x32x3; Flatten
#     N=FLATTEN_N, GlobalAvgPool N=GAP_N) and the depth-21 fully connected kernel (N=FC_N, d=784),
#     float32 and float64, x with itself: first run (NVRTC included) and best of REPEATS;
#   - cpu = cuda on the first CHECK rows of each (float64 to 1e-12, float32 to 1e-4);
#   - the kernels module's cuda tests (CudaEngineModelsTest: every model of its suite, cpu = cuda in
#     float64 to 1e-12) on the device, through NVRTC (GpuTests, results in tests.md);
#   - neural-tangents on the machine's JAX, on the same inputs, if its source is at NT_SRC
#     (default bench/gpu/build/neural-tangents): time per entry and its difference from ours.
# Results in $OUT (the device tool's folder; default bench/out/gpu): results.md, results.tsv, tests.md,
# nt-*.md, machine.txt, check.log, tests.log. Exit status 1 if a float64 check or a test failed.
#
#   FLATTEN_N=256 GAP_N=8 FC_N=4096 CHECK=32 REPEATS=3 DEVICE=cuda (host: the gcc-compiled source)
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=bench/gpu/build
OUT=${OUT:-bench/out/gpu}
mkdir -p "$OUT"
FLATTEN_N=${FLATTEN_N:-256}; GAP_N=${GAP_N:-8}; FC_N=${FC_N:-4096}; CHECK=${CHECK:-32}; REPEATS=${REPEATS:-3}
DEVICE=${DEVICE:-cuda}; NT_SRC=${NT_SRC:-$BUILD/neural-tangents}; PYTHON=${PYTHON:-python3}
if [[ ! -x $BUILD/jre/bin/java ]]; then
  echo "check.sh: no $BUILD/jre: run bash bench/gpu/prepare.sh on a machine with a JDK first" >&2
  exit 2
fi
# CUDA's libraries: the toolkit's, then those of the Python wheels (PyTorch's nvidia-* packages).
PYLIBS=$("$PYTHON" - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia
    print(":".join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], "*", "lib")))))
except Exception:
    pass
PY
)
export NTK_CUDA_LIBS=${NTK_CUDA_LIBS:-/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${PYLIBS:+:$PYLIBS}}
{
  date -u +%Y-%m-%dT%H:%MZ
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 || echo "no nvidia-smi"
  nvcc --version 2>&1 | tail -2 || true
  "$PYTHON" -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tail -1
  lscpu | sed -n 's/^Model name: *//p'; echo "$(nproc) cores"
  echo "NTK_CUDA_LIBS=$NTK_CUDA_LIBS"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt"

timeout "${JAVA_TIMEOUT:-240}" "$BUILD/jre/bin/java" --add-modules jdk.incubator.vector -XX:+UseParallelGC \
  -Xmx${HEAP:-16g} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$BUILD/classes:$BUILD/lib/*" GpuCheck \
  --root . --out "$OUT" --device "$DEVICE" --flatten-n "$FLATTEN_N" --gap-n "$GAP_N" --fc-n "$FC_N" \
  --check "$CHECK" --repeats "$REPEATS" 2>&1 | tee "$OUT/check.log"
status=${PIPESTATUS[0]}

timeout "${TESTS_TIMEOUT:-200}" "$BUILD/jre/bin/java" --add-modules jdk.incubator.vector -XX:+UseParallelGC \
  -Xmx${HEAP:-16g} -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -cp "$BUILD/classes:$BUILD/test-classes:$BUILD/lib/*:$BUILD/testlib/*" GpuTests --out "$OUT" --device "$DEVICE" \
  2>&1 | tee "$OUT/tests.log" | tail -60
tests=${PIPESTATUS[0]}
(( status == 0 )) && status=$tests

if [[ -d $NT_SRC/neural_tangents ]]; then
  for dt in float32 float64; do
    timeout "${NT_TIMEOUT:-75}" "$PYTHON" bench/gpu/nt_peer.py --nt-src "$NT_SRC" --out "$OUT" --dtype "$dt" \
      --flatten-n "$FLATTEN_N" --gap-n "$GAP_N" --repeats "$REPEATS" 2>&1 | tail -20 | tee "$OUT/nt-$dt.log"
  done
else
  echo "neural-tangents: no source at $NT_SRC/neural_tangents, peer not run" | tee "$OUT/nt-none.md"
fi
cat "$OUT/results.md" "$OUT/tests.md" "$OUT"/nt-*.md 2>/dev/null
exit "$status"

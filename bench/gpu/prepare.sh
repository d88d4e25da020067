#!/usr/bin/env bash
# Builds here what bench/gpu/check.sh needs on a GPU machine that has no JDK and no network, under
# bench/gpu/build/ (ignored by git): a jlink runtime of only the modules the kernels use, the kernels
# jar and its few runtime dependencies (not DJL's TensorFlow natives), GpuCheck compiled against
# them, and the kernels' compiled tests with JUnit's launcher and GpuTests, which runs the cuda tests
# there. Prints the total size, which must stay well under the 64 MiB a device run can carry.
#
#   bash bench/gpu/prepare.sh             # then: the device tool runs `bash bench/gpu/check.sh`
#                                         #       with carry ["bench/gpu/build"] (bench/README.md)
#   SMOKE=1 bash bench/gpu/prepare.sh     # also runs check.sh here on the host device (gcc), tiny sizes
#
# neural-tangents, the peer, is not fetched here: put its source tree (the folder holding the
# neural_tangents package) at bench/gpu/build/neural-tangents and it travels along; never commit it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BUILD=bench/gpu/build
LIMIT_MIB=${LIMIT_MIB:-59}  # of the 64 MiB a device run carries; the working tree is about 3.5 MiB
rm -rf "$BUILD/jre" "$BUILD/lib" "$BUILD/classes" "$BUILD/testlib" "$BUILD/test-classes"
mkdir -p "$BUILD/lib" "$BUILD/classes" "$BUILD/testlib"

# The kernels jar (package only: nothing is installed into ~/.m2) and its runtime class path.
if [[ ${SKIP_MVN:-0} != 1 ]]; then  # SKIP_MVN=1: reuse kernels/target and the class path of a previous run
  mvn -B -ntp -o -q -pl kernels -am package -DskipTests
  mvn -B -ntp -o -q -pl kernels dependency:build-classpath -Dmdep.outputFile="$ROOT/$BUILD/classpath.txt" \
    -Dmdep.includeScope=runtime
  mvn -B -ntp -o -q -pl kernels dependency:build-classpath -Dmdep.outputFile="$ROOT/$BUILD/testpath.txt" \
    -Dmdep.includeScope=test
fi
cp kernels/target/ntk-kernels-*.jar "$BUILD/lib/"
tr ':' '\n' < "$BUILD/classpath.txt" | while read -r jar || [[ -n $jar ]]; do
  case "$(basename "$jar")" in
    # TensorFlow (a 480 MB native jar and its Java API), test-only libraries: not needed by the cuda engine.
    # TensorFlow (a 480 MB native jar and its Java API), test-only libraries, and what only prediction
    # (Hipparchus) or DJL's model zoo (commons-*, gson) use: not needed by the cuda engine.
    tensorflow-native-*|tensorflow-api-*|protobuf-java-*|junit-*|opentest4j-*|apiguardian-*|ejml-*) ;;
    hipparchus-*|commons-compress-*|commons-io-*|commons-codec-*|gson-*) ;;
    *) cp "$jar" "$BUILD/lib/" ;;
  esac
done
# JNA carries its native dispatcher for 23 platforms: keep linux-x86-64's.
JNA=$(ls "$BUILD"/lib/jna-*.jar)
zip -q -d "$JNA" $(unzip -Z1 "$JNA" | grep '^com/sun/jna/.*/libjnidispatch' | grep -v '/linux-x86-64/')
# The tests: the kernels' test classes and resources, JUnit's engine and launcher.
cp -r kernels/target/test-classes "$BUILD/test-classes"
tr ':' '\n' < "$BUILD/testpath.txt" | while read -r jar || [[ -n $jar ]]; do
  case "$(basename "$jar")" in
    junit-jupiter-api-*|junit-jupiter-engine-*|junit-jupiter-params-*|junit-platform-*|opentest4j-*|apiguardian-*)
      cp "$jar" "$BUILD/testlib/" ;;
  esac
done
CP=$(ls "$BUILD"/lib/*.jar | paste -sd: -)
javac -nowarn -d "$BUILD/classes" -cp "$CP" bench/gpu/GpuCheck.java
javac -nowarn -d "$BUILD/classes" -cp "$CP:$(ls "$BUILD"/testlib/*.jar | paste -sd: -)" bench/gpu/GpuTests.java

# The Java runtime: the modules the kernels load. jdeps also names java.desktop (JNA's AWT helpers,
# DJL's image classes) and java.sql (Jackson's optional handlers), which the cuda engine never loads
# and which would double the runtime's size; jdk.unsupported is JNA's and JavaCPP's sun.misc.Unsafe.
MODULES=java.base,java.compiler,java.logging,java.management,jdk.unsupported,jdk.incubator.vector
jlink --add-modules "$MODULES" --strip-debug --no-man-pages --no-header-files --compress=2 --output "$BUILD/jre"
"$BUILD/jre/bin/java" -version 2>&1 | head -1

echo "modules: $MODULES"
for part in jre lib classes testlib test-classes; do
  printf '%-8s %6.1f MiB\n' "$part" "$(du -sb "$BUILD/$part" | awk '{print $1 / 1048576}')"
done
if [[ -d $BUILD/neural-tangents ]]; then
  printf '%-8s %6.1f MiB\n' "nt src" "$(du -sb "$BUILD/neural-tangents" | awk '{print $1 / 1048576}')"
fi
total=$(du -sb "$BUILD" --exclude=classpath.txt --exclude=testpath.txt | awk '{print $1}')
printf 'total    %6.1f MiB (limit %d MiB)\n' "$(awk "BEGIN { print $total / 1048576 }")" "$LIMIT_MIB"
if (( total > LIMIT_MIB * 1048576 )); then
  echo "prepare.sh: $BUILD is larger than $LIMIT_MIB MiB" >&2
  exit 1
fi
if [[ ${SMOKE:-0} == 1 ]]; then
  DEVICE=host FLATTEN_N=4 GAP_N=2 FC_N=16 CHECK=4 REPEATS=1 OUT=bench/out/gpu-smoke bash bench/gpu/check.sh
fi

#!/usr/bin/env bash
# bin/ntk's java command for the built jars of a checkout, without bin/ntk's build step, for timing
# two builds side by side (bench/cnn_start.sh): NTK_ROOT=/path/to/checkout bench/ntk-checkout.sh kernel ...
# It takes the class path from NTK_CLASSPATH (default: the checkout's pipelines/target/classpath.txt,
# where a checkout without one can borrow another's, its /work/main/ prefix rewritten), orders it as
# ORDER says (ntk: picocli and slf4j first, as bin/ntk does; maven: as written), and uses the class
# data archive CDS (written on the first run, as bin/ntk does; unset: none). Flags as bin/ntk's.
set -euo pipefail
root="${NTK_ROOT:?set NTK_ROOT to a built checkout}"
classpath_file="${NTK_CLASSPATH:-$root/pipelines/target/classpath.txt}"
IFS=: read -r -a dependencies < <(sed "s#/work/main/#$root/#g" "$classpath_file") || true
first=()
rest=()
for f in "${dependencies[@]}"; do
  case "${ORDER:-ntk}:${f##*/}" in
    ntk:picocli-*.jar | ntk:slf4j-api-*.jar | ntk:slf4j-simple-*.jar) first+=("$f") ;;
    *) rest+=("$f") ;;
  esac
done
class_path="$root/pipelines/target/ntk-pipelines-0.1.0-SNAPSHOT.jar$(printf ':%s' "${first[@]}" "${rest[@]}")"
cds=()
if [[ -n "${CDS:-}" ]]; then
  if [[ -f "$CDS" ]]; then
    cds=(-XX:SharedArchiveFile="$CDS" -Xlog:cds=off -Xlog:cds+dynamic=off)
  else
    cds=(-XX:ArchiveClassesAtExit="$CDS" -Xlog:cds=off -Xlog:cds+dynamic=off)
  fi
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}" TF_CPU_ALLOCATOR_USE_BFC="${TF_CPU_ALLOCATOR_USE_BFC:-true}"
# shellcheck disable=SC2086 # JAVA_OPTS is a list of flags
exec java --add-modules=jdk.incubator.vector "${cds[@]}" ${JAVA_OPTS:-} \
  --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED \
  --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.lang.invoke=ALL-UNNAMED \
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.log.ai.djl.util.cuda=error \
  -Dorg.slf4j.simpleLogger.log.org.apache.flink=off -Dorg.slf4j.simpleLogger.log.org.apache.beam.runners.flink=off \
  -Dorg.slf4j.simpleLogger.log.org.apache.pekko=error \
  -cp "$class_path" dev.ntk.pipelines.Ntk "$@"

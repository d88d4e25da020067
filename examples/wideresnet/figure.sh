#!/usr/bin/env bash
# The Neural Tangents paper's Figure 2 on this WideResNet (dev.ntk.pipelines.figures.Figure2):
# OUT/figure2.png, the relative distance of Monte Carlo NNGP and NTK estimates to the analytic
# kernels against the number of sampled networks, one line per width, log-log; the data of every
# line as .npy files beside it (README.md in this directory lists them).
#
#   examples/wideresnet/figure.sh OUT [--widths 16,32,64,128] [--samples 4,8,...,256] [--images 4]
#                                     [--image-size 8] [--seed 0]
#
# The defaults take a few minutes on 2 cores; any option given replaces its default.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: examples/wideresnet/figure.sh OUT [--widths W,...] [--samples S,...] [--images N] [--image-size H]}"
shift

# the defaults, each unless the caller gives that option
declare -A defaults=([--images]=4 [--image-size]=8 [--widths]=16,32,64,128 [--samples]=4,8,16,32,64,128,256
  [--seed]=0)
for arg in "$@"; do
  unset "defaults[${arg%%=*}]" 2>/dev/null || true
done
args=(--model "$here/model.json" --out "$out")
for option in "${!defaults[@]}"; do
  args+=("$option" "${defaults[$option]}")
done
export JAVA_OPTS="${JAVA_OPTS:-} -Djava.awt.headless=true"
NTK_MAIN=dev.ntk.pipelines.figures.Figure2 exec "$root/bin/ntk" "${args[@]}" "$@"

#!/usr/bin/env bash
# The Neural Tangents paper's Figure 1 on this sine task (dev.ntk.pipelines.figures.Figure1):
# OUT/figure1.png, the NNGP and NTK posteriors (mean +- 2 sigma) beside an ensemble of trained
# finite networks and of their linearizations, with the data of every curve as .npy files beside it.
#
#   examples/sine/figure.sh OUT [--ensemble E.npy] [--linearized L.npy] [--t T --learning-rate LR]
#
# Without --ensemble, and when bin/ntk has its train command, the ensemble is trained first:
# NTK_FIGURE1_ENSEMBLE networks (default 8) of hidden width NTK_FIGURE1_WIDTH (default 512; the
# model file's is 2048, which takes about four times as long per step) for NTK_FIGURE1_T steps
# (default 1000) of learning rate NTK_FIGURE1_LR (default 0.1, below the largest stable rate 0.32
# that bin/ntk lr gives), their outputs in OUT/trained and OUT/linearized; the posteriors are then
# those at the same time (the infinite networks do not depend on the width).
# Without the train command the figure shows the posteriors alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: examples/sine/figure.sh OUT [--ensemble E.npy] [--linearized L.npy] [--t T --learning-rate LR]}"
shift

args=(--data "$here" --out "$out")
given_ensemble=0
for arg in "$@"; do
  [[ $arg == --ensemble || $arg == --ensemble=* ]] && given_ensemble=1
done
# bin/ntk builds the project first when it is missing or stale
if [[ $given_ensemble == 0 ]] && "$root/bin/ntk" train --help >/dev/null 2>&1; then
  k="${NTK_FIGURE1_ENSEMBLE:-8}"
  t="${NTK_FIGURE1_T:-1000}"
  lr="${NTK_FIGURE1_LR:-0.1}"
  width="${NTK_FIGURE1_WIDTH:-512}"
  train=(train --model "$here/model.json" --x-train "$here/x_train.npy" --y-train "$here/y_train.npy"
    --x-test "$here/x_test.npy" --ensemble "$k" --learning-rate "$lr" --t "$t" --seed 0 --width "$width")
  "$root/bin/ntk" "${train[@]}" --out "$out/trained"
  "$root/bin/ntk" "${train[@]}" --linearized --out "$out/linearized"
  args+=(--ensemble "$out/trained/test.npy" --linearized "$out/linearized/test.npy" --t "$t" --learning-rate "$lr")
fi

export JAVA_OPTS="${JAVA_OPTS:-} -Djava.awt.headless=true"
NTK_MAIN=dev.ntk.pipelines.figures.Figure1 exec "$root/bin/ntk" "${args[@]}" "$@"

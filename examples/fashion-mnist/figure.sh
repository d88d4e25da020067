#!/usr/bin/env bash
# The Neural Tangents paper's Figure 3 on Fashion-MNIST (dev.ntk.pipelines.figures.Figure3):
# OUT/figure3.png, test accuracy and MSE of exact NNGP and NTK inference against the training-set
# size for a fully connected network (fc.json), a CNN with a Flatten readout (cnn.json) and a
# WideResNet with global average pooling (wrn.json), with the data of every curve as .npy files.
#
#   examples/fashion-mnist/figure.sh OUT [--fc-sizes 100,...] [--cnn-sizes ...] [--wrn-sizes ...]
#                                        [--test 1000] [--dtype float64] [--data DIR]
#
# Set-up: the images are Debian's dataset-fashion-mnist package (`sudo apt-get install
# dataset-fashion-mnist`, into /usr/share/datasets/fashion-mnist), or any directory with the four
# original .gz files given as --data DIR. The default sizes (fc 100 to 10,000, cnn 100 to 3,000,
# wrn 30 to 300, 1,000 test images) are sized for about an hour on a 2-core machine.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:?usage: examples/fashion-mnist/figure.sh OUT [--fc-sizes ...] [--cnn-sizes ...] [--wrn-sizes ...] [--test M]}"
shift
data=/usr/share/datasets/fashion-mnist
for ((i = 1; i <= $#; i++)); do
  [[ ${!i} == --data ]] && { j=$((i + 1)); data="${!j}"; }
  [[ ${!i} == --data=* ]] && data="${!i#--data=}"
done
if [[ ! -f "$data/train-images-idx3-ubyte.gz" ]]; then
  echo "figure.sh: $data/train-images-idx3-ubyte.gz not found: sudo apt-get install dataset-fashion-mnist, or give --data DIR" >&2
  exit 2
fi
export JAVA_OPTS="${JAVA_OPTS:-} -Djava.awt.headless=true"
NTK_MAIN=dev.ntk.pipelines.figures.Figure3 exec "$root/bin/ntk" --models "$here" --out "$out" "$@"

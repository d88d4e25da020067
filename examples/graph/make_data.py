"""Writes the inputs of the graph example: random graphs with node features and their patterns.

Each example is a graph of 16 nodes with 4 features per node, x (N, 16, 4), and its pattern, the
weighted adjacency a (N, 16, 16): a[n, i, j] is the weight of the edge from node i to node j
(Aggregate sums each node's predecessors, neural-tangents' dense pattern), here a ring with random
chords and self-loops, each column divided by sqrt(in-degree) so that the squared weights into a
node sum to 1. The .npy files next to this script were written by it; to use them:

  bin/ntk kernel --model examples/graph/model.json --x1 examples/graph/x_train.npy \
      --pattern1 examples/graph/a_train.npy --x2 examples/graph/x_test.npy \
      --pattern2 examples/graph/a_test.npy --out out/graph

python3 make_data.py N_TRAIN N_TEST DIR writes other sizes into DIR instead (for bench/RESULTS.md).
"""
import pathlib
import sys

import numpy as np

here = pathlib.Path(sys.argv[3]) if len(sys.argv) > 3 else pathlib.Path(__file__).parent
sizes = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (20, 8)
rng = np.random.default_rng(25)
NODES, FEATURES = 16, 4


def graphs(n):
    x = rng.standard_normal(size=(n, NODES, FEATURES))
    a = np.zeros((n, NODES, NODES))
    for g in range(n):
        for i in range(NODES):
            a[g, i, i] = a[g, i, (i + 1) % NODES] = a[g, (i + 1) % NODES, i] = 1
        chords = rng.integers(0, NODES, size=(NODES // 2, 2))
        a[g, chords[:, 0], chords[:, 1]] = 1
        a[g] /= np.sqrt(a[g].sum(axis=0, keepdims=True))
    return x, a


for split, n in zip(("train", "test"), sizes):
    x, a = graphs(n)
    np.save(here / f"x_{split}.npy", x)
    np.save(here / f"a_{split}.npy", a)

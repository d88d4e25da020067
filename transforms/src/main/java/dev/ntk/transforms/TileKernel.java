package dev.ntk.transforms;

import dev.ntk.io.TileKey;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.ConjugateGradients;
import dev.ntk.kernels.predict.KernelOperator;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The train-train kernel of a {@link TileSet} on disk as a {@link KernelOperator}, for {@link
 * ConjugateGradients}: the {@code n x n} matrix is never held. A product reads the tile files one
 * at a time (float32 or float64, checked as {@link TileSet#read} checks them); each tile on or above
 * the diagonal serves its own block and, by symmetry, the transposed block below it. The tiles are
 * shared among the cores, each with its own {@code n x k} sum, so memory is a tile and an {@code n
 * x k} block per core.
 *
 * <p>The preconditioner's columns ({@link #columns}) are computed by the model's plan, between all
 * train inputs and the pivots' inputs ({@link TileComputer}), not read from the tiles: a pivot's
 * column lies across a whole column of tiles, so reading {@code b} columns from tiles of {@code T}
 * rows reads {@code b T n} entries where computing them costs {@code b n}, a fraction {@code b / n}
 * of the kernel stage's work. For a rank-256 preconditioner in tiles of 256 rows that is 4 to 5
 * products' worth of tile reading (for tiles of 2048 rows, 35), against a few seconds of computing
 * for a fully connected model.
 */
final class TileKernel implements KernelOperator {
  private final TileSet set;
  private final String get;
  private final List<TileKey> keys;
  private final Backend backend;
  private final String what;
  private final int n;
  private TileComputer computer;
  private double[] inputs;

  /**
   * @param keys the set's tiles on and above the diagonal, checked to be complete
   * @param get the kernel's name ({@code nngp} or {@code ntk})
   * @param backend where the preconditioner's columns are computed
   */
  TileKernel(TileSet set, String get, List<TileKey> keys, Backend backend) {
    if (!set.symmetric()) {
      throw new IllegalArgumentException("conjugate gradients need the train inputs' kernel with themselves, not " + set);
    }
    this.set = set;
    this.get = get;
    this.keys = List.copyOf(keys);
    this.backend = backend;
    this.what = "the train-train tiles in " + set.directory();
    this.n = Math.toIntExact(set.n1());
  }

  @Override
  public int n() {
    return n;
  }

  private double[] values(TileKey key) {
    return InferenceChecks.kernel(set.read(key), get, what, "the prediction with " + get);
  }

  @Override
  public double[] diagonal() {
    double[] d = new double[n];
    for (TileKey key : keys) {
      if (key.rowOffset() == key.colOffset()) {
        double[] v = values(key);
        for (int i = 0; i < key.rows(); i++) {
          d[(int) key.rowOffset() + i] = v[i * key.cols() + i];
        }
      }
    }
    return d;
  }

  @Override
  public DenseMatrix multiply(DenseMatrix x) {
    int k = Math.toIntExact(x.cols());
    double[] in = x.toArray();
    int parts = Math.max(1, Math.min(keys.size(), Runtime.getRuntime().availableProcessors()));
    double[] out = IntStream.range(0, parts).parallel().mapToObj(part -> {
      double[] sum = new double[in.length];
      for (int t = part; t < keys.size(); t += parts) {
        accumulate(keys.get(t), in, k, sum);
      }
      return sum;
    }).reduce((a, b) -> {
      for (int i = 0; i < a.length; i++) {
        a[i] += b[i];
      }
      return a;
    }).orElseThrow();
    return DenseMatrix.of(n, k, out);
  }

  /** Adds the tile's block times {@code x} to {@code out}, and off the diagonal its transpose's. */
  private void accumulate(TileKey key, double[] x, int k, double[] out) {
    double[] v = values(key);
    int rows = key.rows();
    int cols = key.cols();
    int r0 = (int) key.rowOffset();
    int c0 = (int) key.colOffset();
    boolean mirrored = r0 != c0;
    for (int i = 0; i < rows; i++) {
      int row = (r0 + i) * k;
      for (int j = 0; j < cols; j++) {
        double g = v[i * cols + j];
        int col = (c0 + j) * k;
        for (int c = 0; c < k; c++) {
          out[row + c] += g * x[col + c];
        }
        if (mirrored) {
          for (int c = 0; c < k; c++) {
            out[col + c] += g * x[row + c];
          }
        }
      }
    }
  }

  @Override
  public DenseMatrix columns(int[] pivots) {
    int features = 1;
    for (long f : set.featureShape()) {
      features = Math.multiplyExact(features, (int) f);
    }
    if (computer == null) {
      try {
        inputs = set.readRows(set.x1(), 0, n);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      computer = new TileComputer(set.model(), set.featureShape(), set.dtype(), backend,
          (double) n * ConjugateGradients.Settings.DEFAULT_RANK);
      computer.setup();
    }
    double[] pivotInputs = new double[Math.multiplyExact(pivots.length, features)];
    for (int t = 0; t < pivots.length; t++) {
      System.arraycopy(inputs, pivots[t] * features, pivotInputs, t * features, features);
    }
    double[] c = computer.compute(new TileKey(0, 0, n, pivots.length), inputs, pivotInputs).get(get);
    return DenseMatrix.of(n, pivots.length, c);
  }

  /** Frees what computing columns held. */
  void close() {
    if (computer != null) {
      computer.teardown();
      computer = null;
      inputs = null;
    }
  }
}

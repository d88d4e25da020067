package dev.ntk.kernels.predict;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;

/**
 * The train-train kernel {@code G_dd} ({@code n x n}, symmetric positive semi-definite) as
 * {@link ConjugateGradients} needs it: products with blocks of vectors, its diagonal and a few of
 * its columns, without the solver holding the matrix. {@link #of} wraps a matrix in memory; {@code
 * dev.ntk.transforms} reads one from its tile files, a tile at a time.
 */
public interface KernelOperator {
  /** The number of train inputs {@code n}. */
  int n();

  /** The diagonal of {@code G_dd}. */
  double[] diagonal();

  /** {@code G_dd x} for an {@code n x k} block {@code x}, as a new {@code n x k} matrix. */
  DenseMatrix multiply(DenseMatrix x);

  /** The columns {@code pivots} of {@code G_dd}, as a new {@code n x pivots.length} matrix. */
  DenseMatrix columns(int[] pivots);

  /**
   * What the products so far cost, per product, in words (e.g. the tiles read, the seconds
   * reading and multiplying), for the solve's report; empty when there is nothing to say.
   */
  default String cost() {
    return "";
  }

  /** The kernel {@code g} in memory ({@code n x n}, only read): products by OpenBLAS' {@code dgemm}. */
  static KernelOperator of(DenseMatrix g) {
    if (g.rows() != g.cols()) {
      throw new IllegalArgumentException("the train kernel must be square, got " + g.rows() + "x" + g.cols());
    }
    return new KernelOperator() {
      @Override
      public int n() {
        return (int) g.rows();
      }

      @Override
      public double[] diagonal() {
        return g.diagonal();
      }

      @Override
      public DenseMatrix multiply(DenseMatrix x) {
        return Lapack.multiply(false, g, false, x);
      }

      @Override
      public DenseMatrix columns(int[] pivots) {
        int n = n();
        double[] c = new double[Math.multiplyExact(n, pivots.length)];
        for (int j = 0; j < pivots.length; j++) {
          double[] row = g.getRows(pivots[j], 1); // the column, by symmetry: one contiguous read
          for (int i = 0; i < n; i++) {
            c[i * pivots.length + j] = row[i];
          }
        }
        return DenseMatrix.of(n, pivots.length, c);
      }
    };
  }
}

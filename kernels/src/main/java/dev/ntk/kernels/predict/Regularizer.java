package dev.ntk.kernels.predict;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.util.Locale;

/** The relative diagonal regularizer and the error for a kernel it did not make positive definite. */
final class Regularizer {
  private Regularizer() {}

  /** Adds {@code diagReg * trace(a) / n} to {@code a}'s diagonal; returns what was added. */
  static double add(DenseMatrix a, double diagReg) {
    double[] d = a.diagonal();
    double reg = shift(d, diagReg);
    for (int i = 0; i < d.length; i++) {
      a.set(i, i, d[i] + reg);
    }
    return reg;
  }

  /** What {@link #add} adds to a kernel of the diagonal {@code d}: {@code diagReg * trace / n}. */
  static double shift(double[] d, double diagReg) {
    if (!(diagReg >= 0) || Double.isInfinite(diagReg)) {
      throw new IllegalArgumentException("diag_reg must be a non-negative number, got " + diagReg);
    }
    double trace = 0;
    for (double v : d) {
      trace += v;
    }
    if (!Double.isFinite(trace)) {
      throw new IllegalArgumentException("the train-train kernel has a non-finite diagonal entry");
    }
    return d.length == 0 ? 0 : diagReg * trace / d.length;
  }

  /** The smallest eigenvalue of the symmetric matrix whose upper triangle {@code a} holds. */
  static double smallestEigenvalueFromUpper(DenseMatrix a) {
    try (DenseMatrix lower = a.transpose()) {   // eigvalsh reads the lower triangle
      return Lapack.eigvalsh(lower)[0];
    }
  }

  static GpPosterior.NotPositiveDefiniteException notPositiveDefinite(String kernel, double diagReg,
      double smallest) {
    return notPositiveDefinite(kernel, diagReg, String.format(Locale.ROOT, "smallest eigenvalue %.3g", smallest));
  }

  /** As {@link #notPositiveDefinite(String, double, double)}, with {@code where} saying what failed. */
  static GpPosterior.NotPositiveDefiniteException notPositiveDefinite(String kernel, double diagReg, String where) {
    return new GpPosterior.NotPositiveDefiniteException(String.format(Locale.ROOT,
        "the train-train %skernel plus diag_reg %g times its mean diagonal is not positive definite "
            + "(%s): increase the diagonal regularizer (diag_reg, e.g. 1e-6 "
            + "or larger), or check the training inputs for duplicates",
        kernel.isEmpty() ? "" : kernel + " ", diagReg, where));
  }
}

package dev.ntk.kernels.predict;

import dev.ntk.kernels.Get;
import java.io.Serializable;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.CommonOps_DDRM;
import org.ejml.dense.row.decomposition.TriangularSolver_DDRM;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.CholeskyDecomposition_F64;

/**
 * The posterior of the infinite network on test inputs, as neural-tangents' {@code gp_inference}:
 * exact Bayesian inference for the NNGP, and the distribution of an infinite ensemble trained to
 * convergence ({@code t = inf}) for the NTK.
 *
 * <p>Matrices are row-major {@code double[]}. With {@code K} the NNGP, {@code Θ} the NTK, {@code
 * d} the training and {@code t} the test inputs:
 *
 * <ul>
 *   <li>mean: {@code G_td (G_dd + r I)^-1 y} for the selected kernel {@code G};
 *   <li>NNGP covariance: {@code K_tt - K_td (K_dd + r I)^-1 K_dt};
 *   <li>NTK covariance: {@code K_tt + A^T K_dd A - (Θ_td (Θ_dd + r I)^-1 K_dt + transpose)} with
 *       {@code A = (Θ_dd + r I)^-1 Θ_dt}.
 * </ul>
 *
 * <p>The regularizer is relative, as in neural-tangents: {@code r = diagReg * trace(G_dd) / n}.
 */
public final class GpPosterior {
  private GpPosterior() {}

  /**
   * The Cholesky factor {@code L} (row-major, lower) of the regularized train-train kernel and the
   * solution {@code alpha = (G_dd + r I)^-1 y} ({@code n x outputs}), computed once and shared by
   * every test block.
   */
  public record TrainSolve(int n, int outputs, double[] cholesky, double[] alpha) implements Serializable {
    private static final long serialVersionUID = 1L;

    /** {@code (G_dd + r I)^-1 B} for a row-major {@code n x cols} matrix {@code B}. */
    public double[] solve(double[] b, int cols) {
      if (b.length != n * cols) {
        throw new IllegalArgumentException("expected " + n + "x" + cols + " values, got " + b.length);
      }
      double[] x = new double[b.length];
      double[] column = new double[n];
      for (int c = 0; c < cols; c++) {
        for (int i = 0; i < n; i++) {
          column[i] = b[i * cols + c];
        }
        TriangularSolver_DDRM.solveL(cholesky, column, n);
        TriangularSolver_DDRM.solveTranL(cholesky, column, n);
        for (int i = 0; i < n; i++) {
          x[i * cols + c] = column[i];
        }
      }
      return x;
    }
  }

  /** Thrown when the regularized train kernel is not positive definite. */
  public static final class NotPositiveDefiniteException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    NotPositiveDefiniteException(String message) {
      super(message);
    }
  }

  /** Factors {@code G_dd + r I} and solves for {@code y} ({@code n x outputs}). */
  public static TrainSolve factor(double[] kTrainTrain, int n, double[] yTrain, int outputs, double diagReg) {
    if (kTrainTrain.length != n * n || yTrain.length != n * outputs) {
      throw new IllegalArgumentException("train kernel must be " + n + "x" + n + " and targets "
          + n + "x" + outputs);
    }
    DMatrixRMaj a = new DMatrixRMaj(n, n, true, kTrainTrain.clone());
    double reg = diagReg * CommonOps_DDRM.trace(a) / n;
    for (int i = 0; i < n; i++) {
      a.add(i, i, reg);
    }
    CholeskyDecomposition_F64<DMatrixRMaj> chol = DecompositionFactory_DDRM.chol(n, true);
    if (!chol.decompose(a)) {
      throw new NotPositiveDefiniteException("the train-train kernel plus " + diagReg
          + " * trace / n on the diagonal is not positive definite: increase the diagonal "
          + "regularizer (diag_reg), or check the training inputs for duplicates");
    }
    double[] l = chol.getT(null).data;
    TrainSolve partial = new TrainSolve(n, outputs, l, new double[n * outputs]);
    return new TrainSolve(n, outputs, l, partial.solve(yTrain, outputs));
  }

  /** The posterior mean of a block of test rows: {@code G_td alpha} ({@code rows x outputs}). */
  public static double[] mean(double[] kTestTrain, int rows, TrainSolve solve) {
    return multiply(kTestTrain, rows, solve.n(), solve.alpha(), solve.outputs());
  }

  /**
   * The posterior covariance over all test inputs ({@code m x m}).
   *
   * @param solve the factor of the selected train-train kernel ({@code get})
   * @param kTrainTrainNngp {@code K_dd} (unregularized; only used for the NTK)
   * @param kTestTrainGet {@code G_td} for the selected kernel
   * @param kTestTrainNngp {@code K_td}
   * @param kTestTestNngp {@code K_tt}
   */
  public static double[] covariance(Get get, TrainSolve solve, double[] kTrainTrainNngp,
      double[] kTestTrainGet, double[] kTestTrainNngp, double[] kTestTestNngp, int m) {
    int n = solve.n();
    double[] kdtNngp = transpose(kTestTrainNngp, m, n);
    double[] solvedNngp = solve.solve(kdtNngp, m);          // G^-1 K_dt   (n x m)
    double[] cross = multiply(kTestTrainGet, m, n, solvedNngp, m);  // G_td G^-1 K_dt
    double[] cov = new double[m * m];
    if (get == Get.NNGP) {
      for (int i = 0; i < cov.length; i++) {
        cov[i] = kTestTestNngp[i] - cross[i];
      }
      return cov;
    }
    double[] a = solve.solve(transpose(kTestTrainGet, m, n), m);    // Θ^-1 Θ_dt  (n x m)
    double[] kA = multiply(kTrainTrainNngp, n, n, a, m);
    double[] aKa = multiply(transpose(a, n, m), m, n, kA, m);
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < m; j++) {
        cov[i * m + j] = kTestTestNngp[i * m + j] + aKa[i * m + j] - cross[i * m + j] - cross[j * m + i];
      }
    }
    return cov;
  }

  static double[] multiply(double[] a, int rows, int inner, double[] b, int cols) {
    DMatrixRMaj out = new DMatrixRMaj(rows, cols);
    CommonOps_DDRM.mult(DMatrixRMaj.wrap(rows, inner, a), DMatrixRMaj.wrap(inner, cols, b), out);
    return out.data;
  }

  static double[] transpose(double[] a, int rows, int cols) {
    double[] t = new double[a.length];
    for (int i = 0; i < rows; i++) {
      for (int j = 0; j < cols; j++) {
        t[j * rows + i] = a[i * cols + j];
      }
    }
    return t;
  }
}

package dev.ntk.kernels.predict;

import dev.ntk.kernels.Get;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.io.IOException;
import java.nio.file.Path;

/**
 * The posterior of the infinite network on test inputs, as neural-tangents' {@code gp_inference}:
 * exact Bayesian inference for the NNGP, and the distribution of an infinite ensemble trained to
 * convergence ({@code t = inf}) for the NTK. The regularized train-train kernel is factored once
 * (Cholesky, on {@link Lapack}); targets with {@code K} columns share the one {@code n x n}
 * factor.
 *
 * <p>Matrices are row-major. With {@code K} the NNGP, {@code Θ} the NTK, {@code d} the training
 * and {@code t} the test inputs:
 *
 * <ul>
 *   <li>mean: {@code G_td (G_dd + r I)^-1 y} for the selected kernel {@code G};
 *   <li>NNGP covariance: {@code K_tt - K_td (K_dd + r I)^-1 K_dt};
 *   <li>NTK covariance: {@code K_tt + A^T K_dd A - (Θ_td (Θ_dd + r I)^-1 K_dt + transpose)} with
 *       {@code A = (Θ_dd + r I)^-1 Θ_dt};
 *   <li>the marginal negative log-likelihood of {@code y} (each of its {@code K} columns an
 *       independent draw): {@code (y . alpha + K log det(G_dd + r I) + n K log 2π) / 2}.
 * </ul>
 *
 * <p>The regularizer is relative, as in neural-tangents: {@code r = diagReg * trace(G_dd) / n}.
 * Close it to free the factor's native memory.
 */
public final class GpPosterior implements AutoCloseable {
  private final int n;
  private final int outputs;
  private final DenseMatrix cholesky;
  private final DenseMatrix alpha;

  private GpPosterior(int n, int outputs, DenseMatrix cholesky, DenseMatrix alpha) {
    this.n = n;
    this.outputs = outputs;
    this.cholesky = cholesky;
    this.alpha = alpha;
  }

  /** Thrown when the regularized train kernel is not positive definite. */
  public static final class NotPositiveDefiniteException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    NotPositiveDefiniteException(String message) {
      super(message);
    }
  }

  /**
   * Factors {@code G_dd + r I} and solves for {@code y} ({@code n x outputs}, row-major). {@code
   * kTrainTrain} is consumed: it becomes the factor.
   *
   * @param kernel the kernel's name, for messages
   */
  public static GpPosterior factor(DenseMatrix kTrainTrain, double[] yTrain, int outputs, double diagReg,
      String kernel) {
    return factor(kTrainTrain, yTrain, outputs, diagReg, kernel, false);
  }

  /**
   * {@link #factor(DenseMatrix, double[], int, double, String)}, with {@code float32} the
   * factorization in float32 ({@link Lapack#choleskyFloat32}: as NumPy + SciPy factor a float32
   * kernel, 1.4-1.9x faster) for a prediction in float32; the solves, the mean, the covariance
   * and the NLL stay float64, on the factor widened.
   *
   * @param kernel the kernel's name, for messages
   */
  public static GpPosterior factor(DenseMatrix kTrainTrain, double[] yTrain, int outputs, double diagReg,
      String kernel, boolean float32) {
    int n = (int) kTrainTrain.rows();
    if (kTrainTrain.cols() != n || yTrain.length != (long) n * outputs) {
      throw new IllegalArgumentException("train kernel must be " + n + "x" + n + " and targets "
          + n + "x" + outputs);
    }
    Regularizer.add(kTrainTrain, diagReg);
    double[] diagonal = kTrainTrain.diagonal();
    if ((float32 ? Lapack.choleskyFloat32(kTrainTrain) : Lapack.cholesky(kTrainTrain)) != 0) {
      // potrf left the upper triangle alone (in float32: rounded, as a float32 kernel is already):
      // it and the saved diagonal are the matrix again.
      for (int i = 0; i < n; i++) {
        kTrainTrain.set(i, i, diagonal[i]);
      }
      double smallest = Regularizer.smallestEigenvalueFromUpper(kTrainTrain);
      kTrainTrain.close();
      throw Regularizer.notPositiveDefinite(kernel, diagReg, smallest);
    }
    DenseMatrix alpha = DenseMatrix.of(n, outputs, yTrain);
    Lapack.choleskySolve(kTrainTrain, alpha);
    return new GpPosterior(n, outputs, kTrainTrain, alpha);
  }

  /**
   * The posterior of a solution {@code alpha = (G_dd + r I)^-1 y} ({@code n x outputs}) found
   * without a factor ({@link ConjugateGradients}): it gives the {@link #mean} and can be {@link
   * #write}n, not the covariance or the NLL. {@code alpha} is taken over.
   */
  public static GpPosterior ofSolution(DenseMatrix alpha) {
    return new GpPosterior((int) alpha.rows(), (int) alpha.cols(), null, alpha);
  }

  public int n() {
    return n;
  }

  public int outputs() {
    return outputs;
  }

  /** {@code (G_dd + r I)^-1 b} for an {@code n x cols} matrix {@code b}, as a new matrix. */
  public DenseMatrix solve(DenseMatrix b) {
    if (cholesky == null) {
      throw new IllegalStateException("this posterior has no factor (read without it, or solved by conjugate gradients)");
    }
    DenseMatrix x = b.copy();
    Lapack.choleskySolve(cholesky, x);
    return x;
  }

  /** The posterior mean of a block of test rows: {@code G_td alpha} ({@code rows x outputs}). */
  public double[] mean(double[] kTestTrain, int rows) {
    try (DenseMatrix k = DenseMatrix.of(rows, n, kTestTrain)) {
      return mean(k);
    }
  }

  /** {@link #mean(double[], int)} for test rows in native memory ({@code rows x n}). */
  public double[] mean(DenseMatrix kTestTrain) {
    try (DenseMatrix m = Lapack.multiply(false, kTestTrain, false, alpha)) {
      return m.toArray();
    }
  }

  /**
   * The posterior covariance over all test inputs ({@code m x m}).
   *
   * @param get the kernel this posterior factored
   * @param kTrainTrainNngp {@code K_dd} (unregularized; only used for the NTK)
   * @param kTestTrainGet {@code G_td} for the selected kernel
   * @param kTestTrainNngp {@code K_td}
   * @param kTestTestNngp {@code K_tt}
   */
  public double[] covariance(Get get, DenseMatrix kTrainTrainNngp, double[] kTestTrainGet,
      double[] kTestTrainNngp, double[] kTestTestNngp, int m) {
    try (DenseMatrix gTd = DenseMatrix.of(m, n, kTestTrainGet);
        DenseMatrix kTd = kTestTrainNngp == kTestTrainGet ? null : DenseMatrix.of(m, n, kTestTrainNngp);
        DenseMatrix kTt = DenseMatrix.of(m, m, kTestTestNngp)) {
      return covariance(get, kTrainTrainNngp, gTd, kTd == null ? gTd : kTd, kTt);
    }
  }

  /**
   * {@link #covariance(Get, DenseMatrix, double[], double[], double[], int)} on kernels in native
   * memory: {@code kTestTrainGet} and {@code kTestTrainNngp} are {@code m x n} (the same matrix
   * for the NNGP), {@code kTestTestNngp} {@code m x m}; none is changed.
   */
  public double[] covariance(Get get, DenseMatrix kTrainTrainNngp, DenseMatrix kTestTrainGet,
      DenseMatrix kTestTrainNngp, DenseMatrix kTestTestNngp) {
    DenseMatrix gTd = kTestTrainGet;
    try (DenseMatrix cov = kTestTestNngp.copy();
        DenseMatrix kDt = kTestTrainNngp.transpose();
        DenseMatrix solvedNngp = solve(kDt)) {                       // G^-1 K_dt (n x m)
      if (get == Get.NNGP) {
        Lapack.gemm(false, gTd, false, solvedNngp, -1.0, 1.0, cov);  // K_tt - K_td K^-1 K_dt
        return cov.toArray();
      }
      try (DenseMatrix gDt = gTd.transpose();
          DenseMatrix a = solve(gDt);                                // Θ^-1 Θ_dt (n x m)
          DenseMatrix kA = Lapack.multiply(false, kTrainTrainNngp, false, a)) {
        Lapack.gemm(true, a, false, kA, 1.0, 1.0, cov);              // + A^T K_dd A
        Lapack.gemm(false, gTd, false, solvedNngp, -1.0, 1.0, cov);  // - Θ_td Θ^-1 K_dt
        Lapack.gemm(true, solvedNngp, false, gDt, -1.0, 1.0, cov);   // - its transpose
        return cov.toArray();
      }
    }
  }

  /**
   * The marginal negative log-likelihood of the training targets {@code y} under the GP with
   * covariance {@code G_dd + r I}, summed over the target columns.
   */
  public double nll(double[] yTrain) {
    double fit = 0;
    for (int i = 0; i < yTrain.length; i++) {
      fit += yTrain[i] * alpha.get(i / outputs, i % outputs);
    }
    if (cholesky == null) {
      throw new IllegalStateException("this posterior has no factor (read without it, or solved by conjugate gradients)");
    }
    double logDet = 0;
    for (int i = 0; i < n; i++) {
      logDet += 2 * Math.log(cholesky.get(i, i));
    }
    return nll(fit, logDet, n, outputs);
  }

  /**
   * The marginal negative log-likelihood from its parts: {@code fit = y . alpha} and {@code logDet
   * = log det(G_dd + r I)}, for {@code n} training points and {@code outputs} target columns.
   */
  public static double nll(double fit, double logDet, int n, int outputs) {
    return 0.5 * (fit + outputs * logDet + (double) n * outputs * Math.log(2 * Math.PI));
  }

  /** Writes the factor (if any) and the solution under {@code directory} (for workers to {@link #read}). */
  public void write(Path directory) throws IOException {
    if (cholesky != null) {
      cholesky.write(directory.resolve("cholesky.f64"));
    }
    alpha.write(directory.resolve("alpha.f64"));
  }

  /**
   * The posterior {@link #write} left under {@code directory}; without {@code withFactor} only
   * what {@link #mean} needs ({@code n x outputs} values instead of {@code n x n}).
   */
  public static GpPosterior read(Path directory, int n, int outputs, boolean withFactor) throws IOException {
    DenseMatrix l = withFactor ? DenseMatrix.read(directory.resolve("cholesky.f64"), n, n) : null;
    DenseMatrix a = DenseMatrix.read(directory.resolve("alpha.f64"), n, outputs);
    return new GpPosterior(n, outputs, l, a);
  }

  @Override
  public void close() {
    if (cholesky != null) {
      cholesky.close();
    }
    alpha.close();
  }
}

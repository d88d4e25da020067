package dev.ntk.kernels.predict;

import dev.ntk.kernels.Get;
import dev.ntk.kernels.linalg.DenseMatrix;

/**
 * The predictions of each mode from kernels in native memory ({@link DenseMatrix}, float64): one
 * function per mode, on the one solver of that mode, {@link GpPosterior} (Cholesky: exact
 * inference; or {@link ConjugateGradients} for its mean), {@link MseDynamics} (eigendecomposition:
 * MSE gradient descent in closed form) and
 * {@link GradientDescent} (ODE: any loss, momentum). {@link Predict}'s functions on DJL arrays and
 * {@code ntk predict} without a pipeline call these; the Beam path ({@code GpInference}) makes the
 * same solver calls split over its steps (the train side factored once, the means per block of
 * test rows, the covariance or the ODE at the end), so every path gives the same numbers.
 *
 * <p>Kernels are row-major: train-train {@code n x n}, test-train {@code m x n}, test-test {@code m
 * x m}; targets {@code n x outputs}. The train-train kernel of the selected kernel is consumed (it
 * becomes the factor or the eigenvectors); the other kernels are only read.
 */
public final class Solve {
  private Solve() {}

  /**
   * The NNGP kernels the covariance needs beside the selected kernel: {@code trainTrainNngp}
   * (unregularized {@code K_dd}, for the NTK only; null for the NNGP), {@code testTrainNngp}
   * ({@code K_td}; for the NNGP the selected test-train kernel itself) and {@code testTestNngp}
   * ({@code K_tt}).
   */
  public record CovarianceKernels(DenseMatrix trainTrainNngp, DenseMatrix testTrainNngp,
      DenseMatrix testTestNngp) {}

  /**
   * Predictions at each time: {@code means[i]} the test outputs ({@code m x outputs}, row-major),
   * {@code covs[i]} the covariance ({@code m x m}) or {@code covs} null, {@code trains[i]} the
   * train outputs ({@code n x outputs}) or {@code trains} null, {@code nll} the marginal negative
   * log-likelihood of the targets or NaN when not asked for.
   */
  public record Solution(double[][] means, double[][] covs, double[][] trains, double nll) {}

  /**
   * Exact inference ({@code t = inf}) by {@link GpPosterior}: the NNGP posterior ({@code
   * Get.NNGP}) or the infinite ensemble trained to convergence ({@code Get.NTK}). One time in the
   * solution.
   *
   * @param kTrainTrain {@code G_dd}, consumed
   * @param kTestTrain {@code G_td}
   * @param cov the kernels of the covariance, or null for none
   * @param nll whether to compute the marginal negative log-likelihood (from the same factor)
   */
  public static Solution gpInference(DenseMatrix kTrainTrain, DenseMatrix kTestTrain, double[] y, int outputs,
      Get get, double diagReg, CovarianceKernels cov, boolean nll) {
    return gpInference(kTrainTrain, kTestTrain, y, outputs, get, diagReg, cov, nll, false);
  }

  /**
   * {@link #gpInference(DenseMatrix, DenseMatrix, double[], int, Get, double, CovarianceKernels,
   * boolean)} with the factorization in float32 when {@code float32} (a float32 prediction: {@link
   * GpPosterior#factor(DenseMatrix, double[], int, double, String, boolean)}).
   */
  public static Solution gpInference(DenseMatrix kTrainTrain, DenseMatrix kTestTrain, double[] y, int outputs,
      Get get, double diagReg, CovarianceKernels cov, boolean nll, boolean float32) {
    try (GpPosterior p = GpPosterior.factor(kTrainTrain, y, outputs, diagReg, get.key(), float32)) {
      double[] mean = p.mean(kTestTrain);
      double[] c = cov == null ? null : p.covariance(get, cov.trainTrainNngp(), kTestTrain, cov.testTrainNngp(),
          cov.testTestNngp());
      return new Solution(new double[][] {mean}, c == null ? null : new double[][] {c}, null,
          nll ? p.nll(y) : Double.NaN);
    }
  }

  /**
   * Exact inference's mean ({@code t = inf}) by {@link ConjugateGradients} on {@code kTrainTrain}
   * (only read, never factored): the mean of {@link #gpInference}, to the tolerance of {@code cg}.
   * One time in the solution; no covariance, no NLL.
   *
   * @param kTestTrain {@code G_td}
   */
  public static Solution gpInference(KernelOperator kTrainTrain, DenseMatrix kTestTrain, double[] y, int outputs,
      Get get, double diagReg, ConjugateGradients.Settings cg) {
    try (GpPosterior p = ConjugateGradients.solve(kTrainTrain, y, outputs, diagReg, cg, get.key()).posterior()) {
      return new Solution(new double[][] {p.mean(kTestTrain)}, null, null, Double.NaN);
    }
  }

  /**
   * Continuous gradient descent on MSE in closed form by {@link MseDynamics}, at each of {@code
   * times}: the ensemble's mean (and with {@code cov} its covariance) from zero initial outputs, or
   * one network from {@code fxTrain0} and {@code fxTest0} (either may be null for zeros).
   *
   * @param kTrainTrain {@code G_dd}, consumed
   * @param kTestTrain {@code G_td}, or null for train outputs only
   * @param cov the kernels of the ensemble's covariance, or null for none (one network has none)
   * @param trainOutputs whether to compute the train outputs too
   */
  public static Solution mse(DenseMatrix kTrainTrain, DenseMatrix kTestTrain, double[] y, int outputs, Get get,
      double[] times, double learningRate, double diagReg, double[] fxTrain0, double[] fxTest0,
      CovarianceKernels cov, boolean trainOutputs) {
    MseDynamics.checkTimes(times);
    boolean ntkCov = cov != null && get == Get.NTK;
    try (MseDynamics dyn = MseDynamics.decompose(kTrainTrain, outputs, learningRate, diagReg, get.key());
        DenseMatrix residual = dyn.residual(fxTrain0, y);
        DenseMatrix noRows = kTestTrain == null ? DenseMatrix.zeros(0, dyn.n()) : null;
        DenseMatrix rotated = dyn.rotate(kTestTrain == null ? noRows : kTestTrain);
        DenseMatrix rotatedNngp = ntkCov ? dyn.rotate(cov.testTrainNngp()) : null;
        DenseMatrix projected = ntkCov ? dyn.projectKernel(cov.trainTrainNngp()) : null) {
      double[][] means = new double[times.length][];
      double[][] covs = cov == null ? null : new double[times.length][];
      double[][] trains = trainOutputs ? new double[times.length][] : null;
      for (int i = 0; i < times.length; i++) {
        double t = times[i];
        means[i] = dyn.testOutputs(t, fxTest0, rotated, residual);
        if (trains != null) {
          trains[i] = dyn.trainOutputs(t, fxTrain0, residual);
        }
        if (covs != null) {
          covs[i] = dyn.covariance(t, get == Get.NTK, rotated, ntkCov ? rotatedNngp : rotated, projected,
              cov.testTestNngp());
        }
      }
      return new Solution(means, covs, trains, Double.NaN);
    }
  }

  /**
   * The marginal negative log-likelihood of the targets under the GP with covariance {@code G_dd
   * + r I} ({@link GpPosterior#nll}); {@code kTrainTrain} is consumed.
   *
   * @param kernel the kernel's name, for messages
   */
  public static double nll(DenseMatrix kTrainTrain, double[] y, int outputs, double diagReg, String kernel) {
    return nll(kTrainTrain, y, outputs, diagReg, kernel, false);
  }

  /** {@link #nll(DenseMatrix, double[], int, double, String)}, factored in float32 when {@code float32}. */
  public static double nll(DenseMatrix kTrainTrain, double[] y, int outputs, double diagReg, String kernel,
      boolean float32) {
    try (GpPosterior p = GpPosterior.factor(kTrainTrain, y, outputs, diagReg, kernel, float32)) {
      return p.nll(y);
    }
  }
}

package dev.ntk.kernels.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.kernels.Get;
import dev.ntk.kernels.linalg.DenseMatrix;
import java.util.Random;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@link Solve} on native matrices: the modes agree where they meet (MSE at {@code t = inf} is
 * exact inference), the NLL from the exact solve's own factor is {@link Solve#nll}'s, and only
 * the train-train kernel is consumed.
 */
class SolveTest {
  private static final int N = 40;
  private static final int M = 7;
  private static final int K = 3;

  /** A positive definite {@code n x n} kernel {@code A A^T / d + I/10} and a test-train block. */
  private static double[][] kernels(long seed) {
    Random r = new Random(seed);
    int d = 5;
    double[] a = new double[(N + M) * d];
    for (int i = 0; i < a.length; i++) {
      a[i] = r.nextGaussian();
    }
    double[] dd = new double[N * N];
    double[] td = new double[M * N];
    double[] tt = new double[M * M];
    for (int i = 0; i < N + M; i++) {
      for (int j = 0; j < N + M; j++) {
        double dot = 0;
        for (int k = 0; k < d; k++) {
          dot += a[i * d + k] * a[j * d + k];
        }
        dot /= d;
        if (i < N && j < N) {
          dd[i * N + j] = dot + (i == j ? 0.1 : 0);
        } else if (i >= N && j < N) {
          td[(i - N) * N + j] = dot;
        } else if (i >= N && j >= N) {
          tt[(i - N) * M + (j - N)] = dot + (i == j ? 0.1 : 0);
        }
      }
    }
    double[] y = new double[N * K];
    for (int i = 0; i < y.length; i++) {
      y[i] = r.nextGaussian();
    }
    return new double[][] {dd, td, tt, y};
  }

  @Test
  void exactInferenceEqualsMseAtInfinityAndItsNllIsSolvesNll() {
    double[][] k = kernels(1);
    double[] y = k[3];
    double inf = Double.POSITIVE_INFINITY;
    try (DenseMatrix td = DenseMatrix.of(M, N, k[1]); DenseMatrix tt = DenseMatrix.of(M, M, k[2])) {
      Solve.CovarianceKernels cov = new Solve.CovarianceKernels(null, td, tt);
      Solve.Solution exact = Solve.gpInference(DenseMatrix.of(N, N, k[0]), td, y, K, Get.NNGP, 1e-3, cov, true);
      Solve.Solution mse = Solve.mse(DenseMatrix.of(N, N, k[0]), td, y, K, Get.NNGP, new double[] {1.0, inf}, 1.0,
          1e-3, null, null, cov, true);
      assertEquals(1, exact.means().length);
      assertNull(exact.trains());
      assertArrayEquals(exact.means()[0], mse.means()[1], 1e-9);
      assertArrayEquals(exact.covs()[0], mse.covs()[1], 1e-9);
      assertEquals(2, mse.trains().length);
      assertArrayEquals(y, mse.trains()[1], 1e-6, "trained to convergence the train outputs fit the targets");
      assertEquals(Solve.nll(DenseMatrix.of(N, N, k[0]), y, K, 1e-3, "nngp"), exact.nll(), 1e-9 * Math.abs(exact.nll()));
      assertEquals(Double.NaN, mse.nll());
      // the test kernels are only read
      assertArrayEquals(k[1], td.toArray());
      assertArrayEquals(k[2], tt.toArray());
    }
  }

  /**
   * Factored in float32 (a float32 prediction), exact inference's mean, covariance and NLL agree
   * with float64's to float32 precision (the kernel is well conditioned), and differ from them.
   */
  @Test
  void exactInferenceFactoredInFloat32AgreesWithFloat64() {
    double[][] k = kernels(2);
    double[] y = k[3];
    try (DenseMatrix td = DenseMatrix.of(M, N, k[1]); DenseMatrix tt = DenseMatrix.of(M, M, k[2])) {
      Solve.CovarianceKernels cov = new Solve.CovarianceKernels(null, td, tt);
      Solve.Solution f64 = Solve.gpInference(DenseMatrix.of(N, N, k[0]), td, y, K, Get.NNGP, 1e-3, cov, true);
      Solve.Solution f32 = Solve.gpInference(DenseMatrix.of(N, N, k[0]), td, y, K, Get.NNGP, 1e-3, cov, true,
          true);
      assertClose(f64.means()[0], f32.means()[0], 1e-4);
      assertClose(f64.covs()[0], f32.covs()[0], 1e-4);
      assertEquals(f64.nll(), f32.nll(), 1e-5 * Math.abs(f64.nll()));
      assertEquals(f32.nll(), Solve.nll(DenseMatrix.of(N, N, k[0]), y, K, 1e-3, "nngp", true));
      assertTrue(f64.nll() != f32.nll(), "factored in float32");
    }
  }

  /**
   * A kernel that is not positive definite, factored in float32, is refused as in float64: the
   * message names the kernel and its smallest eigenvalue, from the upper triangle the factorization
   * left (the entries are float32 values, as a float32 kernel's are, so it is the matrix exactly).
   */
  @Test
  void aSingularKernelInFloat32NamesTheKernelAndItsSmallestEigenvalue() {
    int n = 6;
    float[] x = {0.3f, -1.2f, 0.7f, 0.3f, -1.2f, 0.7f}; // rows 0..2 repeat as 3..5
    float[] z = {1.1f, 0.4f, -0.5f, 1.1f, 0.4f, -0.5f};
    double[] kdd = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        kdd[i * n + j] = x[i] * x[j] + z[i] * z[j] + (i % 3 == j % 3 ? 0.25f : 0f) - (i == j ? 0.01f : 0f);
      }
    }
    // e_i - e_{i+3} is an eigenvector of eigenvalue -0.01, the smallest
    var e = assertThrows(GpPosterior.NotPositiveDefiniteException.class,
        () -> Solve.nll(DenseMatrix.of(n, n, kdd), new double[n], 1, 0.0, "nngp", true));
    assertTrue(e.getMessage().contains("train-train nngp kernel"), e.getMessage());
    var found = Pattern.compile("smallest eigenvalue ([^)]+)\\)").matcher(e.getMessage());
    assertTrue(found.find(), e.getMessage());
    assertEquals(-0.01, Double.parseDouble(found.group(1)), 1e-6);
    var f64 = assertThrows(GpPosterior.NotPositiveDefiniteException.class,
        () -> Solve.nll(DenseMatrix.of(n, n, kdd), new double[n], 1, 0.0, "nngp", false));
    assertEquals(f64.getMessage(), e.getMessage(), "float32 and float64 report the same");
  }

  private static void assertClose(double[] expected, double[] actual, double relative) {
    double largest = 0;
    for (double v : expected) {
      largest = Math.max(largest, Math.abs(v));
    }
    assertArrayEquals(expected, actual, relative * largest);
  }
}

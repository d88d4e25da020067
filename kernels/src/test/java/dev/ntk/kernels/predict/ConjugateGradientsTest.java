package dev.ntk.kernels.predict;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ntk.kernels.linalg.DenseMatrix;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link ConjugateGradients}: its solution is the Cholesky one ({@link GpPosterior#factor}), its
 * preconditioner saves iterations where the kernel is ill-conditioned, and it stops with a message
 * when the iterations allowed do not reach the tolerance.
 */
class ConjugateGradientsTest {
  private static final int K = 3;

  /** A Gaussian (RBF) kernel of width {@code width} on {@code n} random points of the line: its spectrum decays fast. */
  private static double[] rbf(int n, double width, long seed) {
    Random r = new Random(seed);
    double[] p = new double[n];
    for (int i = 0; i < n; i++) {
      p[i] = r.nextDouble() * 4;
    }
    double[] g = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double t = (p[i] - p[j]) / width;
        g[i * n + j] = Math.exp(-0.5 * t * t);
      }
    }
    return g;
  }

  private static double[] gaussians(int count, long seed) {
    Random r = new Random(seed);
    double[] v = new double[count];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    return v;
  }

  /** The Cholesky solution {@code (G + r I)^-1 y}. */
  private static double[] cholesky(double[] g, int n, double[] y, double diagReg) {
    try (GpPosterior p = GpPosterior.factor(DenseMatrix.of(n, n, g), y, K, diagReg, "test");
        DenseMatrix identity = DenseMatrix.zeros(n, n)) {
      for (int i = 0; i < n; i++) {
        identity.set(i, i, 1);
      }
      return p.mean(identity);
    }
  }

  private static ConjugateGradients.Solved cg(double[] g, int n, double[] y, double diagReg, double tol, int maxIter,
      int rank) {
    try (DenseMatrix kernel = DenseMatrix.of(n, n, g)) {
      return ConjugateGradients.solve(KernelOperator.of(kernel), y, K, diagReg,
          new ConjugateGradients.Settings(tol, maxIter, rank), "test");
    }
  }

  private static double[] alpha(ConjugateGradients.Solved s, int n) {
    try (GpPosterior p = s.posterior(); DenseMatrix identity = DenseMatrix.zeros(n, n)) {
      for (int i = 0; i < n; i++) {
        identity.set(i, i, 1);
      }
      return p.mean(identity);
    }
  }

  private static double largest(double[] v) {
    double m = 0;
    for (double x : v) {
      m = Math.max(m, Math.abs(x));
    }
    return m;
  }

  @Test
  void solutionIsTheCholeskyOneWithAndWithoutPreconditioner() {
    int n = 120;
    double[] g = rbf(n, 1.0, 1);
    double[] y = gaussians(n * K, 2);
    double[] want = cholesky(g, n, y, 1e-3);
    for (int rank : new int[] {0, 20, 500}) {
      ConjugateGradients.Solved s = cg(g, n, y, 1e-3, 1e-10, 5000, rank);
      assertTrue(s.status().residual() <= 1e-10, s.status().toString());
      assertTrue(s.status().rank() <= Math.min(rank, n), "a rank above n is capped: " + s.status());
      assertArrayEquals(want, alpha(s, n), 1e-6 * largest(want), "rank " + rank);
    }
  }

  @Test
  void preconditionerSavesIterationsOnAnIllConditionedKernel() {
    int n = 300;
    double[] g = rbf(n, 0.5, 3);
    double[] y = gaussians(n * K, 4);
    ConjugateGradients.Solved plain = cg(g, n, y, 1e-6, 1e-8, 20_000, 0);
    ConjugateGradients.Solved nystrom = cg(g, n, y, 1e-6, 1e-8, 20_000, 60);
    assertTrue(nystrom.status().iterations() * 5 < plain.status().iterations(),
        "with " + nystrom.status() + ", without " + plain.status());
    double[] want = cholesky(g, n, y, 1e-6);
    assertArrayEquals(want, alpha(nystrom, n), 1e-5 * largest(want));
    assertArrayEquals(want, alpha(plain, n), 1e-5 * largest(want));
  }

  @Test
  void tooFewIterationsFailWithAMessage() {
    int n = 100;
    double[] g = rbf(n, 0.5, 5);
    double[] y = gaussians(n * K, 6);
    ConjugateGradients.NotConvergedException e = assertThrows(ConjugateGradients.NotConvergedException.class,
        () -> cg(g, n, y, 1e-6, 1e-10, 3, 0));
    assertTrue(e.getMessage().contains("within 3 iterations (cg_max_iter)"), e.getMessage());
    assertTrue(e.getMessage().lines().count() == 1, e.getMessage());
  }

  @Test
  void zeroTargetsNeedNoIteration() {
    int n = 30;
    ConjugateGradients.Solved s = cg(rbf(n, 1.0, 7), n, new double[n * K], 1e-4, 1e-6, 10, 5);
    assertEquals(0, s.status().iterations());
    assertArrayEquals(new double[n * K], alpha(s, n));
    assertTrue(Double.isNaN(s.status().productSeconds()) && !s.status().toString().contains("product"),
        "no product, no cost: " + s.status());
  }

  /** The status reports a product's mean seconds and CPU seconds and passes the operator's own account on. */
  @Test
  void statusReportsWhatAProductCost() {
    int n = 80;
    double[] y = gaussians(n * K, 9);
    int[] products = {0};
    try (DenseMatrix kernel = DenseMatrix.of(n, n, rbf(n, 0.5, 8))) {
      KernelOperator memory = KernelOperator.of(kernel);
      KernelOperator counted = new KernelOperator() {
        @Override
        public int n() {
          return n;
        }

        @Override
        public double[] diagonal() {
          return memory.diagonal();
        }

        @Override
        public DenseMatrix multiply(DenseMatrix x) {
          products[0]++;
          return memory.multiply(x);
        }

        @Override
        public DenseMatrix columns(int[] pivots) {
          return memory.columns(pivots);
        }

        @Override
        public String cost() {
          return products[0] + " products so far";
        }
      };
      ConjugateGradients.Status s = ConjugateGradients.solve(counted, y, K, 1e-4,
          new ConjugateGradients.Settings(1e-8, 1000, 10), "test").status();
      // one product an iteration, and one for the true residual at the end
      assertTrue(products[0] > s.iterations(), products[0] + " products in " + s);
      assertEquals(products[0] + " products so far", s.productCost());
      assertTrue(s.productSeconds() > 0 && s.productSeconds() < 10, s.toString());
      assertTrue(s.productCpuSeconds() >= 0 && s.preconditionerSeconds() >= 0, s.toString());
      assertTrue(s.toString().contains("s a product with the kernel (CPU ") && s.toString().endsWith(
          "; " + products[0] + " products so far)"), s.toString());
    }
  }
}

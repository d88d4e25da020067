package dev.ntk.bench;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.util.Locale;
import java.util.Random;

/**
 * A benchmark aid, not part of the library's API: the Cholesky factorization of exact inference
 * in float64 ({@link Lapack#cholesky}, {@code dpotrf}) against float32 ({@link
 * Lapack#choleskyFloat32}: narrowing in place, {@code spotrf}, widening back), which a float32
 * prediction uses.
 *
 * <p>{@code CholeskyBench N REPEATS}: a random symmetric positive definite {@code N x N} matrix
 * {@code G G^T / 64 + I / 10} ({@code G} Gaussian, {@code N x 64}; not timed), then, {@code
 * REPEATS} times after one untimed round, each factorization of a fresh copy; prints the best
 * seconds of each, of the float32 one's parts (narrowing, {@code spotrf} alone on a narrowed copy,
 * widening) and the largest difference between the factors relative to the largest entry.
 *
 * <pre>{@code
 * java -cp ... dev.ntk.bench.CholeskyBench 8000 3
 * }</pre>
 */
public final class CholeskyBench {
  private CholeskyBench() {}

  public static void main(String[] args) {
    int n = Integer.parseInt(args[0]);
    int repeats = Integer.parseInt(args[1]);
    int d = 64;
    Random r = new Random(1);
    double[] g = new double[n * d];
    for (int i = 0; i < g.length; i++) {
      g[i] = r.nextGaussian();
    }
    try (DenseMatrix gm = DenseMatrix.of(n, d, g); DenseMatrix a = DenseMatrix.zeros(n, n)) {
      Lapack.gemm(false, gm, true, gm, 1.0 / d, 0.0, a);
      for (int i = 0; i < n; i++) {
        a.set(i, i, a.get(i, i) + 0.1);
      }
      double best64 = Double.MAX_VALUE;
      double best32 = Double.MAX_VALUE;
      double bestNarrow = Double.MAX_VALUE;
      double bestWiden = Double.MAX_VALUE;
      double relative = 0;
      for (int k = 0; k <= repeats; k++) {
        try (DenseMatrix l64 = a.copy(); DenseMatrix l32 = a.copy()) {
          long t0 = System.nanoTime();
          check(Lapack.cholesky(l64));
          long t1 = System.nanoTime();
          check(Lapack.choleskyFloat32(l32));
          long t2 = System.nanoTime();
          double largest = 0;
          double diff = 0;
          for (int i = 0; i < n; i += 7) {   // a sample of rows
            double[] x = l64.getRows(i, 1);
            double[] y = l32.getRows(i, 1);
            for (int j = 0; j < n; j++) {
              largest = Math.max(largest, Math.abs(x[j]));
              diff = Math.max(diff, Math.abs(x[j] - y[j]));
            }
          }
          relative = diff / largest;
          // The float32 path's parts, on the float64 factor's memory (its values do not matter).
          long t3 = System.nanoTime();
          l64.narrowFloat32();
          long t4 = System.nanoTime();
          l64.widenFloat32();
          long t5 = System.nanoTime();
          if (k > 0) {
            best64 = Math.min(best64, (t1 - t0) / 1e9);
            best32 = Math.min(best32, (t2 - t1) / 1e9);
            bestNarrow = Math.min(bestNarrow, (t4 - t3) / 1e9);
            bestWiden = Math.min(bestWiden, (t5 - t4) / 1e9);
          }
        }
      }
      System.out.printf(Locale.ROOT, "RESULT n=%d dpotrf %.3f s; narrow+spotrf+widen %.3f s (narrow %.3f s, "
          + "widen %.3f s); max |L64 - L32| / max |L64| %.2e (sampled rows)%n", n, best64, best32, bestNarrow,
          bestWiden, relative);
    }
  }

  private static void check(int info) {
    if (info != 0) {
      throw new IllegalStateException("not positive definite at minor " + info);
    }
  }
}

package dev.ntk.kernels.engine;

import org.bytedeco.openblas.global.openblas;

/**
 * The input kernel of a tile, the one step that is not entry-wise: {@code nngp = x1 x2^T / d} as
 * one GEMM on OpenBLAS (the JavaCPP preset, whose native library comes from Maven), and the
 * per-input variances {@code |x|^2 / d}.
 *
 * <p>Chosen by measurement (bench/README.md): for 4096 x 784 x 4096 in float32, OpenBLAS took
 * 0.13 s on this 2-core machine, TensorFlow's MatMul 0.10 s on the issue's, NumPy 0.16-0.28 s here.
 * A Beam worker asks for one thread (it is one of several workers); in-process calls use all cores.
 */
public final class Gram {
  private Gram() {}

  private static int threadsSet = -1;

  private static synchronized void threads(int threads) {
    if (threads != threadsSet) {
      org.bytedeco.openblas.presets.openblas.blas_set_num_threads(threads);
      threadsSet = threads;
    }
  }

  /** {@code out = x1 x2^T / d} for row-major {@code x1 (n1, d)} and {@code x2 (n2, d)}. */
  public static void of(double[] x1, double[] x2, int n1, int n2, int d, double[] out, int threads) {
    threads(threads);
    openblas.cblas_dgemm(openblas.CblasRowMajor, openblas.CblasNoTrans, openblas.CblasTrans, n1, n2, d,
        1.0 / d, x1, d, x2, d, 0.0, out, n2);
  }

  /** {@code out = x1 x2^T / d} in float32. */
  public static void of(float[] x1, float[] x2, int n1, int n2, int d, float[] out, int threads) {
    threads(threads);
    openblas.cblas_sgemm(openblas.CblasRowMajor, openblas.CblasNoTrans, openblas.CblasTrans, n1, n2, d,
        1.0f / d, x1, d, x2, d, 0.0f, out, n2);
  }

  /** The mean square of each row of {@code x (n, d)}, accumulated in float64. */
  public static double[] variances(double[] x, int n, int d) {
    double[] v = new double[n];
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int k = i * d; k < (i + 1) * d; k++) {
        s += x[k] * x[k];
      }
      v[i] = s / d;
    }
    return v;
  }

  /** The mean square of each row of {@code x (n, d)} in float32, accumulated in float64. */
  public static double[] variances(float[] x, int n, int d) {
    double[] v = new double[n];
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int k = i * d; k < (i + 1) * d; k++) {
        s += (double) x[k] * x[k];
      }
      v[i] = s / d;
    }
    return v;
  }
}

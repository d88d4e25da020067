package dev.ntk.pipelines;

import ai.djl.ndarray.types.Shape;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Model;
import dev.ntk.kernels.Plan;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import dev.ntk.kernels.predict.GpPosterior;
import dev.ntk.kernels.predict.OutOfCoreCholesky;
import dev.ntk.transforms.PredictSettings;
import dev.ntk.transforms.PredictionFiles;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.Locale;
import java.util.Map;

/**
 * {@code ntk predict}'s exact inference ({@code --t inf}) in-process when the train kernel does not
 * fit {@code --max-memory}: the regularized train kernel is factored out of core ({@link
 * OutOfCoreCholesky}: panels of columns computed by the {@code cpu} backend straight into native
 * memory, kept in a scratch file), the targets solved by two passes over the file, and the mean
 * {@code K_td alpha} computed over bands of test rows, so that no kernel is ever whole in memory.
 * The mean, and with {@code --nll} the marginal negative log-likelihood (from the factor's
 * diagonal); not the covariance. The numbers are {@link InProcessPredict}'s, to rounding.
 *
 * <p>All 60,000 Fashion-MNIST training images (float32, 7.2 GB of factor on disk) took the time
 * {@code bench/RESULTS.md} gives ("All of Fashion-MNIST out of core").
 */
record OutOfCorePredict(Model model, NpyArray xTrain, NpyArray yTrain, NpyArray xTest, PredictSettings settings,
    NpyDType dtype, long budget, Path scratch) {

  /**
   * The largest training set {@code --solver auto} factors out of core; above it, conjugate
   * gradients. The factor's {@code n^3 / 3} flops at the ~180 GFLOP/s float32 {@code spotrf} reached
   * on this project's 2-core machine are 31 minutes at 100,000 (its scratch file 20 GB in float32,
   * 40 GB in float64), while CG's cost grows as {@code n^2} times its iterations: projected at 1.9 h
   * for 60,000 here ({@code bench/RESULTS.md}), where the factor takes minutes. Beyond ~100,000 the
   * file and one machine's hours are the limit, and CG over tiles on a cluster is the way.
   */
  static final long AUTO_BOUND = 100_000;

  /** The bytes of the factor's scratch file: the lower triangle in panels of {@code width} columns. */
  static long scratchBytes(long n, long width, NpyDType dtype) {
    long bytes = 0;
    for (long c0 = 0; c0 < n; c0 += width) {
      bytes += (n - c0) * Math.min(width, n - c0);
    }
    return bytes * dtype.bytes();
  }

  /** The panel width that {@code budget} allows ({@link OutOfCoreCholesky#width}) for {@code n} training points. */
  static int width(long n, NpyDType dtype, long budget) {
    return OutOfCoreCholesky.width(n, dtype.bytes(), budget);
  }

  /** Says what ran: how many panels of how many columns, for the summary line. */
  String describe() {
    int n = Math.toIntExact(xTrain.shape()[0]);
    int w = width(n, dtype, budget);
    return String.format(Locale.ROOT, "out-of-core Cholesky, %d panels of %d columns", (n + w - 1) / w, w);
  }

  /**
   * Predicts and writes {@code mean.npy} (and {@code nll.npy} when asked) into {@code out}; returns
   * the seconds it took. With a {@code log}, says each panel's times and the solve's.
   */
  double run(Path out, PrintWriter log) throws IOException {
    long start = System.nanoTime();
    int n = Math.toIntExact(xTrain.shape()[0]);
    int m = Math.toIntExact(xTest.shape()[0]);
    double[] y = yTrain.data();
    int outputs = y.length / n;
    Get get = settings.get();
    boolean float32 = dtype == NpyDType.FLOAT32;
    long[] perExample = Arrays.copyOfRange(xTrain.shape(), 1, xTrain.shape().length);
    int size = Math.toIntExact(Arrays.stream(perExample).reduce(1, Math::multiplyExact));
    Plan plan = model.plan(new Shape(perExample), InProcessKernel.dataType(dtype), EnumSet.of(get));
    Object x = array(xTrain);
    int threads = Runtime.getRuntime().availableProcessors();
    OutOfCoreCholesky.Blocks blocks = (r0, r1, c0, c1, into) -> {
      Object rows = InProcessPredict.rows(x, r0, r1, size);
      boolean diagonal = r0 == c0 && r1 == c1;
      plan.runInto(rows, diagonal ? null : InProcessPredict.rows(x, c0, c1, size), r1 - r0, c1 - c0, threads,
          Map.of(get.key(), into));
      long at = firstNonFinite(into);
      if (at >= 0) {
        int w = c1 - c0;
        long row = r0 + at / w;
        long col = c0 + at % w;
        throw InProcessKernel.nonFinite(model.layer(), xTrain, null, false, dtype, "train-train " + get.key(),
            row * n + col, value(into, at), n);
      }
    };
    int width = width(n, dtype, budget);
    double[] mean;
    double nll = Double.NaN;
    long factored;
    long solved;
    try (OutOfCoreCholesky l = OutOfCoreCholesky.factor(n, width, float32, settings.diagReg(), get.key(), blocks,
        scratch, log)) {
      factored = System.nanoTime();
      try (DenseMatrix alpha = l.solve(y, outputs)) {
        solved = System.nanoTime();
        if (settings.nll()) {
          double fit = 0;
          for (int i = 0; i < y.length; i++) {
            fit += y[i] * alpha.get(i / outputs, i % outputs);
          }
          nll = GpPosterior.nll(fit, l.logDeterminant(), n, outputs);
        }
        mean = mean(plan, x, alpha, n, m, size, threads);
      }
    }
    long end = System.nanoTime();
    long[] meanShape = yTrain.shape().clone();
    meanShape[0] = m;
    Files.createDirectories(out);
    PredictionFiles.write(out, "mean.npy", meanShape, new double[][] {mean}, dtype);
    if (settings.nll()) {
      PredictionFiles.write(out, "nll.npy", new long[0], new double[][] {{nll}}, dtype);
    }
    if (log != null) {
      log.printf(Locale.ROOT, "ntk: %s: train kernel computed and factored in %.2f s, solved in %.2f s, "
          + "test-train kernel and mean in %.2f s%n", describe(), (factored - start) / 1e9,
          (solved - factored) / 1e9, (end - solved) / 1e9);
    }
    return (System.nanoTime() - start) / 1e9;
  }

  /**
   * {@code K_td alpha}: the test-train kernel computed in bands of test rows (float64 after
   * widening, as {@link InProcessPredict} holds it, at most a quarter of the budget and 2^28
   * entries a band), each checked and multiplied.
   */
  private double[] mean(Plan plan, Object x, DenseMatrix alpha, int n, int m, int size, int threads) {
    Object xt = array(xTest);
    int k = (int) alpha.cols();
    double[] mean = new double[Math.multiplyExact(m, k)];
    long entries = Math.min(1L << 28, Math.max(n, budget / 4 / Double.BYTES));
    int band = (int) Math.max(1, Math.min(m, entries / n));
    for (int t0 = 0; t0 < m; t0 += band) {
      int rows = Math.min(band, m - t0);
      try (DenseMatrix kernel = DenseMatrix.uninitialized(rows, n)) {
        boolean f64 = dtype == NpyDType.FLOAT64;
        plan.runInto(InProcessPredict.rows(xt, t0, t0 + rows, size), x, rows, n, threads,
            Map.of(settings.get().key(), f64 ? kernel.buffer() : kernel.float32Buffer()));
        if (!f64) {
          kernel.widenFloat32();
        }
        long at = kernel.firstNonFinite();
        if (at >= 0) {
          throw InProcessKernel.nonFinite(model.layer(), xTest, xTrain, false, dtype,
              "test-train " + settings.get().key(), (t0 + at / n) * n + at % n, kernel.get(at / n, at % n), n);
        }
        try (DenseMatrix product = Lapack.multiply(false, kernel, false, alpha)) {
          System.arraycopy(product.toArray(), 0, mean, t0 * k, rows * k);
        }
      }
    }
    return mean;
  }

  private Object array(NpyArray a) {
    return dtype == NpyDType.FLOAT64 ? a.data() : a.toFloats();
  }

  private static long firstNonFinite(Buffer b) {
    if (b instanceof FloatBuffer f) {
      for (int i = 0; i < f.capacity(); i++) {
        if (!Float.isFinite(f.get(i))) {
          return i;
        }
      }
    } else {
      DoubleBuffer d = (DoubleBuffer) b;
      for (int i = 0; i < d.capacity(); i++) {
        if (!Double.isFinite(d.get(i))) {
          return i;
        }
      }
    }
    return -1;
  }

  private static double value(Buffer b, long at) {
    return b instanceof FloatBuffer f ? f.get((int) at) : ((DoubleBuffer) b).get((int) at);
  }
}

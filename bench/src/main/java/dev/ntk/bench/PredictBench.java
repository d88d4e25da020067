package dev.ntk.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.tensorflow.engine.TfLinalg;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import dev.ntk.kernels.predict.GpPosterior;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * A benchmark aid for {@code bench/predict.sh}, not part of the library's API: the dense linear
 * algebra of exact inference on OpenBLAS ({@link Lapack}, what the library uses) against
 * TensorFlow's linalg ops through DJL, on the kernels of the benchmark's inputs.
 *
 * <p>{@code PredictBench DIR MODEL.json DIAG_REG REPEATS EIGH(true|false)}: reads {@code
 * DIR/x_train.npy}, {@code y_train.npy} and {@code x_test.npy}, computes the NNGP (and NTK) in
 * process (not timed), then times, best of {@code REPEATS}: the factorisation + solve + mean
 * {@code K_td (K_dd + r I)^-1 y} with {@link GpPosterior} and with TensorFlow's {@code Cholesky},
 * {@code MatrixTriangularSolve} and {@code MatMul}; with {@code EIGH} also the symmetric
 * eigendecomposition of the NTK by {@link Lapack#eigh} and by TensorFlow's {@code
 * SelfAdjointEigV2}. One untimed run of each comes first (native loading, warm-up). Prints {@code
 * RESULT} lines.
 */
public final class PredictBench {
  private PredictBench() {}

  public static void main(String[] args) throws IOException {
    Path dir = Path.of(args[0]);
    KernelFn kf = ModelSpec.read(Path.of(args[1])).kernelFn();
    double diagReg = Double.parseDouble(args[2]);
    int repeats = Integer.parseInt(args[3]);
    boolean eigh = Boolean.parseBoolean(args[4]);
    NpyArray x = Npy.read(dir.resolve("x_train.npy"));
    NpyArray y = Npy.read(dir.resolve("y_train.npy"));
    NpyArray xt = Npy.read(dir.resolve("x_test.npy"));
    int n = (int) x.shape()[0];
    int m = (int) xt.shape()[0];
    int k = y.data().length / n;
    try (NDManager manager = Tensors.newManager()) {
      NDArray xs = Tensors.create(manager, x.data(), new Shape(x.shape()), DataType.FLOAT64);
      NDArray xts = Tensors.create(manager, xt.data(), new Shape(xt.shape()), DataType.FLOAT64);
      Kernel dd = kf.apply(xs);
      Kernel td = kf.apply(xts, xs);
      double[] kdd = Tensors.toDoubles(dd.nngp());
      double[] ktd = Tensors.toDoubles(td.nngp());
      double reg = 0;
      for (int i = 0; i < n; i++) {
        reg += kdd[i * n + i];
      }
      reg *= diagReg / n;
      // K_dd + r I for TensorFlow, regularized here: DJL's TfNDManager.eye (through zeros/full)
      // fails with a NullPointerException from TF_TensorData on this TensorFlow build.
      double[] regularized = kdd.clone();
      for (int i = 0; i < n; i++) {
        regularized[i * n + i] += reg;
      }
      double best = Double.POSITIVE_INFINITY;
      double[] openblasMean = null;
      for (int r = -1; r < repeats; r++) {
        long t0 = System.nanoTime();
        try (GpPosterior p = GpPosterior.factor(DenseMatrix.of(n, n, kdd), y.data(), k, diagReg, "nngp")) {
          openblasMean = p.mean(ktd, m);
        }
        best = r < 0 ? best : Math.min(best, (System.nanoTime() - t0) / 1e9);
      }
      System.out.printf(Locale.ROOT, "RESULT solver=openblas n=%d m=%d k=%d factor_solve_s=%.3f%n", n, m, k, best);
      double bestTf = Double.POSITIVE_INFINITY;
      double[] tfMean = null;
      for (int r = -1; r < repeats; r++) {
        try (NDManager scope = manager.newSubManager()) {
          NDArray a = Tensors.create(scope, regularized, new Shape(n, n), DataType.FLOAT64);
          NDArray b = Tensors.create(scope, y.data(), new Shape(n, k), DataType.FLOAT64);
          NDArray t = Tensors.create(scope, ktd, new Shape(m, n), DataType.FLOAT64);
          long t0 = System.nanoTime();
          NDArray l = TfLinalg.cholesky(a);
          NDArray alpha = TfLinalg.lowerSolve(l, TfLinalg.lowerSolve(l, b, false), true);
          tfMean = Tensors.toDoubles(t.matMul(alpha));
          bestTf = r < 0 ? bestTf : Math.min(bestTf, (System.nanoTime() - t0) / 1e9);
        }
      }
      double diff = 0;
      double scale = 0;
      for (int i = 0; i < tfMean.length; i++) {
        diff = Math.max(diff, Math.abs(tfMean[i] - openblasMean[i]));
        scale = Math.max(scale, Math.abs(openblasMean[i]));
      }
      System.out.printf(Locale.ROOT, "RESULT solver=tensorflow n=%d m=%d k=%d factor_solve_s=%.3f "
          + "max_rel_diff_to_openblas=%.3e%n", n, m, k, bestTf, diff / scale);
      if (eigh) {
        double[] ntk = Tensors.toDoubles(dd.ntk());
        double bestEig = Double.POSITIVE_INFINITY;
        for (int r = -1; r < repeats; r++) {
          try (DenseMatrix a = DenseMatrix.of(n, n, ntk)) {
            long t0 = System.nanoTime();
            Lapack.eigh(a);
            bestEig = r < 0 ? bestEig : Math.min(bestEig, (System.nanoTime() - t0) / 1e9);
          }
        }
        System.out.printf(Locale.ROOT, "RESULT eigh=openblas n=%d seconds=%.3f%n", n, bestEig);
        double bestTfEig = Double.POSITIVE_INFINITY;
        for (int r = -1; r < repeats; r++) {
          try (NDManager scope = manager.newSubManager()) {
            NDArray a = Tensors.create(scope, ntk, new Shape(n, n), DataType.FLOAT64);
            long t0 = System.nanoTime();
            NDArray[] out = TfLinalg.eigh(a);
            Tensors.toDoubles(out[0]);
            bestTfEig = r < 0 ? bestTfEig : Math.min(bestTfEig, (System.nanoTime() - t0) / 1e9);
          }
        }
        System.out.printf(Locale.ROOT, "RESULT eigh=tensorflow n=%d seconds=%.3f%n", n, bestTfEig);
      }
    }
  }
}

package dev.ntk.kernels.predict;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Continuous gradient descent on the MSE loss {@code |f - y|^2 / (2 y.size)} in closed form,
 * through the eigendecomposition {@code G = V diag(λ) V^T} of the regularized train-train kernel
 * {@code G}, as neural-tangents' {@code gradient_descent_mse} and {@code
 * gradient_descent_mse_ensemble}. Time is {@code τ = t · learning_rate / y.size}; {@code t} may
 * be {@code +inf}. The {@code K} target columns share the one {@code n x n} decomposition.
 *
 * <ul>
 *   <li>one network from {@code f_0}: {@code f_train(t) = f_train_0 + V expm1(-λτ) V^T (f_train_0
 *       - y)} and {@code f_test(t) = f_test_0 + G_td V [expm1(-λτ)/λ] V^T (f_train_0 - y)};
 *   <li>the ensemble mean is the same from {@code f_0 = 0};
 *   <li>the ensemble covariance, NNGP (top layer trained): {@code K_tt - Q diag((1 -
 *       e^{-2λτ})/λ) Q^T} with {@code Q = K_td V}; NTK: {@code K_tt - P D Q^T - Q D P^T + P D W D
 *       P^T} with {@code P = Θ_td V}, {@code D = diag((1 - e^{-λτ})/λ)}, {@code W = V^T K_dd V}.
 * </ul>
 *
 * <p>Eigenvalues below zero (rounding) are taken as zero, as in neural-tangents; {@code t = inf}
 * needs every eigenvalue positive. Close it to free the native memory.
 */
public final class MseDynamics implements AutoCloseable {
  private final int n;
  private final int outputs;
  private final double learningRate;
  private final double[] eigenvalues;
  private final DenseMatrix vt;
  private final String kernel;
  private final double diagReg;

  private MseDynamics(int n, int outputs, double learningRate, double[] eigenvalues, DenseMatrix vt,
      String kernel, double diagReg) {
    this.n = n;
    this.outputs = outputs;
    this.learningRate = learningRate;
    this.eigenvalues = eigenvalues;
    this.vt = vt;
    this.kernel = kernel;
    this.diagReg = diagReg;
  }

  /**
   * Decomposes {@code G_dd + r I}; {@code kTrainTrain} is consumed (it becomes {@code V^T}).
   *
   * @param outputs the target columns {@code K} ({@code y.size = n K})
   * @param kernel the kernel's name, for messages
   */
  public static MseDynamics decompose(DenseMatrix kTrainTrain, int outputs, double learningRate,
      double diagReg, String kernel) {
    if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
      throw new IllegalArgumentException("learning_rate must be positive, got " + learningRate);
    }
    Regularizer.add(kTrainTrain, diagReg);
    double[] w = Lapack.eigh(kTrainTrain);
    return new MseDynamics((int) kTrainTrain.rows(), outputs, learningRate, w, kTrainTrain, kernel, diagReg);
  }

  public int n() {
    return n;
  }

  public int outputs() {
    return outputs;
  }

  /** The eigenvalues of the regularized train kernel, ascending. */
  public double[] eigenvalues() {
    return eigenvalues.clone();
  }

  /** Checks a list of times: each {@code >= 0} or {@code +inf}, never NaN. */
  public static void checkTimes(double[] times) {
    if (times.length == 0) {
      throw new IllegalArgumentException("expected at least one time t");
    }
    for (double t : times) {
      if (!(t >= 0)) {
        throw new IllegalArgumentException("times t must be non-negative numbers or inf, got " + t);
      }
    }
  }

  /** {@code expm1(-λτ)} per eigenvalue (-1 at {@code t = inf}). */
  double[] expm1(double t) {
    double tau = tau(t);
    double[] c = new double[n];
    for (int i = 0; i < n; i++) {
      double l = Math.max(eigenvalues[i], 0);
      c[i] = Double.isInfinite(tau) ? (l > 0 ? -1 : 0) : Math.expm1(-l * tau);
    }
    return c;
  }

  /** {@code expm1(-λτ)/λ} per eigenvalue ({@code -τ} at {@code λ = 0}; {@code -1/λ} at {@code t = inf}). */
  double[] inverseExpm1(double t) {
    double tau = tau(t);
    if (Double.isInfinite(tau)) {
      requirePositive();
    }
    double[] c = new double[n];
    for (int i = 0; i < n; i++) {
      double l = Math.max(eigenvalues[i], 0);
      if (Double.isInfinite(tau)) {
        c[i] = -1 / l;
      } else if (l * tau < 1e-300 || l == 0) {
        c[i] = -tau;
      } else {
        c[i] = Math.expm1(-l * tau) / l;
      }
    }
    return c;
  }

  /**
   * {@code (g(t) - 1)/λ} per eigenvalue, where {@code g} is the train residual's factor of the
   * eigenmode under the momentum dynamics {@code mass f'' + f' = -lr Θ ∇L} on MSE: with {@code a
   * = λ lr / y.size}, {@code mass g'' + g' + a g = 0}, {@code g(0) = 1}, {@code g'(0) = 0} (see
   * {@link #momentumFactor}). With {@code mass = 0} this is {@link #inverseExpm1}.
   */
  double[] inverseMomentum(double t, double mass) {
    if (mass == 0) {
      return inverseExpm1(t);
    }
    if (Double.isInfinite(t)) {
      requirePositive();
    }
    double scale = learningRate / ((double) n * outputs);
    double[] c = new double[n];
    for (int i = 0; i < n; i++) {
      double l = Math.max(eigenvalues[i], 0);
      c[i] = momentumFactor(l * scale, mass, t) * scale;
    }
    return c;
  }

  /** {@code g(t) - 1} per eigenvalue (see {@link #inverseMomentum}); {@link #expm1} at {@code mass = 0}. */
  double[] momentumMinusOne(double t, double mass) {
    if (mass == 0) {
      return expm1(t);
    }
    double scale = learningRate / ((double) n * outputs);
    double[] c = new double[n];
    for (int i = 0; i < n; i++) {
      double a = Math.max(eigenvalues[i], 0) * scale;
      c[i] = a == 0 ? 0 : Double.isInfinite(t) ? -1 : a * momentumFactor(a, mass, t);
    }
    return c;
  }

  /**
   * {@code (g(t) - 1)/a} for the solution {@code g} of the damped oscillator {@code m g'' + g' + a
   * g = 0} from {@code g(0) = 1} at rest, {@code a >= 0}, {@code m > 0}, {@code t >= 0} or {@code
   * +inf}. The roots of {@code m s^2 + s + a} are {@code s = (-1 ± √D)/(2m)}, {@code D = 1 - 4am}.
   *
   * <ul>
   *   <li>overdamped, {@code D >= 1/100}: from the numerically stable roots {@code s1 = a/q} (slow)
   *       and {@code s2 = q/m} (fast), {@code q = -(1 + √D)/2}, {@code (g - 1)/a = -(expm1(s1
   *       t)/s1 - (m/q) expm1(s2 t)) / √D}; no cancellation for small {@code m} or {@code a},
   *       and {@code a = 0} gives {@code -(t + m expm1(-t/m))};
   *   <li>near-critical and underdamped ({@code D < 1/100}, so {@code a > 0.24/m}): {@code g =
   *       e^{-t/2m} (C + (t/2m) S)} with {@code C = cosh(βt)}, {@code S = sinh(βt)/(βt)}, {@code
   *       β = √D/(2m)}, continued to {@code cos} and {@code sin} for {@code D < 0};
   *   <li>{@code t = inf}: {@code -1/a} (the residual is gone), {@code -inf} at {@code a = 0}.
   * </ul>
   */
  static double momentumFactor(double a, double m, double t) {
    if (Double.isInfinite(t)) {
      return -1 / a;
    }
    double d = 1 - 4 * a * m;
    if (d >= 0.01) {
      double root = Math.sqrt(d);
      double q = -(1 + root) / 2;
      double s1 = a / q;
      double x = s1 * t;
      double slow = x == 0 ? t : Math.expm1(x) / s1;
      return -(slow - m / q * Math.expm1(q / m * t)) / root;
    }
    double decay = t / (2 * m);
    double g;
    if (decay * (1 - Math.sqrt(Math.max(d, 0))) > 800) {
      g = 0;
    } else {
      double bt = Math.sqrt(Math.abs(d)) * decay; // |β| t
      double c;
      double sc;
      if (d >= 0) {
        c = Math.cosh(bt);
        sc = bt == 0 ? 1 : Math.sinh(bt) / bt;
      } else {
        c = Math.cos(bt);
        sc = bt == 0 ? 1 : Math.sin(bt) / bt;
      }
      g = Math.exp(-decay) * (c + decay * sc);
    }
    return (g - 1) / a;
  }

  /** {@code (1 - e^{-2λτ})/λ} per eigenvalue ({@code 2τ} at {@code λ = 0}). */
  private double[] twiceDecay(double t) {
    double[] c = inverseExpm1(2 * t);
    for (int i = 0; i < n; i++) {
      c[i] = -c[i];
    }
    return c;
  }

  private double tau(double t) {
    return t * learningRate / ((double) n * outputs);
  }

  private void requirePositive() {
    if (!(eigenvalues.length == 0 || eigenvalues[0] > 0)) {
      throw Regularizer.notPositiveDefinite(kernel, diagReg, eigenvalues[0]);
    }
  }

  /** {@code V^T b} for an {@code n x K} row-major {@code b}. */
  public DenseMatrix project(double[] b) {
    try (DenseMatrix m = DenseMatrix.of(n, outputs, b)) {
      return Lapack.multiply(false, vt, false, m);
    }
  }

  /** {@code V^T (f_train_0 - y)}: the residual in the eigenbasis, shared by every time. */
  public DenseMatrix residual(double[] fxTrain0, double[] yTrain) {
    double[] r = new double[yTrain.length];
    for (int i = 0; i < r.length; i++) {
      r[i] = (fxTrain0 == null ? 0 : fxTrain0[i]) - yTrain[i];
    }
    return project(r);
  }

  /** {@code G_td V} for a block of {@code rows} test rows of the selected kernel. */
  public DenseMatrix rotate(double[] kTestTrain, int rows) {
    try (DenseMatrix k = DenseMatrix.of(rows, n, kTestTrain)) {
      return rotate(k);
    }
  }

  /** {@link #rotate(double[], int)} for test rows in native memory ({@code rows x n}). */
  public DenseMatrix rotate(DenseMatrix kTestTrain) {
    return Lapack.multiply(false, kTestTrain, true, vt);
  }

  /** The train outputs at {@code t}: {@code f_train_0 + V expm1(-λτ) V^T (f_train_0 - y)}. */
  public double[] trainOutputs(double t, double[] fxTrain0, DenseMatrix residual) {
    return trainOutputs(t, 0, fxTrain0, residual);
  }

  /**
   * The train outputs at {@code t} under momentum {@code mass} (0: {@link #trainOutputs(double,
   * double[], DenseMatrix)}): {@code f_train_0 + V diag(g(t) - 1) V^T (f_train_0 - y)}, {@code g}
   * per eigenmode as in {@link #momentumFactor}. No regularizer is added for {@code mass > 0}:
   * decompose with {@code diagReg = 0} for the dynamics of the kernel itself.
   */
  public double[] trainOutputs(double t, double mass, double[] fxTrain0, DenseMatrix residual) {
    try (DenseMatrix scaled = scaleRows(residual, momentumMinusOne(t, mass));
        DenseMatrix f = Lapack.multiply(true, vt, false, scaled)) {
      return plus(fxTrain0, f.toArray());
    }
  }

  /**
   * The test outputs at {@code t} for a block: {@code f_test_0 + P [expm1(-λτ)/λ] V^T (f_train_0
   * - y)} with {@code P = G_td V} from {@link #rotate}; {@code fxTest0} may be null (zeros).
   */
  public double[] testOutputs(double t, double[] fxTest0, DenseMatrix rotated, DenseMatrix residual) {
    return testOutputs(t, 0, fxTest0, rotated, residual);
  }

  /**
   * The test outputs at {@code t} under momentum {@code mass}: {@code f_test_0 + P diag((g(t) -
   * 1)/λ) V^T (f_train_0 - y)}. The test outputs obey {@code mass h'' + h' = -(lr/y.size) Θ_td
   * r(t)} from rest, with {@code r} the train residual; {@code h - h_0 = Θ_td Θ_dd^{-1} (r -
   * r_0)} solves it, and in the eigenbasis {@code (g - 1)/λ} has the finite limit {@code -(lr /
   * y.size)(t + mass expm1(-t/mass))} as {@code λ -> 0}.
   */
  public double[] testOutputs(double t, double mass, double[] fxTest0, DenseMatrix rotated,
      DenseMatrix residual) {
    try (DenseMatrix scaled = scaleRows(residual, inverseMomentum(t, mass));
        DenseMatrix f = Lapack.multiply(false, rotated, false, scaled)) {
      return plus(fxTest0, f.toArray());
    }
  }

  /**
   * The ensemble covariance at {@code t} over all {@code m} test inputs.
   *
   * @param ntk whether the decomposed kernel is the NTK (else the NNGP)
   * @param rotatedGet {@code G_td V} ({@code m x n})
   * @param rotatedNngp {@code K_td V} (the same matrix for the NNGP)
   * @param projectedNngp {@code V^T K_dd V} (NTK only)
   */
  public double[] covariance(double t, boolean ntk, DenseMatrix rotatedGet, DenseMatrix rotatedNngp,
      DenseMatrix projectedNngp, double[] kTestTestNngp, int m) {
    try (DenseMatrix ktt = DenseMatrix.of(m, m, kTestTestNngp)) {
      return covariance(t, ntk, rotatedGet, rotatedNngp, projectedNngp, ktt);
    }
  }

  /**
   * {@link #covariance(double, boolean, DenseMatrix, DenseMatrix, DenseMatrix, double[], int)} with
   * the test-test NNGP in native memory ({@code m x m}, not changed).
   */
  public double[] covariance(double t, boolean ntk, DenseMatrix rotatedGet, DenseMatrix rotatedNngp,
      DenseMatrix projectedNngp, DenseMatrix kTestTestNngp) {
    try (DenseMatrix cov = kTestTestNngp.copy()) {
      if (!ntk) {
        try (DenseMatrix qd = scaleColumns(rotatedNngp, twiceDecay(t))) {
          Lapack.gemm(false, qd, true, rotatedNngp, -1.0, 1.0, cov);
        }
        return cov.toArray();
      }
      double[] d = inverseExpm1(t);
      for (int i = 0; i < n; i++) {
        d[i] = -d[i];
      }
      try (DenseMatrix pd = scaleColumns(rotatedGet, d);
          DenseMatrix pdw = Lapack.multiply(false, pd, false, projectedNngp)) {
        Lapack.gemm(false, pdw, true, pd, 1.0, 1.0, cov);
        Lapack.gemm(false, pd, true, rotatedNngp, -1.0, 1.0, cov);
        Lapack.gemm(false, rotatedNngp, true, pd, -1.0, 1.0, cov);
      }
      return cov.toArray();
    }
  }

  /** {@code V^T K_dd V} for the unregularized NNGP {@code kdd}. */
  public DenseMatrix projectKernel(DenseMatrix kdd) {
    try (DenseMatrix vtk = Lapack.multiply(false, vt, false, kdd)) {
      return Lapack.multiply(false, vtk, true, vt);
    }
  }

  private static DenseMatrix scaleRows(DenseMatrix a, double[] s) {
    DenseMatrix out = a.copy();
    for (long i = 0; i < a.rows(); i++) {
      double[] row = a.getRows(i, 1);
      for (int j = 0; j < row.length; j++) {
        row[j] *= s[(int) i];
      }
      out.setRows(i, 1, row);
    }
    return out;
  }

  private static DenseMatrix scaleColumns(DenseMatrix a, double[] s) {
    DenseMatrix out = a.copy();
    for (long i = 0; i < a.rows(); i++) {
      double[] row = a.getRows(i, 1);
      for (int j = 0; j < row.length; j++) {
        row[j] *= s[j];
      }
      out.setRows(i, 1, row);
    }
    return out;
  }

  private static double[] plus(double[] a, double[] b) {
    if (a != null) {
      for (int i = 0; i < b.length; i++) {
        b[i] += a[i];
      }
    }
    return b;
  }

  /** Writes the decomposition under {@code directory} (for workers to {@link #read}). */
  public void write(Path directory) throws IOException {
    vt.write(directory.resolve("eigenvectors.f64"));
    ByteBuffer b = ByteBuffer.allocate(Double.BYTES * (n + 2)).order(ByteOrder.LITTLE_ENDIAN);
    b.putDouble(learningRate).putDouble(diagReg);
    for (double w : eigenvalues) {
      b.putDouble(w);
    }
    Files.write(directory.resolve("eigenvalues.f64"), b.array());
  }

  /** The decomposition {@link #write} left under {@code directory}. */
  public static MseDynamics read(Path directory, int n, int outputs, String kernel) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(directory.resolve("eigenvalues.f64")))
        .order(ByteOrder.LITTLE_ENDIAN);
    if (b.remaining() != Double.BYTES * (n + 2)) {
      throw new IOException(directory + ": eigenvalues of another problem");
    }
    double lr = b.getDouble();
    double reg = b.getDouble();
    double[] w = new double[n];
    for (int i = 0; i < n; i++) {
      w[i] = b.getDouble();
    }
    return new MseDynamics(n, outputs, lr, w, DenseMatrix.read(directory.resolve("eigenvectors.f64"), n, n),
        kernel, reg);
  }

  @Override
  public void close() {
    vt.close();
  }
}

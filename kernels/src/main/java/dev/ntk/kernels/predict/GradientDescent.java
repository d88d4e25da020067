package dev.ntk.kernels.predict;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.util.Arrays;
import org.hipparchus.ode.ODEState;
import org.hipparchus.ode.ODEStateAndDerivative;
import org.hipparchus.ode.OrdinaryDifferentialEquation;
import org.hipparchus.ode.nonstiff.DormandPrince853Integrator;

/**
 * Continuous gradient descent of an infinitely wide network on any differentiable {@link Loss},
 * integrated as an ODE in function space on the train and test outputs (neural-tangents' {@code
 * gradient_descent}), with Hipparchus' adaptive Dormand-Prince 8(5,3) solver:
 *
 * <pre>
 *   d f_train/dt = -lr Θ_dd ∇L(f_train),   d f_test/dt = -lr Θ_td ∇L(f_train),   f(0) = f_0.
 * </pre>
 *
 * <p>With a mass {@code m > 0} (momentum), the second-order ODE {@code m f'' + f' = -lr Θ
 * ∇L(f)} from rest ({@code f'(0) = 0}); {@code m = 0} is the first-order flow above.
 */
public final class GradientDescent {
  private GradientDescent() {}

  /** Train and test outputs at one time. */
  public record Outputs(double t, double[] train, double[] test) {}

  /**
   * Integrates from {@code t = 0} to each of {@code times} (finite, non-negative, any order).
   *
   * @param thetaDd the train-train NTK, {@code n x n}
   * @param thetaTd the test-train NTK, {@code m x n} ({@code m = 0} for train outputs only)
   * @param y the targets, {@code n x k}
   * @param fxTrain0 initial train outputs {@code n x k}, or null for zeros
   * @param fxTest0 initial test outputs {@code m x k}, or null for zeros
   * @param tolerance relative and absolute tolerance of the solver (e.g. 1e-10)
   */
  public static Outputs[] integrate(Loss loss, DenseMatrix thetaDd, DenseMatrix thetaTd, double[] y,
      int k, double learningRate, double mass, double[] fxTrain0, double[] fxTest0, double[] times,
      double tolerance) {
    int n = (int) thetaDd.rows();
    int m = (int) thetaTd.rows();
    if (y.length != (long) n * k || thetaTd.cols() != n || thetaDd.cols() != n) {
      throw new IllegalArgumentException("kernels " + thetaDd.rows() + "x" + thetaDd.cols() + ", "
          + thetaTd.rows() + "x" + thetaTd.cols() + " do not fit targets of " + y.length + " values in " + k + " columns");
    }
    if (!(mass >= 0) || Double.isInfinite(mass)) {
      throw new IllegalArgumentException("momentum (mass) must be a non-negative number, got " + mass);
    }
    if (!(learningRate > 0) || Double.isInfinite(learningRate)) {
      throw new IllegalArgumentException("learning_rate must be positive, got " + learningRate);
    }
    for (double t : times) {
      if (!(t >= 0) || Double.isInfinite(t)) {
        throw new IllegalArgumentException("gradient descent by ODE needs finite non-negative times, got " + t);
      }
    }
    int train = n * k;
    int outputs = (n + m) * k;
    double[] state = new double[mass > 0 ? 2 * outputs : outputs];
    if (fxTrain0 != null) {
      System.arraycopy(fxTrain0, 0, state, 0, train);
    }
    if (fxTest0 != null) {
      System.arraycopy(fxTest0, 0, state, train, m * k);
    }
    try (DenseMatrix kernel = stack(thetaDd, thetaTd, n, m);
        DenseMatrix grad = DenseMatrix.zeros(n, k);
        DenseMatrix force = DenseMatrix.zeros(n + m, k)) {
      OrdinaryDifferentialEquation ode = new OrdinaryDifferentialEquation() {
        @Override
        public int getDimension() {
          return state.length;
        }

        @Override
        public double[] computeDerivatives(double t, double[] s) {
          double[] f = Arrays.copyOf(s, train);
          grad.setRows(0, n, loss.gradient(f, y, n, k));
          Lapack.gemm(false, kernel, false, grad, -learningRate, 0.0, force);
          double[] dot = new double[s.length];
          double[] drive = force.toArray();
          if (mass == 0) {
            return drive;
          }
          System.arraycopy(s, outputs, dot, 0, outputs);           // f' = v
          for (int i = 0; i < outputs; i++) {
            dot[outputs + i] = (drive[i] - s[outputs + i]) / mass; // m v' = drive - v
          }
          return dot;
        }
      };
      double[] order = times.clone();
      Arrays.sort(order);
      DormandPrince853Integrator solver = new DormandPrince853Integrator(1e-12, Double.POSITIVE_INFINITY,
          tolerance, tolerance);
      ODEState current = new ODEState(0.0, state.clone());
      Outputs[] out = new Outputs[times.length];
      for (double t : order) {
        if (t > current.getTime()) {
          ODEStateAndDerivative next = solver.integrate(ode, current, t);
          current = new ODEState(next.getTime(), next.getPrimaryState());
        }
        double[] s = current.getPrimaryState();
        Outputs o = new Outputs(t, Arrays.copyOfRange(s, 0, train), Arrays.copyOfRange(s, train, outputs));
        for (int i = 0; i < times.length; i++) {
          if (times[i] == t) {
            out[i] = o;
          }
        }
      }
      return out;
    }
  }

  private static DenseMatrix stack(DenseMatrix top, DenseMatrix bottom, int n, int m) {
    DenseMatrix s = DenseMatrix.zeros(n + m, n);
    for (int i = 0; i < n; i++) {
      s.setRows(i, 1, top.getRows(i, 1));
    }
    for (int i = 0; i < m; i++) {
      s.setRows(n + i, 1, bottom.getRows(i, 1));
    }
    return s;
  }
}

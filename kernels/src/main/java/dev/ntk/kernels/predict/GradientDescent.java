package dev.ntk.kernels.predict;

import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.linalg.Lapack;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicReference;
import org.hipparchus.exception.MathIllegalArgumentException;
import org.hipparchus.exception.MathIllegalStateException;
import org.hipparchus.ode.ODEState;
import org.hipparchus.ode.ODEStateAndDerivative;
import org.hipparchus.ode.OrdinaryDifferentialEquation;
import org.hipparchus.ode.nonstiff.DormandPrince853Integrator;
import org.hipparchus.ode.sampling.ODEStateInterpolator;
import org.hipparchus.ode.sampling.ODEStepHandler;

/**
 * Continuous gradient descent of an infinitely wide network on any differentiable {@link Loss},
 * in function space on the train and test outputs (neural-tangents' {@code gradient_descent}):
 *
 * <pre>
 *   d f_train/dt = -lr Θ_dd ∇L(f_train),   d f_test/dt = -lr Θ_td ∇L(f_train),   f(0) = f_0,
 * </pre>
 *
 * <p>and with a mass {@code m > 0} (momentum) the second-order dynamics {@code m f'' + f' = -lr Θ
 * ∇L(f)} from rest ({@code f'(0) = 0}); {@code m = 0} is the first-order flow above. How each case
 * is solved, so that its work is bounded by something a user can reason about:
 *
 * <ul>
 *   <li><b>MSE</b> (any mass): in closed form through the eigendecomposition {@code Θ_dd = V
 *       diag(λ) V^T} ({@link MseDynamics}): per eigenmode, with {@code a = lr λ / (n k)}, the
 *       train residual's factor {@code g} solves {@code m g'' + g' + a g = 0}, {@code g(0) = 1},
 *       {@code g'(0) = 0} ({@code g = e^{-at}} at {@code m = 0}); {@code f_train(t) = f_train_0 +
 *       V diag(g - 1) V^T (f_train_0 - y)} and {@code f_test(t) = f_test_0 + Θ_td V diag((g -
 *       1)/λ) V^T (f_train_0 - y)}. No ODE, any time including {@code +inf} (which needs every
 *       eigenvalue positive); no regularizer is added to {@code Θ_dd}.
 *   <li><b>Any other loss, no momentum</b>: Hipparchus' adaptive Dormand-Prince 8(5,3) solver in
 *       logarithmic time {@code s = log(1 + t)}, {@code df/ds = (1 + t) df/dt}. Under softmax
 *       cross-entropy the outputs grow like {@code log t} as the softmax saturates and the
 *       gradient falls like {@code 1/t}: in {@code s} the solution and its Jacobian stay bounded,
 *       so the steps do not grow with {@code t} (times up to {@code 1e308} take a few hundred
 *       steps on small problems).
 *   <li><b>Any other loss, small mass</b>: the momentum dynamics is stiff (its fast time scale is
 *       {@code m}, the flow's {@code 1/R} with {@code R = lr ||Θ_dd||_∞ max_i Σ_c y_ic / n} a
 *       bound on the first-order flow's rates under cross-entropy, whose Hessian in {@code f} is
 *       below 1 per unit of target mass). Where {@code m R <= √tolerance} the outputs follow the
 *       slow manifold of the second-order dynamics to first order in {@code m} (singular
 *       perturbation): {@code f' = F(f) - m J(f) F(f)} ({@code F} the first-order flow, {@code J}
 *       its Jacobian, applied by a central difference) from {@code f_0 - m F(f_0)}, plus the
 *       initial layer {@code m e^{-t/m} F(f_0)}, integrated in logarithmic time as above. It
 *       differs from the second-order dynamics by {@code O((m R)^2)}, below the tolerance,
 *       relative to the outputs' change (exact for linear dynamics at that order: {@code g = (1 +
 *       am) e^{-a(1 + am)t} - am e^{-t/m} + O((am)^2)}).
 *   <li><b>Any other loss, larger mass</b>: the second-order system on {@code (f, f')} in time
 *       {@code t}. Its steps cannot exceed a few times {@code m}: a time {@code t} takes about
 *       {@code t / m} steps and more.
 * </ul>
 *
 * <p>Every integration stops after {@code maxSteps} solver steps ({@link #DEFAULT_MAX_STEPS} by
 * default) with a {@link LimitException} naming the time it reached and the time asked; the
 * solver failing to find a step above its minimum ends in the same exception. {@link #running}
 * tells a progress display where the integration running in this JVM stands.
 */
public final class GradientDescent {
  private GradientDescent() {}

  /** The solver steps an integration may take unless told otherwise. */
  public static final long DEFAULT_MAX_STEPS = 1_000_000;

  /** The smallest step the solver may take (in {@code t}, or in {@code s = log(1 + t)}). */
  private static final double MIN_STEP = 1e-12;

  /** Train and test outputs at one time. */
  public record Outputs(double t, double[] train, double[] test) {}

  /** Where a running integration stands: the time reached, the time asked and the steps taken. */
  public record Status(double reached, double asked, long steps) {}

  private static final AtomicReference<Status> RUNNING = new AtomicReference<>();

  /** The integration running in this JVM (the latest to report, if several), or null. */
  public static Status running() {
    return RUNNING.get();
  }

  /**
   * An integration that could not reach the time asked: the step limit ({@code max_steps}), or
   * a solver step below its minimum. The message is one line naming the time reached and the
   * time asked.
   */
  public static final class LimitException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final double reached;
    private final double asked;

    LimitException(String message, double reached, double asked) {
      super(message);
      this.reached = reached;
      this.asked = asked;
    }

    public double reached() {
      return reached;
    }

    public double asked() {
      return asked;
    }
  }

  /** How {@link #integrate} solves a problem (see the class comment). */
  enum Scheme {
    /** MSE through the eigendecomposition of the train kernel. */
    CLOSED_FORM,
    /** The first-order flow in {@code s = log(1 + t)}. */
    FLOW,
    /** The first-order flow in {@code t} (tests only: the former scheme). */
    FLOW_LINEAR_TIME,
    /** The first-order slow manifold of the momentum dynamics, in {@code s = log(1 + t)}. */
    SLOW_MANIFOLD,
    /** The second-order dynamics in {@code t}. */
    SECOND_ORDER
  }

  /** {@link #integrate(Loss, DenseMatrix, DenseMatrix, double[], int, double, double, double[], double[], double[], double, long)} with {@link #DEFAULT_MAX_STEPS}. */
  public static Outputs[] integrate(Loss loss, DenseMatrix thetaDd, DenseMatrix thetaTd, double[] y,
      int k, double learningRate, double mass, double[] fxTrain0, double[] fxTest0, double[] times,
      double tolerance) {
    return integrate(loss, thetaDd, thetaTd, y, k, learningRate, mass, fxTrain0, fxTest0, times, tolerance,
        DEFAULT_MAX_STEPS);
  }

  /**
   * The outputs at each of {@code times} (non-negative, any order; {@code +inf} under MSE only).
   *
   * @param thetaDd the train-train NTK, {@code n x n}
   * @param thetaTd the test-train NTK, {@code m x n} ({@code m = 0} for train outputs only)
   * @param y the targets, {@code n x k}
   * @param fxTrain0 initial train outputs {@code n x k}, or null for zeros
   * @param fxTest0 initial test outputs {@code m x k}, or null for zeros
   * @param tolerance relative and absolute tolerance of the solver (e.g. 1e-10)
   * @param maxSteps the solver steps allowed, over all the times
   * @throws LimitException when the solver cannot reach the largest time within {@code maxSteps}
   */
  public static Outputs[] integrate(Loss loss, DenseMatrix thetaDd, DenseMatrix thetaTd, double[] y,
      int k, double learningRate, double mass, double[] fxTrain0, double[] fxTest0, double[] times,
      double tolerance, long maxSteps) {
    check(thetaDd, thetaTd, y, k, learningRate, mass, times, maxSteps);
    Scheme scheme = scheme(loss, thetaDd, y, k, learningRate, mass, tolerance);
    for (double t : times) {
      if (Double.isInfinite(t) && scheme != Scheme.CLOSED_FORM) {
        throw new IllegalArgumentException("gradient descent by ODE needs finite non-negative times, got " + t);
      }
    }
    return integrate(scheme, loss, thetaDd, thetaTd, y, k, learningRate, mass, fxTrain0, fxTest0, times,
        tolerance, maxSteps);
  }

  private static void check(DenseMatrix thetaDd, DenseMatrix thetaTd, double[] y, int k, double learningRate,
      double mass, double[] times, long maxSteps) {
    int n = (int) thetaDd.rows();
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
    if (maxSteps < 1) {
      throw new IllegalArgumentException("max_steps must be positive, got " + maxSteps);
    }
    for (double t : times) {
      if (!(t >= 0)) {
        throw new IllegalArgumentException("gradient descent needs non-negative times, got " + t);
      }
    }
  }

  /** The scheme {@link #integrate} picks. */
  static Scheme scheme(Loss loss, DenseMatrix thetaDd, double[] y, int k, double learningRate, double mass,
      double tolerance) {
    if (loss == Loss.MSE) {
      return Scheme.CLOSED_FORM;
    }
    if (mass == 0) {
      return Scheme.FLOW;
    }
    if (loss == Loss.CROSS_ENTROPY && mass * rateBound(thetaDd, y, k, learningRate) <= Math.sqrt(tolerance)) {
      return Scheme.SLOW_MANIFOLD;
    }
    return Scheme.SECOND_ORDER;
  }

  /**
   * A bound {@code R} on the rates of the first-order flow under softmax cross-entropy: {@code lr
   * ||Θ_dd||_∞ max_i |Σ_c y_ic| / n} (the row-sum norm bounds the largest eigenvalue; the
   * Hessian of a row's loss in its outputs, {@code S (diag p - p p^T)}, is below {@code S}).
   */
  static double rateBound(DenseMatrix thetaDd, double[] y, int k, double learningRate) {
    int n = (int) thetaDd.rows();
    double norm = 0;
    for (int i = 0; i < n; i++) {
      double sum = 0;
      for (double v : thetaDd.getRows(i, 1)) {
        sum += Math.abs(v);
      }
      norm = Math.max(norm, sum);
    }
    double mass = 0;
    for (int i = 0; i < n; i++) {
      double s = 0;
      for (int c = 0; c < k; c++) {
        s += y[i * k + c];
      }
      mass = Math.max(mass, Math.abs(s));
    }
    return learningRate * norm * mass / Math.max(n, 1);
  }

  /** {@link #integrate} with the scheme given (package-private: tests compare the schemes). */
  static Outputs[] integrate(Scheme scheme, Loss loss, DenseMatrix thetaDd, DenseMatrix thetaTd, double[] y,
      int k, double learningRate, double mass, double[] fxTrain0, double[] fxTest0, double[] times,
      double tolerance, long maxSteps) {
    check(thetaDd, thetaTd, y, k, learningRate, mass, times, maxSteps);
    if (scheme == Scheme.CLOSED_FORM) {
      if (loss != Loss.MSE) {
        throw new IllegalArgumentException("the closed form is MSE's");
      }
      return closedForm(thetaDd, thetaTd, y, k, learningRate, mass, fxTrain0, fxTest0, times);
    }
    return new Ode(scheme, loss, thetaDd, thetaTd, y, k, learningRate, mass, fxTrain0, fxTest0, tolerance,
        maxSteps).solve(times);
  }

  private static Outputs[] closedForm(DenseMatrix thetaDd, DenseMatrix thetaTd, double[] y, int k,
      double learningRate, double mass, double[] fxTrain0, double[] fxTest0, double[] times) {
    int m = (int) thetaTd.rows();
    try (MseDynamics dyn = MseDynamics.decompose(thetaDd.copy(), k, learningRate, 0.0, "ntk");
        DenseMatrix residual = dyn.residual(fxTrain0, y);
        DenseMatrix rotated = m == 0 ? null : dyn.rotate(thetaTd.toArray(), m)) {
      Outputs[] out = new Outputs[times.length];
      for (int i = 0; i < times.length; i++) {
        double t = times[i];
        double[] train = dyn.trainOutputs(t, mass, fxTrain0, residual);
        double[] test = m == 0 ? new double[0] : dyn.testOutputs(t, mass, fxTest0, rotated, residual);
        out[i] = new Outputs(t, train, test);
      }
      return out;
    }
  }

  /** One integration by ODE. */
  private static final class Ode {
    private final Scheme scheme;
    private final Loss loss;
    private final double[] y;
    private final int n;
    private final int k;
    private final int train;
    private final int outputs;
    private final double learningRate;
    private final double mass;
    private final double[] f0;
    private final double tolerance;
    private final long maxSteps;
    private final DenseMatrix kernel;
    private final DenseMatrix grad;
    private final DenseMatrix force;

    Ode(Scheme scheme, Loss loss, DenseMatrix thetaDd, DenseMatrix thetaTd, double[] y, int k,
        double learningRate, double mass, double[] fxTrain0, double[] fxTest0, double tolerance, long maxSteps) {
      this.scheme = scheme;
      this.loss = loss;
      this.y = y;
      this.n = (int) thetaDd.rows();
      this.k = k;
      int m = (int) thetaTd.rows();
      this.train = n * k;
      this.outputs = (n + m) * k;
      this.learningRate = learningRate;
      this.mass = mass;
      this.tolerance = tolerance;
      this.maxSteps = maxSteps;
      this.f0 = new double[outputs];
      if (fxTrain0 != null) {
        System.arraycopy(fxTrain0, 0, f0, 0, train);
      }
      if (fxTest0 != null) {
        System.arraycopy(fxTest0, 0, f0, train, m * k);
      }
      this.kernel = stack(thetaDd, thetaTd, n, m);
      this.grad = DenseMatrix.zeros(n, k);
      this.force = DenseMatrix.zeros(n + m, k);
    }

    /** The first-order flow {@code F(f) = -lr Θ ∇L(f_train)} on all outputs. */
    private double[] flow(double[] f) {
      grad.setRows(0, n, loss.gradient(Arrays.copyOf(f, train), y, n, k));
      Lapack.gemm(false, kernel, false, grad, -learningRate, 0.0, force);
      return force.toArray();
    }

    /** {@code F(f) - m J(f) F(f)}, the directional derivative by a central difference. */
    private double[] slow(double[] f) {
      double[] u = flow(f);
      double norm = 0;
      for (int i = 0; i < train; i++) {
        norm = Math.max(norm, Math.abs(u[i]));
      }
      if (norm == 0) {
        return u;
      }
      double scale = 0;
      for (int i = 0; i < train; i++) {
        scale = Math.max(scale, Math.abs(f[i]));
      }
      double delta = 1e-4 * Math.max(1, scale) / norm;
      double[] plus = f.clone();
      double[] minus = f.clone();
      for (int i = 0; i < train; i++) {
        plus[i] += delta * u[i];
        minus[i] -= delta * u[i];
      }
      double[] fp = flow(plus);
      double[] fm = flow(minus);
      for (int i = 0; i < outputs; i++) {
        u[i] -= mass * (fp[i] - fm[i]) / (2 * delta);
      }
      return u;
    }

    private boolean logTime() {
      return scheme == Scheme.FLOW || scheme == Scheme.SLOW_MANIFOLD;
    }

    /** The solver's variable of time {@code t}. */
    private double variable(double t) {
      return logTime() ? Math.log1p(t) : t;
    }

    /** The time of the solver's variable. */
    private double time(double v) {
      return logTime() ? Math.expm1(v) : v;
    }

    Outputs[] solve(double[] times) {
      try (kernel; grad; force) {
        int dimension = scheme == Scheme.SECOND_ORDER ? 2 * outputs : outputs;
        double[] start = Arrays.copyOf(f0, dimension);
        double[] force0 = null;
        if (scheme == Scheme.SLOW_MANIFOLD) {
          force0 = flow(f0);
          for (int i = 0; i < outputs; i++) {
            start[i] -= mass * force0[i];
          }
        }
        OrdinaryDifferentialEquation ode = new OrdinaryDifferentialEquation() {
          @Override
          public int getDimension() {
            return dimension;
          }

          @Override
          public double[] computeDerivatives(double v, double[] s) {
            switch (scheme) {
              case FLOW_LINEAR_TIME:
                return flow(s);
              case FLOW:
              case SLOW_MANIFOLD: {
                double[] d = scheme == Scheme.FLOW ? flow(s) : slow(s);
                double stretch = Math.exp(v); // dt/ds = 1 + t
                for (int i = 0; i < d.length; i++) {
                  d[i] *= stretch;
                }
                return d;
              }
              default: {
                double[] drive = flow(s);
                double[] dot = new double[s.length];
                System.arraycopy(s, outputs, dot, 0, outputs);           // f' = v
                for (int i = 0; i < outputs; i++) {
                  dot[outputs + i] = (drive[i] - s[outputs + i]) / mass; // m v' = drive - v
                }
                return dot;
              }
            }
          }
        };
        double[] order = times.clone();
        Arrays.sort(order);
        double last = order.length == 0 ? 0 : order[order.length - 1];
        DormandPrince853Integrator solver = new DormandPrince853Integrator(MIN_STEP, Double.POSITIVE_INFINITY,
            tolerance, tolerance);
        long[] steps = {0};
        solver.addStepHandler(new ODEStepHandler() {
          @Override
          public void handleStep(ODEStateInterpolator interpolator) {
            double reached = time(interpolator.getCurrentState().getTime());
            if (++steps[0] >= maxSteps && reached < last) {
              throw new StepLimit(reached);
            }
            RUNNING.set(new Status(reached, last, steps[0]));
          }
        });
        ODEState current = new ODEState(0.0, start);
        Outputs[] out = new Outputs[times.length];
        RUNNING.set(new Status(0, last, 0));
        try {
          for (double t : order) {
            double target = variable(t);
            if (target > current.getTime()) {
              ODEStateAndDerivative next;
              try {
                next = solver.integrate(ode, current, target);
              } catch (StepLimit e) {
                throw new LimitException(String.format(Locale.ROOT, "gradient descent by ODE (%s) reached t = "
                    + "%s of t = %s within %d solver steps: allow more (max_steps) or ask for an earlier "
                    + "time%s", describe(), number(e.reached), number(t), maxSteps, stiffness()), e.reached, t);
              } catch (MathIllegalArgumentException | MathIllegalStateException e) {
                double reached = time(current.getTime());
                throw new LimitException(String.format(Locale.ROOT, "gradient descent by ODE (%s) stopped "
                    + "at t = %s of t = %s: %s%s", describe(), number(reached), number(t), e.getMessage(), stiffness()),
                    reached, t);
              }
              current = new ODEState(next.getTime(), next.getPrimaryState());
            }
            double[] s = current.getPrimaryState();
            double[] f = Arrays.copyOf(s, outputs);
            if (t == 0) {
              f = f0.clone();
            } else if (scheme == Scheme.SLOW_MANIFOLD) {
              double layer = mass * Math.exp(-t / mass);
              for (int i = 0; i < outputs; i++) {
                f[i] += layer * force0[i];
              }
            }
            Outputs o = new Outputs(t, Arrays.copyOfRange(f, 0, train), Arrays.copyOfRange(f, train, outputs));
            for (int i = 0; i < times.length; i++) {
              if (times[i] == t) {
                out[i] = o;
              }
            }
          }
        } finally {
          RUNNING.set(null);
        }
        return out;
      }
    }

    private String describe() {
      return switch (scheme) {
        case FLOW -> "first-order flow in log(1 + t)";
        case FLOW_LINEAR_TIME -> "first-order flow";
        case SLOW_MANIFOLD -> "momentum " + mass + ", its slow manifold in log(1 + t)";
        default -> "momentum " + mass;
      };
    }

    private String stiffness() {
      return scheme == Scheme.SECOND_ORDER
          ? "; with momentum the solver's steps stay below a few times the mass, so t / momentum steps at least"
          : "";
    }
  }

  /** {@code x} to 6 significant digits, without trailing zeros: {@code 100}, {@code 1.5e+15}. */
  static String number(double x) {
    String s = String.format(Locale.ROOT, "%.6g", x);
    int e = s.indexOf('e');
    String mantissa = e < 0 ? s : s.substring(0, e);
    if (mantissa.contains(".")) {
      mantissa = mantissa.replaceAll("0+$", "").replaceAll("\\.$", "");
    }
    return e < 0 ? mantissa : mantissa + s.substring(e);
  }

  /** Thrown by the step handler to stop at the step limit. */
  private static final class StepLimit extends RuntimeException {
    private static final long serialVersionUID = 1L;
    final double reached;

    StepLimit(double reached) {
      super(null, null, false, false);
      this.reached = reached;
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

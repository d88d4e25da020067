package dev.ntk.kernels.predict;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.Layer;
import dev.ntk.kernels.Stax;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.linalg.DenseMatrix;
import dev.ntk.kernels.predict.GradientDescent.Outputs;
import dev.ntk.kernels.predict.GradientDescent.Scheme;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The ODE modes end, within a bound a user can reason about: the closed form of MSE with momentum
 * against the second-order ODE, cross-entropy at huge times, a tiny mass, the step limit. The
 * problem is the sine example's ({@code examples/sine}: its model, its 5 training inputs, 50 test
 * inputs on [-π, π]); the {@code @Timeout}s fail the cases that ran for ever (or for minutes)
 * before.
 */
class GradientDescentTest {
  private static final Layer MODEL = Stax.serial(Stax.dense(2048, 1.5, 0.05), Stax.erf(),
      Stax.dense(2048, 1.5, 0.05), Stax.erf(), Stax.dense(1, 1.5, 0.05));
  private static final double[] X_TRAIN = {2.86514324198955, -1.836689355932036, 2.063680077375216,
      -2.2036254112162688, 0.08045377785829455};
  private static final double[] Y_SINE = {0.28558991, -0.88055397, 0.96676568, -0.75883917, 0.03529015};
  /** One-hot labels of the sine's sign (K = 2) and of its third (K = 3). */
  private static final double[] Y_TWO = {0, 1, 1, 0, 0, 1, 1, 0, 0, 1};
  private static final double[] Y_THREE = {0, 1, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0};
  private static final int N = 5;
  private static final int M = 50;

  private static NDManager manager;
  private static double[] dd;
  private static double[] td;

  @BeforeAll
  static void kernels() {
    manager = Tensors.newManager();
    double[] test = new double[M];
    for (int i = 0; i < M; i++) {
      test[i] = -Math.PI + 2 * Math.PI * i / (M - 1);
    }
    NDArray x = Tensors.create(manager, X_TRAIN, new Shape(N, 1), DataType.FLOAT64);
    NDArray xt = Tensors.create(manager, test, new Shape(M, 1), DataType.FLOAT64);
    KernelFn kf = MODEL.kernelFn();
    dd = Tensors.toDoubles(kf.apply(x).ntk());
    td = Tensors.toDoubles(kf.apply(xt, x).ntk());
  }

  @AfterAll
  static void close() {
    manager.close();
  }

  private static Outputs run(Scheme scheme, Loss loss, double[] y, double mass, double t, double[] f0,
      double tolerance) {
    return run(scheme, loss, y, mass, new double[] {t}, f0, tolerance, GradientDescent.DEFAULT_MAX_STEPS)[0];
  }

  /** With {@code scheme} null, the scheme {@link GradientDescent#integrate} picks. */
  private static Outputs[] run(Scheme scheme, Loss loss, double[] y, double mass, double[] times, double[] f0,
      double tolerance, long maxSteps) {
    try (DenseMatrix kdd = DenseMatrix.of(N, N, dd); DenseMatrix ktd = DenseMatrix.of(M, N, td)) {
      int k = y.length / N;
      return scheme == null
          ? GradientDescent.integrate(loss, kdd, ktd, y, k, 1.0, mass, f0, null, times, tolerance, maxSteps)
          : GradientDescent.integrate(scheme, loss, kdd, ktd, y, k, 1.0, mass, f0, null, times, tolerance, maxSteps);
    }
  }

  private static Scheme scheme(Loss loss, double[] y, double mass) {
    try (DenseMatrix kdd = DenseMatrix.of(N, N, dd)) {
      return GradientDescent.scheme(loss, kdd, y, y.length / N, 1.0, mass, 1e-10);
    }
  }

  private static double maxDiff(double[] a, double[] b) {
    assertEquals(a.length, b.length);
    double d = 0;
    for (int i = 0; i < a.length; i++) {
      d = Math.max(d, Math.abs(a[i] - b[i]));
    }
    return d;
  }

  private static void assertClose(Outputs expected, Outputs actual, double tolerance, String what) {
    double train = maxDiff(expected.train(), actual.train());
    double test = maxDiff(expected.test(), actual.test());
    assertTrue(train <= tolerance && test <= tolerance, what + ": train off by " + train + ", test by " + test);
  }

  /**
   * The closed form of MSE with momentum (over-, under- and, at m = 0.05, partly overdamped
   * modes: {@code 4 a m} spans 0.0004 to 12) is the second-order ODE, from given initial outputs.
   */
  @Test
  void momentumClosedFormIsTheSecondOrderOde() {
    double[] f0 = {0.3, -0.2, 0.1, 0.5, -0.4};
    for (double mass : new double[] {0.5, 0.05}) {
      for (double t : new double[] {0.3, 2, 10}) {
        Outputs closed = run(Scheme.CLOSED_FORM, Loss.MSE, Y_SINE, mass, t, f0, 1e-10);
        Outputs ode = run(Scheme.SECOND_ORDER, Loss.MSE, Y_SINE, mass, t, f0, 1e-12);
        assertClose(ode, closed, 1e-8, "mass " + mass + ", t " + t);
      }
    }
    Outputs flow = run(Scheme.FLOW_LINEAR_TIME, Loss.MSE, Y_SINE, 0, 10, f0, 1e-12);   // and m = 0
    assertClose(flow, run(null, Loss.MSE, Y_SINE, 0, 10, f0, 1e-10), 1e-8, "mass 0");
  }

  /** The scalar mode factor against a fine RK4 solution, across its branches (critical included). */
  @Test
  void momentumFactorSolvesTheDampedOscillator() {
    double m = 0.2;
    for (double a : new double[] {0, 0.3, 1.2375, 1.25, 1.2625, 1.3, 40}) {  // 4am = 1 at a = 1.25
      for (double t : new double[] {0.01, 0.7, 5}) {
        double g = 1;
        double v = 0;
        int steps = 200_000;
        double h = t / steps;
        for (int i = 0; i < steps; i++) {       // m g'' = -g' - a g
          double k1g = v;
          double k1v = (-v - a * g) / m;
          double k2g = v + h / 2 * k1v;
          double k2v = (-(v + h / 2 * k1v) - a * (g + h / 2 * k1g)) / m;
          double k3g = v + h / 2 * k2v;
          double k3v = (-(v + h / 2 * k2v) - a * (g + h / 2 * k2g)) / m;
          double k4g = v + h * k3v;
          double k4v = (-(v + h * k3v) - a * (g + h * k3g)) / m;
          g += h / 6 * (k1g + 2 * k2g + 2 * k3g + k4g);
          v += h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v);
        }
        double factor = MseDynamics.momentumFactor(a, m, t);
        double expected = a == 0 ? -(t + m * Math.expm1(-t / m)) : (g - 1) / a;
        assertEquals(expected, factor, 1e-9 * Math.max(1, Math.abs(expected)), "a " + a + ", t " + t);
      }
    }
    assertEquals(-1 / 3.0, MseDynamics.momentumFactor(3, 0.2, Double.POSITIVE_INFINITY), 0);
    for (double t : new double[] {0.01, 0.7, 5}) {         // a -> 0 is continuous
      assertEquals(MseDynamics.momentumFactor(0, m, t), MseDynamics.momentumFactor(1e-9, m, t), 1e-8 * t * t);
    }
  }

  /**
   * {@code --momentum 1e-6}, {@code 1e-9} and {@code 1e-12} under MSE ended in millions of steps,
   * never, and with Hipparchus' "minimal step size" error: the closed form ends at once and tends
   * to the gradient flow ({@link MseDynamics}) like the mass.
   */
  @Test
  @Timeout(value = 10, unit = TimeUnit.SECONDS)
  void tinyMomentumUnderMseIsTheGradientFlowInTheLimit() {
    Outputs flow = run(null, Loss.MSE, Y_SINE, 0, 10, null, 1e-10);
    Outputs reference;
    try (DenseMatrix kdd = DenseMatrix.of(N, N, dd);
        MseDynamics dyn = MseDynamics.decompose(kdd.copy(), 1, 1.0, 0.0, "ntk");
        DenseMatrix residual = dyn.residual(null, Y_SINE);
        DenseMatrix rotated = dyn.rotate(td, M)) {
      reference = new Outputs(10, dyn.trainOutputs(10, null, residual), dyn.testOutputs(10, null, rotated, residual));
    }
    assertClose(reference, flow, 1e-12, "mass 0");
    double previous = Double.POSITIVE_INFINITY;
    for (double mass : new double[] {1e-6, 1e-9, 1e-12}) {
      assertEquals(Scheme.CLOSED_FORM, scheme(Loss.MSE, Y_SINE, mass));
      Outputs heavy = run(null, Loss.MSE, Y_SINE, mass, 10, null, 1e-10);
      double d = Math.max(maxDiff(flow.train(), heavy.train()), maxDiff(flow.test(), heavy.test()));
      assertTrue(d < 1e3 * mass + 1e-12 && d < previous, "mass " + mass + ": " + d + " from the flow");
      previous = d;
    }
    Outputs limit = run(null, Loss.MSE, Y_SINE, 0.5, Double.POSITIVE_INFINITY, null, 1e-10);
    assertEquals(0, maxDiff(Y_SINE, limit.train()), 1e-9, "the fixed point fits the targets");
  }

  /** In log(1 + t) the flow is the former integration in t at a moderate time. */
  @Test
  void logTimeIsTheFlow() {
    for (double[] y : new double[][] {Y_TWO, Y_THREE}) {
      Outputs log = run(Scheme.FLOW, Loss.CROSS_ENTROPY, y, 0, 10, null, 1e-10);
      Outputs linear = run(Scheme.FLOW_LINEAR_TIME, Loss.CROSS_ENTROPY, y, 0, 10, null, 1e-12);
      assertClose(linear, log, 1e-8, "K " + y.length / N);
    }
  }

  /**
   * Cross-entropy at {@code t = 1e15} and {@code 1e308}: before, the steps grew with {@code t}
   * (K = 3: 370,000 steps to 1e15, and 1e308 never ended) and the K = 2 answer at 1e308 had lost
   * the classes' symmetry ({@code 1585, -44}). Now both end in seconds; for K = 2 from zero the
   * two outputs stay opposite, and the outputs grow like {@code log t}.
   */
  @Test
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void crossEntropyAtHugeTimesEnds() {
    Outputs[] two = run(null, Loss.CROSS_ENTROPY, Y_TWO, 0, new double[] {1e15, 1e150, 1e308}, null, 1e-10,
        GradientDescent.DEFAULT_MAX_STEPS);
    for (Outputs o : two) {
      for (int i = 0; i < M; i++) {
        assertEquals(0, o.test()[2 * i] + o.test()[2 * i + 1], 1e-9 * Math.abs(o.test()[2 * i]), "t " + o.t());
      }
    }
    // log-linear growth: the change from 1e150 to 1e308 is (308 - 150)/(150 - 15) of the one before
    double early = two[1].train()[0] - two[0].train()[0];
    double late = two[2].train()[0] - two[1].train()[0];
    assertEquals(158.0 / 135, late / early, 0.02);
    Outputs[] three = run(null, Loss.CROSS_ENTROPY, Y_THREE, 0, new double[] {1e15, 1e308}, null, 1e-10,
        GradientDescent.DEFAULT_MAX_STEPS);
    for (Outputs o : three) {
      for (int i = 0; i < N; i++) {     // each train point's own class wins
        int label = Y_THREE[3 * i] == 1 ? 0 : Y_THREE[3 * i + 1] == 1 ? 1 : 2;
        for (int c = 0; c < 3; c++) {
          assertTrue(c == label || o.train()[3 * i + c] < o.train()[3 * i + label] - 10, "t " + o.t());
        }
      }
    }
  }

  /**
   * Cross-entropy with momentum 1e-8 ran for ever (steps of about the mass): its slow manifold
   * ends at once. At a mass where the second-order ODE is affordable (1e-3, {@code m R} about
   * 1e-2), the slow manifold agrees with it to {@code O((m R)^2)}, far closer than the plain flow.
   */
  @Test
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void smallMomentumUnderCrossEntropyFollowsTheSlowManifold() {
    assertEquals(Scheme.SLOW_MANIFOLD, scheme(Loss.CROSS_ENTROPY, Y_TWO, 1e-8));
    assertEquals(Scheme.SECOND_ORDER, scheme(Loss.CROSS_ENTROPY, Y_TWO, 1e-3));
    Outputs flow = run(null, Loss.CROSS_ENTROPY, Y_TWO, 0, 10, null, 1e-10);
    Outputs tiny = run(null, Loss.CROSS_ENTROPY, Y_TWO, 1e-8, 10, null, 1e-10);
    assertTrue(maxDiff(flow.test(), tiny.test()) < 1e-6, "mass 1e-8 is nearly the flow");
    for (double t : new double[] {0.01, 1, 10}) {
      Outputs second = run(Scheme.SECOND_ORDER, Loss.CROSS_ENTROPY, Y_TWO, 1e-3, t, null, 1e-11);
      Outputs slow = run(Scheme.SLOW_MANIFOLD, Loss.CROSS_ENTROPY, Y_TWO, 1e-3, t, null, 1e-11);
      Outputs plain = run(Scheme.FLOW, Loss.CROSS_ENTROPY, Y_TWO, 0, t, null, 1e-11);
      double slowError = maxDiff(second.test(), slow.test());
      double plainError = maxDiff(second.test(), plain.test());
      assertTrue(slowError < plainError / 20, "t " + t + ": slow manifold " + slowError + ", flow " + plainError);
    }
    Outputs zero = run(null, Loss.CROSS_ENTROPY, Y_TWO, 1e-8, 0, null, 1e-10);
    assertEquals(0, maxDiff(new double[2 * M], zero.test()), 0, "t = 0 is the start");
  }

  /** The step limit ends the integration with the time reached and the time asked. */
  @Test
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void stepLimitNamesTheTimeReached() {
    var e = assertThrows(GradientDescent.LimitException.class, () -> run(null, Loss.CROSS_ENTROPY, Y_TWO, 1e-3,
        new double[] {5, 100}, null, 1e-10, 1000));
    assertTrue(e.reached() > 0 && e.reached() < 5 && e.asked() == 5, e.getMessage());
    assertTrue(e.getMessage().contains("of t = 5 within 1000 solver steps") && e.getMessage().contains("max_steps"),
        e.getMessage());
    assertNull(GradientDescent.running(), "no integration left running");
    assertThrows(IllegalArgumentException.class, () -> run(null, Loss.CROSS_ENTROPY, Y_TWO, 0, new double[] {1},
        null, 1e-10, 0));
    assertThrows(IllegalArgumentException.class, () -> run(null, Loss.CROSS_ENTROPY, Y_TWO, 0,
        new double[] {Double.POSITIVE_INFINITY}, null, 1e-10, 10));
  }

  /** The solver's minimal step size is the same one-line refusal, not Hipparchus' exception. */
  @Test
  @Timeout(value = 20, unit = TimeUnit.SECONDS)
  void minimalStepSizeIsALimit() {
    Loss stiff = (f, y, n, k) -> {   // a custom loss (no bound known): the second-order ODE
      double[] g = new double[f.length];
      for (int i = 0; i < g.length; i++) {
        g[i] = f[i] - y[i];
      }
      return g;
    };
    var e = assertThrows(GradientDescent.LimitException.class, () -> run(null, stiff, Y_SINE, 1e-13,
        new double[] {1}, null, 1e-10, GradientDescent.DEFAULT_MAX_STEPS));
    assertTrue(e.getMessage().contains("of t = 1: minimal step size"), e.getMessage());
    assertNotNull(e.getMessage());
  }

  /** Cross-entropy's gradient keeps its precision where the softmax rounds to one. */
  @Test
  void crossEntropyGradientIsPreciseWhenSaturated() {
    double[] g = Loss.CROSS_ENTROPY.gradient(new double[] {40, -40, -45, 3}, new double[] {1, 0, 0, 1}, 2, 2);
    assertEquals(-Math.exp(-80) / 2, g[0], 1e-12 * Math.exp(-80));
    assertEquals(Math.exp(-80) / 2, g[1], 1e-12 * Math.exp(-80));
    assertEquals(Math.exp(-48) / 2, g[2], 1e-12 * Math.exp(-48));
    assertEquals(-Math.exp(-48) / 2, g[3], 1e-12 * Math.exp(-48));
  }
}

package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.SpecialFunctions;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code ElementwiseNumerical} against a direct scalar transcription of neural-tangents' rule,
 * {@code Elementwise} against an independent adaptive integration, both backends against each
 * other, a wide finite network, the derivatives against finite differences, and model files.
 */
class ElementwiseQuadratureTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static double logistic(double x) {
    return 1 / (1 + Math.exp(-x));
  }

  private static double normalCdf(double x) {
    return 0.5 * SpecialFunctions.erfc(-x / Math.sqrt(2));
  }

  private static final double ALPHA = 1.6732632423543772848170429916717;
  private static final double SCALE = 1.0507009873554804934193349852946;

  /** Each named function and its derivative, written here from their textbook definitions. */
  private static final Map<String, DoubleUnaryOperator[]> FUNCTIONS = Map.ofEntries(
      Map.entry("tanh", new DoubleUnaryOperator[] {Math::tanh, x -> 1 / (Math.cosh(x) * Math.cosh(x))}),
      Map.entry("sigmoid", new DoubleUnaryOperator[] {ElementwiseQuadratureTest::logistic,
          x -> logistic(x) * logistic(-x)}),
      Map.entry("softplus", new DoubleUnaryOperator[] {x -> x > 30 ? x : Math.log1p(Math.exp(x)),
          ElementwiseQuadratureTest::logistic}),
      Map.entry("swish", new DoubleUnaryOperator[] {x -> x * logistic(x),
          x -> logistic(x) + x * logistic(x) * logistic(-x)}),
      Map.entry("elu", new DoubleUnaryOperator[] {x -> x > 0 ? x : Math.expm1(x), x -> x > 0 ? 1 : Math.exp(x)}),
      Map.entry("selu", new DoubleUnaryOperator[] {x -> SCALE * (x > 0 ? x : ALPHA * Math.expm1(x)),
          x -> SCALE * (x > 0 ? 1 : ALPHA * Math.exp(x))}),
      Map.entry("gelu", new DoubleUnaryOperator[] {x -> x * normalCdf(x),
          x -> normalCdf(x) + x * Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI)}),
      Map.entry("erf", new DoubleUnaryOperator[] {SpecialFunctions::erf,
          x -> 2 / Math.sqrt(Math.PI) * Math.exp(-x * x)}),
      Map.entry("sin", new DoubleUnaryOperator[] {Math::sin, Math::cos}),
      Map.entry("cos", new DoubleUnaryOperator[] {Math::cos, x -> -Math.sin(x)}),
      Map.entry("relu", new DoubleUnaryOperator[] {x -> Math.max(x, 0), x -> x > 0 ? 1 : 0}),
      Map.entry("softsign", new DoubleUnaryOperator[] {x -> x / (1 + Math.abs(x)),
          x -> 1 / ((1 + Math.abs(x)) * (1 + Math.abs(x)))}));

  @Test
  void gaussHermiteNodesAreScipysAndExactForPolynomials() {
    double[][] rule = ElementwiseQuadrature.gaussHermite(25);
    // scipy.special.roots_hermite(25): its first node and weight, and the middle weight.
    assertEquals(-6.164272434052451, rule[0][0], 1e-14);
    assertEquals(2.711923514038378e-17, rule[1][0], 1e-29);
    assertEquals(0.4398687221694849, rule[1][12], 1e-15);
    assertEquals(0.0, rule[0][12]);
    for (int n : new int[] {1, 2, 5, 25, 60}) {
      double[][] r = ElementwiseQuadrature.gaussHermite(n);
      // Exact for x^(2k), 2k <= 2n - 1: Gamma(k + 1/2) = (2k - 1)!! sqrt(pi) / 2^k.
      double moment = Math.sqrt(Math.PI);
      for (int k = 0; 2 * k <= 2 * n - 1 && k <= 20; k++) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
          sum += r[1][i] * Math.pow(r[0][i], 2 * k);
        }
        assertEquals(moment, sum, 1e-12 * moment, "deg " + n + ", x^" + 2 * k);
        moment *= (2 * k + 1) / 2.0;
      }
    }
    double[][] gl = ElementwiseQuadrature.gaussLegendre(24);
    for (int k = 0; k <= 46; k += 2) {
      double sum = 0;
      for (int i = 0; i < 24; i++) {
        sum += gl[1][i] * Math.pow(gl[0][i], k);
      }
      assertEquals(2.0 / (k + 1), sum, 1e-14, "Gauss-Legendre, x^" + k);
    }
  }

  /**
   * neural-tangents' {@code nngp_ntk_fn} written out for one entry: {@code sum_ij w_i w_j f(sqrt(2
   * q11) x_i) f(k / sqrt(q11 / 2) x_i + sqrt(2 (q22 - k^2 / q11)) x_j) / pi}.
   */
  private static double neuralTangents(DoubleUnaryOperator f, double[][] rule, double q11, double q22, double k) {
    double sum = 0;
    for (int i = 0; i < rule[0].length; i++) {
      for (int j = 0; j < rule[0].length; j++) {
        double u = Math.sqrt(Math.max(2 * q11, 0)) * rule[0][i];
        double v = k / Math.sqrt(Math.max(q11 / 2, 1e-30)) * rule[0][i]
            + Math.sqrt(Math.max(2 * (q22 - k * k / q11), 0)) * rule[0][j];
        sum += rule[1][i] * rule[1][j] * f.applyAsDouble(u) * f.applyAsDouble(v);
      }
    }
    return sum / Math.PI;
  }

  /**
   * {@code ElementwiseNumerical} folds its outer loop for the functions that claim a parity: each
   * must be odd with an even derivative or even with an odd one, at 0 too; each that does not
   * claim one must fail both somewhere (else it is missing a cheaper rule).
   */
  @Test
  void parityIsClaimedExactlyByTheOddAndEvenFunctions() {
    double[] xs = {0, 1e-300, 0.3, 1, 1.7, 5, 40};
    for (ElementwiseFunction fn : ElementwiseFunction.values()) {
      boolean odd = true;
      boolean even = true;
      for (double x : xs) {
        odd &= fn.value(-x) == -fn.value(x) && fn.derivativeValue(-x) == fn.derivativeValue(x);
        even &= fn.value(-x) == fn.value(x) && fn.derivativeValue(-x) == -fn.derivativeValue(x);
      }
      assertEquals(odd || even, fn.hasParity(), fn.jsonName() + ": odd " + odd + ", even " + even);
    }
  }

  @Test
  void numericalIsNeuralTangentsRule() {
    RuleTesting.Input in = RuleTesting.hardInput(23);
    for (int deg : new int[] {25, 4}) {
      double[][] rule = ElementwiseQuadrature.gaussHermite(deg);
      for (Map.Entry<String, DoubleUnaryOperator[]> fn : FUNCTIONS.entrySet()) {
        Map<String, double[]> out = RuleTesting.run(Stax.elementwiseNumerical(fn.getKey(), deg), in);
        for (int i = 0; i < in.n1(); i++) {
          double q11 = in.var1()[i];
          for (int j = 0; j < in.n2() && q11 > 0; j++) {
            int e = i * in.n2() + j;
            double q22 = in.var2()[j];
            double k = in.nngp()[e];
            String where = fn.getKey() + " deg " + deg + " (" + i + ", " + j + ")";
            double nngp = neuralTangents(fn.getValue()[0], rule, q11, q22, k);
            double dot = neuralTangents(fn.getValue()[1], rule, q11, q22, k);
            assertEquals(nngp, out.get("nngp")[e], 1e-12 * Math.max(1, Math.abs(nngp)), where + " nngp");
            assertEquals(in.ntk()[e] * dot, out.get("ntk")[e], 1e-12 * Math.max(1, Math.abs(in.ntk()[e] * dot)),
                where + " ntk");
          }
          double v = 0;
          for (int t = 0; t < deg; t++) {
            double f = fn.getValue()[0].applyAsDouble(Math.sqrt(2 * q11) * rule[0][t]);
            v += rule[1][t] * f * f / Math.sqrt(Math.PI);
          }
          assertEquals(v, out.get("var1")[i], 1e-12 * Math.max(1, v), fn.getKey() + " var1 " + i);
        }
      }
    }
  }

  /** The 15-point Kronrod nodes on [0, 1) (QUADPACK's qk15), its weights, and the embedded 7-point Gauss weights. */
  private static final double[] XGK = {0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
      0.864864423359769072789712788640926, 0.741531185599394439863864773280788, 0.586087235467691130294144845693013,
      0.405845151377397166906606412076961, 0.207784955007898467600689403773245, 0};
  private static final double[] WGK = {0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
      0.104790010322250183839876322541518, 0.140653259715525918745189590510238, 0.169004726639267902826583426598550,
      0.190350578064785409913256402421014, 0.204432940075298892414161999234649, 0.209482141084727828012999174891714};
  private static final double[] WG = {0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
      0.381830050505118944950369775488975, 0.417959183673469387755102040816327};

  /**
   * {@code f} on {@code [a, b]} by adaptive Gauss–Kronrod (7, 15) bisection, each piece accepted
   * when its two estimates differ by at most its share of the absolute {@code tolerance}.
   */
  private static double adaptive(DoubleUnaryOperator f, double a, double b, double tolerance) {
    return kronrod(f, a, b, tolerance, 40);
  }

  private static double kronrod(DoubleUnaryOperator f, double a, double b, double tolerance, int depth) {
    double c = (a + b) / 2;
    double h = (b - a) / 2;
    double fc = f.applyAsDouble(c);
    double k = WGK[7] * fc;
    double g = WG[3] * fc;
    for (int i = 0; i < 7; i++) {
      double s = f.applyAsDouble(c - h * XGK[i]) + f.applyAsDouble(c + h * XGK[i]);
      k += WGK[i] * s;
      if (i % 2 == 1) {
        g += WG[i / 2] * s;
      }
    }
    k *= h;
    g *= h;
    if (depth <= 0 || Math.abs(k - g) <= tolerance) {
      return k;
    }
    return kronrod(f, a, c, tolerance / 2, depth - 1) + kronrod(f, c, b, tolerance / 2, depth - 1);
  }

  /**
   * {@code E[f(u) f(v)]} by nested adaptive Gauss–Kronrod integration in the Cholesky coordinates,
   * split where {@code u = 0} and {@code v = 0}, on {@code [-12, 12]^2}.
   */
  private static double exactReference(DoubleUnaryOperator f, double q11, double q22, double k, double tolerance) {
    double root = Math.sqrt(q11);
    double c = k / root;
    double s = Math.sqrt(Math.max(q22 - c * c, 0));
    double density = 1 / Math.sqrt(2 * Math.PI);
    DoubleUnaryOperator outer = z1 -> {
      double m = c * z1;
      double fu = f.applyAsDouble(root * z1) * density * Math.exp(-z1 * z1 / 2);
      if (s == 0) {
        return fu * f.applyAsDouble(m);
      }
      DoubleUnaryOperator inner = z2 -> f.applyAsDouble(m + s * z2) * density * Math.exp(-z2 * z2 / 2);
      double kink = Math.max(-12, Math.min(12, -m / s));
      return fu * (adaptive(inner, -12, kink, tolerance) + adaptive(inner, kink, 12, tolerance));
    };
    return adaptive(outer, -12, 0, tolerance) + adaptive(outer, 0, 12, tolerance);
  }

  @Test
  void exactMatchesAnAdaptiveIntegration() {
    double[][] points = {{1, 1, 0.5}, {0.3, 2.0, -0.6}, {4, 4, 3.9}, {2, 3, 0}, {1, 1, 1}, {0.05, 0.1, 0.07},
        {3, 0.5, -1.2}};
    double worst = 0;
    for (Map.Entry<String, DoubleUnaryOperator[]> fn : FUNCTIONS.entrySet()) {
      if (fn.getKey().matches("erf|relu|sin|cos|gelu")) {
        continue; // closed forms, tested in ActivationsTest; delegation checked below
      }
      ElementwiseQuadrature.Exact layer = (ElementwiseQuadrature.Exact) Stax.elementwise(fn.getKey());
      for (double[] p : points) {
        Expr[] rule = layer.pair(Expr.constant(p[2]), Expr.constant(p[0]), Expr.constant(p[1]));
        for (int d = 0; d < 2; d++) {
          double want = exactReference(fn.getValue()[d], p[0], p[1], p[2], 1e-14);
          double got = rule[d].value();
          double error = Math.abs(got - want) / Math.max(Math.abs(want), 1e-3);
          double s = Math.sqrt(p[1] - p[2] * p[2] / p[0]);
          worst = Math.max(worst, s <= 1.5 ? error : 0);
          // Where v's conditional spread s = sqrt(q22 - k^2/q11) is large, the poles of tanh' (and
          // softsign's kink) sit closest to the inner rule's pieces: measured 2e-8 at s = 1.7.
          double bound = s <= 1.5 ? 1e-10 : 1e-7;
          assertTrue(error < bound, fn.getKey() + (d == 0 ? " nngp" : " ntk factor") + " at q11, q22, k = "
              + java.util.Arrays.toString(p) + ": " + got + " vs " + want + " (" + error + ")");
        }
        double v = exactReference(fn.getValue()[0], p[0], p[0], p[0], 1e-14);
        double got = layer.pair(Expr.constant(p[0]), Expr.constant(p[0]), Expr.constant(p[0]))[0].value();
        assertEquals(v, got, 1e-10 * Math.max(v, 1e-3), fn.getKey() + " variance at " + p[0]);
      }
    }
    System.out.printf("Elementwise: worst relative error %.2e against adaptive Gauss-Kronrod (s <= 1.5)%n", worst);
  }

  /** The closed forms are the closed-form layers' own rules, entry for entry. */
  @Test
  void exactUsesTheClosedFormsWhereKnown() {
    RuleTesting.Input in = RuleTesting.hardInput(29);
    Map<String, Layer> closed = Map.of("erf", Stax.erf(), "relu", Stax.relu(), "sin", Stax.sin(), "cos", Stax.cos(),
        "gelu", Stax.gelu());
    for (Map.Entry<String, Layer> c : closed.entrySet()) {
      Map<String, double[]> want = RuleTesting.run(c.getValue(), in);
      Map<String, double[]> got = RuleTesting.run(Stax.elementwise(c.getKey()), in);
      for (String key : want.keySet()) {
        org.junit.jupiter.api.Assertions.assertArrayEquals(want.get(key), got.get(key), c.getKey() + " " + key);
      }
    }
  }

  /**
   * Why {@link #cpuAndTensorFlowAgree} allows 1e-8 on the diagonal of x1 with itself: there
   * neural-tangents' rule takes {@code sqrt(2 (q22 - k^2 / q11))} of a rounding residue, and where
   * {@code f'} has a kink at 0 (elu's derivative jumps in slope) the points {@code v = +-rest x_j}
   * fall on either side of it, so one ulp of {@code k} (the backends round the layer below
   * differently, fused or not) moves the rule's sum by about {@code rest ~ 1e-8}, in the rule
   * itself, not in either backend. A smooth function (tanh) moves by an ulp.
   */
  @Test
  void theDiagonalsToleranceIsTheRulesOwnSensitivityToOneUlp() {
    double[][] rule = ElementwiseQuadrature.gaussHermite(5);
    double q = 1.37;
    double k = Math.nextDown(q);
    DoubleUnaryOperator eluDerivative = FUNCTIONS.get("elu")[1];
    double elu = neuralTangents(eluDerivative, rule, q, q, q);
    double moved = Math.abs(neuralTangents(eluDerivative, rule, q, q, k) - elu) / elu;
    assertTrue(moved > 1e-9 && moved < 1e-8, "elu' moved by " + moved);
    double[][] rule25 = ElementwiseQuadrature.gaussHermite(25);
    DoubleUnaryOperator tanhDerivative = FUNCTIONS.get("tanh")[1];
    double tanh = neuralTangents(tanhDerivative, rule25, q, q, q);
    double smooth = Math.abs(neuralTangents(tanhDerivative, rule25, q, q, k) - tanh) / tanh;
    assertTrue(smooth < 1e-14, "tanh' moved by " + smooth);
  }

  /**
   * cpu (fused loops) and tensorflow agree to 1e-12 in float64, fully connected and convolutional,
   * x2 given and absent (neural-tangents' rule is not symmetric: both compute the whole kernel of
   * x1 with itself). The exact product rule (9,216 points per entry, one TensorFlow op per step) is
   * left out for time; the exact elu/selu rule stands for it.
   */
  @Test
  void cpuAndTensorFlowAgree() {
    int[] f = {3, 3};
    Map<String, Layer> models = Map.of(
        "numerical", Stax.serial(Stax.dense(8, 1.3, 0.1), Stax.elementwiseNumerical("tanh", 25), Stax.dense(8, 1.1, 0.2),
            Stax.elementwiseNumerical("elu", 5), Stax.dense(1)),
        "numerical, convolutional", Stax.serial(Stax.conv(4, f, null, "SAME", 1.3, 0.1),
            Stax.elementwiseNumerical("selu", 4), Stax.globalAvgPool(), Stax.dense(1)),
        "exact", Stax.serial(Stax.dense(8, 1.2, 0.1), Stax.elementwise("selu"), Stax.dense(8, 1.0, 0.1),
            Stax.elementwise("gelu"), Stax.dense(1)));
    for (Map.Entry<String, Layer> m : models.entrySet()) {
      boolean conv = m.getKey().endsWith("convolutional");
      NDArray x1 = conv ? KernelTesting.randomImages(manager, 3, new long[] {4, 3, 2}, 401)
          : KernelTesting.randomInputs(manager, 5, 4, 401);
      NDArray x2 = conv ? KernelTesting.randomImages(manager, 2, new long[] {4, 3, 2}, 402)
          : KernelTesting.randomInputs(manager, 3, 4, 402);
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel cpu = m.getValue().kernelFn().withBackend(Backend.CPU).apply(x1, other);
        Kernel tf = m.getValue().kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, other);
        for (Get g : Get.values()) {
          double[] a = cpu.get(g).toDoubleArray();
          double[] b = tf.get(g).toDoubleArray();
          String where = m.getKey() + (other == null ? " x1 only " : " x1, x2 ") + g;
          if (other == null) {
            // On the diagonal neural-tangents' rule takes sqrt(2 (q22 - k^2 / q11)) of a rounding
            // residue (1e-8 from one ulp of q): the backends' fused and unfused roundings of the
            // layer below then differ by about 1e-9 there (the rule's own sensitivity with elu's
            // kinked derivative: theDiagonalsToleranceIsTheRulesOwnSensitivityToOneUlp). Off the
            // diagonal they agree to 1e-12.
            int n = (int) Math.round(Math.sqrt(a.length));
            double norm = KernelTesting.norm(b);
            for (int e = 0; e < a.length; e++) {
              double bound = (e / n == e % n ? 1e-8 : 1e-12) * norm;
              assertTrue(Math.abs(a[e] - b[e]) <= bound, where + " entry " + e + ": " + a[e] + " vs " + b[e]);
            }
          } else {
            double err = KernelTesting.relativeError(a, b);
            assertTrue(err < 1e-12, where + ": " + err);
          }
        }
      }
    }
  }

  /**
   * The kernels against Monte Carlo of wide finite networks (their apply). The exact product rule
   * (tanh and its relatives) is checked against adaptive integration above; its 9,216-point
   * plans take most of a minute to run here, so they are left out.
   */
  @Test
  void kernelsMatchWideFiniteNetworks() {
    int w = 1024;
    NDArray x1 = KernelTesting.randomInputs(manager, 4, 4, 501);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 502);
    Map<String, Layer> models = Map.of(
        "numerical tanh, exact selu", Stax.serial(Stax.dense(w, 1.2, 0.1), Stax.elementwiseNumerical("tanh", 25),
            Stax.dense(w, 1.1, 0.1), Stax.elementwise("selu"), Stax.dense(w, 1.0, 0.1)),
        "numerical softsign, swish", Stax.serial(Stax.dense(w, 1.2, 0.1), Stax.elementwiseNumerical("softsign", 25),
            Stax.dense(w, 1.0, 0.1), Stax.elementwiseNumerical("swish", 25), Stax.dense(w, 1.0, 0.1)));
    for (Map.Entry<String, Layer> m : models.entrySet()) {
      double[] analytic = m.getValue().kernelFn().apply(x1, x2).nngp().toDoubleArray();
      MonteCarlo.Estimate mc = MonteCarlo.nngp(m.getValue(), x1, x2, 64, 11);
      KernelTesting.assertMatchesMonteCarlo(m.getKey(), analytic, mc, 2.0 / w, 0.10);
    }
  }

  @Test
  void derivativesMatchCentralDifferences() {
    double[] x = {-3.1, -1.0, -0.2, -1e-3, 1e-3, 0.3, 1.7, 4.2};
    NDArray a = manager.create(x);
    for (String name : FUNCTIONS.keySet()) {
      ElementwiseQuadrature.Named layer = (ElementwiseQuadrature.Named) Stax.elementwise(name);
      double[] d = layer.derivative(a).toDoubleArray();
      double h = 1e-6;
      double[] up = layer.apply(Params.EMPTY, manager.create(java.util.Arrays.stream(x).map(t -> t + h).toArray()))
          .toDoubleArray();
      double[] down = layer.apply(Params.EMPTY, manager.create(java.util.Arrays.stream(x).map(t -> t - h).toArray()))
          .toDoubleArray();
      for (int i = 0; i < x.length; i++) {
        assertEquals((up[i] - down[i]) / (2 * h), d[i], 1e-7, name + "'(" + x[i] + ")");
        assertEquals(FUNCTIONS.get(name)[1].applyAsDouble(x[i]), d[i], 1e-14, name + "'(" + x[i] + ")");
      }
    }
    // At 0 as jax.grad: relu 0, elu 1, selu scale * alpha, softsign 1.
    NDArray zero = manager.create(new double[] {0.0});
    assertEquals(0.0, ((ElementwiseQuadrature.Named) Stax.elementwise("relu")).derivative(zero).getDouble(0));
    assertEquals(1.0, ((ElementwiseQuadrature.Named) Stax.elementwise("elu")).derivative(zero).getDouble(0));
    assertEquals(SCALE * ALPHA, ((ElementwiseQuadrature.Named) Stax.elementwise("selu")).derivative(zero).getDouble(0),
        1e-15);
    assertEquals(1.0, ((ElementwiseQuadrature.Named) Stax.elementwise("softsign")).derivative(zero).getDouble(0));
  }

  /**
   * The second derivatives ({@link Layer#jet}'s curvature) against central differences of the first
   * and against the symbolic derivative of the first ({@link Expr#derivative}), away from the kinks;
   * at 0 as {@code jax.grad(jax.grad(f))} of the {@code jax.nn} functions.
   */
  @Test
  void secondDerivativesMatchCentralDifferences() {
    double[] x = {-3.1, -1.0, -0.2, -1e-3, 1e-3, 0.3, 1.7, 4.2};
    NDArray a = manager.create(x);
    Expr t = Expr.input("x", Expr.Domain.TILE);
    for (String name : FUNCTIONS.keySet()) {
      ElementwiseQuadrature.Named layer = (ElementwiseQuadrature.Named) Stax.elementwise(name);
      double[] d2 = layer.secondDerivative(a).toDoubleArray();
      double h = 1e-6;
      double[] up = layer.derivative(manager.create(java.util.Arrays.stream(x).map(v -> v + h).toArray()))
          .toDoubleArray();
      double[] down = layer.derivative(manager.create(java.util.Arrays.stream(x).map(v -> v - h).toArray()))
          .toDoubleArray();
      Expr symbolic = layer.fn.derivative(t).derivative(t);
      for (int i = 0; i < x.length; i++) {
        assertEquals((up[i] - down[i]) / (2 * h), d2[i], 1e-7, name + "''(" + x[i] + ")");
        double s = symbolic.substitute(Map.of(t, Expr.constant(x[i]))).value();
        assertEquals(s, d2[i], 1e-12 * Math.max(1, Math.abs(s)), name + "''(" + x[i] + ") symbolically");
      }
      // ElementwiseNumerical's finite network is the same function.
      double[] numerical = ((ElementwiseQuadrature.Named) Stax.elementwiseNumerical(name, 5)).secondDerivative(a)
          .toDoubleArray();
      org.junit.jupiter.api.Assertions.assertArrayEquals(d2, numerical, 0.0, name);
    }
    // At 0 as jax.grad(jax.grad(f)): relu 0; elu 1 and selu scale * alpha (where(x > 0, ...) takes the x <= 0
    // branch); softsign -2 (JAX's abs'(0) = 1: the right-hand limit).
    NDArray zero = manager.create(new double[] {0.0});
    assertEquals(0.0, ((ElementwiseQuadrature.Named) Stax.elementwise("relu")).secondDerivative(zero).getDouble(0));
    assertEquals(1.0, ((ElementwiseQuadrature.Named) Stax.elementwise("elu")).secondDerivative(zero).getDouble(0));
    assertEquals(SCALE * ALPHA,
        ((ElementwiseQuadrature.Named) Stax.elementwise("selu")).secondDerivative(zero).getDouble(0), 1e-15);
    assertEquals(-2.0,
        ((ElementwiseQuadrature.Named) Stax.elementwise("softsign")).secondDerivative(zero).getDouble(0));
  }

  @Test
  void modelFilesNameTheLayersAndTheirErrors() {
    Layer model = ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"ElementwiseNumerical": {"fn": "silu"}}, {"Dense": {"out_dim": 4}},
          {"Elementwise": {"fn": "Tanh"}}]}""");
    String json = ModelSpec.toJson(model).replace(" ", "");
    assertTrue(json.contains("{\"ElementwiseNumerical\":{\"fn\":\"silu\",\"deg\":25}}"), json);
    assertTrue(json.contains("{\"Elementwise\":{\"fn\":\"tanh\"}}"), json);
    ModelException unknown = assertThrows(ModelException.class, () -> ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"Elementwise": {"fn": "mish"}}]}"""));
    assertEquals("serial[1].Elementwise", unknown.path());
    assertTrue(unknown.getMessage().contains("softsign") && unknown.getMessage().contains("mish"),
        unknown.getMessage());
    ModelException deg = assertThrows(ModelException.class, () -> ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"ElementwiseNumerical": {"fn": "tanh", "deg": 0}}]}"""));
    assertEquals("serial[1].ElementwiseNumerical", deg.path());
    assertTrue(deg.getMessage().contains("deg"), deg.getMessage());
    ModelException missing = assertThrows(ModelException.class, () -> ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"ElementwiseNumerical": {"deg": 5}}]}"""));
    assertTrue(missing.getMessage().contains("fn") && missing.getMessage().contains("tanh"), missing.getMessage());
    assertThrows(ModelException.class, () -> Stax.elementwiseNumerical("tanh", -1));
    ModelException input = assertThrows(ModelException.class, () -> ModelSpec.parse("""
        {"serial": [{"Elementwise": {"fn": "tanh"}}]}""").kernelFn().apply(KernelTesting.randomInputs(manager, 2, 3, 1),
        null));
    assertEquals("serial[0].Elementwise", input.path());
  }
}

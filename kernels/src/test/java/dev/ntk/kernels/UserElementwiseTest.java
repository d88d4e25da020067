package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.SpecialFunctions;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.DoubleUnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * User closed forms ({@link UserElementwise}): the symbolic derivative of every built-in NNGP map
 * equals its hand-written NTK factor; erf's and sin's closed forms written by hand through the API
 * give the built-in layers' kernels on both backends, in dense and convolutional networks; the
 * finite network against the kernel by Monte Carlo; a failing form is reported with its path.
 */
class UserElementwiseTest {
  private static final Expr K = Expr.input("k", Expr.Domain.TILE);
  private static final Expr Q1 = Expr.input("q1", Expr.Domain.ROW);
  private static final Expr Q2 = Expr.input("q2", Expr.Domain.COL);
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static double at(Expr e, double k, double q1, double q2) {
    Expr v = e.substitute(Map.of(K, Expr.constant(k), Q1, Expr.constant(q1), Q2, Expr.constant(q2)));
    assertTrue(v.isConstant(), v::formula);
    return v.value();
  }

  /** neural-tangents' erf kernel, {@code a^2 (2/pi) asin(2 b^2 k / sqrt(s1 s2)) + c^2}, asin as atan2. */
  static UserElementwise.ClosedForm erf(double a, double b, double c) {
    return (k, q1, q2) -> {
      Expr t = k.times(2 * b * b).div(q1.times(2 * b * b).plus(1).times(q2.times(2 * b * b).plus(1)).sqrt());
      return t.atan2(Expr.constant(1).minus(t.times(t)).sqrt()).times(a * a * 2 / Math.PI).plus(c * c);
    };
  }

  /** {@code a sin(b x + c)}: {@code a^2/2 (exp(b^2 (k - S/2)) - exp(-b^2 (k + S/2)) cos 2c)}, {@code S = q1 + q2}. */
  static UserElementwise.ClosedForm sin(double a, double b, double c) {
    return (k, q1, q2) -> {
      Expr half = q1.plus(q2).times(0.5);
      return k.minus(half).times(b * b).exp().minus(k.plus(half).times(-b * b).exp().times(Math.cos(2 * c)))
          .times(a * a / 2);
    };
  }

  /**
   * The derivative in {@code k} of each built-in rule's NNGP map against the NTK factor written by
   * hand beside it, at points inside the correlation range (the ReLU family's derivative is
   * singular at |rho| = 1, where its hand-written factor is not).
   */
  @Test
  void derivativeOfEveryBuiltInNngpIsItsNtkFactor() {
    List<Layer> layers = List.of(Stax.erf(), Stax.erf(1.3, 0.7, 0.2), Stax.gelu(), Stax.sin(1.2, 0.8, 0.3),
        Stax.cos(), Stax.rbf(0.6), Stax.exp(0.7, 0.6), Stax.gaussian(), Stax.gaussian(1.1, 0.05), Stax.monomial(4),
        Stax.polynomial(0.3, -1.1, 0.5, 0.7, -0.2), Stax.relu(), Stax.leakyRelu(0.1), Stax.abRelu(-0.4, 1.3),
        Stax.rectifiedMonomial(2), Stax.rectifiedMonomial(3));
    double[][] points = {{0.3, 1.2, 0.8}, {-0.5, 0.9, 1.4}, {0.9, 1.0, 1.0}, {0.0, 0.5, 2.0}, {1.7, 2.1, 1.6}};
    for (Layer layer : layers) {
      Expr[] rule = ((Elementwise.Nonlinearity) layer).pair(K, Q1, Q2);
      Expr derivative = rule[0].derivative(K);
      for (double[] p : points) {
        double want = at(rule[1], p[0], p[1], p[2]);
        double got = at(derivative, p[0], p[1], p[2]);
        assertEquals(want, got, 1e-12 * Math.max(1, Math.abs(want)), layer + " at k = " + p[0] + ", q = " + p[1]
            + ", " + p[2] + ": " + derivative.formula());
      }
    }
  }

  static Map<String, Layer[]> models() {
    int[] f = {3, 3};
    return Map.of(
        "dense", new Layer[] {
            Stax.serial(Stax.dense(16, 1.3, 0.1), Stax.erf(1.3, 0.7, 0.2), Stax.dense(16, 1.1, 0.2), Stax.sin(1.1, 0.9,
                0.2), Stax.dense(16, 1.2, 0.1), Stax.erf(), Stax.dense(16, 0.9, 0.1), Stax.sin(), Stax.dense(2)),
            Stax.serial(Stax.dense(16, 1.3, 0.1), Stax.elementwise(erf(1.3, 0.7, 0.2)), Stax.dense(16, 1.1, 0.2),
                Stax.elementwise(sin(1.1, 0.9, 0.2)), Stax.dense(16, 1.2, 0.1), Stax.elementwise(erf(1, 1, 0)),
                Stax.dense(16, 0.9, 0.1), Stax.elementwise(sin(1, 1, 0)), Stax.dense(2))},
        "convolutional", new Layer[] {
            Stax.serial(Stax.conv(8, f, null, "SAME", 1.3, 0.1), Stax.erf(), Stax.conv(8, f, null, "SAME", 1.1, 0.1),
                Stax.sin(1.0, 0.8, 0.1), Stax.conv(8, f, null, "SAME", 1.0, 0.1), Stax.globalAvgPool(), Stax.dense(1)),
            Stax.serial(Stax.conv(8, f, null, "SAME", 1.3, 0.1), Stax.elementwise(erf(1, 1, 0)),
                Stax.conv(8, f, null, "SAME", 1.1, 0.1), Stax.elementwise(sin(1.0, 0.8, 0.1)),
                Stax.conv(8, f, null, "SAME", 1.0, 0.1), Stax.globalAvgPool(), Stax.dense(1))});
  }

  @Test
  void handWrittenClosedFormsGiveTheBuiltInKernelsOnBothBackends() {
    for (Map.Entry<String, Layer[]> m : models().entrySet()) {
      boolean conv = m.getKey().equals("convolutional");
      NDArray x1 = conv ? KernelTesting.randomImages(manager, 4, new long[] {5, 4, 2}, 301)
          : KernelTesting.randomInputs(manager, 7, 5, 301);
      NDArray x2 = conv ? KernelTesting.randomImages(manager, 3, new long[] {5, 4, 2}, 302)
          : KernelTesting.randomInputs(manager, 4, 5, 302);
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel builtIn = m.getValue()[0].kernelFn().withBackend(Backend.CPU).apply(x1, other);
        for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
          Kernel user = m.getValue()[1].kernelFn().withBackend(backend).apply(x1, other);
          for (Get g : Get.values()) {
            double err = KernelTesting.relativeError(user.get(g).toDoubleArray(), builtIn.get(g).toDoubleArray());
            assertTrue(err < 1e-12, m.getKey() + (other == null ? " x1 only " : " x1, x2 ") + g + " on " + backend
                + ": the user form differs from the built-in layer by " + err);
          }
          assertTrue(KernelTesting.relativeError(user.cov1().toDoubleArray(), builtIn.cov1().toDoubleArray()) < 1e-12);
        }
      }
    }
  }

  @Test
  void finiteNetworkOfAUserFormMatchesItsKernel() {
    int w = 1024;
    Layer model = Stax.serial(Stax.dense(w, 1.4, 0.1), Stax.elementwise(erf(1.2, 0.9, 0.1),
        x -> 1.2 * SpecialFunctions.erf(0.9 * x) + 0.1), Stax.dense(w, 1.0, 0.1));
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 201);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 202);
    double[] analytic = model.kernelFn().apply(x1, x2).nngp().toDoubleArray();
    MonteCarlo.Estimate mc = MonteCarlo.nngp(model, x1, x2, 96, 7);
    KernelTesting.assertMatchesMonteCarlo("user erf", analytic, mc, 2.0 / w, 0.10);
  }

  @Test
  void aFailingFormIsReportedWithTheLayerPath() {
    NDArray x = KernelTesting.randomInputs(manager, 4, 3, 11);
    Map<String, UserElementwise.ClosedForm> bad = Map.of(
        "failed: java.lang.IllegalStateException: no", (k, q1, q2) -> {
          throw new IllegalStateException("no");
        },
        "returned null", (k, q1, q2) -> null,
        "reads the input \"w\"", (k, q1, q2) -> k.times(Expr.input("w", Expr.Domain.ROW)));
    for (Map.Entry<String, UserElementwise.ClosedForm> b : bad.entrySet()) {
      Layer model = Stax.serial(Stax.dense(4), Stax.elementwise(b.getValue()), Stax.dense(1));
      ModelException e = assertThrows(ModelException.class, () -> model.kernelFn().apply(x, null));
      assertEquals("serial[1].Elementwise", e.path());
      assertTrue(e.getMessage().contains(b.getKey()), e.getMessage());
    }
    // log(k) is NaN where inputs are anti-correlated: the first non-finite layer is the user's.
    NDArray x1 = Tensors.fromRows(manager, new double[][] {{1, 0.5, -0.3}}, ai.djl.ndarray.types.DataType.FLOAT64);
    NDArray x2 = Tensors.fromRows(manager, new double[][] {{-1, -0.5, 0.3}}, ai.djl.ndarray.types.DataType.FLOAT64);
    Layer plain = Stax.serial(Stax.dense(4), Stax.elementwise((k, q1, q2) -> k.log()), Stax.dense(1));
    assertEquals(Optional.of("serial[1].Elementwise"), Diagnostics.firstNonFiniteLayer(plain, x1, x2));
    assertEquals(Optional.empty(), Diagnostics.firstNonFiniteLayer(plain, x1, x1));
    // Without a finite function, the finite network says what to give.
    IllegalStateException e = assertThrows(IllegalStateException.class,
        () -> MonteCarlo.nngp(plain, x1, x2, 2, 1));
    assertTrue(e.getMessage().contains("phi"), e.getMessage());
  }

  @Test
  void aLayerShowsItsFormButDoesNotReadBack() {
    Layer layer = Stax.elementwise((k, q1, q2) -> k.times(2).sin());
    String json = ModelSpec.toJson(layer);
    assertEquals("{\"Elementwise\":{\"nngp\":\"sin(mul(cov12, 2.0))\"}}", json);
    // Model files hold no Java: reading it back is a model error, whatever the named Elementwise accepts.
    assertThrows(ModelException.class, () -> ModelSpec.parse(json).kernelFn().apply(
        KernelTesting.randomInputs(manager, 2, 3, 1), null));
  }

  @Test
  void gaussHermiteIntegratesPolynomialsExactly() {
    for (int n : new int[] {1, 2, 7, 25, 64, 150}) {
      double[][] rule = UserElementwise.gaussHermite(n);
      // E[z^(2m)] = (2m - 1)!! for 2m < 2n.
      double moment = 1;
      for (int m = 0; 2 * m < 2 * n && m <= 30; m++) {
        double sum = 0;
        double odd = 0;
        for (int i = 0; i < n; i++) {
          sum += rule[1][i] * Math.pow(rule[0][i], 2 * m);
          odd += rule[1][i] * Math.pow(rule[0][i], 2 * m + 1);
        }
        assertEquals(moment, sum, 1e-12 * moment, "n = " + n + ", E[z^" + 2 * m + "]");
        assertEquals(0, odd, 1e-12 * moment * Math.max(1, Math.abs(rule[0][0])), "n = " + n + ", odd " + m);
        moment *= 2 * m + 1;
      }
    }
  }

  /** Erf and sin by quadrature of the function pair against their exact kernels, on the hard entries. */
  @Test
  void quadratureOfAFunctionPairMatchesExactKernels() {
    double a = 1.3;
    double b = 0.7;
    double c = 0.2;
    Map<String, Layer[]> cases = Map.of(
        "erf", new Layer[] {Stax.erf(a, b, c), Stax.elementwise(x -> a * SpecialFunctions.erf(b * x) + c,
            x -> a * b * 2 / Math.sqrt(Math.PI) * Math.exp(-b * b * x * x))},
        "sin", new Layer[] {Stax.sin(a, b, c), Stax.elementwise(x -> a * Math.sin(b * x + c),
            x -> a * b * Math.cos(b * x + c))},
        "erf default", new Layer[] {Stax.erf(), Stax.elementwise(SpecialFunctions::erf,
            x -> 2 / Math.sqrt(Math.PI) * Math.exp(-x * x))});
    RuleTesting.Input in = RuleTesting.hardInput(23);
    for (Map.Entry<String, Layer[]> e : cases.entrySet()) {
      Map<String, double[]> exact = RuleTesting.run(e.getValue()[0], in);
      Map<String, double[]> quadrature = RuleTesting.run(e.getValue()[1], in);
      for (String part : new String[] {"nngp", "ntk", "var1", "var2"}) {
        double[] want = exact.get(part);
        double[] got = quadrature.get(part);
        for (int i = 0; i < want.length; i++) {
          assertEquals(want[i], got[i], 1e-9 * Math.max(1, Math.abs(want[i])), e.getKey() + " " + part + " " + i);
        }
      }
    }
  }

  private static double dtanh(double x) {
    return 1 / (Math.cosh(x) * Math.cosh(x));
  }

  /** Models with a user's tanh through quadrature ({@code Stax.elementwise(phi, dphi, deg)}). */
  static Map<String, Layer> quadratureModels() {
    int[] f = {3, 3};
    DoubleUnaryOperator tanh = Math::tanh;
    DoubleUnaryOperator dtanh = UserElementwiseTest::dtanh;
    return Map.of(
        "dense", Stax.serial(Stax.dense(16, 1.3, 0.1), Stax.elementwise(tanh, dtanh, 20), Stax.dense(16, 1.1, 0.2),
            Stax.erf(), Stax.dense(16, 1.2, 0.1), Stax.elementwise(tanh, dtanh, 20), Stax.dense(2)),
        "convolutional", Stax.serial(Stax.conv(4, f, null, "SAME", 1.3, 0.1), Stax.elementwise(tanh, dtanh, 12),
            Stax.conv(4, f, null, "SAME", 1.1, 0.1), Stax.globalAvgPool(), Stax.dense(1)));
  }

  @Test
  void quadratureRunsOnBothBackendsAndMatchesItsFiniteNetwork() {
    for (Map.Entry<String, Layer> m : quadratureModels().entrySet()) {
      boolean conv = m.getKey().equals("convolutional");
      NDArray x1 = conv ? KernelTesting.randomImages(manager, 3, new long[] {4, 3, 2}, 301)
          : KernelTesting.randomInputs(manager, 6, 5, 301);
      NDArray x2 = conv ? KernelTesting.randomImages(manager, 2, new long[] {4, 3, 2}, 302)
          : KernelTesting.randomInputs(manager, 4, 5, 302);
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel cpu = m.getValue().kernelFn().withBackend(Backend.CPU).apply(x1, other);
        Kernel tf = m.getValue().kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, other);
        for (Get g : Get.values()) {
          double err = KernelTesting.relativeError(tf.get(g).toDoubleArray(), cpu.get(g).toDoubleArray());
          assertTrue(err < 1e-12, m.getKey() + " " + g + ": cpu and tensorflow differ by " + err);
        }
        // In float32 the Java functions see float32 operands and their results are rounded to float32.
        NDArray y1 = x1.toType(ai.djl.ndarray.types.DataType.FLOAT32, false);
        NDArray y2 = other == null ? null : other.toType(ai.djl.ndarray.types.DataType.FLOAT32, false);
        for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
          Kernel single = m.getValue().kernelFn().withBackend(backend).apply(y1, y2);
          for (Get g : Get.values()) {
            double err = KernelTesting.relativeError(Tensors.toDoubles(single.get(g)), cpu.get(g).toDoubleArray());
            assertTrue(err < 1e-5, m.getKey() + " " + g + " in float32 on " + backend + ": off by " + err);
          }
        }
      }
    }
    int w = 512;
    Layer model = Stax.serial(Stax.dense(w, 1.4, 0.1), Stax.elementwise(Math::tanh, UserElementwiseTest::dtanh, 32),
        Stax.dense(w, 1.0, 0.1));
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 201);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 202);
    double[] analytic = model.kernelFn().apply(x1, x2).nngp().toDoubleArray();
    MonteCarlo.Estimate mc = MonteCarlo.nngp(model, x1, x2, 64, 7);
    KernelTesting.assertMatchesMonteCarlo("user tanh", analytic, mc, 2.0 / w, 0.10);
  }

  /**
   * A function pair's finite derivatives are the user's: {@code dphi} and the optional {@code d2phi}
   * against central differences; without {@code d2phi} the second-order Taylor pass ({@link
   * Layer#jet}) fails naming the layer, and a closed form (which has no {@code phi'}) refuses both.
   */
  @Test
  void userFunctionsGiveTheFiniteDerivatives() {
    DoubleUnaryOperator tanh = Math::tanh;
    DoubleUnaryOperator dtanh = x -> 1 / (Math.cosh(x) * Math.cosh(x));
    DoubleUnaryOperator d2tanh = x -> -2 * Math.tanh(x) / (Math.cosh(x) * Math.cosh(x));
    double[] xs = java.util.stream.IntStream.rangeClosed(-20, 20).mapToDouble(i -> i / 5.0 + 0.013).toArray();
    NDArray x = manager.create(xs);
    double h = 1e-5;
    for (Layer l : List.of(Stax.elementwise(tanh, dtanh, d2tanh), Stax.elementwise(tanh, dtanh, d2tanh, 12))) {
      Elementwise.Nonlinearity layer = (Elementwise.Nonlinearity) l;
      double[] d = layer.derivative(x).toDoubleArray();
      double[] d2 = layer.secondDerivative(x).toDoubleArray();
      double[] up = layer.apply(Params.EMPTY, Tensors.add(x, h)).toDoubleArray();
      double[] down = layer.apply(Params.EMPTY, Tensors.add(x, -h)).toDoubleArray();
      double[] dUp = layer.derivative(Tensors.add(x, h)).toDoubleArray();
      double[] dDown = layer.derivative(Tensors.add(x, -h)).toDoubleArray();
      for (int i = 0; i < xs.length; i++) {
        assertEquals((up[i] - down[i]) / (2 * h), d[i], 1e-7, "phi'(" + xs[i] + ")");
        assertEquals((dUp[i] - dDown[i]) / (2 * h), d2[i], 1e-7, "phi''(" + xs[i] + ")");
      }
      assertTrue(layer.arguments().containsKey("d2phi"), layer.arguments()::toString);
    }
    Layer pair = Stax.elementwise(tanh, dtanh);
    assertTrue(!pair.arguments().containsKey("d2phi"), pair.arguments()::toString);
    try (NDManager scope = manager.newSubManager()) {
      Params params = pair.init(new java.util.SplittableRandom(1), List.of(Spec.input(new ai.djl.ndarray.types.Shape(
          xs.length))), scope, ai.djl.ndarray.types.DataType.FLOAT64);
      List<NDArray> in = List.of(x);
      ModelException e = assertThrows(ModelException.class, () -> pair.jet(params, params, in, in, in));
      assertEquals("Elementwise", e.path());
      assertTrue(e.getMessage().contains("phi''") && e.getMessage().contains("d2phi"), e.getMessage());
    }
    Elementwise.Nonlinearity closed = (Elementwise.Nonlinearity) Stax.elementwise(erf(1, 1, 0), SpecialFunctions::erf);
    ModelException e1 = assertThrows(ModelException.class, () -> closed.derivative(x));
    assertTrue(e1.getMessage().startsWith("Elementwise: ") && e1.getMessage().contains("phi'"), e1.getMessage());
    ModelException e2 = assertThrows(ModelException.class, () -> closed.secondDerivative(x));
    assertTrue(e2.getMessage().startsWith("Elementwise: ") && e2.getMessage().contains("phi''"), e2.getMessage());
  }

  /** The README's example, as written there: the erf form equals Stax.erf(), the tanh pair runs. */
  @Test
  void readmeExample() {
    Layer erf = Stax.elementwise((k, q1, q2) -> {
      Expr t = k.times(2).div(q1.times(2).plus(1).times(q2.times(2).plus(1)).sqrt());
      return t.atan2(Expr.constant(1).minus(t.times(t)).sqrt()).times(2 / Math.PI);
    }, SpecialFunctions::erf);
    Layer tanh = Stax.elementwise(Math::tanh, x -> 1 / (Math.cosh(x) * Math.cosh(x)), 100);
    NDArray x = KernelTesting.randomInputs(manager, 4, 3, 5);
    Kernel user = Stax.serial(Stax.dense(8, 1.5, 0.05), erf, Stax.dense(8, 1.5, 0.05), tanh).kernelFn().apply(x, null);
    Kernel builtIn = Stax.serial(Stax.dense(8, 1.5, 0.05), Stax.erf(), Stax.dense(8, 1.5, 0.05), tanh).kernelFn()
        .apply(x, null);
    for (Get g : Get.values()) {
      assertTrue(KernelTesting.relativeError(user.get(g).toDoubleArray(), builtIn.get(g).toDoubleArray()) < 1e-12);
    }
  }

  /**
   * A user form's NTK factor (its symbolic derivative, through the layer's rule) against central
   * differences of the layer's own NNGP output in its input covariance, on the hard entries
   * (equal, opposite, nearly equal and zero inputs): GELU's kernel written by hand.
   */
  @Test
  void userFormsNtkFactorMatchesFiniteDifferencesOfItsNngp() {
    Layer gelu = Stax.elementwise((k, q1, q2) -> {
      Expr s12 = q1.plus(1).times(q2.plus(1));
      Expr d2 = s12.minus(k.times(k));
      Expr d = d2.sqrt();
      return k.times(0.25).plus(k.times(k).plus(q1.times(q2).times(d2)).div(s12.times(d)).plus(k.times(k.atan2(d)))
          .times(1 / (2 * Math.PI)));
    });
    RuleTesting.Input in = RuleTesting.hardInput(29);
    Map<String, double[]> out = RuleTesting.run(gelu, in);
    for (int e = 0; e < in.nngp().length; e++) {
      double h = 1e-4;
      double[] up = in.nngp().clone();
      double[] down = in.nngp().clone();
      up[e] += h;
      down[e] -= h;
      double plus = RuleTesting.run(gelu, new RuleTesting.Input(up, in.ntk(), in.var1(), in.var2(), in.n1(),
          in.n2())).get("nngp")[e];
      double minus = RuleTesting.run(gelu, new RuleTesting.Input(down, in.ntk(), in.var1(), in.var2(), in.n1(),
          in.n2())).get("nngp")[e];
      double want = (plus - minus) / (2 * h);
      assertEquals(want, out.get("ntk")[e] / in.ntk()[e], 1e-7 * Math.max(1, Math.abs(want)), "entry " + e);
    }
    // And it is the built-in GELU's.
    Map<String, double[]> builtIn = RuleTesting.run(Stax.gelu(), in);
    for (String part : new String[] {"nngp", "ntk", "var1"}) {
      for (int e = 0; e < builtIn.get(part).length; e++) {
        assertEquals(builtIn.get(part)[e], out.get(part)[e], 1e-12 * Math.max(1, Math.abs(builtIn.get(part)[e])),
            part + " " + e);
      }
    }
  }
}

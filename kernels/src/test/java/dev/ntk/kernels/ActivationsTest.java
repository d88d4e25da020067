package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.SpecialFunctions;
import java.util.Map;
import java.util.function.DoubleUnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The closed-form activations (Gelu, Sin, Cos, Rbf, Exp, Sign, Gaussian, RectifiedMonomial,
 * Monomial, Polynomial): each rule against a quadrature of
 * the same Gaussian expectations, each finite network against its kernel by Monte Carlo, and the
 * {@code cpu} and {@code tensorflow} backends against each other on dense and convolutional
 * networks, with x2 given and absent.
 */
class ActivationsTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static double phi(double x) {
    return 0.5 * (1 + SpecialFunctions.erf(x / Math.sqrt(2)));
  }

  /** A layer, its function and its derivative, as the textbook writes them. */
  record Case(String name, Layer layer, DoubleUnaryOperator f, DoubleUnaryOperator df) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Case> smooth() {
    double a = 1.3;
    double b = 0.7;
    double c = 0.4;
    double g = 0.6;
    return Stream.of(
        new Case("Gelu", Stax.gelu(), x -> x * phi(x),
            x -> phi(x) + x * Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI)),
        new Case("Sin", Stax.sin(a, b, c), x -> a * Math.sin(b * x + c), x -> a * b * Math.cos(b * x + c)),
        new Case("Cos", Stax.cos(a, b, c), x -> a * Math.cos(b * x + c), x -> -a * b * Math.sin(b * x + c)),
        new Case("Sin default", Stax.sin(), Math::sin, Math::cos),
        new Case("Rbf", Stax.rbf(g), x -> Math.sqrt(2) * Math.sin(Math.sqrt(2 * g) * x + Math.PI / 4),
            x -> Math.sqrt(2) * Math.sqrt(2 * g) * Math.cos(Math.sqrt(2 * g) * x + Math.PI / 4)),
        new Case("Exp", Stax.exp(a, b), x -> a * Math.exp(b * x), x -> a * b * Math.exp(b * x)),
        new Case("Gaussian", Stax.gaussian(a, -b), x -> a * Math.exp(-b * x * x),
            x -> -2 * a * b * x * Math.exp(-b * x * x)),
        new Case("Gaussian default", Stax.gaussian(), x -> Math.exp(-x * x), x -> -2 * x * Math.exp(-x * x)),
        new Case("Gaussian b > 0", Stax.gaussian(0.9, 0.05), x -> 0.9 * Math.exp(0.05 * x * x),
            x -> 0.9 * 0.1 * x * Math.exp(0.05 * x * x)),
        new Case("Monomial 0", Stax.monomial(0), x -> 1, x -> 0),
        new Case("Monomial 1", Stax.monomial(1), x -> x, x -> 1),
        new Case("Monomial 2", Stax.monomial(2), x -> x * x, x -> 2 * x),
        new Case("Monomial 3", Stax.monomial(3), x -> x * x * x, x -> 3 * x * x),
        new Case("Monomial 4", Stax.monomial(4), x -> Math.pow(x, 4), x -> 4 * x * x * x),
        new Case("Monomial 5", Stax.monomial(5), x -> Math.pow(x, 5), x -> 5 * Math.pow(x, 4)),
        new Case("Polynomial", Stax.polynomial(0.3, -1.1, 0.5, 0.7, -0.2),
            x -> 0.3 - 1.1 * x + 0.5 * x * x + 0.7 * x * x * x - 0.2 * x * x * x * x,
            x -> -1.1 + x + 2.1 * x * x - 0.8 * x * x * x),
        new Case("Polynomial degree 6", Stax.polynomial(1, 0, 0, 0.2, 0, 0, 0.1),
            x -> 1 + 0.2 * x * x * x + 0.1 * Math.pow(x, 6), x -> 0.6 * x * x + 0.6 * Math.pow(x, 5)),
        new Case("Polynomial empty", Stax.polynomial(), x -> 0, x -> 0),
        new Case("Polynomial constant", Stax.polynomial(0.7), x -> 0.7, x -> 0));
  }

  /**
   * {@code E[f(u) g(v)]} for {@code (u, v)} of covariance {@code [[q11, k], [k, q22]]}: the
   * trapezoidal rule in standard normal coordinates, step 1/16 on [-12, 12]^2, which converges
   * faster than any power of the step for these entire integrands (its error is far below 1e-12).
   */
  static double expectation(DoubleUnaryOperator f, DoubleUnaryOperator g, double q11, double q22, double k) {
    double h = 1.0 / 16;
    int m = 12 * 16;
    double su = Math.sqrt(q11);
    double slope = q11 == 0 ? 0 : k / su;
    double rest = Math.sqrt(Math.max(q22 - slope * slope, 0));
    double[] w = new double[2 * m + 1];
    double[] gv = new double[2 * m + 1];
    for (int i = -m; i <= m; i++) {
      w[i + m] = Math.exp(-0.5 * (i * h) * (i * h)) * h / Math.sqrt(2 * Math.PI);
    }
    double sum = 0;
    for (int i = -m; i <= m; i++) {
      double z1 = i * h;
      double fu = f.applyAsDouble(su * z1);
      double inner = 0;
      for (int j = -m; j <= m; j++) {
        inner += w[j + m] * g.applyAsDouble(slope * z1 + rest * j * h);
      }
      sum += w[i + m] * fu * inner;
    }
    return sum;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("smooth")
  void closedFormMatchesQuadrature(Case c) {
    RuleTesting.Input in = RuleTesting.hardInput(13);
    Map<String, double[]> out = RuleTesting.run(c.layer(), in);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        int e = i * in.n2() + j;
        double q11 = in.var1()[i];
        double q22 = in.var2()[j];
        double k = in.nngp()[e];
        double nngp = expectation(c.f(), c.f(), q11, q22, k);
        double dot = expectation(c.df(), c.df(), q11, q22, k);
        String where = c + " (" + i + ", " + j + ")";
        assertEquals(nngp, out.get("nngp")[e], 1e-9 * Math.max(1, Math.abs(nngp)), where + " nngp");
        assertEquals(in.ntk()[e] * dot, out.get("ntk")[e], 1e-9 * Math.max(1, Math.abs(in.ntk()[e] * dot)),
            where + " ntk");
      }
      double v = expectation(c.f(), c.f(), in.var1()[i], in.var1()[i], in.var1()[i]);
      assertEquals(v, out.get("var1")[i], 1e-9 * Math.max(1, v), c + " var1 " + i);
    }
  }

  /**
   * Sign: {@code E[sign(u) sign(v)] = 2 E[sign(u) P(v > 0 | u)] } over {@code u > 0} (the integrand
   * is even): {@code 2 int_0^inf erf(m u / sqrt(2 s)) phi(u) du} with {@code v | u ~ N(m u, s)},
   * by Simpson's rule on [0, 12 sqrt(q11)] (a smooth integrand), and the NTK is zero.
   */
  @Test
  void signMatchesQuadratureAndZeroesTheNtk() {
    RuleTesting.Input in = RuleTesting.hardInput(17);
    Map<String, double[]> out = RuleTesting.run(Stax.sign(), in);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        int e = i * in.n2() + j;
        double q11 = in.var1()[i];
        double q22 = in.var2()[j];
        double k = in.nngp()[e];
        double want;
        if (q11 == 0 || q22 == 0) {
          want = 0;
        } else {
          double m = k / q11;
          double sd = Math.sqrt(Math.max(q22 - k * k / q11, 0));
          DoubleUnaryOperator y = u -> (sd <= 1e-12 * Math.sqrt(q22) ? Math.signum(m)
              : SpecialFunctions.erf(m * u / (Math.sqrt(2) * sd))) * Math.exp(-u * u / (2 * q11))
              / Math.sqrt(2 * Math.PI * q11);
          // The inner erf turns over within about sd / |m| of 0: resolved by a piece of its own.
          double top = 12 * Math.sqrt(q11);
          double edge = Math.min(top, 40 * sd / Math.max(Math.abs(m), 1e-300));
          want = 2 * (simpson(y, 0, edge) + simpson(y, edge, top));
        }
        assertEquals(want, out.get("nngp")[e], 1e-9, "sign (" + i + ", " + j + ")");
        assertEquals(0.0, out.get("ntk")[e]);
      }
      assertEquals(in.var1()[i] == 0 ? 0 : 1, out.get("var1")[i], 1e-15);
    }
    // Equal inputs: exactly 1.
    assertEquals(1.0, out.get("nngp")[0]);
  }

  private static double simpson(DoubleUnaryOperator f, double from, double to) {
    int n = 20000;
    double h = (to - from) / n;
    double sum = 0;
    for (int t = 0; t <= n; t++) {
      sum += (t == 0 || t == n ? 1 : t % 2 == 1 ? 4 : 2) * f.applyAsDouble(from + t * h);
    }
    return sum * h / 3;
  }

  static Stream<Arguments> wide() {
    int w = 1024;
    return Stream.of(
        Arguments.of("gelu, sin, cos", Stax.serial(Stax.dense(w, 1.4, 0.1), Stax.gelu(), Stax.dense(w, 1.2, 0.1),
            Stax.sin(1.2, 0.8, 0.3), Stax.dense(w, 1.1, 0.2), Stax.cos(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("exp, rbf, sign", Stax.serial(Stax.dense(w, 0.8, 0.1), Stax.exp(0.7, 0.6),
            Stax.dense(w, 1.0, 0.1), Stax.rbf(0.5), Stax.dense(w, 1.2, 0.1), Stax.sign(), Stax.dense(w, 1.0, 0.2))),
        Arguments.of("approximate gelu (exact kernel, tanh network)", Stax.serial(Stax.dense(w, 1.0, 0.1),
            Stax.gelu(true), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("gaussian", Stax.serial(Stax.dense(w, 1.2, 0.1), Stax.gaussian(1.1, -0.6), Stax.dense(w, 1.0, 0.1),
            Stax.gaussian(1.0, -1.0), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("rectified monomials 2, 0", Stax.serial(Stax.dense(w, 1.0, 0.1), Stax.rectifiedMonomial(2),
            Stax.dense(w, 1.0, 0.1), Stax.rectifiedMonomial(0), Stax.dense(w, 1.0, 0.1))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("wide")
  void analyticNngpMatchesWideFiniteNetworks(String name, Layer model) {
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 201);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 202);
    double[] analytic = model.kernelFn().apply(x1, x2).nngp().toDoubleArray();
    MonteCarlo.Estimate mc = MonteCarlo.nngp(model, x1, x2, 96, 7);
    KernelTesting.assertMatchesMonteCarlo(name, analytic, mc, 2.0 / 1024, 0.10);
  }

  /**
   * The models of the backend comparison. {@code RectifiedMonomial(1)} (ReLU) and {@code (0)} are
   * left out as ReLU is: on identical inputs their rules depend on {@code pi - theta} with {@code
   * theta ~ sqrt(rounding)}, so the backends' roundings differ by about 1e-9 there.
   */
  static Map<String, Layer> models() {
    int[] f = {3, 3};
    return Map.of(
        "dense", Stax.serial(Stax.dense(16, 1.3, 0.1), Stax.gelu(), Stax.dense(16, 1.1, 0.2), Stax.sin(1.1, 0.9, 0.2),
            Stax.dense(16, 1.0, 0.1), Stax.cos(), Stax.dense(16, 0.9, 0.1), Stax.exp(0.8, 0.5), Stax.dense(16),
            Stax.rbf(0.7), Stax.dense(16, 1.2, 0.1), Stax.sign(), Stax.dense(2)),
        "convolutional", Stax.serial(Stax.conv(8, f, null, "SAME", 1.3, 0.1), Stax.gelu(),
            Stax.conv(8, f, null, "SAME", 1.1, 0.1), Stax.sin(1.0, 0.8, 0.1), Stax.conv(8, f, null, "SAME", 1.0, 0.2),
            Stax.exp(0.9, 0.4), Stax.conv(8, f, null, "SAME", 1.0, 0.1), Stax.rbf(0.5),
            Stax.conv(8, f, null, "SAME", 1.0, 0.1), Stax.sign(), Stax.globalAvgPool(), Stax.dense(1)),
        "dense, second set", Stax.serial(Stax.dense(16, 1.3, 0.1), Stax.gaussian(1.2, -0.7), Stax.dense(16, 1.1, 0.2),
            Stax.gaussian(), Stax.dense(16, 1.0, 0.1), Stax.rectifiedMonomial(2), Stax.dense(16, 1.0, 0.1),
            Stax.rectifiedMonomial(3), Stax.dense(16, 0.5, 0.1), Stax.rectifiedMonomial(2), Stax.dense(16, 1.0, 0.1),
            Stax.monomial(3), Stax.dense(16, 0.8, 0.1), Stax.monomial(5), Stax.dense(16, 0.6, 0.1), Stax.monomial(0),
            Stax.dense(16, 1.0, 0.1), Stax.polynomial(0.1, 1.0, 0.3, -0.2, 0.05), Stax.dense(2)),
        "convolutional, second set", Stax.serial(Stax.conv(8, f, null, "SAME", 1.3, 0.1), Stax.gaussian(),
            Stax.conv(8, f, null, "SAME", 1.1, 0.1), Stax.rectifiedMonomial(2), Stax.conv(8, f, null, "SAME", 1.0, 0.1),
            Stax.monomial(2), Stax.conv(8, f, null, "SAME", 1.0, 0.1), Stax.polynomial(0.2, 1.0, -0.3),
            Stax.conv(8, f, null, "SAME", 1.0, 0.1), Stax.globalAvgPool(), Stax.dense(1)));
  }

  @Test
  void cpuAndTensorFlowAgreeInFloat64() {
    for (Map.Entry<String, Layer> m : models().entrySet()) {
      boolean conv = m.getKey().startsWith("convolutional");
      NDArray x1 = conv ? KernelTesting.randomImages(manager, 4, new long[] {5, 4, 2}, 301)
          : KernelTesting.randomInputs(manager, 7, 5, 301);
      NDArray x2 = conv ? KernelTesting.randomImages(manager, 3, new long[] {5, 4, 2}, 302)
          : KernelTesting.randomInputs(manager, 4, 5, 302);
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel cpu = m.getValue().kernelFn().withBackend(Backend.CPU).apply(x1, other);
        Kernel tf = m.getValue().kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, other);
        for (Get g : Get.values()) {
          double err = KernelTesting.relativeError(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray());
          String where = m.getKey() + (other == null ? " x1 only " : " x1, x2 ") + g;
          if (g == Get.NTK) {
            // Sign zeroes the NTK below it: what is left is the last layers' own.
            assertTrue(Double.isNaN(err) || err < 1e-12, where + ": cpu and tensorflow differ by " + err);
          } else {
            assertTrue(err < 1e-12, where + ": cpu and tensorflow differ by " + err);
          }
        }
        assertTrue(KernelTesting.relativeError(cpu.cov1().toDoubleArray(), tf.cov1().toDoubleArray()) < 1e-12);
      }
    }
  }

  @Test
  void modelFilesReadTheNewLayersWithNeuralTangentsDefaults() {
    Layer model = ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"Gelu": {}}, {"Dense": {"out_dim": 4}}, {"Sin": {"b": 2}},
          {"Dense": {"out_dim": 4}}, {"Cos": {}}, {"Dense": {"out_dim": 4}}, {"Rbf": {}},
          {"Dense": {"out_dim": 4}}, {"Exp": {"a": 0.5}}, {"Dense": {"out_dim": 4}}, {"Sign": {}}]}""");
    String json = ModelSpec.toJson(model);
    for (String s : new String[] {"{\"Gelu\":{\"approximate\":false}}", "{\"Sin\":{\"a\":1.0,\"b\":2.0,\"c\":0.0}}",
        "{\"Cos\":{\"a\":1.0,\"b\":1.0,\"c\":0.0}}", "{\"Rbf\":{\"gamma\":1.0}}",
        "{\"Exp\":{\"a\":0.5,\"b\":1.0}}", "{\"Sign\":{}}"}) {
      assertTrue(json.replace(" ", "").contains(s), s + " in " + json);
    }
    ModelException e = org.junit.jupiter.api.Assertions.assertThrows(ModelException.class, () -> ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"Rbf": {"gamma": "wide"}}]}"""));
    assertEquals("serial[1].Rbf", e.path());
    ModelException unknown = org.junit.jupiter.api.Assertions.assertThrows(ModelException.class, () -> ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"Gelu": {"approximate": true, "beta": 1}}]}"""));
    assertEquals("serial[1].Gelu", unknown.path());
  }

  @Test
  void modelFilesReadTheSecondSetWithNeuralTangentsDefaults() {
    Layer model = ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"Gaussian": {}}, {"Dense": {"out_dim": 4}}, {"Gaussian": {"a": 2}}]}""");
    String json = ModelSpec.toJson(model).replace(" ", "");
    for (String s : new String[] {"{\"Gaussian\":{\"a\":1.0,\"b\":-1.0}}", "{\"Gaussian\":{\"a\":2.0,\"b\":-1.0}}"}) {
      assertTrue(json.contains(s), s + " in " + json);
    }
    assertEquals(json, ModelSpec.toJson(Stax.serial(Stax.dense(4), Stax.gaussian(), Stax.dense(4), Stax.gaussian(2, -1)))
        .replace(" ", ""));
    assertPathError("serial[1].Gaussian", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Gaussian": {"b": "narrow"}}]}""");
    assertPathError("serial[1].Gaussian", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Gaussian": {"c": 1}}]}""");
    assertEquals("{\"RectifiedMonomial\":{\"degree\":3}}", ModelSpec.toJson(ModelSpec.parse(
        "{\"RectifiedMonomial\": {\"degree\": 3}}")).replace(" ", ""));
    assertPathError("serial[1].RectifiedMonomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"RectifiedMonomial": {}}]}""");
    assertPathError("serial[1].RectifiedMonomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"RectifiedMonomial": {"degree": -1}}]}""");
    assertPathError("serial[1].RectifiedMonomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"RectifiedMonomial": {"degree": 1.5}}]}""");
    assertEquals("{\"Monomial\":{\"degree\":5}}", ModelSpec.toJson(ModelSpec.parse(
        "{\"Monomial\": {\"degree\": 5}}")).replace(" ", ""));
    assertPathError("serial[1].Monomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Monomial": {"degree": 6}}]}""");
    assertPathError("serial[1].Monomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Monomial": {"degree": -1}}]}""");
    assertPathError("serial[1].Monomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Monomial": {}}]}""");
    assertEquals("{\"Polynomial\":{\"coef\":[1.0,2.5,0.0]}}", ModelSpec.toJson(ModelSpec.parse(
        "{\"Polynomial\": {\"coef\": [1, 2.5, 0]}}")).replace(" ", ""));
    assertEquals("{\"Polynomial\":{\"coef\":[1.0,2.5]}}", ModelSpec.toJson(Stax.polynomial(1, 2.5)).replace(" ", ""));
    assertEquals("{\"Polynomial\":{\"coef\":[]}}", ModelSpec.toJson(ModelSpec.parse(
        "{\"Polynomial\": {\"coef\": []}}")).replace(" ", ""));
    assertPathError("serial[1].Polynomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Polynomial": {}}]}""");
    assertPathError("serial[1].Polynomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Polynomial": {"coef": [1, "x"]}}]}""");
    assertPathError("serial[1].Polynomial", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Polynomial": {"coef": 2}}]}""");
    assertPathError("serial[0].Gaussian", """
        {"serial": [{"Gaussian": {}}]}""");
  }

  /**
   * {@code E[u_+^m v_+^m]} in polar coordinates of the standard normal pair: the radial integral is
   * exact ({@code 2^m m!}), the angular one Simpson's rule over the wedge where both are positive,
   * on which the integrand is smooth.
   */
  static double rectified(int m, double q11, double q22, double k) {
    double su = Math.sqrt(q11);
    double slope = k / su;
    double rest = Math.sqrt(Math.max(q22 - slope * slope, 0));
    double beta = Math.atan2(rest, slope);
    double radial = Math.pow(2, m);
    for (int i = 2; i <= m; i++) {
      radial *= i;
    }
    double angular = simpson(a -> Math.pow(Math.cos(a), m) * Math.pow(Math.cos(a - beta), m), beta - Math.PI / 2,
        Math.PI / 2);
    return radial / (2 * Math.PI) * Math.pow(su * Math.sqrt(q22), m) * angular;
  }

  @ParameterizedTest(name = "degree {0}")
  @org.junit.jupiter.params.provider.ValueSource(ints = {0, 1, 2, 3, 4})
  void rectifiedMonomialMatchesQuadrature(int d) {
    RuleTesting.Input in = RuleTesting.hardInput(19);
    Map<String, double[]> out = RuleTesting.run(Stax.rectifiedMonomial(d), in);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        int e = i * in.n2() + j;
        double q11 = in.var1()[i];
        double q22 = in.var2()[j];
        double k = in.nngp()[e];
        String where = "degree " + d + " (" + i + ", " + j + ")";
        if (q11 == 0 || q22 == 0) {
          if (d > 0) {
            assertEquals(0.0, out.get("nngp")[e], 1e-15, where);
          }
          continue;
        }
        double nngp = rectified(d, q11, q22, k);
        double dot = d == 0 ? 0 : d * d * rectified(d - 1, q11, q22, k);
        assertEquals(nngp, out.get("nngp")[e], 1e-9 * Math.max(1, Math.abs(nngp)), where + " nngp");
        assertEquals(in.ntk()[e] * dot, out.get("ntk")[e], 1e-9 * Math.max(1, Math.abs(in.ntk()[e] * dot)),
            where + " ntk");
      }
      double q = in.var1()[i];
      if (q > 0) {
        double v = rectified(d, q, q, q);
        assertEquals(v, out.get("var1")[i], 1e-9 * Math.max(1, v), "degree " + d + " var1 " + i);
      }
    }
    // Degree 1 is ReLU.
    if (d == 1) {
      Map<String, double[]> relu = RuleTesting.run(Stax.relu(), in);
      for (int e = 0; e < relu.get("nngp").length; e++) {
        assertEquals(relu.get("nngp")[e], out.get("nngp")[e], 1e-13);
        assertEquals(relu.get("ntk")[e], out.get("ntk")[e], 1e-13);
      }
    }
  }

  static Stream<Arguments> reluFamily() {
    return Stream.of(
        Arguments.of("Relu", Stax.relu(), Stax.relu(true)),
        Arguments.of("LeakyRelu", Stax.leakyRelu(0.1), Stax.leakyRelu(0.1, true)),
        Arguments.of("Abs", Stax.abs(), Stax.abs(true)),
        Arguments.of("ABRelu", Stax.abRelu(-0.3, 1.7), Stax.abRelu(-0.3, 1.7, true)));
  }

  /** {@code in} with its covariances (not its NTK) multiplied by {@code s}. */
  private static RuleTesting.Input scaled(RuleTesting.Input in, double s) {
    java.util.function.Function<double[], double[]> times =
        a -> java.util.Arrays.stream(a).map(v -> v * s).toArray();
    return new RuleTesting.Input(times.apply(in.nngp()), in.ntk(), times.apply(in.var1()), times.apply(in.var2()),
        in.n1(), in.n2());
  }

  /**
   * {@code do_stabilize}: the values without it, to rounding (the rule is 1-homogeneous), on the
   * hard inputs and on them scaled by 1e200 and 1e-200, where without it {@code k11 k22} overflows
   * (NaN) or underflows (a wrong angle). Entry (0, 2), the nearly equal pair, has an angle of 1e-7
   * known only to the square root of the rounding, so it is compared to 1e-8.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("reluFamily")
  void doStabilizeChangesOnlyTheRounding(String name, Layer plain, Layer stable) {
    RuleTesting.Input in = RuleTesting.hardInput(23);
    Map<String, double[]> want = RuleTesting.run(plain, in);
    for (double s : new double[] {1, 1e200, 1e-200}) {
      Map<String, double[]> got = RuleTesting.run(stable, scaled(in, s));
      for (String term : new String[] {"nngp", "ntk", "var1", "var2"}) {
        double unit = term.equals("ntk") ? 1 : s;
        for (int e = 0; e < want.get(term).length; e++) {
          double w = want.get(term)[e];
          double tolerance = term.startsWith("var") || e != 2 ? 1e-13 : 1e-8;
          assertEquals(w, got.get(term)[e] / unit, tolerance * Math.abs(w) + 1e-300,
              name + " scaled by " + s + " " + term + " entry " + e);
        }
      }
    }
    double[] overflow = RuleTesting.run(plain, scaled(in, 1e200)).get("nngp");
    assertTrue(java.util.Arrays.stream(overflow).anyMatch(v -> !Double.isFinite(v)), "without do_stabilize 1e200 "
        + "overflows");
    double[] underflow = RuleTesting.run(plain, scaled(in, 1e-200)).get("nngp");
    assertTrue(KernelTesting.relativeError(java.util.Arrays.stream(underflow).map(v -> v / 1e-200).toArray(),
        want.get("nngp")) > 1e-3, "without do_stabilize 1e-200 underflows");
  }

  /**
   * A float32 network whose variances reach 1e24 (the products of two overflow): with {@code
   * do_stabilize} its kernels are 1e24 times those of the same network with {@code W_std = 1} in
   * the first layer (every layer is 1-homogeneous, there is no bias), on both backends, x2 given
   * and absent; without it they are not finite.
   */
  @Test
  void doStabilizeKeepsFloat32KernelsOfLargeVariancesFinite() {
    double w = 1e12;
    java.util.function.BiFunction<Double, Boolean, Layer> model = (wStd, stable) -> Stax.serial(
        Stax.dense(8, wStd, null), Stax.relu(stable), Stax.dense(8, 1.0, null), Stax.abs(stable),
        Stax.dense(8, 1.1, null), Stax.leakyRelu(0.2, stable), Stax.dense(8, 0.9, null),
        Stax.abRelu(-0.5, 1.5, stable), Stax.dense(2));
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 401).toType(ai.djl.ndarray.types.DataType.FLOAT32, false);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 402).toType(ai.djl.ndarray.types.DataType.FLOAT32, false);
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel unit = model.apply(1.0, false).kernelFn().withBackend(backend).apply(x1, other);
        Kernel large = model.apply(w, true).kernelFn().withBackend(backend).apply(x1, other);
        String where = backend + (other == null ? " x1 only " : " x1, x2 ");
        for (Get g : Get.values()) {
          double[] want = java.util.Arrays.stream(Tensors.toDoubles(unit.get(g))).map(v -> v * w * w).toArray();
          double err = KernelTesting.relativeError(Tensors.toDoubles(large.get(g)), want);
          assertTrue(err < 1e-5, where + g + ": " + err);
        }
        double[] plain = Tensors.toDoubles(model.apply(w, false).kernelFn().withBackend(backend).apply(x1, other)
            .nngp());
        assertTrue(java.util.Arrays.stream(plain).anyMatch(v -> !Double.isFinite(v)), where + "without do_stabilize");
      }
    }
  }

  @Test
  void modelFilesReadDoStabilize() {
    assertEquals("{\"Relu\":{\"do_stabilize\":true}}",
        ModelSpec.toJson(ModelSpec.parse("{\"Relu\": {\"do_stabilize\": true}}")).replace(" ", ""));
    assertEquals("{\"ABRelu\":{\"a\":-1.0,\"b\":2.0,\"do_stabilize\":false}}",
        ModelSpec.toJson(Stax.abRelu(-1, 2)).replace(" ", ""));
    assertEquals(ModelSpec.toJson(Stax.leakyRelu(0.3, true)),
        ModelSpec.toJson(ModelSpec.parse("{\"LeakyRelu\": {\"alpha\": 0.3, \"do_stabilize\": true}}")));
    assertEquals(ModelSpec.toJson(Stax.abs(true)),
        ModelSpec.toJson(ModelSpec.parse("{\"Abs\": {\"do_stabilize\": true}}")));
    assertPathError("serial[1].Relu", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Relu": {"do_stabilize": 1}}]}""");
  }

  private static void assertPathError(String path, String model) {
    ModelException e = org.junit.jupiter.api.Assertions.assertThrows(ModelException.class,
        () -> ModelSpec.parse(model).kernelFn().apply(KernelTesting.randomInputs(manager, 2, 3, 1), null));
    assertEquals(path, e.path(), e.getMessage());
  }
}

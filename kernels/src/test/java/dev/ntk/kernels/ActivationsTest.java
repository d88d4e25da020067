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
 * Monomial, Polynomial, Sigmoid_like, Gabor, Hermite on unit variances, ExpNormalized against its
 * formula and derivative, do_stabilize on the ReLU family): each rule against a quadrature of
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

  /** neural-tangents' constant in {@code Sigmoid_like}, written here from its documentation. */
  private static final double SIGMOID_WIDTH = 2.4020563531719796;

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
        new Case("Polynomial constant", Stax.polynomial(0.7), x -> 0.7, x -> 0),
        new Case("Sigmoid_like", Stax.sigmoidLike(), x -> 0.5 * SpecialFunctions.erf(x / SIGMOID_WIDTH) + 0.5,
            x -> Math.exp(-(x / SIGMOID_WIDTH) * (x / SIGMOID_WIDTH)) / (SIGMOID_WIDTH * Math.sqrt(Math.PI))),
        new Case("Gabor", Stax.gabor(), x -> Math.exp(-x * x) * Math.sin(x),
            x -> Math.exp(-x * x) * (Math.cos(x) - 2 * x * Math.sin(x))));
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
            Stax.dense(w, 1.0, 0.1), Stax.rectifiedMonomial(0), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("sigmoid_like, gabor", Stax.serial(Stax.dense(w, 1.5, 0.1), Stax.sigmoidLike(),
            Stax.dense(w, 1.2, 0.1), Stax.gabor(), Stax.dense(w, 1.0, 0.1))));
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
   * The NTK factors of the new smooth layers against the empirical NTK of wide finite networks
   * ({@link MonteCarlo#ntk}: random-direction Jacobian-vector products of {@code apply}).
   */
  @Test
  void analyticNtkMatchesWideFiniteNetworks() {
    int w = 512;
    Layer model = Stax.serial(Stax.dense(w, 1.5, 0.1), Stax.sigmoidLike(), Stax.dense(w, 1.2, 0.1), Stax.gabor(),
        Stax.dense(w, 1.0, 0.1));
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 221);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 222);
    MonteCarlo.Estimate mc = MonteCarlo.ntk(model, x1, x2, 64, 13);
    KernelTesting.assertMatchesMonteCarlo("NTK sigmoid_like, gabor", model.kernelFn().apply(x1, x2).ntk()
        .toDoubleArray(), mc, 2.0 / w, 0.10);
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
        "dense, third set", Stax.serial(Stax.dense(16, 1.3, 0.1), Stax.sigmoidLike(), Stax.dense(16, 1.1, 0.2),
            Stax.gabor(), Stax.dense(16, 1.5, 0.1), Stax.expNormalized(0.7, -0.5, false), Stax.dense(16, 1.0, 0.1),
            Stax.expNormalized(), Stax.dense(16, 1.0, 0.1), Stax.expNormalized(1.2, -1, true), Stax.dense(2)),
        "convolutional, third set", Stax.serial(Stax.conv(8, f, null, "SAME", 1.3, 0.1), Stax.gabor(),
            Stax.conv(8, f, null, "SAME", 1.5, 0.1), Stax.sigmoidLike(), Stax.conv(8, f, null, "SAME", 1.0, 0.1),
            Stax.expNormalized(0.9, -0.8, true), Stax.conv(8, f, null, "SAME", 1.0, 0.1), Stax.globalAvgPool(),
            Stax.dense(1)),
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

  /**
   * Every activation maps the pair of an example with itself to its variance to the last bit, so a
   * ReLU after it sees the angle 0 there: its NTK factor is exactly 1/2 on the diagonal (Cho and
   * Saul's closed form at {@code theta = 0}), on both backends. With a variance formula of its own
   * ({@code E[f(u)^2]}) apart from the pair rule, an ulp between the two moved the angle to about
   * 1e-8 and the NTK by about 1e-9 (Erf 1.9e-9, Gelu 1.4e-9, Gabor 1.8e-9 between cpu and
   * tensorflow, differently at each entry), first seen on ConvLocal, AvgPool, Erf, ConvLocal, Relu,
   * GlobalAvgPool (9.4e-10).
   */
  @Test
  void aReluAfterAnyActivationSeesTheAngleZeroOnIdenticalInputs() {
    Map<String, Layer> activations = new java.util.LinkedHashMap<>();
    activations.put("Erf", Stax.erf());
    activations.put("Erf(1.3, 0.7, 0.2)", Stax.erf(1.3, 0.7, 0.2));
    activations.put("Sigmoid_like", Stax.sigmoidLike());
    activations.put("Gelu", Stax.gelu());
    activations.put("Gaussian", Stax.gaussian(1.2, -0.7));
    activations.put("Gabor", Stax.gabor());
    activations.put("RectifiedMonomial(2)", Stax.rectifiedMonomial(2));
    activations.put("Monomial(3)", Stax.monomial(3));
    activations.put("Polynomial", Stax.polynomial(0.1, 1.0, 0.3));
    activations.put("Sin", Stax.sin(1.1, 0.9, 0.2));
    activations.put("Exp", Stax.exp(0.8, 0.5));
    activations.put("ElementwiseNumerical tanh", Stax.elementwiseNumerical("tanh", 16));
    NDArray x1 = KernelTesting.randomInputs(manager, 9, 5, 311);
    NDArray x2 = KernelTesting.randomInputs(manager, 4, 5, 312);
    for (Map.Entry<String, Layer> a : activations.entrySet()) {
      Layer body = Stax.serial(Stax.dense(8, 1.5, 0.1), a.getValue(), Stax.dense(8, 1.2, 0.1));
      for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
        Kernel k = body.kernelFn().withBackend(backend).apply(x1);
        Kernel relu = Stax.serial(body, Stax.relu()).kernelFn().withBackend(backend).apply(x1);
        double[] nngp = k.nngp().toDoubleArray();
        double[] ntk = k.ntk().toDoubleArray();
        double[] var = k.cov1().toDoubleArray();
        double[] after = relu.ntk().toDoubleArray();
        for (int i = 0; i < var.length; i++) {
          int ii = i * var.length + i;
          String where = a.getKey() + " " + backend.key() + " example " + i;
          assertEquals(var[i], nngp[ii], 0.0, where + ": covariance with itself is not its variance");
          assertEquals(ntk[ii] / 2, after[ii], 1e-15 * ntk[ii], where + ": the ReLU's NTK factor is not 1/2");
        }
      }
      KernelTesting.assertBackendsAgree(a.getKey() + ", Relu", Stax.serial(body, Stax.relu(), Stax.dense(1)), x1,
          x2);
    }
  }

  /**
   * The case the gap was found on: Erf between an AvgPool and a ConvLocal, whose pixel-pair blocks
   * are its per-pixel kernels on their diagonal, under both parameterizations; and Erf before an
   * AvgPool read out by Flatten.
   */
  @Test
  void erfBetweenPoolsAndConvolutionsAgreesAcrossBackends() {
    int[] f = {2, 2};
    for (Linear.Parameterization p : Linear.Parameterization.values()) {
      Layer local = Stax.serial(Stax.convLocal(8, f, null, "SAME", 1.3, 0.2, p), Stax.avgPool(new int[] {2, 1}, null,
          "VALID"), Stax.erf(), Stax.convLocal(8, new int[] {1, 2}, null, "VALID", 1.1, 0.1, p), Stax.relu(),
          Stax.globalAvgPool());
      Layer conv = Stax.serial(Stax.conv(8, f, null, "SAME", 1.3, 0.1, p), Stax.erf(), Stax.avgPool(f, null, "VALID"),
          Stax.conv(8, f, null, "SAME", 1.2, 0.1, p), Stax.relu(), Stax.flatten(), Stax.dense(1, 1.1, 0.1, p));
      KernelTesting.assertBackendsAgree("ConvLocal, AvgPool, Erf, ConvLocal, Relu " + p, local,
          KernelTesting.randomImages(manager, 4, new long[] {4, 3, 2}, 21),
          KernelTesting.randomImages(manager, 3, new long[] {4, 3, 2}, 22));
      KernelTesting.assertBackendsAgree("Conv, Erf, AvgPool, Conv, Relu " + p, conv,
          KernelTesting.randomImages(manager, 4, new long[] {4, 4, 3}, 23),
          KernelTesting.randomImages(manager, 3, new long[] {4, 4, 3}, 24));
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
   * Float32 networks whose variances reach 1e24 (the products of two overflow), dense and
   * convolutional (whose pooling needs the pixel-pair covariances): with {@code do_stabilize} their
   * kernels are 1e24 times those of the same network with {@code W_std = 1} in the first layer
   * (every layer is 1-homogeneous, there is no bias), on both backends, x2 given and absent;
   * without it they are not finite.
   */
  @Test
  void doStabilizeKeepsFloat32KernelsOfLargeVariancesFinite() {
    double w = 1e12;
    int[] f = {3, 3};
    Map<String, java.util.function.BiFunction<Double, Boolean, Layer>> models = Map.of(
        "dense", (wStd, stable) -> Stax.serial(
            Stax.dense(8, wStd, null), Stax.relu(stable), Stax.dense(8, 1.0, null), Stax.abs(stable),
            Stax.dense(8, 1.1, null), Stax.leakyRelu(0.2, stable), Stax.dense(8, 0.9, null),
            Stax.abRelu(-0.5, 1.5, stable), Stax.dense(2)),
        "convolutional", (wStd, stable) -> Stax.serial(
            Stax.conv(4, f, null, "SAME", wStd, null), Stax.relu(stable), Stax.conv(4, f, null, "SAME", 1.0, null),
            Stax.abRelu(-0.5, 1.5, stable), Stax.globalAvgPool(), Stax.dense(1)));
    ai.djl.ndarray.types.DataType f32 = ai.djl.ndarray.types.DataType.FLOAT32;
    for (Map.Entry<String, java.util.function.BiFunction<Double, Boolean, Layer>> m : models.entrySet()) {
      boolean conv = m.getKey().equals("convolutional");
      NDArray x1 = (conv ? KernelTesting.randomImages(manager, 4, new long[] {4, 3, 2}, 401)
          : KernelTesting.randomInputs(manager, 5, 4, 401)).toType(f32, false);
      NDArray x2 = (conv ? KernelTesting.randomImages(manager, 3, new long[] {4, 3, 2}, 402)
          : KernelTesting.randomInputs(manager, 3, 4, 402)).toType(f32, false);
      for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
        for (NDArray other : new NDArray[] {null, x2}) {
          Kernel unit = m.getValue().apply(1.0, false).kernelFn().withBackend(backend).apply(x1, other);
          Kernel large = m.getValue().apply(w, true).kernelFn().withBackend(backend).apply(x1, other);
          String where = m.getKey() + " " + backend + (other == null ? " x1 only " : " x1, x2 ");
          for (Get g : Get.values()) {
            double[] want = java.util.Arrays.stream(Tensors.toDoubles(unit.get(g))).map(v -> v * w * w).toArray();
            double err = KernelTesting.relativeError(Tensors.toDoubles(large.get(g)), want);
            assertTrue(err < 1e-5, where + g + ": " + err);
          }
          double[] plain = Tensors.toDoubles(m.getValue().apply(w, false).kernelFn().withBackend(backend)
              .apply(x1, other).nngp());
          assertTrue(java.util.Arrays.stream(plain).anyMatch(v -> !Double.isFinite(v)),
              where + "without do_stabilize");
        }
      }
    }
  }

  @Test
  void modelFilesReadDoStabilize() {
    assertEquals("{\"Relu\":{\"do_stabilize\":true}}",
        ModelSpec.toJson(ModelSpec.parse("{\"Relu\": {\"do_stabilize\": true}}")).replace(" ", ""));
    // Written only when true: models that do not use it keep their text, digest and stored tiles.
    assertEquals("{\"ABRelu\":{\"a\":-1.0,\"b\":2.0}}", ModelSpec.toJson(Stax.abRelu(-1, 2, false)).replace(" ", ""));
    assertEquals("{\"Relu\":{}}", ModelSpec.toJson(ModelSpec.parse("{\"Relu\": {\"do_stabilize\": false}}")));
    assertEquals("{\"ABRelu\":{\"a\":-1.0,\"b\":2.0,\"do_stabilize\":true}}",
        ModelSpec.toJson(Stax.abRelu(-1, 2, true)).replace(" ", ""));
    assertEquals(ModelSpec.toJson(Stax.leakyRelu(0.3, true)),
        ModelSpec.toJson(ModelSpec.parse("{\"LeakyRelu\": {\"alpha\": 0.3, \"do_stabilize\": true}}")));
    assertEquals(ModelSpec.toJson(Stax.abs(true)),
        ModelSpec.toJson(ModelSpec.parse("{\"Abs\": {\"do_stabilize\": true}}")));
    assertPathError("serial[1].Relu", """
        {"serial": [{"Dense": {"out_dim": 4}}, {"Relu": {"do_stabilize": 1}}]}""");
  }

  /** Normalized probabilists' Hermite polynomial: {@code He_n} by its recurrence, over {@code sqrt(n!)}. */
  private static double hermite(int n, double x) {
    double previous = 1;
    double current = n == 0 ? 1 : x;
    for (int j = 1; j < n; j++) {
      double next = x * current - j * previous;
      previous = current;
      current = next;
    }
    for (int j = 2; j <= n; j++) {
      current /= Math.sqrt(j);
    }
    return current;
  }

  /**
   * Inputs of variance 1: rows {@code x1 = [r0, r1, r2, r3]}, {@code x2 = [r0, -r1, r0 + 1e-7 e, r4]}
   * scaled to {@code |x|^2 = d}, with equal, opposite and nearly equal pairs.
   */
  static RuleTesting.Input unitInput(long seed) {
    java.util.Random r = new java.util.Random(seed);
    int d = 6;
    double[][] rows = new double[5][d];
    for (double[] row : rows) {
      for (int k = 0; k < d; k++) {
        row[k] = r.nextGaussian();
      }
    }
    double[] near = rows[0].clone();
    near[0] += 1e-7;
    double[] opposite = java.util.Arrays.stream(rows[1]).map(v -> -v).toArray();
    double[][] x1 = {rows[0], rows[1], rows[2], rows[3]};
    double[][] x2 = {rows[0], opposite, near, rows[4]};
    for (double[][] x : new double[][][] {x1, x2}) {
      for (double[] row : x) {
        double norm = Math.sqrt(dot(row, row) / d);
        for (int k = 0; k < d; k++) {
          row[k] /= norm;
        }
      }
    }
    double[] nngp = new double[16];
    double[] ntk = new double[16];
    for (int i = 0; i < 4; i++) {
      for (int j = 0; j < 4; j++) {
        nngp[i * 4 + j] = dot(x1[i], x2[j]) / d;
        ntk[i * 4 + j] = 0.5 + r.nextDouble();
      }
    }
    double[] var1 = java.util.Arrays.stream(x1).mapToDouble(x -> dot(x, x) / d).toArray();
    double[] var2 = java.util.Arrays.stream(x2).mapToDouble(x -> dot(x, x) / d).toArray();
    return new RuleTesting.Input(nngp, ntk, var1, var2, 4, 4);
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int k = 0; k < a.length; k++) {
      s += a[k] * b[k];
    }
    return s;
  }

  /**
   * Hermite on inputs of variance 1: the rule against a quadrature of {@code E[h_n(u) h_n(v)]} and
   * {@code E[h_n'(u) h_n'(v)]}, {@code h_n} from the unnormalized recurrence; the variance stays 1.
   */
  @ParameterizedTest(name = "degree {0}")
  @org.junit.jupiter.params.provider.ValueSource(ints = {0, 1, 2, 3, 5, 8})
  void hermiteMatchesQuadratureOnUnitVariances(int n) {
    RuleTesting.Input in = unitInput(31);
    Map<String, double[]> out = RuleTesting.run(Stax.hermite(n), in);
    DoubleUnaryOperator f = x -> hermite(n, x);
    DoubleUnaryOperator df = x -> n == 0 ? 0 : Math.sqrt(n) * hermite(n - 1, x);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        int e = i * in.n2() + j;
        double k = in.nngp()[e];
        double nngp = expectation(f, f, in.var1()[i], in.var2()[j], k);
        double dot = expectation(df, df, in.var1()[i], in.var2()[j], k);
        String where = "degree " + n + " (" + i + ", " + j + ")";
        assertEquals(nngp, out.get("nngp")[e], 1e-9 * Math.max(1, Math.abs(nngp)), where + " nngp");
        assertEquals(in.ntk()[e] * dot, out.get("ntk")[e], 1e-9 * Math.max(1, Math.abs(in.ntk()[e] * dot)),
            where + " ntk");
      }
      assertEquals(1.0, out.get("var1")[i], 1e-14);
    }
  }

  /**
   * Hermite's rule holds for unit variances only: its kernel is NaN where a variance differs from
   * 1 by more than 1e-5 (every entry of the hard inputs), and finite within it.
   */
  @Test
  void hermiteIsUndefinedUnlessTheVariancesAreOne() {
    Map<String, double[]> out = RuleTesting.run(Stax.hermite(3), RuleTesting.hardInput(29));
    for (String term : new String[] {"nngp", "ntk", "var1", "var2"}) {
      assertTrue(java.util.Arrays.stream(out.get(term)).allMatch(Double::isNaN), term);
    }
    RuleTesting.Input unit = unitInput(37);
    Map<String, double[]> near = RuleTesting.run(Stax.hermite(3), scaled(unit, 1 + 5e-6));
    Map<String, double[]> far = RuleTesting.run(Stax.hermite(3), scaled(unit, 1 + 2e-5));
    for (String term : new String[] {"nngp", "ntk", "var1", "var2"}) {
      assertTrue(java.util.Arrays.stream(near.get(term)).allMatch(Double::isFinite), term);
      assertTrue(java.util.Arrays.stream(far.get(term)).allMatch(Double::isNaN), term);
    }
    Map<String, double[]> zero = RuleTesting.run(Stax.hermite(0), RuleTesting.hardInput(29));
    assertTrue(java.util.Arrays.stream(zero.get("ntk")).allMatch(Double::isNaN), "degree 0 ntk");
  }

  /** {@code x} with each row (each pixel's channels, for images) scaled to mean square 1. */
  private static NDArray unitRows(NDArray x) {
    return x.div(x.square().mean(new int[] {-1}, true).sqrt());
  }

  /** Hermite networks on inputs of variance 1: Monte Carlo of the finite network, and cpu = tensorflow. */
  @Test
  void hermiteNetworksMatchMonteCarloAndAgreeAcrossBackends() {
    int w = 256;
    NDArray x1 = unitRows(KernelTesting.randomInputs(manager, 5, 4, 211));
    // x2 near x1's first rows, so that the kernel (rho^n) is not small beside the noise.
    NDArray x2 = unitRows(x1.get("0:3").add(Tensors.mul(KernelTesting.randomInputs(manager, 3, 4, 212), 0.5)));
    // He_n(u) He_n(v) has heavy tails: many narrower draws (the bias is O(1 / width)); the bounds are
    // about 7% (degree 2) and 15% (degree 3) of the kernel.
    Map<String, Layer> wide = Map.of(
        "hermite 2", Stax.serial(Stax.dense(w, 1.0, null), Stax.hermite(2), Stax.dense(w, 1.0, null)),
        "hermite 3", Stax.serial(Stax.dense(w, 1.0, null), Stax.hermite(3), Stax.dense(w, 1.0, null)));
    for (Map.Entry<String, Layer> m : wide.entrySet()) {
      MonteCarlo.Estimate mc = MonteCarlo.nngp(m.getValue(), x1, x2, 384, 11);
      KernelTesting.assertMatchesMonteCarlo(m.getKey(), m.getValue().kernelFn().apply(x1, x2).nngp().toDoubleArray(),
          mc, 2.0 / w, 0.20);
    }
    int[] f = {3, 3};
    Map<String, Layer> models = Map.of(
        "dense", Stax.serial(Stax.dense(16, 1.0, null), Stax.hermite(3), Stax.dense(16, 1.0, null), Stax.hermite(0),
            Stax.dense(16, 1.0, null), Stax.hermite(5), Stax.dense(16, 1.0, null), Stax.hermite(2), Stax.dense(2)),
        "convolutional", Stax.serial(Stax.conv(8, f, null, "CIRCULAR", 1.0, null), Stax.hermite(2),
            Stax.conv(8, f, null, "CIRCULAR", 1.0, null), Stax.hermite(3), Stax.globalAvgPool(), Stax.dense(1)));
    for (Map.Entry<String, Layer> m : models.entrySet()) {
      boolean conv = m.getKey().equals("convolutional");
      NDArray y1 = conv ? unitRows(KernelTesting.randomImages(manager, 4, new long[] {5, 4, 2}, 311)) : x1;
      NDArray y2 = conv ? unitRows(KernelTesting.randomImages(manager, 3, new long[] {5, 4, 2}, 312)) : x2;
      for (NDArray other : new NDArray[] {null, y2}) {
        Kernel cpu = m.getValue().kernelFn().withBackend(Backend.CPU).apply(y1, other);
        Kernel tf = m.getValue().kernelFn().withBackend(Backend.TENSORFLOW).apply(y1, other);
        for (Get g : Get.values()) {
          double[] c = cpu.get(g).toDoubleArray();
          assertTrue(java.util.Arrays.stream(c).allMatch(Double::isFinite), m.getKey() + " " + g);
          double err = KernelTesting.relativeError(c, tf.get(g).toDoubleArray());
          assertTrue(err < 1e-12, m.getKey() + " " + g + ": cpu and tensorflow differ by " + err);
        }
      }
    }
    // In float32 the variances are 1 to about 1e-7, well within the 1e-5 accepted.
    Layer dense = models.get("dense");
    for (Backend b : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      double[] single = Tensors.toDoubles(dense.kernelFn().withBackend(b)
          .apply(x1.toType(ai.djl.ndarray.types.DataType.FLOAT32, false), null).nngp());
      double err = KernelTesting.relativeError(single, dense.kernelFn().apply(x1, null).nngp().toDoubleArray());
      assertTrue(err < 1e-5, b + " float32: " + err);
    }
    // Without unit variances: NaN on both backends.
    NDArray raw = Tensors.mul(x1, 1.1);
    for (Backend b : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      double[] nngp = models.get("dense").kernelFn().withBackend(b).apply(raw, null).nngp().toDoubleArray();
      assertTrue(java.util.Arrays.stream(nngp).allMatch(Double::isNaN), b + " without unit variances");
    }
  }

  /**
   * ExpNormalized after one Dense layer, against its formula evaluated on the data here: {@code
   * q12 = W_std^2 x1.x2 / d + b_std^2}, {@code nngp = r exp(gamma (q12 / r + shift))} with {@code r =
   * sqrt(q11 q22)}, {@code ntk = q12 gamma exp(...)} (the Dense NTK is its NNGP), on both backends,
   * x2 given and absent, clipped and not.
   */
  @Test
  void expNormalizedIsItsFormulaOnTheData() {
    double wStd = 1.3;
    double bStd = 0.2;
    double gamma = 0.8;
    double shift = -0.6;
    NDArray x1 = KernelTesting.randomInputs(manager, 5, 4, 501);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 4, 502);
    for (boolean clip : new boolean[] {false, true}) {
      Layer model = Stax.serial(Stax.dense(4, wStd, bStd), Stax.expNormalized(gamma, shift, clip));
      for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
        for (NDArray other : new NDArray[] {null, x2}) {
          Kernel k = model.kernelFn().withBackend(backend).apply(x1, other);
          double[][] a = rows(x1);
          double[][] c = rows(other == null ? x1 : other);
          double[] nngp = k.nngp().toDoubleArray();
          double[] ntk = k.ntk().toDoubleArray();
          String where = backend + (clip ? " clipped" : "") + (other == null ? " x1 only" : " x1, x2");
          for (int i = 0; i < a.length; i++) {
            double q11 = wStd * wStd * dot(a[i], a[i]) / 4 + bStd * bStd;
            for (int j = 0; j < c.length; j++) {
              double q22 = wStd * wStd * dot(c[j], c[j]) / 4 + bStd * bStd;
              double q12 = wStd * wStd * dot(a[i], c[j]) / 4 + bStd * bStd;
              double r = Math.sqrt(q11 * q22);
              double rho = clip ? Math.max(-1, Math.min(1, q12 / r)) : q12 / r;
              double e = Math.exp(gamma * (rho + shift));
              assertEquals(r * e, nngp[i * c.length + j], 1e-12 * r * e, where + " nngp");
              assertEquals(q12 * gamma * e, ntk[i * c.length + j], 1e-12 * Math.abs(q12) * gamma * e + 1e-15,
                  where + " ntk");
            }
            assertEquals(q11 * Math.exp(gamma * (1 + shift)), k.cov1().toDoubleArray()[i], 1e-12 * q11, where);
          }
        }
      }
    }
  }

  private static double[][] rows(NDArray x) {
    int n = Math.toIntExact(x.getShape().get(0));
    double[] v = x.toDoubleArray();
    int d = v.length / n;
    double[][] out = new double[n][];
    for (int i = 0; i < n; i++) {
      out[i] = java.util.Arrays.copyOfRange(v, i * d, i * d + d);
    }
    return out;
  }

  /**
   * ExpNormalized's NTK factor is the derivative of its NNGP in {@code k}: central differences on
   * the hard inputs (the zero rows left out, where {@code rho} is {@code k / 1e-15}); its finite
   * network does not exist, and Monte Carlo says so.
   */
  @Test
  void expNormalizedNtkFactorIsTheDerivativeAndItHasNoFiniteNetwork() {
    RuleTesting.Input in = RuleTesting.hardInput(41);
    Layer layer = Stax.expNormalized(0.9, -0.7, false);
    Map<String, double[]> out = RuleTesting.run(layer, in);
    double h = 1e-6;
    java.util.function.DoubleFunction<double[]> shifted = t -> RuleTesting.run(layer, new RuleTesting.Input(
        java.util.Arrays.stream(in.nngp()).map(v -> v + t).toArray(), in.ntk(), in.var1(), in.var2(), in.n1(),
        in.n2())).get("nngp");
    double[] up = shifted.apply(h);
    double[] down = shifted.apply(-h);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        if (in.var1()[i] == 0 || in.var2()[j] == 0) {
          continue;
        }
        int e = i * in.n2() + j;
        double derivative = (up[e] - down[e]) / (2 * h);
        assertEquals(derivative, out.get("ntk")[e] / in.ntk()[e], 1e-7 * Math.abs(derivative),
            "(" + i + ", " + j + ")");
      }
    }
    NDArray x = KernelTesting.randomInputs(manager, 3, 4, 43);
    ModelException e = org.junit.jupiter.api.Assertions.assertThrows(ModelException.class,
        () -> MonteCarlo.nngp(Stax.serial(Stax.dense(8), Stax.expNormalized()), x, x, 2, 1));
    assertTrue(e.getMessage().contains("no finite network"), e.getMessage());
  }

  /** The finite derivatives of the new layers against central differences of their functions. */
  @Test
  void derivativesMatchCentralDifferences() {
    double[] xs = java.util.stream.IntStream.rangeClosed(-30, 30).mapToDouble(i -> i / 10.0 + 0.013).toArray();
    NDArray x = manager.create(xs);
    double h = 1e-5;
    Map<String, Layer> layers = new java.util.LinkedHashMap<>();
    layers.put("Gabor", Stax.gabor());
    for (int n : new int[] {0, 1, 2, 4, 7}) {
      layers.put("Hermite " + n, Stax.hermite(n));
    }
    for (Map.Entry<String, Layer> l : layers.entrySet()) {
      Layer layer = l.getValue();
      double[] up = layer.apply(Params.EMPTY, Tensors.add(x, h)).toDoubleArray();
      double[] down = layer.apply(Params.EMPTY, Tensors.add(x, -h)).toDoubleArray();
      double[] d = layer instanceof Elementwise.Gabor g ? g.derivative(x).toDoubleArray()
          : ((Elementwise.Hermite) layer).derivative(x).toDoubleArray();
      for (int i = 0; i < xs.length; i++) {
        double fd = (up[i] - down[i]) / (2 * h);
        assertEquals(fd, d[i], 1e-7 * Math.max(1, Math.abs(fd)), l.getKey() + " at " + xs[i]);
      }
    }
    // Hermite's finite function is the normalized polynomial.
    double[] h5 = Stax.hermite(5).apply(Params.EMPTY, x).toDoubleArray();
    for (int i = 0; i < xs.length; i++) {
      assertEquals(hermite(5, xs[i]), h5[i], 1e-12 * Math.max(1, Math.abs(h5[i])));
    }
  }

  /**
   * The second derivatives of the new layers ({@link Layer#jet}'s curvature) against central
   * differences of their first derivatives; ExpNormalized has none, as it has no finite network.
   */
  @Test
  void secondDerivativesMatchCentralDifferences() {
    double[] xs = java.util.stream.IntStream.rangeClosed(-30, 30).mapToDouble(i -> i / 10.0 + 0.013).toArray();
    NDArray x = manager.create(xs);
    double h = 1e-5;
    Map<String, Elementwise.Nonlinearity> layers = new java.util.LinkedHashMap<>();
    layers.put("Gabor", (Elementwise.Nonlinearity) Stax.gabor());
    for (int n : new int[] {0, 1, 2, 3, 4, 7}) {
      layers.put("Hermite " + n, (Elementwise.Nonlinearity) Stax.hermite(n));
    }
    for (Map.Entry<String, Elementwise.Nonlinearity> l : layers.entrySet()) {
      Elementwise.Nonlinearity layer = l.getValue();
      double[] up = layer.derivative(Tensors.add(x, h)).toDoubleArray();
      double[] down = layer.derivative(Tensors.add(x, -h)).toDoubleArray();
      double[] d2 = layer.secondDerivative(x).toDoubleArray();
      for (int i = 0; i < xs.length; i++) {
        double fd = (up[i] - down[i]) / (2 * h);
        assertEquals(fd, d2[i], 1e-7 * Math.max(1, Math.abs(fd)), l.getKey() + "'' at " + xs[i]);
      }
    }
    ModelException e = org.junit.jupiter.api.Assertions.assertThrows(ModelException.class,
        () -> ((Elementwise.Nonlinearity) Stax.expNormalized()).secondDerivative(x));
    assertTrue(e.getMessage().contains("no finite network"), e.getMessage());
  }

  @Test
  void modelFilesReadTheThirdSetWithNeuralTangentsDefaults() {
    Layer model = ModelSpec.parse("""
        {"serial": [{"Dense": {"out_dim": 4}}, {"Sigmoid_like": {}}, {"Dense": {"out_dim": 4}}, {"Gabor": {}},
          {"Dense": {"out_dim": 4}}, {"Hermite": {"degree": 3}}, {"Dense": {"out_dim": 4}},
          {"ExpNormalized": {"gamma": 2}}]}""");
    String json = ModelSpec.toJson(model).replace(" ", "");
    for (String s : new String[] {"{\"Sigmoid_like\":{}}", "{\"Gabor\":{}}", "{\"Hermite\":{\"degree\":3}}",
        "{\"ExpNormalized\":{\"gamma\":2.0,\"shift\":-1.0,\"do_clip\":false}}"}) {
      assertTrue(json.contains(s), s + " in " + json);
    }
    assertEquals(json, ModelSpec.toJson(Stax.serial(Stax.dense(4), Stax.sigmoidLike(), Stax.dense(4), Stax.gabor(),
        Stax.dense(4), Stax.hermite(3), Stax.dense(4), Stax.expNormalized(2, -1, false))).replace(" ", ""));
    for (String bad : new String[] {"{}", "{\"degree\": -1}", "{\"degree\": 171}", "{\"degree\": 2.5}"}) {
      assertPathError("serial[1].Hermite", "{\"serial\": [{\"Dense\": {}}, {\"Hermite\": " + bad + "}]}");
    }
    assertEquals(170, ((Elementwise.Hermite) Stax.hermite(170)).arguments().get("degree"));
    assertPathError("serial[1].ExpNormalized", """
        {"serial": [{"Dense": {}}, {"ExpNormalized": {"gamma": "wide"}}]}""");
    assertPathError("serial[1].ExpNormalized", """
        {"serial": [{"Dense": {}}, {"ExpNormalized": {"do_clip": 1}}]}""");
    assertPathError("serial[1].Sigmoid_like", """
        {"serial": [{"Dense": {}}, {"Sigmoid_like": {"a": 1}}]}""");
    assertPathError("serial[0].Gabor", """
        {"serial": [{"Gabor": {}}, {"Dense": {}}]}""");
  }

  private static void assertPathError(String path, String model) {
    ModelException e = org.junit.jupiter.api.Assertions.assertThrows(ModelException.class,
        () -> ModelSpec.parse(model).kernelFn().apply(KernelTesting.randomInputs(manager, 2, 3, 1), null));
    assertEquals(path, e.path(), e.getMessage());
  }
}

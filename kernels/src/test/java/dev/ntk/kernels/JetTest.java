package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every layer's second-order Taylor-mode pass ({@link Layer#jet}) in float64, on {@link
 * DerivativesTest}'s layers: along a random curve {@code p + e v}, {@code x + e x1 + e^2/2 x2} its
 * outputs are {@code apply}'s, its tangents the JVP's, and its second derivatives within 1e-6 (relative
 * to the larger of 1 and the value) of the central second difference {@code (g(h) - 2 g(0) +
 * g(-h)) / h^2} of the outputs along the curve.
 */
class JetTest {
  /** Rounding costs the second difference about {@code 1e-16 |g| / H^2}, truncation {@code H^2 g'''' / 12}. */
  private static final double H = 1e-4;
  private static final double TOLERANCE = 1e-6;
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> layers() {
    return DerivativesTest.layers();
  }

  /** {@code Aggregate} between nonlinear layers, under the pattern of its batch ({@link Graph#withPattern}). */
  @org.junit.jupiter.api.Test
  void aggregateSecondDerivativesUnderItsPattern() {
    SplittableRandom rng = new SplittableRandom(26);
    Shape shape = new Shape(3, 2);
    NDArray a = Tensors.standardNormal(rng, manager, new Shape(2, 3, 3), DataType.FLOAT64);
    try (Graph.PatternScope s = Graph.withPattern(a)) {
      secondDerivativesMatchCentralDifferences("Aggregate", Stax.serial(Stax.dense(3, 1.2, 0.1), Stax.aggregate(),
          Stax.erf(), Stax.aggregate(), Stax.dense(2, 1.1, null)), List.of(shape));
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("layers")
  void secondDerivativesMatchCentralDifferences(String name, Layer layer, List<Shape> inputShapes) {
    try (NDManager scope = manager.newSubManager()) {
      SplittableRandom rng = new SplittableRandom(name.hashCode() + 1);
      List<Spec> specs = new ArrayList<>();
      for (Shape s : inputShapes) {
        specs.add(Spec.input(s));
      }
      Params params = layer.init(rng, specs, scope, DataType.FLOAT64);
      List<NDArray> x = random(rng, scope, inputShapes);
      List<NDArray> x1 = random(rng, scope, inputShapes);
      List<NDArray> x2 = random(rng, scope, inputShapes);
      List<NDArray> v = new ArrayList<>();
      for (NDArray a : params.leaves()) {
        v.add(Tensors.standardNormal(rng, scope, a.getShape(), DataType.FLOAT64));
      }
      Params tangents = params.withLeaves(v);
      Jet jet = layer.jet(params, tangents, x, x1, x2);
      double[] at0 = DerivativesTest.flat(layer.apply(params, x));
      assertArrayEquals(at0, DerivativesTest.flat(jet.outputs()), 1e-14, "jet outputs are apply's");
      assertArrayEquals(DerivativesTest.flat(layer.jvp(params, tangents, x, x1).tangents()),
          DerivativesTest.flat(jet.tangents()), 1e-12, "jet tangents are the jvp's");
      double[] fd = secondDifference(layer, params, tangents, x, x1, x2, at0, H);
      double[] second = DerivativesTest.flat(jet.seconds());
      for (int i = 0; i < fd.length; i++) {
        assertEquals(fd[i], second[i], TOLERANCE * Math.max(1, Math.abs(fd[i])), "second derivative " + i);
      }
    }
  }

  /** {@code (g(h) - 2 g(0) + g(-h)) / h^2}, within {@code h^2 g'''' / 12} of {@code g''(0)}. */
  private static double[] secondDifference(Layer layer, Params params, Params v, List<NDArray> x,
      List<NDArray> x1, List<NDArray> x2, double[] at0, double h) {
    double[] plus = along(layer, params, v, x, x1, x2, h);
    double[] minus = along(layer, params, v, x, x1, x2, -h);
    double[] d = new double[at0.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = (plus[i] - 2 * at0[i] + minus[i]) / (h * h);
    }
    return d;
  }

  /** The outputs at {@code e}: parameters {@code p + e v}, inputs {@code x + e x1 + e^2/2 x2}. */
  private static double[] along(Layer layer, Params params, Params v, List<NDArray> x, List<NDArray> x1,
      List<NDArray> x2, double e) {
    List<NDArray> p = new ArrayList<>();
    for (int i = 0; i < params.leaves().size(); i++) {
      p.add(params.leaves().get(i).add(Tensors.mul(v.leaves().get(i), e)));
    }
    List<NDArray> in = new ArrayList<>();
    for (int i = 0; i < x.size(); i++) {
      in.add(x.get(i).add(Tensors.mul(x1.get(i), e)).add(Tensors.mul(x2.get(i), e * e / 2)));
    }
    return DerivativesTest.flat(layer.apply(params.withLeaves(p), in));
  }

  private static List<NDArray> random(SplittableRandom rng, NDManager m, List<Shape> shapes) {
    List<NDArray> out = new ArrayList<>();
    for (Shape s : shapes) {
      out.add(Tensors.standardNormal(rng, m, new Shape(2).addAll(s), DataType.FLOAT64));
    }
    return out;
  }
}

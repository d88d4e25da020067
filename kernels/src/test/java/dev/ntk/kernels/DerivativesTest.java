package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every finite layer's Jacobian-vector product ({@link Layer#jvp}) and vector-Jacobian product
 * ({@link Layer#vjp}) against central finite differences of its {@code apply} in float64: the JVP
 * along a random direction of every parameter and input at once, the VJP coordinate by
 * coordinate (every parameter and input entry), both within 1e-6; and the two against each other,
 * {@code <vjp(u), v> = <u, jvp(v)>}, to rounding.
 */
class DerivativesTest {
  /** Central differences lose about {@code 1e-16 / STEP} to rounding and {@code STEP^2 f''' / 6} to truncation. */
  private static final double STEP = 1e-5;
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

  private static int[] ints(int... v) {
    return v;
  }

  private static Arguments of(String name, Layer layer, Shape... inputs) {
    return Arguments.of(name, layer, List.of(inputs));
  }

  static Stream<Arguments> layers() {
    Shape vec = new Shape(3);
    Shape img = new Shape(5, 4, 2);
    return Stream.of(
        of("Dense", Stax.dense(4, 1.5, 0.1), vec),
        of("Dense without bias", Stax.dense(4, 1.3, null), vec),
        of("Dense standard", Stax.dense(4, 1.3, 0.2, Linear.Parameterization.STANDARD), vec),
        of("Dense wider than its batch", Stax.dense(9, 1.1, 0.1), new Shape(7)),
        of("Dense on images", Stax.dense(4, 1.5, 0.1), img),
        of("Dense on 1D images standard without bias", Stax.dense(3, 1.2, null,
            Linear.Parameterization.STANDARD), new Shape(5, 3)),
        of("Flatten", Stax.flatten(), new Shape(3, 2, 2)),
        of("Identity", Stax.identity(), vec),
        of("Conv SAME", Stax.conv(3, ints(3, 2), null, "SAME", 1.2, 0.1), img),
        of("Conv VALID strides", Stax.conv(3, ints(3, 2), ints(2, 1), "VALID", 1.2, 0.1), img),
        of("Conv CIRCULAR strides", Stax.conv(2, ints(3, 3), ints(2, 2), "CIRCULAR", 0.9, null), img),
        of("Conv 1D SAME stride 2 standard", Stax.conv(2, ints(3), ints(2), "SAME", 1.1, 0.3,
            Linear.Parameterization.STANDARD), new Shape(6, 2)),
        of("Conv 3D VALID", Stax.conv(2, ints(2, 2, 2), null, "VALID", 1.0, 0.1), new Shape(3, 3, 2, 2)),
        of("ConvTranspose SAME strides", Stax.convTranspose(2, ints(3, 2), ints(2, 2), "SAME", 1.2, 0.1),
            new Shape(3, 2, 2)),
        of("ConvTranspose VALID strides", Stax.convTranspose(2, ints(3, 2), ints(2, 1), "VALID", 1.2, 0.1),
            new Shape(3, 2, 2)),
        of("ConvTranspose CIRCULAR strides", Stax.convTranspose(2, ints(3, 2), ints(2, 2), "CIRCULAR", 1.0, 0.2),
            new Shape(3, 2, 2)),
        of("ConvTranspose 1D CIRCULAR stride 3", Stax.convTranspose(2, ints(2), ints(3), "CIRCULAR", 1.0, null),
            new Shape(3, 2)),
        of("ConvLocal SAME", Stax.convLocal(3, ints(3, 2), null, "SAME", 1.2, 0.1), img),
        of("ConvLocal CIRCULAR strides standard", Stax.convLocal(2, ints(3, 3), ints(2, 2), "CIRCULAR", 0.9, 0.2,
            Linear.Parameterization.STANDARD), img),
        of("ConvLocal 1D VALID without bias", Stax.convLocal(2, ints(2), null, "VALID", 1.1, null), new Shape(4, 3)),
        of("DotGeneral rhs on one axis", Stax.dotGeneral(null, new double[] {1, -2, 0.5, 3, -1},
            new int[][][] {{{1}, {0}}, {{}, {}}}), img),
        of("DotGeneral lhs on every axis", Stax.dotGeneral(new double[][] {{1, -2, 0.5, 3, 0}, {0.2, 1, -1, 2, 1},
            {0, 1, 1, -1, 2}, {1, 1, 0.5, -0.5, 0.3}}, null, new int[][][] {{{1, 0}, {1, 2}}, {{}, {}}}), img),
        of("DotGeneral a number", Stax.dotGeneral(null, -1.5, null), vec),
        of("AvgPool SAME strides normalize_edges", Stax.avgPool(ints(3, 2), ints(2, 2), "SAME", true), img),
        of("AvgPool VALID", Stax.avgPool(ints(2, 2), null, "VALID"), img),
        of("AvgPool CIRCULAR strides", Stax.avgPool(ints(3, 3), ints(2, 1), "CIRCULAR"), img),
        of("SumPool SAME", Stax.sumPool(ints(2, 3), ints(1, 2), "SAME"), img),
        of("ImageResize linear antialias", Stax.imageResize(ints(-1, 3, 6, -1), "linear", true), img),
        of("ImageResize nearest", Stax.imageResize(ints(-1, 7, -1, -1), "nearest", false), img),
        of("Index", Stax.index(":", "1::2", "::-1", ":"), img),
        of("Index removing an axis", Stax.index(":", "2", "::-1"), img),
        of("Index removing every spatial axis", Stax.index("...", "1", "-1", ":"), img),
        of("GlobalAvgPool", Stax.globalAvgPool(), img),
        of("GlobalSumPool", Stax.globalSumPool(), img),
        of("Relu", Stax.relu(), vec),
        of("LeakyRelu", Stax.leakyRelu(0.1), vec),
        of("Abs", Stax.abs(), vec),
        of("ABRelu", Stax.abRelu(-0.5, 2), vec),
        of("Erf", Stax.erf(1.2, 0.7, 0.3), vec),
        of("Gelu", Stax.gelu(), vec),
        of("Gelu approximate", Stax.gelu(true), vec),
        of("Sin", Stax.sin(1.1, 0.8, 0.2), vec),
        of("Cos", Stax.cos(0.9, 1.3, -0.4), vec),
        of("Rbf", Stax.rbf(0.7), vec),
        of("Exp", Stax.exp(0.9, 0.4), vec),
        of("Sign", Stax.sign(), vec),
        of("Gaussian", Stax.gaussian(1.3, -0.6), vec),
        of("RectifiedMonomial 0", Stax.rectifiedMonomial(0), vec),
        of("RectifiedMonomial 1", Stax.rectifiedMonomial(1), vec),
        of("RectifiedMonomial 3", Stax.rectifiedMonomial(3), vec),
        of("Monomial 0", Stax.monomial(0), vec),
        of("Monomial 1", Stax.monomial(1), vec),
        of("Monomial 4", Stax.monomial(4), vec),
        of("Polynomial", Stax.polynomial(0.3, -1, 0.5, 0.2), vec),
        of("Gabor", Stax.gabor(), vec),
        of("Hermite 4", Stax.hermite(4), vec),
        of("Elementwise swish", Stax.elementwise("swish"), vec),
        of("ElementwiseNumerical tanh", Stax.elementwiseNumerical("tanh", 5), vec),
        of("Elementwise user function pair", Stax.elementwise(Math::sin, Math::cos, x -> -Math.sin(x), 4), vec),
        of("LayerNorm", Stax.layerNorm(), new Shape(5)),
        of("LayerNorm over spatial axes and channels", Stax.layerNorm(ints(1, 2, 3), 1e-3), img),
        of("LayerNorm over the last spatial axis and channels", Stax.layerNorm(ints(-2, -1), 0), img),
        of("Dropout train", Stax.dropout(0.6), vec),
        of("Dropout train on images", Stax.dropout(0.8), img),
        of("Dropout test", Stax.dropout(0.6, "test"), vec),
        of("FanOut", Stax.fanOut(3), vec),
        of("GlobalSelfAttention softmax", Stax.globalSelfAttention(3, 4, 2, 2, true, 1.3, 1.1, 0.9, 1.2, 0.1,
            "SOFTMAX"), new Shape(3, 2)),
        of("GlobalSelfAttention identity, 1 / sqrt scaling, image", Stax.globalSelfAttention(2, 3, 2, 2, false, 1.1,
            0.9, 1.2, 1.0, null, "IDENTITY"), new Shape(2, 2, 2)),
        of("GlobalSelfAttention relu", Stax.globalSelfAttention(2, 3, 2, 2, true, 1.0, 1.0, 1.0, 1.0, null, "RELU"),
            new Shape(3, 2)),
        of("GlobalSelfAttention abs, SUM embeddings", Attention.globalSelfAttention(2, 3, 2, 2, true, 1.0, 1.0, 1.0,
            1.0, 0.2, "ABS", "SUM", 0.7, false), new Shape(3, 2)),
        of("GlobalSelfAttention softmax, CONCAT embeddings in the values", Attention.globalSelfAttention(2, 3, 2, 2,
            false, 1.2, 1.0, 0.8, 1.1, null, "SOFTMAX", "CONCAT", 0.8, true), new Shape(3, 2)),
        of("FanInSum", Stax.fanInSum(), vec, vec, vec),
        of("FanInProd", Stax.fanInProd(), vec, vec, vec),
        of("FanInConcat", Stax.fanInConcat(), new Shape(3, 2), new Shape(3, 3)),
        of("FanInConcat spatial axis", Stax.fanInConcat(1), new Shape(3, 2), new Shape(2, 2)),
        of("FanInConcat second spatial axis", Stax.fanInConcat(-2), new Shape(2, 3, 2), new Shape(2, 1, 2),
            new Shape(2, 2, 2)),
        of("repeat", Stax.repeat(Stax.serial(Stax.dense(3, 1.2, 0.1), Stax.erf()), 3), vec),
        of("parallel", Stax.parallel(Stax.dense(2, 1.1, 0.1), Stax.relu()), vec, new Shape(2)),
        of("residual network with FanInSum", Stax.serial(Stax.dense(6, 1.5, 0.1), Stax.fanOut(2),
            Stax.parallel(Stax.serial(Stax.relu(), Stax.dense(4, 1.2, 0.1)), Stax.serial(Stax.erf(),
                Stax.dense(4, 1.1, null))), Stax.fanInSum(), Stax.gelu(), Stax.dense(3, 1.0, 0.2)), vec),
        of("three branches with FanInProd", Stax.serial(Stax.dense(5, 1.2, 0.1), Stax.fanOut(3),
            Stax.parallel(Stax.serial(Stax.relu(), Stax.dense(4, 1.0, 0.1)), Stax.dense(4, 0.8, null),
                Stax.serial(Stax.sin(), Stax.dense(4, 1.1, 0.2))), Stax.fanInProd(), Stax.dense(2, 1.0, 0.1)),
            vec),
        of("convolutional network with FanInConcat", Stax.serial(
            Stax.conv(3, ints(3, 3), null, "SAME", 1.3, 0.1), Stax.relu(), Stax.avgPool(ints(2, 2), ints(2, 2), "SAME"),
            Stax.fanOut(2), Stax.parallel(Stax.conv(2, ints(2, 2), null, "CIRCULAR", 1.0, 0.1), Stax.identity()),
            Stax.fanInConcat(), Stax.convTranspose(2, ints(2, 2), ints(2, 2), "SAME", 1.1, 0.1), Stax.erf(),
            Stax.globalAvgPool(), Stax.dense(2, 1.0, 0.1)), img));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("layers")
  void jvpAndVjpMatchCentralDifferences(String name, Layer layer, List<Shape> inputShapes) {
    try (NDManager scope = manager.newSubManager()) {
      SplittableRandom rng = new SplittableRandom(name.hashCode());
      List<Spec> specs = new ArrayList<>();
      for (Shape s : inputShapes) {
        specs.add(Spec.input(s));
      }
      Params params = layer.init(rng, specs, scope, DataType.FLOAT64);
      List<NDArray> inputs = new ArrayList<>();
      for (Shape s : inputShapes) {
        inputs.add(Tensors.standardNormal(rng, scope, new Shape(2).addAll(s), DataType.FLOAT64));
      }
      List<NDArray> leaves = params.leaves();
      int nParams = leaves.size();
      List<NDArray> point = new ArrayList<>(leaves);
      point.addAll(inputs);
      double[] theta = flat(point);
      Network f = new Network(layer, params, point, nParams);
      double[] out = f.at(theta);

      // JVP along a random direction of everything, against a central difference.
      double[] v = new double[theta.length];
      for (int i = 0; i < v.length; i++) {
        v[i] = rng.nextGaussian();
      }
      List<NDArray> vArrays = f.arrays(v);
      Jvp jvp = layer.jvp(params, params.withLeaves(vArrays.subList(0, nParams)), inputs,
          vArrays.subList(nParams, vArrays.size()));
      assertArrayEquals(out, flat(jvp.outputs()), 1e-14, "jvp outputs are apply's");
      double[] tangent = flat(jvp.tangents());
      double[] plus = f.at(axpy(theta, STEP, v));
      double[] minus = f.at(axpy(theta, -STEP, v));
      double[] fd = new double[out.length];
      for (int i = 0; i < fd.length; i++) {
        fd[i] = (plus[i] - minus[i]) / (2 * STEP);
      }
      assertArrayEquals(fd, tangent, TOLERANCE, "jvp against central differences");

      // VJP of a random cotangent, coordinate by coordinate against central differences of <u, f>.
      double[] u = new double[out.length];
      for (int i = 0; i < u.length; i++) {
        u[i] = rng.nextGaussian();
      }
      Vjp vjp = layer.vjp(params, inputs, true);
      assertArrayEquals(out, flat(vjp.outputs()), 1e-14, "vjp outputs are apply's");
      Cotangents c = vjp.pull(f.outputArrays(u, vjp.outputs()));
      List<NDArray> grads = new ArrayList<>(c.params().leaves());
      assertEquals(nParams, grads.size(), "one cotangent per parameter array");
      grads.addAll(c.inputs());
      double[] grad = flat(grads);
      assertEquals(theta.length, grad.length);
      double[] fdGrad = new double[theta.length];
      for (int k = 0; k < theta.length; k++) {
        double[] e = new double[theta.length];
        e[k] = 1;
        fdGrad[k] = (dot(u, f.at(axpy(theta, STEP, e))) - dot(u, f.at(axpy(theta, -STEP, e)))) / (2 * STEP);
      }
      assertArrayEquals(fdGrad, grad, TOLERANCE, "vjp against central differences");

      // <vjp(u), v> = <u, jvp(v)>.
      double lhs = dot(grad, v);
      double rhs = dot(u, tangent);
      assertEquals(lhs, rhs, 1e-12 * (1 + Math.abs(lhs)), "vjp and jvp are transposes");

      // Without input cotangents the parameter cotangents are the same.
      Cotangents noInputs = layer.vjp(params, inputs, false).pull(f.outputArrays(u, vjp.outputs()));
      assertTrue(noInputs.inputs().isEmpty());
      assertArrayEquals(flat(c.params().leaves()), flat(noInputs.params().leaves()), 1e-14);
    }
  }

  /**
   * {@code Aggregate} reads the pattern of its batch (2 examples) from {@link Graph#withPattern}:
   * on a sequence and on a two-axis grid of nodes, between layers with parameters.
   */
  @org.junit.jupiter.api.Test
  void aggregateMatchesCentralDifferencesUnderItsPattern() {
    SplittableRandom rng = new SplittableRandom(25);
    for (Shape shape : new Shape[] {new Shape(3, 2), new Shape(2, 3, 2)}) {
      Shape nodes = shape.slice(0, shape.dimension() - 1);
      NDArray a = Tensors.standardNormal(rng, manager, new Shape(2).addAll(nodes).addAll(nodes), DataType.FLOAT64);
      try (Graph.PatternScope s = Graph.withPattern(a)) {
        jvpAndVjpMatchCentralDifferences("Aggregate on " + shape, Stax.serial(Stax.dense(3, 1.2, 0.1),
            Stax.aggregate(), Stax.erf(), Stax.aggregate(), Stax.dense(2, 1.1, null)), List.of(shape));
      }
    }
  }

  static Stream<Arguments> affineLayers() {
    return Stream.of(
        of("Dense", Stax.dense(4, 1.5, 0.1), new Shape(3)),
        of("Dense standard", Stax.dense(4, 1.3, 0.2, Linear.Parameterization.STANDARD), new Shape(3)),
        of("Conv SAME strides", Stax.conv(3, ints(3, 2), ints(2, 1), "SAME", 1.2, 0.1), new Shape(5, 4, 2)),
        of("ConvTranspose CIRCULAR strides", Stax.convTranspose(2, ints(3, 2), ints(2, 2), "CIRCULAR", 1.0, 0.2),
            new Shape(3, 2, 2)),
        of("ConvLocal SAME strides", Stax.convLocal(3, ints(3, 2), ints(2, 1), "SAME", 1.2, 0.1), new Shape(5, 4, 2)));
  }

  /**
   * What an affine layer records on an {@link AffineTape} (the factors structured derivatives
   * build the NTK from) are the factors of the cotangents it forms without one: {@code sum_{n, p}
   * X[n, p] G[n, p]^T} is the weight cotangent, {@code sum_n B[n]} the bias cotangent (each, for
   * {@code ConvLocal}'s weights and biases per position, flattened).
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("affineLayers")
  void tapedFactorsMultiplyToTheParameterCotangents(String name, Layer layer, List<Shape> inputShapes) {
    try (NDManager scope = manager.newSubManager()) {
      SplittableRandom rng = new SplittableRandom(name.hashCode());
      Shape shape = inputShapes.get(0);
      Params params = layer.init(rng, List.of(Spec.input(shape)), scope, DataType.FLOAT64);
      NDArray x = Tensors.standardNormal(rng, scope, new Shape(3).addAll(shape), DataType.FLOAT64);
      Vjp vjp = layer.vjp(params, List.of(x), false);
      NDArray u = Tensors.standardNormal(rng, scope, vjp.output().getShape(), DataType.FLOAT64);
      Params grad = vjp.pull(List.of(u)).params();
      AffineTape tape = new AffineTape();
      Cotangents taped = vjp.pullback().pull(List.of(u), tape);
      assertTrue(taped.params().leaves().isEmpty(), "no weight cotangent is formed with a tape");
      assertEquals(1, tape.factors().size());
      AffineTape.Factors f = tape.factors().get(0);
      NDArray dw = f.patches().get().transpose().matMul(f.weightCotangent());
      assertArrayEquals(Tensors.toDoubles(grad.array(0)), Tensors.toDoubles(dw), 1e-12, "weights");
      assertArrayEquals(Tensors.toDoubles(grad.array(1)), Tensors.toDoubles(f.biasCotangent().sum(new int[] {0})),
          1e-12, "bias");
    }
  }

  /** The layer's outputs, flattened, as a function of its parameters and inputs, flattened. */
  private static final class Network {
    private final Layer layer;
    private final Params params;
    private final List<NDArray> like;
    private final int nParams;

    Network(Layer layer, Params params, List<NDArray> like, int nParams) {
      this.layer = layer;
      this.params = params;
      this.like = like;
      this.nParams = nParams;
    }

    List<NDArray> arrays(double[] theta) {
      List<NDArray> out = new ArrayList<>();
      int at = 0;
      for (NDArray a : like) {
        int n = Math.toIntExact(a.getShape().size());
        double[] values = new double[n];
        System.arraycopy(theta, at, values, 0, n);
        out.add(Tensors.create(a.getManager(), values, a.getShape(), DataType.FLOAT64));
        at += n;
      }
      return out;
    }

    double[] at(double[] theta) {
      List<NDArray> arrays = arrays(theta);
      Params p = params.withLeaves(arrays.subList(0, nParams));
      return flat(layer.apply(p, arrays.subList(nParams, arrays.size())));
    }

    List<NDArray> outputArrays(double[] u, List<NDArray> outputs) {
      List<NDArray> out = new ArrayList<>();
      int at = 0;
      for (NDArray a : outputs) {
        int n = Math.toIntExact(a.getShape().size());
        double[] values = new double[n];
        System.arraycopy(u, at, values, 0, n);
        out.add(Tensors.create(a.getManager(), values, a.getShape(), DataType.FLOAT64));
        at += n;
      }
      return out;
    }
  }

  static double[] flat(List<NDArray> arrays) {
    List<double[]> parts = new ArrayList<>();
    int n = 0;
    for (NDArray a : arrays) {
      double[] d = Tensors.toDoubles(a);
      parts.add(d);
      n += d.length;
    }
    double[] out = new double[n];
    int at = 0;
    for (double[] d : parts) {
      System.arraycopy(d, 0, out, at, d.length);
      at += d.length;
    }
    return out;
  }

  private static double[] axpy(double[] x, double a, double[] y) {
    double[] out = x.clone();
    for (int i = 0; i < out.length; i++) {
      out[i] += a * y[i];
    }
    return out;
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }
}

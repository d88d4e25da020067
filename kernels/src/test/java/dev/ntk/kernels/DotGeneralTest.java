package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code DotGeneral}, the product with a constant array: the finite layer against loops over
 * {@code lax.dot_general}'s definition, its kernel on the raw inputs against the input kernel of
 * the products (a linear map of the inputs), Monte Carlo of wide finite networks, {@code cpu}
 * against {@code tensorflow}, the model file round trip, and errors naming the layer.
 */
class DotGeneralTest {
  private static final int WIDTH = 256;
  private static final int SAMPLES = 64;
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  private static int[][][] dims(int[] lhsContracting, int[] rhsContracting) {
    return new int[][][] {{lhsContracting, rhsContracting}, {{}, {}}};
  }

  private static int[] a(int... v) {
    return v;
  }

  /**
   * On images {@code (N, 3, 4, 2)}: {@code rhs} {@code [1, -2, 0.5]} on axis 1 gives {@code out[n, w,
   * c] = sum_h rhs[h] x[n, h, w, c]}; {@code lhs} {@code [[...] 4 x 3]} contracting its axis 1 with
   * axis 1 of the input and its axis 0 with axis 2 gives {@code sum_{h, w} lhs[w, h] x[n, h, w, c]};
   * a number scales.
   */
  @Test
  void finiteLayerIsDotGeneral() {
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {3, 4, 2}, 1);
    double[] xs = x.toDoubleArray();
    double[] r = {1, -2, 0.5};
    double[] y = Stax.dotGeneral(null, r, dims(a(1), a(0))).apply(Params.EMPTY, x).toDoubleArray();
    double[][] l = new double[4][3];
    for (int w = 0; w < 4; w++) {
      for (int h = 0; h < 3; h++) {
        l[w][h] = 0.3 * w - 0.7 * h + 0.1;
      }
    }
    NDArray both = Stax.dotGeneral(l, null, dims(a(1, 0), a(1, 2))).apply(Params.EMPTY, x);
    assertEquals(new Shape(2, 2), both.getShape());
    double[] z = both.toDoubleArray();
    for (int n = 0; n < 2; n++) {
      for (int c = 0; c < 2; c++) {
        double all = 0;
        for (int w = 0; w < 4; w++) {
          double sum = 0;
          for (int h = 0; h < 3; h++) {
            double v = xs[((n * 3 + h) * 4 + w) * 2 + c];
            sum += r[h] * v;
            all += l[w][h] * v;
          }
          assertEquals(sum, y[(n * 4 + w) * 2 + c], 1e-14);
        }
        assertEquals(all, z[n * 2 + c], 1e-13);
      }
    }
    double[] scaled = Stax.dotGeneral(null, 2.5, null).apply(Params.EMPTY, x).toDoubleArray();
    for (int i = 0; i < xs.length; i++) {
      assertEquals(2.5 * xs[i], scaled[i], 1e-15);
    }
  }

  static Stream<Arguments> products() {
    double[][] l = {{0.5, -1, 2}, {1, 0.25, -0.5}, {-1, 1, 1}, {0.3, 0.2, -0.1}};
    return Stream.of(
        Arguments.of("rhs on the first spatial axis", Stax.dotGeneral(null, new double[] {1, -2, 0.5},
            dims(a(1), a(0)))),
        Arguments.of("lhs on the last spatial axis, negative", Stax.dotGeneral(new double[] {1, 0, -1, 2}, null,
            dims(a(0), a(-2)))),
        Arguments.of("lhs on both spatial axes, transposed", Stax.dotGeneral(l, null, dims(a(1, 0), a(1, 2)))),
        Arguments.of("a number", Stax.dotGeneral(null, -1.5, null)),
        Arguments.of("neither: the identity", Stax.dotGeneral(null, null, null)));
  }

  /**
   * The layer is linear in its input, so on the raw inputs its kernel is the input kernel of its
   * finite outputs: the products of each image, then {@code Flatten}.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("products")
  void kernelOfTheRawInputsIsThatOfTheProducts(String name, Layer layer) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {3, 4, 2}, 5);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {3, 4, 2}, 6);
    Kernel k = Stax.serial(layer, Stax.flatten()).kernelFn().apply(x1, x2);
    NDArray y1 = layer.apply(Params.EMPTY, x1);
    NDArray y2 = layer.apply(Params.EMPTY, x2);
    Layer flatten = y1.getShape().dimension() > 2 ? Stax.flatten() : Stax.identity();
    Kernel expected = flatten.kernelFn().apply(y1, y2);
    double err = KernelTesting.relativeError(k.nngp().toDoubleArray(), expected.nngp().toDoubleArray());
    assertTrue(err < 1e-13, name + ": " + err);
  }

  static Stream<Arguments> networks() {
    int w = WIDTH;
    double[][] l = {{0.5, -1, 0.7}, {1, 0.25, -0.5}, {0.2, 0.3, -0.4}};
    return Stream.of(
        Arguments.of("Conv, Relu, Conv, DotGeneral on one axis, Erf, GlobalAvgPool", Stax.serial(
            Stax.conv(w, a(2, 2), null, "SAME", 1.4, 0.1), Stax.relu(), Stax.conv(w, a(1, 2), null, "SAME", 1.2, 0.1),
            Stax.dotGeneral(null, new double[] {1, -1, 0.5}, dims(a(1), a(0))), Stax.erf(), Stax.globalAvgPool(),
            Stax.dense(w, 1.0, 0.1)), 2 * SAMPLES),
        Arguments.of("Conv, Relu, DotGeneral on every axis, Dense", Stax.serial(
            Stax.conv(w, a(2, 1), null, "SAME", 1.3, 0.2), Stax.relu(),
            Stax.dotGeneral(l, null, dims(a(0, 1), a(2, 1))), Stax.dense(w, 1.2, 0.1), Stax.relu(),
            Stax.dense(w, 1.0, null)), SAMPLES),
        Arguments.of("a number between two Conv layers, Flatten", Stax.serial(
            Stax.conv(w, a(2, 2), null, "VALID", 1.2, 0.1), Stax.dotGeneral(null, 0.7, null), Stax.relu(),
            Stax.conv(w, a(1, 2), null, "SAME", 1.1, 0.1), Stax.flatten(), Stax.dense(w, 1.0, 0.1)), SAMPLES));
  }

  /**
   * The analytic NNGP and NTK against Monte Carlo over wide finite networks ({@link
   * ConvolutionalMonteCarloTest}'s bound), with more draws where the estimate varies more.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("networks")
  void analyticKernelsMatchWideFiniteNetworks(String name, Layer model, int samples) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {3, 3, 2}, 101);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {3, 3, 2}, 102);
    Kernel k = model.kernelFn().apply(x1, x2);
    KernelTesting.assertMatchesMonteCarlo(name + " NNGP", k.nngp().toDoubleArray(),
        MonteCarlo.nngp(model, x1, x2, samples, 7), 2.0 / WIDTH, 0.15);
    KernelTesting.assertMatchesMonteCarlo(name + " NTK", k.ntk().toDoubleArray(),
        MonteCarlo.ntk(model, x1, x2, samples, 11), 2.0 / WIDTH, 0.15);
  }

  /** {@code cpu} and {@code tensorflow} agree in float64, x1 with itself and with x2. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("networks")
  void cpuAndTensorFlowAgree(String name, Layer model, int samples) {
    NDArray x1 = KernelTesting.randomImages(manager, 4, new long[] {3, 3, 2}, 21);
    NDArray x2 = KernelTesting.randomImages(manager, 3, new long[] {3, 3, 2}, 22);
    for (NDArray other : new NDArray[] {null, x2}) {
      Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x1, other);
      Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, other);
      for (Get g : Get.values()) {
        double err = KernelTesting.relativeError(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray());
        assertTrue(err < 1e-12, name + " " + g + ": cpu and tensorflow differ by " + err);
      }
    }
  }

  /** A model file writes the constant as nested lists and reads back the same layer. */
  @Test
  void modelFileRoundTrip() {
    String json = "{\"DotGeneral\": {\"lhs\": [[1, -1.5], [0.25, 2]], \"dimension_numbers\": [[[1, 0], [1, 2]], "
        + "[[], []]]}}";
    Layer layer = ModelSpec.parse(json);
    String canonical = ModelSpec.toJson(layer);
    assertEquals("{\"DotGeneral\":{\"lhs\":[[1.0,-1.5],[0.25,2.0]],\"rhs\":null,"
        + "\"dimension_numbers\":[[[1,0],[1,2]],[[],[]]],\"batch_axis\":0,\"channel_axis\":-1}}", canonical);
    assertEquals(canonical, ModelSpec.toJson(ModelSpec.parse(canonical)));
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {2, 2, 1}, 3);
    assertArrayEquals(layer.apply(Params.EMPTY, x).toDoubleArray(),
        Stax.dotGeneral(new double[][] {{1, -1.5}, {0.25, 2}}, null, dims(a(1, 0), a(1, 2))).apply(Params.EMPTY, x)
            .toDoubleArray(), 0.0);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "both constants|{\"DotGeneral\": {\"lhs\": 1, \"rhs\": 2}}|DotGeneral: at most one of lhs and rhs",
      "a ragged array|{\"serial\": [{\"Identity\": {}}, {\"DotGeneral\": {\"rhs\": [[1, 2], [3]]}}]}"
          + "|serial[1].DotGeneral: argument \"rhs\" must be null, a number, or nested lists of numbers of one shape",
      "contracting the channel axis|{\"DotGeneral\": {\"rhs\": [1, 2], \"dimension_numbers\": [[[3], [0]], [[], "
          + "[]]]}}|DotGeneral: dimension_numbers [[[3], [0]], [[], []]] contracts the channel axis 3",
      "contracting the batch axis|{\"DotGeneral\": {\"rhs\": [1, 2], \"dimension_numbers\": [[[0], [0]], [[], "
          + "[]]]}}|DotGeneral: dimension_numbers [[[0], [0]], [[], []]] contracts the batch axis 0",
      "batch axes|{\"DotGeneral\": {\"rhs\": [1, 2, 3], \"dimension_numbers\": [[[], []], [[1], [0]]]}}"
          + "|DotGeneral: dimension_numbers [[[], []], [[1], [0]]] has batch axes",
      "a free axis of rhs|{\"DotGeneral\": {\"rhs\": [[1, 2], [3, 4], [5, 6]], \"dimension_numbers\": "
          + "[[[1], [0]], [[], []]]}}|DotGeneral: rhs has shape [3, 2] but dimension_numbers [[[1], [0]], [[], []]] "
          + "contracts 1 of its axes",
      "sizes that differ|{\"DotGeneral\": {\"lhs\": [1, 2], \"dimension_numbers\": [[[0], [1]], [[], []]]}}"
          + "|DotGeneral: dimension_numbers [[[0], [1]], [[], []]] contracts axis 1 of the input (size 3",
      "an axis out of range|{\"DotGeneral\": {\"rhs\": [1, 2, 3], \"dimension_numbers\": [[[5], [0]], [[], []]]}}"
          + "|DotGeneral: dimension_numbers [[[5], [0]], [[], []]] names axis 5 of the input, which has 4 axes",
      "axes without a constant|{\"DotGeneral\": {\"dimension_numbers\": [[[1], [0]], [[], []]]}}"
          + "|DotGeneral: dimension_numbers [[[1], [0]], [[], []]] names axes, but neither lhs nor rhs is given",
      "another batch axis|{\"DotGeneral\": {\"rhs\": 2, \"batch_axis\": 1}}"
          + "|DotGeneral: activations are batch-first and channel-last",
      "not dimension numbers|{\"DotGeneral\": {\"rhs\": 2, \"dimension_numbers\": [[1], [0]]}}"
          + "|DotGeneral: argument \"dimension_numbers\" must be [[lhs_contracting, rhs_contracting]"})
  void badModelsNameTheLayer(String what, String json, String expected) {
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {3, 4, 2}, 1);
    Exception e = assertThrows(ModelException.class, () -> ModelSpec.parse(json).kernelFn().apply(x), what);
    assertTrue(e.getMessage().contains(expected), what + ": " + e.getMessage());
  }

  /**
   * Two of three spatial axes (the middle one kept), on the raw inputs: the kernel is the input
   * kernel of the products, and the backends agree.
   */
  @Test
  void twoOfThreeSpatialAxes() {
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {2, 3, 2, 2}, 1);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {2, 3, 2, 2}, 2);
    Layer layer = Stax.dotGeneral(null, new double[][] {{1, 2}, {3, -4}}, dims(a(3, 1), a(0, 1)));
    NDArray y1 = layer.apply(Params.EMPTY, x1);
    assertEquals(new Shape(3, 3, 2), y1.getShape());
    Kernel expected = Stax.flatten().kernelFn().apply(y1, layer.apply(Params.EMPTY, x2));
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      Kernel k = Stax.serial(layer, Stax.flatten()).kernelFn().withBackend(backend).apply(x1, x2);
      double err = KernelTesting.relativeError(k.nngp().toDoubleArray(), expected.nngp().toDoubleArray());
      assertTrue(err < 1e-13, backend + ": " + err);
    }
  }

  /**
   * Contractions of several spatial axes, with the per-example input shape each takes: each weighs
   * the pixel-pair block by a constant block ({@code A[s] A[t]}), then sums it (every axis) or maps
   * it (some axes kept).
   */
  static Map<String, Object[]> severalAxesModels() {
    Map<String, Object[]> m = new java.util.LinkedHashMap<>();
    m.put("every axis between Conv and Dense", new Object[] {Stax.serial(Stax.conv(4, a(2, 1), null, "SAME", 1.3, 0.2),
        Stax.relu(), Stax.dotGeneral(new double[][] {{0.5, -1, 0.7}, {1, 0.25, -0.5}, {0.2, 0.3, -0.4}}, null,
            dims(a(0, 1), a(2, 1))), Stax.dense(4, 1.2, 0.1), Stax.relu(), Stax.dense(1)), new long[] {3, 3, 2}});
    m.put("two of three axes on the raw inputs", new Object[] {Stax.serial(Stax.dotGeneral(null,
        new double[][] {{1, 2}, {3, -4}}, dims(a(3, 1), a(0, 1))), Stax.flatten(), Stax.dense(1)),
        new long[] {2, 3, 2, 2}});
    m.put("two of three axes inside a conv net", new Object[] {Stax.serial(
        Stax.conv(3, a(2, 1, 2), null, "SAME", 1.2, 0.1), Stax.erf(), Stax.dotGeneral(null,
            new double[][] {{0.5, -1}, {2, 0.25}, {1, 1}}, dims(a(1, 3), a(0, 1))),
        Stax.conv(3, a(2), null, "CIRCULAR", 1.1, 0.2), Stax.relu(), Stax.globalAvgPool(), Stax.dense(1)),
        new long[] {3, 2, 2, 2}});
    return m;
  }

  /**
   * The {@code cuda} engine runs a contraction of several spatial axes (its pair weights a constant
   * block in the generated source, {@code CudaEngineModelsTest} checks its numbers), so {@code auto}
   * may pick it as for one axis (a pixel map).
   */
  @Test
  void theCudaEngineRunsSeveralAxes() {
    for (Map.Entry<String, Object[]> e : severalAxesModels().entrySet()) {
      long[] shape = (long[]) e.getValue()[1];
      Plan plan = Plan.compile((Layer) e.getValue()[0], new Shape(shape), java.util.EnumSet.of(Get.NNGP, Get.NTK));
      assertTrue(dev.ntk.kernels.cuda.CudaSource.runs(plan.schedule()), e.getKey());
      String source = dev.ntk.kernels.cuda.CudaSource.generate(plan.schedule(), false,
          (int) shape[shape.length - 1]).source();
      assertTrue(source.contains("NTK_TABLE real C"), e.getKey() + ": the pair weights are a table");
      assertEquals(dev.ntk.kernels.cuda.CudaDevice.visible() ? Backend.CUDA : Backend.CPU,
          Backend.AUTO.resolve(plan.schedule()), e.getKey());
    }
  }
}

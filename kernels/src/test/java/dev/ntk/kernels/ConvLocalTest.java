package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code ConvLocal}, the locally connected layer: its kernel by hand on a small image, the
 * statements of neural-tangents' tests (without pooling a {@code Flatten} readout gives {@code
 * Conv}'s kernel; a {@code GlobalAvgPool} right after it gives that divided by the pixels),
 * Monte Carlo of wide finite networks, {@code cpu} against {@code tensorflow}, and errors naming
 * the layer.
 */
class ConvLocalTest {
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

  private static int[] a(int... v) {
    return v;
  }

  /**
   * One {@code ConvLocal} (filter 2, VALID, 3 pixels, 2 channels) and a {@code GlobalAvgPool}: with
   * {@code k[p] = x1[p] . x2[p] / C}, each output pixel {@code o} has {@code W^2 (k[o] + k[o + 1]) / 2
   * + b^2} and two pixels are independent, so the pool is {@code sum_o (...) / P^2}; the NTK adds
   * nothing in NTK parameterization, and in standard parameterization is {@code sum_o (fan_in (k[o] +
   * k[o + 1]) / 2 + 1) / P^2}.
   */
  @Test
  void kernelByHand() {
    NDArray x1 = KernelTesting.randomImages(manager, 2, new long[] {3, 2}, 5);
    NDArray x2 = KernelTesting.randomImages(manager, 3, new long[] {3, 2}, 6);
    double[] a1 = x1.toDoubleArray();
    double[] a2 = x2.toDoubleArray();
    double w = 1.3;
    double b = 0.2;
    for (Linear.Parameterization param : Linear.Parameterization.values()) {
      Layer model = Stax.serial(Stax.convLocal(4, a(2), null, "VALID", w, b, param), Stax.globalAvgPool());
      Kernel k = model.kernelFn().apply(x1, x2);
      double[] nngp = k.nngp().toDoubleArray();
      double[] ntk = k.ntk().toDoubleArray();
      for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 3; j++) {
          double[] pixel = new double[3];
          for (int p = 0; p < 3; p++) {
            pixel[p] = (a1[i * 6 + 2 * p] * a2[j * 6 + 2 * p] + a1[i * 6 + 2 * p + 1] * a2[j * 6 + 2 * p + 1]) / 2;
          }
          double expectedNngp = 0;
          double expectedNtk = 0;
          for (int o = 0; o < 2; o++) {
            double mean = (pixel[o] + pixel[o + 1]) / 2;
            expectedNngp += (w * w * mean + b * b) / 4;
            expectedNtk += (param == Linear.Parameterization.NTK ? w * w * mean + b * b : 4 * mean + 1) / 4;
          }
          assertEquals(expectedNngp, nngp[i * 3 + j], 1e-13, param + " nngp");
          assertEquals(expectedNtk, ntk[i * 3 + j], 1e-13, param + " ntk");
        }
      }
    }
  }

  /** A deep network of each kind: layers of {@code ConvLocal} or {@code Conv}, then {@code readout}. */
  private static Layer deep(boolean local, Layer readout, Linear.Parameterization param) {
    Layer[] layers = new Layer[3];
    int[][] filters = {a(2, 3), a(3, 1), a(2, 3)};
    int[][] strides = {a(2, 1), a(1, 2), a(2, 1)};
    String[] paddings = {"CIRCULAR", "SAME", "VALID"};
    double[] ws = {1.5, 1.0, 1.2};
    Double[] bs = {0.2, null, 0.3};
    for (int l = 0; l < 3; l++) {
      layers[l] = local ? Stax.convLocal(8, filters[l], strides[l], paddings[l], ws[l], bs[l], param)
          : Stax.conv(8, filters[l], strides[l], paddings[l], ws[l], bs[l], param);
    }
    return Stax.serial(layers[0], Stax.erf(), layers[1], Stax.relu(), layers[2], readout);
  }

  /**
   * neural-tangents' statements: a network of {@code ConvLocal} layers without pooling, read out by
   * {@code Flatten}, has the kernel of the same network of {@code Conv} layers; a {@code
   * GlobalAvgPool} right after its last {@code ConvLocal} has that kernel divided by the pixels (the
   * covariance of two different pixels is zero), which the {@code Conv} network's does not.
   */
  @ParameterizedTest
  @CsvSource({"NTK", "STANDARD"})
  void flattenGivesConvsKernelAndGlobalAveragePoolDividesItByThePixels(Linear.Parameterization param) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {7, 8, 3}, 11);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {7, 8, 3}, 12);
    Kernel local = deep(true, Stax.flatten(), param).kernelFn().apply(x1, x2);
    Kernel conv = deep(false, Stax.flatten(), param).kernelFn().apply(x1, x2);
    Kernel pooled = deep(true, Stax.globalAvgPool(), param).kernelFn().apply(x1, x2);
    Kernel convPooled = deep(false, Stax.globalAvgPool(), param).kernelFn().apply(x1, x2);
    Shape last = deep(true, Stax.identity(), param).outputSpecs(java.util.List.of(Spec.input(new Shape(7, 8, 3))),
        "m").get(0).shape();
    double pixels = last.get(0) * last.get(1);
    assertTrue(pixels > 1, "the test needs several pixels, got " + last);
    for (Get g : new Get[] {Get.NNGP, Get.NTK}) {
      double[] l = local.get(g).toDoubleArray();
      assertTrue(KernelTesting.relativeError(l, conv.get(g).toDoubleArray()) < 1e-12, g + " Flatten: as Conv");
      double[] p = pooled.get(g).toDoubleArray();
      double[] expected = new double[l.length];
      for (int i = 0; i < l.length; i++) {
        expected[i] = l[i] / pixels;
      }
      assertTrue(KernelTesting.relativeError(p, expected) < 1e-12, g + " GlobalAvgPool: Flatten's / pixels");
      assertTrue(KernelTesting.relativeError(p, convPooled.get(g).toDoubleArray()) > 1e-3,
          g + " GlobalAvgPool: not Conv's");
    }
  }

  static Stream<Arguments> networks() {
    int w = WIDTH;
    return Stream.of(
        Arguments.of("ConvLocal, Relu, ConvLocal, Flatten", new long[] {5, 2}, Stax.serial(
            Stax.convLocal(w, a(2), null, "SAME", 1.4, 0.1), Stax.relu(),
            Stax.convLocal(w, a(3), null, "VALID", 1.3, 0.2),
            Stax.flatten(), Stax.dense(w, 1.0, 0.1))),
        Arguments.of("ConvLocal, Relu, ConvLocal, GlobalAvgPool", new long[] {3, 4, 2}, Stax.serial(
            Stax.convLocal(w, a(2, 2), a(1, 2), "CIRCULAR", 1.5, 0.1), Stax.relu(),
            Stax.convLocal(w, a(2, 1), null, "SAME", 1.2, 0.3), Stax.globalAvgPool(), Stax.dense(w, 1.0, null))),
        Arguments.of("average pool between, standard parameterization", new long[] {4, 3, 2}, Stax.serial(
            Stax.convLocal(w, a(2, 2), null, "SAME", 1.3, 0.2, Linear.Parameterization.STANDARD),
            Stax.avgPool(a(2, 1), null, "VALID"), Stax.relu(),
            Stax.convLocal(w, a(1, 2), null, "VALID", 1.1, 0.1), Stax.relu(), Stax.globalAvgPool())),
        Arguments.of("ConvLocal beside Conv in a residual block, SumPool", new long[] {3, 3, 2}, Stax.serial(
            Stax.conv(w, a(2, 2), null, "SAME", 1.2, 0.1), Stax.fanOut(2), Stax.parallel(
                Stax.serial(Stax.relu(), Stax.convLocal(w, a(2, 2), null, "SAME", 1.3, 0.2)),
                Stax.conv(w, a(1, 1), null, "SAME", 1.0, null)),
            Stax.fanInSum(), Stax.relu(), Stax.sumPool(a(2, 2), null, "VALID"), Stax.flatten(),
            Stax.dense(w, 1.0, 0.1))));
  }

  /**
   * The analytic NNGP and NTK against Monte Carlo estimates over wide finite networks with the
   * bound of {@link ConvolutionalMonteCarloTest}; the pooled networks check that two different
   * pixels of a {@code ConvLocal} output are independent.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("networks")
  void analyticKernelsMatchWideFiniteNetworks(String name, long[] shape, Layer model) {
    NDArray x1 = KernelTesting.randomImages(manager, 3, shape, 101);
    NDArray x2 = KernelTesting.randomImages(manager, 2, shape, 102);
    Kernel k = model.kernelFn().apply(x1, x2);
    KernelTesting.assertMatchesMonteCarlo(name + " NNGP", k.nngp().toDoubleArray(),
        MonteCarlo.nngp(model, x1, x2, SAMPLES, 7), 2.0 / WIDTH, 0.15);
    // The standard parameterization's NTK varies more between draws: twice the draws.
    int samples = name.contains("standard") ? 2 * SAMPLES : SAMPLES;
    KernelTesting.assertMatchesMonteCarlo(name + " NTK", k.ntk().toDoubleArray(),
        MonteCarlo.ntk(model, x1, x2, samples, 11), 2.0 / WIDTH, 0.15);
  }

  /** {@code cpu} and {@code tensorflow} agree in float64, x1 with itself and with x2. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("networks")
  void cpuAndTensorFlowAgree(String name, long[] shape, Layer model) {
    NDArray x1 = KernelTesting.randomImages(manager, 4, shape, 21);
    NDArray x2 = KernelTesting.randomImages(manager, 3, shape, 22);
    for (NDArray other : new NDArray[] {null, x2}) {
      Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x1, other);
      Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, other);
      for (Get g : Get.values()) {
        double err = KernelTesting.relativeError(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray());
        assertTrue(err < 1e-12, name + " " + g + ": cpu and tensorflow differ by " + err);
      }
    }
  }

  /**
   * With {@code W_std = 0} the output is the biases alone, {@code b^2} at every pixel: per pixel
   * that is a kernel, but the zero between two pixels that a pool would need is refused by name.
   */
  @Test
  void biasesAloneArePerPixelOnly() {
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {4, 1}, 3);
    double[] nngp = Stax.serial(Stax.convLocal(3, a(2), null, "SAME", 0.0, 0.5), Stax.flatten()).kernelFn().apply(x)
        .nngp().toDoubleArray();
    for (double v : nngp) {
      assertEquals(0.25, v, 1e-15);
    }
    Exception e = assertThrows(ModelException.class, () -> Stax.serial(Stax.convLocal(3, a(2), null, "SAME", 0.0,
        0.5), Stax.globalSumPool()).kernelFn().apply(x));
    assertTrue(e.getMessage().startsWith("serial[0].ConvLocal: ConvLocal with W_std = 0"), e.getMessage());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "a filter of the wrong rank|{\"serial\": [{\"Identity\": {}}, {\"ConvLocal\": {\"filter_shape\": [2]}}]}"
          + "|serial[1].ConvLocal: filter_shape [2] has 1 entries but the input has 2 spatial axes",
      "a filter larger than the input|{\"ConvLocal\": {\"filter_shape\": [7, 1]}}"
          + "|ConvLocal: filter_shape [7, 1] is larger than the input",
      "strides of the wrong rank|{\"ConvLocal\": {\"filter_shape\": [2, 2], \"strides\": [1]}}"
          + "|ConvLocal: strides [1] must have one entry per axis of filter_shape",
      "no filter|{\"ConvLocal\": {\"out_chan\": 3}}|ConvLocal: missing required argument \"filter_shape\"",
      "a bad padding|{\"ConvLocal\": {\"filter_shape\": [1, 1], \"padding\": \"FULL\"}}"
          + "|ConvLocal: argument \"padding\" must be one of \"VALID\", \"SAME\", \"CIRCULAR\"",
      "vectors|{\"serial\": [{\"Flatten\": {}}, {\"ConvLocal\": {\"filter_shape\": [1]}}]}"
          + "|serial[1].ConvLocal: ConvLocal takes images"})
  void badModelsNameTheLayer(String what, String json, String expected) {
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {6, 5, 2}, 1);
    Exception e = assertThrows(ModelException.class, () -> ModelSpec.parse(json).kernelFn().apply(x), what);
    assertTrue(e.getMessage().contains(expected), what + ": " + e.getMessage());
  }

  /** The finite layer's parameters: weights and biases of their own per output position. */
  @Test
  void parametersArePerPosition() {
    Layer layer = Stax.convLocal(3, a(2, 2), a(2, 1), "SAME", 1.0, 0.1);
    Params p = layer.init(new java.util.SplittableRandom(1), java.util.List.of(Spec.input(new Shape(5, 4, 2))),
        manager, DataType.FLOAT64);
    assertEquals(new Shape(3, 4, 8, 3), p.array(0).getShape());
    assertEquals(new Shape(3, 4, 3), p.array(1).getShape());
    assertEquals(java.util.List.of("W", "b"), layer.parameterNames());
  }

  /**
   * The finite layer on given weights, against the sum it means: {@code z[n, p] = W_std / sqrt(fan_in)
   * sum_{c, a} W[p, c taps + a] x[n, p + a, c] + b_std b[p]}, each position's filter flattened input
   * channel first as {@code lax.conv_general_dilated_local} (VALID, filter 2, 3 pixels, 2 channels).
   */
  @Test
  void weightsAreFlattenedChannelFirstAsJax() {
    Layer layer = Stax.convLocal(1, a(2), null, "VALID", 1.0, 0.5);
    double[] w = new double[2 * 4];
    for (int i = 0; i < w.length; i++) {
      w[i] = i + 1;
    }
    Params params = Params.of(Tensors.create(manager, w, new Shape(2, 4, 1), DataType.FLOAT64),
        Tensors.create(manager, new double[] {0.3, -0.2}, new Shape(2, 1), DataType.FLOAT64));
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {3, 2}, 9);
    double[] xs = x.toDoubleArray();
    double[] z = layer.apply(params, x).toDoubleArray();
    double[] b = {0.3, -0.2};
    for (int n = 0; n < 2; n++) {
      for (int p = 0; p < 2; p++) {
        double sum = 0;
        for (int c = 0; c < 2; c++) {
          for (int t = 0; t < 2; t++) {
            sum += w[p * 4 + c * 2 + t] * xs[(n * 3 + p + t) * 2 + c];
          }
        }
        assertEquals(sum / 2 + 0.5 * b[p], z[n * 2 + p], 1e-14);
      }
    }
  }
}

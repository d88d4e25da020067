package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Convolutional layers: hand-computed kernels for each padding and pooling mode, the two backends
 * against each other, the per-pixel path against the pixel-pair path, and bad models. (The golden
 * kernels of an independent implementation are checked in the transforms module, on both backends
 * and through Beam; Monte Carlo in {@code ConvolutionalMonteCarloTest}.)
 */
class ConvolutionalTest {
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

  /** Every convolutional model the tests use, with the per-example input shape it takes. */
  static Map<String, Object[]> models() {
    Map<String, Object[]> m = new LinkedHashMap<>();
    m.put("1d same conv, relu, flatten", new Object[] {Stax.serial(
        Stax.conv(8, a(3), null, "SAME", 1.4, 0.1), Stax.relu(), Stax.conv(8, a(2), null, "VALID", 1.2, null),
        Stax.erf(), Stax.flatten(), Stax.dense(1, 1.0, 0.1)), new long[] {7, 2}});
    m.put("2d strided, circular, gap", new Object[] {Stax.serial(
        Stax.conv(8, a(3, 2), a(2, 1), "SAME", 1.5, 0.05), Stax.relu(),
        Stax.conv(8, a(3, 3), null, "CIRCULAR", 1.3, 0.2), Stax.abs(), Stax.globalAvgPool(),
        Stax.dense(1, 1.0, null)), new long[] {6, 5, 3}});
    m.put("2d avgpool in the middle, then per pixel", new Object[] {Stax.serial(
        Stax.conv(8, a(2, 2), null, "VALID", 1.5, 0.1), Stax.relu(),
        Stax.avgPool(a(2, 2), a(1, 2), "SAME", true), Stax.conv(8, a(3, 3), null, "SAME", 1.2, 0.0),
        Stax.leakyRelu(0.2), Stax.flatten(), Stax.dense(1)), new long[] {5, 6, 2}});
    m.put("3d sumpool, standard parameterization", new Object[] {Stax.serial(
        Stax.conv(4, a(2, 2, 2), null, "SAME", 1.3, 0.1, Linear.Parameterization.STANDARD), Stax.erf(),
        Stax.sumPool(a(2, 1, 2), a(2, 1, 1), "VALID"), Stax.globalSumPool(),
        Stax.dense(1, 1.0, 0.1, Linear.Parameterization.STANDARD)), new long[] {4, 3, 3, 2}});
    m.put("transposed convolutions", new Object[] {Stax.serial(
        Stax.convTranspose(8, a(3, 2), a(2, 2), "SAME", 1.3, 0.1), Stax.relu(),
        Stax.convTranspose(8, a(2, 3), a(1, 2), "VALID", 1.2, null), Stax.erf(), Stax.globalAvgPool(),
        Stax.dense(1)), new long[] {3, 4, 2}});
    m.put("circular transposed convolution", new Object[] {Stax.serial(
        Stax.convTranspose(8, a(5, 3), a(2, 1), "CIRCULAR", 1.3, 0.1), Stax.relu(),
        Stax.avgPool(a(2, 2), null, "VALID"), Stax.flatten(), Stax.dense(1)), new long[] {3, 4, 2}});
    m.put("residual block", new Object[] {Stax.serial(
        Stax.conv(8, a(3, 3), null, "SAME", 1.0, 0.1), Stax.fanOut(2),
        Stax.parallel(Stax.serial(Stax.relu(), Stax.conv(8, a(3, 3), null, "SAME", 1.2, 0.0)),
            Stax.conv(8, a(1, 1), null, "SAME", 1.0, null)),
        Stax.fanInSum(), Stax.relu(), Stax.avgPool(a(2, 2), a(2, 2), "VALID"), Stax.flatten(),
        Stax.dense(1)), new long[] {5, 4, 2}});
    m.put("Dense per pixel, per pixel and over pixel pairs", new Object[] {Stax.serial(
        Stax.dense(8, 1.3, 0.1), Stax.relu(), Stax.conv(8, a(2, 2), null, "SAME", 1.2, 0.1), Stax.erf(),
        Stax.dense(8, 1.1, null, Linear.Parameterization.STANDARD), Stax.abs(), Stax.avgPool(a(2, 2), null, "VALID"),
        Stax.dense(8, 1.2, 0.2), Stax.relu(), Stax.flatten(), Stax.dense(1)), new long[] {4, 3, 2}});
    m.put("image resizes, linear and nearest", new Object[] {Stax.serial(
        Stax.conv(8, a(2, 2), null, "SAME", 1.3, 0.1), Stax.index("...", "::-1", ":"), Stax.relu(),
        Stax.imageResize(a(-1, 5, -1, -1), "linear", false), Stax.index(":", "-4:", "0:3"),
        Stax.conv(8, a(2, 2), null, "VALID", 1.2, 0.1), Stax.erf(), Stax.imageResize(a(-1, 3, 5, -1), "nearest", true),
        Stax.imageResize(a(-1, 2, 3, -1), "bilinear", true), Stax.flatten(), Stax.dense(1)),
        new long[] {3, 4, 2}});
    m.put("products of convolutions, per pixel and over pixel pairs", new Object[] {Stax.serial(
        Stax.conv(8, a(2, 2), null, "SAME", 1.3, 0.1), Stax.fanOut(2), Stax.parallel(
            Stax.serial(Stax.relu(), Stax.conv(8, a(2, 2), null, "SAME", 1.2, 0.1)), Stax.identity()),
        Stax.fanInProd(), Stax.conv(8, a(3, 3), null, "SAME", 1.1, 0.1), Stax.fanOut(2),
        Stax.parallel(Stax.identity(), Stax.conv(8, a(1, 1), null, "SAME", 0.9, null)), Stax.fanInProd(),
        Stax.avgPool(a(2, 2), null, "VALID"), Stax.flatten(), Stax.dense(1)), new long[] {4, 3, 2}});
    m.put("integer indices: a row of pixel pairs, then one pixel", new Object[] {Stax.serial(
        Stax.conv(8, a(2, 2), null, "SAME", 1.3, 0.1), Stax.fanOut(2), Stax.parallel(
            Stax.serial(Stax.index(":", "1"), Stax.relu(), Stax.conv(8, a(2), null, "SAME", 1.2, 0.1),
                Stax.erf(), Stax.globalAvgPool()),
            Stax.serial(Stax.index("...", "0", "-1", ":"), Stax.relu())), Stax.fanInConcat(),
        Stax.dense(1)), new long[] {4, 3, 2}});
    m.put("spatial concatenation, per pixel", new Object[] {Stax.serial(
        Stax.conv(8, a(3), null, "SAME", 1.3, 0.1), Stax.fanOut(2), Stax.parallel(
            Stax.serial(Stax.relu(), Stax.conv(8, a(2), null, "VALID", 1.2, 0.1)),
            Stax.conv(8, a(1), null, "SAME", 1.0, null)),
        Stax.fanInConcat(1), Stax.erf(), Stax.conv(8, a(3), null, "SAME", 1.1, 0.1), Stax.flatten(),
        Stax.dense(1)), new long[] {7, 2}});
    m.put("spatial concatenation over pixel pairs", new Object[] {Stax.serial(
        Stax.conv(8, a(2, 2), null, "SAME", 1.3, 0.1), Stax.fanOut(3), Stax.parallel(
            Stax.serial(Stax.relu(), Stax.conv(8, a(1, 2), null, "VALID", 1.2, 0.1)),
            Stax.conv(8, a(1, 3), null, "VALID", 1.0, null), Stax.conv(8, a(2, 1), a(1, 2), "SAME", 1.0, 0.2)),
        Stax.fanInConcat(-2), Stax.relu(), Stax.avgPool(a(2, 2), null, "SAME"), Stax.flatten(),
        Stax.dense(1)), new long[] {4, 5, 2}});
    return m;
  }

  @Test
  void cpuAndTensorFlowAgreeOnConvolutionalModelsInFloat64() {
    for (Map.Entry<String, Object[]> e : models().entrySet()) {
      Layer model = (Layer) e.getValue()[0];
      long[] shape = (long[]) e.getValue()[1];
      KernelTesting.assertBackendsAgree(e.getKey(), model, KernelTesting.randomImages(manager, 4, shape, 11),
          KernelTesting.randomImages(manager, 3, shape, 12));
    }
  }

  /**
   * The per-pixel path against the pixel-pair path: a window-1 AvgPool at the end changes nothing
   * but makes the requirements pass keep the covariance of every two pixels from the inputs up.
   */
  @Test
  void perPixelPathEqualsThePixelPairPathReducedToItsDiagonal() {
    Layer body = Stax.serial(Stax.conv(8, a(3, 2), a(1, 2), "SAME", 1.4, 0.1), Stax.relu(),
        Stax.conv(8, a(2, 2), null, "CIRCULAR", 1.2, null), Stax.erf(), Stax.conv(8, a(3, 3), null, "VALID", 1.1, 0.2));
    Layer perPixel = Stax.serial(body, Stax.flatten());
    Layer pairs = Stax.serial(body, Stax.avgPool(a(1, 1), null, "VALID"), Stax.flatten());
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {6, 7, 2}, 21);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {6, 7, 2}, 22);
    Shape perExample = x1.getShape().slice(1);
    assertTrue(perPixel.kernelFn().plan(perExample, EnumSet.allOf(Get.class)).requirements().diagonalSpatial());
    assertFalse(pairs.kernelFn().plan(perExample, EnumSet.allOf(Get.class)).requirements().diagonalSpatial());
    Kernel a = perPixel.kernelFn().apply(x1, x2);
    Kernel b = pairs.kernelFn().apply(x1, x2);
    for (Get g : Get.values()) {
      double err = KernelTesting.relativeError(a.get(g).toDoubleArray(), b.get(g).toDoubleArray());
      assertTrue(err < 1e-13, g + ": per-pixel and pixel-pair paths differ by " + err);
    }
  }

  /**
   * One image {@code x = (1, 2, 3)} (or {@code (1, 2, 3, 4)}) with one channel, so the input kernel
   * is {@code K[p, q] = x_p x_q}, through one layer and the implicit per-pixel readout (the mean of
   * the diagonal), computed by hand.
   */
  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      // SAME, filter 2: pad 1, all of it after; out[p] = (K[p] + K[p+1]) / 2 -> (2.5, 6.5, 4.5)
      "{\"Conv\": {\"filter_shape\": [2], \"padding\": \"SAME\"}}|3|4.5",
      // SAME, filter 3: pad 1 each side -> (5/3, 14/3, 13/3)
      "{\"Conv\": {\"filter_shape\": [3], \"padding\": \"SAME\"}}|3|3.5555555555555554",
      // CIRCULAR, filter 2: (1+4)/2, (4+9)/2, (9+1)/2
      "{\"Conv\": {\"filter_shape\": [2], \"padding\": \"CIRCULAR\"}}|3|4.666666666666667",
      // VALID, filter 2, stride 2 over 4 pixels: (1+4)/2, (9+16)/2
      "{\"Conv\": {\"filter_shape\": [2], \"strides\": [2], \"padding\": \"VALID\", \"W_std\": 2, \"b_std\": 1}}|4|31",
      // ConvTranspose, filter 2, stride 2, VALID: dilated (1, 0, 2, 0, 3) padded by 1 each side,
      // averages over 2 of (0,1), (1,0), (0,4), (4,0), (0,9), (9,0): mean of (.5, .5, 2, 2, 4.5, 4.5)
      "{\"ConvTranspose\": {\"filter_shape\": [2], \"strides\": [2], \"padding\": \"VALID\"}}|3|2.3333333333333335",
      // SumPool 2, stride 2: (1+2)^2, (3+4)^2
      "{\"SumPool\": {\"window_shape\": [2], \"strides\": [2]}}|4|29",
      // AvgPool 3 SAME: (1+2)/3, 2, (2+3)/3 squared
      "{\"AvgPool\": {\"window_shape\": [3], \"padding\": \"SAME\"}}|3|2.5925925925925926",
      // ... dividing by the pixels inside: 1.5, 2, 2.5 squared
      "{\"AvgPool\": {\"window_shape\": [3], \"padding\": \"SAME\", \"normalize_edges\": true}}|3|4.166666666666667",
      // CIRCULAR AvgPool 2: (1+2)/2, (2+3)/2, (3+1)/2 squared
      "{\"AvgPool\": {\"window_shape\": [2], \"padding\": \"CIRCULAR\"}}|3|4.166666666666667",
      "{\"GlobalAvgPool\": {}}|3|4",
      "{\"GlobalSumPool\": {}}|3|36"})
  void handComputedKernels(String layer, int pixels, double expected) {
    Layer model = ModelSpec.parse(layer);
    double[] x = new double[pixels];
    for (int p = 0; p < pixels; p++) {
      x[p] = p + 1;
    }
    NDArray in = Tensors.create(manager, x, new Shape(1, pixels, 1), DataType.FLOAT64);
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      double nngp = model.kernelFn().withBackend(backend).apply(in).nngp().toDoubleArray()[0];
      assertEquals(expected, nngp, 1e-12 * Math.abs(expected), layer + " on " + backend);
    }
  }

  /**
   * A transposed convolution's rule against its finite layer, exactly: with one channel, the
   * finite layer's output under the one-hot filter {@code e_a} is the input pixel that tap {@code
   * a} reads at each output, so the NNGP of the layer (W_std 1, no bias) is {@code (1/f) sum_a
   * z_a z_a^T}. An {@code AvgPool} of 2, {@code VALID} (which does not wrap) and the per-pixel
   * mean follow, so that a shift of the circular output would change the number.
   */
  @ParameterizedTest(name = "{0}, filter {1}, stride {2}")
  @CsvSource({"CIRCULAR,5,2", "CIRCULAR,3,2", "CIRCULAR,4,1", "CIRCULAR,2,3", "CIRCULAR,7,1", "SAME,4,2",
      "VALID,3,2"})
  void transposedConvolutionMatchesItsFiniteLayerExactly(String padding, int f, int s) {
    double[] x = {1.0, -2.0, 0.5, 3.0};
    NDArray in = Tensors.create(manager, x, new Shape(1, x.length, 1), DataType.FLOAT64);
    double[][] z = new double[f][];
    for (int a = 0; a < f; a++) {
      double[] w = new double[f];
      w[a] = 1.0;
      z[a] = FiniteConv.convTranspose(in, Tensors.create(manager, w, new Shape(f, 1, 1), DataType.FLOAT64),
          new int[] {s}, FiniteConv.Padding.valueOf(padding)).toDoubleArray();
    }
    int out = z[0].length;
    double expected = 0.0;
    for (int i = 0; i + 1 < out; i++) {
      for (int a = 0; a < f; a++) {
        double pooled = (z[a][i] + z[a][i + 1]) / 2;
        expected += pooled * pooled / f;
      }
    }
    expected /= out - 1;
    Layer model = ModelSpec.parse("{\"serial\": [{\"ConvTranspose\": {\"filter_shape\": [" + f
        + "], \"strides\": [" + s + "], \"padding\": \"" + padding + "\"}}, {\"AvgPool\": {\"window_shape\": [2]}}]}");
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      double nngp = model.kernelFn().withBackend(backend).apply(in).nngp().toDoubleArray()[0];
      assertEquals(expected, nngp, 1e-12 * Math.abs(expected), padding + " on " + backend);
    }
  }

  /** {@code jax.image.resize}'s weights, worked out by hand, through the finite layer on one channel. */
  @ParameterizedTest(name = "{0} {1} to {2}, antialias {3}")
  @CsvSource(delimiter = '|', value = {
      // samples -0.25, 0.25, 0.75, 1.25: the triangle's weights, rows normalized
      "linear|2|4|false|1, 1.25, 1.75, 2",
      // samples 0.5, 2.5 with the triangle stretched to 2: (3, 3, 1, 0) / 7 and (0, 1, 3, 3) / 7
      "linear|4|2|true|1.7142857142857142, 3.2857142857142856",
      "linear|4|2|false|1.5, 3.5",
      // floor((o + 0.5) 3 / 5) = 0, 0, 1, 2, 2 and floor((o + 0.5) 5 / 2) = 1, 3
      "nearest|3|5|true|1, 1, 2, 3, 3",
      "nearest|5|2|true|2, 4"})
  void imageResizeTakesJaxsWeights(String method, int in, int out, boolean antialias, String expected) {
    double[] x = new double[in];
    for (int p = 0; p < in; p++) {
      x[p] = p + 1;
    }
    NDArray image = Tensors.create(manager, x, new Shape(1, in, 1), DataType.FLOAT64);
    double[] y = Stax.imageResize(a(-1, out, -1), method, antialias).apply(Params.EMPTY, image).toDoubleArray();
    double[] want = java.util.Arrays.stream(expected.split(",")).mapToDouble(v -> Double.parseDouble(v.strip()))
        .toArray();
    org.junit.jupiter.api.Assertions.assertArrayEquals(want, y, 1e-14);
  }

  /** NumPy's slicing rules, by hand: negative positions from the end, clamping, negative steps. */
  @ParameterizedTest(name = "{0} of {1}")
  @CsvSource(delimiter = '|', value = {":|4|0,1,2,3", "1:|4|1,2,3", "::2|5|0,2,4", "::-1|3|2,1,0", "-2:|5|3,4",
      "-10:2|5|0,1", "3:100|5|3,4", "4:0:-2|5|4,2", "-1:-4:-1|5|4,3,2", ":-1|3|0,1", "10::-1|3|2,1,0",
      "2:2|3|", "::-3|7|6,3,0"})
  void indexSlicesAsNumPy(String slice, int n, String expected) {
    int[] want = expected == null ? new int[0]
        : java.util.Arrays.stream(expected.split(",")).mapToInt(Integer::parseInt).toArray();
    org.junit.jupiter.api.Assertions.assertArrayEquals(want, Convolutional.Index.slice(slice, n));
  }

  /** Index on the finite network: {@code x[:, ::-1, 1:3, :]} of a (1, 2, 3, 1) image, by hand. */
  @Test
  void indexPicksThePixelsNumPyWould() {
    NDArray x = Tensors.create(manager, new double[] {1, 2, 3, 4, 5, 6}, new Shape(1, 2, 3, 1), DataType.FLOAT64);
    Layer index = ModelSpec.parse("{\"Index\": {\"idx\": [\":\", \"::-1\", \"1:3\"]}}");
    assertEquals(new Shape(2, 2, 1), index.check(new Shape(2, 3, 1)).shape());
    org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {5, 6, 2, 3},
        index.apply(Params.EMPTY, x).toDoubleArray(), 0.0);
    assertEquals("{\"Index\":{\"idx\":[\":\",\"::-1\",\"1:3\"]}}", ModelSpec.toJson(index));
    assertEquals(ModelSpec.toJson(index), ModelSpec.toJson(Stax.index(":", "::-1", "1:3")));
    // x[:, 1, ::-1]: the first spatial axis removed.
    Layer row = ModelSpec.parse("{\"Index\": {\"idx\": [\":\", 1, \"::-1\"]}}");
    assertEquals(new Shape(3, 1), row.check(new Shape(2, 3, 1)).shape());
    NDArray picked = row.apply(Params.EMPTY, x);
    assertEquals(new Shape(1, 3, 1), picked.getShape());
    org.junit.jupiter.api.Assertions.assertArrayEquals(new double[] {6, 5, 4}, picked.toDoubleArray(), 0.0);
    assertEquals("{\"Index\":{\"idx\":[\":\",1,\"::-1\"]}}", ModelSpec.toJson(row));
    // Every spatial axis removed: vectors, whose kernel is the products of the picked pixels.
    NDArray y1 = KernelTesting.randomImages(manager, 3, new long[] {2, 3, 2}, 51);
    NDArray y2 = KernelTesting.randomImages(manager, 2, new long[] {2, 3, 2}, 52);
    Layer pixel = Stax.index("...", "-1", "0", ":");
    assertEquals(new Shape(2), pixel.check(new Shape(2, 3, 2)).shape());
    double[] a = pixel.apply(Params.EMPTY, y1).toDoubleArray();
    double[] b = pixel.apply(Params.EMPTY, y2).toDoubleArray();
    for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
      double[] k = pixel.kernelFn().withBackend(backend).apply(y1, y2).nngp().toDoubleArray();
      for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 2; j++) {
          assertEquals((a[2 * i] * b[2 * j] + a[2 * i + 1] * b[2 * j + 1]) / 2, k[i * 2 + j], 1e-14);
        }
      }
    }
  }

  /**
   * A resize or an index is linear and has no parameters, so its kernel is the channel average of
   * the mapped images' products, exactly: per pixel after Flatten, over pixel pairs after
   * GlobalSumPool (x2 given and absent, both backends).
   */
  @Test
  void imageResizeKernelIsTheCovarianceOfTheResizedImages() {
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {4, 3, 2}, 41);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {4, 3, 2}, 42);
    Layer[] resizes = {Stax.imageResize(a(-1, 6, 2, -1), "linear", true),
        Stax.imageResize(a(-1, 2, -1, -1), "linear", false), Stax.imageResize(a(-1, 7, 2, -1), "nearest", true),
        Stax.index(":", "::-2", "1:"), Stax.index("...", "-2:0:-1", ":"), Stax.index(":", "-3", "::-1"),
        Stax.index(":", ":", "1")};
    for (Layer resize : resizes) {
      for (NDArray other : new NDArray[] {null, x2}) {
        NDArray second = other == null ? x1 : other;
        double[] y1 = resize.apply(Params.EMPTY, x1).toDoubleArray();
        double[] y2 = resize.apply(Params.EMPTY, second).toDoubleArray();
        int n1 = 3;
        int n2 = (int) second.getShape().get(0);
        int pixels = y1.length / n1 / 2;
        double[] flat = new double[n1 * n2];
        double[] summed = new double[n1 * n2];
        for (int i = 0; i < n1; i++) {
          for (int j = 0; j < n2; j++) {
            for (int p = 0; p < pixels; p++) {
              for (int q = 0; q < pixels; q++) {
                double dot = 0;
                for (int c = 0; c < 2; c++) {
                  dot += y1[(i * pixels + p) * 2 + c] * y2[(j * pixels + q) * 2 + c] / 2;
                }
                summed[i * n2 + j] += dot;
                flat[i * n2 + j] += p == q ? dot / pixels : 0;
              }
            }
          }
        }
        for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
          double[] perPixel = Stax.serial(resize, Stax.flatten()).kernelFn().withBackend(backend).apply(x1, other)
              .nngp().toDoubleArray();
          double[] pairs = Stax.serial(resize, Stax.globalSumPool()).kernelFn().withBackend(backend)
              .apply(x1, other).nngp().toDoubleArray();
          org.junit.jupiter.api.Assertions.assertArrayEquals(flat, perPixel, 1e-13, resize + " per pixel");
          org.junit.jupiter.api.Assertions.assertArrayEquals(summed, pairs, 1e-12, resize + " pixel pairs");
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(delimiter = '|', value = {
      "filter larger than a VALID input|{\"serial\": [{\"Conv\": {\"filter_shape\": [3, 9]}}, {\"Flatten\": {}}]}"
          + "|serial[0].Conv: filter_shape [3, 9] is larger than the input",
      "input of the wrong rank|{\"serial\": [{\"Conv\": {\"filter_shape\": [3]}}, {\"Flatten\": {}}]}"
          + "|serial[0].Conv: filter_shape [3] has 1 entries but the input has 2 spatial axes",
      "pooling window of the wrong length|{\"serial\": [{\"Conv\": {\"filter_shape\": [3, 3]}}, "
          + "{\"AvgPool\": {\"window_shape\": [2, 2, 2]}}]}|serial[1].AvgPool: window_shape [2, 2, 2] has 3 entries",
      "strides of the wrong length|{\"serial\": [{\"SumPool\": {\"window_shape\": [2, 2], \"strides\": [1]}}]}"
          + "|serial[0].SumPool: strides [1] must have one entry per axis",
      "resizing the batch axis|{\"ImageResize\": {\"shape\": [3, 4, 4, -1], \"method\": \"linear\"}}"
          + "|ImageResize: shape [3, 4, 4, -1] resizes the batch axis",
      "resizing the channel axis|{\"ImageResize\": {\"shape\": [-1, 4, 4, 3], \"method\": \"linear\"}}"
          + "|ImageResize: shape [-1, 4, 4, 3] resizes the channel axis",
      "a resize shape of the wrong length|{\"ImageResize\": {\"shape\": [-1, 4, -1], \"method\": \"nearest\"}}"
          + "|ImageResize: shape [-1, 4, -1] has 3 entries but the input has 4 axes",
      "a resize method without a kernel|{\"ImageResize\": {\"shape\": [-1, 4, 4, -1], \"method\": \"cubic\"}}"
          + "|ImageResize: argument \"method\" must be one of \"linear\", \"bilinear\"",
      "indexing the batch axis|{\"Index\": {\"idx\": [\"1:\", \":\"]}}|Index: idx [1:, :] indexes the batch axis",
      "indexing the channel axis|{\"Index\": {\"idx\": [\"...\", \"0:1\"]}}|Index: idx [..., 0:1] indexes the "
          + "channel axis",
      "an integer index out of range|{\"Index\": {\"idx\": [\":\", -7]}}|Index: idx [:, -7] takes the integer -7 "
          + "on axis 1, which has 6 entries",
      "an integer index on the channel axis|{\"Index\": {\"idx\": [\"...\", 1]}}|Index: idx [..., 1] indexes the "
          + "channel axis with 1",
      "an empty slice|{\"Index\": {\"idx\": [\":\", \":\", \"3:1\"]}}|Index: idx [:, :, 3:1] selects no pixel",
      "a step of 0|{\"Index\": {\"idx\": [\":\", \"::0\"]}}|Index: idx [:, ::0] has a step of 0 on axis 1",
      "too many indices|{\"Index\": {\"idx\": [\":\", \":\", \":\", \":\", \":\"]}}|indexes 5 axes but the input has 4",
      "two ellipses|{\"Index\": {\"idx\": [\"...\", \"...\"]}}|Index: idx [..., ...] has more than one",
      "not an index|{\"Index\": {\"idx\": [\"a:b\"]}}|Index: argument \"idx\" must be a list of NumPy indices",
      "concatenation along the batch axis|{\"serial\": [{\"FanOut\": {}}, {\"parallel\": [{\"Conv\": "
          + "{\"filter_shape\": [1, 1]}}, {\"Dense\": {\"out_dim\": 2}}]}, {\"FanInConcat\": {\"axis\": 0}}]}"
          + "|serial[2].FanInConcat: FanInConcat along the batch axis (0) is not supported",
      "spatial concatenation of grids that differ|{\"serial\": [{\"FanOut\": {}}, {\"parallel\": [{\"Conv\": "
          + "{\"filter_shape\": [2, 1]}}, {\"Dense\": {\"out_dim\": 1}}]}, {\"FanInConcat\": {\"axis\": 2}}]}"
          + "|serial[2].FanInConcat: FanInConcat needs inputs of one shape except along axis 2, but input 0 has "
          + "(5, 5, 1) and input 1 has (6, 5, 1)",
      "a pooling layer on vectors|{\"serial\": [{\"Dense\": {}}, {\"GlobalAvgPool\": {}}]}"
          + "|serial[1].GlobalAvgPool: GlobalAvgPool takes images"})
  void badModelsNameTheLayer(String what, String json, String expected) {
    NDArray x = KernelTesting.randomImages(manager, 2, new long[] {6, 5, 2}, 1);
    Exception e = assertThrows(ModelException.class, () -> {
      Layer model = ModelSpec.parse(json);
      if (json.contains("Dense\": {}")) {
        model.kernelFn().apply(KernelTesting.randomInputs(manager, 2, 4, 1));
      } else {
        model.kernelFn().apply(x);
      }
    }, what);
    assertTrue(e.getMessage().contains(expected), what + ": " + e.getMessage());
  }
}

package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code LayerNorm} and {@code Dropout} ({@link Normalization}): the rules against hand-computed
 * kernels, {@code cpu} against {@code tensorflow} on images, and the model files' arguments and
 * errors; Monte Carlo of wide finite networks is {@link NormalizationMonteCarloTest}.
 */
class NormalizationTest {
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

  @Test
  void layerNormRuleDividesByTheVariancesPlusEps() {
    RuleTesting.Input in = RuleTesting.hardInput(5);
    double eps = 0.01;
    Map<String, double[]> out = RuleTesting.run(Stax.layerNorm(a(-1), eps), in);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        int e = i * in.n2() + j;
        double s = Math.sqrt((in.var1()[i] + eps) * (in.var2()[j] + eps));
        assertEquals(in.nngp()[e] / s, out.get(Plan.NNGP)[e], 1e-15, "nngp " + e);
        assertEquals(in.ntk()[e] / s, out.get(Plan.NTK)[e], 1e-15, "ntk " + e);
      }
      assertEquals(in.var1()[i] / (in.var1()[i] + eps), out.get(Plan.VAR1)[i], 1e-15);
    }
    // The default eps = 1e-12: a zero input stays zero, the others get unit variance.
    Map<String, double[]> standard = RuleTesting.run(Stax.layerNorm(), in);
    assertEquals(1.0, standard.get(Plan.VAR1)[0], 1e-10);
    assertEquals(0.0, standard.get(Plan.VAR1)[4], 0.0);
  }

  @Test
  void dropoutRuleScalesTheVariancesOfDifferentInputsOnly() {
    RuleTesting.Input in = RuleTesting.hardInput(6);
    Map<String, double[]> train = RuleTesting.run(Stax.dropout(0.8), in);
    Map<String, double[]> test = RuleTesting.run(Stax.dropout(0.8, "test"), in);
    for (int e = 0; e < in.nngp().length; e++) {
      assertEquals(in.nngp()[e], train.get(Plan.NNGP)[e], 0.0);
      assertEquals(in.ntk()[e], train.get(Plan.NTK)[e], 0.0);
      assertEquals(in.nngp()[e], test.get(Plan.NNGP)[e], 0.0);
    }
    for (int i = 0; i < in.n1(); i++) {
      assertEquals(in.var1()[i] / 0.8, train.get(Plan.VAR1)[i], 1e-15);
      assertEquals(in.var1()[i], test.get(Plan.VAR1)[i], 0.0);
    }
  }

  /** Per-pixel inner products {@code x1[i, p] . x2[j, p] / C} of images {@code (n, P, C)}, flattened. */
  private static double[][][] pixelGram(double[] x1, int n1, double[] x2, int n2, int pixels, int c) {
    double[][][] g = new double[n1][n2][pixels * pixels];
    for (int i = 0; i < n1; i++) {
      for (int j = 0; j < n2; j++) {
        for (int p = 0; p < pixels; p++) {
          for (int q = 0; q < pixels; q++) {
            double s = 0;
            for (int k = 0; k < c; k++) {
              s += x1[(i * pixels + p) * c + k] * x2[(j * pixels + q) * c + k];
            }
            g[i][j][p * pixels + q] = s / c;
          }
        }
      }
    }
    return g;
  }

  /**
   * After a 1x1 convolution (which keeps the input's covariance, {@code W_std = 1}, no bias), on 3
   * x 2 images with 3 channels: LayerNorm over channels, over the last spatial axis and channels,
   * and over every axis but the batch, followed by Flatten (per-pixel kernels) and by GlobalAvgPool
   * (pixel pairs), against the same formulas written out here; x2 given and absent.
   */
  @Test
  void layerNormOnImagesMatchesHandComputedKernels() {
    int h = 3;
    int w = 2;
    int c = 3;
    int pixels = h * w;
    double eps = 0.05;
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {h, w, c}, 21);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {h, w, c}, 22);
    int[][] axes = {a(-1), a(2, 3), a(1, 2, 3)};
    for (int[] axis : axes) {
      for (boolean pool : new boolean[] {false, true}) {
        Layer model = Stax.serial(Stax.conv(5, a(1, 1), null, "SAME", 1.0, null), Stax.layerNorm(axis, eps),
            pool ? Stax.globalAvgPool() : Stax.flatten());
        for (NDArray other : new NDArray[] {null, x2}) {
          NDArray second = other == null ? x1 : other;
          int n1 = 3;
          int n2 = (int) second.getShape().get(0);
          double[] a1 = x1.toDoubleArray();
          double[] a2 = second.toDoubleArray();
          double[][][] g = pixelGram(a1, n1, a2, n2, pixels, c);
          double[][] m1 = normalizers(pixelGram(a1, n1, a1, n1, pixels, c), axis, h, w, eps);
          double[][] m2 = normalizers(pixelGram(a2, n2, a2, n2, pixels, c), axis, h, w, eps);
          Kernel k = model.kernelFn().withBackend(Backend.CPU).apply(x1, other);
          double[] nngp = k.nngp().toDoubleArray();
          double[] ntk = k.ntk().toDoubleArray();
          for (int i = 0; i < n1; i++) {
            for (int j = 0; j < n2; j++) {
              double expected = 0;
              for (int p = 0; p < pixels; p++) {
                for (int q = 0; q < pixels; q++) {
                  if (pool || p == q) {
                    expected += g[i][j][p * pixels + q] / Math.sqrt(m1[i][p] * m2[j][q]);
                  }
                }
              }
              expected /= pool ? pixels * pixels : pixels;
              String what = "axis " + java.util.Arrays.toString(axis) + (pool ? " pooled" : "") + " (" + i + ", "
                  + j + ")" + (other == null ? " x1 with itself" : "");
              assertEquals(expected, nngp[i * n2 + j], 1e-13, what);
              // The 1x1 convolution's NTK is its NNGP, and LayerNorm scales both alike.
              assertEquals(expected, ntk[i * n2 + j], 1e-13, what + " ntk");
            }
          }
        }
      }
    }
  }

  /** {@code eps} plus each example's per-pixel variances averaged over the normalized spatial axes. */
  private static double[][] normalizers(double[][][] self, int[] axis, int h, int w, double eps) {
    boolean rows = java.util.Arrays.stream(axis).anyMatch(x -> x == 1);
    boolean cols = java.util.Arrays.stream(axis).anyMatch(x -> x == 2 || x == -2);
    int pixels = h * w;
    double[][] m = new double[self.length][pixels];
    for (int i = 0; i < self.length; i++) {
      for (int p = 0; p < pixels; p++) {
        int r = p / w;
        int s = p % w;
        double sum = 0;
        int count = 0;
        for (int r2 = 0; r2 < h; r2++) {
          for (int s2 = 0; s2 < w; s2++) {
            if ((rows || r2 == r) && (cols || s2 == s)) {
              int q = r2 * w + s2;
              sum += self[i][i][q * pixels + q];
              count++;
            }
          }
        }
        m[i][p] = eps + sum / count;
      }
    }
    return m;
  }

  /**
   * Dropout after a 1x1 convolution: x1 with itself scales the kernel of each example with itself,
   * pixel by pixel (per-pixel blocks through Flatten, pixel pairs through GlobalAvgPool: only the
   * pixels with themselves), and its variances; x2 given leaves the kernels alone. Then a ReLU after
   * it sees the scaled variance on the diagonal: the angle of an example with itself stays 0.
   */
  @Test
  void dropoutScalesTheDiagonalOfX1WithItself() {
    int pixels = 4;
    int c = 2;
    double rate = 0.8;
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {2, 2, c}, 31);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {2, 2, c}, 32);
    for (boolean pool : new boolean[] {false, true}) {
      Layer model = Stax.serial(Stax.conv(4, a(1, 1), null, "SAME", 1.0, null), Stax.dropout(rate),
          pool ? Stax.globalAvgPool() : Stax.flatten());
      for (Backend backend : new Backend[] {Backend.CPU, Backend.TENSORFLOW}) {
        for (NDArray other : new NDArray[] {null, x2}) {
          NDArray second = other == null ? x1 : other;
          int n2 = (int) second.getShape().get(0);
          double[][][] g = pixelGram(x1.toDoubleArray(), 3, second.toDoubleArray(), n2, pixels, c);
          Kernel k = model.kernelFn().withBackend(backend).apply(x1, other);
          double[] nngp = k.nngp().toDoubleArray();
          double[] ntk = k.ntk().toDoubleArray();
          for (int i = 0; i < 3; i++) {
            for (int j = 0; j < n2; j++) {
              double expected = 0;
              for (int p = 0; p < pixels; p++) {
                for (int q = 0; q < pixels; q++) {
                  if (pool || p == q) {
                    boolean scaled = other == null && i == j && p == q;
                    expected += g[i][j][p * pixels + q] / (scaled ? rate : 1);
                  }
                }
              }
              expected /= pool ? pixels * pixels : pixels;
              String what = backend + (pool ? " pooled" : "") + " (" + i + ", " + j + ")"
                  + (other == null ? " x1 with itself" : "");
              assertEquals(expected, nngp[i * n2 + j], 1e-13, what);
              assertEquals(expected, ntk[i * n2 + j], 1e-13, what + " ntk");
            }
          }
        }
      }
    }
    Layer relu = Stax.serial(Stax.dense(8, 1.3, 0.1), Stax.dropout(0.5), Stax.dense(8, 1.1, 0.2), Stax.relu(),
        Stax.dense(1));
    NDArray x = KernelTesting.randomInputs(manager, 4, 3, 33);
    Kernel k = relu.kernelFn().apply(x);
    Kernel plain = Stax.serial(Stax.dense(8, 1.3, 0.1), Stax.dense(8, 1.1, 0.2), Stax.relu(), Stax.dense(1))
        .kernelFn().apply(x);
    double[] kd = k.nngp().toDoubleArray();
    double[] pd = plain.nngp().toDoubleArray();
    double[] v = k.cov1().toDoubleArray();
    for (int i = 0; i < 4; i++) {
      // relu of a variance s: s / 2; through the readout Dense: s / 2 + 0 (W_std = 1, no bias).
      assertEquals(v[i], kd[i * 4 + i], 1e-14, "diagonal " + i + " is the variance");
      assertTrue(kd[i * 4 + i] > pd[i * 4 + i], "dropout adds variance on the diagonal");
    }
  }

  /**
   * LayerNorm over channels, over spatial axes and over both, between convolutions, with Dropout, on
   * images {@code (3, 4, 2)}; read out per pixel (Flatten) or with pixel pairs ({@code pool}).
   */
  static Layer imageModel(boolean pool) {
    return Stax.serial(Stax.conv(8, a(2, 2), null, "SAME", 1.4, 0.1), Stax.layerNorm(a(1, 2, 3), 1e-12),
        Stax.relu(), Stax.dropout(0.7), Stax.conv(8, a(2, 2), null, "SAME", 1.2, 0.1),
        Stax.layerNorm(a(2, -1), 0.01), Stax.erf(), Stax.dropout(0.9), Stax.conv(8, a(2, 1), null, "VALID", 1.1, 0.1),
        Stax.layerNorm(), Stax.relu(), pool ? Stax.globalAvgPool() : Stax.flatten(), Stax.dense(1));
  }

  /**
   * Both backends to 1e-12 on images (the dense models are in {@link TestModels}), x2 given and
   * absent, per pixel (Flatten) and with pixel pairs (GlobalAvgPool).
   */
  @Test
  void cpuAndTensorFlowAgreeOnImages() {
    NDArray x1 = KernelTesting.randomImages(manager, 4, new long[] {3, 4, 2}, 51);
    NDArray x2 = KernelTesting.randomImages(manager, 3, new long[] {3, 4, 2}, 52);
    for (boolean pool : new boolean[] {false, true}) {
      Layer model = imageModel(pool);
      for (NDArray other : new NDArray[] {null, x2}) {
        Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x1, other);
        Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, other);
        // Per-pixel blocks of x1 with itself: the ReLU NTK's diagonal differs by about 1e-9 between the
        // backends without these layers too (the same network without LayerNorm and Dropout: 8e-10).
        double bound = pool || other != null ? 1e-12 : 1e-8;
        for (Get g : Get.values()) {
          double err = KernelTesting.relativeError(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray());
          assertTrue(err < bound, g + (pool ? " pooled" : " flattened") + (other == null ? ", x1 with itself" : "")
              + ": cpu and tensorflow differ by " + err);
        }
      }
    }
  }

  /** float32 runs through the same diagonal writes (buffers of floats). */
  @Test
  void float32KeepsTheSameExampleDiagonal() {
    Layer model = Stax.serial(Stax.dense(8, 1.3, 0.1), Stax.relu(), Stax.dropout(0.6), Stax.dense(1, 1.0, 0.1));
    NDArray x = KernelTesting.randomInputs(manager, 5, 3, 61);
    double[] k64 = model.kernelFn().withBackend(Backend.CPU).apply(x).ntk().toDoubleArray();
    double[] k32 = Tensors.toDoubles(model.kernelFn().withBackend(Backend.CPU)
        .apply(x.toType(DataType.FLOAT32, false)).ntk());
    assertTrue(KernelTesting.relativeError(k32, k64) < 1e-5, "float32 against float64");
  }

  @Test
  void modelFilesNameTheLayerOfABadArgument() {
    String dense = "{\"Dense\": {\"out_dim\": 4}}";
    Map<String, String> bad = Map.of(
        "{\"LayerNorm\": {\"axis\": 4}}", "outside an activation of 4 axes",
        "{\"LayerNorm\": {\"axis\": [1, 2]}}", "must include the channel axis",
        "{\"LayerNorm\": {\"axis\": [0, -1]}}", "includes the batch axis",
        "{\"LayerNorm\": {\"axis\": \"channels\"}}", "argument \"axis\" must be an axis or a non-empty list",
        "{\"LayerNorm\": {\"channel_axis\": 1}}", "batch-first and channel-last",
        "{\"LayerNorm\": {\"eps\": -1}}", "argument \"eps\" must be a finite number >= 0",
        "{\"Dropout\": {\"rate\": 0}}", "argument \"rate\" (the probability of keeping an entry) must be in (0, 1]",
        "{\"Dropout\": {\"rate\": 1.5}}", "must be in (0, 1], got 1.5",
        "{\"Dropout\": {\"rate\": 0.5, \"mode\": \"eval\"}}", "argument \"mode\" must be one of \"train\", \"test\"",
        "{\"Dropout\": {}}", "missing required argument \"rate\"");
    for (Map.Entry<String, String> e : bad.entrySet()) {
      String json = "{\"serial\": [{\"Conv\": {\"out_chan\": 4, \"filter_shape\": [2, 2]}}, " + e.getKey() + "]}";
      ModelException ex = assertThrows(ModelException.class,
          () -> ModelSpec.parse(json).check(new Shape(4, 4, 2)), e.getKey());
      String layer = e.getKey().substring(2, e.getKey().indexOf('"', 2));
      assertTrue(ex.getMessage().contains("serial[1]." + layer), ex.getMessage());
      assertTrue(ex.getMessage().contains(e.getValue()), e.getKey() + ": " + ex.getMessage());
    }
    ModelException java = assertThrows(ModelException.class, () -> Stax.dropout(0));
    assertEquals("Dropout", java.path());
    ModelException javaAxis = assertThrows(ModelException.class,
        () -> Stax.serial(Stax.dense(3), Stax.layerNorm(new int[] {0}, 0)).check(new Shape(2)));
    assertTrue(javaAxis.getMessage().startsWith("serial[1].LayerNorm"), javaAxis.getMessage());
    ModelException notGaussian = assertThrows(ModelException.class, () -> ModelSpec.parse(
        "{\"serial\": [" + dense + ", {\"Relu\": {}}, {\"LayerNorm\": {}}]}").check(new Shape(3)));
    assertTrue(notGaussian.getMessage().contains("serial[2].LayerNorm"), notGaussian.getMessage());
    assertTrue(notGaussian.getMessage().contains("not Gaussian"), notGaussian.getMessage());
  }

  @Test
  void modelFilesReadAndWriteTheDefaults() {
    Layer read = ModelSpec.parse("{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"LayerNorm\": {}}, "
        + "{\"Dropout\": {\"rate\": 0.9}}, {\"LayerNorm\": {\"axis\": [1, -1], \"eps\": 0.5}}]}");
    String written = ModelSpec.toJson(read);
    assertTrue(written.contains("{\"LayerNorm\":{\"axis\":-1,\"eps\":1.0E-12,\"batch_axis\":0,\"channel_axis\":-1}}"),
        written);
    assertTrue(written.contains("{\"Dropout\":{\"rate\":0.9,\"mode\":\"train\"}}"), written);
    assertTrue(written.contains("\"axis\":[1,-1],\"eps\":0.5"), written);
    assertEquals(written, ModelSpec.toJson(ModelSpec.parse(written)));
    assertEquals(ModelSpec.toJson(Stax.dropout(0.9)),
        ModelSpec.toJson(ModelSpec.parse("{\"Dropout\": {\"rate\": 0.9}}")));
  }
}

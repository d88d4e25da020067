package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.engine.Expr;
import java.util.EnumSet;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The backends against each other, float32 against float64, and what a plan leaves out. */
class BackendsTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  @Test
  void cpuAndTensorFlowAgreeOnEveryModelInFloat64() {
    NDArray x1 = KernelTesting.randomInputs(manager, 7, 5, 31);
    NDArray x2 = KernelTesting.randomInputs(manager, 4, 5, 32);
    for (Map.Entry<String, Layer> m : TestModels.all().entrySet()) {
      KernelTesting.assertBackendsAgree(m.getKey(), m.getValue(), x1, x2);
    }
  }

  /**
   * Convolutional ReLU networks with a Flatten readout (per-pixel blocks), x2 absent: cpu and
   * tensorflow agree to 1e-12 of the largest entry on every entry, the diagonal (x1 with itself,
   * where the ReLU angle is exactly 0 only if each backend's pixel map of the tile's diagonal equals
   * that of the variances to the last bit) included. Non-negative inputs with zeros (as images
   * have) make patches of two inputs parallel, where the angle is {@code sqrt(rounding)}: the
   * largest gap measured there was 8.4e-13 off the diagonal (8 x 8 x 1 images, no bias), 0 on it.
   */
  @Test
  void cpuAndTensorFlowAgreeOnConvolutionalReluNetworksToTheLargestEntry() {
    double r2 = Math.sqrt(2);
    int[] f = {3, 3};
    Layer[] models = {
        Stax.serial(Stax.conv(8, f, null, "SAME", r2, 0.05), Stax.relu(), Stax.conv(8, f, null, "SAME", r2, 0.05),
            Stax.relu(), Stax.flatten(), Stax.dense(1, r2, 0.05)),
        Stax.serial(Stax.conv(8, f, "SAME"), Stax.relu(), Stax.conv(8, f, "SAME"), Stax.relu(), Stax.flatten(),
            Stax.dense(1))};
    for (long[] shape : new long[][] {{4, 4, 2}, {5, 5, 3}, {8, 8, 1}}) {
      for (boolean images : new boolean[] {false, true}) {
        NDArray x = KernelTesting.randomImages(manager, 5, shape, 61);
        NDArray x1 = images ? x.maximum(0.0) : x;
        for (Layer model : models) {
          String where = java.util.Arrays.toString(shape) + (images ? " non-negative" : "");
          assertAgreeToTheLargestEntry(model, x1, 5, where);
        }
      }
    }
  }

  /**
   * Stride-1 convolutions on pixel-pair blocks of several chunks (the cpu backend's shifted-copies
   * form, whose input rows reach the padded grid as the chunks need them): an output smaller than
   * the input ({@code VALID}), the same size ({@code SAME}) and larger (a transposed convolution,
   * {@code VALID}), each followed by a ReLU, in float64; cpu and tensorflow agree to 1e-12 of the
   * largest entry.
   */
  @Test
  void cpuAndTensorFlowAgreeOnStrideOneConvolutionsOverSeveralChunks() {
    int[] f = {3, 3};
    int[] one = {1, 1};
    Layer[] models = {
        Stax.serial(Stax.convTranspose(4, f, one, "VALID", 1.3, 0.1), Stax.relu(),
            Stax.conv(4, new int[] {2, 3}, null, "SAME", 1.2, null), Stax.relu(), Stax.globalAvgPool(), Stax.dense(1)),
        Stax.serial(Stax.conv(4, f, null, "VALID", 1.4, 0.05), Stax.relu(), Stax.conv(4, f, null, "SAME", 1.1, 0.0),
            Stax.relu(), Stax.flatten(), Stax.dense(1))};
    for (long[] shape : new long[][] {{12, 11, 1}, {9, 14, 2}}) {
      NDArray x = KernelTesting.randomImages(manager, 3, shape, 67);
      for (Layer model : models) {
        assertAgreeToTheLargestEntry(model, x, 3, java.util.Arrays.toString(shape));
      }
    }
  }

  /** Every kernel of {@code model} on {@code x} (n inputs, with itself), cpu against tensorflow. */
  private static void assertAgreeToTheLargestEntry(Layer model, NDArray x, int n, String where) {
    Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x);
    Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x);
    for (Get g : Get.values()) {
      double[] c = cpu.get(g).toDoubleArray();
      double[] t = tf.get(g).toDoubleArray();
      double scale = 0;
      for (double v : c) {
        scale = Math.max(scale, Math.abs(v));
      }
      for (int i = 0; i < c.length; i++) {
        double gap = Math.abs(c[i] - t[i]) / scale;
        assertTrue(gap < 1e-12, where + " " + g + " entry (" + i / n + ", " + i % n + "): cpu " + c[i]
            + ", tensorflow " + t[i] + ", " + gap + " of the largest");
      }
    }
  }

  /**
   * A depth-21 ReLU network in float32 against float64: the float32 kernels may be no further from
   * the float64 ones than a float32 computation of the same recursion that rounds after every
   * operation, as NumPy's does (written here with float arithmetic and the same formulas).
   */
  @Test
  void float32IsAsAccurateAsAFloat32RecursionWithNumPysRounding() {
    int n = 24;
    int d = 16;
    NDArray x = KernelTesting.randomInputs(manager, n, d, 41);
    Layer model = relu21();
    Kernel exact = model.kernelFn().withBackend(Backend.CPU).apply(x);
    Kernel single = model.kernelFn().withBackend(Backend.CPU).apply(x.toType(DataType.FLOAT32, false));
    float[][] reference = float32Recursion(x.toDoubleArray(), n, d);
    for (Get g : Get.values()) {
      double[] truth = exact.get(g).toDoubleArray();
      double ours = maxRelative(single.get(g).toFloatArray(), truth);
      double numpyLike = maxRelative(reference[g.ordinal()], truth);
      assertTrue(ours <= 2 * numpyLike + 1e-7, g + ": float32 error " + ours
          + " against " + numpyLike + " for a float32 recursion");
    }
  }

  private static Layer relu21() {
    Layer[] layers = new Layer[41];
    for (int l = 0; l < 20; l++) {
      layers[2 * l] = Stax.dense(512, Math.sqrt(2), 0.1);
      layers[2 * l + 1] = Stax.relu();
    }
    layers[40] = Stax.dense(1, Math.sqrt(2), 0.1);
    return Stax.serial(layers);
  }

  /** The same network's recursion in float arithmetic, arccos form (bench/numpy_reference.py). */
  private static float[][] float32Recursion(double[] x, int n, int d) {
    float[] nngp = new float[n * n];
    float[] ntk = new float[n * n];
    float[] var = new float[n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        float s = 0;
        for (int k = 0; k < d; k++) {
          s += (float) x[i * d + k] * (float) x[j * d + k];
        }
        nngp[i * n + j] = s / d;
      }
      var[i] = nngp[i * n + i];
    }
    float w2 = 2f;
    float b2 = 0.01f;
    for (int l = 0; l < 21; l++) {
      for (int e = 0; e < n * n; e++) {
        nngp[e] = w2 * nngp[e] + b2;
        ntk[e] = nngp[e] + w2 * ntk[e];
      }
      for (int i = 0; i < n; i++) {
        var[i] = w2 * var[i] + b2;
      }
      if (l == 20) {
        break;
      }
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
          int e = i * n + j;
          float norm = (float) Math.sqrt(var[i] * var[j]);
          float c = Math.max(-1f, Math.min(1f, nngp[e] / norm));
          float theta = (float) Math.acos(c);
          nngp[e] = norm / (float) (2 * Math.PI) * ((float) Math.sqrt(1 - c * c) + ((float) Math.PI - theta) * c);
          ntk[e] = ntk[e] * ((float) Math.PI - theta) / (float) (2 * Math.PI);
        }
      }
      for (int i = 0; i < n; i++) {
        var[i] = var[i] / 2;
      }
    }
    return new float[][] {nngp, ntk};
  }

  private static double maxRelative(float[] got, double[] truth) {
    double max = 0;
    double scale = 0;
    for (int i = 0; i < truth.length; i++) {
      max = Math.max(max, Math.abs(got[i] - truth[i]));
      scale = Math.max(scale, Math.abs(truth[i]));
    }
    return max / scale;
  }

  @Test
  void nngpAlonePlansNoNtkStep() {
    Layer model = relu21();
    Shape shape = new Shape(16);
    Plan both = Plan.compile(model, shape, EnumSet.allOf(Get.class));
    Plan nngp = Plan.compile(model, shape, EnumSet.of(Get.NNGP));
    assertEquals(java.util.Set.of("nngp"), nngp.schedule().outputs().keySet());
    // NTK-only steps: each of the 20 ReLUs scales the NTK by its derivative factor, and each Dense
    // after the first adds its NNGP to the scaled NTK (the first one's input NTK is zero).
    assertTrue(nngp.schedule().tileSteps().size() <= both.schedule().tileSteps().size() - 2 * 20,
        nngp.schedule() + " against " + both.schedule());
    // On a given input kernel, the NNGP alone does not even read the input NTK.
    Plan rule = Plan.compileOnKernel(Stax.relu(), new Spec(shape, true), EnumSet.of(Get.NNGP));
    assertEquals(java.util.Set.of(Plan.NNGP, Plan.VAR1, Plan.VAR2), rule.schedule().inputs());
    NDArray x = KernelTesting.randomInputs(manager, 6, 16, 51);
    Kernel k = model.kernelFn().apply(x, null, EnumSet.of(Get.NNGP));
    assertNull(k.ntk());
    assertEquals(0, KernelTesting.relativeError(k.nngp().toDoubleArray(),
        model.kernelFn().apply(x).nngp().toDoubleArray()), 1e-15);
  }

  @Test
  void aDeepNetworkNeedsFewChunkBuffers() {
    Plan plan = Plan.compile(relu21(), new Shape(16), EnumSet.allOf(Get.class));
    assertTrue(plan.schedule().registerCount() <= 8, plan.schedule().toString());
    for (Expr e : plan.schedule().tileSteps()) {
      assertEquals(Expr.Domain.TILE, e.domain());
    }
  }
}

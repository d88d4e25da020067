package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Dense in both parameterizations, Flatten and Identity against their affine closed forms. */
class LinearTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  /** x1 x2^T / d computed with plain loops. */
  private static double[] gram(double[] x1, double[] x2, int n1, int n2, int d) {
    double[] g = new double[n1 * n2];
    for (int i = 0; i < n1; i++) {
      for (int j = 0; j < n2; j++) {
        double s = 0;
        for (int c = 0; c < d; c++) {
          s += x1[i * d + c] * x2[j * d + c];
        }
        g[i * n2 + j] = s / d;
      }
    }
    return g;
  }

  @Test
  void inputKernelIsTheNormalizedGramMatrix() {
    NDArray x1 = KernelTesting.randomInputs(manager, 4, 6, 1);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 6, 2);
    Kernel k = KernelFn.inputKernel(x1, x2);
    assertArrayEquals(gram(x1.toDoubleArray(), x2.toDoubleArray(), 4, 3, 6), k.nngp().toDoubleArray(), 1e-14);
    assertArrayEquals(new double[12], k.ntk().toDoubleArray(), 0);
    assertEquals(new Shape(4, 6), k.shape1());
  }

  @Test
  void denseNtkParameterizationIsAnAffineMapOfBothKernels() {
    NDArray x1 = KernelTesting.randomInputs(manager, 4, 6, 1);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 6, 2);
    double[] g = gram(x1.toDoubleArray(), x2.toDoubleArray(), 4, 3, 6);
    double w = 1.7;
    double b = 0.3;
    Kernel one = Stax.dense(10, w, b).kernelFn().apply(x1, x2);
    Kernel two = Stax.serial(Stax.dense(10, w, b), Stax.dense(5, w, null)).kernelFn().apply(x1, x2);
    for (int e = 0; e < g.length; e++) {
      double nngp1 = w * w * g[e] + b * b;
      assertEquals(nngp1, one.nngp().toDoubleArray()[e], 1e-14);
      assertEquals(nngp1, one.ntk().toDoubleArray()[e], 1e-14);
      double nngp2 = w * w * nngp1;
      assertEquals(nngp2, two.nngp().toDoubleArray()[e], 1e-13);
      assertEquals(nngp2 + w * w * nngp1, two.ntk().toDoubleArray()[e], 1e-13);
    }
    assertTrue(one.isGaussian());
    assertEquals(new Shape(3, 5), two.shape2());
  }

  @Test
  void denseStandardParameterizationCountsTheFanIn() {
    NDArray x1 = KernelTesting.randomInputs(manager, 4, 6, 1);
    NDArray x2 = KernelTesting.randomInputs(manager, 3, 6, 2);
    double[] g = gram(x1.toDoubleArray(), x2.toDoubleArray(), 4, 3, 6);
    double w = 1.2;
    double b = 0.4;
    Layer model = Stax.serial(
        Stax.dense(10, w, b, Linear.Parameterization.STANDARD),
        Stax.dense(7, w, null, Linear.Parameterization.STANDARD));
    Kernel k = model.kernelFn().apply(x1, x2);
    for (int e = 0; e < g.length; e++) {
      double nngp1 = w * w * g[e] + b * b;
      double ntk1 = 6 * g[e] + 1;  // d/dW: x.x' = fan_in * g; d/db: 1
      double ntk2 = 10 * nngp1 + w * w * ntk1;
      assertEquals(w * w * nngp1, k.nngp().toDoubleArray()[e], 1e-13);
      assertEquals(ntk2, k.ntk().toDoubleArray()[e], 1e-12);
    }
  }

  @Test
  void flattenAveragesOverPixels() {
    NDArray images = KernelTesting.randomInputs(manager, 3, 12, 5).reshape(3, 2, 2, 3);
    Kernel k = Stax.serial(Stax.flatten(), Stax.dense(4)).kernelFn().apply(images);
    double[] flat = images.toDoubleArray();
    double[] g = gram(flat, flat, 3, 3, 12);
    assertArrayEquals(g, k.nngp().toDoubleArray(), 1e-14);
  }

  /**
   * Dense on images maps each pixel's channels: its NNGP is {@code W_std^2} times the per-pixel
   * input kernel plus {@code b_std^2} at every pixel, so after Flatten {@code W_std^2} times the
   * flattened gram plus {@code b_std^2}; its NTK adds the NNGP (NTK parameterization).
   */
  @Test
  void denseOnImagesActsOnEachPixel() {
    NDArray images = KernelTesting.randomInputs(manager, 3, 12, 5).reshape(3, 2, 2, 3);
    Layer dense = Stax.dense(5, 1.7, 0.3);
    assertEquals(new Shape(2, 2, 5), dense.check(new Shape(2, 2, 3)).shape());
    Kernel k = Stax.serial(dense, Stax.flatten()).kernelFn().apply(images);
    double[] flat = images.toDoubleArray();
    double[] g = gram(flat, flat, 3, 3, 12);
    for (int e = 0; e < g.length; e++) {
      double nngp = 1.7 * 1.7 * g[e] + 0.09;
      assertEquals(nngp, k.nngp().toDoubleArray()[e], 1e-14);
      assertEquals(nngp, k.ntk().toDoubleArray()[e], 1e-14);
    }
  }

  /**
   * Dense on images is a convolution with a one-pixel filter: the same kernels per pixel and over
   * pixel pairs (both parameterizations, x2 given and absent), and the same finite network for
   * the same weights.
   */
  @Test
  void denseOnImagesIsAOnePixelConvolution() {
    NDArray x1 = KernelTesting.randomImages(manager, 3, new long[] {3, 4, 2}, 7);
    NDArray x2 = KernelTesting.randomImages(manager, 2, new long[] {3, 4, 2}, 8);
    int[] one = {1, 1};
    for (Linear.Parameterization p : Linear.Parameterization.values()) {
      Layer dense = Stax.dense(6, 1.4, 0.2, p);
      Layer conv = Stax.conv(6, one, null, "SAME", 1.4, 0.2, p);
      for (Layer readout : new Layer[] {Stax.flatten(), Stax.globalAvgPool()}) {
        for (NDArray other : new NDArray[] {null, x2}) {
          Kernel a = Stax.serial(dense, Stax.relu(), Stax.dense(6, 1.1, null, p), readout).kernelFn().apply(x1, other);
          Kernel b = Stax.serial(conv, Stax.relu(), Stax.conv(6, one, null, "SAME", 1.1, null, p), readout).kernelFn()
              .apply(x1, other);
          for (Get g : Get.values()) {
            assertArrayEquals(b.get(g).toDoubleArray(), a.get(g).toDoubleArray(), 1e-13, p + " " + readout + " " + g);
          }
        }
      }
      Params params = dense.init(3, new Shape(3, 4, 2), manager, x1.getDataType());
      Params convParams = Params.of(params.array(0).reshape(1, 1, 2, 6), params.array(1));
      assertArrayEquals(conv.apply(convParams, x1).toDoubleArray(), dense.apply(params, x1).toDoubleArray(), 1e-14);
    }
  }

  @Test
  void finiteDenseMatchesItsFormula() {
    NDArray x = KernelTesting.randomInputs(manager, 2, 3, 9);
    Layer dense = Stax.dense(4, 2.0, 0.5);
    Params p = dense.init(42, new Shape(3), manager, x.getDataType());
    NDArray expected = x.matMul(p.array(0)).mul(2.0 / Math.sqrt(3)).add(p.array(1).mul(0.5));
    assertArrayEquals(expected.toDoubleArray(), dense.apply(p, x).toDoubleArray(), 1e-14);
    Params again = dense.init(42, new Shape(3), manager, x.getDataType());
    assertArrayEquals(p.array(0).toDoubleArray(), again.array(0).toDoubleArray(), 0);
    assertEquals(List.of(), Stax.identity().children());
  }
}

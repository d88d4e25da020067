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
  void flattenAveragesOverPixelsAndDenseNeedsVectors() {
    NDArray images = KernelTesting.randomInputs(manager, 3, 12, 5).reshape(3, 2, 2, 3);
    Kernel k = Stax.serial(Stax.flatten(), Stax.dense(4)).kernelFn().apply(images);
    double[] flat = images.toDoubleArray();
    double[] g = gram(flat, flat, 3, 3, 12);
    assertArrayEquals(g, k.nngp().toDoubleArray(), 1e-14);
    ModelException e = assertThrows(ModelException.class,
        () -> Stax.serial(Stax.dense(4)).check(new Shape(2, 2, 3)));
    assertEquals("serial[0].Dense", e.path());
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

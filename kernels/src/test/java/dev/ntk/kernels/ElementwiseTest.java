package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Each nonlinearity's rule against textbook closed forms written independently here. */
class ElementwiseTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  /** Cho and Saul's degree-1 arc-cosine kernel, E[relu(u) relu(v)], via acos. */
  private static double arcCos1(double k11, double k22, double k) {
    double s = Math.sqrt(k11 * k22);
    double theta = Math.acos(Math.max(-1, Math.min(1, k / s)));
    return s / (2 * Math.PI) * (Math.sin(theta) + (Math.PI - theta) * Math.cos(theta));
  }

  private static double angle(double k11, double k22, double k) {
    return Math.acos(Math.max(-1, Math.min(1, k / Math.sqrt(k11 * k22))));
  }

  /**
   * f = b relu(x) - a relu(-x): E[f f'] = (a^2 + b^2) J(u, v) - 2ab J(u, -v), and E[f' f'] from
   * the quadrant probabilities (pi - theta) / 2pi and theta / 2pi.
   */
  private static void checkAbRelu(Layer layer, double a, double b) {
    Kernel in = KernelTesting.gaussianKernel(manager, 4, 3, 7);
    Kernel out = layer.kernel(List.of(in)).get(0);
    double[] k = in.nngp().toDoubleArray();
    double[] ntk = in.ntk().toDoubleArray();
    double[] c1 = in.cov1().toDoubleArray();
    double[] c2 = in.cov2().toDoubleArray();
    double[] nngpOut = out.nngp().toDoubleArray();
    double[] ntkOut = out.ntk().toDoubleArray();
    for (int i = 0; i < 4; i++) {
      for (int j = 0; j < 3; j++) {
        int e = i * 3 + j;
        double same = arcCos1(c1[i], c2[j], k[e]);
        double flipped = arcCos1(c1[i], c2[j], -k[e]);
        double expected = (a * a + b * b) * same - 2 * a * b * flipped;
        double theta = angle(c1[i], c2[j], k[e]);
        double dot = ((a * a + b * b) * (Math.PI - theta) + 2 * a * b * theta) / (2 * Math.PI);
        assertEquals(expected, nngpOut[e], 1e-12 * Math.abs(expected) + 1e-14, layer + " nngp");
        assertEquals(ntk[e] * dot, ntkOut[e], 1e-12 * Math.abs(ntk[e] * dot), layer + " ntk");
      }
      assertEquals((a * a + b * b) / 2 * c1[i], out.cov1().toDoubleArray()[i], 1e-12);
    }
    assertFalse(out.isGaussian());
  }

  @Test
  void reluFamilyMatchesArcCosineKernels() {
    checkAbRelu(Stax.relu(), 0, 1);
    checkAbRelu(Stax.leakyRelu(0.1), 0.1, 1);
    checkAbRelu(Stax.abs(), -1, 1);
    checkAbRelu(Stax.abRelu(-0.3, 1.7), -0.3, 1.7);
  }

  @Test
  void erfMatchesArcsineKernel() {
    double a = 1.3;
    double b = 0.7;
    double c = 0.2;
    Kernel in = KernelTesting.gaussianKernel(manager, 4, 3, 11);
    Kernel out = Stax.erf(a, b, c).kernel(List.of(in)).get(0);
    double[] k = in.nngp().toDoubleArray();
    double[] ntk = in.ntk().toDoubleArray();
    double[] c1 = in.cov1().toDoubleArray();
    double[] c2 = in.cov2().toDoubleArray();
    for (int i = 0; i < 4; i++) {
      for (int j = 0; j < 3; j++) {
        int e = i * 3 + j;
        double s1 = 1 + 2 * b * b * c1[i];
        double s2 = 1 + 2 * b * b * c2[j];
        double nngp = a * a * 2 / Math.PI * Math.asin(2 * b * b * k[e] / Math.sqrt(s1 * s2)) + c * c;
        double dot = a * a * b * b * 4 / Math.PI / Math.sqrt(s1 * s2 - 4 * Math.pow(b, 4) * k[e] * k[e]);
        assertEquals(nngp, out.nngp().toDoubleArray()[e], 1e-12 * Math.abs(nngp));
        assertEquals(ntk[e] * dot, out.ntk().toDoubleArray()[e], 1e-12 * Math.abs(ntk[e] * dot));
      }
      double s = 2 * b * b * c1[i];
      double cov = a * a * 2 / Math.PI * Math.asin(s / (1 + s)) + c * c;
      assertEquals(cov, out.cov1().toDoubleArray()[i], 1e-12 * cov);
    }
  }

  @Test
  void reluDiagonalIsExactWhenInputsCoincide() {
    Kernel in = Stax.dense(8, 1.0, 0.1).kernelFn().apply(KernelTesting.randomInputs(manager, 5, 3, 3));
    Kernel out = Stax.relu().kernel(List.of(in)).get(0);
    double[] nngp = out.nngp().toDoubleArray();
    double[] cov = out.cov1().toDoubleArray();
    for (int i = 0; i < 5; i++) {
      assertEquals(cov[i], nngp[i * 5 + i], 1e-12 * cov[i]);
    }
    assertTrue(out.x1IsX2());
  }

  @Test
  void nonlinearityOfNonGaussianInputIsRejectedWithItsPath() {
    Layer model = Stax.serial(Stax.dense(4), Stax.relu(), Stax.erf());
    ModelException e = assertThrows(ModelException.class,
        () -> model.check(new ai.djl.ndarray.types.Shape(3)));
    assertEquals("serial[2].Erf", e.path());
    assertTrue(e.getMessage().contains("not Gaussian"), e.getMessage());
    ModelException raw = assertThrows(ModelException.class,
        () -> Stax.serial(Stax.relu()).check(new ai.djl.ndarray.types.Shape(3)));
    assertEquals("serial[0].Relu", raw.path());
  }
}

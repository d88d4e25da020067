package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Each nonlinearity's rule, run by the {@code cpu} backend, against textbook closed forms written
 * independently here in scalar float64, on inputs that include equal, opposite, nearly equal and
 * zero inputs.
 */
class ElementwiseTest {
  /** Cho and Saul's degree-1 arc-cosine kernel, E[relu(u) relu(v)], via acos. */
  private static double arcCos1(double k11, double k22, double k) {
    double s = Math.sqrt(k11 * k22);
    if (s == 0) {
      return 0;
    }
    double theta = angle(k11, k22, k);
    return s / (2 * Math.PI) * (Math.sin(theta) + (Math.PI - theta) * Math.cos(theta));
  }

  private static double angle(double k11, double k22, double k) {
    double s = Math.sqrt(k11 * k22);
    return s == 0 ? 0 : Math.acos(Math.max(-1, Math.min(1, k / s)));
  }

  /**
   * f = b relu(x) - a relu(-x): E[f f'] = (a^2 + b^2) J(u, v) - 2ab J(u, -v), and E[f' f'] from
   * the quadrant probabilities (pi - theta) / 2pi and theta / 2pi.
   */
  private static void checkAbRelu(Layer layer, double a, double b) {
    RuleTesting.Input in = RuleTesting.hardInput(7);
    Map<String, double[]> out = RuleTesting.run(layer, in);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        int e = i * in.n2() + j;
        double k11 = in.var1()[i];
        double k22 = in.var2()[j];
        double k = in.nngp()[e];
        double expected = (a * a + b * b) * arcCos1(k11, k22, k) - 2 * a * b * arcCos1(k11, k22, -k);
        double theta = angle(k11, k22, k);
        double dot = ((a * a + b * b) * (Math.PI - theta) + 2 * a * b * theta) / (2 * Math.PI);
        String where = layer + " entry (" + i + ", " + j + ")";
        assertEquals(expected, out.get("nngp")[e], 1e-12 * Math.abs(expected) + 1e-15, where + " nngp");
        // acos loses about 1e-8 of the angle next to the diagonal: the reference is looser there.
        double tolerance = Math.abs(k) > 0.999999 * Math.sqrt(k11 * k22) ? 1e-7 : 1e-12;
        assertEquals(in.ntk()[e] * dot, out.get("ntk")[e], tolerance * Math.abs(in.ntk()[e] * dot) + 1e-15,
            where + " ntk");
      }
      assertEquals((a * a + b * b) / 2 * in.var1()[i], out.get("var1")[i], 1e-12 * in.var1()[i]);
    }
    // Equal inputs: exactly the variance, and exactly the diagonal derivative factor.
    assertEquals(out.get("var1")[0], out.get("nngp")[0], 1e-15 * out.get("var1")[0]);
    assertEquals(in.ntk()[0] * (a * a + b * b) / 2, out.get("ntk")[0], 1e-15);
    // Opposite inputs: theta = pi.
    double opposite = (a * a + b * b) * 0 - 2 * a * b * arcCos1(in.var1()[1], in.var2()[1], -in.nngp()[6]);
    assertEquals(opposite, out.get("nngp")[in.n2() + 1], 1e-12 * Math.abs(in.var1()[1]) + 1e-15);
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
    RuleTesting.Input in = RuleTesting.hardInput(11);
    Map<String, double[]> out = RuleTesting.run(Stax.erf(a, b, c), in);
    for (int i = 0; i < in.n1(); i++) {
      for (int j = 0; j < in.n2(); j++) {
        int e = i * in.n2() + j;
        double k = in.nngp()[e];
        double s1 = 1 + 2 * b * b * in.var1()[i];
        double s2 = 1 + 2 * b * b * in.var2()[j];
        double nngp = a * a * 2 / Math.PI * Math.asin(2 * b * b * k / Math.sqrt(s1 * s2)) + c * c;
        double dot = a * a * b * b * 4 / Math.PI / Math.sqrt(s1 * s2 - 4 * Math.pow(b, 4) * k * k);
        assertEquals(nngp, out.get("nngp")[e], 1e-12 * Math.abs(nngp), "nngp " + i + ", " + j);
        assertEquals(in.ntk()[e] * dot, out.get("ntk")[e], 1e-12 * Math.abs(in.ntk()[e] * dot), "ntk " + i + ", " + j);
      }
      double s = 2 * b * b * in.var1()[i];
      double cov = a * a * 2 / Math.PI * Math.asin(s / (1 + s)) + c * c;
      assertEquals(cov, out.get("var1")[i], 1e-12 * cov);
    }
  }

  @Test
  void reluDiagonalIsExactWhenInputsCoincide() {
    try (NDManager manager = Tensors.newManager()) {
      Kernel out = Stax.serial(Stax.dense(8, 1.0, 0.1), Stax.relu())
          .kernelFn().apply(KernelTesting.randomInputs(manager, 5, 3, 3));
      double[] nngp = out.nngp().toDoubleArray();
      double[] cov = out.cov1().toDoubleArray();
      for (int i = 0; i < 5; i++) {
        assertEquals(cov[i], nngp[i * 5 + i], 1e-12 * cov[i]);
      }
      assertTrue(out.x1IsX2());
      assertFalse(out.isGaussian());
    }
  }

  @Test
  void nonlinearityOfNonGaussianInputIsRejectedWithItsPath() {
    Layer model = Stax.serial(Stax.dense(4), Stax.relu(), Stax.erf());
    ModelException e = assertThrows(ModelException.class, () -> model.check(new Shape(3)));
    assertEquals("serial[2].Erf", e.path());
    assertTrue(e.getMessage().contains("not Gaussian"), e.getMessage());
    ModelException raw = assertThrows(ModelException.class,
        () -> Stax.serial(Stax.relu()).check(new Shape(3)));
    assertEquals("serial[0].Relu", raw.path());
  }
}

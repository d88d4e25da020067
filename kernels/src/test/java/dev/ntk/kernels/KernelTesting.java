package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Random;

/** Random inputs and error measures shared by the kernel tests. */
final class KernelTesting {
  private KernelTesting() {}

  static NDArray randomInputs(NDManager m, int n, int d, long seed) {
    Random r = new Random(seed);
    double[] v = new double[n * d];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    return Tensors.create(m, v, new Shape(n, d), DataType.FLOAT64);
  }

  /** Standard normal inputs of shape {@code (n, shape...)}. */
  static NDArray randomImages(NDManager m, int n, long[] shape, long seed) {
    Shape s = new Shape(n).addAll(new Shape(shape));
    Random r = new Random(seed);
    double[] v = new double[Math.toIntExact(s.size())];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    return Tensors.create(m, v, s, DataType.FLOAT64);
  }

  /**
   * The analytic kernel against a Monte Carlo estimate: {@code ||K_mc - K||_F <= 4 ||se||_F +
   * bias ||K||_F}, four standard errors measured from the draws plus a relative finite-width bias
   * ({@code 2 / width}, or 0 where the estimate has none), and the bound itself under {@code
   * tight ||K||_F}, so that agreement means something.
   */
  static void assertMatchesMonteCarlo(String name, double[] analytic, MonteCarlo.Estimate mc, double bias,
      double tight) {
    double norm = norm(analytic);
    double bound = 4 * norm(mc.standardError()) + bias * norm;
    double[] diff = new double[analytic.length];
    for (int i = 0; i < diff.length; i++) {
      diff[i] = mc.mean()[i] - analytic[i];
    }
    double error = norm(diff);
    System.out.printf("%s: relative error %.4f, bound %.4f%n", name, error / norm, bound / norm);
    org.junit.jupiter.api.Assertions.assertTrue(bound < tight * norm,
        name + ": bound " + bound / norm + " is too loose to test");
    org.junit.jupiter.api.Assertions.assertTrue(error <= bound,
        String.format("%s: relative error %.4f exceeds bound %.4f", name, error / norm, bound / norm));
  }

  /** {@code ||a - b||_F / ||b||_F}. */
  static double relativeError(double[] a, double[] b) {
    double num = 0;
    double den = 0;
    for (int i = 0; i < a.length; i++) {
      num += (a[i] - b[i]) * (a[i] - b[i]);
      den += b[i] * b[i];
    }
    return Math.sqrt(num / den);
  }

  static double norm(double[] a) {
    double s = 0;
    for (double v : a) {
      s += v * v;
    }
    return Math.sqrt(s);
  }

  /** The values of {@code a} as doubles, in C order. */
  static double[] flatten(NDArray a) {
    return Tensors.toDoubles(a);
  }
}

package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.Backend;
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
   * How far a Monte Carlo estimate lies from the analytic kernel, {@code error = ||K_mc - K||_F},
   * against {@code bound = 4 ||se||_F + bias ||K||_F}: four standard errors measured from the draws
   * plus a relative finite-width bias ({@code 2 / width}, or 0 where the estimate has none).
   */
  record MonteCarloDistance(double error, double bound, double norm) {
    static MonteCarloDistance of(double[] analytic, MonteCarlo.Estimate mc, double bias) {
      double norm = KernelTesting.norm(analytic);
      double[] diff = new double[analytic.length];
      for (int i = 0; i < diff.length; i++) {
        diff[i] = mc.mean()[i] - analytic[i];
      }
      return new MonteCarloDistance(KernelTesting.norm(diff), 4 * KernelTesting.norm(mc.standardError()) + bias * norm,
          norm);
    }

    void print(String name) {
      System.out.printf("%s: relative error %.4f, bound %.4f%n", name, error / norm, bound / norm);
    }
  }

  /**
   * The analytic kernel against a Monte Carlo estimate: the error within the bound of {@link
   * MonteCarloDistance}, and the bound itself under {@code tight ||K||_F}, so that agreement
   * means something.
   */
  static void assertMatchesMonteCarlo(String name, double[] analytic, MonteCarlo.Estimate mc, double bias,
      double tight) {
    MonteCarloDistance d = MonteCarloDistance.of(analytic, mc, bias);
    d.print(name);
    org.junit.jupiter.api.Assertions.assertTrue(d.bound() < tight * d.norm(),
        name + ": bound " + d.bound() / d.norm() + " is too loose to test");
    org.junit.jupiter.api.Assertions.assertTrue(d.error() <= d.bound(),
        String.format("%s: relative error %.4f exceeds bound %.4f", name, d.error() / d.norm(),
            d.bound() / d.norm()));
  }

  /** {@code analytic} is farther from the estimate than the bound of {@link MonteCarloDistance}: a sharp test. */
  static void assertOutsideMonteCarlo(String name, double[] analytic, MonteCarlo.Estimate mc, double bias) {
    MonteCarloDistance d = MonteCarloDistance.of(analytic, mc, bias);
    d.print(name);
    org.junit.jupiter.api.Assertions.assertTrue(d.error() > d.bound(),
        name + " is within the bound: the test cannot tell the two apart");
  }

  /**
   * The {@code cpu} and {@code tensorflow} backends give {@code model} the same kernels, variances
   * and output spec in float64 (to 1e-12), for {@code x1} with itself and with {@code x2}.
   */
  static void assertBackendsAgree(String name, Layer model, NDArray x1, NDArray x2) {
    for (NDArray other : new NDArray[] {null, x2}) {
      Kernel cpu = model.kernelFn().withBackend(Backend.CPU).apply(x1, other);
      Kernel tf = model.kernelFn().withBackend(Backend.TENSORFLOW).apply(x1, other);
      for (Get g : Get.values()) {
        double err = relativeError(cpu.get(g).toDoubleArray(), tf.get(g).toDoubleArray());
        org.junit.jupiter.api.Assertions.assertTrue(err < 1e-12,
            name + " " + g + ": cpu and tensorflow differ by " + err);
      }
      double cov1 = relativeError(cpu.cov1().toDoubleArray(), tf.cov1().toDoubleArray());
      double cov2 = relativeError(cpu.cov2().toDoubleArray(), tf.cov2().toDoubleArray());
      org.junit.jupiter.api.Assertions.assertTrue(cov1 < 1e-12 && cov2 < 1e-12,
          name + ": variances differ by " + cov1 + ", " + cov2);
      org.junit.jupiter.api.Assertions.assertEquals(cpu.spec(), tf.spec(), name);
    }
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

package dev.ntk.kernels;

import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.engine.CpuBackend;
import java.util.EnumSet;
import java.util.Map;
import java.util.Random;

/**
 * Runs one layer's rule on a given input kernel through the {@code cpu} backend, and builds input
 * kernels with the entries where rules are hardest: equal inputs (angle 0), opposite inputs
 * (angle pi), nearly equal inputs and zero inputs (zero variance).
 */
final class RuleTesting {
  private RuleTesting() {}

  /** An input kernel: {@code nngp}, {@code ntk} ({@code n1 x n2}), {@code var1}, {@code var2}. */
  record Input(double[] nngp, double[] ntk, double[] var1, double[] var2, int n1, int n2) {}

  /**
   * The kernel of the rows {@code x1 = [r0, r1, r2, r3, 0]} and {@code x2 = [r0, -r1, r0 + 1e-7 e,
   * 0, r4]} (dimension {@code d}), with an NTK made of positive random values.
   */
  static Input hardInput(long seed) {
    Random r = new Random(seed);
    int d = 6;
    double[][] rows = new double[5][d];
    for (double[] row : rows) {
      for (int k = 0; k < d; k++) {
        row[k] = r.nextGaussian();
      }
    }
    double[] zero = new double[d];
    double[] near = rows[0].clone();
    near[0] += 1e-7;
    double[][] x1 = {rows[0], rows[1], rows[2], rows[3], zero};
    double[][] x2 = {rows[0], negate(rows[1]), near, zero, rows[4]};
    int n1 = x1.length;
    int n2 = x2.length;
    double[] nngp = new double[n1 * n2];
    double[] ntk = new double[n1 * n2];
    for (int i = 0; i < n1; i++) {
      for (int j = 0; j < n2; j++) {
        nngp[i * n2 + j] = dot(x1[i], x2[j]) / d;
        ntk[i * n2 + j] = 0.5 + r.nextDouble();
      }
    }
    double[] var1 = new double[n1];
    double[] var2 = new double[n2];
    for (int i = 0; i < n1; i++) {
      var1[i] = dot(x1[i], x1[i]) / d;
    }
    for (int j = 0; j < n2; j++) {
      var2[j] = dot(x2[j], x2[j]) / d;
    }
    return new Input(nngp, ntk, var1, var2, n1, n2);
  }

  private static double[] negate(double[] x) {
    double[] y = new double[x.length];
    for (int k = 0; k < x.length; k++) {
      y[k] = -x[k];
    }
    return y;
  }

  private static double dot(double[] a, double[] b) {
    double s = 0;
    for (int k = 0; k < a.length; k++) {
      s += a[k] * b[k];
    }
    return s;
  }

  /** The rule of {@code layer} (whose input is Gaussian, of width 6) on {@code in}, in float64. */
  static Map<String, double[]> run(Layer layer, Input in) {
    Plan plan = Plan.compileOnKernel(layer, new Spec(new Shape(6), true), EnumSet.allOf(Get.class));
    return CpuBackend.float64().run(plan.schedule(),
        Map.of(Plan.NNGP, in.nngp(), Plan.NTK, in.ntk(), Plan.VAR1, in.var1(), Plan.VAR2, in.var2()),
        in.n1(), in.n2(), 1);
  }
}

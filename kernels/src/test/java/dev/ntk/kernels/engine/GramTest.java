package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Gram#of} against the sums {@code x1 x2^T / d} written out, for either dtype. */
class GramTest {
  /**
   * x1 with x2 (every entry), and x1 with itself (the upper triangle, in one block under 512 rows
   * and in eight row blocks from 512 on), in float64 and float32.
   */
  @Test
  void gramIsTheScaledProductOfTheInputs() {
    Random r = new Random(7);
    int d = 5;
    for (int[] n : new int[][] {{7, 11}, {600, 3}}) {
      int n1 = n[0];
      int n2 = n[1];
      double[] x1 = new double[n1 * d];
      double[] x2 = new double[n2 * d];
      for (int i = 0; i < x1.length; i++) {
        x1[i] = r.nextGaussian();
      }
      for (int i = 0; i < x2.length; i++) {
        x2[i] = r.nextGaussian();
      }
      for (boolean f64 : new boolean[] {true, false}) {
        double tolerance = f64 ? 1e-13 : 1e-5;
        for (boolean same : new boolean[] {false, true}) {
          int cols = same ? n1 : n2;
          double[] b = same ? x1 : x2;
          try (NativeBuffer g = Gram.of(f64 ? x1 : floats(x1), same ? null : f64 ? x2 : floats(x2), n1, cols, d, 2)) {
            for (int i = 0; i < n1; i++) {
              for (int j = same ? i : 0; j < cols; j++) {
                double s = 0;
                for (int k = 0; k < d; k++) {
                  s += (f64 ? x1[i * d + k] : (float) x1[i * d + k]) * (f64 ? b[j * d + k] : (float) b[j * d + k]);
                }
                assertEquals(s / d, g.get((long) i * cols + j), tolerance,
                    n1 + "x" + cols + (f64 ? " f64" : " f32") + (same ? " same" : "") + " [" + i + ", " + j + "]");
              }
            }
          }
        }
      }
    }
  }

  private static float[] floats(double[] x) {
    float[] f = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      f[i] = (float) x[i];
    }
    return f;
  }
}

package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

/**
 * {@link VectorMath#tanh(FloatVector)}, the float32 rational, against {@link StrictMath#tanh}: every
 * 1009th float of {@code [1e-30, 12]} and of its negatives (through the clamp at 9, where tanh rounds to
 * 1, and the tails beyond), within {@link VectorMath#TANH_ULPS} ulps of the correctly rounded value;
 * odd exactly; never above 1 in magnitude; and the special values.
 */
class VectorMathTest {
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

  private static float[] tanh(float[] x) {
    int n = F.loopBound(x.length + F.length() - 1);
    float[] in = java.util.Arrays.copyOf(x, n);
    float[] out = new float[n];
    for (int k = 0; k < n; k += F.length()) {
      VectorMath.tanh(FloatVector.fromArray(F, in, k)).intoArray(out, k);
    }
    return java.util.Arrays.copyOf(out, x.length);
  }

  @Test
  void float32TanhIsWithinItsUlpsOfStrictMathAndOdd() {
    int from = Float.floatToIntBits(1e-30f);
    int to = Float.floatToIntBits(12f);
    int count = (to - from) / 1009 + 1;
    float[] x = new float[2 * count];
    for (int i = 0; i < count; i++) {
      x[i] = Float.intBitsToFloat(from + 1009 * i);
      x[count + i] = -x[i];
    }
    float[] y = tanh(x);
    double worst = 0;
    float at = 0;
    for (int i = 0; i < x.length; i++) {
      float want = (float) StrictMath.tanh(x[i]);
      double ulps = Math.abs(y[i] - want) / Math.ulp(want);
      if (ulps > worst) {
        worst = ulps;
        at = x[i];
      }
      assertTrue(Math.abs(y[i]) <= 1, "|tanh " + x[i] + "| = " + y[i]);
    }
    for (int i = 0; i < count; i++) {
      assertEquals(-y[i], y[count + i], 0f, "odd at " + x[i]);
    }
    System.out.printf("float32 tanh: worst %.2f ulps at %s (%d points)%n", worst, at, x.length);
    assertTrue(worst <= VectorMath.TANH_ULPS, "float32 tanh: " + worst + " ulps at " + at);
  }

  @Test
  void float32TanhAtSpecialValues() {
    float[] x = {0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, 1e-40f, 1e-20f, -1e-8f, 9f, -9f, Math.nextDown(9f),
        Math.nextUp(9f), 9.5f, 20f, -88f, 1e30f, Float.MAX_VALUE, -Float.MAX_VALUE, Float.POSITIVE_INFINITY,
        Float.NEGATIVE_INFINITY, Float.NaN};
    float[] y = tanh(x);
    assertEquals(Float.floatToRawIntBits(0f), Float.floatToRawIntBits(y[0]));
    assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(y[1]));
    // tanh x = x in float32 below 2^-12: subnormals and tiny values come back unchanged.
    for (int i = 2; i <= 6; i++) {
      assertEquals(x[i], y[i], 0f, "tanh " + x[i]);
    }
    for (int i = 7; i <= 16; i++) {
      float want = (float) StrictMath.tanh(x[i]);
      assertTrue(Math.abs(y[i] - want) <= VectorMath.TANH_ULPS * Math.ulp(want), "tanh " + x[i] + " = " + y[i]);
    }
    // Beyond the clamp at 9 (tanh 9 = 1 - 3.05e-8) the value at 9, within TANH_ULPS of +-1.
    for (int i = 10; i <= 18; i++) {
      assertEquals(Math.signum(x[i]), y[i], VectorMath.TANH_ULPS * Math.ulp(0.9f), "tanh " + x[i] + " beyond 9");
      assertEquals(y[7] * Math.signum(x[i]), y[i], 0f, "tanh " + x[i] + " beyond the clamp");
    }
    assertTrue(Float.isNaN(y[19]));
  }
}

package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.MathContext;
import jdk.incubator.vector.DoubleVector;
import org.junit.jupiter.api.Test;

/**
 * {@link SpecialFunctions#erf} and its vector lanes against a 90-digit reference: the Maclaurin
 * series summed in {@code BigDecimal} until its terms are below 1e-60 of the sum (all of
 * {@code [0, 6]} converges; beyond, erf rounds to 1 in float64).
 */
class SpecialFunctionsTest {
  private static final MathContext MC = new MathContext(90);
  private static final BigDecimal SQRT_PI = new BigDecimal("3.14159265358979323846264338327950288419716939937510"
      + "582097494459230781640628620899862803482534211706798").sqrt(MC);

  static double reference(double x) {
    BigDecimal bx = new BigDecimal(x);
    BigDecimal x2 = bx.multiply(bx, MC);
    BigDecimal term = bx;
    BigDecimal sum = bx;
    for (int n = 1; n < 5000; n++) {
      term = term.multiply(x2, MC).divide(BigDecimal.valueOf(-n), MC);
      BigDecimal c = term.divide(BigDecimal.valueOf(2L * n + 1), MC);
      sum = sum.add(c, MC);
      if (c.abs().compareTo(sum.abs().scaleByPowerOfTen(-60)) < 0) {
        break;
      }
    }
    return sum.multiply(BigDecimal.valueOf(2), MC).divide(SQRT_PI, MC).doubleValue();
  }

  private static double[] points() {
    java.util.Random r = new java.util.Random(11);
    double[] x = new double[3200];
    for (int i = 0; i < 2000; i++) {
      x[i] = 6.0 * (i + 1) / 2000; // a grid of (0, 6], through the joins at 1 and 2
    }
    for (int i = 2000; i < 3000; i++) {
      x[i] = 6 * r.nextDouble();
    }
    for (int i = 3000; i < 3200; i++) {
      x[i] = Math.pow(10, -300 + 300 * r.nextDouble()); // tiny to 1
    }
    return x;
  }

  @Test
  void erfIsWithinFourUlpsOfA90DigitReference() {
    double worst = 0;
    double vectorWorst = 0;
    double[] x = points();
    double[] lanes = new double[x.length];
    int step = DoubleVector.SPECIES_PREFERRED.length();
    for (int i = 0; i + step <= x.length; i += step) {
      VectorMath.erf(DoubleVector.fromArray(DoubleVector.SPECIES_PREFERRED, x, i)).intoArray(lanes, i);
    }
    for (int i = 0; i < x.length; i++) {
      double want = reference(x[i]);
      double ulps = Math.abs(SpecialFunctions.erf(x[i]) - want) / Math.ulp(want);
      worst = Math.max(worst, ulps);
      vectorWorst = Math.max(vectorWorst, Math.abs(lanes[i] - want) / Math.ulp(want));
      assertEquals(-SpecialFunctions.erf(x[i]), SpecialFunctions.erf(-x[i]), 0.0, "odd at " + x[i]);
    }
    System.out.printf("erf: worst %.0f ulps scalar, %.0f ulps vector lanes%n", worst, vectorWorst);
    assertTrue(worst <= 4, "scalar erf: " + worst + " ulps");
    assertTrue(vectorWorst <= 5, "vector erf: " + vectorWorst + " ulps");
  }

  @Test
  void erfAtSpecialValues() {
    assertEquals(0.0, SpecialFunctions.erf(0.0));
    assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(SpecialFunctions.erf(-0.0)));
    assertEquals(1.0, SpecialFunctions.erf(Double.POSITIVE_INFINITY));
    assertEquals(-1.0, SpecialFunctions.erf(Double.NEGATIVE_INFINITY));
    assertTrue(Double.isNaN(SpecialFunctions.erf(Double.NaN)));
    assertEquals(1.0, SpecialFunctions.erf(6.0));
    assertEquals(1.0, SpecialFunctions.erf(1e300));
    // erf(x) = 2x/sqrt(pi) for tiny x, subnormals included.
    assertEquals(2 / Math.sqrt(Math.PI) * 1e-300, SpecialFunctions.erf(1e-300), Math.ulp(1.2e-300));
    assertEquals(Double.MIN_VALUE, SpecialFunctions.erf(Double.MIN_VALUE));
    // Just below 6, erfc is 2e-17: erf is 1 - ulp/2 rounded, 1 or its predecessor.
    assertTrue(SpecialFunctions.erf(5.9) >= Math.nextDown(1.0));
  }
}

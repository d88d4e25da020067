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

  /**
   * {@code erfc x = 1 - erf x} from the same Maclaurin series, at a precision that grows with
   * {@code x^2} so that the cancellation (terms near {@code e^(x^2)} summing to {@code erf x}, then
   * {@code 1 - erf x} near {@code e^(-x^2)}: about {@code 2 x^2 / ln 10} digits) leaves 40: independent
   * of the implementation's Taylor tables and continued fraction.
   */
  static double erfcReference(double x) {
    MathContext mc = new MathContext(40 + (int) (2 * x * x / Math.log(10)));
    BigDecimal pi = arctanOfInverse(5, mc).multiply(BigDecimal.valueOf(16), mc)
        .subtract(arctanOfInverse(239, mc).multiply(BigDecimal.valueOf(4), mc), mc); // Machin
    BigDecimal bx = new BigDecimal(x);
    BigDecimal x2 = bx.multiply(bx, mc);
    BigDecimal term = bx;
    BigDecimal sum = bx;
    for (int n = 1; n < 20000; n++) {
      term = term.multiply(x2, mc).divide(BigDecimal.valueOf(-n), mc);
      BigDecimal c = term.divide(BigDecimal.valueOf(2L * n + 1), mc);
      sum = sum.add(c, mc);
      if (n > x * x && c.abs().compareTo(BigDecimal.ONE.scaleByPowerOfTen(-mc.getPrecision())) < 0) {
        break;
      }
    }
    BigDecimal erf = sum.multiply(BigDecimal.valueOf(2), mc).divide(pi.sqrt(mc), mc);
    return BigDecimal.ONE.subtract(erf, mc).doubleValue();
  }

  /** {@code atan(1/m)} by its series, to {@code mc}'s precision (pi must carry as many digits as the sum). */
  private static BigDecimal arctanOfInverse(int m, MathContext mc) {
    BigDecimal power = BigDecimal.ONE.divide(BigDecimal.valueOf(m), mc);
    BigDecimal m2 = BigDecimal.valueOf((long) m * m);
    BigDecimal sum = power;
    BigDecimal eps = BigDecimal.ONE.scaleByPowerOfTen(-mc.getPrecision() - 5);
    for (int k = 1; power.compareTo(eps) > 0; k++) {
      power = power.divide(m2, mc);
      BigDecimal t = power.divide(BigDecimal.valueOf(2L * k + 1), mc);
      sum = k % 2 == 1 ? sum.subtract(t, mc) : sum.add(t, mc);
    }
    return sum;
  }

  @Test
  void erfcIsWithinAFewUlpsOfItselfIntoTheFarTail() {
    java.util.Random r = new java.util.Random(13);
    int n = 704; // whole vectors of every preferred width
    double[] x = new double[n];
    for (int i = 0; i < n; i++) {
      // A grid of [-1, 27] through every join (1/2, the Taylor intervals, 3, the e^-600 shift at
      // 24.5, underflow at 27.3), then random points.
      x[i] = i < 500 ? -1 + 28.0 * i / 500 : 27.5 * r.nextDouble();
    }
    double[] lanes = new double[n];
    int step = DoubleVector.SPECIES_PREFERRED.length();
    for (int i = 0; i + step <= n; i += step) {
      VectorMath.erfc(DoubleVector.fromArray(DoubleVector.SPECIES_PREFERRED, x, i)).intoArray(lanes, i);
    }
    double worst = 0;
    double vectorWorst = 0;
    for (int i = 0; i < n; i++) {
      double want = erfcReference(x[i]);
      // Relative to the value itself: ulps of want (subnormal results: ulps of the smallest normal).
      double unit = Math.max(Math.ulp(want), Math.ulp(Double.MIN_NORMAL));
      double ulps = Math.abs(SpecialFunctions.erfc(x[i]) - want) / unit;
      double vectorUlps = Math.abs(lanes[i] - want) / unit;
      assertTrue(ulps <= 4, "erfc(" + x[i] + ") = " + SpecialFunctions.erfc(x[i]) + " vs " + want);
      assertTrue(vectorUlps <= 4, "vector erfc(" + x[i] + ") = " + lanes[i] + " vs " + want);
      worst = Math.max(worst, ulps);
      vectorWorst = Math.max(vectorWorst, vectorUlps);
    }
    System.out.printf("erfc: worst %.1f ulps scalar, %.1f ulps vector lanes%n", worst, vectorWorst);
  }

  @Test
  void erfcAtSpecialValues() {
    assertEquals(1.0, SpecialFunctions.erfc(0.0));
    assertEquals(1.0, SpecialFunctions.erfc(-0.0));
    assertEquals(1.0, SpecialFunctions.erfc(Double.MIN_VALUE));
    assertEquals(0.0, SpecialFunctions.erfc(Double.POSITIVE_INFINITY));
    assertEquals(2.0, SpecialFunctions.erfc(Double.NEGATIVE_INFINITY));
    assertEquals(2.0, SpecialFunctions.erfc(-1e300));
    assertEquals(0.0, SpecialFunctions.erfc(1e300));
    assertTrue(Double.isNaN(SpecialFunctions.erfc(Double.NaN)));
    // The far tail is relative: erfc 10 = 2.088487583762545e-45, erfc 26 = 5.663192408856143e-296.
    assertEquals(2.088487583762545e-45, SpecialFunctions.erfc(10), 3 * Math.ulp(2.088487583762545e-45));
    assertEquals(5.663192408856143e-296, SpecialFunctions.erfc(26), 3 * Math.ulp(5.663192408856143e-296));
    assertTrue(SpecialFunctions.erfc(27.2) > 0);
  }
}

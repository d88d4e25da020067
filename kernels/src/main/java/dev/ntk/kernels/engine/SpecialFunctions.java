package dev.ntk.kernels.engine;

import java.math.BigDecimal;
import java.math.MathContext;

/**
 * Scalar special functions that {@link Math} lacks: {@link #erf}, the scalar meaning of {@link
 * Expr.Op#ERF} and the reference of its vector lanes ({@code VectorMath.erf}, the same algorithm).
 *
 * <p>{@code erf} is written from its textbook expansions, in three ranges of {@code |x|}:
 * <ul>
 *   <li>{@code |x| < 1}: the Maclaurin series {@code erf x = 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n!
 *       (2n+1))}, 18 terms in Horner form in {@code x^2};
 *   <li>{@code 1 <= |x| < 2}: {@code erf x = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) / (2n+1)!!}
 *       (terms of one sign, so no cancellation), 31 terms in Horner form;
 *   <li>{@code 2 <= |x| < 6}: {@code erf x = 1 - erfc x} with Laplace's continued fraction {@code
 *       erfc x = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))}, 60 levels,
 *       evaluated from the bottom;
 *   <li>{@code |x| >= 6}: {@code +-1} ({@code erfc 6 = 2e-17} is below half an ulp of 1).
 * </ul>
 * {@code e^(-x^2)} is {@code e^(-h) (1 - l)} with {@code x^2 = h + l} split exactly by a fused
 * multiply-add, so the rounding of {@code x^2} does not reach the result. The coefficients are
 * computed once in 90-digit decimal arithmetic and rounded once. Measured against a 90-digit
 * series at 3000 points of {@code [0, 6]} (the sizes above were chosen by that measurement): at
 * most 4 ulps ({@code 9e-16} relative), 1 ulp below 1 and above 2 ({@code SpecialFunctionsTest}).
 */
public final class SpecialFunctions {
  private SpecialFunctions() {}

  /** Terms of the Maclaurin series (degree in {@code x^2}) and of the {@code e^(-x^2)} series. */
  static final int SERIES = 17;
  static final int SCALED = 30;
  /** Levels of the continued fraction. */
  static final int FRACTION = 60;
  static final double SMALL = 1;
  static final double MIDDLE = 2;
  static final double ONE = 6;
  /** {@code 1 / sqrt(pi)}. */
  static final double INV_SQRT_PI = 0.5641895835477563;
  /** {@code MACLAURIN[n] = 2/sqrt(pi) (-1)^n / (n! (2n+1))}. */
  static final double[] MACLAURIN = new double[SERIES + 1];
  /** {@code SCALED_SERIES[n] = 2/sqrt(pi) 2^n / (2n+1)!!}. */
  static final double[] SCALED_SERIES = new double[SCALED + 1];

  /** Where {@code erfc} switches from {@code 1 - erf} to its Taylor tables, and from those to the fraction. */
  static final double ERFC_TAYLOR = 0.5;
  static final double ERFC_FRACTION = 3;
  /** Taylor intervals per unit of {@code x}, and the degree of each expansion. */
  static final int ERFC_PER_UNIT = 8;
  static final int ERFC_DEGREE = 18;
  /** Beyond this {@code erfc} underflows to 0 ({@code erfc 27.3 = 4.6e-326}). */
  static final double ERFC_ZERO = 27.3;
  /**
   * {@code ERFC_TABLE[n * intervals + k]}: the n-th Taylor coefficient of {@code erfc} at the centre
   * {@code ERFC_TAYLOR + (k + 1/2) / ERFC_PER_UNIT} of interval {@code k}, laid out by degree so that
   * vector lanes gather one degree at a time.
   */
  static final int ERFC_INTERVALS = (int) ((ERFC_FRACTION - ERFC_TAYLOR) * ERFC_PER_UNIT);
  static final double[] ERFC_TABLE = new double[(ERFC_DEGREE + 1) * ERFC_INTERVALS];

  static {
    MathContext mc = new MathContext(90);
    BigDecimal pi = new BigDecimal("3.14159265358979323846264338327950288419716939937510"
        + "582097494459230781640628620899862803482534211706798");
    BigDecimal k = BigDecimal.valueOf(2).divide(pi.sqrt(mc), mc);
    BigDecimal factorial = BigDecimal.ONE;
    BigDecimal doubleFactorial = BigDecimal.ONE;
    for (int n = 0; n <= Math.max(SERIES, SCALED); n++) {
      if (n > 0) {
        factorial = factorial.multiply(BigDecimal.valueOf(n));
        doubleFactorial = doubleFactorial.multiply(BigDecimal.valueOf(2L * n + 1));
      }
      if (n <= SERIES) {
        BigDecimal c = k.divide(factorial.multiply(BigDecimal.valueOf(2L * n + 1)), mc);
        MACLAURIN[n] = (n % 2 == 0 ? c : c.negate()).doubleValue();
      }
      if (n <= SCALED) {
        SCALED_SERIES[n] = k.multiply(BigDecimal.valueOf(2).pow(n)).divide(doubleFactorial, mc).doubleValue();
      }
    }
    for (int i = 0; i < ERFC_INTERVALS; i++) {
      BigDecimal c = BigDecimal.valueOf(ERFC_TAYLOR + (i + 0.5) / ERFC_PER_UNIT);
      double[] a = erfcTaylor(c, k, mc);
      for (int n = 0; n <= ERFC_DEGREE; n++) {
        ERFC_TABLE[n * ERFC_INTERVALS + i] = a[n];
      }
    }
  }

  /**
   * The Taylor coefficients of {@code erfc} at {@code c}: {@code erfc c = 1 - erf c} (erf by its
   * Maclaurin series, in {@code mc}'s 90 digits), then {@code erfc^(n)(c) / n! = -k (-1)^(n-1)
   * H_(n-1)(c) e^(-c^2) / n!}, {@code k = 2/sqrt(pi)}, with the physicists' Hermite polynomials by
   * their recurrence {@code H_(n+1) = 2c H_n - 2n H_(n-1)}.
   */
  private static double[] erfcTaylor(BigDecimal c, BigDecimal k, MathContext mc) {
    BigDecimal c2 = c.multiply(c, mc);
    BigDecimal term = c;
    BigDecimal erf = c;
    for (int n = 1; n < 400; n++) {
      term = term.multiply(c2, mc).divide(BigDecimal.valueOf(-n), mc);
      erf = erf.add(term.divide(BigDecimal.valueOf(2L * n + 1), mc), mc);
    }
    BigDecimal e = BigDecimal.ONE;
    BigDecimal t = BigDecimal.ONE;
    for (int n = 1; n < 400; n++) {
      t = t.multiply(c2, mc).divide(BigDecimal.valueOf(-n), mc);
      e = e.add(t, mc);
    }
    double[] a = new double[ERFC_DEGREE + 1];
    a[0] = BigDecimal.ONE.subtract(erf.multiply(k, mc), mc).doubleValue();
    BigDecimal previous = BigDecimal.ZERO;
    BigDecimal hermite = BigDecimal.ONE; // H_(n-1)
    BigDecimal factorial = BigDecimal.ONE;
    BigDecimal twoC = c.multiply(BigDecimal.valueOf(2), mc);
    for (int n = 1; n <= ERFC_DEGREE; n++) {
      factorial = factorial.multiply(BigDecimal.valueOf(n), mc);
      BigDecimal d = k.multiply(hermite, mc).multiply(e, mc).divide(factorial, mc);
      a[n] = (n % 2 == 1 ? d.negate() : d).doubleValue();
      BigDecimal next = twoC.multiply(hermite, mc).subtract(previous.multiply(BigDecimal.valueOf(2L * (n - 1)), mc), mc);
      previous = hermite;
      hermite = next;
    }
    return a;
  }

  /**
   * The complementary error function {@code 1 - erf x}, accurate relative to its own value in the
   * far tail: {@code 1 - erf x} below {@code x = 1/2} (where {@code erfc >= 0.48}, so the
   * subtraction loses at most a bit), Taylor expansions of degree 18 about the centres of intervals
   * of width 1/8 on {@code [1/2, 3)} (coefficients from the Hermite polynomials, in 90 digits), and
   * Laplace's continued fraction (as in {@link #erf}) from 3 until it underflows at 27.3.
   */
  public static double erfc(double x) {
    if (!(x >= ERFC_TAYLOR)) {
      return 1 - erf(x); // also NaN
    }
    if (x < ERFC_FRACTION) {
      int i = (int) ((x - ERFC_TAYLOR) * ERFC_PER_UNIT);
      double h = x - (ERFC_TAYLOR + (i + 0.5) / ERFC_PER_UNIT);
      double p = ERFC_TABLE[ERFC_DEGREE * ERFC_INTERVALS + i];
      for (int n = ERFC_DEGREE - 1; n >= 0; n--) {
        p = Math.fma(p, h, ERFC_TABLE[n * ERFC_INTERVALS + i]);
      }
      return p;
    }
    if (!(x < ERFC_ZERO)) {
      return 0;
    }
    double h = x * x;
    double l = Math.fma(x, x, -h);
    double t = x;
    for (int k = FRACTION; k >= 1; k--) {
      t = x + 0.5 * k / t;
    }
    // Past x^2 = 600 e^(-x^2) is subnormal: take e^(-600) out (h - 600 is exact), so that only the
    // last product rounds to a subnormal.
    boolean far = h > ERFC_SHIFT;
    double e = Math.exp(far ? ERFC_SHIFT - h : -h) * (1 - l) * INV_SQRT_PI / t;
    return far ? e * EXP_MINUS_SHIFT : e;
  }

  static final double ERFC_SHIFT = 600;
  /** {@code e^(-600)}, correctly rounded. */
  static final double EXP_MINUS_SHIFT = StrictMath.exp(-ERFC_SHIFT);

  /** The error function, to a few ulps (see the class comment); odd, {@code erf(NaN) = NaN}. */
  public static double erf(double x) {
    double ax = Math.abs(x);
    if (ax < SMALL) {
      double x2 = x * x;
      double p = MACLAURIN[SERIES];
      for (int n = SERIES - 1; n >= 0; n--) {
        p = Math.fma(p, x2, MACLAURIN[n]);
      }
      return x * p;
    }
    if (!(ax < ONE)) {
      return Double.isNaN(x) ? x : Math.copySign(1.0, x);
    }
    double h = ax * ax;
    double l = Math.fma(ax, ax, -h);
    double e = Math.exp(-h) * (1 - l);
    double r;
    if (ax < MIDDLE) {
      double p = SCALED_SERIES[SCALED];
      for (int n = SCALED - 1; n >= 0; n--) {
        p = Math.fma(p, h, SCALED_SERIES[n]);
      }
      r = ax * p * e;
    } else {
      double t = ax;
      for (int k = FRACTION; k >= 1; k--) {
        t = ax + 0.5 * k / t;
      }
      r = 1 - e * INV_SQRT_PI / t;
    }
    return Math.copySign(r, x);
  }
}

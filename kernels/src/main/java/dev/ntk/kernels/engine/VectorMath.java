package dev.ntk.kernels.engine;

import static dev.ntk.kernels.engine.SpecialFunctions.FRACTION;
import static dev.ntk.kernels.engine.SpecialFunctions.INV_SQRT_PI;
import static dev.ntk.kernels.engine.SpecialFunctions.MACLAURIN;
import static dev.ntk.kernels.engine.SpecialFunctions.MIDDLE;
import static dev.ntk.kernels.engine.SpecialFunctions.ONE;
import static dev.ntk.kernels.engine.SpecialFunctions.SCALED;
import static dev.ntk.kernels.engine.SpecialFunctions.SCALED_SERIES;
import static dev.ntk.kernels.engine.SpecialFunctions.SERIES;
import static dev.ntk.kernels.engine.SpecialFunctions.SMALL;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * Vector lanes of the operations the Vector API lacks, called by {@link VectorOps} and by the
 * generated loops of {@link Fused} (so public). Each is the algorithm of its scalar meaning in
 * {@link SpecialFunctions}, lane by lane, with {@code VectorOperators.EXP} (1 ulp) for {@link
 * Math#exp}; a range of {@code |x|} that no lane is in is skipped.
 */
public final class VectorMath {
  private VectorMath() {}

  /** A function of vector lanes, float64 and float32: the vector lowering of an operation. */
  public interface Function {
    DoubleVector apply(DoubleVector x);

    FloatVector apply(FloatVector x);
  }

  /** {@link #erf} as a {@link Function}. */
  public static final Function ERF = new Function() {
    @Override
    public DoubleVector apply(DoubleVector x) {
      return erf(x);
    }

    @Override
    public FloatVector apply(FloatVector x) {
      return erf(x);
    }
  };

  /** {@link #erfc} as a {@link Function}. */
  public static final Function ERFC = new Function() {
    @Override
    public DoubleVector apply(DoubleVector x) {
      return erfc(x);
    }

    @Override
    public FloatVector apply(FloatVector x) {
      return erfc(x);
    }
  };

  /** {@link #tanh} as a {@link Function}: float64 lanes by the JDK's {@code tanh}, float32 by a rational. */
  public static final Function TANH = new Function() {
    @Override
    public DoubleVector apply(DoubleVector x) {
      return tanh(x);
    }

    @Override
    public FloatVector apply(FloatVector x) {
      return tanh(x);
    }
  };

  /** {@link #sign} as a {@link Function}. */
  public static final Function SIGN = new Function() {
    @Override
    public DoubleVector apply(DoubleVector x) {
      return sign(x);
    }

    @Override
    public FloatVector apply(FloatVector x) {
      return sign(x);
    }
  };

  /** {@code tanh} of each float64 lane: {@code VectorOperators.TANH} (the JDK's, SVML where it has it). */
  public static DoubleVector tanh(DoubleVector x) {
    return x.lanewise(VectorOperators.TANH);
  }

  /**
   * {@code tanh} of each float32 lane: {@code x P(x^2) / Q(x^2)} (degrees 13 and 6 in {@code x}) on
   * {@code |x| <= 9}, {@code x} clamped to {@code +-9} beyond (where tanh rounds to
   * within an ulp of {@code +-1}) and the result to {@code [-1, 1]}: 22 vector operations inlined
   * where {@code VectorOperators.TANH} is a call into SVML. In the loop over a quadrature's points
   * ({@code ElementwiseNumerical} tanh, bench/RESULTS.md) it takes a third off the CPU time; elsewhere
   * the generated loops keep the intrinsic ({@code FusedSource.expression}). The
   * coefficients are a minimax fit of the error in float32 ulps, each rounded to float32 and the
   * rest refitted ({@code bench/tanh32_fit.py}): 0.52 ulp before the evaluation's rounding, at most
   * {@value #TANH_ULPS} ulps of {@code StrictMath.tanh} after it (every 13th float of {@code [1e-30,
   * 12]}; {@code VectorMathTest} checks every 1009th). Odd by construction; {@code -0} gives {@code
   * -0}, infinities {@code +-1} within those ulps, NaN NaN.
   */
  public static FloatVector tanh(FloatVector x) {
    // Straight-line code with literal coefficients: the generated loops inline it (a loop over the
    // coefficient arrays costs more of C2's inlining budget, and a call not inlined boxes its vectors).
    // Compare and blend, not min and max: Java's min and max (NaN and -0 rules) take several instructions.
    FloatVector c = x.blend(9f, x.compare(VectorOperators.GT, 9f)).blend(-9f, x.compare(VectorOperators.LT, -9f));
    FloatVector t = c.mul(c);
    FloatVector p = t.fma(x.broadcast(-8.538074e-14f), x.broadcast(5.2992753e-11f));
    p = p.fma(t, x.broadcast(-2.0274213e-08f));
    p = p.fma(t, x.broadcast(1.1167466e-05f));
    p = p.fma(t, x.broadcast(0.0031052874f));
    p = p.fma(t, x.broadcast(0.13085228f));
    p = p.fma(t, x.broadcast(1.0f));
    FloatVector q = t.fma(x.broadcast(0.00025480377f), x.broadcast(0.02450056f));
    q = q.fma(t, x.broadcast(0.46418557f));
    q = q.fma(t, x.broadcast(1.0f));
    // The rounding of the quotient can reach 1 + 2^-23 near |x| = 8: clamped, so that |tanh| <= 1.
    FloatVector r = c.mul(p).div(q);
    return r.blend(1f, r.compare(VectorOperators.GT, 1f)).blend(-1f, r.compare(VectorOperators.LT, -1f));
  }

  /** The most ulps {@link #tanh(FloatVector)} is from {@code StrictMath.tanh} (measured by {@code VectorMathTest}). */
  static final int TANH_ULPS = 5;

  /** {@link Math#signum} of each lane: -1, 1, or the lane itself (zeros of either sign, NaN). */
  public static DoubleVector sign(DoubleVector x) {
    return x.blend(1.0, x.compare(VectorOperators.GT, 0)).blend(-1.0, x.compare(VectorOperators.LT, 0));
  }

  /** {@link Math#signum} of each float32 lane. */
  public static FloatVector sign(FloatVector x) {
    return x.blend(1f, x.compare(VectorOperators.GT, 0)).blend(-1f, x.compare(VectorOperators.LT, 0));
  }

  /** {@link SpecialFunctions#erfc} of each lane (the same three ranges, the Taylor tables gathered). */
  public static DoubleVector erfc(DoubleVector x) {
    VectorMask<Double> low = x.compare(VectorOperators.GE, SpecialFunctions.ERFC_TAYLOR).not();
    DoubleVector r = DoubleVector.zero(x.species());
    if (low.anyTrue()) {
      r = erf(x).neg().add(1);
    }
    VectorMask<Double> fraction = x.compare(VectorOperators.GE, SpecialFunctions.ERFC_FRACTION);
    VectorMask<Double> taylor = low.or(fraction).not();
    if (taylor.anyTrue()) {
      int intervals = SpecialFunctions.ERFC_INTERVALS;
      DoubleVector at = x.sub(SpecialFunctions.ERFC_TAYLOR).mul(SpecialFunctions.ERFC_PER_UNIT)
          .blend(0.0, taylor.not());
      int[] index = new int[x.length()];
      double[] start = at.toArray();
      for (int i = 0; i < index.length; i++) {
        index[i] = (int) start[i];
      }
      DoubleVector centre = DoubleVector.fromArray(x.species(), toDoubles(index), 0).add(0.5)
          .div(SpecialFunctions.ERFC_PER_UNIT).add(SpecialFunctions.ERFC_TAYLOR);
      DoubleVector h = x.sub(centre);
      double[] table = SpecialFunctions.ERFC_TABLE;
      DoubleVector p = DoubleVector.fromArray(x.species(), table, SpecialFunctions.ERFC_DEGREE * intervals, index, 0);
      for (int n = SpecialFunctions.ERFC_DEGREE - 1; n >= 0; n--) {
        p = p.fma(h, DoubleVector.fromArray(x.species(), table, n * intervals, index, 0));
      }
      r = r.blend(p, taylor);
    }
    VectorMask<Double> tail = fraction.and(x.compare(VectorOperators.LT, SpecialFunctions.ERFC_ZERO));
    if (tail.anyTrue()) {
      DoubleVector h = x.mul(x);
      DoubleVector l = x.fma(x, h.neg());
      DoubleVector t = x;
      for (int k = FRACTION; k >= 1; k--) {
        t = DoubleVector.broadcast(x.species(), 0.5 * k).div(t).add(x);
      }
      VectorMask<Double> far = h.compare(VectorOperators.GT, SpecialFunctions.ERFC_SHIFT);
      DoubleVector e = h.neg().add(DoubleVector.zero(x.species()).blend(SpecialFunctions.ERFC_SHIFT, far))
          .lanewise(VectorOperators.EXP).mul(l.neg().add(1)).mul(INV_SQRT_PI).div(t);
      e = e.mul(DoubleVector.broadcast(x.species(), 1.0).blend(SpecialFunctions.EXP_MINUS_SHIFT, far));
      r = r.blend(e, tail);
    }
    return r.blend(0.0, x.compare(VectorOperators.GE, SpecialFunctions.ERFC_ZERO));
  }

  private static double[] toDoubles(int[] index) {
    double[] d = new double[index.length];
    for (int i = 0; i < d.length; i++) {
      d[i] = index[i];
    }
    return d;
  }

  /** {@link SpecialFunctions#erfc} of each float32 lane, computed in float64 and rounded once. */
  public static FloatVector erfc(FloatVector x) {
    float[] lanes = x.toArray();
    for (int i = 0; i < lanes.length; i++) {
      lanes[i] = (float) SpecialFunctions.erfc(lanes[i]);
    }
    return FloatVector.fromArray(x.species(), lanes, 0);
  }

  /** {@link SpecialFunctions#erf} of each lane. */
  public static DoubleVector erf(DoubleVector x) {
    DoubleVector ax = x.abs();
    DoubleVector x2 = x.mul(x);
    DoubleVector p = DoubleVector.broadcast(x.species(), MACLAURIN[SERIES]);
    for (int n = SERIES - 1; n >= 0; n--) {
      p = p.fma(x2, DoubleVector.broadcast(x.species(), MACLAURIN[n]));
    }
    DoubleVector small = x.mul(p);
    VectorMask<Double> large = ax.compare(VectorOperators.LT, SMALL).not();
    if (!large.anyTrue()) {
      return small;
    }
    DoubleVector l = ax.fma(ax, x2.neg());
    DoubleVector e = x2.neg().lanewise(VectorOperators.EXP).mul(l.neg().add(1));
    VectorMask<Double> middle = ax.compare(VectorOperators.LT, MIDDLE);
    DoubleVector r = DoubleVector.zero(x.species());
    if (middle.and(large).anyTrue()) {
      DoubleVector q = DoubleVector.broadcast(x.species(), SCALED_SERIES[SCALED]);
      for (int n = SCALED - 1; n >= 0; n--) {
        q = q.fma(x2, DoubleVector.broadcast(x.species(), SCALED_SERIES[n]));
      }
      r = ax.mul(q).mul(e);
    }
    VectorMask<Double> tail = middle.not().and(ax.compare(VectorOperators.LT, ONE));
    if (tail.anyTrue()) {
      DoubleVector t = ax;
      for (int k = FRACTION; k >= 1; k--) {
        t = DoubleVector.broadcast(x.species(), 0.5 * k).div(t).add(ax);
      }
      r = r.blend(e.mul(INV_SQRT_PI).div(t).neg().add(1), tail);
    }
    // |x| >= 6 (and infinities) give 1; NaN lanes compare false everywhere and stay NaN.
    r = r.blend(1.0, ax.compare(VectorOperators.GE, ONE)).blend(ax, ax.test(VectorOperators.IS_NAN));
    r = r.lanewise(VectorOperators.NEG, x.compare(VectorOperators.LT, 0));
    return small.blend(r, large);
  }

  /** {@link SpecialFunctions#erf} of each float32 lane, computed in float64 and rounded once. */
  public static FloatVector erf(FloatVector x) {
    float[] lanes = x.toArray();
    for (int i = 0; i < lanes.length; i++) {
      lanes[i] = (float) SpecialFunctions.erf(lanes[i]);
    }
    return FloatVector.fromArray(x.species(), lanes, 0);
  }
}

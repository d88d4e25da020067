package dev.ntk.kernels.engine;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The {@code cpu} backend's arithmetic as SIMD loops of the JDK's Vector API, at the machine's
 * preferred vector width. {@code sqrt} and {@code atan2} compile to SVML intrinsics on x86: a
 * probe here (AMD EPYC, AVX-512) ran {@code atan2} at 0.77 ns per float32 entry and 1.6 ns per
 * float64 entry on one core, against 2.4 ns for NumPy's float32 {@code arctan2}.
 *
 * <p>Each operation has a loop of its own with a constant operator (its {@link Lanes}, made by
 * {@link LaneLoops} from the lowering its {@link Expr.Op} declares): the Vector API compiles to SIMD instructions only when the operator is
 * known to the JIT. Only loaded when the JVM has the
 * {@code jdk.incubator.vector} module ({@link CpuBackend} checks).
 */
final class VectorOps {
  private VectorOps() {}

  private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  /** {@code TAIL_F[t]}: the last {@code t} lanes of a vector. */
  private static final VectorMask<Float>[] TAIL_F = tails(F);
  private static final VectorMask<Double>[] TAIL_D = tails(D);

  @SuppressWarnings("unchecked")
  private static <E> VectorMask<E>[] tails(VectorSpecies<E> species) {
    int n = species.length();
    VectorMask<E>[] masks = new VectorMask[n];
    for (int t = 0; t < n; t++) {
      boolean[] lanes = new boolean[n];
      for (int k = n - t; k < n; k++) {
        lanes[k] = true;
      }
      masks[t] = VectorMask.fromArray(species, lanes, 0);
    }
    return masks;
  }

  /** The SIMD arithmetic over the scalar implementation's allocation and copies. */
  private abstract static class Simd<A> implements ChunkOps<A> {
    private final ChunkOps<A> scalar;

    Simd(ChunkOps<A> scalar) {
      this.scalar = scalar;
    }

    @Override
    public String dtype() {
      return scalar.dtype();
    }

    @Override
    public A allocate(int length) {
      return scalar.allocate(length);
    }

    @Override
    public double get(A array, int index) {
      return scalar.get(array, index);
    }

    @Override
    public void fill(A out, int offset, int length, double value) {
      scalar.fill(out, offset, length, value);
    }

    @Override
    public void mirror(Object matrix, int n, int from, int to) {
      scalar.mirror(matrix, n, from, to);
    }

    @Override
    public void store(A from, int fromOffset, Object to, int toOffset, int length) {
      scalar.store(from, fromOffset, to, toOffset, length);
    }

    @Override
    public void broadcast(A from, int index, A out, int offset, int length) {
      scalar.broadcast(from, index, out, offset, length);
    }

    @Override
    public void load(Object from, int offset, A to, int length) {
      scalar.load(from, offset, to, length);
    }

    @Override
    public void copy(A from, int fromOffset, A to, int toOffset, int length) {
      scalar.copy(from, fromOffset, to, toOffset, length);
    }

    @Override
    public A fromDoubles(double[] values) {
      return scalar.fromDoubles(values);
    }

    @Override
    public double[] toDoubles(A array, int length) {
      return scalar.toDoubles(array, length);
    }
  }

  static final ChunkOps<double[]> FLOAT64 = new Simd<>(ScalarOps.FLOAT64) {
    @Override
    public void apply(Expr.Op op, double[] a, int ao, int am, double[] b, int bo, int bm, double[] out,
        int oo, int length) {
      int body = D.loopBound(length);
      LANES[op.ordinal()].run(a, ao, am, b, bo, bm, out, oo, body);
      ScalarOps.apply64(op, a, ao, am, b, bo, bm, out, oo, body, length);
    }

    @Override
    public void fma(double[] a, int ao, int am, double[] b, int bo, int bm, double[] c, int co, int cm, double[] out,
        int oo, int length) {
      int body = D.loopBound(length);
      if (am == ALL && bm == BROADCAST && cm == BROADCAST) {
        // An affine map of one operand, as the ReLU family's rule has (the loops of LaneLoops say why).
        DoubleVector bv = DoubleVector.fromArray(D, b, bo);
        DoubleVector cv = DoubleVector.fromArray(D, c, co);
        for (int k = 0; k < body; k += D.length()) {
          DoubleVector.fromArray(D, a, ao + k).fma(bv, cv).intoArray(out, oo + k);
        }
      } else if (am == ALL && bm == BROADCAST && cm == ALL) {
        DoubleVector bv = DoubleVector.fromArray(D, b, bo);
        for (int k = 0; k < body; k += D.length()) {
          DoubleVector.fromArray(D, a, ao + k).fma(bv, DoubleVector.fromArray(D, c, co + k)).intoArray(out, oo + k);
        }
      } else {
        for (int k = 0; k < body; k += D.length()) {
          DoubleVector.fromArray(D, a, ao + (k & am))
              .fma(DoubleVector.fromArray(D, b, bo + (k & bm)), DoubleVector.fromArray(D, c, co + (k & cm)))
              .intoArray(out, oo + k);
        }
      }
      ScalarOps.fma64(a, ao, am, b, bo, bm, c, co, cm, out, oo, body, length);
    }

    @Override
    public void select(double[] a, int ao, int am, double[] b, int bo, int bm, double[] c, int co, int cm,
        double[] out, int oo, int length) {
      int body = D.loopBound(length);
      for (int k = 0; k < body; k += D.length()) {
        DoubleVector.fromArray(D, c, co + (k & cm)).blend(DoubleVector.fromArray(D, b, bo + (k & bm)),
            DoubleVector.fromArray(D, a, ao + (k & am)).compare(VectorOperators.GT, 0)).intoArray(out, oo + k);
      }
      ScalarOps.select64(a, ao, am, b, bo, bm, c, co, cm, out, oo, body, length);
    }

    @Override
    public void stencil(double w, double[] x, int xo, int[] offsets, double[] y, int yo, int length) {
      stencil(w, x, xo, offsets, y, yo, length, 1, 0, 0);
    }

    @Override
    public void stencil(double w, double[] x, int xo, int[] offsets, double[] y, int yo, int length, int rows,
        int xStride, int yStride) {
      int body = D.loopBound(length);
      if (offsets.length == 9) {
        stencil9(w, x, xo, offsets, y, yo, body, rows, xStride, yStride);
        for (int r = 0; r < rows; r++) {
          ScalarOps.stencil64(w, x, xo + r * xStride, offsets, y, yo + r * yStride, body, length);
        }
        return;
      }
      int last = offsets.length;
      for (int r = 0; r < rows; r++) {
        int xr = xo + r * xStride;
        int yr = yo + r * yStride;
        for (int t = 0; t < body; t += D.length()) {
          DoubleVector s = DoubleVector.fromArray(D, x, xr + offsets[0] + t);
          for (int k = 1; k < last; k++) {
            s = s.add(DoubleVector.fromArray(D, x, xr + offsets[k] + t));
          }
          s.mul(w).intoArray(y, yr + t);
        }
        ScalarOps.stencil64(w, x, xr, offsets, y, yr, body, length);
      }
    }

    /**
     * The rows of {@link #stencil} for a 3 x 3 filter (nine offsets): the offsets in locals and the
     * rows innermost, so that each load's index is linear in the loop's counter and C2 checks its
     * bounds once before the loop, not for every load (the general loop's {@code offsets[k]}
     * defeats that; in a profile its checks took as long as the stencil's own loads and adds). The
     * sums are taken in the same order as the general loop's, so the results are the same to the bit.
     */
    private void stencil9(double w, double[] x, int xo, int[] offsets, double[] y, int yo, int body, int rows,
        int xStride, int yStride) {
      int o0 = offsets[0];
      int o1 = offsets[1];
      int o2 = offsets[2];
      int o3 = offsets[3];
      int o4 = offsets[4];
      int o5 = offsets[5];
      int o6 = offsets[6];
      int o7 = offsets[7];
      int o8 = offsets[8];
      for (int t = 0; t < body; t += D.length()) {
        for (int r = 0; r < rows; r++) {
          int xr = xo + r * xStride + t;
          DoubleVector.fromArray(D, x, xr + o0).add(DoubleVector.fromArray(D, x, xr + o1))
              .add(DoubleVector.fromArray(D, x, xr + o2)).add(DoubleVector.fromArray(D, x, xr + o3))
              .add(DoubleVector.fromArray(D, x, xr + o4)).add(DoubleVector.fromArray(D, x, xr + o5))
              .add(DoubleVector.fromArray(D, x, xr + o6)).add(DoubleVector.fromArray(D, x, xr + o7))
              .add(DoubleVector.fromArray(D, x, xr + o8)).mul(w).intoArray(y, yo + r * yStride + t);
        }
      }
    }

    @Override
    public void axpy(double w, double[] x, int xo, int step, double[] y, int yo, int length) {
      int body = step == 1 ? D.loopBound(length) : 0;
      DoubleVector wv = DoubleVector.broadcast(D, w);
      for (int t = 0; t < body; t += D.length()) {
        DoubleVector.fromArray(D, x, xo + t).fma(wv, DoubleVector.fromArray(D, y, yo + t)).intoArray(y, yo + t);
      }
      if (step == 1 && body < length && length >= D.length()) {
        int at = length - D.length();
        DoubleVector old = DoubleVector.fromArray(D, y, yo + at);
        DoubleVector.fromArray(D, x, xo + at).fma(wv, old).blend(old, TAIL_D[length - body].not())
            .intoArray(y, yo + at);
        return;
      }
      for (int t = body; t < length; t++) {
        y[yo + t] = Math.fma(w, x[xo + t * step], y[yo + t]);
      }
    }
  };

  static final ChunkOps<float[]> FLOAT32 = new Simd<>(ScalarOps.FLOAT32) {
    @Override
    public void apply(Expr.Op op, float[] a, int ao, int am, float[] b, int bo, int bm, float[] out,
        int oo, int length) {
      int body = F.loopBound(length);
      LANES[op.ordinal()].run(a, ao, am, b, bo, bm, out, oo, body);
      ScalarOps.apply32(op, a, ao, am, b, bo, bm, out, oo, body, length);
    }

    @Override
    public void fma(float[] a, int ao, int am, float[] b, int bo, int bm, float[] c, int co, int cm, float[] out,
        int oo, int length) {
      int body = F.loopBound(length);
      if (am == ALL && bm == BROADCAST && cm == BROADCAST) {
        // An affine map of one operand, as the ReLU family's rule has (the loops of LaneLoops say why).
        FloatVector bv = FloatVector.fromArray(F, b, bo);
        FloatVector cv = FloatVector.fromArray(F, c, co);
        for (int k = 0; k < body; k += F.length()) {
          FloatVector.fromArray(F, a, ao + k).fma(bv, cv).intoArray(out, oo + k);
        }
      } else if (am == ALL && bm == BROADCAST && cm == ALL) {
        FloatVector bv = FloatVector.fromArray(F, b, bo);
        for (int k = 0; k < body; k += F.length()) {
          FloatVector.fromArray(F, a, ao + k).fma(bv, FloatVector.fromArray(F, c, co + k)).intoArray(out, oo + k);
        }
      } else {
        for (int k = 0; k < body; k += F.length()) {
          FloatVector.fromArray(F, a, ao + (k & am))
              .fma(FloatVector.fromArray(F, b, bo + (k & bm)), FloatVector.fromArray(F, c, co + (k & cm)))
              .intoArray(out, oo + k);
        }
      }
      ScalarOps.fma32(a, ao, am, b, bo, bm, c, co, cm, out, oo, body, length);
    }

    @Override
    public void select(float[] a, int ao, int am, float[] b, int bo, int bm, float[] c, int co, int cm,
        float[] out, int oo, int length) {
      int body = F.loopBound(length);
      for (int k = 0; k < body; k += F.length()) {
        FloatVector.fromArray(F, c, co + (k & cm)).blend(FloatVector.fromArray(F, b, bo + (k & bm)),
            FloatVector.fromArray(F, a, ao + (k & am)).compare(VectorOperators.GT, 0)).intoArray(out, oo + k);
      }
      ScalarOps.select32(a, ao, am, b, bo, bm, c, co, cm, out, oo, body, length);
    }

    @Override
    public void stencil(double w, float[] x, int xo, int[] offsets, float[] y, int yo, int length) {
      stencil(w, x, xo, offsets, y, yo, length, 1, 0, 0);
    }

    @Override
    public void stencil(double w, float[] x, int xo, int[] offsets, float[] y, int yo, int length, int rows,
        int xStride, int yStride) {
      int body = F.loopBound(length);
      if (offsets.length == 9) {
        stencil9((float) w, x, xo, offsets, y, yo, body, rows, xStride, yStride);
        for (int r = 0; r < rows; r++) {
          ScalarOps.stencil32(w, x, xo + r * xStride, offsets, y, yo + r * yStride, body, length);
        }
        return;
      }
      int last = offsets.length;
      float wf = (float) w;
      for (int r = 0; r < rows; r++) {
        int xr = xo + r * xStride;
        int yr = yo + r * yStride;
        for (int t = 0; t < body; t += F.length()) {
          FloatVector s = FloatVector.fromArray(F, x, xr + offsets[0] + t);
          for (int k = 1; k < last; k++) {
            s = s.add(FloatVector.fromArray(F, x, xr + offsets[k] + t));
          }
          s.mul(wf).intoArray(y, yr + t);
        }
        ScalarOps.stencil32(w, x, xr, offsets, y, yr, body, length);
      }
    }

    /**
     * The rows of {@link #stencil} for a 3 x 3 filter (nine offsets): the offsets in locals and the
     * rows innermost, so that each load's index is linear in the loop's counter and C2 checks its
     * bounds once before the loop, not for every load (the general loop's {@code offsets[k]}
     * defeats that; in a profile its checks took as long as the stencil's own loads and adds). The
     * sums are taken in the same order as the general loop's, so the results are the same to the bit.
     */
    private void stencil9(float w, float[] x, int xo, int[] offsets, float[] y, int yo, int body, int rows, int xStride,
        int yStride) {
      int o0 = offsets[0];
      int o1 = offsets[1];
      int o2 = offsets[2];
      int o3 = offsets[3];
      int o4 = offsets[4];
      int o5 = offsets[5];
      int o6 = offsets[6];
      int o7 = offsets[7];
      int o8 = offsets[8];
      for (int t = 0; t < body; t += F.length()) {
        for (int r = 0; r < rows; r++) {
          int xr = xo + r * xStride + t;
          FloatVector.fromArray(F, x, xr + o0).add(FloatVector.fromArray(F, x, xr + o1))
              .add(FloatVector.fromArray(F, x, xr + o2)).add(FloatVector.fromArray(F, x, xr + o3))
              .add(FloatVector.fromArray(F, x, xr + o4)).add(FloatVector.fromArray(F, x, xr + o5))
              .add(FloatVector.fromArray(F, x, xr + o6)).add(FloatVector.fromArray(F, x, xr + o7))
              .add(FloatVector.fromArray(F, x, xr + o8)).mul(w).intoArray(y, yo + r * yStride + t);
        }
      }
    }

    @Override
    public void axpy(double w, float[] x, int xo, int step, float[] y, int yo, int length) {
      int body = step == 1 ? F.loopBound(length) : 0;
      float wf = (float) w;
      FloatVector wv = FloatVector.broadcast(F, wf);
      for (int t = 0; t < body; t += F.length()) {
        FloatVector.fromArray(F, x, xo + t).fma(wv, FloatVector.fromArray(F, y, yo + t)).intoArray(y, yo + t);
      }
      if (step == 1 && body < length && length >= F.length()) {
        // The rest of a run (a run at a padded edge is one short): the last whole vector of the
        // run, blended so that only the entries not yet done change.
        int at = length - F.length();
        FloatVector old = FloatVector.fromArray(F, y, yo + at);
        FloatVector.fromArray(F, x, xo + at).fma(wv, old).blend(old, TAIL_F[length - body].not())
            .intoArray(y, yo + at);
        return;
      }
      for (int t = body; t < length; t++) {
        y[yo + t] = Math.fma(wf, x[xo + t * step], y[yo + t]);
      }
    }
  };

  /** Each operation's loop, by ordinal ({@link LaneLoops}); null for the others. */
  private static final Lanes[] LANES = new Lanes[Expr.Op.values().length];

  static {
    for (Expr.Op op : Expr.Op.values()) {
      if (op.arithmetic()) {
        LANES[op.ordinal()] = LaneLoops.of(op);
      }
    }
  }
}

package dev.ntk.kernels.engine;

/**
 * Plain Java loops with {@link Math}: the {@code cpu} backend's arithmetic when the JVM has no
 * {@code jdk.incubator.vector} module, and the tail of every vector loop. Float32 arrays are
 * computed in double precision and rounded once per operation, which is what a float32 library
 * function does at best.
 */
final class ScalarOps {
  private ScalarOps() {}

  static final ChunkOps<double[]> FLOAT64 = new ChunkOps<>() {
    @Override
    public String dtype() {
      return "float64";
    }

    @Override
    public double[] allocate(int length) {
      return new double[length];
    }

    @Override
    public double get(double[] array, int index) {
      return array[index];
    }

    @Override
    public void fill(double[] out, int offset, int length, double value) {
      java.util.Arrays.fill(out, offset, offset + length, value);
    }

    @Override
    public void mirror(Object matrix, int n, int from, int to) {
      // In 64 x 64 blocks, so that the column-wise reads stay in cache.
      double[] m = matrix instanceof double[] a ? a : null;
      java.nio.DoubleBuffer b = m == null ? (java.nio.DoubleBuffer) matrix : null;
      for (int i0 = from; i0 < to; i0 += 64) {
        for (int j0 = 0; j0 < Math.min(i0 + 64, to); j0 += 64) {
          for (int i = i0; i < Math.min(i0 + 64, to); i++) {
            for (int j = j0; j < Math.min(j0 + 64, i); j++) {
              if (m != null) {
                m[i * n + j] = m[j * n + i];
              } else {
                b.put(i * n + j, b.get(j * n + i));
              }
            }
          }
        }
      }
    }

    @Override
    public void store(double[] from, int fromOffset, Object to, int toOffset, int length) {
      if (to instanceof java.nio.DoubleBuffer b) {
        b.put(toOffset, from, fromOffset, length);
      } else {
        System.arraycopy(from, fromOffset, to, toOffset, length);
      }
    }

    @Override
    public void broadcast(double[] from, int index, double[] out, int offset, int length) {
      java.util.Arrays.fill(out, offset, offset + length, from[index]);
    }

    @Override
    public void load(Object from, int offset, double[] to, int length) {
      if (from instanceof java.nio.DoubleBuffer b) {
        b.get(offset, to, 0, length);
      } else {
        System.arraycopy((double[]) from, offset, to, 0, length);
      }
    }

    @Override
    public void copy(double[] from, int fromOffset, double[] to, int toOffset, int length) {
      System.arraycopy(from, fromOffset, to, toOffset, length);
    }

    @Override
    public void apply(Expr.Op op, double[] a, int ao, int am, double[] b, int bo, int bm, double[] out,
        int oo, int length) {
      apply64(op, a, ao, am, b, bo, bm, out, oo, 0, length);
    }

    @Override
    public void fma(double[] a, int ao, int am, double[] b, int bo, int bm, double[] c, int co, int cm, double[] out,
        int oo, int length) {
      fma64(a, ao, am, b, bo, bm, c, co, cm, out, oo, 0, length);
    }

    @Override
    public void select(double[] a, int ao, int am, double[] b, int bo, int bm, double[] c, int co, int cm, double[] out,
        int oo, int length) {
      select64(a, ao, am, b, bo, bm, c, co, cm, out, oo, 0, length);
    }

    @Override
    public void stencil(double w, double[] x, int xo, int[] offsets, double[] y, int yo, int length) {
      stencil64(w, x, xo, offsets, y, yo, 0, length);
    }

    @Override
    public void axpy(double w, double[] x, int xo, int step, double[] y, int yo, int length) {
      for (int t = 0; t < length; t++) {
        y[yo + t] += w * x[xo + t * step];
      }
    }

    @Override
    public double[] fromDoubles(double[] values) {
      return values.clone();
    }

    @Override
    public double[] toDoubles(double[] array, int length) {
      return java.util.Arrays.copyOf(array, length);
    }
  };

  static final ChunkOps<float[]> FLOAT32 = new ChunkOps<>() {
    @Override
    public String dtype() {
      return "float32";
    }

    @Override
    public float[] allocate(int length) {
      return new float[length];
    }

    @Override
    public double get(float[] array, int index) {
      return array[index];
    }

    @Override
    public void fill(float[] out, int offset, int length, double value) {
      java.util.Arrays.fill(out, offset, offset + length, (float) value);
    }

    @Override
    public void mirror(Object matrix, int n, int from, int to) {
      // In 64 x 64 blocks, so that the column-wise reads stay in cache.
      float[] m = matrix instanceof float[] a ? a : null;
      java.nio.FloatBuffer b = m == null ? (java.nio.FloatBuffer) matrix : null;
      for (int i0 = from; i0 < to; i0 += 64) {
        for (int j0 = 0; j0 < Math.min(i0 + 64, to); j0 += 64) {
          for (int i = i0; i < Math.min(i0 + 64, to); i++) {
            for (int j = j0; j < Math.min(j0 + 64, i); j++) {
              if (m != null) {
                m[i * n + j] = m[j * n + i];
              } else {
                b.put(i * n + j, b.get(j * n + i));
              }
            }
          }
        }
      }
    }

    @Override
    public void store(float[] from, int fromOffset, Object to, int toOffset, int length) {
      if (to instanceof java.nio.FloatBuffer b) {
        b.put(toOffset, from, fromOffset, length);
      } else {
        System.arraycopy(from, fromOffset, to, toOffset, length);
      }
    }

    @Override
    public void broadcast(float[] from, int index, float[] out, int offset, int length) {
      java.util.Arrays.fill(out, offset, offset + length, from[index]);
    }

    @Override
    public void load(Object from, int offset, float[] to, int length) {
      if (from instanceof java.nio.FloatBuffer b) {
        b.get(offset, to, 0, length);
      } else {
        System.arraycopy((float[]) from, offset, to, 0, length);
      }
    }

    @Override
    public void copy(float[] from, int fromOffset, float[] to, int toOffset, int length) {
      System.arraycopy(from, fromOffset, to, toOffset, length);
    }

    @Override
    public void apply(Expr.Op op, float[] a, int ao, int am, float[] b, int bo, int bm, float[] out,
        int oo, int length) {
      apply32(op, a, ao, am, b, bo, bm, out, oo, 0, length);
    }

    @Override
    public void fma(float[] a, int ao, int am, float[] b, int bo, int bm, float[] c, int co, int cm, float[] out,
        int oo, int length) {
      fma32(a, ao, am, b, bo, bm, c, co, cm, out, oo, 0, length);
    }

    @Override
    public void select(float[] a, int ao, int am, float[] b, int bo, int bm, float[] c, int co, int cm, float[] out,
        int oo, int length) {
      select32(a, ao, am, b, bo, bm, c, co, cm, out, oo, 0, length);
    }

    @Override
    public void stencil(double w, float[] x, int xo, int[] offsets, float[] y, int yo, int length) {
      stencil32(w, x, xo, offsets, y, yo, 0, length);
    }

    @Override
    public void axpy(double w, float[] x, int xo, int step, float[] y, int yo, int length) {
      float wf = (float) w;
      for (int t = 0; t < length; t++) {
        y[yo + t] += wf * x[xo + t * step];
      }
    }

    @Override
    public float[] fromDoubles(double[] values) {
      float[] f = new float[values.length];
      for (int i = 0; i < f.length; i++) {
        f[i] = (float) values[i];
      }
      return f;
    }

    @Override
    public double[] toDoubles(float[] array, int length) {
      double[] d = new double[length];
      for (int i = 0; i < length; i++) {
        d[i] = array[i];
      }
      return d;
    }
  };

  /** Entries {@code [from, to)} of a fused multiply-add, in float64. */
  static void fma64(double[] a, int ao, int am, double[] b, int bo, int bm, double[] c, int co, int cm,
      double[] out, int oo, int from, int to) {
    for (int k = from; k < to; k++) {
      out[oo + k] = Math.fma(a[ao + (k & am)], b[bo + (k & bm)], c[co + (k & cm)]);
    }
  }

  /** Entries {@code [from, to)} of a fused multiply-add, in float32. */
  static void fma32(float[] a, int ao, int am, float[] b, int bo, int bm, float[] c, int co, int cm,
      float[] out, int oo, int from, int to) {
    for (int k = from; k < to; k++) {
      out[oo + k] = Math.fma(a[ao + (k & am)], b[bo + (k & bm)], c[co + (k & cm)]);
    }
  }

  /** Entries {@code [from, to)} of a select, in float64. */
  static void select64(double[] a, int ao, int am, double[] b, int bo, int bm, double[] c, int co, int cm,
      double[] out, int oo, int from, int to) {
    for (int k = from; k < to; k++) {
      out[oo + k] = a[ao + (k & am)] > 0 ? b[bo + (k & bm)] : c[co + (k & cm)];
    }
  }

  /** Entries {@code [from, to)} of a select, in float32. */
  static void select32(float[] a, int ao, int am, float[] b, int bo, int bm, float[] c, int co, int cm,
      float[] out, int oo, int from, int to) {
    for (int k = from; k < to; k++) {
      out[oo + k] = a[ao + (k & am)] > 0 ? b[bo + (k & bm)] : c[co + (k & cm)];
    }
  }

  /** Entries {@code [from, to)} of a chunk, in float64. */
  static void apply64(Expr.Op op, double[] a, int ao, int am, double[] b, int bo, int bm, double[] out,
      int oo, int from, int to) {
    if (op.binary()) {
      for (int k = from; k < to; k++) {
        out[oo + k] = Expr.evaluate(op, a[ao + (k & am)], b[bo + (k & bm)]);
      }
    } else {
      for (int k = from; k < to; k++) {
        out[oo + k] = Expr.evaluate(op, a[ao + (k & am)], 0);
      }
    }
  }

  /** Entries {@code [from, to)} of a chunk, in float32. */
  static void apply32(Expr.Op op, float[] a, int ao, int am, float[] b, int bo, int bm, float[] out,
      int oo, int from, int to) {
    if (op.binary()) {
      for (int k = from; k < to; k++) {
        out[oo + k] = (float) Expr.evaluate(op, a[ao + (k & am)], b[bo + (k & bm)]);
      }
    } else {
      for (int k = from; k < to; k++) {
        out[oo + k] = (float) Expr.evaluate(op, a[ao + (k & am)], 0);
      }
    }
  }

  /** {@link ChunkOps#stencil} for {@code t} in {@code [from, to)}. */
  static void stencil64(double w, double[] x, int xo, int[] offsets, double[] y, int yo, int from, int to) {
    for (int t = from; t < to; t++) {
      double s = 0;
      for (int off : offsets) {
        s += x[xo + off + t];
      }
      y[yo + t] = w * s;
    }
  }

  /** {@link ChunkOps#stencil} in float32 for {@code t} in {@code [from, to)}. */
  static void stencil32(double w, float[] x, int xo, int[] offsets, float[] y, int yo, int from, int to) {
    float wf = (float) w;
    for (int t = from; t < to; t++) {
      float s = 0;
      for (int off : offsets) {
        s += x[xo + off + t];
      }
      y[yo + t] = wf * s;
    }
  }
}

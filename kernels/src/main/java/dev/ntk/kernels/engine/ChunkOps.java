package dev.ntk.kernels.engine;

/**
 * The arithmetic of the {@code cpu} backend on one primitive array type ({@code float[]} or
 * {@code double[]}): each call is one operation of {@link Expr.Op} over a chunk of entries that
 * sits in cache. The Vector API implementations ({@link VectorOps}) run these as SIMD loops (SVML
 * intrinsics for {@code sqrt} and {@code atan2}); {@link ScalarOps} is the fallback for a JVM
 * started without {@code --add-modules jdk.incubator.vector}.
 *
 * @param <A> the array type
 */
interface ChunkOps<A> {
  /**
   * Copies the upper triangle of the row-major {@code n x n} {@code matrix} (an array of this type
   * or a buffer of this dtype) onto its lower one, in rows {@code [from, to)} of the lower one.
   */
  void mirror(Object matrix, int n, int from, int to);

  /** Copies {@code length} values of {@code from} into {@code to} (an array of this type or a buffer). */
  void store(A from, int fromOffset, Object to, int toOffset, int length);

  /** The dtype name: {@code float32} or {@code float64}. */
  String dtype();

  A allocate(int length);

  double get(A array, int index);

  void fill(A out, int offset, int length, double value);

  /** Fills {@code out[0, length)} with {@code from[index]}. */
  default void broadcast(A from, int index, A out, int length) {
    broadcast(from, index, out, 0, length);
  }

  /** Fills {@code out[offset, offset + length)} with {@code from[index]}. */
  void broadcast(A from, int index, A out, int offset, int length);

  /**
   * Copies {@code length} values from {@code from} (an array of this type, or a {@code
   * FloatBuffer}/{@code DoubleBuffer} of this dtype) at {@code offset} into {@code to}.
   */
  void load(Object from, int offset, A to, int length);

  void copy(A from, int fromOffset, A to, int toOffset, int length);

  /**
   * {@code out[oo + k] = op(a[ao + (k & am)], b[bo + (k & bm)])} for {@code k < length}; {@code b}
   * is unused for unary ops. A mask is {@link #ALL} for an operand that varies over the chunk, or
   * {@link #BROADCAST} for one held in a short buffer of {@link #BROADCAST_LENGTH} equal values (a
   * constant, or a per-row value): it is read again and again from the same cache line instead of
   * streaming a chunk-long copy.
   */
  void apply(Expr.Op op, A a, int ao, int am, A b, int bo, int bm, A out, int oo, int length);

  /** {@code out[oo + k] = a[..] * b[..] + c[..]} with one rounding, the operands masked as in {@link #apply}. */
  void fma(A a, int ao, int am, A b, int bo, int bm, A c, int co, int cm, A out, int oo, int length);

  /** {@code out[oo + k] = a[..] > 0 ? b[..] : c[..]}, the operands masked as in {@link #apply}. */
  void select(A a, int ao, int am, A b, int bo, int bm, A c, int co, int cm, A out, int oo, int length);

  /** {@code op}, an operation of three operands ({@link Expr.Op#ternary}): {@link #fma} or {@link #select}. */
  default void ternary(Expr.Op op, A a, int ao, int am, A b, int bo, int bm, A c, int co, int cm, A out, int oo,
      int length) {
    if (op == Expr.Op.FMA) {
      fma(a, ao, am, b, bo, bm, c, co, cm, out, oo, length);
    } else if (op == Expr.Op.SELECT) {
      select(a, ao, am, b, bo, bm, c, co, cm, out, oo, length);
    } else {
      throw new IllegalArgumentException(op + " does not take three operands");
    }
  }

  /**
   * The ternary step {@code e} ({@link Expr.Op#ternary}): {@link #ternary(Expr.Op, Object, int, int,
   * Object, int, int, Object, int, int, Object, int, int)}; for a {@link Expr.Op#CALL} its
   * function entry by entry, in scalar code (a Java function has no vector form); for a {@link
   * Expr.Op#QUADRATURE} its loop over the table ({@link Quadrature#run}).
   */
  default void ternary(Expr e, A a, int ao, int am, A b, int bo, int bm, A c, int co, int cm, A out, int oo,
      int length) {
    if (e.op() == Expr.Op.QUADRATURE) {
      e.quadrature().run(this, (int) e.value(), a, ao, am, b, bo, bm, c, co, cm, out, oo, length);
      return;
    }
    if (e.op() != Expr.Op.CALL) {
      ternary(e.op(), a, ao, am, b, bo, bm, c, co, cm, out, oo, length);
      return;
    }
    Expr.Callback f = e.callback();
    for (int k = 0; k < length; k++) {
      fill(out, oo + k, 1, f.apply(get(a, ao + (k & am)), get(b, bo + (k & bm)), get(c, co + (k & cm))));
    }
  }

  /**
   * {@code y[yo + t] += w * x[xo + t * step]} for {@code t < length}: one run of a pixel map's
   * multiply-adds ({@link PixelMap}).
   */
  void axpy(double w, A x, int xo, int step, A y, int yo, int length);

  /**
   * {@code y[yo + t] = w * sum_k x[xo + offsets[k] + t]} for {@code t < length}: the shifted copies
   * of a stride-1 convolution, summed in registers and stored once ({@link PixelMap}).
   */
  void stencil(double w, A x, int xo, int[] offsets, A y, int yo, int length);

  /**
   * {@link #stencil} for {@code rows} rows: row {@code r} reads {@code x} from {@code xo + r
   * xStride} and writes {@code y} from {@code yo + r yStride} (one call for a plane of a padded grid).
   */
  default void stencil(double w, A x, int xo, int[] offsets, A y, int yo, int length, int rows, int xStride,
      int yStride) {
    for (int r = 0; r < rows; r++) {
      stencil(w, x, xo + r * xStride, offsets, y, yo + r * yStride, length);
    }
  }

  /** The mask of an operand that varies over the chunk. */
  int ALL = -1;
  /** The mask of an operand broadcast from a short buffer of equal values. */
  int BROADCAST = 0;
  /** The length of a broadcast buffer: at least one vector of the widest species. */
  int BROADCAST_LENGTH = 64;

  /** An array of {@code values} converted to this type. */
  A fromDoubles(double[] values);

  /** The values of {@code array} as doubles. */
  double[] toDoubles(A array, int length);
}

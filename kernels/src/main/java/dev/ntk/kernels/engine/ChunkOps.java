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
  /** The dtype name: {@code float32} or {@code float64}. */
  String dtype();

  A allocate(int length);

  void fill(A out, int offset, int length, double value);

  /** Fills {@code out[0, length)} with {@code from[index]}. */
  void broadcast(A from, int index, A out, int length);

  void copy(A from, int fromOffset, A to, int toOffset, int length);

  /** {@code out[oo + k] = op(a[ao + k], b[bo + k])} for {@code k < length}; {@code b} is unused for unary ops. */
  void apply(Expr.Op op, A a, int ao, A b, int bo, A out, int oo, int length);

  /** An array of {@code values} converted to this type. */
  A fromDoubles(double[] values);

  /** The values of {@code array} as doubles. */
  double[] toDoubles(A array, int length);
}

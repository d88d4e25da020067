package dev.ntk.kernels.engine;

/**
 * An operation's SIMD loop over the whole vectors of a chunk, float64 ({@code double[]}) or float32
 * ({@code float[]}), as {@link ChunkOps#apply} takes them ({@code b} unused by a unary operation);
 * {@code n} is a whole number of vectors. Each {@link Expr.Op} declares its own as a lambda that
 * calls {@link LaneLoops}: a copy of a template per operation, with its {@code VectorOperators}
 * constant, so that each operation's loop is a method of its own in which the operator is a
 * constant (the Vector API compiles to SIMD instructions only then).
 */
@FunctionalInterface
interface Lanes {
  void run(Object a, int ao, int am, Object b, int bo, int bm, Object out, int oo, int n);
}

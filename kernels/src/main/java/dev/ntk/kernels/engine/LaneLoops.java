package dev.ntk.kernels.engine;

import java.lang.constant.ConstantDescs;
import java.lang.invoke.MethodHandles;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The SIMD loop of each {@link Expr.Op} ({@link Lanes}), made from one template per kind of
 * lowering. The Vector API compiles to SIMD instructions only where the operator is a constant
 * to the JIT; a loop shared by all operations, taking the operator as an argument, ran 20 times
 * slower than a loop per operation (measured: {@code add} 4.5 against 0.21 ns per float64 entry).
 * So each operation gets a copy of its template's bytecode as a hidden class whose {@code static
 * final} operator is the operation's own ({@code MethodHandles.classData}): a loop per operation,
 * written once.
 *
 * <p>Each template has a loop of its own for operands that all vary over the chunk (and for a
 * binary operation's second operand broadcast, loaded once): there a load's index is linear in
 * the loop's counter, so C2 checks its bounds once before the loop, where the masked index {@code
 * ao + (k & am)} costs a check per load (a float32 {@code mul} over a chunk in L1: 0.10 to 0.13
 * against 0.17 to 0.18 ns per entry, measured). The same operations in the same order: the same
 * results to the bit.
 */
final class LaneLoops {
  private LaneLoops() {}

  /** The loop of {@code op}, from its declared vector lowering. */
  static Lanes of(Expr.Op op) {
    Object lowering = op.vector();
    Class<?> template = lowering instanceof VectorOperators.Binary ? BinaryLoop.class
        : lowering instanceof VectorOperators.Unary ? UnaryLoop.class
        : lowering instanceof VectorMath.Function ? FunctionLoop.class : null;
    if (template == null) {
      throw new IllegalArgumentException(op + " has no vector lowering");
    }
    try (java.io.InputStream in = template.getResourceAsStream(template.getSimpleName() + ".class")) {
      byte[] bytes = in.readAllBytes();
      MethodHandles.Lookup lookup = MethodHandles.lookup().defineHiddenClassWithClassData(bytes, lowering, true);
      return (Lanes) lookup.findConstructor(lookup.lookupClass(), java.lang.invoke.MethodType.methodType(void.class))
          .invoke();
    } catch (Throwable e) {
      throw new IllegalStateException("the vector loop of " + op + " could not be made", e);
    }
  }

  /** The operation a hidden copy of a template was made with (its class data), read through its {@code lookup}. */
  static <T> T operation(MethodHandles.Lookup lookup, Class<T> type) {
    try {
      return MethodHandles.classData(lookup, ConstantDescs.DEFAULT_NAME, type);
    } catch (IllegalAccessException e) {
      throw new IllegalStateException(e);
    }
  }

}

/** Template of a unary {@code VectorOperators} operation's loop (only its hidden copies run). */
final class UnaryLoop implements Lanes {
  private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final VectorOperators.Unary OP = LaneLoops.operation(MethodHandles.lookup(), VectorOperators.Unary.class);

  @Override
  public void run(Object a, int ao, int am, Object b, int bo, int bm, Object out, int oo, int n) {
    if (a instanceof double[] x) {
      double[] y = (double[]) out;
      if (am == ChunkOps.ALL) {
        for (int k = 0; k < n; k += D.length()) {
          DoubleVector.fromArray(D, x, ao + k).lanewise(OP).intoArray(y, oo + k);
        }
        return;
      }
      for (int k = 0; k < n; k += D.length()) {
        DoubleVector.fromArray(D, x, ao + (k & am)).lanewise(OP).intoArray(y, oo + k);
      }
    } else {
      float[] x = (float[]) a;
      float[] y = (float[]) out;
      if (am == ChunkOps.ALL) {
        for (int k = 0; k < n; k += F.length()) {
          FloatVector.fromArray(F, x, ao + k).lanewise(OP).intoArray(y, oo + k);
        }
        return;
      }
      for (int k = 0; k < n; k += F.length()) {
        FloatVector.fromArray(F, x, ao + (k & am)).lanewise(OP).intoArray(y, oo + k);
      }
    }
  }
}

/** Template of a binary {@code VectorOperators} operation's loop (only its hidden copies run). */
final class BinaryLoop implements Lanes {
  private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final VectorOperators.Binary OP = LaneLoops.operation(MethodHandles.lookup(), VectorOperators.Binary.class);

  @Override
  public void run(Object a, int ao, int am, Object b, int bo, int bm, Object out, int oo, int n) {
    if (a instanceof double[] x) {
      double[] y = (double[]) b;
      double[] z = (double[]) out;
      if (am == ChunkOps.ALL && bm == ChunkOps.ALL) {
        for (int k = 0; k < n; k += D.length()) {
          DoubleVector.fromArray(D, x, ao + k).lanewise(OP, DoubleVector.fromArray(D, y, bo + k)).intoArray(z, oo + k);
        }
      } else if (am == ChunkOps.ALL && bm == ChunkOps.BROADCAST) {
        DoubleVector c = DoubleVector.fromArray(D, y, bo);
        for (int k = 0; k < n; k += D.length()) {
          DoubleVector.fromArray(D, x, ao + k).lanewise(OP, c).intoArray(z, oo + k);
        }
      } else {
        for (int k = 0; k < n; k += D.length()) {
          DoubleVector.fromArray(D, x, ao + (k & am)).lanewise(OP, DoubleVector.fromArray(D, y, bo + (k & bm)))
              .intoArray(z, oo + k);
        }
      }
    } else {
      float[] x = (float[]) a;
      float[] y = (float[]) b;
      float[] z = (float[]) out;
      if (am == ChunkOps.ALL && bm == ChunkOps.ALL) {
        for (int k = 0; k < n; k += F.length()) {
          FloatVector.fromArray(F, x, ao + k).lanewise(OP, FloatVector.fromArray(F, y, bo + k)).intoArray(z, oo + k);
        }
      } else if (am == ChunkOps.ALL && bm == ChunkOps.BROADCAST) {
        FloatVector c = FloatVector.fromArray(F, y, bo);
        for (int k = 0; k < n; k += F.length()) {
          FloatVector.fromArray(F, x, ao + k).lanewise(OP, c).intoArray(z, oo + k);
        }
      } else {
        for (int k = 0; k < n; k += F.length()) {
          FloatVector.fromArray(F, x, ao + (k & am)).lanewise(OP, FloatVector.fromArray(F, y, bo + (k & bm)))
              .intoArray(z, oo + k);
        }
      }
    }
  }
}

/** Template of the loop of a {@link VectorMath.Function} (only its hidden copies run). */
final class FunctionLoop implements Lanes {
  private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
  private static final VectorMath.Function OP = LaneLoops.operation(MethodHandles.lookup(), VectorMath.Function.class);

  @Override
  public void run(Object a, int ao, int am, Object b, int bo, int bm, Object out, int oo, int n) {
    if (a instanceof double[] x) {
      double[] y = (double[]) out;
      if (am == ChunkOps.ALL) {
        for (int k = 0; k < n; k += D.length()) {
          OP.apply(DoubleVector.fromArray(D, x, ao + k)).intoArray(y, oo + k);
        }
        return;
      }
      for (int k = 0; k < n; k += D.length()) {
        OP.apply(DoubleVector.fromArray(D, x, ao + (k & am))).intoArray(y, oo + k);
      }
    } else {
      float[] x = (float[]) a;
      float[] y = (float[]) out;
      if (am == ChunkOps.ALL) {
        for (int k = 0; k < n; k += F.length()) {
          OP.apply(FloatVector.fromArray(F, x, ao + k)).intoArray(y, oo + k);
        }
        return;
      }
      for (int k = 0; k < n; k += F.length()) {
        OP.apply(FloatVector.fromArray(F, x, ao + (k & am))).intoArray(y, oo + k);
      }
    }
  }
}

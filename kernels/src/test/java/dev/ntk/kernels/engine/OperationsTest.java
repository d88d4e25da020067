package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import dev.ntk.kernels.Tensors;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.DoubleBinaryOperator;
import org.junit.jupiter.api.Test;

/**
 * Every entry-wise operation of {@link Expr.Op} on every backend: the scalar meaning against
 * {@link StrictMath} (erf: {@code SpecialFunctionsTest}), and the vector loops, the fused
 * generated loops and TensorFlow against the scalar meaning, at special values (zeros, subnormals,
 * tiny and huge numbers, infinities, NaN, the edges of exp's range) and random ones, in float64;
 * the vector loops also in float32 (against the scalar meaning rounded to float). TensorFlow is
 * held to the same bound except at subnormal operands, which its CPU kernels flush to zero (as
 * subnormal results).
 */
class OperationsTest {
  /** Most values are in whole vectors of a chunk, the last few in its scalar tail. */
  private static final double[] SPECIAL = {0.0, -0.0, Double.MIN_VALUE, -Double.MIN_VALUE, 1e-310, 1e-300,
      -1e-300, 1e-20, -1e-20, 1e-8, -1e-8, 0.1, -0.3, 0.5, -0.5, 0.9999, 1, -1, 1.0001, 1.5, -1.7, 1.9999,
      2, 2.0001, -2.5, 3.7, 5.9, -5.99, 6, 6.5, -10, 27, 30, 100, -100, 700, 709.7, 710, -745, -746, 1e15,
      -1e15, 1e300, -1e300, Double.MAX_VALUE, -Double.MAX_VALUE, Double.POSITIVE_INFINITY,
      Double.NEGATIVE_INFINITY, Double.NaN, Math.PI, -Math.PI / 2, Math.E};

  private static double[] values() {
    List<Double> v = new ArrayList<>();
    for (double s : SPECIAL) {
      v.add(s);
    }
    Random r = new Random(7);
    for (int i = 0; i < 300; i++) {
      v.add(i < 200 ? 20 * r.nextDouble() - 10 : (r.nextBoolean() ? 1 : -1) * Math.pow(10, 40 * r.nextDouble() - 20));
    }
    return v.stream().mapToDouble(Double::doubleValue).toArray();
  }

  private static DoubleBinaryOperator strict(Expr.Op op) {
    return switch (op) {
      case ADD -> (a, b) -> a + b;
      case SUB -> (a, b) -> a - b;
      case MUL -> (a, b) -> a * b;
      case DIV -> (a, b) -> a / b;
      case MAX -> StrictMath::max;
      case MIN -> StrictMath::min;
      case ATAN2 -> StrictMath::atan2;
      case SQRT -> (a, b) -> StrictMath.sqrt(a);
      case EXP -> (a, b) -> StrictMath.exp(a);
      case EXPM1 -> (a, b) -> StrictMath.expm1(a);
      case LOG -> (a, b) -> StrictMath.log(a);
      case LOG1P -> (a, b) -> StrictMath.log1p(a);
      case SIN -> (a, b) -> StrictMath.sin(a);
      case COS -> (a, b) -> StrictMath.cos(a);
      case ABS -> (a, b) -> StrictMath.abs(a);
      case ERF -> (a, b) -> SpecialFunctions.erf(a);
      case ERFC -> (a, b) -> SpecialFunctions.erfc(a);
      case TANH -> (a, b) -> StrictMath.tanh(a);
      case ATAN -> (a, b) -> StrictMath.atan(a);
      case POW -> StrictMath::pow;
      case SIGN -> (a, b) -> Math.signum(a);
      default -> throw new IllegalArgumentException(op.name());
    };
  }

  /** Within {@code ulps} units in the last place of {@code want}; NaN only where NaN is wanted. */
  private static boolean close(double want, double got, double ulps) {
    if (Double.isNaN(want) || Double.isNaN(got)) {
      return Double.isNaN(want) && Double.isNaN(got);
    }
    return want == got || Math.abs(got - want) <= ulps * Math.ulp(want);
  }

  private static List<Expr.Op> operations() {
    List<Expr.Op> ops = new ArrayList<>();
    for (Expr.Op op : Expr.Op.values()) {
      if (op.arithmetic()) {
        ops.add(op);
      }
    }
    return ops;
  }

  /** Operands {@code a[i], b[i]}: every value with a second operand cycling through the values. */
  private static double[][] operands(Expr.Op op) {
    double[] v = values();
    if (!op.binary()) {
      return new double[][] {v, new double[v.length]};
    }
    int n = v.length;
    double[] a = new double[n * 8];
    double[] b = new double[n * 8];
    for (int k = 0; k < 8; k++) {
      for (int i = 0; i < n; i++) {
        a[k * n + i] = v[i];
        b[k * n + i] = v[(i * 7 + k * 13) % n];
      }
    }
    return new double[][] {a, b};
  }

  private static Schedule schedule(Expr.Op op) {
    Expr a = Expr.input("a", Expr.Domain.TILE);
    Expr e = op.binary() ? a.binary(op, Expr.input("b", Expr.Domain.TILE)) : a.unary(op);
    return new Schedule(Map.of("out", e));
  }

  @Test
  void scalarMeaningIsWithinAnUlpOrTwoOfStrictMath() {
    for (Expr.Op op : operations()) {
      double[][] x = operands(op);
      DoubleBinaryOperator strict = strict(op);
      for (int i = 0; i < x[0].length; i++) {
        double want = strict.applyAsDouble(x[0][i], x[1][i]);
        double got = Expr.evaluate(op, x[0][i], x[1][i]);
        assertTrue(close(want, got, 2), op + "(" + x[0][i] + ", " + x[1][i] + "): " + got + " vs " + want);
      }
    }
  }

  @Test
  void vectorFusedAndScalarLoopsAgree() {
    for (Expr.Op op : operations()) {
      double[][] x = operands(op);
      int n = x[0].length;
      Schedule schedule = schedule(op);
      Map<String, Object> in = op.binary() ? Map.of("a", x[0], "b", x[1]) : Map.of("a", x[0]);
      double[] scalar = CpuBackend.scalarFloat64().run(schedule, in, 1, n, 1).get("out");
      double[] vector = CpuBackend.float64().fused(false).run(schedule, in, 1, n, 1).get("out");
      double[] fused = CpuBackend.float64().fused(true).run(schedule, in, 1, n, 1).get("out");
      // A template that does not compile turns fused loops off (and the numbers interpreted).
      assertTrue(Fused.available(), op + ": its generated loop does not compile");
      DoubleBinaryOperator strict = strict(op);
      for (int i = 0; i < n; i++) {
        double want = strict.applyAsDouble(x[0][i], x[1][i]);
        String where = op + "(" + x[0][i] + ", " + x[1][i] + "): ";
        assertTrue(close(want, scalar[i], 2), where + "scalar " + scalar[i] + " vs " + want);
        assertTrue(close(want, vector[i], 3), where + "vector " + vector[i] + " vs " + want);
        assertTrue(close(want, fused[i], 3), where + "fused " + fused[i] + " vs " + want);
      }
      // float32: the vector lanes against the scalar meaning rounded to float.
      CpuBackend<float[]> f32 = CpuBackend.float32();
      float[] a = f32.fromDoubles(x[0]);
      float[] b = f32.fromDoubles(x[1]);
      Map<String, Object> in32 = op.binary() ? Map.of("a", a, "b", b) : Map.of("a", a);
      float[] vector32 = f32.fused(false).run(schedule, in32, 1, n, 1).get("out");
      float[] fused32 = f32.fused(true).run(schedule, in32, 1, n, 1).get("out");
      // float32 tanh is a rational of its own (VectorMath.tanh), held to its stated ulps.
      int ulps32 = op == Expr.Op.TANH ? VectorMath.TANH_ULPS : 2;
      for (int i = 0; i < n; i++) {
        float want = (float) Expr.evaluate(op, a[i], b[i]);
        String where = op + "(" + a[i] + ", " + b[i] + ") float32: ";
        assertTrue(close32(want, vector32[i], ulps32), where + "vector " + vector32[i] + " vs " + want);
        assertTrue(close32(want, fused32[i], ulps32), where + "fused " + fused32[i] + " vs " + want);
      }
    }
  }

  private static boolean subnormal(double x) {
    return x != 0 && Math.abs(x) < Double.MIN_NORMAL;
  }

  private static double flush(double x) {
    return Math.abs(x) < Double.MIN_NORMAL ? Math.copySign(0.0, x) : x;
  }

  private static boolean close32(float want, float got, int ulps) {
    if (Float.isNaN(want) || Float.isNaN(got)) {
      return Float.isNaN(want) && Float.isNaN(got);
    }
    return want == got || Math.abs(got - want) <= ulps * Math.ulp(want);
  }

  @Test
  void tensorFlowAgreesWithTheScalarMeaning() {
    try (NDManager manager = Tensors.newManager()) {
      for (Expr.Op op : operations()) {
        double[][] x = operands(op);
        int n = x[0].length;
        Map<String, NDArray> in = new java.util.HashMap<>();
        in.put("a", manager.create(x[0]).reshape(1, n));
        if (op.binary()) {
          in.put("b", manager.create(x[1]).reshape(1, n));
        }
        double[] tf = TensorFlowBackend.run(schedule(op), in, 1, n, manager).get("out").toDoubleArray();
        DoubleBinaryOperator strict = strict(op);
        for (int i = 0; i < n; i++) {
          if (subnormal(x[0][i]) || subnormal(x[1][i])) {
            continue; // TensorFlow's CPU kernels flush subnormal operands to zero (DAZ)
          }
          double want = strict.applyAsDouble(x[0][i], x[1][i]);
          // and subnormal results (FTZ).
          // Eigen's vectorised pow is its own algorithm (not the C library's): more than 4 ulps and at most 8 here.
          double ulps = op == Expr.Op.POW ? 8 : 4;
          assertTrue(close(want, tf[i], ulps) || close(flush(want), tf[i], ulps), op + "(" + x[0][i] + ", " + x[1][i]
              + "): tensorflow " + tf[i] + " vs " + want);
        }
      }
    }
  }

  /**
   * {@code select(a > 0, b, c)} on every backend, float64 and float32, with conditions at zeros of
   * both signs, tiny values, infinities and NaN (NaN selects {@code c}), and branches that are
   * infinite or NaN where not selected: the result is exactly the selected operand. Conditions in
   * the row domain and branches in the column domain check broadcasting too.
   */
  @Test
  void selectPicksOneOperandExactlyOnEveryBackend() {
    double[] v = values();
    int n = v.length;
    double[] a = new double[n];
    double[] b = new double[n];
    double[] c = new double[n];
    for (int i = 0; i < n; i++) {
      a[i] = v[i];
      b[i] = v[(i * 7 + 3) % n];
      c[i] = v[(i * 11 + 5) % n];
    }
    Expr e = Expr.input("a", Expr.Domain.TILE).select(Expr.input("b", Expr.Domain.TILE),
        Expr.input("c", Expr.Domain.TILE).times(2));
    Schedule schedule = new Schedule(Map.of("out", e));
    double[] want = new double[n];
    for (int i = 0; i < n; i++) {
      want[i] = a[i] > 0 ? b[i] : 2 * c[i];
      assertTrue(Expr.evaluate(Expr.Op.SELECT, a[i], b[i], 2 * c[i]) == want[i]
          || Double.isNaN(want[i]) && Double.isNaN(Expr.evaluate(Expr.Op.SELECT, a[i], b[i], 2 * c[i])));
    }
    Map<String, Object> in = Map.of("a", a, "b", b, "c", c);
    List<double[]> results = new ArrayList<>();
    results.add(CpuBackend.scalarFloat64().run(schedule, in, 1, n, 1).get("out"));
    results.add(CpuBackend.float64().fused(false).run(schedule, in, 1, n, 1).get("out"));
    results.add(CpuBackend.float64().fused(true).run(schedule, in, 1, n, 1).get("out"));
    CpuBackend<float[]> f32 = CpuBackend.float32();
    Map<String, Object> in32 = Map.of("a", f32.fromDoubles(a), "b", f32.fromDoubles(b), "c", f32.fromDoubles(c));
    for (boolean fused : new boolean[] {false, true}) {
      float[] r = f32.fused(fused).run(schedule, in32, 1, n, 1).get("out");
      for (int i = 0; i < n; i++) {
        float fa = (float) a[i];
        float w = fa > 0 ? (float) b[i] : 2 * (float) c[i];
        assertTrue(r[i] == w || Float.isNaN(w) && Float.isNaN(r[i]), "float32 select at " + a[i] + ": " + r[i]);
      }
    }
    try (NDManager manager = Tensors.newManager()) {
      Map<String, NDArray> tin = new java.util.HashMap<>();
      tin.put("a", manager.create(a).reshape(1, n));
      tin.put("b", manager.create(b).reshape(1, n));
      tin.put("c", manager.create(c).reshape(1, n));
      results.add(TensorFlowBackend.run(schedule, tin, 1, n, manager).get("out").toDoubleArray());
    }
    for (int k = 0; k < results.size(); k++) {
      double[] r = results.get(k);
      for (int i = 0; i < n; i++) {
        if (k == results.size() - 1 && (subnormal(a[i]) || subnormal(b[i]) || subnormal(c[i]))) {
          continue; // TensorFlow flushes subnormal operands to zero
        }
        assertTrue(r[i] == want[i] || Double.isNaN(want[i]) && Double.isNaN(r[i]),
            "select(" + a[i] + ", " + b[i] + ", " + c[i] + "): " + r[i] + " vs " + want[i]);
      }
    }
    // Row condition, column branches: broadcast over a 3 x n tile.
    Expr rows = Expr.input("r", Expr.Domain.ROW).select(Expr.input("b", Expr.Domain.COL), Expr.constant(-7));
    double[] r = {1, -0.0, Double.NaN};
    double[] tile = CpuBackend.float64().fused(true).run(new Schedule(Map.of("out", rows)),
        Map.of("r", r, "b", b), 3, n, 1).get("out");
    for (int i = 0; i < 3; i++) {
      for (int j = 0; j < n; j++) {
        double w = r[i] > 0 ? b[j] : -7;
        assertTrue(tile[i * n + j] == w || Double.isNaN(w) && Double.isNaN(tile[i * n + j]));
      }
    }
  }
}

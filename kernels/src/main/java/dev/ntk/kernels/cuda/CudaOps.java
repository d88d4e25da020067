package dev.ntk.kernels.cuda;

import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Quadrature;
import java.util.EnumMap;
import java.util.Map;

/**
 * The CUDA C form of each entry-wise operation of {@link Expr.Op}: the fourth lowering beside the
 * scalar, vector and TensorFlow ones (it could move into {@code Expr.Op} itself, as one more
 * column of that table). Templates use {@code %1$s}, {@code %2$s} and {@code %4$s} for the
 * operands and {@code %3$s} for the suffix of the C math function of the dtype ({@code f} in
 * float32, none in float64), so that one name serves NVRTC's device library and the host's {@code
 * libm}. Each form means what the {@code cpu} engine's {@link Math} call means: {@code pow} is the
 * library's {@code pow} (as {@link Math#pow}, not repeated products, whose roundings would differ),
 * and {@code sign} and {@code select} keep {@link Math#signum}'s zeros and NaN and a NaN condition
 * choosing the last operand.
 */
final class CudaOps {
  private static final Map<Expr.Op, String> SOURCE = new EnumMap<>(Expr.Op.class);

  /**
   * The functions the forms call, for the source's prelude (after {@code real} and {@code
   * NTK_DEVICE} are defined).
   */
  static final String FUNCTIONS = """

      /* Math.signum: -1 or 1, or the operand itself where it is a zero (of either sign) or NaN. */
      NTK_DEVICE real ntk_sign(real x) {
        return x > 0 ? (real) 1 : x < 0 ? (real) -1 : x;
      }
      """;

  static {
    SOURCE.put(Expr.Op.ADD, "(%1$s + %2$s)");
    SOURCE.put(Expr.Op.SUB, "(%1$s - %2$s)");
    SOURCE.put(Expr.Op.MUL, "(%1$s * %2$s)");
    SOURCE.put(Expr.Op.DIV, "(%1$s / %2$s)");
    SOURCE.put(Expr.Op.MAX, "fmax%3$s(%1$s, %2$s)");
    SOURCE.put(Expr.Op.MIN, "fmin%3$s(%1$s, %2$s)");
    SOURCE.put(Expr.Op.ATAN2, "atan2%3$s(%1$s, %2$s)");
    SOURCE.put(Expr.Op.SQRT, "sqrt%3$s(%1$s)");
    SOURCE.put(Expr.Op.EXP, "exp%3$s(%1$s)");
    SOURCE.put(Expr.Op.EXPM1, "expm1%3$s(%1$s)");
    SOURCE.put(Expr.Op.LOG, "log%3$s(%1$s)");
    SOURCE.put(Expr.Op.LOG1P, "log1p%3$s(%1$s)");
    SOURCE.put(Expr.Op.SIN, "sin%3$s(%1$s)");
    SOURCE.put(Expr.Op.COS, "cos%3$s(%1$s)");
    SOURCE.put(Expr.Op.ABS, "fabs%3$s(%1$s)");
    SOURCE.put(Expr.Op.ERF, "erf%3$s(%1$s)");
    SOURCE.put(Expr.Op.ERFC, "erfc%3$s(%1$s)");
    SOURCE.put(Expr.Op.TANH, "tanh%3$s(%1$s)");
    SOURCE.put(Expr.Op.ATAN, "atan%3$s(%1$s)");
    SOURCE.put(Expr.Op.POW, "pow%3$s(%1$s, %2$s)");
    // Math.signum: the operand itself where it is a zero (keeping its sign) or NaN.
    SOURCE.put(Expr.Op.SIGN, "ntk_sign(%1$s)");
    // A NaN condition compares false and selects the last operand; the other is never combined.
    SOURCE.put(Expr.Op.SELECT, "(%1$s > 0 ? %2$s : %4$s)");
  }

  private CudaOps() {}

  /**
   * The C expression of {@code op} on {@code operands} in float32 or float64; {@link Expr.Op#FMA}
   * is {@code fma(a, b, c)}, one rounding as on the {@code cpu} engine, and {@link Expr.Op#SELECT}
   * {@code a > 0 ? b : c}.
   *
   * @throws IllegalArgumentException for an operation with no CUDA form yet, naming it
   */
  static String expression(Expr.Op op, boolean float32, String... operands) {
    String suffix = float32 ? "f" : "";
    if (op == Expr.Op.FMA) {
      return "fma" + suffix + "(" + operands[0] + ", " + operands[1] + ", " + operands[2] + ")";
    }
    String template = SOURCE.get(op);
    if (template == null) {
      throw new IllegalArgumentException("the cuda engine has no CUDA C form of the operation " + op
          + " (add one to dev.ntk.kernels.cuda.CudaOps)");
    }
    return String.format(java.util.Locale.ROOT, template, operands[0], operands.length > 1 ? operands[1] : "",
        suffix, operands.length > 2 ? operands[2] : "");
  }

  /** Whether {@code op} has a CUDA C form (every arithmetic operation should). */
  static boolean supports(Expr.Op op) {
    return op == Expr.Op.FMA || op == Expr.Op.QUADRATURE || SOURCE.containsKey(op);
  }

  /**
   * The C statements of an entry-wise step {@code e} whose value is the local {@code v}, at
   * {@code indent}: one declaration for most operations; for a {@link Expr.Op#QUADRATURE} sum a loop
   * over its table (the table's columns as constant arrays local to the block, the body's steps as
   * locals, the terms added with {@code fma} in the table's order, as the {@code cpu} engine does).
   */
  static String statements(Expr e, boolean float32, String v, String indent, String... operands) {
    if (e.op() != Expr.Op.QUADRATURE) {
      return indent + "real " + v + " = " + expression(e.op(), float32, operands) + ";\n";
    }
    StringBuilder b = new StringBuilder(indent).append("real ").append(v).append(" = 0;\n");
    Quadrature q = e.quadrature();
    b.append(indent).append("{\n");
    String in = indent + "  ";
    Map<Expr, String> names = new java.util.IdentityHashMap<>();
    for (int p = 0; p < operands.length; p++) {
      names.put(q.parameters()[p], operands[p]);
    }
    for (int c = 0; c < q.columns().length; c++) {
      b.append(in).append("const real ").append(v).append("_t").append(c).append("[] = {");
      double[] column = q.column(c);
      for (int i = 0; i < column.length; i++) {
        b.append(i == 0 ? "" : ", ").append(Double.toHexString(column[i]));
      }
      b.append("};\n");
    }
    String i = v + "_i";
    b.append(in).append("for (int ").append(i).append(" = 0; ").append(i).append(" < ").append(q.points())
        .append("; ").append(i).append("++) {\n");
    String body = in + "  ";
    for (int c = 0; c < q.columns().length; c++) {
      String x = v + "_x" + c;
      b.append(body).append("real ").append(x).append(" = ").append(v).append("_t").append(c).append('[').append(i)
          .append("];\n");
      names.put(q.columns()[c], x);
    }
    java.util.function.Function<Expr, String> ref = x -> x.isConstant() ? literal(x.value()) : names.get(x);
    for (Expr s : q.steps((int) e.value())) {
      String x = v + "_s" + names.size();
      b.append(statements(s, float32, x, body, s.operands().stream().map(ref).toArray(String[]::new)));
      names.put(s, x);
    }
    Expr[] term = q.term((int) e.value());
    b.append(body).append(v).append(" = ").append(expression(Expr.Op.FMA, float32, ref.apply(term[0]),
        ref.apply(term[1]), v)).append(";\n");
    return b.append(in).append("}\n").append(indent).append("}\n").toString();
  }

  /** A constant as a C literal of the source's dtype. */
  static String literal(double v) {
    String d;
    if (Double.isNaN(v)) {
      d = "(0.0 / 0.0)";
    } else if (Double.isInfinite(v)) {
      d = v > 0 ? "(1.0 / 0.0)" : "(-1.0 / 0.0)";
    } else {
      d = Double.toHexString(v);
    }
    return "((real) " + d + ")";
  }
}

package dev.ntk.kernels.cuda;

import dev.ntk.kernels.engine.Expr;
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
    return op == Expr.Op.FMA || SOURCE.containsKey(op);
  }
}

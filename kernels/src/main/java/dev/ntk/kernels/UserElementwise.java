package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.engine.Expr;
import java.util.Map;
import java.util.Objects;
import java.util.function.DoubleUnaryOperator;

/**
 * {@code Elementwise} with a user's own activation, from Java (a model file cannot hold Java code):
 * a closed form {@code nngp(cov12, var1, var2)} written as an {@link Expr}, whose NTK factor is its
 * symbolic derivative in {@code cov12} ({@link Expr#derivative}; neural-tangents needs JAX's
 * autodiff for this) and whose variance map is the form at {@code cov12 = var1 = var2 = q}. Being
 * an expression, it runs on every backend, as the built-in rules do.
 *
 * <pre>{@code
 * // erf's arcsine kernel, by hand: (2/pi) asin(2k / sqrt((1 + 2 q1)(1 + 2 q2)))
 * Layer erf = Stax.elementwise((k, q1, q2) -> {
 *   Expr t = k.times(2).div(q1.times(2).plus(1).times(q2.times(2).plus(1)).sqrt());
 *   return t.atan2(Expr.constant(1).minus(t.times(t)).sqrt()).times(2 / Math.PI);
 * }, x -> SpecialFunctions.erf(x));
 * }</pre>
 */
public final class UserElementwise {
  private UserElementwise() {}

  /**
   * A nonlinearity's NNGP map for one pair of jointly Gaussian pre-activations {@code (u, v)}:
   * {@code E[f(u) f(v)]} as an expression of their covariance {@code cov12} (per pair) and
   * variances {@code var1} (per row input) and {@code var2} (per column input), built with {@link
   * Expr}'s methods from these three and constants only.
   */
  @FunctionalInterface
  public interface ClosedForm {
    Expr nngp(Expr cov12, Expr var1, Expr var2);
  }

  /**
   * Not registered (a user's form is Java code, which model files do not hold): written, a layer
   * shows its form as {@code {"Elementwise": {"nngp": "<formula>"}}}, which identifies it in tile
   * files but does not read back.
   */
  private static final LayerType CLOSED_FORM = LayerType.of("Elementwise",
      "a user closed form nngp(cov12, var1, var2) given in Java", a -> {
        throw new IllegalArgumentException("a user closed form is given in Java (Stax.elementwise), not in a model "
            + "file");
      });

  /** The placeholders a form is written over, replaced by each layer's kernel when its rule runs. */
  private static final Expr COV12 = Expr.input("cov12", Expr.Domain.TILE);
  private static final Expr VAR1 = Expr.input("var1", Expr.Domain.ROW);
  private static final Expr VAR2 = Expr.input("var2", Expr.Domain.COL);

  /** A user closed form without a finite network (kernels only; Monte Carlo needs {@link #closedForm(ClosedForm, DoubleUnaryOperator)}). */
  public static Layer closedForm(ClosedForm nngp) {
    return closedForm(nngp, null);
  }

  /**
   * A user closed form {@code nngp}, with {@code phi} the activation itself for the finite network
   * (null: none). A form that fails (throws, returns null, reads other inputs, or goes through an
   * operation without a derivative) is reported with the layer's path when a kernel is computed.
   */
  public static Layer closedForm(ClosedForm nngp, DoubleUnaryOperator phi) {
    Objects.requireNonNull(nngp, "nngp");
    return new ClosedFormLayer(nngp, phi);
  }

  /** {@code phi} applied to every entry of {@code x}, in its dtype. */
  static NDArray map(NDArray x, DoubleUnaryOperator phi) {
    double[] v = Tensors.toDoubles(x);
    for (int i = 0; i < v.length; i++) {
      v[i] = phi.applyAsDouble(v[i]);
    }
    return Tensors.create(x.getManager(), v, x.getShape(), x.getDataType());
  }

  /** The layer of a user closed form: its rules are the form and its derivative, substituted. */
  static final class ClosedFormLayer extends Elementwise.Nonlinearity {
    private final DoubleUnaryOperator phi;
    private final Expr nngp;
    private final Expr dot;
    private final String problem;

    ClosedFormLayer(ClosedForm form, DoubleUnaryOperator phi) {
      this(form, phi, build(form));
    }

    private ClosedFormLayer(ClosedForm form, DoubleUnaryOperator phi, Object[] built) {
      super(new LayerType.Arguments(CLOSED_FORM, Map.of("nngp", built[0] instanceof Expr e ? e.formula()
          : "invalid: " + built[2])));
      this.phi = phi;
      this.nngp = (Expr) built[0];
      this.dot = (Expr) built[1];
      this.problem = (String) built[2];
    }

    /** {@code {nngp, d nngp / d cov12, null}}, or {@code {null, null, what is wrong}}. */
    private static Object[] build(ClosedForm form) {
      Expr e;
      try {
        e = form.nngp(COV12, VAR1, VAR2);
      } catch (RuntimeException ex) {
        return new Object[] {null, null, "the closed form failed: " + ex};
      }
      if (e == null) {
        return new Object[] {null, null, "the closed form returned null, not an expression"};
      }
      String other = foreignInput(e);
      if (other != null) {
        return new Object[] {null, null, "the closed form reads the input \"" + other + "\": it may use only its "
            + "arguments cov12, var1, var2 and constants"};
      }
      try {
        return new Object[] {e, e.derivative(COV12), null};
      } catch (IllegalArgumentException ex) {
        return new Object[] {null, null, "the closed form's derivative in cov12: " + ex.getMessage()};
      }
    }

    /** The name of an input of {@code e} other than the three placeholders, or null. */
    private static String foreignInput(Expr e) {
      java.util.Set<Expr> seen = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
      java.util.ArrayDeque<Expr> stack = new java.util.ArrayDeque<>(java.util.List.of(e));
      while (!stack.isEmpty()) {
        Expr x = stack.pop();
        if (!seen.add(x)) {
          continue;
        }
        if (x.op() == Expr.Op.INPUT && x != COV12 && x != VAR1 && x != VAR2) {
          return x.name();
        }
        stack.addAll(x.operands());
      }
      return null;
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      if (problem != null) {
        throw new ModelException(path, problem);
      }
      return super.outputSpec(input, path);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      if (phi == null) {
        throw new IllegalStateException("this Elementwise closed form has no finite network: give the activation "
            + "as well, Stax.elementwise(nngp, phi)");
      }
      return map(x, phi);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Map<Expr, Expr> at = Map.of(COV12, k, VAR1, v1, VAR2, v2);
      return new Expr[] {nngp.substitute(at), dot.substitute(at)};
    }

    @Override
    Expr diagonal(Expr v) {
      return nngp.substitute(Map.of(COV12, v, VAR1, v, VAR2, v));
    }
  }
}

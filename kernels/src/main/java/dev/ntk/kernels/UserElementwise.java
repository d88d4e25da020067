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

  /**
   * A user closed form without a finite network: kernels only (Monte Carlo needs {@link
   * #closedForm(ClosedForm, DoubleUnaryOperator)}).
   */
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
      return Tensors.map(x, phi);
    }

    /**
     * Always fails: a closed form's finite network is {@code phi} alone, so the network's derivatives
     * (empirical and Monte Carlo NTKs, training) are not defined; use {@link #quadrature} with {@code phi'}.
     */
    @Override
    NDArray derivative(NDArray x) {
      throw new ModelException(name(), "the derivatives of a network with a user closed form need phi', which "
          + "Stax.elementwise(nngp, phi) does not take: give the function pair, Stax.elementwise(phi, dphi)");
    }

    /** Always fails, as {@link #derivative}: a second-order Taylor expansion needs {@code phi''}. */
    @Override
    NDArray secondDerivative(NDArray x) {
      throw new ModelException(name(), "a second-order Taylor expansion (Layer.jet) of a network with a user closed "
          + "form needs phi'', which Stax.elementwise(nngp, phi) does not take: give the functions, "
          + "Stax.elementwise(phi, dphi, d2phi)");
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Map<Expr, Expr> at = Map.of(COV12, k, VAR1, v1, VAR2, v2);
      return new Expr[] {nngp.substitute(at), dot.substitute(at)};
    }
  }
  /** The Gauss–Hermite degree of {@link #quadrature(DoubleUnaryOperator, DoubleUnaryOperator)}. */
  public static final int DEFAULT_DEGREE = 64;

  private static final LayerType QUADRATURE = LayerType.of("Elementwise",
      "a user function phi and its derivative given in Java, through Gauss-Hermite quadrature", a -> {
        throw new IllegalArgumentException("a user function is given in Java (Stax.elementwise), not in a model file");
      });

  /** {@link #quadrature(DoubleUnaryOperator, DoubleUnaryOperator, int)} of degree {@link #DEFAULT_DEGREE}. */
  public static Layer quadrature(DoubleUnaryOperator phi, DoubleUnaryOperator dphi) {
    return quadrature(phi, dphi, DEFAULT_DEGREE);
  }

  /**
   * A user activation {@code phi} with its derivative {@code dphi}, whose kernels are Gauss–Hermite
   * quadratures of degree {@code deg}: {@code nngp = E[phi(u) phi(v)]} and the NTK factor {@code
   * E[phi'(u) phi'(v)]} with {@code deg^2} nodes after the Cholesky change of variables {@code u =
   * sqrt(q1) x}, {@code v = (k / sqrt(q1)) x + sqrt(q2 - k^2 / q1) y} ({@code x, y} independent
   * standard normals), the variance {@code E[phi(u)^2]} with {@code deg} nodes. Exact for
   * polynomials of degree below {@code 2 deg} in each variable. Measured at variances 1.7 and 2.3
   * and covariance -1.1: erf (entire) is off by 2e-5 at degree 20, 3e-9 at 40 and 1e-14 at 64 (the
   * default; {@code UserElementwiseTest} holds erf and sin to 1e-9 there); tanh (poles at {@code
   * +-i pi/2}) by 1e-6 at 40 and 2e-8 at 64; kinks and jumps converge slowly (use a closed form).
   * {@code deg} is at most 150 (where the rule's nodes are still found to full accuracy). Both
   * functions must be pure: they are called from several threads.
   *
   * <p>Java functions have no vector or TensorFlow form, so each entry runs in scalar Java ({@link
   * Expr#call}): {@code 2 (deg^2 + deg)} calls of {@code phi} or {@code dphi} per entry and layer
   * on the {@code cpu} backend (interpreted, not fused), and on {@code tensorflow} the same on the
   * host, with a copy out of and back into TensorFlow per layer. At degree 64 that is 8,320 calls,
   * about a hundred times a closed form's cost (a 200 x 200 tanh layer: 29 to 49 s against 0.2 to
   * 0.7 s for erf's closed form, on a shared, loaded 2-core machine).
   */
  public static Layer quadrature(DoubleUnaryOperator phi, DoubleUnaryOperator dphi, int deg) {
    return quadrature(phi, dphi, null, deg);
  }

  /**
   * {@link #quadrature(DoubleUnaryOperator, DoubleUnaryOperator, DoubleUnaryOperator, int)} of degree {@link
   * #DEFAULT_DEGREE}.
   */
  public static Layer quadrature(DoubleUnaryOperator phi, DoubleUnaryOperator dphi, DoubleUnaryOperator d2phi) {
    return quadrature(phi, dphi, d2phi, DEFAULT_DEGREE);
  }

  /**
   * {@link #quadrature(DoubleUnaryOperator, DoubleUnaryOperator, int)} with the second derivative
   * {@code d2phi} as well (null: none), which only the finite network's second-order Taylor pass
   * ({@link Layer#jet}, {@code Taylor.taylorExpand} at degree 2) uses; without it that pass fails,
   * naming the layer. It must be pure too.
   */
  public static Layer quadrature(DoubleUnaryOperator phi, DoubleUnaryOperator dphi, DoubleUnaryOperator d2phi,
      int deg) {
    Objects.requireNonNull(phi, "phi");
    Objects.requireNonNull(dphi, "dphi");
    if (deg < 1 || deg > 150) {
      throw new IllegalArgumentException("the quadrature degree must be from 1 to 150, got " + deg);
    }
    return new QuadratureLayer(phi, dphi, d2phi, deg);
  }

  /**
   * The probabilists' Gauss–Hermite rule of {@code n} nodes, {@code {nodes, weights}}: {@code
   * sum_i w_i f(z_i)} approximates {@code E[f(z)]} for a standard normal {@code z}: {@link
   * ElementwiseQuadrature#gaussHermite}'s rule for the weight {@code e^(-x^2)}, its nodes scaled
   * by {@code sqrt 2} and its weights by {@code 1 / sqrt(pi)}.
   */
  static double[][] gaussHermite(int n) {
    double[][] rule = ElementwiseQuadrature.gaussHermite(n);
    double[] nodes = new double[n];
    double[] weights = new double[n];
    for (int i = 0; i < n; i++) {
      nodes[i] = Math.sqrt(2) * rule[0][i];
      weights[i] = rule[1][i] / Math.sqrt(Math.PI);
    }
    return new double[][] {nodes, weights};
  }

  /** A user function pair's layer: each rule is a {@link Expr#call} of a quadrature. */
  static final class QuadratureLayer extends Elementwise.Nonlinearity {
    private final DoubleUnaryOperator phi;
    private final DoubleUnaryOperator dphi;
    /** {@code phi''}, or null where the user gave none. */
    private final DoubleUnaryOperator d2phi;
    private final double[] nodes;
    private final double[] weights;
    private final Expr.Callback nngp;
    private final Expr.Callback dot;

    QuadratureLayer(DoubleUnaryOperator phi, DoubleUnaryOperator dphi, DoubleUnaryOperator d2phi, int deg) {
      super(new LayerType.Arguments(QUADRATURE, arguments(phi, dphi, d2phi, deg)));
      this.phi = phi;
      this.dphi = dphi;
      this.d2phi = d2phi;
      double[][] rule = gaussHermite(deg);
      this.nodes = rule[0];
      this.weights = rule[1];
      this.nngp = (k, q1, q2) -> expectation(phi, k, q1, q2);
      this.dot = (k, q1, q2) -> expectation(dphi, k, q1, q2);
    }

    /** How the layer is written: each Java function by its identity, {@code d2phi} only where given. */
    private static Map<String, Object> arguments(DoubleUnaryOperator phi, DoubleUnaryOperator dphi,
        DoubleUnaryOperator d2phi, int deg) {
      Map<String, Object> a = new java.util.LinkedHashMap<>();
      a.put("phi", "java function " + Integer.toHexString(System.identityHashCode(phi)));
      a.put("dphi", "java function " + Integer.toHexString(System.identityHashCode(dphi)));
      if (d2phi != null) {
        a.put("d2phi", "java function " + Integer.toHexString(System.identityHashCode(d2phi)));
      }
      a.put("deg", deg);
      return a;
    }

    /**
     * {@code E[f(u) f(v)]} for {@code (u, v)} of covariance {@code [[q1, k], [k, q2]]}, factored on
     * the larger variance: the same rule for {@code (q1, q2)} and {@code (q2, q1)}, so the kernel is
     * exactly symmetric (the {@code cpu} backend computes one triangle of a symmetric tile).
     */
    double expectation(DoubleUnaryOperator f, double k, double q1, double q2) {
      if (q1 < q2) {
        double t = q1;
        q1 = q2;
        q2 = t;
      }
      double su = Math.sqrt(Math.max(q1, 0));
      double slope = su > 0 ? k / su : 0;
      double rest = Math.sqrt(Math.max(q2 - slope * slope, 0));
      double sum = 0;
      for (int i = 0; i < nodes.length; i++) {
        double inner = 0;
        double mean = slope * nodes[i];
        for (int j = 0; j < nodes.length; j++) {
          inner += weights[j] * f.applyAsDouble(mean + rest * nodes[j]);
        }
        sum += weights[i] * f.applyAsDouble(su * nodes[i]) * inner;
      }
      return sum;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.map(x, phi);
    }

    /** {@code phi'(x)} entry-wise: the user's {@code dphi}. */
    @Override
    NDArray derivative(NDArray x) {
      return Tensors.map(x, dphi);
    }

    /** {@code phi''(x)} entry-wise: the user's {@code d2phi}; a {@link ModelException} where none was given. */
    @Override
    NDArray secondDerivative(NDArray x) {
      if (d2phi == null) {
        throw new ModelException(name(), "a second-order Taylor expansion (Layer.jet) of a network with a user "
            + "function pair needs phi'', which was not given: Stax.elementwise(phi, dphi, d2phi[, deg])");
      }
      return Tensors.map(x, d2phi);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      return new Expr[] {Expr.call(nngp, k, v1, v2), Expr.call(dot, k, v1, v2)};
    }
  }
}

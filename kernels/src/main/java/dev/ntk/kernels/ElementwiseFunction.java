package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.engine.Expr;
import java.util.Arrays;
import java.util.Locale;

/**
 * The named functions of {@code ElementwiseNumerical} and {@code Elementwise} ({@code "fn"} in a
 * model file), each written once as an {@link Expr} of its argument with its analytic derivative:
 * the same definitions give the kernel rules (run by both backends), the scalar values
 * ({@link #value}, a constant expression folded) and the finite network ({@link #apply}).
 *
 * <p>At exactly 0 the derivative follows {@code jax.grad} of neural-tangents' functions (which
 * matters only where a Gauss–Hermite node sits on 0, an odd degree): {@code relu'(0) = 0},
 * {@code elu'(0) = 1}, {@code selu'(0) = scale alpha}, {@code softsign'(0) = 1}; the second
 * derivative {@code jax.grad(jax.grad(f))} of the {@code jax.nn} functions: {@code relu''(0) = 0},
 * {@code elu''(0) = 1} and {@code selu''(0) = scale alpha} (JAX's {@code where(x > 0, ...)} takes
 * the {@code x <= 0} branch), {@code softsign''(0) = -2} (JAX's {@code abs'(0) = 1}, the right-hand
 * limit; the left-hand one is 2).
 */
public enum ElementwiseFunction {
  /** {@code tanh x}; derivative {@code 1 - tanh^2 x}. */
  TANH("tanh") {
    @Override
    boolean hasParity() {
      return true;
    }

    @Override
    Expr phi(Expr x) {
      return x.tanh();
    }

    @Override
    Expr derivative(Expr x) {
      return withDerivative(x)[1];
    }

    @Override
    Expr[] withDerivative(Expr x) {
      Expr t = x.tanh();
      return new Expr[] {t, Expr.constant(1).minus(t.times(t))};
    }

    @Override
    Expr secondDerivative(Expr x) {
      // -2 t (1 - t^2), t = tanh x
      Expr t = x.tanh();
      return t.times(-2).times(Expr.constant(1).minus(t.times(t)));
    }
  },
  /** The logistic function {@code 1 / (1 + e^-x)} ({@code jax.nn.sigmoid}). */
  SIGMOID("sigmoid") {
    @Override
    Expr phi(Expr x) {
      return logistic(x);
    }

    @Override
    Expr derivative(Expr x) {
      Expr s = logistic(x);
      return s.times(Expr.constant(1).minus(s));
    }

    @Override
    Expr secondDerivative(Expr x) {
      Expr s = logistic(x);
      return s.times(Expr.constant(1).minus(s)).times(Expr.constant(1).minus(s.times(2)));
    }
  },
  /** {@code log(1 + e^x)}, as {@code max(x, 0) + log1p(e^-|x|)} ({@code jax.nn.softplus}); derivative the logistic. */
  SOFTPLUS("softplus") {
    @Override
    Expr phi(Expr x) {
      return x.max(0).plus(x.abs().times(-1).exp().log1p());
    }

    @Override
    Expr derivative(Expr x) {
      return logistic(x);
    }

    @Override
    Expr secondDerivative(Expr x) {
      Expr s = logistic(x);
      return s.times(Expr.constant(1).minus(s));
    }
  },
  /** {@code x sigma(x)} ({@code jax.nn.swish}, also named {@code silu}). */
  SWISH("swish", "silu") {
    @Override
    Expr phi(Expr x) {
      return x.times(logistic(x));
    }

    @Override
    Expr derivative(Expr x) {
      Expr s = logistic(x);
      return s.times(x.times(Expr.constant(1).minus(s)).plus(1));
    }

    @Override
    Expr secondDerivative(Expr x) {
      // s (1 - s) (2 + x (1 - 2s))
      Expr s = logistic(x);
      return s.times(Expr.constant(1).minus(s)).times(x.times(Expr.constant(1).minus(s.times(2))).plus(2));
    }
  },
  /** {@code x} for {@code x > 0}, {@code e^x - 1} otherwise (alpha = 1, {@code jax.nn.elu}). */
  ELU("elu") {
    @Override
    Expr phi(Expr x) {
      return x.select(x, x.expm1());
    }

    @Override
    Expr derivative(Expr x) {
      return x.select(Expr.constant(1), x.exp());
    }

    @Override
    Expr secondDerivative(Expr x) {
      return x.select(Expr.constant(0), x.exp());
    }
  },
  /** {@code scale x} for {@code x > 0}, {@code scale alpha (e^x - 1)} otherwise ({@code jax.nn.selu}). */
  SELU("selu") {
    @Override
    Expr phi(Expr x) {
      return x.select(x.times(SELU_SCALE), x.expm1().times(SELU_SCALE * SELU_ALPHA));
    }

    @Override
    Expr derivative(Expr x) {
      return x.select(Expr.constant(SELU_SCALE), x.exp().times(SELU_SCALE * SELU_ALPHA));
    }

    @Override
    Expr secondDerivative(Expr x) {
      return x.select(Expr.constant(0), x.exp().times(SELU_SCALE * SELU_ALPHA));
    }
  },
  /** The exact GELU {@code x Phi(x)}, with {@code Phi(x) = erfc(-x / sqrt 2) / 2} (accurate in the left tail). */
  GELU("gelu") {
    @Override
    Expr phi(Expr x) {
      return x.times(normalCdf(x));
    }

    @Override
    Expr derivative(Expr x) {
      return x.times(x).times(-0.5).exp().times(x).times(1 / Math.sqrt(2 * Math.PI)).plus(normalCdf(x));
    }

    @Override
    Expr secondDerivative(Expr x) {
      // 2 phi(x) + x phi'(x) = phi(x) (2 - x^2)
      Expr x2 = x.times(x);
      return x2.times(-0.5).exp().times(Expr.constant(2).minus(x2)).times(1 / Math.sqrt(2 * Math.PI));
    }
  },
  /** {@code erf x}; derivative {@code 2/sqrt(pi) e^(-x^2)}. */
  ERF("erf") {
    @Override
    boolean hasParity() {
      return true;
    }

    @Override
    Expr phi(Expr x) {
      return x.erf();
    }

    @Override
    Expr derivative(Expr x) {
      return x.times(x).times(-1).exp().times(2 / Math.sqrt(Math.PI));
    }

    @Override
    Expr secondDerivative(Expr x) {
      return x.times(x).times(-1).exp().times(x).times(-4 / Math.sqrt(Math.PI));
    }
  },
  SIN("sin") {
    @Override
    boolean hasParity() {
      return true;
    }

    @Override
    Expr phi(Expr x) {
      return x.sin();
    }

    @Override
    Expr derivative(Expr x) {
      return x.cos();
    }

    @Override
    Expr secondDerivative(Expr x) {
      return x.sin().times(-1);
    }
  },
  COS("cos") {
    @Override
    boolean hasParity() {
      return true;
    }

    @Override
    Expr phi(Expr x) {
      return x.cos();
    }

    @Override
    Expr derivative(Expr x) {
      return x.sin().times(-1);
    }

    @Override
    Expr secondDerivative(Expr x) {
      return x.cos().times(-1);
    }
  },
  /** {@code max(x, 0)}; derivative 1 for {@code x > 0}, else 0 (0 at 0, as {@code jax.nn.relu}). */
  RELU("relu") {
    @Override
    Expr phi(Expr x) {
      return x.max(0);
    }

    @Override
    Expr derivative(Expr x) {
      return x.select(Expr.constant(1), Expr.constant(0));
    }

    @Override
    Expr secondDerivative(Expr x) {
      return Expr.constant(0);
    }
  },
  /** {@code x / (1 + |x|)}; derivative {@code 1 / (1 + |x|)^2}. */
  SOFTSIGN("softsign") {
    @Override
    boolean hasParity() {
      return true;
    }

    @Override
    Expr phi(Expr x) {
      return x.div(x.abs().plus(1));
    }

    @Override
    Expr derivative(Expr x) {
      Expr d = x.abs().plus(1);
      return Expr.constant(1).div(d.times(d));
    }

    @Override
    Expr secondDerivative(Expr x) {
      // -2 sign(x) / (1 + |x|)^3, with sign(0) = 1 as JAX's abs' (x >= 0 picks g): -2 at 0
      Expr d = x.abs().plus(1);
      Expr cube = d.times(d).times(d);
      return x.times(-1).select(Expr.constant(2).div(cube), Expr.constant(-2).div(cube));
    }
  };

  /** SELU's constants (Klambauer et al.; {@code jax.nn.selu}'s). */
  static final double SELU_ALPHA = 1.6732632423543772848170429916717;
  static final double SELU_SCALE = 1.0507009873554804934193349852946;

  private final String[] names;

  ElementwiseFunction(String... names) {
    this.names = names;
  }

  /** The function of an entry-wise expression. */
  abstract Expr phi(Expr x);

  /**
   * Whether {@code phi} is odd or even and {@code phi'} the other, at 0 too (tanh, erf, sin,
   * softsign odd, cos even): then {@code phi(u) phi(v)} and {@code phi'(u) phi'(v)} are unchanged
   * when {@code (u, v)} changes sign, and a symmetric rule's points pair up ({@code
   * ElementwiseNumerical}'s folded outer loop). Not relu, elu, selu (a kink or jump at 0), nor
   * sigmoid, softplus, swish, gelu (neither odd nor even).
   */
  boolean hasParity() {
    return false;
  }

  /** Its derivative, an entry-wise expression. */
  abstract Expr derivative(Expr x);

  /** Its second derivative, an entry-wise expression (at 0 as {@code jax.grad(jax.grad(f))}). */
  abstract Expr secondDerivative(Expr x);

  /** {@code {phi(x), phi'(x)}}, sharing what they have in common (one {@code tanh} for both). */
  Expr[] withDerivative(Expr x) {
    return new Expr[] {phi(x), derivative(x)};
  }

  /** The model-file name ({@code "fn"}). */
  public String jsonName() {
    return names[0];
  }

  /** {@code phi(x)}: the expression of a constant, folded. */
  public double value(double x) {
    return phi(Expr.constant(x)).value();
  }

  /** {@code phi'(x)}: the expression of a constant, folded. */
  public double derivativeValue(double x) {
    return derivative(Expr.constant(x)).value();
  }

  /** {@code phi''(x)}: the expression of a constant, folded. */
  public double secondDerivativeValue(double x) {
    return secondDerivative(Expr.constant(x)).value();
  }

  /** {@code phi} of each entry: the finite network's activation. */
  public NDArray apply(NDArray x) {
    return Tensors.map(x, this::value);
  }

  /** {@code phi'} of each entry. */
  public NDArray derivative(NDArray x) {
    return Tensors.map(x, this::derivativeValue);
  }

  /** {@code phi''} of each entry: the curvature of the finite network's activation ({@link Layer#jet}). */
  public NDArray secondDerivative(NDArray x) {
    return Tensors.map(x, this::secondDerivativeValue);
  }

  /** Every accepted name, in the order of the table. */
  public static String[] names() {
    return Arrays.stream(values()).flatMap(f -> Arrays.stream(f.names)).toArray(String[]::new);
  }

  /** The function of a name (compared without case); {@link IllegalArgumentException} listing the names if unknown. */
  public static ElementwiseFunction named(String name) {
    for (ElementwiseFunction f : values()) {
      for (String n : f.names) {
        if (n.equalsIgnoreCase(name)) {
          return f;
        }
      }
    }
    throw new IllegalArgumentException("unknown function \"" + name + "\" (expected one of: "
        + String.join(", ", names()) + ")");
  }

  private static Expr logistic(Expr x) {
    return Expr.constant(1).div(x.times(-1).exp().plus(1));
  }

  private static Expr normalCdf(Expr x) {
    return x.times(-1 / Math.sqrt(2)).erfc().times(0.5);
  }

  @Override
  public String toString() {
    return names[0].toLowerCase(Locale.ROOT);
  }
}

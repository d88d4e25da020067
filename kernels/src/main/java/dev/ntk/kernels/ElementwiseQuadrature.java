package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Quadrature;

/**
 * The nonlinearities of a named function ({@link ElementwiseFunction}) whose kernels are
 * integrals: {@link Numerical} ({@code ElementwiseNumerical}, neural-tangents' deg x deg
 * Gauss–Hermite rule, to reproduce its numbers) and {@link Exact} ({@code Elementwise}, the exact
 * integral: a closed form where one is known, else a quadrature accurate to about 1e-10).
 *
 * <p>Both rules are entry-wise expressions like every other rule, their sums {@link Quadrature}
 * steps: the body is written once and each backend runs it as a loop over the rule's nodes and
 * weights (constants of the plan), so a plan's size does not grow with the number of points; a
 * quadrature of {@code m} points still costs {@code m} evaluations of the function per kernel
 * entry and layer, shared by the NNGP and the NTK factor.
 *
 * <pre>{@code
 * Layer model = Stax.serial(Stax.dense(512), Stax.elementwiseNumerical("tanh", 25), Stax.dense(1));
 * }</pre>
 */
public final class ElementwiseQuadrature {
  private ElementwiseQuadrature() {}

  public static final LayerType ELEMENTWISE_NUMERICAL = LayerType.of("ElementwiseNumerical",
      "fn(x) for a named fn, its kernel by neural-tangents' deg x deg Gauss-Hermite rule", Numerical::new,
      Argument.requiredChoice("fn", ElementwiseFunction.names()), Argument.positiveInteger("deg", 25));
  public static final LayerType ELEMENTWISE = LayerType.of("Elementwise",
      "fn(x) for a named fn, its exact kernel (closed form, or quadrature to about 1e-10)", Exact::new,
      Argument.requiredChoice("fn", ElementwiseFunction.names()));

  /** {@code fn(x)} with neural-tangents' Gauss–Hermite rule of {@code deg^2} points. */
  public static Layer elementwiseNumerical(String fn, int deg) {
    return ELEMENTWISE_NUMERICAL.create(fn, deg);
  }

  /** {@code fn(x)} with its exact kernel. */
  public static Layer elementwise(String fn) {
    return ELEMENTWISE.create(fn);
  }

  /**
   * The Gauss–Hermite rule of {@code n} points, weight {@code e^(-x^2)}: {@code {nodes, weights}},
   * nodes ascending, symmetric, the middle one exactly 0 for odd {@code n} (as {@code
   * scipy.special.roots_hermite}). Newton's method on the orthonormal Hermite functions from
   * the usual asymptotic first guesses, each root polished to convergence.
   */
  static double[][] gaussHermite(int n) {
    double[] x = new double[n];
    double[] w = new double[n];
    double z = 0;
    double quarterPi = Math.pow(Math.PI, -0.25);
    for (int i = 0; i < (n + 1) / 2; i++) {
      // Guesses for the largest roots first, each from the ones before it.
      if (i == 0) {
        z = Math.sqrt(2.0 * n + 1) - 1.85575 * Math.pow(2.0 * n + 1, -1.0 / 6);
      } else if (i == 1) {
        z -= 1.14 * Math.pow(n, 0.426) / z;
      } else if (i == 2) {
        z = 1.86 * z - 0.86 * x[0];
      } else if (i == 3) {
        z = 1.91 * z - 0.91 * x[1];
      } else {
        z = 2.0 * z - x[i - 2];
      }
      double derivative = 0;
      for (int it = 0; it < 100; it++) {
        double p1 = quarterPi;
        double p2 = 0;
        for (int j = 1; j <= n; j++) {
          double p3 = p2;
          p2 = p1;
          p1 = z * Math.sqrt(2.0 / j) * p2 - Math.sqrt((j - 1.0) / j) * p3;
        }
        derivative = Math.sqrt(2.0 * n) * p2;
        double step = p1 / derivative;
        z -= step;
        if (Math.abs(step) <= 1e-15 * Math.max(1, Math.abs(z)) && it > 2) {
          break;
        }
      }
      x[i] = z;
      w[i] = 2 / (derivative * derivative);
    }
    double[] nodes = new double[n];
    double[] weights = new double[n];
    for (int i = 0; i < (n + 1) / 2; i++) {
      nodes[i] = -x[i];
      nodes[n - 1 - i] = x[i];
      weights[i] = w[i];
      weights[n - 1 - i] = w[i];
    }
    if (n % 2 == 1) {
      nodes[n / 2] = 0;
    }
    return new double[][] {nodes, weights};
  }

  /**
   * The Gauss–Legendre rule of {@code n} points on {@code [-1, 1]}: {@code {nodes, weights}},
   * by Newton's method on the Legendre polynomials from Chebyshev guesses.
   */
  static double[][] gaussLegendre(int n) {
    double[] nodes = new double[n];
    double[] weights = new double[n];
    for (int i = 0; i < (n + 1) / 2; i++) {
      double z = Math.cos(Math.PI * (i + 0.75) / (n + 0.5));
      double derivative = 0;
      for (int it = 0; it < 100; it++) {
        double p1 = 1;
        double p2 = 0;
        for (int j = 1; j <= n; j++) {
          double p3 = p2;
          p2 = p1;
          p1 = ((2.0 * j - 1) * z * p2 - (j - 1.0) * p3) / j;
        }
        derivative = n * (z * p1 - p2) / (z * z - 1);
        double step = p1 / derivative;
        z -= step;
        if (Math.abs(step) <= 1e-16 && it > 2) {
          break;
        }
      }
      nodes[i] = -z;
      nodes[n - 1 - i] = z;
      weights[i] = 2 / ((1 - z * z) * derivative * derivative);
      weights[n - 1 - i] = weights[i];
    }
    if (n % 2 == 1) {
      nodes[n / 2] = 0;
    }
    return new double[][] {nodes, weights};
  }

  /** Base of the two: the named function, its finite network and its derivative. */
  abstract static class Named extends Elementwise.Nonlinearity {
    final ElementwiseFunction fn;

    Named(LayerType.Arguments args) {
      super(args);
      this.fn = ElementwiseFunction.named(args.choice("fn"));
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return fn.apply(x);
    }

    /** {@code phi'(x)} entry-wise (at 0 as {@code jax.grad}: see {@link ElementwiseFunction}). */
    public NDArray derivative(NDArray x) {
      return fn.derivative(x);
    }

    /** {@code phi''(x)} entry-wise (at 0 as {@code jax.grad(jax.grad(f))}: see {@link ElementwiseFunction}). */
    @Override
    NDArray secondDerivative(NDArray x) {
      return fn.secondDerivative(x);
    }
  }

  /**
   * neural-tangents' {@code ElementwiseNumerical(fn, deg)}, in its exact arrangement, so that a
   * model ported from it gives its numbers (including its error, 1e-3 and more for kinked
   * functions at deg 25, and its asymmetry: {@code kernel(x, x)} is not exactly symmetric). With
   * the Gauss–Hermite nodes {@code x_i} and weights {@code w_i} of degree {@code deg}:
   * <pre>
   * u_i  = sqrt(max(2 q11, 0)) x_i
   * v_ij = k / sqrt(max(q11 / 2, 1e-30)) x_i + sqrt(max(2 (q22 - k^2 / q11), 0)) x_j
   * E[f(u) f(v)] = sum_ij w_i w_j f(u_i) f(v_ij) / pi
   * </pre>
   * (the Cholesky factor taken on {@code q11}), the same with {@code f'} for the NTK factor, and
   * the variance map by the one-dimensional rule {@code sum_i w_i f(sqrt(2 q) x_i)^2 / sqrt(pi)}.
   * Two nested loops ({@link Quadrature}); each entry costs {@code deg^2} evaluations of {@code
   * f(v_ij)}, shared with {@code f'} for the NTK factor, and {@code deg} of {@code f(u_i)}; about
   * half of each where {@code f} is odd or even ({@link #outer}: the same sum, folded). For tanh
   * the {@code cpu} backend's fused loops factor {@code tanh(v_ij)} as {@code 1 - 2 / (1 + e^(2 c x_i)
   * e^(2 s x_j))} where the exponentials are normal numbers, {@code 2 deg} of them per entry (the
   * generated source's {@code FusedSource.Factorable}).
   */
  public static final class Numerical extends Named {
    private final double[] nodes;
    private final double[] weights;

    Numerical(LayerType.Arguments args) {
      super(args);
      double[][] rule = gaussHermite(args.integer("deg"));
      this.nodes = rule[0];
      this.weights = rule[1];
    }

    /**
     * The outer loop's nodes {@code x_i} and weights {@code w_i / pi}. Where {@code f} has a
     * parity ({@link ElementwiseFunction#hasParity}), the point {@code (x_i, x_j)} and its mirror
     * {@code (-x_i, -x_j)} (also a point of the rule, with the same weight: the nodes are
     * symmetric) give the same {@code f(u_i) f(v_ij)}, since {@code u} and {@code v} are linear
     * in the nodes: the outer loop then runs over the nodes {@code x_i <= 0} only, each with its
     * weight doubled except the middle one ({@code x = 0}, odd {@code deg}), which is its own
     * mirror. The same sum, in another order, at about half the cost ({@code (deg + 1) / 2}
     * rows of {@code deg} points instead of {@code deg}).
     */
    private double[][] outer() {
      int rows = fn.hasParity() ? (nodes.length + 1) / 2 : nodes.length;
      double[] x = java.util.Arrays.copyOf(nodes, rows);
      double[] w = new double[rows];
      for (int i = 0; i < rows; i++) {
        boolean mirrored = fn.hasParity() && nodes.length - 1 - i != i;
        w[i] = (mirrored ? 2 : 1) * weights[i] / Math.PI;
      }
      return new double[][] {x, w};
    }

    @Override
    boolean symmetric() {
      return false; // the Cholesky factor is taken on q11
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr scale = v1.times(2).max(0).sqrt();
      Expr slope = k.div(v1.times(0.5).max(1e-30).sqrt());
      // k^2 / q11 floored as the slope is: a zero variance maps to f(0)^2, not 0/0.
      Expr rest = v2.minus(k.times(k).div(v1.max(1e-30))).times(2).max(0).sqrt();
      // Two loops, over x_i outside and x_j inside: the plan holds the body once, not deg^2 times.
      // The NNGP and the NTK factor at the same points are sums of one loop: f and f' of each point
      // share their work (tanh's derivative is 1 - tanh^2 of the same value).
      double[][] inner = {nodes, weights};
      return Quadrature.sums(outer(), new Expr[] {scale, slope, rest}, (x, p) -> {
        Expr[] row = fn.withDerivative(p[0].times(x[0]));
        // v_ij = fma(s, x_j, c x_i): c x_i is an operand of the inner loop, computed once per outer point,
        // so that each of the deg^2 points costs one fused multiply-add before f.
        Expr[] sums = Quadrature.sums(inner, new Expr[] {p[1].times(x[0]), p[2]}, (y, q) -> {
          Expr[] f = fn.withDerivative(q[1].times(y[0]).plus(q[0]));
          return new Expr[] {f[0].times(y[1]), f[1].times(y[1])};
        });
        return new Expr[] {row[0].times(x[1]).times(sums[0]), row[1].times(x[1]).times(sums[1])};
      });
    }
  }

  /**
   * The exact kernel of a named function ({@code Elementwise}). Where a closed form is known it is
   * the closed-form layer's own rule: {@code erf} ({@code Erf}), {@code relu} ({@code Relu}),
   * {@code sin}, {@code cos}, {@code gelu}. Otherwise, with {@code (u, v) = (sqrt(q11) z1, c z1 +
   * s z2)}, {@code c = k / sqrt(q11)}, {@code s = sqrt(q22 - c^2)} and {@code z1, z2} independent
   * standard normals (the Cholesky factor on {@code q11}), truncated to {@code [-9, 9]} (the mass
   * beyond is {@code 2e-19}):
   * <ul>
   *   <li>{@code elu}, {@code selu}: the inner expectation over {@code z2} in closed form
   *       ({@code E[(m + s z)^+] = m Phi(m/s) + s phi(m/s)}, {@code E[(e^(m + s z) - 1) 1(m + s z
   *       < 0)] = e^(m + s^2/2) Phi(-m/s - s) - Phi(-m/s)}, and the same for the derivative's
   *       jump), the outer integral over {@code z1} by Gauss–Legendre rules of {@value #OUTER}
   *       points on {@code [-9, 0]} and {@code [0, 9]}, split at the kink of {@code f(u)};
   *   <li>{@code tanh}, {@code sigmoid}, {@code softplus}, {@code swish}, {@code softsign}: the
   *       product of Gauss–Legendre rules of {@value #OUTER} points on each side of {@code z1 = 0}
   *       and {@value #INNER} points on each side of {@code z2 = -m/s} (where {@code v = 0}: the
   *       kink of softsign, and the real part of the poles of tanh, sigmoid and their relatives,
   *       which limit a rule's convergence least at the ends of its interval), {@code 4 * OUTER *
   *       INNER} points per entry.
   * </ul>
   * Measured against an adaptive Gauss–Kronrod integration ({@code ElementwiseQuadratureTest}):
   * relative error below 1e-10 for variances up to 4 (tanh and its relatives lose accuracy
   * beyond, where their poles close in on the real axis in the standard normal coordinates).
   */
  public static final class Exact extends Named {
    /** Gauss–Legendre points per half of the outer and inner integrals. */
    static final int OUTER = 12;
    static final int INNER = 16;
    /** The pieces of each half of the outer integral. */
    static final double[] OUTER_PIECES = {0, 1, 3, 8};
    /** The truncation of each standard normal coordinate. */
    static final double RANGE = 8;
    /** The fixed pieces of the inner integral: short enough for {@link #INNER} points to resolve the density. */
    static final double[] PIECES = {-RANGE, -RANGE / 2, 0, RANGE / 2, RANGE};

    private final Elementwise.Nonlinearity closed;

    Exact(LayerType.Arguments args) {
      super(args);
      LayerType closedForm = switch (fn) {
        case ERF -> Elementwise.ERF;
        case RELU -> Elementwise.RELU;
        case SIN -> Elementwise.SIN;
        case COS -> Elementwise.COS;
        case GELU -> Elementwise.GELU;
        default -> null;
      };
      this.closed = closedForm == null ? null : (Elementwise.Nonlinearity) closedForm.create();
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      if (closed != null) {
        return closed.pair(k, v1, v2);
      }
      Expr root = v1.max(1e-30).sqrt();
      Expr slope = k.div(root);
      // A floor on s keeps m/s finite or infinite, never 0/0, on the diagonal (s = 0).
      Expr rest = v2.minus(slope.times(slope)).max(1e-300).sqrt();
      if (fn == ElementwiseFunction.ELU || fn == ElementwiseFunction.SELU) {
        return outer(root, slope, rest);
      }
      return product(root, slope, rest);
    }

    /**
     * The outer rule for the standard normal density: {@code n} Gauss–Legendre points on each of
     * the pieces {@link #OUTER_PIECES} and their mirror images, the density folded into the
     * weights: {@code {nodes, weights}}. The pieces grow away from 0, where {@code f(u)} has its
     * kink or (tanh and its relatives) its nearest complex poles, at {@code +-i pi / (2 sqrt(q11))}.
     */
    static double[][] outerRule(int n) {
      double[][] gl = gaussLegendre(n);
      int pieces = OUTER_PIECES.length - 1;
      double[] x = new double[2 * pieces * n];
      double[] w = new double[2 * pieces * n];
      int at = 0;
      for (int p = 0; p < pieces; p++) {
        double half = (OUTER_PIECES[p + 1] - OUTER_PIECES[p]) / 2;
        for (int i = 0; i < n; i++) {
          double z = OUTER_PIECES[p] + half * (1 + gl[0][i]);
          double weight = half * gl[1][i] * Math.exp(-z * z / 2) / Math.sqrt(2 * Math.PI);
          x[at] = -z;
          w[at++] = weight;
          x[at] = z;
          w[at++] = weight;
        }
      }
      return new double[][] {x, w};
    }

    /**
     * {@code E[f(u) f(v)]} and {@code E[f'(u) f'(v)]} of elu or selu: the outer rule as a loop, the
     * inner expectation in closed form.
     */
    private Expr[] outer(Expr root, Expr slope, Expr rest) {
      double[][] rule = outerRule(OUTER);
      double scale = fn == ElementwiseFunction.SELU ? ElementwiseFunction.SELU_SCALE : 1;
      double alpha = fn == ElementwiseFunction.SELU ? ElementwiseFunction.SELU_ALPHA : 1;
      return Quadrature.sums(rule, new Expr[] {root, slope, rest}, (x, p) -> {
        Expr r = p[2];
        Expr m = p[1].times(x[0]);
        Expr t = m.div(r);
        Expr halfVariance = r.times(r).times(0.5);
        Expr above = normalCdf(t);
        Expr below = normalCdf(t.plus(r).times(-1)).times(m.plus(halfVariance).exp());
        // E[g(m + s z)] over z: the positive part and the exponential part.
        Expr inner = m.times(above).plus(r.times(normalDensity(t))).plus(below.minus(normalCdf(t.times(-1)))
            .times(alpha)).times(scale);
        Expr innerDot = above.plus(below.times(alpha)).times(scale);
        Expr u = p[0].times(x[0]);
        return new Expr[] {fn.phi(u).times(x[1]).times(inner), fn.derivative(u).times(x[1]).times(innerDot)};
      });
    }

    /**
     * {@code E[f(u) f(v)]} and {@code E[f'(u) f'(v)]} by the product rule, as two loops: the inner
     * integral over the pieces {@link #PIECES} of {@code [-RANGE, RANGE]}, each split where {@code v
     * = 0} (one part is empty where that is outside it), is one table of its pieces, sides, nodes
     * and weights.
     */
    private Expr[] product(Expr root, Expr slope, Expr rest) {
      double[][] outerRule = outerRule(OUTER);
      double[] weights = new double[outerRule[1].length];
      for (int i = 0; i < weights.length; i++) {
        weights[i] = outerRule[1][i] / Math.sqrt(2 * Math.PI);
      }
      double[][] gl = gaussLegendre(INNER);
      int points = (PIECES.length - 1) * 2 * INNER;
      double[][] inner = new double[5][points]; // from, to, side (0 or 1), node, weight
      int at = 0;
      for (int piece = 0; piece + 1 < PIECES.length; piece++) {
        for (int side = 0; side < 2; side++) {
          for (int j = 0; j < INNER; j++, at++) {
            inner[0][at] = PIECES[piece];
            inner[1][at] = PIECES[piece + 1];
            inner[2][at] = side;
            inner[3][at] = gl[0][j];
            inner[4][at] = gl[1][j];
          }
        }
      }
      return Quadrature.sums(new double[][] {outerRule[0], weights}, new Expr[] {root, slope, rest}, (x, p) -> {
        Expr[] sums = Quadrature.sums(inner, new Expr[] {p[1].times(x[0]), p[2]}, (y, q) -> {
          Expr m = q[0];
          Expr r = q[1];
          Expr kink = m.div(r).times(-1);
          Expr split = kink.max(y[0]).min(y[1]);
          // [a, split] and [split, b]: centre and half-width of each.
          Expr half = y[2].select(y[1].minus(split), split.minus(y[0])).times(0.5);
          Expr centre = y[2].select(split.plus(half), split.minus(half));
          Expr z = half.times(y[3]).plus(centre);
          Expr density = z.times(z).times(-0.5).exp().times(y[4]);
          Expr[] g = fn.withDerivative(r.times(z).plus(m));
          return new Expr[] {g[0].times(density).times(half), g[1].times(density).times(half)};
        });
        Expr[] g = fn.withDerivative(p[0].times(x[0]));
        return new Expr[] {g[0].times(x[1]).times(sums[0]), g[1].times(x[1]).times(sums[1])};
      });
    }

    private static Expr normalCdf(Expr x) {
      return x.times(-1 / Math.sqrt(2)).erfc().times(0.5);
    }

    private static Expr normalDensity(Expr x) {
      return x.times(x).times(-0.5).exp().times(1 / Math.sqrt(2 * Math.PI));
    }
  }
}

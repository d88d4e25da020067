package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;

/**
 * Elementwise nonlinearities and their closed-form rules: the ReLU family ({@link ABRelu}, which
 * covers {@code Relu}, {@code LeakyRelu} and {@code Abs}) and {@link Erf}.
 *
 * <p>A nonlinearity maps a Gaussian pre-activation {@code (u, v)} with covariance {@code [[k11,
 * k], [k, k22]]} to {@code nngp' = E[f(u) f(v)]} and {@code ntk' = ntk * E[f'(u) f'(v)]}; its
 * input must therefore be Gaussian, i.e. follow an affine layer. Each rule is written once as
 * entry-wise expressions ({@link Expr}), which both backends run.
 */
public final class Elementwise {
  private Elementwise() {}

  public static final LayerType RELU = LayerType.of("Relu", "max(x, 0)", a -> new ABRelu(a, 0, 1));
  public static final LayerType LEAKY_RELU = LayerType.of("LeakyRelu", "x for x > 0, alpha x otherwise",
      a -> new ABRelu(a, a.number("alpha"), 1), Argument.number("alpha", 0.01));
  public static final LayerType ABS = LayerType.of("Abs", "|x|", a -> new ABRelu(a, -1, 1));
  public static final LayerType AB_RELU = LayerType.of("ABRelu", "a x for x < 0, b x for x > 0",
      a -> new ABRelu(a, a.number("a"), a.number("b")),
      Argument.requiredNumber("a"), Argument.requiredNumber("b"));
  public static final LayerType ERF = LayerType.of("Erf", "a * erf(b * x) + c", Erf::new,
      Argument.number("a", 1.0), Argument.number("b", 1.0), Argument.number("c", 0.0));

  public static Layer relu() {
    return RELU.create();
  }

  /** {@code x} for {@code x > 0}, {@code alpha x} otherwise. */
  public static Layer leakyRelu(double alpha) {
    return LEAKY_RELU.create(alpha);
  }

  /** {@code |x|}. */
  public static Layer abs() {
    return ABS.create();
  }

  /** {@code a x} for {@code x < 0}, {@code b x} for {@code x > 0}. */
  public static Layer abRelu(double a, double b) {
    return AB_RELU.create(a, b);
  }

  /** {@code erf(x)}. */
  public static Layer erf() {
    return ERF.create();
  }

  /** {@code a * erf(b * x) + c}. */
  public static Layer erf(double a, double b, double c) {
    return ERF.create(a, b, c);
  }

  /**
   * Base of the nonlinearities: checks that the input is Gaussian, and applies a rule given for
   * one pair of jointly Gaussian values ({@link #pair}) to every part of the kernel. On per-pixel
   * kernels each pixel is such a pair; on pixel-pair kernels the pair {@code (p, q)} has the
   * variances of pixel {@code p} of the row input and pixel {@code q} of the column input, and
   * each input's own pixel-pair covariance maps by the same rule.
   */
  abstract static class Nonlinearity extends SingleInputLayer {
    Nonlinearity(LayerType.Arguments args) {
      super(args);
    }

    /**
     * The rule for one pair with covariance {@code k} and variances {@code v1}, {@code v2}:
     * {@code {E[f(u) f(v)], E[f'(u) f'(v)]}}.
     */
    abstract Expr[] pair(Expr k, Expr v1, Expr v2);

    /** {@code E[f(u)^2]} for a variance {@code v}: the pair rule where both values coincide. */
    abstract Expr diagonal(Expr v);

    @Override
    protected final KernelExpr rule(KernelExpr k, RuleContext context) {
      if (!k.isFull()) {
        Expr[] p = pair(k.nngp(), k.var1(), k.var2());
        return k.with(p[0], k.ntk().times(p[1]), this::diagonal);
      }
      Expr[] p = pair(k.nngp(), k.var1().diagonal().spreadRow(), k.var2().diagonal().spreadCol());
      return new KernelExpr(p[0], k.ntk().times(p[1]), self(k.var1()), self(k.var2()));
    }

    /** An input's own pixel-pair covariance {@code s} mapped by the pair rule. */
    private Expr self(Expr s) {
      Expr v = s.diagonal();
      return pair(s, v.spreadRow(), v.spreadCol())[0];
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      if (!input.gaussian()) {
        throw new ModelException(path, "the input of " + name() + " is not Gaussian: a "
            + "nonlinearity must follow an affine layer such as Dense (not the raw inputs or "
            + "another nonlinearity)");
      }
      return input.withGaussian(false);
    }
  }

  /**
   * {@code f(x) = a x} for {@code x < 0} and {@code b x} for {@code x > 0}.
   *
   * <p>With {@code theta} the angle between the inputs, computed as {@code atan2(sqrt(k11 k22 -
   * k^2), k)} (accurate near the diagonal, unlike {@code acos}): {@code nngp' = (a - b)^2 / (2 pi)
   * (sqrt(k11 k22 - k^2) - theta k) + (a^2 + b^2) / 2 k} and {@code E[f' f'] = (a^2 + b^2) / 2 -
   * (a - b)^2 theta / (2 pi)} (Cho and Saul's arc-cosine kernels).
   */
  public static final class ABRelu extends Nonlinearity {
    private final double a;
    private final double b;

    ABRelu(LayerType.Arguments args, double a, double b) {
      super(args);
      this.a = a;
      this.b = b;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      NDArray pos = Tensors.max(x, 0.0);
      NDArray neg = x.sub(pos);
      return Tensors.mul(pos, b).add(Tensors.mul(neg, a));
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      double mean = (a * a + b * b) / 2;
      double factor = (a - b) * (a - b) / (2 * Math.PI);
      Expr sine = v1.times(v2).minus(k.times(k)).max(0).sqrt();
      Expr angle = sine.atan2(k);
      Expr dot = angle.times(-factor).plus(mean);
      return new Expr[] {sine.times(factor).plus(dot.times(k)), dot};
    }

    @Override
    Expr diagonal(Expr v) {
      return v.times((a * a + b * b) / 2);
    }
  }

  /**
   * {@code f(x) = a erf(b x) + c}. With {@code s_i = 1 + 2 b^2 k_ii}: {@code nngp' = a^2 (2/pi)
   * asin(2 b^2 k / sqrt(s_1 s_2)) + c^2} and {@code E[f' f'] = a^2 b^2 (4/pi) / sqrt(s_1 s_2 - 4
   * b^4 k^2)} (Williams' arcsine kernel).
   */
  public static final class Erf extends Nonlinearity {
    private final double a;
    private final double b;
    private final double c;

    Erf(LayerType.Arguments args) {
      super(args);
      this.a = args.number("a");
      this.b = args.number("b");
      this.c = args.number("c");
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.add(Tensors.mul(Tensors.mul(x, b).erf(), a), c);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      double b2 = b * b;
      double scale = a * a * 2 / Math.PI;
      Expr s1 = v1.times(2 * b2).plus(1);
      Expr s2 = v2.times(2 * b2).plus(1);
      Expr twoK = k.times(2 * b2);
      // asin(2k / sqrt(s1 s2)) written as atan2(2k, sqrt(s1 s2 - 4k^2)), stable at |rho| -> 1.
      Expr root = s1.times(s2).minus(twoK.times(twoK)).max(0).sqrt();
      Expr nngp = twoK.atan2(root).times(scale).plus(c * c);
      return new Expr[] {nngp, Expr.constant(a * a * b2 * 4 / Math.PI).div(root)};
    }

    @Override
    Expr diagonal(Expr v) {
      // On the diagonal, asin(t / (1 + t)) = atan2(t, sqrt(1 + 2t)) with t = 2 b^2 k11.
      double b2 = b * b;
      Expr t = v.times(2 * b2);
      return t.atan2(t.times(2).plus(1).sqrt()).times(a * a * 2 / Math.PI).plus(c * c);
    }
  }
}

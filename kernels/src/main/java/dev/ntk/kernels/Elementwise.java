package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;

/**
 * Elementwise nonlinearities and their closed-form rules: the ReLU family ({@link ABRelu}, which
 * covers {@code Relu}, {@code LeakyRelu} and {@code Abs}), {@link Erf}, {@link Gelu}, {@link Sin}
 * (and {@code Cos}), {@link Rbf}, {@link Exp}, {@link Sign}, {@link Gaussian}, {@link
 * RectifiedMonomial}, {@link Monomial}, {@link Polynomial}, {@code Sigmoid_like} (an {@link Erf}),
 * {@link Gabor}, {@link Hermite} and {@link ExpNormalized}, with neural-tangents' names, arguments,
 * defaults and formulas.
 *
 * <p>A nonlinearity maps a Gaussian pre-activation {@code (u, v)} with covariance {@code [[k11,
 * k], [k, k22]]} to {@code nngp' = E[f(u) f(v)]} and {@code ntk' = ntk * E[f'(u) f'(v)]}; its
 * input must therefore be Gaussian, i.e. follow an affine layer. Each rule is written once as
 * entry-wise expressions ({@link Expr}), which both backends run.
 */
public final class Elementwise {
  private Elementwise() {}

  /**
   * The width of {@code Sigmoid_like}'s error function, chosen by neural-tangents to minimize the
   * squared difference from the logistic sigmoid on [-5, 5].
   */
  static final double SIGMOID_LIKE_WIDTH = 2.4020563531719796;

  public static final LayerType RELU = LayerType.of("Relu", "max(x, 0)", a -> new ABRelu(a, 0, 1),
      Argument.addedBool("do_stabilize", false));
  public static final LayerType LEAKY_RELU = LayerType.of("LeakyRelu", "x for x > 0, alpha x otherwise",
      a -> new ABRelu(a, a.number("alpha"), 1), Argument.number("alpha", 0.01),
      Argument.addedBool("do_stabilize", false));
  public static final LayerType ABS = LayerType.of("Abs", "|x|", a -> new ABRelu(a, -1, 1),
      Argument.addedBool("do_stabilize", false));
  public static final LayerType AB_RELU = LayerType.of("ABRelu", "a x for x < 0, b x for x > 0",
      a -> new ABRelu(a, a.number("a"), a.number("b")),
      Argument.requiredNumber("a"), Argument.requiredNumber("b"), Argument.addedBool("do_stabilize", false));
  public static final LayerType ERF = LayerType.of("Erf", "a * erf(b * x) + c",
      a -> new Erf(a, a.number("a"), a.number("b"), a.number("c")),
      Argument.number("a", 1.0), Argument.number("b", 1.0), Argument.number("c", 0.0));

  public static final LayerType GELU = LayerType.of("Gelu", "x Phi(x) (the kernel is always exact GELU's)",
      Gelu::new, Argument.bool("approximate", false));
  public static final LayerType SIN = LayerType.of("Sin", "a * sin(b * x + c)", a -> new Sin(a, 0),
      Argument.number("a", 1.0), Argument.number("b", 1.0), Argument.number("c", 0.0));
  public static final LayerType COS = LayerType.of("Cos", "a * cos(b * x + c) = Sin(a, b, c + pi/2)",
      a -> new Sin(a, Math.PI / 2), Argument.number("a", 1.0), Argument.number("b", 1.0), Argument.number("c", 0.0));
  public static final LayerType RBF = LayerType.of("Rbf", "sqrt(2) sin(sqrt(2 gamma) x + pi/4)", Rbf::new,
      Argument.number("gamma", 1.0));
  public static final LayerType EXP = LayerType.of("Exp", "a * exp(b * x)", Exp::new,
      Argument.number("a", 1.0), Argument.number("b", 1.0));
  public static final LayerType SIGN = LayerType.of("Sign", "sign(x)", Sign::new);
  public static final LayerType GAUSSIAN = LayerType.of("Gaussian", "a * exp(b * x^2)", Gaussian::new,
      Argument.number("a", 1.0), Argument.number("b", -1.0));
  public static final LayerType RECTIFIED_MONOMIAL = LayerType.of("RectifiedMonomial",
      "x^degree for x >= 0, 0 otherwise (the arc-cosine kernel of that order)", RectifiedMonomial::new,
      Argument.requiredInteger("degree"));
  public static final LayerType POLYNOMIAL = LayerType.of("Polynomial",
      "sum_k coef[k] x^k (ascending powers, as numpy.polynomial)", Polynomial::new, Argument.requiredNumbers("coef"));
  public static final LayerType MONOMIAL = LayerType.of("Monomial", "x^degree, degree 0 to 5", Monomial::new,
      Argument.requiredInteger("degree"));
  public static final LayerType SIGMOID_LIKE = LayerType.of("Sigmoid_like",
      "0.5 erf(x / 2.4020563531719796) + 0.5, a sigmoid approximation: Erf(0.5, 1 / 2.4020563531719796, 0.5)",
      a -> new Erf(a, 0.5, 1 / SIGMOID_LIKE_WIDTH, 0.5));
  public static final LayerType GABOR = LayerType.of("Gabor", "exp(-x^2) sin(x)", Gabor::new);
  public static final LayerType HERMITE = LayerType.of("Hermite",
      "He_degree(x) / sqrt(degree!), the normalized Hermite polynomial (its input must have variance 1)",
      Hermite::new, Argument.requiredInteger("degree"));
  public static final LayerType EXP_NORMALIZED = LayerType.of("ExpNormalized",
      "no finite network; NNGP sqrt(q11 q22) exp(gamma (q12 / sqrt(q11 q22) + shift))", ExpNormalized::new,
      Argument.number("gamma", 1.0), Argument.number("shift", -1.0), Argument.bool("do_clip", false));

  public static Layer relu() {
    return RELU.create();
  }

  /** {@code max(x, 0)}; {@code doStabilize} rescales each kernel entry (see {@link ABRelu}). */
  public static Layer relu(boolean doStabilize) {
    return RELU.create(doStabilize);
  }

  /** {@code x} for {@code x > 0}, {@code alpha x} otherwise. */
  public static Layer leakyRelu(double alpha) {
    return LEAKY_RELU.create(alpha);
  }

  /** {@code x} for {@code x > 0}, {@code alpha x} otherwise; {@code doStabilize} as {@link ABRelu}. */
  public static Layer leakyRelu(double alpha, boolean doStabilize) {
    return LEAKY_RELU.create(alpha, doStabilize);
  }

  /** {@code |x|}. */
  public static Layer abs() {
    return ABS.create();
  }

  /** {@code |x|}; {@code doStabilize} as {@link ABRelu}. */
  public static Layer abs(boolean doStabilize) {
    return ABS.create(doStabilize);
  }

  /** {@code a x} for {@code x < 0}, {@code b x} for {@code x > 0}. */
  public static Layer abRelu(double a, double b) {
    return AB_RELU.create(a, b);
  }

  /**
   * {@code a x} for {@code x < 0}, {@code b x} for {@code x > 0}; {@code doStabilize} computes each
   * entry on inputs rescaled to at most 1, for kernels whose products would overflow or underflow.
   */
  public static Layer abRelu(double a, double b, boolean doStabilize) {
    return AB_RELU.create(a, b, doStabilize);
  }

  /** {@code erf(x)}. */
  public static Layer erf() {
    return ERF.create();
  }

  /** {@code a * erf(b * x) + c}. */
  public static Layer erf(double a, double b, double c) {
    return ERF.create(a, b, c);
  }

  /** {@code x Phi(x)}, {@code Phi} the standard normal distribution function. */
  public static Layer gelu() {
    return GELU.create();
  }

  /**
   * GELU; {@code approximate} uses the tanh form in the finite network only (as neural-tangents),
   * the kernel is the exact one's.
   */
  public static Layer gelu(boolean approximate) {
    return GELU.create(approximate);
  }

  /** {@code sin(x)}. */
  public static Layer sin() {
    return SIN.create();
  }

  /** {@code a * sin(b * x + c)}. */
  public static Layer sin(double a, double b, double c) {
    return SIN.create(a, b, c);
  }

  /** {@code cos(x)}. */
  public static Layer cos() {
    return COS.create();
  }

  /** {@code a * cos(b * x + c)}. */
  public static Layer cos(double a, double b, double c) {
    return COS.create(a, b, c);
  }

  /** {@code sqrt(2) sin(sqrt(2 gamma) x + pi/4)}: the random Fourier features of an RBF kernel. */
  public static Layer rbf(double gamma) {
    return RBF.create(gamma);
  }

  /** {@code exp(x)}. */
  public static Layer exp() {
    return EXP.create();
  }

  /** {@code a * exp(b * x)}. */
  public static Layer exp(double a, double b) {
    return EXP.create(a, b);
  }

  /** {@code sign(x)}; zeroes the NTK (its derivative is 0 almost everywhere). */
  public static Layer sign() {
    return SIGN.create();
  }

  /** {@code exp(-x^2)}. */
  public static Layer gaussian() {
    return GAUSSIAN.create();
  }

  /** {@code a * exp(b * x^2)}; with {@code b > 0} the kernel is finite only where {@code 1 - 4 b q > 0}. */
  public static Layer gaussian(double a, double b) {
    return GAUSSIAN.create(a, b);
  }

  /** {@code x^degree} for {@code x >= 0} (1 at 0 when {@code degree = 0}), 0 otherwise. */
  public static Layer rectifiedMonomial(int degree) {
    return RECTIFIED_MONOMIAL.create(degree);
  }

  /** {@code x^degree}, {@code degree} from 0 to 5. */
  public static Layer monomial(int degree) {
    return MONOMIAL.create(degree);
  }

  /** {@code sum_k coef[k] x^k}, ascending powers. */
  public static Layer polynomial(double... coef) {
    return POLYNOMIAL.create((Object) coef.clone());
  }

  /** {@code 0.5 erf(x / 2.4020563531719796) + 0.5}, neural-tangents' approximation of the logistic sigmoid. */
  public static Layer sigmoidLike() {
    return SIGMOID_LIKE.create();
  }

  /** {@code exp(-x^2) sin(x)}. */
  public static Layer gabor() {
    return GABOR.create();
  }

  /**
   * {@code He_degree(x) / sqrt(degree!)}, {@code degree} from 0 to 170; its input must have
   * variance 1 (the kernel is NaN where it does not, within 1e-5).
   */
  public static Layer hermite(int degree) {
    return HERMITE.create(degree);
  }

  /** {@link ExpNormalized} with neural-tangents' defaults {@code gamma = 1}, {@code shift = -1}. */
  public static Layer expNormalized() {
    return EXP_NORMALIZED.create();
  }

  /** {@link ExpNormalized}: a kernel without a finite network. */
  public static Layer expNormalized(double gamma, double shift, boolean doClip) {
    return EXP_NORMALIZED.create(gamma, shift, doClip);
  }

  /** {@code (2d - 1)!! = 1 * 3 * ... * (2d - 1)}, 1 for {@code d = 0}. */
  private static double doubleFactorial(int d) {
    double r = 1;
    for (int i = 1; i <= d; i++) {
      r *= 2 * i - 1;
    }
    return r;
  }

  /** {@code x^n} by repeated squaring, about {@code 2 log2 n} products ({@code 1} for {@code n = 0}). */
  private static Expr power(Expr x, int n) {
    Expr r = Expr.constant(1);
    Expr square = x;
    for (int m = n; m > 0; m >>= 1) {
      if ((m & 1) == 1) {
        r = r.times(square);
      }
      if (m > 1) {
        square = square.times(square);
      }
    }
    return r;
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

    /**
     * {@code f'(x)}, entry-wise, from the same description as {@link #apply}: the layer's
     * derivatives are {@code f'(x) dx} (forward) and {@code f'(x) dy} (backward). At a kink the
     * value is JAX's for the same function written with {@code jax.nn}: {@code relu'(0) = 0}
     * (so every {@code ABRelu} has derivative 0 at 0), {@code sign'(x) = 0}.
     */
    abstract NDArray derivative(NDArray x);

    /**
     * {@code f''(x)}, entry-wise, from the same description as {@link #apply}; the layer's second
     * derivative along an input tangent {@code dx} is {@code f''(x) dx^2} ({@link Layer#jet}).
     * Where {@link #derivative} jumps (a kink), the value is the one-sided limits' (0 for the
     * piecewise-linear activations).
     */
    abstract NDArray secondDerivative(NDArray x);

    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      try (NDArray d = derivative(x)) {
        return d.mul(dx);
      }
    }

    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      try (NDArray d = secondDerivative(x); NDArray dx2 = dx.mul(dx)) {
        return d.mul(dx2);
      }
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> {
        try (NDArray d = derivative(x)) {
          return d.mul(dy);
        }
      }, inputCotangent);
    }

    /** Whether {@link #pair} is symmetric in its two inputs (all closed forms are). */
    boolean symmetric() {
      return true;
    }

    @Override
    protected final KernelExpr rule(KernelExpr k, RuleContext context) {
      if (!symmetric()) {
        context.asymmetric();
      }
      if (!k.isFull()) {
        Expr[] p = pair(k.nngp(), k.var1(), k.var2());
        // A variance maps by the pair rule too, not by a formula of its own for E[f(u)^2]: the pair of
        // x1's example with itself, whose covariance equals its variance to the last bit, then stays
        // so. An ulp between them moves the ReLU family's angle at a later layer from 0 to about 1e-8,
        // and its NTK factor by about 1e-9, differently on each backend.
        return k.with(p[0], k.ntk().times(p[1]), v -> pair(v, v, v)[0]);
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
   *
   * <p>{@code do_stabilize} (neural-tangents' option for very deep networks) computes each entry on
   * {@code k / s}, {@code k_11 / s}, {@code k_22 / s} with {@code s = max(k_11, k_22)} (pi/2 where
   * both are 0) and multiplies the NNGP back by {@code s}: the rule is 1-homogeneous,
   * so only the rounding changes, and the products {@code k_11 k_22} and {@code k^2} can neither
   * overflow nor underflow (in float32 they overflow from variances near {@code 1e19}).
   * neural-tangents divides by one number for the whole batch, {@code max |nngp|}; a per-entry
   * scale gives the same values and does not depend on how the kernel is cut into tiles.
   */
  public static final class ABRelu extends Nonlinearity {
    private final double a;
    private final double b;
    private final boolean stabilize;

    ABRelu(LayerType.Arguments args, double a, double b) {
      super(args);
      this.a = a;
      this.b = b;
      this.stabilize = args.bool("do_stabilize");
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      NDArray pos = Tensors.max(x, 0.0);
      NDArray neg = x.sub(pos);
      return Tensors.mul(pos, b).add(Tensors.mul(neg, a));
    }

    @Override
    NDArray derivative(NDArray x) {
      NDArray pos = x.gt(0.0).toType(x.getDataType(), false);
      NDArray neg = x.lt(0.0).toType(x.getDataType(), false);
      return Tensors.mul(pos, b).add(Tensors.mul(neg, a));
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      return x.zerosLike();
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      if (!stabilize) {
        return arcCosine(k, v1, v2);
      }
      Expr larger = v1.max(v2);
      // Any positive scale gives the same value; where both variances are 0 (and so k), pi/2 - atan2(0, 0)
      // stands in for the 0, and is exactly 0 otherwise (atan2(s, 0) is the double nearest pi/2 for s > 0).
      Expr scale = larger.max(Expr.constant(Math.PI / 2).minus(larger.atan2(Expr.constant(0))));
      Expr[] p = arcCosine(k.div(scale), v1.div(scale), v2.div(scale));
      return new Expr[] {p[0].times(scale), p[1]};
    }

    private Expr[] arcCosine(Expr k, Expr v1, Expr v2) {
      double mean = (a * a + b * b) / 2;
      double factor = (a - b) * (a - b) / (2 * Math.PI);
      Expr sine = v1.times(v2).minus(k.times(k)).max(0).sqrt();
      Expr angle = sine.atan2(k);
      Expr dot = angle.times(-factor).plus(mean);
      return new Expr[] {sine.times(factor).plus(dot.times(k)), dot};
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

    Erf(LayerType.Arguments args, double a, double b, double c) {
      super(args);
      this.a = a;
      this.b = b;
      this.c = c;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.add(Tensors.mul(Tensors.mul(x, b).erf(), a), c);
    }

    @Override
    NDArray derivative(NDArray x) {
      // a b 2 / sqrt(pi) exp(-(b x)^2)
      NDArray bx = Tensors.mul(x, b);
      return Tensors.mul(bx.mul(bx).neg().exp(), a * b * 2 / Math.sqrt(Math.PI));
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      // f'(x) (-2 b^2 x)
      NDArray bx = Tensors.mul(x, b);
      return Tensors.mul(bx.mul(bx).neg().exp().mul(x), -a * b * b * b * 4 / Math.sqrt(Math.PI));
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
  }

  /**
   * {@code f(x) = x Phi(x)}. With {@code s_i = 1 + k_ii}, {@code D = sqrt(s_1 s_2 - k^2)}, {@code A
   * = atan2(k, D)} and {@code P = k_11 k_22}: {@code nngp' = k/4 + ((k^2 + P D^2) / (s_1 s_2 D) + k
   * A) / (2 pi)} and {@code E[f' f'] = 1/4 + A/(2 pi) + k / (2 pi D) (1/D^2 + (1 - P)/(s_1 s_2) + 1)}
   * (its derivative in {@code k}). {@code approximate} (the tanh form) changes only the finite
   * network, as in neural-tangents.
   */
  public static final class Gelu extends Nonlinearity {
    private final boolean approximate;

    Gelu(LayerType.Arguments args) {
      super(args);
      this.approximate = args.bool("approximate");
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      if (approximate) {
        // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        NDArray inner = Tensors.mul(x.add(Tensors.mul(x.pow(3), 0.044715)), Math.sqrt(2 / Math.PI));
        return Tensors.mul(x.mul(Tensors.add(inner.tanh(), 1.0)), 0.5);
      }
      return Tensors.mul(x.mul(Tensors.add(Tensors.mul(x, 1 / Math.sqrt(2)).erf(), 1.0)), 0.5);
    }

    @Override
    NDArray derivative(NDArray x) {
      if (approximate) {
        // 1/2 (1 + tanh u) + x/2 (1 - tanh^2 u) u', u = sqrt(2/pi) (x + 0.044715 x^3)
        double c = Math.sqrt(2 / Math.PI);
        NDArray t = Tensors.mul(x.add(Tensors.mul(x.pow(3), 0.044715)), c).tanh();
        NDArray du = Tensors.mul(Tensors.add(Tensors.mul(x.mul(x), 3 * 0.044715), 1.0), c);
        NDArray sech2 = Tensors.add(t.mul(t).neg(), 1.0);
        return Tensors.mul(Tensors.add(t, 1.0), 0.5).add(Tensors.mul(x.mul(sech2).mul(du), 0.5));
      }
      // Phi(x) + x phi(x)
      NDArray cdf = Tensors.mul(Tensors.add(Tensors.mul(x, 1 / Math.sqrt(2)).erf(), 1.0), 0.5);
      NDArray pdf = Tensors.mul(Tensors.mul(x.mul(x), -0.5).exp(), 1 / Math.sqrt(2 * Math.PI));
      return cdf.add(x.mul(pdf));
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      if (approximate) {
        // s u' + x/2 s (u'' - 2 t u'^2), s = 1 - t^2, t = tanh u
        double c = Math.sqrt(2 / Math.PI);
        NDArray t = Tensors.mul(x.add(Tensors.mul(x.pow(3), 0.044715)), c).tanh();
        NDArray du = Tensors.mul(Tensors.add(Tensors.mul(x.mul(x), 3 * 0.044715), 1.0), c);
        NDArray ddu = Tensors.mul(x, 6 * 0.044715 * c);
        NDArray sech2 = Tensors.add(t.mul(t).neg(), 1.0);
        NDArray inner = ddu.sub(Tensors.mul(t.mul(du).mul(du), 2.0));
        return sech2.mul(du).add(Tensors.mul(x.mul(sech2).mul(inner), 0.5));
      }
      // 2 phi(x) + x phi'(x) = phi(x) (2 - x^2)
      NDArray x2 = x.mul(x);
      NDArray pdf = Tensors.mul(Tensors.mul(x2, -0.5).exp(), 1 / Math.sqrt(2 * Math.PI));
      return pdf.mul(Tensors.add(x2.neg(), 2.0));
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr s12 = v1.plus(1).times(v2.plus(1));
      Expr d2 = s12.minus(k.times(k)).max(0);
      Expr d = d2.sqrt();
      Expr angle = k.atan2(d);
      Expr p = v1.times(v2);
      Expr nngp = k.times(0.25).plus(k.times(k).plus(p.times(d2)).div(s12.times(d)).plus(k.times(angle))
          .times(1 / (2 * Math.PI)));
      Expr dot = angle.times(1 / (2 * Math.PI)).plus(0.25).plus(k.div(d.times(2 * Math.PI))
          .times(Expr.constant(1).div(d2).plus(Expr.constant(1).minus(p).div(s12)).plus(1)));
      return new Expr[] {nngp, dot};
    }
  }

  /**
   * {@code f(x) = a sin(b x + c)} (and {@code Cos}: the phase {@code c + pi/2}). With {@code S = k_11
   * + k_22}, {@code s_1 = exp(b^2 (k - S/2))} and {@code s_2 = exp(-b^2 (k + S/2)) cos 2c}: {@code
   * nngp' = a^2/2 (s_1 - s_2)}, {@code E[f' f'] = a^2 b^2/2 (s_1 + s_2)}, and the variance {@code
   * a^2/2 (1 - exp(-2 b^2 q) cos 2c)}.
   */
  public static final class Sin extends Nonlinearity {
    private final double a;
    private final double b;
    private final double c;

    Sin(LayerType.Arguments args, double phase) {
      super(args);
      this.a = args.number("a");
      this.b = args.number("b");
      this.c = args.number("c") + phase;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.mul(Tensors.add(Tensors.mul(x, b), c).sin(), a);
    }

    @Override
    NDArray derivative(NDArray x) {
      return Tensors.mul(Tensors.add(Tensors.mul(x, b), c).cos(), a * b);
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      return Tensors.mul(Tensors.add(Tensors.mul(x, b), c).sin(), -a * b * b);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      double b2 = b * b;
      Expr half = v1.plus(v2).times(0.5);
      Expr s1 = k.minus(half).times(b2).exp();
      Expr s2 = k.plus(half).times(-b2).exp().times(Math.cos(2 * c));
      return new Expr[] {s1.minus(s2).times(a * a / 2), s1.plus(s2).times(a * a * b2 / 2)};
    }
  }

  /**
   * {@code f(x) = sqrt(2) sin(sqrt(2 gamma) x + pi/4)}: {@code nngp' = exp(-gamma (k_11 + k_22 - 2
   * k))}, {@code E[f' f'] = 2 gamma nngp'}, and every variance becomes exactly 1.
   */
  public static final class Rbf extends Nonlinearity {
    private final double gamma;

    Rbf(LayerType.Arguments args) {
      super(args);
      this.gamma = args.number("gamma");
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.mul(Tensors.add(Tensors.mul(x, Math.sqrt(2 * gamma)), Math.PI / 4).sin(), Math.sqrt(2));
    }

    @Override
    NDArray derivative(NDArray x) {
      double w = Math.sqrt(2 * gamma);
      return Tensors.mul(Tensors.add(Tensors.mul(x, w), Math.PI / 4).cos(), Math.sqrt(2) * w);
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      double w = Math.sqrt(2 * gamma);
      return Tensors.mul(Tensors.add(Tensors.mul(x, w), Math.PI / 4).sin(), -Math.sqrt(2) * w * w);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr nngp = v1.plus(v2).minus(k.times(2)).times(-gamma).exp();
      return new Expr[] {nngp, nngp.times(2 * gamma)};
    }
  }

  /**
   * {@code f(x) = a exp(b x)}: {@code nngp' = a^2 exp(b^2 (S/2 + k))} with {@code S = k_11 + k_22},
   * {@code E[f' f'] = b^2 nngp'}, the variance {@code a^2 exp(2 b^2 q)}.
   */
  public static final class Exp extends Nonlinearity {
    private final double a;
    private final double b;

    Exp(LayerType.Arguments args) {
      super(args);
      this.a = args.number("a");
      this.b = args.number("b");
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.mul(Tensors.mul(x, b).exp(), a);
    }

    @Override
    NDArray derivative(NDArray x) {
      return Tensors.mul(Tensors.mul(x, b).exp(), a * b);
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      return Tensors.mul(Tensors.mul(x, b).exp(), a * b * b);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr nngp = v1.plus(v2).times(0.5).plus(k).times(b * b).exp().times(a * a);
      return new Expr[] {nngp, nngp.times(b * b)};
    }
  }

  /**
   * {@code f(x) = sign(x)}: {@code nngp' = 1 - 2 theta / pi = (2/pi) atan2(k, sqrt(k_11 k_22 - k^2))}
   * (0 where both are 0, as a zero input gives {@code sign(0) = 0}), and the NTK becomes 0 (as in
   * neural-tangents: the derivative is 0 almost everywhere). The variance is 1, or 0 where it was 0.
   */
  public static final class Sign extends Nonlinearity {
    Sign(LayerType.Arguments args) {
      super(args);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return x.sign();
    }

    @Override
    NDArray derivative(NDArray x) {
      return Tensors.mul(x, 0.0);
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      return Tensors.mul(x, 0.0);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr sine = v1.times(v2).minus(k.times(k)).max(0).sqrt();
      return new Expr[] {k.atan2(sine).times(2 / Math.PI), Expr.constant(0)};
    }
  }

  /**
   * {@code f(x) = a exp(b x^2)}. With {@code det = sqrt((1 - 2 b k_11)(1 - 2 b k_22) - 4 b^2 k^2)}:
   * {@code nngp' = a^2 / det}, {@code E[f' f'] = 4 a^2 b^2 k / det^3} (its derivative in {@code k}),
   * the variance {@code a^2 / sqrt(1 - 4 b q)}. With {@code b > 0} the expectation diverges where
   * {@code det^2 <= 0} (NaN there, as neural-tangents).
   */
  public static final class Gaussian extends Nonlinearity {
    private final double a;
    private final double b;

    Gaussian(LayerType.Arguments args) {
      super(args);
      this.a = args.number("a");
      this.b = args.number("b");
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.mul(Tensors.mul(x.mul(x), b).exp(), a);
    }

    @Override
    NDArray derivative(NDArray x) {
      return Tensors.mul(Tensors.mul(x.mul(x), b).exp().mul(x), 2 * a * b);
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      // 2 a b e^{b x^2} (1 + 2 b x^2)
      NDArray x2 = x.mul(x);
      return Tensors.mul(Tensors.mul(x2, b).exp().mul(Tensors.add(Tensors.mul(x2, 2 * b), 1.0)), 2 * a * b);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr det2 = v1.times(-2 * b).plus(1).times(v2.times(-2 * b).plus(1)).minus(k.times(k).times(4 * b * b));
      Expr det = det2.sqrt();
      Expr nngp = Expr.constant(a * a).div(det);
      return new Expr[] {nngp, k.times(4 * b * b).div(det2).times(nngp)};
    }
  }

  /**
   * {@code f(x) = x^d} for {@code x >= 0}, 0 otherwise (Cho and Saul's arc-cosine kernel of order
   * {@code d}). With {@code theta} the angle between the inputs and {@code J_d(theta) = (-1)^d
   * sin^(2d+1) theta ((1/sin theta) d/dtheta)^d ((pi - theta) / sin theta)}: {@code nngp' = (k_11
   * k_22)^(d/2) J_d(theta) / (2 pi)}, written exactly as a polynomial in {@code k}, {@code sqrt(k_11
   * k_22 - k^2)} and {@code pi - theta} with integer coefficients (finite at {@code theta = 0}, where
   * neural-tangents' arccos form is not), {@code E[f' f'] = d^2} times the order {@code d - 1}
   * kernel (0 for {@code d = 0}: the NTK of the layers below becomes 0), the variance {@code (2d -
   * 1)!! q^d / 2}.
   */
  public static final class RectifiedMonomial extends Nonlinearity {
    private final int degree;
    /** Rows {@code {coefficient, power of k, power of sqrt(P - k^2), power of pi - theta}} of J_d. */
    private final double[][] terms;
    private final double[][] lower;

    RectifiedMonomial(LayerType.Arguments args) {
      super(args);
      this.degree = args.integer("degree");
      if (degree < 0) {
        throw new IllegalArgumentException("argument \"degree\" must be 0 or more, got " + degree);
      }
      this.terms = arcCosine(degree);
      this.lower = degree == 0 ? null : arcCosine(degree - 1);
    }

    /**
     * J_n as rows {@code {coefficient, i, j, l}}: {@code sum coefficient cos^i sin^j (pi - theta)^l},
     * with {@code i + j = n}, from {@code G_0 = (pi - theta) / sin} and {@code G_(m+1) = G_m' / sin}.
     */
    static double[][] arcCosine(int n) {
      java.util.Map<java.util.List<Integer>, Double> g = new java.util.HashMap<>();
      g.put(java.util.List.of(0, -1, 1), 1.0);
      for (int step = 0; step < n; step++) {
        java.util.Map<java.util.List<Integer>, Double> next = new java.util.HashMap<>();
        for (java.util.Map.Entry<java.util.List<Integer>, Double> e : g.entrySet()) {
          int i = e.getKey().get(0);
          int j = e.getKey().get(1);
          int l = e.getKey().get(2);
          double c = e.getValue();
          // d/dtheta (cos^i sin^j psi^l) = -i cos^(i-1) sin^(j+1) psi^l + j cos^(i+1) sin^(j-1) psi^l
          //   - l cos^i sin^j psi^(l-1); then divided by sin.
          if (i > 0) {
            next.merge(java.util.List.of(i - 1, j, l), -i * c, Double::sum);
          }
          if (j != 0) {
            next.merge(java.util.List.of(i + 1, j - 2, l), j * c, Double::sum);
          }
          if (l > 0) {
            next.merge(java.util.List.of(i, j - 1, l - 1), -l * c, Double::sum);
          }
        }
        g = next;
      }
      double sign = n % 2 == 0 ? 1 : -1;
      java.util.List<double[]> rows = new java.util.ArrayList<>();
      for (java.util.Map.Entry<java.util.List<Integer>, Double> e : g.entrySet()) {
        int j = e.getKey().get(1) + 2 * n + 1;
        if (e.getValue() == 0) {
          continue;
        }
        if (j < 0) {
          throw new IllegalStateException("J_" + n + " has a negative power of sin");
        }
        rows.add(new double[] {sign * e.getValue(), e.getKey().get(0), j, e.getKey().get(2)});
      }
      return rows.toArray(new double[0][]);
    }

    /** {@code P^(n/2) J_n(theta) / (2 pi)} from the rows of J_n. */
    private static Expr kernel(double[][] rows, Expr k, Expr sine, Expr psi) {
      Expr sum = Expr.constant(0);
      for (double[] t : rows) {
        Expr term = power(k, (int) t[1]).times(power(sine, (int) t[2])).times(power(psi, (int) t[3]));
        sum = sum.plus(term.times(t[0] / (2 * Math.PI)));
      }
      return sum;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      if (degree == 0) {
        return x.gte(0.0).toType(x.getDataType(), false);
      }
      return Tensors.max(x, 0.0).pow(degree);
    }

    @Override
    NDArray derivative(NDArray x) {
      if (degree == 0) {
        return Tensors.mul(x, 0.0);
      }
      if (degree == 1) {
        return x.gt(0.0).toType(x.getDataType(), false);
      }
      return Tensors.mul(Tensors.max(x, 0.0).pow(degree - 1), degree);
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      if (degree <= 1) {
        return Tensors.mul(x, 0.0);
      }
      if (degree == 2) {
        return Tensors.mul(x.gt(0.0).toType(x.getDataType(), false), 2);
      }
      return Tensors.mul(Tensors.max(x, 0.0).pow(degree - 2), degree * (degree - 1));
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr sine = v1.times(v2).minus(k.times(k)).max(0).sqrt();
      Expr psi = sine.atan2(k).times(-1).plus(Math.PI);
      Expr nngp = kernel(terms, k, sine, psi);
      Expr dot = degree == 0 ? Expr.constant(0) : kernel(lower, k, sine, psi).times((double) degree * degree);
      return new Expr[] {nngp, dot};
    }
  }

  /**
   * {@code f(x) = x^d}, {@code d} from 0 to 5 (as neural-tangents). With {@code P = k_11 k_22},
   * {@code nngp' = M_d}: 1, {@code k}, {@code 2k^2 + P}, {@code 6k^3 + 9kP}, {@code 24k^4 + 72k^2 P +
   * 9P^2}, {@code 120k^5 + 600k^3 P + 225k P^2} (Isserlis); {@code E[f' f'] = d^2 M_(d-1)}; the
   * variance {@code (2d - 1)!! q^d}.
   */
  public static final class Monomial extends Nonlinearity {
    /** Coefficients of {@code M_d}: entry {@code m} multiplies {@code k^(d - 2m) P^m}. */
    private static final double[][] MOMENTS = {{1}, {1}, {2, 1}, {6, 9}, {24, 72, 9}, {120, 600, 225}};

    private final int degree;

    Monomial(LayerType.Arguments args) {
      super(args);
      this.degree = args.integer("degree");
      if (degree < 0 || degree > 5) {
        throw new IllegalArgumentException("argument \"degree\" must be from 0 to 5 (as neural-tangents), got "
            + degree);
      }
    }

    private static Expr moment(int d, Expr k, Expr p) {
      Expr sum = Expr.constant(0);
      for (int m = 0; m < MOMENTS[d].length; m++) {
        sum = sum.plus(power(k, d - 2 * m).times(power(p, m)).times(MOMENTS[d][m]));
      }
      return sum;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return degree == 0 ? Tensors.add(Tensors.mul(x, 0.0), 1.0) : x.pow(degree);
    }

    @Override
    NDArray derivative(NDArray x) {
      if (degree == 0) {
        return Tensors.mul(x, 0.0);
      }
      return degree == 1 ? Tensors.add(Tensors.mul(x, 0.0), 1.0) : Tensors.mul(x.pow(degree - 1), degree);
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      if (degree <= 1) {
        return Tensors.mul(x, 0.0);
      }
      return degree == 2 ? Tensors.add(Tensors.mul(x, 0.0), 2.0)
          : Tensors.mul(x.pow(degree - 2), degree * (degree - 1));
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr p = v1.times(v2);
      Expr dot = degree == 0 ? Expr.constant(0) : moment(degree - 1, k, p).times((double) degree * degree);
      return new Expr[] {moment(degree, k, p), dot};
    }
  }

  /**
   * {@code f(x) = sum_k coef[k] x^k} (ascending powers). Expanding {@code f(sqrt(q) z)} in the
   * normalized Hermite polynomials {@code He_l(z) / sqrt(l!)} gives coefficients {@code R_l(q)
   * q^(l/2)} with {@code R_l(q) = sum_i coef[2i + l] (2i + l)! / (2^i i! sqrt(l!)) q^i}, hence
   * {@code nngp' = sum_l R_l(k_11) R_l(k_22) k^l}, {@code E[f' f'] = sum_(l >= 1) l R_l(k_11)
   * R_l(k_22) k^(l-1)} and the variance {@code sum_l R_l(q)^2 q^l}: neural-tangents' {@code sum_l
   * r_l(k_11) r_l(k_22) rho^l} written without dividing by {@code sqrt(k_11 k_22)}. An empty list
   * is the zero function.
   */
  public static final class Polynomial extends Nonlinearity {
    private final double[] coef;
    /** {@code hermite[l][i]}: the coefficient of {@code q^i} in {@code R_l(q)}. */
    private final double[][] hermite;

    Polynomial(LayerType.Arguments args) {
      super(args);
      this.coef = args.numbers("coef");
      int n = coef.length;
      this.hermite = new double[n][];
      for (int l = 0; l < n; l++) {
        hermite[l] = new double[(n - 1 - l) / 2 + 1];
        for (int i = 0; 2 * i + l < n; i++) {
          // (2i + l)! / (2^i i! sqrt(l!)) = sqrt(l!) * prod_(t = l+1)^(2i+l) t / (2^i i!)
          double f = 1;
          for (int t = 2; t <= l; t++) {
            f *= Math.sqrt(t);
          }
          for (int t = l + 1; t <= 2 * i + l; t++) {
            f *= t;
          }
          for (int t = 1; t <= i; t++) {
            f /= 2 * t;
          }
          hermite[l][i] = coef[2 * i + l] * f;
        }
      }
    }

    /** {@code R_l(q)} by Horner's rule. */
    private Expr r(int l, Expr q) {
      double[] c = hermite[l];
      Expr sum = Expr.constant(c[c.length - 1]);
      for (int i = c.length - 2; i >= 0; i--) {
        sum = sum.times(q).plus(c[i]);
      }
      return sum;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      NDArray sum = Tensors.mul(x, 0.0);
      for (int k = coef.length - 1; k >= 0; k--) {
        sum = Tensors.add(sum.mul(x), coef[k]);
      }
      return sum;
    }

    @Override
    NDArray derivative(NDArray x) {
      NDArray sum = Tensors.mul(x, 0.0);
      for (int k = coef.length - 1; k >= 1; k--) {
        sum = Tensors.add(sum.mul(x), k * coef[k]);
      }
      return sum;
    }

    @Override
    NDArray secondDerivative(NDArray x) {
      NDArray sum = Tensors.mul(x, 0.0);
      for (int k = coef.length - 1; k >= 2; k--) {
        sum = Tensors.add(sum.mul(x), k * (k - 1) * coef[k]);
      }
      return sum;
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr nngp = Expr.constant(0);
      Expr dot = Expr.constant(0);
      for (int l = 0; l < coef.length; l++) {
        Expr rr = r(l, v1).times(r(l, v2));
        nngp = nngp.plus(rr.times(power(k, l)));
        if (l > 0) {
          dot = dot.plus(rr.times(power(k, l - 1)).times(l));
        }
      }
      return new Expr[] {nngp, dot};
    }
  }

  /**
   * {@code f(x) = exp(-x^2) sin x}, neural-tangents' closed form. With {@code S = k_11 + k_22},
   * {@code D = 4 (k_11 k_22 - k^2)}, {@code n = 2S + D + 1} and {@code m = S + D + 2k}: {@code
   * nngp' = exp(-m / (2n)) (exp(2k / n) - 1) / (2 sqrt n)} ({@code expm1} here), {@code E[f' f'] =
   * exp(-m / (2n)) ((h - t) + exp(2k / n) (h + t)) / (2 n^(5/2))} with {@code h = 1 + 2S + 4 (k^2 +
   * k_11 k_22)} and {@code t = 4k (D + 3S + 2)}, and the variance {@code (1 - exp(-2q / (1 + 4q))) /
   * (2 sqrt(1 + 4q))}. Defined everywhere ({@code n >= 1}).
   */
  public static final class Gabor extends Nonlinearity {
    Gabor(LayerType.Arguments args) {
      super(args);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return x.mul(x).neg().exp().mul(x.sin());
    }

    /** {@code f'(x) = exp(-x^2) (cos x - 2x sin x)}, entry-wise. */
    public NDArray derivative(NDArray x) {
      return x.mul(x).neg().exp().mul(x.cos().sub(Tensors.mul(x.mul(x.sin()), 2.0)));
    }

    /** {@code f''(x) = exp(-x^2) ((4x^2 - 3) sin x - 4x cos x)}, entry-wise. */
    @Override
    NDArray secondDerivative(NDArray x) {
      NDArray x2 = x.mul(x);
      NDArray sine = Tensors.add(Tensors.mul(x2, 4.0), -3.0).mul(x.sin());
      return x2.neg().exp().mul(sine.sub(Tensors.mul(x.mul(x.cos()), 4.0)));
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr sum = v1.plus(v2);
      Expr p = v1.times(v2);
      Expr diff = p.minus(k.times(k)).times(4);
      Expr n = sum.times(2).plus(diff).plus(1);
      Expr left = sum.plus(diff).plus(k.times(2)).div(n.times(-2)).exp();
      Expr ratio = k.times(2).div(n);
      Expr root = n.sqrt();
      Expr nngp = left.times(ratio.expm1()).div(root.times(2));
      Expr h = sum.times(2).plus(1).plus(k.times(k).plus(p).times(4));
      Expr t = k.times(4).times(diff.plus(sum.times(3)).plus(2));
      Expr dot = left.times(h.minus(t).plus(ratio.exp().times(h.plus(t)))).div(n.times(n).times(root).times(2));
      return new Expr[] {nngp, dot};
    }
  }

  /**
   * {@code f(x) = He_n(x) / sqrt(n!)}, the probabilists' Hermite polynomial of degree {@code n}
   * normalized to unit norm under N(0, 1), {@code n} from 0 to 170 (beyond, neural-tangents'
   * {@code sqrt(n!)} overflows a double). For unit variances {@code E[f(u) f(v)] = k^n}, and this is
   * neural-tangents' rule: {@code nngp' = k^n}, {@code E[f' f'] = n k^(n-1)} (0 for {@code n = 0}),
   * the variance {@code q^n}. neural-tangents only warns that its inputs are assumed to have unit
   * variance; here the kernel is NaN (so a command stops, naming this layer) wherever an input's
   * variance differs from 1 by more than {@value #UNIT_TOLERANCE}: normalize the inputs
   * ({@code |x|^2 = d}) and use {@code Dense} with {@code W_std = 1} and no bias before it; after
   * it the variance is 1 again.
   */
  public static final class Hermite extends Nonlinearity {
    /** The largest degree: {@code sqrt(171!)} overflows a double (neural-tangents fails there too). */
    static final int MAX_DEGREE = 170;
    /** How far from 1 an input's variance may be. */
    static final double UNIT_TOLERANCE = 1e-5;

    private final int degree;

    Hermite(LayerType.Arguments args) {
      super(args);
      this.degree = args.integer("degree");
      if (degree < 0 || degree > MAX_DEGREE) {
        throw new IllegalArgumentException("argument \"degree\" must be from 0 to " + MAX_DEGREE
            + " (beyond, the normalization sqrt(degree!) overflows a double), got " + degree);
      }
    }

    /**
     * {@code He_n(x) / sqrt(n!)} by the normalized three-term recurrence {@code h_(j+1) = (x h_j -
     * sqrt(j) h_(j-1)) / sqrt(j + 1)}, which neither overflows nor cancels as monomial coefficients do.
     */
    private static NDArray normalized(NDArray x, int n) {
      NDArray previous = Tensors.add(Tensors.mul(x, 0.0), 1.0);
      if (n == 0) {
        return previous;
      }
      NDArray current = Tensors.mul(x, 1.0);
      for (int j = 1; j < n; j++) {
        NDArray next = Tensors.mul(x.mul(current).sub(Tensors.mul(previous, Math.sqrt(j))), 1 / Math.sqrt(j + 1));
        previous = current;
        current = next;
      }
      return current;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return normalized(x, degree);
    }

    /** {@code f'(x) = sqrt(n) h_(n-1)(x)} ({@code He_n' = n He_(n-1)}), entry-wise; 0 for degree 0. */
    public NDArray derivative(NDArray x) {
      return degree == 0 ? Tensors.mul(x, 0.0) : Tensors.mul(normalized(x, degree - 1), Math.sqrt(degree));
    }

    /** {@code f''(x) = sqrt(n (n - 1)) h_(n-2)(x)}, entry-wise; 0 for degrees 0 and 1. */
    @Override
    NDArray secondDerivative(NDArray x) {
      return degree < 2 ? Tensors.mul(x, 0.0)
          : Tensors.mul(normalized(x, degree - 2), Math.sqrt((double) degree * (degree - 1)));
    }

    /** 0 where {@code |v - 1| <= }{@link #UNIT_TOLERANCE}, NaN elsewhere: the square root of a negative number. */
    private static Expr undefinedUnlessUnit(Expr v) {
      Expr root = v.minus(Expr.constant(1)).abs().times(-1).plus(UNIT_TOLERANCE).sqrt();
      return root.minus(root);
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr check = undefinedUnlessUnit(v1).plus(undefinedUnlessUnit(v2));
      Expr dot = degree == 0 ? Expr.constant(0) : power(k, degree - 1).times(degree);
      return new Expr[] {power(k, degree).plus(check), dot.plus(check)};
    }
  }

  /**
   * neural-tangents' {@code ExpNormalized}, the "Gaussian normalized kernel" of Shankar et al.
   * (Neural Kernels Without Tangents, 2020): a kernel map with no finite network. With {@code r =
   * sqrt(max(k_11 k_22, 1e-30))} and {@code rho = k / r} (clipped to [-1, 1] if {@code do_clip}):
   * {@code nngp' = r exp(gamma (rho + shift))}, the NTK factor {@code gamma exp(gamma (rho + shift))},
   * and the variance the same map at {@code k = k_11 = k_22 = q}, {@code q exp(gamma (1 + shift))}
   * for {@code q > 1e-15}. It needs both inputs' variances; Monte Carlo, {@code apply} and empirical
   * kernels are not possible (neural-tangents' {@code apply_fn} raises too).
   */
  public static final class ExpNormalized extends Nonlinearity {
    private final double gamma;
    private final double shift;
    private final boolean clip;

    ExpNormalized(LayerType.Arguments args) {
      super(args);
      this.gamma = args.number("gamma");
      this.shift = args.number("shift");
      this.clip = args.bool("do_clip");
    }

    private static ModelException noFiniteNetwork() {
      return new ModelException("", "ExpNormalized has no finite network (as in neural-tangents): only its "
          + "kernel is defined, so Monte Carlo, init/apply and empirical kernels cannot run a model that uses it");
    }

    /** Always fails: the layer has no finite function. */
    @Override
    public NDArray apply(Params params, NDArray x) {
      throw noFiniteNetwork();
    }

    /** Always fails: the layer has no finite function. */
    public NDArray derivative(NDArray x) {
      throw noFiniteNetwork();
    }

    /** Always fails: the layer has no finite function. */
    @Override
    NDArray secondDerivative(NDArray x) {
      throw noFiniteNetwork();
    }

    @Override
    Expr[] pair(Expr k, Expr v1, Expr v2) {
      Expr root = v1.times(v2).max(1e-30).sqrt();
      Expr rho = k.div(root);
      if (clip) {
        rho = rho.max(-1).min(1);
      }
      Expr e = rho.plus(shift).times(gamma).exp();
      return new Expr[] {root.times(e), e.times(gamma)};
    }
  }
}

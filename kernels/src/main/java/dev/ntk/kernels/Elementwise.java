package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Elementwise nonlinearities and their closed-form rules: the ReLU family ({@link ABRelu}, which
 * covers {@code Relu}, {@code LeakyRelu} and {@code Abs}) and {@link Erf}.
 *
 * <p>A nonlinearity maps a Gaussian pre-activation {@code (u, v)} with covariance {@code [[k11,
 * k], [k, k22]]} to {@code nngp' = E[f(u) f(v)]} and {@code ntk' = ntk * E[f'(u) f'(v)]}; its
 * input must therefore be Gaussian, i.e. follow an affine layer.
 */
public final class Elementwise {
  private Elementwise() {}

  /** Base of the nonlinearities: checks that the input is Gaussian. */
  abstract static class Nonlinearity extends SingleInputLayer {
    @Override
    protected Spec outputSpec(Spec input, String path) {
      if (!input.gaussian()) {
        throw new ModelException(path, "the input of " + name() + " is not Gaussian: a "
            + "nonlinearity must follow an affine layer such as Dense (not the raw inputs or "
            + "another nonlinearity)");
      }
      return input.withGaussian(false);
    }

    @Override
    protected final Kernel kernel(Kernel k) {
      if (!k.isGaussian()) {
        throw new ModelException(name(), "the input of " + name() + " is not Gaussian");
      }
      return rule(k).withGaussian(false);
    }

    /** The translation rule on a Gaussian input kernel. */
    abstract Kernel rule(Kernel k);
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
    private final String name;
    private final double a;
    private final double b;

    ABRelu(String name, double a, double b) {
      this.name = name;
      this.a = a;
      this.b = b;
    }

    /** {@code max(x, 0)}. */
    public static ABRelu relu() {
      return new ABRelu("Relu", 0, 1);
    }

    /** {@code x} for {@code x > 0}, {@code alpha x} otherwise. */
    public static ABRelu leakyRelu(double alpha) {
      return new ABRelu("LeakyRelu", alpha, 1);
    }

    /** {@code |x|}. */
    public static ABRelu abs() {
      return new ABRelu("Abs", -1, 1);
    }

    /** {@code a x} for {@code x < 0}, {@code b x} for {@code x > 0}. */
    public static ABRelu abRelu(double a, double b) {
      return new ABRelu("ABRelu", a, b);
    }

    @Override
    public String name() {
      return name;
    }

    @Override
    public Map<String, Object> arguments() {
      Map<String, Object> args = new LinkedHashMap<>();
      switch (name) {
        case "LeakyRelu" -> args.put("alpha", a);
        case "ABRelu" -> {
          args.put("a", a);
          args.put("b", b);
        }
        default -> { }
      }
      return args;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      NDArray pos = Tensors.max(x, 0.0);
      NDArray neg = x.sub(pos);
      return Tensors.mul(pos, b).add(Tensors.mul(neg, a));
    }

    @Override
    Kernel rule(Kernel k) {
      double mean = (a * a + b * b) / 2;
      double factor = (a - b) * (a - b) / (2 * Math.PI);
      NDArray prod = Tensors.outer(k.cov1(), k.cov2());
      NDArray sine = Tensors.max(prod.sub(k.nngp().square()), 0.0).sqrt();
      NDArray angle = sine.atan2(k.nngp());
      NDArray dotSigma = Tensors.add(Tensors.mul(angle, -factor), mean);
      NDArray nngp = Tensors.mul(sine, factor).add(dotSigma.mul(k.nngp()));
      NDArray ntk = k.ntk().mul(dotSigma);
      return k.withValues(nngp, ntk, Tensors.mul(k.cov1(), mean), Tensors.mul(k.cov2(), mean));
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

    public Erf(double a, double b, double c) {
      this.a = a;
      this.b = b;
      this.c = c;
    }

    @Override
    public String name() {
      return "Erf";
    }

    @Override
    public Map<String, Object> arguments() {
      Map<String, Object> args = new LinkedHashMap<>();
      args.put("a", a);
      args.put("b", b);
      args.put("c", c);
      return args;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Tensors.add(Tensors.mul(Tensors.mul(x, b).erf(), a), c);
    }

    @Override
    Kernel rule(Kernel k) {
      double b2 = b * b;
      double a2 = a * a;
      double c2 = c * c;
      NDArray s1 = Tensors.add(Tensors.mul(k.cov1(), 2 * b2), 1.0);
      NDArray s2 = Tensors.add(Tensors.mul(k.cov2(), 2 * b2), 1.0);
      NDArray twoK = Tensors.mul(k.nngp(), 2 * b2);
      // asin(2k / sqrt(s1 s2)) written as atan2(2k, sqrt(s1 s2 - 4k^2)), stable at |rho| -> 1.
      NDArray root = Tensors.max(Tensors.outer(s1, s2).sub(twoK.square()), 0.0).sqrt();
      NDArray nngp = Tensors.add(Tensors.mul(twoK.atan2(root), a2 * 2 / Math.PI), c2);
      NDArray ntk = Tensors.mul(k.ntk(), a2 * b2 * 4 / Math.PI).div(root);
      return k.withValues(nngp, ntk, diagonal(k.cov1(), a2, b2, c2), diagonal(k.cov2(), a2, b2, c2));
    }

    private static NDArray diagonal(NDArray cov, double a2, double b2, double c2) {
      // asin(t / (1 + t)) = atan2(t, sqrt(1 + 2t)) with t = 2 b^2 k11.
      NDArray twoK = Tensors.mul(cov, 2 * b2);
      NDArray root = Tensors.add(Tensors.mul(twoK, 2.0), 1.0).sqrt();
      return Tensors.add(Tensors.mul(twoK.atan2(root), a2 * 2 / Math.PI), c2);
    }
  }
}

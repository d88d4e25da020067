package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Linear layers: {@link Dense}, {@link Flatten}, {@link Identity}. Each holds its finite network
 * and its translation rule side by side, with its {@link LayerType} and factory.
 */
public final class Linear {
  private Linear() {}

  /** How the weights of an affine layer are scaled (see {@code MODEL_SPEC.md}). */
  public enum Parameterization {
    /** {@code z = W_std / sqrt(fan_in) * x W + b_std * b} with {@code W, b ~ N(0, 1)}. */
    NTK,
    /** {@code z = x W + b} with {@code W ~ N(0, W_std^2 / fan_in)}, {@code b ~ N(0, b_std^2)}. */
    STANDARD;

    public String key() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  public static final LayerType DENSE = LayerType.of("Dense", "a fully connected affine layer",
      Dense::new, Argument.positiveInteger("out_dim", 1), Argument.number("W_std", 1.0),
      Argument.optionalNumber("b_std"), Argument.choice("parameterization", "ntk", "standard"));
  public static final LayerType FLATTEN = LayerType.of("Flatten",
      "flattens all non-batch axes into one", Flatten::new);
  public static final LayerType IDENTITY = LayerType.of("Identity", "the identity", Identity::new);

  /** Dense with {@code W_std = 1} and no bias, NTK parameterization. */
  public static Layer dense(int outDim) {
    return DENSE.create(outDim);
  }

  /** Dense in NTK parameterization; {@code bStd == null} means no bias. */
  public static Layer dense(int outDim, double wStd, Double bStd) {
    return DENSE.create(outDim, wStd, bStd);
  }

  public static Layer dense(int outDim, double wStd, Double bStd, Parameterization parameterization) {
    return DENSE.create(outDim, wStd, bStd, parameterization.key());
  }

  public static Layer flatten() {
    return FLATTEN.create();
  }

  public static Layer identity() {
    return IDENTITY.create();
  }

  /**
   * A fully connected layer with {@code out_dim} channels; {@code b_std == null} means no bias.
   *
   * <p>Rule, NTK parameterization: {@code nngp' = W_std^2 nngp + b_std^2} (and the same for the
   * variances), {@code ntk' = nngp' + W_std^2 ntk}. Standard parameterization adds the gradient
   * with respect to unscaled weights instead: {@code ntk' = fan_in nngp + W_std^2 ntk (+ 1 with a
   * bias)}.
   */
  public static final class Dense extends SingleInputLayer {
    private final int outDim;
    private final double wStd;
    private final Double bStd;
    private final Parameterization parameterization;

    Dense(LayerType.Arguments args) {
      super(args);
      this.outDim = args.integer("out_dim");
      this.wStd = args.number("W_std");
      this.bStd = args.optionalNumber("b_std");
      this.parameterization = Parameterization.valueOf(args.choice("parameterization").toUpperCase(Locale.ROOT));
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      if (input.hasSpatialAxes()) {
        throw new ModelException(path, "Dense takes vectors (N, D), but its input has per-example "
            + "shape " + input.shape() + "; put Flatten before it");
      }
      return new Spec(new Shape(outDim), true);
    }

    @Override
    protected Params init(SplittableRandom rng, Spec input, NDManager manager, DataType dtype) {
      long fanIn = input.channels();
      NDArray w = Tensors.standardNormal(rng, manager, new Shape(fanIn, outDim), dtype);
      NDArray b = bStd == null ? null : Tensors.standardNormal(rng, manager, new Shape(outDim), dtype);
      if (parameterization == Parameterization.STANDARD) {
        w = Tensors.mul(w, wStd / Math.sqrt(fanIn));
        b = b == null ? null : Tensors.mul(b, bStd);
      }
      return b == null ? Params.of(w) : Params.of(w, b);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      NDArray w = params.array(0);
      NDArray z = x.matMul(w);
      boolean hasBias = params.arrays().size() > 1;
      if (parameterization == Parameterization.NTK) {
        z = Tensors.mul(z, wStd / Math.sqrt(w.getShape().get(0)));
        return hasBias ? z.add(Tensors.mul(params.array(1), bStd)) : z;
      }
      return hasBias ? z.add(params.array(1)) : z;
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      double w2 = wStd * wStd;
      double b2 = bStd == null ? 0.0 : bStd * bStd;
      Expr nngp = k.nngp().times(w2).plus(b2);
      Expr ntk;
      if (parameterization == Parameterization.NTK) {
        ntk = nngp.plus(k.ntk().times(w2));
      } else {
        ntk = k.nngp().times(context.input(0).channels()).plus(k.ntk().times(w2)).plus(bStd == null ? 0 : 1);
      }
      return k.with(nngp, ntk, v -> v.times(w2).plus(b2));
    }
  }

  /**
   * Flattens all non-batch axes into one. The kernel of a flattened activation is the average of
   * the per-pixel kernels (the pixel-diagonal), because the following {@code Dense} normalizes by
   * the whole fan-in; it needs no covariance between different pixels.
   */
  public static final class Flatten extends SingleInputLayer {
    Flatten(LayerType.Arguments args) {
      super(args);
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      return input.withShape(new Shape(input.shape().size()));
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return x.reshape(x.getShape().get(0), -1);
    }

    @Override
    public java.util.List<Boolean> inputsFull(java.util.List<Boolean> outputsFull, java.util.List<Spec> inputs) {
      return java.util.List.of(false);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      // The average of the per-pixel kernels (the requirements pass hands over only those).
      return Plan.readout(k);
    }
  }

  /** The identity: passes its input and kernel through. */
  public static final class Identity extends SingleInputLayer {
    Identity(LayerType.Arguments args) {
      super(args);
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      return input;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return x;
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      return k;
    }
  }
}

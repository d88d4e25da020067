package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Linear layers: {@link Dense}, {@link Flatten}, {@link Identity}. Each holds its finite network
 * and its translation rule side by side.
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
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /**
   * A fully connected layer with {@code outDim} channels; {@code bStd == null} means no bias.
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

    public Dense(int outDim, double wStd, Double bStd, Parameterization parameterization) {
      if (outDim < 1) {
        throw new IllegalArgumentException("Dense out_dim must be positive, got " + outDim);
      }
      this.outDim = outDim;
      this.wStd = wStd;
      this.bStd = bStd;
      this.parameterization = parameterization;
    }

    @Override
    public String name() {
      return "Dense";
    }

    @Override
    public Map<String, Object> arguments() {
      Map<String, Object> args = new LinkedHashMap<>();
      args.put("out_dim", outDim);
      args.put("W_std", wStd);
      args.put("b_std", bStd);
      args.put("parameterization", parameterization.key());
      return args;
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
    protected Kernel kernel(Kernel k) {
      double w2 = wStd * wStd;
      double b2 = bStd == null ? 0.0 : bStd * bStd;
      NDArray nngp = affine(k.nngp(), w2, b2);
      NDArray ntk;
      if (parameterization == Parameterization.NTK) {
        ntk = nngp.add(Tensors.mul(k.ntk(), w2));
      } else {
        long fanIn = k.shape1().get(k.shape1().dimension() - 1);
        ntk = Tensors.mul(k.nngp(), fanIn).add(Tensors.mul(k.ntk(), w2));
        if (bStd != null) {
          ntk = Tensors.add(ntk, 1.0);
        }
      }
      return k.withValues(nngp, ntk, affine(k.cov1(), w2, b2), affine(k.cov2(), w2, b2))
          .withShapes(new Shape(k.shape1().get(0), outDim), new Shape(k.shape2().get(0), outDim))
          .withGaussian(true);
    }

    private static NDArray affine(NDArray x, double w2, double b2) {
      NDArray scaled = Tensors.mul(x, w2);
      return b2 == 0.0 ? scaled : Tensors.add(scaled, b2);
    }
  }

  /**
   * Flattens all non-batch axes into one. The kernel of a flattened activation is the average of
   * the per-pixel kernels, because the following {@code Dense} normalizes by the whole fan-in.
   */
  public static final class Flatten extends SingleInputLayer {
    @Override
    public String name() {
      return "Flatten";
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of();
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
    protected Kernel kernel(Kernel k) {
      // Kernels of vector activations already are per-example averages: nothing to reduce.
      return k.withShapes(flat(k.shape1()), flat(k.shape2()));
    }

    private static Shape flat(Shape s) {
      return new Shape(s.get(0), s.size() / s.get(0));
    }
  }

  /** The identity: passes its input and kernel through. */
  public static final class Identity extends SingleInputLayer {
    @Override
    public String name() {
      return "Identity";
    }

    @Override
    public Map<String, Object> arguments() {
      return Map.of();
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
    protected Kernel kernel(Kernel k) {
      return k;
    }
  }
}

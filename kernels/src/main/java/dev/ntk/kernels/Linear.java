package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import java.util.List;
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

  /**
   * The bilinear product {@code z = x W} of an affine layer (a matrix product for {@link Dense},
   * a convolution for {@link Convolutional.Conv}), with the transposes its derivatives need.
   * Each output position {@code p} of example {@code n} is {@code X[n, p] W} for a patch {@code
   * X[n, p]} of the input ({@link #patches}), possibly followed by a fold of the positions ({@link
   * #unfold} carries a cotangent back through it).
   */
  interface Product {
    /** {@code x W}. */
    NDArray apply(NDArray x, NDArray w);

    /** The input cotangent for the output cotangent {@code dz}. */
    NDArray backwardInput(NDArray dz, NDArray w);

    /** The weight cotangent for input {@code x} and output cotangent {@code dz}. */
    NDArray backwardFilter(NDArray x, NDArray dz);

    /** The patches {@code (N P, fan_in)}. */
    NDArray patches(NDArray x);

    /** The cotangent of the patch products {@code (N P, out)} for the output cotangent {@code dz}. */
    NDArray unfold(NDArray dz);

    /** {@code P}, the output positions per example before any fold. */
    int positions();

    /**
     * Whether every output position has weights and a bias of its own (a locally connected
     * layer), rather than one filter and bias shared by all positions.
     */
    default boolean perPosition() {
      return false;
    }
  }

  /** {@code Dense}'s product: a matrix product, one position per example. */
  static final Product MATRIX = new Product() {
    @Override
    public NDArray apply(NDArray x, NDArray w) {
      return x.matMul(w);
    }

    /**
     * {@code dz W^T}. TensorFlow through DJL materializes a transpose, so the smaller of the two
     * operands is transposed: {@code (W dz^T)^T} when the weights are the larger (a small batch
     * through a wide layer: at 5 rows and 2048 x 2048 weights the sine network's backward pass
     * went from 40 to 24 ms on a loaded 2-core EPYC).
     */
    @Override
    public NDArray backwardInput(NDArray dz, NDArray w) {
      if (w.getShape().size() > 2 * dz.getShape().size()) {
        try (NDArray dzt = dz.transpose(); NDArray product = w.matMul(dzt)) {
          return product.transpose();
        }
      }
      try (NDArray wt = w.transpose()) {
        return dz.matMul(wt);
      }
    }

    @Override
    public NDArray backwardFilter(NDArray x, NDArray dz) {
      try (NDArray xt = x.transpose()) {
        return xt.matMul(dz);
      }
    }

    @Override
    public NDArray patches(NDArray x) {
      return x;
    }

    @Override
    public NDArray unfold(NDArray dz) {
      return dz;
    }

    @Override
    public int positions() {
      return 1;
    }
  };

  /**
   * {@code Dense}'s product on activations shaped like {@code x}: {@link #MATRIX} on vectors {@code
   * (N, C)}; on images {@code (N, spatial..., C)} the matrix product of each pixel's channels, one
   * position per pixel (the pixels are rows of the matrix {@code (N P, C)}), as neural-tangents'
   * {@code Dense} acts on its {@code channel_axis}.
   */
  static Product perPixel(Shape x) {
    if (x.dimension() <= 2) {
      return MATRIX;
    }
    long channels = x.get(x.dimension() - 1);
    int pixels = Math.toIntExact(x.size() / (x.get(0) * channels));
    return new Product() {
      /** {@code x}'s shape with {@code c} channels. */
      private Shape with(long c) {
        return x.slice(0, x.dimension() - 1).add(c);
      }

      @Override
      public NDArray apply(NDArray in, NDArray w) {
        return MATRIX.apply(in.reshape(-1, channels), w).reshape(with(w.getShape().get(1)));
      }

      @Override
      public NDArray backwardInput(NDArray dz, NDArray w) {
        return MATRIX.backwardInput(unfold(dz), w).reshape(with(channels));
      }

      @Override
      public NDArray backwardFilter(NDArray in, NDArray dz) {
        return MATRIX.backwardFilter(patches(in), unfold(dz));
      }

      @Override
      public NDArray patches(NDArray in) {
        return in.reshape(-1, channels);
      }

      @Override
      public NDArray unfold(NDArray dz) {
        return dz.reshape(-1, dz.getShape().get(dz.getShape().dimension() - 1));
      }

      @Override
      public int positions() {
        return pixels;
      }
    };
  }

  /**
   * How an affine layer ({@link Dense}, {@link Convolutional.Conv}, {@link
   * Convolutional.ConvTranspose}, {@link Convolutional.ConvLocal}) scales its weights and bias: one
   * place for the finite layer's initialization and output and for its kernel rule, given the
   * layer's product {@code z = x W} (or the convolution) and its fan-in.
   *
   * <p>NTK parameterization: {@code z' = W_std / sqrt(fan_in) z + b_std b} with {@code W, b ~ N(0,
   * 1)}; rule {@code nngp' = W_std^2 A(nngp) + b_std^2}, {@code ntk' = nngp' + W_std^2 A(ntk)}.
   * Standard: {@code z' = z + b} with {@code W ~ N(0, W_std^2 / fan_in)}, {@code b ~ N(0,
   * b_std^2)}; the gradient is taken with respect to the unscaled weights, so {@code ntk' = fan_in
   * A(nngp) + W_std^2 A(ntk) (+ 1 with a bias)}. {@code A} is the layer's linear map of the input
   * kernel (the identity for Dense, the filter average for a convolution).
   *
   * @param bStd {@code null}: no bias
   */
  record Affine(double wStd, Double bStd, Parameterization parameterization) {
    /** The {@code W_std}, {@code b_std} and {@code parameterization} arguments of a layer. */
    static Affine of(LayerType.Arguments args) {
      return new Affine(args.number("W_std"), args.optionalNumber("b_std"),
          Parameterization.valueOf(args.choice("parameterization").toUpperCase(Locale.ROOT)));
    }

    /** Weights of {@code weightShape} and, with a bias, {@code channels} biases, as this layer draws them. */
    Params init(SplittableRandom rng, NDManager manager, Shape weightShape, long channels, long fanIn,
        DataType dtype) {
      return init(rng, manager, weightShape, new Shape(channels), fanIn, dtype);
    }

    /**
     * Weights of {@code weightShape} and, with a bias, biases of {@code biasShape} (one per output
     * position and channel for a locally connected layer).
     */
    Params init(SplittableRandom rng, NDManager manager, Shape weightShape, Shape biasShape, long fanIn,
        DataType dtype) {
      NDArray w = Tensors.standardNormal(rng, manager, weightShape, dtype);
      NDArray b = bStd == null ? null : Tensors.standardNormal(rng, manager, biasShape, dtype);
      if (parameterization == Parameterization.STANDARD) {
        w = Tensors.mul(w, wStd / Math.sqrt(fanIn));
        b = b == null ? null : Tensors.mul(b, bStd);
      }
      return b == null ? Params.of(w) : Params.of(w, b);
    }

    /**
     * The names of the arrays {@link #init} returns: {@code W}, then {@code b} with a bias. Under
     * NTK parameterization they hold the N(0, 1) draws that {@link #output} scales by {@code
     * W_std / sqrt(fan_in)} and {@code b_std}; under standard parameterization the weights and
     * biases themselves, as neural-tangents stores them.
     */
    List<String> names() {
      return bStd == null ? List.of("W") : List.of("W", "b");
    }

    /** {@code s}: the factor of the product {@code z = x W} in the output. */
    double weightScale(long fanIn) {
      return parameterization == Parameterization.NTK ? wStd / Math.sqrt(fanIn) : 1.0;
    }

    /** {@code beta}: the factor of the raw bias in the output. */
    double biasScale() {
      return parameterization == Parameterization.NTK ? bStd : 1.0;
    }

    /** The layer's output {@code s z + beta b} from its product {@code z} with the raw weights of {@code params}. */
    NDArray output(NDArray z, Params params, long fanIn) {
      boolean hasBias = params.arrays().size() > 1;
      double s = weightScale(fanIn);
      NDArray scaled = s == 1.0 ? z : Tensors.mul(z, s);
      if (!hasBias) {
        return scaled;
      }
      double beta = biasScale();
      return scaled.add(beta == 1.0 ? params.array(1) : Tensors.mul(params.array(1), beta));
    }

    /**
     * The output's tangent: the output is linear in {@code (z, b)} and {@code z = x W} bilinear,
     * so it is {@link #output} of {@code x dW + dx W} with the bias tangent.
     */
    NDArray tangent(Product product, Params params, Params paramTangents, NDArray x, NDArray dx, long fanIn) {
      NDArray w = params.array(0);
      try (NDArray a = product.apply(dx, w);
          NDArray b = product.apply(x, paramTangents.array(0))) {
        return output(a.add(b), paramTangents, fanIn);
      }
    }

    /**
     * The output's second derivative along the weight tangent {@code v_W} and input tangent {@code
     * dx}: the output is bilinear in the input and the weights and linear in the bias, so it is
     * {@code 2 s product(dx, v_W)}.
     */
    NDArray curvature(Product product, Params paramTangents, NDArray dx, long fanIn) {
      try (NDArray z = product.apply(dx, paramTangents.array(0))) {
        return Tensors.mul(z, 2 * weightScale(fanIn));
      }
    }

    /**
     * The backward pass: {@code dz = s dy}; weights {@code product^T(x, dz)}, bias {@code beta
     * sum dy}, input {@code product^T(dz, W)}; with a tape, the factors instead of the weight and
     * bias cotangents.
     */
    Cotangents backward(Product product, Params params, NDArray x, NDArray dy, long fanIn, AffineTape tape,
        boolean inputCotangent) {
      NDArray w = params.array(0);
      boolean hasBias = params.arrays().size() > 1;
      NDArray dz = Tensors.mul(dy, weightScale(fanIn));
      List<NDArray> dx = inputCotangent ? List.of(product.backwardInput(dz, w)) : List.of();
      if (tape != null) {
        NDArray biasFactor = null;
        if (hasBias) {
          int rank = dy.getShape().dimension();
          // Biases of their own per position: the factor keeps the positions, (N, P out).
          biasFactor = rank == 2 ? Tensors.mul(dy, biasScale())
              : product.perPosition() ? Tensors.mul(dy.reshape(dy.getShape().get(0), -1), biasScale())
              : Tensors.mul(dy.sum(middleAxes(rank)), biasScale());
        }
        tape.record(new AffineTape.Factors(() -> product.patches(x), product.positions(), product.unfold(dz),
            biasFactor));
        return new Cotangents(Params.EMPTY, dx);
      }
      NDArray dw = product.backwardFilter(x, dz);
      if (!hasBias) {
        return new Cotangents(Params.of(dw), dx);
      }
      int rank = dy.getShape().dimension();
      int[] axes = new int[product.perPosition() ? 1 : rank - 1];
      for (int k = 0; k < axes.length; k++) {
        axes[k] = k;
      }
      return new Cotangents(Params.of(dw, Tensors.mul(dy.sum(axes), biasScale())), dx);
    }

    /** The axes strictly between the batch and the channel axis. */
    private static int[] middleAxes(int rank) {
      int[] axes = new int[rank - 2];
      for (int k = 0; k < axes.length; k++) {
        axes[k] = k + 1;
      }
      return axes;
    }

    /** The output kernel from {@code a}, the input kernel already mapped by the layer's {@code A}. */
    KernelExpr rule(KernelExpr a, long fanIn) {
      double w2 = wStd * wStd;
      double b2 = bStd == null ? 0.0 : bStd * bStd;
      Expr nngp = a.nngp().times(w2).plus(b2);
      Expr ntk = parameterization == Parameterization.NTK ? nngp.plus(a.ntk().times(w2))
          : a.nngp().times(fanIn).plus(a.ntk().times(w2)).plus(bStd == null ? 0 : 1);
      return a.with(nngp, ntk, v -> v.times(w2).plus(b2));
    }
  }

  public static final LayerType DENSE = LayerType.of("Dense", "a fully connected affine layer",
      Dense::new, Argument.positiveInteger("out_dim", 1), Argument.number("W_std", 1.0),
      Argument.optionalNumber("b_std"), Argument.choice("parameterization", "ntk", "standard"));
  public static final LayerType FLATTEN = LayerType.of("Flatten",
      "flattens all non-batch axes into one", Flatten::new);
  public static final LayerType IDENTITY = LayerType.of("Identity", "the identity", Identity::new);
  public static final LayerType DOT_GENERAL = LayerType.of("DotGeneral",
      "lax.dot_general of the input with a constant array lhs or rhs (neural-tangents' DotGeneral)", DotGeneral::new,
      Argument.optionalArray("lhs"), Argument.optionalArray("rhs"), Argument.dimensionNumbers("dimension_numbers"),
      Argument.integer("batch_axis", 0), Argument.integer("channel_axis", -1));

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
   * {@code lax.dot_general(x, rhs, dimension_numbers)} with a constant {@code rhs} (a number, {@code
   * double[]}, {@code double[][]} or nested lists), or with {@code lhs} {@code lax.dot_general(lhs,
   * x, dimension_numbers)}; {@code dimensionNumbers} {@code {{lhs_contracting, rhs_contracting},
   * {lhs_batch, rhs_batch}}}, null for none.
   */
  public static Layer dotGeneral(Object lhs, Object rhs, int[][][] dimensionNumbers) {
    return dimensionNumbers == null ? DOT_GENERAL.create(lhs, rhs) : DOT_GENERAL.create(lhs, rhs, dimensionNumbers);
  }

  /**
   * A fully connected layer with {@code out_dim} channels; {@code b_std == null} means no bias. On
   * images {@code (N, spatial..., C)} it maps each pixel's channels (a convolution with a filter of
   * one pixel), and its rule acts on every pixel block entry alike.
   *
   * <p>Rule, NTK parameterization: {@code nngp' = W_std^2 nngp + b_std^2} (and the same for the
   * variances), {@code ntk' = nngp' + W_std^2 ntk}. Standard parameterization adds the gradient
   * with respect to unscaled weights instead: {@code ntk' = fan_in nngp + W_std^2 ntk (+ 1 with a
   * bias)}.
   */
  public static final class Dense extends SingleInputLayer {
    private final int outDim;
    private final Affine affine;

    Dense(LayerType.Arguments args) {
      super(args);
      this.outDim = args.integer("out_dim");
      this.affine = Affine.of(args);
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      Shape s = input.shape();
      return new Spec(s.slice(0, s.dimension() - 1).add(outDim), true);
    }

    /** {@code W} {@code (in, out)}, then {@code b} {@code (out,)} with a bias. */
    @Override
    public List<String> parameterNames() {
      return affine.names();
    }

    @Override
    protected Params init(SplittableRandom rng, Spec input, NDManager manager, DataType dtype) {
      long fanIn = input.channels();
      return affine.init(rng, manager, new Shape(fanIn, outDim), outDim, fanIn, dtype);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      NDArray w = params.array(0);
      return affine.output(perPixel(x.getShape()).apply(x, w), params, w.getShape().get(0));
    }

    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return affine.tangent(perPixel(x.getShape()), params, paramTangents, x, dx, params.array(0).getShape().get(0));
    }

    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return affine.curvature(perPixel(x.getShape()), paramTangents, dx, params.array(0).getShape().get(0));
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return affine.backward(perPixel(x.getShape()), params, x, dy, params.array(0).getShape().get(0), tape,
          inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      return affine.rule(k, context.input(0).channels());
    }
  }

  /**
   * Flattens all non-batch axes into one. The kernel of a flattened activation is the average of
   * the per-pixel kernels (the pixel-diagonal), because the following {@code Dense} normalizes by
   * the whole fan-in; it needs no covariance between different pixels.
   */
  public static final class Flatten extends FixedLinearLayer {
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
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> dy.reshape(x.getShape()), inputCotangent);
    }

    @Override
    public java.util.List<Boolean> inputsFull(java.util.List<Boolean> outputsFull, java.util.List<Spec> inputs) {
      return java.util.List.of(false);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      // The average of the per-pixel kernels (the requirements pass hands over only those).
      return Plan.readout(k, Spatial.REDUCED);
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
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return dx;
    }

    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return null;
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> dy, inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      return k;
    }
  }

  /**
   * {@code DotGeneral}, neural-tangents' product with a constant array: {@code lax.dot_general(x,
   * rhs, dimension_numbers)}, or with {@code lhs} {@code lax.dot_general(lhs, x, dimension_numbers)};
   * neither is the identity. Linear in its input, so Gaussian inputs stay Gaussian and the kernel is
   * the bilinear map {@code K' = A K A^T} of the covariance.
   *
   * <p>Activations here are batch-first and channel-last, and {@code lax.dot_general} puts batch
   * axes of the product first, the constant's free axes after the input's ({@code rhs}) or before
   * them ({@code lhs}): the products that keep the examples first and the channels last are those
   * that contract every axis of the constant with spatial axes of the input, which this layer takes.
   * A number scales the input ({@code K' = c^2 K}); a constant contracted with spatial axes sums
   * the input over them with its entries as weights, removing them ({@code K'[p, q] = sum_{s, t}
   * A[s] A[t] K[(s, p), (t, q)]}, which needs the covariance of every two pixels): over one axis a
   * pixel map, over several the pixel-pair block weighed by {@code A[s] A[t]} (a constant block)
   * and summed over them. neural-tangents also contracts the batch axis (a kernel between the
   * examples of a batch) and moves the batch and channel axes; those are refused by name.
   */
  public static final class DotGeneral extends FixedLinearLayer {
    private final LayerType.NumberArray other;
    private final boolean isLhs;
    private final int[][][] dimensionNumbers;
    private final int batchAxis;
    private final int channelAxis;

    DotGeneral(LayerType.Arguments args) {
      super(args);
      LayerType.NumberArray lhs = args.array("lhs");
      LayerType.NumberArray rhs = args.array("rhs");
      if (lhs != null && rhs != null) {
        throw new IllegalArgumentException("at most one of lhs and rhs can be given: the other factor is the "
            + "layer's input");
      }
      this.isLhs = lhs != null;
      this.other = isLhs ? lhs : rhs;
      this.dimensionNumbers = args.dimensionNumbers("dimension_numbers");
      this.batchAxis = args.integer("batch_axis");
      this.channelAxis = args.integer("channel_axis");
    }

    /**
     * What the layer does to inputs of one shape: multiply by {@code scale}, then sum over the
     * input's {@code axes} (batch-first numbering, ascending) with {@code weights}, the constant's
     * entries in the order of those axes, row-major; no axes and scale 1 for the identity.
     */
    private record Contraction(int[] axes, int[] sizes, double[] weights, double scale) {
      int size() {
        return weights == null ? 1 : weights.length;
      }
    }

    private Contraction contraction(Spec input, String path) {
      int n = input.shape().dimension() + 1;
      String name = isLhs ? "lhs" : "rhs";
      if (Math.floorMod(batchAxis, n) != 0 || Math.floorMod(channelAxis, n) != n - 1 || batchAxis >= n
          || batchAxis < -n || channelAxis >= n || channelAxis < -n) {
        throw new ModelException(path, "activations are batch-first and channel-last: batch_axis must be 0 and "
            + "channel_axis -1 (or " + (n - 1) + "), got batch_axis=" + batchAxis + ", channel_axis=" + channelAxis);
      }
      int[] inputContracting = dimensionNumbers[0][isLhs ? 1 : 0];
      int[] otherContracting = dimensionNumbers[0][isLhs ? 0 : 1];
      int[] inputBatch = dimensionNumbers[1][isLhs ? 1 : 0];
      int[] otherBatch = dimensionNumbers[1][isLhs ? 0 : 1];
      String numbers = java.util.Arrays.deepToString(dimensionNumbers);
      if (other == null) {
        if (inputContracting.length + otherContracting.length + inputBatch.length + otherBatch.length > 0) {
          throw new ModelException(path, "dimension_numbers " + numbers + " names axes, but neither lhs nor rhs is "
              + "given (the layer is then the identity)");
        }
        return new Contraction(new int[0], new int[0], null, 1.0);
      }
      if (inputBatch.length > 0 || otherBatch.length > 0) {
        throw new ModelException(path, "dimension_numbers " + numbers + " has batch axes, which lax.dot_general "
            + "puts first in its output, ahead of the examples' axis; activations here are batch-first and "
            + "channel-last, so only contracting axes are supported");
      }
      if (inputContracting.length != otherContracting.length) {
        throw new ModelException(path, "dimension_numbers " + numbers + " pairs " + inputContracting.length
            + " contracting axes of the input with " + otherContracting.length + " of " + name);
      }
      int rank = other.rank();
      int[] in = canonical(inputContracting, n, "the input", numbers, path);
      int[] of = canonical(otherContracting, rank, name, numbers, path);
      if (of.length != rank) {
        throw new ModelException(path, name + " has shape " + java.util.Arrays.toString(other.shape())
            + " but dimension_numbers " + numbers + " contracts " + of.length + " of its axes: lax.dot_general puts "
            + "the others " + (isLhs ? "before the examples' axis" : "after the channel axis") + ", and activations "
            + "here are batch-first and channel-last");
      }
      Integer[] order = new Integer[in.length];
      for (int i = 0; i < in.length; i++) {
        order[i] = i;
        if (in[i] == 0) {
          throw new ModelException(path, "dimension_numbers " + numbers + " contracts the batch axis 0: a kernel "
              + "here pairs the examples one by one, so a product across examples is not supported");
        }
        if (in[i] == n - 1) {
          throw new ModelException(path, "dimension_numbers " + numbers + " contracts the channel axis " + (n - 1)
              + ", which has no meaning in the infinite-width limit (as in neural-tangents)");
        }
        long size = input.shape().get(in[i] - 1);
        if (size != other.shape()[of[i]]) {
          throw new ModelException(path, "dimension_numbers " + numbers + " contracts axis " + in[i] + " of the "
              + "input (size " + size + ", per-example shape " + input.shape() + ") with axis " + of[i] + " of "
              + name + " (size " + other.shape()[of[i]] + ", shape " + java.util.Arrays.toString(other.shape())
              + "): the sizes must agree");
        }
      }
      if (in.length == 0) {
        return new Contraction(new int[0], new int[0], null, other.values()[0]);
      }
      java.util.Arrays.sort(order, java.util.Comparator.comparingInt(i -> in[i]));
      int[] axes = new int[in.length];
      int[] sizes = new int[in.length];
      int[] source = new int[in.length];
      for (int i = 0; i < in.length; i++) {
        axes[i] = in[order[i]];
        source[i] = of[order[i]];
        sizes[i] = other.shape()[source[i]];
      }
      // The constant's entries in the order of the input's axes: transposed, row-major.
      int[] strides = new int[rank];
      for (int a = rank - 1, st = 1; a >= 0; a--) {
        strides[a] = st;
        st *= other.shape()[a];
      }
      double[] weights = new double[other.values().length];
      int[] index = new int[in.length];
      for (int flat = 0; flat < weights.length; flat++) {
        int at = 0;
        for (int i = 0; i < in.length; i++) {
          at += index[i] * strides[source[i]];
        }
        weights[flat] = other.values()[at];
        for (int i = in.length - 1; i >= 0 && ++index[i] == sizes[i]; i--) {
          index[i] = 0;
        }
      }
      return new Contraction(axes, sizes, weights, 1.0);
    }

    /** {@code axes} of an array of {@code rank} axes, negative ones from the end, each in range and once. */
    private static int[] canonical(int[] axes, int rank, String of, String numbers, String path) {
      int[] out = new int[axes.length];
      for (int i = 0; i < axes.length; i++) {
        if (axes[i] < -rank || axes[i] >= rank) {
          throw new ModelException(path, "dimension_numbers " + numbers + " names axis " + axes[i] + " of " + of
              + ", which has " + rank + " axes");
        }
        out[i] = Math.floorMod(axes[i], rank);
        for (int j = 0; j < i; j++) {
          if (out[j] == out[i]) {
            throw new ModelException(path, "dimension_numbers " + numbers + " names axis " + out[i] + " of " + of
                + " twice");
          }
        }
      }
      return out;
    }

    /** Whether input axis {@code a} (batch-first numbering) is contracted. */
    private static boolean contracted(Contraction c, int a) {
      for (int x : c.axes()) {
        if (x == a) {
          return true;
        }
      }
      return false;
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      Contraction c = contraction(input, path);
      Shape s = input.shape();
      java.util.List<Long> dims = new java.util.ArrayList<>();
      for (int a = 1; a <= s.dimension(); a++) {
        if (!contracted(c, a)) {
          dims.add(s.get(a - 1));
        }
      }
      return input.withShape(new Shape(dims.stream().mapToLong(Long::longValue).toArray()));
    }

    @Override
    public java.util.List<Boolean> inputsFull(java.util.List<Boolean> outputsFull, java.util.List<Spec> inputs) {
      return java.util.List.of(contraction(inputs.get(0), name()).axes().length > 0 || outputsFull.contains(true));
    }

    /** The input's axes with the contracted ones last: {@code [0, kept..., contracted...]}. */
    private static int[] moveLast(Contraction c, int rank) {
      int[] perm = new int[rank];
      int at = 0;
      for (int a = 0; a < rank; a++) {
        if (!contracted(c, a)) {
          perm[at++] = a;
        }
      }
      for (int a : c.axes()) {
        perm[at++] = a;
      }
      return perm;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      Contraction c = contraction(Spec.input(x.getShape().slice(1)), name());
      if (c.axes().length == 0) {
        return c.scale() == 1.0 ? x : Tensors.mul(x, c.scale());
      }
      Shape s = x.getShape();
      int[] perm = moveLast(c, s.dimension());
      long[] out = new long[s.dimension() - c.axes().length];
      for (int i = 0; i < out.length; i++) {
        out[i] = s.get(perm[i]);
      }
      try (NDArray moved = x.transpose(perm);
          NDArray rows = moved.reshape(-1, c.size());
          NDArray w = Tensors.create(x.getManager(), c.weights(), new Shape(c.size(), 1), x.getDataType());
          NDArray product = rows.matMul(w)) {
        return product.reshape(new Shape(out));
      }
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> {
        Contraction c = contraction(Spec.input(x.getShape().slice(1)), name());
        if (c.axes().length == 0) {
          return c.scale() == 1.0 ? dy : Tensors.mul(dy, c.scale());
        }
        Shape s = x.getShape();
        int[] perm = moveLast(c, s.dimension());
        long[] moved = new long[s.dimension()];
        int[] inverse = new int[perm.length];
        for (int i = 0; i < perm.length; i++) {
          moved[i] = s.get(perm[i]);
          inverse[perm[i]] = i;
        }
        try (NDArray column = dy.reshape(-1, 1);
            NDArray w = Tensors.create(dy.getManager(), c.weights(), new Shape(1, c.size()), dy.getDataType());
            NDArray product = column.matMul(w);
            NDArray shaped = product.reshape(new Shape(moved))) {
          return shaped.transpose(inverse);
        }
      }, inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      Contraction c = contraction(context.input(0), context.path());
      if (c.axes().length == 0) {
        double c2 = c.scale() * c.scale();
        return c2 == 1.0 ? k : k.with(k.nngp().times(c2), k.ntk().times(c2), v -> v.times(c2));
      }
      double total = java.util.Arrays.stream(c.weights()).sum();
      int[] grid = Plan.spatialGrid(context.input(0));
      java.util.function.UnaryOperator<Expr> map;
      if (c.axes().length > 1) {
        // Several axes: the pixel-pair block weighed by A[s] A[t] (s, t the contracted parts of the two
        // pixels), then summed over the contracted axes (a row of ones on each), the others kept.
        int pixels = 1;
        for (int g : grid) {
          pixels *= g;
        }
        int[] part = new int[pixels];
        for (int p = 0; p < pixels; p++) {
          int rest = p;
          int index = 0;
          int stride = 1;
          for (int a = grid.length - 1; a >= 0; a--) {
            int coordinate = rest % grid[a];
            rest /= grid[a];
            if (contracted(c, a + 1)) {
              index += coordinate * stride;
              stride *= grid[a];
            }
          }
          part[p] = index;
        }
        double[] pairs = new double[pixels * pixels];
        for (int p = 0; p < pixels; p++) {
          for (int q = 0; q < pixels; q++) {
            pairs[p * pixels + q] = c.weights()[part[p]] * c.weights()[part[q]];
          }
        }
        Expr weights = Expr.block(dev.ntk.kernels.engine.Layout.full(grid), pairs);
        if (c.axes().length == grid.length) {
          map = e -> e.times(weights).sum(1.0);
        } else {
          java.util.List<double[][]> matrices = new java.util.ArrayList<>();
          boolean[] drop = new boolean[grid.length];
          for (int a = 0; a < grid.length; a++) {
            drop[a] = contracted(c, a + 1);
            double[][] ones = new double[1][grid[a]];
            java.util.Arrays.fill(ones[0], 1.0);
            matrices.add(drop[a] ? ones : identity(grid[a]));
          }
          dev.ntk.kernels.engine.PixelMap sum =
              dev.ntk.kernels.engine.PixelMap.linear(dev.ntk.kernels.engine.Layout.Kind.FULL, matrices, drop);
          map = e -> e.times(weights).pixels(sum);
        }
      } else {
        // One axis: its matrix is the one row A, the other axes stay.
        int axis = c.axes()[0] - 1;
        java.util.List<double[][]> matrices = new java.util.ArrayList<>();
        boolean[] drop = new boolean[grid.length];
        for (int a = 0; a < grid.length; a++) {
          matrices.add(a == axis ? new double[][] {c.weights()} : identity(grid[a]));
          drop[a] = a == axis;
        }
        dev.ntk.kernels.engine.PixelMap pixelMap = grid.length == 1
            ? dev.ntk.kernels.engine.PixelMap.linear(dev.ntk.kernels.engine.Layout.Kind.FULL, matrices)
            : dev.ntk.kernels.engine.PixelMap.linear(dev.ntk.kernels.engine.Layout.Kind.FULL, matrices, drop);
        map = grid.length == 1 ? e -> e.pixels(pixelMap).sum(1.0) : e -> e.pixels(pixelMap);
      }
      // A constant is the same for every two pixels: its sums are total^2 times it.
      java.util.function.UnaryOperator<Expr> all = e -> e.isConstant() ? e.times(total * total) : map.apply(e);
      return new KernelExpr(all.apply(k.nngp()), all.apply(k.ntk()), all.apply(k.var1()), all.apply(k.var2()));
    }

    private static double[][] identity(int n) {
      double[][] a = new double[n][n];
      for (int p = 0; p < n; p++) {
        a[p][p] = 1;
      }
      return a;
    }
  }
}

package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import dev.ntk.kernels.engine.PixelMap;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * Layers that rescale their input by statistics of it or by chance: {@link LayerNorm} and {@link
 * Dropout}, with neural-tangents' names, arguments, defaults and rules ({@code stax.LayerNorm},
 * {@code stax.Dropout}).
 */
public final class Normalization {
  private Normalization() {}

  public static final LayerType LAYER_NORM = LayerType.of("LayerNorm",
      "(x - mean) / sqrt(eps + variance), mean and variance over axis (the channel axis and any spatial axes)",
      LayerNorm::new, Argument.axes("axis", -1), Argument.number("eps", 1e-12), Argument.integer("batch_axis", 0),
      Argument.integer("channel_axis", -1));
  public static final LayerType DROPOUT = LayerType.of("Dropout",
      "train: keeps each entry with probability rate and divides it by rate; test: the identity",
      Dropout::new, Argument.requiredNumber("rate"), Argument.choice("mode", "train", "test"));

  /** Whether {@code layer} or a layer inside it is a {@link Dropout} that draws masks (train mode, rate below 1). */
  static boolean drawsMasks(Layer layer) {
    if (layer instanceof Dropout d && d.train && d.rate < 1) {
      return true;
    }
    return layer.children().stream().anyMatch(Normalization::drawsMasks);
  }

  /** Layer normalization over the channel axis, {@code eps = 1e-12}. */
  public static Layer layerNorm() {
    return LAYER_NORM.create();
  }

  /**
   * Layer normalization over {@code axis} (the channel axis {@code -1}, optionally with spatial
   * axes; indices of the batch-first activation {@code (N, spatial..., C)}).
   */
  public static Layer layerNorm(int[] axis, double eps) {
    return LAYER_NORM.create(axis, eps);
  }

  /** Dropout in train mode keeping each entry with probability {@code rate}. */
  public static Layer dropout(double rate) {
    return DROPOUT.create(rate);
  }

  /** Dropout keeping each entry with probability {@code rate}; {@code mode} "train" or "test". */
  public static Layer dropout(double rate, String mode) {
    return DROPOUT.create(rate, mode);
  }

  /**
   * {@code (x - mean) / sqrt(eps + var)}, mean and variance over {@code axis} of each example.
   *
   * <p>Rule (neural-tangents'): the channel axis must be among the normalized axes, where the
   * infinite width makes the variance over channels that of the Gaussian input, and the input
   * must be Gaussian. With {@code m(x) = eps + } the mean over the normalized spatial axes of
   * input {@code x}'s per-pixel variance (the variance itself over channels alone), {@code
   * nngp'[p, q] = nngp[p, q] / sqrt(m1[p] m2[q])}, the NTK likewise and each variance by its own
   * {@code m}. Normalizing over the batch axis would mix the examples of a batch, which no kernel
   * here keeps, and is rejected; the activations are batch-first and channel-last, so {@code
   * batch_axis} must be 0 and {@code channel_axis} the last.
   */
  public static final class LayerNorm extends SingleInputLayer {
    private final int[] axis;
    private final double eps;
    private final int batchAxis;
    private final int channelAxis;

    LayerNorm(LayerType.Arguments args) {
      super(args);
      this.axis = args.axes("axis");
      this.eps = args.number("eps");
      this.batchAxis = args.integer("batch_axis");
      this.channelAxis = args.integer("channel_axis");
      if (!(eps >= 0) || Double.isInfinite(eps)) {
        throw new IllegalArgumentException("argument \"eps\" must be a finite number >= 0, got " + eps);
      }
    }

    /** The normalized axes of a batch-first activation of rank {@code rank}, ascending; errors name {@code path}. */
    private int[] axes(int rank, String path) {
      if (canonical(batchAxis, rank, "batch_axis", path) != 0
          || canonical(channelAxis, rank, "channel_axis", path) != rank - 1) {
        throw new ModelException(path, "activations here are batch-first and channel-last (N, spatial..., C): "
            + "batch_axis must be 0 and channel_axis -1 (or " + (rank - 1) + "), got batch_axis=" + batchAxis
            + ", channel_axis=" + channelAxis);
      }
      TreeSet<Integer> set = new TreeSet<>();
      for (int a : axis) {
        set.add(canonical(a, rank, "axis", path));
      }
      if (!set.contains(rank - 1)) {
        throw new ModelException(path, "argument \"axis\" must include the channel axis (-1 or " + (rank - 1)
            + "), over which the infinite width makes the normalization converge; got " + Arrays.toString(axis));
      }
      if (set.contains(0)) {
        throw new ModelException(path, "argument \"axis\" includes the batch axis 0: normalizing over the batch "
            + "mixes its examples, which no kernel here keeps; got " + Arrays.toString(axis));
      }
      return set.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int canonical(int a, int rank, String name, String path) {
      if (a < -rank || a >= rank) {
        throw new ModelException(path, "argument \"" + name + "\" has axis " + a + ", outside an activation of "
            + rank + " axes (N, spatial..., C)");
      }
      return Math.floorMod(a, rank);
    }

    /** Which spatial axes of an activation described by {@code spec} are normalized. */
    private boolean[] spatial(Spec spec, String path) {
      int rank = spec.shape().dimension() + 1;
      boolean[] averaged = new boolean[rank - 2];
      for (int a : axes(rank, path)) {
        if (a >= 1 && a <= rank - 2) {
          averaged[a - 1] = true;
        }
      }
      return averaged;
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      spatial(input, path);
      if (!input.gaussian()) {
        throw new ModelException(path, "the input of LayerNorm is not Gaussian: its infinite-width rule "
            + "(neural-tangents') needs it to follow an affine layer such as Dense or Conv");
      }
      return input;
    }

    /** The normalized axes of {@code x} (batch-first). */
    private int[] axes(NDArray x) {
      return axes(x.getShape().dimension(), name());
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return Normalized.of(x, axes(x), eps).y();
    }

    /**
     * The output {@code y = (x - mean(x)) / s} of an input {@code x} and its scale {@code s = sqrt(eps
     * + var)}, kept over the normalized axes {@code a}: what the output and its derivatives share.
     */
    private record Normalized(int[] a, NDArray s, NDArray y) {
      static Normalized of(NDArray x, int[] a, double eps) {
        NDArray centred = centre(x, a);
        NDArray s = Tensors.add(centred.square().mean(a, true), eps).sqrt();
        return new Normalized(a, s, centred.div(s));
      }

      /** {@code v - mean(v)} over the normalized axes. */
      static NDArray centre(NDArray v, int[] a) {
        return v.sub(v.mean(a, true));
      }
    }

    /**
     * With {@code y} the output, {@code s} the scale and {@code dc = dx - mean(dx)}: {@code dy = (dc
     * - y mean(y dc)) / s}.
     */
    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      Normalized n = Normalized.of(x, axes(x), eps);
      NDArray dc = Normalized.centre(dx, n.a());
      return dc.sub(n.y().mul(n.y().mul(dc).mean(n.a(), true))).div(n.s());
    }

    /**
     * Differentiating {@code dy} once more along {@code dx} ({@code ds = q = mean(y dc)}, {@code dq
     * = mean(dy dc)}): {@code -(2 q dy + y mean(dy dc)) / s}.
     */
    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      Normalized n = Normalized.of(x, axes(x), eps);
      int[] a = n.a();
      NDArray y = n.y();
      NDArray dc = Normalized.centre(dx, a);
      NDArray q = y.mul(dc).mean(a, true);
      NDArray dy = dc.sub(y.mul(q)).div(n.s());
      return Tensors.mul(q.mul(dy), 2).add(y.mul(dy.mul(dc).mean(a, true))).div(n.s()).neg();
    }

    /** The transpose of {@link #tangent}: {@code u = g / s - y mean(y g / s)}, {@code dx = u - mean(u)}. */
    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> {
        Normalized n = Normalized.of(x, axes(x), eps);
        NDArray h = dy.div(n.s());
        NDArray u = h.sub(n.y().mul(h.mul(n.y()).mean(n.a(), true)));
        return Normalized.centre(u, n.a());
      }, inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      boolean[] averaged = spatial(context.input(0), context.path());
      boolean any = false;
      for (boolean b : averaged) {
        any |= b;
      }
      if (any && k.masked()) {
        // neural-tangents averages over the kept positions there; not carried over yet
        throw Masks.unsupported(this, context, "its axis " + Arrays.toString(axis) + " averages over positions");
      }
      PixelMap mean = any ? PixelMap.axisMean(Plan.spatialGrid(context.input(0)), averaged) : null;
      if (!k.isFull()) {
        Expr m1 = normalizer(k.var1(), mean);
        Expr m2 = normalizer(k.var2(), mean);
        Expr s12 = m1.times(m2).sqrt();
        // var / sqrt(m m), not var / m: on the diagonal of x1 with itself the pair's formula, to the last bit.
        return new KernelExpr(over(k.nngp(), s12), over(k.ntk(), s12), over(k.var1(), m1.times(m1).sqrt()),
            over(k.var2(), m2.times(m2).sqrt()));
      }
      Expr m1 = normalizer(diagonal(k.var1()), mean);
      Expr m2 = normalizer(diagonal(k.var2()), mean);
      Expr s12 = spread(m1, true).times(spread(m2, false)).sqrt();
      return new KernelExpr(over(k.nngp(), s12), over(k.ntk(), s12),
          over(k.var1(), spread(m1, true).times(spread(m1, false)).sqrt()),
          over(k.var2(), spread(m2, true).times(spread(m2, false)).sqrt()));
    }

    /** {@code eps} plus the per-pixel variances {@code v} averaged over the normalized spatial axes. */
    private Expr normalizer(Expr v, PixelMap mean) {
      return (mean == null || v.isConstant() ? v : v.pixels(mean)).plus(eps);
    }

    private static Expr diagonal(Expr e) {
      return e.isConstant() ? e : e.diagonal();
    }

    private static Expr spread(Expr e, boolean row) {
      return e.isConstant() ? e : row ? e.spreadRow() : e.spreadCol();
    }

    /** {@code e / d}, a zero kept as the constant it is (the NTK of the raw inputs). */
    private static Expr over(Expr e, Expr d) {
      return e.isConstant() && e.value() == 0 ? e : e.div(d);
    }
  }

  /**
   * Dropout: in {@code "train"} mode each entry is kept with probability {@code rate} (the keep
   * probability, as in neural-tangents and {@code jax.example_libraries.stax}) and divided by it,
   * else set to 0; in {@code "test"} mode the identity.
   *
   * <p>Rule in train mode (neural-tangents'): the variance of every input, per pixel, is divided by
   * {@code rate} (two different examples, or one in x1 and another in x2, meet independent masks,
   * so their covariance is unchanged); in a kernel of x1 with itself the kernel of each example
   * with itself, NNGP and NTK, is divided by {@code rate} too, pixel by pixel ({@link
   * RuleContext#sameExample()}). The output is not Gaussian.
   *
   * <p>The finite network draws its masks from the layer's key, a parameter that {@link #init}
   * draws (an integer plus one half, so that the perturbations of a finite difference leave it
   * where it is) and nothing trains: its gradient is zero. The mask of an activation is a function
   * of the key and the activation's shape, so that x1 with itself meets the same masks in both
   * factors of {@code f(x1) f(x1)^T}, as in neural-tangents, where {@code x2 = None} shares the
   * random key. neural-tangents splits the key for a given x2: {@link EmpiricalKernels} (and so
   * {@link MonteCarlo}) follows it by running a network that draws masks on both batches together.
   */
  public static final class Dropout extends SingleInputLayer {
    /** Keys are whole numbers below this (exact in float32 with the half added). */
    private static final double KEYS = 1 << 20;
    private final double rate;
    private final boolean train;

    Dropout(LayerType.Arguments args) {
      super(args);
      this.rate = args.number("rate");
      this.train = args.choice("mode").equals("train");
      if (!(rate > 0 && rate <= 1)) {
        throw new IllegalArgumentException("argument \"rate\" (the probability of keeping an entry) must be in "
            + "(0, 1], got " + rate);
      }
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      return train ? input.withGaussian(false) : input;
    }

    /** {@code key} in train mode, none in test mode. */
    @Override
    public List<String> parameterNames() {
      return train ? List.of("key") : List.of();
    }

    @Override
    protected Params init(SplittableRandom rng, Spec input, NDManager manager, DataType dtype) {
      if (!train) {
        return Params.EMPTY;
      }
      double key = Math.floor(rng.nextDouble() * KEYS) + 0.5;
      return Params.of(Tensors.create(manager, new double[] {key}, new Shape(1), dtype));
    }

    /** {@code 1 / rate} where an entry is kept, 0 elsewhere, shaped as {@code x}, from the key in {@code params}. */
    private NDArray mask(Params params, NDArray x) {
      long seed = (long) Math.floor(params.array(0).toType(DataType.FLOAT64, false).getDouble(0));
      SplittableRandom r = new SplittableRandom(seed);
      double[] m = new double[Math.toIntExact(x.getShape().size())];
      for (int i = 0; i < m.length; i++) {
        m[i] = r.nextDouble() < rate ? 1 / rate : 0;
      }
      return Tensors.create(x.getManager(), m, x.getShape(), x.getDataType());
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return train ? x.mul(mask(params, x)) : x;
    }

    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return train ? dx.mul(mask(params, x)) : dx;
    }

    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return null;
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      if (!train) {
        return inputOnly(() -> dy, inputCotangent);
      }
      List<NDArray> dx = inputCotangent ? List.of(dy.mul(mask(params, x))) : List.of();
      return new Cotangents(tape != null ? Params.EMPTY : Params.of(params.array(0).zerosLike()), dx);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      if (!train || rate == 1) {
        return k;
      }
      boolean same = context.sameExample();
      return new KernelExpr(same ? scaled(k.nngp()) : k.nngp(), same ? scaled(k.ntk()) : k.ntk(),
          scaled(k.var1()), scaled(k.var2()));
    }

    /** {@code e / rate} per pixel: on pixel-pair blocks, the covariance of each pixel with itself only. */
    private Expr scaled(Expr e) {
      if (e.layout().kind() != Layout.Kind.FULL) {
        return e.times(1 / rate);
      }
      return e.plus(e.pixels(PixelMap.pixelDiagonal(e.layout().grid())).times(1 / rate - 1));
    }
  }
}

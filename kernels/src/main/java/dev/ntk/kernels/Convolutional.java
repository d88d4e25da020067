package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.LayerType.Argument;
import dev.ntk.kernels.engine.Expr;
import dev.ntk.kernels.engine.Layout;
import dev.ntk.kernels.engine.PixelMap;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Layers over images {@code (N, spatial..., C)}: {@link Conv}, the pooling windows ({@link Pool}:
 * {@code AvgPool}, {@code SumPool}), the global pools ({@link GlobalPool}: {@code
 * GlobalAvgPool}, {@code GlobalSumPool}), {@link ImageResize} and {@link Index}. Each rule acts on
 * the kernel's pixel blocks through a {@link PixelMap}: a convolution shifts both pixels of a pair
 * by the same filter offset, so it needs only the per-pixel covariance of its input when only that
 * is needed of its output; a pooling window mixes different pixels, so it needs the covariance
 * between every two pixels (the requirements pass keeps it from the inputs up to the last layer
 * that needs it).
 *
 * <p>Conventions are neural-tangents': zero padding counts in a filter's average; {@code SAME}
 * pads {@code max((out - 1) s + f - in, 0)} pixels with the smaller half first, {@code out =
 * ceil(in / s)}; {@code CIRCULAR} pads as {@code SAME} with the image wrapped around; {@code
 * VALID} does not pad, {@code out = floor((in - f) / s) + 1}.
 */
public final class Convolutional {
  private Convolutional() {}

  public static final LayerType CONV = LayerType.of("Conv", "a convolution over the spatial axes",
      Conv::new, Argument.positiveInteger("out_chan", 1), Argument.requiredIntegers("filter_shape"),
      Argument.optionalIntegers("strides"), Argument.choice("padding", "VALID", "SAME", "CIRCULAR"),
      Argument.number("W_std", 1.0), Argument.optionalNumber("b_std"),
      Argument.choice("parameterization", "ntk", "standard"));
  public static final LayerType CONV_TRANSPOSE = LayerType.of("ConvTranspose",
      "a transposed convolution over the spatial axes", ConvTranspose::new,
      Argument.positiveInteger("out_chan", 1), Argument.requiredIntegers("filter_shape"),
      Argument.optionalIntegers("strides"), Argument.choice("padding", "VALID", "SAME", "CIRCULAR"),
      Argument.number("W_std", 1.0), Argument.optionalNumber("b_std"),
      Argument.choice("parameterization", "ntk", "standard"));
  public static final LayerType CONV_LOCAL = LayerType.of("ConvLocal",
      "a locally connected layer: a convolution with weights of its own at every output position",
      ConvLocal::new, Argument.positiveInteger("out_chan", 1), Argument.requiredIntegers("filter_shape"),
      Argument.optionalIntegers("strides"), Argument.choice("padding", "VALID", "SAME", "CIRCULAR"),
      Argument.number("W_std", 1.0), Argument.optionalNumber("b_std"),
      Argument.choice("parameterization", "ntk", "standard"));
  public static final LayerType AVG_POOL = LayerType.of("AvgPool", "the average over a sliding window",
      a -> new Pool(a, true), Argument.requiredIntegers("window_shape"), Argument.optionalIntegers("strides"),
      Argument.choice("padding", "VALID", "SAME", "CIRCULAR"), Argument.bool("normalize_edges", false));
  public static final LayerType SUM_POOL = LayerType.of("SumPool", "the sum over a sliding window",
      a -> new Pool(a, false), Argument.requiredIntegers("window_shape"), Argument.optionalIntegers("strides"),
      Argument.choice("padding", "VALID", "SAME", "CIRCULAR"));
  public static final LayerType GLOBAL_AVG_POOL = LayerType.of("GlobalAvgPool",
      "the average over all pixels", a -> new GlobalPool(a, true));
  public static final LayerType GLOBAL_SUM_POOL = LayerType.of("GlobalSumPool",
      "the sum over all pixels", a -> new GlobalPool(a, false));
  public static final LayerType INDEX = LayerType.of("Index",
      "NumPy indexing of the spatial axes by slices and integers (neural-tangents' Index)", Index::new,
      Argument.requiredIndex("idx"));
  public static final LayerType IMAGE_RESIZE = LayerType.of("ImageResize",
      "resizes the spatial axes to shape as jax.image.resize, by nearest or linear interpolation",
      ImageResize::new, Argument.requiredShape("shape"),
      Argument.requiredChoice("method", "linear", "bilinear", "trilinear", "triangle", "nearest"),
      Argument.bool("antialias", true));

  /** A convolution with {@code W_std = 1}, no bias, strides 1, NTK parameterization. */
  public static Layer conv(int outChan, int[] filterShape, String padding) {
    return CONV.create(outChan, filterShape, null, padding);
  }

  /** A convolution in NTK parameterization; {@code strides == null} means all 1, {@code bStd == null} no bias. */
  public static Layer conv(int outChan, int[] filterShape, int[] strides, String padding, double wStd, Double bStd) {
    return CONV.create(outChan, filterShape, strides, padding, wStd, bStd);
  }

  public static Layer conv(int outChan, int[] filterShape, int[] strides, String padding, double wStd, Double bStd,
      Linear.Parameterization parameterization) {
    return CONV.create(outChan, filterShape, strides, padding, wStd, bStd, parameterization.key());
  }

  /** A transposed convolution in NTK parameterization; {@code strides == null} means all 1. */
  public static Layer convTranspose(int outChan, int[] filterShape, int[] strides, String padding, double wStd,
      Double bStd) {
    return CONV_TRANSPOSE.create(outChan, filterShape, strides, padding, wStd, bStd);
  }

  /**
   * A locally connected layer (unshared convolution) in NTK parameterization; {@code strides ==
   * null} means all 1, {@code bStd == null} no bias.
   */
  public static Layer convLocal(int outChan, int[] filterShape, int[] strides, String padding, double wStd,
      Double bStd) {
    return CONV_LOCAL.create(outChan, filterShape, strides, padding, wStd, bStd);
  }

  public static Layer convLocal(int outChan, int[] filterShape, int[] strides, String padding, double wStd,
      Double bStd, Linear.Parameterization parameterization) {
    return CONV_LOCAL.create(outChan, filterShape, strides, padding, wStd, bStd, parameterization.key());
  }

  /** Average pooling; {@code strides == null} means all 1 (as in neural-tangents). */
  public static Layer avgPool(int[] window, int[] strides, String padding) {
    return AVG_POOL.create(window, strides, padding);
  }

  /** Average pooling dividing, with {@code SAME} padding, by the pixels inside the image. */
  public static Layer avgPool(int[] window, int[] strides, String padding, boolean normalizeEdges) {
    return AVG_POOL.create(window, strides, padding, normalizeEdges);
  }

  public static Layer sumPool(int[] window, int[] strides, String padding) {
    return SUM_POOL.create(window, strides, padding);
  }

  public static Layer globalAvgPool() {
    return GLOBAL_AVG_POOL.create();
  }

  public static Layer globalSumPool() {
    return GLOBAL_SUM_POOL.create();
  }

  /**
   * A resize of the spatial axes to {@code shape} (one entry per axis of the batch, -1 for an axis
   * kept, as the batch and channel axes must be), {@code method} "nearest" or "linear".
   */
  public static Layer imageResize(int[] shape, String method, boolean antialias) {
    return IMAGE_RESIZE.create(shape, method, antialias);
  }

  /** NumPy indexing {@code x[idx]}: entries such as {@code ":"}, {@code "1:5"}, {@code "::-1"}, {@code "..."}. */
  public static Layer index(String... idx) {
    return INDEX.create(List.of(idx));
  }

  /** A sliding window's geometry over an image: filter or pooling window, strides and padding. */
  record Geometry(int[] window, int[] strides, FiniteConv.Padding padding) {
    static Geometry of(LayerType.Arguments args, String windowArg) {
      int[] window = args.integers(windowArg);
      int[] strides = args.integers("strides");
      FiniteConv.Padding padding = FiniteConv.Padding.valueOf(args.choice("padding").toUpperCase(Locale.ROOT));
      if (strides != null && strides.length != window.length) {
        throw new IllegalArgumentException("strides " + Arrays.toString(strides) + " must have one entry per "
            + "axis of " + windowArg + " " + Arrays.toString(window));
      }
      return new Geometry(window, strides == null ? ones(window.length) : strides, padding);
    }

    private static int[] ones(int n) {
      int[] a = new int[n];
      Arrays.fill(a, 1);
      return a;
    }

    /** The windows over the spatial axes of {@code input}, or a {@link ModelException} naming {@code path}. */
    List<PixelMap.Window> windows(Spec input, String path, String layer, String windowArg) {
      Shape s = input.shape();
      int spatial = s.dimension() - 1;
      if (spatial < 1) {
        throw new ModelException(path, layer + " takes images (N, spatial..., C), but its input has per-example "
            + "shape " + s + " (no spatial axis)");
      }
      if (window.length != spatial) {
        throw new ModelException(path, windowArg + " " + Arrays.toString(window) + " has " + window.length
            + " entries but the input has " + spatial + " spatial axes (per-example shape " + s + ")");
      }
      List<PixelMap.Window> out = new ArrayList<>();
      for (int k = 0; k < spatial; k++) {
        int in = Math.toIntExact(s.get(k));
        int f = window[k];
        int st = strides[k];
        int size;
        int low;
        if (padding == FiniteConv.Padding.VALID) {
          if (f > in) {
            throw new ModelException(path, windowArg + " " + Arrays.toString(window) + " is larger than the "
                + "input " + s.slice(0, spatial) + " on axis " + k + " with VALID padding");
          }
          size = (in - f) / st + 1;
          low = 0;
        } else {
          size = (in + st - 1) / st;
          low = Math.max((size - 1) * st + f - in, 0) / 2;
        }
        out.add(new PixelMap.Window(in, f, st, low, size, padding == FiniteConv.Padding.CIRCULAR));
      }
      return out;
    }

    static Shape outputShape(List<PixelMap.Window> windows, long channels) {
      long[] dims = new long[windows.size() + 1];
      for (int k = 0; k < windows.size(); k++) {
        dims[k] = windows.get(k).out();
      }
      dims[windows.size()] = channels;
      return new Shape(dims);
    }
  }

  /** The kind of pixel block a kernel holds. */
  private static Layout.Kind kind(KernelExpr k) {
    return k.isFull() ? Layout.Kind.FULL : Layout.Kind.DIAG;
  }

  /**
   * A convolution with {@code out_chan} channels, filter {@code filter_shape} over the spatial
   * axes, {@code strides} (all 1 by default) and {@code padding}; {@code b_std == null}: no bias.
   *
   * <p>Rule, NTK parameterization, with {@code A} the filter average of {@link PixelMap#conv}:
   * {@code nngp' = W_std^2 A(nngp) + b_std^2} (and the same for the variances), {@code ntk' =
   * nngp' + W_std^2 A(ntk)}. Standard parameterization: {@code ntk' = fan_in A(nngp) + W_std^2
   * A(ntk) (+ 1 with a bias)}, {@code fan_in = in_channels * prod(filter_shape)}.
   */
  public static class Conv extends SingleInputLayer {
    final int outChan;
    final Geometry geometry;
    final Linear.Affine affine;

    Conv(LayerType.Arguments args) {
      super(args);
      this.outChan = args.integer("out_chan");
      this.geometry = Geometry.of(args, "filter_shape");
      this.affine = Linear.Affine.of(args);
    }

    /** The filter's windows over the input's axes (for a transposed convolution, its dilated input). */
    List<PixelMap.Window> windows(Spec input, String path) {
      return geometry.windows(input, path, name(), "filter_shape");
    }

    /** The finite layer's convolution of inputs like {@code x} with filters like {@code w}, without scaling or bias. */
    Linear.Product correlation(NDArray x, NDArray w) {
      return FiniteConv.Correlation.conv(x.getShape(), x.getDataType(), w.getShape(), geometry.strides(),
          geometry.padding());
    }

    /** The fan-in of weights {@code w}: the inputs one output reads, {@code in_channels * prod(filter_shape)}. */
    long fanIn(NDArray w) {
      return w.getShape().size() / outChan;
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      return new Spec(Geometry.outputShape(windows(input, path), outChan), true);
    }

    long fanIn(Spec input) {
      long f = input.channels();
      for (int w : geometry.window()) {
        f *= w;
      }
      return f;
    }

    /** {@code W} {@code (*filter_shape, in, out)}, then {@code b} {@code (out,)} with a bias. */
    @Override
    public List<String> parameterNames() {
      return affine.names();
    }

    @Override
    protected Params init(SplittableRandom rng, Spec input, NDManager manager, DataType dtype) {
      long[] dims = new long[geometry.window().length + 2];
      for (int k = 0; k < geometry.window().length; k++) {
        dims[k] = geometry.window()[k];
      }
      dims[dims.length - 2] = input.channels();
      dims[dims.length - 1] = outChan;
      return affine.init(rng, manager, new Shape(dims), outChan, fanIn(input), dtype);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      NDArray w = params.array(0);
      return affine.output(correlation(x, w).apply(x, w), params, fanIn(w));
    }

    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      NDArray w = params.array(0);
      return affine.tangent(correlation(x, w), params, paramTangents, x, dx, fanIn(w));
    }

    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      NDArray w = params.array(0);
      return affine.curvature(correlation(x, w), paramTangents, dx, fanIn(w));
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      NDArray w = params.array(0);
      return affine.backward(correlation(x, w), params, x, dy, fanIn(w), tape, inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      PixelMap map = PixelMap.conv(kind(k), windows(context.input(0), context.path()));
      return affine.rule(k.map(e -> e.pixels(map)), fanIn(context.input(0)));
    }

    /** The mask under each filter's centre ({@link Masks#window}). */
    @Override
    public List<Expr> outputMasks(List<Expr> masks, RuleContext context) {
      return java.util.Collections.singletonList(Masks.window(masks.get(0), windows(context.input(0),
          context.path())));
    }
  }

  /**
   * A transposed convolution, as neural-tangents' {@code ConvTranspose} ({@link FiniteConv}): the
   * input dilated by the strides, padded, and convolved with stride 1. Its rule is {@link Conv}'s
   * on that dilated input, whose covariance is the input's at the real pixels and zero between
   * them; {@code fan_in = in_channels * prod(filter_shape)}. With {@code CIRCULAR} padding the
   * finite layer folds its {@code VALID} result of length {@code X = in s + max(f - s, 0)} onto
   * {@code O = in s} outputs, shifted by {@code d = floor((X - O) / 2)}; that is a circular
   * convolution over the dilated input followed by {@code s - 1} zeros (period {@code O}) with
   * {@code f - 1 - d} pixels before the first output.
   */
  public static final class ConvTranspose extends Conv {
    ConvTranspose(LayerType.Arguments args) {
      super(args);
    }

    @Override
    List<PixelMap.Window> windows(Spec input, String path) {
      Shape s = input.shape();
      int spatial = s.dimension() - 1;
      int[] filter = geometry.window();
      if (spatial < 1) {
        throw new ModelException(path, name() + " takes images (N, spatial..., C), but its input has "
            + "per-example shape " + s + " (no spatial axis)");
      }
      if (filter.length != spatial) {
        throw new ModelException(path, "filter_shape " + Arrays.toString(filter) + " has " + filter.length
            + " entries but the input has " + spatial + " spatial axes (per-example shape " + s + ")");
      }
      int[] in = new int[spatial];
      for (int k = 0; k < spatial; k++) {
        in[k] = Math.toIntExact(s.get(k));
      }
      boolean circular = geometry.padding() == FiniteConv.Padding.CIRCULAR;
      int[] out = FiniteConv.transposeOutputShape(in, filter, geometry.strides(), geometry.padding());
      List<PixelMap.Window> windows = new ArrayList<>();
      for (int k = 0; k < spatial; k++) {
        int st = geometry.strides()[k];
        int padLow = circular ? filter[k] - 1 - Math.max(filter[k] - st, 0) / 2
            : FiniteConv.transposePadLow(filter[k], st, geometry.padding());
        windows.add(new PixelMap.Window(in[k], filter[k], 1, padLow, out[k], circular, st));
      }
      return windows;
    }

    /** Rejects masked inputs: neural-tangents' transposed mask rule is not carried over yet. */
    @Override
    public List<Expr> outputMasks(List<Expr> masks, RuleContext context) {
      throw Masks.unsupported(this, context, "not implemented for transposed convolutions");
    }

    @Override
    FiniteConv.Correlation correlation(NDArray x, NDArray w) {
      return FiniteConv.Correlation.convTranspose(x.getShape(), x.getDataType(), w.getShape(), geometry.strides(),
          geometry.padding());
    }
  }

  /**
   * {@code ConvLocal}, neural-tangents' locally connected layer (an unshared convolution): a {@link
   * Conv} of the same geometry whose weights {@code W} {@code (out..., in prod(filter_shape), out_chan)}
   * and biases {@code b} {@code (out..., out_chan)} differ at every output position ({@link
   * FiniteConv.Local}); {@code fan_in = in_channels * prod(filter_shape)} as for {@code Conv}.
   *
   * <p>Outputs at two different positions have independent weights and biases, so their covariance
   * is zero; at one position it is {@code Conv}'s. The rule is therefore {@code Conv}'s on the
   * per-pixel covariance of the input, which is all the layer needs of it, and where a later layer
   * needs the covariance of every two pixels ({@code GlobalAvgPool}, a pooling window) that
   * per-pixel result placed on the diagonal of a pixel-pair block, zero elsewhere (neural-tangents'
   * {@code _conv_kernel_full_spatial_unshared}). So without pooling, a network of {@code ConvLocal}
   * layers with a {@code Flatten} readout has the kernel of the same network of {@code Conv} layers;
   * a {@code GlobalAvgPool} right after a {@code ConvLocal} gives the {@code Flatten} readout's
   * kernel divided by the number of pixels (neural-tangents' tests state both).
   */
  public static final class ConvLocal extends Conv {
    ConvLocal(LayerType.Arguments args) {
      super(args);
    }

    /**
     * {@code W} {@code (out..., in prod(filter_shape), out_chan)}, each position's filter flattened input
     * channel first as JAX's {@code conv_general_dilated_local}; then {@code b} {@code (out..., out_chan)}.
     */
    @Override
    protected Params init(SplittableRandom rng, Spec input, NDManager manager, DataType dtype) {
      Shape out = Geometry.outputShape(windows(input, name()), outChan);
      Shape spatial = out.slice(0, out.dimension() - 1);
      long fanIn = fanIn(input);
      return affine.init(rng, manager, spatial.add(fanIn, outChan), out, fanIn, dtype);
    }

    @Override
    Linear.Product correlation(NDArray x, NDArray w) {
      return new FiniteConv.Local(x.getShape(), x.getDataType(), w.getShape(), geometry.window(),
          geometry.strides(), geometry.padding());
    }

    @Override
    long fanIn(NDArray w) {
      return w.getShape().get(w.getShape().dimension() - 2);
    }

    /** Only the per-pixel covariance: outputs at different pixels are independent whatever the inputs. */
    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      return List.of(false);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      KernelExpr perPixel = super.rule(k, context);
      if (!context.outputsFull().get(0)) {
        return perPixel;
      }
      if (perPixel.nngp().isConstant()) {
        // W_std = 0: the biases alone, the same constant at every pixel but zero between two, which
        // no expression of the input holds.
        throw new ModelException(context.path(), name() + " with W_std = 0 (its biases alone) before a layer that "
            + "needs the covariance of every two pixels is not supported");
      }
      PixelMap diagonal = PixelMap.pixelDiagonal(Plan.spatialGrid(context.output(0)));
      return perPixel.map(e -> e.spreadRow().pixels(diagonal));
    }
  }

  /**
   * {@code AvgPool} and {@code SumPool}: the average (or sum) over a window sliding with {@code
   * strides} (all 1 by default, as in neural-tangents). An {@code AvgPool} divides by the window
   * size, padding included, or with {@code normalize_edges} by the pixels of the window inside the
   * image. Linear, so Gaussian inputs stay Gaussian; its rule needs the full pixel covariance.
   */
  public static final class Pool extends FixedLinearLayer {
    private final boolean average;
    private final boolean normalizeEdges;
    private final Geometry geometry;

    Pool(LayerType.Arguments args, boolean average) {
      super(args);
      this.average = average;
      this.normalizeEdges = average && args.bool("normalize_edges");
      this.geometry = Geometry.of(args, "window_shape");
    }

    private List<PixelMap.Window> windows(Spec input, String path) {
      return geometry.windows(input, path, name(), "window_shape");
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      return input.withShape(Geometry.outputShape(windows(input, path), input.channels()));
    }

    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      return List.of(true);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return FiniteConv.pool(x, geometry.window(), geometry.strides(), geometry.padding(), average, normalizeEdges);
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> FiniteConv.poolBackward(dy, x.getShape(), geometry.window(), geometry.strides(),
          geometry.padding(), average, normalizeEdges), inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      List<PixelMap.Window> windows = windows(context.input(0), context.path());
      double[][] weights = new double[windows.size()][];
      for (int a = 0; a < windows.size(); a++) {
        PixelMap.Window w = windows.get(a);
        weights[a] = new double[w.out()];
        for (int o = 0; o < w.out(); o++) {
          int inside = 0;
          for (int off = 0; off < w.size(); off++) {
            inside += w.at(o, off) >= 0 ? 1 : 0;
          }
          weights[a][o] = !average ? 1.0 : normalizeEdges ? 1.0 / inside : 1.0 / w.size();
        }
      }
      PixelMap map = PixelMap.pool(windows, weights);
      return k.map(e -> e.pixels(map));
    }

    /**
     * The mask under each window's centre ({@link Masks#window}); as in neural-tangents, an {@code
     * AvgPool} still divides by its window, masked positions adding zero.
     */
    @Override
    public List<Expr> outputMasks(List<Expr> masks, RuleContext context) {
      return java.util.Collections.singletonList(Masks.window(masks.get(0), windows(context.input(0),
          context.path())));
    }
  }

  /**
   * {@code GlobalAvgPool} and {@code GlobalSumPool}: the average (or sum) over all pixels, giving
   * vectors {@code (N, C)}. The kernel is the average (or sum) of the covariance over every pair
   * of pixels, so the rule needs the full pixel covariance.
   */
  public static final class GlobalPool extends FixedLinearLayer {
    private final boolean average;

    GlobalPool(LayerType.Arguments args, boolean average) {
      super(args);
      this.average = average;
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      if (!input.hasSpatialAxes()) {
        throw new ModelException(path, name() + " takes images (N, spatial..., C), but its input has "
            + "per-example shape " + input.shape() + " (no spatial axis)");
      }
      return input.withShape(new Shape(input.channels()));
    }

    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      return List.of(true);
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      int rank = x.getShape().dimension();
      int[] axes = new int[rank - 2];
      for (int k = 0; k < axes.length; k++) {
        axes[k] = k + 1;
      }
      return average ? x.mean(axes) : x.sum(axes);
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> {
        Shape s = x.getShape();
        long[] dims = new long[s.dimension()];
        java.util.Arrays.fill(dims, 1);
        dims[0] = s.get(0);
        dims[dims.length - 1] = s.get(s.dimension() - 1);
        double pixels = (double) s.size() / (dims[0] * dims[dims.length - 1]);
        try (NDArray spread = dy.reshape(new Shape(dims))) {
          NDArray each = spread.broadcast(s);
          return average ? Tensors.mul(each, 1 / pixels) : each;
        }
      }, inputCotangent);
    }

    /**
     * The average (or sum) of the covariance over every pair of pixels; with masked inputs ({@link
     * Masks}) the average is over the pairs of kept positions, {@code sum / (kept1 kept2)}, masked
     * pairs being zero, so that padding a sequence leaves its kernel unchanged.
     */
    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      double pixels = k.nngp().layout().pixels();
      if (average && k.masked()) {
        Expr c1 = Masks.count(k.kept1());
        Expr c2 = Masks.count(k.kept2());
        return new KernelExpr(total(k.nngp()).div(c1.times(c2)), total(k.ntk()).div(c1.times(c2)),
            total(k.var1()).div(c1.times(c1)), total(k.var2()).div(c2.times(c2)));
      }
      double factor = average ? 1.0 / (pixels * pixels) : 1.0;
      return k.map(e -> e.sum(factor));
    }

    /** The sum over all pixel pairs of a block ({@code 0} stays {@code 0}). */
    private static Expr total(Expr e) {
      return e.isConstant() ? e : e.sum(1);
    }
  }

  /**
   * Base of the layers that map each spatial axis by a matrix and have no parameters ({@link
   * ImageResize}, {@link Index}): {@code out[o] = sum_p a_k[o][p] in[p]} along axis {@code k}. Linear,
   * so Gaussian inputs stay Gaussian, and the kernel is {@code A K A^T} on every axis ({@link
   * PixelMap#linear}): a map whose every output picks one pixel needs of its input only what is
   * needed of its output; one that mixes pixels needs the covariance of every two.
   */
  abstract static class PixelLinear extends SingleInputLayer {
    PixelLinear(LayerType.Arguments args) {
      super(args);
    }

    /**
     * Each spatial axis's matrix {@code [out][in]} for inputs of {@code input} (null where the axis
     * stays as it is), or a {@link ModelException} naming {@code path}.
     */
    abstract List<double[][]> matrices(Spec input, String path);

    /** The spatial axes that the layer removes after mapping each to one pixel (an integer index). */
    boolean[] dropped(Spec input) {
      return new boolean[input.shape().dimension() - 1];
    }

    @Override
    protected Spec outputSpec(Spec input, String path) {
      List<double[][]> matrices = matrices(input, path);
      boolean[] drop = dropped(input);
      List<Long> dims = new ArrayList<>();
      for (int k = 0; k < matrices.size(); k++) {
        if (!drop[k]) {
          dims.add(matrices.get(k) == null ? input.shape().get(k) : matrices.get(k).length);
        }
      }
      dims.add(input.channels());
      return input.withShape(new Shape(dims.stream().mapToLong(Long::longValue).toArray()));
    }

    @Override
    public List<Boolean> inputsFull(List<Boolean> outputsFull, List<Spec> inputs) {
      boolean mixes = matrices(inputs.get(0), name()).stream().anyMatch(a -> a != null && !picks(a));
      return List.of(mixes || outputsFull.contains(Boolean.TRUE));
    }

    /** Whether every row of {@code a} picks one pixel with weight 1. */
    private static boolean picks(double[][] a) {
      for (double[] row : a) {
        if (Arrays.stream(row).filter(v -> v != 0).count() != 1 || Arrays.stream(row).sum() != 1) {
          return false;
        }
      }
      return true;
    }

    /**
     * {@code y} with each mapped axis multiplied by its matrix for inputs shaped like {@code x}, or
     * (the backward pass) by its transpose.
     */
    private NDArray map(NDArray y, NDArray x, boolean transpose) {
      int rank = x.getShape().dimension();
      Spec input = Spec.input(x.getShape().slice(1));
      List<double[][]> matrices = matrices(input, name());
      boolean[] drop = dropped(input);
      for (int k = 0; transpose && k < drop.length; k++) {
        y = drop[k] ? y.expandDims(k + 1) : y;
      }
      for (int k = 0; k < matrices.size(); k++) {
        double[][] a = matrices.get(k);
        if (a == null) {
          continue;
        }
        int rows = transpose ? a.length : a[0].length;
        int cols = transpose ? a[0].length : a.length;
        double[] m = new double[rows * cols];
        for (int o = 0; o < a.length; o++) {
          for (int p = 0; p < a[0].length; p++) {
            m[transpose ? o * cols + p : p * cols + o] = a[o][p];
          }
        }
        NDArray moved = y.swapAxes(k + 1, rank - 1);
        Shape ms = moved.getShape();
        NDArray product = moved.reshape(-1, rows)
            .matMul(Tensors.create(y.getManager(), m, new Shape(rows, cols), y.getDataType()));
        y = product.reshape(ms.slice(0, rank - 1).add(cols)).swapAxes(k + 1, rank - 1);
      }
      for (int k = drop.length - 1; !transpose && k >= 0; k--) {
        y = drop[k] ? y.squeeze(k + 1) : y;
      }
      return y;
    }

    @Override
    public NDArray apply(Params params, NDArray x) {
      return map(x, x, false);
    }

    @Override
    protected NDArray tangent(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return map(dx, x, false);
    }

    @Override
    protected NDArray curvature(Params params, Params paramTangents, NDArray x, NDArray dx) {
      return null;
    }

    @Override
    protected Cotangents backward(Params params, NDArray x, NDArray dy, AffineTape tape, boolean inputCotangent) {
      return inputOnly(() -> map(dy, x, true), inputCotangent);
    }

    @Override
    protected KernelExpr rule(KernelExpr k, RuleContext context) {
      List<double[][]> matrices = matrices(context.input(0), context.path());
      if (matrices.stream().allMatch(m -> m == null)) {
        return k;
      }
      int[] grid = Plan.spatialGrid(context.input(0));
      List<double[][]> all = new ArrayList<>();
      for (int a = 0; a < matrices.size(); a++) {
        all.add(matrices.get(a) != null ? matrices.get(a) : identity(grid[a]));
      }
      boolean[] drop = dropped(context.input(0));
      boolean keeps = false;
      for (boolean d : drop) {
        keeps |= !d;
      }
      if (!keeps) {
        // Every axis goes: the one pixel left is the kernel of vectors.
        PixelMap map = PixelMap.linear(kind(k), all);
        return k.map(e -> e.pixels(map).sum(1.0));
      }
      PixelMap map = PixelMap.linear(kind(k), all, drop);
      return k.map(e -> e.pixels(map));
    }

    /**
     * neural-tangents' masks of an index ({@code mask[idx]}): a map whose every output picks one
     * pixel takes the mask of that pixel; one that mixes pixels (a resize other than nearest)
     * rejects masked inputs.
     */
    @Override
    public List<Expr> outputMasks(List<Expr> masks, RuleContext context) {
      Expr kept = masks.get(0);
      List<double[][]> matrices = matrices(context.input(0), context.path());
      if (kept == null || matrices.stream().allMatch(m -> m == null)) {
        return java.util.Collections.singletonList(kept);
      }
      if (matrices.stream().anyMatch(m -> m != null && !picks(m))) {
        throw Masks.unsupported(this, context, "it mixes positions");
      }
      if (!context.output(0).hasSpatialAxes()) {
        return java.util.Collections.singletonList(null);
      }
      int[] grid = Plan.spatialGrid(context.input(0));
      List<double[][]> all = new ArrayList<>();
      for (int a = 0; a < matrices.size(); a++) {
        all.add(matrices.get(a) != null ? matrices.get(a) : identity(grid[a]));
      }
      return List.of(kept.pixels(PixelMap.linear(Layout.Kind.DIAG, all, dropped(context.input(0)))));
    }

    private static double[][] identity(int n) {
      double[][] a = new double[n][n];
      for (int p = 0; p < n; p++) {
        a[p][p] = 1;
      }
      return a;
    }
  }

  /**
   * {@code ImageResize}, neural-tangents' layer of {@code jax.image.resize}: each spatial axis whose
   * entry of {@code shape} is not -1 (nor its present size) is resized by a matrix of {@code
   * jax.image.resize}'s weights ({@link #weights}); the batch and channel axes stay ({@code -1}).
   * "nearest" picks a pixel per output, so the per-pixel covariance is enough; "linear" mixes
   * pixels, so it needs the covariance of every two (as neural-tangents). The other methods of
   * {@code jax.image.resize} (cubic, Lanczos) have no kernel in neural-tangents and are not accepted.
   */
  public static final class ImageResize extends PixelLinear {
    private final int[] shape;
    private final boolean nearest;
    private final boolean antialias;

    ImageResize(LayerType.Arguments args) {
      super(args);
      this.shape = args.integers("shape");
      this.nearest = args.choice("method").equals("nearest");
      this.antialias = args.bool("antialias");
    }

    @Override
    List<double[][]> matrices(Spec input, String path) {
      Shape s = input.shape();
      int rank = s.dimension() + 1;
      if (shape.length != rank) {
        throw new ModelException(path, "shape " + Arrays.toString(shape) + " has " + shape.length + " entries but "
            + "the input has " + rank + " axes (batch, spatial..., channels: per-example shape " + s + ")");
      }
      if (shape[0] != -1) {
        throw new ModelException(path, "shape " + Arrays.toString(shape) + " resizes the batch axis; its first "
            + "entry must be -1");
      }
      if (shape[rank - 1] != -1 && shape[rank - 1] != s.get(rank - 2)) {
        throw new ModelException(path, "shape " + Arrays.toString(shape) + " resizes the channel axis, which has "
            + "no meaning in the infinite-width limit (as in neural-tangents); its last entry must be -1");
      }
      List<double[][]> out = new ArrayList<>();
      for (int k = 0; k < rank - 2; k++) {
        int in = Math.toIntExact(s.get(k));
        int size = shape[k + 1] == -1 ? in : shape[k + 1];
        out.add(size == in ? null : weights(in, size));
      }
      return out;
    }

    /**
     * {@code jax.image.resize}'s matrix from {@code in} to {@code out} pixels. Nearest: output {@code
     * o} takes pixel {@code floor((o + 0.5) in / out)}, computed in float32 as JAX does. Linear: the
     * triangle {@code max(0, 1 - |x|)} at {@code x = (s_o - p) / c}, with the sample {@code s_o = (o
     * + 0.5) in / out - 0.5} and {@code c = max(in / out, 1)} when downsampling with {@code
     * antialias} (else 1), each row divided by its sum (zero if that is below {@code 1000} float32
     * epsilons), and zero where {@code s_o} lies outside {@code [-0.5, in - 0.5]}.
     */
    double[][] weights(int in, int out) {
      double[][] a = new double[out][in];
      for (int o = 0; o < out; o++) {
        if (nearest) {
          a[o][(int) Math.floor((o + 0.5f) * in / (float) out)] = 1;
          continue;
        }
        double inverse = 1.0 / ((double) out / in);
        double scale = antialias ? Math.max(inverse, 1.0) : 1.0;
        double sample = (o + 0.5) * inverse - 0.5;
        double total = 0;
        for (int p = 0; p < in; p++) {
          a[o][p] = Math.max(0, 1 - Math.abs(sample - p) / scale);
          total += a[o][p];
        }
        boolean inside = sample >= -0.5 && sample <= in - 0.5;
        for (int p = 0; p < in; p++) {
          a[o][p] = inside && Math.abs(total) > 1000 * Math.ulp(1.0f) ? a[o][p] / total : 0;
        }
      }
      return a;
    }
  }

  /**
   * {@code Index}, neural-tangents' {@code Index(idx=stax.Slice[...])}: NumPy basic indexing {@code
   * x[idx]} of the batch {@code (N, spatial..., C)}, an entry per axis (missing ones {@code ":"},
   * {@code "..."} standing for as many as needed). Each spatial axis takes a slice {@code
   * start:stop:step} (NumPy's rules: negative positions from the end, clamped, any nonzero step);
   * an integer (negative from the end) picks one pixel and removes the axis, so that an image of
   * one spatial axis less (or, without any left, a vector) follows. The batch axis and the channel
   * axis take only {@code ":"}, as neural-tangents' kernels (which pair every example and have
   * infinitely many channels). Every output picks one pixel, so the per-pixel covariance is enough.
   */
  public static final class Index extends PixelLinear {
    private final List<Object> idx;

    Index(LayerType.Arguments args) {
      super(args);
      this.idx = args.index("idx");
      if (idx.stream().filter("..."::equals).count() > 1) {
        throw new IllegalArgumentException("idx " + idx + " has more than one \"...\"");
      }
    }

    @Override
    List<double[][]> matrices(Spec input, String path) {
      Shape s = input.shape();
      int rank = s.dimension() + 1;
      int ellipsis = idx.indexOf("...");
      int given = idx.size() - (ellipsis >= 0 ? 1 : 0);
      if (given > rank) {
        throw new ModelException(path, "idx " + idx + " indexes " + given + " axes but the input has " + rank
            + " (batch, spatial..., channels: per-example shape " + s + ")");
      }
      List<Object> entries = entries(rank);
      if (!List.of(":", "::", "::1").contains(entries.get(0))) {
        throw new ModelException(path, "idx " + idx + " indexes the batch axis with " + quote(entries.get(0))
            + ": only \":\" is supported, since a kernel pairs every example");
      }
      List<double[][]> out = new ArrayList<>();
      for (int a = 1; a < rank; a++) {
        int n = Math.toIntExact(s.get(a - 1));
        Object e = entries.get(a);
        int[] picked;
        if (e instanceof Integer i) {
          if (i < -n || i >= n) {
            throw new ModelException(path, "idx " + idx + " takes the integer " + i + " on axis " + a + ", which "
                + "has " + n + " entries");
          }
          picked = new int[] {i < 0 ? i + n : i};
          if (a == rank - 1) {
            throw new ModelException(path, "idx " + idx + " indexes the channel axis with " + i + ", which has no "
                + "meaning in the infinite-width limit (as in neural-tangents): give it \":\"");
          }
          double[][] m = new double[1][n];
          m[0][picked[0]] = 1;
          out.add(m);
          continue;
        }
        picked = slice((String) e, n);
        if (picked == null) {
          throw new ModelException(path, "idx " + idx + " has a step of 0 on axis " + a);
        }
        if (picked.length == 0) {
          throw new ModelException(path, "idx " + idx + " selects no pixel on axis " + a + " of size " + n);
        }
        boolean all = picked.length == n && java.util.stream.IntStream.range(0, n).allMatch(p -> picked[p] == p);
        if (a == rank - 1) {
          if (!all) {
            throw new ModelException(path, "idx " + idx + " indexes the channel axis with " + quote(e) + ", which "
                + "has no meaning in the infinite-width limit (as in neural-tangents): give it \":\"");
          }
          continue;
        }
        double[][] m = all ? null : new double[picked.length][n];
        for (int o = 0; m != null && o < picked.length; o++) {
          m[o][picked[o]] = 1;
        }
        out.add(m);
      }
      return out;
    }

    /** The spatial axes an integer index removes. */
    @Override
    boolean[] dropped(Spec input) {
      int rank = input.shape().dimension() + 1;
      boolean[] drop = new boolean[rank - 2];
      List<Object> entries = entries(rank);
      for (int a = 1; a < rank - 1; a++) {
        drop[a - 1] = entries.get(a) instanceof Integer;
      }
      return drop;
    }

    /** {@code idx} with one entry per axis of inputs of {@code rank} (as many as fit when it has more). */
    private List<Object> entries(int rank) {
      int ellipsis = idx.indexOf("...");
      int given = idx.size() - (ellipsis >= 0 ? 1 : 0);
      List<Object> entries = new ArrayList<>(ellipsis >= 0 ? idx.subList(0, ellipsis) : idx);
      entries.addAll(java.util.Collections.nCopies(Math.max(rank - given, 0), ":"));
      if (ellipsis >= 0) {
        entries.addAll(idx.subList(ellipsis + 1, idx.size()));
      }
      return entries;
    }

    private static String quote(Object e) {
      return e instanceof String str ? "\"" + str + "\"" : String.valueOf(e);
    }

    /** The positions NumPy's slice {@code text} picks from {@code n}, in order; null for a step of 0. */
    static int[] slice(String text, int n) {
      String[] parts = text.split(":", -1);
      Integer start = parts[0].isEmpty() ? null : Integer.valueOf(parts[0]);
      Integer stop = parts[1].isEmpty() ? null : Integer.valueOf(parts[1]);
      int step = parts.length < 3 || parts[2].isEmpty() ? 1 : Integer.parseInt(parts[2]);
      if (step == 0) {
        return null;
      }
      int lower = step > 0 ? 0 : -1;
      int upper = step > 0 ? n : n - 1;
      int from = start == null ? (step > 0 ? lower : upper) : clamp(start, n, lower, upper);
      int to = stop == null ? (step > 0 ? upper : lower) : clamp(stop, n, lower, upper);
      List<Integer> picked = new ArrayList<>();
      for (long p = from; step > 0 ? p < to : p > to; p += step) {
        picked.add((int) p);
      }
      return picked.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int clamp(int position, int n, int lower, int upper) {
      long p = position < 0 ? (long) position + n : position;
      return (int) Math.max(lower, Math.min(upper, p));
    }
  }
}

package dev.ntk.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;

/**
 * The finite forward passes of convolutional layers (convolution, transposed convolution, sum and
 * average pooling) on arrays of shape {@code (N, spatial..., C)}, channel last, with 1 to 3
 * spatial axes, in float32 or float64. They follow JAX's {@code lax} and neural-tangents' {@code
 * stax} conventions, so that Monte Carlo estimates over these finite networks converge to the
 * kernels of the same layers.
 *
 * <p>Per spatial axis, with input size {@code in}, window (filter) size {@code f} and stride
 * {@code s}:
 *
 * <ul>
 *   <li><b>Convolution and pooling</b> ({@link #conv}, {@link #pool}). {@code VALID}: no padding,
 *       {@code out = floor((in - f) / s) + 1}, and {@code f > in} is an error. {@code SAME}: {@code
 *       out = ceil(in / s)}, zeros padded, {@code total = max((out - 1) s + f - in, 0)}, of which
 *       {@code floor(total / 2)} go before the input and the rest after it (the smaller half
 *       first, as {@code lax.padtype_to_pads}). {@code CIRCULAR}: the same output size and the
 *       same amounts as {@code SAME}, but the padding wraps around (index {@code i} reads {@code i
 *       mod in}), then a {@code VALID} window. Convolution is a cross-correlation, as {@code
 *       lax.conv_general_dilated}: {@code z[n, p, o] = sum_{a, c} xpad[n, s p + a, c] w[a, c, o]},
 *       the filter is not flipped.
 *   <li><b>Pooling</b>: {@code SumPool} sums the window of the (zero or circularly) padded input;
 *       {@code AvgPool} divides that sum by the window size ({@code prod(window)}), so padded zeros
 *       count in the average; with {@code normalizeEdges} it divides by the number of window
 *       pixels that lie inside the image instead (only {@code SAME} has such edges; {@code
 *       CIRCULAR} windows lie wholly on real pixels, as in neural-tangents, which pads circularly
 *       and then pools {@code VALID}).
 *   <li><b>Transposed convolution</b> ({@link #convTranspose}), as neural-tangents' {@code
 *       stax.ConvTranspose}, which calls {@code lax.conv_transpose} with its default {@code
 *       transpose_kernel=False} and a filter of shape {@code (filter..., C_in, C_out)}: the input
 *       is dilated by the stride ({@code s - 1} zeros between neighbours, length {@code (in - 1) s
 *       + 1}), padded with {@code lo} zeros before and {@code hi} after, and cross-correlated with
 *       stride 1, again without flipping the filter: {@code z[n, p, o] = sum_{a, c} xdil[n, p + a
 *       - lo, c] w[a, c, o]}. {@code VALID}: {@code lo = f - 1}, {@code hi = s - 1 + max(f - s,
 *       0)}, {@code out = in s + max(f - s, 0)}. {@code SAME}: {@code lo + hi = f + s - 2} with
 *       {@code lo = f - 1} if {@code s > f - 1}, else {@code lo = ceil((f + s - 2) / 2)}, {@code
 *       out = in s}. {@code CIRCULAR}: the {@code VALID} result {@code r} (length {@code X = in s +
 *       max(f - s, 0)}) folded onto {@code O = in s} outputs: {@code z[j] = sum_m r[j + d + m O]}
 *       over every integer {@code m} that lands in {@code [0, X)}, with {@code d = floor((X - O) /
 *       2)}, the transpose of circular padding that neural-tangents applies (its {@code
 *       _same_pad_for_filter_shape_transpose}).
 * </ul>
 *
 * <p>Convolutions run as one {@code matMul} of the patch matrix {@code (N prod(out), prod(f)
 * C_in)}, gathered by Java loops through a precomputed table of source pixels, with the filter
 * reshaped to {@code (prod(f) C_in, C_out)}; pooling sums through the same table.
 */
final class FiniteConv {
  private FiniteConv() {}

  /** How a window treats the borders of its input; see the class comment. */
  public enum Padding {
    VALID,
    SAME,
    CIRCULAR
  }

  /** The output spatial shape of a convolution or a pooling window. */
  static int[] outputShape(int[] in, int[] window, int[] strides, Padding padding) {
    checkGeometry(in, window, strides);
    int[] out = new int[in.length];
    for (int d = 0; d < in.length; d++) {
      if (padding == Padding.VALID) {
        if (window[d] > in[d]) {
          throw new IllegalArgumentException("window size " + window[d] + " exceeds the input size "
              + in[d] + " along spatial axis " + d + " with VALID padding (input " + Arrays.toString(in)
              + ", window " + Arrays.toString(window) + ")");
        }
        out[d] = (in[d] - window[d]) / strides[d] + 1;
      } else {
        out[d] = ceilDiv(in[d], strides[d]);
      }
    }
    return out;
  }

  /** The padding before the input along each axis (zero for {@code VALID}). */
  static int[] padLow(int[] in, int[] window, int[] strides, Padding padding) {
    int[] total = padTotal(in, window, strides, padding);
    int[] low = new int[in.length];
    for (int d = 0; d < in.length; d++) {
      low[d] = total[d] / 2;
    }
    return low;
  }

  /** The padding after the input along each axis (zero for {@code VALID}). */
  static int[] padHigh(int[] in, int[] window, int[] strides, Padding padding) {
    int[] total = padTotal(in, window, strides, padding);
    int[] high = new int[in.length];
    for (int d = 0; d < in.length; d++) {
      high[d] = total[d] - total[d] / 2;
    }
    return high;
  }

  private static int[] padTotal(int[] in, int[] window, int[] strides, Padding padding) {
    int[] out = outputShape(in, window, strides, padding);
    int[] total = new int[in.length];
    if (padding != Padding.VALID) {
      for (int d = 0; d < in.length; d++) {
        total[d] = Math.max((out[d] - 1) * strides[d] + window[d] - in[d], 0);
      }
    }
    return total;
  }

  /** The output spatial shape of a transposed convolution. */
  static int[] transposeOutputShape(int[] in, int[] filter, int[] strides, Padding padding) {
    checkGeometry(in, filter, strides);
    int[] out = new int[in.length];
    for (int d = 0; d < in.length; d++) {
      out[d] = in[d] * strides[d]
          + (padding == Padding.VALID ? Math.max(filter[d] - strides[d], 0) : 0);
    }
    return out;
  }

  /**
   * The convolution of {@code x} {@code (N, in..., C_in)} with {@code w} {@code (filter..., C_in,
   * C_out)}: {@code (N, out..., C_out)} in {@code x}'s dtype and manager. No scaling, no bias.
   */
  static NDArray conv(NDArray x, NDArray w, int[] strides, Padding padding) {
    return Correlation.conv(x.getShape(), x.getDataType(), w.getShape(), strides, padding).apply(x, w);
  }

  /**
   * The transposed convolution of {@code x} {@code (N, in..., C_in)} with {@code w} {@code
   * (filter..., C_in, C_out)}, with neural-tangents' {@code ConvTranspose} semantics (class
   * comment): {@code (N, transposeOutputShape(...)..., C_out)}. No scaling, no bias.
   */
  static NDArray convTranspose(NDArray x, NDArray w, int[] strides, Padding padding) {
    return Correlation.convTranspose(x.getShape(), x.getDataType(), w.getShape(), strides, padding)
        .apply(x, w);
  }

  /** The padding before the dilated input of a transposed convolution, as {@code lax}. */
  static int transposePadLow(int f, int s, Padding padding) {
    if (padding == Padding.SAME && s <= f - 1) {
      return ceilDiv(f + s - 2, 2);
    }
    return f - 1;
  }

  /**
   * A convolution or transposed convolution for one input shape and filter shape, as a gather of
   * input pixels: {@code z = fold(patches(x) W)}, with {@code patches(x)} the patch matrix {@code
   * (N prod(out), prod(f) C_in)}, {@code W} the filter reshaped to {@code (prod(f) C_in, C_out)} and
   * {@code fold} the identity except for a {@code CIRCULAR} transposed convolution. Besides the
   * forward pass it gives the two transposes that the layers' derivatives need: to the input
   * ({@link #backwardInput}) and to the filter ({@link #backwardFilter}), and the patch matrix and
   * unfolded cotangent from which structured derivatives form their grams.
   */
  static final class Correlation implements Linear.Product {
    private final Layout in;
    private final AxisMap[] maps;
    private final int[] table;
    /** The output's spatial shape before the fold. */
    private final int[] out;
    /** The fold of a {@code CIRCULAR} transposed convolution, or null. */
    private final AxisMap[] folds;
    private final int[] folded;
    private final long[] filterDims;

    private Correlation(Layout in, AxisMap[] maps, AxisMap[] folds, Shape w) {
      this.in = in;
      this.maps = maps;
      this.table = sourceTable(in.spatial, maps);
      this.out = outShape(maps);
      this.folds = folds;
      this.folded = folds == null ? out : outShape(folds);
      this.filterDims = w.getShape();
    }

    /** A convolution of inputs of shape {@code x} with filters of shape {@code w}. */
    static Correlation conv(Shape x, DataType dtype, Shape w, int[] strides, Padding padding) {
      Layout in = Layout.of(x, dtype, "conv input");
      int[] filter = filterShape(w, in);
      int[] out = outputShape(in.spatial, filter, strides, padding);
      int[] low = padLow(in.spatial, filter, strides, padding);
      AxisMap[] maps = new AxisMap[in.spatial.length];
      for (int d = 0; d < maps.length; d++) {
        maps[d] = AxisMap.window(in.spatial[d], out[d], filter[d], strides[d], low[d],
            padding == Padding.CIRCULAR);
      }
      return new Correlation(in, maps, null, w);
    }

    /** A transposed convolution of inputs of shape {@code x} with filters of shape {@code w}. */
    static Correlation convTranspose(Shape x, DataType dtype, Shape w, int[] strides, Padding padding) {
      Layout in = Layout.of(x, dtype, "conv_transpose input");
      int[] filter = filterShape(w, in);
      checkGeometry(in.spatial, filter, strides);
      Padding applied = padding == Padding.CIRCULAR ? Padding.VALID : padding;
      int[] full = transposeOutputShape(in.spatial, filter, strides, applied);
      AxisMap[] maps = new AxisMap[in.spatial.length];
      for (int d = 0; d < maps.length; d++) {
        maps[d] = AxisMap.dilated(in.spatial[d], full[d], filter[d], strides[d],
            transposePadLow(filter[d], strides[d], applied));
      }
      AxisMap[] folds = null;
      if (padding == Padding.CIRCULAR) {
        // Fold the VALID result onto in * s outputs, summing every position congruent modulo in * s.
        int[] target = transposeOutputShape(in.spatial, filter, strides, Padding.SAME);
        folds = new AxisMap[target.length];
        for (int d = 0; d < folds.length; d++) {
          folds[d] = AxisMap.fold(full[d], target[d]);
        }
      }
      return new Correlation(in, maps, folds, w);
    }

    /** The number of output positions before the fold: the rows of the patch matrix per example. */
    @Override
    public int positions() {
      return product(out);
    }

    private int taps() {
      return tapCount(maps);
    }

    private int outChannels() {
      return Math.toIntExact(filterDims[filterDims.length - 1]);
    }

    /**
     * The patch matrix {@code (N prod(out), prod(f) C_in)} of {@code x}: row {@code (n, p)} holds
     * what output {@code p} reads.
     */
    @Override
    public NDArray patches(NDArray x) {
      int taps = taps();
      int positions = positions();
      double[] xs = Tensors.toDoubles(x);
      int c = in.c;
      long patchSize = (long) in.n * positions * taps * c;
      if (patchSize > Integer.MAX_VALUE - 8) {
        throw new IllegalArgumentException("the patch matrix would have " + patchSize
            + " entries; use a smaller batch");
      }
      double[] patches = new double[(int) patchSize];
      forEachRead(in, table, positions, taps,
          (row, p, a, from) -> System.arraycopy(xs, from, patches, (row * taps + a) * c, c));
      return Tensors.create(x.getManager(), patches, new Shape((long) in.n * positions, (long) taps * c),
          x.getDataType());
    }

    /** {@code fold(patches(x) W)}: {@code (N, out..., C_out)}. */
    @Override
    public NDArray apply(NDArray x, NDArray w) {
      if (w.getDataType() != x.getDataType()) {
        throw new IllegalArgumentException("the filter is " + w.getDataType() + " but the input is "
            + x.getDataType());
      }
      try (NDArray patchMatrix = patches(x);
          NDArray filter = w.reshape((long) taps() * in.c, outChannels())) {
        NDArray z = patchMatrix.matMul(filter);
        NDArray shaped = z.reshape(shapeOf(in.n, out, outChannels()));
        if (shaped != z) {
          z.close();
        }
        if (folds == null) {
          return shaped;
        }
        Layout full = new Layout(in.n, out, outChannels());
        double[] sums = gatherSum(Tensors.toDoubles(shaped), full, folds);
        shaped.close();
        return Tensors.create(x.getManager(), sums, shapeOf(in.n, folded, outChannels()), x.getDataType());
      }
    }

    /**
     * The cotangent {@code dz} {@code (N, out..., C_out)} of the output carried back through the
     * fold: the cotangent of {@code patches(x) W}, {@code (N prod(out), C_out)}.
     */
    @Override
    public NDArray unfold(NDArray dz) {
      long rows = (long) in.n * positions();
      if (folds == null) {
        return dz.reshape(rows, outChannels());
      }
      Layout full = new Layout(in.n, out, outChannels());
      double[] g = scatterSum(Tensors.toDoubles(dz), full, folds, null);
      return Tensors.create(dz.getManager(), g, new Shape(rows, outChannels()), dz.getDataType());
    }

    /** The input cotangent for output cotangent {@code dz}: the transpose of {@code x -> apply(x, w)}. */
    @Override
    public NDArray backwardInput(NDArray dz, NDArray w) {
      int taps = taps();
      int c = in.c;
      try (NDArray g = unfold(dz);
          NDArray filter = w.reshape((long) taps * c, outChannels());
          NDArray filterT = filter.transpose();
          NDArray patchCotangent = g.matMul(filterT)) {
        return unpatch(patchCotangent);
      }
    }

    /**
     * The transpose of {@link #patches}: each row {@code (n, p)} of {@code patchCotangent} {@code (N
     * prod(out), prod(f) C_in)} added to the input pixels that output {@code p} reads.
     */
    NDArray unpatch(NDArray patchCotangent) {
      int taps = taps();
      int positions = positions();
      int c = in.c;
      double[] dp = Tensors.toDoubles(patchCotangent);
      double[] dx = new double[in.n * product(in.spatial) * c];
      forEachRead(in, table, positions, taps, (row, p, a, to) -> {
        int from = (row * taps + a) * c;
        for (int ch = 0; ch < c; ch++) {
          dx[to + ch] += dp[from + ch];
        }
      });
      return Tensors.create(patchCotangent.getManager(), dx, shapeOf(in.n, in.spatial, c),
          patchCotangent.getDataType());
    }

    /** The filter cotangent for input {@code x} and output cotangent {@code dz}: {@code patches(x)^T unfold(dz)}. */
    @Override
    public NDArray backwardFilter(NDArray x, NDArray dz) {
      try (NDArray patchMatrix = patches(x);
          NDArray patchT = patchMatrix.transpose();
          NDArray g = unfold(dz);
          NDArray dw = patchT.matMul(g)) {
        return dw.reshape(new Shape(filterDims));
      }
    }
  }

  /**
   * A locally connected layer's product (neural-tangents' {@code ConvLocal}, JAX's {@code
   * lax.conv_general_dilated_local}): a convolution whose filter differs at every output position,
   * {@code z[n, p] = X[n, p] W[p]} with {@code X[n, p]} the patch that a convolution of the same
   * geometry reads and {@code W} of shape {@code (out..., C_in prod(f), C_out)}, each position's
   * filter flattened input channel first, then taps, as JAX orders it.
   *
   * <p>For structured derivatives ({@link AffineTape}) a position's weights are their own
   * parameters, so its patch is given as {@code e_p (x) X[n, p]} {@code (N P, P C_in prod(f))}: the
   * gram of two patches is then {@code X1[p] . X2[q]} where {@code p = q} and zero elsewhere, and
   * {@code patches^T G} is the weight cotangent {@code W}'s shape flattened.
   */
  static final class Local implements Linear.Product {
    private final Correlation shared;
    private final int positions;
    private final int taps;
    private final int channels;
    private final long fanIn;
    private final long outChannels;
    private final Shape outShape;

    /** The product of inputs shaped like {@code x} with weights like {@code w} {@code (out..., fan_in, C_out)}. */
    Local(Shape x, DataType dtype, Shape w, int[] filter, int[] strides, Padding padding) {
      long[] filterDims = new long[filter.length + 2];
      for (int d = 0; d < filter.length; d++) {
        filterDims[d] = filter[d];
      }
      filterDims[filter.length] = x.get(x.dimension() - 1);
      outChannels = w.get(w.dimension() - 1);
      filterDims[filter.length + 1] = outChannels;
      this.shared = Correlation.conv(x, dtype, new Shape(filterDims), strides, padding);
      this.positions = shared.positions();
      this.taps = shared.taps();
      this.channels = shared.in.c;
      this.fanIn = w.get(w.dimension() - 2);
      long[] out = new long[filter.length + 2];
      out[0] = x.get(0);
      for (int d = 0; d < filter.length; d++) {
        out[d + 1] = shared.out[d];
      }
      out[filter.length + 1] = outChannels;
      this.outShape = new Shape(out);
      if (w.size() != positions * fanIn * outChannels || fanIn != (long) taps * channels) {
        throw new IllegalArgumentException("the weights " + w + " of a locally connected layer must have shape "
            + "(out..., C_in prod(filter), C_out) = " + outShape.slice(1, filter.length + 1) + " x "
            + (long) taps * channels + " x " + outChannels);
      }
    }

    /** {@code a} {@code (N P, k)} as {@code (P, N, k)}: the positions lead, for one batched product per position. */
    private NDArray byPosition(NDArray a) {
      long k = a.getShape().get(a.getShape().dimension() - 1);
      return a.reshape(-1, positions, k).transpose(1, 0, 2);
    }

    /** The weights {@code (P, taps C_in, C_out)} in the order of the patches (taps first). */
    private NDArray patchOrder(NDArray w) {
      NDArray split = w.reshape(positions, channels, taps, outChannels);
      try (NDArray swapped = split.transpose(0, 2, 1, 3)) {
        if (split != w) {
          split.close();
        }
        return swapped.reshape(positions, fanIn, outChannels);
      }
    }

    @Override
    public NDArray apply(NDArray x, NDArray w) {
      try (NDArray patchMatrix = shared.patches(x);
          NDArray p = byPosition(patchMatrix);
          NDArray weights = patchOrder(w);
          NDArray z = p.matMul(weights)) {
        return z.transpose(1, 0, 2).reshape(outShape);
      }
    }

    @Override
    public NDArray backwardInput(NDArray dz, NDArray w) {
      try (NDArray g = byPosition(unfold(dz));
          NDArray weights = patchOrder(w);
          NDArray weightsT = weights.transpose(0, 2, 1);
          NDArray dp = g.matMul(weightsT);
          NDArray rows = dp.transpose(1, 0, 2).reshape(-1, fanIn)) {
        return shared.unpatch(rows);
      }
    }

    @Override
    public NDArray backwardFilter(NDArray x, NDArray dz) {
      try (NDArray patchMatrix = shared.patches(x);
          NDArray p = byPosition(patchMatrix);
          NDArray pt = p.transpose(0, 2, 1);
          NDArray g = byPosition(unfold(dz));
          NDArray dw = pt.matMul(g);
          NDArray split = dw.reshape(positions, taps, channels, outChannels);
          NDArray swapped = split.transpose(0, 2, 1, 3)) {
        return swapped.reshape(outShape.slice(1, outShape.dimension() - 1).add(fanIn, outChannels));
      }
    }

    @Override
    public NDArray patches(NDArray x) {
      double[] xs;
      try (NDArray patchMatrix = shared.patches(x)) {
        xs = Tensors.toDoubles(patchMatrix);
      }
      int f = Math.toIntExact(fanIn);
      long rows = xs.length / f;
      long size = rows * positions * f;
      if (size > Integer.MAX_VALUE - 8) {
        throw new IllegalArgumentException("the structured patches of a locally connected layer would have "
            + size + " entries; use a smaller batch");
      }
      double[] out = new double[(int) size];
      for (int r = 0; r < rows; r++) {
        int at = (r * positions + r % positions) * f;
        for (int a = 0; a < taps; a++) {
          for (int c = 0; c < channels; c++) {
            out[at + c * taps + a] = xs[r * f + a * channels + c];
          }
        }
      }
      return Tensors.create(x.getManager(), out, new Shape(rows, (long) positions * f), x.getDataType());
    }

    @Override
    public NDArray unfold(NDArray dz) {
      return dz.reshape(-1, outChannels);
    }

    @Override
    public int positions() {
      return positions;
    }

    @Override
    public boolean perPosition() {
      return true;
    }
  }

  /**
   * Sum pooling ({@code average == false}) or average pooling of {@code x} {@code (N, in..., C)}
   * over windows: {@code (N, out..., C)}. {@code normalizeEdges} (average only) divides by the
   * number of window pixels inside the image instead of the window size.
   */
  static NDArray pool(NDArray x, int[] window, int[] strides, Padding padding, boolean average,
      boolean normalizeEdges) {
    Layout in = Layout.of(x.getShape(), x.getDataType(), "pool input");
    AxisMap[] maps = poolMaps(in, window, strides, padding);
    double[] divisors = poolDivisors(in, maps, window, average, normalizeEdges);
    double[] sums = gatherSum(Tensors.toDoubles(x), in, maps);
    int c = in.c;
    for (int i = 0; i < sums.length; i++) {
      sums[i] /= divisors[(i / c) % divisors.length];
    }
    return Tensors.create(x.getManager(), sums, shapeOf(in.n, outShape(maps), in.c), x.getDataType());
  }

  /**
   * The input cotangent of {@link #pool} on inputs of shape {@code x} for the output cotangent
   * {@code dy}: each output's cotangent, divided as the output was, added to the pixels it read.
   */
  static NDArray poolBackward(NDArray dy, Shape x, int[] window, int[] strides, Padding padding,
      boolean average, boolean normalizeEdges) {
    Layout in = Layout.of(x, dy.getDataType(), "pool input");
    AxisMap[] maps = poolMaps(in, window, strides, padding);
    double[] divisors = poolDivisors(in, maps, window, average, normalizeEdges);
    double[] dx = scatterSum(Tensors.toDoubles(dy), in, maps, divisors);
    return Tensors.create(dy.getManager(), dx, x, dy.getDataType());
  }

  private static AxisMap[] poolMaps(Layout in, int[] window, int[] strides, Padding padding) {
    if (window.length != in.spatial.length) {
      throw new IllegalArgumentException("window " + Arrays.toString(window) + " has "
          + window.length + " axes, but the input has " + in.spatial.length + " spatial axes");
    }
    int[] out = outputShape(in.spatial, window, strides, padding);
    int[] low = padLow(in.spatial, window, strides, padding);
    AxisMap[] maps = new AxisMap[in.spatial.length];
    for (int d = 0; d < maps.length; d++) {
      maps[d] = AxisMap.window(in.spatial[d], out[d], window[d], strides[d], low[d],
          padding == Padding.CIRCULAR);
    }
    return maps;
  }

  /** What each output position of a pool divides its sum by: 1, the window size, or its pixels inside the image. */
  private static double[] poolDivisors(Layout in, AxisMap[] maps, int[] window, boolean average,
      boolean normalizeEdges) {
    int positions = product(outShape(maps));
    double[] divisors = new double[positions];
    Arrays.fill(divisors, average ? product(window) : 1);
    if (average && normalizeEdges) {
      int[] table = sourceTable(in.spatial, maps);
      int taps = tapCount(maps);
      for (int p = 0; p < positions; p++) {
        int k = 0;
        for (int a = 0; a < taps; a++) {
          if (table[p * taps + a] >= 0) {
            k++;
          }
        }
        divisors[p] = k;
      }
    }
    return divisors;
  }

  /**
   * The transpose of {@link #gatherSum}: {@code ys} holds a value per output position and channel;
   * each, divided by {@code divisors[p]} (if not null), is added to every input pixel its position
   * reads. Returns the input-shaped sums.
   */
  private static double[] scatterSum(double[] ys, Layout in, AxisMap[] maps, double[] divisors) {
    int c = in.c;
    double[] xs = new double[in.n * product(in.spatial) * c];
    forEachRead(in, sourceTable(in.spatial, maps), product(outShape(maps)), tapCount(maps), (row, p, a, to) -> {
      int from = row * c;
      double scale = divisors == null ? 1 : 1 / divisors[p];
      for (int ch = 0; ch < c; ch++) {
        xs[to + ch] += ys[from + ch] * scale;
      }
    });
    return xs;
  }

  /** {@code sum_a x[n, src(p, a), c]} for every output position {@code p}. */
  private static double[] gatherSum(double[] xs, Layout in, AxisMap[] maps) {
    int positions = product(outShape(maps));
    int c = in.c;
    double[] sums = new double[in.n * positions * c];
    forEachRead(in, sourceTable(in.spatial, maps), positions, tapCount(maps), (row, p, a, from) -> {
      int dst = row * c;
      for (int ch = 0; ch < c; ch++) {
        sums[dst + ch] += xs[from + ch];
      }
    });
    return sums;
  }

  /** What {@link #forEachRead} visits: one input pixel that one output position reads. */
  @FunctionalInterface
  private interface Read {
    /**
     * Output position {@code p} of example {@code row / positions} ({@code row = n positions + p}) reads,
     * at tap {@code a}, the input pixel whose channels start at {@code input} in the {@code (N, spatial...,
     * C)} input.
     */
    void at(int row, int p, int a, int input);
  }

  /**
   * Visits, for every example, output position and tap in that order, the input pixel it reads in the
   * {@link #sourceTable} {@code table} ({@code positions x taps}), skipping padded zeros: the one walk
   * behind the patch matrix, the pools' sums and their transposes.
   */
  private static void forEachRead(Layout in, int[] table, int positions, int taps, Read visit) {
    int inPositions = product(in.spatial);
    for (int n = 0; n < in.n; n++) {
      for (int p = 0; p < positions; p++) {
        int row = n * positions + p;
        for (int a = 0; a < taps; a++) {
          int src = table[p * taps + a];
          if (src >= 0) {
            visit.at(row, p, a, (n * inPositions + src) * in.c);
          }
        }
      }
    }
  }

  /**
   * For output position {@code p} (flat, C order) and tap {@code a} (flat, C order over the
   * per-axis taps): the flat input position it reads, or -1 for a padded zero.
   */
  private static int[] sourceTable(int[] in, AxisMap[] maps) {
    int dims = maps.length;
    int[] out = outShape(maps);
    int positions = product(out);
    int taps = tapCount(maps);
    int[] table = new int[positions * taps];
    int[] pIndex = new int[dims];
    for (int p = 0; p < positions; p++) {
      int rem = p;
      for (int d = dims - 1; d >= 0; d--) {
        pIndex[d] = rem % out[d];
        rem /= out[d];
      }
      for (int a = 0; a < taps; a++) {
        int r = a;
        int flat = 0;
        int stride = 1;
        boolean inside = true;
        for (int d = dims - 1; d >= 0; d--) {
          int t = r % maps[d].taps;
          r /= maps[d].taps;
          int src = maps[d].source[pIndex[d] * maps[d].taps + t];
          if (src < 0) {
            inside = false;
            break;
          }
          flat += src * stride;
          stride *= in[d];
        }
        table[p * taps + a] = inside ? flat : -1;
      }
    }
    return table;
  }

  /**
   * Along one axis: {@code out} output positions, each reading {@code taps} input indices
   * ({@code source[p * taps + a]}, -1 for a padded zero).
   */
  private record AxisMap(int out, int taps, int[] source) {
    /** A strided window with {@code low} padding before the input; zeros or wrap-around. */
    static AxisMap window(int in, int out, int f, int s, int low, boolean circular) {
      int[] source = new int[out * f];
      for (int p = 0; p < out; p++) {
        for (int a = 0; a < f; a++) {
          int i = p * s + a - low;
          source[p * f + a] = circular ? Math.floorMod(i, in) : (i >= 0 && i < in ? i : -1);
        }
      }
      return new AxisMap(out, f, source);
    }

    /** A stride-1 window over the input dilated by {@code s}, with {@code low} zeros before it. */
    static AxisMap dilated(int in, int out, int f, int s, int low) {
      int[] source = new int[out * f];
      for (int p = 0; p < out; p++) {
        for (int a = 0; a < f; a++) {
          int t = p + a - low;
          source[p * f + a] = t >= 0 && t % s == 0 && t / s < in ? t / s : -1;
        }
      }
      return new AxisMap(out, f, source);
    }

    /** Output j of {@code out} sums inputs {@code j + d + m out}, {@code d = (in - out) / 2}. */
    static AxisMap fold(int in, int out) {
      int shift = (in - out) / 2;
      int reach = ceilDiv(in, out) + 1;
      int taps = 2 * reach + 1;
      int[] source = new int[out * taps];
      for (int j = 0; j < out; j++) {
        for (int m = -reach; m <= reach; m++) {
          int i = j + shift + m * out;
          source[j * taps + m + reach] = i >= 0 && i < in ? i : -1;
        }
      }
      return new AxisMap(out, taps, source);
    }
  }

  /** The batch, spatial shape and channels of an {@code (N, spatial..., C)} array. */
  private record Layout(int n, int[] spatial, int c) {
    static Layout of(Shape s, DataType dtype, String what) {
      if (s.dimension() < 3 || s.dimension() > 5) {
        throw new IllegalArgumentException(what + " must have shape (N, spatial..., C) with 1 to 3 "
            + "spatial axes, got " + s);
      }
      if (dtype != DataType.FLOAT32 && dtype != DataType.FLOAT64) {
        throw new IllegalArgumentException(what + " must be float32 or float64, got " + dtype);
      }
      int[] spatial = new int[s.dimension() - 2];
      for (int d = 0; d < spatial.length; d++) {
        spatial[d] = Math.toIntExact(s.get(d + 1));
      }
      return new Layout(Math.toIntExact(s.get(0)), spatial, Math.toIntExact(s.get(s.dimension() - 1)));
    }
  }

  private static int[] filterShape(Shape s, Layout in) {
    if (s.dimension() != in.spatial.length + 2) {
      throw new IllegalArgumentException("the filter must have shape (filter..., C_in, C_out) with "
          + in.spatial.length + " spatial axes like the input, got " + s);
    }
    if (s.get(s.dimension() - 2) != in.c) {
      throw new IllegalArgumentException("the filter " + s + " takes " + s.get(s.dimension() - 2)
          + " input channels, but the input has " + in.c);
    }
    int[] filter = new int[in.spatial.length];
    for (int d = 0; d < filter.length; d++) {
      filter[d] = Math.toIntExact(s.get(d));
    }
    return filter;
  }

  private static void checkGeometry(int[] in, int[] window, int[] strides) {
    if (window.length != in.length || strides.length != in.length) {
      throw new IllegalArgumentException("window " + Arrays.toString(window) + " and strides "
          + Arrays.toString(strides) + " need one entry per spatial axis of the input "
          + Arrays.toString(in));
    }
    for (int d = 0; d < in.length; d++) {
      if (window[d] < 1 || strides[d] < 1 || in[d] < 1) {
        throw new IllegalArgumentException("sizes must be positive: input " + Arrays.toString(in)
            + ", window " + Arrays.toString(window) + ", strides " + Arrays.toString(strides));
      }
    }
  }

  private static int[] outShape(AxisMap[] maps) {
    int[] out = new int[maps.length];
    for (int d = 0; d < maps.length; d++) {
      out[d] = maps[d].out;
    }
    return out;
  }

  private static int tapCount(AxisMap[] maps) {
    int taps = 1;
    for (AxisMap m : maps) {
      taps *= m.taps;
    }
    return taps;
  }

  private static Shape shapeOf(int n, int[] spatial, int c) {
    long[] dims = new long[spatial.length + 2];
    dims[0] = n;
    for (int d = 0; d < spatial.length; d++) {
      dims[d + 1] = spatial[d];
    }
    dims[dims.length - 1] = c;
    return new Shape(dims);
  }

  private static int product(int[] values) {
    int p = 1;
    for (int v : values) {
      p = Math.multiplyExact(p, v);
    }
    return p;
  }

  private static int ceilDiv(int a, int b) {
    return -Math.floorDiv(-a, b);
  }
}

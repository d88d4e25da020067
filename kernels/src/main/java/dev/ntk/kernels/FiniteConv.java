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
    Layout in = Layout.of(x, "conv input");
    int[] filter = filterShape(w, in);
    int[] out = outputShape(in.spatial, filter, strides, padding);
    int[] low = padLow(in.spatial, filter, strides, padding);
    AxisMap[] maps = new AxisMap[in.spatial.length];
    for (int d = 0; d < maps.length; d++) {
      maps[d] = AxisMap.window(in.spatial[d], out[d], filter[d], strides[d], low[d],
          padding == Padding.CIRCULAR);
    }
    return correlate(x, w, in, maps);
  }

  /**
   * The transposed convolution of {@code x} {@code (N, in..., C_in)} with {@code w} {@code
   * (filter..., C_in, C_out)}, with neural-tangents' {@code ConvTranspose} semantics (class
   * comment): {@code (N, transposeOutputShape(...)..., C_out)}. No scaling, no bias.
   */
  static NDArray convTranspose(NDArray x, NDArray w, int[] strides, Padding padding) {
    Layout in = Layout.of(x, "conv_transpose input");
    int[] filter = filterShape(w, in);
    checkGeometry(in.spatial, filter, strides);
    Padding applied = padding == Padding.CIRCULAR ? Padding.VALID : padding;
    int[] full = transposeOutputShape(in.spatial, filter, strides, applied);
    AxisMap[] maps = new AxisMap[in.spatial.length];
    for (int d = 0; d < maps.length; d++) {
      maps[d] = AxisMap.dilated(in.spatial[d], full[d], filter[d], strides[d],
          transposePadLow(filter[d], strides[d], applied));
    }
    NDArray z = correlate(x, w, in, maps);
    if (padding != Padding.CIRCULAR) {
      return z;
    }
    // Fold the VALID result onto in * s outputs, summing every position congruent modulo in * s.
    Layout full3 = Layout.of(z, "conv_transpose result");
    int[] target = transposeOutputShape(in.spatial, filter, strides, Padding.SAME);
    AxisMap[] folds = new AxisMap[target.length];
    for (int d = 0; d < folds.length; d++) {
      folds[d] = AxisMap.fold(full[d], target[d]);
    }
    double[] folded = gatherSum(Tensors.toDoubles(z), full3, folds, null);
    NDArray result = Tensors.create(x.getManager(), folded,
        shapeOf(in.n, target, full3.c), x.getDataType());
    z.close();
    return result;
  }

  /** The padding before the dilated input of a transposed convolution, as {@code lax}. */
  static int transposePadLow(int f, int s, Padding padding) {
    if (padding == Padding.SAME && s <= f - 1) {
      return ceilDiv(f + s - 2, 2);
    }
    return f - 1;
  }

  /**
   * Sum pooling ({@code average == false}) or average pooling of {@code x} {@code (N, in..., C)}
   * over windows: {@code (N, out..., C)}. {@code normalizeEdges} (average only) divides by the
   * number of window pixels inside the image instead of the window size.
   */
  static NDArray pool(NDArray x, int[] window, int[] strides, Padding padding, boolean average,
      boolean normalizeEdges) {
    Layout in = Layout.of(x, "pool input");
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
    int[] counts = average ? new int[product(out)] : null;
    double[] sums = gatherSum(Tensors.toDoubles(x), in, maps, counts);
    if (average) {
      int windowSize = product(window);
      int c = in.c;
      for (int i = 0; i < sums.length; i++) {
        int p = (i / c) % counts.length;
        sums[i] /= normalizeEdges ? counts[p] : windowSize;
      }
    }
    return Tensors.create(x.getManager(), sums, shapeOf(in.n, out, in.c), x.getDataType());
  }

  /** {@code sum_{a, c} x[n, src(p, a), c] w[a, c, o]}, as one matMul of the patch matrix. */
  private static NDArray correlate(NDArray x, NDArray w, Layout in, AxisMap[] maps) {
    if (w.getDataType() != x.getDataType()) {
      throw new IllegalArgumentException("the filter is " + w.getDataType() + " but the input is "
          + x.getDataType());
    }
    int[] out = outShape(maps);
    int taps = tapCount(maps);
    int positions = product(out);
    int[] table = sourceTable(in.spatial, maps);
    double[] xs = Tensors.toDoubles(x);
    int c = in.c;
    int inPositions = product(in.spatial);
    long patchSize = (long) in.n * positions * taps * c;
    if (patchSize > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("the patch matrix would have " + patchSize
          + " entries; use a smaller batch");
    }
    double[] patches = new double[(int) patchSize];
    for (int n = 0; n < in.n; n++) {
      for (int p = 0; p < positions; p++) {
        int row = (n * positions + p) * taps * c;
        for (int a = 0; a < taps; a++) {
          int src = table[p * taps + a];
          if (src >= 0) {
            System.arraycopy(xs, (n * inPositions + src) * c, patches, row + a * c, c);
          }
        }
      }
    }
    int cOut = (int) w.getShape().get(w.getShape().dimension() - 1);
    NDManager manager = x.getManager();
    try (NDArray patchMatrix = Tensors.create(manager, patches,
            new Shape((long) in.n * positions, (long) taps * c), x.getDataType());
        NDArray filter = w.reshape((long) taps * c, cOut)) {
      NDArray z = patchMatrix.matMul(filter);
      NDArray shaped = z.reshape(shapeOf(in.n, out, cOut));
      if (shaped != z) {
        z.close();
      }
      return shaped;
    }
  }

  /**
   * {@code sum_a x[n, src(p, a), c]} for every output position {@code p}; {@code counts}, if not
   * null, receives the number of taps of each position that read a real pixel.
   */
  private static double[] gatherSum(double[] xs, Layout in, AxisMap[] maps, int[] counts) {
    int[] out = outShape(maps);
    int taps = tapCount(maps);
    int positions = product(out);
    int[] table = sourceTable(in.spatial, maps);
    int c = in.c;
    int inPositions = product(in.spatial);
    double[] sums = new double[in.n * positions * c];
    for (int n = 0; n < in.n; n++) {
      for (int p = 0; p < positions; p++) {
        int dst = (n * positions + p) * c;
        for (int a = 0; a < taps; a++) {
          int src = table[p * taps + a];
          if (src < 0) {
            continue;
          }
          int from = (n * inPositions + src) * c;
          for (int ch = 0; ch < c; ch++) {
            sums[dst + ch] += xs[from + ch];
          }
        }
      }
    }
    if (counts != null) {
      for (int p = 0; p < positions; p++) {
        int k = 0;
        for (int a = 0; a < taps; a++) {
          if (table[p * taps + a] >= 0) {
            k++;
          }
        }
        counts[p] = k;
      }
    }
    return sums;
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
    static Layout of(NDArray x, String what) {
      Shape s = x.getShape();
      if (s.dimension() < 3 || s.dimension() > 5) {
        throw new IllegalArgumentException(what + " must have shape (N, spatial..., C) with 1 to 3 "
            + "spatial axes, got " + s);
      }
      DataType dtype = x.getDataType();
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

  private static int[] filterShape(NDArray w, Layout in) {
    Shape s = w.getShape();
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

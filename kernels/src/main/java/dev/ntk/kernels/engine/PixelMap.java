package dev.ntk.kernels.engine;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A linear map of the pixel blocks of a spatial kernel (see {@link Layout}), separable over the
 * grid's axes: how a convolution, a pooling window or a transposed convolution acts on the
 * covariance of its input. Each axis has its own sparse matrix: on {@link Layout.Kind#DIAG}
 * blocks it maps input pixels {@code p} to output pixels {@code p'}; on {@link Layout.Kind#FULL}
 * blocks it maps pixel pairs {@code (p, q)} to pairs {@code (p', q')}, which a convolution needs
 * because the same filter offset shifts both pixels together.
 *
 * <p>Both backends run the same matrices: the {@code cpu} backend as sparse loops over a block,
 * the {@code tensorflow} backend as one dense matrix product per axis ({@link #dense}).
 */
public final class PixelMap {
  /**
   * One axis of a window sliding over a grid, with the output size and padding already decided;
   * the input may be dilated (a transposed convolution: {@code dilation - 1} zeros between
   * neighbouring pixels).
   */
  public record Window(int in, int size, int stride, int padLow, int out, boolean circular, int dilation) {
    public Window {
      if (in <= 0 || size <= 0 || stride <= 0 || out <= 0 || dilation <= 0) {
        throw new IllegalArgumentException("a window " + size + " with stride " + stride + " over "
            + in + " pixels giving " + out);
      }
    }

    public Window(int in, int size, int stride, int padLow, int out, boolean circular) {
      this(in, size, stride, padLow, out, circular, 1);
    }

    /**
     * The input pixel under offset {@code a} of output position {@code o}, or -1 in the zero
     * padding or between dilated pixels. A circular window wraps around {@code in * dilation}
     * positions: the dilated input followed by {@code dilation - 1} zeros.
     */
    public int at(int o, int a) {
      int p = o * stride + a - padLow;
      if (circular) {
        p = Math.floorMod(p, in * dilation);
      } else if (p < 0) {
        return -1;
      }
      if (dilation > 1) {
        if (p % dilation != 0) {
          return -1;
        }
        p /= dilation;
      }
      return p >= in ? -1 : p;
    }
  }

  /**
   * The sparse matrix of one axis: {@code out[outIndex[t]] += weight[t] * in[inIndex[t]]}, indices
   * over pixels ({@code DIAG}) or pixel pairs {@code p * n + q} ({@code FULL}).
   */
  record Axis(int in, int out, int[] outIndex, int[] inIndex, double[] weight) {
    /** Terms in the order given (the last index varying fastest, so that they form runs). */
    static Axis of(int in, int out, List<int[]> at, List<Double> w) {
      int[] oi = new int[at.size()];
      int[] ii = new int[at.size()];
      double[] ws = new double[at.size()];
      for (int t = 0; t < ws.length; t++) {
        oi[t] = at.get(t)[0];
        ii[t] = at.get(t)[1];
        ws[t] = w.get(t);
      }
      return new Axis(in, out, oi, ii, ws);
    }
  }

  private final Layout input;
  private final Layout output;
  /** The output's size on every axis of the map, 1 on the axes that {@link #output} drops. */
  private final int[] outGrid;
  private final Axis[] axes;
  private final String name;

  private PixelMap(String name, Layout input, Layout output, Axis[] axes, Shifts shifts) {
    this(name, input, output, output.grid(), axes, shifts);
  }

  private PixelMap(String name, Layout input, Layout output, int[] outGrid, Axis[] axes, Shifts shifts) {
    this.outGrid = outGrid.clone();
    this.shifts = shifts;
    this.name = name;
    this.input = input;
    this.output = output;
    this.axes = axes;
  }

  /**
   * A convolution with filter {@code windows} on blocks of {@code kind}: the average over filter
   * offsets {@code a} of the input covariance at {@code (s p' + a - pad, s q' + a - pad)}, zero
   * padding counting in the average (neural-tangents' convention).
   */
  public static PixelMap conv(Layout.Kind kind, List<Window> windows) {
    Axis[] axes = new Axis[windows.size()];
    for (int k = 0; k < axes.length; k++) {
      Window w = windows.get(k);
      double weight = 1.0 / w.size();
      List<int[]> at = new ArrayList<>();
      List<Double> ws = new ArrayList<>();
      // Offset by offset, output pixels innermost: each offset is a shifted copy (a run).
      if (kind == Layout.Kind.DIAG) {
        for (int a = 0; a < w.size(); a++) {
          for (int o = 0; o < w.out(); o++) {
            int p = w.at(o, a);
            if (p >= 0) {
              at.add(new int[] {o, p});
              ws.add(weight);
            }
          }
        }
        axes[k] = Axis.of(w.in(), w.out(), at, ws);
      } else {
        for (int po = 0; po < w.out(); po++) {
          for (int a = 0; a < w.size(); a++) {
            int p = w.at(po, a);
            for (int qo = 0; p >= 0 && qo < w.out(); qo++) {
              int q = w.at(qo, a);
              if (q >= 0) {
                at.add(new int[] {po * w.out() + qo, p * w.in() + q});
                ws.add(weight);
              }
            }
          }
        }
        axes[k] = Axis.of(w.in() * w.in(), w.out() * w.out(), at, ws);
      }
    }
    boolean shifted = windows.stream().allMatch(w -> w.stride() == 1 && w.dilation() == 1 && !w.circular());
    return new PixelMap("conv", layout(kind, windows, true), layout(kind, windows, false), axes,
        shifted ? shifts(windows, kind == Layout.Kind.FULL) : null);
  }

  /**
   * A convolution with stride 1 and zero padding, run as shifted copies of a padded block: the
   * block (its {@code d} pixel axes, or {@code 2d} for pixel pairs) is copied into a zero-padded
   * grid of {@code G_k = out_k + f_k - 1} per axis (whose padding is zeroed once, see {@link
   * Scratch}), and each output row is the sum, in registers, of one shifted run of the grid per
   * filter offset (which shifts both pixels of a pair together). Inside a run of entry-wise steps
   * the output is computed chunk by chunk ({@link #chunk}), never written out as a whole block.
   */
  private record Shifts(int[] padded, int[] low, int[] in, int[] out, int[] offsets, double weight, int size,
      int[] rowOffsets) {}

  /** The shifted-copies form of a stride-1 convolution, or null. */
  private final Shifts shifts;

  private static Shifts shifts(List<Window> windows, boolean full) {
    int d = windows.size();
    int rank = full ? 2 * d : d;
    int[] padded = new int[rank];
    int[] low = new int[rank];
    int[] in = new int[rank];
    int[] out = new int[rank];
    double weight = 1;
    for (int j = 0; j < rank; j++) {
      Window w = windows.get(j % d);
      padded[j] = w.out() + w.size() - 1;
      low[j] = w.padLow();
      in[j] = w.in();
      out[j] = w.out();
    }
    for (Window w : windows) {
      weight /= w.size();
    }
    int[] stride = new int[rank];
    int acc = 1;
    for (int j = rank - 1; j >= 0; j--) {
      stride[j] = acc;
      acc = Math.multiplyExact(acc, padded[j]);
    }
    int count = 1;
    for (Window w : windows) {
      count *= w.size();
    }
    int[] offsets = new int[count];
    for (int t = 0; t < count; t++) {
      int rest = t;
      int off = 0;
      for (int k = d - 1; k >= 0; k--) {
        int a = rest % windows.get(k).size();
        rest /= windows.get(k).size();
        off += a * stride[k] + (full ? a * stride[d + k] : 0);
      }
      offsets[t] = off;
    }
    // Where each output row (all axes but the last) starts in the padded grid.
    int[] rowOffsets = new int[Math.toIntExact(product(out) / out[rank - 1])];
    Rows from = new Rows(out, new int[rank], padded);
    for (int r = 0; r < rowOffsets.length; r++, from.next()) {
      rowOffsets[r] = from.offset;
    }
    return new Shifts(padded, low, in, out, offsets, weight, acc, rowOffsets);
  }

  /**
   * A pooling window on {@link Layout.Kind#FULL} blocks: {@code out[p', q'] = sum over window
   * offsets a, b of c(p') c(q') in[s p' + a - pad, s q' + b - pad]}, with the weight {@code c} of
   * each output pixel given per axis by {@code weights[k][o]} ({@code 1 / size} for an average,
   * 1 for a sum, or 1 over the pixels inside the image).
   */
  public static PixelMap pool(List<Window> windows, double[][] weights) {
    Axis[] axes = new Axis[windows.size()];
    for (int k = 0; k < axes.length; k++) {
      Window w = windows.get(k);
      double[][] a1 = new double[w.out()][w.in()];
      for (int o = 0; o < w.out(); o++) {
        for (int a = 0; a < w.size(); a++) {
          int p = w.at(o, a);
          if (p >= 0) {
            a1[o][p] += weights[k][o];
          }
        }
      }
      List<int[]> at = new ArrayList<>();
      List<Double> ws = new ArrayList<>();
      for (int po = 0; po < w.out(); po++) {
        for (int p = 0; p < w.in(); p++) {
          if (a1[po][p] == 0) {
            continue;
          }
          for (int b = 0; b < w.size(); b++) {
            for (int qo = 0; qo < w.out(); qo++) {
              int q = w.at(qo, b);
              // Each (q', q) once, at its first offset b (a wrapped window may repeat a pixel).
              if (q >= 0 && firstOffset(w, qo, q) == b) {
                at.add(new int[] {po * w.out() + qo, p * w.in() + q});
                ws.add(a1[po][p] * a1[qo][q]);
              }
            }
          }
        }
      }
      axes[k] = Axis.of(w.in() * w.in(), w.out() * w.out(), at, ws);
    }
    Layout.Kind full = Layout.Kind.FULL;
    return new PixelMap("pool", layout(full, windows, true), layout(full, windows, false), axes, null);
  }

  /**
   * The mean over the axes marked in {@code averaged}, kept over them (a {@code keepdims} mean) on
   * {@link Layout.Kind#DIAG} blocks on {@code grid}: pixel {@code p} becomes the average of the
   * pixels that agree with {@code p} on every other axis. {@code LayerNorm} normalizes by this mean
   * of the per-pixel variances when it normalizes over spatial axes.
   */
  public static PixelMap axisMean(int[] grid, boolean[] averaged) {
    Axis[] axes = new Axis[grid.length];
    for (int k = 0; k < axes.length; k++) {
      int n = grid[k];
      List<int[]> at = new ArrayList<>();
      List<Double> ws = new ArrayList<>();
      // Input pixel by input pixel, output pixels innermost: one broadcast run per input pixel.
      for (int p = 0; p < n; p++) {
        for (int o = 0; o < n; o++) {
          if (averaged[k] || o == p) {
            at.add(new int[] {o, p});
            ws.add(averaged[k] ? 1.0 / n : 1.0);
          }
        }
      }
      axes[k] = Axis.of(n, n, at, ws);
    }
    return new PixelMap("mean", Layout.diag(grid), Layout.diag(grid), axes, null);
  }

  /**
   * On {@link Layout.Kind#FULL} blocks on {@code grid}: the covariance of each pixel with itself
   * kept, that of two different pixels zero ({@code Dropout} scales only the former).
   */
  public static PixelMap pixelDiagonal(int[] grid) {
    Axis[] axes = new Axis[grid.length];
    for (int k = 0; k < axes.length; k++) {
      int n = grid[k];
      List<int[]> at = new ArrayList<>();
      List<Double> ws = new ArrayList<>();
      for (int p = 0; p < n; p++) {
        at.add(new int[] {p * n + p, p * n + p});
        ws.add(1.0);
      }
      axes[k] = Axis.of(n * n, n * n, at, ws);
    }
    return new PixelMap("pixel-diagonal", Layout.full(grid), Layout.full(grid), axes, null);
  }

  /**
   * Places blocks of {@code input} into a grid {@code length} pixels long on {@code axis}, from
   * pixel {@code offset} on: one branch of a concatenation along a spatial axis. The other pixels,
   * and on {@link Layout.Kind#FULL} blocks every pair with a pixel outside the branch, are zero
   * (the covariance between independent branches); the sum of the branches' placements is the
   * concatenation's block.
   */
  public static PixelMap place(Layout input, int axis, int offset, int length) {
    int[] grid = input.grid();
    if (axis < 0 || axis >= grid.length || offset < 0 || offset + grid[axis] > length) {
      throw new IllegalArgumentException("pixels " + offset + " to " + (offset + grid[axis < 0 ? 0 : axis])
          + " of " + length + " on axis " + axis + " of " + input);
    }
    boolean full = input.kind() == Layout.Kind.FULL;
    Axis[] axes = new Axis[grid.length];
    int[] outGrid = grid.clone();
    outGrid[axis] = length;
    for (int k = 0; k < grid.length; k++) {
      int n = grid[k];
      int out = outGrid[k];
      int off = k == axis ? offset : 0;
      List<int[]> at = new ArrayList<>();
      List<Double> ws = new ArrayList<>();
      for (int p = 0; p < n; p++) {
        for (int q = 0; q < (full ? n : 1); q++) {
          at.add(full ? new int[] {(off + p) * out + off + q, p * n + q} : new int[] {off + p, p});
          ws.add(1.0);
        }
      }
      axes[k] = full ? Axis.of(n * n, out * out, at, ws) : Axis.of(n, out, at, ws);
    }
    return new PixelMap("place", input, new Layout(input.kind(), outGrid), axes, null);
  }

  /**
   * A linear map of each axis, {@code out[o] = sum_p a_k[o][p] in[p]} along axis {@code k} (an image
   * resize): on {@link Layout.Kind#FULL} blocks {@code [o, o'] = sum a_k[o][p] a_k[o'][q] [p, q]}; on
   * {@link Layout.Kind#DIAG} blocks only where every row of every matrix picks one pixel with weight
   * 1 (then the variance of output pixel {@code o} is that of the pixel it picks).
   */
  public static PixelMap linear(Layout.Kind kind, List<double[][]> matrices) {
    return linear(kind, matrices, new boolean[matrices.size()]);
  }

  /**
   * {@link #linear(Layout.Kind, List)}, then the axes {@code drop} (each mapped to one pixel)
   * removed from the output's grid, as an integer index removes an axis; at least one axis stays.
   */
  public static PixelMap linear(Layout.Kind kind, List<double[][]> matrices, boolean[] drop) {
    Axis[] axes = new Axis[matrices.size()];
    int[] inGrid = new int[axes.length];
    int[] outGrid = new int[axes.length];
    for (int k = 0; k < axes.length; k++) {
      double[][] a = matrices.get(k);
      int out = a.length;
      int in = a[0].length;
      inGrid[k] = in;
      outGrid[k] = out;
      List<int[]> at = new ArrayList<>();
      List<Double> ws = new ArrayList<>();
      for (int o = 0; o < out; o++) {
        for (int p = 0; p < in; p++) {
          if (a[o][p] == 0) {
            continue;
          }
          if (kind == Layout.Kind.DIAG) {
            if (a[o][p] != 1 || Arrays.stream(a[o]).filter(v -> v != 0).count() != 1) {
              throw new IllegalArgumentException("row " + o + " of axis " + k + " mixes pixels: a map of "
                  + "per-pixel blocks must pick one pixel per output");
            }
            at.add(new int[] {o, p});
            ws.add(1.0);
            continue;
          }
          for (int o2 = 0; o2 < out; o2++) {
            for (int q = 0; q < in; q++) {
              if (a[o2][q] != 0) {
                at.add(new int[] {o * out + o2, p * in + q});
                ws.add(a[o][p] * a[o2][q]);
              }
            }
          }
        }
      }
      axes[k] = kind == Layout.Kind.DIAG ? Axis.of(in, out, at, ws) : Axis.of(in * in, out * out, at, ws);
    }
    int[] kept = java.util.stream.IntStream.range(0, outGrid.length).filter(k -> !drop[k]).map(k -> outGrid[k])
        .toArray();
    for (int k = 0; k < drop.length; k++) {
      if (drop[k] && outGrid[k] != 1) {
        throw new IllegalArgumentException("axis " + k + " has " + outGrid[k] + " output pixels, not one to drop");
      }
    }
    return new PixelMap("linear", new Layout(kind, inGrid), new Layout(kind, kept), outGrid, axes, null);
  }

  /** The first window offset of output {@code o} that lands on input pixel {@code p}. */
  private static int firstOffset(Window w, int o, int p) {
    for (int b = 0; b < w.size(); b++) {
      if (w.at(o, b) == p) {
        return b;
      }
    }
    return -1;
  }

  private static Layout layout(Layout.Kind kind, List<Window> windows, boolean in) {
    return new Layout(kind, windows.stream().mapToInt(w -> in ? w.in() : w.out()).toArray());
  }

  /** The layout of the blocks this map takes. */
  public Layout input() {
    return input;
  }

  /** The layout of the blocks it gives. */
  public Layout output() {
    return output;
  }

  /**
   * The output's size on each axis of the map (the grid of {@link #output}, with 1 where the map
   * drops an axis): the sizes the per-axis matrices produce.
   */
  public int[] outputGrid() {
    return outGrid.clone();
  }

  /** Multiply-adds per block: the product of the axes' term counts. */
  public long multiplyAdds() {
    long n = 1;
    for (Axis a : axes) {
      n *= a.weight().length;
    }
    return n;
  }

  /** The number of spatial axes. */
  public int rank() {
    return axes.length;
  }

  /**
   * Axis {@code k}'s matrix, dense, {@code (in, out)} for a product {@code x . m} on the last axis:
   * over pixels ({@code DIAG}) or pixel pairs {@code p * n + q} ({@code FULL}).
   */
  public double[] dense(int k) {
    Axis a = axes[k];
    double[] m = new double[a.in() * a.out()];
    for (int t = 0; t < a.weight().length; t++) {
      m[a.inIndex()[t] * a.out() + a.outIndex()[t]] += a.weight()[t];
    }
    return m;
  }

  /** Rows and columns of {@link #dense}: {@code {in, out}}. */
  public int[] denseShape(int k) {
    return new int[] {axes[k].in(), axes[k].out()};
  }

  /**
   * The map compiled to offsets into whole blocks: the leading axes as lists of terms {@code
   * (destination offset, source offset, weight)} sorted by destination, the last axis as strided
   * runs over its last pixel index (stride 1 in both blocks). Applying it nests the leading
   * axes' terms and ends each combination with the last axis's runs, so every output entry is
   * written while its row of the destination is in cache: one pass over the block instead of one
   * per axis.
   */
  private record Compiled(int[][] dst, int[][] src, double[][] w, int[] runDst, int[] runSrc, int[] runCount,
      int[] runStep, double[] runW, int outSize) {}

  private volatile Compiled compiled;

  private Compiled compiled() {
    Compiled c = compiled;
    if (c == null) {
      c = compile();
      compiled = c;
    }
    return c;
  }

  private Compiled compile() {
    boolean full = input.kind() == Layout.Kind.FULL;
    int d = axes.length;
    int[] in = input.grid();
    int[] out = outGrid.clone();
    int[] inStride = strides(in, full);
    int[] outStride = strides(out, full);
    int[][] dst = new int[d][];
    int[][] src = new int[d][];
    double[][] w = new double[d][];
    for (int k = 0; k < d - 1; k++) {
      Axis ax = axes[k];
      Integer[] order = new Integer[ax.weight().length];
      for (int t = 0; t < order.length; t++) {
        order[t] = t;
      }
      Arrays.sort(order, java.util.Comparator.comparingInt(t -> ax.outIndex()[t]));
      dst[k] = new int[order.length];
      src[k] = new int[order.length];
      w[k] = new double[order.length];
      for (int t = 0; t < order.length; t++) {
        int o = order[t];
        dst[k][t] = elementOffset(ax.outIndex()[o], out[k], outStride, k, d, full);
        src[k][t] = elementOffset(ax.inIndex()[o], in[k], inStride, k, d, full);
        w[k][t] = ax.weight()[o];
      }
    }
    // The last axis: consecutive terms whose output moves one pixel of the last index and whose
    // input moves by a constant step, with one weight, become one run.
    Axis ax = axes[d - 1];
    int nIn = in[d - 1];
    int nOut = out[d - 1];
    List<int[]> runs = new ArrayList<>();
    List<Double> weights = new ArrayList<>();
    int n = ax.weight().length;
    for (int t = 0; t < n; ) {
      int len = 1;
      int step = 0;
      while (t + len < n && ax.weight()[t + len] == ax.weight()[t]
          && ax.outIndex()[t + len] == ax.outIndex()[t] + len
          && sameRow(ax.outIndex()[t], ax.outIndex()[t + len], nOut, full)
          && sameRow(ax.inIndex()[t], ax.inIndex()[t + len], nIn, full)) {
        int st = ax.inIndex()[t + len] - ax.inIndex()[t + len - 1];
        if (len == 1) {
          step = st;
        } else if (st != step) {
          break;
        }
        len++;
      }
      runs.add(new int[] {elementOffset(ax.outIndex()[t], nOut, outStride, d - 1, d, full),
          elementOffset(ax.inIndex()[t], nIn, inStride, d - 1, d, full), len, step});
      weights.add(ax.weight()[t]);
      t += len;
    }
    int[] runDst = new int[runs.size()];
    int[] runSrc = new int[runs.size()];
    int[] runCount = new int[runs.size()];
    int[] runStep = new int[runs.size()];
    double[] runW = new double[runs.size()];
    for (int r = 0; r < runDst.length; r++) {
      runDst[r] = runs.get(r)[0];
      runSrc[r] = runs.get(r)[1];
      runCount[r] = runs.get(r)[2];
      runStep[r] = runs.get(r)[3];
      runW[r] = weights.get(r);
    }
    return new Compiled(dst, src, w, runDst, runSrc, runCount, runStep, runW, output.size());
  }

  /** Row-major strides of a block: {@code [p_1..p_d]}, or {@code [p_1..p_d, q_1..q_d]} when full. */
  private static int[] strides(int[] grid, boolean full) {
    int d = grid.length;
    int[] dims = full ? new int[2 * d] : grid.clone();
    if (full) {
      System.arraycopy(grid, 0, dims, 0, d);
      System.arraycopy(grid, 0, dims, d, d);
    }
    int[] st = new int[dims.length];
    int acc = 1;
    for (int k = dims.length - 1; k >= 0; k--) {
      st[k] = acc;
      acc = Math.multiplyExact(acc, dims[k]);
    }
    return st;
  }

  /** The element offset of axis {@code k}'s index (a pixel, or a pair {@code p * n + q}). */
  private static int elementOffset(int index, int n, int[] stride, int k, int d, boolean full) {
    return full ? (index / n) * stride[k] + (index % n) * stride[d + k] : index * stride[k];
  }

  /** Whether two indices of one axis group share the first pixel (always, for per-pixel blocks). */
  private static boolean sameRow(int a, int b, int n, boolean full) {
    return !full || a / n == b / n;
  }

  /** Entries of the scratch array {@link #apply} needs (0 for none). */
  int scratchSize() {
    return shifts == null ? 0 : shifts.size();
  }

  /**
   * The padded grid of the shifted-copies form, kept between calls: its padding stays zero while
   * the maps that use it have the same grid, so only the block's own entries are written again.
   */
  static final class Scratch<A> {
    private final A pad;
    private Shifts zeroedFor;

    Scratch(A pad) {
      this.pad = pad;
    }
  }

  /**
   * Applies the map to the block at {@code in[io]}, writing the block at {@code out[oo]}; {@code
   * scratch} holds {@link #scratchSize()} entries.
   */
  <A> void apply(ChunkOps<A> ops, A in, int io, A out, int oo, Scratch<A> scratch) {
    if (shifts != null) {
      shifted(ops, in, io, out, oo, scratch);
      return;
    }
    Compiled c = compiled();
    ops.fill(out, oo, c.outSize(), 0.0);
    apply(ops, c, 0, in, io, out, oo, 1.0);
  }

  private <A> void shifted(ChunkOps<A> ops, A in, int io, A out, int oo, Scratch<A> scratch) {
    prepare(ops, in, io, scratch);
    chunk(ops, scratch, out, oo, 0, outputSize());
  }

  /**
   * Whether the map can run chunk by chunk ({@link #prepare}, then {@link #chunk}) inside a run of
   * entry-wise steps: a stride-1 convolution, whose output entries each read the padded grid only.
   */
  boolean chunked() {
    return shifts != null;
  }

  /** The entries of the output block. */
  private int outputSize() {
    return Math.toIntExact(product(shifts.out()));
  }

  /** Copies the block at {@code in[io]} into the padded grid of {@code scratch}, for {@link #chunk}. */
  <A> void prepare(ChunkOps<A> ops, A in, int io, Scratch<A> scratch) {
    Shifts sh = shifts;
    int rank = sh.padded().length;
    Shifts last = scratch.zeroedFor;
    if (last == null || !Arrays.equals(last.padded(), sh.padded()) || !Arrays.equals(last.low(), sh.low())
        || !Arrays.equals(last.in(), sh.in())) {
      ops.fill(scratch.pad, 0, sh.size(), 0.0);
      scratch.zeroedFor = sh;
    }
    int rowLength = sh.in()[rank - 1];
    int rows = Math.toIntExact(product(sh.in()) / rowLength);
    Rows at = new Rows(sh.in(), sh.low(), sh.padded());
    for (int r = 0; r < rows; r++, at.next()) {
      System.arraycopy(in, io + r * rowLength, scratch.pad, at.offset, rowLength);
    }
  }

  /**
   * Output entries {@code [from, from + length)} of the map of the block last {@link #prepare}d
   * into {@code scratch}, into {@code out[oo]}: each output row is the sum of the shifted runs of
   * the grid that start at its corner, whole rows of one plane (the last two axes) in one call.
   */
  <A> void chunk(ChunkOps<A> ops, Scratch<A> scratch, A out, int oo, int from, int length) {
    Shifts sh = shifts;
    int rank = sh.padded().length;
    int outLength = sh.out()[rank - 1];
    int planeRows = rank > 1 ? sh.out()[rank - 2] : 1;
    int gridStride = rank > 1 ? sh.padded()[rank - 1] : 0;
    int[] rowAt = sh.rowOffsets();
    for (int e = from, end = from + length; e < end; ) {
      int r = e / outLength;
      int t = e % outLength;
      int rows = t == 0 ? Math.min((end - e) / outLength, planeRows - r % planeRows) : 0;
      if (rows > 0) {
        ops.stencil(sh.weight(), scratch.pad, rowAt[r], sh.offsets(), out, oo + e - from, outLength, rows,
            gridStride, outLength);
        e += rows * outLength;
      } else {
        int run = Math.min(outLength - t, end - e);
        ops.stencil(sh.weight(), scratch.pad, rowAt[r] + t, sh.offsets(), out, oo + e - from, run);
        e += run;
      }
    }
  }

  /** Walks the rows of a block of {@code dims} (all axes but the last) through a padded grid. */
  private static final class Rows {
    private final int[] dims;
    private final int[] stride;
    private final int[] index;
    int offset;

    Rows(int[] dims, int[] low, int[] padded) {
      int rank = dims.length;
      this.dims = dims;
      this.stride = new int[rank];
      this.index = new int[rank];
      int s = 1;
      for (int j = rank - 1; j >= 0; j--) {
        stride[j] = s;
        s *= padded[j];
        offset += low[j] * stride[j];
      }
    }

    /** To the next row. */
    void next() {
      for (int j = dims.length - 2; j >= 0; j--) {
        offset += stride[j];
        if (++index[j] < dims[j]) {
          return;
        }
        offset -= index[j] * stride[j];
        index[j] = 0;
      }
    }
  }

  private static long product(int[] dims) {
    long p = 1;
    for (int x : dims) {
      p *= x;
    }
    return p;
  }

  private static <A> void apply(ChunkOps<A> ops, Compiled c, int k, A in, int io, A out, int oo, double weight) {
    if (k == c.dst().length - 1) {
      int[] runDst = c.runDst();
      int[] runSrc = c.runSrc();
      int[] runCount = c.runCount();
      int[] runStep = c.runStep();
      double[] runW = c.runW();
      for (int r = 0; r < runDst.length; r++) {
        ops.axpy(weight * runW[r], in, io + runSrc[r], runStep[r], out, oo + runDst[r], runCount[r]);
      }
      return;
    }
    int[] dst = c.dst()[k];
    int[] src = c.src()[k];
    double[] ws = c.w()[k];
    for (int t = 0; t < dst.length; t++) {
      apply(ops, c, k + 1, in, io + src[t], out, oo + dst[t], weight * ws[t]);
    }
  }

  @Override
  public String toString() {
    return name + "[" + input + " -> " + output + "]";
  }
}

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
  /** One axis of a window sliding over a grid, with the output size and padding already decided. */
  public record Window(int in, int size, int stride, int padLow, int out, boolean circular) {
    public Window {
      if (in <= 0 || size <= 0 || stride <= 0 || out <= 0) {
        throw new IllegalArgumentException("a window " + size + " with stride " + stride + " over "
            + in + " pixels giving " + out);
      }
    }

    /** The input pixel under offset {@code a} of output position {@code o}, or -1 in the zero padding. */
    public int at(int o, int a) {
      int p = o * stride + a - padLow;
      if (circular) {
        return Math.floorMod(p, in);
      }
      return p < 0 || p >= in ? -1 : p;
    }
  }

  /** The sparse matrix of one axis: {@code out[outIndex[t]] += weight[t] * in[inIndex[t]]}. */
  record Axis(int in, int out, int[] outIndex, int[] inIndex, double[] weight) {
    /** The non-zero entries of {@code m[out][in]}, row by row. */
    static Axis of(double[][] m, int in) {
      List<int[]> at = new ArrayList<>();
      List<Double> w = new ArrayList<>();
      for (int o = 0; o < m.length; o++) {
        for (int i = 0; i < in; i++) {
          if (m[o][i] != 0) {
            at.add(new int[] {o, i});
            w.add(m[o][i]);
          }
        }
      }
      int[] oi = new int[at.size()];
      int[] ii = new int[at.size()];
      double[] ws = new double[at.size()];
      for (int t = 0; t < ws.length; t++) {
        oi[t] = at.get(t)[0];
        ii[t] = at.get(t)[1];
        ws[t] = w.get(t);
      }
      return new Axis(in, m.length, oi, ii, ws);
    }
  }

  private final Layout input;
  private final Layout output;
  private final Axis[] axes;
  private final String name;

  private PixelMap(String name, Layout input, Layout output, Axis[] axes) {
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
      double[][] m;
      if (kind == Layout.Kind.DIAG) {
        m = new double[w.out()][w.in()];
        for (int o = 0; o < w.out(); o++) {
          for (int a = 0; a < w.size(); a++) {
            int p = w.at(o, a);
            if (p >= 0) {
              m[o][p] += weight;
            }
          }
        }
        axes[k] = Axis.of(m, w.in());
      } else {
        axes[k] = pairs(w, (po, qo, add) -> {
          for (int a = 0; a < w.size(); a++) {
            int p = w.at(po, a);
            int q = w.at(qo, a);
            if (p >= 0 && q >= 0) {
              add.at(p * w.in() + q, weight);
            }
          }
        });
      }
    }
    return new PixelMap("conv", layout(kind, windows, true), layout(kind, windows, false), axes);
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
      axes[k] = pairs(w, (po, qo, add) -> {
        for (int p = 0; p < w.in(); p++) {
          if (a1[po][p] != 0) {
            for (int q = 0; q < w.in(); q++) {
              if (a1[qo][q] != 0) {
                add.at(p * w.in() + q, a1[po][p] * a1[qo][q]);
              }
            }
          }
        }
      });
    }
    Layout.Kind full = Layout.Kind.FULL;
    return new PixelMap("pool", layout(full, windows, true), layout(full, windows, false), axes);
  }

  /** A pixel map from explicit per-axis matrices over pixels or pixel pairs (for other layers). */
  static PixelMap of(String name, Layout input, Layout output, List<double[][]> matrices) {
    Axis[] axes = new Axis[matrices.size()];
    int[] in = input.grid();
    for (int k = 0; k < axes.length; k++) {
      int size = input.kind() == Layout.Kind.FULL ? in[k] * in[k] : in[k];
      axes[k] = Axis.of(matrices.get(k), size);
    }
    return new PixelMap(name, input, output, axes);
  }

  private interface PairRow {
    void fill(int po, int qo, Adder add);
  }

  private interface Adder {
    void at(int inPair, double weight);
  }

  private static Axis pairs(Window w, PairRow row) {
    double[][] m = new double[w.out() * w.out()][];
    for (int po = 0; po < w.out(); po++) {
      for (int qo = 0; qo < w.out(); qo++) {
        double[] r = new double[w.in() * w.in()];
        row.fill(po, qo, (i, x) -> r[i] += x);
        m[po * w.out() + qo] = r;
      }
    }
    return Axis.of(m, w.in() * w.in());
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
   * One axis's pass over a block, with every offset decided: the block is viewed as {@code [outer]
   * [axis p][middle][axis q][inner]} ({@code FULL}) or {@code [outer][axis p][inner]} ({@code
   * DIAG}), and term {@code t} adds {@code w[t] * in[a inA + b inB + src[t] + c]} to {@code
   * out[a outA + b outB + dst[t] + c]}.
   */
  private record Step(int outer, int middle, int inner, int inA, int inB, int outA, int outB, int[] src,
      int[] dst, double[] w, int outSize) {}

  private Step[] steps() {
    Step[] s = steps;
    if (s == null) {
      s = new Step[axes.length];
      boolean full = input.kind() == Layout.Kind.FULL;
      int d = axes.length;
      int[] dims = dims(input);
      for (int k = 0; k < d; k++) {
        int[] nd = dims.clone();
        nd[k] = output.grid()[k];
        if (full) {
          nd[d + k] = output.grid()[k];
        }
        int outer = product(Arrays.copyOfRange(dims, 0, k));
        int middle = full ? product(Arrays.copyOfRange(dims, k + 1, d + k)) : 1;
        int inner = product(Arrays.copyOfRange(dims, full ? d + k + 1 : k + 1, dims.length));
        int nIn = dims[k];
        int nOut = nd[k];
        Axis ax = axes[k];
        int[] src = new int[ax.weight().length];
        int[] dst = new int[src.length];
        for (int t = 0; t < src.length; t++) {
          src[t] = offset(ax.inIndex()[t], nIn, middle, inner, full);
          dst[t] = offset(ax.outIndex()[t], nOut, middle, inner, full);
        }
        int qIn = full ? nIn : 1;
        int qOut = full ? nOut : 1;
        s[k] = new Step(outer, middle, inner, nIn * middle * qIn * inner, qIn * inner,
            nOut * middle * qOut * inner, qOut * inner, src, dst, ax.weight(), product(nd));
        dims = nd;
      }
      steps = s;
    }
    return s;
  }

  private volatile Step[] steps;

  private static int offset(int index, int n, int middle, int inner, boolean full) {
    if (!full) {
      return index * inner;
    }
    return (index / n) * middle * n * inner + (index % n) * inner;
  }

  /** The largest intermediate block while applying the axes one by one. */
  int scratchSize() {
    int max = 0;
    for (Step s : steps()) {
      max = Math.max(max, s.outSize());
    }
    return max;
  }

  private int[] dims(Layout l) {
    int[] g = l.grid();
    if (l.kind() == Layout.Kind.DIAG) {
      return g;
    }
    int[] d = Arrays.copyOf(g, 2 * g.length);
    System.arraycopy(g, 0, d, g.length, g.length);
    return d;
  }

  private static int product(int[] dims) {
    int p = 1;
    for (int d : dims) {
      p = Math.multiplyExact(p, d);
    }
    return p;
  }

  /**
   * Applies the map to the block at {@code in[io]} into {@code out[oo]}, with two scratch arrays
   * of at least {@link #scratchSize()} entries.
   */
  void apply(double[] in, int io, double[] out, int oo, double[] s1, double[] s2) {
    Step[] st = steps();
    double[] from = in;
    int fo = io;
    for (int k = 0; k < st.length; k++) {
      Step s = st[k];
      boolean last = k == st.length - 1;
      double[] to = last ? out : (from == s1 ? s2 : s1);
      int t0 = last ? oo : 0;
      Arrays.fill(to, t0, t0 + s.outSize(), 0.0);
      for (int t = 0; t < s.w().length; t++) {
        double w = s.w()[t];
        for (int a = 0; a < s.outer(); a++) {
          for (int b = 0; b < s.middle(); b++) {
            int i = fo + a * s.inA() + b * s.inB() + s.src()[t];
            int o = t0 + a * s.outA() + b * s.outB() + s.dst()[t];
            for (int c = 0; c < s.inner(); c++) {
              to[o + c] += w * from[i + c];
            }
          }
        }
      }
      from = to;
      fo = t0;
    }
  }

  /** {@link #apply(double[], int, double[], int, double[], double[])} in float32. */
  void apply(float[] in, int io, float[] out, int oo, float[] s1, float[] s2) {
    Step[] st = steps();
    float[] from = in;
    int fo = io;
    for (int k = 0; k < st.length; k++) {
      Step s = st[k];
      boolean last = k == st.length - 1;
      float[] to = last ? out : (from == s1 ? s2 : s1);
      int t0 = last ? oo : 0;
      Arrays.fill(to, t0, t0 + s.outSize(), 0f);
      for (int t = 0; t < s.w().length; t++) {
        float w = (float) s.w()[t];
        for (int a = 0; a < s.outer(); a++) {
          for (int b = 0; b < s.middle(); b++) {
            int i = fo + a * s.inA() + b * s.inB() + s.src()[t];
            int o = t0 + a * s.outA() + b * s.outB() + s.dst()[t];
            for (int c = 0; c < s.inner(); c++) {
              to[o + c] += w * from[i + c];
            }
          }
        }
      }
      from = to;
      fo = t0;
    }
  }

  @Override
  public String toString() {
    return name + "[" + input + " -> " + output + "]";
  }
}

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
      int[] dst, double[] w, int outSize, int[] count, int[] inStep) {}

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
        // Runs: consecutive terms whose output moves one pixel (of the last index) and whose input
        // moves by a constant step, with one weight, become one strided multiply-add.
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
          runs.add(new int[] {offset(ax.inIndex()[t], nIn, middle, inner, full),
              offset(ax.outIndex()[t], nOut, middle, inner, full), len, step});
          weights.add(ax.weight()[t]);
          t += len;
        }
        int[] src = new int[runs.size()];
        int[] dst = new int[runs.size()];
        int[] count = new int[runs.size()];
        int[] inStep = new int[runs.size()];
        double[] w = new double[runs.size()];
        for (int r = 0; r < src.length; r++) {
          src[r] = runs.get(r)[0];
          dst[r] = runs.get(r)[1];
          count[r] = runs.get(r)[2];
          inStep[r] = runs.get(r)[3] * inner;
          w[r] = weights.get(r);
        }
        int qIn = full ? nIn : 1;
        int qOut = full ? nOut : 1;
        s[k] = new Step(outer, middle, inner, nIn * middle * qIn * inner, qIn * inner,
            nOut * middle * qOut * inner, qOut * inner, src, dst, w, product(nd), count, inStep);
        dims = nd;
      }
      steps = s;
    }
    return s;
  }

  private volatile Step[] steps;

  /** Whether two indices of one axis group share the first pixel (always, for per-pixel blocks). */
  private static boolean sameRow(int a, int b, int n, boolean full) {
    return !full || a / n == b / n;
  }

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
      int inner = s.inner();
      for (int a = 0; a < s.outer(); a++) {
        for (int b = 0; b < s.middle(); b++) {
          int ib = fo + a * s.inA() + b * s.inB();
          int ob = t0 + a * s.outA() + b * s.outB();
          for (int t = 0; t < s.w().length; t++) {
            double w = s.w()[t];
            int i = ib + s.src()[t];
            int o = ob + s.dst()[t];
            int count = s.count()[t];
            int step = s.inStep()[t];
            if (step == inner) {
              // A contiguous run: one multiply-add over count * inner entries.
              int len = count * inner;
              for (int c = 0; c < len; c++) {
                to[o + c] += w * from[i + c];
              }
            } else {
              for (int r = 0; r < count; r++, i += step, o += inner) {
                for (int c = 0; c < inner; c++) {
                  to[o + c] += w * from[i + c];
                }
              }
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
      int inner = s.inner();
      for (int a = 0; a < s.outer(); a++) {
        for (int b = 0; b < s.middle(); b++) {
          int ib = fo + a * s.inA() + b * s.inB();
          int ob = t0 + a * s.outA() + b * s.outB();
          for (int t = 0; t < s.w().length; t++) {
            float w = (float) s.w()[t];
            int i = ib + s.src()[t];
            int o = ob + s.dst()[t];
            int count = s.count()[t];
            int step = s.inStep()[t];
            if (step == inner) {
              // A contiguous run: one multiply-add over count * inner entries.
              int len = count * inner;
              for (int c = 0; c < len; c++) {
                to[o + c] += w * from[i + c];
              }
            } else {
              for (int r = 0; r < count; r++, i += step, o += inner) {
                for (int c = 0; c < inner; c++) {
                  to[o + c] += w * from[i + c];
                }
              }
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

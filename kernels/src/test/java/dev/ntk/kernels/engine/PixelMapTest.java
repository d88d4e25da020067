package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The stride-1 convolution run chunk by chunk ({@link PixelMap#prepare}, then {@link
 * PixelMap#chunk} in increasing order) against the filter average summed directly from {@link
 * PixelMap.Window#at}, while each chunk's entries of the input block are overwritten once the
 * chunk is done, as a later step of a {@link BlockRunner} run that took the input's register may:
 * the chunks must read only the padded copy. Output smaller than the input ({@code VALID}), the
 * same size ({@code SAME}), and larger (a transposed convolution's padding of {@code f - 1} on
 * both sides), per-pixel and pixel-pair blocks, several chunks and chunks shorter than a row, on
 * the vector arithmetic (the 3 x 3 filter's own loop among them) and the scalar one.
 */
class PixelMapTest {
  @Test
  void chunkedConvolutionEqualsTheFilterAverageWhileTheInputIsOverwritten() {
    Random r = new Random(11);
    // {image, filter, padLow, out} per axis.
    int[][][] geometries = {
        {{12, 3, 1, 12}, {12, 3, 1, 12}},
        {{17, 3, 1, 17}, {19, 3, 1, 19}},
        {{12, 3, 0, 10}, {11, 2, 0, 10}},
        {{9, 3, 2, 11}, {10, 3, 2, 12}},
        {{13, 5, 4, 17}, {7, 1, 0, 7}},
        {{40, 3, 1, 40}},
        {{6, 2, 1, 7}, {5, 3, 1, 5}, {4, 3, 2, 6}}};
    for (int[][] g : geometries) {
      List<PixelMap.Window> windows = java.util.Arrays.stream(g)
          .map(a -> new PixelMap.Window(a[0], a[1], 1, a[2], a[3], false)).toList();
      for (Layout.Kind kind : new Layout.Kind[] {Layout.Kind.DIAG, Layout.Kind.FULL}) {
        PixelMap map = PixelMap.conv(kind, windows);
        int m = map.input().size();
        double[] in = new double[m];
        for (int i = 0; i < m; i++) {
          in[i] = r.nextGaussian();
        }
        double[] want = direct(kind, windows, in);
        String where = java.util.Arrays.deepToString(g) + " " + kind;
        for (int chunk : new int[] {2048, 777, 64}) {
          check(VectorOps.FLOAT64, map, in, want, chunk, 1e-14, where + " float64 chunks of " + chunk);
          check(ScalarOps.FLOAT64, map, in, want, chunk, 1e-14, where + " scalar float64 chunks of " + chunk);
          check(VectorOps.FLOAT32, map, in, want, chunk, 3e-6, where + " float32 chunks of " + chunk);
        }
      }
    }
  }

  /** The map by chunks of {@code chunk} entries, each chunk's input entries then set to NaN. */
  private static <A> void check(ChunkOps<A> ops, PixelMap map, double[] in, double[] want, int chunk,
      double tolerance, String where) {
    A block = ops.fromDoubles(in);
    A out = ops.allocate(want.length);
    PixelMap.Scratch<A> pad = new PixelMap.Scratch<>(ops.allocate(map.scratchSize()));
    map.prepare(ops, block, 0, pad);
    int m = in.length;
    for (int c0 = 0; c0 < want.length; c0 += chunk) {
      int len = Math.min(chunk, want.length - c0);
      map.chunk(ops, pad, out, c0, c0, len);
      if (c0 < m) {
        ops.fill(block, c0, Math.min(len, m - c0), Double.NaN);
      }
    }
    double scale = 0;
    for (double v : want) {
      scale = Math.max(scale, Math.abs(v));
    }
    double[] got = ops.toDoubles(out, want.length);
    for (int i = 0; i < want.length; i++) {
      assertTrue(Math.abs(got[i] - want[i]) <= tolerance * scale,
          where + ": entry " + i + " is " + got[i] + ", the filter average " + want[i]);
    }
  }

  /**
   * {@code out[p'] = mean over offsets a of in[at(p', a)]} per axis (pixels, or pixel pairs shifted
   * together, {@code [p_1..p_d, q_1..q_d]}), zero outside the image.
   */
  private static double[] direct(Layout.Kind kind, List<PixelMap.Window> w, double[] in) {
    int d = w.size();
    boolean full = kind == Layout.Kind.FULL;
    int rank = full ? 2 * d : d;
    int[] outDims = new int[rank];
    int[] inDims = new int[rank];
    for (int j = 0; j < rank; j++) {
      outDims[j] = w.get(j % d).out();
      inDims[j] = w.get(j % d).in();
    }
    int outSize = 1;
    int offsets = 1;
    for (int j = 0; j < rank; j++) {
      outSize *= outDims[j];
    }
    for (PixelMap.Window x : w) {
      offsets *= x.size();
    }
    double[] out = new double[outSize];
    int[] o = new int[rank];
    for (int e = 0; e < outSize; e++) {
      int rest = e;
      for (int j = rank - 1; j >= 0; j--) {
        o[j] = rest % outDims[j];
        rest /= outDims[j];
      }
      double s = 0;
      for (int t = 0; t < offsets; t++) {
        int at = 0;
        boolean inside = true;
        int tr = t;
        int[] a = new int[d];
        for (int k = d - 1; k >= 0; k--) {
          a[k] = tr % w.get(k).size();
          tr /= w.get(k).size();
        }
        for (int j = 0; j < rank && inside; j++) {
          int p = w.get(j % d).at(o[j], a[j % d]);
          inside = p >= 0;
          at = at * inDims[j] + p;
        }
        s += inside ? in[at] : 0;
      }
      out[e] = s / offsets;
    }
    return out;
  }
}

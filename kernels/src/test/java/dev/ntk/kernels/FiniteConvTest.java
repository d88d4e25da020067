package dev.ntk.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import dev.ntk.kernels.FiniteConv.Padding;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The finite convolution, transposed convolution and pooling against direct loops over explicitly
 * padded (and, for the transpose, explicitly dilated) arrays, against hand-computed 1D cases that
 * pin the conventions (which side gets the odd pad, wrap-around, edge normalization, where the
 * transpose puts its padding), and against the adjoint identity that ties the transposed
 * convolution to the convolution.
 */
class FiniteConvTest {
  private static NDManager manager;

  @BeforeAll
  static void setUp() {
    manager = Tensors.newManager();
  }

  @AfterAll
  static void tearDown() {
    manager.close();
  }

  // ---------------------------------------------------------------- hand-computed cases

  private static NDArray line(double... values) {
    return Tensors.create(manager, values, new Shape(1, values.length, 1), DataType.FLOAT64);
  }

  private static NDArray filter1d(double... taps) {
    return Tensors.create(manager, taps, new Shape(taps.length, 1, 1), DataType.FLOAT64);
  }

  private static double[] conv1d(double[] x, double[] w, int s, Padding p) {
    return FiniteConv.conv(line(x), filter1d(w), new int[] {s}, p).toDoubleArray();
  }

  @Test
  void sameFilterTwoPadsOnlyAfterTheInput() {
    // total pad 1: the smaller half (0) goes first, so z[p] = 10 x[p] + x[p + 1], x[3] = 0.
    assertArrayEquals(new double[] {12, 23, 30}, conv1d(new double[] {1, 2, 3}, new double[] {10, 1}, 1,
        Padding.SAME), 0);
    assertArrayEquals(new int[] {0}, FiniteConv.padLow(new int[] {3}, new int[] {2}, new int[] {1},
        Padding.SAME));
    assertArrayEquals(new int[] {1}, FiniteConv.padHigh(new int[] {3}, new int[] {2}, new int[] {1},
        Padding.SAME));
  }

  @Test
  void sameFilterThreeAndFourPadSymmetricallyThenAfter() {
    assertArrayEquals(new double[] {12, 123, 230},
        conv1d(new double[] {1, 2, 3}, new double[] {100, 10, 1}, 1, Padding.SAME), 0);
    // filter 4: total pad 3, one before and two after.
    assertArrayEquals(new double[] {123, 1234, 2340, 3400},
        conv1d(new double[] {1, 2, 3, 4}, new double[] {1000, 100, 10, 1}, 1, Padding.SAME), 0);
  }

  @Test
  void sameStrideTwoKeepsCeilOfHalfTheInput() {
    // in 4, f 3, s 2: out 2, total pad (2 - 1) 2 + 3 - 4 = 1, all of it after the input.
    assertArrayEquals(new double[] {123, 340},
        conv1d(new double[] {1, 2, 3, 4}, new double[] {100, 10, 1}, 2, Padding.SAME), 0);
    assertArrayEquals(new int[] {3, 2}, FiniteConv.outputShape(new int[] {5, 4}, new int[] {3, 3},
        new int[] {2, 2}, Padding.SAME));
  }

  @Test
  void validSlidesInsideTheInput() {
    assertArrayEquals(new double[] {123, 234},
        conv1d(new double[] {1, 2, 3, 4}, new double[] {100, 10, 1}, 1, Padding.VALID), 0);
    // in 5, f 2, s 2: floor(3 / 2) + 1 = 2 outputs, the last pixel unused.
    assertArrayEquals(new double[] {12, 34},
        conv1d(new double[] {1, 2, 3, 4, 5}, new double[] {10, 1}, 2, Padding.VALID), 0);
  }

  @Test
  void circularWrapsAround() {
    // filter 3: padded [3 | 1 2 3 | 1].
    assertArrayEquals(new double[] {312, 123, 231},
        conv1d(new double[] {1, 2, 3}, new double[] {100, 10, 1}, 1, Padding.CIRCULAR), 0);
    // filter 2: padded [1 2 3 | 1], the wrapped pixel after the input as SAME's zero.
    assertArrayEquals(new double[] {12, 23, 31},
        conv1d(new double[] {1, 2, 3}, new double[] {10, 1}, 1, Padding.CIRCULAR), 0);
  }

  @Test
  void poolingSumsAveragesAndNormalizesEdges() {
    NDArray x = line(3, 6, 9);
    int[] w = {3};
    int[] s = {1};
    assertArrayEquals(new double[] {9, 18, 15},
        FiniteConv.pool(x, w, s, Padding.SAME, false, false).toDoubleArray(), 0);
    assertArrayEquals(new double[] {3, 6, 5},
        FiniteConv.pool(x, w, s, Padding.SAME, true, false).toDoubleArray(), 1e-15);
    assertArrayEquals(new double[] {4.5, 6, 7.5},
        FiniteConv.pool(x, w, s, Padding.SAME, true, true).toDoubleArray(), 1e-15);
    assertArrayEquals(new double[] {6, 6, 6},
        FiniteConv.pool(x, w, s, Padding.CIRCULAR, true, true).toDoubleArray(), 1e-15);
    assertArrayEquals(new double[] {6},
        FiniteConv.pool(x, w, s, Padding.VALID, true, false).toDoubleArray(), 1e-15);
    // window 2, stride 2 on 3 pixels, SAME: out 2, the second window is [9, 0].
    assertArrayEquals(new double[] {4.5, 4.5},
        FiniteConv.pool(x, new int[] {2}, new int[] {2}, Padding.SAME, true, false).toDoubleArray(), 1e-15);
    assertArrayEquals(new double[] {4.5, 9},
        FiniteConv.pool(x, new int[] {2}, new int[] {2}, Padding.SAME, true, true).toDoubleArray(), 1e-15);
  }

  @Test
  void transposeScattersTheFlippedFilter() {
    // x = [1, 2], s = 2, w = [100, 10, 1]: each input scatters x[i] [1, 10, 100] at 2 i.
    NDArray x = line(1, 2);
    NDArray w = filter1d(100, 10, 1);
    int[] s = {2};
    assertArrayEquals(new double[] {1, 10, 102, 20, 200},
        FiniteConv.convTranspose(x, w, s, Padding.VALID).toDoubleArray(), 0);
    // SAME: out = in s = 4; lo = ceil((3 + 2 - 2) / 2) = 2 zeros before the dilated input.
    assertArrayEquals(new double[] {1, 10, 102, 20},
        FiniteConv.convTranspose(x, w, s, Padding.SAME).toDoubleArray(), 0);
    // CIRCULAR: the VALID result folded onto 4 outputs, the fifth added to the first.
    assertArrayEquals(new double[] {201, 10, 102, 20},
        FiniteConv.convTranspose(x, w, s, Padding.CIRCULAR).toDoubleArray(), 0);
    // s = 3 > f - 1 = 1: lo = f - 1 = 1, hi = 2, out 6.
    assertArrayEquals(new double[] {1, 10, 0, 2, 20, 0},
        FiniteConv.convTranspose(x, filter1d(10, 1), new int[] {3}, Padding.SAME).toDoubleArray(), 0);
    assertArrayEquals(new int[] {5}, FiniteConv.transposeOutputShape(new int[] {2}, new int[] {3}, s,
        Padding.VALID));
  }

  // ---------------------------------------------------------------- errors

  @Test
  void validFilterLargerThanTheInputIsRejected() {
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.outputShape(new int[] {4, 2}, new int[] {3, 3}, new int[] {1, 1}, Padding.VALID));
    assertTrue(e.getMessage().contains("window size 3 exceeds the input size 2"), e.getMessage());
    NDArray x = Tensors.create(manager, new double[4 * 2], new Shape(1, 4, 2, 1), DataType.FLOAT64);
    NDArray w = Tensors.create(manager, new double[9], new Shape(3, 3, 1, 1), DataType.FLOAT64);
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.conv(x, w, new int[] {1, 1}, Padding.VALID));
  }

  @Test
  void mismatchedShapesAreRejected() {
    NDArray x = Tensors.create(manager, new double[16], new Shape(1, 4, 2, 2), DataType.FLOAT64);
    NDArray wrongChannels = Tensors.create(manager, new double[27], new Shape(3, 3, 3, 1), DataType.FLOAT64);
    NDArray wrongRank = Tensors.create(manager, new double[6], new Shape(3, 2, 1), DataType.FLOAT64);
    NDArray ok = Tensors.create(manager, new double[18], new Shape(3, 3, 2, 1), DataType.FLOAT64);
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.conv(x, wrongChannels, new int[] {1, 1}, Padding.SAME));
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.conv(x, wrongRank, new int[] {1, 1}, Padding.SAME));
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.conv(x, ok, new int[] {1}, Padding.SAME));
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.conv(x, ok, new int[] {0, 1}, Padding.SAME));
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.pool(x, new int[] {2}, new int[] {1}, Padding.SAME, true, false));
    NDArray vectors = Tensors.create(manager, new double[4], new Shape(2, 2), DataType.FLOAT64);
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.pool(vectors, new int[] {2}, new int[] {1}, Padding.SAME, true, false));
    NDArray x32 = x.toType(DataType.FLOAT32, false);
    assertThrows(IllegalArgumentException.class,
        () -> FiniteConv.conv(x32, ok, new int[] {1, 1}, Padding.SAME));
  }

  // ---------------------------------------------------------------- random cases against loops

  static Stream<Arguments> geometries() {
    List<Arguments> cases = new ArrayList<>();
    for (Padding p : Padding.values()) {
      cases.add(Arguments.of(p, new int[] {7}, new int[] {3}, new int[] {1}));
      cases.add(Arguments.of(p, new int[] {8}, new int[] {4}, new int[] {3}));
      cases.add(Arguments.of(p, new int[] {6}, new int[] {1}, new int[] {2}));
      cases.add(Arguments.of(p, new int[] {5, 6}, new int[] {3, 2}, new int[] {1, 1}));
      cases.add(Arguments.of(p, new int[] {7, 5}, new int[] {2, 3}, new int[] {2, 3}));
      cases.add(Arguments.of(p, new int[] {4, 4}, new int[] {4, 1}, new int[] {1, 2}));
      cases.add(Arguments.of(p, new int[] {4, 5, 3}, new int[] {3, 2, 3}, new int[] {1, 2, 1}));
      cases.add(Arguments.of(p, new int[] {3, 4, 5}, new int[] {2, 2, 2}, new int[] {2, 1, 3}));
    }
    // SAME and CIRCULAR accept filters larger than the input.
    cases.add(Arguments.of(Padding.SAME, new int[] {3, 2}, new int[] {5, 4}, new int[] {1, 2}));
    cases.add(Arguments.of(Padding.CIRCULAR, new int[] {3, 2}, new int[] {5, 4}, new int[] {1, 2}));
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} in {1} filter {2} strides {3}")
  @MethodSource("geometries")
  void convMatchesDirectLoops(Padding padding, int[] in, int[] filter, int[] strides) {
    int n = 2;
    int cIn = 3;
    int cOut = 4;
    Random r = new Random(Arrays.hashCode(in) * 31 + Arrays.hashCode(filter) + padding.ordinal());
    double[] x = gaussian(r, n * product(in) * cIn);
    double[] w = gaussian(r, product(filter) * cIn * cOut);
    double[] expected = Reference.conv(x, n, in, cIn, w, filter, cOut, strides, padding);
    for (DataType dtype : List.of(DataType.FLOAT64, DataType.FLOAT32)) {
      NDArray xa = Tensors.create(manager, x, shape(n, in, cIn), dtype);
      NDArray wa = Tensors.create(manager, w, shape(filter, cIn, cOut), dtype);
      NDArray z = FiniteConv.conv(xa, wa, strides, padding);
      int[] out = FiniteConv.outputShape(in, filter, strides, padding);
      assertEquals(shape(n, out, cOut), z.getShape());
      assertEquals(dtype, z.getDataType());
      assertArrayEquals(expected, Tensors.toDoubles(z), dtype == DataType.FLOAT64 ? 1e-12 : 1e-4);
    }
  }

  @ParameterizedTest(name = "{0} in {1} window {2} strides {3}")
  @MethodSource("geometries")
  void poolMatchesDirectLoops(Padding padding, int[] in, int[] window, int[] strides) {
    int n = 2;
    int c = 3;
    Random r = new Random(Arrays.hashCode(in) * 17 + Arrays.hashCode(window) + padding.ordinal());
    double[] x = gaussian(r, n * product(in) * c);
    NDArray xa = Tensors.create(manager, x, shape(n, in, c), DataType.FLOAT64);
    for (int mode = 0; mode < 3; mode++) {
      boolean average = mode > 0;
      boolean normalize = mode == 2;
      double[] expected = Reference.pool(x, n, in, c, window, strides, padding, average, normalize);
      NDArray z = FiniteConv.pool(xa, window, strides, padding, average, normalize);
      assertEquals(shape(n, FiniteConv.outputShape(in, window, strides, padding), c), z.getShape());
      assertArrayEquals(expected, z.toDoubleArray(), 1e-12, "average " + average + " normalize " + normalize);
    }
  }

  @ParameterizedTest(name = "{0} in {1} filter {2} strides {3}")
  @MethodSource("geometries")
  void convTransposeMatchesDirectLoops(Padding padding, int[] in, int[] filter, int[] strides) {
    int n = 2;
    int cIn = 3;
    int cOut = 2;
    Random r = new Random(Arrays.hashCode(in) * 13 + Arrays.hashCode(filter) + padding.ordinal());
    double[] x = gaussian(r, n * product(in) * cIn);
    double[] w = gaussian(r, product(filter) * cIn * cOut);
    double[] expected = Reference.convTranspose(x, n, in, cIn, w, filter, cOut, strides, padding);
    for (DataType dtype : List.of(DataType.FLOAT64, DataType.FLOAT32)) {
      NDArray z = FiniteConv.convTranspose(Tensors.create(manager, x, shape(n, in, cIn), dtype),
          Tensors.create(manager, w, shape(filter, cIn, cOut), dtype), strides, padding);
      Padding sizing = padding == Padding.CIRCULAR ? Padding.SAME : padding;
      assertEquals(shape(n, FiniteConv.transposeOutputShape(in, filter, strides, sizing), cOut),
          z.getShape());
      assertEquals(dtype, z.getDataType());
      assertArrayEquals(expected, Tensors.toDoubles(z), dtype == DataType.FLOAT64 ? 1e-12 : 1e-4);
    }
  }

  /**
   * With {@code transpose_kernel=False}, {@code conv_transpose(y, W)} is the adjoint of the
   * convolution (same padding, same strides) with the filter {@code W~[a, o, c] = W[f - 1 - a, c,
   * o]}, on inputs of spatial size {@code in * s}: {@code <convT(y, W), x> = <y, conv(x, W~)>}. An
   * identity that involves no reference loops.
   */
  @ParameterizedTest(name = "{0} in {1} filter {2} strides {3}")
  @MethodSource("geometries")
  void convTransposeIsTheAdjointOfConvWithTheFlippedFilter(Padding padding, int[] in, int[] filter,
      int[] strides) {
    int n = 2;
    int cIn = 3;
    int cOut = 2;
    int[] big = new int[in.length];
    for (int d = 0; d < in.length; d++) {
      big[d] = in[d] * strides[d];
    }
    int[] bigOut = padding == Padding.VALID
        ? FiniteConv.transposeOutputShape(in, filter, strides, Padding.VALID) : big;
    Random r = new Random(Arrays.hashCode(in) * 7 + Arrays.hashCode(filter) + padding.ordinal());
    double[] y = gaussian(r, n * product(in) * cIn);
    double[] x = gaussian(r, n * product(bigOut) * cOut);
    double[] w = gaussian(r, product(filter) * cIn * cOut);
    double[] flipped = flipAndSwap(w, filter, cIn, cOut);
    NDArray transposed = FiniteConv.convTranspose(Tensors.create(manager, y, shape(n, in, cIn),
        DataType.FLOAT64), Tensors.create(manager, w, shape(filter, cIn, cOut), DataType.FLOAT64),
        strides, padding);
    NDArray forward = FiniteConv.conv(Tensors.create(manager, x, shape(n, bigOut, cOut),
        DataType.FLOAT64), Tensors.create(manager, flipped, shape(filter, cOut, cIn), DataType.FLOAT64),
        strides, padding);
    assertEquals(shape(n, in, cIn), forward.getShape());
    double left = dot(transposed.toDoubleArray(), x);
    double right = dot(y, forward.toDoubleArray());
    assertEquals(right, left, 1e-10 * (1 + Math.abs(right)));
  }

  // ---------------------------------------------------------------- direct loops

  /** Direct loops over explicitly padded and dilated arrays, written independently of FiniteConv. */
  private static final class Reference {
    /** x (n, in..., c) padded per axis with lo before and hi after; zeros or wrap-around. */
    static double[] pad(double[] x, int n, int[] in, int c, int[] lo, int[] hi, boolean wrap) {
      int[] padded = new int[in.length];
      for (int d = 0; d < in.length; d++) {
        padded[d] = in[d] + lo[d] + hi[d];
      }
      double[] out = new double[n * product(padded) * c];
      for (int b = 0; b < n; b++) {
        for (int[] q : positions(padded)) {
          int[] i = new int[in.length];
          boolean inside = true;
          for (int d = 0; d < in.length; d++) {
            i[d] = q[d] - lo[d];
            if (wrap) {
              i[d] = ((i[d] % in[d]) + in[d]) % in[d];
            } else if (i[d] < 0 || i[d] >= in[d]) {
              inside = false;
            }
          }
          if (inside) {
            for (int ch = 0; ch < c; ch++) {
              out[index(b, q, ch, padded, c)] = x[index(b, i, ch, in, c)];
            }
          }
        }
      }
      return out;
    }

    static int[][] samePads(int[] in, int[] f, int[] s) {
      int[] lo = new int[in.length];
      int[] hi = new int[in.length];
      for (int d = 0; d < in.length; d++) {
        int out = (in[d] + s[d] - 1) / s[d];
        int total = Math.max((out - 1) * s[d] + f[d] - in[d], 0);
        lo[d] = total / 2;
        hi[d] = total - lo[d];
      }
      return new int[][] {lo, hi};
    }

    /** VALID cross-correlation of an already padded array, with strides. */
    static double[] valid(double[] x, int n, int[] in, int cIn, double[] w, int[] f, int cOut, int[] s) {
      int[] out = new int[in.length];
      for (int d = 0; d < in.length; d++) {
        out[d] = (in[d] - f[d]) / s[d] + 1;
      }
      double[] z = new double[n * product(out) * cOut];
      for (int b = 0; b < n; b++) {
        for (int[] p : positions(out)) {
          for (int o = 0; o < cOut; o++) {
            double sum = 0;
            for (int[] a : positions(f)) {
              int[] i = new int[in.length];
              for (int d = 0; d < in.length; d++) {
                i[d] = p[d] * s[d] + a[d];
              }
              for (int c = 0; c < cIn; c++) {
                sum += x[index(b, i, c, in, cIn)] * w[(flat(a, f) * cIn + c) * cOut + o];
              }
            }
            z[index(b, p, o, out, cOut)] = sum;
          }
        }
      }
      return z;
    }

    static double[] conv(double[] x, int n, int[] in, int cIn, double[] w, int[] f, int cOut, int[] s,
        Padding padding) {
      if (padding == Padding.VALID) {
        return valid(x, n, in, cIn, w, f, cOut, s);
      }
      int[][] pads = samePads(in, f, s);
      double[] padded = pad(x, n, in, cIn, pads[0], pads[1], padding == Padding.CIRCULAR);
      return valid(padded, n, grow(in, pads), cIn, w, f, cOut, s);
    }

    static double[] pool(double[] x, int n, int[] in, int c, int[] f, int[] s, Padding padding,
        boolean average, boolean normalize) {
      int[][] pads = padding == Padding.VALID ? new int[][] {new int[in.length], new int[in.length]}
          : samePads(in, f, s);
      int[] padded = grow(in, pads);
      double[] xp = pad(x, n, in, c, pads[0], pads[1], padding == Padding.CIRCULAR);
      double[] ones = new double[n * product(in) * c];
      Arrays.fill(ones, 1);
      double[] mask = pad(ones, n, in, c, pads[0], pads[1], padding == Padding.CIRCULAR);
      // A diagonal filter (one per channel) sums each channel's window separately.
      double[] w = new double[product(f) * c * c];
      for (int a = 0; a < product(f); a++) {
        for (int ch = 0; ch < c; ch++) {
          w[(a * c + ch) * c + ch] = 1;
        }
      }
      double[] sums = valid(xp, n, padded, c, w, f, c, s);
      if (!average) {
        return sums;
      }
      double[] counts = valid(mask, n, padded, c, w, f, c, s);
      for (int i = 0; i < sums.length; i++) {
        sums[i] /= normalize ? counts[i] : product(f);
      }
      return sums;
    }

    static double[] convTranspose(double[] x, int n, int[] in, int cIn, double[] w, int[] f, int cOut,
        int[] s, Padding padding) {
      int dims = in.length;
      // Dilate: x[i] goes to i * s, zeros between.
      int[] dil = new int[dims];
      for (int d = 0; d < dims; d++) {
        dil[d] = (in[d] - 1) * s[d] + 1;
      }
      double[] xd = new double[n * product(dil) * cIn];
      for (int b = 0; b < n; b++) {
        for (int[] i : positions(in)) {
          int[] q = new int[dims];
          for (int d = 0; d < dims; d++) {
            q[d] = i[d] * s[d];
          }
          for (int c = 0; c < cIn; c++) {
            xd[index(b, q, c, dil, cIn)] = x[index(b, i, c, in, cIn)];
          }
        }
      }
      boolean same = padding == Padding.SAME;
      int[] lo = new int[dims];
      int[] hi = new int[dims];
      for (int d = 0; d < dims; d++) {
        int k = f[d];
        int st = s[d];
        int len = same ? k + st - 2 : k + st - 2 + Math.max(k - st, 0);
        lo[d] = same && st <= k - 1 ? (int) Math.ceil((k + st - 2) / 2.0) : k - 1;
        hi[d] = len - lo[d];
      }
      int[] padded = grow(dil, new int[][] {lo, hi});
      double[] xp = pad(xd, n, dil, cIn, lo, hi, false);
      double[] z = valid(xp, n, padded, cIn, w, f, cOut, ones(dims));
      if (padding != Padding.CIRCULAR) {
        return z;
      }
      int[] full = new int[dims];
      int[] target = new int[dims];
      for (int d = 0; d < dims; d++) {
        full[d] = padded[d] - f[d] + 1;
        target[d] = in[d] * s[d];
      }
      double[] folded = new double[n * product(target) * cOut];
      for (int b = 0; b < n; b++) {
        for (int[] i : positions(full)) {
          int[] j = new int[dims];
          for (int d = 0; d < dims; d++) {
            int shift = (full[d] - target[d]) / 2;
            j[d] = Math.floorMod(i[d] - shift, target[d]);
          }
          for (int o = 0; o < cOut; o++) {
            folded[index(b, j, o, target, cOut)] += z[index(b, i, o, full, cOut)];
          }
        }
      }
      return folded;
    }

    private static int[] grow(int[] in, int[][] pads) {
      int[] g = new int[in.length];
      for (int d = 0; d < in.length; d++) {
        g[d] = in[d] + pads[0][d] + pads[1][d];
      }
      return g;
    }

    private static int[] ones(int dims) {
      int[] o = new int[dims];
      Arrays.fill(o, 1);
      return o;
    }
  }

  // ---------------------------------------------------------------- helpers

  private static List<int[]> positions(int[] shape) {
    List<int[]> all = new ArrayList<>();
    int total = product(shape);
    for (int p = 0; p < total; p++) {
      int[] idx = new int[shape.length];
      int rem = p;
      for (int d = shape.length - 1; d >= 0; d--) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
      }
      all.add(idx);
    }
    return all;
  }

  private static int flat(int[] idx, int[] shape) {
    int f = 0;
    for (int d = 0; d < shape.length; d++) {
      f = f * shape[d] + idx[d];
    }
    return f;
  }

  private static int index(int b, int[] idx, int c, int[] spatial, int channels) {
    return (b * product(spatial) + flat(idx, spatial)) * channels + c;
  }

  private static double[] flipAndSwap(double[] w, int[] f, int cIn, int cOut) {
    double[] out = new double[w.length];
    for (int[] a : positions(f)) {
      int[] mirrored = new int[f.length];
      for (int d = 0; d < f.length; d++) {
        mirrored[d] = f[d] - 1 - a[d];
      }
      for (int c = 0; c < cIn; c++) {
        for (int o = 0; o < cOut; o++) {
          out[(flat(a, f) * cOut + o) * cIn + c] = w[(flat(mirrored, f) * cIn + c) * cOut + o];
        }
      }
    }
    return out;
  }

  private static double dot(double[] a, double[] b) {
    assertEquals(a.length, b.length);
    double s = 0;
    for (int i = 0; i < a.length; i++) {
      s += a[i] * b[i];
    }
    return s;
  }

  private static double[] gaussian(Random r, int size) {
    double[] v = new double[size];
    for (int i = 0; i < size; i++) {
      v[i] = r.nextGaussian();
    }
    return v;
  }

  private static int product(int[] v) {
    int p = 1;
    for (int x : v) {
      p *= x;
    }
    return p;
  }

  private static Shape shape(int n, int[] spatial, int c) {
    long[] dims = new long[spatial.length + 2];
    dims[0] = n;
    for (int d = 0; d < spatial.length; d++) {
      dims[d + 1] = spatial[d];
    }
    dims[dims.length - 1] = c;
    return new Shape(dims);
  }

  private static Shape shape(int[] filter, int cIn, int cOut) {
    long[] dims = new long[filter.length + 2];
    for (int d = 0; d < filter.length; d++) {
      dims[d] = filter[d];
    }
    dims[filter.length] = cIn;
    dims[filter.length + 1] = cOut;
    return new Shape(dims);
  }
}

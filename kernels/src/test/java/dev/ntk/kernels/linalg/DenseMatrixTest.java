package dev.ntk.kernels.linalg;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/** {@link DenseMatrix}: entry access by offset, and one matrix read by several threads at once. */
class DenseMatrixTest {
  private static double[] iota(int n) {
    double[] v = new double[n];
    for (int i = 0; i < n; i++) {
      v[i] = i;
    }
    return v;
  }

  /**
   * The byte views that {@code write} and {@code read} go through, far into a matrix over 2 GiB (a
   * 16,400 x 16,400 float64 factor is 2.15 GB): each starts at its own byte and holds what the entries hold.
   */
  @Test
  void byteViewsBeyondTwoGibibytesStartWhereTheyShould() {
    long n = 16_400;
    try (DenseMatrix m = DenseMatrix.zeros(n, n)) {
      long total = n * n * Double.BYTES;
      for (long entry : new long[] {0, 268_000_000L, n * n - 1}) {
        m.set(entry / n, entry % n, entry + 0.5);
        java.nio.ByteBuffer view = m.bytes(entry * Double.BYTES, total);
        assertEquals(Math.min(total - entry * Double.BYTES, 1L << 30), view.remaining());
        assertEquals(entry + 0.5, view.getDouble(view.position()), "entry " + entry);
      }
    }
  }

  @Test
  void putWritesFromAnOffsetAndChecksTheRange() {
    try (DenseMatrix m = DenseMatrix.zeros(3, 4)) {
      m.put(5, new double[] {9, 8, 7, 6}, 1, 2);
      assertArrayEquals(new double[] {0, 0, 0, 0, 0, 8, 7, 0, 0, 0, 0, 0}, m.toArray());
      m.setRows(2, 1, new double[] {1, 2, 3, 4});
      assertArrayEquals(new double[] {1, 2, 3, 4}, m.getRows(2, 1));
      assertEquals(8, m.get(1, 1));
      assertThrows(IllegalArgumentException.class, () -> m.put(11, new double[2], 0, 2));
    }
  }

  /** A kernel computed into the matrix's memory: as float64 through its buffer, as float32 in place, then widened. */
  @Test
  void buffersAreViewsOfTheMatrixAndFloat32IsWidenedInPlace() {
    int rows = 301;
    int cols = 457; // more than two chunks of the widening, and an odd count
    try (DenseMatrix m = DenseMatrix.uninitialized(rows, cols)) {
      java.nio.DoubleBuffer d = m.buffer();
      assertEquals(rows * cols, d.capacity());
      assertEquals(java.nio.ByteOrder.nativeOrder(), d.order());
      d.put(7 * cols + 3, 2.5);
      assertEquals(2.5, m.get(7, 3));
      java.nio.FloatBuffer f = m.float32Buffer();
      assertEquals(rows * cols, f.capacity());
      float[] values = new float[rows * cols];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) Math.sin(i) * 1e3f + 0.1f;
      }
      values[values.length - 1] = Float.POSITIVE_INFINITY;
      values[12345] = Float.NaN;
      f.put(0, values);
      m.widenFloat32();
      double[] widened = m.toArray();
      for (int i = 0; i < values.length; i++) {
        assertEquals((double) values[i], widened[i], "entry " + i);
      }
    }
  }

  /** Narrowing in place rounds each entry to float32 into the first half; widening gives them back. */
  @Test
  void float64IsNarrowedInPlaceAndWidenedBack() {
    int rows = 301;
    int cols = 457; // more than two chunks, and an odd count
    double[] values = new double[rows * cols];
    for (int i = 0; i < values.length; i++) {
      values[i] = Math.sin(i) * 1e3 + 0.1;
    }
    try (DenseMatrix m = DenseMatrix.of(rows, cols, values)) {
      m.narrowFloat32();
      java.nio.FloatBuffer f = m.float32Buffer();
      for (int i = 0; i < values.length; i++) {
        assertEquals((float) values[i], f.get(i), "entry " + i);
      }
      m.widenFloat32();
      double[] widened = m.toArray();
      for (int i = 0; i < values.length; i++) {
        assertEquals((double) (float) values[i], widened[i], "entry " + i);
      }
    }
  }

  /**
   * A Beam worker's threads share one decomposition (the eigenvectors and the projected residual)
   * and read its rows and hand it to BLAS at the same time. Access at an offset once moved the
   * shared pointer's position, so one thread's read could land on another thread's rows, or BLAS
   * could start at another thread's offset.
   */
  @Test
  void threadsReadingOneMatrixEachSeeTheirOwnRows() throws Exception {
    int rows = 64;
    int cols = 48;
    try (DenseMatrix shared = DenseMatrix.of(rows, cols, iota(rows * cols));
        DenseMatrix ones = DenseMatrix.of(cols, 1, new double[cols])) {
      for (int j = 0; j < cols; j++) {
        ones.set(j, 0, 1);
      }
      ExecutorService pool = Executors.newFixedThreadPool(4);
      try {
        List<Future<String>> results = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
          int thread = t;
          results.add(pool.submit(() -> {
            for (int round = 0; round < 20000; round++) {
              int row = (thread * 17 + round) % rows;
              double[] got = shared.getRows(row, 1);
              if (got[0] != row * cols || got[cols - 1] != row * cols + cols - 1) {
                return "thread " + thread + " read row " + row + " as starting at " + got[0];
              }
              if (round % 200 == 0) {
                try (DenseMatrix sums = Lapack.multiply(false, shared, false, ones)) {
                  double first = sums.get(0, 0);
                  double expected = cols * (cols - 1) / 2.0;
                  if (first != expected) {
                    return "thread " + thread + ": BLAS saw row 0 summing to " + first + ", not " + expected;
                  }
                }
              }
            }
            return null;
          }));
        }
        for (Future<String> f : results) {
          assertEquals(null, f.get());
        }
      } finally {
        pool.shutdownNow();
      }
    }
  }
}

package dev.ntk.kernels.linalg;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link SymmetricBlockProduct}: a symmetric matrix's product from its blocks on and above the
 * diagonal, stored as float32 or float64 bytes and taken in panels of rows, equals OpenBLAS' product
 * with the whole matrix in float64 (of the float32 values widened: the arithmetic is float64 either
 * way), for panels of one row, of several rows and of whole blocks.
 */
class SymmetricBlockProductTest {
  @ParameterizedTest(name = "width {0}, blocks of {1}, panel of {2} doubles")
  @CsvSource({
    "4, 10, 25", // panels of 2 rows, the last panel of a block shorter
    "4, 10, 3", // a panel smaller than a row: one row at a time
    "4, 16, 100000", // a whole block in one panel
    "8, 10, 25",
    "8, 7, 1",
  })
  void productOfTheBlocksIsTheWholeMatrixProduct(int width, int block, int panelDoubles) {
    int n = 37;
    int k = 3;
    Random random = new Random(7 + width + block);
    double[] g = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = i; j < n; j++) {
        double v = random.nextGaussian() + (i == j ? n : 0);
        v = width == 4 ? (float) v : v;
        g[i * n + j] = v;
        g[j * n + i] = v;
      }
    }
    double[] xs = new double[n * k];
    for (int i = 0; i < xs.length; i++) {
      xs[i] = random.nextGaussian();
    }
    try (DenseMatrix gm = DenseMatrix.of(n, n, g); DenseMatrix x = DenseMatrix.of(n, k, xs);
        DenseMatrix want = Lapack.multiply(false, gm, false, x); DenseMatrix sum = DenseMatrix.zeros(n, k);
        SymmetricBlockProduct product = new SymmetricBlockProduct(panelDoubles)) {
      for (int r = 0; r < n; r += block) {
        for (int c = r; c < n; c += block) {
          int rows = Math.min(block, n - r);
          int cols = Math.min(block, n - c);
          ByteBuffer bytes = ByteBuffer.allocateDirect(block * block * width).order(ByteOrder.LITTLE_ENDIAN);
          for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
              double v = g[(r + i) * n + c + j];
              if (width == 4) {
                bytes.putFloat((float) v);
              } else {
                bytes.putDouble(v);
              }
            }
          }
          bytes.flip();
          product.add(bytes, width, rows, cols, r, c, x, sum);
        }
      }
      double[] w = want.toArray();
      double[] got = sum.toArray();
      double worst = 0;
      double scale = 0;
      for (int i = 0; i < w.length; i++) {
        worst = Math.max(worst, Math.abs(got[i] - w[i]));
        scale = Math.max(scale, Math.abs(w[i]));
      }
      assertTrue(worst <= 1e-13 * scale, "largest difference " + worst + " of " + scale);
      long[] nanos = product.nanos();
      assertTrue(nanos[1] > 0 && (width == 8 ? nanos[0] >= 0 : nanos[0] > 0), "timed: " + nanos[0] + ", " + nanos[1]);
    }
  }

  /** Widening float32 to float64 with the Vector API and its scalar tail, from an offset, is exact. */
  @ParameterizedTest(name = "{0} values from {1}")
  @CsvSource({"1, 0", "13, 3", "64, 1", "1001, 17"})
  void widenIsExact(int count, int first) {
    Random random = new Random(count);
    ByteBuffer src = ByteBuffer.allocateDirect((first + count) * 4).order(ByteOrder.LITTLE_ENDIAN);
    float[] values = new float[first + count];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(20) - 10));
      src.putFloat(i * 4, values[i]);
    }
    ByteBuffer dst = ByteBuffer.allocateDirect(count * 8).order(ByteOrder.LITTLE_ENDIAN);
    SymmetricBlockProduct.widen(src, first, count, dst);
    for (int i = 0; i < count; i++) {
      assertEquals((double) values[first + i], dst.getDouble(i * 8), 0, "value " + i);
    }
  }

  @ParameterizedTest(name = "width {0}, {1} bytes")
  @CsvSource({"2, 400", "4, 399"})
  void badValuesAreRejected(int width, int capacity) {
    try (DenseMatrix x = DenseMatrix.zeros(10, 1); DenseMatrix sum = DenseMatrix.zeros(10, 1);
        SymmetricBlockProduct product = new SymmetricBlockProduct(16)) {
      ByteBuffer bytes = ByteBuffer.allocateDirect(capacity);
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
          () -> product.add(bytes, width, 10, 10, 0, 0, x, sum));
      assertTrue(e.getMessage().contains(width == 2 ? "float32 or float64" : "needs 400 bytes"), e.getMessage());
    }
  }
}

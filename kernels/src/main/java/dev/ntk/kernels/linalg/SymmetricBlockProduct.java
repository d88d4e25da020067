package dev.ntk.kernels.linalg;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.bytedeco.javacpp.DoublePointer;

/**
 * {@code G x} for a symmetric {@code G} held as row-major blocks on and above its diagonal, given one
 * block at a time as stored (float32 or float64 little-endian bytes, e.g. a tile file's values):
 * each block adds its own product and, off the diagonal, its transpose's. A block is taken in panels
 * of rows that are widened to float64 once into a buffer that stays in cache and multiplied there
 * twice ({@link Lapack#addBlockProduct}, OpenBLAS' {@code dgemm}), so a block crosses memory once
 * per product, not once to widen and twice to multiply. The arithmetic is float64 whatever the
 * values are stored in: a float32 block's product is the float64 product of its widened values.
 *
 * <pre>{@code
 * try (SymmetricBlockProduct p = new SymmetricBlockProduct(SymmetricBlockProduct.PANEL_DOUBLES);
 *     DenseMatrix sum = DenseMatrix.zeros(n, k)) {
 *   for (each block on or above the diagonal) p.add(bytes, 4, rows, cols, rowOffset, colOffset, x, sum);
 * }
 * }</pre>
 */
public final class SymmetricBlockProduct implements AutoCloseable {
  /**
   * The default panel, 2^17 doubles (1 MiB): 64 rows of a block of 2,048 columns, so that the
   * transposed product's {@code cols x k} sum, read and written once a panel, is small against it.
   */
  public static final int PANEL_DOUBLES = 1 << 17;

  private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Float> F =
      VectorSpecies.of(float.class, VectorShape.forBitSize(D.vectorBitSize() / 2));

  private final int panelDoubles;
  private DoublePointer panel;
  private ByteBuffer panelBytes;
  private long widenNanos;
  private long multiplyNanos;

  /** @param panelDoubles the panel's size: a panel holds {@code max(1, panelDoubles / cols)} rows */
  public SymmetricBlockProduct(int panelDoubles) {
    if (panelDoubles < 1) {
      throw new IllegalArgumentException("panel of " + panelDoubles + " doubles");
    }
    this.panelDoubles = panelDoubles;
  }

  /**
   * {@code sum[rowOffset:, :] += B x[colOffset:, :]} and, for a block off the diagonal ({@code
   * rowOffset != colOffset}), {@code sum[colOffset:, :] += B^T x[rowOffset:, :]}, for the {@code rows
   * x cols} block {@code B} whose values are {@code values} from its position 0 on, row-major.
   *
   * @param width bytes per value: 4 (float32) or 8 (float64)
   */
  public void add(ByteBuffer values, int width, int rows, int cols, long rowOffset, long colOffset, DenseMatrix x,
      DenseMatrix sum) {
    if (width != Float.BYTES && width != Double.BYTES) {
      throw new IllegalArgumentException("values of " + width + " bytes: float32 or float64 only");
    }
    if ((long) rows * cols * width > values.capacity()) {
      throw new IllegalArgumentException("a " + rows + "x" + cols + " block of " + width + "-byte values needs "
          + (long) rows * cols * width + " bytes, got " + values.capacity());
    }
    if (rows == 0 || cols == 0) {
      return;
    }
    ByteBuffer le = values.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    le.position(0);
    boolean mirror = rowOffset != colOffset;
    int step = Math.max(1, panelDoubles / cols);
    if (width == Float.BYTES && (panel == null || panel.capacity() < (long) step * cols)) {
      close();
      panel = new DoublePointer((long) step * cols);
      panelBytes = panel.asByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }
    if (width == Double.BYTES && !le.isDirect()) {
      throw new IllegalArgumentException("float64 values must be in a direct buffer");
    }
    // float64 values are multiplied where they lie (the pointer wraps the buffer: nothing to free)
    DoublePointer stored = width == Double.BYTES ? new DoublePointer(le.asDoubleBuffer()) : null;
    for (int r = 0; r < rows; r += step) {
      int p = Math.min(step, rows - r);
      long start = System.nanoTime();
      DoublePointer a;
      if (stored != null) {
        a = new DoublePointer(stored).position((long) r * cols);
      } else {
        widen(le, (long) r * cols, p * cols, panelBytes);
        a = panel;
      }
      long widened = System.nanoTime();
      widenNanos += widened - start;
      multiply(a, p, cols, rowOffset + r, colOffset, mirror, x, sum);
      multiplyNanos += System.nanoTime() - widened;
    }
  }

  private static void multiply(DoublePointer a, int rows, int cols, long row, long col, boolean mirror, DenseMatrix x,
      DenseMatrix sum) {
    Lapack.addBlockProduct(false, a, rows, cols, x, col, sum, row);
    if (mirror) {
      Lapack.addBlockProduct(true, a, rows, cols, x, row, sum, col);
    }
  }

  /** {@code count} float32 values of {@code src} from value {@code first} on, as float64 into {@code dst} from 0. */
  static void widen(ByteBuffer src, long first, int count, ByteBuffer dst) {
    int from = Math.toIntExact(first * Float.BYTES);
    int lanes = D.length();
    int i = 0;
    if (F.length() == lanes) {
      for (int bound = D.loopBound(count); i < bound; i += lanes) {
        ((DoubleVector) FloatVector.fromByteBuffer(F, src, from + i * Float.BYTES, ByteOrder.LITTLE_ENDIAN)
            .convertShape(VectorOperators.F2D, D, 0)).intoByteBuffer(dst, i * Double.BYTES, ByteOrder.LITTLE_ENDIAN);
      }
    }
    FloatBuffer floats = src.asFloatBuffer();
    DoubleBuffer doubles = dst.asDoubleBuffer();
    for (; i < count; i++) {
      doubles.put(i, floats.get((int) first + i));
    }
  }

  /** Nanoseconds so far widening float32 values, and multiplying. */
  public long[] nanos() {
    return new long[] {widenNanos, multiplyNanos};
  }

  @Override
  public void close() {
    if (panel != null) {
      panel.close();
      panel = null;
    }
  }
}

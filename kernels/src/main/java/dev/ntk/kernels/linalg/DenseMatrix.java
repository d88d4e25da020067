package dev.ntk.kernels.linalg;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;

/**
 * A dense row-major float64 matrix in native memory, for {@link Lapack}. It is not on the Java
 * heap and is never Java-serialized, so its size is bounded by memory, not by {@code
 * Integer.MAX_VALUE} elements. Close it to free the memory.
 *
 * <p>The position of {@link #pointer()} is always 0: reads and writes at an offset go through a
 * pointer of their own ({@link #at}), so several threads may read one matrix at once (a Beam
 * worker's threads share the decomposition they read from the factor files).
 */
public final class DenseMatrix implements AutoCloseable {
  /** Entries converted at a time between float64 and float32 in place. */
  private static final int CHUNK = 1 << 16;

  private final long rows;
  private final long cols;
  private DoublePointer data;

  static {
    OpenBlas.configure();
  }

  private DenseMatrix(long rows, long cols) {
    if (rows < 0 || cols < 0 || rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("bad matrix shape " + rows + "x" + cols);
    }
    this.rows = rows;
    this.cols = cols;
    this.data = new DoublePointer(Math.max(1, Math.multiplyExact(rows, cols)));
  }

  /** A zero matrix. */
  public static DenseMatrix zeros(long rows, long cols) {
    DenseMatrix m = new DenseMatrix(rows, cols);
    m.data.fill(0);
    return m;
  }

  /**
   * A matrix whose entries are not initialised (native memory as the allocator returns it, with
   * transparent huge pages asked for when it is large, {@link Libc#adviseHugePages}): for a
   * kernel that is computed straight into it ({@link #buffer}), which then touches each page
   * once.
   */
  public static DenseMatrix uninitialized(long rows, long cols) {
    DenseMatrix m = new DenseMatrix(rows, cols);
    Libc.adviseHugePages(m.data.address(), rows * cols * Double.BYTES);
    return m;
  }

  /** A matrix with the row-major {@code values}. */
  public static DenseMatrix of(long rows, long cols, double[] values) {
    if (values.length != rows * cols) {
      throw new IllegalArgumentException("expected " + rows + "x" + cols + " values, got " + values.length);
    }
    DenseMatrix m = new DenseMatrix(rows, cols);
    m.data.put(values);
    return m;
  }

  public long rows() {
    return rows;
  }

  public long cols() {
    return cols;
  }

  /** The native memory, for LAPACK and BLAS calls. */
  public DoublePointer pointer() {
    if (data == null) {
      throw new IllegalStateException("the matrix is closed");
    }
    return data;
  }

  public double get(long i, long j) {
    return pointer().get(i * cols + j);
  }

  public void set(long i, long j, double value) {
    pointer().put(i * cols + j, value);
  }

  /** Copies {@code count} rows from the row-major {@code values} into rows from {@code row}. */
  public void setRows(long row, int count, double[] values) {
    if (values.length != count * cols || row + count > rows) {
      throw new IllegalArgumentException("rows " + row + "+" + count + " do not fit " + rows + "x" + cols);
    }
    at(row * cols).put(values, 0, values.length);
  }

  /** Copies {@code length} values from {@code values[offset]} to the row-major entries from {@code index}. */
  public void put(long index, double[] values, int offset, int length) {
    if (index < 0 || index + length > rows * cols) {
      throw new IllegalArgumentException("entries " + index + "+" + length + " do not fit " + rows + "x" + cols);
    }
    at(index).put(values, offset, length);
  }

  /** Rows {@code [row, row + count)} as a row-major array. */
  public double[] getRows(long row, int count) {
    double[] out = new double[Math.multiplyExact(count, Math.toIntExact(cols))];
    at(row * cols).get(out);
    return out;
  }

  /**
   * The row-major index of the first entry that is NaN or infinite, or -1: read in chunks, so that
   * it serves matrices of any size (a view of the whole, {@link #buffer}, holds under 2 GiB).
   */
  public long firstNonFinite() {
    long count = rows * cols;
    double[] chunk = new double[(int) Math.min(count, 1 << 20)];
    for (long from = 0; from < count; from += chunk.length) {
      int k = (int) Math.min(chunk.length, count - from);
      at(from).get(chunk, 0, k);
      for (int i = 0; i < k; i++) {
        if (!Double.isFinite(chunk[i])) {
          return from + i;
        }
      }
    }
    return -1;
  }

  /** The whole matrix as a row-major array (for matrices under 2^31 elements). */
  public double[] toArray() {
    return getRows(0, Math.toIntExact(rows));
  }

  /**
   * The entries, row-major, as a direct {@code DoubleBuffer} in native byte order: a view of this
   * matrix's memory (no copy), valid until {@link #close}, for matrices under 2 GiB (2^28 entries:
   * a direct buffer holds fewer than 2^31 bytes). The {@code cpu} backend computes a kernel into it ({@code Plan.runInto}).
   */
  public DoubleBuffer buffer() {
    return new DoublePointer(pointer()).position(0).limit(Math.toIntExact(rows * cols)).asBuffer();
  }

  /**
   * The first {@code rows x cols} float32 slots of this matrix's memory (its first half), as a
   * direct {@code FloatBuffer} view: a float32 kernel computed there becomes this matrix's float64
   * entries by {@link #widenFloat32}, with no second buffer.
   */
  public FloatBuffer float32Buffer() {
    int count = Math.toIntExact(rows * cols);
    FloatPointer f = new FloatPointer(pointer());
    f.capacity(Math.max(1, 2L * count)).position(0).limit(count);
    return f.asBuffer();
  }

  /**
   * Turns the float32 values that {@link #float32Buffer} holds into this matrix's float64 entries,
   * in place: from the last chunk to the first, so that each float64 written covers only float32
   * values already read (value {@code i} moves from byte {@code 4i} to byte {@code 8i}). Through
   * pointers, not buffers: any size.
   */
  public void widenFloat32() {
    NativeViews.widen(float32Pointer(), pointer(), rows * cols);
  }

  /**
   * Rounds this matrix's float64 entries to float32 into the slots of {@link #float32Buffer}, in
   * place (the reverse of {@link #widenFloat32}): from the first chunk to the last, so that each
   * float32 written covers only float64 values already read (value {@code i} moves from byte
   * {@code 8i} to byte {@code 4i}). The second half of the memory is left as it was. Any size.
   */
  public void narrowFloat32() {
    long count = rows * cols;
    DoublePointer from = new DoublePointer(pointer());
    FloatPointer to = float32Pointer();
    int chunk = (int) Math.min(CHUNK, count);
    double[] d = new double[chunk];
    float[] f = new float[chunk];
    for (long start = 0; start < count; start += chunk) {
      int k = (int) Math.min(chunk, count - start);
      from.position(start).get(d, 0, k);
      for (int i = 0; i < k; i++) {
        f[i] = (float) d[i];
      }
      to.position(start).put(f, 0, k);
    }
  }

  /** The float32 slots of {@link #float32Buffer} as a native pointer (never closed). */
  FloatPointer float32Pointer() {
    return new FloatPointer(pointer()).position(0);
  }

  /** A pointer to the row-major entry {@code index}, sharing this matrix's memory (never closed). */
  private DoublePointer at(long index) {
    return new DoublePointer(pointer()).position(index);
  }

  /** A copy in new native memory. */
  public DenseMatrix copy() {
    DenseMatrix m = new DenseMatrix(rows, cols);
    org.bytedeco.javacpp.Pointer.memcpy(m.data, pointer(), rows * cols * Double.BYTES);
    return m;
  }

  /** The transpose, as a new matrix (moved in blocks of columns: few native calls). */
  public DenseMatrix transpose() {
    DenseMatrix t = new DenseMatrix(cols, rows);
    int r = Math.toIntExact(rows);
    int width = (int) Math.max(1, Math.min(cols, (1 << 22) / Math.max(1, rows)));
    double[] row = new double[width];
    double[] block = new double[Math.multiplyExact(width, r)];
    for (long j0 = 0; j0 < cols; j0 += width) {
      int w = (int) Math.min(width, cols - j0);
      for (int i = 0; i < r; i++) {
        at(i * cols + j0).get(row, 0, w);
        for (int j = 0; j < w; j++) {
          block[j * r + i] = row[j];
        }
      }
      t.at(j0 * rows).put(block, 0, w * r);
    }
    return t;
  }

  /**
   * Copies the lower triangle of a square matrix onto its upper one: the symmetric matrix that
   * {@link Lapack#cholesky} reads (it reads the row-major lower triangle), for a kernel that is not
   * exactly symmetric (a rule not symmetric in its two inputs) multiplied as that matrix.
   */
  public void mirrorLower() {
    if (rows != cols) {
      throw new IllegalArgumentException("mirrorLower of a " + rows + "x" + cols + " matrix");
    }
    int block = 64;
    for (long i0 = 0; i0 < rows; i0 += block) {
      for (long j0 = 0; j0 <= i0; j0 += block) {
        for (long i = i0; i < Math.min(rows, i0 + block); i++) {
          for (long j = j0; j < Math.min(i, j0 + block); j++) {
            set(j, i, get(i, j));
          }
        }
      }
    }
  }

  /** Sets the entries above the diagonal of a square matrix to zero. */
  public void zeroUpper() {
    BytePointer bytes = new BytePointer(pointer());
    bytes.capacity(rows * cols * Double.BYTES);
    for (long i = 0; i + 1 < rows; i++) {
      bytes.position((i * cols + i + 1) * Double.BYTES);
      org.bytedeco.javacpp.Pointer.memset(bytes, 0, (cols - i - 1) * Double.BYTES);
    }
  }

  /** The diagonal of a square matrix. */
  public double[] diagonal() {
    double[] d = new double[Math.toIntExact(Math.min(rows, cols))];
    for (int i = 0; i < d.length; i++) {
      d[i] = get(i, i);
    }
    return d;
  }

  /** Writes the values (little-endian float64, row-major) to {@code file}, replacing it. */
  public void write(Path file) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.TRUNCATE_EXISTING)) {
      long bytes = rows * cols * Double.BYTES;
      for (long at = 0; at < bytes; ) {
        ByteBuffer chunk = bytes(at, bytes);
        while (chunk.hasRemaining()) {
          at += ch.write(chunk);
        }
      }
    }
  }

  /** A {@code rows x cols} matrix from the values {@link #write} wrote to {@code file}. */
  public static DenseMatrix read(Path file, long rows, long cols) throws IOException {
    DenseMatrix m = new DenseMatrix(rows, cols);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      long bytes = rows * cols * Double.BYTES;
      if (ch.size() != bytes) {
        m.close();
        throw new IOException(file + ": expected " + bytes + " bytes for a " + rows + "x" + cols
            + " float64 matrix, found " + ch.size());
      }
      for (long at = 0; at < bytes; ) {
        ByteBuffer chunk = m.bytes(at, bytes);
        while (chunk.hasRemaining()) {
          int n = ch.read(chunk, at);
          if (n < 0) {
            throw new IOException(file + ": unexpected end of file");
          }
          at += n;
        }
      }
    }
    return m;
  }

  /** Bytes {@code [from, min(total, from + 1 GiB))} of the matrix, as a buffer of their own. */
  ByteBuffer bytes(long from, long total) {
    return NativeViews.bytes(pointer(), from, Math.min(total - from, 1L << 30));
  }

  @Override
  public void close() {
    if (data != null) {
      data.close();
      data = null;
    }
  }
}

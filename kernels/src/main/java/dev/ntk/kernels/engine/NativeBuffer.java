package dev.ntk.kernels.engine;

import dev.ntk.kernels.linalg.Libc;
import dev.ntk.kernels.linalg.NativeViews;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.util.Objects;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * float32 or float64 values in native memory, freed by {@link #close}: a gram matrix that OpenBLAS
 * writes, a whole kernel that the {@code cpu} backend writes and a file is written from, or a panel
 * of the out-of-core Cholesky factor. Large buffers ask Linux for transparent huge pages ({@link
 * Libc#adviseHugePages}), and unlike a Java array a new buffer is not zeroed first: a new 256 MiB
 * {@code float[]} took 0.25 s to allocate on a 2-core AMD EPYC virtual machine, in page faults and
 * zeroing.
 *
 * <p>Indices are {@code long}: a buffer may hold more than 2 GiB (a 60,000 x 12,000 float32 panel is
 * 2.9 GB). Java buffers may not, so the whole-buffer view {@link #buffer()} is there only up to 2 GiB;
 * views of a range ({@link #buffer(long, long)}, {@link #bytes}) reach anywhere, through {@link
 * NativeViews#bytes}.
 */
public final class NativeBuffer implements AutoCloseable {
  /** A {@code FloatPointer} or {@code DoublePointer} at position 0. */
  private final Pointer pointer;
  private final long count;
  /** The whole buffer as a Java buffer, or null past 2 GiB. */
  private final Buffer buffer;

  private NativeBuffer(Pointer pointer, long count, Buffer buffer) {
    this.pointer = pointer;
    this.count = count;
    this.buffer = buffer;
  }

  /** {@code count} uninitialised values, float64 if {@code f64}, else float32. */
  public static NativeBuffer allocate(long count, boolean f64) {
    int valueBytes = f64 ? Double.BYTES : Float.BYTES;
    Pointer p = f64 ? new DoublePointer(count) : new FloatPointer(count);
    Libc.adviseHugePages(p.address(), count * valueBytes);
    Buffer whole = count * valueBytes > Integer.MAX_VALUE ? null
        : f64 ? ((DoublePointer) p).asBuffer() : ((FloatPointer) p).asBuffer();
    return new NativeBuffer(p, count, whole);
  }

  /** The number of values. */
  public long count() {
    return count;
  }

  /** The bytes of one value: 8 for float64, 4 for float32. */
  public int valueBytes() {
    return pointer instanceof DoublePointer ? Double.BYTES : Float.BYTES;
  }

  /**
   * A {@code FloatBuffer} or {@code DoubleBuffer} over all the values, in native byte order.
   *
   * @throws IllegalStateException when the values take more than 2 GiB (view ranges of them instead)
   */
  public Buffer buffer() {
    if (buffer == null) {
      throw new IllegalStateException(count + " values of " + valueBytes() + " bytes are more than a Java buffer "
          + "holds: view ranges of them");
    }
    return buffer;
  }

  /**
   * Values {@code [from, from + count)} as a {@code FloatBuffer} or {@code DoubleBuffer} of their own
   * (index 0 is value {@code from}; under 2 GiB), a view (no copy) that stays valid until {@link #close}.
   */
  public Buffer buffer(long from, long count) {
    ByteBuffer b = bytes(from, count);
    return pointer instanceof FloatPointer ? b.asFloatBuffer() : b.asDoubleBuffer();
  }

  /**
   * The bytes of values {@code [from, from + count)} in native byte order (under 2 GiB), as a view (no
   * copy) that stays valid until {@link #close}: what a file is written from or read into.
   */
  public ByteBuffer bytes(long from, long count) {
    if (from < 0 || count < 0 || from + count > this.count) {
      throw new IndexOutOfBoundsException("values [" + from + ", " + (from + count) + ") of " + this.count);
    }
    int size = valueBytes();
    return NativeViews.bytes(pointer, from * size, count * size);
  }

  /**
   * A {@code FloatPointer} or {@code DoublePointer} at value {@code index}, for BLAS and LAPACK: a
   * pointer of its own, so that callers on several threads do not move each other's position.
   */
  public Pointer pointer(long index) {
    return pointer instanceof FloatPointer f ? new FloatPointer(f).position(index)
        : new DoublePointer((DoublePointer) pointer).position(index);
  }

  public double get(long index) {
    Objects.checkIndex(index, count);
    if (buffer != null) {
      return buffer instanceof java.nio.DoubleBuffer d ? d.get((int) index) : ((java.nio.FloatBuffer) buffer)
          .get((int) index);
    }
    return pointer instanceof FloatPointer f ? f.get(index) : ((DoublePointer) pointer).get(index);
  }

  public void set(long index, double value) {
    Objects.checkIndex(index, count);
    if (pointer instanceof FloatPointer f) {
      f.put(index, (float) value);
    } else {
      ((DoublePointer) pointer).put(index, value);
    }
  }

  /** Widens this float32 buffer's first {@code count} values into the float64 buffer {@code to}. */
  public void widenInto(NativeBuffer to, long count) {
    if (!(pointer instanceof FloatPointer) || !(to.pointer instanceof DoublePointer)) {
      throw new IllegalArgumentException("widens float32 values into float64 ones");
    }
    if (count < 0 || count > this.count || count > to.count) {
      throw new IndexOutOfBoundsException(count + " values of " + this.count + " into " + to.count);
    }
    NativeViews.widen((FloatPointer) pointer, (DoublePointer) to.pointer, count);
  }

  @Override
  public void close() {
    pointer.close();
  }
}

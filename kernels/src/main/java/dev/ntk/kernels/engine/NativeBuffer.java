package dev.ntk.kernels.engine;

import dev.ntk.kernels.linalg.Libc;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Values in native memory, freed by {@link #close}: a gram matrix that OpenBLAS writes, or a whole
 * kernel that the {@code cpu} backend writes and a file is written from. Large buffers ask Linux
 * for transparent huge pages ({@link Libc#adviseHugePages}), and unlike a Java array a new buffer is
 * not zeroed first: a new 256 MiB {@code float[]} took 0.25 s to allocate on a 2-core AMD EPYC
 * virtual machine, in page faults and zeroing.
 */
public final class NativeBuffer implements AutoCloseable {
  private final Pointer pointer;
  private final Buffer buffer;

  private NativeBuffer(Pointer pointer, Buffer buffer) {
    this.pointer = pointer;
    this.buffer = buffer;
  }

  /** {@code count} uninitialised values, float64 if {@code f64}, else float32. */
  public static NativeBuffer allocate(long count, boolean f64) {
    Pointer p = f64 ? new DoublePointer(count) : new FloatPointer(count);
    Libc.adviseHugePages(p.address(), count * (f64 ? 8 : 4));
    return new NativeBuffer(p, f64 ? ((DoublePointer) p).asBuffer() : ((FloatPointer) p).asBuffer());
  }

  /** A {@code FloatBuffer} or {@code DoubleBuffer} over the values, in native byte order. */
  public Buffer buffer() {
    return buffer;
  }

  /**
   * The bytes of values {@code [from, from + count)} in native byte order, as a view (no copy)
   * that stays valid until {@link #close}: what a file is written from.
   */
  public java.nio.ByteBuffer bytes(long from, int count) {
    if (from < 0 || count < 0 || from + count > buffer.capacity()) {
      throw new IndexOutOfBoundsException("values [" + from + ", " + (from + count) + ") of " + buffer.capacity());
    }
    long size = buffer instanceof DoubleBuffer ? Double.BYTES : Float.BYTES;
    return dev.ntk.kernels.linalg.NativeViews.bytes(pointer, from * size, count * size);
  }

  public double get(int index) {
    return buffer instanceof DoubleBuffer d ? d.get(index) : ((FloatBuffer) buffer).get(index);
  }

  @Override
  public void close() {
    pointer.close();
  }
}

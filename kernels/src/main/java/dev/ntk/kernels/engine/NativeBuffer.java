package dev.ntk.kernels.engine;

import dev.ntk.kernels.linalg.Libc;
import java.nio.Buffer;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.util.List;
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
  /** Bytes backed per call of {@link #populateInBackground}'s thread, which stops between calls once closed. */
  private static final long POPULATE_STEP = 4L << 20;

  private final Pointer pointer;
  private final Buffer buffer;
  private volatile boolean closed;
  private Thread populating;

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
    if (count == 0) {
      return java.nio.ByteBuffer.allocateDirect(0).order(java.nio.ByteOrder.nativeOrder()); // JavaCPP reads limit 0 as one value
    }
    // A pointer at the first value (JavaCPP's buffers start at a pointer's address, whatever its
    // position), so that a view far into a buffer larger than 2 GiB is still a ByteBuffer.
    Pointer first = pointer.getPointer(from);
    return first.limit(count).asByteBuffer().slice().order(java.nio.ByteOrder.nativeOrder());
  }

  public double get(int index) {
    return buffer instanceof DoubleBuffer d ? d.get(index) : ((FloatBuffer) buffer).get(index);
  }

  /**
   * Backs the pages of {@code buffers} with memory on one daemon thread, buffer after buffer, while
   * the caller goes on ({@link Libc#populate}; where the system cannot, it
   * does nothing). On the 2-core AMD EPYC virtual machine of {@code bench/RESULTS.md} the first write
   * of new memory took 0.25 to 0.8 s per 256 MiB, the hypervisor backing each page as it was first
   * touched: done while the inputs are read, that time leaves the computation. Values are not
   * changed, so the buffers may be written meanwhile; {@link #close} waits for the thread.
   */
  public static void populateInBackground(List<NativeBuffer> buffers) {
    if (buffers.isEmpty()) {
      return;
    }
    Thread t = new Thread(() -> {
      for (NativeBuffer b : buffers) {
        long bytes = b.buffer.capacity() * (b.buffer instanceof DoubleBuffer ? 8L : 4L);
        for (long off = 0; off < bytes && !b.closed; off += POPULATE_STEP) {
          if (!Libc.populate(b.pointer.address() + off, Math.min(POPULATE_STEP, bytes - off))) {
            return;
          }
        }
      }
    }, "ntk-populate");
    t.setDaemon(true);
    for (NativeBuffer b : buffers) {
      synchronized (b) {
        b.populating = t;
      }
    }
    t.start();
  }

  @Override
  public void close() {
    closed = true;
    Thread t;
    synchronized (this) {
      t = populating;
    }
    if (t != null) {
      boolean interrupted = false;
      while (t.isAlive()) {
        try {
          t.join();
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
    pointer.close();
  }
}

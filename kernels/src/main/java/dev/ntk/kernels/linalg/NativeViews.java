package dev.ntk.kernels.linalg;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Pointer;

/**
 * Native memory at any offset, however large the memory: byte views into it, and float32 values
 * widened to float64.
 */
public final class NativeViews {
  /** Values widened at a time. */
  private static final int CHUNK = 1 << 16;

  private NativeViews() {}

  /**
   * Bytes {@code [from, from + length)} of the memory at {@code base}'s address (its position ignored), as a
   * buffer in native byte order that starts there ({@code length} under 2 GiB). Taken through a pointer at
   * that byte's own address: JavaCPP ends the buffer of a pointer with a position 2 GiB past the pointer's
   * address, so a view far into memory larger than 2 GiB would otherwise come out short. The caller checks
   * the range.
   */
  public static ByteBuffer bytes(Pointer base, long from, long length) {
    if (length == 0) {
      return ByteBuffer.allocateDirect(0).order(ByteOrder.nativeOrder()); // JavaCPP reads limit 0 as one value
    }
    BytePointer at = new BytePointer(base).position(0).getPointer(from);
    return at.capacity(length).limit(length).asByteBuffer().order(ByteOrder.nativeOrder());
  }

  /**
   * Widens the {@code count} float32 values at {@code from}'s address into float64 values at {@code
   * to}'s (positions ignored), through pointers, not buffers: any size. From the last chunk to the first,
   * so that {@code to} may be {@code from}'s own memory ({@link DenseMatrix#widenFloat32}): each float64
   * written then covers only float32 values already read (value {@code i} moves from byte {@code 4i} to
   * byte {@code 8i}).
   */
  public static void widen(FloatPointer from, DoublePointer to, long count) {
    FloatPointer source = new FloatPointer(from);
    DoublePointer target = new DoublePointer(to);
    int chunk = (int) Math.min(CHUNK, count);
    float[] f = new float[chunk];
    double[] d = new double[chunk];
    for (long end = count; end > 0; end -= chunk) {
      long start = Math.max(0, end - chunk);
      int k = (int) (end - start);
      source.position(start).get(f, 0, k);
      for (int i = 0; i < k; i++) {
        d[i] = f[i];
      }
      target.position(start).put(d, 0, k);
    }
  }
}

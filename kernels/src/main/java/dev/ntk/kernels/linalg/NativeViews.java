package dev.ntk.kernels.linalg;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;

/** Byte views into native memory at any offset, however large the memory. */
public final class NativeViews {
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
}

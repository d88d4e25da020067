package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.junit.jupiter.api.Test;

class NativeBufferTest {
  /** {@link NativeBuffer#bytes} views the values it names, in native order, for either dtype. */
  @Test
  void bytesViewTheNamedValues() {
    for (boolean f64 : new boolean[] {true, false}) {
      try (NativeBuffer b = NativeBuffer.allocate(1000, f64)) {
        for (int i = 0; i < 1000; i++) {
          if (f64) {
            ((DoubleBuffer) b.buffer()).put(i, i * 0.5);
          } else {
            ((FloatBuffer) b.buffer()).put(i, i * 0.5f);
          }
        }
        ByteBuffer view = b.bytes(300, 7).order(ByteOrder.nativeOrder());
        assertEquals(7 * (f64 ? 8 : 4), view.remaining());
        for (int i = 0; i < 7; i++) {
          assertEquals((300 + i) * 0.5, f64 ? view.getDouble(8 * i) : view.getFloat(4 * i));
        }
        assertEquals(0, b.bytes(1000, 0).remaining());
        assertThrows(IndexOutOfBoundsException.class, () -> b.bytes(995, 6));
        assertThrows(IndexOutOfBoundsException.class, () -> b.bytes(-1, 2));
      }
    }
  }

  /**
   * The views of a range ({@link NativeBuffer#buffer(long, long)}), the pointers ({@link
   * NativeBuffer#pointer}) and {@code get}/{@code set} all name the same values, for either dtype.
   */
  @Test
  void viewsPointersAndIndicesAgree() {
    for (boolean f64 : new boolean[] {true, false}) {
      try (NativeBuffer b = NativeBuffer.allocate(100, f64)) {
        assertEquals(100, b.count());
        assertEquals(f64 ? 8 : 4, b.valueBytes());
        for (int i = 0; i < 100; i++) {
          b.set(i, i + 0.25);
        }
        java.nio.Buffer range = b.buffer(40, 10);
        assertEquals(10, range.capacity());
        assertEquals(40.25, f64 ? ((DoubleBuffer) range).get(0) : ((FloatBuffer) range).get(0));
        assertEquals(49.25, f64 ? ((DoubleBuffer) range).get(9) : ((FloatBuffer) range).get(9));
        double atPointer = f64 ? ((DoublePointer) b.pointer(70)).get() : ((FloatPointer) b.pointer(70)).get();
        assertEquals(70.25, atPointer);
        assertEquals(0.25, b.get(0));
        assertEquals(99.25, b.get(99));
        assertThrows(IndexOutOfBoundsException.class, () -> b.get(100));
        assertThrows(IndexOutOfBoundsException.class, () -> b.set(-1, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> b.buffer(95, 6));
      }
    }
  }

  /** {@link NativeBuffer#widenInto} gives each float32 value as a float64 one, past a chunk of 65,536. */
  @Test
  void widensFloat32IntoFloat64() {
    int count = 70_000;
    try (NativeBuffer narrow = NativeBuffer.allocate(count, false);
        NativeBuffer wide = NativeBuffer.allocate(count + 5, true)) {
      for (int i = 0; i < count; i++) {
        narrow.set(i, i / 3.0);
      }
      narrow.widenInto(wide, count);
      for (int i = 0; i < count; i += 997) {
        assertEquals((double) (float) (i / 3.0), wide.get(i));
      }
      assertEquals((double) (float) ((count - 1) / 3.0), wide.get(count - 1));
      assertThrows(IllegalArgumentException.class, () -> wide.widenInto(narrow, 1));
      assertThrows(IndexOutOfBoundsException.class, () -> narrow.widenInto(wide, count + 1));
    }
  }

  /**
   * Views far into memory larger than 2 GiB (a 60,000 x 12,000 float32 panel of the out-of-core
   * Cholesky factor is 2.9 GB) start and end where asked: only the pages written are touched. The
   * whole buffer is no Java buffer.
   */
  @Test
  void viewsBeyondTwoGibibytes() {
    long count = 720_000_000L;
    try (NativeBuffer panel = NativeBuffer.allocate(count, false)) {
      for (long index : new long[] {0, 528_000_000L, count - 67_104_000L}) {
        FloatBuffer view = (FloatBuffer) panel.buffer(index, 67_104_000L);
        assertEquals(67_104_000, view.capacity());
        view.put(0, 1.5f);
        view.put(view.capacity() - 1, 2.5f);
        assertEquals(1.5, panel.get(index));
        assertEquals(2.5, panel.get(index + 67_104_000L - 1));
        assertEquals(2.5f, ((FloatPointer) panel.pointer(index + 67_104_000L - 1)).get());
      }
      assertThrows(IndexOutOfBoundsException.class, () -> panel.buffer(count - 10, 11));
      assertThrows(IllegalStateException.class, panel::buffer);
    }
  }
}

package dev.ntk.kernels.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
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
}

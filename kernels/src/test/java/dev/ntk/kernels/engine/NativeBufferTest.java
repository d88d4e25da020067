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

  /**
   * Backing the pages in the background ({@link NativeBuffer#populateInBackground}) changes no
   * value, also of values written while it runs, and closing waits for it: a thread writes every
   * value of two 64 MiB buffers as the pages are backed, from the far end, and all its values are
   * there afterwards.
   */
  @Test
  void populatingInTheBackgroundKeepsTheValuesWrittenMeanwhile() throws Exception {
    int n = 16 << 20;
    NativeBuffer a = NativeBuffer.allocate(n, false);
    NativeBuffer b = NativeBuffer.allocate(n / 2, true);
    try (a; b) {
      FloatBuffer fa = (FloatBuffer) a.buffer();
      DoubleBuffer db = (DoubleBuffer) b.buffer();
      NativeBuffer.populateInBackground(java.util.List.of(a, b));
      for (int i = n - 1; i >= 0; i--) {
        fa.put(i, i);
      }
      for (int i = n / 2 - 1; i >= 0; i--) {
        db.put(i, -i);
      }
      for (int i = 0; i < n; i += 4093) {
        assertEquals(i, fa.get(i), "float value " + i);
      }
      for (int i = 0; i < n / 2; i += 4093) {
        assertEquals(-i, db.get(i), "double value " + i);
      }
      assertEquals(n - 1, fa.get(n - 1));
      assertEquals(-(n / 2 - 1), db.get(n / 2 - 1));
    }
    // Closed while nothing was backed yet: the thread stops, and close returns.
    NativeBuffer c = NativeBuffer.allocate(n, true);
    NativeBuffer.populateInBackground(java.util.List.of(c));
    c.close();
  }
}

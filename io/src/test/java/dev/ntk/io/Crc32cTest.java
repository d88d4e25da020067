package dev.ntk.io;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class Crc32cTest {
  private static long crc(byte[] b, int from, int to) {
    CRC32C c = new CRC32C();
    c.update(b, from, to - from);
    return c.getValue();
  }

  @Test
  void combinedPartsGiveTheWholeSequencesCrc() {
    byte[] bytes = new byte[100_003];
    new Random(7).nextBytes(bytes);
    long whole = crc(bytes, 0, bytes.length);
    for (int cut : new int[] {0, 1, 7, 4096, 50_000, 100_002, 100_003}) {
      assertEquals(whole, Crc32c.combine(crc(bytes, 0, cut), crc(bytes, cut, bytes.length), bytes.length - cut),
          "cut at " + cut);
    }
    long parts = 0;
    for (int from = 0; from < bytes.length; from += 999) {
      int to = Math.min(bytes.length, from + 999);
      parts = Crc32c.combine(parts, crc(bytes, from, to), to - from);
    }
    assertEquals(whole, parts);
  }
}

package dev.ntk.io;

/**
 * CRC-32C arithmetic beyond {@link java.util.zip.CRC32C}: the CRC of two byte sequences one after
 * the other from the CRCs of each ({@link #combine}), so that the parts of a long sequence (the
 * columns of a large tile) can be checked on several threads at once. zlib's {@code crc32_combine}
 * (GF(2) matrix powers of the one-zero-bit operator) with the Castagnoli polynomial.
 */
public final class Crc32c {
  /** The reflected Castagnoli polynomial. */
  private static final int POLY = 0x82F63B78;

  private Crc32c() {}

  /**
   * The CRC-32C ({@code java.util.zip.CRC32C.getValue()}) of {@code A} followed by {@code B},
   * from {@code crcA} of {@code A}, {@code crcB} of {@code B} and {@code lengthB}, the bytes of
   * {@code B}.
   */
  public static long combine(long crcA, long crcB, long lengthB) {
    if (lengthB <= 0) {
      return crcA;
    }
    int[] even = new int[32];
    int[] odd = new int[32];
    odd[0] = POLY; // the operator for one zero bit
    int row = 1;
    for (int n = 1; n < 32; n++) {
      odd[n] = row;
      row <<= 1;
    }
    square(even, odd); // two zero bits
    square(odd, even); // four
    int crc1 = (int) crcA;
    long len = lengthB;
    do {
      square(even, odd); // the first pass gives one zero byte
      if ((len & 1) != 0) {
        crc1 = times(even, crc1);
      }
      len >>= 1;
      if (len == 0) {
        break;
      }
      square(odd, even);
      if ((len & 1) != 0) {
        crc1 = times(odd, crc1);
      }
      len >>= 1;
    } while (len != 0);
    return (crc1 ^ (int) crcB) & 0xFFFFFFFFL;
  }

  private static int times(int[] mat, int vec) {
    int sum = 0;
    for (int i = 0; vec != 0; i++, vec >>>= 1) {
      if ((vec & 1) != 0) {
        sum ^= mat[i];
      }
    }
    return sum;
  }

  private static void square(int[] square, int[] mat) {
    for (int n = 0; n < 32; n++) {
      square[n] = times(mat, mat[n]);
    }
  }
}

package dev.ntk.transforms;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.apache.beam.sdk.coders.AtomicCoder;
import org.apache.beam.sdk.coders.CoderException;
import org.apache.beam.sdk.util.VarInt;

/**
 * A deterministic coder for {@code double[]}: the length as a variable-length integer, then each
 * value's IEEE 754 bits, little-endian. Two arrays are equal under it when their bits are.
 */
public final class DoubleArrayCoder extends AtomicCoder<double[]> {
  private static final DoubleArrayCoder INSTANCE = new DoubleArrayCoder();
  private static final int CHUNK = 1 << 13;

  private DoubleArrayCoder() {}

  public static DoubleArrayCoder of() {
    return INSTANCE;
  }

  @Override
  public void encode(double[] values, OutputStream out) throws IOException {
    if (values == null) {
      throw new CoderException("cannot encode a null double[]");
    }
    VarInt.encode(values.length, out);
    ByteBuffer bytes = ByteBuffer.allocate(8 * Math.min(CHUNK, values.length))
        .order(ByteOrder.LITTLE_ENDIAN);
    for (int off = 0; off < values.length; off += CHUNK) {
      int k = Math.min(CHUNK, values.length - off);
      bytes.clear();
      bytes.asDoubleBuffer().put(values, off, k);
      out.write(bytes.array(), 0, 8 * k);
    }
  }

  @Override
  public double[] decode(InputStream in) throws IOException {
    int n = VarInt.decodeInt(in);
    if (n < 0) {
      throw new CoderException("negative double[] length " + n);
    }
    double[] values = new double[n];
    byte[] chunk = new byte[8 * Math.min(CHUNK, n)];
    DataInputStream data = new DataInputStream(in);
    for (int off = 0; off < n; off += CHUNK) {
      int k = Math.min(CHUNK, n - off);
      data.readFully(chunk, 0, 8 * k);
      ByteBuffer.wrap(chunk, 0, 8 * k).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer()
          .get(values, off, k);
    }
    return values;
  }

  @Override
  public void verifyDeterministic() {}

  @Override
  protected long getEncodedElementByteSize(double[] values) throws Exception {
    return VarInt.getLength(values.length) + 8L * values.length;
  }

  @Override
  public boolean isRegisterByteSizeObserverCheap(double[] values) {
    return true;
  }
}

package dev.ntk.io;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.WritableByteChannel;

/**
 * Writes a {@code .npy} array of a known shape to a channel in pieces, in C order, so that an
 * array larger than memory (an {@code N x N} kernel assembled band by band) never exists as one
 * Java object. The header goes out first; {@link #write} appends values; {@link #close} fails
 * unless exactly the shape's number of values were written, so that a caller who commits the file
 * only after a clean close never commits a short one.
 *
 * <p>The channel is written sequentially only, which every Beam file system (local, {@code gs://},
 * {@code s3://}, {@code hdfs://}) offers; object stores have no positioned writes.
 *
 * <pre>{@code
 * try (NpyWriter w = NpyWriter.open(channel, "nngp.npy", new long[] {n, n}, NpyDType.FLOAT32)) {
 *   for (long r = 0; r < n; r += band) {
 *     w.write(rowsOf(r, band));
 *   }
 * }
 * }</pre>
 */
public final class NpyWriter implements Closeable {
  private static final int CHUNK = 1 << 22;

  private final WritableByteChannel channel;
  private final String name;
  private final NpyDType dtype;
  private final long expected;
  private final ByteBuffer buffer;
  private long written;
  private boolean closed;

  private NpyWriter(WritableByteChannel channel, String name, long[] shape, NpyDType dtype) {
    this.channel = channel;
    this.name = name;
    this.dtype = dtype;
    this.expected = Npy.product(shape, 0);
    this.buffer = ByteBuffer.allocateDirect(CHUNK).order(ByteOrder.LITTLE_ENDIAN);
  }

  /**
   * Writes the header of a {@code shape} array of {@code dtype} to {@code channel}, which the
   * writer then owns (closes).
   *
   * @param name the file's name, for error messages
   */
  public static NpyWriter open(WritableByteChannel channel, String name, long[] shape,
      NpyDType dtype) throws IOException {
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(name + ": negative dimension in shape "
            + Npy.shapeString(shape));
      }
    }
    NpyWriter writer = new NpyWriter(channel, name, shape.clone(), dtype);
    try {
      writeFully(channel, ByteBuffer.wrap(Npy.header(shape, dtype)), name);
    } catch (IOException | RuntimeException e) {
      try {
        channel.close();
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
    return writer;
  }

  /** Appends all of {@code values}. */
  public void write(double[] values) throws IOException {
    write(values, 0, values.length);
  }

  /** Appends {@code values[from, from + count)}, rounded to float for {@code float32}. */
  public void write(double[] values, int from, int count) throws IOException {
    write(java.nio.DoubleBuffer.wrap(values, from, count).slice());
  }

  /**
   * Appends the values of {@code values} (a {@code FloatBuffer} or {@code DoubleBuffer}, from
   * position 0 to its limit; a direct buffer in native memory is copied chunk by chunk, with no
   * Java array in between), converted to the array's dtype.
   */
  public void write(java.nio.Buffer values) throws IOException {
    int count = values.limit();
    checkRoom(count);
    int perChunk = CHUNK / dtype.bytes();
    for (int off = 0; off < count; off += perChunk) {
      int k = Math.min(perChunk, count - off);
      buffer.clear().limit(k * dtype.bytes());
      if (values instanceof FloatBuffer f && dtype == NpyDType.FLOAT32) {
        buffer.asFloatBuffer().put(f.slice(off, k));
      } else if (values instanceof java.nio.DoubleBuffer d && dtype == NpyDType.FLOAT64) {
        buffer.asDoubleBuffer().put(d.slice(off, k));
      } else if (values instanceof FloatBuffer f) {
        java.nio.DoubleBuffer doubles = buffer.asDoubleBuffer();
        for (int i = 0; i < k; i++) {
          doubles.put(i, f.get(off + i));
        }
      } else {
        java.nio.DoubleBuffer d = (java.nio.DoubleBuffer) values;
        FloatBuffer floats = buffer.asFloatBuffer();
        for (int i = 0; i < k; i++) {
          floats.put(i, (float) d.get(off + i));
        }
      }
      writeFully(channel, buffer, name);
    }
    written += count;
  }

  /**
   * Appends values given as their bytes, already in the array's dtype and little-endian (the
   * memory of a native buffer on a little-endian machine), written to the channel as they are:
   * no copy in between, unlike {@link #write(java.nio.Buffer)}.
   */
  public void writeBytes(ByteBuffer bytes) throws IOException {
    if (bytes.remaining() % dtype.bytes() != 0) {
      throw new IllegalArgumentException(name + ": " + bytes.remaining() + " bytes are not whole "
          + dtype + " values");
    }
    long count = bytes.remaining() / dtype.bytes();
    checkRoom(count);
    writeFully(channel, bytes, name);
    written += count;
  }

  /** Fails unless the writer is open and the shape has room for {@code count} more values. */
  private void checkRoom(long count) throws IOException {
    if (closed) {
      throw new IOException(name + ": the writer is closed");
    }
    if (written + count > expected) {
      throw new IllegalStateException(name + ": " + (written + count) + " values exceed the "
          + expected + " of the array's shape");
    }
  }

  /** The number of values written so far. */
  public long written() {
    return written;
  }

  /**
   * Closes the channel.
   *
   * @throws IOException if fewer values than the shape holds were written (the file is then not
   *     a valid {@code .npy} and must not be committed)
   */
  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    try {
      channel.close();
    } catch (IOException e) {
      throw FileErrors.naming(e, name);
    }
    if (written != expected) {
      throw new IOException(name + ": closed after " + written + " of its " + expected
          + " values; the file is incomplete");
    }
  }

  private static void writeFully(WritableByteChannel channel, ByteBuffer bytes, String name)
      throws IOException {
    try {
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
    } catch (IOException e) {
      throw FileErrors.naming(e, name);
    }
  }
}

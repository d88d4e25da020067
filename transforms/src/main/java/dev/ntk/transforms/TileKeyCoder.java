package dev.ntk.transforms;

import dev.ntk.io.TileKey;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import org.apache.beam.sdk.coders.AtomicCoder;

/** A deterministic coder for {@link TileKey}: offsets and sizes as fixed-width big-endian numbers. */
public final class TileKeyCoder extends AtomicCoder<TileKey> {
  private static final TileKeyCoder INSTANCE = new TileKeyCoder();

  private TileKeyCoder() {}

  public static TileKeyCoder of() {
    return INSTANCE;
  }

  @Override
  public void encode(TileKey key, OutputStream out) throws IOException {
    DataOutputStream data = new DataOutputStream(out);
    data.writeLong(key.rowOffset());
    data.writeLong(key.colOffset());
    data.writeInt(key.rows());
    data.writeInt(key.cols());
    data.flush();
  }

  @Override
  public TileKey decode(InputStream in) throws IOException {
    DataInputStream data = new DataInputStream(in);
    return new TileKey(data.readLong(), data.readLong(), data.readInt(), data.readInt());
  }

  @Override
  public void verifyDeterministic() {}

  @Override
  public boolean consistentWithEquals() {
    return true;
  }
}

package dev.ntk.transforms;

import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Map;
import java.util.TreeMap;
import org.apache.beam.sdk.coders.AtomicCoder;
import org.apache.beam.sdk.coders.CoderException;
import org.apache.beam.sdk.coders.StringUtf8Coder;
import org.apache.beam.sdk.util.VarInt;

/**
 * A deterministic coder for kernel {@link Tile}s: the key ({@link TileKeyCoder}), the model and
 * inputs hashes, the dtype, then each kernel's name and values ({@link DoubleArrayCoder}) in name
 * order. Values travel as doubles whatever the dtype, so a tile decodes to exactly what was encoded.
 */
public final class TileCoder extends AtomicCoder<Tile> {
  private static final TileCoder INSTANCE = new TileCoder();
  private static final StringUtf8Coder STRING = StringUtf8Coder.of();

  private TileCoder() {}

  public static TileCoder of() {
    return INSTANCE;
  }

  @Override
  public void encode(Tile tile, OutputStream out) throws IOException {
    if (tile == null) {
      throw new CoderException("cannot encode a null Tile");
    }
    TileKeyCoder.of().encode(tile.key(), out);
    STRING.encode(tile.modelHash(), out);
    STRING.encode(tile.inputsHash(), out);
    STRING.encode(tile.dtype().typeName(), out);
    VarInt.encode(tile.kernels().size(), out);
    for (Map.Entry<String, double[]> kernel : tile.kernels().entrySet()) {
      STRING.encode(kernel.getKey(), out);
      DoubleArrayCoder.of().encode(kernel.getValue(), out);
    }
  }

  @Override
  public Tile decode(InputStream in) throws IOException {
    var key = TileKeyCoder.of().decode(in);
    String model = STRING.decode(in);
    String inputs = STRING.decode(in);
    NpyDType dtype;
    try {
      dtype = NpyDType.fromName(STRING.decode(in));
    } catch (IllegalArgumentException e) {
      throw new CoderException(e.getMessage());
    }
    int n = VarInt.decodeInt(in);
    TreeMap<String, double[]> kernels = new TreeMap<>();
    for (int i = 0; i < n; i++) {
      kernels.put(STRING.decode(in), DoubleArrayCoder.of().decode(in));
    }
    try {
      return new Tile(key, model, inputs, dtype, kernels);
    } catch (IllegalArgumentException e) {
      throw new CoderException("not a valid tile: " + e.getMessage());
    }
  }

  @Override
  public void verifyDeterministic() {}
}

package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.io.TileKey;
import java.util.TreeMap;
import org.apache.beam.sdk.coders.Coder;
import org.apache.beam.sdk.coders.CoderException;
import org.apache.beam.sdk.testing.CoderProperties;
import org.junit.jupiter.api.Test;

/** Every coder of the transforms round-trips, is deterministic and is not Java serialization. */
class CodersTest {
  private static Tile tile(NpyDType dtype) {
    TreeMap<String, double[]> k = new TreeMap<>();
    k.put("nngp", new double[] {1.5, -0.0, Double.MIN_VALUE, 3e300, 7, 8});
    k.put("ntk", new double[] {2, 3, 4, 5, 6, Math.PI});
    return new Tile(new TileKey(512, 1024, 2, 3), "abc", "pcollection:12", dtype, k);
  }

  private static <T> void roundTrips(Coder<T> coder, T value) throws Exception {
    CoderProperties.coderDecodeEncodeEqual(coder, value);
    CoderProperties.coderDeterministic(coder, value, value);
    CoderProperties.coderSerializable(coder);
    CoderProperties.structuralValueDecodeEncodeEqual(coder, value);
  }

  @Test
  void doubleArrays() throws Exception {
    roundTrips(DoubleArrayCoder.of(), new double[0]);
    roundTrips(DoubleArrayCoder.of(), new double[] {1, -2.5, Double.NaN, Double.NEGATIVE_INFINITY});
    double[] big = new double[20_000]; // more than one chunk
    for (int i = 0; i < big.length; i++) {
      big[i] = Math.sin(i);
    }
    roundTrips(DoubleArrayCoder.of(), big);
    // the format: a varint length, then little-endian IEEE 754 doubles
    CoderProperties.coderDecodesBase64(DoubleArrayCoder.of(), "AgAAAAAAAPA_AAAAAAAAAEA", new double[] {1, 2});
  }

  @Test
  void tiles() throws Exception {
    roundTrips(TileCoder.of(), tile(NpyDType.FLOAT64));
    roundTrips(TileCoder.of(), tile(NpyDType.FLOAT32));
    roundTrips(TileKeyCoder.of(), new TileKey(3, 4, 5, 6));
  }

  @Test
  void statisticsAndBlocks() throws Exception {
    roundTrips(Kernels.StatsCoder.INSTANCE, Kernels.Stats.EMPTY);
    roundTrips(Kernels.StatsCoder.INSTANCE,
        Kernels.Stats.of(3, new double[] {1, 2}).merge(Kernels.Stats.of(0, new double[] {4})));
    roundTrips(Kernels.BlockCoder.INSTANCE, new Kernels.Block(6, 2, 3, new double[] {1, 2, 3, 4, 5, 6}));
  }

  @Test
  void inferenceRecords() throws Exception {
    roundTrips(InferenceValues.FactoredCoder.INSTANCE, new InferenceValues.Factored("mem://b/out/.factor/",
        "id-1", 11, 2, new long[] {11, 2}, Double.NaN, NpyDType.FLOAT32, "abc", "12ef"));
    roundTrips(InferenceValues.FactoredCoder.INSTANCE, new InferenceValues.Factored("/tmp/f/", "id-2", 3, 1,
        new long[] {3}, -1.25, NpyDType.FLOAT64, "abc", "12ef"));
    roundTrips(InferenceValues.BlockCoder.INSTANCE, new InferenceValues.Block(4, 2,
        new double[][] {{1, 2}, null, {3, -0.0}}, null, new double[] {5, 6, 7}, "t"));
    roundTrips(InferenceValues.BlockCoder.INSTANCE, new InferenceValues.Block(0, 1,
        new double[][] {{Math.PI}}, new double[] {1, 2}, null, ""));
    roundTrips(InferenceValues.BlockCoder.INSTANCE, InferenceValues.NO_ROWS);
  }

  @Test
  void aTruncatedTileFailsToDecode() throws Exception {
    byte[] bytes = org.apache.beam.sdk.util.CoderUtils.encodeToByteArray(TileCoder.of(), tile(NpyDType.FLOAT64));
    byte[] cut = java.util.Arrays.copyOf(bytes, bytes.length - 9);
    Exception e = assertThrows(IllegalArgumentException.class,
        () -> org.apache.beam.sdk.util.CoderUtils.decodeFromByteArray(TileCoder.of(), cut));
    org.junit.jupiter.api.Assertions.assertInstanceOf(java.io.EOFException.class, e.getCause());
  }

  @Test
  void statisticsMergeInAnyOrder() {
    Kernels.Stats a = Kernels.Stats.of(0, new double[] {1, 2});
    Kernels.Stats b = Kernels.Stats.of(5, new double[] {1});
    Kernels.Stats c = Kernels.Stats.of(2, new double[] {3, 4});
    Kernels.Stats one = a.merge(b).merge(c);
    Kernels.Stats other = c.merge(a.merge(b));
    org.junit.jupiter.api.Assertions.assertEquals(one, other);
    org.junit.jupiter.api.Assertions.assertEquals(5, one.otherIndex());
    org.junit.jupiter.api.Assertions.assertEquals(3, one.count());
    assertThrows(CoderException.class, () -> DoubleArrayCoder.of().encode(null, new java.io.ByteArrayOutputStream()));
  }
}

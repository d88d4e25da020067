package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.coders.KvCoder;
import org.apache.beam.sdk.coders.VarLongCoder;
import org.apache.beam.sdk.testing.PAssert;
import org.apache.beam.sdk.testing.TestPipeline;
import org.apache.beam.sdk.transforms.Create;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PCollection;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Beam-native path ({@link Kernels} over a {@code PCollection} of examples, {@link KernelIO})
 * gives the numbers of the file path ({@link KernelTiles}, {@link WriteKernels}) and of the
 * in-process path, and rejects bad collections before any tile is computed.
 */
@ExtendWith(TestPipelineExtension.class)
class KernelsTest {
  @TempDir Path dir;

  static PCollection<KV<Long, double[]>> examples(Pipeline p, String name, NpyArray x) {
    return examples(p, name, rows(x));
  }

  static PCollection<KV<Long, double[]>> examples(Pipeline p, String name,
      List<KV<Long, double[]>> rows) {
    return p.apply(name, Create.of(rows).withCoder(KvCoder.of(VarLongCoder.of(), DoubleArrayCoder.of())));
  }

  static List<KV<Long, double[]>> rows(NpyArray x) {
    List<KV<Long, double[]>> rows = new ArrayList<>();
    int d = (int) x.rowSize();
    for (int i = 0; i < x.rows(); i++) {
      rows.add(KV.of((long) i, java.util.Arrays.copyOfRange(x.data(), i * d, (i + 1) * d)));
    }
    return rows;
  }

  /** The kernels of the tiles, put together (x1 with itself when {@code symmetric}). */
  static double[] assemble(Iterable<Tile> tiles, String name, int n1, int n2, boolean symmetric) {
    double[] k = new double[n1 * n2];
    java.util.Arrays.fill(k, Double.NaN);
    for (Tile t : tiles) {
      double[] v = t.kernels().get(name);
      for (int i = 0; i < t.key().rows(); i++) {
        for (int j = 0; j < t.key().cols(); j++) {
          long r = t.key().rowOffset() + i;
          long c = t.key().colOffset() + j;
          k[(int) (r * n2 + c)] = v[i * t.key().cols() + j];
          if (symmetric) {
            k[(int) (c * n2 + r)] = v[i * t.key().cols() + j];
          }
        }
      }
    }
    return k;
  }

  private static double[] inProcess(Path x1, Path x2, Get g) throws IOException {
    try (NDManager m = Tensors.newManager()) {
      Kernel k = ModelSpec.parse(Fixtures.MODEL).kernelFn().withBackend(Backend.CPU)
          .apply(Fixtures.load(m, x1), x2 == null ? null : Fixtures.load(m, x2));
      return Tensors.toDoubles(k.get(g));
    }
  }

  @ParameterizedTest(name = "symmetric={0}")
  @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
  void tilesOfACollectionEqualTheInProcessKernels(boolean symmetric, TestPipeline p) throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 10, 6, 1);
    Path x2 = symmetric ? null : Fixtures.randomNpy(dir, "x2.npy", 7, 6, 2);
    double[] nngp = inProcess(x1, x2, Get.NNGP);
    double[] ntk = inProcess(x1, x2, Get.NTK);
    int n2 = symmetric ? 10 : 7;
    Kernels kernels = Kernels.of(Fixtures.MODEL).withTileRows(3).withBackend(Backend.CPU);
    if (!symmetric) {
      kernels = kernels.withX2(examples(p, "X2", Npy.read(x2)));
    }
    PCollection<Tile> tiles = examples(p, "X1", Npy.read(x1)).apply("Kernels", kernels);
    PAssert.that(tiles).satisfies(all -> {
      int count = 0;
      for (Tile t : all) {
        count++;
        assertTrue(t.inputsHash().startsWith("pcollection:"), t.inputsHash());
        assertEquals(ModelSpec.hash(ModelSpec.parse(Fixtures.MODEL)), t.modelHash());
      }
      assertEquals(new TilePlan(10, n2, 3, symmetric).tiles().size(), count);
      double e1 = Fixtures.relativeError(assemble(all, "nngp", 10, n2, symmetric), nngp);
      double e2 = Fixtures.relativeError(assemble(all, "ntk", 10, n2, symmetric), ntk);
      assertTrue(e1 <= 1e-12 && e2 <= 1e-12, "relative errors " + e1 + ", " + e2);
      return null;
    });
    p.run().waitUntilFinish();
  }

  /**
   * A plan that is not symmetric in its inputs (neural-tangents' quadrature) has x1 with itself
   * computed whole, every tile (10 rows in tiles of 4: off the diagonal on both sides, a ragged last
   * one), as in-process; {@link KernelIO#writeNpy} places the tiles below the diagonal as they are.
   */
  @Test
  void tilesOfAPlanThatIsNotSymmetricAreWhole(TestPipeline p) throws IOException {
    Path x1 = Fixtures.scaledNpy(dir, "x1.npy", 10, 5, 1);
    double[] nngp;
    double[] ntk;
    try (NDManager m = Tensors.newManager()) {
      Kernel k = ModelSpec.parse(Fixtures.ASYMMETRIC).kernelFn().withBackend(Backend.CPU).apply(Fixtures.load(m, x1));
      nngp = Tensors.toDoubles(k.get(Get.NNGP));
      ntk = Tensors.toDoubles(k.get(Get.NTK));
    }
    Path out = dir.resolve("out");
    PCollection<Tile> tiles = examples(p, "X1", Npy.read(x1))
        .apply("Kernels", Kernels.of(Fixtures.ASYMMETRIC).withTileRows(4).withBackend(Backend.CPU));
    tiles.apply(KernelIO.writeNpy(out.toString()));
    PAssert.that(tiles).satisfies(all -> {
      int count = 0;
      for (Tile t : all) {
        count++;
      }
      assertEquals(new TilePlan(10, 10, 4, false).tiles().size(), count);
      Fixtures.assertEntries(nngp, assemble(all, "nngp", 10, 10, false), 1e-12, "nngp");
      Fixtures.assertEntries(ntk, assemble(all, "ntk", 10, 10, false), 1e-12, "ntk");
      return null;
    });
    p.run().waitUntilFinish();
    Fixtures.assertEntries(nngp, Npy.read(out.resolve("nngp.npy")).data(), 1e-12, "nngp.npy");
    Fixtures.assertEntries(ntk, Npy.read(out.resolve("ntk.npy")).data(), 1e-12, "ntk.npy");
  }

  /** Beam-native path = file path = in-process path, through {@code .npy} files on both sides. */
  @ParameterizedTest(name = "{0}")
  @EnumSource(value = Runners.Kind.class, names = {"DIRECT", "FLINK"})
  void writeNpyEqualsTheFilePath(Runners.Kind runner) throws IOException {
    Path x = Fixtures.randomNpy(dir, "x.npy", 11, 5, 3);
    Path files = dir.resolve("files");
    TileSet set = TileSet.create(Fixtures.MODEL, x, null, 4, NpyDType.FLOAT64, files.resolve("tiles"));
    Pipeline filePath = Fixtures.pipeline(runner, 2);
    filePath.apply(KernelTiles.of(set)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), files));
    Fixtures.run(filePath);

    Path nativeOut = dir.resolve("native");
    Pipeline beam = Fixtures.pipeline(runner, 2);
    examples(beam, "X", Npy.read(x)).apply(Kernels.of(Fixtures.MODEL).withTileRows(4))
        .apply(KernelIO.writeNpy(nativeOut.toString()));
    Fixtures.run(beam);

    for (Get g : Get.values()) {
      NpyArray fromFiles = Npy.read(files.resolve(g.key() + ".npy"));
      NpyArray fromCollection = Npy.read(nativeOut.resolve(g.key() + ".npy"));
      assertArrayEquals(new long[] {11, 11}, fromCollection.shape());
      // The same tiles, computed by the same code: equal up to the last bits, which depend on
      // whether the JIT had compiled the Vector API loops yet (then atan2 and sqrt are SVML's; before,
      // each lane is Java's own), and so on what ran earlier in this JVM (a CI run once differed by
      // one ulp here).
      double[] want = fromFiles.data();
      double[] got = fromCollection.data();
      assertEquals(want.length, got.length);
      for (int i = 0; i < want.length; i++) {
        assertEquals(want[i], got[i], 1e-14 * Math.abs(want[i]), g + ": same tiles, same values at " + i);
      }
      double err = Fixtures.relativeError(fromCollection.data(), inProcess(x, null, g));
      assertTrue(err <= 1e-12, g + " relative error " + err);
    }
  }

  @Test
  void tilesWrittenAsArrowReadBackAndAssemble(TestPipeline p) throws IOException {
    Path x = Fixtures.randomNpy(dir, "x.npy", 9, 4, 4);
    Path tilesDir = dir.resolve("tiles");
    examples(p, "X", Npy.read(x)).apply(Kernels.of(Fixtures.MODEL).withTileRows(4).withGet(Get.NTK))
        .apply(KernelIO.writeArrow(tilesDir.toString()));
    p.run().waitUntilFinish();
    try (var listing = Files.list(tilesDir)) {
      assertEquals(6, listing.filter(f -> f.getFileName().toString().matches("tile-r\\d+-c\\d+\\.arrow")).count());
    }

    Pipeline again = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    PCollection<Tile> read = again.apply(KernelIO.readTiles(tilesDir.toString()));
    read.apply(KernelIO.writeNpy(dir.resolve("out").toString()).withGet(Get.NTK));
    Fixtures.run(again);
    NpyArray ntk = Npy.read(dir.resolve("out/ntk.npy"));
    assertFalse(Files.exists(dir.resolve("out/nngp.npy")));
    double err = Fixtures.relativeError(ntk.data(), inProcess(x, null, Get.NTK));
    assertTrue(err <= 1e-12, "relative error " + err);
  }

  /**
   * {@code withGet(Get.NNGP)} reaches the plan the workers compile: it has no NTK output and fewer
   * per-pair steps than the plan of both kernels, and the tiles carry the NNGP alone, equal to the
   * in-process kernel.
   */
  @Test
  void withGetNngpCompilesNoNtkStep(TestPipeline p) throws IOException {
    Kernels nngpOnly = Kernels.of(Fixtures.MODEL).withGet(Get.NNGP).withBackend(Backend.CPU).withTileRows(4);
    TileComputer both = Kernels.of(Fixtures.MODEL).withBackend(Backend.CPU).function(new long[] {5}, 9, 9);
    TileComputer nngp = nngpOnly.function(new long[] {5}, 9, 9);
    both.setup();
    nngp.setup();
    try {
      assertTrue(both.plan().computes(Get.NTK));
      assertTrue(both.plan().schedule().outputs().containsKey("ntk"));
      assertFalse(nngp.plan().computes(Get.NTK));
      assertEquals(java.util.Set.of("nngp"), nngp.plan().schedule().outputs().keySet());
      assertTrue(nngp.plan().schedule().tileSteps().size() < both.plan().schedule().tileSteps().size(),
          nngp.plan().schedule().tileSteps().size() + " per-pair steps for the NNGP alone, "
              + both.plan().schedule().tileSteps().size() + " for both");
      assertEquals(List.of("nngp"), nngp.names());
    } finally {
      both.teardown();
      nngp.teardown();
    }
    Path x = Fixtures.randomNpy(dir, "x.npy", 9, 5, 6);
    double[] want = inProcess(x, null, Get.NNGP);
    PCollection<Tile> tiles = examples(p, "X", Npy.read(x)).apply(nngpOnly);
    PAssert.that(tiles).satisfies(all -> {
      for (Tile t : all) {
        assertEquals(java.util.Set.of("nngp"), t.kernels().keySet());
      }
      double err = Fixtures.relativeError(assemble(all, "nngp", 9, 9, true), want);
      assertTrue(err <= 1e-12, "relative error " + err);
      return null;
    });
    p.run().waitUntilFinish();
  }

  /**
   * A tile directory is a resumable source and sink: a second run computes only the tiles missing
   * or damaged there (a tile of another model), reads the others, and writes the same kernels; a
   * run over other examples reuses nothing.
   */
  @Test
  void aTileDirectoryIsReadNotComputedAgain() throws IOException {
    Path x = Fixtures.randomNpy(dir, "x.npy", 9, 5, 7);
    Path store = dir.resolve("store");
    Kernels kernels = Kernels.of(Fixtures.MODEL).withTileRows(4).withBackend(Backend.CPU)
        .withTileDirectory(store.toString());
    org.apache.beam.sdk.PipelineResult first = runInto(kernels, rows(Npy.read(x)), dir.resolve("first"));
    assertEquals(6, KernelTilesTest.counter(first, KernelTiles.TILES_COMPUTED));
    assertEquals(0, KernelTilesTest.counter(first, KernelTiles.TILES_SKIPPED));
    List<dev.ntk.io.TileKey> keys = new TilePlan(9, 9, 4, true).tiles();
    Files.delete(store.resolve(keys.get(0).fileName()));
    Tile good = dev.ntk.io.TileFiles.read(store.resolve(keys.get(2).fileName()));
    dev.ntk.io.TileFiles.write(store, new Tile(good.key(), "another-model", good.inputsHash(), good.dtype(),
        good.kernels()));

    org.apache.beam.sdk.PipelineResult again = runInto(kernels, rows(Npy.read(x)), dir.resolve("again"));
    assertEquals(2, KernelTilesTest.counter(again, KernelTiles.TILES_COMPUTED));
    assertEquals(4, KernelTilesTest.counter(again, KernelTiles.TILES_SKIPPED));
    assertEquals(1, KernelTilesTest.counter(again, KernelTiles.TILES_DAMAGED));
    for (Get g : Get.values()) {
      // The same kernels to 1e-15, not compared byte for byte: a recomputed tile may run on another
      // number of threads than at first (it shares the cores with the tiles beside it). The cpu
      // engine gives the same bits on any number of threads (ThreadsTest); before it did, this
      // comparison failed once on one ulp.
      double[] once = Npy.read(dir.resolve("first/" + g.key() + ".npy")).data();
      double[] twice = Npy.read(dir.resolve("again/" + g.key() + ".npy")).data();
      assertTrue(Fixtures.relativeError(twice, once) <= 1e-15, g + " run again: " + Fixtures.relativeError(twice,
          once));
      double err = Fixtures.relativeError(Npy.read(dir.resolve("again/" + g.key() + ".npy")).data(),
          inProcess(x, null, g));
      assertTrue(err <= 1e-12, g + " relative error " + err);
    }

    Path other = Fixtures.randomNpy(dir, "other.npy", 9, 5, 8);
    org.apache.beam.sdk.PipelineResult others = runInto(kernels, rows(Npy.read(other)), dir.resolve("other"));
    assertEquals(6, KernelTilesTest.counter(others, KernelTiles.TILES_COMPUTED));
    assertEquals(6, KernelTilesTest.counter(others, KernelTiles.TILES_DAMAGED));
    double err = Fixtures.relativeError(Npy.read(dir.resolve("other/ntk.npy")).data(),
        inProcess(other, null, Get.NTK));
    assertTrue(err <= 1e-12, "relative error " + err);
  }

  /**
   * An infinite entry stops the collection's run as it stops the file path's, naming the entry and
   * the layer where it broke, with no tile of it in the tile directory.
   */
  @Test
  void aNonFiniteKernelOfACollectionStopsTheRunNamingTheLayer() throws IOException {
    String model = """
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.5}}, {"Relu": {}},
                    {"Dense": {"out_dim": 1, "W_std": 1e200}}]}""";
    Path store = dir.resolve("store");
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    examples(p, "X", ramp(5, 4)).apply(Kernels.of(model).withTileRows(4).withTileDirectory(store.toString()));
    Exception e = assertThrows(Exception.class, () -> Fixtures.run(p));
    Throwable t = e;
    while (t != null && !(t instanceof NonFiniteKernelException)) {
      t = t.getCause();
    }
    assertTrue(t != null, "expected a NonFiniteKernelException, got " + messages(e));
    assertTrue(t.getMessage().contains("serial[2].Dense") && t.getMessage().contains("kernel entry ("),
        t.getMessage());
    try (var listing = Files.list(store)) {
      assertEquals(0, listing.filter(f -> f.getFileName().toString().endsWith(".arrow")).count());
    } catch (java.nio.file.NoSuchFileException none) {
      // no directory, no tile
    }
  }

  private static org.apache.beam.sdk.PipelineResult runInto(Kernels kernels, List<KV<Long, double[]>> x,
      Path out) {
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    examples(p, "X", x).apply(kernels).apply(KernelIO.writeNpy(out.toString()));
    return Fixtures.run(p);
  }

  /** A bad collection fails with a message naming it and the index, and no tile is computed. */
  private void assertRejected(List<KV<Long, double[]>> x1, String expected) {
    Path tiles = dir.resolve("bad-tiles");
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    examples(p, "X1", x1).apply(Kernels.of(Fixtures.MODEL).withTileRows(3))
        .apply(KernelIO.writeArrow(tiles.toString()));
    Exception e = assertThrows(Exception.class, () -> Fixtures.run(p));
    String message = messages(e);
    assertTrue(message.contains(expected), message);
    assertFalse(Files.exists(tiles), "no tile may be written");
  }

  private static String messages(Throwable e) {
    StringBuilder s = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      s.append(t.getMessage()).append(" | ");
    }
    return s.toString();
  }

  private static List<KV<Long, double[]>> ramp(int n, int d) {
    List<KV<Long, double[]>> rows = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      double[] v = new double[d];
      for (int j = 0; j < d; j++) {
        v[j] = 0.1 * i - 0.05 * j;
      }
      rows.add(KV.of((long) i, v));
    }
    return rows;
  }

  @Test
  void aMissingIndexIsNamed() {
    List<KV<Long, double[]>> rows = ramp(8, 3);
    rows.remove(4);
    assertRejected(rows, "x1: example index 4 is missing");
  }

  @Test
  void aMissingBlockOfIndicesIsNamed() {
    List<KV<Long, double[]>> rows = ramp(9, 3);
    rows.subList(3, 6).clear(); // indices 3..5: one whole block of 3 rows
    assertRejected(rows, "x1: example indices 3..5 are missing");
  }

  @Test
  void aRepeatedIndexIsNamed() {
    List<KV<Long, double[]>> rows = ramp(8, 3);
    rows.add(KV.of(5L, new double[] {1, 2, 3}));
    assertRejected(rows, "x1: example index 5 appears more than once");
  }

  @Test
  void featuresOfUnequalLengthAreNamed() {
    List<KV<Long, double[]>> rows = ramp(8, 3);
    rows.set(6, KV.of(6L, new double[] {1, 2}));
    assertRejected(rows, "x1: example 6 has 2 features but example 0 has 3");
  }

  @Test
  void aNegativeIndexIsNamed() {
    List<KV<Long, double[]>> rows = ramp(4, 3);
    rows.add(KV.of(-2L, new double[] {1, 2, 3}));
    assertRejected(rows, "x1: example index -2 is negative");
  }

  @Test
  void anExampleShapeThatDoesNotFitIsRejectedBeforeAnyTile() {
    Path tiles = dir.resolve("bad-tiles");
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    examples(p, "X1", ramp(5, 6)).apply(Kernels.of(Fixtures.MODEL).withExampleShape(4))
        .apply(KernelIO.writeArrow(tiles.toString()));
    Exception e = assertThrows(Exception.class, () -> Fixtures.run(p));
    assertTrue(messages(e).contains("x1: examples have 6 features but the example shape [4] needs 4"),
        messages(e));
    assertFalse(Files.exists(tiles));
  }

  private static final String SEQUENCE_MODEL = """
      {"serial": [{"Conv": {"out_chan": 8, "filter_shape": [2], "padding": "SAME", "W_std": 1.4, "b_std": 0.1}},
                  {"Relu": {}}, {"GlobalSelfAttention": {"n_chan_out": 8, "n_chan_key": 8, "n_chan_val": 4,
                  "n_heads": 2}}, {"Relu": {}}, {"GlobalAvgPool": {}}, {"Dense": {"out_dim": 1}}]}""";

  /** Sequences of {@code lengths} random positions of 2 channels, padded with {@code pad} to 4. */
  private static List<KV<Long, double[]>> padded(int[] lengths, double pad, long seed) {
    java.util.Random r = new java.util.Random(seed);
    List<KV<Long, double[]>> rows = new ArrayList<>();
    for (int i = 0; i < lengths.length; i++) {
      double[] v = new double[8];
      java.util.Arrays.fill(v, pad);
      for (int k = 0; k < lengths[i] * 2; k++) {
        v[k] = r.nextGaussian();
      }
      rows.add(KV.of((long) i, v));
    }
    return rows;
  }

  /**
   * {@code withMaskConstant}: the tiles of padded sequences put together are the in-process masked
   * kernels ({@code KernelFn.withMaskConstant}), and carry the hash of the model and the constant.
   */
  @Test
  void maskedTilesEqualTheInProcessMaskedKernels(TestPipeline p) {
    List<KV<Long, double[]>> x1 = padded(new int[] {4, 2, 3, 1, 4}, -5, 1);
    List<KV<Long, double[]>> x2 = padded(new int[] {1, 3, 2}, -5, 2);
    double[][] want = new double[2][];
    try (NDManager m = Tensors.newManager()) {
      double[] a = x1.stream().flatMapToDouble(kv -> java.util.Arrays.stream(kv.getValue())).toArray();
      double[] b = x2.stream().flatMapToDouble(kv -> java.util.Arrays.stream(kv.getValue())).toArray();
      Kernel k = ModelSpec.parse(SEQUENCE_MODEL).kernelFn().withBackend(Backend.CPU).withMaskConstant(-5).apply(
          m.create(a, new ai.djl.ndarray.types.Shape(5, 4, 2)), m.create(b, new ai.djl.ndarray.types.Shape(3, 4, 2)));
      want[0] = Tensors.toDoubles(k.nngp());
      want[1] = Tensors.toDoubles(k.ntk());
    }
    PCollection<Tile> tiles = examples(p, "X1", x1).apply("Kernels", Kernels.of(SEQUENCE_MODEL).withTileRows(2)
        .withExampleShape(4, 2).withMaskConstant(-5).withBackend(Backend.CPU).withX2(examples(p, "X2", x2)));
    String hash = dev.ntk.kernels.Masking.hash(ModelSpec.hash(ModelSpec.parse(SEQUENCE_MODEL)), -5);
    PAssert.that(tiles).satisfies(all -> {
      for (Tile t : all) {
        assertEquals(hash, t.modelHash());
      }
      double e1 = Fixtures.relativeError(assemble(all, "nngp", 5, 3, false), want[0]);
      double e2 = Fixtures.relativeError(assemble(all, "ntk", 5, 3, false), want[1]);
      assertTrue(e1 <= 1e-12 && e2 <= 1e-12, "relative errors " + e1 + ", " + e2);
      return null;
    });
    p.run().waitUntilFinish();
  }

  /** A fully masked example fails its tile with its index in the collection. */
  @Test
  void aFullyMaskedExampleIsNamed() {
    Path tiles = dir.resolve("bad-tiles");
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    examples(p, "X1", padded(new int[] {4, 2, 3, 0, 4}, -5, 3)).apply(Kernels.of(SEQUENCE_MODEL).withTileRows(2)
        .withExampleShape(4, 2).withMaskConstant(-5)).apply(KernelIO.writeArrow(tiles.toString()));
    Exception e = assertThrows(Exception.class, () -> Fixtures.run(p));
    assertTrue(messages(e).contains("X1, example 3: every entry equals the mask constant -5.0"), messages(e));
  }

  @Test
  void configurationIsImmutableCheckedAndDisplayed() {
    Kernels base = Kernels.of(Fixtures.MODEL);
    Kernels tuned = base.withTileRows(7).withDType(NpyDType.FLOAT32).withGet(Get.NTK);
    DisplayData shown = DisplayData.from(tuned);
    assertTrue(shown.items().stream().anyMatch(i -> i.getKey().equals("tileRows")
        && i.getValue().equals(7L) || i.getKey().equals("tileRows") && i.getValue().equals(7)), shown.toString());
    assertTrue(shown.toString().contains("float32"), shown.toString());
    assertTrue(DisplayData.from(base).toString().contains("256"), "the original is unchanged");
    assertThrows(IllegalArgumentException.class, () -> base.withTileRows(0));
    assertThrows(IllegalArgumentException.class, () -> base.withGet());
    assertThrows(IllegalArgumentException.class, () -> base.withMaskConstant(Double.NaN));
    assertTrue(DisplayData.from(base.withMaskConstant(-1)).toString().contains("maskConstant"));
    assertThrows(IllegalArgumentException.class, () -> Kernels.of("{\"serial\": [{\"Nope\": {}}]}"));
    assertTrue(DisplayData.from(KernelIO.writeNpy("/x/y")).toString().contains("/x/y"));
  }

  /** A graph model is refused where the pipeline is built: collections of examples carry no patterns. */
  @Test
  void graphModelsAreRefused() {
    IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
        () -> Kernels.of("{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"Aggregate\": {}}, "
            + "{\"GlobalAvgPool\": {}}]}"));
    assertTrue(e.getMessage().contains("the model has Aggregate layers"), e.getMessage());
  }
}

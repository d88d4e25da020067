package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.io.Tile;
import dev.ntk.io.TileFiles;
import dev.ntk.io.TileKey;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.Kernel;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;
import org.apache.beam.sdk.metrics.MetricNameFilter;
import org.apache.beam.sdk.metrics.MetricResult;
import org.apache.beam.sdk.metrics.MetricsFilter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The Beam path (tiles computed in DoFns, written as Arrow files, assembled) equals the in-process path. */
class KernelTilesTest {
  @TempDir Path dir;

  @ParameterizedTest(name = "{0} p={1} tile={2} symmetric={3} {4}")
  @CsvSource({
    "DIRECT, 2, 5, true, CPU",   // tile divides N
    "DIRECT, 2, 3, true, CPU",   // tile does not divide N
    "DIRECT, 2, 4, false, CPU",
    "DIRECT, 1, 5, false, CPU",
    "DIRECT, 2, 64, true, CPU",  // one tile larger than N
    "DIRECT, 2, 3, true, TENSORFLOW",
    "FLINK, 2, 3, true, CPU",
    "FLINK, 2, 4, false, CPU",
    "FLINK, 2, 4, false, TENSORFLOW",
  })
  void beamEqualsInProcess(Runners.Kind runner, int parallelism, int tile, boolean symmetric,
      Backend backend) throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 10, 6, 1);
    Path x2 = symmetric ? null : Fixtures.randomNpy(dir, "x2.npy", 7, 6, 2);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.MODEL, x1, x2, tile, NpyDType.FLOAT64, out.resolve("tiles"));
    Pipeline p = Fixtures.pipeline(runner, parallelism);
    p.apply(KernelTiles.of(set).withBackend(backend)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), out));
    PipelineResult result = Fixtures.run(p);

    try (NDManager m = Tensors.newManager()) {
      // In-process on the cpu backend: tiles on the tensorflow backend must agree with it too.
      Kernel expected = ModelSpec.parse(Fixtures.MODEL).kernelFn().withBackend(Backend.CPU)
          .apply(Fixtures.load(m, x1), x2 == null ? null : Fixtures.load(m, x2));
      for (Get g : Get.values()) {
        NpyArray actual = Npy.read(out.resolve(g.key() + ".npy"));
        assertArrayEquals(new long[] {10, symmetric ? 10 : 7}, actual.shape());
        double err = Fixtures.relativeError(actual.data(), Tensors.toDoubles(expected.get(g)));
        assertTrue(err <= 1e-12, g + " relative error " + err);
      }
    }
    if (runner == Runners.Kind.DIRECT) {
      assertEquals(set.plan().size(), counter(result, KernelTiles.TILES_COMPUTED));
    }
    try (var files = Files.list(Path.of(set.directory()))) {
      assertEquals(set.plan().size(), files.filter(f -> f.toString().endsWith(".arrow")).count(),
          "one tile file per planned tile and no temporary files left");
    }
  }

  @Test
  void rerunSkipsFinishedTilesAndRecomputesStaleOnes() throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 9, 4, 3);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.MODEL, x1, null, 4, NpyDType.FLOAT64, out.resolve("tiles"));
    runKernels(set, out);
    byte[] first = Files.readAllBytes(out.resolve("ntk.npy"));

    // A tile left by another model: same name, different hash.
    TileKey key = set.plan().get(1);
    Tile good = TileFiles.read(set.file(key));
    Map<String, double[]> wrong = new TreeMap<>();
    good.kernels().forEach((name, v) -> wrong.put(name, new double[v.length]));
    TileFiles.write(set.file(key).getParent(),
        new Tile(key, "another-model", good.inputsHash(), good.dtype(), new TreeMap<>(wrong)));

    PipelineResult again = runKernels(set, out);
    assertEquals(1, counter(again, KernelTiles.TILES_COMPUTED));
    assertEquals(set.plan().size() - 1, counter(again, KernelTiles.TILES_SKIPPED));
    assertArrayEquals(first, Files.readAllBytes(out.resolve("ntk.npy")));
  }

  /** A tile with one value byte flipped on disk is recomputed, counted, and the kernel is right. */
  @Test
  void aTileWithAFlippedByteIsRecomputed() throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 9, 4, 3);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.MODEL, x1, null, 4, NpyDType.FLOAT64, out.resolve("tiles"));
    runKernels(set, out);
    byte[] first = Files.readAllBytes(out.resolve("ntk.npy"));
    Path file = set.file(set.plan().get(0));
    byte[] bytes = Files.readAllBytes(file);
    // Flip a bit of the exponent of entry (0, 0), found by its bytes (0.928 would read 2.7e-39).
    double v = TileFiles.read(file).kernels().get("nngp")[0];
    byte[] pattern = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putDouble(v).array();
    int at = -1;
    for (int i = 0; i + 8 <= bytes.length && at < 0; i++) {
      if (java.util.Arrays.equals(bytes, i, i + 8, pattern, 0, 8)) {
        at = i;
      }
    }
    assertTrue(at >= 0);
    bytes[at + 7] ^= 0x40;
    Files.write(file, bytes);

    PipelineResult again = runKernels(set, out);
    assertEquals(1, counter(again, KernelTiles.TILES_DAMAGED));
    assertEquals(1, counter(again, KernelTiles.TILES_COMPUTED));
    assertEquals(set.plan().size() - 1, counter(again, KernelTiles.TILES_SKIPPED));
    assertArrayEquals(first, Files.readAllBytes(out.resolve("ntk.npy")));
  }

  /** Kernels of different models in one store live in directories of their own. */
  @Test
  void setsOfDifferentModelsKeepTheirOwnDirectories() throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 5, 4, 3);
    Path store = dir.resolve("tiles");
    TileSet a = TileSet.create(Fixtures.MODEL, x1, null, 4, NpyDType.FLOAT64, store);
    TileSet b = TileSet.create(Fixtures.MODEL.replace("1.5", "1.25"), x1, null, 4, NpyDType.FLOAT64, store);
    TileSet c = TileSet.create(Fixtures.MODEL, x1, null, 4, NpyDType.FLOAT32, store);
    assertEquals(3, java.util.Set.of(a.directory(), b.directory(), c.directory()).size());
    assertEquals(a.directory(), TileSet.create(Fixtures.MODEL, x1, null, 4, NpyDType.FLOAT64, store).directory());
    assertTrue(Files.isRegularFile(Path.of(a.directory(), TileSet.DESCRIPTION)));
  }

  /**
   * The graph patterns of a graph model's inputs are part of its tile set's identity: other patterns
   * of the same inputs make another inputs hash (each input with its pattern, {@code x&a}) and another
   * directory; patterns that are not one per input row, or of x2 without x2, are refused.
   */
  @Test
  void graphPatternsJoinTheSetsIdentity() throws IOException {
    dev.ntk.kernels.Model graph = dev.ntk.kernels.Model.parse(
        "{\"serial\": [{\"Dense\": {\"out_dim\": 4}}, {\"Aggregate\": {}}, {\"GlobalAvgPool\": {}}]}");
    String x1 = array("x1.npy", 5, 3, 2);
    String x2 = array("x2.npy", 2, 3, 2);
    String a1 = array("a1.npy", 5, 3, 3);
    String b1 = array("b1.npy", 5, 3, 3);
    String a2 = array("a2.npy", 2, 3, 3);
    String store = dir.resolve("tiles").toString();
    NpyDType f64 = NpyDType.FLOAT64;
    TileSet a = TileSet.create(graph, x1, null, 4, f64, store, null, a1, null);
    TileSet b = TileSet.create(graph, x1, null, 4, f64, store, null, b1, null);
    TileSet plain = TileSet.create(graph, x1, null, 4, f64, store);
    assertEquals(3, java.util.Set.of(a.directory(), b.directory(), plain.directory()).size());
    assertEquals(a.directory(), TileSet.create(graph, x1, null, 4, f64, store, null, a1, null).directory());
    assertEquals(plain.inputsHash() + "&" + dev.ntk.io.FileHashes.sha256(Path.of(a1)), a.inputsHash());
    TileSet between = TileSet.create(graph, x1, x2, 4, f64, store, null, a1, a2);
    assertEquals(2, InferenceChecks.inputs(between.inputsHash()).length);
    assertEquals(a.inputsHash(), InferenceChecks.inputs(between.inputsHash())[0]);
    IllegalArgumentException rows = assertThrows(IllegalArgumentException.class,
        () -> TileSet.create(graph, x1, null, 4, f64, store, null, a2, null));
    assertTrue(rows.getMessage().contains("one per input row (5), got shape [2, 3, 3]"), rows.getMessage());
    IllegalArgumentException alone = assertThrows(IllegalArgumentException.class,
        () -> TileSet.create(graph, x1, null, 4, f64, store, null, a1, a2));
    assertTrue(alone.getMessage().contains("of x2 is given without x2"), alone.getMessage());
  }

  /** A random {@code (n, a, b)} array in {@code dir/name}, as a path. */
  private String array(String name, int n, int a, int b) throws IOException {
    java.util.Random r = new java.util.Random(name.hashCode());
    double[] v = new double[n * a * b];
    for (int i = 0; i < v.length; i++) {
      v[i] = r.nextGaussian();
    }
    Path file = dir.resolve(name);
    Npy.write(file, new NpyArray(new long[] {n, a, b}, NpyDType.FLOAT64, v));
    return file.toString();
  }

  /** An infinite kernel entry stops the run with the entry and the layer where it broke. */
  @Test
  void aNonFiniteKernelStopsTheRunNamingTheLayer() throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 5, 4, 3);
    String model = """
        {"serial": [{"Dense": {"out_dim": 8, "W_std": 1.5}}, {"Relu": {}},
                    {"Dense": {"out_dim": 1, "W_std": 1e200}}]}""";
    TileSet set = TileSet.create(model, x1, null, 4, NpyDType.FLOAT64, dir.resolve("tiles"));
    Exception e = org.junit.jupiter.api.Assertions.assertThrows(Exception.class,
        () -> runKernels(set, dir.resolve("out")));
    Throwable t = e;
    while (t != null && !(t instanceof NonFiniteKernelException)) {
      t = t.getCause();
    }
    assertTrue(t != null, "expected a NonFiniteKernelException, got " + e);
    assertTrue(t.getMessage().contains("serial[2].Dense") && t.getMessage().contains("float64"),
        t.getMessage());
  }

  /**
   * Kernels from an independent implementation (see {@code resources/golden/README}): a fully
   * connected model and convolutional ones that pin down SAME and CIRCULAR padding, strides,
   * AvgPool and SumPool, Flatten and GlobalAvgPool. The Beam path (tiles of 3 rows) and the
   * in-process path on both backends agree with them to 1e-12.
   */
  @ParameterizedTest
  @ValueSource(strings = {"fc_relu_erf", "cnn1d_sumpool_flatten", "cnn2d_circular_avgpool_gap",
      "cnn2d_same_stride2_valid"})
  void goldenKernelsFromAnIndependentImplementation(String name) throws IOException {
    Path golden = Path.of("src/test/resources/golden").resolve(name);
    String model = Files.readString(golden.resolve("model.json"));
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(model, golden.resolve("x1.npy"), golden.resolve("x2.npy"), 3,
        NpyDType.FLOAT64, out.resolve("tiles"));
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(KernelTiles.of(set)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), out));
    Fixtures.run(p);
    try (NDManager m = Tensors.newManager()) {
      for (Backend backend : List.of(Backend.CPU, Backend.TENSORFLOW)) {
        Kernel k = ModelSpec.parse(model).kernelFn().withBackend(backend)
            .apply(Fixtures.load(m, golden.resolve("x1.npy")), Fixtures.load(m, golden.resolve("x2.npy")));
        for (Get g : Get.values()) {
          double[] expected = Npy.read(golden.resolve(g.key() + ".npy")).data();
          double err = Fixtures.relativeError(Tensors.toDoubles(k.get(g)), expected);
          assertTrue(err <= 1e-12, name + " " + g + " in-process on " + backend + ": relative error " + err);
        }
      }
    }
    for (Get g : Get.values()) {
      double[] expected = Npy.read(golden.resolve(g.key() + ".npy")).data();
      double err = Fixtures.relativeError(Npy.read(out.resolve(g.key() + ".npy")).data(), expected);
      assertTrue(err <= 1e-12, name + " " + g + " through Beam: relative error against golden " + err);
    }
  }

  @Test
  void float32TilesAgreeToSinglePrecision() throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 8, 5, 4);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.MODEL, x1, null, 3, NpyDType.FLOAT32, out.resolve("tiles"));
    runKernels(set, out);
    NpyArray ntk = Npy.read(out.resolve("ntk.npy"));
    assertEquals(NpyDType.FLOAT32, ntk.dtype());
    try (NDManager m = Tensors.newManager()) {
      double[] expected = Tensors.toDoubles(ModelSpec.parse(Fixtures.MODEL).kernelFn()
          .apply(Fixtures.load(m, x1)).ntk());
      double err = Fixtures.relativeError(ntk.data(), expected);
      assertTrue(err <= 1e-4, "relative error " + err);
    }
  }

  private static PipelineResult runKernels(TileSet set, Path out) {
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(KernelTiles.of(set)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), out));
    return Fixtures.run(p);
  }

  static long counter(PipelineResult result, String name) {
    long total = 0;
    for (MetricResult<Long> c : result.metrics().queryMetrics(MetricsFilter.builder()
        .addNameFilter(MetricNameFilter.named(KernelTiles.class, name)).build()).getCounters()) {
      total += c.getAttempted();
    }
    return total;
  }
}

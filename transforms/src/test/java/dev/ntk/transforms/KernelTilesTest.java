package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
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

/** The Beam path (tiles computed in DoFns, written as Arrow files, assembled) equals the in-process path. */
class KernelTilesTest {
  @TempDir Path dir;

  @ParameterizedTest(name = "{0} p={1} tile={2} symmetric={3}")
  @CsvSource({
    "DIRECT, 2, 5, true",   // tile divides N
    "DIRECT, 2, 3, true",   // tile does not divide N
    "DIRECT, 2, 4, false",
    "DIRECT, 1, 5, false",
    "DIRECT, 2, 64, true",  // one tile larger than N
    "FLINK, 2, 3, true",
    "FLINK, 2, 4, false",
  })
  void beamEqualsInProcess(Runners.Kind runner, int parallelism, int tile, boolean symmetric) throws IOException {
    Path x1 = Fixtures.randomNpy(dir, "x1.npy", 10, 6, 1);
    Path x2 = symmetric ? null : Fixtures.randomNpy(dir, "x2.npy", 7, 6, 2);
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(Fixtures.MODEL, x1, x2, tile, NpyDType.FLOAT64, out.resolve("tiles"));
    Pipeline p = Fixtures.pipeline(runner, parallelism);
    p.apply(KernelTiles.of(set)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), out));
    PipelineResult result = Fixtures.run(p);

    try (NDManager m = Tensors.newManager()) {
      Kernel expected = ModelSpec.parse(Fixtures.MODEL).kernelFn()
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
    try (var files = Files.list(out.resolve("tiles"))) {
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

  @Test
  void goldenKernelsFromAnIndependentImplementation() throws IOException {
    Path golden = Path.of("src/test/resources/golden/fc_relu_erf");
    String model = Files.readString(golden.resolve("model.json"));
    Path out = dir.resolve("out");
    TileSet set = TileSet.create(model, golden.resolve("x1.npy"), golden.resolve("x2.npy"), 3,
        NpyDType.FLOAT64, out.resolve("tiles"));
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(KernelTiles.of(set)).apply(WriteKernels.of(set, List.of(Get.NNGP, Get.NTK), out));
    Fixtures.run(p);
    for (Get g : Get.values()) {
      double[] expected = Npy.read(golden.resolve(g.key() + ".npy")).data();
      double err = Fixtures.relativeError(Npy.read(out.resolve(g.key() + ".npy")).data(), expected);
      assertTrue(err <= 1e-12, g + " relative error against golden " + err);
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

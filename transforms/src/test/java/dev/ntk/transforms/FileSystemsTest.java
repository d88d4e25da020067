package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
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
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.PipelineResult;
import org.apache.beam.sdk.io.FileSystems;
import org.apache.beam.sdk.metrics.MetricNameFilter;
import org.apache.beam.sdk.metrics.MetricResult;
import org.apache.beam.sdk.metrics.MetricsFilter;
import org.apache.beam.sdk.options.PipelineOptionsFactory;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inputs, tiles, commits and outputs through Beam's {@code FileSystems} on a file system that is
 * not the local one ({@link MemoryFileSystem}, {@code mem://}): the kernels equal the in-process
 * ones, nothing is written locally, and a rerun reuses the tiles it finds there.
 */
class FileSystemsTest {
  @TempDir Path dir;

  @BeforeEach
  void register() {
    FileSystems.setDefaultPipelineOptions(PipelineOptionsFactory.create());
    MemoryFileSystem.FILES.clear();
  }

  private String upload(Path local, String name) throws IOException {
    String uri = "mem://bucket/" + name;
    MemoryFileSystem.FILES.put(uri, Files.readAllBytes(local));
    Files.delete(local);
    return uri;
  }

  private NpyArray download(String uri) throws IOException {
    byte[] bytes = MemoryFileSystem.FILES.get(uri);
    assertTrue(bytes != null, uri + " was not written; files: " + MemoryFileSystem.FILES.keySet());
    Path local = Files.createTempFile(dir, "download", ".npy");
    Files.write(local, bytes);
    return Npy.read(local);
  }

  private static double[] inProcess(NpyArray x1, NpyArray x2, Get g) {
    try (NDManager m = Tensors.newManager()) {
      var type = ai.djl.ndarray.types.DataType.FLOAT64;
      Kernel k = ModelSpec.parse(Fixtures.MODEL).kernelFn().withBackend(Backend.CPU).apply(
          Tensors.create(m, x1.data(), new ai.djl.ndarray.types.Shape(x1.shape()), type),
          x2 == null ? null : Tensors.create(m, x2.data(), new ai.djl.ndarray.types.Shape(x2.shape()), type));
      return Tensors.toDoubles(k.get(g));
    }
  }

  private static long counter(PipelineResult result, String name) {
    long sum = 0;
    for (MetricResult<Long> c : result.metrics().queryMetrics(MetricsFilter.builder()
        .addNameFilter(MetricNameFilter.named(KernelTiles.class, name)).build()).getCounters()) {
      sum += c.getAttempted();
    }
    return sum;
  }

  @Test
  void theFilePathRunsOnANonLocalFileSystem() throws IOException {
    NpyArray a = Npy.read(Fixtures.randomNpy(dir, "x1.npy", 10, 6, 1));
    NpyArray b = Npy.read(Fixtures.randomNpy(dir, "x2.npy", 7, 6, 2));
    String x1 = upload(dir.resolve("x1.npy"), "in/x1.npy");
    String x2 = upload(dir.resolve("x2.npy"), "in/x2.npy");
    long readBefore = MemoryFileSystem.BYTES_READ.get();

    TileSet set = TileSet.create(Fixtures.MODEL, x1, x2, 4, NpyDType.FLOAT64, "mem://bucket/out/tiles");
    assertTrue(set.directory().startsWith("mem://bucket/out/tiles/m"), set.directory());
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(KernelTiles.of(set)).apply(WriteKernels.to(set, List.of(Get.NNGP, Get.NTK), "mem://bucket/out"));
    PipelineResult first = Fixtures.run(p);
    assertEquals(set.plan().size(), counter(first, KernelTiles.TILES_COMPUTED));

    for (Get g : Get.values()) {
      NpyArray k = download("mem://bucket/out/" + g.key() + ".npy");
      double err = Fixtures.relativeError(k.data(), inProcess(a, b, g));
      assertTrue(err <= 1e-12, g + " relative error " + err);
    }
    long tiles = MemoryFileSystem.FILES.keySet().stream()
        .filter(f -> f.startsWith(set.directory() + "/tile-") && f.endsWith(".arrow")).count();
    assertEquals(set.plan().size(), tiles);
    assertTrue(MemoryFileSystem.FILES.containsKey(set.directory() + "/" + TileSet.DESCRIPTION));
    assertFalse(MemoryFileSystem.FILES.keySet().stream().anyMatch(f -> f.endsWith(".tmp")),
        "no temporary file is left: " + MemoryFileSystem.FILES.keySet());
    assertTrue(MemoryFileSystem.BYTES_READ.get() > readBefore, "inputs and tiles were read through it");
    try (var local = Files.list(dir)) {
      assertEquals(List.of(), local.filter(f -> !f.getFileName().toString().startsWith("download")).toList(),
          "nothing is written to the local file system");
    }

    // A rerun finds every tile there and computes none.
    Pipeline again = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    again.apply(KernelTiles.of(set)).apply(WriteKernels.to(set, List.of(Get.NTK), "mem://bucket/again"));
    PipelineResult second = Fixtures.run(again);
    assertEquals(0, counter(second, KernelTiles.TILES_COMPUTED));
    assertEquals(set.plan().size(), counter(second, KernelTiles.TILES_SKIPPED));
    double err = Fixtures.relativeError(download("mem://bucket/again/ntk.npy").data(), inProcess(a, b, Get.NTK));
    assertTrue(err <= 1e-12, "rerun relative error " + err);
  }

  @Test
  void theBeamNativePathWritesToANonLocalFileSystem() throws IOException {
    NpyArray x = Npy.read(Fixtures.randomNpy(dir, "x.npy", 9, 5, 3));
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    KernelsTest.examples(p, "X", x).apply(Kernels.of(Fixtures.MODEL).withTileRows(4))
        .apply(KernelIO.writeNpy("mem://bucket/native"));
    Fixtures.run(p);
    for (Get g : Get.values()) {
      double err = Fixtures.relativeError(download("mem://bucket/native/" + g.key() + ".npy").data(),
          inProcess(x, null, g));
      assertTrue(err <= 1e-12, g + " relative error " + err);
    }
    assertTrue(MemoryFileSystem.FILES.keySet().stream()
        .anyMatch(f -> f.startsWith("mem://bucket/native/tiles/tile-r0-c4.arrow")));

    Pipeline read = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    read.apply(KernelIO.readTiles("mem://bucket/native/tiles"))
        .apply(KernelIO.writeNpy("mem://bucket/copy").withGet(Get.NNGP));
    Fixtures.run(read);
    assertEquals(List.of(download("mem://bucket/native/nngp.npy")),
        List.of(download("mem://bucket/copy/nngp.npy")));
  }
}

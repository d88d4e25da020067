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
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.engine.Backend;
import dev.ntk.kernels.predict.Loss;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import dev.ntk.kernels.predict.TrainedOutputs;
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
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PCollection;
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
    MemoryFileSystem.RENAMED_TO.clear();
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

  // ---- predictions ------------------------------------------------------------------------------

  private static ai.djl.ndarray.NDArray array(NDManager m, NpyArray a) {
    return Tensors.create(m, a.data(), new ai.djl.ndarray.types.Shape(a.shape()),
        ai.djl.ndarray.types.DataType.FLOAT64);
  }

  private static void assertClose(double[] expected, double[] actual, double tol, String what) {
    double err = Fixtures.relativeError(actual, expected);
    assertTrue(err <= tol, what + " relative error " + err);
  }

  /**
   * The factor files {@code names} went through the non-local file system, and nothing is left
   * behind: no temporary file, no factor file, nothing on the local disk.
   */
  private void assertClean(String factorDir, String... names) throws IOException {
    for (String name : names) {
      assertTrue(MemoryFileSystem.RENAMED_TO.contains(factorDir + name), factorDir + name + " was not written; "
          + "written: " + MemoryFileSystem.RENAMED_TO);
    }
    assertFalse(MemoryFileSystem.FILES.keySet().stream().anyMatch(f -> f.endsWith(".tmp")
        || f.contains("/factor/") || f.contains("/.factor/")), "left behind: " + MemoryFileSystem.FILES.keySet());
    try (var local = Files.list(dir)) {
      assertEquals(List.of(), local.filter(f -> !f.getFileName().toString().startsWith("download")).toList(),
          "nothing is written to the local file system");
    }
  }

  @Test
  void thePredictionFilePathRunsOnANonLocalFileSystem() throws IOException {
    NpyArray a = Npy.read(Fixtures.randomNpy(dir, "x_train.npy", 10, 3, 1));
    NpyArray y = Npy.read(Fixtures.randomNpy(dir, "y_train.npy", 10, 2, 2));
    NpyArray t = Npy.read(Fixtures.randomNpy(dir, "x_test.npy", 7, 3, 3));
    String xTrain = upload(dir.resolve("x_train.npy"), "in/x_train.npy");
    String yTrain = upload(dir.resolve("y_train.npy"), "in/y_train.npy");
    String xTest = upload(dir.resolve("x_test.npy"), "in/x_test.npy");
    String store = "mem://bucket/run/tiles";
    NpyDType f64 = NpyDType.FLOAT64;
    TileSet dd = TileSet.create(Fixtures.MODEL, xTrain, null, 4, f64, store);
    TileSet td = TileSet.create(Fixtures.MODEL, xTest, xTrain, 4, f64, store);
    TileSet tt = TileSet.create(Fixtures.MODEL, xTest, null, 4, f64, store);
    double[] times = {1.5, Double.POSITIVE_INFINITY};
    PredictSettings settings = new PredictSettings(Get.NTK, 1e-3, times, 0.5, "mse", 0, null, null, true);
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(GpInference.to(dd, td, tt, yTrain, settings, "mem://bucket/run/out"));
    Fixtures.run(p);

    NpyArray mean = download("mem://bucket/run/out/mean.npy");
    NpyArray cov = download("mem://bucket/run/out/cov.npy");
    double nll = download("mem://bucket/run/out/nll.npy").data()[0];
    try (NDManager m = Tensors.newManager()) {
      KernelFn kf = ModelSpec.parse(Fixtures.MODEL).kernelFn();
      List<Prediction> expected = Predict.gradientDescentMseEnsemble(kf, array(m, a), array(m, y), array(m, t),
          Get.NTK, times, 0.5, 1e-3, true);
      for (int i = 0; i < times.length; i++) {
        assertClose(Tensors.toDoubles(expected.get(i).mean()),
            java.util.Arrays.copyOfRange(mean.data(), i * 14, (i + 1) * 14), 1e-12, "mean t=" + times[i]);
        assertClose(Tensors.toDoubles(expected.get(i).cov()),
            java.util.Arrays.copyOfRange(cov.data(), i * 49, (i + 1) * 49), 1e-12, "cov t=" + times[i]);
      }
      double expectedNll = Predict.nll(kf.apply(array(m, a)).ntk(), array(m, y), 1e-3);
      assertEquals(expectedNll, nll, 1e-12 * Math.abs(expectedNll));
    }
    assertClean("mem://bucket/run/tiles/factor/", "eigenvalues.f64", "eigenvectors.f64", "residual.f64",
        "projected.f64");
  }

  private static PCollection<KV<Long, double[]>> examples(Pipeline p, String name, NpyArray x) {
    return KernelsTest.examples(p, name, x);
  }

  @Test
  void theTilesPathPredictsOnANonLocalFileSystem() throws IOException {
    NpyArray a = Npy.read(Fixtures.randomNpy(dir, "x_train.npy", 9, 4, 4));
    NpyArray y = Npy.read(Fixtures.randomNpy(dir, "y_train.npy", 9, 1, 5));
    NpyArray t = Npy.read(Fixtures.randomNpy(dir, "x_test.npy", 6, 4, 6));
    Files.delete(dir.resolve("x_train.npy"));
    Files.delete(dir.resolve("x_test.npy"));
    String yTrain = upload(dir.resolve("y_train.npy"), "in/y_train.npy");
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    PCollection<KV<Long, double[]>> train = examples(p, "XTrain", a);
    PCollection<KV<Long, double[]>> test = examples(p, "XTest", t);
    Kernels k = Kernels.of(Fixtures.MODEL).withTileRows(4);
    test.apply("TestTrain", k.withX2(train)).apply("Predict",
        GpInference.fromTiles(train.apply("TrainTrain", k), yTrain, "mem://bucket/pred")
            .withTestTest(test.apply("TestTest", k)));
    Fixtures.run(p);
    try (NDManager m = Tensors.newManager()) {
      Prediction expected = Predict.gpInference(ModelSpec.parse(Fixtures.MODEL).kernelFn(), array(m, a),
          array(m, y), array(m, t), Get.NTK, 1e-4, true);
      assertClose(Tensors.toDoubles(expected.mean()), download("mem://bucket/pred/mean.npy").data(), 1e-12, "mean");
      assertClose(Tensors.toDoubles(expected.cov()), download("mem://bucket/pred/cov.npy").data(), 1e-12, "cov");
    }
    assertClean("mem://bucket/pred/.factor/", "cholesky.f64", "alpha.f64", "nngp.f64");
  }

  /** Initial outputs and the ODE's train kernel (a factor file) through the non-local file system too. */
  @Test
  void oneNetworkFromInitialOutputsOnANonLocalFileSystem() throws IOException {
    NpyArray a = Npy.read(Fixtures.randomNpy(dir, "x_train.npy", 8, 3, 7));
    NpyArray y = Npy.read(Fixtures.randomNpy(dir, "y_train.npy", 8, 2, 8));
    NpyArray t = Npy.read(Fixtures.randomNpy(dir, "x_test.npy", 5, 3, 9));
    NpyArray f0 = Npy.read(Fixtures.randomNpy(dir, "fx_train_0.npy", 8, 2, 10));
    NpyArray g0 = Npy.read(Fixtures.randomNpy(dir, "fx_test_0.npy", 5, 2, 11));
    Files.delete(dir.resolve("x_train.npy"));
    Files.delete(dir.resolve("x_test.npy"));
    String yTrain = upload(dir.resolve("y_train.npy"), "in/y_train.npy");
    String fxTrain0 = upload(dir.resolve("fx_train_0.npy"), "in/fx_train_0.npy");
    String fxTest0 = upload(dir.resolve("fx_test_0.npy"), "in/fx_test_0.npy");
    double[] times = {0, 2, 30};
    PredictSettings settings = new PredictSettings(Get.NTK, 0.0, times, 1.5, "cross-entropy", 0, fxTrain0,
        fxTest0, false);
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    PCollection<KV<Long, double[]>> train = examples(p, "XTrain", a);
    Kernels k = Kernels.of(Fixtures.MODEL).withTileRows(3).withGet(Get.NTK);
    examples(p, "XTest", t).apply("TestTrain", k.withX2(train)).apply("Predict",
        GpInference.fromTiles(train.apply("TrainTrain", k), yTrain, "mem://bucket/ode")
            .withSettings(settings).withFactorDirectory("mem://bucket/scratch/factor"));
    Fixtures.run(p);
    try (NDManager m = Tensors.newManager()) {
      KernelFn kf = ModelSpec.parse(Fixtures.MODEL).kernelFn();
      List<TrainedOutputs> expected = Predict.gradientDescent(Loss.of("cross-entropy"),
          kf.apply(array(m, a)).ntk(), array(m, y), kf.apply(array(m, t), array(m, a)).ntk(),
          array(m, f0), array(m, g0), times, 1.5, 0);
      NpyArray mean = download("mem://bucket/ode/mean.npy");
      assertEquals(List.of(3L, 5L, 2L), java.util.Arrays.stream(mean.shape()).boxed().toList());
      for (int i = 0; i < times.length; i++) {
        assertClose(Tensors.toDoubles(expected.get(i).test()),
            java.util.Arrays.copyOfRange(mean.data(), i * 10, (i + 1) * 10), 1e-9, "t=" + times[i]);
      }
    }
    assertClean("mem://bucket/scratch/factor/", "kernel.f64");
  }
}

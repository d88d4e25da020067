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
import dev.ntk.kernels.KernelFn;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.beam.sdk.Pipeline;
import org.apache.beam.sdk.testing.PAssert;
import org.apache.beam.sdk.testing.TestPipeline;
import org.apache.beam.sdk.transforms.Filter;
import org.apache.beam.sdk.transforms.Flatten;
import org.apache.beam.sdk.transforms.display.DisplayData;
import org.apache.beam.sdk.values.KV;
import org.apache.beam.sdk.values.PCollection;
import org.apache.beam.sdk.values.PCollectionList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link GpInference#fromTiles}: inference from the tiles of {@link Kernels} gives what the file
 * path ({@link GpInference} over {@link TileSet}s) and the in-process {@link Predict} give, and
 * tiles that do not fit together fail the pipeline with a message naming them, writing nothing.
 */
@ExtendWith(TestPipelineExtension.class)
class GpInferenceFromTilesTest {
  private static final double TOL = 1e-12;
  private static final double INF = Double.POSITIVE_INFINITY;

  @TempDir Path dir;

  private Path xTrain;
  private Path yTrain;
  private Path xTest;

  private void data(int n, int m, int outputs) throws IOException {
    xTrain = Fixtures.randomNpy(dir, "x_train.npy", n, 3, 10);
    yTrain = Fixtures.randomNpy(dir, "y_train.npy", n, outputs, 11);
    xTest = Fixtures.randomNpy(dir, "x_test.npy", m, 3, 12);
  }

  private static PCollection<KV<Long, double[]>> examples(Pipeline p, String name, Path x) throws IOException {
    return KernelsTest.examples(p, name, Npy.read(x));
  }

  /** The three kernels' tiles of the data, as {@link Kernels} computes them. */
  private record Tiles(PCollection<Tile> trainTrain, PCollection<Tile> testTrain, PCollection<Tile> testTest) {}

  private Tiles tiles(Pipeline p, int tileRows) throws IOException {
    PCollection<KV<Long, double[]>> train = examples(p, "XTrain", xTrain);
    PCollection<KV<Long, double[]>> test = examples(p, "XTest", xTest);
    Kernels k = Kernels.of(Fixtures.MODEL).withTileRows(tileRows);
    return new Tiles(train.apply("TrainTrain", k), test.apply("TestTrain", k.withX2(train)),
        test.apply("TestTest", k));
  }

  private static double maxRelative(double[] actual, double[] expected) {
    return Fixtures.relativeError(actual, expected);
  }

  /** Beam-native path = file path = in-process path, exact inference with the covariance. */
  @ParameterizedTest(name = "get={0} tile={1} outputs={2}")
  @CsvSource({"NTK, 4, 2", "NNGP, 3, 1", "NTK, 64, 1"})
  void fromTilesEqualsTheFilePathAndInProcess(Get get, int tile, int outputs, TestPipeline p) throws IOException {
    data(11, 9, outputs);
    double diagReg = 1e-3;
    Path files = dir.resolve("files");
    Path fromTiles = dir.resolve("tiles-out");
    NpyDType f64 = NpyDType.FLOAT64;
    TileSet dd = TileSet.create(Fixtures.MODEL, xTrain, null, tile, f64, files.resolve("tiles"));
    TileSet td = TileSet.create(Fixtures.MODEL, xTest, xTrain, tile, f64, files.resolve("tiles"));
    TileSet tt = TileSet.create(Fixtures.MODEL, xTest, null, tile, f64, files.resolve("tiles"));
    p.apply("FilePath", GpInference.of(dd, td, tt, yTrain, get, diagReg, files));

    Tiles t = tiles(p, tile);
    PCollection<String> written = t.testTrain().apply("Predict",
        GpInference.fromTiles(t.trainTrain(), yTrain.toString(), fromTiles.toString())
            .withGet(get).withDiagReg(diagReg).withTestTest(t.testTest()));
    PAssert.that(written).containsInAnyOrder(fromTiles.resolve("mean.npy").toString(),
        fromTiles.resolve("cov.npy").toString());
    p.run().waitUntilFinish();

    try (NDManager m = Tensors.newManager()) {
      Prediction expected = Predict.gpInference(ModelSpec.parse(Fixtures.MODEL).kernelFn(),
          Fixtures.load(m, xTrain), Fixtures.load(m, yTrain), Fixtures.load(m, xTest), get, diagReg, true);
      for (String name : List.of("mean.npy", "cov.npy")) {
        NpyArray a = Npy.read(fromTiles.resolve(name));
        NpyArray b = Npy.read(files.resolve(name));
        assertArrayEquals(b.shape(), a.shape(), name);
        assertArrayEquals(name.equals("mean.npy") ? new long[] {9, outputs} : new long[] {9, 9}, a.shape());
        double vsFiles = maxRelative(a.data(), b.data());
        double vsInProcess = maxRelative(a.data(), Tensors.toDoubles(
            name.equals("mean.npy") ? expected.mean() : expected.cov()));
        assertTrue(vsFiles <= TOL, name + ": tiles vs files, relative error " + vsFiles);
        assertTrue(vsInProcess <= TOL, name + ": tiles vs in-process, relative error " + vsInProcess);
      }
    }
    assertFalse(Files.exists(fromTiles.resolve(".factor")), "the factor files are removed");
  }

  /** Several training times (eigendecomposition), the NLL, on Direct and Flink. */
  @ParameterizedTest(name = "{0} get={1}")
  @CsvSource({"DIRECT, NTK", "DIRECT, NNGP", "FLINK, NTK"})
  void ensembleAtSeveralTimesEqualsInProcess(Runners.Kind runner, Get get) throws IOException {
    data(10, 7, 2);
    double[] times = {0.5, 20, INF};
    PredictSettings settings = new PredictSettings(get, 1e-3, times, 0.5, "mse", 0, null, null, true);
    Path out = dir.resolve("out");
    Pipeline p = Fixtures.pipeline(runner, 2);
    Tiles t = tiles(p, 4);
    t.testTrain().apply("Predict", GpInference.fromTiles(t.trainTrain(), yTrain.toString(), out.toString())
        .withSettings(settings).withTestTest(t.testTest()));
    Fixtures.run(p);
    try (NDManager m = Tensors.newManager()) {
      KernelFn kf = ModelSpec.parse(Fixtures.MODEL).kernelFn();
      List<Prediction> expected = Predict.gradientDescentMseEnsemble(kf, Fixtures.load(m, xTrain),
          Fixtures.load(m, yTrain), Fixtures.load(m, xTest), get, times, 0.5, 1e-3, true);
      NpyArray mean = Npy.read(out.resolve("mean.npy"));
      NpyArray cov = Npy.read(out.resolve("cov.npy"));
      assertArrayEquals(new long[] {3, 7, 2}, mean.shape());
      assertArrayEquals(new long[] {3, 7, 7}, cov.shape());
      for (int i = 0; i < times.length; i++) {
        double e1 = maxRelative(Arrays.copyOfRange(mean.data(), i * 14, (i + 1) * 14),
            Tensors.toDoubles(expected.get(i).mean()));
        double e2 = maxRelative(Arrays.copyOfRange(cov.data(), i * 49, (i + 1) * 49),
            Tensors.toDoubles(expected.get(i).cov()));
        assertTrue(e1 <= TOL && e2 <= TOL, "t=" + times[i] + ": mean " + e1 + ", cov " + e2);
      }
      double nll = Predict.nll(kf.apply(Fixtures.load(m, xTrain)).get(get), Fixtures.load(m, yTrain), 1e-3);
      assertEquals(nll, Npy.read(out.resolve("nll.npy")).data()[0], TOL * Math.abs(nll));
    }
  }

  @Test
  void meanOnlyWithoutTestTestTilesAndFloat32Outputs(TestPipeline p) throws IOException {
    data(6, 5, 1);
    Path out = dir.resolve("out");
    PCollection<KV<Long, double[]>> train = examples(p, "XTrain", xTrain);
    Kernels k = Kernels.of(Fixtures.MODEL).withTileRows(4).withDType(NpyDType.FLOAT32).withGet(Get.NNGP);
    PCollection<Tile> dd = train.apply("TrainTrain", k);
    PCollection<Tile> td = examples(p, "XTest", xTest).apply("TestTrain", k.withX2(train));
    PAssert.that(td.apply(GpInference.fromTiles(dd, yTrain.toString(), out.toString()).withGet(Get.NNGP)))
        .containsInAnyOrder(out.resolve("mean.npy").toString());
    p.run().waitUntilFinish();
    NpyArray mean = Npy.read(out.resolve("mean.npy"));
    assertEquals(NpyDType.FLOAT32, mean.dtype(), "outputs take the tiles' dtype");
    assertArrayEquals(new long[] {5, 1}, mean.shape());
    assertFalse(Files.exists(out.resolve("cov.npy")));
    try (NDManager m = Tensors.newManager()) {
      Prediction expected = Predict.gpInference(ModelSpec.parse(Fixtures.MODEL).kernelFn(),
          Fixtures.load(m, xTrain), Fixtures.load(m, yTrain), Fixtures.load(m, xTest), Get.NNGP, 1e-4, false);
      double err = maxRelative(mean.data(), Tensors.toDoubles(expected.mean()));
      assertTrue(err <= 1e-5, "float32 kernels: relative error " + err);
    }
  }

  // ---- bad input ------------------------------------------------------------------------------

  private interface Wiring {
    PCollection<String> apply(Pipeline p, Tiles t, String out) throws IOException;
  }

  /** The pipeline fails with a message containing {@code expected}, and writes no output. */
  private void assertRejected(Wiring wiring, String expected) throws IOException {
    Path out = dir.resolve("bad-out");
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    wiring.apply(p, tiles(p, 4), out.toString());
    Exception e = assertThrows(Exception.class, () -> Fixtures.run(p));
    StringBuilder messages = new StringBuilder();
    for (Throwable c = e; c != null; c = c.getCause()) {
      messages.append(c.getMessage()).append(" | ");
    }
    assertTrue(messages.toString().contains(expected), messages.toString());
    assertFalse(Files.exists(out.resolve("mean.npy")), "nothing is written");
  }

  private GpInference.FromTiles predict(PCollection<Tile> trainTrain, String out) {
    return GpInference.fromTiles(trainTrain, yTrain.toString(), out);
  }

  private static PCollection<Tile> without(PCollection<Tile> tiles, long row, long col) {
    return tiles.apply("Drop" + row + "_" + col,
        Filter.by((Tile t) -> t.key().rowOffset() != row || t.key().colOffset() != col));
  }

  @Test
  void aMissingTrainTrainTileIsNamed() throws IOException {
    data(11, 9, 1);
    assertRejected((p, t, out) -> t.testTrain().apply(predict(without(t.trainTrain(), 4, 8), out)),
        "the train-train tiles lack 1 of the 6 tiles of the 11 x 11 kernel in tiles of 4 rows, first tile-r4-c8.arrow");
  }

  @Test
  void aRepeatedTrainTrainTileIsNamed() throws IOException {
    data(11, 9, 1);
    assertRejected((p, t, out) -> {
      PCollection<Tile> one = t.trainTrain().apply("OnlyR0C4",
          Filter.by((Tile x) -> x.key().rowOffset() == 0 && x.key().colOffset() == 4));
      PCollection<Tile> twice = PCollectionList.of(t.trainTrain()).and(one).apply(Flatten.pCollections());
      return t.testTrain().apply(predict(twice, out));
    }, "the train-train tiles: the tile tile-r0-c4.arrow appears more than once");
  }

  @Test
  void targetsOfAnotherSizeAreRejected() throws IOException {
    data(11, 9, 1);
    yTrain = Fixtures.randomNpy(dir, "y_short.npy", 10, 1, 13);
    assertRejected((p, t, out) -> t.testTrain().apply(predict(t.trainTrain(), out)),
        "lies outside the 10 x 10 kernel of the 10 targets in " + yTrain);
    yTrain = Fixtures.randomNpy(dir, "y_long.npy", 12, 1, 14);
    assertRejected((p, t, out) -> t.testTrain().apply(predict(t.trainTrain(), out)),
        "the train-train tiles lack");
  }

  @Test
  void theKernelsSwappedAreRejected() throws IOException {
    data(11, 9, 1);
    assertRejected((p, t, out) -> t.trainTrain().apply(predict(t.testTrain(), out)),
        "the train-train tiles are a kernel between two inputs");
  }

  @Test
  void testTrainTilesAgainstOtherTrainInputsAreRejected() throws IOException {
    data(11, 9, 1);
    Path otherTrain = Fixtures.randomNpy(dir, "x_other.npy", 11, 3, 99);
    assertRejected((p, t, out) -> {
      PCollection<Tile> td = examples(p, "XTest2", xTest).apply("OtherTestTrain",
          Kernels.of(Fixtures.MODEL).withTileRows(4).withX2(examples(p, "XOther", otherTrain)));
      return td.apply(predict(t.trainTrain(), out));
    }, "the test-train tiles are not against the train inputs of the train-train tiles");
  }

  @Test
  void aKernelTheTilesLackIsNamed() throws IOException {
    data(11, 9, 1);
    assertRejected((p, t, out) -> {
      PCollection<Tile> nngpOnly = examples(p, "XTrain2", xTrain).apply("NngpOnly",
          Kernels.of(Fixtures.MODEL).withTileRows(4).withGet(Get.NNGP));
      return t.testTrain().apply(predict(nngpOnly, out).withGet(Get.NTK));
    }, "has no 'ntk' kernel (it has [nngp])");
  }

  @Test
  void missingTestTrainAndTestTestTilesAreNamed() throws IOException {
    data(11, 9, 1);
    assertRejected((p, t, out) -> without(t.testTrain(), 4, 8).apply(predict(t.trainTrain(), out)),
        "kernel entry (4, 8) is missing from the tiles in the PCollection of test-train tiles");
    assertRejected((p, t, out) -> t.testTrain().apply(predict(t.trainTrain(), out)
        .withTestTest(without(t.testTest(), 4, 8))), "the test-test tiles lack 1 of the 6 tiles");
    assertRejected((p, t, out) -> t.testTrain().apply("NoFirstBlock",
        Filter.by((Tile x) -> x.key().rowOffset() != 0)).apply(predict(t.trainTrain(), out)),
        "the test-train tiles give no test rows 0..3");
  }

  @Test
  void noTestTrainTilesAtAllIsAnError() throws IOException {
    data(11, 9, 1);
    assertRejected((p, t, out) -> t.testTrain().apply("None", Filter.by((Tile x) -> false))
        .apply(predict(t.trainTrain(), out)), "there are no test-train tiles, so no test row to predict");
  }

  @Test
  void testTestTilesOfOtherInputsAreRejected() throws IOException {
    data(11, 9, 1);
    assertRejected((p, t, out) -> t.testTrain().apply(predict(t.trainTrain(), out)
        .withTestTest(t.trainTrain())), "the test-test tiles are not the kernel of the test inputs");
  }

  @Test
  void configurationIsImmutableCheckedAndDisplayed() throws IOException {
    data(4, 3, 1);
    Pipeline p = Pipeline.create();
    PCollection<Tile> tt = tiles(p, 4).trainTrain();
    GpInference.FromTiles base = GpInference.fromTiles(tt, "gs://ntk-bucket/y.npy", "gs://ntk-bucket/out");
    GpInference.FromTiles tuned = base.withGet(Get.NNGP).withDiagReg(0.5).withFactorDirectory("/scratch/f");
    String shown = DisplayData.from(tuned).toString();
    assertTrue(shown.contains("nngp") && shown.contains("0.5") && shown.contains("/scratch/f")
        && shown.contains("gs://ntk-bucket/y.npy"), shown);
    String original = DisplayData.from(base).toString();
    assertTrue(original.contains("ntk") && original.contains("gs://ntk-bucket/out/.factor/"), original);
    assertThrows(IllegalArgumentException.class, () -> GpInference.fromTiles(tt, " ", "/out"));
    assertThrows(IllegalArgumentException.class, () -> base.withDiagReg(-1));
    PredictSettings ode = new PredictSettings(Get.NTK, 0, new double[] {1}, 1, "cross-entropy", 0, null, null,
        false);
    var e = assertThrows(IllegalArgumentException.class,
        () -> tt.apply(base.withSettings(ode).withTestTest(tt)));
    assertTrue(e.getMessage().contains("a covariance is that of the infinite ensemble"), e.getMessage());
  }
}

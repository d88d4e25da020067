package dev.ntk.transforms;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import dev.ntk.io.Npy;
import dev.ntk.io.NpyArray;
import dev.ntk.io.NpyDType;
import dev.ntk.kernels.Get;
import dev.ntk.kernels.ModelSpec;
import dev.ntk.kernels.Tensors;
import dev.ntk.kernels.predict.Predict;
import dev.ntk.kernels.predict.Prediction;
import dev.ntk.runners.Runners;
import java.io.IOException;
import java.nio.file.Path;
import org.apache.beam.sdk.Pipeline;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** GP inference through Beam (factor once, side input, test blocks in parallel) equals the in-process one. */
class GpInferenceTest {
  @TempDir Path dir;

  @ParameterizedTest(name = "{0} get={1} tile={2} outputs={3}")
  @CsvSource({
    "DIRECT, NTK, 4, 2",
    "DIRECT, NNGP, 3, 1",
    "DIRECT, NTK, 64, 1",
    "FLINK, NTK, 5, 2",
  })
  void beamEqualsInProcess(Runners.Kind runner, Get get, int tile, int outputs) throws IOException {
    Path xTrain = Fixtures.randomNpy(dir, "x_train.npy", 11, 3, 10);
    Path yTrain = Fixtures.randomNpy(dir, "y_train.npy", 11, outputs, 11);
    Path xTest = Fixtures.randomNpy(dir, "x_test.npy", 9, 3, 12);
    Path out = dir.resolve("out");
    double diagReg = 1e-3;
    NpyDType f64 = NpyDType.FLOAT64;
    TileSet dd = TileSet.create(Fixtures.MODEL, xTrain, null, tile, f64, out.resolve("tiles/train-train"));
    TileSet td = TileSet.create(Fixtures.MODEL, xTest, xTrain, tile, f64, out.resolve("tiles/test-train"));
    TileSet tt = TileSet.create(Fixtures.MODEL, xTest, null, tile, f64, out.resolve("tiles/test-test"));
    Pipeline p = Fixtures.pipeline(runner, 2);
    p.apply(GpInference.of(dd, td, tt, yTrain, get, diagReg, out));
    Fixtures.run(p);

    try (NDManager m = Tensors.newManager()) {
      Prediction expected = Predict.gpInference(ModelSpec.parse(Fixtures.MODEL).kernelFn(),
          Fixtures.load(m, xTrain), Fixtures.load(m, yTrain), Fixtures.load(m, xTest), get, diagReg, true);
      NpyArray mean = Npy.read(out.resolve("mean.npy"));
      NpyArray cov = Npy.read(out.resolve("cov.npy"));
      assertArrayEquals(new long[] {9, outputs}, mean.shape());
      assertArrayEquals(new long[] {9, 9}, cov.shape());
      double meanErr = Fixtures.relativeError(mean.data(), Tensors.toDoubles(expected.mean()));
      double covErr = Fixtures.relativeError(cov.data(), Tensors.toDoubles(expected.cov()));
      assertTrue(meanErr <= 1e-10, "mean relative error " + meanErr);
      assertTrue(covErr <= 1e-10, "cov relative error " + covErr);
    }
  }

  @ParameterizedTest
  @CsvSource({"NNGP", "NTK"})
  void meanOnlyWritesNoCovariance(Get get) throws IOException {
    Path xTrain = Fixtures.randomNpy(dir, "x_train.npy", 6, 2, 20);
    Path yTrain = Fixtures.randomNpy(dir, "y_train.npy", 6, 1, 21);
    Path xTest = Fixtures.randomNpy(dir, "x_test.npy", 4, 2, 22);
    Path out = dir.resolve("out");
    TileSet dd = TileSet.create(Fixtures.MODEL, xTrain, null, 4, NpyDType.FLOAT64, out.resolve("tiles/dd"));
    TileSet td = TileSet.create(Fixtures.MODEL, xTest, xTrain, 4, NpyDType.FLOAT64, out.resolve("tiles/td"));
    Pipeline p = Fixtures.pipeline(Runners.Kind.DIRECT, 2);
    p.apply(GpInference.of(dd, td, null, yTrain, get, 1e-4, out));
    Fixtures.run(p);
    assertArrayEquals(new long[] {4, 1}, Npy.readHeader(out.resolve("mean.npy")).shape());
    assertTrue(!out.resolve("cov.npy").toFile().exists());
  }
}
